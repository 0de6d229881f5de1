//! The drive loop: a [`Channel`] under an [`smtp_proto::client::Client`].
//!
//! # Why this module has no protocol logic
//!
//! Everything SMTP is decided by the sans-IO session: which command is next,
//! what a reply means, when STARTTLS runs, which AUTH mechanism to use, how
//! the body is stuffed or chunked, when a deadline has passed. A
//! [`Connection`] only moves bytes and time between the session and a
//! [`Channel`], following the session's contract to the letter with the
//! core's generic [`session::drive`](smtp_proto::session::drive) over the
//! channel:
//!
//! - drain the session until it waits ([`Drained::Wait`]);
//! - write each [`Output::Transmit`](smtp_proto::Output::Transmit) slice
//!   **whole, in one [`Channel::write_all`] call**, then report it with
//!   `advance_transmit` at once, before any input is handed in. A transmit
//!   holds everything ready to go — a pipelined MAIL/RCPT/DATA group, a
//!   body piece with its terminator — so it leaves in as few TCP segments
//!   as possible (`TCP_NODELAY` is on: no Nagle stall on write-write-read);
//! - on [`Output::StartTls`](smtp_proto::Output::StartTls) run the
//!   handshake on the channel and report it with `handle_tls_established`.
//!   Under implicit TLS that is the session's first output; a channel that
//!   already runs TLS (opened for `smtps://`) reports its handshake at once;
//! - act on the events once the drain returns (they cannot touch the
//!   session inside it): the application's callback, the body pump;
//! - on `Wait { deadline }` read once, until that deadline: bytes go to
//!   [`Client::handle_input`] (parsed at once), end of stream to
//!   [`Client::handle_eof`], a timeout to [`Client::handle_timeout`].
//!
//! The read buffer is scratch space: every byte read is handed to the
//! session in the same step, so nothing read in plaintext can survive the
//! STARTTLS switch (see [`channel`](crate::channel)).
//!
//! Message bodies are streamed: [`Connection::send_reader`] reads the body
//! in pieces of at most [`BODY_PIECE`] bytes and offers each to
//! [`Client::write_body`], which takes what its bounded buffer has room for;
//! the rest is offered again after the next write. A body is never held
//! whole, neither here nor in the session.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_proto::address::{AddressLiteral, Domain, Host};
use smtp_proto::client::{
    self as session, AuthConfig, BodyTransfer, Client, Config, Envelope, Event, MailTransaction,
    ReplyTo, Timeouts, TransactionReport, Waiting,
};
use smtp_proto::command::Command;
use smtp_proto::data::BareLineEnding;
use smtp_proto::reply::Reply;
use smtp_proto::session::{Drained, Transport, drive};
use smtp_proto::{Protocol, TlsInfo, TlsMode};

use crate::channel::Channel;
use crate::error::{Error, Phase};
use crate::tls::{TlsConfig, TlsError};
use crate::url::{Credentials, Endpoint, ServerUrl};

/// The largest piece of a body read from a reader at once, and the size of
/// the scratch buffer for reads from the server.
pub const BODY_PIECE: usize = 64 * 1024;

/// Scratch space for one read from the server (replies are short; a
/// pipelined group's replies fit many times over).
const READ_SCRATCH: usize = 16 * 1024;

/// Who a [`Trace`] line is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Direction {
    /// Sent by this client (`C:`). AUTH secrets are redacted and message
    /// bodies summarized.
    Client,
    /// Received from the server (`S:`), one line per reply line.
    Server,
    /// A note from the transport: connected, TLS established.
    Info,
}

impl Direction {
    /// `C:`, `S:` or `*`, the prefixes of a swaks-like transcript.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Client => "C:",
            Self::Server => "S:",
            Self::Info => "*",
        }
    }
}

/// A callback that sees the conversation line by line, for `--verbose`
/// logs. Shared (an `Arc`) so one trace serves every connection of an MX
/// delivery.
pub type Trace = Arc<dyn Fn(Direction, &str) + Send + Sync>;

/// How a connection is set up, beyond what a [`ServerUrl`] says.
///
/// The defaults are the safe ones: certificates verified against the webpki
/// roots, STARTTLS required (from the URL), AUTH only over TLS, bodies with
/// a bare CR or LF refused, RFC 5321 timeouts.
#[derive(Clone)]
#[non_exhaustive]
pub struct Settings {
    /// The trust for TLS (STARTTLS and implicit TLS).
    pub tls: TlsConfig,
    /// The name for EHLO/LHLO when the URL gives none. `None`: the local
    /// address as an address literal (`[192.0.2.1]`, RFC 5321 §4.1.3),
    /// which is what a host without a known FQDN must send. A [`Host`], so
    /// a bad name is refused where the configuration is read
    /// (`"client.example".parse()?`), never by a session later.
    pub helo: Option<Host<'static>>,
    /// Time allowed for each TCP connection attempt (per address).
    pub connect_timeout: Duration,
    /// Time allowed for a TLS handshake.
    pub handshake_timeout: Duration,
    /// The session's reply and write timeouts.
    pub timeouts: Timeouts,
    /// Allow AUTH over an unencrypted connection. Default `false`: only for
    /// tests and local relays.
    pub allow_plaintext_auth: bool,
    /// DATA or BDAT (when offered). Default: BDAT when offered.
    pub body_transfer: BodyTransfer,
    /// What to do with a bare CR or LF in a body: refuse it (default) or
    /// turn it into CRLF.
    pub bare_line_ending: BareLineEnding,
    /// A transcript callback, if any.
    pub trace: Option<Trace>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tls: TlsConfig::default(),
            helo: None,
            connect_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(60),
            timeouts: Timeouts::default(),
            allow_plaintext_auth: false,
            body_transfer: BodyTransfer::default(),
            bare_line_ending: BareLineEnding::default(),
            trace: None,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("tls", &self.tls)
            .field("helo", &self.helo)
            .field("connect_timeout", &self.connect_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("timeouts", &self.timeouts)
            .field("allow_plaintext_auth", &self.allow_plaintext_auth)
            .field("body_transfer", &self.body_transfer)
            .field("bare_line_ending", &self.bare_line_ending)
            .field("trace", &self.trace.is_some())
            .finish()
    }
}

impl Settings {
    /// Sets every session timeout (greeting, each reply, writes, the TLS
    /// handshake) and the connect timeout to `timeout`: one knob for a
    /// command-line `--timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        let mut t = Timeouts::default();
        t.greeting = timeout;
        t.mail = timeout;
        t.rcpt = timeout;
        t.data_initiation = timeout;
        t.data_block = timeout;
        t.data_termination = timeout;
        t.bdat_chunk = timeout;
        t.other = timeout;
        t.tls_handshake = timeout;
        self.timeouts = t;
        self.connect_timeout = timeout;
        self.handshake_timeout = timeout;
        self
    }
}

/// What a session needs besides the channel: the parts of a URL.
#[derive(Debug, Clone)]
pub struct SessionParams<'a> {
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// How TLS is obtained. Under [`TlsMode::Implicit`] the session asks for
    /// the handshake before anything else: a channel that already runs TLS
    /// (from [`Channel::open`] or [`Channel::connect_tls`]) reports it at
    /// once, a plaintext one runs it then.
    pub tls_mode: TlsMode,
    /// The name the certificate must match (and SNI).
    pub host: &'a str,
    /// AUTH credentials.
    pub credentials: Option<&'a Credentials>,
    /// The EHLO/LHLO name, overriding [`Settings::helo`].
    pub helo: Option<&'a Host<'static>>,
}

/// An open, set-up SMTP or LMTP session: greeting read, EHLO sent, TLS and
/// AUTH done as configured. Send any number of messages over it, then
/// [`quit`](Self::quit).
pub struct Connection {
    channel: Channel,
    client: Client,
    host: String,
    tls: TlsConfig,
    handshake_timeout: Duration,
    write_timeout: Duration,
    trace: Option<Trace>,
    /// Where the conversation is, for the trace.
    tracing: TraceState,
    /// Events drained from the session and not yet acted on (a call that
    /// got its answer leaves the rest to the next).
    events: VecDeque<Event>,
    /// A previous call failed in a way that leaves the session unusable.
    broken: bool,
    /// Reused body piece buffer (allocated on the first send).
    body_buf: Vec<u8>,
}

/// What the trace (and MX delivery) needs to know about the conversation,
/// updated as events are drained and as the transport works (cells: the
/// drain's event callback and its transport both see it).
#[derive(Debug, Default)]
struct TraceState {
    /// A SASL exchange is running: client lines are secrets.
    in_sasl: Cell<bool>,
    /// Between the `354` to DATA and the final reply: what is written is
    /// message data.
    in_data: Cell<bool>,
    /// A TLS handshake began and did not finish: a failure now is TLS's.
    in_handshake: Cell<bool>,
}

impl TraceState {
    /// Follows the SASL exchange and the message data, and traces replies.
    fn observe(&self, trace: Option<&Trace>, event: &Event) {
        match event {
            Event::Reply {
                to: ReplyTo::Data,
                reply,
            } => self.in_data.set(reply.is_positive_intermediate()),
            Event::Reply {
                to: ReplyTo::EndOfData { .. },
                ..
            }
            | Event::TransactionEnded
            | Event::Closed => self.in_data.set(false),
            _ => {}
        }
        if let Event::Reply { to, reply } = event {
            self.in_sasl
                .set(*to == ReplyTo::Auth && reply.is_positive_intermediate());
            if let Some(trace) = trace {
                trace_reply(trace, reply);
            }
        }
    }
}

/// The channel as the session's [`Transport`]: blocking writes within the
/// write timeout, the TLS handshake when the session asks, and the trace.
struct Pipe<'a> {
    channel: &'a mut Channel,
    tls: &'a TlsConfig,
    host: &'a str,
    handshake_timeout: Duration,
    write_timeout: Duration,
    trace: Option<&'a Trace>,
    tracing: &'a TraceState,
}

impl Transport for Pipe<'_> {
    type Error = Error;

    fn write(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        if let Some(trace) = self.trace {
            trace_transmit(
                trace,
                bytes,
                self.tracing.in_data.get(),
                self.tracing.in_sasl.get(),
            );
        }
        self.channel
            .write_all(bytes, Some(Instant::now() + self.write_timeout))?;
        Ok(bytes.len())
    }

    fn start_tls(&mut self) -> Result<Option<TlsInfo>, Error> {
        if let Some(info) = self.channel.tls_info() {
            // Implicit TLS on a channel that ran the handshake when it
            // connected (`smtps://`): report it.
            return Ok(Some(info.clone()));
        }
        let deadline = Instant::now() + self.handshake_timeout;
        self.tracing.in_handshake.set(true);
        let info = self.channel.start_tls(self.tls, self.host, deadline)?;
        self.tracing.in_handshake.set(false);
        if let Some(trace) = self.trace {
            trace(
                Direction::Info,
                &format!(
                    "TLS established: {} {}",
                    info.protocol.as_deref().unwrap_or("?"),
                    info.cipher.as_deref().unwrap_or("?")
                ),
            );
        }
        Ok(Some(info))
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .field("tls", &self.client.is_tls())
            .field("ready", &self.client.is_ready())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// The EHLO name to use: `explicit`, else an address literal for `local`,
/// else `localhost` (a Unix socket).
fn helo_host(explicit: Option<&Host<'static>>, local: Option<IpAddr>) -> Host<'static> {
    if let Some(name) = explicit {
        return name.clone();
    }
    match local {
        Some(IpAddr::V4(ip)) => Host::Literal(AddressLiteral::Ipv4(ip)),
        Some(IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => Host::Literal(AddressLiteral::Ipv4(v4)),
            None => Host::Literal(AddressLiteral::Ipv6(ip)),
        },
        // Invariant: a constant, valid domain.
        None => Host::Domain(Domain::LOCALHOST),
    }
}

/// Maps a session failure to the crate's [`Error`].
pub(crate) fn session_error(error: &session::Error) -> Error {
    use session::Error as E;
    match error {
        E::GreetingRejected(r)
        | E::ServiceNotAvailable(r)
        | E::HelloRejected(r)
        | E::StartTlsRefused(r)
        | E::AuthFailed(r) => Error::Rejected(r.clone()),
        E::StartTlsNotOffered => Error::Tls(TlsError::Unavailable(
            "TLS is required but the server does not offer STARTTLS",
        )),
        E::AuthNotAvailable | E::AuthRequiresTls | E::AuthCancelled => {
            Error::Auth(error.to_string())
        }
        E::Timeout(Waiting::Write) => Error::Timeout(Phase::Writing),
        E::Timeout(Waiting::TlsHandshake) => Error::Timeout(Phase::TlsHandshake),
        E::Timeout(_) => Error::Timeout(Phase::Reading),
        E::ConnectionClosed { .. } => Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            error.to_string(),
        )),
        _ => Error::Protocol(error.to_string()),
    }
}

/// The session error that stands for a failure of the transport the
/// session did not see (a reset, a write that failed or timed out), so that
/// a report or MX delivery can name it in the session's terms.
pub(crate) fn transport_failure(error: &Error) -> session::Error {
    match error {
        Error::Timeout(Phase::Writing) => session::Error::Timeout(Waiting::Write),
        Error::Timeout(Phase::TlsHandshake) => session::Error::Timeout(Waiting::TlsHandshake),
        _ => session::Error::ConnectionClosed {
            partial_reply: false,
        },
    }
}

/// Why a session could not be set up, with what MX delivery needs to
/// report it to the core's walk.
#[derive(Debug)]
pub(crate) struct SetupFailure {
    /// The error [`Connection::establish`] returns.
    pub(crate) error: Error,
    /// The session's own error, if it saw one (a refusal carries its reply).
    pub(crate) session: Option<session::Error>,
    /// It failed in a TLS handshake (STARTTLS or implicit).
    pub(crate) in_tls: bool,
}

/// Where a body being streamed stands.
struct BodyFeed<'r> {
    reader: &'r mut dyn Read,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    started: bool,
    finished: bool,
}

impl BodyFeed<'_> {
    /// Reads the next piece: until the buffer is full or the reader ends.
    fn refill(&mut self) -> Result<(), Error> {
        self.pos = 0;
        self.len = 0;
        while let Some(space) = self.buf.get_mut(self.len..) {
            if space.is_empty() {
                break;
            }
            match self.reader.read(space) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.len += n.min(space.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Body(e)),
            }
        }
        Ok(())
    }

    /// Offers the body to the session until it takes no more or the body
    /// is finished. The last piece and the end of data go into the same
    /// transmit.
    fn pump(&mut self, client: &mut Client) -> Result<(), Error> {
        while !self.finished {
            if self.pos >= self.len && !self.eof {
                self.refill()?;
            }
            match self.buf.get(self.pos..self.len) {
                Some(piece) if !piece.is_empty() => {
                    let took = client.write_body(piece).map_err(Error::Message)?;
                    self.pos += took;
                    if took == 0 {
                        return Ok(());
                    }
                }
                _ if self.eof => {
                    client.finish_body().map_err(Error::Message)?;
                    self.finished = true;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Traces a transmit: command lines as they are (AUTH redacted), body
/// bytes summarized.
fn trace_transmit(trace: &Trace, bytes: &[u8], in_body: bool, in_sasl: bool) {
    let mut rest = bytes;
    if in_body && !rest.starts_with(b"BDAT ") {
        let dot = rest.ends_with(b"\r\n.\r\n") || rest == b".\r\n";
        trace(
            Direction::Client,
            &format!("<{} octets of message data>", rest.len()),
        );
        if dot {
            trace(Direction::Client, ".");
        }
        return;
    }
    while !rest.is_empty() {
        let end = memchr_crlf(rest).unwrap_or(rest.len());
        let line = String::from_utf8_lossy(rest.get(..end).unwrap_or_default());
        rest = rest.get(end + 2..).unwrap_or_default();
        let upper = line.to_ascii_uppercase();
        if in_sasl {
            trace(Direction::Client, "<redacted>");
        } else if let Some(args) = upper.strip_prefix("AUTH ") {
            let mut words = args.split(' ');
            let mechanism = words.next().unwrap_or_default();
            if words.next().is_some() {
                trace(Direction::Client, &format!("AUTH {mechanism} <redacted>"));
            } else {
                trace(Direction::Client, &format!("AUTH {mechanism}"));
            }
        } else if let Some(size) = upper.strip_prefix("BDAT ") {
            trace(Direction::Client, &line);
            let size: usize = size
                .split(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let size = size.min(rest.len());
            trace(
                Direction::Client,
                &format!("<{size} octets of message data>"),
            );
            rest = rest.get(size..).unwrap_or_default();
        } else {
            trace(Direction::Client, &line);
        }
    }
}

fn memchr_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

fn trace_reply(trace: &Trace, reply: &Reply<'_>) {
    let mut wire = Vec::new();
    reply.encode(&mut wire);
    for line in String::from_utf8_lossy(&wire).split("\r\n") {
        if !line.is_empty() {
            trace(Direction::Server, line);
        }
    }
}

impl Connection {
    /// Parses `url` and [opens](Self::open) it with default [`Settings`].
    ///
    /// ```no_run
    /// let mut conn = smtp_blocking::Connection::connect("smtp://user:pass@mail.example.org")?;
    /// # Ok::<(), smtp_blocking::Error>(())
    /// ```
    pub fn connect(url: &str) -> Result<Self, Error> {
        let url = ServerUrl::parse(url)?;
        Self::open(&url, &Settings::default())
    }

    /// Connects to the server `url` names and sets the session up: greeting,
    /// EHLO (LHLO), STARTTLS as the URL says, AUTH with its credentials.
    pub fn open(url: &ServerUrl, settings: &Settings) -> Result<Self, Error> {
        let channel = Channel::open(
            url,
            &settings.tls,
            settings.connect_timeout,
            settings.handshake_timeout,
        )?;
        let host = match &url.endpoint {
            Endpoint::Tcp { host, .. } => host.as_str(),
            _ => "localhost",
        };
        if let (Some(trace), Some(addr)) = (&settings.trace, channel.peer_addr()) {
            trace(Direction::Info, &format!("connected to {addr}"));
        }
        let params = SessionParams {
            protocol: url.protocol,
            tls_mode: url.tls,
            host,
            credentials: url.credentials.as_ref(),
            helo: url.helo.as_ref(),
        };
        Self::establish(channel, &params, settings)
    }

    /// Runs the session setup over an open `channel` (for implicit TLS, one
    /// that already runs TLS): the way MX delivery connects to one address
    /// of one host.
    pub fn establish(
        channel: Channel,
        params: &SessionParams<'_>,
        settings: &Settings,
    ) -> Result<Self, Error> {
        Self::set_up(channel, params, settings).map_err(|failure| failure.error)
    }

    /// [`establish`](Self::establish), telling how it failed.
    pub(crate) fn set_up(
        channel: Channel,
        params: &SessionParams<'_>,
        settings: &Settings,
    ) -> Result<Self, Box<SetupFailure>> {
        let helo = helo_host(
            params.helo.or(settings.helo.as_ref()),
            channel.local_addr().map(|a| a.ip()),
        );
        let mut config = Config::new(helo);
        config.protocol = params.protocol;
        config.tls = params.tls_mode;
        if let Some(credentials) = params.credentials {
            let mut auth = AuthConfig::new(session::Credentials::password(
                credentials.username.clone(),
                credentials.password.expose().clone(),
            ));
            auth.allow_plaintext = settings.allow_plaintext_auth;
            config.auth = Some(auth);
        }
        config.timeouts = settings.timeouts;
        config.body_transfer = settings.body_transfer;
        config.bare_line_ending = settings.bare_line_ending;
        let write_timeout = config.timeouts.data_block;
        let mut conn = Self {
            client: Client::new(config, Instant::now()),
            channel,
            host: params.host.to_owned(),
            tls: settings.tls.clone(),
            handshake_timeout: settings.handshake_timeout,
            write_timeout,
            trace: settings.trace.clone(),
            tracing: TraceState::default(),
            events: VecDeque::new(),
            broken: false,
            body_buf: Vec::new(),
        };
        let setup = conn.run(None, |_, event| match event {
            Event::Ready => Some(Ok(())),
            Event::Error(e) => Some(Err(session_error(e))),
            _ => None,
        });
        match setup {
            Ok(Ok(())) => Ok(conn),
            Ok(Err(error)) | Err(error) => {
                let failure = SetupFailure {
                    error,
                    session: conn.client.error().cloned(),
                    in_tls: conn.tracing.in_handshake.get(),
                };
                conn.leave();
                Err(Box::new(failure))
            }
        }
    }

    /// After a setup failure: writes what the session still has to say
    /// (the `QUIT` it sends when the stream is in sync, RFC 5321 §3.1 for
    /// a refused greeting) without waiting for an answer, and closes.
    fn leave(mut self) {
        let write_timeout = self.write_timeout.min(Duration::from_secs(5));
        let mut pipe = Pipe {
            channel: &mut self.channel,
            tls: &self.tls,
            host: &self.host,
            handshake_timeout: self.handshake_timeout,
            write_timeout,
            trace: self.trace.as_ref(),
            tracing: &self.tracing,
        };
        // Whatever happens now, the connection is closed next.
        let _ = drive(&mut self.client, Instant::now(), &mut pipe, |_| {});
        let _ = self.channel.close(Some(Instant::now() + write_timeout));
    }

    /// The session: its extensions, TLS state, the AUTH mechanism used.
    pub fn session(&self) -> &Client {
        &self.client
    }

    /// The channel under the session.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Sends one message: `envelope` and the whole `body` (an RFC 5322
    /// message, CRLF line endings). `BODY=8BITMIME` is declared when the
    /// body has 8-bit octets, and `SIZE=<length>` when the server offers
    /// SIZE (RFC 1870) and the envelope does not say otherwise. See
    /// [`send_reader`](Self::send_reader) for the result.
    ///
    /// A body over the size limit the server declared (`SIZE 65536`) is
    /// not sent at all: the call fails at once with [`Error::Message`]
    /// ([`UsageError::MessageTooLarge`](smtp_proto::client::UsageError::MessageTooLarge),
    /// "message of N octets exceeds the server's limit of M"), which is
    /// permanent, and the connection stays usable for other messages.
    pub fn send(&mut self, envelope: &Envelope, body: &[u8]) -> Result<TransactionReport, Error> {
        let (report, transport) = self.send_body(envelope, body)?;
        Self::settle(report, transport)
    }

    /// Sends one message like [`send`](Self::send), and returns its
    /// [`TransactionReport`] **even when the session fails during the
    /// transaction**: then [`TransactionReport::error`] says why (a lost
    /// connection, a timeout, a `421`), every recipient without a final
    /// reply is a transient failure, the replies that did arrive (a `550`
    /// to one RCPT) are kept, and the connection is unusable afterwards
    /// ([`is_usable`](Self::is_usable)). A failure of the transport that the
    /// session did not see itself (a reset, a failed write) is reported
    /// there in the session's terms (`ConnectionClosed`, a write timeout).
    ///
    /// This is what MX delivery needs: the core's walk reads every reply of
    /// a transaction, whatever happened after it.
    ///
    /// # Errors
    ///
    /// Only when the message did not go: [`Error::Message`] (the session
    /// refused it before or while sending: an extension it needs is
    /// missing, a bare LF under the refusing policy) or an unusable
    /// connection.
    pub fn transact(
        &mut self,
        envelope: &Envelope,
        body: &[u8],
    ) -> Result<TransactionReport, Error> {
        self.send_body(envelope, body).map(|(report, _)| report)
    }

    /// Whether the connection can carry another message: no call has
    /// failed on it and the session is open.
    pub fn is_usable(&self) -> bool {
        self.check_usable().is_ok()
    }

    fn send_body(
        &mut self,
        envelope: &Envelope,
        body: &[u8],
    ) -> Result<(TransactionReport, Option<Error>), Error> {
        let mut envelope = envelope.clone();
        if envelope.params.body.is_none() {
            envelope.declare_body(body);
        }
        if envelope.params.size.is_none() {
            // RFC 1870 §6.1: the exact size, CRLFs included, dot-stuffing
            // not. Declared only when the server offers SIZE (the core
            // drops it otherwise), and over the server's limit the message
            // is refused before MAIL is sent.
            envelope.params.size = u64::try_from(body.len()).ok();
        }
        let mut reader = body;
        self.send_envelope(envelope, &mut reader)
    }

    /// The report of [`send`](Self::send): the transport's failure, else
    /// the session's, as an error.
    fn settle(
        report: TransactionReport,
        transport: Option<Error>,
    ) -> Result<TransactionReport, Error> {
        match (transport, &report.error) {
            (Some(e), _) => Err(e),
            (None, Some(e)) => Err(session_error(e)),
            (None, None) => Ok(report),
        }
    }

    /// Sends one message whose body comes from `reader`, streamed in pieces
    /// of at most [`BODY_PIECE`] bytes: the body is never held whole. An
    /// 8-bit body needs `envelope.params.body` set (see
    /// [`Envelope::declare_body`]); a known length goes in
    /// `envelope.params.size`, declared as `SIZE=` when the server offers
    /// SIZE (a reader's length is not known here).
    ///
    /// Returns the [`TransactionReport`]: a result per recipient (accepted
    /// only when the server accepted its RCPT *and* the message; under
    /// LMTP, its own final reply) and the final reply, whose text usually
    /// names the queue id. Recipients refused one by one are results, not
    /// errors. The connection stays usable for the next message (an RSET is
    /// sent when the server may still hold the envelope).
    ///
    /// # Errors
    ///
    /// When the session broke (connection lost, even in the middle of the
    /// final reply; a timeout; a `421`; a protocol violation): the message
    /// must be considered **not** delivered, and [`Error::is_temporary`]
    /// says whether to retry. [`Error::Message`] when the message cannot go
    /// over this session (an extension it needs is missing, a bare LF in
    /// the body under the default policy). [`Error::Body`] when `reader`
    /// failed. After any error the connection is unusable.
    pub fn send_reader(
        &mut self,
        envelope: &Envelope,
        mut reader: impl Read,
    ) -> Result<TransactionReport, Error> {
        let (report, transport) = self.send_envelope(envelope.clone(), &mut reader)?;
        Self::settle(report, transport)
    }

    /// Runs one transaction. `Ok` once it started: the report, complete
    /// even if the session or the transport failed (the transport's error
    /// beside it). `Err` when the message did not go, or the body reader
    /// failed.
    fn send_envelope(
        &mut self,
        envelope: Envelope,
        reader: &mut dyn Read,
    ) -> Result<(TransactionReport, Option<Error>), Error> {
        self.check_usable()?;
        let mut transaction = match MailTransaction::start(&mut self.client, envelope) {
            Ok(transaction) => transaction,
            // The client refused before anything was sent (an RSET may be
            // queued to undo MAIL): the connection is still usable.
            Err(e) => return Err(Error::Message(e)),
        };
        let mut buf = std::mem::take(&mut self.body_buf);
        buf.resize(BODY_PIECE, 0);
        let mut feed = BodyFeed {
            reader,
            buf,
            pos: 0,
            len: 0,
            eof: false,
            started: false,
            finished: false,
        };
        let result = self.run(Some(&mut feed), |client, event| {
            transaction.handle_event(client, event)
        });
        self.body_buf = feed.buf;
        let error = match result {
            Ok(report) => {
                if report.error.is_some() {
                    self.broken = true;
                }
                return Ok((report, None));
            }
            Err(e @ (Error::Message(_) | Error::Body(_))) => return Err(e),
            Err(e) => e,
        };
        // The transport failed where the session could not see it: finish
        // the report with what the transaction saw, and that failure.
        let mut events: Vec<Event> = self.events.drain(..).collect();
        events.push(Event::Error(transport_failure(&error)));
        for event in &events {
            if let Some(report) = transaction.handle_event(&mut self.client, event) {
                return Ok((report, Some(error)));
            }
        }
        Err(error)
    }

    /// Sends `NOOP` and waits for its reply: checks that an idle connection
    /// is still alive before reusing it.
    pub fn noop(&mut self) -> Result<Reply<'static>, Error> {
        self.check_usable()?;
        self.client
            .enqueue(Command::Noop { text: None })
            .map_err(Error::Message)?;
        self.run(None, |_, event| match event {
            Event::Reply {
                to: ReplyTo::Noop,
                reply,
            } => Some(Ok(reply.clone())),
            Event::Error(e) => Some(Err(session_error(e))),
            _ => None,
        })?
    }

    /// Ends the session politely: `QUIT`, its reply (or the server closing),
    /// then the connection is closed.
    pub fn quit(mut self) -> Result<(), Error> {
        if !self.broken && self.client.enqueue(Command::Quit).is_ok() {
            self.run(None, |_, event| match event {
                Event::Closed => Some(()),
                _ => None,
            })?;
        }
        self.channel
            .close(Some(Instant::now() + self.write_timeout))
    }

    fn check_usable(&self) -> Result<(), Error> {
        if self.broken || self.client.is_closed() || self.client.error().is_some() {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                "the SMTP session has ended",
            )));
        }
        Ok(())
    }

    /// The drive loop: runs until `on_event` returns a value. Any failure
    /// of the channel, the body reader or the session leaves the connection
    /// marked broken.
    fn run<T>(
        &mut self,
        mut body: Option<&mut BodyFeed<'_>>,
        mut on_event: impl FnMut(&mut Client, &Event) -> Option<T>,
    ) -> Result<T, Error> {
        let result = self.run_inner(&mut body, &mut on_event);
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    fn run_inner<T>(
        &mut self,
        body: &mut Option<&mut BodyFeed<'_>>,
        on_event: &mut impl FnMut(&mut Client, &Event) -> Option<T>,
    ) -> Result<T, Error> {
        let mut scratch = [0u8; READ_SCRATCH];
        let mut failure: Option<Error> = None;
        loop {
            // Act on what the last drain produced, in order.
            while let Some(event) = self.events.pop_front() {
                if matches!(event, Event::ReadyForBody)
                    && let Some(feed) = body.as_deref_mut()
                {
                    feed.started = true;
                }
                if let Some(done) = on_event(&mut self.client, &event) {
                    return Ok(done);
                }
                match event {
                    Event::Error(e) => failure = Some(session_error(&e)),
                    Event::Closed => {
                        return Err(failure.unwrap_or_else(|| {
                            Error::Io(io::Error::new(
                                io::ErrorKind::NotConnected,
                                "the SMTP session has ended",
                            ))
                        }));
                    }
                    _ => {}
                }
            }
            let feeding = |feed: &Option<&mut BodyFeed<'_>>, client: &Client| {
                feed.as_deref()
                    .is_some_and(|f| f.started && !f.finished && client.wants_body())
            };
            if feeding(body, &self.client)
                && let Some(feed) = body.as_deref_mut()
            {
                feed.pump(&mut self.client)?;
            }
            let mut pipe = Pipe {
                channel: &mut self.channel,
                tls: &self.tls,
                host: &self.host,
                handshake_timeout: self.handshake_timeout,
                write_timeout: self.write_timeout,
                trace: self.trace.as_ref(),
                tracing: &self.tracing,
            };
            let (events, tracing, trace) = (&mut self.events, &self.tracing, self.trace.as_ref());
            let drained = drive(&mut self.client, Instant::now(), &mut pipe, |event| {
                tracing.observe(trace, &event);
                events.push_back(event);
            })?;
            if !self.events.is_empty() || feeding(body, &self.client) {
                continue;
            }
            let deadline = match drained {
                Drained::Wait { deadline } => deadline,
                // Writes block and handshakes finish within the drain; a
                // closed session has said so with an event.
                _ => {
                    return Err(failure.unwrap_or_else(|| {
                        Error::Protocol(String::from("the session stopped without closing"))
                    }));
                }
            };
            if !self.client.wants_read() {
                return Err(failure.unwrap_or_else(|| {
                    Error::Protocol(String::from("the session stopped without closing"))
                }));
            }
            let cap = self.client.read_capacity().min(scratch.len());
            let buf = scratch.get_mut(..cap).unwrap_or_default();
            match self.channel.read(buf, deadline) {
                Ok(0) => self.client.handle_eof(Instant::now()),
                Ok(n) => {
                    let data = buf.get(..n).unwrap_or_default();
                    // The client takes every byte while it reads; this
                    // channel keeps none, so a refusal could only lose
                    // bytes: end the session instead.
                    if self.client.handle_input(Instant::now(), data) < n {
                        return Err(Error::Protocol(String::from(
                            "the session refused input it had room for",
                        )));
                    }
                }
                Err(Error::Timeout(_)) => self.client.handle_timeout(Instant::now()),
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn collect(bytes: &[u8], in_body: bool, in_sasl: bool) -> Vec<String> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let trace: Trace = Arc::new(move |d: Direction, l: &str| {
            sink.lock().unwrap().push(format!("{} {l}", d.prefix()));
        });
        trace_transmit(&trace, bytes, in_body, in_sasl);
        lines.lock().unwrap().clone()
    }

    #[test]
    fn trace_redacts_auth_and_summarizes_bodies() {
        assert_eq!(
            collect(b"AUTH PLAIN AGFsaWNlAHMzY3IzdA==\r\n", false, false),
            ["C: AUTH PLAIN <redacted>"]
        );
        assert_eq!(collect(b"AUTH LOGIN\r\n", false, false), ["C: AUTH LOGIN"]);
        assert_eq!(collect(b"YWxpY2U=\r\n", false, true), ["C: <redacted>"]);
        assert_eq!(
            collect(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", false, false),
            ["C: MAIL FROM:<a@b>", "C: RCPT TO:<c@d>"]
        );
        assert_eq!(
            collect(b"Subject: x\r\n\r\nhi\r\n.\r\n", true, false),
            ["C: <21 octets of message data>", "C: ."]
        );
        assert_eq!(
            collect(b"BDAT 4 LAST\r\nhi\r\n", true, false),
            ["C: BDAT 4 LAST", "C: <4 octets of message data>"]
        );
    }

    #[test]
    fn helo_defaults_to_an_address_literal() {
        let h = helo_host(None, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(h.to_string(), "[192.0.2.1]");
        let h = helo_host(None, Some("::ffff:192.0.2.1".parse().unwrap()));
        assert_eq!(h.to_string(), "[192.0.2.1]");
        let name = "client.example".parse().unwrap();
        let h = helo_host(Some(&name), None);
        assert_eq!(h.to_string(), "client.example");
        assert_eq!(helo_host(None, None).to_string(), "localhost");
    }

    #[test]
    fn session_errors_keep_their_severity() {
        let closed = session_error(&session::Error::ConnectionClosed {
            partial_reply: true,
        });
        assert!(closed.is_temporary());
        assert!(
            session_error(&session::Error::StartTlsNotOffered).is_permanent(),
            "a policy failure does not go away by retrying"
        );
        assert!(session_error(&session::Error::AuthRequiresTls).is_permanent());
        assert!(matches!(
            session_error(&session::Error::Timeout(Waiting::Write)),
            Error::Timeout(Phase::Writing)
        ));
    }
}
