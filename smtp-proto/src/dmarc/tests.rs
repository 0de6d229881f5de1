//! Evaluator scenarios against zones held in memory.

use std::collections::BTreeMap;

use super::*;
use crate::dns::{Failure, Name, Question, RecordType};
use crate::spf::Lookup;

/// Answers from a map of (name, type); anything else is NXDOMAIN.
fn run(
    zone: &[(&str, RecordType, Lookup)],
    from: &str,
    auth: Authenticated,
    sample: u8,
) -> (DmarcResult, Vec<Question>) {
    let map: BTreeMap<(String, RecordType), Lookup> = zone
        .iter()
        .map(|(n, t, l)| ((n.to_string(), *t), l.clone()))
        .collect();
    let mut ev = Evaluator::new(Name::parse(from).unwrap(), auth, sample);
    let mut asked = Vec::new();
    for _ in 0..10 {
        let qs: Vec<Question> = ev.questions().cloned().collect();
        if qs.is_empty() {
            break;
        }
        for q in qs {
            let l = map
                .get(&(q.name().as_str().to_owned(), q.record_type()))
                .cloned()
                .unwrap_or(Lookup::NxDomain);
            assert!(ev.handle_lookup(&q, l));
            asked.push(q);
        }
    }
    assert!(ev.is_done());
    (ev.into_result(), asked)
}

fn txt(s: &str) -> Lookup {
    Lookup::Txt(vec![s.as_bytes().to_vec()])
}

fn spf(d: &str) -> Authenticated {
    Authenticated {
        spf_domain: Some(d.into()),
        dkim_domains: vec![],
    }
}

fn dkim(d: &str) -> Authenticated {
    Authenticated {
        spf_domain: None,
        dkim_domains: vec![d.into()],
    }
}

const T: RecordType = RecordType::Txt;

#[test]
fn pass_through_spf_alone_and_dkim_alone() {
    let zone = [("_dmarc.example.org", T, txt("v=DMARC1; p=reject"))];
    let (r, _) = run(&zone, "example.org", spf("bounce.example.org"), 0);
    assert_eq!(r.verdict(), Verdict::Pass);
    assert!(r.spf_aligned());
    assert_eq!(r.disposition(), Policy::None);
    let (r, _) = run(&zone, "example.org", dkim("EXAMPLE.org"), 0);
    assert_eq!(r.verdict(), Verdict::Pass);
    assert_eq!(r.dkim_aligned(), Some("EXAMPLE.org"));
    assert_eq!(r.method_result(), "pass");
    assert_eq!(
        r.properties(),
        [
            ("header.from", "example.org".to_owned()),
            ("policy.dmarc", "none".to_owned())
        ]
    );
}

#[test]
fn strict_alignment() {
    let zone = [(
        "_dmarc.example.org",
        T,
        txt("v=DMARC1; p=reject; aspf=s; adkim=s"),
    )];
    let (r, _) = run(&zone, "example.org", spf("bounce.example.org"), 0);
    assert_eq!(r.verdict(), Verdict::Fail);
    assert_eq!(r.disposition(), Policy::Reject);
    let (r, _) = run(&zone, "example.org", dkim("sub.example.org"), 0);
    assert_eq!(r.verdict(), Verdict::Fail);
    let (r, _) = run(&zone, "example.org", dkim("example.org"), 0);
    assert_eq!(r.verdict(), Verdict::Pass);
}

#[test]
fn failure_under_each_policy() {
    for (p, want) in [
        ("none", Policy::None),
        ("quarantine", Policy::Quarantine),
        ("reject", Policy::Reject),
    ] {
        let zone = [("_dmarc.example.org", T, txt(&format!("v=DMARC1; p={p}")))];
        let (r, _) = run(&zone, "example.org", dkim("evil.example"), 0);
        assert_eq!(r.verdict(), Verdict::Fail);
        assert_eq!(r.policy(), Some(want));
        assert_eq!(r.disposition(), want);
    }
}

#[test]
fn organizational_fallback_and_subdomain_policy() {
    let zone = [(
        "_dmarc.example.co.uk",
        T,
        txt("v=DMARC1; p=reject; sp=quarantine"),
    )];
    let (r, asked) = run(&zone, "a.b.example.co.uk", Authenticated::default(), 0);
    assert_eq!(asked[0].name().as_str(), "_dmarc.a.b.example.co.uk");
    assert_eq!(asked[1].name().as_str(), "_dmarc.example.co.uk");
    assert_eq!(r.verdict(), Verdict::Fail);
    assert_eq!(r.record_domain().unwrap().as_str(), "example.co.uk");
    assert_eq!(r.policy(), Some(Policy::Quarantine));
    // The organizational domain's own mail gets p=.
    let (r, _) = run(&zone, "example.co.uk", Authenticated::default(), 0);
    assert_eq!(r.policy(), Some(Policy::Reject));
    // A public suffix is its own organizational domain: one question.
    let (r, asked) = run(&zone, "co.uk", Authenticated::default(), 0);
    assert_eq!((r.verdict(), asked.len()), (Verdict::None, 1));
}

#[test]
fn nonexistent_subdomain_policy() {
    let zone = [
        (
            "_dmarc.example.org",
            T,
            txt("v=DMARC1; p=none; sp=quarantine; np=reject"),
        ),
        ("real.example.org", RecordType::Mx, Lookup::Mx(vec![])),
    ];
    let (r, asked) = run(&zone, "ghost.example.org", Authenticated::default(), 0);
    assert_eq!(r.policy(), Some(Policy::Reject));
    assert_eq!(asked.len(), 5);
    let (r, _) = run(&zone, "real.example.org", Authenticated::default(), 0);
    assert_eq!(r.policy(), Some(Policy::Quarantine));
    // Passing mail never asks about existence.
    let (r, asked) = run(&zone, "ghost.example.org", dkim("example.org"), 0);
    assert_eq!((r.verdict(), asked.len()), (Verdict::Pass, 2));
}

#[test]
fn pct_sampling() {
    let zone = [("_dmarc.example.org", T, txt("v=DMARC1; p=reject; pct=30"))];
    let (r, _) = run(&zone, "example.org", Authenticated::default(), 29);
    assert_eq!(r.disposition(), Policy::Reject);
    let (r, _) = run(&zone, "example.org", Authenticated::default(), 30);
    assert_eq!(r.disposition(), Policy::Quarantine);
}

#[test]
fn errors_and_none() {
    let zone = [("_dmarc.example.org", T, Lookup::Failed(Failure::Timeout))];
    let (r, _) = run(&zone, "example.org", Authenticated::default(), 0);
    assert_eq!(r.verdict(), Verdict::TempError);
    let zone = [("_dmarc.example.org", T, txt("v=DMARC1; p=bogus"))];
    let (r, _) = run(&zone, "example.org", Authenticated::default(), 0);
    assert_eq!(r.verdict(), Verdict::PermError);
    let two = Lookup::Txt(vec![
        b"v=DMARC1; p=none".to_vec(),
        b"v=DMARC1; p=reject".to_vec(),
    ]);
    let zone = [("_dmarc.example.org", T, two)];
    let (r, _) = run(&zone, "example.org", Authenticated::default(), 0);
    assert_eq!(r.verdict(), Verdict::None);
    let zone = [("_dmarc.example.org", T, txt("v=spf1 -all"))];
    let (r, _) = run(&zone, "example.org", Authenticated::default(), 0);
    assert_eq!(r.verdict(), Verdict::None);
    let r = DmarcResult::from_error(FromError::MultipleFields(2));
    assert_eq!(r.verdict(), Verdict::PermError);
    assert_eq!(r.disposition(), Policy::None);
}

#[test]
fn unfinished_is_temperror() {
    let ev = Evaluator::new(
        Name::parse("example.org").unwrap(),
        Authenticated::default(),
        0,
    );
    assert!(!ev.is_done());
    assert_eq!(ev.into_result().verdict(), Verdict::TempError);
}
