//! The SMTP server: N mio event loops driving `smtp_proto` server sessions.
//!
//! Each loop runs on its own thread with its own handles of the listeners
//! (one socket per address, bound exclusively, see [`listener`]),
//! a slab of connections, a [`Deadlines`] set and an [`Inbox`] for late
//! answers. A connection never leaves its loop, so nothing per-connection is
//! shared or locked.
//!
//! ## One pass over a connection
//!
//! Sockets are registered once for both readiness kinds, edge-triggered; the
//! loop remembers for each connection whether its socket is still readable
//! and writable (until a read or write hits `WouldBlock`). A pass over a
//! connection:
//!
//! 1. reads while the socket is readable and the session wants input
//!    (`Server::read_capacity`, so every byte read goes into the session —
//!    the transport keeps none), or while a TLS handshake is running;
//! 2. polls the session until it waits: events go to the [`Session`]
//!    callbacks, transmits go to the socket (`advance_transmit` with what
//!    it took), `StartTls` switches the transport;
//! 3. applies answers given inline by the callbacks, and goes round again
//!    while anything moved.
//!
//! Reading and writing happen in the same pass, so a client that pipelines
//! a large batch without reading its replies cannot deadlock the server:
//! when the session's reply buffer is full it stops taking input, the loop
//! stops reading, and TCP flow control pushes back on the client. No
//! reregistration is needed for that: edge-triggered readiness plus the
//! two flags say everything a changed interest set would. A connection that
//! keeps the socket readable gets a bounded number of reads per pass and is
//! then queued behind the others, so one fast sender cannot starve a loop.
//!
//! ## TLS
//!
//! STARTTLS and implicit TLS take one path: the session's
//! `Output::StartTls` switches the transport to TLS, the handshake runs in
//! the read step, and its end is reported with `handle_tls_established`.
//! An implicit-TLS listener configures its sessions with
//! [`TlsMode::Implicit`], so that request is their first output and the
//! session's own handshake timer bounds it. The application's [`Session`]
//! of such a connection is made once the handshake is done, so that
//! [`Backend::connect`] sees the TLS parameters; a refusal then becomes
//! the greeting of a fresh session, which asks for the handshake again and
//! is told at once that it is done.
//!
//! ## Why this loop does not use `session::drive`
//!
//! The core's generic [`session::drive`](smtp_proto::session::drive) drains
//! a session into a transport and hands its events to a callback that
//! cannot touch the session. This loop keeps its own drain for three
//! reasons that are about mio, not SMTP: a pass interleaves the drain with
//! a per-connection read budget and the edge-triggered readable/writable
//! flags (a short write is retried at once, a `WouldBlock` clears the flag
//! and ends the pass); a broken socket turns transmits into discarded
//! bytes so that the session still reaches its end; and a handler's
//! [`Session::tls_established`] needs the session's `tls_info()` at the
//! point of the event, in event order with the `helo` that may follow in
//! the same drain. Answers go through the [`Inbox`] and are applied after
//! the drain, exactly as `drive`'s contract says.
//!
//! ## Time
//!
//! After each pass the connection's next deadline (the session's timers,
//! the TLS handshake's included) goes into the loop's [`Deadlines`]; the
//! loop sleeps until the earliest one and fires only the expired ones.
//!
//! ## Shutdown
//!
//! [`ShutdownHandle::shutdown`] (Ctrl-C in the example) makes every loop stop
//! accepting, close idle connections with `421 4.3.2`, and let connections
//! inside a message (or waiting for a handler's answer) finish until
//! [`Options::shutdown_grace`] has passed; the rest then get their `421`.
//! The loops return when their last connection is gone.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use smtp_proto::server::{self as proto, Event, UsageError};
use smtp_proto::{Output, TlsInfo, TlsMode};

use crate::timers::Deadlines;
use crate::transport::{ReadOutcome, Transport};

pub mod backend;
pub mod completion;
pub mod listener;
pub mod maildir;
pub mod store;
pub mod trace;

pub use backend::{Backend, ConnectionId, ConnectionInfo, Session};
pub use completion::Responder;

use backend::local_error;
use completion::{Answer, Completion, Inbox};
use listener::{ConnectionGuard, ConnectionLimiter, ConnectionLimits, ListenerSet};

/// The waker's token; connection tokens are slab keys, far below.
const WAKER: Token = Token(usize::MAX);
/// Listener `i` of a loop has token `LISTENER_BASE - i`.
const LISTENER_BASE: usize = usize::MAX - 1;
/// At most this many listeners per loop (a limit no configuration reaches),
/// so listener tokens never meet slab keys.
const MAX_LISTENERS: usize = 1024;
/// Reads per connection per pass before the loop turns to the others.
const READ_BUDGET: u32 = 16;
/// The loop's read buffer (shared by its connections; the session holds
/// what it takes).
const READ_BUFFER: usize = 16 * 1024;
/// After the grace period, how long connections get to take their `421`
/// before they are dropped.
const HARD_CLOSE_AFTER_GRACE: Duration = Duration::from_secs(5);
/// How long a finished connection may take to flush its last bytes and
/// send its FIN while the loop drains what the peer still sends (Apache's
/// "lingering close"): closing a socket with unread input makes the kernel
/// send a reset, which can destroy the final reply in flight.
const LINGER: Duration = Duration::from_secs(2);

/// How the server listens and what each session enforces.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The configuration of every session (hostname, extensions, limits,
    /// timeouts, TLS and AUTH policy).
    pub session: proto::Config,
    /// Listeners whose sessions follow `session.tls`: STARTTLS not offered,
    /// offered, or required ([`TlsMode::Required`]: `530` to mail before
    /// it), or implicit TLS.
    pub listen: Vec<SocketAddr>,
    /// Implicit-TLS listeners (RFC 8314 §3.3, port 465): their sessions
    /// run with [`TlsMode::Implicit`] whatever `session.tls` says.
    pub tls_listen: Vec<SocketAddr>,
    /// The TLS configuration, required for any TLS mode but
    /// [`TlsMode::Disabled`] and for implicit-TLS listeners.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Event loops (threads). Default: one per available core.
    pub threads: usize,
    /// Connection limits (`421` beyond them).
    pub limits: ConnectionLimits,
    /// How long a shutdown waits for messages in progress. Default 30 s:
    /// long enough for a large message on a slow link to finish, short
    /// enough for a service manager's stop timeout (systemd's is 90 s).
    pub shutdown_grace: Duration,
}

impl Options {
    /// Options with `session` and every other field at its default (no
    /// listener yet).
    pub fn new(session: proto::Config) -> Self {
        Self {
            session,
            listen: Vec::new(),
            tls_listen: Vec::new(),
            tls: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            limits: ConnectionLimits::default(),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What the loops share.
#[derive(Debug)]
struct Shared {
    options: Options,
    limiter: ConnectionLimiter,
    shutdown: AtomicBool,
    /// `421 4.7.0 <host> Too many connections` for refused connections.
    too_many: Vec<u8>,
}

/// Which kind of listener accepted a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListenerKind {
    Plain,
    ImplicitTls,
}

/// A loop before its thread starts.
struct LoopSetup {
    poll: Poll,
    waker: Arc<Waker>,
    listeners: Vec<(TcpListener, ListenerKind)>,
}

/// A bound server, ready to run.
pub struct Server<B: Backend> {
    shared: Arc<Shared>,
    backend: Arc<B>,
    loops: Vec<LoopSetup>,
    addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
}

impl<B: Backend> std::fmt::Debug for Server<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addrs", &self.addrs)
            .field("tls_addrs", &self.tls_addrs)
            .field("loops", &self.loops.len())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Server<B> {
    /// Binds every listener (so address errors show before any thread
    /// starts) and prepares the loops.
    pub fn bind(options: Options, backend: B) -> io::Result<Self> {
        let invalid = |msg: &str| io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned());
        if options.tls.is_none() {
            if !options.tls_listen.is_empty() {
                return Err(invalid("implicit-TLS listeners need a TLS configuration"));
            }
            if options.session.tls != TlsMode::Disabled {
                return Err(invalid("STARTTLS needs a TLS configuration"));
            }
        }
        if options.listen.is_empty() && options.tls_listen.is_empty() {
            return Err(invalid("no listen address"));
        }
        if options.listen.len() + options.tls_listen.len() > MAX_LISTENERS {
            return Err(invalid("too many listen addresses"));
        }
        let threads = options.threads.max(1);
        let mut loops = Vec::with_capacity(threads);
        for _ in 0..threads {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            loops.push(LoopSetup {
                poll,
                waker,
                listeners: Vec::new(),
            });
        }
        let mut addrs = Vec::new();
        let mut tls_addrs = Vec::new();
        let plain = options.listen.iter().map(|a| (a, ListenerKind::Plain));
        let tls = options
            .tls_listen
            .iter()
            .map(|a| (a, ListenerKind::ImplicitTls));
        for (addr, kind) in plain.chain(tls) {
            let set = ListenerSet::bind(*addr, threads)?;
            match kind {
                ListenerKind::Plain => addrs.push(set.local_addr()),
                ListenerKind::ImplicitTls => tls_addrs.push(set.local_addr()),
            }
            for (setup, listener) in loops.iter_mut().zip(set.into_mio()) {
                setup.listeners.push((listener, kind));
            }
        }
        let too_many = format!(
            "421 4.7.0 {} Too many connections, try again later\r\n",
            options.session.hostname
        )
        .into_bytes();
        let limiter = ConnectionLimiter::new(options.limits);
        Ok(Self {
            shared: Arc::new(Shared {
                options,
                limiter,
                shutdown: AtomicBool::new(false),
                too_many,
            }),
            backend: Arc::new(backend),
            loops,
            addrs,
            tls_addrs,
        })
    }

    /// The plaintext listeners' addresses (with the ports chosen for port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The implicit-TLS listeners' addresses.
    pub fn tls_local_addrs(&self) -> &[SocketAddr] {
        &self.tls_addrs
    }

    /// The connection counters (for monitoring).
    pub fn limiter(&self) -> &ConnectionLimiter {
        &self.shared.limiter
    }

    /// A handle that stops the server gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: Arc::clone(&self.shared),
            wakers: self.loops.iter().map(|l| Arc::clone(&l.waker)).collect(),
        }
    }

    /// Starts one thread per loop.
    pub fn spawn(self) -> io::Result<Running> {
        let handle = self.shutdown_handle();
        let mut threads = Vec::with_capacity(self.loops.len());
        for (index, setup) in self.loops.into_iter().enumerate() {
            let shared = Arc::clone(&self.shared);
            let backend = Arc::clone(&self.backend);
            let thread = std::thread::Builder::new()
                .name(format!("smtp-loop-{index}"))
                .spawn(move || EventLoop::new(index, setup, shared, backend)?.run())?;
            threads.push(thread);
        }
        Ok(Running { handle, threads })
    }

    /// Runs the server until it is shut down.
    pub fn run(self) -> io::Result<()> {
        self.spawn()?.join()
    }
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    handle: ShutdownHandle,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

impl Running {
    /// A handle that stops the server gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Waits for every loop to finish (after a shutdown); the first loop
    /// error, if any.
    pub fn join(self) -> io::Result<()> {
        let mut result = Ok(());
        for thread in self.threads {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("event loop panicked")));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }

    /// Shuts the server down and waits for it.
    pub fn shutdown(self) -> io::Result<()> {
        self.handle.shutdown();
        self.join()
    }
}

/// Stops a server gracefully from any thread (see the module docs).
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
    wakers: Vec<Arc<Waker>>,
}

impl ShutdownHandle {
    /// Starts the graceful shutdown; returns at once.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        for waker in &self.wakers {
            // A loop that is gone needs no wake-up.
            let _ = waker.wake();
        }
    }

    /// Whether a shutdown was requested.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.load(Ordering::SeqCst)
    }
}

/// A session with its application handler.
struct Active<S> {
    server: proto::Server,
    handler: Handler<S>,
}

/// The application's side of a connection.
enum Handler<S> {
    /// Implicit TLS before the handshake: the [`Session`] is made when it
    /// is done, so that [`Backend::connect`] sees the TLS parameters.
    AwaitingTls,
    /// The backend refused the connection: the session only sends the
    /// refusal and serves `QUIT`.
    Refused,
    /// The application's session. `tls_reported`: it was made after an
    /// implicit-TLS handshake, whose parameters its connect already had,
    /// so the session's `TlsEstablished` is not reported again.
    Ready { session: S, tls_reported: bool },
}

impl<S> Handler<S> {
    fn session(&mut self) -> Option<&mut S> {
        match self {
            Self::Ready { session, .. } => Some(session),
            _ => None,
        }
    }
}

/// One connection of a loop.
struct Conn<S> {
    id: ConnectionId,
    peer: SocketAddr,
    local: SocketAddr,
    transport: Transport<TcpStream>,
    active: Active<S>,
    readable: bool,
    writable: bool,
    /// The peer closed its side, or reading failed: never read again.
    read_closed: bool,
    /// Writing failed: discard output so the session can reach its end.
    broken: bool,
    /// Where the connection is with a message (graceful shutdown waits
    /// for one in progress).
    message: MessageState,
    /// Questions asked and answers applied, to apply answers in order.
    questions: u64,
    answered: u64,
    /// Answers that arrived before an earlier one.
    early: Vec<(u64, Answer)>,
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

impl<S> Conn<S> {
    fn open_questions(&self) -> bool {
        self.answered < self.questions
    }
}

/// One event loop.
struct EventLoop<B: Backend> {
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
    /// Set once the shutdown started: when the grace period ends.
    grace_deadline: Option<Instant>,
}

impl<B: Backend> EventLoop<B> {
    fn new(
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
            grace_deadline: None,
        })
    }

    fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let timeout = if self.ready.is_empty() {
                // Wake at the end of the grace period, and again when the
                // stragglers are dropped.
                let grace = self.grace_deadline.map(|d| {
                    let next = if d > now {
                        d
                    } else {
                        d + HARD_CLOSE_AFTER_GRACE
                    };
                    next.saturating_duration_since(now)
                });
                match (self.deadlines.timeout(now), grace) {
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
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                conn.readable = true;
                            }
                            if event.is_writable() || event.is_write_closed() || event.is_error() {
                                conn.writable = true;
                            }
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
            if self.shared.shutdown.load(Ordering::SeqCst) {
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

    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr, kind: ListenerKind, now: Instant) {
        if self.grace_deadline.is_some() {
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
        let conn = Conn {
            id,
            peer,
            local,
            // Plaintext until the session asks for TLS: after STARTTLS, or
            // as its first output under implicit TLS.
            transport: Transport::plain(stream),
            active,
            // Optimistic: a new socket is usually writable (the greeting
            // leaves at once) and a read that finds nothing says so.
            readable: true,
            writable: true,
            read_closed: false,
            broken: false,
            message: MessageState::Idle,
            questions: 0,
            answered: 0,
            early: Vec::new(),
            closed: false,
            shutdown_sent: false,
            linger_until: None,
            write_shut: false,
            span,
            _guard: guard,
        };
        tracing::debug!(parent: &conn.span, ?kind, "connected");
        entry.insert(conn);
        self.drive(key, now);
    }

    /// Fires the deadline of connection `key`.
    fn expire(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.linger_until.is_some_and(|d| d <= now) {
            // Lingered long enough: drop it now.
            conn.broken = true;
        }
        if conn.linger_until.is_none() {
            // The TLS handshake timer is the session's too.
            conn.active.server.handle_timeout(now);
        }
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
                    if apply(conn, completion) {
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
        if self.grace_deadline.is_none() {
            for (listener, _) in &mut self.listeners {
                let _ = self.poll.registry().deregister(listener);
            }
            self.listeners.clear();
            self.grace_deadline = Some(now + self.shared.options.shutdown_grace);
        }
        let forced = self.grace_deadline.is_some_and(|d| d <= now);
        // A peer that does not even take its 421 is not waited for.
        let hard = self
            .grace_deadline
            .is_some_and(|d| d + HARD_CLOSE_AFTER_GRACE <= now);
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if hard {
                conn.closed = true;
                conn.broken = true;
                self.drive(key, now);
                continue;
            }
            if conn.shutdown_sent {
                continue;
            }
            let busy = conn.message != MessageState::Idle || conn.open_questions();
            if !forced && busy {
                continue;
            }
            // An error means the session is already closing; during a TLS
            // handshake it closes without a reply.
            let _ = conn.active.server.shutdown();
            conn.shutdown_sent = true;
            self.drive(key, now);
        }
    }

    /// One pass over connection `key` (see the module docs); removes it
    /// when its session is over.
    fn drive(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let span = conn.span.clone();
        let _entered = span.enter();
        let mut budget = READ_BUDGET;
        let tls_config = self.shared.options.tls.as_ref();
        let mut requeue = false;
        while !conn.closed && conn.linger_until.is_none() {
            let mut progress = false;

            // 1. Read (or run a TLS handshake).
            while conn.readable && !conn.read_closed {
                let handshaking = conn.transport.is_handshaking();
                let capacity = if handshaking {
                    0
                } else {
                    conn.active.server.read_capacity()
                };
                if capacity == 0 && !handshaking {
                    break;
                }
                if budget == 0 {
                    requeue = true;
                    break;
                }
                budget -= 1;
                let cap = capacity.min(self.buf.len());
                match conn.transport.read(&mut self.buf[..cap]) {
                    Ok(ReadOutcome::Data(0)) => break,
                    Ok(ReadOutcome::Data(n)) => {
                        // n <= read_capacity, so the session takes all;
                        // should it ever not, the bytes cannot be kept (no
                        // buffer of our own) and the stream would lose
                        // sync: end the connection instead.
                        let taken = conn.active.server.handle_input(now, &self.buf[..n]);
                        if taken < n {
                            tracing::error!(taken, n, "session refused input it had room for");
                            conn.closed = true;
                            break;
                        }
                        progress = true;
                    }
                    Ok(ReadOutcome::WouldBlock) => conn.readable = false,
                    Ok(ReadOutcome::Eof) => {
                        conn.read_closed = true;
                        conn.active.server.handle_eof(now);
                        progress = true;
                    }
                    Ok(ReadOutcome::TlsEstablished(info)) => {
                        tls_established(&*self.backend, &self.shared, conn, info, now);
                        progress = true;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "read failed");
                        conn.read_closed = true;
                        conn.active.server.handle_eof(now);
                        progress = true;
                    }
                }
            }

            // 2. Poll the session until it waits.
            {
                let active = &mut conn.active;
                loop {
                    let step = match active.server.poll(now) {
                        Output::Event(event) => {
                            let responder =
                                |seq: u64| self.inbox.responder(key, conn.id.number, seq);
                            dispatch(
                                event,
                                &mut active.handler,
                                &mut conn.questions,
                                &mut conn.message,
                                &mut conn.closed,
                                responder,
                            )
                        }
                        Output::Transmit(bytes) if conn.broken => Step::Advance(bytes.len()),
                        Output::Transmit(_) if !conn.writable => Step::Wait,
                        Output::Transmit(bytes) => match conn.transport.write(bytes) {
                            Ok(n) => Step::Advance(n),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                conn.writable = false;
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
                            conn.writable = false;
                            break;
                        }
                        Step::Advance(n) => {
                            // n is at most what was offered.
                            let _ = active.server.advance_transmit(now, n);
                        }
                        Step::StartTls => {
                            let started = tls_config.ok_or(()).and_then(|c| {
                                conn.transport.start_tls(Arc::clone(c)).map_err(|_| ())
                            });
                            if started.is_err() {
                                tracing::warn!("STARTTLS without a usable TLS configuration");
                                conn.closed = true;
                                break;
                            }
                            progress = true;
                            // The handshake runs in the read step.
                            conn.readable = true;
                            break;
                        }
                        Step::TlsEstablished => {
                            if let (
                                Handler::Ready {
                                    session,
                                    tls_reported,
                                },
                                Some(info),
                            ) = (&mut active.handler, active.server.tls_info())
                            {
                                if *tls_reported {
                                    *tls_reported = false;
                                } else {
                                    session.tls_established(info);
                                }
                            }
                        }
                        Step::Broken => {
                            conn.broken = true;
                            conn.read_closed = true;
                            active.server.handle_eof(now);
                        }
                        Step::Wait => break,
                    }
                    if conn.closed {
                        break;
                    }
                }
            }
            // Answers given inside the callbacks: apply ours now (the
            // session is waiting for them), keep the others for the loop.
            self.inbox.drain_into(&mut self.stray);
            let mut i = 0;
            while i < self.stray.len() {
                if self.stray[i].token == key {
                    let completion = self.stray.swap_remove(i);
                    if apply(conn, completion) {
                        progress = true;
                    }
                } else {
                    i += 1;
                }
            }

            // 3. Flush TLS records (handshake, alerts, encrypted replies).
            if conn.transport.wants_write() && conn.writable && !conn.broken {
                match conn.transport.flush() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.writable = false,
                    Err(e) => {
                        tracing::debug!(error = %e, "write failed");
                        conn.broken = true;
                        conn.read_closed = true;
                        conn.active.server.handle_eof(now);
                        progress = true;
                    }
                }
            }
            if !progress || requeue {
                break;
            }
        }
        if conn.closed || conn.active.server.is_closed() {
            if conn.linger_until.is_none() {
                conn.transport.close_notify();
                conn.linger_until = Some(now + LINGER);
            }
            match linger(conn, &mut self.buf) {
                Linger::Done => {
                    let _ = self.poll.registry().deregister(conn.transport.socket_mut());
                    tracing::debug!("closed");
                    self.deadlines.remove(key);
                    self.conns.remove(key);
                }
                Linger::Wait => self.deadlines.set(key, conn.linger_until),
                Linger::Again => {
                    self.deadlines.set(key, conn.linger_until);
                    self.ready.push_back(key);
                }
            }
            return;
        }
        self.deadlines.set(key, conn.active.server.next_timeout());
        if requeue {
            self.ready.push_back(key);
        }
    }
}

/// What [`linger`] found.
enum Linger {
    /// The connection can be dropped.
    Done,
    /// Wait for readiness or the linger deadline.
    Wait,
    /// Budget used up with input still coming: continue soon.
    Again,
}

/// One step of closing a finished connection: flush what TLS still holds,
/// send our FIN, then read and discard until the peer's FIN, so the close
/// never turns into a reset that destroys the last reply.
fn linger<S>(conn: &mut Conn<S>, buf: &mut [u8]) -> Linger {
    if conn.broken {
        return Linger::Done;
    }
    if conn.transport.wants_write() {
        if !conn.writable {
            return Linger::Wait;
        }
        match conn.transport.flush() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.writable = false;
                return Linger::Wait;
            }
            Err(_) => return Linger::Done,
        }
    }
    if !conn.write_shut {
        conn.write_shut = true;
        if conn
            .transport
            .socket()
            .shutdown(std::net::Shutdown::Write)
            .is_err()
        {
            return Linger::Done;
        }
    }
    if conn.read_closed {
        // The peer's FIN was read already: nothing is left unread.
        return Linger::Done;
    }
    for _ in 0..READ_BUDGET {
        match conn.transport.socket_mut().read(buf) {
            Ok(0) => return Linger::Done,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.readable = false;
                return Linger::Wait;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Linger::Done,
        }
    }
    Linger::Again
}

/// Where a connection is with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageState {
    /// No message in progress.
    Idle,
    /// DATA/BDAT was asked as question number `n`; no answer yet.
    Asked(u64),
    /// The body is being received (or its end is being answered).
    Receiving,
}

/// What one poll output asks the loop to do next.
enum Step {
    Continue,
    Advance(usize),
    StartTls,
    TlsEstablished,
    Broken,
    Wait,
}

/// Creates the protocol session of a new connection, and its application
/// session unless it waits for an implicit-TLS handshake.
fn start_session<B: Backend>(
    backend: &B,
    shared: &Shared,
    info: &ConnectionInfo,
    implicit: bool,
    now: Instant,
) -> Active<B::Session> {
    let mut config = shared.options.session.clone();
    if implicit {
        config.tls = TlsMode::Implicit;
    }
    if config.tls == TlsMode::Implicit {
        return Active {
            server: proto::Server::new(config, now),
            handler: Handler::AwaitingTls,
        };
    }
    let handler = match backend.connect(info) {
        Ok(session) => Handler::Ready {
            session,
            tls_reported: false,
        },
        Err(reply) => {
            config.greeting = Some(reply);
            Handler::Refused
        }
    };
    Active {
        server: proto::Server::new(config, now),
        handler,
    }
}

/// A TLS handshake completed: tell the session, and make the application's
/// session of an implicit-TLS connection.
fn tls_established<B: Backend>(
    backend: &B,
    shared: &Shared,
    conn: &mut Conn<B::Session>,
    info: TlsInfo,
    now: Instant,
) {
    tracing::debug!(protocol = ?info.protocol, cipher = ?info.cipher, "TLS established");
    if matches!(conn.active.handler, Handler::AwaitingTls) {
        let connection = ConnectionInfo {
            id: conn.id,
            peer: conn.peer,
            local: conn.local,
            tls: Some(info.clone()),
        };
        match backend.connect(&connection) {
            Ok(session) => {
                conn.active.handler = Handler::Ready {
                    session,
                    tls_reported: true,
                };
            }
            Err(reply) => {
                // The refusal is the greeting, which the session queues
                // after the handshake: a fresh implicit-TLS session with it,
                // whose handshake request is answered at once.
                let mut config = shared.options.session.clone();
                config.tls = TlsMode::Implicit;
                config.greeting = Some(reply);
                let mut server = proto::Server::new(config, now);
                if !matches!(server.poll(now), Output::StartTls) {
                    conn.closed = true;
                    return;
                }
                conn.active = Active {
                    server,
                    handler: Handler::Refused,
                };
            }
        }
    }
    if conn
        .active
        .server
        .handle_tls_established(now, info)
        .is_err()
    {
        // A handshake the session did not ask for cannot happen (or the
        // session gave up on it meanwhile): end the connection rather than
        // guess.
        conn.closed = true;
    }
}

/// Hands one session event to the application.
fn dispatch<S: Session>(
    event: Event<'_>,
    handler: &mut Handler<S>,
    questions: &mut u64,
    message: &mut MessageState,
    closed: &mut bool,
    responder: impl Fn(u64) -> Responder,
) -> Step {
    let next = |asked: &mut u64| {
        let r = responder(*asked);
        *asked += 1;
        r
    };
    let Some(session) = handler.session() else {
        // A refused connection asks nothing (nor does one before its
        // implicit-TLS handshake); answer anything all the same.
        if event.needs_answer() {
            next(questions).reply(local_error());
        }
        if let Event::Closed { reason } = event {
            tracing::debug!(?reason, "session closed");
            *closed = true;
        }
        return Step::Continue;
    };
    match event {
        Event::Helo { kind, host } => session.helo(kind, &host),
        Event::Mail { from, params } => session.mail(&from, &params, next(questions)),
        Event::Rcpt { to, params } => session.rcpt(&to, &params, next(questions)),
        Event::DataStart { mode } => {
            *message = MessageState::Asked(*questions);
            session.data_start(mode, next(questions));
        }
        Event::Body(chunk) => session.data(chunk),
        Event::MessageEnd { size, replies } => {
            *message = MessageState::Idle;
            let answers = (0..replies.max(1)).map(|_| next(questions)).collect();
            session.data_end(size, answers);
        }
        Event::Reset { reason } => {
            *message = MessageState::Idle;
            session.reset(reason);
        }
        Event::Auth {
            mechanism,
            initial_response,
        } => session.auth(&mechanism, initial_response, next(questions)),
        Event::AuthResponse(response) => session.auth_response(response, next(questions)),
        Event::AuthPlain {
            authzid,
            authcid,
            password,
        } => session.auth_plain(authzid, authcid, password, next(questions)),
        Event::AuthLogin { username, password } => {
            session.auth_login(username, password, next(questions))
        }
        Event::Vrfy { target } => session.vrfy(&target, next(questions)),
        Event::Expn { list } => session.expn(&list, next(questions)),
        Event::TlsEstablished => return Step::TlsEstablished,
        Event::Closed { reason } => {
            *message = MessageState::Idle;
            tracing::debug!(?reason, "session closed");
            session.closed(reason);
            *closed = true;
        }
        other => {
            if other.needs_answer() {
                next(questions).reply(local_error());
            }
        }
    }
    Step::Continue
}

/// Applies an answer to its connection, in question order; whether anything
/// was applied.
fn apply<S>(conn: &mut Conn<S>, completion: Completion) -> bool {
    if completion.generation != conn.id.number || completion.seq < conn.answered {
        return false;
    }
    if completion.seq > conn.answered {
        conn.early.push((completion.seq, completion.answer));
        return false;
    }
    let active = &mut conn.active;
    let mut next = Some(completion.answer);
    while let Some(given) = next.take() {
        if conn.message == MessageState::Asked(conn.answered) {
            // The answer to DATA/BDAT: the message comes, or it does not.
            let accepted = match &given {
                Answer::Accept => true,
                Answer::Reply(reply) => reply.code().is_positive(),
                _ => false,
            };
            conn.message = if accepted {
                MessageState::Receiving
            } else {
                MessageState::Idle
            };
        }
        answer(&mut active.server, given);
        conn.answered += 1;
        if let Some(pos) = conn.early.iter().position(|(seq, _)| *seq == conn.answered) {
            next = Some(conn.early.swap_remove(pos).1);
        }
    }
    true
}

/// Gives one answer to the protocol session.
fn answer(server: &mut proto::Server, answer: Answer) {
    let result = match answer {
        Answer::Accept => server.accept(),
        Answer::Reply(reply) => server.reply(reply),
        Answer::AuthChallenge(challenge) => server.auth_challenge(&challenge),
        Answer::AuthSuccess => server.auth_success(),
        Answer::Abandoned => {
            tracing::warn!("a handler dropped its responder; answering 451");
            server.reply(local_error())
        }
    };
    match result {
        Ok(()) | Err(UsageError::NothingToAnswer | UsageError::Closed) => {}
        Err(e) => {
            // The handler's answer does not fit the question (a wrong reply
            // code): the client still gets an answer, a temporary failure.
            tracing::warn!(error = %e, "handler answer refused; answering 451");
            let _ = server.reply(local_error());
        }
    }
}
