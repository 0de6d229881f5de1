//! A minimal blocking transport for [`smtp_proto::server::Server`]:
//! `std::net` sockets, one thread per connection, plaintext only.
//!
//! It exists to put the sans-IO server in front of *real* clients (Python
//! `smtplib`, `swaks`, Postfix `smtp-source`) before the mio transport
//! does, so that what they reveal is found in the core. It follows the
//! drive loop of the [`session`] docs to the letter:
//!
//! 1. read from the socket, at most [`Server::read_capacity`] bytes, and
//!    hand them to [`Server::handle_input`] (keeping what it did not take);
//! 2. drain the session with [`session::drive`] over the socket, then
//!    apply the application's answers and drain again;
//! 3. use the `Wait` deadline as the read timeout and call
//!    [`Server::handle_timeout`] when it passes.
//!
//! The application is a [`Policy`]: accept everything, except what the
//! test asks to refuse, and record every delivered message (envelope and
//! body bytes) where the test can read it.
//!
//! Everything is bounded in time: socket reads wake up at least every
//! [`TICK`] to check the stop flag, the session's own timeouts are short,
//! and dropping the [`TestServer`] stops the accept loop and every
//! connection thread.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use smtp_proto::TlsInfo;
use smtp_proto::address::Domain;
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::{EnhancedStatusCode, Reply, ReplyCode};
use smtp_proto::server::{CloseReason, Config, Event, Server};
use smtp_proto::session::{self, Drained, Transport};

/// How often a blocked thread wakes up to check whether it must stop.
pub const TICK: Duration = Duration::from_millis(50);

/// A message the server accepted: envelope and exact body bytes (after
/// dot-unstuffing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The reverse-path as sent, angle brackets included (`<>` for bounces).
    pub from: String,
    /// The accepted forward-paths, angle brackets included, in order.
    pub to: Vec<String>,
    /// Whether `MAIL` carried `SMTPUTF8`.
    pub smtputf8: bool,
    /// The content, exactly as the server handed it out.
    pub body: Vec<u8>,
    /// The user that authenticated in this session, if any.
    pub auth_user: Option<String>,
}

/// What one connection did, recorded when it ends.
#[derive(Debug, Clone)]
pub struct SessionLog {
    /// Every byte the server wrote.
    pub sent: Vec<u8>,
    /// Why the session closed; `None` if the transport gave up first.
    pub close: Option<CloseReason>,
    /// Messages delivered in this session.
    pub delivered: usize,
    /// Failed AUTH attempts.
    pub auth_failures: usize,
}

/// The scripted application. The default accepts everything and offers
/// no AUTH.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Credentials accepted for AUTH PLAIN/LOGIN; `None`: AUTH not offered.
    pub credentials: Option<(String, String)>,
    /// Recipients (the forward-path as sent, e.g. `<bad@example.net>`,
    /// compared without case) refused with `550 5.1.1`.
    pub refuse_rcpt: Vec<String>,
    /// Answer `VRFY` with `250` for this mailbox instead of `252`.
    pub vrfy_known: Option<String>,
}

/// A running test server on `127.0.0.1`. Dropping it stops the accept loop
/// and every connection thread.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    delivered: Arc<Mutex<Vec<Delivered>>>,
    sessions: Arc<Mutex<Vec<SessionLog>>>,
}

/// Locks, ignoring poisoning (a panicking test thread must not hide what
/// was recorded).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TestServer {
    /// The hostname the test server announces.
    pub const HOSTNAME: &'static str = "mx.test.example";

    /// The configuration used by [`TestServer::start`]: defaults, with
    /// short timeouts, and AUTH PLAIN/LOGIN allowed over plaintext when the
    /// policy has credentials.
    pub fn config(policy: &Policy) -> Config {
        // Invariant: a constant, valid domain.
        let mut config = Config::new(Domain::new(Self::HOSTNAME).expect("valid hostname"));
        config.timeouts.command = Duration::from_secs(10);
        config.timeouts.data = Duration::from_secs(10);
        config.timeouts.send = Duration::from_secs(10);
        if policy.credentials.is_some() {
            config.auth.mechanisms = vec![
                // Invariant: constant, valid mechanism names.
                Mechanism::new("PLAIN").expect("valid mechanism"),
                Mechanism::new("LOGIN").expect("valid mechanism"),
            ];
            config.auth.require_tls = false;
        }
        config
    }

    /// Starts a server with [`TestServer::config`].
    pub fn start(policy: Policy) -> Self {
        let config = Self::config(&policy);
        Self::start_with(config, policy)
    }

    /// Starts a server with the given configuration.
    pub fn start_with(config: Config, policy: Policy) -> Self {
        // Invariant: binding port 0 on loopback only fails if the machine
        // has no loopback interface; a test cannot run then.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let stop = Arc::clone(&stop);
            let delivered = Arc::clone(&delivered);
            let sessions = Arc::clone(&sessions);
            thread::spawn(move || {
                let mut workers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let config = config.clone();
                            let policy = policy.clone();
                            let stop = Arc::clone(&stop);
                            let delivered = Arc::clone(&delivered);
                            let sessions = Arc::clone(&sessions);
                            workers.push(thread::spawn(move || {
                                let log = serve(stream, config, policy, &stop, &delivered);
                                lock(&sessions).push(log);
                            }));
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(TICK / 5),
                        Err(_) => thread::sleep(TICK),
                    }
                    workers.retain(|w: &JoinHandle<()>| !w.is_finished());
                }
                for w in workers {
                    let _ = w.join();
                }
            })
        };
        Self {
            addr,
            stop,
            accept: Some(accept),
            delivered,
            sessions,
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Messages delivered so far, in order of completion.
    pub fn delivered(&self) -> Vec<Delivered> {
        lock(&self.delivered).clone()
    }

    /// Sessions that have ended so far.
    pub fn sessions(&self) -> Vec<SessionLog> {
        lock(&self.sessions).clone()
    }

    /// Waits until `n` sessions have ended (or `timeout` passed) and returns
    /// them.
    pub fn wait_sessions(&self, n: usize, timeout: Duration) -> Vec<SessionLog> {
        let end = Instant::now() + timeout;
        loop {
            let sessions = self.sessions();
            if sessions.len() >= n || Instant::now() >= end {
                return sessions;
            }
            thread::sleep(TICK / 5);
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// The application's answer to one event, detached from the server's
/// buffers so that the server can be borrowed again to give it.
enum Answer {
    None,
    Accept,
    /// Accept a message: once per expected reply (one per accepted
    /// recipient in LMTP, RFC 2033 §4.2).
    AcceptMessage(usize),
    Reply(Reply<'static>),
}

/// The per-connection application state.
struct App<'p> {
    policy: &'p Policy,
    current: Option<Delivered>,
    auth_user: Option<String>,
    delivered: Vec<Delivered>,
    auth_failures: usize,
    close: Option<CloseReason>,
}

fn reply(code: u16, enhanced: (u8, u16, u16), text: &'static str) -> Reply<'static> {
    // Invariant: the callers pass constant, valid codes of matching class.
    let code = ReplyCode::new(code).expect("valid reply code");
    let esc = EnhancedStatusCode::new(enhanced.0, enhanced.1, enhanced.2).expect("valid code");
    Reply::with_enhanced(code, esc, text).expect("valid reply text")
}

impl App<'_> {
    fn on_event(&mut self, event: Event<'_>) -> Answer {
        match event {
            Event::Helo { .. } => {
                self.current = None;
                Answer::None
            }
            Event::Mail { from, params } => {
                self.current = Some(Delivered {
                    from: from.to_string(),
                    to: Vec::new(),
                    smtputf8: params.smtputf8,
                    body: Vec::new(),
                    auth_user: self.auth_user.clone(),
                });
                Answer::Accept
            }
            Event::Rcpt { to, .. } => {
                let to = to_string(&to);
                if self
                    .policy
                    .refuse_rcpt
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(&to))
                {
                    return Answer::Reply(reply(550, (5, 1, 1), "No such user here"));
                }
                if let Some(current) = &mut self.current {
                    current.to.push(to);
                }
                Answer::Accept
            }
            Event::DataStart { .. } => Answer::Accept,
            Event::Body(bytes) => {
                if let Some(current) = &mut self.current {
                    current.body.extend_from_slice(bytes);
                }
                Answer::None
            }
            Event::MessageEnd { replies, .. } => {
                if let Some(message) = self.current.take() {
                    self.delivered.push(message);
                }
                Answer::AcceptMessage(replies)
            }
            Event::Reset { .. } => {
                self.current = None;
                Answer::None
            }
            Event::AuthPlain {
                authcid, password, ..
            } => self.check(authcid, password.expose()),
            Event::AuthLogin { username, password } => self.check(username, password.expose()),
            Event::Auth { .. } | Event::AuthResponse(_) => Answer::Reply(reply(
                504,
                (5, 5, 4),
                "Mechanism not supported by the test server",
            )),
            Event::Vrfy { target } => {
                let known = self
                    .policy
                    .vrfy_known
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(target.as_str()));
                if known {
                    Answer::Reply(reply(250, (2, 1, 5), "User known"))
                } else {
                    Answer::Accept
                }
            }
            Event::Expn { .. } => Answer::Reply(reply(502, (5, 5, 1), "EXPN not available")),
            Event::Closed { reason } => {
                self.close = Some(reason);
                Answer::None
            }
            _ => Answer::None,
        }
    }

    fn check(&mut self, user: &str, password: &str) -> Answer {
        match &self.policy.credentials {
            Some((u, p)) if u == user && p == password => {
                self.auth_user = Some(user.to_owned());
                Answer::Accept
            }
            _ => {
                self.auth_failures += 1;
                Answer::Reply(reply(535, (5, 7, 8), "Authentication credentials invalid"))
            }
        }
    }
}

fn to_string(path: &smtp_proto::address::ForwardPath<'_>) -> String {
    let mut out = Vec::new();
    path.encode(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The socket as the session's [`Transport`]: blocking writes (bounded by
/// the write timeout), every byte written kept for the log.
struct Socket<'a> {
    stream: &'a mut TcpStream,
    sent: &'a mut Vec<u8>,
}

impl Transport for Socket<'_> {
    type Error = std::io::Error;

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self.stream.write(bytes)? {
            // A blocking socket that takes nothing is gone.
            0 => Err(ErrorKind::WriteZero.into()),
            n => {
                self.sent
                    .extend_from_slice(bytes.get(..n).unwrap_or_default());
                Ok(n)
            }
        }
    }

    fn start_tls(&mut self) -> std::io::Result<Option<TlsInfo>> {
        // Plaintext only: STARTTLS is never configured here.
        Err(std::io::Error::other("this test server has no TLS"))
    }
}

/// Serves one connection until the session closes, the peer goes away or
/// the server is stopped.
fn serve(
    mut stream: TcpStream,
    config: Config,
    policy: Policy,
    stop: &AtomicBool,
    shared: &Mutex<Vec<Delivered>>,
) -> SessionLog {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut server = Server::new(config, Instant::now());
    let mut app = App {
        policy: &policy,
        current: None,
        auth_user: None,
        delivered: Vec::new(),
        auth_failures: 0,
        close: None,
    };
    let mut sent = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    // Bytes read but not yet taken by the server.
    let mut pending: Vec<u8> = Vec::new();
    let mut eof = false;
    let mut count = 0;
    let mut answers = Vec::new();
    loop {
        // 2. Drain until the session waits; answer after the drain.
        let mut socket = Socket {
            stream: &mut stream,
            sent: &mut sent,
        };
        let drained = session::drive(&mut server, Instant::now(), &mut socket, |event| {
            answers.push(app.on_event(event));
        });
        let answered = !answers.is_empty();
        // Invariant: the application answers only questions, and every
        // answer it gives fits the question (see `App::on_event`).
        for answer in answers.drain(..) {
            match answer {
                Answer::None => {}
                Answer::Accept => server.accept().expect("answer to a question"),
                Answer::AcceptMessage(n) => {
                    for _ in 0..n {
                        server.accept().expect("one answer per expected reply");
                    }
                }
                Answer::Reply(r) => server.reply(r).expect("answer to a question"),
            }
        }
        // Record deliveries at once so the test sees them before QUIT.
        if app.delivered.len() > count {
            lock(shared).extend(
                app.delivered
                    .get(count..)
                    .unwrap_or_default()
                    .iter()
                    .cloned(),
            );
            count = app.delivered.len();
        }
        let deadline = match drained {
            _ if answered => continue,
            Ok(Drained::Wait { deadline }) => deadline,
            // Closed, a write that failed, or TLS (never offered here).
            _ => break,
        };
        if server.is_closed() || stop.load(Ordering::Relaxed) {
            break;
        }
        // 1. Offer bytes already read first.
        if !pending.is_empty() && server.wants_read() {
            let taken = server.handle_input(Instant::now(), &pending);
            pending.drain(..taken.min(pending.len()));
            if pending.is_empty() && eof {
                server.handle_eof(Instant::now());
            }
            continue;
        }
        let now = Instant::now();
        if let Some(deadline) = deadline
            && deadline <= now
        {
            server.handle_timeout(now);
            continue;
        }
        // 3. The deadline bounds the wait.
        let wait = deadline.map_or(TICK, |d| d.saturating_duration_since(now).min(TICK));
        if eof || !server.wants_read() {
            // Nothing to read (or no room): only time can move the session.
            thread::sleep(wait.max(Duration::from_millis(1)));
            server.handle_timeout(Instant::now());
            continue;
        }
        let _ = stream.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        let cap = server.read_capacity().min(buf.len());
        let chunk = buf.get_mut(..cap).unwrap_or_default();
        match stream.read(chunk) {
            Ok(0) => {
                eof = true;
                if pending.is_empty() {
                    server.handle_eof(Instant::now());
                }
            }
            Ok(n) => {
                let data = chunk.get(..n).unwrap_or_default();
                let taken = server.handle_input(Instant::now(), data);
                pending.extend_from_slice(data.get(taken..).unwrap_or_default());
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                server.handle_timeout(Instant::now());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset connection is the end of input too: let the session
            // close itself (its writes will fail and end the loop).
            Err(_) => {
                eof = true;
                pending.clear();
                server.handle_eof(Instant::now());
            }
        }
    }
    let _ = stream.flush();
    SessionLog {
        sent,
        close: app.close,
        delivered: app.delivered.len(),
        auth_failures: app.auth_failures,
    }
}
