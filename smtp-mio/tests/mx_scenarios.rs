//! The shared MX scenario table (`smtp_tests::mx_scenarios`) run against the
//! mio delivery engine over loopback: for every scenario, its stage
//! (`smtp_tests::mx_stage`: a fake DNS server serving its zone, scripted
//! SMTP servers on the loopback addresses it lists — `loopback` maps
//! 192.0.2.N to 127.0.0.N, all on one port, the engine's MX port — and
//! certificates from a CA the engine trusts), the engine delivers one job
//! by MX, and the per-recipient results must pass the table's own check.
//! The engine decides nothing itself (it follows `smtp_proto::mx::Walk`);
//! this shows that it follows the walk over real sockets, as the table's
//! model transport does in memory.
//!
//! Every wait is bounded: the stage's sockets have timeouts, the engine's
//! loop gives up after [`LIMIT`] per scenario, and nothing sleeps.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use smtp_mio::delivery::{Engine, EngineConfig, Failure, Job, MxRouting, RecipientReport, Status};
use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
use smtp_proto::client::{Envelope, Outcome};
use smtp_proto::dns::ResolverConfig;
use smtp_proto::tls::TlsConfig;
use smtp_tests::mx_scenarios::{Cause, Observed, SCENARIOS, Scenario, from_loopback, loopback};
use smtp_tests::mx_stage::Stage;

mod common;
use common::timeouts;

/// Upper bound on one scenario's delivery.
const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn every_scenario_of_the_table() {
    let mut failures = Vec::new();
    for scenario in SCENARIOS {
        if let Err(problem) = run(scenario) {
            failures.push(problem);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        SCENARIOS.len(),
        failures.join("\n")
    );
}

/// Runs one scenario and checks it against the table.
fn run(scenario: &Scenario) -> Result<(), String> {
    let stage = Stage::start(scenario);
    let mut resolver = ResolverConfig::new(vec![stage.dns.addr()]);
    resolver.timeout = Duration::from_millis(300);
    resolver.attempts = 1;
    let mut mx = MxRouting::new(resolver);
    mx.port = stage.port();
    mx.walk.tls = scenario.tls;
    let mut config = EngineConfig::mx(mx);
    config.tls = TlsConfig::builder()
        .ca_pem(stage.ca_pem().as_bytes())
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    config.timeouts = timeouts(Duration::from_secs(5));
    let mut engine = Engine::new(config).map_err(|e| e.to_string())?;
    let recipients: Vec<ForwardPath<'static>> = scenario
        .recipients
        .iter()
        .map(|r| ForwardPath::Mailbox(Mailbox::parse(&on_loopback(r)).unwrap().into_owned()))
        .collect();
    let envelope = Envelope::new(
        ReversePath::Mailbox(Mailbox::parse("sender@example.org").unwrap().into_owned()),
        recipients,
    );
    let message = b"From: sender@example.org\r\nSubject: scenario\r\n\r\nHello.\r\n".to_vec();
    let id = engine
        .submit(Job::new(envelope, message))
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let result = loop {
        if start.elapsed() > LIMIT {
            return Err(format!("{}: no result within {LIMIT:?}", scenario.name));
        }
        engine
            .poll(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        if let Some(result) = engine.next_result() {
            break result;
        }
    };
    assert_eq!(result.id, id);
    let observed: Vec<Observed> = scenario
        .recipients
        .iter()
        .zip(&result.recipients)
        .map(|(recipient, report)| observe(recipient, report))
        .collect();
    engine.shutdown();
    let start = Instant::now();
    while !engine.is_shut_down() && start.elapsed() < LIMIT {
        engine
            .poll(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
    }
    scenario.check(&observed)
}

/// A recipient as the engine is given it: a scenario address literal on
/// its loopback address.
fn on_loopback(recipient: &str) -> String {
    match recipient.split_once("@[") {
        Some((local, literal)) => {
            let address = literal.trim_end_matches(']');
            format!("{local}@[{}]", loopback(address))
        }
        None => recipient.to_owned(),
    }
}

/// The engine's result for one recipient, in the table's terms.
fn observe(recipient: &str, report: &RecipientReport) -> Observed {
    let outcome = match report.status {
        Status::Accepted => Outcome::Accepted,
        Status::PermanentFailure => Outcome::PermanentFailure,
        _ => Outcome::TransientFailure,
    };
    let address = report
        .peer
        .as_ref()
        .and_then(|p| p.addr)
        .map(|addr| match addr.ip() {
            IpAddr::V4(ip) => from_loopback(ip),
            IpAddr::V6(ip) => ip.to_string(),
        });
    let host = match (&report.peer, &address) {
        (Some(_), Some(address)) if recipient.ends_with(']') => Some(format!("[{address}]")),
        (Some(peer), _) => Some(peer.name.clone()),
        (None, _) => None,
    };
    let reason = match &report.failure {
        Some(Failure::Walk(reason)) => Some(reason),
        _ => None,
    };
    let cause = match &report.failure {
        None | Some(Failure::Walk(_)) => Cause::from_parts(report.reply.is_some(), reason),
        Some(_) => Cause::Other,
    };
    Observed {
        recipient: recipient.to_owned(),
        outcome,
        code: report.reply.as_ref().map(|r| r.code().as_u16()),
        host,
        address,
        cause,
    }
}
