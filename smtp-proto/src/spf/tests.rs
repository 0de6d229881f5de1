//! Evaluator tests against small zones held in memory: the limits as
//! configured, the DNS answer conversion, the identities.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use super::*;
use crate::dns::{
    Answer, Exchange, Failure, MxRecord, Name, Negative, Question, RecordData, RecordType, Records,
    Txt,
};

type ZoneMap = BTreeMap<(String, RecordType), Lookup>;

fn zone(entries: &[(&str, RecordType, Lookup)]) -> ZoneMap {
    entries
        .iter()
        .map(|(n, t, l)| ((n.to_string(), *t), l.clone()))
        .collect()
}

fn txt(s: &str) -> Lookup {
    Lookup::Txt(vec![s.as_bytes().to_vec()])
}

fn a(ips: &[&str]) -> Lookup {
    Lookup::Addresses(ips.iter().map(|i| i.parse().unwrap()).collect())
}

/// Runs `ev` against `zone` (anything missing is NXDOMAIN); returns the
/// result and every question asked.
fn run(zone: &ZoneMap, mut ev: Evaluator) -> (SpfResult, Vec<Question>) {
    let mut asked = Vec::new();
    while !ev.is_done() {
        let qs: Vec<Question> = ev.questions().cloned().collect();
        assert!(!qs.is_empty());
        for q in qs {
            let l = zone
                .get(&(q.name().as_str().to_owned(), q.record_type()))
                .cloned()
                .unwrap_or(Lookup::NxDomain);
            assert!(ev.handle_lookup(&q, l));
            asked.push(q);
        }
    }
    (ev.into_result(), asked)
}

fn mail_from(config: SpfConfig, ip: &str, sender: &str) -> Evaluator {
    Evaluator::mail_from(
        config,
        ip.parse().unwrap(),
        "helo.example.net",
        sender,
        SystemTime::UNIX_EPOCH,
    )
}

const TXT: RecordType = RecordType::Txt;
const A: RecordType = RecordType::A;

#[test]
fn void_lookup_limit_is_configurable() {
    let z = zone(&[(
        "example.org",
        TXT,
        txt("v=spf1 a:v1.example.org a:v2.example.org a:v3.example.org +all"),
    )]);
    let (r, _) = run(
        &z,
        mail_from(SpfConfig::default(), "192.0.2.1", "u@example.org"),
    );
    assert_eq!(r.verdict(), Verdict::PermError);
    assert_eq!(r.problem(), Some(&Problem::TooManyVoidLookups(2)));
    let config = SpfConfig {
        max_void_lookups: 3,
        ..SpfConfig::default()
    };
    let (r, _) = run(&z, mail_from(config, "192.0.2.1", "u@example.org"));
    assert_eq!(r.verdict(), Verdict::Pass);
}

#[test]
fn dns_term_limit_is_configurable() {
    // Eleven `a` terms that do not match (ip4 terms cost nothing).
    let record = format!("v=spf1 {}-all", "ip4:10.0.0.1 a:h.example.org ".repeat(11));
    let z = zone(&[
        ("example.org", TXT, txt(&record)),
        ("h.example.org", A, a(&["10.9.9.9"])),
    ]);
    let (r, asked) = run(
        &z,
        mail_from(SpfConfig::default(), "192.0.2.1", "u@example.org"),
    );
    assert_eq!(r.verdict(), Verdict::PermError);
    assert_eq!(r.problem(), Some(&Problem::TooManyDnsTerms(10)));
    // The same name is asked once: answers are kept for the evaluation.
    assert_eq!(asked.len(), 2);
    let config = SpfConfig {
        max_dns_terms: 11,
        ..SpfConfig::default()
    };
    let (r, _) = run(&z, mail_from(config, "192.0.2.1", "u@example.org"));
    assert_eq!(r.verdict(), Verdict::Fail);
    let config = SpfConfig {
        max_dns_terms: usize::MAX,
        ..SpfConfig::default()
    };
    let ev = mail_from(config, "192.0.2.1", "u@example.org");
    assert_eq!(ev.config().max_dns_terms, MAX_DNS_TERMS_CEILING);
}

#[test]
fn mx_name_limit() {
    let names: Vec<Name> = (0..11)
        .map(|i| Name::parse(&format!("mx{i}.example.org")).unwrap())
        .collect();
    let mut z = zone(&[("example.org", TXT, txt("v=spf1 mx -all"))]);
    z.insert(
        ("example.org".into(), RecordType::Mx),
        Lookup::Mx(names.clone()),
    );
    for n in &names {
        z.insert((n.as_str().into(), A), a(&["192.0.2.1"]));
    }
    let (r, _) = run(
        &z,
        mail_from(SpfConfig::default(), "192.0.2.1", "u@example.org"),
    );
    assert_eq!(r.problem(), Some(&Problem::TooManyMxNames(10)));
    let config = SpfConfig {
        max_names_per_lookup: 11,
        ..SpfConfig::default()
    };
    let (r, asked) = run(&z, mail_from(config, "192.0.2.1", "u@example.org"));
    assert_eq!(r.verdict(), Verdict::Pass);
    // The TXT, the MX, then the eleven address questions at once.
    assert_eq!(asked.len(), 13);
}

#[test]
fn answers_from_the_resolver() {
    let mut ev = mail_from(SpfConfig::default(), "192.0.2.1", "u@example.org");
    let q: Vec<Question> = ev.questions().cloned().collect();
    let name = q[0].name().clone();
    let other = Question::txt(Name::parse("other.example").unwrap());
    assert!(
        !ev.handle_answer(&other, &Err(Failure::Timeout)),
        "not asked"
    );
    let records = Records {
        name: name.clone(),
        ttl: 300,
        data: RecordData::Txt(vec![
            Txt::new(vec![b"v=DKIM1; p=".to_vec().into_boxed_slice()]),
            Txt::new(vec![
                b"v=spf1 ".to_vec().into_boxed_slice(),
                b"mx -all".to_vec().into_boxed_slice(),
            ]),
        ]),
    };
    assert!(ev.handle_answer(&q[0], &Ok(Answer::Records(records))));
    assert!(!ev.handle_answer(&q[0], &Err(Failure::Timeout)), "twice");
    let q: Vec<Question> = ev.questions().cloned().collect();
    assert_eq!(q, [Question::new(name.clone(), RecordType::Mx)]);
    let mx = Records {
        name,
        ttl: 300,
        data: RecordData::Mx(vec![
            MxRecord {
                preference: 0,
                exchange: Exchange::Root,
                addresses: vec![],
            },
            MxRecord {
                preference: 10,
                exchange: Exchange::Name(Name::parse("mx.example.org").unwrap()),
                addresses: vec![],
            },
        ]),
    };
    assert!(ev.handle_answer(&q[0], &Ok(Answer::Records(mx))));
    let q: Vec<Question> = ev.questions().cloned().collect();
    assert_eq!(
        q,
        [Question::new(Name::parse("mx.example.org").unwrap(), A)]
    );
    let negative = Negative {
        name: q[0].name().clone(),
        ttl: None,
    };
    assert!(ev.handle_answer(&q[0], &Ok(Answer::NoData(negative))));
    let r = ev.into_result();
    assert_eq!(r.verdict(), Verdict::Fail);

    let mut ev = mail_from(SpfConfig::default(), "192.0.2.1", "u@example.org");
    let q: Vec<Question> = ev.questions().cloned().collect();
    assert!(ev.handle_answer(&q[0], &Err(Failure::Timeout)));
    let r = ev.into_result();
    assert_eq!(r.verdict(), Verdict::TempError);
    assert!(matches!(
        r.problem(),
        Some(Problem::Dns(_, Failure::Timeout))
    ));
}

#[test]
fn unfinished_is_temperror() {
    let ev = mail_from(SpfConfig::default(), "192.0.2.1", "u@example.org");
    assert!(!ev.is_done());
    let r = ev.into_result();
    assert_eq!(r.verdict(), Verdict::TempError);
    assert_eq!(r.problem(), Some(&Problem::NoAnswer));
}

#[test]
fn identities_and_properties() {
    let z = zone(&[
        ("example.org", TXT, txt("v=spf1 ip4:192.0.2.0/24 -all")),
        ("helo.example.net", TXT, txt("v=spf1 -all")),
    ]);
    let (r, _) = run(
        &z,
        mail_from(SpfConfig::default(), "192.0.2.1", "Alice@example.org"),
    );
    assert_eq!(
        (r.verdict(), r.identity()),
        (Verdict::Pass, Identity::MailFrom)
    );
    assert_eq!(r.method_result(), "pass");
    assert_eq!(
        r.properties(),
        [("smtp.mailfrom", "Alice@example.org".to_owned())]
    );
    // The null reverse-path checks the HELO identity (RFC 7208 §2.4).
    let (r, _) = run(&z, mail_from(SpfConfig::default(), "192.0.2.1", ""));
    assert_eq!((r.verdict(), r.identity()), (Verdict::Fail, Identity::Helo));
    assert_eq!(r.sender(), "postmaster@helo.example.net");
    assert_eq!(
        r.properties(),
        [("smtp.helo", "helo.example.net".to_owned())]
    );
    // An IPv4-mapped IPv6 client is its IPv4 address.
    let (r, _) = run(
        &z,
        mail_from(SpfConfig::default(), "::ffff:192.0.2.1", "a@example.org"),
    );
    assert_eq!(r.verdict(), Verdict::Pass);
    // No domain to check.
    let (r, asked) = run(
        &z,
        mail_from(SpfConfig::default(), "192.0.2.1", "a@[192.0.2.1]"),
    );
    assert_eq!((r.verdict(), asked.len()), (Verdict::None, 0));
}

#[test]
fn explanation_comes_from_the_deciding_record() {
    let z = zone(&[
        (
            "example.org",
            TXT,
            txt("v=spf1 include:inc.example.org redirect=red.example.org exp=top.example.org"),
        ),
        (
            "inc.example.org",
            TXT,
            txt("v=spf1 -all exp=inc.example.org"),
        ),
        ("red.example.org", TXT, txt("v=spf1 -all exp=e.%{d}")),
        (
            "e.red.example.org",
            TXT,
            txt("%{i} is not %{d}'s, see %{r} at %{t}"),
        ),
        ("top.example.org", TXT, txt("top")),
    ]);
    let config = SpfConfig {
        receiver: "mx.receiver.example".into(),
        ..SpfConfig::default()
    };
    let ev = Evaluator::mail_from(
        config,
        "192.0.2.1".parse::<IpAddr>().unwrap(),
        "h.example",
        "u@example.org",
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(42),
    );
    let (r, _) = run(&z, ev);
    assert_eq!(r.verdict(), Verdict::Fail);
    assert_eq!(
        r.explanation(),
        Some("192.0.2.1 is not red.example.org's, see mx.receiver.example at 42")
    );
}
