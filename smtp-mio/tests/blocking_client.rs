//! The `smtp-blocking` client against the mio server over loopback:
//! STARTTLS verified against the server's self-signed certificate, AUTH,
//! pipelining, implicit TLS, CHUNKING, LMTP and connection reuse.
//!
//! Every test binds port 0 on 127.0.0.1 and gives the client a 10 s
//! timeout on every step, so no test can hang or touch the network.

use std::path::Path;
use std::sync::{Arc, Mutex};

use smtp_blocking::{
    Connection, Direction, Envelope, Outcome, ServerUrl, Settings, TlsConfig, TransactionReport,
};
use smtp_mio::server::store::Credentials;
use smtp_mio::server::{Backend, ConnectionInfo, Responder, Session};
use smtp_proto::Protocol;
use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
use smtp_proto::client::BodyTransfer;
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::{Reply, ReplyCode};
use smtp_proto::server;

mod common;
use common::{TIMEOUT, TestServer, start_store, start_with};

type Transcript = Arc<Mutex<Vec<(Direction, String)>>>;

/// Client settings trusting only the server's self-signed certificate,
/// with every timeout bounded and a transcript recorded.
fn settings(server: &TestServer) -> (Settings, Transcript) {
    let mut settings = Settings::default().with_timeout(TIMEOUT);
    settings.tls = TlsConfig::builder()
        .ca_pem(server.identity.chain_pem().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    settings.helo = Some("client.test".parse().unwrap());
    let transcript: Transcript = Arc::default();
    let sink = Arc::clone(&transcript);
    settings.trace = Some(Arc::new(move |direction: Direction, line: &str| {
        sink.lock().unwrap().push((direction, line.to_owned()));
    }));
    (settings, transcript)
}

fn open(url: &str, settings: &Settings) -> Connection {
    let url: ServerUrl = url.parse().unwrap();
    Connection::open(&url, settings).unwrap()
}

fn envelope(to: &[&str]) -> Envelope {
    let mailbox = |s: &str| Mailbox::parse(s).unwrap().into_owned();
    Envelope::new(
        ReversePath::Mailbox(mailbox("alice@example.org")),
        to.iter()
            .map(|r| ForwardPath::Mailbox(mailbox(r)))
            .collect(),
    )
}

/// The queue id: the last word of the reply to the end of the body.
fn queue_id(report: &TransactionReport) -> String {
    let reply = report.data.as_ref().expect("a reply to the body");
    assert!(reply.is_positive_completion(), "{reply:?}");
    reply
        .first_line()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Reads the stored message and checks it is exactly one `Received:`
/// trace header followed by `body`, byte for byte; returns the header.
fn stored_exactly(server: &TestServer, id: &str, body: &[u8]) -> String {
    let stored = std::fs::read(Path::new(&server.maildir()).join("new").join(id)).unwrap();
    assert!(stored.len() > body.len(), "{stored:?}");
    let (header, rest) = stored.split_at(stored.len() - body.len());
    assert_eq!(rest, body);
    let header = String::from_utf8(header.to_vec()).unwrap();
    assert!(header.starts_with("Received: from client.test ([127.0.0.1])\r\n"));
    // Only the trace header precedes the body: one field, folded lines.
    assert!(
        header
            .split("\r\n")
            .skip(1)
            .all(|l| l.is_empty() || l.starts_with('\t') || l.starts_with(' ')),
        "{header}"
    );
    header
}

fn position(
    transcript: &[(Direction, String)],
    from: usize,
    what: impl Fn(Direction, &str) -> bool,
) -> usize {
    transcript
        .iter()
        .skip(from)
        .position(|(d, l)| what(*d, l))
        .map(|i| i + from)
        .unwrap_or_else(|| panic!("not in transcript: {transcript:#?}"))
}

#[test]
fn starttls_auth_plain_pipelined_byte_exact() {
    let mut credentials = Credentials::new();
    credentials.add("alice", "s3cret");
    let server = start_store(credentials, |o| {
        o.session.auth.mechanisms = vec![Mechanism::PLAIN];
        o.session.auth.required_for_mail = true;
    });
    let (mut settings, transcript) = settings(&server);
    // DATA, so that the whole envelope and DATA form one pipelined group.
    settings.body_transfer = BodyTransfer::Data;
    let url = format!(
        "smtp://alice:s3cret@127.0.0.1:{}?tls=required",
        server.addr.port()
    );
    let mut conn = open(&url, &settings);
    assert!(conn.session().is_tls());
    assert_eq!(conn.session().authenticated(), Some(&Mechanism::PLAIN));
    let body = b"Subject: over TLS\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n";
    let report = conn
        .send(&envelope(&["b@example.net", "c@example.net"]), body)
        .unwrap();
    assert!(report.all_accepted(), "{report:?}");
    let id = queue_id(&report);
    conn.quit().unwrap();

    let header = stored_exactly(&server, &id, body);
    assert!(
        header.contains(&format!("with ESMTPSA id {id}")),
        "{header}"
    );
    assert!(
        header.contains("(using TLSv1.3 with cipher TLS13_"),
        "{header}"
    );

    // RFC 2920: MAIL, both RCPTs and DATA went out before MAIL's reply.
    let t = transcript.lock().unwrap();
    let mail = position(&t, 0, |d, l| {
        d == Direction::Client && l.starts_with("MAIL FROM:")
    });
    let data = position(&t, mail, |d, l| d == Direction::Client && l == "DATA");
    let first_reply = position(&t, mail, |d, _| d == Direction::Server);
    assert!(data < first_reply, "not pipelined: {t:#?}");
    let rcpts = t[mail..data]
        .iter()
        .filter(|(d, l)| *d == Direction::Client && l.starts_with("RCPT TO:"))
        .count();
    assert_eq!(rcpts, 2, "{t:#?}");
    drop(t);
    server.shutdown();
}

#[test]
fn implicit_tls() {
    let server = start_store(Credentials::new(), |o| {
        o.tls_listen = vec!["127.0.0.1:0".parse().unwrap()];
    });
    let (settings, _) = settings(&server);
    let port = server.tls_addr.unwrap().port();
    let mut conn = open(&format!("smtps://127.0.0.1:{port}"), &settings);
    assert!(conn.session().is_tls());
    let body = b"Subject: implicit\r\n\r\nhello\r\n";
    let report = conn.send(&envelope(&["b@example.net"]), body).unwrap();
    assert!(report.all_accepted(), "{report:?}");
    let id = queue_id(&report);
    conn.quit().unwrap();
    let header = stored_exactly(&server, &id, body);
    assert!(header.contains(&format!("with ESMTPS id {id}")), "{header}");
    server.shutdown();
}

#[test]
fn chunking_delivers_byte_exact() {
    let server = start_store(Credentials::new(), |_| {});
    let (settings, transcript) = settings(&server);
    let mut conn = open(
        &format!("smtp://127.0.0.1:{}?tls=off", server.addr.port()),
        &settings,
    );
    // A lone dot line and dot-led lines are plain content under BDAT; a
    // large body so that it takes more than one read on the server.
    let mut body = b"Subject: chunks\r\n\r\n.\r\n..\r\n".to_vec();
    for i in 0..20_000 {
        body.extend_from_slice(format!("line {i} of the body\r\n").as_bytes());
    }
    let report = conn.send(&envelope(&["b@example.net"]), &body).unwrap();
    assert!(report.all_accepted(), "{report:?}");
    let id = queue_id(&report);
    conn.quit().unwrap();
    stored_exactly(&server, &id, &body);
    let t = transcript.lock().unwrap();
    assert!(
        t.iter().any(|(d, l)| *d == Direction::Client
            && l.starts_with("BDAT ")
            && l.ends_with(" LAST")),
        "{t:#?}"
    );
    assert!(
        !t.iter()
            .any(|(d, l)| *d == Direction::Client && l == "DATA"),
        "{t:#?}"
    );
    drop(t);
    server.shutdown();
}

/// An LMTP backend answering each recipient after the body on its own:
/// a local part starting with `busy` gets 450, the others 250.
struct Lmtp;

struct LmtpSession;

impl Backend for Lmtp {
    type Session = LmtpSession;
    fn connect(&self, _info: &ConnectionInfo) -> Result<LmtpSession, Reply<'static>> {
        Ok(LmtpSession)
    }
}

impl Session for LmtpSession {
    fn data_end(&mut self, envelope: &server::Envelope<'_>, _size: u64, answers: Vec<Responder>) {
        // One answer per accepted recipient, in the envelope's order.
        for ((to, _), answer) in envelope.recipients().zip(answers) {
            if to.to_string().starts_with("<busy") {
                answer.reply(Reply::new(ReplyCode::MAILBOX_BUSY, "mailbox busy").unwrap());
            } else {
                answer.accept();
            }
        }
    }
}

#[test]
fn lmtp_one_result_per_recipient() {
    let server = start_with(Lmtp, tempfile::tempdir().unwrap(), |o| {
        o.session.protocol = Protocol::Lmtp;
    });
    let (settings, transcript) = settings(&server);
    let mut conn = open(
        &format!("lmtp://127.0.0.1:{}?tls=off", server.addr.port()),
        &settings,
    );
    let to = ["one@example.net", "busy@example.net", "two@example.net"];
    let report = conn
        .send(&envelope(&to), b"Subject: lmtp\r\n\r\nx\r\n")
        .unwrap();
    let outcomes: Vec<Outcome> = report.recipients.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Accepted,
            Outcome::TransientFailure,
            Outcome::Accepted
        ]
    );
    let codes: Vec<u16> = report
        .recipients
        .iter()
        .map(|r| r.reply.as_ref().unwrap().code().as_u16())
        .collect();
    assert_eq!(codes, [250, 450, 250]);
    conn.quit().unwrap();
    let t = transcript.lock().unwrap();
    assert!(
        t.iter()
            .any(|(d, l)| *d == Direction::Client && l.starts_with("LHLO ")),
        "{t:#?}"
    );
    drop(t);
    server.shutdown();
}

#[test]
fn two_messages_over_one_connection() {
    let server = start_store(Credentials::new(), |_| {});
    let (settings, transcript) = settings(&server);
    let mut conn = open(
        &format!("smtp://127.0.0.1:{}?tls=off", server.addr.port()),
        &settings,
    );
    let first = b"Subject: one\r\n\r\nfirst\r\n";
    let second = b"Subject: two\r\n\r\nsecond\r\n";
    let report = conn.send(&envelope(&["b@example.net"]), first).unwrap();
    assert!(report.all_accepted(), "{report:?}");
    let id1 = queue_id(&report);
    let report = conn.send(&envelope(&["c@example.net"]), second).unwrap();
    assert!(report.all_accepted(), "{report:?}");
    let id2 = queue_id(&report);
    conn.quit().unwrap();
    assert_ne!(id1, id2);
    stored_exactly(&server, &id1, first);
    stored_exactly(&server, &id2, second);
    assert_eq!(server.files("new").len(), 2);
    let t = transcript.lock().unwrap();
    let count = |what: &dyn Fn(&(Direction, String)) -> bool| t.iter().filter(|e| what(e)).count();
    assert_eq!(
        count(&|(d, l)| *d == Direction::Info && l.starts_with("connected to")),
        1,
        "{t:#?}"
    );
    assert_eq!(
        count(&|(d, l)| *d == Direction::Client && l.starts_with("EHLO ")),
        1,
        "{t:#?}"
    );
    assert_eq!(
        count(&|(d, l)| *d == Direction::Client && l.starts_with("MAIL FROM:")),
        2,
        "{t:#?}"
    );
    drop(t);
    server.shutdown();
}
