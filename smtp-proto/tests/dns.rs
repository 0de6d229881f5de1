//! The sans-IO resolver against servers simulated with hickory-proto: known
//! answers for every record type, every retry path, RFC 5452 matching, the
//! cache, the bounds, and arbitrary bytes.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, PTR, SOA, TLSA, TXT};
use hickory_proto::rr::{Name as WireName, RData, Record, RecordType as WireType};
use proptest::prelude::*;
use smtp_proto::dns::{
    Answer, AnswerError, CacheConfig, DATAGRAM_BUFFER, Disposition, Exchange, Failure, LookupError,
    LookupId, Name, Output, Question, Rcode, RecordType, Resolved, Resolver, ResolverConfig,
    StreamId,
};
use smtp_proto::mx::{AddressAnswer, HostName, MxAnswer, MxHost};

#[path = "support/dns_responder.rs"]
mod dns_responder;
use dns_responder::respond;

// ---------------------------------------------------------------- harness

const TIMEOUT: Duration = Duration::from_secs(5);

fn server(n: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, n], 53))
}

fn name(text: &str) -> Name {
    Name::parse(text).unwrap()
}

fn host(text: &str) -> HostName {
    HostName::parse(text).unwrap()
}

fn wire_name(text: &str) -> WireName {
    WireName::from_ascii(text).unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// What a poll handed out, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Send(SocketAddr, Vec<u8>),
    Open(StreamId, SocketAddr, Vec<u8>),
    Close(StreamId),
    Resolved(Resolved),
}

/// A resolver and a clock.
struct Net {
    resolver: Resolver,
    now: Instant,
}

impl Net {
    fn new(config: ResolverConfig) -> Self {
        Self {
            resolver: Resolver::new(config),
            now: Instant::now(),
        }
    }

    fn servers(n: u8) -> Self {
        Self::new(ResolverConfig::new((1..=n).map(server).collect()))
    }

    fn lookup(&mut self, question: Question) -> LookupId {
        self.resolver.lookup(self.now, question, 7).unwrap()
    }

    /// Polls until Wait; returns the outputs and the deadline.
    fn drain(&mut self) -> (Vec<Out>, Option<Instant>) {
        let mut outs = Vec::new();
        loop {
            match self.resolver.poll(self.now) {
                Output::Send { server, bytes } => outs.push(Out::Send(server, bytes.to_vec())),
                Output::OpenStream {
                    stream,
                    server,
                    bytes,
                } => outs.push(Out::Open(stream, server, bytes.to_vec())),
                Output::CloseStream(stream) => outs.push(Out::Close(stream)),
                Output::Resolved(resolved) => outs.push(Out::Resolved(resolved)),
                Output::Wait { deadline } => return (outs, deadline),
                other => panic!("unknown output {other:?}"),
            }
        }
    }

    /// Drains and expects exactly one datagram; returns its server and bytes.
    fn expect_send(&mut self) -> (SocketAddr, Vec<u8>) {
        let (outs, deadline) = self.drain();
        assert_eq!(deadline, Some(self.now + TIMEOUT), "{outs:?}");
        match outs.as_slice() {
            [Out::Send(server, bytes)] => (*server, bytes.clone()),
            other => panic!("expected one datagram, got {other:?}"),
        }
    }

    /// Drains and expects exactly one result.
    fn expect_resolved(&mut self) -> Resolved {
        let (outs, _) = self.drain();
        let mut resolved = outs.into_iter().filter_map(|o| match o {
            Out::Resolved(r) => Some(r),
            _ => None,
        });
        let first = resolved.next().expect("a result");
        assert!(resolved.next().is_none());
        first
    }

    /// Drains and expects nothing but a wait.
    fn expect_quiet(&mut self) -> Option<Instant> {
        let (outs, deadline) = self.drain();
        assert!(outs.is_empty(), "{outs:?}");
        deadline
    }

    fn datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
        self.resolver.handle_datagram(self.now, from, bytes);
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.resolver.handle_timeout(self.now);
    }
}

fn result(resolved: Resolved) -> Result<Answer, Failure> {
    resolved.result
}

fn rr(owner: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(wire_name(owner), ttl, data)
}

fn soa(zone: &str, ttl: u32, minimum: u32) -> Record {
    rr(
        zone,
        ttl,
        RData::SOA(SOA::new(
            wire_name("ns.example.org."),
            wire_name("hostmaster.example.org."),
            1,
            3600,
            600,
            86400,
            minimum,
        )),
    )
}

fn wire(message: &Message) -> Vec<u8> {
    message.to_vec().unwrap()
}

/// An answer to `query` with `answers` in the answer section.
fn answer(query: &[u8], answers: Vec<Record>) -> Vec<u8> {
    let mut r = respond(query);
    r.add_answers(answers);
    wire(&r)
}

fn with_rcode(query: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let mut r = respond(query);
    r.metadata.response_code = rcode;
    wire(&r)
}

fn truncated(query: &[u8]) -> Vec<u8> {
    let mut r = respond(query);
    r.metadata.truncation = true;
    wire(&r)
}

fn id_of(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = (message.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(message);
    out
}

/// A lookup of `question` answered on the first try with `records`.
fn resolve_with(question: Question, records: Vec<Record>) -> Result<Answer, Failure> {
    let mut net = Net::servers(1);
    net.lookup(question);
    let (to, query) = net.expect_send();
    net.datagram(to, &answer(&query, records));
    result(net.expect_resolved())
}

// ---------------------------------------------------------------- questions

#[test]
fn query_bytes() {
    let mut net = Net::servers(1);
    net.lookup(Question::txt(name("s1._domainkey.Example.org")));
    let (to, bytes) = net.expect_send();
    assert_eq!(to, server(1));
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.metadata.message_type, MessageType::Query);
    assert_eq!(m.metadata.op_code, OpCode::Query);
    assert!(m.metadata.recursion_desired);
    assert_eq!(m.queries.len(), 1);
    assert_eq!(
        m.queries[0].name(),
        &wire_name("s1._domainkey.example.org.")
    );
    assert_eq!(m.queries[0].query_type(), WireType::TXT);
    assert_eq!(m.edns.as_ref().unwrap().max_payload(), 1232);

    for (question, wire_type) in [
        (Question::mx(&host("example.org")), WireType::MX),
        (Question::a(&host("example.org")), WireType::A),
        (Question::aaaa(&host("example.org")), WireType::AAAA),
        (
            Question::tlsa(name("_25._tcp.mx.example.org")),
            WireType::TLSA,
        ),
        (Question::ptr(ip("192.0.2.1")), WireType::PTR),
    ] {
        let m = Message::from_vec(&question.to_query(9, false)).unwrap();
        assert_eq!(m.metadata.id, 9);
        assert!(m.edns.is_none());
        assert_eq!(m.queries[0].query_type(), wire_type);
    }
    assert_eq!(
        Question::ptr(ip("192.0.2.1")).name().as_str(),
        "1.2.0.192.in-addr.arpa"
    );
    assert_eq!(
        Question::mx(&host("example.org")).to_string(),
        "example.org MX"
    );
    assert_eq!(RecordType::ALL.len(), 6);
}

#[test]
fn ids_come_from_the_seed() {
    let ids = |seed: u64| {
        let mut net = Net::servers(3);
        net.resolver
            .lookup(net.now, Question::a(&host("example.org")), seed)
            .unwrap();
        let mut ids = Vec::new();
        for _ in 0..6 {
            let (_, bytes) = net.expect_send();
            ids.push(id_of(&bytes));
            net.advance(TIMEOUT);
        }
        let failure = result(net.expect_resolved());
        assert_eq!(failure, Err(Failure::Timeout));
        ids
    };
    let a = ids(1);
    assert_eq!(a, ids(1), "the same seed gives the same ids");
    assert_ne!(a, ids(2));
    let distinct: std::collections::BTreeSet<u16> = a.iter().copied().collect();
    assert!(distinct.len() > 1, "every try has a fresh id: {a:?}");
}

// ---------------------------------------------------------------- known answers

#[test]
fn mx_records_go_to_the_mx_judgement() {
    let answer = resolve_with(
        Question::mx(&host("example.org")),
        vec![
            rr(
                "example.org.",
                300,
                RData::MX(MX::new(20, wire_name("mx2.example.org."))),
            ),
            rr(
                "example.org.",
                300,
                RData::MX(MX::new(10, wire_name("mx1.example.org."))),
            ),
            rr(
                "mx1.example.org.",
                300,
                RData::A(A("192.0.2.10".parse().unwrap())),
            ),
        ],
    )
    .unwrap();
    let records = answer.records().unwrap();
    let mx = records.mx().unwrap();
    assert_eq!(mx.len(), 2);
    assert_eq!(mx[0].preference(), 20);
    assert_eq!(mx[1].exchange(), &Exchange::Name(name("mx1.example.org")));
    assert_eq!(mx[1].addresses(), [ip("192.0.2.10")]);
    assert_eq!(answer.disposition(), Disposition::Proceed);
    let judged = MxAnswer::from_answer(&answer, 0).unwrap();
    assert_eq!(
        judged,
        MxAnswer::Hosts(vec![
            MxHost::new(host("mx1.example.org"), 10).with_hints([ip("192.0.2.10")]),
            MxHost::new(host("mx2.example.org"), 20),
        ])
    );
}

#[test]
fn null_mx_and_implicit_mx() {
    let null = resolve_with(
        Question::mx(&host("example.org")),
        vec![rr(
            "example.org.",
            300,
            RData::MX(MX::new(0, WireName::root())),
        )],
    )
    .unwrap();
    assert_eq!(
        null.records().unwrap().mx().unwrap()[0].exchange(),
        &Exchange::Root
    );
    assert_eq!(MxAnswer::from_answer(&null, 0), Ok(MxAnswer::NullMx));

    // No MX at the end of a CNAME chain: NODATA about the canonical name,
    // which is the implicit MX (RFC 5321 §5.1).
    let nodata = resolve_with(
        Question::mx(&host("www.example.org")),
        vec![rr(
            "www.example.org.",
            300,
            RData::CNAME(CNAME(wire_name("web.example.net."))),
        )],
    )
    .unwrap();
    assert!(matches!(&nodata, Answer::NoData(n) if n.name() == &name("web.example.net")));
    assert_eq!(
        MxAnswer::from_answer(&nodata, 0),
        Ok(MxAnswer::Implicit(MxHost::new(host("web.example.net"), 0)))
    );

    // An exchange that is a DNS name but no host name is refused by the MX
    // judgement, not by the resolver.
    let underscore = resolve_with(
        Question::mx(&host("example.org")),
        vec![rr(
            "example.org.",
            300,
            RData::MX(MX::new(5, wire_name("bad_name.example.org."))),
        )],
    )
    .unwrap();
    assert!(matches!(
        MxAnswer::from_answer(&underscore, 0),
        Err(AnswerError::InvalidHostName { .. })
    ));
    // One exchange with a byte no name may hold: kept as invalid, so the
    // judgement does not mistake it for "no MX" (an implicit MX).
    let tabbed = WireName::from_labels([b"m\tx".as_slice(), b"example", b"org"]).unwrap();
    let invalid = resolve_with(
        Question::mx(&host("example.org")),
        vec![rr("example.org.", 300, RData::MX(MX::new(5, tabbed)))],
    )
    .unwrap();
    assert!(matches!(
        invalid.records().unwrap().mx().unwrap()[0].exchange(),
        Exchange::Invalid { .. }
    ));
    assert!(matches!(
        MxAnswer::from_answer(&invalid, 0),
        Err(AnswerError::InvalidHostName { .. })
    ));
}

#[test]
fn addresses() {
    let answer = resolve_with(
        Question::a(&host("mx.example.org")),
        vec![
            rr(
                "mx.example.org.",
                300,
                RData::A(A("192.0.2.1".parse().unwrap())),
            ),
            rr(
                "mx.example.org.",
                300,
                RData::A(A("192.0.2.1".parse().unwrap())),
            ),
            rr(
                "mx.example.org.",
                60,
                RData::A(A("192.0.2.2".parse().unwrap())),
            ),
            // Another owner and another type are not the answer.
            rr(
                "other.example.org.",
                300,
                RData::A(A("192.0.2.9".parse().unwrap())),
            ),
            rr(
                "mx.example.org.",
                300,
                RData::AAAA(AAAA("2001:db8::1".parse().unwrap())),
            ),
        ],
    )
    .unwrap();
    let records = answer.records().unwrap();
    assert_eq!(
        records.addresses().unwrap(),
        [ip("192.0.2.1"), ip("192.0.2.2")]
    );
    assert_eq!(records.ttl(), 60, "the smallest TTL of the set");
    assert_eq!(records.name(), &name("mx.example.org"));
    assert_eq!(
        AddressAnswer::from_answer(&answer),
        AddressAnswer::Addresses(vec![ip("192.0.2.1"), ip("192.0.2.2")])
    );

    let v6 = resolve_with(
        Question::aaaa(&host("mx.example.org")),
        vec![
            rr(
                "mx.example.org.",
                300,
                RData::CNAME(CNAME(wire_name("real.example.org."))),
            ),
            rr(
                "real.example.org.",
                600,
                RData::AAAA(AAAA("2001:db8::1".parse().unwrap())),
            ),
        ],
    )
    .unwrap();
    let records = v6.records().unwrap();
    assert_eq!(records.addresses().unwrap(), [ip("2001:db8::1")]);
    assert_eq!(records.name(), &name("real.example.org"));
    assert_eq!(records.ttl(), 300, "the CNAME's TTL bounds the answer's");
}

#[test]
fn txt_records_keep_their_strings_and_join_them() {
    let answer = resolve_with(
        Question::txt(name("s1._domainkey.example.org")),
        vec![
            rr(
                "s1._domainkey.example.org.",
                300,
                RData::TXT(TXT::new(vec!["v=DKIM1; k=rsa; ".into(), "p=MIGf".into()])),
            ),
            rr(
                "s1._domainkey.example.org.",
                300,
                RData::TXT(TXT::from_bytes(vec![b"\xff\x00binary"])),
            ),
        ],
    )
    .unwrap();
    let txt = answer.records().unwrap().txt().unwrap();
    assert_eq!(txt.len(), 2);
    assert_eq!(
        txt[0].strings().collect::<Vec<_>>(),
        [b"v=DKIM1; k=rsa; ".as_slice(), b"p=MIGf"]
    );
    assert_eq!(txt[0].joined(), b"v=DKIM1; k=rsa; p=MIGf");
    assert_eq!(txt[1].joined(), b"\xff\x00binary");
}

#[test]
fn tlsa_records() {
    let answer = resolve_with(
        Question::tlsa(name("_25._tcp.mx.example.org")),
        vec![rr(
            "_25._tcp.mx.example.org.",
            300,
            RData::TLSA(TLSA::new(
                CertUsage::DaneEe,
                Selector::Spki,
                Matching::Sha256,
                vec![0xab; 32],
            )),
        )],
    )
    .unwrap();
    let tlsa = &answer.records().unwrap().tlsa().unwrap()[0];
    assert_eq!(
        (tlsa.usage(), tlsa.selector(), tlsa.matching_type()),
        (3, 1, 1)
    );
    assert_eq!(tlsa.data(), [0xab; 32]);
}

#[test]
fn ptr_records() {
    let answer = resolve_with(
        Question::ptr(ip("192.0.2.1")),
        vec![
            rr(
                "1.2.0.192.in-addr.arpa.",
                300,
                RData::PTR(PTR(wire_name("mail.example.org."))),
            ),
            rr(
                "1.2.0.192.in-addr.arpa.",
                300,
                RData::PTR(PTR(WireName::from_labels([
                    b"bad\tname".as_slice(),
                    b"example",
                ])
                .unwrap())),
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        answer.records().unwrap().ptr().unwrap(),
        [name("mail.example.org")]
    );
}

#[test]
fn nxdomain_and_nodata_are_apart() {
    let question = Question::txt(name("_dmarc.example.org"));
    let mut net = Net::servers(1);
    net.lookup(question.clone());
    let (to, query) = net.expect_send();
    let mut nodata = respond(&query);
    nodata.add_authority(soa("example.org.", 900, 300));
    net.datagram(to, &wire(&nodata));
    let nodata = result(net.expect_resolved()).unwrap();
    assert!(matches!(&nodata, Answer::NoData(n) if n.name() == &name("_dmarc.example.org")));
    assert_eq!(nodata.ttl(), Some(300), "min(SOA TTL, SOA MINIMUM)");
    assert_eq!(nodata.disposition(), Disposition::Proceed);

    net.lookup(question);
    let (to, query) = net.expect_send();
    let mut nx = respond(&query);
    nx.metadata.response_code = ResponseCode::NXDomain;
    nx.add_authority(soa("example.org.", 120, 300));
    net.datagram(to, &wire(&nx));
    let nx = result(net.expect_resolved()).unwrap();
    assert!(matches!(&nx, Answer::NxDomain(n) if n.name() == &name("_dmarc.example.org")));
    assert_eq!(nx.ttl(), Some(120));
    assert_eq!(nx.disposition(), Disposition::PermanentFailure);
    assert_eq!(MxAnswer::from_answer(&nx, 0), Ok(MxAnswer::NxDomain));
    assert_eq!(AddressAnswer::from_answer(&nx), AddressAnswer::NxDomain);
}

// ---------------------------------------------------------------- retries

#[test]
fn timeout_moves_to_the_next_server_and_a_late_answer_is_ignored() {
    let mut net = Net::servers(2);
    net.lookup(Question::a(&host("mx.example.org")));
    let (first, query1) = net.expect_send();
    assert_eq!(first, server(1));
    // A spurious timeout is harmless.
    net.advance(TIMEOUT - Duration::from_millis(1));
    assert_eq!(net.expect_quiet(), Some(net.now + Duration::from_millis(1)));
    net.advance(Duration::from_millis(1));
    let (second, query2) = net.expect_send();
    assert_eq!(second, server(2));
    assert_ne!(id_of(&query1), id_of(&query2), "a fresh id per try");
    // The first server answers late: its id is no longer in flight.
    let a = |q: &[u8]| {
        answer(
            q,
            vec![rr(
                "mx.example.org.",
                60,
                RData::A(A("192.0.2.7".parse().unwrap())),
            )],
        )
    };
    net.datagram(first, &a(&query1));
    assert_eq!(net.expect_quiet(), Some(net.now + TIMEOUT));
    net.datagram(second, &a(&query2));
    let answer = result(net.expect_resolved()).unwrap();
    assert_eq!(
        answer.records().unwrap().addresses().unwrap(),
        [ip("192.0.2.7")]
    );
    assert_eq!(net.expect_quiet(), None);
}

#[test]
fn servfail_then_success() {
    let mut net = Net::servers(2);
    net.lookup(Question::mx(&host("example.org")));
    let (s1, q1) = net.expect_send();
    net.datagram(s1, &with_rcode(&q1, ResponseCode::ServFail));
    let (s2, q2) = net.expect_send();
    assert_eq!(s2, server(2));
    net.datagram(
        s2,
        &answer(
            &q2,
            vec![rr(
                "example.org.",
                300,
                RData::MX(MX::new(10, wire_name("mx.example.org."))),
            )],
        ),
    );
    assert!(result(net.expect_resolved()).is_ok());
}

#[test]
fn every_server_failing_keeps_the_failure_answer() {
    let mut net = Net::servers(3);
    net.lookup(Question::mx(&host("example.org")));
    let mut tries = Vec::new();
    for round in 0..2 {
        // Server 1 refuses, server 2 is silent, server 3 fails.
        let (s, q) = net.expect_send();
        tries.push(s);
        net.datagram(s, &with_rcode(&q, ResponseCode::Refused));
        let (s, _) = net.expect_send();
        tries.push(s);
        net.advance(TIMEOUT);
        let (s, q) = net.expect_send();
        tries.push(s);
        // The failure code may come without the question section.
        let mut r = respond(&q);
        r.metadata.response_code = ResponseCode::ServFail;
        r.queries.clear();
        net.datagram(s, &wire(&r));
        if round == 1 {
            let failure = result(net.expect_resolved()).unwrap_err();
            assert_eq!(failure, Failure::ServerFailure(Rcode::SERVFAIL));
            assert_eq!(failure.rcode(), Some(Rcode::SERVFAIL));
            assert_eq!(failure.disposition(), Disposition::TemporaryFailure);
        }
    }
    assert_eq!(
        tries,
        [
            server(1),
            server(2),
            server(3),
            server(1),
            server(2),
            server(3)
        ],
        "servers in order, for `attempts` rounds"
    );
    assert_eq!(net.expect_quiet(), None);
}

#[test]
fn silence_everywhere_is_a_timeout() {
    let mut config = ResolverConfig::new(vec![server(1), server(2)]);
    config.attempts = 3;
    let mut net = Net::new(config);
    net.lookup(Question::a(&host("example.org")));
    for _ in 0..6 {
        net.expect_send();
        net.advance(TIMEOUT);
    }
    assert_eq!(result(net.expect_resolved()), Err(Failure::Timeout));
}

#[test]
fn unusable_answers_move_on_and_are_reported() {
    let mut config = ResolverConfig::new(vec![server(1), server(2)]);
    config.attempts = 1;
    let mut net = Net::new(config);
    net.lookup(Question::a(&host("example.org")));
    let (s, q) = net.expect_send();
    // Right id, right question, then garbage: unusable, not unrelated.
    let mut bytes = answer(&q, vec![]);
    bytes.extend_from_slice(&[0xff; 7]);
    bytes[7] = 1; // ANCOUNT = 1, but the record is junk
    net.datagram(s, &bytes);
    let (s, _) = net.expect_send();
    assert_eq!(s, server(2));
    net.advance(TIMEOUT);
    // The timeout does not hide the earlier error.
    assert!(matches!(
        result(net.expect_resolved()),
        Err(Failure::Unusable(AnswerError::Malformed(_)))
    ));
}

#[test]
fn truncation_moves_the_try_to_tcp_with_a_fresh_timeout() {
    let mut net = Net::servers(2);
    net.lookup(Question::txt(name("example.org")));
    let (s, q) = net.expect_send();
    net.advance(Duration::from_secs(3));
    net.datagram(s, &truncated(&q));
    let (outs, deadline) = net.drain();
    let [Out::Open(stream, to, bytes)] = outs.as_slice() else {
        panic!("{outs:?}");
    };
    assert_eq!(*to, s, "the same server");
    assert_eq!(deadline, Some(net.now + TIMEOUT), "a fresh timeout for TCP");
    assert_eq!(bytes[..2], (q.len() as u16).to_be_bytes(), "length prefix");
    assert_eq!(&bytes[2..], q.as_slice(), "the same query, the same id");
    // UDP answers no longer count for this try.
    net.datagram(s, &answer(&q, vec![]));
    assert!(net.expect_quiet().is_some());
    let reply = answer(
        &q,
        vec![rr(
            "example.org.",
            300,
            RData::TXT(TXT::new(vec!["v=spf1 -all".into()])),
        )],
    );
    net.resolver
        .handle_stream_input(net.now, *stream, &framed(&reply));
    let (outs, _) = net.drain();
    assert_eq!(outs.len(), 2, "{outs:?}");
    assert_eq!(outs[0], Out::Close(*stream));
    let Out::Resolved(resolved) = &outs[1] else {
        panic!("{outs:?}");
    };
    let answer = resolved.result.as_ref().unwrap();
    assert_eq!(
        answer.records().unwrap().txt().unwrap()[0].joined(),
        b"v=spf1 -all"
    );
    // Late input and a late end for the closed stream are ignored.
    net.resolver
        .handle_stream_input(net.now, *stream, b"\x00\x01x");
    net.resolver.handle_stream_eof(net.now, *stream);
    assert_eq!(net.expect_quiet(), None);
}

#[test]
fn a_tcp_frame_split_byte_by_byte() {
    let mut net = Net::servers(1);
    net.lookup(Question::a(&host("mx.example.org")));
    let (s, q) = net.expect_send();
    net.datagram(s, &truncated(&q));
    let (outs, _) = net.drain();
    let [Out::Open(stream, ..)] = outs.as_slice() else {
        panic!("{outs:?}");
    };
    let reply = framed(&answer(
        &q,
        vec![rr(
            "mx.example.org.",
            300,
            RData::A(A("192.0.2.3".parse().unwrap())),
        )],
    ));
    let (last, head) = reply.split_last().unwrap();
    for byte in head {
        net.resolver
            .handle_stream_input(net.now, *stream, std::slice::from_ref(byte));
        assert!(net.expect_quiet().is_some());
    }
    // The last byte comes with bytes that are not part of the frame.
    net.resolver
        .handle_stream_input(net.now, *stream, &[*last, 0, 5, 1, 2, 3]);
    let resolved = net.expect_resolved();
    assert_eq!(
        resolved
            .result
            .unwrap()
            .records()
            .unwrap()
            .addresses()
            .unwrap(),
        [ip("192.0.2.3")]
    );
}

#[test]
fn tcp_failures_move_on() {
    let mut config = ResolverConfig::new(vec![server(1), server(2)]);
    config.attempts = 1;
    config.max_tcp_message = 100;
    let mut net = Net::new(config);
    net.lookup(Question::a(&host("example.org")));

    // Server 1: the stream ends before the answer.
    let (s, q) = net.expect_send();
    net.datagram(s, &truncated(&q));
    let (outs, _) = net.drain();
    let [Out::Open(stream, ..)] = outs.as_slice() else {
        panic!("{outs:?}");
    };
    net.resolver.handle_stream_input(net.now, *stream, &[0]);
    net.resolver.handle_stream_eof(net.now, *stream);
    let (outs, _) = net.drain();
    assert_eq!(outs[0], Out::Close(*stream), "closed exactly once");
    let Out::Send(s, q) = &outs[1] else {
        panic!("{outs:?}");
    };
    assert_eq!(*s, server(2));

    // Server 2: a frame above the configured limit.
    net.datagram(*s, &truncated(q));
    let (outs, _) = net.drain();
    let [Out::Open(stream, ..)] = outs.as_slice() else {
        panic!("{outs:?}");
    };
    net.resolver
        .handle_stream_input(net.now, *stream, &101u16.to_be_bytes());
    let (outs, _) = net.drain();
    assert_eq!(outs[0], Out::Close(*stream));
    let Out::Resolved(resolved) = &outs[1] else {
        panic!("{outs:?}");
    };
    assert!(matches!(
        resolved.result,
        Err(Failure::Unusable(AnswerError::Malformed(_)))
    ));
}

#[test]
fn tcp_answers_must_fit() {
    let mut config = ResolverConfig::new(vec![server(1)]);
    config.attempts = 3;
    let mut net = Net::new(config);
    net.lookup(Question::a(&host("example.org")));
    let open = |net: &mut Net, s: SocketAddr, q: &[u8]| {
        net.datagram(s, &truncated(q));
        let (outs, _) = net.drain();
        let [Out::Open(stream, ..)] = outs.as_slice() else {
            panic!("{outs:?}");
        };
        *stream
    };
    let close_and_retry = |net: &mut Net, stream: StreamId| {
        let (outs, _) = net.drain();
        let [Out::Close(closed), Out::Send(s, q)] = outs.as_slice() else {
            panic!("{outs:?}");
        };
        assert_eq!(*closed, stream);
        (*s, q.clone())
    };
    // Truncated again over TCP: unusable.
    let (s, q) = net.expect_send();
    let stream = open(&mut net, s, &q);
    net.resolver
        .handle_stream_input(net.now, stream, &framed(&truncated(&q)));
    let (s, q) = close_and_retry(&mut net, stream);
    // Another id over TCP: the server is the only sender, so it is an error.
    let stream = open(&mut net, s, &q);
    let mut other = respond(&q);
    other.metadata.id ^= 1;
    net.resolver
        .handle_stream_input(net.now, stream, &framed(&wire(&other)));
    let (s, q) = close_and_retry(&mut net, stream);
    // The TCP exchange times out.
    let stream = open(&mut net, s, &q);
    net.advance(TIMEOUT);
    let (outs, _) = net.drain();
    assert_eq!(outs[0], Out::Close(stream));
    let Out::Resolved(resolved) = &outs[1] else {
        panic!("{outs:?}");
    };
    // The timeout does not hide the error of the try before.
    assert!(matches!(
        resolved.result,
        Err(Failure::Unusable(AnswerError::IdMismatch { .. }))
    ));
}

#[test]
fn a_datagram_that_fills_the_buffer_is_truncated() {
    let mut net = Net::servers(1);
    net.lookup(Question::txt(name("example.org")));
    let (s, q) = net.expect_send();
    let mut full = answer(&q, vec![]);
    full.resize(DATAGRAM_BUFFER, 0);
    net.datagram(s, &full);
    let (outs, _) = net.drain();
    assert!(
        matches!(outs.as_slice(), [Out::Open(_, to, _)] if *to == s),
        "{outs:?}"
    );
}

#[test]
fn no_free_stream_fails_the_try() {
    let mut config = ResolverConfig::new(vec![server(1), server(2)]);
    config.max_streams = 1;
    let mut net = Net::new(config);
    net.lookup(Question::a(&host("a.example")));
    net.lookup(Question::a(&host("b.example")));
    let (outs, _) = net.drain();
    let sends: Vec<(SocketAddr, Vec<u8>)> = outs
        .into_iter()
        .map(|o| match o {
            Out::Send(s, b) => (s, b),
            other => panic!("{other:?}"),
        })
        .collect();
    net.datagram(sends[0].0, &truncated(&sends[0].1));
    net.datagram(sends[1].0, &truncated(&sends[1].1));
    let (outs, _) = net.drain();
    assert!(matches!(outs[0], Out::Open(..)), "{outs:?}");
    assert!(
        matches!(&outs[1], Out::Send(s, _) if *s == server(2)),
        "the second truncated answer found no stream: next server ({outs:?})"
    );
}

#[test]
fn unreachable_servers() {
    let mut net = Net::servers(2);
    net.lookup(Question::a(&host("example.org")));
    let (s, _) = net.expect_send();
    // An error for a server no try waits on changes nothing.
    net.resolver.handle_datagram_error(net.now, server(9));
    assert!(net.expect_quiet().is_some());
    net.resolver.handle_datagram_error(net.now, s);
    for expected in [server(2), server(1), server(2)] {
        let (s, _) = net.expect_send();
        assert_eq!(s, expected);
        net.resolver.handle_datagram_error(net.now, s);
    }
    assert_eq!(result(net.expect_resolved()), Err(Failure::Unreachable));

    let mut net = Net::new(ResolverConfig::new(Vec::new()));
    net.lookup(Question::a(&host("example.org")));
    assert_eq!(result(net.expect_resolved()), Err(Failure::NoServer));
}

// ---------------------------------------------------------------- RFC 5452

#[test]
fn spoofed_datagrams_are_dropped_and_the_real_answer_still_counts() {
    let mut net = Net::servers(1);
    net.lookup(Question::a(&host("mx.example.org")));
    let (s, q) = net.expect_send();
    let deadline = net.now + TIMEOUT;
    let forged = answer(
        &q,
        vec![rr(
            "mx.example.org.",
            300,
            RData::A(A("203.0.113.66".parse().unwrap())),
        )],
    );
    let real = answer(
        &q,
        vec![rr(
            "mx.example.org.",
            300,
            RData::A(A("192.0.2.1".parse().unwrap())),
        )],
    );

    // Wrong source address, wrong source port.
    net.datagram(SocketAddr::from(([198, 51, 100, 1], 53)), &forged);
    net.datagram(SocketAddr::from(([192, 0, 2, 1], 5353)), &forged);
    // Wrong id.
    let mut wrong_id = forged.clone();
    wrong_id[1] ^= 0x55;
    net.datagram(s, &wrong_id);
    // Wrong question: another name, another type.
    let other_name = Question::a(&host("evil.example.org")).to_query(id_of(&q), true);
    net.datagram(s, &answer(&other_name, vec![]));
    let other_type = Question::aaaa(&host("mx.example.org")).to_query(id_of(&q), true);
    net.datagram(s, &answer(&other_type, vec![]));
    // Not a response (QR clear), and an NXDOMAIN without the question.
    net.datagram(s, &q);
    let mut bare = respond(&q);
    bare.queries.clear();
    bare.metadata.response_code = ResponseCode::NXDomain;
    net.datagram(s, &wire(&bare));
    // Bytes too short to hold an id, and junk.
    net.datagram(s, &[]);
    net.datagram(s, &[q[0]]);
    net.datagram(s, &[q[0], q[1], 0xff]);
    // None of it changed anything: no output, the same deadline.
    assert_eq!(net.expect_quiet(), Some(deadline));

    net.datagram(s, &real);
    let answer = result(net.expect_resolved()).unwrap();
    assert_eq!(
        answer.records().unwrap().addresses().unwrap(),
        [ip("192.0.2.1")]
    );
}

#[test]
fn an_ipv4_mapped_source_is_the_server() {
    let mut net = Net::servers(1);
    net.lookup(Question::a(&host("mx.example.org")));
    let (_, q) = net.expect_send();
    let mapped: SocketAddr = "[::ffff:192.0.2.1]:53".parse().unwrap();
    net.datagram(mapped, &answer(&q, vec![]));
    assert!(matches!(
        result(net.expect_resolved()),
        Ok(Answer::NoData(_))
    ));
}

#[test]
fn identical_lookups_share_one_query() {
    let mut net = Net::servers(1);
    let question = Question::mx(&host("example.org"));
    let first = net.lookup(question.clone());
    let second = net.lookup(question.clone());
    let third = net.lookup(question);
    assert!(net.resolver.cancel(third));
    let (s, q) = net.expect_send();
    net.datagram(s, &answer(&q, vec![]));
    let (outs, _) = net.drain();
    let ids: Vec<LookupId> = outs
        .iter()
        .map(|o| match o {
            Out::Resolved(r) => r.id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, [first, second]);
}

// ---------------------------------------------------------------- cache

fn cached_net(cache: CacheConfig) -> Net {
    Net::new(ResolverConfig::new(vec![server(1)]).with_cache(cache))
}

#[test]
fn a_cache_hit_sends_nothing_and_expires() {
    let mut net = cached_net(CacheConfig::default());
    let question = Question::mx(&host("example.org"));
    net.lookup(question.clone());
    let (s, q) = net.expect_send();
    net.datagram(
        s,
        &answer(
            &q,
            vec![rr(
                "example.org.",
                300,
                RData::MX(MX::new(10, wire_name("mx.example.org."))),
            )],
        ),
    );
    let fresh = result(net.expect_resolved()).unwrap();
    assert_eq!(net.resolver.cache_len(), 1);

    net.advance(Duration::from_secs(100));
    let id = net.lookup(question.clone());
    let (outs, deadline) = net.drain();
    assert_eq!(deadline, None, "nothing in flight");
    let [Out::Resolved(hit)] = outs.as_slice() else {
        panic!("a cache hit sends nothing: {outs:?}");
    };
    assert_eq!(hit.id, id);
    let hit = hit.result.as_ref().unwrap();
    assert_eq!(hit.ttl(), Some(200), "the time left");
    assert_eq!(hit.records().unwrap().mx(), fresh.records().unwrap().mx());

    net.advance(Duration::from_secs(200));
    net.lookup(question);
    net.expect_send();

    // Failures are not cached.
    let mut net = cached_net(CacheConfig::default());
    net.lookup(Question::a(&host("example.org")));
    let (s, q) = net.expect_send();
    net.datagram(s, &with_rcode(&q, ResponseCode::ServFail));
    net.expect_send();
    net.datagram(s, &with_rcode(&q, ResponseCode::ServFail)); // old id: ignored
    net.advance(TIMEOUT);
    assert!(result(net.expect_resolved()).is_err());
    assert_eq!(net.resolver.cache_len(), 0);
    net.lookup(Question::a(&host("example.org")));
    net.expect_send();
}

#[test]
fn ttl_caps() {
    let mut cache = CacheConfig::default();
    cache.min_ttl = 30;
    cache.max_ttl = 600;
    let mut net = cached_net(cache);
    let long = Question::a(&host("long.example"));
    let short = Question::a(&host("short.example"));
    for (question, ttl) in [(&long, 86_400), (&short, 1)] {
        net.lookup(question.clone());
        let (s, q) = net.expect_send();
        let owner = format!("{}.", question.name());
        net.datagram(
            s,
            &answer(
                &q,
                vec![rr(&owner, ttl, RData::A(A("192.0.2.1".parse().unwrap())))],
            ),
        );
        net.expect_resolved();
    }
    net.advance(Duration::from_secs(29));
    net.lookup(short.clone());
    assert!(
        matches!(net.drain().0.as_slice(), [Out::Resolved(_)]),
        "raised to 30 s"
    );
    net.advance(Duration::from_secs(1));
    let again = net.lookup(short);
    net.expect_send();
    net.resolver.cancel(again);
    net.advance(Duration::from_secs(569));
    net.lookup(long.clone());
    assert!(
        matches!(net.drain().0.as_slice(), [Out::Resolved(_)]),
        "lowered to 600 s"
    );
    net.advance(Duration::from_secs(1));
    net.lookup(long);
    net.expect_send();
}

#[test]
fn negative_answers_are_cached_from_the_soa() {
    let mut cache = CacheConfig::default();
    cache.max_negative_ttl = 60;
    let mut net = cached_net(cache);
    let with_soa = Question::txt(name("_dmarc.example.org"));
    let without_soa = Question::txt(name("_dmarc.example.net"));

    net.lookup(with_soa.clone());
    let (s, q) = net.expect_send();
    let mut nx = respond(&q);
    nx.metadata.response_code = ResponseCode::NXDomain;
    nx.add_authority(soa("example.org.", 3600, 900));
    net.datagram(s, &wire(&nx));
    assert!(matches!(
        result(net.expect_resolved()),
        Ok(Answer::NxDomain(_))
    ));

    net.lookup(without_soa.clone());
    let (s, q) = net.expect_send();
    net.datagram(s, &answer(&q, vec![]));
    assert!(matches!(
        result(net.expect_resolved()),
        Ok(Answer::NoData(_))
    ));
    assert_eq!(
        net.resolver.cache_len(),
        1,
        "no SOA: not cached (RFC 2308 §5)"
    );

    net.advance(Duration::from_secs(59));
    net.lookup(with_soa.clone());
    let (outs, _) = net.drain();
    assert!(
        matches!(outs.as_slice(), [Out::Resolved(r)] if matches!(r.result, Ok(Answer::NxDomain(_)))),
        "{outs:?}"
    );
    net.advance(Duration::from_secs(1));
    net.lookup(with_soa);
    net.expect_send();
    net.lookup(without_soa);
    assert_eq!(net.drain().0.len(), 1, "asked again");
}

#[test]
fn negative_answers_without_soa_are_kept_only_when_configured() {
    let mut cache = CacheConfig::default();
    cache.negative_ttl_without_soa = 30;
    let mut net = cached_net(cache);
    let question = Question::txt(name("example.net"));
    net.lookup(question.clone());
    let (s, q) = net.expect_send();
    let mut nx = respond(&q);
    nx.metadata.response_code = ResponseCode::NXDomain;
    net.datagram(s, &wire(&nx));
    assert!(matches!(
        result(net.expect_resolved()),
        Ok(Answer::NxDomain(_))
    ));
    assert_eq!(net.resolver.cache_len(), 1);
    net.advance(Duration::from_secs(29));
    net.lookup(question.clone());
    let (outs, _) = net.drain();
    assert!(
        matches!(outs.as_slice(), [Out::Resolved(r)] if matches!(r.result, Ok(Answer::NxDomain(_)))),
        "{outs:?}"
    );
    net.advance(Duration::from_secs(1));
    net.lookup(question);
    net.expect_send();
}

#[test]
fn the_cache_is_bounded() {
    let mut cache = CacheConfig::default();
    cache.max_entries = 2;
    let mut net = cached_net(cache);
    for (i, ttl) in [(1u8, 300), (2, 100), (3, 200)] {
        let h = format!("h{i}.example");
        net.lookup(Question::a(&host(&h)));
        let (s, q) = net.expect_send();
        net.datagram(
            s,
            &answer(
                &q,
                vec![rr(
                    &format!("{h}."),
                    ttl,
                    RData::A(A("192.0.2.1".parse().unwrap())),
                )],
            ),
        );
        net.expect_resolved();
        assert!(net.resolver.cache_len() <= 2);
    }
    // h2 expired soonest and was evicted.
    net.lookup(Question::a(&host("h2.example")));
    net.expect_send();
    net.lookup(Question::a(&host("h1.example")));
    net.lookup(Question::a(&host("h3.example")));
    let (outs, _) = net.drain();
    assert_eq!(
        outs.iter()
            .filter(|o| matches!(o, Out::Resolved(_)))
            .count(),
        2,
        "{outs:?}"
    );
    net.resolver.clear_cache();
    assert_eq!(net.resolver.cache_len(), 0);
}

// ---------------------------------------------------------------- bounds

#[test]
fn in_flight_lookups_are_bounded() {
    let mut config = ResolverConfig::new(vec![server(1)]);
    config.max_lookups = 2;
    let mut net = Net::new(config);
    let a = net.lookup(Question::a(&host("a.example")));
    net.lookup(Question::a(&host("b.example")));
    assert_eq!(
        net.resolver
            .lookup(net.now, Question::a(&host("c.example")), 1),
        Err(LookupError::TooManyLookups { limit: 2 })
    );
    assert_eq!(net.resolver.in_flight(), 2);
    // A cancelled lookup frees its place; so does a handed-out result.
    assert!(net.resolver.cancel(a));
    assert!(!net.resolver.cancel(a));
    let c = net.lookup(Question::a(&host("c.example")));
    let (outs, _) = net.drain();
    assert_eq!(outs.len(), 2, "b and c are asked, a is not: {outs:?}");
    assert!(
        net.resolver
            .lookup(net.now, Question::a(&host("d.example")), 1)
            .is_err()
    );
    assert!(net.resolver.cancel(c));
    assert_eq!(net.resolver.in_flight(), 1);
}

#[test]
fn cancel_closes_the_stream_and_drops_a_queued_result() {
    let mut net = Net::servers(1);
    let id = net.lookup(Question::a(&host("example.org")));
    let (s, q) = net.expect_send();
    net.datagram(s, &truncated(&q));
    let (outs, _) = net.drain();
    let [Out::Open(stream, ..)] = outs.as_slice() else {
        panic!("{outs:?}");
    };
    assert!(net.resolver.cancel(id));
    let (outs, deadline) = net.drain();
    assert_eq!(outs, [Out::Close(*stream)]);
    assert_eq!(deadline, None);

    let id = net.lookup(Question::a(&host("example.org")));
    let (s, q) = net.expect_send();
    net.datagram(s, &answer(&q, vec![]));
    assert!(net.resolver.cancel(id), "resolved but not handed out");
    assert_eq!(net.expect_quiet(), None);
}

#[test]
fn many_lookups_never_share_an_id() {
    let mut config = ResolverConfig::new(vec![server(1)]);
    config.max_lookups = 4000;
    let mut resolver = Resolver::new(config);
    let now = Instant::now();
    for i in 0..4000u32 {
        // The same seed for all: ids must still be re-drawn apart.
        let question = Question::a(&host(&format!("h{i}.example")));
        resolver.lookup(now, question, 42).unwrap();
    }
    let mut ids = std::collections::HashSet::new();
    loop {
        match resolver.poll(now) {
            Output::Send { bytes, .. } => {
                assert!(ids.insert(id_of(bytes)), "an id in flight twice")
            }
            Output::Wait { .. } => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ids.len(), 4000);
}

// ---------------------------------------------------------------- arbitrary bytes

/// What the property test feeds in.
#[derive(Debug, Clone)]
enum Step {
    /// Bytes from the server of the current try (with its id spliced in
    /// when `own_id`), or from elsewhere.
    Datagram {
        bytes: Vec<u8>,
        own_id: bool,
        from_server: bool,
    },
    /// Stream bytes for the latest stream.
    Stream(Vec<u8>),
    StreamEof,
    Time(u16),
    DatagramError,
    Truncate,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (
            proptest::collection::vec(any::<u8>(), 0..300),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(bytes, own_id, from_server)| Step::Datagram {
                bytes,
                own_id,
                from_server
            }),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Step::Stream),
        Just(Step::StreamEof),
        any::<u16>().prop_map(Step::Time),
        Just(Step::DatagramError),
        Just(Step::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes, any order, any time: no panic, every lookup resolves
    /// exactly once, every opened stream is closed exactly once, and the
    /// machine goes quiet.
    #[test]
    fn arbitrary_input_never_breaks_the_machine(
        steps in proptest::collection::vec(step(), 0..40),
        seed in any::<u64>(),
        record in 0usize..6,
    ) {
        let mut config = ResolverConfig::new(vec![server(1), server(2)]);
        config.max_streams = 2;
        config.cache = Some(CacheConfig::default());
        let mut net = Net::new(config);
        let record_type = RecordType::ALL[record];
        let question = Question::new(name("x._y.example.org"), record_type);
        let id = net.resolver.lookup(net.now, question, seed).unwrap();
        let mut last_query: Option<(SocketAddr, Vec<u8>)> = None;
        let mut streams: Vec<StreamId> = Vec::new();
        let mut closed: Vec<StreamId> = Vec::new();
        let mut resolved = 0;
        let mut absorb = |outs: Vec<Out>, last: &mut Option<(SocketAddr, Vec<u8>)>, streams: &mut Vec<StreamId>| {
            for out in outs {
                match out {
                    Out::Send(s, b) => *last = Some((s, b)),
                    Out::Open(stream, ..) => streams.push(stream),
                    Out::Close(stream) => {
                        assert!(streams.contains(&stream), "closing a stream never opened");
                        assert!(!closed.contains(&stream), "closed twice");
                        closed.push(stream);
                    }
                    Out::Resolved(r) => {
                        assert_eq!(r.id, id);
                        resolved += 1;
                    }
                }
            }
        };
        let (outs, _) = net.drain();
        absorb(outs, &mut last_query, &mut streams);
        for step in steps {
            match step {
                Step::Datagram { mut bytes, own_id, from_server } => {
                    let (to, query) = last_query.clone().unwrap_or((server(1), vec![0, 0]));
                    if own_id && bytes.len() >= 2 {
                        bytes[..2].copy_from_slice(&query[..2]);
                    }
                    let from = if from_server { to } else { server(3) };
                    net.datagram(from, &bytes);
                }
                Step::Stream(bytes) => {
                    if let Some(&stream) = streams.last() {
                        net.resolver.handle_stream_input(net.now, stream, &bytes);
                    }
                }
                Step::StreamEof => {
                    if let Some(&stream) = streams.last() {
                        net.resolver.handle_stream_eof(net.now, stream);
                    }
                }
                Step::Time(ms) => net.advance(Duration::from_millis(u64::from(ms))),
                Step::DatagramError => {
                    if let Some((to, _)) = &last_query {
                        net.resolver.handle_datagram_error(net.now, *to);
                    }
                }
                Step::Truncate => {
                    if let Some((to, query)) = &last_query {
                        net.datagram(*to, &truncated(query));
                    }
                }
            }
            let (outs, _) = net.drain();
            absorb(outs, &mut last_query, &mut streams);
        }
        // Let time run out: the lookup must end.
        for _ in 0..10 {
            net.advance(TIMEOUT);
            let (outs, _) = net.drain();
            absorb(outs, &mut last_query, &mut streams);
        }
        prop_assert_eq!(resolved, 1);
        prop_assert_eq!(closed.len(), streams.len());
        prop_assert_eq!(net.resolver.in_flight(), 0);
        prop_assert_eq!(net.expect_quiet(), None);
    }
}

#[test]
fn severities_follow_the_dispositions() {
    use smtp_proto::mx::Severity;
    for failure in [
        Failure::ServerFailure(Rcode::SERVFAIL),
        Failure::Timeout,
        Failure::Unusable(AnswerError::CnameLoop),
        Failure::Unreachable,
        Failure::StreamsBusy,
        Failure::NoServer,
    ] {
        assert_eq!(
            failure.disposition().severity(),
            Some(Severity::Temporary),
            "{failure}"
        );
    }
    assert_eq!(
        Disposition::PermanentFailure.severity(),
        Some(Severity::Permanent)
    );
    assert_eq!(Disposition::Proceed.severity(), None);
    assert_eq!(Disposition::RetryOverTcp.severity(), None);
}

#[test]
fn the_same_inputs_give_the_same_outputs() {
    let run = || {
        let mut net = Net::servers(3);
        let start = net.now;
        for i in 0..20u64 {
            let question = Question::a(&host(&format!("h{i}.example")));
            net.resolver.lookup(net.now, question, i).unwrap();
        }
        let mut log = vec![net.drain()];
        // Every try times out at once, several rounds: the order of the
        // retries is part of the replay.
        for _ in 0..3 {
            net.advance(TIMEOUT);
            log.push(net.drain());
        }
        log.into_iter()
            .map(|(outs, deadline)| (outs, deadline.map(|d| d - start)))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}
