//! Cross-checks the SPF evaluator against pyspf, the reference
//! implementation, on the same zones: records drawn at random within the
//! RFC 7208 grammar (proptest strategies, a fixed seed and a bounded
//! number of cases), each evaluated for several client addresses by both.
//! pyspf runs once for the whole batch (`tests/peers/pyspf_driver.py`,
//! the interpreter from `$PYSPF_PYTHON`, which `.ci/install-peers` sets).
//!
//! The generator stays away from the places where pyspf deliberately
//! reads the RFC differently, so that every disagreement is a finding:
//! pyspf checks every term's target before evaluating (an `include` of
//! the record's own domain is a `permerror` even after an earlier match),
//! expands `%{p}` while checking syntax (its lookups then count before any
//! mechanism), and counts `redirect=` toward the lookup limit before the
//! mechanisms. So no generated `include` names its own domain, `%{p}` is
//! left to the RFC suite, and the records stay short enough (five terms,
//! one level of `include`) that the limit of 10 is reached only through
//! `include`, where both count alike.
#![cfg(feature = "spf")]

mod spf_zone;

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use smtp_proto::spf::SpfConfig;
use spf_zone::{Rr, Zone, skip, workspace};
use yaml_rust2::YamlLoader;

const SCENARIOS: usize = 150;
const IPS: &[&str] = &[
    "192.0.2.1",
    "192.0.2.10",
    "198.51.100.7",
    "203.0.113.5",
    "2001:db8::1",
    "2001:db8::7",
];

fn python() -> Option<PathBuf> {
    let path = std::env::var_os("PYSPF_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/peers/venv/bin/python"));
    let ok = Command::new(&path)
        .args(["-c", "import spf, dns.resolver"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(path)
    } else {
        skip(
            "pyspf",
            &format!(
                "is not importable by {} (run .ci/install-peers)",
                path.display()
            ),
        )
    }
}

/// The zone every scenario shares (its records named `(type, value)`).
fn base_zone() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("a.test", "A", "192.0.2.1"),
        ("a.test", "AAAA", "2001:db8::1"),
        ("mx.test", "MX", "mx1.a.test"),
        ("mx.test", "MX", "mx2.test"),
        ("mx1.a.test", "A", "192.0.2.10"),
        ("mx2.test", "A", "198.51.100.7"),
        ("mx2.test", "AAAA", "2001:db8::7"),
        ("nodata.test", "MX", "mx1.a.test"),
        ("both.test", "A", "192.0.2.10"),
        ("both.test", "TXT", "v=spf1 ip4:192.0.2.0/28 -all"),
        ("user.lp.test", "A", "127.0.0.2"),
        ("1.2.0.192.rev.test", "A", "127.0.0.2"),
        ("1.2.0.192.in-addr.arpa", "PTR", "a.test"),
        ("1.2.0.192.in-addr.arpa", "PTR", "mx1.a.test"),
        ("10.2.0.192.in-addr.arpa", "PTR", "mx1.a.test"),
        ("exp.test", "TXT", "denied %{i} for %{d} by %{o} (%{l})"),
        ("h.test", "A", "192.0.2.1"),
    ]
}

fn qualifier() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "+", "-", "~", "?"])
}

fn cidr() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "/24", "/32", "//64", "/16//48", "/0"])
}

/// A term of a record at `TOP` (or, with `inner`, at `INC`).
fn term(inner: bool) -> impl Strategy<Value = String> {
    let target = prop::sample::select(vec![
        "a.test",
        "mx.test",
        "void.test",
        "nodata.test",
        "both.test",
        "INC",
        "%{d}",
        "%{o}",
        "%{l}.lp.test",
        "%{ir}.rev.test",
        "%{d2}",
        "%{h}",
    ]);
    let include = if inner {
        prop::sample::select(vec!["a.test", "void.test", "both.test"])
    } else {
        prop::sample::select(vec!["INC", "void.test", "both.test", "a.test"])
    };
    let mechanism = prop_oneof![
        Just("all".to_owned()),
        (prop::option::of(target.clone()), cidr())
            .prop_map(|(t, c)| format!("a{}{c}", t.map(|t| format!(":{t}")).unwrap_or_default())),
        (prop::option::of(target.clone()), cidr())
            .prop_map(|(t, c)| format!("mx{}{c}", t.map(|t| format!(":{t}")).unwrap_or_default())),
        prop::option::of(target.clone())
            .prop_map(|t| format!("ptr{}", t.map(|t| format!(":{t}")).unwrap_or_default())),
        prop::sample::select(vec![
            "192.0.2.0/24",
            "192.0.2.1",
            "198.51.100.0/22",
            "10.0.0.0/8",
            "0.0.0.0/0"
        ])
        .prop_map(|n| format!("ip4:{n}")),
        prop::sample::select(vec!["2001:db8::/32", "2001:db8::1", "::/0"])
            .prop_map(|n| format!("ip6:{n}")),
        target.prop_map(|t| format!("exists:{t}")),
        include.prop_map(|t| format!("include:{t}")),
        // Syntax errors, to compare what each refuses.
        prop::sample::select(vec!["bogus", "a:", "ip4:192.0.2", "a/33", "mx:foo", "%{d}"])
            .prop_map(str::to_owned),
    ];
    (qualifier(), mechanism).prop_map(|(q, m)| format!("{q}{m}"))
}

fn record(inner: bool) -> impl Strategy<Value = String> {
    let redirect = if inner {
        prop::sample::select(vec!["both.test", "void.test"])
    } else {
        prop::sample::select(vec!["INC", "both.test", "void.test"])
    };
    (
        prop::collection::vec(term(inner), 0..5),
        prop::option::weighted(0.3, redirect),
        prop::option::weighted(0.5, prop::sample::select(vec!["exp.test", "%{d}.exp.test"])),
    )
        .prop_map(|(terms, redirect, exp)| {
            let mut r = "v=spf1".to_owned();
            for t in terms {
                write!(r, " {t}").unwrap();
            }
            if let Some(t) = redirect {
                write!(r, " redirect={t}").unwrap();
            }
            if let Some(t) = exp {
                write!(r, " exp={t}").unwrap();
            }
            r
        })
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn random_records_agree_with_pyspf() {
    let Some(python) = python() else { return };
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = (record(false), record(true));
    let mut zone_rows: Vec<(String, String, String)> = base_zone()
        .into_iter()
        .map(|(n, t, v)| (n.to_owned(), t.to_owned(), v.to_owned()))
        .collect();
    let mut scenarios = Vec::new();
    for i in 0..SCENARIOS {
        let (top, inc) = strategy.new_tree(&mut runner).expect("strategy").current();
        let top_name = format!("top{i}.test");
        let inc_name = format!("inc{i}.test");
        let top = top.replace("INC", &inc_name);
        let inc = inc.replace("INC", &inc_name);
        zone_rows.push((top_name.clone(), "TXT".into(), top.clone()));
        zone_rows.push((inc_name, "TXT".into(), inc.clone()));
        scenarios.push((top_name, top, inc));
    }
    // The zone, for both.
    let mut zone = Zone::default();
    for (name, t, v) in &zone_rows {
        let rr = match t.as_str() {
            "A" => Rr::A(v.parse().unwrap()),
            "AAAA" => Rr::Aaaa(v.parse().unwrap()),
            "MX" => Rr::Mx(v.clone()),
            "PTR" => Rr::Ptr(v.clone()),
            _ => Rr::Txt(v.as_bytes().to_vec()),
        };
        zone.names.entry(name.clone()).or_default().push(rr);
    }
    let mut input = String::from("{\"zone\": {");
    for (i, (name, rrs)) in zone_rows
        .iter()
        .fold(
            std::collections::BTreeMap::<&str, Vec<String>>::new(),
            |mut m, (n, t, v)| {
                m.entry(n)
                    .or_default()
                    .push(format!("[{}, {}]", json_str(t), json_str(v)));
                m
            },
        )
        .iter()
        .enumerate()
    {
        if i > 0 {
            input.push_str(", ");
        }
        write!(input, "{}: [{}]", json_str(name), rrs.join(", ")).unwrap();
    }
    input.push_str("}, \"cases\": [");
    let mut cases = Vec::new();
    for (top_name, _, _) in &scenarios {
        for ip in IPS {
            if !cases.is_empty() {
                input.push_str(", ");
            }
            let sender = format!("user@{top_name}");
            write!(
                input,
                "{{\"ip\": {}, \"sender\": {}, \"helo\": \"h.test\"}}",
                json_str(ip),
                json_str(&sender)
            )
            .unwrap();
            cases.push((ip.parse::<IpAddr>().unwrap(), sender));
        }
    }
    input.push_str("]}");

    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/pyspf_driver.py");
    let mut child = Command::new(&python)
        .arg(&driver)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pyspf");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .expect("feed pyspf");
    let output = child.wait_with_output().expect("pyspf output");
    assert!(
        output.status.success(),
        "pyspf driver failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), cases.len(), "one line per case");

    let mut mismatches = Vec::new();
    let mut verdicts = std::collections::BTreeMap::<String, usize>::new();
    for (n, ((ip, sender), line)) in cases.iter().zip(&lines).enumerate() {
        let parsed = &YamlLoader::load_from_str(line).expect("driver line")[0];
        let theirs = parsed[0].as_str().expect("result");
        let their_exp = parsed[1].as_str();
        let ours = zone.check(SpfConfig::default(), *ip, "h.test", sender);
        *verdicts
            .entry(ours.verdict().as_str().to_owned())
            .or_default() += 1;
        if ours.verdict().as_str() != theirs || ours.explanation() != their_exp {
            let (_, top, inc) = &scenarios[n / IPS.len()];
            mismatches.push(format!(
                "{ip} {sender}: ours {} {:?} ({:?}), pyspf {theirs} {their_exp:?}\n  top: {top}\n  inc: {inc}",
                ours.verdict(),
                ours.explanation(),
                ours.problem(),
            ));
        }
    }
    eprintln!(
        "pyspf cross-check: {} cases, our verdicts {verdicts:?}",
        cases.len()
    );
    // Every result kind but temperror (no timeouts in these zones) shows up.
    for v in ["pass", "fail", "softfail", "neutral", "permerror", "none"] {
        if v != "none" {
            assert!(verdicts.contains_key(v), "no {v} among {verdicts:?}");
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases disagree:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}
