//! One outbound connection: a socket, the TLS layer, the sans-IO client
//! session, and the transaction it is carrying.
//!
//! Like the server's loop, this part takes no protocol decision: it moves
//! bytes between [`Transport`] and [`Client`], obeys the session's outputs
//! (write this, start TLS now, wait until then) and reports what happened to
//! the engine as [`ConnEvent`]s. Where to connect, with which TLS, which
//! recipients to carry and what a failure means are the walk's business
//! ([`smtp_proto::mx::Walk`]), asked by the engine; this module only says
//! *what* happened, in the walk's words ([`ConnectionFailure`]).
//!
//! It depends on nothing of the engine: the engine names a transaction with
//! a [`Ticket`] that comes back with its report.
//!
//! The draining is the core's generic [`session::drive`] over the socket
//! (a full socket ends a drain, the TLS handshake runs on in the transport
//! and is reported when a read completes it); the events it collects are
//! acted on after each drain, and the body is fed in between, until
//! nothing moves. Under implicit TLS the session's first output asks for
//! the handshake, exactly as after STARTTLS.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use smtp_proto::client::{
    Client, Error as SessionError, Event, MailTransaction, TransactionReport, UsageError,
};
use smtp_proto::command::Command;
use smtp_proto::mx::{
    BatchId, ConnectionFailure, Destination, Endpoint, HostName, TlsFailure, TlsPolicy,
};
use smtp_proto::session::{self, Drained};
use smtp_proto::tls::is_certificate_error;
use smtp_proto::{DriveError, TlsInfo};

use crate::transport::{ReadOutcome, Transport};

/// How many bytes of message content are read from a reader at a time.
pub(super) const BODY_PIECE: usize = 64 * 1024;

/// Where a connection goes, as the walk named it ([`Endpoint`], owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    /// The MX host (or the relay's name); `None` for an address literal.
    pub(super) host: Option<HostName>,
    pub(super) ip: IpAddr,
    pub(super) tls: TlsPolicy,
}

impl Target {
    pub(super) fn of(endpoint: &Endpoint<'_>) -> Self {
        Self {
            host: endpoint.host().cloned(),
            ip: endpoint.ip(),
            tls: endpoint.tls(),
        }
    }

    /// Whether `endpoint` is this target.
    pub(super) fn is(&self, endpoint: &Endpoint<'_>) -> bool {
        self.ip == endpoint.ip()
            && self.tls == endpoint.tls()
            && self.host.as_ref() == endpoint.host()
    }

    /// The name the certificate must carry: the host, or the address of a
    /// literal.
    pub(super) fn server_name(&self) -> Option<ServerName<'static>> {
        match &self.host {
            Some(host) => smtp_proto::tls::server_name(host.as_str()).ok(),
            None => Some(ServerName::IpAddress(self.ip.into())),
        }
    }
}

/// The engine's name for a transaction a connection carries, handed back
/// with its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket {
    /// The engine's task (one walk).
    pub(super) task: usize,
    /// The walk's batch.
    pub(super) batch: BatchId,
}

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// TCP connect in progress.
    Connecting,
    /// Greeting, EHLO, STARTTLS, AUTH.
    Setup,
    /// Ready, no transaction.
    Idle,
    /// Carrying a transaction.
    Busy,
    /// QUIT sent (or about to be).
    Quitting,
    /// Over; the engine removes it.
    Closed,
}

/// What the engine learns from a connection.
#[derive(Debug)]
pub(super) enum ConnEvent {
    /// Setup finished: the connection can carry a transaction.
    Ready,
    /// A transaction is over.
    Done {
        ticket: Ticket,
        report: Box<TransactionReport>,
        /// The content, handed back: from a reader it can go out again only
        /// if none of it was read ([`Body::rewind`]).
        body: Body,
        /// Why the content could not be sent (a reader failed), if so: the
        /// connection was closed without the end of the data.
        content: Option<String>,
    },
    /// The connection ended; `setup` says why if it ended before it was
    /// ready (the walk's words for it).
    Closed { setup: Option<ConnectionFailure> },
}

/// The content of the job in progress, fed to the session as it has room.
pub(super) enum Body {
    Bytes {
        data: Arc<[u8]>,
        pos: usize,
    },
    Reader {
        reader: Box<dyn Read + Send>,
        buf: Vec<u8>,
        pos: usize,
        len: usize,
        eof: bool,
    },
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes { data, pos } => write!(f, "Body::Bytes({pos}/{})", data.len()),
            Self::Reader { pos, len, eof, .. } => {
                write!(f, "Body::Reader({pos}/{len}, eof: {eof})")
            }
        }
    }
}

impl Body {
    /// Content from memory.
    pub(super) fn bytes(data: Arc<[u8]>) -> Self {
        Self::Bytes { data, pos: 0 }
    }

    /// Content from a reader.
    pub(super) fn reader(reader: Box<dyn Read + Send>) -> Self {
        Self::Reader {
            reader,
            buf: Vec::new(),
            pos: 0,
            len: 0,
            eof: false,
        }
    }

    /// The same content from its start, if it can be had again: always
    /// from memory, from a reader only if nothing was read yet.
    pub(super) fn rewind(self) -> Option<Self> {
        match self {
            Self::Bytes { data, .. } => Some(Self::bytes(data)),
            Self::Reader {
                reader,
                len: 0,
                eof: false,
                ..
            } => Some(Self::reader(reader)),
            Self::Reader { .. } => None,
        }
    }

    /// Offers content to the session until it has no room or the content
    /// ends (then the body is finished). `Ok(true)` once finished.
    fn pump(&mut self, client: &mut Client) -> Result<bool, String> {
        loop {
            // False too once the session failed: its error comes as an
            // event, and nothing more may be written.
            if !client.wants_body() {
                return Ok(false);
            }
            let piece = match self {
                Self::Bytes { data, pos } => data.get(*pos..).unwrap_or_default(),
                Self::Reader {
                    reader,
                    buf,
                    pos,
                    len,
                    eof,
                } => {
                    if *pos >= *len && !*eof {
                        buf.resize(BODY_PIECE, 0);
                        *pos = 0;
                        *len = loop {
                            match reader.read(buf) {
                                Ok(n) => break n.min(buf.len()),
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                Err(e) => return Err(format!("reading the message: {e}")),
                            }
                        };
                        *eof = *len == 0;
                    }
                    buf.get(*pos..*len).unwrap_or_default()
                }
            };
            if piece.is_empty() {
                client.finish_body().map_err(|e| e.to_string())?;
                return Ok(true);
            }
            let took = client.write_body(piece).map_err(|e| e.to_string())?;
            match self {
                Self::Bytes { pos, .. } | Self::Reader { pos, .. } => *pos += took,
            }
            if took == 0 {
                return Ok(false);
            }
        }
    }
}

/// The transaction a connection carries.
pub(super) struct Active {
    pub(super) ticket: Ticket,
    transaction: MailTransaction,
    body: Body,
    /// `ReadyForBody` seen and the body not finished yet.
    feeding: bool,
}

/// One outbound connection.
pub(super) struct Conn {
    /// The destination (relay, domain, literal) it serves.
    pub(super) dest: Destination,
    /// Where it goes and with which TLS.
    pub(super) target: Target,
    pub(super) addr: SocketAddr,
    /// The task it was opened for: offered to that one first.
    pub(super) opener: Option<usize>,
    pub(super) phase: Phase,
    /// The name the certificate must carry.
    tls_name: Option<ServerName<'static>>,
    pub(super) transport: Option<Transport<TcpStream>>,
    pub(super) client: Option<Client>,
    pub(super) active: Option<Active>,
    /// Transactions carried so far.
    pub(super) delivered: usize,
    /// What failed during setup, when the session alone cannot tell
    /// (TLS), and why the last thing failed, for the log.
    setup_failure: Option<ConnectionFailure>,
    pub(super) last_failure: Option<String>,
    /// Deadline of the TCP connect, of the idle period, of the QUIT.
    pub(super) own_deadline: Option<Instant>,
    /// The session's next deadline.
    pub(super) session_deadline: Option<Instant>,
    /// Events of the last drain, acted on after it (kept for its
    /// allocation).
    events: Vec<Event>,
}

/// Why the socket side of a drain failed; the text is what the log says.
#[derive(Debug, thiserror::Error)]
enum WireError {
    #[error("write: {0}")]
    Write(io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("no TLS server name")]
    NoName,
    #[error("transport: {0}")]
    Drive(#[from] DriveError),
}

/// The socket as the client session's [`session::Transport`].
struct Wire<'a> {
    transport: &'a mut Transport<TcpStream>,
    tls: &'a Arc<ClientConfig>,
    name: Option<&'a ServerName<'static>>,
}

impl session::Transport for Wire<'_> {
    type Error = WireError;

    fn write(&mut self, bytes: &[u8]) -> Result<usize, WireError> {
        loop {
            return match self.transport.write(bytes) {
                // A short count is not proof of a full socket — under TLS it
                // means rustls' buffer was full and has been flushed — so
                // the drain offers the rest at once; only `WouldBlock` ends
                // it, since edge-triggered readiness follows only that.
                Ok(n) => Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(WireError::Write(e)),
            };
        }
    }

    fn start_tls(&mut self) -> Result<Option<TlsInfo>, WireError> {
        let name = self.name.cloned().ok_or(WireError::NoName)?;
        self.transport
            .start_tls_client(Arc::clone(self.tls), name)
            .map_err(|e| WireError::Tls(e.to_string()))?;
        match self.transport.flush() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(WireError::Tls(e.to_string())),
            // The handshake runs on through reads and flushes.
            _ => Ok(None),
        }
    }
}

/// A TLS failure in the walk's words: a rejected certificate, or any other
/// handshake failure.
fn tls_failure(error: &io::Error) -> TlsFailure {
    let rustls = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls {
        Some(e) if is_certificate_error(e) => TlsFailure::Certificate,
        _ => TlsFailure::Handshake,
    }
}

impl Conn {
    /// A connection for `dest` to `target` at `addr`, its TCP connect
    /// started on `stream`.
    pub(super) fn new(
        dest: Destination,
        target: Target,
        addr: SocketAddr,
        opener: Option<usize>,
        stream: TcpStream,
    ) -> Self {
        let tls_name = target.server_name();
        Self {
            dest,
            target,
            addr,
            opener,
            phase: Phase::Connecting,
            tls_name,
            transport: Some(Transport::plain(stream)),
            client: None,
            active: None,
            delivered: 0,
            setup_failure: None,
            last_failure: None,
            own_deadline: None,
            session_deadline: None,
            events: Vec::new(),
        }
    }

    /// The earliest deadline of the connection.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match (self.own_deadline, self.session_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether it is still being set up.
    pub(super) fn is_coming(&self) -> bool {
        matches!(self.phase, Phase::Connecting | Phase::Setup)
    }

    /// The TCP connection is up: the session starts (its first output asks
    /// for the handshake under implicit TLS, or after STARTTLS as the
    /// session's mode says).
    pub(super) fn established(&mut self, config: smtp_proto::client::Config, now: Instant) {
        self.client = Some(Client::new(config, now));
        self.phase = Phase::Setup;
        self.own_deadline = None;
    }

    /// The TCP connection failed (refused, unreachable, timed out).
    pub(super) fn connect_failed(&mut self, why: String, out: &mut Vec<ConnEvent>) {
        self.last_failure = Some(why);
        self.setup_failure = Some(ConnectionFailure::Connect);
        self.close(out);
    }

    /// Starts a transaction on a ready connection. `rset` sends an RSET
    /// first (pipelined with MAIL), so a reused connection starts from a
    /// clean state whatever the last transaction left. On a refusal
    /// (the session will not send this message here) the body is handed
    /// back with the reason.
    pub(super) fn start(
        &mut self,
        ticket: Ticket,
        envelope: smtp_proto::client::Envelope,
        body: Body,
        rset: bool,
    ) -> Result<(), (UsageError, Body)> {
        let Some(client) = self.client.as_mut() else {
            return Err((UsageError::NotReady, body));
        };
        if rset && let Err(e) = client.enqueue(Command::Rset) {
            return Err((e, body));
        }
        let transaction = match MailTransaction::start(client, envelope) {
            Ok(t) => t,
            Err(e) => return Err((e, body)),
        };
        self.active = Some(Active {
            ticket,
            transaction,
            body,
            feeding: false,
        });
        self.phase = Phase::Busy;
        Ok(())
    }

    /// Sends QUIT when the session can, else closes.
    pub(super) fn quit(&mut self, out: &mut Vec<ConnEvent>) {
        self.phase = Phase::Quitting;
        let queued = self
            .client
            .as_mut()
            .is_some_and(|c| c.enqueue(Command::Quit).is_ok());
        if !queued {
            self.close(out);
        }
    }

    /// Closes the socket at once, reporting nothing: the engine gave up
    /// the transaction in progress (cancel) or the connection itself
    /// (shutdown, room for another destination).
    pub(super) fn abort(&mut self) {
        self.active = None;
        if let Some(t) = self.transport.as_mut() {
            t.close_notify();
        }
        self.phase = Phase::Closed;
    }

    fn close(&mut self, out: &mut Vec<ConnEvent>) {
        if self.phase == Phase::Closed {
            return;
        }
        let setup = self.is_coming().then(|| {
            self.setup_failure.take().unwrap_or_else(|| {
                ConnectionFailure::Session(
                    self.client
                        .as_ref()
                        .and_then(Client::error)
                        .cloned()
                        .unwrap_or(SessionError::ConnectionClosed {
                            partial_reply: false,
                        }),
                )
            })
        });
        if let Some(t) = self.transport.as_mut() {
            t.close_notify();
        }
        self.phase = Phase::Closed;
        out.push(ConnEvent::Closed { setup });
    }

    /// A TLS failure seen by the transport: what the walk is told, unless
    /// something was seen first.
    fn tls_failed(&mut self, why: String, kind: TlsFailure) {
        self.last_failure = Some(why);
        if self.is_coming() {
            self.setup_failure
                .get_or_insert(ConnectionFailure::Tls(kind));
        }
    }

    /// Moves bytes and time between the socket and the session until
    /// neither can make progress, reporting what happened in `out`.
    pub(super) fn drive(
        &mut self,
        now: Instant,
        scratch: &mut [u8],
        tls: &Arc<ClientConfig>,
        out: &mut Vec<ConnEvent>,
    ) {
        if matches!(self.phase, Phase::Closed | Phase::Connecting) {
            return;
        }
        loop {
            if !self.drain(now, tls, out) {
                return;
            }
            let (Some(transport), Some(client)) = (self.transport.as_mut(), self.client.as_mut())
            else {
                return;
            };
            // During a TLS handshake the session reads nothing, but the
            // transport must, to finish the handshake.
            let handshaking = transport.is_handshaking();
            if !client.wants_read() && !handshaking {
                if client.is_closed() {
                    self.close(out);
                }
                break;
            }
            match transport.read(scratch) {
                Ok(ReadOutcome::Data(n)) if n > 0 => {
                    // The client takes every byte while it reads; the
                    // transport keeps none, so a refusal would lose bytes.
                    if client.handle_input(now, scratch.get(..n).unwrap_or_default()) < n {
                        self.last_failure = Some(String::from("the session refused input"));
                        client.handle_eof(now);
                    }
                }
                Ok(ReadOutcome::TlsEstablished(info)) => {
                    if let Err(e) = client.handle_tls_established(now, info) {
                        // The session gave up on the handshake meanwhile.
                        self.last_failure = Some(format!("TLS: {e}"));
                        client.handle_eof(now);
                    }
                }
                Ok(ReadOutcome::Eof) => {
                    client.handle_eof(now);
                    if handshaking {
                        self.tls_failed(
                            String::from("TLS: connection closed during the handshake"),
                            TlsFailure::Handshake,
                        );
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    client.handle_eof(now);
                    if handshaking {
                        let kind = tls_failure(&e);
                        self.tls_failed(format!("TLS: {e}"), kind);
                    } else {
                        self.last_failure = Some(format!("read: {e}"));
                    }
                }
            }
        }
        if let Some(transport) = self.transport.as_mut()
            && let Err(e) = transport.flush()
            && e.kind() != io::ErrorKind::WouldBlock
        {
            self.last_failure = Some(format!("write: {e}"));
            if let Some(client) = self.client.as_mut() {
                client.handle_eof(now);
            }
            self.drain(now, tls, out);
        }
        self.session_deadline = self.client.as_ref().and_then(Client::next_timeout);
    }

    /// Drains the session with [`session::drive`], acts on its events and
    /// feeds the body, until nothing moves. `false` when the connection is
    /// over.
    fn drain(&mut self, now: Instant, tls: &Arc<ClientConfig>, out: &mut Vec<ConnEvent>) -> bool {
        loop {
            let Some(client) = self.client.as_mut() else {
                return false;
            };
            let mut fed = false;
            if let Some(active) = self.active.as_mut()
                && active.feeding
            {
                match active.body.pump(client) {
                    Ok(true) => {
                        active.feeding = false;
                        fed = true;
                    }
                    Ok(false) => {}
                    Err(why) => {
                        // Part of the content may be on the wire: the only
                        // safe way out is to close without the end of data,
                        // so the server discards what it has.
                        self.last_failure = Some(why.clone());
                        if let Some(active) = self.active.take() {
                            let mut transaction = active.transaction;
                            if let Some(report) = transaction.handle_event(client, &Event::Closed) {
                                out.push(ConnEvent::Done {
                                    ticket: active.ticket,
                                    report: Box::new(report),
                                    body: active.body,
                                    content: Some(why),
                                });
                            }
                        }
                        self.close(out);
                        return false;
                    }
                }
            }
            let Some(transport) = self.transport.as_mut() else {
                return false;
            };
            let mut wire = Wire {
                transport,
                tls,
                name: self.tls_name.as_ref(),
            };
            let mut events = std::mem::take(&mut self.events);
            let drained = session::drive(client, now, &mut wire, |e| events.push(e));
            let moved = !events.is_empty();
            for event in events.drain(..) {
                if !self.on_event(event, out) {
                    return false;
                }
            }
            self.events = events;
            match drained {
                Err(e) => {
                    if let WireError::Tls(why) = &e {
                        self.tls_failed(format!("TLS: {why}"), TlsFailure::Handshake);
                    } else {
                        self.last_failure = Some(e.to_string());
                    }
                    if let Some(client) = self.client.as_mut() {
                        client.handle_eof(now);
                    }
                }
                // The last drain handed out `Closed` already.
                Ok(Drained::Closed) => return true,
                Ok(_) => {
                    let feeding = self.active.as_ref().is_some_and(|a| a.feeding)
                        && self.client.as_ref().is_some_and(Client::wants_body);
                    if !moved && !fed && !feeding {
                        return true;
                    }
                }
            }
        }
    }

    /// Acts on one session event. `false` once the connection is over.
    fn on_event(&mut self, event: Event, out: &mut Vec<ConnEvent>) -> bool {
        let Some(client) = self.client.as_mut() else {
            return false;
        };
        match &event {
            Event::Ready => {
                self.phase = Phase::Idle;
                out.push(ConnEvent::Ready);
            }
            Event::ReadyForBody => {
                if let Some(active) = self.active.as_mut() {
                    active.feeding = true;
                }
            }
            Event::AuthChallenge { .. } => {
                // Only the session's built-in mechanisms are configured.
                let _ = client.auth_cancel();
            }
            Event::Error(e) => self.last_failure = Some(e.to_string()),
            _ => {}
        }
        if let Some(active) = self.active.as_mut()
            && let Some(report) = active.transaction.handle_event(client, &event)
            && let Some(active) = self.active.take()
        {
            out.push(ConnEvent::Done {
                ticket: active.ticket,
                report: Box::new(report),
                body: active.body,
                content: None,
            });
            if self.phase == Phase::Busy && !client.is_closed() && client.error().is_none() {
                self.phase = Phase::Idle;
            }
        }
        if matches!(event, Event::Closed) {
            self.close(out);
            return false;
        }
        true
    }
}

impl Body {
    /// The reader back, if none of it was read (see [`Body::rewind`]).
    pub(super) fn into_unread_reader(self) -> Option<Box<dyn Read + Send>> {
        match self.rewind() {
            Some(Self::Reader { reader, .. }) => Some(reader),
            _ => None,
        }
    }
}
