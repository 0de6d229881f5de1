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
//! The peer is Stalwart's mail-auth (`verify_spf`), with its resolver
//! caches filled with the same records before timing. Its TXT cache holds
//! records already parsed (`Txt::Spf`), so its figure has no record
//! parsing in it, where ours parses each record once per evaluation.
//!
//! Run: `cargo bench -p smtp-tests --bench spf`.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use criterion::Criterion;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::spf::Spf;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    DnssecStatus, MX, MessageAuthenticator, Parameters, RecordSet, ResolverCache, SpfResult, Txt,
};
use smtp_proto::dns::{Name, Question, RecordType};
use smtp_proto::spf::{Evaluator, Lookup, SpfConfig, Verdict};

const RECORDS: &[(&str, &str)] = &[
    (
        "example.org",
        "v=spf1 include:_spf.mail.example.net mx a:out.example.org ip4:198.51.100.0/24 ~all",
    ),
    (
        "_spf.mail.example.net",
        "v=spf1 ip4:203.0.113.0/25 ip6:2001:db8:100::/40 include:_netblocks.example.net -all",
    ),
    (
        "_netblocks.example.net",
        "v=spf1 ip4:192.0.2.128/25 ip4:233.252.0.0/24 -all",
    ),
];
const MX_HOSTS: &[&str] = &["mx1.example.org", "mx2.example.org"];
const ADDRESSES: &[(&str, &[&str])] = &[
    ("mx1.example.org", &["192.0.2.25"]),
    ("mx2.example.org", &["192.0.2.26"]),
    ("out.example.org", &["192.0.2.30", "192.0.2.31"]),
];

fn cache() -> BTreeMap<Question, Lookup> {
    let name = |s: &str| Name::parse(s).unwrap();
    let mut c = BTreeMap::new();
    for (domain, record) in RECORDS {
        c.insert(
            Question::txt(name(domain)),
            Lookup::Txt(vec![record.as_bytes().to_vec()]),
        );
    }
    c.insert(
        Question::new(name("example.org"), RecordType::Mx),
        Lookup::Mx(MX_HOSTS.iter().map(|h| name(h)).collect()),
    );
    for (host, ips) in ADDRESSES {
        c.insert(
            Question::new(name(host), RecordType::A),
            Lookup::Addresses(ips.iter().map(|i| i.parse().unwrap()).collect()),
        );
    }
    c
}

/// One of mail-auth's resolver caches, filled before timing.
struct MapCache<V>(RefCell<HashMap<Box<str>, V>>);

impl<V: Clone> MapCache<V> {
    fn new(entries: impl IntoIterator<Item = (String, V)>) -> Self {
        let mut map = HashMap::new();
        for (name, value) in entries {
            // Under both spellings: with and without the root dot.
            map.insert(format!("{name}.").into_boxed_str(), value.clone());
            map.insert(name.into_boxed_str(), value);
        }
        Self(RefCell::new(map))
    }
}

impl<V: Clone> ResolverCache<Box<str>, V> for MapCache<V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.borrow().get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.borrow_mut().remove(name)
    }

    fn insert(&self, key: Box<str>, value: V, _: Instant) {
        self.0.borrow_mut().insert(key, value);
    }
}

fn set<T>(v: Vec<T>) -> RecordSet<T> {
    RecordSet {
        rrset: Arc::from(v),
        dnssec_status: DnssecStatus::default(),
    }
}

struct Peer {
    authenticator: MessageAuthenticator,
    txt: MapCache<Txt>,
    mx: MapCache<RecordSet<MX>>,
    ipv4: MapCache<RecordSet<Ipv4Addr>>,
}

impl Peer {
    fn new() -> Self {
        Self {
            // Never asked: every answer is in the caches.
            authenticator: MessageAuthenticator::new_cloudflare().unwrap(),
            txt: MapCache::new(
                RECORDS
                    .iter()
                    .map(|(d, r)| (d.to_string(), Txt::from(Spf::parse(r.as_bytes()).unwrap()))),
            ),
            mx: MapCache::new([(
                "example.org".to_owned(),
                set(vec![MX {
                    exchanges: MX_HOSTS.iter().map(|h| Box::from(*h)).collect(),
                    preference: 10,
                }]),
            )]),
            ipv4: MapCache::new(ADDRESSES.iter().map(|(host, ips)| {
                (
                    host.to_string(),
                    set(ips.iter().map(|i| i.parse().unwrap()).collect()),
                )
            })),
        }
    }

    fn evaluate(&self, ip: IpAddr) -> SpfResult {
        let params = Parameters::new(SpfParameters::verify_mail_from(
            ip,
            "mail.example.org",
            "receiver.example",
            "newsletter@example.org",
        ))
        .with_txt_cache(&self.txt)
        .with_mx_cache(&self.mx)
        .with_ipv4_cache(&self.ipv4);
        run(self.authenticator.verify_spf(params)).result()
    }
}

/// Runs a future that never waits (every answer is cached).
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("mail-auth went to the network"),
    }
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
    let peer = Peer::new();
    let cases: [(&str, &str, Verdict, SpfResult); 3] = [
        (
            "pass_last_term",
            "198.51.100.20",
            Verdict::Pass,
            SpfResult::Pass,
        ),
        (
            "softfail",
            "10.1.1.1",
            Verdict::SoftFail,
            SpfResult::SoftFail,
        ),
        (
            "pass_first_include",
            "203.0.113.9",
            Verdict::Pass,
            SpfResult::Pass,
        ),
    ];
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("spf_warm_cache");
    for (label, ip, want, peer_want) in cases {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(evaluate(&cache, ip), want, "{label}");
        assert_eq!(peer.evaluate(ip), peer_want, "{label}: mail-auth");
        group.bench_function(format!("{label}/ours"), |b| {
            b.iter(|| evaluate(black_box(&cache), black_box(ip)))
        });
        group.bench_function(format!("{label}/mail-auth"), |b| {
            b.iter(|| peer.evaluate(black_box(ip)))
        });
    }
    group.finish();
    c.final_summary();
}
