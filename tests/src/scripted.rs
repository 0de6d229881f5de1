//! Scripted SMTP servers: peers that behave well, or badly in one chosen
//! way, for the clients' tests (the blocking client, the mio delivery
//! engine, the MX scenario table).
//!
//! - [`ScriptedServer`] answers every connection from a [`Script`]: the
//!   greeting, the EHLO reply and its extensions, STARTTLS (not offered,
//!   refused, or offered with a handshake that completes with a given
//!   certificate or is aborted), implicit TLS, the replies to MAIL, to each
//!   RCPT, to DATA and after the content (or a close instead). It can stay
//!   [`Silent`](Behaviour::Silent) or answer at random
//!   ([`Chaos`](Behaviour::Chaos)). It counts what it saw ([`Stats`]) and a
//!   test can wait for a count without sleeping
//!   ([`ScriptedServer::wait_until`]).
//! - [`serve_once`] runs a closure on the first connection, for a hostile
//!   server that needs byte-level control ([`send`], [`read_until`]).
//!
//! The servers are written by hand, not with the core's session: they say
//! what a broken or hostile server says, which the core would never say.
//! Every socket has a read timeout, and dropping a server cuts its
//! connections and joins its threads, so no test can hang on one.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use smtp_proto::tls::rustls::{ServerConfig, ServerConnection};

use crate::net::{AcceptLoop, Listener, Socket};
use crate::pki::{HANDSHAKE_TIMEOUT, MaybeTls, accept_tls};
use crate::sync::Signal;

/// How long a scripted server waits for the client's next line before it
/// gives up on the connection.
pub const READ_BOUND: Duration = Duration::from_secs(20);

/// How long the chaos server stalls when its dice say so: longer than the
/// short client timeouts of the tests that use it.
pub const CHAOS_STALL: Duration = Duration::from_millis(1200);

/// How the server side of a TLS handshake goes.
#[derive(Clone)]
pub enum Handshake {
    /// It completes, presenting this configuration's certificate.
    With(Arc<ServerConfig>),
    /// The server reads the client's hello and answers with a fatal
    /// `handshake_failure` alert, then closes: it fails whatever the client
    /// verifies.
    Aborted,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::With(_) => f.write_str("With(ServerConfig)"),
            Self::Aborted => f.write_str("Aborted"),
        }
    }
}

/// STARTTLS at a scripted server.
#[derive(Debug, Clone)]
pub enum Starttls {
    /// Not in the EHLO reply; the command gets `502`.
    NotOffered,
    /// Offered, but the command gets this reply (e.g. `454 4.7.0 …`).
    Refused(String),
    /// Offered and accepted with `220`; the handshake goes as given. What
    /// the client sent after the command (injected plaintext) is dropped,
    /// and the session starts over (RFC 3207 §4.2).
    Offered(Handshake),
}

/// What a scripted server says. Replies are whole reply lines without CRLF.
///
/// Commands it knows: EHLO, HELO, STARTTLS, MAIL, RCPT, DATA, RSET, NOOP,
/// QUIT; anything else gets `500`. Like a real server it answers RCPT
/// without a successful MAIL with `503`, and DATA without an accepted
/// recipient with `554`, whatever the script says.
#[derive(Debug, Clone)]
pub struct Script {
    /// TLS from the first byte (port 465 style), before the greeting.
    pub implicit_tls: Option<Handshake>,
    /// The greeting. A `421` closes the connection after it (RFC 5321
    /// §3.8); any other refusal (`554`) answers every command but QUIT with
    /// `503` (RFC 5321 §3.1).
    pub greeting: String,
    /// The reply to EHLO: its first line. A positive one is followed by
    /// [`extensions`](Self::extensions) (and STARTTLS as
    /// [`starttls`](Self::starttls) says, before TLS); HELO gets this line
    /// alone.
    pub ehlo: String,
    /// The extensions a positive EHLO reply lists.
    pub extensions: Vec<String>,
    /// Whether STARTTLS is offered, and how it goes.
    pub starttls: Starttls,
    /// The reply to MAIL.
    pub mail: String,
    /// Replies to RCPT: the first whose text is found (without case) in the
    /// command line, e.g. `("bob@example.net", "450 4.2.0 greylisted")`.
    pub rcpt: Vec<(String, String)>,
    /// The reply to a RCPT that [`rcpt`](Self::rcpt) does not name.
    pub rcpt_default: String,
    /// The reply to DATA (when a recipient was accepted).
    pub data: String,
    /// The reply after the content; `None`: close the connection instead.
    pub end: Option<String>,
    /// Close the connection after the first line of content, before the
    /// end of the message.
    pub close_mid_data: bool,
    /// After this many messages on one connection, close it without a
    /// word at the next command other than QUIT (an idle timeout racing
    /// the client's next MAIL).
    pub messages_per_connection: Option<usize>,
    /// Answer QUIT (`221`, then close); `false`: never answer it, nor close.
    pub answer_quit: bool,
}

impl Script {
    /// A well-behaved ESMTP server with PIPELINING, 8BITMIME and SIZE,
    /// without STARTTLS.
    pub fn accept() -> Self {
        Self {
            implicit_tls: None,
            greeting: "220 fake.test ESMTP".into(),
            ehlo: "250 fake.test".into(),
            extensions: vec![
                "PIPELINING".into(),
                "8BITMIME".into(),
                "SIZE 10000000".into(),
            ],
            starttls: Starttls::NotOffered,
            mail: "250 2.1.0 ok".into(),
            rcpt: Vec::new(),
            rcpt_default: "250 2.1.5 ok".into(),
            data: "354 go ahead".into(),
            end: Some("250 2.0.0 queued".into()),
            close_mid_data: false,
            messages_per_connection: None,
            answer_quit: true,
        }
    }

    /// [`accept`](Self::accept), but greeting with `reply` (a `421`
    /// closes at once, a `554` waits for QUIT).
    pub fn greeting(reply: &str) -> Self {
        Self {
            greeting: reply.into(),
            ..Self::accept()
        }
    }

    /// [`accept`](Self::accept), but answering every RCPT with `reply`.
    pub fn every_rcpt(reply: &str) -> Self {
        Self {
            rcpt_default: reply.into(),
            ..Self::accept()
        }
    }

    /// [`accept`](Self::accept), but closing the connection in the middle
    /// of the content.
    pub fn close_mid_data() -> Self {
        Self {
            close_mid_data: true,
            ..Self::accept()
        }
    }

    /// [`accept`](Self::accept), but closing without a word at the next
    /// command after `n` messages on a connection.
    pub fn messages_per_connection(n: usize) -> Self {
        Self {
            messages_per_connection: Some(n),
            ..Self::accept()
        }
    }

    /// [`accept`](Self::accept), but never answering QUIT.
    pub fn mute_at_quit() -> Self {
        Self {
            answer_quit: false,
            ..Self::accept()
        }
    }

    /// The reply to a RCPT command line.
    fn rcpt_reply(&self, line: &str) -> &str {
        let line = line.to_ascii_lowercase();
        self.rcpt
            .iter()
            .find(|(needle, _)| line.contains(&needle.to_ascii_lowercase()))
            .map_or(self.rcpt_default.as_str(), |(_, reply)| reply.as_str())
    }
}

/// How a scripted server behaves.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// As the script says.
    Script(Box<Script>),
    /// Accepts the TCP connection and never says anything.
    Silent,
    /// Answers each line at random from the seed (varied per connection):
    /// proper replies mostly, else wrong codes, garbage, bare LF, mixed
    /// multi-line codes, unsolicited replies, a stall ([`CHAOS_STALL`]), or
    /// a close.
    Chaos(u64),
}

impl From<Script> for Behaviour {
    fn from(script: Script) -> Self {
        Self::Script(Box::new(script))
    }
}

/// A message a scripted server took (its end reply was positive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The MAIL command line, without CRLF.
    pub mail: String,
    /// The RCPT command lines it accepted, without CRLF.
    pub rcpt: Vec<String>,
    /// The content, dot-unstuffed, without the final dot line.
    pub body: Vec<u8>,
    /// Whether it came over TLS.
    pub tls: bool,
}

/// What a scripted server saw so far.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections: usize,
    /// Connections open now.
    pub open: usize,
    /// The most connections open at once.
    pub max_open: usize,
    /// Messages taken (a positive reply after the content).
    pub messages: usize,
    /// RSET commands.
    pub rsets: usize,
    /// QUIT commands.
    pub quits: usize,
    /// TLS handshakes completed.
    pub handshakes: usize,
    /// Positive replies after a complete message ([`Behaviour::Chaos`]).
    pub positive_finals: usize,
    /// Connections over the limit of [`ScriptedServer::limited`], answered
    /// `421` and closed.
    pub over_limit: usize,
    /// Every RCPT command line, without CRLF, in order.
    pub recipients: Vec<String>,
    /// The messages taken, in order.
    pub delivered: Vec<Message>,
}

/// A running scripted server. Dropping it cuts its connections and joins
/// its threads.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    stats: Arc<Signal<Stats>>,
    /// Last: stopped (and joined) when the server is dropped.
    _accept: AcceptLoop,
}

impl ScriptedServer {
    /// Starts on `ip` at `port` (0: any free port).
    ///
    /// # Panics
    ///
    /// When `ip` is not an IP address or the port is taken.
    pub fn start(ip: &str, port: u16, behaviour: impl Into<Behaviour>) -> Self {
        let ip: IpAddr = ip.parse().expect("an IP address");
        let listener = TcpListener::bind((ip, port)).expect("bind the scripted server");
        Self::on(listener, behaviour)
    }

    /// Starts on `listener` (e.g. one of
    /// [`same_port_listeners`](crate::net::same_port_listeners)).
    pub fn on(listener: TcpListener, behaviour: impl Into<Behaviour>) -> Self {
        Self::serve(listener, behaviour.into(), None)
    }

    /// Starts on `127.0.0.1` at any free port, with a connection limit as a
    /// busy MTA has one (Postfix's `smtpd_client_connection_count_limit`):
    /// while `max_open` connections are open, another one gets
    /// `421 4.7.0 Error: too many connections` and is closed
    /// ([`Stats::over_limit`]).
    ///
    /// # Panics
    ///
    /// When no port is free.
    pub fn limited(behaviour: impl Into<Behaviour>, max_open: usize) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the scripted server");
        Self::serve(listener, behaviour.into(), Some(max_open))
    }

    fn serve(listener: TcpListener, behaviour: Behaviour, max_open: Option<usize>) -> Self {
        let addr = listener.local_addr().expect("a bound listener");
        let stats = Arc::new(Signal::new(Stats::default()));
        let accept = {
            let stats = Arc::clone(&stats);
            AcceptLoop::spawn(Listener::Tcp(listener), move |socket| {
                let Socket::Tcp(mut stream) = socket else {
                    return;
                };
                // Checked and counted in one step: connections are accepted
                // on their own threads.
                let admitted = stats.update(|s| {
                    if max_open.is_some_and(|max| s.open >= max) {
                        s.over_limit += 1;
                        return None;
                    }
                    s.connections += 1;
                    s.open += 1;
                    s.max_open = s.max_open.max(s.open);
                    Some(s.connections)
                });
                let Some(n) = admitted else {
                    let _ = stream.write_all(b"421 4.7.0 Error: too many connections\r\n");
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                };
                // A connection stops counting as open at QUIT, before the
                // 221: the client may open the next one as soon as it reads
                // the reply, and counting it closed only when this thread
                // finishes would show one connection too many.
                let quit = Cell::new(false);
                let _ = match &behaviour {
                    Behaviour::Script(script) => play(stream, script, &stats, &quit),
                    Behaviour::Silent => silent(stream),
                    Behaviour::Chaos(seed) => chaos(
                        stream,
                        seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                        &stats,
                    ),
                };
                if !quit.get() {
                    stats.update(|s| s.open -= 1);
                }
            })
            .expect("an accept loop")
        };
        Self {
            addr,
            stats,
            _accept: accept,
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A copy of what the server saw so far.
    pub fn stats(&self) -> Stats {
        self.stats.read(Stats::clone)
    }

    /// Waits until `done` holds for the stats (checked now and after every
    /// change), at most `timeout`; whether it came to hold.
    pub fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&Stats) -> bool) -> bool {
        self.stats
            .wait_for(timeout, |s| done(s).then_some(()))
            .is_some()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.stats.read(|s| s.connections)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.stats.read(|s| s.open)
    }

    /// The most connections open at once.
    pub fn max_open(&self) -> usize {
        self.stats.read(|s| s.max_open)
    }

    /// Messages taken so far.
    pub fn messages(&self) -> usize {
        self.stats.read(|s| s.messages)
    }

    /// RSET commands so far.
    pub fn rsets(&self) -> usize {
        self.stats.read(|s| s.rsets)
    }

    /// QUIT commands so far.
    pub fn quits(&self) -> usize {
        self.stats.read(|s| s.quits)
    }

    /// Every RCPT command line so far.
    pub fn recipients(&self) -> Vec<String> {
        self.stats.read(|s| s.recipients.clone())
    }

    /// The messages taken so far.
    pub fn delivered(&self) -> Vec<Message> {
        self.stats.read(|s| s.delivered.clone())
    }
}

/// A connection, before or after TLS.
type Stream = MaybeTls<ServerConnection>;

/// Writes a reply (CRLF added) in one write and flushes (over TLS: sends
/// the record).
fn say(conn: &mut BufReader<Stream>, reply: &str) -> io::Result<()> {
    let out = conn.get_mut();
    out.write_all(format!("{reply}\r\n").as_bytes())?;
    out.flush()
}

/// The next line, CRLF included; `None` at the end of input.
fn next_line(conn: &mut BufReader<Stream>) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    match conn.read_until(b'\n', &mut line)? {
        0 => Ok(None),
        _ => Ok(Some(line)),
    }
}

/// Runs the server side of a handshake; `None` when it was aborted on
/// purpose (the connection is then over).
fn handshake(tcp: TcpStream, handshake: &Handshake) -> io::Result<Option<Stream>> {
    match handshake {
        Handshake::With(config) => Ok(Some(Stream::Tls(Box::new(accept_tls(tcp, config)?)))),
        Handshake::Aborted => {
            abort_handshake(tcp)?;
            Ok(None)
        }
    }
}

/// Reads the client's first TLS record, answers with a fatal
/// `handshake_failure` alert (RFC 8446 §6) and closes, draining what the
/// client still sends so that the alert is not lost to a reset.
fn abort_handshake(mut tcp: TcpStream) -> io::Result<()> {
    tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let mut header = [0u8; 5];
    tcp.read_exact(&mut header)?;
    let [_, _, _, high, low] = header;
    let mut hello = vec![0u8; usize::from(u16::from_be_bytes([high, low]))];
    tcp.read_exact(&mut hello)?;
    // Content type 21 (alert), TLS 1.2 record version, length 2, level 2
    // (fatal), description 40 (handshake_failure).
    tcp.write_all(&[21, 3, 3, 0, 2, 2, 40])?;
    tcp.shutdown(Shutdown::Write)?;
    io::copy(&mut tcp, &mut io::sink()).map(drop)
}

/// The verb of a command line, upper case.
fn verb(line: &str) -> String {
    line.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// A transaction under way.
#[derive(Default)]
struct Transaction {
    mail: Option<String>,
    rcpt: Vec<String>,
}

fn play(
    tcp: TcpStream,
    script: &Script,
    stats: &Signal<Stats>,
    quit: &Cell<bool>,
) -> io::Result<()> {
    tcp.set_read_timeout(Some(READ_BOUND))?;
    let mut tls = false;
    let stream = match &script.implicit_tls {
        None => Stream::Plain(tcp),
        Some(how) => {
            let Some(stream) = handshake(tcp, how)? else {
                return Ok(());
            };
            tls = true;
            stats.update(|s| s.handshakes += 1);
            stream
        }
    };
    let mut conn = BufReader::new(stream);
    say(&mut conn, &script.greeting)?;
    if script.greeting.starts_with("421") {
        return Ok(());
    }
    let refusing = !script.greeting.starts_with('2');
    let mut transaction = Transaction::default();
    let mut delivered_here = 0;
    while let Some(raw) = next_line(&mut conn)? {
        let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
        let verb = verb(&line);
        if script
            .messages_per_connection
            .is_some_and(|n| delivered_here >= n)
            && verb != "QUIT"
        {
            return Ok(());
        }
        if refusing && verb != "QUIT" {
            say(&mut conn, "503 5.5.1 no SMTP service here")?;
            continue;
        }
        match verb.as_str() {
            "EHLO" if script.ehlo.starts_with('2') => {
                let mut lines = vec![script.ehlo.get(4..).unwrap_or_default().to_owned()];
                lines.extend(script.extensions.iter().cloned());
                if !tls && !matches!(script.starttls, Starttls::NotOffered) {
                    lines.push("STARTTLS".into());
                }
                let code = script.ehlo.get(..3).unwrap_or("250");
                let last = lines.len() - 1;
                let reply: Vec<String> = lines
                    .iter()
                    .enumerate()
                    .map(|(i, text)| {
                        let sep = if i == last { ' ' } else { '-' };
                        format!("{code}{sep}{text}")
                    })
                    .collect();
                // In one write, as servers do.
                say(&mut conn, &reply.join("\r\n"))?;
                transaction = Transaction::default();
            }
            "EHLO" | "HELO" => {
                say(&mut conn, &script.ehlo)?;
                transaction = Transaction::default();
            }
            "STARTTLS" => match (&script.starttls, tls) {
                (Starttls::Offered(how), false) => {
                    say(&mut conn, "220 2.0.0 ready to start TLS")?;
                    // What the client pipelined behind the command stays in
                    // the buffer and is dropped with it.
                    let Stream::Plain(tcp) = conn.into_inner() else {
                        return Err(io::Error::other("TLS started twice"));
                    };
                    let Some(stream) = handshake(tcp, how)? else {
                        return Ok(());
                    };
                    tls = true;
                    stats.update(|s| s.handshakes += 1);
                    conn = BufReader::new(stream);
                    transaction = Transaction::default();
                }
                (Starttls::Refused(reply), false) => say(&mut conn, reply)?,
                _ => say(&mut conn, "502 5.5.1 STARTTLS not available")?,
            },
            "MAIL" => {
                say(&mut conn, &script.mail)?;
                transaction = Transaction::default();
                if script.mail.starts_with('2') {
                    transaction.mail = Some(line);
                }
            }
            "RCPT" => {
                stats.update(|s| s.recipients.push(line.clone()));
                if transaction.mail.is_none() {
                    say(&mut conn, "503 5.5.1 MAIL first")?;
                    continue;
                }
                let reply = script.rcpt_reply(&line);
                say(&mut conn, reply)?;
                if reply.starts_with('2') {
                    transaction.rcpt.push(line);
                }
            }
            "DATA" => {
                if transaction.rcpt.is_empty() {
                    say(&mut conn, "554 5.5.1 no valid recipients")?;
                    continue;
                }
                say(&mut conn, &script.data)?;
                if !script.data.starts_with('3') {
                    continue;
                }
                let Some(body) = content(&mut conn, script.close_mid_data)? else {
                    return Ok(());
                };
                let Some(end) = &script.end else {
                    return Ok(());
                };
                // Record before answering, as a real server stores before
                // its 250: a client that saw the reply must find the message
                // counted (reading it after the reply raced the test).
                if end.starts_with('2') {
                    delivered_here += 1;
                    let message = Message {
                        mail: transaction.mail.take().unwrap_or_default(),
                        rcpt: std::mem::take(&mut transaction.rcpt),
                        body,
                        tls,
                    };
                    stats.update(|s| {
                        s.messages += 1;
                        s.delivered.push(message);
                    });
                }
                say(&mut conn, end)?;
                transaction = Transaction::default();
            }
            "RSET" => {
                stats.update(|s| s.rsets += 1);
                transaction = Transaction::default();
                say(&mut conn, "250 2.0.0 ok")?;
            }
            "NOOP" => say(&mut conn, "250 2.0.0 ok")?,
            "QUIT" => {
                stats.update(|s| {
                    s.quits += 1;
                    if !quit.replace(true) {
                        s.open -= 1;
                    }
                });
                if script.answer_quit {
                    return say(&mut conn, "221 2.0.0 bye");
                }
            }
            _ => say(&mut conn, "500 5.5.2 what?")?,
        }
    }
    Ok(())
}

/// Reads message content up to its final dot line; `None` when the input
/// ended first, or after the first line with `close_early`.
fn content(conn: &mut BufReader<Stream>, close_early: bool) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    while let Some(line) = next_line(conn)? {
        if close_early {
            return Ok(None);
        }
        if line == b".\r\n" {
            return Ok(Some(body));
        }
        body.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
    }
    Ok(None)
}

/// Holds the connection without a word until the peer leaves (or the
/// server is dropped, or [`READ_BOUND`] passes).
fn silent(mut tcp: TcpStream) -> io::Result<()> {
    tcp.set_read_timeout(Some(READ_BOUND))?;
    io::copy(&mut tcp, &mut io::sink()).map(drop)
}

/// xorshift64*: a small deterministic generator for the chaos server.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn chaos(stream: TcpStream, seed: u64, stats: &Signal<Stats>) -> io::Result<()> {
    // Odd multiplier, odd offset: distinct seeds give distinct, non-zero
    // states.
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    let greeting: &[u8] = match rng.below(10) {
        0 => b"421 busy\r\n",
        1 => b"2x0 what\r\n",
        _ => b"220 chaos.test ESMTP\r\n",
    };
    out.write_all(greeting)?;
    loop {
        let mut line = Vec::new();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let upper = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let proper: &[u8] = if upper.starts_with("EHLO") {
            b"250-chaos.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("DATA") {
            b"354 go\r\n"
        } else if upper.starts_with("QUIT") {
            b"221 bye\r\n"
        } else {
            b"250 ok\r\n"
        };
        match rng.below(64) {
            0 => return Ok(()),
            // The stall is the misbehaviour under test, not a wait.
            1 => thread::sleep(CHAOS_STALL),
            2 => out.write_all(b"550 5.0.0 no\r\n")?,
            3 => out.write_all(b"451 4.0.0 later\r\n")?,
            4 => out.write_all(b"\x00\xff garbage \x1b[0m\r\n")?,
            5 => out.write_all(b"250 bare\n")?,
            6 => out.write_all(b"250-one\r\n550 two\r\n")?,
            7 => {
                out.write_all(proper)?;
                out.write_all(b"250 unsolicited\r\n")?;
            }
            _ => out.write_all(proper)?,
        }
        if upper.starts_with("DATA") {
            // Read the content to its end, then a final reply at random.
            let mut last = Vec::new();
            loop {
                last.clear();
                if input.read_until(b'\n', &mut last)? == 0 {
                    return Ok(());
                }
                if last == b".\r\n" {
                    break;
                }
            }
            match rng.below(8) {
                0 => return Ok(()),
                1 => out.write_all(b"451 4.3.0 lost it\r\n")?,
                2 => out.write_all(b"554 5.6.0 no thanks\r\n")?,
                _ => {
                    stats.update(|s| s.positive_finals += 1);
                    out.write_all(b"250 2.0.0 queued\r\n")?;
                }
            }
        }
        if upper.starts_with("QUIT") {
            return Ok(());
        }
    }
}

// ------------------------------------------------------------ one connection

/// A one-connection server started by [`serve_once`].
#[derive(Debug)]
pub struct OneShot<T> {
    addr: SocketAddr,
    /// The local address of the connection [`join`](Self::join) made to
    /// wake the accept, once made.
    waker: Arc<Mutex<Option<SocketAddr>>>,
    thread: JoinHandle<io::Result<T>>,
}

impl<T> OneShot<T> {
    /// Waits for the script's result. If no client connected, the accept
    /// is woken by a connection of this call's own and the result is a
    /// `NotConnected` error: a test whose client failed early must not hang
    /// here. A client that connected is served, even one the accept had not
    /// taken yet.
    pub fn join(self) -> thread::Result<io::Result<T>> {
        if !self.thread.is_finished() {
            let mut waker = lock(&self.waker);
            if let Ok(wake) = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)) {
                *waker = wake.local_addr().ok();
                // Kept open until the accept has looked at it.
                drop(waker);
                let result = self.thread.join();
                drop(wake);
                return result;
            }
        }
        self.thread.join()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A one-connection server on 127.0.0.1: `script` runs on the first
/// connection (with 5-second read and write timeouts) in a thread; join
/// the returned handle for its result.
pub fn serve_once<T: Send + 'static>(
    script: impl FnOnce(TcpStream) -> io::Result<T> + Send + 'static,
) -> (SocketAddr, OneShot<T>) {
    // Invariant: loopback can be bound.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("a bound listener");
    let waker = Arc::new(Mutex::new(None));
    let thread = {
        let waker = Arc::clone(&waker);
        thread::spawn(move || {
            let (stream, peer) = listener.accept()?;
            // `join` holds the lock from its connect until it has recorded
            // the connection's address: this waits for that if it raced.
            if *lock(&waker) == Some(peer) {
                return Err(io::ErrorKind::NotConnected.into());
            }
            drop(listener);
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.set_write_timeout(Some(Duration::from_secs(5)))?;
            script(stream)
        })
    };
    (
        addr,
        OneShot {
            addr,
            waker,
            thread,
        },
    )
}

/// Reads until `needle` has been seen (or the end of input), returning
/// everything read. One byte at a time: nothing after the needle is taken
/// from the stream.
pub fn read_until(stream: &mut impl Read, needle: &[u8]) -> io::Result<Vec<u8>> {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(needle) {
        if stream.read(&mut byte)? == 0 {
            break;
        }
        seen.extend_from_slice(&byte);
    }
    Ok(seen)
}

/// Writes `data` and flushes (over TLS: sends the records).
pub fn send(stream: &mut impl Write, data: &[u8]) -> io::Result<()> {
    stream.write_all(data)?;
    stream.flush()
}
