//! The stub resolver against a fake DNS server on 127.0.0.1.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::resolver;
use smtp_blocking::dns::Step;
use smtp_blocking::{DnsError, Resolver};
use smtp_proto::mx::{MxAnswer, PlanConfig, Rcode, Severity};
use smtp_tests::fake_dns::{Answer, FakeDns, RecordType, addr, mx};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn host_names(answer: &MxAnswer) -> Vec<(String, u16)> {
    answer
        .clone()
        .into_hosts()
        .unwrap()
        .iter()
        .map(|h| (h.name().as_str().to_owned(), h.preference()))
        .collect()
}

#[test]
fn mx_hosts_in_preference_order() {
    let dns = FakeDns::start(vec![(
        "example.org",
        RecordType::MX,
        Answer::records(vec![
            mx("example.org", 20, "mx2.example.org"),
            mx("example.org", 10, "mx1.example.org"),
        ]),
    )]);
    let answer = resolver(&dns).resolve_mx("example.org").unwrap();
    assert!(matches!(answer, MxAnswer::Hosts(_)), "{answer:?}");
    assert_eq!(
        host_names(&answer),
        [
            ("mx1.example.org".to_owned(), 10),
            ("mx2.example.org".to_owned(), 20)
        ]
    );
    assert_eq!(dns.tcp_queries(), 0);
}

#[test]
fn mx_hints_from_the_additional_section() {
    let dns = FakeDns::start(vec![(
        "example.org",
        RecordType::MX,
        Answer::Records {
            answers: vec![mx("example.org", 10, "mx.example.org")],
            additionals: vec![addr("mx.example.org", "192.0.2.25")],
        },
    )]);
    let hosts = resolver(&dns).mx_hosts("example.org").unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].hints(), &[ip("192.0.2.25")]);
}

#[test]
fn no_mx_records_means_implicit_mx() {
    let dns = FakeDns::start(vec![]);
    let answer = resolver(&dns).resolve_mx("example.org").unwrap();
    match &answer {
        MxAnswer::Implicit(host) => assert_eq!(host.name().as_str(), "example.org"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn null_mx_is_permanent() {
    let dns = FakeDns::start(vec![(
        "nomail.example",
        RecordType::MX,
        Answer::records(vec![mx("nomail.example", 0, ".")]),
    )]);
    let resolver = resolver(&dns);
    assert_eq!(
        resolver.resolve_mx("nomail.example").unwrap(),
        MxAnswer::NullMx
    );
    let err = resolver.mx_hosts("nomail.example").unwrap_err();
    assert!(matches!(err, DnsError::NullMx(_)), "{err:?}");
    assert_eq!(err.severity(), Severity::Permanent);
    let err = smtp_blocking::Error::from(err);
    assert!(err.is_permanent());
}

#[test]
fn nxdomain_is_permanent() {
    let dns = FakeDns::start(vec![("gone.example", RecordType::MX, Answer::NxDomain)]);
    let resolver = resolver(&dns);
    assert_eq!(
        resolver.resolve_mx("gone.example").unwrap(),
        MxAnswer::NxDomain
    );
    let err = resolver.mx_hosts("gone.example").unwrap_err();
    assert!(matches!(err, DnsError::NxDomain(_)), "{err:?}");
    assert_eq!(err.severity(), Severity::Permanent);
}

#[test]
fn servfail_is_temporary() {
    let dns = FakeDns::start(vec![("broken.example", RecordType::MX, Answer::ServFail)]);
    let err = resolver(&dns).resolve_mx("broken.example").unwrap_err();
    match &err {
        DnsError::ServerFailure { rcode, .. } => assert_eq!(*rcode, Rcode::SERVFAIL),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.severity(), Severity::Temporary);
    assert!(smtp_blocking::Error::from(err).is_temporary());
}

#[test]
fn truncated_answers_are_asked_again_over_tcp() {
    let dns = FakeDns::start(vec![(
        "big.example",
        RecordType::MX,
        Answer::Truncated(Box::new(Answer::records(vec![mx(
            "big.example",
            5,
            "mx.big.example",
        )]))),
    )]);
    let answer = resolver(&dns).resolve_mx("big.example").unwrap();
    assert_eq!(host_names(&answer), [("mx.big.example".to_owned(), 5)]);
    assert_eq!(dns.udp_queries(), 1);
    assert_eq!(dns.tcp_queries(), 1);
}

#[test]
fn unrelated_datagrams_are_ignored() {
    let dns = FakeDns::start(vec![(
        "example.org",
        RecordType::MX,
        Answer::SpoofedFirst(Box::new(Answer::records(vec![mx(
            "example.org",
            10,
            "real.example.org",
        )]))),
    )]);
    let answer = resolver(&dns).resolve_mx("example.org").unwrap();
    assert_eq!(host_names(&answer), [("real.example.org".to_owned(), 10)]);
}

#[test]
fn a_silent_server_times_out_within_the_budget() {
    let dns = FakeDns::start(vec![("slow.example", RecordType::MX, Answer::Silent)]);
    let resolver = resolver(&dns)
        .timeout(Duration::from_millis(150))
        .attempts(2);
    let start = Instant::now();
    let err = resolver.resolve_mx("slow.example").unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, DnsError::Timeout(_)), "{err:?}");
    assert_eq!(err.severity(), Severity::Temporary);
    assert_eq!(dns.udp_queries(), 2, "one query per attempt");
    assert!(elapsed >= Duration::from_millis(290), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn the_next_server_is_asked_after_a_failure() {
    let silent = FakeDns::start(vec![("example.org", RecordType::MX, Answer::Silent)]);
    let failing = FakeDns::start(vec![("example.org", RecordType::MX, Answer::ServFail)]);
    let good = FakeDns::start(vec![(
        "example.org",
        RecordType::MX,
        Answer::records(vec![mx("example.org", 10, "mx.example.org")]),
    )]);
    let resolver = Resolver::new(vec![silent.addr(), failing.addr(), good.addr()])
        .timeout(Duration::from_millis(150))
        .attempts(1);
    let answer = resolver.resolve_mx("example.org").unwrap();
    assert_eq!(host_names(&answer), [("mx.example.org".to_owned(), 10)]);
    assert_eq!(
        (
            silent.udp_queries(),
            failing.udp_queries(),
            good.udp_queries()
        ),
        (1, 1, 1)
    );
}

#[test]
fn nobody_listening_is_a_temporary_error() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let resolver = Resolver::new(vec![SocketAddr::from(([127, 0, 0, 1], port))])
        .timeout(Duration::from_millis(200))
        .attempts(1);
    let start = Instant::now();
    let err = resolver.resolve_mx("example.org").unwrap_err();
    assert!(
        matches!(err, DnsError::Io(_) | DnsError::Timeout(_)),
        "{err:?}"
    );
    assert_eq!(err.severity(), Severity::Temporary);
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn addresses_from_a_and_aaaa() {
    let dns = FakeDns::start(vec![
        (
            "mx.example.org",
            RecordType::A,
            Answer::records(vec![
                addr("mx.example.org", "192.0.2.1"),
                addr("mx.example.org", "192.0.2.2"),
            ]),
        ),
        (
            "mx.example.org",
            RecordType::AAAA,
            Answer::records(vec![addr("mx.example.org", "2001:db8::1")]),
        ),
        (
            "v4only.example.org",
            RecordType::A,
            Answer::records(vec![addr("v4only.example.org", "192.0.2.4")]),
        ),
        ("half.example.org", RecordType::AAAA, Answer::ServFail),
        (
            "half.example.org",
            RecordType::A,
            Answer::records(vec![addr("half.example.org", "192.0.2.5")]),
        ),
        ("down.example.org", RecordType::A, Answer::ServFail),
        ("gone.example.org", RecordType::A, Answer::NxDomain),
        ("gone.example.org", RecordType::AAAA, Answer::NxDomain),
    ]);
    let resolver = resolver(&dns);
    assert_eq!(
        resolver.resolve_addresses("mx.example.org").unwrap(),
        [ip("192.0.2.1"), ip("192.0.2.2"), ip("2001:db8::1")]
    );
    assert_eq!(
        resolver.resolve_addresses("v4only.example.org").unwrap(),
        [ip("192.0.2.4")]
    );
    assert_eq!(
        resolver.resolve_addresses("half.example.org").unwrap(),
        [ip("192.0.2.5")],
        "one family's failure does not hide the other's addresses"
    );
    assert_eq!(
        resolver.resolve_addresses("empty.example.org").unwrap(),
        Vec::<IpAddr>::new()
    );
    let err = resolver.resolve_addresses("down.example.org").unwrap_err();
    assert_eq!(err.severity(), Severity::Temporary, "{err:?}");
    let err = resolver.resolve_addresses("gone.example.org").unwrap_err();
    assert!(matches!(err, DnsError::NxDomain(_)), "{err:?}");
}

#[test]
fn walking_a_host_plan() {
    let dns = FakeDns::start(vec![
        (
            "example.org",
            RecordType::MX,
            Answer::records(vec![
                mx("example.org", 10, "mx1.example.org"),
                mx("example.org", 20, "mx2.example.org"),
                mx("example.org", 30, "mx3.example.org"),
            ]),
        ),
        (
            "mx1.example.org",
            RecordType::A,
            Answer::records(vec![
                addr("mx1.example.org", "127.0.0.11"),
                addr("mx1.example.org", "127.0.0.12"),
            ]),
        ),
        // mx2 does not exist: skipped.
        ("mx2.example.org", RecordType::A, Answer::NxDomain),
        ("mx2.example.org", RecordType::AAAA, Answer::NxDomain),
        (
            "mx3.example.org",
            RecordType::AAAA,
            Answer::records(vec![addr("mx3.example.org", "::1")]),
        ),
    ]);
    let resolver = resolver(&dns);
    let mut plan = resolver
        .host_plan("example.org", &PlanConfig::default())
        .unwrap();
    let connect = |host: &str, ip_text: &str| Step::Connect {
        host: smtp_proto::mx::HostName::parse(host).unwrap(),
        ip: ip(ip_text),
    };
    assert_eq!(
        resolver.next_target(&mut plan),
        connect("mx1.example.org", "127.0.0.11")
    );
    plan.on_connect_failed().unwrap();
    assert_eq!(
        resolver.next_target(&mut plan),
        connect("mx1.example.org", "127.0.0.12")
    );
    plan.on_temporary_failure().unwrap();
    assert_eq!(
        resolver.next_target(&mut plan),
        connect("mx3.example.org", "::1")
    );
    plan.on_connect_failed().unwrap();
    assert_eq!(
        resolver.next_target(&mut plan),
        Step::Exhausted(Severity::Temporary)
    );
}

#[test]
fn a_plan_with_no_reachable_host_is_permanent() {
    let dns = FakeDns::start(vec![
        (
            "example.org",
            RecordType::MX,
            Answer::records(vec![mx("example.org", 10, "nowhere.example.org")]),
        ),
        ("nowhere.example.org", RecordType::A, Answer::NxDomain),
        ("nowhere.example.org", RecordType::AAAA, Answer::NxDomain),
    ]);
    let resolver = resolver(&dns);
    let mut plan = resolver
        .host_plan("example.org", &PlanConfig::default())
        .unwrap();
    assert_eq!(
        resolver.next_target(&mut plan),
        Step::Exhausted(Severity::Permanent)
    );
}

#[test]
fn a_plan_for_a_null_mx_domain_is_refused() {
    let dns = FakeDns::start(vec![(
        "nomail.example",
        RecordType::MX,
        Answer::records(vec![mx("nomail.example", 0, ".")]),
    )]);
    let err = resolver(&dns)
        .host_plan("nomail.example", &PlanConfig::default())
        .unwrap_err();
    assert!(matches!(err, DnsError::NullMx(_)), "{err:?}");
}
