//! The DNS pump (`smtp_blocking::dns`) over loopback, against a fake DNS
//! server: UDP, truncation then TCP, the next server after SERVFAIL or
//! silence, timeouts bounded small, spoofed datagrams ignored. The policy
//! itself (which server, when to retry) is the core's and tested there;
//! these tests show that the pump carries it over real sockets.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use common::resolver;
use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::rdata::MX;
use hickory_proto::rr::{RData, Record};
use smtp_blocking::{DnsError, Resolver};
use smtp_proto::dns::{Failure, Question, Rcode};
use smtp_proto::mx::{HostName, MxAnswer, Severity};
use smtp_tests::fake_dns::{Answer, FakeDns, RecordType, addr, mx, name, txt};

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

fn failure(err: &DnsError) -> Option<&Failure> {
    match err {
        DnsError::Lookup { failure, .. } => Some(failure),
        _ => None,
    }
}

#[test]
fn mx_hosts_in_preference_order_over_udp() {
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
    assert_eq!((dns.udp_queries(), dns.tcp_queries()), (1, 0));
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
    let hosts = resolver(&dns)
        .resolve_mx("example.org")
        .unwrap()
        .into_hosts()
        .unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].hints(), &[ip("192.0.2.25")]);
}

#[test]
fn no_mx_records_null_mx_and_nxdomain_are_answers() {
    let dns = FakeDns::start(vec![
        (
            "nomail.example",
            RecordType::MX,
            Answer::records(vec![mx("nomail.example", 0, ".")]),
        ),
        ("gone.example", RecordType::MX, Answer::NxDomain),
    ]);
    let resolver = resolver(&dns);
    match resolver.resolve_mx("example.org").unwrap() {
        MxAnswer::Implicit(host) => assert_eq!(host.name().as_str(), "example.org"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        resolver.resolve_mx("nomail.example").unwrap(),
        MxAnswer::NullMx
    );
    assert_eq!(
        resolver.resolve_mx("gone.example").unwrap(),
        MxAnswer::NxDomain
    );
}

#[test]
fn servfail_everywhere_is_a_temporary_failure_with_its_code() {
    let dns = FakeDns::start(vec![("broken.example", RecordType::MX, Answer::ServFail)]);
    let err = resolver(&dns).resolve_mx("broken.example").unwrap_err();
    assert_eq!(
        failure(&err),
        Some(&Failure::ServerFailure(Rcode::SERVFAIL)),
        "{err:?}"
    );
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
    assert_eq!((dns.udp_queries(), dns.tcp_queries()), (1, 1));
}

#[test]
fn a_truncated_answer_whose_tcp_server_is_gone_moves_to_the_next_server() {
    // A server that answers UDP with TC and refuses TCP: its UDP port has no
    // TCP listener behind it.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let truncating = udp.local_addr().unwrap();
    let server = thread::spawn(move || {
        udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let (n, peer) = udp.recv_from(&mut buf).unwrap();
        let query = Message::from_vec(&buf[..n]).unwrap();
        let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
        reply.add_queries(query.queries);
        reply.metadata.truncation = true;
        udp.send_to(&reply.to_vec().unwrap(), peer).unwrap();
    });
    let good = FakeDns::start(vec![(
        "example.org",
        RecordType::MX,
        Answer::records(vec![mx("example.org", 10, "mx.example.org")]),
    )]);
    let resolver = Resolver::new(vec![truncating, good.addr()])
        .timeout(Duration::from_millis(500))
        .attempts(1);
    let answer = resolver.resolve_mx("example.org").unwrap();
    assert_eq!(host_names(&answer), [("mx.example.org".to_owned(), 10)]);
    server.join().unwrap();
}

#[test]
fn unrelated_datagrams_from_the_server_are_ignored() {
    // A wrong id and another question first, then the answer.
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
fn a_spoofed_answer_from_another_port_is_ignored() {
    // The spoofer knows the id, the question and our port (it sits on the
    // path and read the query), but sends from another port than the
    // server's: RFC 5452 §9.1 matching on the source drops it.
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server_addr = server.local_addr().unwrap();
    let spoofer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let play = thread::spawn(move || {
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let (n, peer) = server.recv_from(&mut buf).unwrap();
        let query = Message::from_vec(&buf[..n]).unwrap();
        let answer = |exchange: &str| {
            let mut m = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
            m.add_queries(query.queries.clone());
            let mx = MX::new(10, name(exchange));
            m.add_answer(Record::from_rdata(name("example.org"), 300, RData::MX(mx)));
            m.to_vec().unwrap()
        };
        spoofer.send_to(&answer("evil.example"), peer).unwrap();
        // The spoofed datagram is in the client's socket before the real
        // one is sent: both are queued in this order.
        server.send_to(&answer("real.example.org"), peer).unwrap();
    });
    let resolver = Resolver::new(vec![server_addr])
        .timeout(Duration::from_millis(2000))
        .attempts(1);
    let answer = resolver.resolve_mx("example.org").unwrap();
    assert_eq!(host_names(&answer), [("real.example.org".to_owned(), 10)]);
    play.join().unwrap();
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
    assert_eq!(failure(&err), Some(&Failure::Timeout), "{err:?}");
    assert_eq!(err.severity(), Severity::Temporary);
    assert_eq!(dns.udp_queries(), 2, "one query per attempt");
    assert!(elapsed >= Duration::from_millis(290), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn the_next_server_is_asked_after_silence_and_servfail() {
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
fn nobody_listening_is_a_temporary_failure_in_bounded_time() {
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
    assert!(failure(&err).is_some(), "{err:?}");
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
fn questions_asked_together_are_answered_together() {
    // A silent question beside an answered one: the pump hands in the
    // answer while the other waits, and the whole call lasts one timeout.
    let dns = FakeDns::start(vec![
        ("slow.example.org", RecordType::A, Answer::Silent),
        (
            "fast.example.org",
            RecordType::A,
            Answer::records(vec![addr("fast.example.org", "192.0.2.7")]),
        ),
    ]);
    let resolver = resolver(&dns).timeout(Duration::from_millis(200));
    let host = |s: &str| HostName::parse(s).unwrap();
    let start = Instant::now();
    let results = resolver
        .lookup_all(&[
            Question::a(&host("slow.example.org")),
            Question::a(&host("fast.example.org")),
        ])
        .unwrap();
    assert!(start.elapsed() < Duration::from_millis(390));
    assert_eq!(results[0], Err(Failure::Timeout));
    let fast = results[1].as_ref().unwrap();
    assert_eq!(
        fast.records().and_then(|r| r.addresses()),
        Some(&[ip("192.0.2.7")][..])
    );
}

#[test]
fn txt_records_for_names_with_underscores() {
    let dns = FakeDns::start(vec![
        (
            "_dmarc.example.org",
            RecordType::TXT,
            Answer::records(vec![txt("_dmarc.example.org", &["v=DMARC1; ", "p=reject"])]),
        ),
        ("_dmarc.gone.example", RecordType::TXT, Answer::NxDomain),
    ]);
    let resolver = resolver(&dns);
    let records = resolver.resolve_txt("_dmarc.example.org").unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].joined(), b"v=DMARC1; p=reject");
    assert!(
        resolver
            .resolve_txt("_dmarc.none.example")
            .unwrap()
            .is_empty()
    );
    let err = resolver.resolve_txt("_dmarc.gone.example").unwrap_err();
    assert!(matches!(err, DnsError::NxDomain(_)), "{err:?}");
}

#[test]
fn a_mixed_server_list_reaches_ipv4_servers_from_one_socket() {
    // An IPv6 server in the list makes the pump's socket IPv6 (dual-stack:
    // IPv4 servers at their IPv4-mapped address) where the system has IPv6;
    // either way the IPv4 server answers.
    let dns = FakeDns::start(vec![(
        "example.org",
        RecordType::MX,
        Answer::records(vec![mx("example.org", 10, "mx.example.org")]),
    )]);
    let nobody: SocketAddr = "[::1]:9".parse().unwrap();
    let resolver = Resolver::new(vec![dns.addr(), nobody])
        .timeout(Duration::from_millis(300))
        .attempts(1);
    let answer = resolver.resolve_mx("example.org").unwrap();
    assert_eq!(host_names(&answer), [("mx.example.org".to_owned(), 10)]);
}
