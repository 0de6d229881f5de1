//! The envelope a backend sees: at the start and end of each message and
//! when a transaction is reset, the protocol session's own record — the
//! accepted MAIL and RCPT only, nothing of an earlier transaction on the
//! same connection — over a real socket, with pipelining and answers given
//! from other threads. And the store backend, which builds its trace header
//! and log lines from it, writes what it wrote when it tracked the commands
//! itself.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use smtp_mio::server::maildir::Maildir;
use smtp_mio::server::store::{Credentials, Store, StoreBackend};
use smtp_mio::server::trace::{ProtocolBase, Received, WithProtocol};
use smtp_mio::server::{Backend, ConnectionInfo, Options, Responder, Running, Server, Session};
use smtp_proto::BodyMode;
use smtp_proto::address::{Domain, ForwardPath};
use smtp_proto::command::RcptParameters;
use smtp_proto::reply::{EnhancedStatusCode, Reply, ReplyCode};
use smtp_proto::server::{Config, Envelope, ResetReason};
use smtp_tests::line_client::LineClient;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Starts `backend` on loopback with one loop.
fn start<B: Backend>(backend: B) -> (Running, std::net::SocketAddr) {
    let mut config = Config::new(Domain::new("mx.test").unwrap());
    // These tests pipeline transactions behind the end of data to check
    // that each envelope stays its own; the synchronization rule (on by
    // default) would refuse that.
    config.forbid_unauth_pipelining = false;
    let mut options = Options::new(config);
    options.listen = vec!["127.0.0.1:0".parse().unwrap()];
    options.threads = 1;
    let server = Server::bind(options, backend).unwrap();
    let addr = server.local_addrs()[0];
    (server.spawn().unwrap(), addr)
}

/// Writes `batch` and returns the last line of each of the next `n`
/// replies.
fn batch(c: &mut LineClient, batch: &str, n: usize) -> Vec<String> {
    c.write(batch.as_bytes());
    (0..n).map(|_| c.last_line()).collect()
}

fn codes(replies: &[String]) -> Vec<&str> {
    replies.iter().map(|r| &r[..3]).collect()
}

/// Records what its sessions see of each envelope; refuses recipients
/// named `nobody`, answering every RCPT from another thread.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
}

struct RecorderSession {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Backend for Recorder {
    type Session = RecorderSession;
    fn connect(&self, _: &ConnectionInfo) -> Result<RecorderSession, Reply<'static>> {
        Ok(RecorderSession {
            seen: Arc::clone(&self.seen),
        })
    }
}

impl RecorderSession {
    fn record(&self, what: &str, envelope: &Envelope<'_>) {
        let to: Vec<String> = envelope
            .recipients()
            .map(|(to, _)| to.to_string())
            .collect();
        let size = envelope
            .params()
            .size
            .map_or(String::new(), |s| format!(" SIZE={s}"));
        self.seen.lock().unwrap().push(format!(
            "{what} {}{size} -> {}",
            envelope.from(),
            to.join(",")
        ));
    }
}

impl Session for RecorderSession {
    fn rcpt(&mut self, to: &ForwardPath<'_>, _: &RcptParameters<'_>, answer: Responder) {
        let unknown = matches!(to, ForwardPath::Mailbox(m) if m.local_part().as_str() == "nobody");
        std::thread::spawn(move || {
            if unknown {
                let reply = Reply::with_enhanced(
                    ReplyCode::MAILBOX_UNAVAILABLE,
                    EnhancedStatusCode::BAD_DESTINATION_MAILBOX,
                    "No such user",
                );
                answer.reply(reply.unwrap());
            } else {
                answer.accept();
            }
        });
    }

    fn data_start(&mut self, envelope: &Envelope<'_>, _: BodyMode, answer: Responder) {
        self.record("data-start", envelope);
        answer.accept();
    }

    fn data_end(&mut self, envelope: &Envelope<'_>, size: u64, answers: Vec<Responder>) {
        self.record(&format!("data-end {size}"), envelope);
        for answer in answers {
            answer.accept();
        }
    }

    fn reset(&mut self, envelope: &Envelope<'_>, reason: ResetReason) {
        self.record(&format!("reset {reason:?}"), envelope);
    }
}

#[test]
fn a_backend_sees_each_transactions_envelope_after_rset_and_pipelining() {
    let recorder = Recorder::default();
    let (running, addr) = start(recorder.clone());
    let mut c = LineClient::connect(addr, TIMEOUT);
    assert_eq!(c.last_line(), "220 mx.test ESMTP");
    // One pipelined batch: a transaction given up with RSET, then one with
    // a refused recipient among accepted ones.
    let replies = batch(
        &mut c,
        "EHLO client.test\r\nMAIL FROM:<old@example.org>\r\nRCPT TO:<old@example.net>\r\nRSET\r\n\
         MAIL FROM:<a@example.org> SIZE=4\r\nRCPT TO:<b@example.net>\r\n\
         RCPT TO:<nobody@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n",
        9,
    );
    assert_eq!(
        codes(&replies),
        [
            "250", "250", "250", "250", "250", "250", "550", "250", "354"
        ]
    );
    assert_eq!(
        batch(&mut c, "hi\r\n.\r\n", 1)[0],
        "250 2.0.0 Message accepted"
    );
    // A second transaction on the same connection, BDAT this time.
    let replies = batch(
        &mut c,
        "MAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nBDAT 5 LAST\r\nhello",
        3,
    );
    assert_eq!(codes(&replies), ["250", "250", "250"]);
    assert_eq!(batch(&mut c, "QUIT\r\n", 1)[0][..3], *"221");
    drop(c);
    running.shutdown().unwrap();
    assert_eq!(
        *recorder.seen.lock().unwrap(),
        [
            "reset Rset <old@example.org> -> <old@example.net>",
            "data-start <a@example.org> SIZE=4 -> <b@example.net>,<c@example.net>",
            "data-end 4 <a@example.org> SIZE=4 -> <b@example.net>,<c@example.net>",
            "data-start <> -> <Postmaster>",
            "data-end 5 <> -> <Postmaster>",
        ]
    );
}

/// The stored messages of a store backend over one connection: a
/// transaction with SMTPUTF8 reset by RSET, then one to `<Postmaster>`
/// alone, then one with SMTPUTF8 to two recipients.
#[test]
fn the_store_backend_writes_the_same_trace_headers_from_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = Maildir::open(dir.path().join("maildir"))
        .unwrap()
        .with_hostname("mx.test");
    let backend = StoreBackend::new(
        Store::Maildir(Arc::new(maildir)),
        "mx.test",
        Credentials::new(),
    );
    let (running, addr) = start(backend);
    let mut c = LineClient::connect(addr, TIMEOUT);
    c.last_line();
    let replies = batch(
        &mut c,
        "EHLO client.test\r\nMAIL FROM:<a@example.org> SMTPUTF8\r\nRCPT TO:<b@example.net>\r\n\
         RSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<Postmaster>\r\nDATA\r\n",
        7,
    );
    assert_eq!(
        codes(&replies),
        ["250", "250", "250", "250", "250", "250", "354"]
    );
    let first = batch(&mut c, "Subject: one\r\n\r\n..dot\r\n.\r\n", 1).remove(0);
    let replies = batch(
        &mut c,
        "MAIL FROM:<a@example.org> SMTPUTF8\r\nRCPT TO:<c@example.net>\r\n\
         RCPT TO:<d@example.net>\r\nDATA\r\n",
        4,
    );
    assert_eq!(codes(&replies), ["250", "250", "250", "354"]);
    let second = batch(&mut c, "Subject: two\r\n\r\nbody\r\n.\r\n", 1).remove(0);
    batch(&mut c, "QUIT\r\n", 1);
    drop(c);
    running.shutdown().unwrap();

    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let esmtp = WithProtocol::new(ProtocolBase::Esmtp);
    for (reply, protocol, recipient, body) in [
        (
            &first,
            esmtp,
            Some("Postmaster"),
            "Subject: one\r\n\r\n.dot\r\n",
        ),
        (
            &second,
            esmtp.utf8(true),
            None,
            "Subject: two\r\n\r\nbody\r\n",
        ),
    ] {
        let id = reply.strip_prefix("250 2.0.0 Ok: queued as ").unwrap();
        let stored = std::fs::read(dir.path().join("maildir/new").join(id)).unwrap();
        let mut received = Received::new(
            "client.test",
            localhost,
            "mx.test",
            protocol,
            SystemTime::now(),
        )
        .with_id(id);
        if let Some(recipient) = recipient {
            received = received.with_recipient(recipient);
        }
        let mut expected = Vec::new();
        received.encode(&mut expected);
        // Everything but the date, which is the moment of writing.
        let date_at = expected.windows(2).rposition(|w| w == b"; ").unwrap() + 2;
        assert_eq!(
            String::from_utf8_lossy(&stored[..date_at]),
            String::from_utf8_lossy(&expected[..date_at])
        );
        let header_end = date_at
            + stored[date_at..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .unwrap()
            + 2;
        assert_eq!(String::from_utf8_lossy(&stored[header_end..]), body);
    }
}
