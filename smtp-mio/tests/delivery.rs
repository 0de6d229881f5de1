//! The delivery engine against real servers on loopback: the smtp-mio
//! server (STARTTLS, AUTH), Postfix's `smtp-sink`, Python's `aiosmtpd`, a
//! fake DNS server for MX routing, and scripted servers that misbehave.
//!
//! Fault tests put each scripted server on its own loopback address
//! (127.0.0.x, same port) and address recipients to literals
//! (`user@[127.0.0.3]`), so one engine delivers to several hosts at once and
//! each test can check that the others were not affected.
//!
//! Every test is bounded: `drive` gives up after `LIMIT`.

mod common;
mod fake_smtp;

#[allow(dead_code, unreachable_pub)]
#[path = "../../tests/src/peers.rs"]
mod peers;

#[allow(dead_code)]
#[path = "../../smtp-blocking/tests/common/dns.rs"]
mod fake_dns;

#[allow(dead_code)]
#[path = "../../smtp-blocking/tests/common/tls.rs"]
mod tls_pki;

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use smtp_blocking::TlsConfig;
use smtp_mio::delivery::{
    Engine, EngineConfig, Failure, Job, JobId, JobResult, MxRouting, Relay, Status,
};
use smtp_mio::store::Credentials;
use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
use smtp_proto::client::{Credentials as Login, Envelope, Timeouts, TlsMode};
use smtp_proto::keyword::Mechanism;

use fake_dns::{Answer, FakeDns};
use fake_smtp::{Behaviour, FakeSmtp};

/// Upper bound on any one test's delivery loop.
const LIMIT: Duration = Duration::from_secs(60);

fn envelope(to: &[&str]) -> Envelope {
    Envelope::new(
        ReversePath::Mailbox(Mailbox::parse("sender@example.org").unwrap().into_owned()),
        to.iter()
            .map(|t| ForwardPath::Mailbox(Mailbox::parse(t).unwrap().into_owned()))
            .collect(),
    )
}

fn message(n: usize) -> Vec<u8> {
    format!(
        "From: sender@example.org\r\nSubject: test {n}\r\nMessage-ID: <{n}@example.org>\r\n\r\nBody of message {n}.\r\n.leading dot\r\n"
    )
    .into_bytes()
}

/// Short deadlines so misbehaving peers are given up on quickly.
fn short_timeouts() -> Timeouts {
    let mut t = Timeouts::default();
    let d = Duration::from_secs(2);
    t.greeting = d;
    t.mail = d;
    t.rcpt = d;
    t.data_initiation = d;
    t.data_block = d;
    t.data_termination = d;
    t.bdat_chunk = d;
    t.other = d;
    t.tls_handshake = d;
    t
}

/// Runs the engine until every submitted job is reported; checks that each
/// job got exactly one result.
fn drive(engine: &mut Engine, submitted: &[JobId]) -> Vec<JobResult> {
    let start = Instant::now();
    let mut results = Vec::new();
    while !engine.is_done() {
        assert!(start.elapsed() < LIMIT, "engine still busy: {engine:?}");
        engine.poll(Some(Duration::from_millis(100))).unwrap();
        while let Some(r) = engine.next_result() {
            results.push(r);
        }
    }
    while let Some(r) = engine.next_result() {
        results.push(r);
    }
    let ids: HashSet<JobId> = results.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), results.len(), "a job was reported twice");
    assert_eq!(
        ids,
        submitted.iter().copied().collect(),
        "every job reported exactly once"
    );
    results.sort_by_key(|r| r.id);
    results
}

/// Shuts down gracefully within the bound.
fn close(mut engine: Engine) {
    engine.shutdown();
    let start = Instant::now();
    while !engine.is_shut_down() {
        assert!(start.elapsed() < LIMIT, "shutdown still running");
        engine.poll(Some(Duration::from_millis(100))).unwrap();
    }
}

fn relay_to(addr: SocketAddr) -> Relay {
    let mut relay = Relay::new(addr.ip().to_string(), addr.port());
    relay.tls = TlsMode::Disabled;
    relay
}

/// A port free on 127.0.0.1 (fake servers on other loopback addresses
/// bind the same number).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---- relay to the smtp-mio server ------------------------------------------

#[test]
fn relay_with_starttls_and_auth_to_the_mio_server() {
    let mut credentials = Credentials::new();
    credentials.add("alice", "s3cret");
    let server = common::start_store(credentials, |o| {
        o.session.auth.mechanisms = vec![Mechanism::PLAIN, Mechanism::LOGIN];
        o.session.auth.required_for_mail = true;
    });
    let tls = TlsConfig::builder()
        .ca_pem(server.identity.chain_pem().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let mut relay = Relay::new("localhost", server.addr.port());
    relay.tls = TlsMode::Required;
    relay.credentials = Some(Login::password("alice", "s3cret"));
    let mut config = EngineConfig::relay(relay);
    config.tls = tls;
    config.max_connections = 3;
    config.max_per_destination = 3;
    config.timeouts = short_timeouts();
    let mut engine = Engine::new(config).unwrap();
    // The relay is named "localhost", which the test identity's
    // certificate covers: the chain and the name are both verified.
    let ids: Vec<JobId> = (0..12)
        .map(|n| {
            engine
                .submit(Job::new(envelope(&["bob@example.net"]), message(n)))
                .unwrap()
        })
        .collect();
    let results = drive(&mut engine, &ids);
    for r in &results {
        let rcpt = &r.recipients[0];
        assert_eq!(rcpt.status, Status::Accepted, "{r:?}");
        let peer = rcpt.peer.as_ref().unwrap();
        assert_eq!(peer.addr.port(), server.addr.port());
        assert!(rcpt.reply.as_ref().unwrap().code().is_positive_completion());
    }
    close(engine);
    let delivered = server.files("new");
    assert_eq!(delivered.len(), 12);
    let text = std::fs::read_to_string(&delivered[0]).unwrap();
    assert!(text.contains("with ESMTPSA"), "{text}");
    assert!(text.contains("\r\n.leading dot\r\n") || text.contains("\n.leading dot\n"));
}

// ---- limits, reuse, idle close ---------------------------------------------

#[test]
fn connections_are_limited_and_reused_with_rset() {
    let server = FakeSmtp::start("127.0.0.1", 0, Behaviour::Accept);
    let mut config = EngineConfig::relay(relay_to(server.addr()));
    config.max_connections = 10;
    config.max_per_destination = 3;
    config.max_messages_per_connection = 5;
    config.timeouts = short_timeouts();
    let mut engine = Engine::new(config).unwrap();
    let ids: Vec<JobId> = (0..40)
        .map(|n| {
            engine
                .submit(Job::new(
                    envelope(&[&format!("user{n}@example.net")]),
                    message(n),
                ))
                .unwrap()
        })
        .collect();
    let results = drive(&mut engine, &ids);
    assert!(results.iter().all(JobResult::all_accepted), "{results:?}");
    assert_eq!(server.messages(), 40);
    assert!(
        server.max_open() <= 3,
        "per-destination limit: {}",
        server.max_open()
    );
    // 40 messages, at most 5 per connection: at least 8 connections, and
    // reuse means far fewer than 40.
    assert!(server.connections() >= 8, "{}", server.connections());
    assert!(server.connections() < 20, "{}", server.connections());
    // Each reused transaction began with an RSET.
    assert_eq!(server.rsets(), 40 - server.connections());
    close(engine);
    assert_eq!(
        server.quits(),
        server.connections(),
        "every connection QUIT"
    );
}

#[test]
fn the_total_limit_holds_across_destinations() {
    let port = free_port();
    let servers: Vec<FakeSmtp> = (1..=4)
        .map(|i| FakeSmtp::start(&format!("127.0.0.{i}"), port, Behaviour::Accept))
        .collect();
    let dns = FakeDns::start(Vec::new());
    let mut mx = MxRouting::new(dns.resolver());
    mx.port = port;
    let mut config = EngineConfig::mx(mx);
    config.max_connections = 3;
    config.max_per_destination = 2;
    config.idle_timeout = Duration::from_millis(100);
    config.timeouts = short_timeouts();
    let mut engine = Engine::new(config).unwrap();
    let mut ids = Vec::new();
    for n in 0..24 {
        let host = n % 4 + 1;
        let to = format!("user{n}@[127.0.0.{host}]");
        ids.push(
            engine
                .submit(Job::new(envelope(&[&to]), message(n)))
                .unwrap(),
        );
    }
    let mut max_open = 0;
    let start = Instant::now();
    let mut results = Vec::new();
    while results.len() < ids.len() {
        assert!(start.elapsed() < LIMIT);
        engine.poll(Some(Duration::from_millis(20))).unwrap();
        max_open = max_open.max(engine.stats().connections);
        while let Some(r) = engine.next_result() {
            results.push(r);
        }
    }
    assert!(max_open <= 3, "engine held {max_open} connections");
    assert!(results.iter().all(JobResult::all_accepted), "{results:?}");
    for s in &servers {
        assert_eq!(s.messages(), 6);
        assert!(s.max_open() <= 2);
    }
    // Idle connections close on their own.
    let start = Instant::now();
    while engine.stats().connections > 0 {
        assert!(start.elapsed() < LIMIT, "idle connections never closed");
        engine.poll(Some(Duration::from_millis(50))).unwrap();
    }
    let quits: usize = servers.iter().map(FakeSmtp::quits).sum();
    let connections: usize = servers.iter().map(FakeSmtp::connections).sum();
    assert_eq!(quits, connections);
}

// ---- real peers -------------------------------------------------------------

#[test]
fn postfix_smtp_sink() {
    let Some(sink) = peers::smtp_sink() else {
        return;
    };
    let server = peers::start_smtp_sink(&sink).unwrap();
    let mut config = EngineConfig::relay(relay_to(server.addr()));
    config.max_per_destination = 5;
    config.timeouts = short_timeouts();
    let mut engine = Engine::new(config).unwrap();
    let ids: Vec<JobId> = (0..50)
        .map(|n| {
            engine
                .submit(Job::new(
                    envelope(&["a@example.net", "b@example.net"]),
                    message(n),
                ))
                .unwrap()
        })
        .collect();
    let results = drive(&mut engine, &ids);
    assert!(results.iter().all(JobResult::all_accepted), "{results:?}");
    assert!(engine.stats().connections <= 5);
    close(engine);
}

#[test]
fn python_aiosmtpd_with_starttls_and_auth() {
    let Some(python) = peers::aiosmtpd_python() else {
        return;
    };
    let dir = peers::ScratchDir::new("smtp-mio-aiosmtpd").unwrap();
    let (ca, cert, key) = tls_pki::pki_pem();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let server = peers::start_aiosmtpd(
        &python,
        &peers::AiosmtpdOptions {
            tls: Some((cert_path, key_path)),
            auth: Some(("alice".into(), "s3cr3t".into())),
            save: true,
        },
    )
    .unwrap();
    let mut relay = Relay::new("localhost", server.addr().port());
    relay.credentials = Some(Login::password("alice", "s3cr3t"));
    let mut config = EngineConfig::relay(relay);
    config.tls = TlsConfig::builder()
        .ca_pem(ca.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    config.max_per_destination = 2;
    config.timeouts = short_timeouts();
    let mut engine = Engine::new(config).unwrap();
    let ids: Vec<JobId> = (0..6)
        .map(|n| {
            engine
                .submit(Job::new(envelope(&["a@example.net"]), message(n)))
                .unwrap()
        })
        .collect();
    let results = drive(&mut engine, &ids);
    assert!(results.iter().all(JobResult::all_accepted), "{results:?}");
    close(engine);
    let saved = peers::saved_messages(&server).unwrap();
    assert_eq!(saved.len(), 6);
    let mut contents: Vec<Vec<u8>> = saved.iter().map(|m| m.content.clone()).collect();
    contents.sort();
    let mut expected: Vec<Vec<u8>> = (0..6).map(message).collect();
    expected.sort();
    assert_eq!(contents, expected, "content arrives byte for byte");
    assert!(saved[0].envelope_json.contains("\"tls\": true"));
}
