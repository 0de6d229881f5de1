//! Cross-checks DMARC record parsing and the organizational domain against
//! checkdmarc (PyPI), on records drawn at random from the tags both read
//! alike (proptest strategies, fixed seed, bounded count) and on a list of
//! domains. checkdmarc runs once for the batch
//! (`tests/peers/dmarc_driver.py`, with DNS stubbed out), through the
//! interpreter in `$CHECKDMARC_PYTHON` (the venv `.ci/install-peers` fills).
//!
//! checkdmarc 6 reads DMARCbis (RFC 9989) where that differs from RFC
//! 7489, which this crate implements; the generator leaves those places
//! out, so that every disagreement is a finding: a record without `p=`
//! (RFC 7489: invalid unless it has `rua=`; DMARCbis: `p=none`), an
//! invalid `adkim`/`aspf`/`fo` combination (DMARCbis: the default is
//! used; here: an invalid record), `pct`/`ri`/`rf` (removed in
//! DMARCbis, so their values go unchecked there), and a report URI's
//! size limit with an unknown unit (`!10x`: obsolete in DMARCbis and
//! ignored there; outside RFC 7489's `dmarc-uri` grammar here). Empty
//! tags (`;;`) are in the generator: both refuse them.
#![cfg(feature = "dmarc")]

mod spf_zone;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use smtp_proto::dmarc::{Alignment, Record, organizational_domain};
use smtp_proto::dns::Name;
use spf_zone::{skip, workspace};
use yaml_rust2::{Yaml, YamlLoader};

const RECORDS: usize = 400;

const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.com",
    "a.b.c.example.org",
    "example.co.uk",
    "a.b.example.co.uk",
    "co.uk",
    "com",
    "www.bbc.co.uk",
    "example.com.au",
    "x.y.example.com.au",
    "example.ac.jp",
    "mail.example.kyoto.jp",
    "example.de",
    "sub.example.fr",
    "example.gov.uk",
    "foo.example.net",
    "example.org.br",
    "example.xn--p1ai",
    "deep.sub.example.io",
    "example.blogspot.com",
];

fn python() -> Option<PathBuf> {
    let path = std::env::var_os("CHECKDMARC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/peers/venv/bin/python"));
    let ok = Command::new(&path)
        .args(["-c", "import checkdmarc.dmarc"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(path)
    } else {
        skip(
            "checkdmarc",
            &format!(
                "is not importable by {} (run .ci/install-peers)",
                path.display()
            ),
        )
    }
}

fn policy() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "none",
        "quarantine",
        "reject",
        "Reject",
        "NONE",
        "bogus",
        "",
    ])
}

fn record() -> impl Strategy<Value = String> {
    let optional = prop::collection::vec(
        prop_oneof![
            policy().prop_map(|p| format!("sp={p}")),
            policy().prop_map(|p| format!("np={p}")),
            prop::sample::select(vec!["r", "s", "R", "S"]).prop_map(|a| format!("adkim={a}")),
            prop::sample::select(vec!["r", "s"]).prop_map(|a| format!("aspf={a}")),
            prop::sample::select(vec![
                "mailto:dmarc@example.org",
                "mailto:dmarc@example.org,mailto:agg@example.net",
                "mailto:dmarc@example.org!10m",
                "nouri",
                "mailto:dmarc@example.org;",
            ])
            .prop_map(|u| format!("rua={u}")),
            prop::sample::select(vec!["mailto:f@example.org", "bad uri"])
                .prop_map(|u| format!("ruf={u}")),
            prop::sample::select(vec!["0", "1", "d", "s", "1:d", "d:s", "1:d:s", "2", "x"])
                .prop_map(|f| format!("fo={f}")),
            prop::sample::select(vec!["x=1", "foo=bar", "p=none"]).prop_map(str::to_owned),
        ],
        0..5,
    );
    (
        policy(),
        optional,
        prop::sample::select(vec!["; ", ";", " ; "]),
        any::<bool>(),
    )
        .prop_map(|(p, rest, sep, trailing)| {
            let mut r = format!("v=DMARC1{sep}p={p}");
            for t in rest {
                write!(r, "{sep}{t}").unwrap();
            }
            if trailing {
                r.push(';');
            }
            r
        })
}

fn json_str(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// Our reading in checkdmarc's terms (`None`: refused).
fn ours(record: &str) -> Option<[String; 6]> {
    let r = Record::parse(record.as_bytes()).ok()?;
    let sp = r.subdomain_policy.unwrap_or(r.policy);
    let np = r
        .nonexistent_policy
        .or(r.subdomain_policy)
        .unwrap_or(r.policy);
    let mode = |a: Alignment| if a == Alignment::Strict { "s" } else { "r" };
    let rua: Vec<String> = r
        .rua
        .iter()
        .map(|u| u.uri.strip_prefix("mailto:").unwrap_or(&u.uri).to_owned())
        .collect();
    Some([
        r.policy.as_str().to_owned(),
        sp.as_str().to_owned(),
        np.as_str().to_owned(),
        mode(r.adkim).to_owned(),
        mode(r.aspf).to_owned(),
        rua.join(","),
    ])
}

fn theirs(line: &Yaml) -> Option<[String; 6]> {
    if line.is_null() {
        return None;
    }
    let s = |k: &str| line[k].as_str().unwrap_or("?").to_owned();
    let rua: Vec<&str> = line["rua"]
        .as_vec()
        .map(|v| v.iter().filter_map(Yaml::as_str).collect())
        .unwrap_or_default();
    Some([
        s("p"),
        s("sp"),
        s("np"),
        s("adkim"),
        s("aspf"),
        rua.join(","),
    ])
}

#[test]
fn records_and_organizational_domains_agree_with_checkdmarc() {
    let Some(python) = python() else { return };
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = record();
    let records: Vec<String> = (0..RECORDS)
        .map(|_| strategy.new_tree(&mut runner).expect("strategy").current())
        .collect();
    let input = format!(
        "{{\"records\": [{}], \"domains\": [{}]}}",
        records
            .iter()
            .map(|r| json_str(r))
            .collect::<Vec<_>>()
            .join(", "),
        DOMAINS
            .iter()
            .map(|d| json_str(d))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/dmarc_driver.py");
    let mut child = Command::new(&python)
        .arg(&driver)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start checkdmarc");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .expect("feed checkdmarc");
    let output = child.wait_with_output().expect("checkdmarc output");
    assert!(
        output.status.success(),
        "driver failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<Yaml> = stdout
        .lines()
        .map(|l| YamlLoader::load_from_str(l).expect("json line").remove(0))
        .collect();
    assert_eq!(lines.len(), RECORDS + DOMAINS.len());

    let mut mismatches = Vec::new();
    let mut accepted = 0;
    for (record, line) in records.iter().zip(&lines) {
        let (a, b) = (ours(record), theirs(line));
        accepted += usize::from(a.is_some());
        if a != b {
            mismatches.push(format!("{record:?}: ours {a:?}, checkdmarc {b:?}"));
        }
    }
    for (domain, line) in DOMAINS.iter().zip(&lines[RECORDS..]) {
        let ours = organizational_domain(&Name::parse(domain).unwrap());
        let theirs = line.as_str().unwrap_or("?");
        if ours.as_str() != theirs {
            mismatches.push(format!("{domain}: ours {ours}, checkdmarc {theirs}"));
        }
    }
    eprintln!(
        "checkdmarc cross-check: {RECORDS} records ({accepted} valid), {} domains",
        DOMAINS.len()
    );
    assert!(
        accepted > RECORDS / 5 && accepted < RECORDS * 4 / 5,
        "{accepted} valid"
    );
    assert!(
        mismatches.is_empty(),
        "{} disagreements:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
