//! The std-net test server: the core's [`Server`] over `std::net` (or Unix)
//! sockets, one thread per connection, with STARTTLS or implicit TLS,
//! AUTH PLAIN/LOGIN, LMTP, and a record of everything it accepted.
//!
//! It puts the sans-IO server in front of real clients — Python `smtplib`,
//! `swaks`, Postfix `smtp-source`, and the workspace's own transports — so
//! that what they reveal is found in the core, and it gives the clients'
//! tests a server whose every byte is the core's. It follows the drive loop
//! of the [`session`] docs to the letter:
//!
//! 1. read from the socket, at most [`Server::read_capacity`] bytes, and
//!    hand them to [`Server::handle_input`] (keeping what it did not take);
//! 2. drain the session with [`session::drive`] over the socket — which
//!    writes the replies and runs the TLS handshake the session asks for,
//!    with the core's rustls glue ([`smtp_proto::tls`]) — then apply the
//!    application's answers and drain again;
//! 3. use the `Wait` deadline as the read timeout and call
//!    [`Server::handle_timeout`] when it passes.
//!
//! The application is [`Options`]: accept everything, except what the test
//! asks to refuse, and record every delivered message (envelope, body bytes,
//! AUTH user, TLS) and every ended session ([`SessionLog`]) where the test
//! can read or wait for it.
//!
//! Everything is bounded in time: reads block until input, the session's
//! next deadline (its timeouts are short) or the end; dropping the
//! [`TestServer`] cuts every connection and joins every thread.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use smtp_proto::address::{Domain, ForwardPath};
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::{EnhancedStatusCode, Reply, ReplyCode};
use smtp_proto::server::{CloseReason, Config, Event, Server};
use smtp_proto::session::{self, Drained, Transport};
use smtp_proto::tls::rustls::{ServerConfig, ServerConnection, StreamOwned};
use smtp_proto::tls::server_info;
use smtp_proto::{InjectionPolicy, Protocol, TlsInfo, TlsMode};

use crate::net::{AcceptLoop, Listener, Socket};
use crate::pki::accept_tls;
use crate::sync::Signal;

/// The session timeouts of [`TestServer::config`]: long enough for a
/// loaded machine, short enough to end a stuck test.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Whether the message came over TLS.
    pub tls: bool,
}

/// What one connection did, recorded when it ends.
#[derive(Debug, Clone)]
pub struct SessionLog {
    /// Every byte the server wrote (before encryption).
    pub sent: Vec<u8>,
    /// Why the session closed; `None` if the transport gave up first.
    pub close: Option<CloseReason>,
    /// Messages delivered in this session.
    pub delivered: usize,
    /// Failed AUTH attempts.
    pub auth_failures: usize,
}

/// What the server does. The default accepts everything in plaintext SMTP
/// and offers no AUTH.
#[derive(Clone, Default)]
pub struct Options {
    /// Offer TLS with this configuration: STARTTLS, or implicit TLS with
    /// [`implicit_tls`](Self::implicit_tls).
    pub tls: Option<Arc<ServerConfig>>,
    /// TLS from the first byte (port 465 style) instead of STARTTLS; needs
    /// [`tls`](Self::tls).
    pub implicit_tls: bool,
    /// Credentials accepted for AUTH PLAIN/LOGIN; `None`: AUTH not offered.
    /// Offered only over TLS when [`tls`](Self::tls) is set, over
    /// plaintext too otherwise.
    pub credentials: Option<(String, String)>,
    /// LMTP instead of SMTP.
    pub lmtp: bool,
    /// A greeting instead of the `220` (e.g. `(421, "busy")` to refuse).
    pub greeting: Option<(u16, &'static str)>,
    /// Recipients (the forward-path as sent, e.g. `<bad@example.net>`,
    /// compared without case) refused with `550 5.1.1`.
    pub refuse_rcpt: Vec<String>,
    /// Answer `VRFY` with `250` for this mailbox instead of `252`.
    pub vrfy_known: Option<String>,
    /// Don't offer CHUNKING (the core offers it by default).
    pub no_chunking: bool,
    /// Don't offer PIPELINING.
    pub no_pipelining: bool,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of test output.
        f.debug_struct("Options")
            .field("tls", &self.tls.is_some())
            .field("implicit_tls", &self.implicit_tls)
            .field("credentials", &self.credentials.as_ref().map(|(u, _)| u))
            .field("lmtp", &self.lmtp)
            .field("greeting", &self.greeting)
            .field("refuse_rcpt", &self.refuse_rcpt)
            .field("vrfy_known", &self.vrfy_known)
            .field("no_chunking", &self.no_chunking)
            .field("no_pipelining", &self.no_pipelining)
            .finish()
    }
}

/// What all connections of one server share.
#[derive(Debug, Default)]
struct Shared {
    /// Connections accepted so far.
    connections: Signal<usize>,
    delivered: Signal<Vec<Delivered>>,
    sessions: Signal<Vec<SessionLog>>,
}

/// A running test server on `127.0.0.1` (or a Unix socket). Dropping it
/// cuts every connection and joins every thread.
#[derive(Debug)]
pub struct TestServer {
    addr: Option<SocketAddr>,
    path: Option<PathBuf>,
    shared: Arc<Shared>,
    /// Last: stopped (and joined) when the server is dropped.
    _accept: AcceptLoop,
}

impl TestServer {
    /// The hostname the test server announces.
    pub const HOSTNAME: &'static str = "mx.test.example";

    /// The session configuration [`start`](Self::start) uses for `options`:
    /// the defaults with [`SESSION_TIMEOUT`]s, and what the options say
    /// about TLS, AUTH, LMTP, the greeting and the extensions offered.
    pub fn config(options: &Options) -> Config {
        // Invariant: constant, valid names, codes and texts.
        let mut config = Config::new(Domain::new(Self::HOSTNAME).expect("valid hostname"));
        config.timeouts.command = SESSION_TIMEOUT;
        config.timeouts.data = SESSION_TIMEOUT;
        config.timeouts.send = SESSION_TIMEOUT;
        if options.lmtp {
            config.protocol = Protocol::Lmtp;
        }
        if let Some((code, text)) = options.greeting {
            let code = ReplyCode::new(code).expect("valid greeting code");
            config.greeting = Some(Reply::new(code, text).expect("valid greeting text"));
        }
        if options.tls.is_some() {
            // Implicit TLS: the session asks for the handshake first.
            config.tls = if options.implicit_tls {
                TlsMode::Implicit
            } else {
                TlsMode::Opportunistic
            };
            config.on_injection = InjectionPolicy::default();
        }
        if options.no_chunking {
            config.offer.chunking = false;
        }
        if options.no_pipelining {
            config.offer.pipelining = false;
        }
        if options.credentials.is_some() {
            config.auth.mechanisms = vec![Mechanism::PLAIN, Mechanism::LOGIN];
            config.auth.require_tls = options.tls.is_some();
        }
        config
    }

    /// Starts a server on `127.0.0.1` with [`config`](Self::config).
    pub fn start(options: Options) -> Self {
        let config = Self::config(&options);
        Self::start_with(config, options)
    }

    /// Starts a server on `127.0.0.1` with the given session configuration
    /// (e.g. [`config`](Self::config) with a limit changed).
    pub fn start_with(config: Config, options: Options) -> Self {
        // Invariant: binding port 0 on loopback only fails if the machine
        // has no loopback interface; a test cannot run then.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        Self::serve_on(listener, config, options)
    }

    /// Starts a server on `listener` (e.g. one of
    /// [`same_port_listeners`](crate::net::same_port_listeners)), with
    /// [`config`](Self::config).
    pub fn start_on(listener: TcpListener, options: Options) -> Self {
        let config = Self::config(&options);
        Self::serve_on(listener, config, options)
    }

    fn serve_on(listener: TcpListener, config: Config, options: Options) -> Self {
        let addr = listener.local_addr().expect("a bound listener");
        let mut server = Self::spawn(Listener::Tcp(listener), config, options);
        server.addr = Some(addr);
        server
    }

    /// Starts a server on a Unix socket at `path` (an old file there is
    /// removed first), with [`config`](Self::config). The socket file
    /// belongs to the server: leave it alone, dropping the server removes
    /// it.
    pub fn start_unix(options: Options, path: PathBuf) -> Self {
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind the Unix socket");
        let config = Self::config(&options);
        let mut server = Self::spawn(Listener::Unix(listener, path.clone()), config, options);
        server.path = Some(path);
        server
    }

    fn spawn(listener: Listener, config: Config, options: Options) -> Self {
        let shared = Arc::new(Shared::default());
        let accept = {
            let shared = Arc::clone(&shared);
            AcceptLoop::spawn(listener, move |socket| {
                shared.connections.update(|n| *n += 1);
                let log = serve(socket, config.clone(), &options, &shared);
                shared.sessions.update(|s| s.push(log));
            })
            .expect("an accept loop")
        };
        Self {
            addr: None,
            path: None,
            shared,
            _accept: accept,
        }
    }

    /// The listening address.
    ///
    /// # Panics
    ///
    /// On a server listening on a Unix socket.
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("a TCP server")
    }

    /// The listening port.
    ///
    /// # Panics
    ///
    /// On a server listening on a Unix socket.
    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// The socket path of a server started with
    /// [`start_unix`](Self::start_unix).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Connections accepted so far (running or ended).
    pub fn connections(&self) -> usize {
        self.shared.connections.read(|n| *n)
    }

    /// Messages delivered so far, in order of completion.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.shared.delivered.read(Vec::clone)
    }

    /// Sessions that have ended so far.
    pub fn sessions(&self) -> Vec<SessionLog> {
        self.shared.sessions.read(Vec::clone)
    }

    /// Waits until `n` sessions have ended (or `timeout` passed) and returns
    /// the sessions that ended.
    pub fn wait_sessions(&self, n: usize, timeout: Duration) -> Vec<SessionLog> {
        self.shared
            .sessions
            .wait_for(timeout, |s| (s.len() >= n).then(|| s.clone()))
            .unwrap_or_else(|| self.sessions())
    }
}

/// The application's answer to one event, detached from the server's
/// buffers so that the server can be borrowed again to give it.
enum Answer {
    Accept,
    /// Accept a message: once per expected reply (one per accepted
    /// recipient in LMTP, RFC 2033 §4.2).
    AcceptMessage(usize),
    Reply(Reply<'static>),
}

/// The per-connection application state.
struct App<'a> {
    options: &'a Options,
    shared: &'a Shared,
    tls: bool,
    current: Option<Delivered>,
    auth_user: Option<String>,
    delivered: usize,
    auth_failures: usize,
}

fn reply(code: u16, enhanced: (u8, u16, u16), text: &'static str) -> Reply<'static> {
    // Invariant: the callers pass constant, valid codes of matching class.
    let code = ReplyCode::new(code).expect("valid reply code");
    let esc = EnhancedStatusCode::new(enhanced.0, enhanced.1, enhanced.2).expect("valid code");
    Reply::with_enhanced(code, esc, text).expect("valid reply text")
}

fn path_string(path: &ForwardPath<'_>) -> String {
    let mut out = Vec::new();
    path.encode(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

impl App<'_> {
    /// The answer to `event`, if it asks a question.
    fn on_event(&mut self, event: Event<'_>) -> Option<Answer> {
        match event {
            Event::TlsEstablished => {
                self.tls = true;
                None
            }
            Event::Helo { .. } | Event::Reset { .. } => {
                self.current = None;
                None
            }
            Event::Mail { from, params } => {
                self.current = Some(Delivered {
                    from: from.to_string(),
                    to: Vec::new(),
                    smtputf8: params.smtputf8,
                    body: Vec::new(),
                    auth_user: self.auth_user.clone(),
                    tls: self.tls,
                });
                Some(Answer::Accept)
            }
            Event::Rcpt { to, .. } => {
                let to = path_string(&to);
                let refused = self.options.refuse_rcpt.iter();
                if refused.clone().any(|r| r.eq_ignore_ascii_case(&to)) {
                    return Some(Answer::Reply(reply(550, (5, 1, 1), "No such user here")));
                }
                if let Some(current) = &mut self.current {
                    current.to.push(to);
                }
                Some(Answer::Accept)
            }
            Event::DataStart { .. } => Some(Answer::Accept),
            Event::Body(bytes) => {
                if let Some(current) = &mut self.current {
                    current.body.extend_from_slice(bytes);
                }
                None
            }
            Event::MessageEnd { replies, .. } => {
                if let Some(message) = self.current.take() {
                    // At once, so that the test sees it before QUIT.
                    self.shared.delivered.update(|d| d.push(message));
                    self.delivered += 1;
                }
                Some(Answer::AcceptMessage(replies))
            }
            Event::AuthPlain {
                authcid, password, ..
            } => Some(self.check(authcid, password.expose())),
            Event::AuthLogin { username, password } => {
                Some(self.check(username, password.expose()))
            }
            Event::Auth { .. } | Event::AuthResponse(_) => Some(Answer::Reply(reply(
                504,
                (5, 5, 4),
                "Mechanism not supported by the test server",
            ))),
            Event::Vrfy { target } => {
                let known = self
                    .options
                    .vrfy_known
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(target.as_str()));
                Some(if known {
                    Answer::Reply(reply(250, (2, 1, 5), "User known"))
                } else {
                    Answer::Accept
                })
            }
            Event::Expn { .. } => Some(Answer::Reply(reply(502, (5, 5, 1), "EXPN not available"))),
            _ => None,
        }
    }

    fn check(&mut self, user: &str, password: &str) -> Answer {
        match &self.options.credentials {
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

/// A connection: plaintext TCP, TLS over TCP, or a Unix socket.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    Unix(UnixStream),
    /// A handshake failed half-way: nothing more can be said.
    Gone,
}

impl Conn {
    fn set_read_timeout(&self, timeout: Option<Duration>) {
        let _ = match self {
            Self::Plain(s) => s.set_read_timeout(timeout),
            Self::Tls(s) => s.sock.set_read_timeout(timeout),
            Self::Unix(s) => s.set_read_timeout(timeout),
            Self::Gone => Ok(()),
        };
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
            Self::Unix(s) => s.read(buf),
            Self::Gone => Ok(0),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => s.write_all(data),
            Self::Tls(s) => {
                s.write_all(data)?;
                s.flush()
            }
            Self::Unix(s) => s.write_all(data),
            Self::Gone => Err(ErrorKind::NotConnected.into()),
        }
    }
}

/// The connection as the session's [`Transport`]: blocking writes (bounded
/// by the write timeout), every byte written kept for the log, and the TLS
/// handshake when the session asks for it.
struct Wire<'a> {
    conn: &'a mut Conn,
    tls: Option<&'a Arc<ServerConfig>>,
    sent: &'a mut Vec<u8>,
}

impl Transport for Wire<'_> {
    type Error = std::io::Error;

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.conn.write_all(bytes)?;
        self.sent.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn start_tls(&mut self) -> std::io::Result<Option<TlsInfo>> {
        let Some(tls) = self.tls else {
            return Err(std::io::Error::other("this test server has no TLS"));
        };
        let Conn::Plain(tcp) = std::mem::replace(self.conn, Conn::Gone) else {
            return Err(std::io::Error::other("TLS over TLS or a Unix socket"));
        };
        let stream = accept_tls(tcp, tls)?;
        let info = server_info(&stream.conn);
        *self.conn = Conn::Tls(Box::new(stream));
        Ok(Some(info))
    }
}

/// Serves one connection until the session closes, the peer goes away or
/// the server is stopped (which cuts the socket).
fn serve(socket: Socket, config: Config, options: &Options, shared: &Shared) -> SessionLog {
    let mut conn = match socket {
        Socket::Tcp(s) => {
            let _ = s.set_nodelay(true);
            let _ = s.set_write_timeout(Some(SESSION_TIMEOUT));
            Conn::Plain(s)
        }
        Socket::Unix(s) => {
            let _ = s.set_write_timeout(Some(SESSION_TIMEOUT));
            Conn::Unix(s)
        }
    };
    let mut server = Server::new(config, Instant::now());
    let mut app = App {
        options,
        shared,
        tls: false,
        current: None,
        auth_user: None,
        delivered: 0,
        auth_failures: 0,
    };
    let mut sent = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    // Bytes read but not yet taken by the server.
    let mut pending: Vec<u8> = Vec::new();
    let mut eof = false;
    let mut answers = Vec::new();
    loop {
        // 2. Drain until the session waits; answer after the drain.
        let mut wire = Wire {
            conn: &mut conn,
            tls: options.tls.as_ref(),
            sent: &mut sent,
        };
        let drained = session::drive(&mut server, Instant::now(), &mut wire, |event| {
            answers.extend(app.on_event(event));
        });
        let answered = !answers.is_empty();
        // Invariant: the application answers only questions, and every
        // answer it gives fits the question (see `App::on_event`).
        for answer in answers.drain(..) {
            match answer {
                Answer::Accept => server.accept().expect("answer to a question"),
                Answer::AcceptMessage(n) => {
                    for _ in 0..n {
                        server.accept().expect("one answer per expected reply");
                    }
                }
                Answer::Reply(r) => server.reply(r).expect("answer to a question"),
            }
        }
        let deadline = match drained {
            _ if answered => continue,
            Ok(Drained::Wait { deadline }) => deadline,
            // Closed, a write that failed, or a failed handshake.
            _ => break,
        };
        if server.is_closed() {
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
        let wait = deadline.map(|d| d.saturating_duration_since(now));
        if wait.is_some_and(|w| w.is_zero()) {
            server.handle_timeout(now);
            continue;
        }
        if eof || !server.wants_read() {
            // Nothing to read (or no room): only the session's own timer
            // can move it now. Without one it is stuck, which ends it.
            let Some(wait) = wait else { break };
            thread::sleep(wait);
            server.handle_timeout(Instant::now());
            continue;
        }
        // 3. The deadline bounds the wait (a zero timeout means none).
        conn.set_read_timeout(wait);
        let cap = server.read_capacity().min(buf.len());
        let chunk = buf.get_mut(..cap).unwrap_or_default();
        match conn.read(chunk) {
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
    SessionLog {
        sent,
        close: server.close_reason().copied(),
        delivered: app.delivered,
        auth_failures: app.auth_failures,
    }
}
