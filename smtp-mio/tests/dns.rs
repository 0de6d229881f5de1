//! The non-blocking DNS client against the fake DNS server of `smtp-tests`,
//! on loopback, driven by a real `mio::Poll`.
//!
//! Time is only ever an upper bound here: every loop gives up after
//! [`BOUND`] so that a bug fails the test instead of hanging it.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::resolver;
use hickory_proto::op::{Message, MessageType, OpCode};
use mio::{Events, Poll, Token};
use smtp_blocking::Resolver;
use smtp_mio::dns::{DnsClient, DnsFailure, DnsFailureKind, LookupId, LookupOutcome};
use smtp_proto::mx::{HostName, MxAnswer, Rcode, Severity};
use smtp_tests::fake_dns::{Answer, FakeDns, RecordType, addr, mx};

/// No test loop runs longer than this.
const BOUND: Duration = Duration::from_secs(10);

/// A token below the client's range, to check `owns`.
const OTHER: Token = Token(0);
const FIRST: Token = Token(100);

struct Harness {
    poll: Poll,
    events: Events,
    client: DnsClient,
    results: HashMap<LookupId, LookupOutcome>,
}

impl Harness {
    fn new(resolver: &Resolver) -> Self {
        let poll = Poll::new().unwrap();
        let client = DnsClient::new(resolver, poll.registry(), FIRST).unwrap();
        Self {
            poll,
            events: Events::with_capacity(64),
            client,
            results: HashMap::new(),
        }
    }

    fn mx(&mut self, domain: &str) -> LookupId {
        let name = HostName::parse(domain).unwrap();
        let id = self
            .client
            .lookup_mx(self.poll.registry(), Instant::now(), &name);
        self.drain();
        id
    }

    fn addresses(&mut self, host: &str) -> LookupId {
        let name = HostName::parse(host).unwrap();
        let id = self
            .client
            .lookup_addresses(self.poll.registry(), Instant::now(), &name);
        self.drain();
        id
    }

    fn drain(&mut self) {
        drain(&mut self.client, &mut self.results);
    }

    /// Drives the loop until every lookup in `ids` has resolved; panics
    /// after [`BOUND`].
    fn run_until(&mut self, ids: &[LookupId]) {
        let give_up = Instant::now() + BOUND;
        while !ids.iter().all(|id| self.results.contains_key(id)) {
            let now = Instant::now();
            assert!(now < give_up, "lookups not resolved within {BOUND:?}");
            let mut timeout = give_up - now;
            if let Some(deadline) = self.client.next_deadline() {
                timeout = timeout.min(deadline.saturating_duration_since(now));
            }
            self.poll.poll(&mut self.events, Some(timeout)).unwrap();
            for event in &self.events {
                assert!(self.client.owns(event.token()), "{event:?}");
                self.client
                    .handle_event(self.poll.registry(), Instant::now(), event);
                drain(&mut self.client, &mut self.results);
            }
            self.client
                .handle_timeout(self.poll.registry(), Instant::now());
            self.drain();
        }
    }

    fn take(&mut self, id: LookupId) -> LookupOutcome {
        self.run_until(&[id]);
        self.results.remove(&id).unwrap()
    }

    fn take_mx(&mut self, id: LookupId) -> Result<MxAnswer, DnsFailure> {
        match self.take(id) {
            LookupOutcome::Mx(result) => result,
            other => panic!("{other:?}"),
        }
    }

    fn take_addresses(&mut self, id: LookupId) -> Result<Vec<IpAddr>, DnsFailure> {
        match self.take(id) {
            LookupOutcome::Addresses(result) => result,
            other => panic!("{other:?}"),
        }
    }

    /// Nothing left: no lookup, no deadline, no result.
    fn assert_idle(&mut self) {
        assert_eq!(self.client.in_flight(), 0);
        assert_eq!(self.client.next_deadline(), None);
        assert!(self.client.poll_resolved().is_none());
    }
}

/// Collects finished lookups; each must finish once.
fn drain(client: &mut DnsClient, results: &mut HashMap<LookupId, LookupOutcome>) {
    while let Some(resolved) = client.poll_resolved() {
        let previous = results.insert(resolved.id, resolved.outcome);
        assert!(previous.is_none(), "{:?} resolved twice", resolved.id);
    }
}

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

fn short(resolver: Resolver) -> Resolver {
    resolver.timeout(Duration::from_millis(200))
}

#[test]
fn tokens_and_owns() {
    let dns = FakeDns::start(vec![]);
    let h = Harness::new(&resolver(&dns));
    assert!(!h.client.owns(OTHER));
    assert!(!h.client.owns(Token(FIRST.0 - 1)));
    assert!(h.client.owns(FIRST));
    assert!(h.client.owns(Token(FIRST.0 + DnsClient::TOKENS - 1)));
    assert!(!h.client.owns(Token(FIRST.0 + DnsClient::TOKENS)));
    let poll = Poll::new().unwrap();
    assert!(DnsClient::new(&resolver(&dns), poll.registry(), Token(usize::MAX - 1)).is_err());
}

#[test]
fn mx_hosts_in_preference_order() {
    let dns = FakeDns::start(vec![(
        "example.org",
        RecordType::MX,
        Answer::records(vec![
            mx("example.org", 20, "mx2.example.org"),
            mx("example.org", 10, "mx1.example.org"),
            mx("example.org", 30, "mx3.example.org"),
        ]),
    )]);
    let mut h = Harness::new(&resolver(&dns));
    let id = h.mx("example.org");
    assert_eq!(h.client.in_flight(), 1);
    assert!(h.client.next_deadline().is_some());
    let answer = h.take_mx(id).unwrap();
    assert!(matches!(answer, MxAnswer::Hosts(_)), "{answer:?}");
    assert_eq!(
        host_names(&answer),
        [
            ("mx1.example.org".to_owned(), 10),
            ("mx2.example.org".to_owned(), 20),
            ("mx3.example.org".to_owned(), 30),
        ]
    );
    assert_eq!(dns.tcp_queries(), 0);
    h.assert_idle();
}

#[test]
fn no_mx_records_means_implicit_mx() {
    let dns = FakeDns::start(vec![]);
    let mut h = Harness::new(&resolver(&dns));
    let id = h.mx("example.org");
    match h.take_mx(id).unwrap() {
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
    let mut h = Harness::new(&resolver(&dns));
    let id = h.mx("nomail.example");
    let answer = h.take_mx(id).unwrap();
    assert_eq!(answer, MxAnswer::NullMx);
    assert!(answer.is_permanent_failure());
}

#[test]
fn nxdomain_is_permanent() {
    let dns = FakeDns::start(vec![
        ("gone.example", RecordType::MX, Answer::NxDomain),
        ("gone.example", RecordType::A, Answer::NxDomain),
        ("gone.example", RecordType::AAAA, Answer::NxDomain),
    ]);
    let mut h = Harness::new(&resolver(&dns));
    // As the blocking resolver: MX reports NXDOMAIN as an answer...
    let id = h.mx("gone.example");
    let answer = h.take_mx(id).unwrap();
    assert_eq!(answer, MxAnswer::NxDomain);
    assert!(answer.is_permanent_failure());
    // ... and an address lookup as a permanent failure.
    let id = h.addresses("gone.example");
    let err = h.take_addresses(id).unwrap_err();
    assert!(matches!(err.kind(), DnsFailureKind::NxDomain), "{err:?}");
    assert_eq!(err.severity(), Severity::Permanent);
    assert_eq!(err.name(), "gone.example");
    assert!(err.to_string().contains("NXDOMAIN"), "{err}");
    // One query per family, no retry of a final answer.
    assert_eq!(dns.udp_queries(), 3);
}

#[test]
fn servfail_is_temporary_after_every_try() {
    let dns = FakeDns::start(vec![("broken.example", RecordType::MX, Answer::ServFail)]);
    let mut h = Harness::new(&resolver(&dns).attempts(2));
    let id = h.mx("broken.example");
    let err = h.take_mx(id).unwrap_err();
    match err.kind() {
        DnsFailureKind::ServerFailure(rcode) => assert_eq!(*rcode, Rcode::SERVFAIL),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.severity(), Severity::Temporary);
    assert_eq!(err.name(), "broken.example");
    // One server, two rounds.
    assert_eq!(dns.udp_queries(), 2);
    h.assert_idle();
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
    let mut h = Harness::new(&resolver(&dns));
    let id = h.mx("big.example");
    let answer = h.take_mx(id).unwrap();
    assert_eq!(host_names(&answer), [("mx.big.example".to_owned(), 5)]);
    assert_eq!(dns.udp_queries(), 1);
    assert_eq!(dns.tcp_queries(), 1);
    h.assert_idle();
}

#[test]
fn truncated_address_answers_over_tcp() {
    let dns = FakeDns::start(vec![(
        "big.example",
        RecordType::AAAA,
        Answer::Truncated(Box::new(Answer::records(vec![
            addr("big.example", "2001:db8::1"),
            addr("big.example", "2001:db8::2"),
        ]))),
    )]);
    let mut h = Harness::new(&resolver(&dns));
    let id = h.addresses("big.example");
    assert_eq!(
        h.take_addresses(id).unwrap(),
        [ip("2001:db8::1"), ip("2001:db8::2")]
    );
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
    let mut h = Harness::new(&resolver(&dns));
    let id = h.mx("example.org");
    let answer = h.take_mx(id).unwrap();
    assert_eq!(host_names(&answer), [("real.example.org".to_owned(), 10)]);
}

/// A forged answer with the right id and question, but from another
/// address than the server's, is dropped; the real answer then counts.
#[test]
fn answers_from_another_source_are_ignored() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let resolver = short(Resolver::new(vec![server.local_addr().unwrap()])).attempts(1);
    let mut h = Harness::new(&resolver);
    let id = h.mx("example.org");

    // The query was sent during lookup_mx.
    let mut buf = [0u8; 1500];
    let (n, client) = server.recv_from(&mut buf).unwrap();
    let query = Message::from_vec(&buf[..n]).unwrap();
    let answer = |exchange: &str| {
        let mut m = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
        m.add_query(query.queries[0].clone());
        m.add_answer(mx("example.org", 10, exchange));
        m.to_vec().unwrap()
    };
    attacker
        .send_to(&answer("evil.example.org"), client)
        .unwrap();
    // Wait until the forged datagram has been read and dropped, so that the
    // real one cannot overtake it.
    let give_up = Instant::now() + BOUND;
    loop {
        h.poll
            .poll(&mut h.events, Some(Duration::from_millis(50)))
            .unwrap();
        let mut seen = false;
        for event in &h.events {
            seen = true;
            h.client
                .handle_event(h.poll.registry(), Instant::now(), event);
        }
        h.drain();
        if seen {
            break;
        }
        assert!(Instant::now() < give_up, "forged datagram never arrived");
    }
    assert!(h.results.is_empty(), "{:?}", h.results);
    assert_eq!(h.client.in_flight(), 1);

    server.send_to(&answer("real.example.org"), client).unwrap();
    let answer = h.take_mx(id).unwrap();
    assert_eq!(host_names(&answer), [("real.example.org".to_owned(), 10)]);
}

#[test]
fn a_silent_server_times_out() {
    let dns = FakeDns::start(vec![("slow.example", RecordType::MX, Answer::Silent)]);
    let mut h = Harness::new(&short(resolver(&dns)).attempts(2));
    let start = Instant::now();
    let id = h.mx("slow.example");
    let err = h.take_mx(id).unwrap_err();
    assert!(start.elapsed() < BOUND);
    assert!(matches!(err.kind(), DnsFailureKind::Timeout), "{err:?}");
    assert_eq!(err.severity(), Severity::Temporary);
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(dns.udp_queries(), 2, "one query per attempt");
    h.assert_idle();
}

#[test]
fn the_next_server_is_asked_when_one_is_silent_or_fails() {
    let silent = FakeDns::start(vec![("example.org", RecordType::MX, Answer::Silent)]);
    let failing = FakeDns::start(vec![("example.org", RecordType::MX, Answer::ServFail)]);
    let good = FakeDns::start(vec![(
        "example.org",
        RecordType::MX,
        Answer::records(vec![mx("example.org", 10, "mx.example.org")]),
    )]);
    let resolver = short(Resolver::new(vec![
        silent.addr(),
        failing.addr(),
        good.addr(),
    ]))
    .attempts(1);
    let mut h = Harness::new(&resolver);
    let id = h.mx("example.org");
    let answer = h.take_mx(id).unwrap();
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
fn servfail_wins_over_a_later_timeout() {
    let failing = FakeDns::start(vec![("example.org", RecordType::MX, Answer::ServFail)]);
    let silent = FakeDns::start(vec![("example.org", RecordType::MX, Answer::Silent)]);
    let resolver = short(Resolver::new(vec![failing.addr(), silent.addr()])).attempts(1);
    let mut h = Harness::new(&resolver);
    let id = h.mx("example.org");
    let err = h.take_mx(id).unwrap_err();
    assert!(
        matches!(err.kind(), DnsFailureKind::ServerFailure(Rcode::SERVFAIL)),
        "{err:?}"
    );
}

#[test]
fn a_and_aaaa_are_combined() {
    let dns = FakeDns::start(vec![
        (
            "both.example",
            RecordType::A,
            Answer::records(vec![addr("both.example", "192.0.2.1")]),
        ),
        (
            "both.example",
            RecordType::AAAA,
            Answer::records(vec![addr("both.example", "2001:db8::1")]),
        ),
        ("v6only.example", RecordType::A, Answer::NxDomain),
        (
            "v6only.example",
            RecordType::AAAA,
            Answer::records(vec![addr("v6only.example", "2001:db8::6")]),
        ),
        (
            "v4half.example",
            RecordType::A,
            Answer::records(vec![addr("v4half.example", "192.0.2.4")]),
        ),
        ("v4half.example", RecordType::AAAA, Answer::ServFail),
        ("mixed.example", RecordType::A, Answer::ServFail),
        ("mixed.example", RecordType::AAAA, Answer::NxDomain),
        ("mixed2.example", RecordType::A, Answer::NxDomain),
        ("mixed2.example", RecordType::AAAA, Answer::ServFail),
        // none.example: NOERROR without records for both.
    ]);
    let mut h = Harness::new(&resolver(&dns));
    let ids: Vec<LookupId> = [
        "both.example",
        "v6only.example",
        "v4half.example",
        "mixed.example",
        "mixed2.example",
        "none.example",
    ]
    .iter()
    .map(|host| h.addresses(host))
    .collect();
    h.run_until(&ids);
    let mut results = ids.iter().map(|id| match h.results.remove(id).unwrap() {
        LookupOutcome::Addresses(result) => result,
        other => panic!("{other:?}"),
    });
    assert_eq!(
        results.next().unwrap().unwrap(),
        [ip("192.0.2.1"), ip("2001:db8::1")]
    );
    assert_eq!(results.next().unwrap().unwrap(), [ip("2001:db8::6")]);
    assert_eq!(results.next().unwrap().unwrap(), [ip("192.0.2.4")]);
    for _ in 0..2 {
        // A temporary failure beside NXDOMAIN, whichever family: temporary.
        let err = results.next().unwrap().unwrap_err();
        assert!(
            matches!(err.kind(), DnsFailureKind::ServerFailure(Rcode::SERVFAIL)),
            "{err:?}"
        );
        assert_eq!(err.severity(), Severity::Temporary);
    }
    assert_eq!(results.next().unwrap().unwrap(), Vec::<IpAddr>::new());
    h.assert_idle();
}

#[test]
fn a_cancelled_lookup_never_resolves() {
    let dns = FakeDns::start(vec![
        ("slow.example", RecordType::MX, Answer::Silent),
        (
            "example.org",
            RecordType::MX,
            Answer::records(vec![mx("example.org", 10, "mx.example.org")]),
        ),
    ]);
    let mut h = Harness::new(&short(resolver(&dns)));

    // Cancelled while waiting: nothing is left to wake up for.
    let slow = h.mx("slow.example");
    h.client.cancel(slow);
    h.assert_idle();

    // Cancelled while its answer is on the way: the answer is dropped.
    let cancelled = h.mx("example.org");
    let kept = h.addresses("example.org");
    h.client.cancel(cancelled);
    assert_eq!(h.client.in_flight(), 1);
    h.run_until(&[kept]);
    // Cancelling again, or a finished lookup, is harmless.
    h.client.cancel(cancelled);
    h.client.cancel(kept);
    assert!(!h.results.contains_key(&slow));
    assert!(!h.results.contains_key(&cancelled));
    assert!(h.results.contains_key(&kept));
    h.assert_idle();
}

#[test]
fn a_resolved_but_unpolled_lookup_can_be_cancelled() {
    let resolver = Resolver::new(Vec::new());
    let poll = Poll::new().unwrap();
    let mut client = DnsClient::new(&resolver, poll.registry(), FIRST).unwrap();
    let name = HostName::parse("example.org").unwrap();
    // Without servers the lookup fails at once.
    let id = client.lookup_mx(poll.registry(), Instant::now(), &name);
    client.cancel(id);
    assert!(client.poll_resolved().is_none());
    let id = client.lookup_addresses(poll.registry(), Instant::now(), &name);
    let resolved = client.poll_resolved().unwrap();
    assert_eq!(resolved.id, id);
    match resolved.outcome {
        LookupOutcome::Addresses(Err(err)) => {
            assert!(matches!(err.kind(), DnsFailureKind::NoServer), "{err:?}");
            assert_eq!(err.severity(), Severity::Temporary);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.in_flight(), 0);
}

#[test]
fn nobody_listening_is_a_temporary_failure() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let resolver = short(Resolver::new(vec![SocketAddr::from((
        [127, 0, 0, 1],
        port,
    ))]))
    .attempts(1);
    let mut h = Harness::new(&resolver);
    let id = h.mx("example.org");
    let err = h.take_mx(id).unwrap_err();
    assert_eq!(err.severity(), Severity::Temporary);
}

#[test]
fn many_concurrent_lookups_all_resolve() {
    const N: usize = 50;
    let names: Vec<String> = (0..N).map(|i| format!("d{i}.example")).collect();
    let exchanges: Vec<String> = (0..N).map(|i| format!("mx{i}.example")).collect();
    let mut entries = Vec::new();
    for (i, (name, exchange)) in names.iter().zip(&exchanges).enumerate() {
        let answer = Answer::records(vec![mx(name, 10, exchange)]);
        // Every tenth answer needs TCP: fewer than the client's TCP streams,
        // so none can find them all busy.
        let answer = if i % 10 == 0 {
            Answer::Truncated(Box::new(answer))
        } else {
            answer
        };
        entries.push((name.as_str(), RecordType::MX, answer));
        entries.push((
            exchange.as_str(),
            RecordType::A,
            Answer::records(vec![addr(exchange, &format!("192.0.2.{i}"))]),
        ));
    }
    let dns = FakeDns::start(entries);
    let mut h = Harness::new(&resolver(&dns).timeout(Duration::from_secs(2)).attempts(2));
    let mx_ids: Vec<LookupId> = names.iter().map(|n| h.mx(n)).collect();
    let addr_ids: Vec<LookupId> = exchanges.iter().map(|n| h.addresses(n)).collect();
    assert_eq!(h.client.in_flight(), 2 * N);
    let all: Vec<LookupId> = mx_ids.iter().chain(&addr_ids).copied().collect();
    h.run_until(&all);
    for (i, id) in mx_ids.iter().enumerate() {
        match h.results.remove(id).unwrap() {
            LookupOutcome::Mx(Ok(answer)) => {
                assert_eq!(host_names(&answer), [(exchanges[i].clone(), 10)]);
            }
            other => panic!("{i}: {other:?}"),
        }
    }
    for (i, id) in addr_ids.iter().enumerate() {
        match h.results.remove(id).unwrap() {
            LookupOutcome::Addresses(Ok(ips)) => {
                assert_eq!(ips, [ip(&format!("192.0.2.{i}"))]);
            }
            other => panic!("{i}: {other:?}"),
        }
    }
    h.assert_idle();
}
