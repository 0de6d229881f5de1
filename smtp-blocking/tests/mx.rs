//! MX delivery against a fake DNS server and local SMTP servers as the MX
//! hosts (127.0.0.1 and 127.0.0.2 on one port).

mod common;

use std::time::Duration;

use common::resolver;
use smtp_blocking::{Envelope, MxSettings, Outcome, Settings, TlsMode, deliver_mx};
use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
use smtp_proto::mx::{Rcode, Reason};
use smtp_tests::fake_dns::{Answer, FakeDns, RecordType, addr, mx};
use smtp_tests::net::same_port_listeners;
use smtp_tests::std_server::{Options, TestServer};

fn envelope(to: &[&str]) -> Envelope {
    Envelope::new(
        ReversePath::Mailbox(Mailbox::parse("a@example.org").unwrap().into_owned()),
        to.iter()
            .map(|t| ForwardPath::Mailbox(Mailbox::parse(t).unwrap().into_owned()))
            .collect(),
    )
}

fn settings(dns: &FakeDns, port: u16) -> MxSettings {
    let mut s = MxSettings::new(resolver(dns));
    s.port = port;
    let mut conn = Settings::default().with_timeout(Duration::from_secs(5));
    conn.helo = Some("client.test".parse().unwrap());
    s.settings = conn;
    s
}

const BODY: &[u8] = b"Subject: mx\r\n\r\nHello.\r\n";

#[test]
fn first_mx_refusing_with_4xx_moves_to_the_second() {
    let [l1, l2] =
        same_port_listeners(&["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()])
            .try_into()
            .unwrap();
    let port = l1.local_addr().unwrap().port();
    let first = TestServer::start_on(
        l1,
        Options {
            greeting: Some((421, "try later")),
            ..Options::default()
        },
    );
    let second = TestServer::start_on(
        l2,
        Options {
            refuse_rcpt: vec!["<gone@example.net>".into()],
            ..Options::default()
        },
    );
    let dns = FakeDns::start(vec![
        (
            "example.net",
            RecordType::MX,
            Answer::records(vec![
                mx("example.net", 10, "mx1.example.net"),
                mx("example.net", 20, "mx2.example.net"),
            ]),
        ),
        (
            "mx1.example.net",
            RecordType::A,
            Answer::records(vec![addr("mx1.example.net", "127.0.0.1")]),
        ),
        (
            "mx2.example.net",
            RecordType::A,
            Answer::records(vec![addr("mx2.example.net", "127.0.0.2")]),
        ),
    ]);
    let report = deliver_mx(
        &envelope(&["b@example.net", "gone@example.net"]),
        BODY,
        &settings(&dns, port),
    );
    assert_eq!(
        report.recipients[0].outcome,
        Outcome::Accepted,
        "{report:?}"
    );
    assert_eq!(
        report.recipients[0].host.as_ref().map(|h| h.as_str()),
        Some("mx2.example.net")
    );
    assert_eq!(
        report.recipients[0].address,
        Some("127.0.0.2".parse().unwrap())
    );
    assert_eq!(report.recipients[1].outcome, Outcome::PermanentFailure);
    assert!(!report.any_temporary());
    assert_eq!(first.connections(), 1, "the first MX was tried");
    assert_eq!(first.delivered().len(), 0);
    assert_eq!(second.delivered().len(), 1);
    assert_eq!(second.delivered()[0].body, BODY);
}

#[test]
fn null_mx_and_nxdomain_fail_permanently_without_connecting() {
    let server = TestServer::start(Options::default());
    let dns = FakeDns::start(vec![
        (
            "null.example",
            RecordType::MX,
            Answer::records(vec![mx("null.example", 0, ".")]),
        ),
        ("gone.example", RecordType::MX, Answer::NxDomain),
        ("servfail.example", RecordType::MX, Answer::ServFail),
    ]);
    let report = deliver_mx(
        &envelope(&["x@null.example", "y@gone.example", "z@servfail.example"]),
        BODY,
        &settings(&dns, server.port()),
    );
    let outcomes: Vec<_> = report.recipients.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::PermanentFailure,
            Outcome::PermanentFailure,
            Outcome::TransientFailure
        ],
        "{report:?}"
    );
    let reasons: Vec<_> = report.recipients.iter().map(|r| r.reason.clone()).collect();
    assert_eq!(
        reasons,
        [
            Some(Reason::NullMx),
            Some(Reason::NxDomain),
            Some(Reason::DnsFailure(Rcode::SERVFAIL))
        ]
    );
    assert!(report.recipients.iter().all(|r| r.host.is_none()));
    assert_eq!(server.connections(), 0, "no connection was made");
}

#[test]
fn every_host_down_is_a_temporary_failure_and_recipients_group_by_domain() {
    let server = TestServer::start(Options::default());
    let port = server.port();
    let dns = FakeDns::start(vec![
        (
            "up.example",
            RecordType::MX,
            Answer::records(vec![mx("up.example", 10, "mx.up.example")]),
        ),
        (
            "mx.up.example",
            RecordType::A,
            Answer::records(vec![addr("mx.up.example", "127.0.0.1")]),
        ),
        (
            "down.example",
            RecordType::MX,
            Answer::records(vec![mx("down.example", 10, "mx.down.example")]),
        ),
        (
            // Nothing listens on 127.0.0.3 at this port.
            "mx.down.example",
            RecordType::A,
            Answer::records(vec![addr("mx.down.example", "127.0.0.3")]),
        ),
    ]);
    let report = deliver_mx(
        &envelope(&["a@up.example", "b@down.example", "c@UP.example"]),
        BODY,
        &settings(&dns, port),
    );
    let outcomes: Vec<_> = report.recipients.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Accepted,
            Outcome::TransientFailure,
            Outcome::Accepted
        ],
        "{report:?}"
    );
    assert_eq!(report.recipients[1].reason, Some(Reason::Connect));
    assert!(report.recipients[1].describe().contains("127.0.0.3"));
    // One message for both up.example recipients.
    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].to.len(), 2);
}

#[test]
fn required_starttls_passes_over_hosts_without_it() {
    let server = TestServer::start(Options::default());
    let dns = FakeDns::start(vec![
        (
            "plain.example",
            RecordType::MX,
            Answer::records(vec![mx("plain.example", 10, "mx.plain.example")]),
        ),
        (
            "mx.plain.example",
            RecordType::A,
            Answer::records(vec![addr("mx.plain.example", "127.0.0.1")]),
        ),
    ]);
    let mut s = settings(&dns, server.port());
    s.tls = TlsMode::Required;
    let report = deliver_mx(&envelope(&["a@plain.example"]), BODY, &s);
    assert_eq!(report.recipients[0].outcome, Outcome::TransientFailure);
    assert!(server.delivered().is_empty());
    // Opportunistic (the default) delivers in plaintext.
    let report = deliver_mx(
        &envelope(&["a@plain.example"]),
        BODY,
        &settings(&dns, server.port()),
    );
    assert!(report.all_accepted(), "{report:?}");
}
