//! The SPF evaluator against arbitrary DNS answers: no panic, it always
//! finishes, and the processing limits hold — the distinct questions of
//! one evaluation stay within what 10 DNS-querying terms (an MX or PTR
//! question and 10 address questions each), `%{p}` and the explanation
//! can ask.
//!
//! Input: byte 0 picks the client address and the identity; then a
//! stream the answers are cut from. For each question one byte picks the
//! kind of answer (TXT from the next length-prefixed bytes, addresses,
//! MX or PTR names from a small set, NODATA, NXDOMAIN, a failure).
#![no_main]

use std::net::IpAddr;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use smtp_proto::dns::{Failure, Name, Question};
use smtp_proto::spf::{Evaluator, Lookup, SpfConfig};

/// 1 top-level TXT, 10 terms of at most 11 questions, `%{p}` (11), the
/// explanation's TXT.
const MAX_QUESTIONS: usize = 1 + 10 * 11 + 11 + 1;

const NAMES: &[&str] = &[
    "example.org",
    "mx.example.org",
    "a.example.org",
    "sub.example.org",
    "other.example",
    "4.3.2.1.in-addr.arpa",
];
const IPS: &[&str] = &["192.0.2.3", "2001:db8::3", "198.51.100.1", "192.0.2.4"];

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn bytes(&mut self) -> &[u8] {
        let len = usize::from(self.byte()).min(self.0.len());
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        head
    }

    fn names(&mut self) -> Vec<Name> {
        let n = usize::from(self.byte() % 14);
        (0..n)
            .map(|_| Name::parse(NAMES[usize::from(self.byte()) % NAMES.len()]).unwrap())
            .collect()
    }

    fn lookup(&mut self) -> Lookup {
        match self.byte() % 8 {
            0 | 1 => {
                let n = usize::from(self.byte() % 3) + 1;
                Lookup::Txt((0..n).map(|_| self.bytes().to_vec()).collect())
            }
            2 => {
                let n = usize::from(self.byte() % 4);
                Lookup::Addresses(
                    (0..n)
                        .map(|_| IPS[usize::from(self.byte()) % IPS.len()].parse().unwrap())
                        .collect(),
                )
            }
            3 => Lookup::Mx(self.names()),
            4 => Lookup::Ptr(self.names()),
            5 => Lookup::NoData,
            6 => Lookup::NxDomain,
            _ => Lookup::Failed(Failure::Timeout),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.byte();
    let ip: IpAddr = IPS[usize::from(flags) % IPS.len()].parse().unwrap();
    let now = SystemTime::UNIX_EPOCH;
    let mut ev = if flags & 0x10 == 0 {
        Evaluator::mail_from(SpfConfig::default(), ip, "mx.example.org", "user@example.org", now)
    } else {
        Evaluator::helo(SpfConfig::default(), ip, "mx.example.org", now)
    };
    let mut asked = std::collections::BTreeSet::new();
    let mut rounds = 0;
    while !ev.is_done() {
        rounds += 1;
        assert!(rounds <= MAX_QUESTIONS, "too many rounds");
        let questions: Vec<Question> = ev.questions().cloned().collect();
        assert!(!questions.is_empty(), "waiting without a question");
        for q in questions {
            assert!(asked.insert(q.clone()), "asked twice: {q}");
            let lookup = input.lookup();
            assert!(ev.handle_lookup(&q, lookup));
        }
        assert!(asked.len() <= MAX_QUESTIONS, "{} questions", asked.len());
    }
    let result = ev.into_result();
    let _ = (result.method_result(), result.properties(), result.explanation());
});
