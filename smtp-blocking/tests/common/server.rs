//! An SMTP/LMTP test server: `smtp_proto::server::Server` over std sockets,
//! with STARTTLS (rustls, the rcgen test PKI), AUTH PLAIN/LOGIN, LMTP, over
//! TCP or a Unix socket. One thread per connection, driven by the core's
//! generic `session::drive`; every message it accepts is recorded for the
//! test to check.
//!
//! Bounded: reads wake up every [`TICK`] to check the stop flag, and the
//! session's timeouts are short.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use smtp_proto::address::Domain;
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::{Reply, ReplyCode};
use smtp_proto::server::{Config, Event, Server};
use smtp_proto::session::{self, Drained, Transport};
use smtp_proto::{InjectionPolicy, Protocol, TlsInfo, TlsMode};

use super::tls::accept_tls;

pub(crate) const TICK: Duration = Duration::from_millis(50);

/// A message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivered {
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
    pub(crate) body: Vec<u8>,
    pub(crate) auth_user: Option<String>,
    pub(crate) tls: bool,
}

/// What the server does.
#[derive(Clone, Default)]
pub(crate) struct Options {
    /// Offer STARTTLS with this configuration.
    pub(crate) tls: Option<Arc<ServerConfig>>,
    /// AUTH PLAIN/LOGIN with these credentials (over TLS only when `tls`).
    pub(crate) credentials: Option<(String, String)>,
    /// LMTP instead of SMTP.
    pub(crate) lmtp: bool,
    /// A greeting instead of `220` (e.g. a `421` to refuse).
    pub(crate) greeting: Option<(u16, &'static str)>,
    /// Recipients (`<a@b>`) refused with 550.
    pub(crate) refuse_rcpt: Vec<String>,
    /// Offer CHUNKING (the default core offer), or not.
    pub(crate) no_chunking: bool,
    /// Don't offer PIPELINING.
    pub(crate) no_pipelining: bool,
    /// Implicit TLS (port 465 style) with `tls`, instead of STARTTLS.
    pub(crate) implicit_tls: bool,
}

#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) delivered: Mutex<Vec<Delivered>>,
    /// Commands seen in order (verbs only), for checks on reuse/RSET.
    pub(crate) sessions: Mutex<usize>,
}

pub(crate) struct TestServer {
    pub(crate) addr: Option<SocketAddr>,
    pub(crate) path: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    pub(crate) shared: Arc<Shared>,
}

impl TestServer {
    pub(crate) fn start(options: Options) -> Self {
        Self::start_on(options, TcpListener::bind("127.0.0.1:0").unwrap())
    }

    /// Two listeners on the same port: one on 127.0.0.1, one on 127.0.0.2
    /// (MX hosts reached through one configurable port).
    pub(crate) fn listener_pair() -> (TcpListener, TcpListener) {
        for _ in 0..20 {
            let second = TcpListener::bind("127.0.0.2:0").unwrap();
            let port = second.local_addr().unwrap().port();
            if let Ok(first) = TcpListener::bind(("127.0.0.1", port)) {
                return (first, second);
            }
        }
        panic!("no port free on both 127.0.0.1 and 127.0.0.2");
    }

    pub(crate) fn start_on(options: Options, listener: TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let mut server = Self::spawn(options, move || {
            listener.accept().map(|(s, _)| {
                s.set_nonblocking(false).unwrap();
                Conn::Plain(s)
            })
        });
        server.addr = Some(addr);
        server
    }

    pub(crate) fn start_unix(options: Options, path: PathBuf) -> Self {
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let mut server = Self::spawn(options, move || {
            listener.accept().map(|(s, _)| {
                s.set_nonblocking(false).unwrap();
                Conn::Unix(s)
            })
        });
        server.path = Some(path);
        server
    }

    fn spawn(
        options: Options,
        mut accept: impl FnMut() -> std::io::Result<Conn> + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::default());
        let handle = {
            let stop = Arc::clone(&stop);
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                let mut workers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match accept() {
                        Ok(conn) => {
                            let options = options.clone();
                            let stop = Arc::clone(&stop);
                            let shared = Arc::clone(&shared);
                            *shared.sessions.lock().unwrap() += 1;
                            workers.push(thread::spawn(move || {
                                serve(conn, &options, &stop, &shared);
                            }));
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(TICK / 10),
                        Err(_) => thread::sleep(TICK),
                    }
                }
                for w in workers {
                    let _ = w.join();
                }
            })
        };
        Self {
            addr: None,
            path: None,
            stop,
            accept: Some(handle),
            shared,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.unwrap().port()
    }

    pub(crate) fn delivered(&self) -> Vec<Delivered> {
        self.shared.delivered.lock().unwrap().clone()
    }

    pub(crate) fn sessions(&self) -> usize {
        *self.shared.sessions.lock().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    Unix(UnixStream),
    Gone,
}

impl Conn {
    fn set_timeout(&self, t: Duration) {
        let _ = match self {
            Self::Plain(s) => s.set_read_timeout(Some(t)),
            Self::Tls(s) => s.sock.set_read_timeout(Some(t)),
            Self::Unix(s) => s.set_read_timeout(Some(t)),
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

fn reply(code: u16, text: &'static str) -> Reply<'static> {
    Reply::new(ReplyCode::new(code).unwrap(), text).unwrap()
}

fn path_string(encode: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    encode(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The connection as the session's transport: writes, and the TLS
/// handshake (after STARTTLS, or first under implicit TLS) when asked.
struct Wire<'a> {
    conn: &'a mut Conn,
    tls: Option<&'a Arc<ServerConfig>>,
}

impl Transport for Wire<'_> {
    type Error = std::io::Error;

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.conn.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn start_tls(&mut self) -> std::io::Result<Option<TlsInfo>> {
        let Some(tls) = self.tls else {
            return Err(std::io::Error::other("no TLS configured"));
        };
        let Conn::Plain(tcp) = std::mem::replace(self.conn, Conn::Gone) else {
            return Err(std::io::Error::other("not a plain TCP connection"));
        };
        *self.conn = Conn::Tls(Box::new(accept_tls(tcp, tls)?));
        Ok(Some(TlsInfo::default()))
    }
}

/// The application's answer to one event, applied after the drain.
enum Answer {
    Accept,
    Accepts(usize),
    Reply(Reply<'static>),
}

fn serve(mut conn: Conn, options: &Options, stop: &AtomicBool, shared: &Shared) {
    let mut config = Config::new(Domain::new("mx.test.example").unwrap());
    config.timeouts.command = Duration::from_secs(10);
    config.timeouts.data = Duration::from_secs(10);
    config.timeouts.send = Duration::from_secs(10);
    if options.lmtp {
        config.protocol = Protocol::Lmtp;
    }
    if let Some((code, text)) = options.greeting {
        config.greeting = Some(reply(code, text));
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
        config.auth.mechanisms = vec![
            Mechanism::new("PLAIN").unwrap(),
            Mechanism::new("LOGIN").unwrap(),
        ];
        config.auth.require_tls = options.tls.is_some();
    }
    let mut server = Server::new(config, Instant::now());
    let mut tls = false;
    let mut current: Option<Delivered> = None;
    let mut auth_user = None;
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut eof = false;
    let mut answers = Vec::new();
    loop {
        let mut wire = Wire {
            conn: &mut conn,
            tls: options.tls.as_ref(),
        };
        let drained = session::drive(&mut server, Instant::now(), &mut wire, |event| {
            let answer = match event {
                Event::TlsEstablished => {
                    tls = true;
                    return;
                }
                Event::Mail { from, .. } => {
                    current = Some(Delivered {
                        from: path_string(|o| from.encode(o)),
                        to: Vec::new(),
                        body: Vec::new(),
                        auth_user: auth_user.clone(),
                        tls,
                    });
                    Answer::Accept
                }
                Event::Rcpt { to, .. } => {
                    let to = path_string(|o| to.encode(o));
                    if options
                        .refuse_rcpt
                        .iter()
                        .any(|r| r.eq_ignore_ascii_case(&to))
                    {
                        Answer::Reply(reply(550, "No such user here"))
                    } else {
                        if let Some(c) = &mut current {
                            c.to.push(to);
                        }
                        Answer::Accept
                    }
                }
                Event::DataStart { .. } => Answer::Accept,
                Event::Body(bytes) => {
                    if let Some(c) = &mut current {
                        c.body.extend_from_slice(bytes);
                    }
                    return;
                }
                Event::MessageEnd { replies, .. } => {
                    if let Some(m) = current.take() {
                        shared.delivered.lock().unwrap().push(m);
                    }
                    Answer::Accepts(replies)
                }
                Event::Reset { .. } => {
                    current = None;
                    return;
                }
                Event::AuthPlain {
                    authcid, password, ..
                } => {
                    let ok = options
                        .credentials
                        .as_ref()
                        .is_some_and(|(u, p)| u == authcid && p == password.expose());
                    if ok {
                        auth_user = Some(authcid.to_string());
                        Answer::Accept
                    } else {
                        Answer::Reply(reply(535, "Bad credentials"))
                    }
                }
                Event::AuthLogin { username, password } => {
                    let ok = options
                        .credentials
                        .as_ref()
                        .is_some_and(|(u, p)| u == username && p == password.expose());
                    if ok {
                        auth_user = Some(username.to_string());
                        Answer::Accept
                    } else {
                        Answer::Reply(reply(535, "Bad credentials"))
                    }
                }
                Event::Auth { .. } | Event::AuthResponse(_) => {
                    Answer::Reply(reply(504, "Not supported"))
                }
                _ => return,
            };
            answers.push(answer);
        });
        let answered = !answers.is_empty();
        for answer in answers.drain(..) {
            match answer {
                Answer::Accept => server.accept().unwrap(),
                Answer::Accepts(n) => {
                    for _ in 0..n {
                        server.accept().unwrap();
                    }
                }
                Answer::Reply(r) => server.reply(r).unwrap(),
            }
        }
        let deadline = match drained {
            _ if answered => continue,
            Ok(Drained::Wait { deadline }) => deadline,
            // Closed, a failed write or handshake.
            _ => break,
        };
        if server.is_closed() || stop.load(Ordering::Relaxed) {
            break;
        }
        if !pending.is_empty() && server.wants_read() {
            let taken = server.handle_input(Instant::now(), &pending);
            pending.drain(..taken.min(pending.len()));
            if pending.is_empty() && eof {
                server.handle_eof(Instant::now());
            }
            continue;
        }
        let now = Instant::now();
        if let Some(d) = deadline
            && d <= now
        {
            server.handle_timeout(now);
            continue;
        }
        let wait = deadline.map_or(TICK, |d| d.saturating_duration_since(now).min(TICK));
        if eof || !server.wants_read() {
            thread::sleep(wait.max(Duration::from_millis(1)));
            server.handle_timeout(Instant::now());
            continue;
        }
        conn.set_timeout(wait.max(Duration::from_millis(1)));
        let cap = server.read_capacity().min(buf.len());
        match conn.read(&mut buf[..cap]) {
            Ok(0) => {
                eof = true;
                if pending.is_empty() {
                    server.handle_eof(Instant::now());
                }
            }
            Ok(n) => {
                let taken = server.handle_input(Instant::now(), &buf[..n]);
                pending.extend_from_slice(&buf[taken..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                server.handle_timeout(Instant::now());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                eof = true;
                pending.clear();
                server.handle_eof(Instant::now());
            }
        }
    }
}
