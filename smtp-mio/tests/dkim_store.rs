//! The store backend with DKIM verification, driven by the blocking client
//! with its own DKIM signing: a signed message is stored with
//! `Authentication-Results` in front; a policy refuses unsigned mail with
//! its reply and keeps nothing of it; a streamed message is signed from a
//! seekable reader and refused from a plain one; the delivery engine signs
//! what a handle submits.

mod common;

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use smtp_blocking::{Connection, Envelope, Error, Outcome, ServerUrl, Settings};
use smtp_mio::delivery::{Engine, EngineConfig, Failure, Job, Relay};
use smtp_mio::server::authentication::{DkimConfig, DkimService};
use smtp_mio::server::maildir::Maildir;
use smtp_mio::server::store::{Credentials, Store, StoreBackend};
use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
use smtp_proto::dkim::{Signer, SigningKey, Verdict};
use smtp_proto::mx::TlsPolicy;
use smtp_proto::reply::{EnhancedStatusCode, Reply, ReplyCode};
use smtp_tests::fake_dns::{self, Answer, FakeDns};

use common::{TIMEOUT, TestServer, dkim_service, start_with, store_backend};

const MESSAGE: &[u8] =
    b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: s\r\n\r\nHello.\r\n";

fn key() -> SigningKey {
    SigningKey::ed25519_from_seed(&[9u8; 32]).unwrap()
}

fn dns() -> FakeDns {
    let record = key().dns_record();
    FakeDns::start(vec![(
        "k._domainkey.example.org",
        RecordType::TXT,
        Answer::records(vec![fake_dns::txt("k._domainkey.example.org", &[&record])]),
    )])
}

/// A store server verifying DKIM through `dns`; `refuse_unsigned` adds a
/// policy refusing mail without a passing signature.
fn server(dns: &FakeDns, refuse_unsigned: bool) -> TestServer {
    let (dir, backend) = store_backend(Credentials::new());
    let mut backend = backend.with_dkim(dkim_service(dns));
    if refuse_unsigned {
        backend = backend.with_dkim_policy(|results| {
            let passed = results.iter().any(|r| r.verdict() == Verdict::Pass);
            (!passed).then(|| {
                Reply::with_enhanced(
                    ReplyCode::MAILBOX_UNAVAILABLE,
                    EnhancedStatusCode::new(5, 7, 20).unwrap(),
                    "No passing DKIM signature found",
                )
                .unwrap()
            })
        });
    }
    start_with(backend, dir, |_| {})
}

fn connect(server: &TestServer, dkim: Vec<Signer>) -> Connection {
    let mut settings = Settings::default().with_timeout(TIMEOUT);
    settings.dkim = dkim;
    let url: ServerUrl = format!("smtp://{}?tls=off", server.addr).parse().unwrap();
    Connection::open(&url, &settings).unwrap()
}

fn envelope() -> Envelope {
    let mailbox = |s: &str| Mailbox::parse(s).unwrap().into_owned();
    Envelope::new(
        ReversePath::Mailbox(mailbox("alice@example.org")),
        vec![ForwardPath::Mailbox(mailbox("bob@example.net"))],
    )
}

#[test]
fn signed_message_is_stored_with_results_in_front() {
    let dns = dns();
    let server = server(&dns, true);
    let signer = Signer::new(key(), "example.org", "k").unwrap();
    let mut conn = connect(&server, vec![signer]);
    let report = conn.send(&envelope(), MESSAGE).unwrap();
    assert!(
        report
            .recipients
            .iter()
            .all(|r| r.outcome == Outcome::Accepted)
    );
    // Streamed from a seekable reader: hashed, rewound, sent.
    conn.send_seekable(&envelope(), Cursor::new(MESSAGE))
        .unwrap();
    // A plain reader cannot be signed: refused before anything is sent.
    let err = conn.send_reader(&envelope(), MESSAGE).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    conn.quit().unwrap();
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    for m in &messages {
        assert!(
            m.starts_with("Authentication-Results: mx.test;\r\n\tdkim=pass header.d=example.org"),
            "{m}"
        );
        assert_eq!(m.matches("DKIM-Signature:").count(), 1);
        assert!(m.ends_with("\r\n\r\nHello.\r\n"));
    }
}

#[test]
fn policy_refuses_unsigned_mail_and_keeps_nothing() {
    let dns = dns();
    let server = server(&dns, true);
    let mut conn = connect(&server, Vec::new());
    let report = conn.send(&envelope(), MESSAGE).unwrap();
    let reply = report.data.expect("a reply to the end of data");
    assert_eq!(reply.code(), ReplyCode::MAILBOX_UNAVAILABLE);
    assert!(
        reply.text().contains("No passing DKIM signature"),
        "{reply:?}"
    );
    assert_eq!(report.recipients[0].outcome, Outcome::PermanentFailure);
    drop(conn);
    server.wait_sessions_ended(1);
    assert!(server.files("new").is_empty());
    assert!(server.files("tmp").is_empty());
}

#[test]
fn without_policy_unsigned_mail_is_stored_as_none() {
    let dns = dns();
    let server = server(&dns, false);
    let mut conn = connect(&server, Vec::new());
    conn.send(&envelope(), MESSAGE).unwrap();
    conn.quit().unwrap();
    let messages = server.messages();
    assert!(
        messages[0].starts_with("Authentication-Results: mx.test;\r\n\tdkim=none\r\n"),
        "{}",
        messages[0]
    );
}

#[test]
fn delivery_engine_signs_through_a_handle_and_refuses_the_unsignable() {
    let dns = dns();
    let server = server(&dns, false);
    let mut relay = Relay::new(server.addr.ip().to_string(), server.addr.port());
    relay.tls = TlsPolicy::plaintext();
    let mut config = EngineConfig::relay(relay);
    config.dkim = vec![Signer::new(key(), "example.org", "k").unwrap()];
    let mut engine = Engine::new(config).unwrap();
    let handle = engine.handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let loop_thread = std::thread::spawn(move || engine.run(|r| tx.send(r).unwrap()));
    let signed = handle.submit(Job::new(envelope(), MESSAGE)).unwrap();
    // No From field: no signature can cover it, so it is not sent.
    let unsignable = handle
        .submit(Job::new(envelope(), &b"Subject: s\r\n\r\nHello.\r\n"[..]))
        .unwrap();
    let mut results = std::collections::HashMap::new();
    for _ in 0..2 {
        let r = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        results.insert(r.id, r);
    }
    handle.shutdown();
    loop_thread.join().unwrap().unwrap();
    assert!(results[&signed].all_accepted());
    let refused = &results[&unsignable].recipients[0];
    assert!(
        matches!(refused.failure, Some(Failure::Dkim(_))),
        "{refused:?}"
    );
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0]
            .starts_with("Authentication-Results: mx.test;\r\n\tdkim=pass header.d=example.org"),
        "{}",
        messages[0]
    );
}

#[test]
fn a_silent_key_server_holds_up_only_its_own_message() {
    // One selector's lookups are never answered: its message waits for the
    // service's deadline, then reports temperror. Meanwhile another
    // connection's message goes through (same server, one event loop).
    let record = key().dns_record();
    let dns = FakeDns::start(vec![
        (
            "k._domainkey.example.org",
            RecordType::TXT,
            Answer::records(vec![fake_dns::txt("k._domainkey.example.org", &[&record])]),
        ),
        (
            "slow._domainkey.example.org",
            RecordType::TXT,
            Answer::Silent,
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let maildir = Maildir::open(dir.path().join("maildir"))
        .unwrap()
        .with_hostname("mx.test");
    let mut resolver = common::resolver(&dns);
    // Long beside a loopback exchange, so the other message is surely done
    // first; short enough for a test.
    resolver.timeout = Duration::from_secs(8);
    let mut config = DkimConfig::new(resolver);
    config.timeout = Duration::from_secs(8);
    let backend = StoreBackend::new(
        Store::Maildir(Arc::new(maildir)),
        "mx.test",
        Credentials::new(),
    )
    .with_dkim(DkimService::start(config).unwrap());
    let server = start_with(backend, dir, |o| o.threads = 1);

    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let mut slow = connect(
        &server,
        vec![Signer::new(key(), "example.org", "slow").unwrap()],
    );
    let waiting = std::thread::spawn(move || {
        let report = slow.send(&envelope(), MESSAGE);
        done_tx.send(()).unwrap();
        report
    });
    let mut fast = connect(
        &server,
        vec![Signer::new(key(), "example.org", "k").unwrap()],
    );
    fast.send(&envelope(), MESSAGE).unwrap();
    assert!(
        done_rx.try_recv().is_err(),
        "the message waiting for its key was answered before the other"
    );
    let first = server.messages();
    assert_eq!(first.len(), 1);
    assert!(
        first[0].contains("dkim=pass header.d=example.org"),
        "{}",
        first[0]
    );
    waiting.join().unwrap().unwrap();
    let all = server.messages();
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|m| m.contains("dkim=temperror")), "{all:?}");
}
