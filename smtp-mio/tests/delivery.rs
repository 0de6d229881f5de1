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

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use smtp_mio::delivery::{
    Engine, EngineConfig, Failure, Job, JobId, JobResult, MxRouting, Relay, Status,
};
use smtp_mio::server::store::Credentials;
use smtp_mio::tls::TlsConfig;
use smtp_proto::TlsMode;
use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
use smtp_proto::client::{BodyTransfer, Credentials as Login, Envelope, Timeouts};
use smtp_proto::keyword::Mechanism;
use smtp_proto::mx::{FamilyPreference, Reason, TlsPolicy};
use smtp_tests::fake_dns::{self, Answer, FakeDns, RecordType};
use smtp_tests::peers;
use smtp_tests::pki::pki;
use smtp_tests::scripted::{Behaviour, Script, ScriptedServer};

use common::{drive, resolver, timeouts};

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
    timeouts(Duration::from_secs(2))
}

/// Deadlines for well-behaved peers: long enough for a loaded machine (the
/// server fsyncs every message), short enough to bound a broken test.
fn relaxed_timeouts() -> Timeouts {
    timeouts(Duration::from_secs(20))
}

/// Submits one job per `n` in `range`: `envelope(n)` and `message(n)`.
fn submit_all(
    engine: &mut Engine,
    range: std::ops::Range<usize>,
    envelope: impl Fn(usize) -> Envelope,
) -> Vec<JobId> {
    range
        .map(|n| engine.submit(Job::new(envelope(n), message(n))).unwrap())
        .collect()
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
    relay.tls = TlsPolicy::plaintext();
    relay
}

/// `two.test`: MX 10 `mx1.two.test` (127.0.0.2), MX 20 `mx2.two.test`
/// (127.0.0.1), for scripted servers on those addresses at one port.
fn two_mx_zone() -> Vec<(&'static str, RecordType, Answer)> {
    vec![
        (
            "two.test",
            RecordType::MX,
            Answer::records(vec![
                fake_dns::mx("two.test", 10, "mx1.two.test"),
                fake_dns::mx("two.test", 20, "mx2.two.test"),
            ]),
        ),
        (
            "mx1.two.test",
            RecordType::A,
            Answer::records(vec![fake_dns::addr("mx1.two.test", "127.0.0.2")]),
        ),
        (
            "mx2.two.test",
            RecordType::A,
            Answer::records(vec![fake_dns::addr("mx2.two.test", "127.0.0.1")]),
        ),
    ]
}

/// An engine routing by MX through `dns`, to `port`.
fn mx_engine(dns: &FakeDns, port: u16, timeouts: Timeouts) -> Engine {
    let mut mx = MxRouting::new(resolver(dns));
    mx.port = port;
    let mut config = EngineConfig::mx(mx);
    config.timeouts = timeouts;
    Engine::new(config).unwrap()
}

/// Waits until every connection to `server` is closed: its counts are
/// final then (the engine may close before the server has read its QUIT).
fn all_closed(server: &ScriptedServer) -> smtp_tests::scripted::Stats {
    assert!(
        server.wait_until(LIMIT, |s| s.open == 0),
        "connections still open: {:?}",
        server.stats()
    );
    server.stats()
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
    relay.tls = TlsPolicy::new(TlsMode::Required);
    relay.credentials = Some(Login::password("alice", "s3cret"));
    let mut config = EngineConfig::relay(relay);
    config.tls = tls;
    config.max_connections = 3;
    config.max_per_destination = 3;
    config.timeouts = relaxed_timeouts();
    let mut engine = Engine::new(config).unwrap();
    // The relay is named "localhost", which the test identity's
    // certificate covers: the chain and the name are both verified.
    let ids = submit_all(&mut engine, 0..12, |_| envelope(&["bob@example.net"]));
    let results = drive(&mut engine, &ids, LIMIT);
    for r in &results {
        let rcpt = &r.recipients[0];
        assert_eq!(rcpt.status, Status::Accepted, "{r:?}");
        let peer = rcpt.peer.as_ref().unwrap();
        assert_eq!(peer.addr.unwrap().port(), server.addr.port());
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
    let server = ScriptedServer::start("127.0.0.1", 0, Script::accept());
    let mut config = EngineConfig::relay(relay_to(server.addr()));
    config.max_connections = 10;
    config.max_per_destination = 3;
    config.max_messages_per_connection = 5;
    config.timeouts = relaxed_timeouts();
    let mut engine = Engine::new(config).unwrap();
    let ids = submit_all(&mut engine, 0..40, |n| {
        envelope(&[&format!("user{n}@example.net")])
    });
    let results = drive(&mut engine, &ids, LIMIT);
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
    let stats = all_closed(&server);
    assert_eq!(stats.quits, stats.connections, "every connection QUIT");
}

#[test]
fn the_total_limit_holds_across_destinations() {
    let port = free_port();
    let servers: Vec<ScriptedServer> = (1..=4)
        .map(|i| ScriptedServer::start(&format!("127.0.0.{i}"), port, Script::accept()))
        .collect();
    let dns = FakeDns::start(Vec::new());
    let mut mx = MxRouting::new(resolver(&dns));
    mx.port = port;
    let mut config = EngineConfig::mx(mx);
    config.max_connections = 3;
    config.max_per_destination = 2;
    config.idle_timeout = Duration::from_millis(100);
    config.timeouts = relaxed_timeouts();
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
    let stats: Vec<_> = servers.iter().map(all_closed).collect();
    let quits: usize = stats.iter().map(|s| s.quits).sum();
    let connections: usize = stats.iter().map(|s| s.connections).sum();
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
    config.timeouts = relaxed_timeouts();
    let mut engine = Engine::new(config).unwrap();
    let ids = submit_all(&mut engine, 0..50, |_| {
        envelope(&["a@example.net", "b@example.net"])
    });
    let results = drive(&mut engine, &ids, LIMIT);
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
    let pki = pki();
    let server = peers::start_aiosmtpd(
        &python,
        &peers::AiosmtpdOptions {
            tls: Some(pki.write_server_files(dir.path()).unwrap()),
            auth: Some(("alice".into(), "s3cr3t".into())),
            save: true,
        },
    )
    .unwrap();
    let mut relay = Relay::new("localhost", server.addr().port());
    relay.credentials = Some(Login::password("alice", "s3cr3t"));
    let mut config = EngineConfig::relay(relay);
    config.tls = TlsConfig::builder()
        .ca_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    config.max_per_destination = 2;
    config.timeouts = relaxed_timeouts();
    let mut engine = Engine::new(config).unwrap();
    let ids = submit_all(&mut engine, 0..6, |_| envelope(&["a@example.net"]));
    let results = drive(&mut engine, &ids, LIMIT);
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

// ---- MX routing ----------------------------------------------------------------

#[test]
fn mx_routing_falls_back_and_fails_null_mx_and_nxdomain_without_connecting() {
    let port = free_port();
    // mx1 (preferred) says 421; mx2 takes the mail.
    let busy = ScriptedServer::start(
        "127.0.0.2",
        port,
        Script::greeting("421 4.3.2 mx busy, try another"),
    );
    let good = ScriptedServer::start("127.0.0.1", port, Script::accept());
    let mut zones = two_mx_zone();
    zones.extend([
        (
            "null.test",
            RecordType::MX,
            Answer::records(vec![fake_dns::mx("null.test", 0, ".")]),
        ),
        ("gone.test", RecordType::MX, Answer::NxDomain),
    ]);
    let dns = FakeDns::start(zones);
    let mut engine = mx_engine(&dns, port, short_timeouts());
    // One job across three domains, and single-domain jobs.
    let mixed = engine
        .submit(Job::new(
            envelope(&["a@two.test", "b@null.test", "c@gone.test", "d@TWO.test"]),
            message(0),
        ))
        .unwrap();
    let null = engine
        .submit(Job::new(envelope(&["x@null.test"]), message(1)))
        .unwrap();
    let gone = engine
        .submit(Job::new(envelope(&["y@gone.test"]), message(2)))
        .unwrap();
    let results = drive(&mut engine, &[mixed, null, gone], LIMIT);

    let r = &results[0].recipients;
    assert_eq!(r[0].status, Status::Accepted, "{r:?}");
    assert_eq!(r[0].peer.as_ref().unwrap().name, "mx2.two.test");
    assert_eq!(r[3].status, Status::Accepted);
    assert_eq!(r[1].status, Status::PermanentFailure);
    assert!(
        matches!(r[1].failure, Some(Failure::Walk(Reason::NullMx))),
        "{:?}",
        r[1]
    );
    assert_eq!(r[2].status, Status::PermanentFailure);
    assert!(
        matches!(r[2].failure, Some(Failure::Walk(Reason::NxDomain))),
        "{:?}",
        r[2]
    );
    assert_eq!(
        results[1].recipients[0].status,
        Status::PermanentFailure,
        "null MX"
    );
    assert_eq!(results[2].recipients[0].status, Status::PermanentFailure);

    // The two recipients at two.test went in one transaction, to mx2,
    // after mx1's 421.
    assert_eq!(good.messages(), 1);
    assert_eq!(good.recipients().len(), 2);
    assert!(busy.connections() >= 1);
    assert_eq!(busy.messages(), 0);
    close(engine);
}

#[test]
fn mx_hosts_that_all_fail_give_a_temporary_failure_with_the_last_reason() {
    let port = free_port();
    let _busy = ScriptedServer::start(
        "127.0.0.2",
        port,
        Script::greeting("421 4.3.2 mx busy, try another"),
    );
    let dns = FakeDns::start(vec![
        (
            "busy.test",
            RecordType::MX,
            Answer::records(vec![fake_dns::mx("busy.test", 10, "mx.busy.test")]),
        ),
        (
            "mx.busy.test",
            RecordType::A,
            Answer::records(vec![fake_dns::addr("mx.busy.test", "127.0.0.2")]),
        ),
        ("servfail.test", RecordType::MX, Answer::ServFail),
    ]);
    let mut mx = MxRouting::new(resolver(&dns));
    mx.port = port;
    let mut config = EngineConfig::mx(mx);
    config.timeouts = short_timeouts();
    let mut engine = Engine::new(config).unwrap();
    let a = engine
        .submit(Job::new(envelope(&["a@busy.test"]), message(0)))
        .unwrap();
    let b = engine
        .submit(Job::new(envelope(&["b@servfail.test"]), message(1)))
        .unwrap();
    let results = drive(&mut engine, &[a, b], LIMIT);
    let ra = &results[0].recipients[0];
    assert_eq!(ra.status, Status::TemporaryFailure);
    assert!(
        ra.failure.as_ref().unwrap().to_string().contains("421"),
        "{ra:?}"
    );
    let rb = &results[1].recipients[0];
    assert_eq!(rb.status, Status::TemporaryFailure);
    assert!(
        matches!(rb.failure, Some(Failure::Walk(Reason::DnsFailure(_)))),
        "{rb:?}"
    );
    close(engine);
}

// ---- faults -------------------------------------------------------------------

#[test]
fn faulty_destinations_do_not_disturb_the_others() {
    let port = free_port();
    let good = ScriptedServer::start("127.0.0.1", port, Script::accept());
    let silent = ScriptedServer::start("127.0.0.3", port, Behaviour::Silent);
    let closing = ScriptedServer::start("127.0.0.4", port, Script::close_mid_data());
    let rejecting = ScriptedServer::start(
        "127.0.0.5",
        port,
        Script::every_rcpt("550 5.1.1 no such user"),
    );
    let deferring =
        ScriptedServer::start("127.0.0.6", port, Script::every_rcpt("451 4.3.0 try later"));
    let dns = FakeDns::start(Vec::new());
    let mut mx = MxRouting::new(resolver(&dns));
    mx.port = port;
    let mut config = EngineConfig::mx(mx);
    config.timeouts = short_timeouts();
    config.max_per_destination = 2;
    let mut engine = Engine::new(config).unwrap();
    let hosts = [1, 3, 4, 5, 6];
    let mut ids = Vec::new();
    let mut host_of = Vec::new();
    for n in 0..25 {
        let host = hosts[n % hosts.len()];
        let to = format!("user{n}@[127.0.0.{host}]");
        ids.push(
            engine
                .submit(Job::new(envelope(&[&to]), message(n)))
                .unwrap(),
        );
        host_of.push(host);
    }
    let results = drive(&mut engine, &ids, LIMIT);
    for (r, host) in results.iter().zip(&host_of) {
        let rcpt = &r.recipients[0];
        match host {
            1 => assert_eq!(rcpt.status, Status::Accepted, "{rcpt:?}"),
            3 | 4 => {
                assert_eq!(rcpt.status, Status::TemporaryFailure, "{rcpt:?}");
                assert!(rcpt.failure.is_some(), "{rcpt:?}");
            }
            5 => {
                assert_eq!(rcpt.status, Status::PermanentFailure, "{rcpt:?}");
                assert_eq!(rcpt.reply.as_ref().unwrap().code().to_string(), "550");
            }
            _ => {
                assert_eq!(rcpt.status, Status::TemporaryFailure, "{rcpt:?}");
                assert_eq!(rcpt.reply.as_ref().unwrap().code().to_string(), "451");
            }
        }
    }
    assert_eq!(good.messages(), 5);
    assert_eq!(closing.messages(), 0);
    assert_eq!(
        rejecting.messages(),
        0,
        "no content after every RCPT refused"
    );
    assert_eq!(deferring.messages(), 0);
    assert!(silent.connections() >= 1);
    close(engine);
}

#[test]
fn a_stuck_peer_does_not_hold_up_the_others() {
    let port = free_port();
    let good = ScriptedServer::start("127.0.0.1", port, Script::accept());
    let _silent = ScriptedServer::start("127.0.0.3", port, Behaviour::Silent);
    let dns = FakeDns::start(Vec::new());
    let mut mx = MxRouting::new(resolver(&dns));
    mx.port = port;
    let mut config = EngineConfig::mx(mx);
    // The silent peer is given up on only after a long time ...
    let mut t = short_timeouts();
    t.greeting = Duration::from_secs(30);
    config.timeouts = t;
    let mut engine = Engine::new(config).unwrap();
    let stuck = engine
        .submit(Job::new(envelope(&["a@[127.0.0.3]"]), message(0)))
        .unwrap();
    let ids = submit_all(&mut engine, 1..20, |_| envelope(&["b@[127.0.0.1]"]));
    // ... while everything else is delivered meanwhile.
    let start = Instant::now();
    let mut done = Vec::new();
    while done.len() < ids.len() {
        assert!(start.elapsed() < LIMIT);
        engine.poll(Some(Duration::from_millis(50))).unwrap();
        while let Some(r) = engine.next_result() {
            assert_ne!(r.id, stuck, "the stuck job cannot be done yet");
            assert!(r.all_accepted());
            done.push(r.id);
        }
    }
    assert_eq!(good.messages(), 19);
    // Cancelling the stuck job reports it at once.
    assert!(engine.cancel(stuck));
    let r = engine.next_result().expect("the cancelled job's result");
    assert_eq!(r.id, stuck);
    assert_ne!(r.recipients[0].status, Status::Accepted);
    close(engine);
}

// ---- cancel and shutdown ---------------------------------------------------

#[test]
fn shutdown_finishes_transactions_and_reports_the_rest_not_attempted() {
    let server = ScriptedServer::start("127.0.0.1", 0, Script::accept());
    let mut config = EngineConfig::relay(relay_to(server.addr()));
    config.max_per_destination = 2;
    config.timeouts = short_timeouts();
    let mut engine = Engine::new(config).unwrap();
    let ids = submit_all(&mut engine, 0..30, |_| envelope(&["a@example.net"]));
    // Cancel one job while still queued.
    assert!(engine.cancel(ids[29]));
    // Let a few go out, then shut down.
    let start = Instant::now();
    let mut results = Vec::new();
    while results.len() < 4 {
        assert!(start.elapsed() < LIMIT);
        engine.poll(Some(Duration::from_millis(50))).unwrap();
        while let Some(r) = engine.next_result() {
            results.push(r);
        }
    }
    engine.shutdown();
    assert!(matches!(
        engine.submit(Job::new(envelope(&["a@example.net"]), message(99))),
        Err(smtp_mio::delivery::SubmitError::ShuttingDown)
    ));
    let start = Instant::now();
    while !engine.is_shut_down() {
        assert!(start.elapsed() < LIMIT);
        engine.poll(Some(Duration::from_millis(50))).unwrap();
        while let Some(r) = engine.next_result() {
            results.push(r);
        }
    }
    let ids_seen: HashSet<JobId> = results.iter().map(|r| r.id).collect();
    assert_eq!(ids_seen.len(), 30, "every job reported once");
    assert_eq!(results.len(), 30);
    let accepted = results.iter().filter(|r| r.all_accepted()).count();
    let not_attempted = results
        .iter()
        .filter(|r| r.recipients[0].status == Status::NotAttempted)
        .count();
    assert_eq!(accepted + not_attempted, 30, "{results:?}");
    assert_eq!(accepted, server.messages());
    assert!(not_attempted >= 1);
    let cancelled = results.iter().find(|r| r.id == ids[29]).unwrap();
    assert!(matches!(
        cancelled.recipients[0].failure,
        Some(Failure::Cancelled)
    ));
    // Connections were closed with QUIT.
    let stats = all_closed(&server);
    assert_eq!(stats.quits, stats.connections, "{stats:?}");
}

#[test]
fn a_handle_submits_from_another_thread() {
    let server = ScriptedServer::start("127.0.0.1", 0, Script::accept());
    let mut config = EngineConfig::relay(relay_to(server.addr()));
    config.timeouts = relaxed_timeouts();
    let mut engine = Engine::new(config).unwrap();
    let handle = engine.handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let loop_thread = std::thread::spawn(move || engine.run(|r| tx.send(r).unwrap()));
    let submitters: Vec<_> = (0..4)
        .map(|t| {
            let handle = handle.clone();
            std::thread::spawn(move || {
                (0..5)
                    .map(|n| {
                        handle
                            .submit(Job::new(envelope(&["a@example.net"]), message(t * 10 + n)))
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: HashSet<JobId> = submitters
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    let mut seen = HashSet::new();
    for _ in 0..ids.len() {
        let r = rx.recv_timeout(LIMIT).unwrap();
        assert!(r.all_accepted());
        assert!(seen.insert(r.id));
    }
    assert_eq!(seen, ids);
    handle.shutdown();
    assert!(
        handle
            .submit(Job::new(envelope(&["a@example.net"]), message(0)))
            .is_err()
    );
    loop_thread.join().unwrap().unwrap();
    assert_eq!(server.messages(), 20);
}

#[test]
fn implicit_tls_relay_and_streamed_content() {
    // Under both BDAT (a reply per chunk keeps the loop awake) and DATA
    // (nothing comes back until the end: the loop must keep writing on its
    // own while rustls' bounded buffer fills and empties).
    for transfer in [BodyTransfer::PreferBdat, BodyTransfer::Data] {
        let server = common::start_store(Credentials::new(), |o| {
            o.tls_listen = vec!["127.0.0.1:0".parse().unwrap()];
        });
        let tls_addr = server.tls_addr.unwrap();
        let mut relay = Relay::new("127.0.0.1", tls_addr.port());
        relay.tls = TlsPolicy::new(TlsMode::Implicit);
        let mut config = EngineConfig::relay(relay);
        config.tls = TlsConfig::builder()
            .ca_pem(server.identity.chain_pem().as_bytes())
            .unwrap()
            .build()
            .unwrap();
        config.timeouts = relaxed_timeouts();
        config.body_transfer = transfer;
        let mut engine = Engine::new(config).unwrap();
        // 1 MiB of 8-bit text, read from a reader in pieces.
        let mut content =
            b"Subject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".to_vec();
        while content.len() < 1 << 20 {
            content.extend_from_slice("caf\u{e9} .line\r\n.\r\n".as_bytes());
        }
        let mut env = envelope(&["big@example.net"]);
        env.declare_body(&content);
        let job = Job::new(
            env,
            smtp_mio::delivery::Message::from_reader(std::io::Cursor::new(content.clone())),
        );
        let id = engine.submit(job).unwrap();
        let results = drive(&mut engine, &[id], LIMIT);
        assert!(results[0].all_accepted(), "{transfer:?}: {results:?}");
        close(engine);
        let files = server.files("new");
        assert_eq!(files.len(), 1);
        let stored = std::fs::read(&files[0]).unwrap();
        assert!(stored.ends_with(&content), "content arrives byte for byte");
        let text = String::from_utf8_lossy(&stored);
        assert!(text.contains("with ESMTPS"), "{}", &text[..400]);
    }
}

#[test]
fn a_reused_connection_lost_before_any_reply_is_retried_on_a_new_one() {
    let server = ScriptedServer::start("127.0.0.1", 0, Script::messages_per_connection(1));
    let mut config = EngineConfig::relay(relay_to(server.addr()));
    config.max_per_destination = 1;
    config.timeouts = relaxed_timeouts();
    let mut engine = Engine::new(config).unwrap();
    let ids = submit_all(&mut engine, 0..5, |_| envelope(&["a@example.net"]));
    let results = drive(&mut engine, &ids, LIMIT);
    assert!(results.iter().all(JobResult::all_accepted), "{results:?}");
    assert_eq!(server.messages(), 5);
    assert_eq!(server.connections(), 5, "one message per connection");
    close(engine);
}

#[test]
fn mx_tls_is_verified_when_required_and_not_when_opportunistic() {
    // The server's certificate names localhost and mx.test, not the MX.
    let server = common::start_store(Credentials::new(), |_| {});
    let dns = FakeDns::start(vec![
        (
            "two.test",
            RecordType::MX,
            Answer::records(vec![fake_dns::mx("two.test", 10, "mx.two.test")]),
        ),
        (
            "mx.two.test",
            RecordType::A,
            Answer::records(vec![fake_dns::addr("mx.two.test", "127.0.0.1")]),
        ),
    ]);
    let trusted = || {
        TlsConfig::builder()
            .ca_pem(server.identity.chain_pem().as_bytes())
            .unwrap()
            .build()
            .unwrap()
    };
    let mut outcomes = Vec::new();
    for tls in [TlsMode::Opportunistic, TlsMode::Required] {
        let mut mx = MxRouting::new(resolver(&dns));
        mx.port = server.addr.port();
        mx.walk.tls = TlsPolicy::new(tls);
        let mut config = EngineConfig::mx(mx);
        config.tls = trusted();
        config.timeouts = relaxed_timeouts();
        let mut engine = Engine::new(config).unwrap();
        let ids = submit_all(&mut engine, 0..1, |_| envelope(&["a@two.test"]));
        let results = drive(&mut engine, &ids, LIMIT);
        outcomes.push(results[0].recipients[0].clone());
        close(engine);
    }
    assert_eq!(outcomes[0].status, Status::Accepted, "{:?}", outcomes[0]);
    assert_eq!(outcomes[1].status, Status::TemporaryFailure);
    assert!(
        outcomes[1]
            .failure
            .as_ref()
            .unwrap()
            .to_string()
            .contains("certificate"),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(server.files("new").len(), 1);
}

#[test]
fn a_server_that_never_answers_quit_does_not_hold_up_shutdown() {
    let server = ScriptedServer::start("127.0.0.1", 0, Script::mute_at_quit());
    let mut config = EngineConfig::relay(relay_to(server.addr()));
    config.timeouts = relaxed_timeouts(); // 20 s for the reply to QUIT...
    config.quit_timeout = Duration::from_millis(200); // ... but no more than this
    let mut engine = Engine::new(config).unwrap();
    let ids = submit_all(&mut engine, 0..3, |_| envelope(&["a@example.net"]));
    let results = drive(&mut engine, &ids, LIMIT);
    assert!(results.iter().all(JobResult::all_accepted));
    let start = Instant::now();
    close(engine);
    // A liveness bound, not a measurement: without the QUIT deadline the
    // session would wait for its 20 s reply timeout.
    assert!(start.elapsed() < Duration::from_secs(10));
    let stats = all_closed(&server);
    assert_eq!(stats.quits, stats.connections, "{stats:?}");
}

#[test]
fn chaotic_servers_never_produce_a_false_acceptance_or_a_lost_job() {
    for seed in 1..=12u64 {
        let server = ScriptedServer::start("127.0.0.1", 0, Behaviour::Chaos(seed));
        let mut relay = relay_to(server.addr());
        relay.tls = TlsPolicy::plaintext();
        let mut config = EngineConfig::relay(relay);
        config.timeouts = timeouts(Duration::from_secs(1));
        config.max_per_destination = 3;
        config.body_transfer = BodyTransfer::Data;
        config.quit_timeout = Duration::from_millis(300);
        let mut engine = Engine::new(config).unwrap();
        let ids = submit_all(&mut engine, 0..15, |n| {
            envelope(&[&format!("u{n}@example.net"), "v@example.net"])
        });
        // `drive` checks that every job is reported exactly once.
        let results = drive(&mut engine, &ids, LIMIT);
        let accepted_jobs = results
            .iter()
            .filter(|r| r.recipients.iter().any(|x| x.status == Status::Accepted))
            .count();
        let finals = server.stats().positive_finals;
        assert!(
            accepted_jobs <= finals,
            "seed {seed}: {accepted_jobs} jobs accepted, the server sent {finals} positive finals"
        );
        for r in &results {
            for x in &r.recipients {
                if x.status == Status::Accepted {
                    assert!(x.reply.as_ref().unwrap().code().is_positive_completion());
                }
            }
        }
        close(engine);
    }
}

#[test]
fn a_transaction_deferred_by_one_mx_goes_to_the_next() {
    let port = free_port();
    // mx1 (preferred) answers 451 to every RCPT; mx2 takes the mail. A
    // third domain's only MX defers too: its 451 is the result.
    let deferring =
        ScriptedServer::start("127.0.0.2", port, Script::every_rcpt("451 4.3.0 try later"));
    let good = ScriptedServer::start("127.0.0.1", port, Script::accept());
    let mut zones = two_mx_zone();
    zones.push((
        "one.test",
        RecordType::MX,
        Answer::records(vec![fake_dns::mx("one.test", 10, "mx1.two.test")]),
    ));
    let dns = FakeDns::start(zones);
    let mut engine = mx_engine(&dns, port, relaxed_timeouts());
    let mut ids = submit_all(&mut engine, 0..4, |n| {
        envelope(&[&format!("a{n}@two.test"), &format!("b{n}@two.test")])
    });
    ids.extend(submit_all(&mut engine, 4..5, |_| envelope(&["c@one.test"])));
    let results = drive(&mut engine, &ids, LIMIT);
    for r in &results[..4] {
        for x in &r.recipients {
            assert_eq!(x.status, Status::Accepted, "{r:?}");
            assert_eq!(x.peer.as_ref().unwrap().name, "mx2.two.test");
        }
    }
    let c = &results[4].recipients[0];
    assert_eq!(c.status, Status::TemporaryFailure, "{c:?}");
    assert_eq!(c.reply.as_ref().unwrap().code().to_string(), "451");
    assert_eq!(c.peer.as_ref().unwrap().name, "mx1.two.test");
    assert_eq!(good.messages(), 4);
    assert_eq!(deferring.messages(), 0);
    close(engine);
}

#[test]
fn recipients_deferred_by_one_mx_go_to_the_next_and_the_others_stay_delivered() {
    let port = free_port();
    // mx1 greylists some recipients (451 to their RCPT) and takes the
    // others; mx2 takes everything.
    let primary = ScriptedServer::start(
        "127.0.0.2",
        port,
        Script {
            rcpt: vec![("grey".into(), "451 4.7.1 greylisted".into())],
            ..Script::accept()
        },
    );
    let backup = ScriptedServer::start("127.0.0.1", port, Script::accept());
    let dns = FakeDns::start(two_mx_zone());
    let mut engine = mx_engine(&dns, port, relaxed_timeouts());
    let ids = submit_all(&mut engine, 0..3, |n| {
        envelope(&[&format!("white{n}@two.test"), &format!("grey{n}@two.test")])
    });
    let results = drive(&mut engine, &ids, LIMIT);
    for r in &results {
        let [white, grey] = &r.recipients[..] else {
            panic!("{r:?}")
        };
        assert_eq!(white.status, Status::Accepted, "{r:?}");
        assert_eq!(white.peer.as_ref().unwrap().name, "mx1.two.test");
        assert_eq!(grey.status, Status::Accepted, "{r:?}");
        assert_eq!(grey.peer.as_ref().unwrap().name, "mx2.two.test");
    }
    assert_eq!(primary.messages(), 3);
    assert_eq!(backup.messages(), 3);
    let backup_rcpts = backup.recipients();
    assert!(
        backup_rcpts.iter().all(|r| r.contains("grey")),
        "{backup_rcpts:?}"
    );
    close(engine);
}

#[test]
fn cancelling_a_job_leaves_other_jobs_alone() {
    let port = free_port();
    let good = ScriptedServer::start("127.0.0.1", port, Script::accept());
    let _silent = ScriptedServer::start("127.0.0.3", port, Behaviour::Silent);
    let dns = FakeDns::start(Vec::new());
    let mut t = relaxed_timeouts();
    t.greeting = Duration::from_secs(30);
    let mut engine = mx_engine(&dns, port, t);
    // Job a: one part delivered at once, one stuck at a silent host.
    let a = engine
        .submit(Job::new(
            envelope(&["x@[127.0.0.1]", "y@[127.0.0.3]"]),
            message(0),
        ))
        .unwrap();
    let start = Instant::now();
    while good.messages() < 1 {
        assert!(start.elapsed() < LIMIT);
        engine.poll(Some(Duration::from_millis(20))).unwrap();
    }
    for _ in 0..5 {
        engine.poll(Some(Duration::from_millis(20))).unwrap();
    }
    // Job b, queued behind the same silent host, may take the slot job a's
    // finished part left.
    let b = engine
        .submit(Job::new(envelope(&["z@[127.0.0.3]"]), message(1)))
        .unwrap();
    assert!(engine.cancel(a));
    let r = engine.next_result().expect("the cancelled job's result");
    assert_eq!(r.id, a);
    assert_eq!(r.recipients[0].status, Status::Accepted);
    assert_ne!(r.recipients[1].status, Status::Accepted);
    assert!(engine.next_result().is_none(), "job b is not cancelled");
    assert_eq!(engine.stats().pending_jobs, 1);
    assert!(engine.cancel(b));
    let r = engine.next_result().unwrap();
    assert_eq!(r.id, b);
    assert!(matches!(r.recipients[0].failure, Some(Failure::Cancelled)));
    close(engine);
}

#[test]
fn a_bulk_send_to_one_domain_asks_the_dns_once() {
    // MX routing turns the resolver's cache on: 20 jobs to one domain ask
    // for its MX and its host's addresses once, not per job.
    let port = free_port();
    let good = ScriptedServer::start("127.0.0.2", port, Script::accept());
    let dns = FakeDns::start(vec![
        (
            "one.test",
            RecordType::MX,
            Answer::records(vec![fake_dns::mx("one.test", 10, "mx.one.test")]),
        ),
        (
            "mx.one.test",
            RecordType::A,
            Answer::records(vec![fake_dns::addr("mx.one.test", "127.0.0.2")]),
        ),
    ]);
    // IPv4 only: the AAAA answer would be NODATA without an SOA, which
    // RFC 2308 §5 does not let a cache keep.
    let mut mx = MxRouting::new(resolver(&dns));
    mx.port = port;
    mx.walk.plan.family = FamilyPreference::Ipv4Only;
    let mut config = EngineConfig::mx(mx);
    config.timeouts = relaxed_timeouts();
    let mut engine = Engine::new(config).unwrap();
    // Half now, half once the first half is done (the cache, not only the
    // lookups in flight, answers them).
    let mut ids = submit_all(&mut engine, 0..10, |n| {
        envelope(&[&format!("user{n}@one.test")])
    });
    drive(&mut engine, &ids, LIMIT);
    ids = submit_all(&mut engine, 10..20, |n| {
        envelope(&[&format!("user{n}@one.test")])
    });
    let results = drive(&mut engine, &ids, LIMIT);
    assert!(results.iter().all(JobResult::all_accepted), "{results:?}");
    assert_eq!(good.messages(), 20);
    assert_eq!(dns.udp_queries(), 2, "MX and A, once each");
    close(engine);
}

#[test]
fn more_than_100_recipients_go_in_transactions_of_100() {
    // RFC 5321 §4.5.3.1.8: a server must take 100 recipients; the walk
    // never sends more in one transaction.
    let server = ScriptedServer::start("127.0.0.1", 0, Script::accept());
    let mut config = EngineConfig::relay(relay_to(server.addr()));
    config.max_per_destination = 1;
    config.timeouts = relaxed_timeouts();
    let mut engine = Engine::new(config).unwrap();
    let to: Vec<String> = (0..250).map(|n| format!("user{n}@example.net")).collect();
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    let ids = submit_all(&mut engine, 0..1, |_| envelope(&to));
    let results = drive(&mut engine, &ids, LIMIT);
    assert!(results[0].all_accepted(), "{results:?}");
    assert_eq!(results[0].recipients.len(), 250);
    assert_eq!(server.messages(), 3, "100 + 100 + 50");
    assert_eq!(server.recipients().len(), 250);
    close(engine);
}

#[test]
fn content_from_a_reader_is_not_read_twice() {
    // mx1 greylists one recipient after the content was read for the
    // other; the reader cannot be read again for mx2, so that recipient
    // fails temporarily with the content failure (Message::Bytes would go
    // on to mx2).
    let port = free_port();
    let _primary = ScriptedServer::start(
        "127.0.0.2",
        port,
        Script {
            rcpt: vec![("grey".into(), "451 4.7.1 greylisted".into())],
            ..Script::accept()
        },
    );
    let backup = ScriptedServer::start("127.0.0.1", port, Script::accept());
    let dns = FakeDns::start(two_mx_zone());
    let mut engine = mx_engine(&dns, port, relaxed_timeouts());
    let job = Job::new(
        envelope(&["white@two.test", "grey@two.test"]),
        smtp_mio::delivery::Message::from_reader(std::io::Cursor::new(message(0))),
    );
    let id = engine.submit(job).unwrap();
    let results = drive(&mut engine, &[id], LIMIT);
    let [white, grey] = &results[0].recipients[..] else {
        panic!("{results:?}")
    };
    assert_eq!(white.status, Status::Accepted, "{white:?}");
    assert_eq!(grey.status, Status::TemporaryFailure, "{grey:?}");
    assert!(
        matches!(grey.failure, Some(Failure::Content(_))),
        "{grey:?}"
    );
    assert_eq!(backup.messages(), 0);
    close(engine);
}
