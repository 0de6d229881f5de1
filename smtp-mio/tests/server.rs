//! The mio server over loopback sockets: delivery, pipelining, STARTTLS,
//! implicit TLS, AUTH, late answers, LMTP, limits, faults, shutdown.
//!
//! Every test binds port 0 on 127.0.0.1, uses client sockets with timeouts,
//! and shuts its server down, so no test can hang or touch the network.
//! Nothing sleeps to let the server get somewhere: a test waits for a
//! signal (a reply, a closed connection, a session's end, a backend's
//! question on a channel) or holds the backend back with a [`Gate`] until
//! it has checked what it wants to check meanwhile.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustls::{ClientConnection, StreamOwned};
use smtp_mio::server::listener::ConnectionLimits;
use smtp_mio::server::store::Credentials;
use smtp_mio::server::{Backend, ConnectionInfo, Responder, Session};
use smtp_mio::tls::TlsIdentity;
use smtp_proto::Protocol;
use smtp_proto::address::ForwardPath;
use smtp_proto::command::RcptParameters;
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::{Reply, ReplyCode};
use smtp_proto::server::Envelope;
use smtp_tests::pki::MaybeTls;
use smtp_tests::sync::Gate;

mod common;
use common::{TIMEOUT, TestServer, start_store, start_with, tls_client};

impl TestServer {
    fn connect(&self) -> Client {
        Client::connect(self.addr)
    }
}

type Stream = MaybeTls<ClientConnection>;

/// A minimal SMTP client that reads whole replies.
struct Client {
    stream: Option<Stream>,
    pending: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
        tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
        tcp.set_write_timeout(Some(TIMEOUT)).unwrap();
        Self {
            stream: Some(Stream::Plain(tcp)),
            pending: Vec::new(),
        }
    }

    fn connect_tls(addr: SocketAddr, identity: &TlsIdentity) -> Self {
        let tcp = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
        tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
        tcp.set_write_timeout(Some(TIMEOUT)).unwrap();
        Self {
            stream: Some(Stream::Tls(Box::new(StreamOwned::new(
                tls_client(identity),
                tcp,
            )))),
            pending: Vec::new(),
        }
    }

    fn stream(&mut self) -> &mut Stream {
        self.stream.as_mut().expect("stream present")
    }

    fn send(&mut self, data: &[u8]) {
        self.stream().write_all(data).unwrap();
        self.stream().flush().unwrap();
    }

    /// Reads one reply; returns its lines (without CRLF).
    fn reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            while let Some(pos) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.pending.drain(..pos + 2).collect();
                let line = String::from_utf8_lossy(&line[..pos]).into_owned();
                let last = line.as_bytes().get(3) != Some(&b'-');
                lines.push(line);
                if last {
                    return lines;
                }
            }
            let mut buf = [0u8; 4096];
            let n = self.stream().read(&mut buf).unwrap();
            assert!(
                n > 0,
                "connection closed while reading a reply; got {lines:?}"
            );
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// Reads a reply and checks its code; returns its last line.
    fn expect(&mut self, code: &str) -> String {
        let lines = self.reply();
        let last = lines.last().cloned().unwrap_or_default();
        assert!(last.starts_with(code), "expected {code}, got {lines:?}");
        last
    }

    fn cmd(&mut self, line: &str, code: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.expect(code)
    }

    /// Whether the server closed the connection (EOF) within the timeout.
    fn closed(&mut self) -> bool {
        let mut buf = [0u8; 256];
        loop {
            match self.stream().read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    fn starttls(&mut self, identity: &TlsIdentity) {
        self.cmd("STARTTLS", "220");
        assert!(self.pending.is_empty(), "bytes after the 220");
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            panic!("already TLS");
        };
        self.stream = Some(Stream::Tls(Box::new(StreamOwned::new(
            tls_client(identity),
            tcp,
        ))));
    }
}

fn queued_id(line: &str) -> String {
    line.rsplit(' ').next().unwrap().to_owned()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn delivers_byte_exact_unstuffed_message_with_trace_header() {
    let server = start_store(Credentials::new(), |_| {});
    let mut c = server.connect();
    c.expect("220 mx.test");
    let ehlo = c.reply_after("EHLO client.test");
    assert!(ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    c.cmd("MAIL FROM:<a@example.org>", "250");
    c.cmd("RCPT TO:<b@example.net>", "250");
    c.cmd("DATA", "354");
    c.send(b"Subject: t\r\n\r\n..leading dot\r\nline\r\n.\r\n");
    let ok = c.expect("250 2.0.0");
    let id = queued_id(&ok);
    c.cmd("QUIT", "221");
    let path = server.maildir().join("new").join(&id);
    let stored = String::from_utf8(read(&path)).unwrap();
    let (header, body) = stored.split_at(stored.find("Subject:").unwrap());
    assert!(
        header.starts_with("Received: from client.test ([127.0.0.1])\r\n"),
        "{header}"
    );
    assert!(
        header.contains(&format!("\tby mx.test with ESMTP id {id}\r\n")),
        "{header}"
    );
    assert!(header.contains("\tfor <b@example.net>; "), "{header}");
    assert_eq!(body, "Subject: t\r\n\r\n.leading dot\r\nline\r\n");
    assert!(server.files("tmp").is_empty());
    server.shutdown();
}

impl Client {
    fn reply_after(&mut self, line: &str) -> Vec<String> {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }
}

#[test]
fn pipelined_batch_is_answered_in_order() {
    // Transactions pipelined behind the end of data: refused by default
    // (protocol synchronization), served with the rule off.
    let server = start_store(Credentials::new(), |o| {
        o.session.forbid_unauth_pipelining = false;
    });
    let mut c = server.connect();
    c.expect("220");
    c.reply_after("EHLO client.test");
    // Two transactions and QUIT in one write (RFC 2920).
    c.send(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n",
    );
    for code in ["250", "250", "250", "354"] {
        c.expect(code);
    }
    c.send(b"one\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<d@example.net>\r\nDATA\r\n");
    for code in ["250", "250", "250", "354"] {
        c.expect(code);
    }
    c.send(b"two\r\n.\r\nQUIT\r\n");
    c.expect("250");
    c.expect("221");
    assert!(c.closed());
    assert_eq!(server.files("new").len(), 2);
    server.shutdown();
}

#[test]
fn starttls_then_auth_submission() {
    let mut credentials = Credentials::new();
    credentials.add("alice", "s3cret");
    let server = start_store(credentials, |o| {
        o.session.auth.mechanisms = vec![Mechanism::PLAIN, Mechanism::LOGIN];
        o.session.auth.required_for_mail = true;
    });
    let mut c = server.connect();
    c.expect("220");
    let ehlo = c.reply_after("EHLO client.test");
    assert!(
        !ehlo.iter().any(|l| l.contains("AUTH")),
        "AUTH before TLS: {ehlo:?}"
    );
    c.cmd("MAIL FROM:<a@example.org>", "530");
    c.starttls(&server.identity);
    let ehlo = c.reply_after("EHLO client.test");
    assert!(
        ehlo.iter().any(|l| l.contains("AUTH PLAIN LOGIN")),
        "{ehlo:?}"
    );
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")));
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    c.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0wrong")), "535");
    c.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0s3cret")), "235");
    c.cmd("MAIL FROM:<alice@example.org>", "250");
    c.cmd("RCPT TO:<b@example.net>", "250");
    c.cmd("DATA", "354");
    c.send(b"Subject: over TLS\r\n\r\nhi\r\n.\r\n");
    let id = queued_id(&c.expect("250"));
    c.cmd("QUIT", "221");
    let stored = String::from_utf8(read(&server.maildir().join("new").join(&id))).unwrap();
    assert!(stored.contains("with ESMTPSA id"), "{stored}");
    assert!(
        stored.contains("(using TLSv1.3 with cipher TLS13_"),
        "{stored}"
    );
    server.shutdown();
}

#[test]
fn plaintext_injected_after_starttls_is_never_acted_on() {
    let server = start_store(Credentials::new(), |_| {});
    let mut c = server.connect();
    c.expect("220");
    c.reply_after("EHLO client.test");
    // STARTTLS with a command pipelined behind it (CVE-2011-0411).
    c.send(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n");
    // The default policy closes without a 220 or a handshake.
    assert!(c.closed());
    assert!(server.files("new").is_empty());
    server.shutdown();
}

#[test]
fn implicit_tls_listener() {
    let server = start_store(Credentials::new(), |o| {
        o.tls_listen = vec!["127.0.0.1:0".parse().unwrap()];
    });
    let mut c = Client::connect_tls(server.tls_addr.unwrap(), &server.identity);
    c.expect("220 mx.test");
    let ehlo = c.reply_after("EHLO client.test");
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    c.cmd("MAIL FROM:<a@example.org>", "250");
    c.cmd("RCPT TO:<b@example.net>", "250");
    c.cmd("DATA", "354");
    c.send(b"x\r\n.\r\n");
    let id = queued_id(&c.expect("250"));
    c.cmd("QUIT", "221");
    let stored = String::from_utf8(read(&server.maildir().join("new").join(&id))).unwrap();
    assert!(stored.contains("with ESMTPS id"), "{stored}");
    server.shutdown();
}

/// An implicit-TLS connection that never starts its handshake is closed
/// by the session's handshake timer, without an SMTP byte: the listener follows
/// the session's `StartTls`, whose timer is the only one.
#[test]
fn implicit_tls_handshake_times_out() {
    let server = start_store(Credentials::new(), |o| {
        o.tls_listen = vec!["127.0.0.1:0".parse().unwrap()];
        o.session.timeouts.tls_handshake = Duration::from_millis(200);
    });
    let mut c = Client::connect(server.tls_addr.unwrap());
    let started = Instant::now();
    let mut got = Vec::new();
    c.stream().read_to_end(&mut got).unwrap();
    assert!(started.elapsed() < TIMEOUT);
    // At most the TLS layer's closing alert (content type 21), never SMTP.
    assert!(got.is_empty() || got[0] == 21, "{got:?}");
    assert!(got.len() <= 7, "{got:?}");
    // A plaintext connection meanwhile is greeted as usual.
    let mut plain = server.connect();
    plain.expect("220 mx.test");
    server.shutdown();
}

/// A backend that refuses every connection, with what it was told.
struct Refuse(Arc<Mutex<Vec<ConnectionInfo>>>);

/// The session [`Refuse`] never makes.
struct Never;

impl Session for Never {}

impl Backend for Refuse {
    type Session = Never;
    fn connect(&self, info: &ConnectionInfo) -> Result<Never, Reply<'static>> {
        self.0.lock().unwrap().push(info.clone());
        Err(Reply::new(ReplyCode::new(554).unwrap(), "no service for you").unwrap())
    }
}

/// On an implicit-TLS listener the backend decides after the handshake (it
/// sees the TLS parameters), and its refusal is the greeting, over TLS.
#[test]
fn implicit_tls_refusal_is_the_greeting() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = start_with(
        Refuse(Arc::clone(&seen)),
        tempfile::tempdir().unwrap(),
        |o| o.tls_listen = vec!["127.0.0.1:0".parse().unwrap()],
    );
    let mut c = Client::connect_tls(server.tls_addr.unwrap(), &server.identity);
    c.expect("554 no service for you");
    c.cmd("MAIL FROM:<a@example.org>", "503");
    c.cmd("QUIT", "221");
    let mut plain = server.connect();
    plain.expect("554 no service for you");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].tls.is_some(), "connect saw the TLS parameters");
    assert!(
        seen[1].tls.is_none(),
        "a plaintext connection is decided at once"
    );
    server.shutdown();
}

/// A backend whose RCPT answers come from worker threads, late: each
/// question is announced on a channel, and the answers wait for a gate the
/// test opens. The loop must keep them in order and keep serving other
/// connections meanwhile.
struct SlowRcpt {
    asked: Mutex<Sender<()>>,
    gate: Arc<Gate>,
}

struct SlowRcptSession {
    asked: Sender<()>,
    gate: Arc<Gate>,
}

impl Backend for SlowRcpt {
    type Session = SlowRcptSession;
    fn connect(&self, _info: &ConnectionInfo) -> Result<SlowRcptSession, Reply<'static>> {
        Ok(SlowRcptSession {
            asked: self.asked.lock().unwrap().clone(),
            gate: Arc::clone(&self.gate),
        })
    }
}

impl Session for SlowRcptSession {
    fn rcpt(&mut self, to: &ForwardPath<'_>, _params: &RcptParameters<'_>, answer: Responder) {
        let refuse = to.to_string().contains("nobody");
        let gate = Arc::clone(&self.gate);
        let _ = self.asked.send(());
        std::thread::spawn(move || {
            assert!(gate.wait(TIMEOUT), "the test never opened the gate");
            if refuse {
                answer.reply(Reply::new(ReplyCode::MAILBOX_UNAVAILABLE, "no such user").unwrap());
            } else {
                answer.accept();
            }
        });
    }

    fn data_end(&mut self, _envelope: &Envelope<'_>, _size: u64, answers: Vec<Responder>) {
        // Dropped without an answer: the loop must answer 451 itself.
        drop(answers);
    }
}

#[test]
fn late_answers_from_other_threads_keep_their_order() {
    let (asked, questions) = mpsc::channel();
    let gate = Arc::new(Gate::new());
    let backend = SlowRcpt {
        asked: Mutex::new(asked),
        gate: Arc::clone(&gate),
    };
    let server = start_with(backend, tempfile::tempdir().unwrap(), |_| {});
    let mut c = server.connect();
    let mut other = server.connect();
    c.expect("220");
    other.expect("220");
    c.reply_after("EHLO client.test");
    c.send(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<ok1@example.net>\r\nRCPT TO:<nobody@example.net>\r\nRCPT TO:<ok2@example.net>\r\nDATA\r\n",
    );
    // The first RCPT is asked and its answer held back: while it is
    // pending, another connection is served.
    questions.recv_timeout(TIMEOUT).unwrap();
    other.cmd("NOOP", "250");
    gate.open();
    for code in ["250", "250", "550", "250", "354"] {
        c.expect(code);
    }
    c.send(b"body\r\n.\r\n");
    c.expect("451 4.3.0");
    c.cmd("QUIT", "221");
    server.shutdown();
}

/// An LMTP backend answering the second recipient with a temporary
/// failure from a worker thread, which then hands the first recipient's
/// responder to the test: the second answer is always given first.
struct Lmtp(Mutex<Sender<Responder>>);

struct LmtpSession(Sender<Responder>);

impl Backend for Lmtp {
    type Session = LmtpSession;
    fn connect(&self, _info: &ConnectionInfo) -> Result<LmtpSession, Reply<'static>> {
        Ok(LmtpSession(self.0.lock().unwrap().clone()))
    }
}

impl Session for LmtpSession {
    fn data_end(&mut self, _envelope: &Envelope<'_>, _size: u64, mut answers: Vec<Responder>) {
        assert_eq!(answers.len(), 2);
        let second = answers.pop().unwrap();
        let first = answers.pop().unwrap();
        let to_test = self.0.clone();
        std::thread::spawn(move || {
            second.reply(Reply::new(ReplyCode::MAILBOX_BUSY, "mailbox busy").unwrap());
            let _ = to_test.send(first);
        });
    }
}

/// A backend handing out the first recipient's responder: `(backend, the
/// responders)`.
fn lmtp() -> (Lmtp, Receiver<Responder>) {
    let (tx, rx) = mpsc::channel();
    (Lmtp(Mutex::new(tx)), rx)
}

#[test]
fn lmtp_gets_one_reply_per_recipient_in_order() {
    let (backend, firsts) = lmtp();
    let server = start_with(backend, tempfile::tempdir().unwrap(), |o| {
        o.session.protocol = Protocol::Lmtp;
    });
    let mut c = server.connect();
    c.expect("220");
    c.reply_after("LHLO client.test");
    c.cmd("MAIL FROM:<a@example.org>", "250");
    c.cmd("RCPT TO:<one@example.net>", "250");
    c.cmd("RCPT TO:<two@example.net>", "250");
    c.cmd("DATA", "354");
    c.send(b"x\r\n.\r\n");
    // The second recipient's answer is in; the first comes now, from here.
    firsts.recv_timeout(TIMEOUT).unwrap().accept();
    c.expect("250");
    c.expect("450");
    c.cmd("QUIT", "221");
    server.shutdown();
}

#[test]
fn connections_beyond_the_limit_get_421() {
    // One loop: it frees a connection's slot as it drops the session, before
    // it can accept the next connection.
    let server = start_store(Credentials::new(), |o| {
        o.limits = ConnectionLimits::new(2, 2);
        o.threads = 1;
    });
    let mut a = server.connect();
    let mut b = server.connect();
    a.expect("220");
    b.expect("220");
    let mut c = server.connect();
    c.expect("421 4.7.0");
    assert!(c.closed());
    a.cmd("QUIT", "221");
    assert!(a.closed());
    drop(a);
    // Once its session ended, the slot is free again.
    server.wait_sessions_ended(1);
    let mut d = server.connect();
    d.expect("220");
    server.shutdown();
}

#[test]
fn clients_vanishing_mid_data_leave_nothing_behind() {
    let server = start_store(Credentials::new(), |_| {});
    let mut ids = Vec::new();
    for i in 0..10 {
        let mut c = server.connect();
        c.expect("220");
        c.reply_after("EHLO client.test");
        c.cmd("MAIL FROM:<a@example.org>", "250");
        c.cmd("RCPT TO:<b@example.net>", "250");
        c.cmd("DATA", "354");
        c.send(format!("message {i}\r\n").as_bytes());
        c.send(&vec![b'x'; 20_000]);
        if i % 2 == 0 {
            drop(c); // gone in the middle of DATA
        } else {
            c.send(b"\r\n.\r\n");
            ids.push(queued_id(&c.expect("250")));
        }
    }
    // Every session is gone, and with it any message it had begun.
    server.wait_sessions_ended(10);
    assert!(server.files("tmp").is_empty());
    let new: Vec<String> = server
        .files("new")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    assert_eq!(new, ids, "exactly the messages that got a 250");
    server.shutdown();
}

#[test]
fn idle_connection_times_out_with_421() {
    let server = start_store(Credentials::new(), |o| {
        o.session.timeouts.command = Duration::from_millis(300);
    });
    let mut c = server.connect();
    c.expect("220");
    let started = Instant::now();
    c.expect("421");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(c.closed());
    server.shutdown();
}

#[test]
fn graceful_shutdown_lets_a_message_finish() {
    // One loop: it stops accepting before it sends the 421s, so the idle
    // connection's 421 says that the listener is closed.
    let server = start_store(Credentials::new(), |o| o.threads = 1);
    let mut idle = server.connect();
    idle.expect("220");
    let mut busy = server.connect();
    busy.expect("220");
    busy.reply_after("EHLO client.test");
    busy.cmd("MAIL FROM:<a@example.org>", "250");
    busy.cmd("RCPT TO:<b@example.net>", "250");
    busy.cmd("DATA", "354");
    busy.send(b"first part\r\n");
    let handle = server.running.as_ref().unwrap().shutdown_handle();
    handle.shutdown();
    idle.expect("421");
    assert!(idle.closed());
    // New connections are refused once the loop stopped accepting.
    assert!(TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)).is_err());
    busy.send(b"second part\r\n.\r\n");
    busy.expect("250");
    busy.expect("421");
    assert!(busy.closed());
    assert_eq!(server.files("new").len(), 1);
    server.shutdown();
}

#[test]
fn a_client_that_never_reads_is_throttled_not_buffered() {
    // Pipelined NOOPs would be refused at once by the synchronization
    // rule; with it off the reply buffer is what stops the client.
    let server = start_store(Credentials::new(), |o| {
        o.session.forbid_unauth_pipelining = false;
    });
    let mut greedy = TcpStream::connect_timeout(&server.addr, TIMEOUT).unwrap();
    greedy
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // Pipelined NOOPs without ever reading a reply: once the server's reply
    // buffer is full it stops reading, the socket buffers fill, and the
    // writer blocks.
    let chunk = b"NOOP\r\n".repeat(10_000);
    let mut written = 0usize;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        match greedy.write(&chunk) {
            Ok(n) => written += n,
            Err(_) => break,
        }
        if written > 200 * 1024 * 1024 {
            break;
        }
    }
    assert!(
        written < 200 * 1024 * 1024,
        "the server kept reading {written} bytes without anyone reading its replies"
    );
    // Everyone else is still served.
    let mut c = server.connect();
    c.expect("220");
    c.cmd("NOOP", "250");
    c.cmd("QUIT", "221");
    drop(greedy);
    server.shutdown();
}

/// A backend that refuses every message at DATA.
struct NoData;

struct NoDataSession;

impl Backend for NoData {
    type Session = NoDataSession;
    fn connect(&self, _info: &ConnectionInfo) -> Result<NoDataSession, Reply<'static>> {
        Ok(NoDataSession)
    }
}

impl Session for NoDataSession {
    fn data_start(
        &mut self,
        _envelope: &Envelope<'_>,
        _mode: smtp_proto::BodyMode,
        answer: Responder,
    ) {
        answer.reply(Reply::new(ReplyCode::LOCAL_ERROR, "not now").unwrap());
    }
}

#[test]
fn a_refused_data_does_not_hold_up_shutdown() {
    let server = start_with(NoData, tempfile::tempdir().unwrap(), |o| {
        o.shutdown_grace = Duration::from_secs(30);
    });
    let mut c = server.connect();
    c.expect("220");
    c.cmd("HELO client.test", "250");
    c.cmd("MAIL FROM:<a@example.org>", "250");
    c.cmd("RCPT TO:<b@example.net>", "250");
    c.cmd("DATA", "451");
    let started = Instant::now();
    server
        .running
        .as_ref()
        .unwrap()
        .shutdown_handle()
        .shutdown();
    c.expect("421");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited for the grace period"
    );
    server.shutdown();
}

/// Issue 7's fault test: 1,000 concurrent connections send a message while
/// every tenth drops in the middle of DATA. Afterwards the Maildir holds
/// exactly the messages that got a 250, byte-exact, and `tmp/` is empty.
#[test]
fn thousand_connections_with_drops_mid_data() {
    const CONNECTIONS: usize = 1_000;
    const CLIENT_THREADS: usize = 4;
    let server = start_store(Credentials::new(), |o| {
        o.limits = ConnectionLimits::new(CONNECTIONS + 10, CONNECTIONS + 10);
    });
    let addr = server.addr;
    let workers: Vec<_> = (0..CLIENT_THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let ids: Vec<usize> = (t..CONNECTIONS).step_by(CLIENT_THREADS).collect();
                // Open every connection of this worker first, so all of
                // them are in the server at once.
                let mut clients: Vec<(usize, Client)> = ids
                    .iter()
                    .map(|&i| {
                        let mut c = Client::connect(addr);
                        c.expect("220");
                        (i, c)
                    })
                    .collect();
                // HELO ends a group (RFC 2920 §3.1): wait for its reply.
                for (i, c) in &mut clients {
                    c.send(format!("HELO c{i}.test\r\n").as_bytes());
                }
                for (_, c) in &mut clients {
                    c.expect("250");
                }
                for (i, c) in &mut clients {
                    c.send(
                        format!(
                            "MAIL FROM:<s{i}@example.org>\r\nRCPT TO:<r{i}@example.net>\r\nDATA\r\n"
                        )
                        .as_bytes(),
                    );
                }
                for (_, c) in &mut clients {
                    for code in ["250", "250", "354"] {
                        c.expect(code);
                    }
                }
                for (i, c) in &mut clients {
                    c.send(format!("Subject: message {i}\r\n\r\nbody of {i}\r\n").as_bytes());
                }
                let mut delivered = Vec::new();
                for (i, mut c) in clients {
                    if i % 10 == 0 {
                        drop(c); // gone in the middle of DATA
                        continue;
                    }
                    c.send(b".\r\n");
                    let id = queued_id(&c.expect("250"));
                    c.cmd("QUIT", "221");
                    delivered.push((i, id));
                }
                delivered
            })
        })
        .collect();
    let mut delivered: Vec<(usize, String)> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert_eq!(delivered.len(), CONNECTIONS - CONNECTIONS / 10);
    server.wait_sessions_ended(CONNECTIONS);
    assert!(server.files("tmp").is_empty());
    let new = server.files("new");
    assert_eq!(new.len(), delivered.len());
    delivered.sort();
    for (i, id) in delivered {
        let stored = String::from_utf8(read(&server.maildir().join("new").join(&id))).unwrap();
        let body = stored.split_once("Subject: ").map(|(_, b)| b).unwrap();
        assert_eq!(body, format!("message {i}\r\n\r\nbody of {i}\r\n"));
        assert!(stored.starts_with(&format!("Received: from c{i}.test ([127.0.0.1])")));
    }
    server.shutdown();
}

/// Issue 7's slow-client test (time scaled down): 500 connections trickle
/// a command a byte at a time; a normal client still delivers at once, and
/// when the trickling stops their idle timeouts close them all.
#[test]
fn slow_trickling_connections_do_not_block_others_and_time_out() {
    const SLOW: usize = 500;
    const TRICKLE_PACE: Duration = Duration::from_millis(200);
    let server = start_store(Credentials::new(), |o| {
        o.limits = ConnectionLimits::new(SLOW + 10, SLOW + 10);
        o.session.timeouts.command = Duration::from_secs(1);
    });
    let mut slow: Vec<Client> = (0..SLOW)
        .map(|_| {
            let mut c = server.connect();
            c.expect("220");
            c
        })
        .collect();
    let command = b"NOOP\r\n";
    let mut normal = server.connect();
    normal.expect("220");
    for (round, byte) in command.iter().enumerate() {
        for c in &mut slow {
            c.send(&[*byte]);
        }
        if round == 2 {
            // Mid-trickle, a normal client does a whole transaction.
            let started = Instant::now();
            normal.cmd("HELO normal.test", "250");
            normal.cmd("MAIL FROM:<a@example.org>", "250");
            normal.cmd("RCPT TO:<b@example.net>", "250");
            normal.cmd("DATA", "354");
            normal.send(b"hi\r\n.\r\n");
            normal.expect("250");
            normal.cmd("QUIT", "221");
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        // The slow clients' pace: what this test is about, not a wait for
        // the server (the whole command takes about as long as the command
        // timeout).
        std::thread::sleep(TRICKLE_PACE);
    }
    // Every trickled command was answered.
    for c in &mut slow {
        c.expect("250");
    }
    // Now they go silent: the command timeout closes each with a 421.
    for c in &mut slow {
        c.expect("421");
        assert!(c.closed());
    }
    assert_eq!(server.files("new").len(), 1);
    server.shutdown();
}

/// The final reply survives input the server never read: the connection is
/// closed with a FIN after the reply (and the rest of the input drained),
/// not reset with the reply still in flight.
#[test]
fn last_reply_survives_unread_input_after_quit() {
    // NOOP and QUIT pipelined (the synchronization rule off: it would
    // answer the QUIT with 554, see smtp-mio/tests/sync.rs).
    let server = start_store(Credentials::new(), |o| {
        o.session.forbid_unauth_pipelining = false;
    });
    for _ in 0..5 {
        let mut c = server.connect();
        c.expect("220");
        let mut batch = b"NOOP\r\nQUIT\r\n".to_vec();
        batch.extend(std::iter::repeat_n(b'x', 256 * 1024));
        c.send(&batch);
        c.expect("250");
        c.expect("221");
        assert!(c.closed_cleanly(), "reset instead of FIN");
    }
    server.shutdown();
}

impl Client {
    /// Whether the server closed with a FIN (EOF), not a reset.
    fn closed_cleanly(&mut self) -> bool {
        let mut buf = [0u8; 256];
        loop {
            match self.stream().read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }
}

#[test]
fn bdat_chunks_are_stored_byte_exact() {
    // The default policy refuses the bare LF below (smtp-mio/tests/nul.rs,
    // tests/tests/server_nul.rs); `Accept` stores chunks as sent.
    let server = start_store(Credentials::new(), |o| {
        o.session.bare_line_ending = smtp_proto::data::BareLineEnding::Accept;
    });
    let mut c = server.connect();
    c.expect("220");
    let ehlo = c.reply_after("EHLO client.test");
    assert!(ehlo.iter().any(|l| l.contains("CHUNKING")), "{ehlo:?}");
    c.cmd("MAIL FROM:<a@example.org>", "250");
    c.cmd("RCPT TO:<b@example.net>", "250");
    // Counted chunks: a lone dot and a bare LF are content, not framing.
    c.send(b"BDAT 9\r\nSubject:\n");
    c.expect("250");
    c.send(b"BDAT 6 LAST\r\n.\r\nx\r\n");
    let id = queued_id(&c.expect("250"));
    c.cmd("QUIT", "221");
    let stored = read(&server.maildir().join("new").join(&id));
    assert!(stored.starts_with(b"Received: from client.test ([127.0.0.1])\r\n"));
    let body_at = stored.windows(8).position(|w| w == b"Subject:").unwrap();
    assert_eq!(&stored[body_at..], b"Subject:\n.\r\nx\r\n");
    server.shutdown();
}
