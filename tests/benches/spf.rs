//! SPF evaluation with a warm cache: every answer the evaluator asks for
//! is already known (held in an ordered map, as a resolver's cache would
//! hand it back), so this measures `check_host()` itself — record parsing,
//! macro expansion, the replay of the state machine, address matching —
//! without any DNS wait.
//!
//! The policy is a typical one: an `include` chain of two providers, `mx`
//! with two exchanges, `a:` and `ip4:` terms, and a softfail default:
//!
//! - `pass_last_term`: the client matches the last `ip4`, so every term
//!   is evaluated (3 TXT, 1 MX, 3 A questions);
//! - `softfail`: nothing matches, same questions, `~all`;
//! - `pass_first_include`: the client is in the first provider's block.
//!
//! Run: `cargo bench -p smtp-tests --bench spf`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use criterion::Criterion;
use smtp_proto::dns::{Name, Question, RecordType};
use smtp_proto::spf::{Evaluator, Lookup, SpfConfig, Verdict};

fn cache() -> BTreeMap<Question, Lookup> {
    let name = |s: &str| Name::parse(s).unwrap();
    let txt = |s: &str| Lookup::Txt(vec![s.as_bytes().to_vec()]);
    let a = |ips: &[&str]| Lookup::Addresses(ips.iter().map(|i| i.parse().unwrap()).collect());
    let mut c = BTreeMap::new();
    c.insert(
        Question::txt(name("example.org")),
        txt("v=spf1 include:_spf.mail.example.net mx a:out.example.org ip4:198.51.100.0/24 ~all"),
    );
    c.insert(
        Question::txt(name("_spf.mail.example.net")),
        txt("v=spf1 ip4:203.0.113.0/25 ip6:2001:db8:100::/40 include:_netblocks.example.net -all"),
    );
    c.insert(
        Question::txt(name("_netblocks.example.net")),
        txt("v=spf1 ip4:192.0.2.128/25 ip4:233.252.0.0/24 -all"),
    );
    c.insert(
        Question::new(name("example.org"), RecordType::Mx),
        Lookup::Mx(vec![name("mx1.example.org"), name("mx2.example.org")]),
    );
    c.insert(
        Question::new(name("mx1.example.org"), RecordType::A),
        a(&["192.0.2.25"]),
    );
    c.insert(
        Question::new(name("mx2.example.org"), RecordType::A),
        a(&["192.0.2.26"]),
    );
    c.insert(
        Question::new(name("out.example.org"), RecordType::A),
        a(&["192.0.2.30", "192.0.2.31"]),
    );
    c
}

fn evaluate(cache: &BTreeMap<Question, Lookup>, ip: IpAddr) -> Verdict {
    let mut ev = Evaluator::mail_from(
        SpfConfig::default(),
        ip,
        "mail.example.org",
        "newsletter@example.org",
        SystemTime::UNIX_EPOCH,
    );
    while !ev.is_done() {
        let questions: Vec<Question> = ev.questions().cloned().collect();
        for q in questions {
            let lookup = cache.get(&q).cloned().unwrap_or(Lookup::NxDomain);
            ev.handle_lookup(&q, lookup);
        }
    }
    ev.into_result().verdict()
}

fn main() {
    let cache = cache();
    let cases: [(&str, &str, Verdict); 3] = [
        ("pass_last_term", "198.51.100.20", Verdict::Pass),
        ("softfail", "10.1.1.1", Verdict::SoftFail),
        ("pass_first_include", "203.0.113.9", Verdict::Pass),
    ];
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("spf_warm_cache");
    for (label, ip, want) in cases {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(evaluate(&cache, ip), want, "{label}");
        group.bench_function(label, |b| {
            b.iter(|| evaluate(black_box(&cache), black_box(ip)))
        });
    }
    group.finish();
    c.final_summary();
}
