//! Known-answer tests for the MX planner: real DNS messages built with
//! hickory-proto by a responder that answers the bytes our queries produce.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use proptest::prelude::*;
use smtp_proto::mx::{
    AddressAnswer, AddressQuery, AnswerError, Disposition, EDNS_UDP_PAYLOAD, FamilyPreference,
    HostName, HostNameError, HostPlan, MAX_CNAME_CHAIN, MxAnswer, MxHost, MxQuery, Next,
    PlanConfig, PlanError, PlanUsageError, QueryType, Rcode, Severity, TcpFrame, parse_tcp_frame,
    write_tcp_frame,
};

#[path = "support/dns_responder.rs"]
mod dns_responder;
use dns_responder::respond;

// ---------------------------------------------------------------- responder

fn dns(name: &str) -> Name {
    Name::from_ascii(name).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn host(name: &str) -> HostName {
    HostName::parse(name).unwrap()
}

fn rr(owner: &str, data: RData) -> Record {
    Record::from_rdata(dns(owner), 300, data)
}

fn mx(owner: &str, preference: u16, exchange: &str) -> Record {
    rr(owner, RData::MX(MX::new(preference, dns(exchange))))
}

fn cname(owner: &str, target: &str) -> Record {
    rr(owner, RData::CNAME(CNAME(dns(target))))
}

fn a(owner: &str, addr: &str) -> Record {
    rr(owner, RData::A(A(addr.parse().unwrap())))
}

fn aaaa(owner: &str, addr: &str) -> Record {
    rr(owner, RData::AAAA(AAAA(addr.parse().unwrap())))
}

fn wire(message: &Message) -> Vec<u8> {
    message.to_vec().unwrap()
}

/// Builds an MX answer for `domain` with `answers` and `additionals`.
fn mx_answer(
    query: &MxQuery,
    answers: Vec<Record>,
    additionals: Vec<Record>,
    seed: u64,
) -> Result<MxAnswer, AnswerError> {
    let mut r = respond(&query.to_bytes());
    r.add_answers(answers);
    r.add_additionals(additionals);
    query.decode(&wire(&r), seed)
}

fn names(answer: &MxAnswer) -> Vec<(String, u16)> {
    match answer {
        MxAnswer::Hosts(hosts) => hosts
            .iter()
            .map(|h| (h.name().to_string(), h.preference()))
            .collect(),
        other => panic!("expected hosts, got {other:?}"),
    }
}

fn with_rcode(query: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let mut r = respond(query);
    r.metadata.response_code = rcode;
    wire(&r)
}

// ---------------------------------------------------------------- queries

#[test]
fn mx_query_bytes() {
    let query = MxQuery::new(0xBEEF, "Example.ORG.").unwrap();
    assert_eq!(query.id(), 0xBEEF);
    assert_eq!(query.domain().as_str(), "example.org");
    let bytes = query.to_bytes();
    // Header: id, flags (QR=0, OPCODE=0, RD=1), QDCOUNT=1, AN=0, NS=0, AR=1.
    assert_eq!(
        &bytes[..12],
        &[0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]
    );
    // Question: example.org. MX IN.
    assert_eq!(
        &bytes[12..29],
        b"\x07example\x03org\x00\x00\x0f\x00\x01".as_slice()
    );
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.metadata.message_type, MessageType::Query);
    assert_eq!(m.metadata.op_code, OpCode::Query);
    assert!(m.metadata.recursion_desired);
    assert_eq!(m.queries.len(), 1);
    assert_eq!(m.queries[0].query_type(), RecordType::MX);
    assert_eq!(m.queries[0].query_class(), DNSClass::IN);
    assert_eq!(m.queries[0].name(), &dns("example.org."));
    assert_eq!(m.edns.as_ref().unwrap().max_payload(), EDNS_UDP_PAYLOAD);

    let plain = query.without_edns().to_bytes();
    assert_eq!(plain.len(), 29, "header + question, no OPT record");
    assert!(Message::from_vec(&plain).unwrap().edns.is_none());
}

#[test]
fn address_query_bytes() {
    for (query, record_type) in [
        (AddressQuery::a(7, "mx.example.org").unwrap(), RecordType::A),
        (
            AddressQuery::aaaa(8, "mx.example.org").unwrap(),
            RecordType::AAAA,
        ),
    ] {
        let m = Message::from_vec(&query.to_bytes()).unwrap();
        assert_eq!(m.metadata.id, query.id());
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.queries[0].query_type(), record_type);
        assert_eq!(m.queries[0].name(), &dns("mx.example.org."));
    }
    assert_eq!(
        AddressQuery::for_host(1, host("x.example"), QueryType::Mx).query_type(),
        QueryType::A
    );
}

#[test]
fn invalid_query_names_are_refused() {
    assert_eq!(MxQuery::new(1, "").unwrap_err(), HostNameError::Empty);
    assert_eq!(
        MxQuery::new(1, "exa mple.org").unwrap_err(),
        HostNameError::InvalidByte(b' ')
    );
    assert_eq!(
        AddressQuery::a(1, "a\r\nMAIL FROM:<x>").unwrap_err(),
        HostNameError::InvalidByte(b'\r')
    );
}

// ---------------------------------------------------------------- TCP framing

#[test]
fn tcp_framing_round_trip() {
    let query = MxQuery::new(42, "example.org").unwrap();
    let udp = query.to_bytes();
    let tcp = query.to_tcp_bytes();
    assert_eq!(&tcp[..2], &u16::try_from(udp.len()).unwrap().to_be_bytes());
    assert_eq!(&tcp[2..], udp.as_slice());

    // An answer split over reads, followed by the start of another frame.
    let mut r = respond(&udp);
    r.add_answer(mx("example.org.", 10, "mx.example.org."));
    let answer = wire(&r);
    let mut stream = Vec::new();
    write_tcp_frame(&answer, &mut stream).unwrap();
    stream.extend_from_slice(&[0x00]);
    for cut in 0..answer.len() + 2 {
        let expected = if cut < 2 { 2 } else { answer.len() + 2 };
        assert_eq!(
            parse_tcp_frame(&stream[..cut]),
            TcpFrame::Incomplete { needed: expected }
        );
    }
    let TcpFrame::Complete { message, consumed } = parse_tcp_frame(&stream) else {
        panic!("complete frame expected");
    };
    assert_eq!(consumed, answer.len() + 2);
    assert_eq!(message, answer.as_slice());
    assert_eq!(
        names(&query.decode(message, 0).unwrap()),
        [("mx.example.org".into(), 10)]
    );
    assert_eq!(
        parse_tcp_frame(&stream[consumed..]),
        TcpFrame::Incomplete { needed: 2 }
    );

    assert_eq!(
        parse_tcp_frame(&[0, 0, 9]),
        TcpFrame::Complete {
            message: &[],
            consumed: 2
        }
    );
    let too_long = vec![0u8; 65536];
    assert!(write_tcp_frame(&too_long, &mut Vec::new()).is_err());
    let mut max = Vec::new();
    write_tcp_frame(&too_long[..65535], &mut max).unwrap();
    assert_eq!(&max[..2], &[0xFF, 0xFF]);
}

// ---------------------------------------------------------------- MX answers

#[test]
fn two_mx_by_preference_with_hints() {
    let query = MxQuery::new(1, "example.org").unwrap();
    let answer = mx_answer(
        &query,
        vec![
            mx("example.org.", 20, "backup.example.net."),
            mx("example.org.", 10, "MX1.example.org."),
        ],
        vec![
            a("mx1.example.org.", "192.0.2.10"),
            aaaa("mx1.example.org.", "2001:db8::10"),
            a("mx1.example.org.", "192.0.2.10"),
            a("unrelated.example.", "192.0.2.99"),
        ],
        0,
    )
    .unwrap();
    assert_eq!(answer.disposition(), Disposition::Proceed);
    assert!(!answer.is_permanent_failure() && !answer.is_temporary_failure());
    assert_eq!(
        names(&answer),
        [
            ("mx1.example.org".into(), 10),
            ("backup.example.net".into(), 20)
        ]
    );
    let hosts = answer.into_hosts().unwrap();
    assert_eq!(hosts[0].hints(), &[ip("192.0.2.10"), ip("2001:db8::10")]);
    assert!(hosts[1].hints().is_empty());
}

#[test]
fn equal_preferences_are_shuffled_by_seed() {
    let query = MxQuery::new(2, "example.org").unwrap();
    let records = vec![
        mx("example.org.", 10, "a.example.org."),
        mx("example.org.", 10, "b.example.org."),
        mx("example.org.", 5, "first.example.org."),
        mx("example.org.", 20, "last.example.org."),
    ];
    let mut reversed = records.clone();
    reversed.reverse();
    let mut orders = BTreeSet::new();
    for seed in 0..64 {
        let got = names(&mx_answer(&query, records.clone(), vec![], seed).unwrap());
        // Deterministic for a seed, whatever order the server used.
        assert_eq!(
            got,
            names(&mx_answer(&query, reversed.clone(), vec![], seed).unwrap())
        );
        assert_eq!(got[0], ("first.example.org".into(), 5));
        assert_eq!(got[3], ("last.example.org".into(), 20));
        orders.insert((got[1].0.clone(), got[2].0.clone()));
    }
    assert_eq!(
        orders,
        BTreeSet::from([
            ("a.example.org".into(), "b.example.org".into()),
            ("b.example.org".into(), "a.example.org".into()),
        ]),
        "both orders appear across seeds"
    );
}

#[test]
fn duplicate_hosts_keep_their_lowest_preference() {
    let query = MxQuery::new(3, "example.org").unwrap();
    let answer = mx_answer(
        &query,
        vec![
            mx("example.org.", 30, "mx.example.org."),
            mx("example.org.", 20, "other.example.org."),
            mx("example.org.", 10, "MX.example.org."),
        ],
        vec![],
        0,
    )
    .unwrap();
    assert_eq!(
        names(&answer),
        [
            ("mx.example.org".into(), 10),
            ("other.example.org".into(), 20)
        ]
    );
}

#[test]
fn cname_chain_to_the_mx_owner() {
    let query = MxQuery::new(4, "alias.example.org").unwrap();
    let answer = mx_answer(
        &query,
        vec![
            // Out of order on purpose; the chain is followed by name.
            mx("real.example.net.", 10, "mx.example.net."),
            cname("mid.example.com.", "real.example.net."),
            cname("ALIAS.example.org.", "mid.example.com."),
            // MX records of a name outside the chain are ignored.
            mx("alias.example.org.", 1, "wrong.example.org."),
        ],
        vec![],
        0,
    );
    // RFC 2181 §10.1: alias.example.org has a CNAME, so its "own" MX is
    // ignored; the chain leads to real.example.net.
    assert_eq!(names(&answer.unwrap()), [("mx.example.net".into(), 10)]);
}

#[test]
fn cname_loop_and_overlong_chain_are_errors() {
    let query = MxQuery::new(5, "a.example").unwrap();
    let looped = mx_answer(
        &query,
        vec![
            cname("a.example.", "b.example."),
            cname("b.example.", "c.example."),
            cname("c.example.", "A.example."),
        ],
        vec![],
        0,
    );
    assert_eq!(looped, Err(AnswerError::CnameLoop));
    assert_eq!(
        mx_answer(&query, vec![cname("a.example.", "a.example.")], vec![], 0),
        Err(AnswerError::CnameLoop)
    );

    let chain = |hops: usize| {
        let mut records: Vec<Record> = (0..hops)
            .map(|i| {
                let owner = if i == 0 {
                    "a.example.".to_string()
                } else {
                    format!("n{i}.example.")
                };
                cname(&owner, &format!("n{}.example.", i + 1))
            })
            .collect();
        records.push(mx(&format!("n{hops}.example."), 10, "mx.example."));
        mx_answer(&query, records, vec![], 0)
    };
    assert_eq!(
        names(&chain(MAX_CNAME_CHAIN).unwrap()),
        [("mx.example".into(), 10)]
    );
    assert_eq!(
        chain(MAX_CNAME_CHAIN + 1),
        Err(AnswerError::CnameChainTooLong)
    );
    let error = chain(MAX_CNAME_CHAIN + 1).unwrap_err();
    assert!(!error.is_unrelated());
    assert_eq!(error.disposition(), Disposition::TemporaryFailure);
}

#[test]
fn two_cnames_for_one_name_are_malformed() {
    let query = MxQuery::new(6, "a.example").unwrap();
    let answer = mx_answer(
        &query,
        vec![
            cname("a.example.", "b.example."),
            cname("a.example.", "c.example."),
        ],
        vec![],
        0,
    );
    assert!(
        matches!(answer, Err(AnswerError::Malformed(_))),
        "{answer:?}"
    );
    // A repeated identical CNAME is harmless.
    let answer = mx_answer(
        &query,
        vec![
            cname("a.example.", "b.example."),
            cname("a.example.", "B.example."),
            mx("b.example.", 0, "mx.example."),
        ],
        vec![],
        0,
    );
    assert_eq!(names(&answer.unwrap()), [("mx.example".into(), 0)]);
}

#[test]
fn null_mx() {
    let query = MxQuery::new(7, "nomail.example").unwrap();
    let answer = mx_answer(&query, vec![mx("nomail.example.", 0, ".")], vec![], 0).unwrap();
    assert_eq!(answer, MxAnswer::NullMx);
    assert!(answer.is_permanent_failure());
    assert_eq!(answer.disposition(), Disposition::PermanentFailure);
    assert_eq!(answer.into_hosts(), None);
}

#[test]
fn null_mx_mixed_with_other_records_still_means_no_mail() {
    // RFC 7505 §3: a domain with a null MX MUST NOT advertise other MX
    // records. We stay conservative: the domain said it accepts no mail.
    let query = MxQuery::new(8, "mixed.example").unwrap();
    for records in [
        vec![
            mx("mixed.example.", 10, "mx.mixed.example."),
            mx("mixed.example.", 0, "."),
        ],
        vec![
            mx("mixed.example.", 0, "."),
            mx("mixed.example.", 0, "mx.mixed.example."),
        ],
        // The root at another preference is still no host.
        vec![mx("mixed.example.", 10, ".")],
    ] {
        assert_eq!(
            mx_answer(&query, records, vec![], 0).unwrap(),
            MxAnswer::NullMx
        );
    }
}

#[test]
fn nodata_means_implicit_mx() {
    let query = MxQuery::new(9, "Bare.example").unwrap();
    let mut r = respond(&query.to_bytes());
    // A NODATA answer carries the SOA in the authority section.
    r.add_authority(rr("example.", RData::A(A("192.0.2.1".parse().unwrap()))));
    let answer = query.decode(&wire(&r), 0).unwrap();
    assert_eq!(
        answer,
        MxAnswer::Implicit(MxHost::new(host("bare.example"), 0))
    );
    assert_eq!(answer.disposition(), Disposition::Proceed);
    assert_eq!(
        answer.into_hosts().unwrap(),
        [MxHost::new(host("bare.example"), 0)]
    );

    // Through an alias, the implicit MX is the canonical name.
    let query = MxQuery::new(9, "www.example").unwrap();
    let answer = mx_answer(
        &query,
        vec![
            cname("www.example.", "web.example.net."),
            a("web.example.net.", "192.0.2.80"),
        ],
        vec![],
        0,
    )
    .unwrap();
    assert_eq!(
        answer,
        MxAnswer::Implicit(MxHost::new(host("web.example.net"), 0))
    );
}

#[test]
fn invalid_exchange_names() {
    let query = MxQuery::new(10, "example.org").unwrap();
    // An invalid exchange beside a valid one is skipped.
    let answer = mx_answer(
        &query,
        vec![
            mx("example.org.", 5, "bad_name.example.org."),
            mx("example.org.", 10, "mx.example.org."),
        ],
        vec![],
        0,
    );
    assert_eq!(names(&answer.unwrap()), [("mx.example.org".into(), 10)]);
    // Only invalid exchanges: no usable host.
    let answer = mx_answer(
        &query,
        vec![mx("example.org.", 5, "bad_name.example.org.")],
        vec![],
        0,
    );
    assert!(
        matches!(
            answer,
            Err(AnswerError::InvalidHostName {
                reason: HostNameError::InvalidByte(b'_'),
                ..
            })
        ),
        "{answer:?}"
    );
}

#[test]
fn rcodes() {
    let query = MxQuery::new(11, "example.org").unwrap();
    let bytes = query.to_bytes();
    let nx = query
        .decode(&with_rcode(&bytes, ResponseCode::NXDomain), 0)
        .unwrap();
    assert_eq!(nx, MxAnswer::NxDomain);
    assert!(nx.is_permanent_failure());

    for (rcode, expected, text) in [
        (ResponseCode::ServFail, Rcode::SERVFAIL, "SERVFAIL"),
        (ResponseCode::Refused, Rcode::REFUSED, "REFUSED"),
        (ResponseCode::FormErr, Rcode::FORMERR, "FORMERR"),
        (ResponseCode::NotImp, Rcode::NOTIMP, "NOTIMP"),
        (ResponseCode::NotAuth, Rcode(9), "RCODE 9 (Not authorized)"),
    ] {
        let answer = query.decode(&with_rcode(&bytes, rcode), 0).unwrap();
        assert_eq!(answer, MxAnswer::Temporary(expected));
        assert!(answer.is_temporary_failure());
        assert!(!answer.is_permanent_failure());
        assert_eq!(expected.to_string(), text);
    }

    // An extended RCODE carried in EDNS (RFC 6891 §6.1.3): BADVERS = 16.
    let mut r = respond(&bytes);
    r.set_edns(Edns::new());
    r.metadata.response_code = ResponseCode::BADVERS;
    let extended = wire(&r);
    assert_eq!(extended[3] & 0x0F, 0, "low bits of 16 in the header are 0");
    assert_eq!(
        query.decode(&extended, 0).unwrap(),
        MxAnswer::Temporary(Rcode(16))
    );

    // A SERVFAIL without the question is accepted (it can only defer) ...
    let mut bare = Message::new(11, MessageType::Response, OpCode::Query);
    bare.metadata.response_code = ResponseCode::ServFail;
    assert_eq!(
        query.decode(&wire(&bare), 0).unwrap(),
        MxAnswer::Temporary(Rcode::SERVFAIL)
    );
    // ... but NOERROR and NXDOMAIN must repeat it.
    for rcode in [ResponseCode::NoError, ResponseCode::NXDomain] {
        bare.metadata.response_code = rcode;
        assert_eq!(
            query.decode(&wire(&bare), 0),
            Err(AnswerError::QuestionMismatch)
        );
    }
}

#[test]
fn truncated_answers_ask_for_tcp() {
    let query = MxQuery::new(12, "example.org").unwrap();
    let mut r = respond(&query.to_bytes());
    r.add_answer(mx("example.org.", 10, "mx.example.org."));
    r.metadata.truncation = true;
    let bytes = wire(&r);
    let answer = query.decode(&bytes, 0).unwrap();
    assert_eq!(answer, MxAnswer::Truncated);
    assert_eq!(answer.disposition(), Disposition::RetryOverTcp);
    // A truncated datagram may end inside a record: still Truncated.
    for cut in 30..bytes.len() {
        assert_eq!(
            query.decode(&bytes[..cut], 0),
            Ok(MxAnswer::Truncated),
            "cut {cut}"
        );
    }
    // With the question itself cut, too.
    assert_eq!(query.decode(&bytes[..20], 0), Ok(MxAnswer::Truncated));
    // A truncated answer to another question is still rejected.
    let other = MxQuery::new(12, "example.net").unwrap();
    assert_eq!(other.decode(&bytes, 0), Err(AnswerError::QuestionMismatch));
}

#[test]
fn answers_that_are_not_ours() {
    let query = MxQuery::new(0x1111, "example.org").unwrap();
    let mut r = respond(&query.to_bytes());
    r.add_answer(mx("example.org.", 10, "mx.example.org."));

    let mut wrong_id = r.clone();
    wrong_id.metadata.id = 0x2222;
    let error = query.decode(&wire(&wrong_id), 0).unwrap_err();
    assert_eq!(
        error,
        AnswerError::IdMismatch {
            expected: 0x1111,
            found: 0x2222
        }
    );
    assert!(error.is_unrelated());

    // The query echoed back is not a response.
    let error = query.decode(&query.to_bytes(), 0).unwrap_err();
    assert_eq!(error, AnswerError::NotAResponse);
    assert!(error.is_unrelated());
    let mut notify = r.clone();
    notify.metadata.op_code = OpCode::Notify;
    assert_eq!(
        query.decode(&wire(&notify), 0),
        Err(AnswerError::NotAResponse)
    );

    let question = |name: &str, record_type: RecordType, class: DNSClass| {
        let mut m = r.clone();
        let mut q = Query::query(dns(name), record_type);
        q.set_query_class(class);
        m.queries = vec![q];
        query.decode(&wire(&m), 0)
    };
    for (name, record_type, class) in [
        ("example.net.", RecordType::MX, DNSClass::IN),
        ("example.org.", RecordType::A, DNSClass::IN),
        ("example.org.", RecordType::MX, DNSClass::CH),
    ] {
        let result = question(name, record_type, class);
        assert_eq!(
            result,
            Err(AnswerError::QuestionMismatch),
            "{name} {record_type}"
        );
        assert!(result.unwrap_err().is_unrelated());
    }
    // The name is compared without regard to case (RFC 4343, 0x20 encoding).
    assert_eq!(
        names(&question("EXAMPLE.Org.", RecordType::MX, DNSClass::IN).unwrap()),
        [("mx.example.org".into(), 10)]
    );
    // Two questions are not an answer to our one.
    let mut two = r.clone();
    two.add_query(Query::query(dns("example.org."), RecordType::MX));
    assert_eq!(
        query.decode(&wire(&two), 0),
        Err(AnswerError::QuestionMismatch)
    );
}

#[test]
fn garbage_and_cut_answers_are_errors() {
    let query = MxQuery::new(0x0102, "example.org").unwrap();
    for garbage in [
        &b""[..],
        b"\x01",
        b"\x01\x02\x81",
        b"\x01\x02\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\xff\xff\xff",
        &[0xff; 512][..],
    ] {
        let result = query.decode(garbage, 0);
        assert!(result.is_err(), "{garbage:?} gave {result:?}");
    }

    let mut r = respond(&query.to_bytes());
    r.add_answer(mx("example.org.", 10, "mx.example.org."));
    r.add_additional(a("mx.example.org.", "192.0.2.1"));
    let bytes = wire(&r);
    assert!(query.decode(&bytes, 0).is_ok());
    for cut in 0..bytes.len() {
        let result = query.decode(&bytes[..cut], 0);
        assert!(
            matches!(result, Err(AnswerError::Malformed(_))),
            "cut {cut}: {result:?}"
        );
    }
}

// ---------------------------------------------------------------- A / AAAA

#[test]
fn address_answers() {
    let query = AddressQuery::a(20, "mx.example.org").unwrap();
    let mut r = respond(&query.to_bytes());
    r.add_answers([
        cname("mx.example.org.", "host.example.net."),
        a("host.example.net.", "192.0.2.1"),
        a("host.example.net.", "192.0.2.2"),
        a("host.example.net.", "192.0.2.1"),
        aaaa("host.example.net.", "2001:db8::1"),
        a("mx.example.org.", "192.0.2.99"),
    ]);
    let answer = query.decode(&wire(&r)).unwrap();
    assert_eq!(
        answer,
        AddressAnswer::Addresses(vec![ip("192.0.2.1"), ip("192.0.2.2")])
    );
    assert_eq!(answer.disposition(), Disposition::Proceed);

    let query = AddressQuery::aaaa(21, "mx.example.org").unwrap();
    let mut r = respond(&query.to_bytes());
    r.add_answers([
        aaaa("mx.example.org.", "2001:db8::25"),
        a("mx.example.org.", "192.0.2.25"),
    ]);
    assert_eq!(
        query.decode(&wire(&r)).unwrap(),
        AddressAnswer::Addresses(vec![ip("2001:db8::25")])
    );

    // NODATA, NXDOMAIN, SERVFAIL, TC.
    let bytes = query.to_bytes();
    assert_eq!(
        query.decode(&wire(&respond(&bytes))).unwrap(),
        AddressAnswer::Addresses(vec![])
    );
    let nx = query
        .decode(&with_rcode(&bytes, ResponseCode::NXDomain))
        .unwrap();
    assert_eq!(nx, AddressAnswer::NxDomain);
    assert_eq!(nx.disposition(), Disposition::PermanentFailure);
    assert_eq!(
        query
            .decode(&with_rcode(&bytes, ResponseCode::ServFail))
            .unwrap(),
        AddressAnswer::Temporary(Rcode::SERVFAIL)
    );
    let mut tc = respond(&bytes);
    tc.metadata.truncation = true;
    assert_eq!(query.decode(&wire(&tc)).unwrap(), AddressAnswer::Truncated);
    // The answer to the A query does not answer the AAAA query.
    let a_query = AddressQuery::a(21, "mx.example.org").unwrap();
    assert_eq!(
        query.decode(&wire(&respond(&a_query.to_bytes()))),
        Err(AnswerError::QuestionMismatch)
    );
    // CNAME loop.
    let mut looped = respond(&bytes);
    looped.add_answers([
        cname("mx.example.org.", "x.example.org."),
        cname("x.example.org.", "mx.example.org."),
    ]);
    assert_eq!(query.decode(&wire(&looped)), Err(AnswerError::CnameLoop));
}

// ---------------------------------------------------------------- the plan

fn mxh(name: &str, preference: u16) -> MxHost {
    MxHost::new(host(name), preference)
}

fn expect_resolve(plan: &HostPlan) -> String {
    match plan.next_target() {
        Next::Resolve(h) => h.name().to_string(),
        other => panic!("expected Resolve, got {other:?}"),
    }
}

fn expect_connect(plan: &HostPlan) -> (String, IpAddr) {
    match plan.next_target() {
        Next::Connect(t) => (t.host().name().to_string(), t.ip()),
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[test]
fn plan_walks_addresses_then_hosts() {
    let hosts = vec![mxh("mx1.example", 10), mxh("mx2.example", 20)];
    let mut plan = HostPlan::new(hosts, &PlanConfig::default()).unwrap();
    assert_eq!(plan.hosts().count(), 2);
    assert_eq!(expect_resolve(&plan), "mx1.example");
    assert_eq!(
        expect_resolve(&plan),
        "mx1.example",
        "next_target is idempotent"
    );
    // Misuse changes nothing.
    assert_eq!(plan.on_connect_failed(), Err(PlanUsageError::NotConnecting));
    assert_eq!(
        plan.on_temporary_failure(),
        Err(PlanUsageError::NotConnecting)
    );

    plan.resolved([ip("2001:db8::1"), ip("192.0.2.1"), ip("192.0.2.2")])
        .unwrap();
    assert_eq!(plan.resolved([]), Err(PlanUsageError::NotResolving));
    // IPv4 first by default, IPv6 after.
    assert_eq!(
        expect_connect(&plan),
        ("mx1.example".into(), ip("192.0.2.1"))
    );
    plan.on_connect_failed().unwrap();
    assert_eq!(
        expect_connect(&plan),
        ("mx1.example".into(), ip("192.0.2.2"))
    );
    plan.on_connect_failed().unwrap();
    assert_eq!(
        expect_connect(&plan),
        ("mx1.example".into(), ip("2001:db8::1"))
    );
    plan.on_connect_failed().unwrap();

    // Out of addresses: the next host, looked up only now.
    assert_eq!(expect_resolve(&plan), "mx2.example");
    plan.resolved([ip("192.0.2.20"), ip("192.0.2.21")]).unwrap();
    assert_eq!(
        expect_connect(&plan),
        ("mx2.example".into(), ip("192.0.2.20"))
    );
    // A 4xx skips the host's other addresses.
    plan.on_temporary_failure().unwrap();
    assert!(plan.is_exhausted());
    assert_eq!(plan.next_target(), Next::Exhausted(Severity::Temporary));
    assert_eq!(plan.on_connect_failed(), Err(PlanUsageError::NotConnecting));
    assert_eq!(
        plan.resolution_failed(Severity::Permanent),
        Err(PlanUsageError::NotResolving)
    );
}

#[test]
fn plan_4xx_moves_to_next_host() {
    let hosts = vec![
        mxh("mx1.example", 10).with_hints([ip("192.0.2.1"), ip("192.0.2.2")]),
        mxh("mx2.example", 20).with_hints([ip("192.0.2.3")]),
    ];
    let mut plan = HostPlan::new(hosts, &PlanConfig::default()).unwrap();
    assert_eq!(
        expect_connect(&plan),
        ("mx1.example".into(), ip("192.0.2.1"))
    );
    plan.on_temporary_failure().unwrap();
    assert_eq!(
        expect_connect(&plan),
        ("mx2.example".into(), ip("192.0.2.3"))
    );
    plan.on_connect_failed().unwrap();
    assert_eq!(plan.next_target(), Next::Exhausted(Severity::Temporary));
}

#[test]
fn plan_exhaustion_severity() {
    // Nothing to connect to anywhere, nothing temporary: permanent.
    let hosts = vec![
        mxh("a.example", 10),
        mxh("b.example", 20),
        mxh("c.example", 30),
    ];
    let mut plan = HostPlan::new(hosts.clone(), &PlanConfig::default()).unwrap();
    plan.resolution_failed(Severity::Permanent).unwrap();
    plan.resolved([]).unwrap(); // NODATA on both families
    plan.resolved([ip("0.0.0.0"), ip("224.0.0.1"), ip("::")])
        .unwrap(); // unusable
    assert_eq!(plan.next_target(), Next::Exhausted(Severity::Permanent));

    // One lookup failing temporarily makes the whole temporary.
    let mut plan = HostPlan::new(hosts, &PlanConfig::default()).unwrap();
    plan.resolution_failed(Severity::Permanent).unwrap();
    plan.resolution_failed(Severity::Temporary).unwrap();
    plan.resolution_failed(Severity::Permanent).unwrap();
    assert_eq!(plan.next_target(), Next::Exhausted(Severity::Temporary));
}

#[test]
fn plan_family_preference_and_cap() {
    let addresses = [
        ip("2001:db8::1"),
        ip("192.0.2.1"),
        ip("2001:db8::2"),
        ip("192.0.2.2"),
        ip("192.0.2.1"),
        ip("255.255.255.255"),
    ];
    let walk = |config: &PlanConfig| {
        let mut plan = HostPlan::new(vec![mxh("mx.example", 0)], config).unwrap();
        plan.resolved(addresses).unwrap();
        let mut seen = Vec::new();
        while let Next::Connect(target) = plan.next_target() {
            seen.push(target.ip());
            plan.on_connect_failed().unwrap();
        }
        seen
    };
    let mut config = PlanConfig::default();
    assert_eq!(
        walk(&config),
        [
            ip("192.0.2.1"),
            ip("192.0.2.2"),
            ip("2001:db8::1"),
            ip("2001:db8::2")
        ]
    );
    config.family = FamilyPreference::Ipv6First;
    assert_eq!(
        walk(&config),
        [
            ip("2001:db8::1"),
            ip("2001:db8::2"),
            ip("192.0.2.1"),
            ip("192.0.2.2")
        ]
    );
    config.family = FamilyPreference::Ipv6Only;
    assert_eq!(walk(&config), [ip("2001:db8::1"), ip("2001:db8::2")]);
    config.family = FamilyPreference::Ipv4Only;
    assert_eq!(walk(&config), [ip("192.0.2.1"), ip("192.0.2.2")]);
    config.family = FamilyPreference::Ipv4First;
    config.max_addresses_per_host = 3;
    assert_eq!(
        walk(&config),
        [ip("192.0.2.1"), ip("192.0.2.2"), ip("2001:db8::1")]
    );
    config.max_addresses_per_host = 0;
    assert_eq!(walk(&config), [ip("192.0.2.1")], "at least one address");
}

#[test]
fn plan_hints() {
    let hosts = vec![mxh("mx.example", 0).with_hints([ip("192.0.2.7")])];
    let plan = HostPlan::new(hosts.clone(), &PlanConfig::default()).unwrap();
    assert_eq!(
        expect_connect(&plan),
        ("mx.example".into(), ip("192.0.2.7"))
    );

    let mut config = PlanConfig::default();
    config.use_hints = false;
    let plan = HostPlan::new(hosts.clone(), &config).unwrap();
    assert_eq!(expect_resolve(&plan), "mx.example");

    // Hints of an excluded family leave the host to be looked up.
    let mut config = PlanConfig::default();
    config.family = FamilyPreference::Ipv6Only;
    let plan = HostPlan::new(hosts, &config).unwrap();
    assert_eq!(expect_resolve(&plan), "mx.example");
}

#[test]
fn plan_from_decoded_answer() {
    let query = MxQuery::new(30, "example.org").unwrap();
    let answer = mx_answer(
        &query,
        vec![
            mx("example.org.", 10, "mx1.example.org."),
            mx("example.org.", 20, "mx2.example.org."),
        ],
        vec![a("mx2.example.org.", "192.0.2.2")],
        0,
    )
    .unwrap();
    let mut plan = HostPlan::new(answer.into_hosts().unwrap(), &PlanConfig::default()).unwrap();
    assert_eq!(expect_resolve(&plan), "mx1.example.org");
    plan.resolution_failed(Severity::Temporary).unwrap();
    assert_eq!(
        expect_connect(&plan),
        ("mx2.example.org".into(), ip("192.0.2.2"))
    );
}

#[test]
fn plan_local_names_rule() {
    let hosts = vec![
        mxh("primary.example", 10),
        mxh("other.example", 10),
        mxh("backup.example", 20),
        mxh("last.example", 30),
    ];
    // We are the backup: only hosts that outrank us remain.
    let mut config = PlanConfig::default();
    config.local_names = vec![host("BACKUP.example")];
    let plan = HostPlan::new(hosts.clone(), &config).unwrap();
    assert_eq!(
        plan.hosts().map(|h| h.name().as_str()).collect::<Vec<_>>(),
        ["primary.example", "other.example"]
    );
    // We are the best MX: mail would loop.
    config.local_names = vec![host("other.example"), host("last.example")];
    assert_eq!(
        HostPlan::new(hosts.clone(), &config),
        Err(PlanError::MailLoop { preference: 10 })
    );
    // A local name that is not listed changes nothing.
    config.local_names = vec![host("elsewhere.example")];
    assert_eq!(HostPlan::new(hosts, &config).unwrap().hosts().count(), 4);
    assert_eq!(
        HostPlan::new(vec![], &PlanConfig::default()),
        Err(PlanError::NoHosts)
    );
}

// ---------------------------------------------------------------- properties

fn valid_answer() -> (MxQuery, Vec<u8>) {
    let query = MxQuery::new(0xABCD, "example.org").unwrap();
    let mut r = respond(&query.to_bytes());
    r.add_answers([
        cname("example.org.", "mail.example.org."),
        mx("mail.example.org.", 10, "mx1.example.org."),
        mx("mail.example.org.", 10, "mx2.example.org."),
    ]);
    r.add_additional(a("mx1.example.org.", "192.0.2.1"));
    r.add_additional(aaaa("mx2.example.org.", "2001:db8::2"));
    (query, wire(&r))
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), seed in any::<u64>()) {
        let mx = MxQuery::new(u16::from_be_bytes([bytes.first().copied().unwrap_or(0), bytes.get(1).copied().unwrap_or(0)]), "example.org").unwrap();
        let _ = mx.decode(&bytes, seed);
        let a = AddressQuery::a(mx.id(), "example.org").unwrap();
        let _ = a.decode(&bytes);
        let _ = parse_tcp_frame(&bytes);
    }

    #[test]
    fn mutated_answers_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>(), seed in any::<u64>()) {
        let (query, mut bytes) = valid_answer();
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        let len = cut.index(bytes.len() + 1);
        if let Ok(MxAnswer::Hosts(hosts)) = query.decode(&bytes[..len], seed) {
            prop_assert!(!hosts.is_empty());
            prop_assert!(hosts.windows(2).all(|w| w[0].preference() <= w[1].preference()));
            let _ = HostPlan::new(hosts, &PlanConfig::default());
        }
    }

    #[test]
    fn tcp_frame_round_trip(message in proptest::collection::vec(any::<u8>(), 0..2000), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
        let mut stream = Vec::new();
        write_tcp_frame(&message, &mut stream).unwrap();
        stream.extend_from_slice(&tail);
        prop_assert_eq!(parse_tcp_frame(&stream), TcpFrame::Complete { message: &message, consumed: message.len() + 2 });
    }

    #[test]
    fn host_names_round_trip(name in "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?){0,5}\\.?") {
        let parsed = HostName::parse(&name).unwrap();
        prop_assert_eq!(parsed.as_str(), name.trim_end_matches('.').to_ascii_lowercase());
        prop_assert!(HostName::parse(parsed.as_str()).unwrap() == parsed);
        // It works as a query name and the answer names it back.
        let query = MxQuery::for_host(1, parsed.clone());
        let answer = query.decode(&wire(&respond(&query.to_bytes())), 0).unwrap();
        prop_assert_eq!(answer, MxAnswer::Implicit(MxHost::new(parsed, 0)));
    }

    #[test]
    fn host_name_parse_never_panics(name in "\\PC{0,80}") {
        if let Ok(parsed) = HostName::parse(&name) {
            prop_assert!(parsed.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
        }
    }
}
