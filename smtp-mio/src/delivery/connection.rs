//! One outbound connection: a socket, the TLS layer, the sans-IO client
//! session, and the job it is carrying.
//!
//! Like the server's loop, this part takes no protocol decision: it moves
//! bytes between [`Transport`] and [`Client`], obeys the session's outputs
//! (write this, start TLS now, wait until then) and reports what happened to
//! the engine as [`ConnEvent`]s. Which host to dial next, which job to
//! carry and when to QUIT are the engine's business.
//!
//! The draining is the core's generic [`session::drive`] over the socket
//! (a full socket ends a drain, the TLS handshake runs on in the transport
//! and is reported when a read completes it); the events it collects are
//! acted on after each drain, and the body is fed in between, until
//! nothing moves. Under implicit TLS the session's first output asks for
//! the handshake, exactly as after STARTTLS.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use smtp_proto::client::{
    Client, Error as SessionError, Event, MailTransaction, ReplyTo, TransactionReport,
};
use smtp_proto::command::Command;
use smtp_proto::mx::{HostName, HostPlan};
use smtp_proto::reply::Reply;
use smtp_proto::session::{self, Drained};
use smtp_proto::{DriveError, TlsInfo};

use super::engine::TaskId;
use super::job::{Failure, Peer};
use crate::transport::{ReadOutcome, Transport};

/// How many bytes of message content are read from a reader at a time.
pub(super) const BODY_PIECE: usize = 64 * 1024;

/// Where a connection goes next when an attempt fails.
#[derive(Debug)]
pub(super) enum Dial {
    /// A fixed list (the relay's addresses, an address literal), in order.
    Addresses {
        name: String,
        addrs: Arc<[SocketAddr]>,
        next: usize,
    },
    /// The MX plan of the destination: hosts in preference order, each
    /// host's addresses, looked up when the cursor reaches them.
    Mx { plan: HostPlan, port: u16 },
}

/// What a connection is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
    /// Between attempts: the engine is to pick the next target.
    Dialing,
    /// Waiting for the addresses of an MX host.
    Resolving(HostName),
    /// TCP connect in progress.
    Connecting,
    /// Greeting, EHLO, STARTTLS, AUTH.
    Setup,
    /// Ready, no job.
    Idle,
    /// Carrying a job.
    Busy,
    /// QUIT sent (or about to be).
    Quitting,
    /// Over; the engine removes it.
    Closed,
}

/// What the engine learns from a connection.
#[derive(Debug)]
pub(super) enum ConnEvent {
    /// Setup finished: the connection can carry a job.
    Ready,
    /// The job's transaction is over.
    TaskDone {
        task: TaskId,
        report: Box<TransactionReport>,
        failure: Option<Failure>,
        /// The content, handed back: a transaction that got no reply at
        /// all never sent any of it, so it can go out again.
        body: Body,
    },
    /// The connection ended.
    Closed {
        /// Whether it ended before setup finished (so the next host or
        /// address should be tried), and whether the host answered with a
        /// reply (a 4xx/5xx moves to the next host, not address).
        during_setup: bool,
        replied: bool,
    },
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
    fn pump(&mut self, client: &mut Client) -> Result<bool, Failure> {
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
                                Err(e) => return Err(Failure::Content(e.to_string())),
                            }
                        };
                        *eof = *len == 0;
                    }
                    buf.get(*pos..*len).unwrap_or_default()
                }
            };
            if piece.is_empty() {
                client.finish_body().map_err(Failure::Message)?;
                return Ok(true);
            }
            let took = client.write_body(piece).map_err(Failure::Message)?;
            match self {
                Self::Bytes { pos, .. } | Self::Reader { pos, .. } => *pos += took,
            }
            if took == 0 {
                return Ok(false);
            }
        }
    }
}

/// The job a connection carries.
pub(super) struct Active {
    pub(super) task: TaskId,
    transaction: MailTransaction,
    body: Body,
    /// `ReadyForBody` seen and the body not finished yet.
    feeding: bool,
}

/// One outbound connection.
pub(super) struct Conn {
    /// The destination (relay or domain) it serves.
    pub(super) dest: String,
    pub(super) dial: Dial,
    pub(super) phase: Phase,
    /// The host being talked to.
    pub(super) peer: Option<Peer>,
    /// The name the certificate must carry.
    pub(super) tls_name: Option<ServerName<'static>>,
    pub(super) transport: Option<Transport<TcpStream>>,
    pub(super) client: Option<Client>,
    pub(super) active: Option<Active>,
    /// Messages carried so far.
    pub(super) delivered: usize,
    /// Why the last attempt failed.
    pub(super) last_failure: Option<String>,
    /// A reply seen during setup (a refusal moves to the next host).
    pub(super) setup_replied: bool,
    /// Deadline of the TCP connect, of the idle period, of the QUIT.
    pub(super) own_deadline: Option<Instant>,
    /// The session's next deadline.
    pub(super) session_deadline: Option<Instant>,
    /// Opened for one task that hosts of this destination deferred: it
    /// skips those hosts and carries that task first.
    pub(super) for_task: Option<TaskId>,
    /// Host names this connection must not connect to.
    pub(super) avoid: Vec<String>,
    /// Events of the last drain, acted on after it (kept for its
    /// allocation).
    events: Vec<Event>,
}

/// Why the socket side of a drain failed; the text is what the failure
/// report says.
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

impl Conn {
    /// A connection for `dest` that has not dialed yet.
    pub(super) fn new(dest: String, dial: Dial) -> Self {
        Self {
            dest,
            dial,
            phase: Phase::Dialing,
            peer: None,
            tls_name: None,
            transport: None,
            client: None,
            active: None,
            delivered: 0,
            last_failure: None,
            setup_replied: false,
            own_deadline: None,
            session_deadline: None,
            for_task: None,
            avoid: Vec::new(),
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

    /// Whether it can still be handed a job soon (setting up or idle).
    pub(super) fn is_coming(&self) -> bool {
        matches!(
            self.phase,
            Phase::Dialing | Phase::Resolving(_) | Phase::Connecting | Phase::Setup
        )
    }

    /// Starts carrying a job on a ready connection. `rset` sends an RSET
    /// first (pipelined with MAIL), so a reused connection starts from a
    /// clean state whatever the last transaction left.
    pub(super) fn start(
        &mut self,
        task: TaskId,
        envelope: smtp_proto::client::Envelope,
        body: Body,
        rset: bool,
    ) -> Result<(), Failure> {
        let Some(client) = self.client.as_mut() else {
            return Err(Failure::Connection(String::from("not connected")));
        };
        if rset {
            client.enqueue(Command::Rset).map_err(Failure::Message)?;
        }
        let transaction = MailTransaction::start(client, envelope).map_err(Failure::Message)?;
        self.active = Some(Active {
            task,
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

    /// Closes the socket at once; the job in progress (if any) is reported
    /// with what is known and `failure`.
    pub(super) fn abort(&mut self, failure: Failure, out: &mut Vec<ConnEvent>) {
        if let (Some(active), Some(client)) = (self.active.take(), self.client.as_mut()) {
            let mut transaction = active.transaction;
            if let Some(report) = transaction.handle_event(client, &Event::Closed) {
                out.push(ConnEvent::TaskDone {
                    task: active.task,
                    report: Box::new(report),
                    failure: Some(failure),
                    body: active.body,
                });
            }
        }
        self.close(out);
    }

    fn close(&mut self, out: &mut Vec<ConnEvent>) {
        if self.phase == Phase::Closed {
            return;
        }
        let during_setup = self.is_coming();
        if let Some(t) = self.transport.as_mut() {
            t.close_notify();
        }
        self.phase = Phase::Closed;
        out.push(ConnEvent::Closed {
            during_setup,
            replied: self.setup_replied,
        });
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
        if self.phase == Phase::Closed {
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
            if !client.wants_read() && !transport.is_handshaking() {
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
                Ok(ReadOutcome::Eof) => client.handle_eof(now),
                Ok(_) => break,
                Err(e) => {
                    self.last_failure = Some(format!("read: {e}"));
                    client.handle_eof(now);
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
                    Err(failure) => {
                        // Part of the content may be on the wire: the only
                        // safe way out is to close without the end of data,
                        // so the server discards what it has.
                        self.last_failure = Some(failure.to_string());
                        self.abort(failure, out);
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
                    self.last_failure = Some(e.to_string());
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
        let in_setup = self.is_coming();
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
            Event::Reply { to, reply }
                if in_setup && !reply.is_positive() && *to != ReplyTo::Quit =>
            {
                self.setup_replied = true;
                self.last_failure = Some(describe(reply));
            }
            Event::Error(e)
                if self.last_failure.is_none()
                    || !matches!(e, SessionError::ConnectionClosed { .. }) =>
            {
                self.last_failure = Some(e.to_string());
            }
            _ => {}
        }
        if let Some(active) = self.active.as_mut()
            && let Some(report) = active.transaction.handle_event(client, &event)
            && let Some(active) = self.active.take()
        {
            let failure = report.error.clone().map(Failure::Session);
            out.push(ConnEvent::TaskDone {
                task: active.task,
                report: Box::new(report),
                failure,
                body: active.body,
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

/// A reply in one line, for failure reports.
fn describe(reply: &Reply<'_>) -> String {
    format!("{} {}", reply.code(), reply.first_line())
}
