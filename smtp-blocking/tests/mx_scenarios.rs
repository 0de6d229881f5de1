//! The shared MX scenario table (`smtp_tests::mx_scenarios`) run against
//! `deliver_mx` over loopback: the zone served by a fake DNS server, the
//! scripted SMTP servers at `127.0.0.N` (the table's `192.0.2.N`), the
//! per-recipient results compared with the table's own check. The table is
//! checked against the core's walk alone in `tests/tests/mx_scenarios.rs`;
//! this run shows that the blocking transport follows the walk over real
//! sockets, deciding nothing itself.

use std::time::{Duration, Instant};

use smtp_blocking::{Envelope, MxRecipientResult, MxSettings, Resolver, Settings, deliver_mx};
use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
use smtp_tests::mx_scenarios::{Cause, Observed, SCENARIOS, Scenario, from_loopback, loopback};
use smtp_tests::mx_stage::Stage;

/// A recipient as the transport sees it: an address literal of the table
/// (`[192.0.2.9]`) points at its loopback address.
fn on_loopback(recipient: &str) -> String {
    match recipient.rsplit_once("@[") {
        Some((local, literal)) => {
            let address = literal.trim_end_matches(']');
            format!("{local}@[{}]", loopback(address))
        }
        None => recipient.to_owned(),
    }
}

fn observed(recipient: &str, result: &MxRecipientResult) -> Observed {
    let address = result.address.map(|ip| match ip {
        std::net::IpAddr::V4(v4) => from_loopback(v4),
        other => other.to_string(),
    });
    let host = match (&result.host, &address) {
        (Some(host), _) => Some(host.as_str().to_owned()),
        (None, Some(address)) if recipient.ends_with(']') => Some(format!("[{address}]")),
        _ => None,
    };
    Observed {
        recipient: recipient.to_owned(),
        outcome: result.outcome,
        code: result.reply.as_ref().map(|r| r.code().as_u16()),
        host,
        address,
        cause: Cause::from_parts(result.reply.is_some(), result.reason.as_ref()),
    }
}

/// Runs one scenario; returns the observed results and the connections
/// the servers saw.
fn run(scenario: &Scenario) -> (Vec<Observed>, usize) {
    let stage = Stage::start(scenario);
    let resolver = Resolver::new(vec![stage.dns.addr()])
        .timeout(Duration::from_millis(300))
        .attempts(1);
    let mut settings = MxSettings::new(resolver);
    settings.port = stage.port();
    settings.tls = scenario.tls.mode();
    settings.verify = Some(scenario.tls.verify());
    let mut connection = Settings::default().with_timeout(Duration::from_secs(5));
    connection.connect_timeout = Duration::from_secs(2);
    connection.helo = Some("client.test".parse().unwrap());
    connection.tls = smtp_blocking::TlsConfig::builder()
        .ca_pem(stage.ca_pem().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    settings.settings = connection;
    let envelope = Envelope::new(
        ReversePath::Mailbox(Mailbox::parse("sender@example.org").unwrap().into_owned()),
        scenario
            .recipients
            .iter()
            .map(|r| {
                let r = on_loopback(r);
                ForwardPath::Mailbox(Mailbox::parse(&r).unwrap().into_owned())
            })
            .collect(),
    );
    let report = deliver_mx(&envelope, b"Subject: scenario\r\n\r\nHello.\r\n", &settings);
    let observed = scenario
        .recipients
        .iter()
        .zip(&report.recipients)
        .map(|(recipient, result)| observed(recipient, result))
        .collect();
    let connections = scenario
        .servers
        .iter()
        .filter_map(|s| stage.server(s.address))
        .map(|server| server.connections())
        .sum();
    (observed, connections)
}

#[test]
fn every_scenario_of_the_shared_table_over_loopback() {
    let mut failures = Vec::new();
    let mut passed = 0;
    for scenario in SCENARIOS {
        let start = Instant::now();
        let (observed, connections) = run(scenario);
        match scenario.check(&observed) {
            Ok(()) => passed += 1,
            Err(e) => failures.push(e),
        }
        // No host in any verdict: decided before any connection.
        if scenario.expect.iter().all(|e| e.host.is_none()) && connections != 0 {
            failures.push(format!("{}: {connections} connections", scenario.name));
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed < Duration::from_secs(10),
            "{}: {elapsed:?}",
            scenario.name
        );
    }
    assert!(
        failures.is_empty(),
        "{passed}/{} scenarios pass; failures:\n{}",
        SCENARIOS.len(),
        failures.join("\n")
    );
}
