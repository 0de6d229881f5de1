//! The shared MX scenario table ([`smtp_tests::mx_scenarios`]) against the
//! core's walk alone.
//!
//! A model transport plays every row: it answers the walk's DNS questions
//! from the zone, "connects" to the scenario's servers, plays their replies
//! through setup (greeting, EHLO, STARTTLS and the handshake as the
//! certificate and the walk's TLS policy say) and the transaction, and
//! reports each result to the walk exactly as a blocking transport does,
//! one connection at a time. The model decides nothing: every choice is the
//! walk's. So this test checks the table's expectations against the rules,
//! and the transports' own runs of the table check that they follow them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use smtp_proto::TlsMode;
use smtp_proto::address::{ForwardPath, Mailbox};
use smtp_proto::client::Error as SessionError;
use smtp_proto::mx::{
    AddressAnswer, ConnectionFailure, Freshness, HostName, Lookup, MxAnswer, MxHost, QueryType,
    Rcode, Step, TlsFailure, TlsPolicy, TransactionOutcome, Walk, WalkConfig, WalkError,
};
use smtp_proto::reply::Reply;
use smtp_tests::mx_scenarios::{
    Certificate, HostRecords, Listener, MxRecords, Observed, RCPT_OK, SCENARIOS, Scenario, Smtp,
    StartTls, from_loopback, loopback,
};

fn reply(text: &str) -> Reply<'static> {
    let line = format!("{text}\r\n");
    Reply::parse(line.as_bytes())
        .expect("a valid reply in the table")
        .expect("a complete reply")
        .0
        .into_owned()
}

fn name(s: &str) -> HostName {
    HostName::parse(s).expect("a valid host name in the table")
}

/// The MX answer the walk gets (after TCP for a truncated one).
fn mx_lookup(scenario: &Scenario, domain: &HostName, walk: &mut Walk) {
    let records = match scenario.zone.mx {
        MxRecords::Records(records) => records,
        MxRecords::TruncatedThen(records) => {
            // The UDP answer: the resolver's to handle, the walk refuses it.
            let before = walk.clone();
            assert_eq!(
                walk.mx_lookup(Lookup::Answered(MxAnswer::Truncated)),
                Err(WalkError::Truncated)
            );
            assert_eq!(*walk, before);
            records
        }
        MxRecords::NoRecords => {
            let answer = MxAnswer::Implicit(MxHost::new(domain.clone(), 0));
            return walk.mx_lookup(Lookup::Answered(answer)).unwrap();
        }
        MxRecords::Null => return walk.mx_lookup(Lookup::Answered(MxAnswer::NullMx)).unwrap(),
        MxRecords::NxDomain => {
            return walk
                .mx_lookup(Lookup::Answered(MxAnswer::NxDomain))
                .unwrap();
        }
        MxRecords::ServFail => {
            let answer = MxAnswer::Temporary(Rcode::SERVFAIL);
            return walk.mx_lookup(Lookup::Answered(answer)).unwrap();
        }
        MxRecords::Silent => return walk.mx_lookup(Lookup::Failed).unwrap(),
    };
    let mut hosts: Vec<MxHost> = records
        .iter()
        .map(|(preference, host)| MxHost::new(name(host), *preference))
        .collect();
    hosts.sort_by_key(MxHost::preference);
    let preferences: BTreeSet<u16> = hosts.iter().map(MxHost::preference).collect();
    assert_eq!(
        preferences.len(),
        hosts.len(),
        "{}: equal preferences",
        scenario.name
    );
    walk.mx_lookup(Lookup::Answered(MxAnswer::Hosts(hosts)))
        .unwrap();
}

fn address_answer(scenario: &Scenario, host: &HostName, query: QueryType) -> AddressAnswer {
    let records = scenario
        .zone
        .hosts
        .iter()
        .find(|(n, _)| name(n) == *host)
        .map(|(_, r)| *r);
    match (records, query) {
        (Some(HostRecords::Addresses(ips)), QueryType::A) => AddressAnswer::Addresses(
            ips.iter()
                .map(|ip| IpAddr::V4(ip.parse().expect("an IPv4 address in the table")))
                .collect(),
        ),
        (Some(HostRecords::Addresses(_)), _) => AddressAnswer::Addresses(Vec::new()),
        (Some(HostRecords::ServFail), _) => AddressAnswer::Temporary(Rcode::SERVFAIL),
        (Some(HostRecords::NxDomain) | None, _) => AddressAnswer::NxDomain,
    }
}

/// The server at an address, if one listens.
fn server(scenario: &Scenario, ip: IpAddr) -> Option<Smtp> {
    scenario.servers.iter().find_map(|s| match s.listener {
        Listener::Smtp(smtp) if s.address.parse::<IpAddr>().ok() == Some(ip) => Some(smtp),
        _ => None,
    })
}

fn handshake(certificate: Certificate, tls: TlsPolicy) -> Result<(), ConnectionFailure> {
    match certificate {
        Certificate::Broken => Err(ConnectionFailure::Tls(TlsFailure::Handshake)),
        Certificate::Untrusted if tls.verify() => {
            Err(ConnectionFailure::Tls(TlsFailure::Certificate))
        }
        _ => Ok(()),
    }
}

/// Setup as the client session plays it under `tls`.
fn setup(smtp: &Smtp, tls: TlsPolicy) -> Result<(), ConnectionFailure> {
    let refused = |error| Err(ConnectionFailure::Session(error));
    if tls.mode() == TlsMode::Implicit {
        match smtp.starttls {
            StartTls::Offered(certificate) => handshake(certificate, tls)?,
            _ => return Err(ConnectionFailure::Tls(TlsFailure::Handshake)),
        }
    }
    let greeting = reply(smtp.greeting);
    if greeting.code().as_u16() == 421 {
        return refused(SessionError::ServiceNotAvailable(greeting));
    }
    if greeting.code().as_u16() != 220 {
        return refused(SessionError::GreetingRejected(greeting));
    }
    let ehlo = reply(smtp.ehlo);
    if !ehlo.is_positive_completion() {
        return refused(SessionError::HelloRejected(ehlo));
    }
    let required = tls.mode() == TlsMode::Required;
    if matches!(tls.mode(), TlsMode::Opportunistic | TlsMode::Required) {
        match smtp.starttls {
            StartTls::NotOffered if required => return refused(SessionError::StartTlsNotOffered),
            StartTls::Refused(text) if required => {
                return refused(SessionError::StartTlsRefused(reply(text)));
            }
            StartTls::NotOffered | StartTls::Refused(_) => {}
            StartTls::Offered(certificate) => handshake(certificate, tls)?,
        }
    }
    Ok(())
}

/// One transaction for `recipients`: the deciding reply of each, as the
/// client's report has it, and whether the server closed the connection.
fn transaction(smtp: &Smtp, recipients: &[&str]) -> (TransactionOutcome, bool) {
    let mail = reply(smtp.mail);
    if !mail.is_positive_completion() {
        let all = recipients.iter().map(|_| Some(mail.clone())).collect();
        return (TransactionOutcome::new(Some(mail), all, None), false);
    }
    let rcpt: Vec<Reply<'static>> = recipients
        .iter()
        .map(|r| {
            let text = smtp
                .rcpt
                .iter()
                .find(|(who, _)| who == r)
                .map_or(RCPT_OK, |(_, text)| *text);
            reply(text)
        })
        .collect();
    let accepted = rcpt.iter().any(Reply::is_positive_completion);
    let data = reply(smtp.data);
    let last = if !accepted {
        None
    } else if data.code().as_u16() != 354 {
        Some(Some(data))
    } else if smtp.end.is_empty() {
        Some(None)
    } else {
        Some(Some(reply(smtp.end)))
    };
    let replies = rcpt
        .into_iter()
        .map(|r| match &last {
            Some(last) if r.is_positive_completion() => last.clone(),
            _ => Some(r),
        })
        .collect();
    let lost = matches!(last, Some(None));
    let error = lost.then_some(SessionError::ConnectionClosed {
        partial_reply: false,
    });
    (TransactionOutcome::new(Some(mail), replies, error), lost)
}

/// A connection the model holds open.
struct Live {
    host: Option<HostName>,
    ip: IpAddr,
    tls: TlsPolicy,
    smtp: Smtp,
    carried: usize,
    /// Whether the connection is still up (it closes after a lost
    /// transaction).
    up: bool,
}

/// Plays a scenario; returns the results and the addresses connected to.
fn play(scenario: &Scenario) -> (Vec<Observed>, Vec<IpAddr>) {
    let mailboxes: Vec<ForwardPath<'static>> = scenario
        .recipients
        .iter()
        .map(|r| ForwardPath::Mailbox(Mailbox::parse(r).expect("a valid recipient").into_owned()))
        .collect();
    let host = mailboxes[0].mailbox().unwrap().host().clone();
    for m in &mailboxes {
        assert_eq!(
            m.mailbox().unwrap().host(),
            &host,
            "{}: one destination",
            scenario.name
        );
    }
    let config = WalkConfig::with_tls(scenario.tls);
    let mut walk = Walk::for_host(&host, scenario.recipients.len(), &config);
    let mut live: Option<Live> = None;
    let mut connections = Vec::new();
    for _ in 0..1000 {
        if let Some(conn) = live.as_mut().filter(|c| c.up) {
            let freshness = if conn.carried == 0 {
                Freshness::Fresh
            } else {
                Freshness::Reused
            };
            if let Some(batch) = walk.offer(conn.host.as_ref(), conn.ip, conn.tls, freshness) {
                let recipients: Vec<&str> = batch
                    .recipients()
                    .iter()
                    .map(|&i| scenario.recipients[i])
                    .collect();
                let (outcome, lost) = transaction(&conn.smtp, &recipients);
                conn.carried += 1;
                conn.up = !lost;
                walk.transaction_done(batch.id(), outcome).unwrap();
                continue;
            }
        }
        live = None;
        let step = walk.next_step();
        match step {
            Step::Done => break,
            Step::LookupMx(domain) => {
                let domain = domain.clone();
                mx_lookup(scenario, &domain, &mut walk);
            }
            Step::LookupAddresses(lookup) => {
                let host = lookup.host().clone();
                let queries: Vec<QueryType> = lookup.queries().collect();
                for query in queries {
                    let answer = address_answer(scenario, &host, query);
                    walk.address_lookup(&host, query, Lookup::Answered(answer))
                        .unwrap();
                }
            }
            Step::Connect(at) => {
                let (host, ip, tls) = (at.host().cloned(), at.ip(), at.tls());
                connections.push(ip);
                let attempt = match server(scenario, ip) {
                    None => Err(ConnectionFailure::Connect),
                    Some(smtp) => setup(&smtp, tls).map(|()| smtp),
                };
                match attempt {
                    Ok(smtp) => {
                        live = Some(Live {
                            host,
                            ip,
                            tls,
                            smtp,
                            carried: 0,
                            up: true,
                        });
                    }
                    Err(failure) => walk
                        .connection_failed(host.as_ref(), ip, tls, failure)
                        .unwrap(),
                }
            }
            other => panic!(
                "{}: a one-at-a-time loop never sees {other:?}",
                scenario.name
            ),
        }
    }
    assert!(walk.is_done(), "{}: the walk did not end", scenario.name);
    let observed = walk
        .verdicts()
        .map(|(i, verdict)| {
            Observed::from_verdict(
                scenario.recipients[i],
                &verdict,
                verdict.ip().map(|ip| ip.to_string()),
            )
        })
        .collect();
    (observed, connections)
}

#[test]
fn every_scenario_matches_the_walk() {
    let mut names = BTreeSet::new();
    let mut failures = Vec::new();
    for scenario in SCENARIOS {
        assert!(
            names.insert(scenario.name),
            "duplicate scenario {}",
            scenario.name
        );
        assert_eq!(
            scenario.expect.len(),
            scenario.recipients.len(),
            "{}",
            scenario.name
        );
        let (observed, connections) = play(scenario);
        if let Err(e) = scenario.check(&observed) {
            failures.push(e);
        }
        // No host in any verdict: decided before any connection.
        if scenario.expect.iter().all(|e| e.host.is_none()) {
            assert!(
                connections.is_empty(),
                "{}: connected to {connections:?}",
                scenario.name
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_table_covers_the_issue_list() {
    // The cases both transports must agree on: 4xx for some recipients, 4xx
    // for all, connect refused, TLS failure under each policy, Null MX,
    // NXDOMAIN, SERVFAIL, truncation.
    let has = |needle: &str| SCENARIOS.iter().any(|s| s.name.contains(needle));
    for needle in [
        "4xx for some recipients",
        "4xx for all recipients",
        "connect refused",
        "TLS Disabled",
        "Opportunistic: a failed handshake",
        "Opportunistic with verify",
        "Required: untrusted",
        "Required without verify",
        "Null MX",
        "NXDOMAIN",
        "SERVFAIL",
        "truncated",
        "address literal",
    ] {
        assert!(has(needle), "no scenario for {needle:?}");
    }
}

#[test]
fn check_reports_differences() {
    let scenario = &SCENARIOS[0];
    let (mut observed, _) = play(scenario);
    assert_eq!(scenario.check(&observed), Ok(()));
    observed[1].code = Some(451);
    let error = scenario.check(&observed).unwrap_err();
    assert!(error.contains("451"), "{error}");
    observed.pop();
    assert!(
        scenario
            .check(&observed)
            .unwrap_err()
            .contains("1 results for 2")
    );
}

#[test]
fn loopback_mapping() {
    assert_eq!(loopback("192.0.2.11").to_string(), "127.0.0.11");
    assert_eq!(from_loopback(loopback("192.0.2.9")), "192.0.2.9");
    let mut seen = BTreeSet::new();
    for scenario in SCENARIOS {
        for s in scenario.servers {
            seen.insert(loopback(s.address));
        }
    }
    assert!(!seen.is_empty());
}
