//! One connection of a loop ([`Conn`]) and one pass over it
//! ([`Conn::drive`]): read, poll the session until it waits, write, apply
//! the answers given inline; then, once the session is over, the lingering
//! close.
//!
//! ## Why a pass does not use `session::drive`
//!
//! The core's generic [`session::drive`](smtp_proto::session::drive) drains
//! a session into a transport and hands its events to a callback that
//! cannot touch the session. A pass keeps its own drain for three reasons
//! that are about mio, not SMTP: it interleaves the drain with a
//! per-connection read budget and the edge-triggered readable/writable
//! flags (a short write is retried at once, a `WouldBlock` clears the flag
//! and ends the pass); a broken socket turns transmits into discarded
//! bytes so that the session still reaches its end; and a handler's
//! [`Session::tls_established`] needs the session's `tls_info()` at the
//! point of the event, in event order with the `helo` that may follow in
//! the same drain. Answers go through the [`Inbox`] and are applied after
//! the drain, exactly as `drive`'s contract says.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use smtp_proto::Output;

use crate::transport::{ReadOutcome, Transport};

use super::backend::{Backend, ConnectionId, ConnectionInfo, Session};
use super::completion::{Completion, Inbox};
use super::dispatch::{Active, Dispatched, Questions, dispatch};
use super::listener::ConnectionGuard;
use super::options::Shared;
use super::shutdown::Phase;
use super::tls_switch::{report_tls_established, tls_established};

/// Reads per connection per pass before the loop turns to the others.
pub(super) const READ_BUDGET: u32 = 16;
/// How long a finished connection may take to flush its last bytes and
/// send its FIN while the loop drains what the peer still sends (Apache's
/// "lingering close"): closing a socket with unread input makes the kernel
/// send a reset, which can destroy the final reply in flight.
const LINGER: Duration = Duration::from_secs(2);

/// One connection of a loop.
pub(super) struct Conn<S> {
    id: ConnectionId,
    peer: SocketAddr,
    local: SocketAddr,
    /// The trusted proxy the connection came through (PROXY protocol).
    proxy: Option<SocketAddr>,
    transport: Transport<TcpStream>,
    active: Active<S>,
    /// The questions put to the handler, to apply answers in order.
    questions: Questions,
    readable: bool,
    writable: bool,
    /// The peer closed its side, or reading failed: never read again.
    read_closed: bool,
    /// Writing failed: discard output so the session can reach its end.
    broken: bool,
    /// The session is over; remove the connection.
    closed: bool,
    /// The shutdown `421` was requested.
    shutdown_sent: bool,
    /// The session is over and the connection is closing (see [`LINGER`]):
    /// until when it may linger.
    linger_until: Option<Instant>,
    /// Our side of the socket was shut down (FIN sent).
    write_shut: bool,
    span: tracing::Span,
    _guard: ConnectionGuard,
}

/// What a pass borrows from its loop.
pub(super) struct Context<'a, B> {
    pub(super) backend: &'a B,
    pub(super) shared: &'a Shared,
    /// Where the responders of this loop deliver.
    pub(super) inbox: &'a Arc<Inbox>,
    /// Answers for other connections than the one being driven.
    pub(super) stray: &'a mut Vec<Completion>,
    /// The loop's read buffer.
    pub(super) buf: &'a mut [u8],
}

/// How a pass left the connection.
pub(super) enum Pass {
    /// It is gone: deregister and remove it.
    Done,
    /// Drive it again on readiness, an answer or at `deadline`.
    Wait(Option<Instant>),
    /// Its read budget is used up with input still coming: drive it again
    /// soon (and at `deadline`).
    Again(Option<Instant>),
}

/// What one poll output asks the pass to do next.
enum Step {
    Continue,
    Advance(usize),
    StartTls,
    TlsEstablished,
    Broken,
    Wait,
}

/// What [`Conn::linger`] found.
enum Linger {
    /// The connection can be dropped.
    Done,
    /// Wait for readiness or the linger deadline.
    Wait,
    /// Budget used up with input still coming: continue soon.
    Again,
}

impl<S: Session> Conn<S> {
    /// A connection just accepted, with its sessions made.
    pub(super) fn new(
        info: &ConnectionInfo,
        stream: TcpStream,
        active: Active<S>,
        span: tracing::Span,
        guard: ConnectionGuard,
    ) -> Self {
        Self {
            id: info.id,
            peer: info.peer,
            local: info.local,
            proxy: info.proxy,
            // Plaintext until the session asks for TLS: after STARTTLS, or
            // as its first output under implicit TLS.
            transport: Transport::plain(stream),
            active,
            questions: Questions::new(),
            // Optimistic: a new socket is usually writable (the greeting
            // leaves at once) and a read that finds nothing says so.
            readable: true,
            writable: true,
            read_closed: false,
            broken: false,
            closed: false,
            shutdown_sent: false,
            linger_until: None,
            write_shut: false,
            span,
            _guard: guard,
        }
    }

    /// The connection's log span.
    pub(super) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The socket, to deregister it.
    pub(super) fn socket_mut(&mut self) -> &mut TcpStream {
        self.transport.socket_mut()
    }

    /// Readiness from the loop's poll (errors and hang-ups count: they
    /// show on the next read or write).
    pub(super) fn ready(&mut self, readable: bool, writable: bool) {
        self.readable |= readable;
        self.writable |= writable;
    }

    /// Fires the connection's deadline.
    pub(super) fn expire(&mut self, now: Instant) {
        if self.linger_until.is_some_and(|d| d <= now) {
            // Lingered long enough: drop it now.
            self.broken = true;
        }
        if self.linger_until.is_none() {
            // The TLS handshake timer is the session's too.
            self.active.server.handle_timeout(now);
        }
    }

    /// Applies an answer for this connection; whether anything was
    /// applied. An answer for an earlier connection in the same slot (an
    /// older generation) is ignored.
    pub(super) fn apply(&mut self, completion: Completion) -> bool {
        if completion.generation != self.id.number {
            return false;
        }
        self.questions.apply(&mut self.active.server, completion)
    }

    /// The shutdown reached this connection in `phase`; whether it needs a
    /// pass now.
    pub(super) fn shut_down(&mut self, phase: Phase) -> bool {
        if phase == Phase::Hard {
            self.closed = true;
            self.broken = true;
            return true;
        }
        if self.shutdown_sent {
            return false;
        }
        if phase == Phase::Graceful
            && (self.questions.busy() || self.active.server.in_transaction())
        {
            return false;
        }
        // An error means the session is already closing; during a TLS
        // handshake it closes without a reply.
        let _ = self.active.server.shutdown();
        self.shutdown_sent = true;
        true
    }

    /// One pass over the connection `key` (see the
    /// [server docs](super#one-pass-over-a-connection)).
    pub(super) fn drive<B>(&mut self, key: usize, cx: &mut Context<'_, B>, now: Instant) -> Pass
    where
        B: Backend<Session = S>,
    {
        let span = self.span.clone();
        let _entered = span.enter();
        let mut budget = READ_BUDGET;
        let tls_config = cx.shared.options.tls.as_ref();
        let mut requeue = false;
        while !self.closed && self.linger_until.is_none() {
            let mut progress = false;

            // 1. Read (or run a TLS handshake).
            while self.readable && !self.read_closed {
                let handshaking = self.transport.is_handshaking();
                let capacity = if handshaking {
                    0
                } else {
                    self.active.server.read_capacity()
                };
                if capacity == 0 && !handshaking {
                    break;
                }
                if budget == 0 {
                    requeue = true;
                    break;
                }
                budget -= 1;
                let cap = capacity.min(cx.buf.len());
                match self.transport.read(&mut cx.buf[..cap]) {
                    Ok(ReadOutcome::Data(0)) => break,
                    Ok(ReadOutcome::Data(n)) => {
                        // n <= read_capacity, so the session takes all;
                        // should it ever not, the bytes cannot be kept (no
                        // buffer of our own) and the stream would lose
                        // sync: end the connection instead.
                        let taken = self.active.server.handle_input(now, &cx.buf[..n]);
                        if taken < n {
                            tracing::error!(taken, n, "session refused input it had room for");
                            self.closed = true;
                            break;
                        }
                        progress = true;
                    }
                    Ok(ReadOutcome::WouldBlock) => self.readable = false,
                    Ok(ReadOutcome::Eof) => {
                        self.read_closed = true;
                        self.active.server.handle_eof(now);
                        progress = true;
                    }
                    Ok(ReadOutcome::TlsEstablished(info)) => {
                        let connection = ConnectionInfo {
                            id: self.id,
                            peer: self.peer,
                            local: self.local,
                            tls: None,
                            proxy: self.proxy,
                        };
                        let active = &mut self.active;
                        if !tls_established(cx.backend, cx.shared, active, connection, info, now) {
                            self.closed = true;
                        }
                        progress = true;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "read failed");
                        self.read_closed = true;
                        self.active.server.handle_eof(now);
                        progress = true;
                    }
                }
            }

            // 2. Poll the session until it waits.
            {
                let active = &mut self.active;
                let generation = self.id.number;
                loop {
                    let step = match active.server.poll(now) {
                        Output::Event(event) => {
                            let inbox = cx.inbox;
                            let responder = |seq: u64| inbox.responder(key, generation, seq);
                            let (shared, client) = (cx.shared, self.peer.ip());
                            let over_rate = |kind| shared.over_rate(kind, client, now);
                            match dispatch(
                                event,
                                &mut active.handler,
                                &mut self.questions,
                                &mut self.closed,
                                responder,
                                over_rate,
                            ) {
                                Dispatched::Done => Step::Continue,
                                Dispatched::TlsEstablished => Step::TlsEstablished,
                            }
                        }
                        Output::Transmit(bytes) if self.broken => Step::Advance(bytes.len()),
                        Output::Transmit(_) if !self.writable => Step::Wait,
                        Output::Transmit(bytes) => match self.transport.write(bytes) {
                            Ok(n) => Step::Advance(n),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                self.writable = false;
                                Step::Wait
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "write failed");
                                Step::Broken
                            }
                        },
                        Output::StartTls => Step::StartTls,
                        _ => Step::Wait,
                    };
                    match step {
                        Step::Continue => {}
                        Step::Advance(0) => {
                            // Nothing taken: treat as a full socket rather
                            // than poll the same bytes again at once.
                            self.writable = false;
                            break;
                        }
                        Step::Advance(n) => {
                            // n is at most what was offered.
                            let _ = active.server.advance_transmit(now, n);
                        }
                        Step::StartTls => {
                            let started = tls_config.ok_or(()).and_then(|c| {
                                self.transport.start_tls(Arc::clone(c)).map_err(|_| ())
                            });
                            if started.is_err() {
                                tracing::warn!("STARTTLS without a usable TLS configuration");
                                self.closed = true;
                                break;
                            }
                            progress = true;
                            // The handshake runs in the read step.
                            self.readable = true;
                            break;
                        }
                        Step::TlsEstablished => report_tls_established(active),
                        Step::Broken => {
                            self.broken = true;
                            self.read_closed = true;
                            active.server.handle_eof(now);
                        }
                        Step::Wait => break,
                    }
                    if self.closed {
                        break;
                    }
                }
            }
            // Answers given inside the callbacks: apply ours now (the
            // session is waiting for them), keep the others for the loop.
            cx.inbox.drain_into(cx.stray);
            let mut i = 0;
            while i < cx.stray.len() {
                if cx.stray[i].token == key {
                    let completion = cx.stray.swap_remove(i);
                    if self.apply(completion) {
                        progress = true;
                    }
                } else {
                    i += 1;
                }
            }

            // 3. Flush TLS records (handshake, alerts, encrypted replies).
            if self.transport.wants_write() && self.writable && !self.broken {
                match self.transport.flush() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                    Err(e) => {
                        tracing::debug!(error = %e, "write failed");
                        self.broken = true;
                        self.read_closed = true;
                        self.active.server.handle_eof(now);
                        progress = true;
                    }
                }
            }
            if !progress || requeue {
                break;
            }
        }
        if self.closed || self.active.server.is_closed() {
            if self.linger_until.is_none() {
                self.transport.close_notify();
                self.linger_until = Some(now + LINGER);
            }
            return match self.linger(cx.buf) {
                Linger::Done => {
                    tracing::debug!("closed");
                    Pass::Done
                }
                Linger::Wait => Pass::Wait(self.linger_until),
                Linger::Again => Pass::Again(self.linger_until),
            };
        }
        let deadline = self.active.server.next_timeout();
        if requeue {
            Pass::Again(deadline)
        } else {
            Pass::Wait(deadline)
        }
    }

    /// One step of closing a finished connection: flush what TLS still
    /// holds, send our FIN, then read and discard until the peer's FIN, so
    /// the close never turns into a reset that destroys the last reply.
    fn linger(&mut self, buf: &mut [u8]) -> Linger {
        if self.broken {
            return Linger::Done;
        }
        if self.transport.wants_write() {
            if !self.writable {
                return Linger::Wait;
            }
            match self.transport.flush() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    return Linger::Wait;
                }
                Err(_) => return Linger::Done,
            }
        }
        if !self.write_shut {
            self.write_shut = true;
            if self
                .transport
                .socket()
                .shutdown(std::net::Shutdown::Write)
                .is_err()
            {
                return Linger::Done;
            }
        }
        if self.read_closed {
            // The peer's FIN was read already: nothing is left unread.
            return Linger::Done;
        }
        for _ in 0..READ_BUDGET {
            match self.transport.socket_mut().read(buf) {
                Ok(0) => return Linger::Done,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Linger::Wait;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Linger::Done,
            }
        }
        Linger::Again
    }
}
