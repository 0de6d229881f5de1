//! Destination concurrency feedback: a relay that takes fewer connections
//! than the engine may open answers the extra ones `421`; the engine lowers
//! the destination's limit and delivers everything over the connections
//! that work, instead of failing the jobs queued behind the refused ones.
//!
//! Every test is bounded: `drive` gives up after `LIMIT`.

use std::time::Duration;

use smtp_mio::delivery::{Engine, EngineConfig, Job, JobId, Relay, Status};
use smtp_proto::client::Envelope;
use smtp_proto::mx::TlsPolicy;
use smtp_tests::scripted::{Script, ScriptedServer};

mod common;
use common::{drive, timeouts};

/// Upper bound on any one test's delivery loop.
const LIMIT: Duration = Duration::from_secs(60);

fn engine(server: &ScriptedServer, max_per_destination: usize) -> Engine {
    let mut relay = Relay::new(server.addr().ip().to_string(), server.addr().port());
    relay.tls = TlsPolicy::plaintext();
    let mut config = EngineConfig::relay(relay);
    config.max_per_destination = max_per_destination;
    config.timeouts = timeouts(Duration::from_secs(20));
    Engine::new(config).unwrap()
}

fn submit(engine: &mut Engine, jobs: usize) -> Vec<JobId> {
    (0..jobs)
        .map(|n| {
            let envelope =
                Envelope::parse("sender@example.org", [format!("rcpt{n}@example.net")]).unwrap();
            let message = format!("Subject: job {n}\r\n\r\nBody {n}.\r\n").into_bytes();
            engine.submit(Job::new(envelope, message)).unwrap()
        })
        .collect()
}

#[test]
fn a_relay_taking_two_connections_gets_every_job_over_them() {
    let server = ScriptedServer::limited(Script::accept(), 2);
    let mut engine = engine(&server, 5);
    let submitted = submit(&mut engine, 20);
    let results = drive(&mut engine, &submitted, LIMIT);
    for result in &results {
        assert_eq!(
            result.recipients[0].status,
            Status::Accepted,
            "{:?}",
            result.recipients[0]
        );
    }
    engine.close(|_| {}).unwrap();
    let stats = server.stats();
    assert_eq!(stats.messages, 20);
    // Five opened at first, three refused; then, after successes, the
    // engine tries one more connection again (positive feedback) and is
    // refused again.
    assert!(
        stats.over_limit > 3,
        "the engine never tried for more connections again: {stats:?}"
    );
    assert!(stats.max_open <= 2, "{stats:?}");
    let mut delivered: Vec<String> = stats.recipients;
    delivered.sort();
    delivered.dedup();
    assert_eq!(delivered.len(), 20, "each recipient once: {delivered:?}");
}

#[test]
fn a_relay_refusing_every_connection_still_fails_the_jobs_for_now() {
    // No connection ever works: the refusals are about the host, not about
    // concurrency, and every job ends (temporarily failed), none hangs.
    let server = ScriptedServer::limited(Script::accept(), 0);
    let mut engine = engine(&server, 5);
    let submitted = submit(&mut engine, 20);
    let results = drive(&mut engine, &submitted, LIMIT);
    for result in &results {
        let report = &result.recipients[0];
        assert_eq!(report.status, Status::TemporaryFailure, "{report:?}");
    }
    engine.close(|_| {}).unwrap();
    assert_eq!(server.stats().messages, 0);
    assert!(server.stats().over_limit >= 1);
}
