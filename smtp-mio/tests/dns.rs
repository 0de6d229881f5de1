//! The DNS pump (the core's resolver on a `mio::Poll`) against the fake DNS
//! server of `smtp-tests` on loopback: UDP answers, truncation and TCP, the next server after
//! SERVFAIL, spoofed and unrelated datagrams, silence, floods, the cache.
//! The retry policy itself is the core's and tested there; these tests show
//! that the pump moves the bytes it asks for.
//!
//! Time is only ever an upper bound here: every loop gives up after
//! [`BOUND`] so that a bug fails the test instead of hanging it.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode};
use mio::{Events, Poll, Token};
use smtp_mio::dns::{DnsPump, READ_BUDGET};
use smtp_proto::dns::{
    self, Answer as DnsAnswer, CacheConfig, LookupId, Question, Rcode, Resolver, ResolverConfig,
};
use smtp_proto::mx::{HostName, MxAnswer};
use smtp_tests::fake_dns::{Answer, FakeDns, RecordType, addr, mx};

/// No test loop runs longer than this.
const BOUND: Duration = Duration::from_secs(10);

const FIRST: Token = Token(100);

type Result = std::result::Result<DnsAnswer, dns::Failure>;

struct Harness {
    poll: Poll,
    events: Events,
    pump: DnsPump,
    results: HashMap<LookupId, Result>,
}

impl Harness {
    fn new(config: ResolverConfig) -> Self {
        let poll = Poll::new().unwrap();
        let pump = DnsPump::new(Resolver::new(config), FIRST).unwrap();
        Self {
            poll,
            events: Events::with_capacity(64),
            pump,
            results: HashMap::new(),
        }
    }

    fn ask(&mut self, question: Question) -> LookupId {
        let id = self
            .pump
            .lookup(self.poll.registry(), Instant::now(), question)
            .unwrap();
        self.drain();
        id
    }

    fn mx(&mut self, domain: &str) -> LookupId {
        self.ask(Question::mx(&HostName::parse(domain).unwrap()))
    }

    /// Collects finished lookups; each must finish once.
    fn drain(&mut self) {
        while let Some(resolved) = self.pump.poll_resolved() {
            let previous = self.results.insert(resolved.id, resolved.result);
            assert!(previous.is_none(), "{:?} resolved twice", resolved.id);
        }
    }

    /// One turn of a loop: sleeps until an event or the pump's deadline,
    /// handles both. `true` if an event came.
    fn turn(&mut self, give_up: Instant) -> bool {
        let now = Instant::now();
        assert!(now < give_up, "lookups not resolved within {BOUND:?}");
        let mut timeout = give_up - now;
        if let Some(deadline) = self.pump.next_deadline() {
            timeout = timeout.min(deadline.saturating_duration_since(now));
        }
        self.poll.poll(&mut self.events, Some(timeout)).unwrap();
        let mut seen = false;
        for event in &self.events {
            assert!(self.pump.owns(event.token()), "{event:?}");
            self.pump
                .handle_event(self.poll.registry(), Instant::now(), event.token());
            seen = true;
        }
        if self
            .pump
            .next_deadline()
            .is_some_and(|d| d <= Instant::now())
        {
            self.pump
                .handle_timeout(self.poll.registry(), Instant::now());
        }
        self.drain();
        seen
    }

    /// Drives the loop until every lookup in `ids` has resolved.
    fn run_until(&mut self, ids: &[LookupId]) {
        let give_up = Instant::now() + BOUND;
        while !ids.iter().all(|id| self.results.contains_key(id)) {
            self.turn(give_up);
        }
    }

    fn take(&mut self, id: LookupId) -> Result {
        self.run_until(&[id]);
        self.results.remove(&id).unwrap()
    }

    /// The MX hosts of an answer, as the core judges it.
    fn take_hosts(&mut self, id: LookupId) -> Vec<(String, u16)> {
        let answer = self.take(id).unwrap();
        MxAnswer::from_answer(&answer, 0)
            .unwrap()
            .into_hosts()
            .unwrap()
            .iter()
            .map(|h| (h.name().as_str().to_owned(), h.preference()))
            .collect()
    }

    /// Nothing left: no lookup, no deadline, no result.
    fn assert_idle(&mut self) {
        assert_eq!(self.pump.in_flight(), 0);
        assert_eq!(self.pump.next_deadline(), None);
        assert!(self.pump.poll_resolved().is_none());
    }
}

/// One server, short timeouts, one round.
fn config(servers: &[&FakeDns]) -> ResolverConfig {
    let mut config = ResolverConfig::new(servers.iter().map(|s| s.addr()).collect());
    config.timeout = Duration::from_millis(300);
    config.attempts = 1;
    config
}

fn one_mx(domain: &str, exchange: &str) -> Answer {
    Answer::records(vec![mx(domain, 10, exchange)])
}

#[test]
fn tokens_and_owns() {
    let dns = FakeDns::start(vec![]);
    let h = Harness::new(config(&[&dns]));
    let tokens = DnsPump::tokens(h.pump.resolver());
    assert_eq!(tokens, 2 + h.pump.resolver().config().max_streams);
    assert!(!h.pump.owns(Token(0)));
    assert!(!h.pump.owns(Token(FIRST.0 - 1)));
    assert!(h.pump.owns(FIRST));
    assert!(h.pump.owns(Token(FIRST.0 + tokens - 1)));
    assert!(!h.pump.owns(Token(FIRST.0 + tokens)));
    let resolver = Resolver::new(config(&[&dns]));
    assert!(DnsPump::new(resolver, Token(usize::MAX - 1)).is_err());
}

#[test]
fn an_answer_over_udp() {
    let dns = FakeDns::start(vec![(
        "example.org",
        RecordType::MX,
        Answer::records(vec![
            mx("example.org", 20, "mx2.example.org"),
            mx("example.org", 10, "mx1.example.org"),
        ]),
    )]);
    let mut h = Harness::new(config(&[&dns]));
    let id = h.mx("example.org");
    assert_eq!(h.pump.in_flight(), 1);
    assert!(h.pump.next_deadline().is_some());
    assert_eq!(
        h.take_hosts(id),
        [
            ("mx1.example.org".to_owned(), 10),
            ("mx2.example.org".to_owned(), 20)
        ]
    );
    assert_eq!((dns.udp_queries(), dns.tcp_queries()), (1, 0));
    h.assert_idle();
}

#[test]
fn a_truncated_answer_is_asked_again_over_tcp() {
    let dns = FakeDns::start(vec![
        (
            "big.example",
            RecordType::MX,
            Answer::Truncated(Box::new(one_mx("big.example", "mx.big.example"))),
        ),
        (
            "big.example",
            RecordType::AAAA,
            Answer::Truncated(Box::new(Answer::records(vec![
                addr("big.example", "2001:db8::1"),
                addr("big.example", "2001:db8::2"),
            ]))),
        ),
    ]);
    let mut h = Harness::new(config(&[&dns]));
    let id = h.mx("big.example");
    assert_eq!(h.take_hosts(id), [("mx.big.example".to_owned(), 10)]);
    let id = h.ask(Question::aaaa(&HostName::parse("big.example").unwrap()));
    let answer = h.take(id).unwrap();
    let ips: Vec<String> = answer
        .records()
        .unwrap()
        .addresses()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ips, ["2001:db8::1", "2001:db8::2"]);
    assert_eq!((dns.udp_queries(), dns.tcp_queries()), (2, 2));
    h.assert_idle();
}

#[test]
fn servfail_then_the_next_server_answers() {
    let failing = FakeDns::start(vec![("example.org", RecordType::MX, Answer::ServFail)]);
    let good = FakeDns::start(vec![(
        "example.org",
        RecordType::MX,
        one_mx("example.org", "mx.example.org"),
    )]);
    let mut h = Harness::new(config(&[&failing, &good]));
    let id = h.mx("example.org");
    assert_eq!(h.take_hosts(id), [("mx.example.org".to_owned(), 10)]);
    assert_eq!((failing.udp_queries(), good.udp_queries()), (1, 1));

    // SERVFAIL everywhere: the failure answer is the result.
    let mut h = Harness::new(config(&[&failing, &failing]));
    let id = h.mx("example.org");
    assert_eq!(
        h.take(id).unwrap_err(),
        dns::Failure::ServerFailure(Rcode::SERVFAIL)
    );
    h.assert_idle();
}

#[test]
fn silence_is_bounded_by_the_timeouts() {
    let silent = FakeDns::start(vec![("slow.example", RecordType::MX, Answer::Silent)]);
    let mut config = config(&[&silent]);
    config.timeout = Duration::from_millis(200);
    config.attempts = 2;
    let mut h = Harness::new(config);
    let start = Instant::now();
    let id = h.mx("slow.example");
    assert_eq!(h.take(id).unwrap_err(), dns::Failure::Timeout);
    // Two tries of 200 ms: not before, and not much after.
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert!(start.elapsed() < BOUND);
    assert_eq!(silent.udp_queries(), 2, "one query per attempt");
    h.assert_idle();
}

#[test]
fn nobody_listening_is_a_failure() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = ResolverConfig::new(vec![SocketAddr::from(([127, 0, 0, 1], port))]);
    config.timeout = Duration::from_millis(200);
    config.attempts = 1;
    let mut h = Harness::new(config);
    let id = h.mx("example.org");
    assert!(h.take(id).is_err());
}

#[test]
fn unrelated_datagrams_are_ignored() {
    // A datagram with the wrong id and one answering another question come
    // first, from the server's own address.
    let dns = FakeDns::start(vec![(
        "example.org",
        RecordType::MX,
        Answer::SpoofedFirst(Box::new(one_mx("example.org", "real.example.org"))),
    )]);
    let mut h = Harness::new(config(&[&dns]));
    let id = h.mx("example.org");
    assert_eq!(h.take_hosts(id), [("real.example.org".to_owned(), 10)]);
}

/// Answers the query `server` received (the right id and question) with
/// `exchange`.
fn forge(query: &Message, exchange: &str) -> Vec<u8> {
    let mut m = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    m.add_query(query.queries[0].clone());
    m.add_answer(mx("example.org", 10, exchange));
    m.to_vec().unwrap()
}

/// A forged answer with the right id and question, but from another port
/// than the server's, is dropped; the real answer then counts.
#[test]
fn answers_from_another_source_are_ignored() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut config = ResolverConfig::new(vec![server.local_addr().unwrap()]);
    config.timeout = Duration::from_secs(5);
    let mut h = Harness::new(config);
    let id = h.mx("example.org");
    let mut buf = [0u8; 1500];
    let (n, client) = server.recv_from(&mut buf).unwrap();
    let query = Message::from_vec(&buf[..n]).unwrap();
    attacker
        .send_to(&forge(&query, "evil.example.org"), client)
        .unwrap();
    // Until the forged datagram was read (and dropped): the real one cannot
    // overtake it.
    let give_up = Instant::now() + BOUND;
    while !h.turn(give_up) {}
    assert!(h.results.is_empty(), "{:?}", h.results);
    assert_eq!(h.pump.in_flight(), 1);
    server
        .send_to(&forge(&query, "real.example.org"), client)
        .unwrap();
    assert_eq!(h.take_hosts(id), [("real.example.org".to_owned(), 10)]);
}

/// More datagrams than one event may read: the pump stops after its budget,
/// asks to be called again at once, and the real answer behind the flood
/// still counts.
#[test]
fn a_flood_is_read_in_bounded_turns() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut config = ResolverConfig::new(vec![server.local_addr().unwrap()]);
    config.timeout = Duration::from_secs(5);
    let mut h = Harness::new(config);
    let id = h.mx("example.org");
    let mut buf = [0u8; 1500];
    let (n, client) = server.recv_from(&mut buf).unwrap();
    let query = Message::from_vec(&buf[..n]).unwrap();
    let junk = forge(&query, "evil.example.org");
    let flood = READ_BUDGET * 2 + 10;
    for _ in 0..flood {
        attacker.send_to(&junk, client).unwrap();
    }
    server
        .send_to(&forge(&query, "real.example.org"), client)
        .unwrap();
    // The first readable event reads one budget's worth and asks for a turn
    // at once.
    let give_up = Instant::now() + BOUND;
    while !h.turn_events_only(give_up) {}
    assert!(h.results.is_empty());
    let asked = h.pump.next_deadline().unwrap();
    assert!(asked <= Instant::now(), "the rest is read at once");
    assert_eq!(h.take_hosts(id), [("real.example.org".to_owned(), 10)]);
}

impl Harness {
    /// Waits for events and handles them, without the pump's timeouts.
    fn turn_events_only(&mut self, give_up: Instant) -> bool {
        let now = Instant::now();
        assert!(now < give_up, "no event within {BOUND:?}");
        self.poll
            .poll(&mut self.events, Some(give_up - now))
            .unwrap();
        let mut seen = false;
        for event in &self.events {
            self.pump
                .handle_event(self.poll.registry(), Instant::now(), event.token());
            seen = true;
        }
        self.drain();
        seen
    }
}

#[test]
fn a_cancelled_lookup_never_resolves() {
    let dns = FakeDns::start(vec![
        ("slow.example", RecordType::MX, Answer::Silent),
        (
            "example.org",
            RecordType::MX,
            one_mx("example.org", "mx.example.org"),
        ),
    ]);
    let mut h = Harness::new(config(&[&dns]));
    let slow = h.mx("slow.example");
    h.pump.cancel(h.poll.registry(), Instant::now(), slow);
    h.assert_idle();
    let cancelled = h.mx("example.org");
    let kept = h.ask(Question::a(&HostName::parse("example.org").unwrap()));
    h.pump.cancel(h.poll.registry(), Instant::now(), cancelled);
    h.run_until(&[kept]);
    assert!(!h.results.contains_key(&slow));
    assert!(!h.results.contains_key(&cancelled));
    h.assert_idle();
}

#[test]
fn the_cache_answers_a_second_lookup_without_a_query() {
    let dns = FakeDns::start(vec![(
        "example.org",
        RecordType::MX,
        one_mx("example.org", "mx.example.org"),
    )]);
    let mut h = Harness::new(config(&[&dns]).with_cache(CacheConfig::default()));
    let first = h.mx("example.org");
    assert_eq!(h.take_hosts(first), [("mx.example.org".to_owned(), 10)]);
    let second = h.mx("example.org");
    // Answered at once, from the cache.
    assert!(h.results.contains_key(&second));
    assert_eq!(h.take_hosts(second), [("mx.example.org".to_owned(), 10)]);
    assert_eq!(dns.udp_queries(), 1);
    h.assert_idle();
}

#[test]
fn many_concurrent_lookups_all_resolve() {
    const N: usize = 50;
    let names: Vec<String> = (0..N).map(|i| format!("d{i}.example")).collect();
    let exchanges: Vec<String> = (0..N).map(|i| format!("mx{i}.example")).collect();
    let mut entries = Vec::new();
    for (i, (name, exchange)) in names.iter().zip(&exchanges).enumerate() {
        let answer = one_mx(name, exchange);
        // Every tenth answer needs TCP: fewer than the resolver's streams.
        let answer = if i % 10 == 0 {
            Answer::Truncated(Box::new(answer))
        } else {
            answer
        };
        entries.push((name.as_str(), RecordType::MX, answer));
    }
    let dns = FakeDns::start(entries);
    let mut config = config(&[&dns]);
    config.timeout = Duration::from_secs(2);
    config.attempts = 2;
    let mut h = Harness::new(config);
    let ids: Vec<LookupId> = names.iter().map(|n| h.mx(n)).collect();
    h.run_until(&ids);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(h.take_hosts(*id), [(exchanges[i].clone(), 10)], "{i}");
    }
    assert_eq!(dns.tcp_queries(), N / 10);
    h.assert_idle();
}
