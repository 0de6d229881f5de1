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
use super::proxy::{Peeked, ProxyWait};
use super::shutdown::Grace;
use super::tls_switch::start_session;
use smtp_proto::server::RateKind;

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
/// Connections waiting for their PROXY header have tokens from here up
/// (their slab key added), far above connection keys and below listeners.
const PROXY_BASE: usize = 1 << (usize::BITS - 2);

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
    /// Connections from trusted proxies waiting for their PROXY header.
    proxies: Slab<ProxyWait>,
    /// Deadlines of connections (by key) and of PROXY waits (by token).
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
    /// Accepting is paused: descriptors ran out (see [`AcceptPause`]).
    pause: AcceptPause,
}

/// Backing off when `accept` fails for lack of descriptors or memory
/// (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`).
///
/// The connection that could not be accepted stays in the listen queue,
/// so the listener stays readable: retrying at once would spin, and with
/// edge-triggered readiness, simply giving up until the next connection
/// would strand the ones queued. Instead the loop stops polling its
/// listeners for a while (10 ms, doubling up to 1 s while the shortage
/// lasts), keeps serving its open connections — whose closing frees
/// descriptors — and then tries again. One warning starts an episode, one
/// line ends it (Go's `net/http` and nginx's `accept_mutex_delay` back off
/// the same way).
#[derive(Debug, Default)]
struct AcceptPause {
    /// When to try again; `None` while accepting.
    until: Option<Instant>,
    /// The next pause's length.
    delay: Duration,
    /// Failed accepts in this episode (0: no episode).
    failures: u64,
}

/// The first pause of an episode.
const PAUSE_MIN: Duration = Duration::from_millis(10);
/// The longest pause.
const PAUSE_MAX: Duration = Duration::from_secs(1);

/// Whether `accept` failed for lack of descriptors or memory, a shortage
/// that waiting may end.
fn out_of_resources(e: &io::Error) -> bool {
    // EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 on Linux; the
    // standard library names none of them as a kind.
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12)) || e.kind() == io::ErrorKind::OutOfMemory
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
            proxies: Slab::new(),
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
            pause: AcceptPause::default(),
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
                let pause = self.pause.until.map(|u| u.saturating_duration_since(now));
                [self.deadlines.timeout(now), self.grace.timeout(now), pause]
                    .into_iter()
                    .flatten()
                    .min()
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
                    Token(t) if t >= PROXY_BASE => self.proxy_ready(t - PROXY_BASE, now),
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
            if self.pause.until.is_some_and(|u| u <= now) {
                self.resume_accepting(now);
            }
            if self.shared.shutdown_requested() {
                self.shutdown_step(now);
                if self.conns.is_empty() && self.proxies.is_empty() {
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
                Ok((stream, peer)) => {
                    self.accepting_again();
                    self.admit(stream, peer, kind, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if out_of_resources(&e) => {
                    self.pause_accepting(&e, now);
                    return;
                }
                Err(e) => {
                    // Anything else concerns that one connection (the
                    // peer reset it while queued, ...): go on with the
                    // rest.
                    tracing::debug!(error = %e, "accept failed");
                }
            }
        }
    }

    /// Stops polling the listeners for a while: descriptors ran out.
    fn pause_accepting(&mut self, e: &io::Error, now: Instant) {
        if self.pause.failures == 0 {
            tracing::warn!(
                error = %e,
                open = self.conns.len(),
                "accept failed: out of descriptors or memory; pausing accepts and serving open connections"
            );
            self.pause.delay = PAUSE_MIN;
        }
        self.pause.failures += 1;
        if self.pause.until.is_none() {
            for (listener, _) in &mut self.listeners {
                let _ = self.poll.registry().deregister(listener);
            }
        }
        self.pause.until = Some(now + self.pause.delay);
        self.pause.delay = (self.pause.delay * 2).min(PAUSE_MAX);
    }

    /// The pause is over: poll the listeners again and accept what waits.
    fn resume_accepting(&mut self, now: Instant) {
        self.pause.until = None;
        for (i, (listener, _)) in self.listeners.iter_mut().enumerate() {
            let _ = self.poll.registry().register(
                listener,
                Token(LISTENER_BASE - i),
                Interest::READABLE,
            );
        }
        for i in 0..self.listeners.len() {
            self.accept(i, now);
            if self.pause.until.is_some() {
                // Still short: paused again.
                return;
            }
        }
    }

    /// An accept succeeded: a shortage episode, if any, is over.
    fn accepting_again(&mut self) {
        if self.pause.failures > 0 {
            tracing::info!(
                failures = self.pause.failures,
                "accepting connections again"
            );
            self.pause = AcceptPause::default();
        }
    }

    /// Takes in an accepted connection: straight to its session, or, under
    /// the PROXY protocol, to wait for its header (trusted sources only).
    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr, kind: ListenerKind, now: Instant) {
        if self.grace.started() {
            // Accepted in the same wake-up as the shutdown: just close.
            return;
        }
        let trusted = &self.shared.options.proxy_protocol;
        if trusted.is_empty() {
            self.establish(stream, peer, None, None, kind, now);
            return;
        }
        if !trusted.iter().any(|net| net.contains(peer.ip())) {
            // Closed without a greeting: only a trusted proxy may speak
            // first, and its header decides who the client is.
            tracing::info!(%peer, "connection refused: not a trusted PROXY protocol source");
            return;
        }
        if self.proxies.len() >= self.shared.options.limits.total {
            tracing::info!(%peer, "connection refused: too many waiting for a PROXY header");
            return;
        }
        let entry = self.proxies.vacant_entry();
        let token = PROXY_BASE + entry.key();
        if token > LISTENER_BASE - MAX_LISTENERS {
            return;
        }
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(token), Interest::READABLE)
        {
            tracing::warn!(error = %e, "cannot register connection");
            return;
        }
        let deadline = now + self.shared.options.proxy_timeout;
        entry.insert(ProxyWait {
            stream,
            proxy: peer,
            kind,
            deadline,
        });
        self.deadlines.set(token, Some(deadline));
        // The header may be there already.
        self.proxy_ready(token - PROXY_BASE, now);
    }

    /// Looks for the PROXY header of waiting connection `key`.
    fn proxy_ready(&mut self, key: usize, now: Instant) {
        let Some(wait) = self.proxies.get_mut(key) else {
            return;
        };
        let found = wait.peek(&mut self.buf);
        let proxied = match found {
            Peeked::Wait => return,
            Peeked::Refuse(why) => {
                tracing::info!(proxy = %wait.proxy, %why, "PROXY protocol header refused");
                self.drop_proxy_wait(key);
                return;
            }
            Peeked::Header(proxied) => proxied,
        };
        self.deadlines.remove(PROXY_BASE + key);
        let mut wait = self.proxies.remove(key);
        let proxy = wait.proxy;
        let _ = self.poll.registry().deregister(&mut wait.stream);
        let (peer, local) = match proxied {
            Some((client, destination)) => (client, Some(destination)),
            // LOCAL / UNKNOWN: the real endpoints.
            None => (proxy, None),
        };
        self.establish(wait.stream, peer, local, Some(proxy), wait.kind, now);
    }

    /// Closes waiting connection `key` without a word.
    fn drop_proxy_wait(&mut self, key: usize) {
        self.deadlines.remove(PROXY_BASE + key);
        if self.proxies.contains(key) {
            let mut wait = self.proxies.remove(key);
            let _ = self.poll.registry().deregister(&mut wait.stream);
        }
    }

    /// Takes in a connection whose client is known: limits, registration,
    /// sessions, and its first pass (the greeting). `local` and `proxy`
    /// come from a PROXY header.
    fn establish(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        local: Option<SocketAddr>,
        proxy: Option<SocketAddr>,
        kind: ListenerKind,
        now: Instant,
    ) {
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
        if let Some(refusal) = self.shared.over_rate(RateKind::Connections, peer.ip(), now) {
            if kind == ListenerKind::Plain {
                // Instead of the greeting; best effort, as above.
                let mut bytes = Vec::new();
                refusal.encode(&mut bytes);
                let _ = stream.write(&bytes);
            }
            return;
        }
        // Replies leave in whole batches; Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        let local = local.unwrap_or_else(|| {
            stream
                .local_addr()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
        });
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
        let span = match proxy {
            Some(proxy) => tracing::info_span!("smtp", %id, %peer, %proxy),
            None => tracing::info_span!("smtp", %id, %peer),
        };
        let info = ConnectionInfo {
            id,
            peer,
            local,
            tls: None,
            proxy,
        };
        let implicit = kind == ListenerKind::ImplicitTls;
        let active = start_session(&*self.backend, &self.shared, &info, implicit, now);
        let conn = Conn::new(&info, stream, active, span, guard);
        tracing::debug!(parent: conn.span(), ?kind, "connected");
        entry.insert(conn);
        self.drive(key, now);
    }

    /// Fires the deadline of connection `key` (or of PROXY wait
    /// `key - PROXY_BASE`: its header is late).
    fn expire(&mut self, key: usize, now: Instant) {
        if let Some(wait_key) = key.checked_sub(PROXY_BASE) {
            if let Some(wait) = self.proxies.get(wait_key)
                && wait.deadline <= now
            {
                tracing::info!(proxy = %wait.proxy, "PROXY protocol header timed out");
                self.drop_proxy_wait(wait_key);
            }
            return;
        }
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
            self.pause = AcceptPause::default();
            for (listener, _) in &mut self.listeners {
                let _ = self.poll.registry().deregister(listener);
            }
            self.listeners.clear();
            // Nothing was said on these yet: just close them.
            let waiting: Vec<usize> = self.proxies.iter().map(|(key, _)| key).collect();
            for key in waiting {
                self.drop_proxy_wait(key);
            }
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
