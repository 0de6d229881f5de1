//! One event loop: its poll, its listeners, a slab of connections, their
//! deadlines and the inbox of late answers; accepting, waking on
//! readiness, answers and deadlines, and driving the connections they
//! concern.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::timers::Deadlines;

use super::backend::{Backend, ConnectionId, ConnectionInfo};
use super::completion::{Completion, Inbox};
use super::connection::{Conn, Context, Pass};
use super::options::{ListenerKind, Shared};
use super::shutdown::Grace;
use super::tls_switch::start_session;

/// The waker's token; connection tokens are slab keys, far below.
pub(super) const WAKER: Token = Token(usize::MAX);
/// Listener `i` of a loop has token `LISTENER_BASE - i`.
const LISTENER_BASE: usize = usize::MAX - 1;
/// At most this many listeners per loop (a limit no configuration reaches),
/// so listener tokens never meet slab keys.
pub(super) const MAX_LISTENERS: usize = 1024;
/// The loop's read buffer (shared by its connections; the session holds
/// what it takes).
const READ_BUFFER: usize = 16 * 1024;

/// A loop before its thread starts.
pub(super) struct LoopSetup {
    pub(super) poll: Poll,
    pub(super) waker: Arc<Waker>,
    pub(super) listeners: Vec<(TcpListener, ListenerKind)>,
}

/// One event loop.
pub(super) struct EventLoop<B: Backend> {
    index: usize,
    poll: Poll,
    listeners: Vec<(TcpListener, ListenerKind)>,
    conns: Slab<Conn<B::Session>>,
    deadlines: Deadlines<usize>,
    inbox: Arc<Inbox>,
    /// Answers for other connections than the one being driven.
    stray: Vec<Completion>,
    /// Connections to drive again soon (read budget used up).
    ready: VecDeque<usize>,
    buf: Vec<u8>,
    backend: Arc<B>,
    shared: Arc<Shared>,
    numbers: u64,
    /// The shutdown's grace period, once it started.
    grace: Grace,
}

impl<B: Backend> EventLoop<B> {
    /// Registers the listeners with the loop's poll. Call on the loop's own
    /// thread: the inbox made here belongs to it.
    pub(super) fn new(
        index: usize,
        setup: LoopSetup,
        shared: Arc<Shared>,
        backend: Arc<B>,
    ) -> io::Result<Self> {
        let LoopSetup {
            poll,
            waker,
            mut listeners,
        } = setup;
        for (i, (listener, _)) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(listener, Token(LISTENER_BASE - i), Interest::READABLE)?;
        }
        Ok(Self {
            index,
            poll,
            listeners,
            conns: Slab::new(),
            deadlines: Deadlines::new(),
            // Created here: the inbox's owner is the loop's own thread.
            inbox: Inbox::new(Some(waker)),
            stray: Vec::new(),
            ready: VecDeque::new(),
            buf: vec![0; READ_BUFFER],
            backend,
            shared,
            numbers: 0,
            grace: Grace::default(),
        })
    }

    /// Runs until the shutdown has closed the last connection.
    pub(super) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let timeout = if self.ready.is_empty() {
                // Wake at the end of the grace period, and again when the
                // stragglers are dropped.
                match (self.deadlines.timeout(now), self.grace.timeout(now)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(t) if t > LISTENER_BASE - MAX_LISTENERS => {
                        self.accept(LISTENER_BASE - t, now);
                    }
                    Token(key) => {
                        if let Some(conn) = self.conns.get_mut(key) {
                            // Errors and hang-ups show on the next read or
                            // write, so they count as readiness.
                            conn.ready(
                                event.is_readable() || event.is_read_closed() || event.is_error(),
                                event.is_writable() || event.is_write_closed() || event.is_error(),
                            );
                            self.drive(key, now);
                        }
                    }
                }
            }
            for _ in 0..self.ready.len() {
                if let Some(key) = self.ready.pop_front() {
                    self.drive(key, now);
                }
            }
            self.deliver(now);
            while let Some(key) = self.deadlines.pop_expired(now) {
                self.expire(key, now);
            }
            if self.shared.shutdown_requested() {
                self.shutdown_step(now);
                if self.conns.is_empty() {
                    return Ok(());
                }
            }
        }
    }

    /// Accepts every pending connection of listener `i`.
    fn accept(&mut self, i: usize, now: Instant) {
        loop {
            let Some((listener, kind)) = self.listeners.get(i) else {
                return;
            };
            let kind = *kind;
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer, kind, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors or memory: try again at the next
                    // connection rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            }
        }
    }

    /// Takes in an accepted connection: limits, registration, sessions,
    /// and its first pass (the greeting).
    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr, kind: ListenerKind, now: Instant) {
        if self.grace.started() {
            // Accepted in the same wake-up as the shutdown: just close.
            return;
        }
        let guard = match self.shared.limiter.try_acquire(peer.ip()) {
            Ok(guard) => guard,
            Err(limit) => {
                tracing::info!(%peer, %limit, "connection refused");
                if kind == ListenerKind::Plain {
                    // A fresh socket's send buffer is empty: the short
                    // reply fits. Best effort either way.
                    let _ = stream.write(&self.shared.too_many);
                }
                return;
            }
        };
        // Replies leave in whole batches; Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        let local = stream
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if key > LISTENER_BASE - MAX_LISTENERS {
            return;
        }
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            tracing::warn!(error = %e, "cannot register connection");
            return;
        }
        self.numbers += 1;
        let id = ConnectionId {
            event_loop: self.index,
            number: self.numbers,
        };
        let span = tracing::info_span!("smtp", %id, %peer);
        let info = ConnectionInfo {
            id,
            peer,
            local,
            tls: None,
        };
        let implicit = kind == ListenerKind::ImplicitTls;
        let active = start_session(&*self.backend, &self.shared, &info, implicit, now);
        let conn = Conn::new(&info, stream, active, span, guard);
        tracing::debug!(parent: conn.span(), ?kind, "connected");
        entry.insert(conn);
        self.drive(key, now);
    }

    /// Fires the deadline of connection `key`.
    fn expire(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.expire(now);
        self.drive(key, now);
    }

    /// Applies every answer waiting in the inbox or set aside, and drives
    /// the connections they belong to.
    fn deliver(&mut self, now: Instant) {
        loop {
            self.inbox.drain_into(&mut self.stray);
            if self.stray.is_empty() {
                return;
            }
            let batch = std::mem::take(&mut self.stray);
            let mut touched = Vec::new();
            for completion in batch {
                let key = completion.token;
                if let Some(conn) = self.conns.get_mut(key) {
                    // `apply` checks the generation: a reused slot is
                    // another connection and ignores the answer.
                    if conn.apply(completion) {
                        touched.push(key);
                    }
                }
            }
            touched.sort_unstable();
            touched.dedup();
            for key in touched {
                self.drive(key, now);
            }
        }
    }

    /// On shutdown: stop accepting once, then close every connection that
    /// is not in the middle of something (all of them after the grace
    /// period).
    fn shutdown_step(&mut self, now: Instant) {
        if self.grace.start(now, self.shared.options.shutdown_grace) {
            for (listener, _) in &mut self.listeners {
                let _ = self.poll.registry().deregister(listener);
            }
            self.listeners.clear();
        }
        let phase = self.grace.phase(now);
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.shut_down(phase) {
                self.drive(key, now);
            }
        }
    }

    /// One pass over connection `key`; removes it when it is gone.
    fn drive(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut cx = Context {
            backend: &*self.backend,
            shared: &self.shared,
            inbox: &self.inbox,
            stray: &mut self.stray,
            buf: &mut self.buf,
        };
        match conn.drive(key, &mut cx, now) {
            Pass::Done => {
                let _ = self.poll.registry().deregister(conn.socket_mut());
                self.deadlines.remove(key);
                self.conns.remove(key);
            }
            Pass::Wait(deadline) => self.deadlines.set(key, deadline),
            Pass::Again(deadline) => {
                self.deadlines.set(key, deadline);
                self.ready.push_back(key);
            }
        }
    }
}
