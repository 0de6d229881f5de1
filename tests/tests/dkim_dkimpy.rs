//! DKIM against dkimpy, the reference implementation everybody tests
//! against: messages we sign verify with dkimpy, messages dkimpy signs
//! verify with ours, for `rsa-sha256` and `ed25519-sha256` and every
//! canonicalization pair, over messages with folded headers, trailing white
//! space, empty bodies, bodies without a final CRLF, 8-bit content and
//! duplicate headers; tampered messages fail on both sides.
//!
//! dkimpy runs in `tests/dkimpy_helper.py`, one Python process per test
//! (a batch of jobs), answering key lookups from the records it is given.
//! `.ci/install-peers` installs it; without it the tests skip, unless
//! `SMTP_PEERS_REQUIRED=1` (CI), where they fail.

use std::fmt::Write as _;
use std::fs;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use smtp_proto::dkim::{
    Canonicalization, KeyLookup, MessageSigner, Reason, Signer, SigningKey, SystemRandom, Verdict,
    Verifier, VerifierConfig,
};
use smtp_tests::peers::{self, Peer, ScratchDir, run_bounded};

const RSA_PKCS8: &str = include_str!("../../smtp-proto/src/dkim/testdata/rsa2048.pem");
const RSA_PKCS1: &str = include_str!("../../smtp-proto/src/dkim/testdata/rsa2048-pkcs1.pem");
const ED25519: &str = include_str!("../../smtp-proto/src/dkim/testdata/ed25519.pem");

const DOMAIN: &str = "example.org";

const CANONICALIZATIONS: [(Canonicalization, Canonicalization); 4] = [
    (Canonicalization::Simple, Canonicalization::Simple),
    (Canonicalization::Simple, Canonicalization::Relaxed),
    (Canonicalization::Relaxed, Canonicalization::Simple),
    (Canonicalization::Relaxed, Canonicalization::Relaxed),
];

/// The messages of the matrix.
fn messages() -> Vec<(&'static str, Vec<u8>)> {
    let head = "From: Alice <alice@example.org>\r\n\
                To: Bob <bob@example.net>\r\n\
                Subject: Lunch\r\n\
                Date: Tue, 06 Oct 2026 12:00:00 +0000\r\n\
                Message-ID: <1@example.org>\r\n";
    let with = |head: &str, body: &[u8]| [head.as_bytes(), b"\r\n", body].concat();
    let long_line = format!("{}\r\n", "word   \t  ".repeat(90));
    vec![
        ("plain", with(head, b"Shall we meet at noon?\r\n\r\nAlice\r\n")),
        (
            "folded headers",
            with(
                "From: Alice <alice@example.org>\r\n\
                 To: Bob <bob@example.net>,\r\n\
                 \tCarol <carol@example.net>,\r\n   Dave <dave@example.net>\r\n\
                 Subject: A subject that goes on\r\n and on over\r\n\t three lines\r\n\
                 Date: Tue, 06 Oct 2026 12:00:00 +0000\r\n",
                b"Body.\r\n",
            ),
        ),
        (
            "trailing white space",
            with(
                "From: Alice <alice@example.org>  \r\n\
                 To:   Bob <bob@example.net>\t\r\n\
                 Subject:\tLunch  \t \r\n",
                b"line with trailing space   \r\n \t \r\ninner   runs\tof\t\t white  space \r\n\r\n \r\n",
            ),
        ),
        ("empty body", with(head, b"")),
        ("only empty lines", with(head, b"\r\n\r\n\r\n")),
        ("no final CRLF", with(head, b"line one\r\nline two")),
        (
            "8-bit content",
            with(
                "From: =?utf-8?q?Al=C3=AFce?= <alice@example.org>\r\n\
                 Subject: caf\u{e9} \u{2615} f\u{fc}r alle\r\n",
                b"8-bit body: \xc3\xa9t\xc3\xa9, \xe2\x82\xac, raw \xff\x80\xfe\r\n",
            ),
        ),
        (
            "duplicate headers",
            with(
                "Received: from a by b\r\n\
                 Received: from c by d\r\n\
                 From: Alice <alice@example.org>\r\n\
                 To: Bob <bob@example.net>\r\n\
                 To: Carol <carol@example.net>\r\n\
                 Subject: First\r\n\
                 Subject: Second\r\n\
                 X-Dup: 1\r\nX-Dup: 2\r\n",
                b"Two of everything.\r\n",
            ),
        ),
        ("long line", with(head, long_line.as_bytes())),
    ]
}

/// A message changed in its body, and one changed in a signed header
/// (bytes, not text: the 8-bit message is not UTF-8).
fn tampered(message: &[u8]) -> [Vec<u8>; 2] {
    let body = [message, b"tampered\r\n"].concat();
    let replace = |from: &[u8], to: &[u8]| {
        memchr::memmem::find(message, from)
            .map(|at| [&message[..at], to, &message[at + from.len()..]].concat())
    };
    let header = replace(b"Subject: Lunch", b"Subject: Lunch!")
        .or_else(|| replace(b"From: ", b"From: x"))
        .expect("every message has a From field");
    [body, header]
}

fn keys() -> [(&'static str, SigningKey, &'static str); 2] {
    [
        (
            "rsa-sha256",
            SigningKey::from_pem(RSA_PKCS8).unwrap(),
            RSA_PKCS1,
        ),
        (
            "ed25519-sha256",
            SigningKey::from_pem(ED25519).unwrap(),
            ED25519,
        ),
    ]
}

fn selector(algorithm: &str) -> String {
    format!("sel-{}", &algorithm[..algorithm.find('-').unwrap()])
}

/// dkimpy in one Python process per batch of jobs.
struct Dkimpy {
    python: Peer,
    scratch: ScratchDir,
    jobs: String,
}

enum Job {
    Sign {
        key_pem: &'static str,
        selector: String,
        algorithm: &'static str,
        canon: String,
        message: Vec<u8>,
    },
    Verify {
        message: Vec<u8>,
        records: Vec<(String, String)>,
    },
}

impl Dkimpy {
    fn find() -> Option<Self> {
        Some(Self {
            python: peers::dkimpy_python()?,
            scratch: ScratchDir::new("dkimpy").unwrap(),
            jobs: String::new(),
        })
    }

    /// Runs the jobs; one result line per job.
    fn run(&mut self, jobs: &[Job]) -> Vec<String> {
        self.jobs.clear();
        for job in jobs {
            match job {
                Job::Sign {
                    key_pem,
                    selector,
                    algorithm,
                    canon,
                    message,
                } => writeln!(
                    self.jobs,
                    "sign\t{}\t{DOMAIN}\t{selector}\t{algorithm}\t{canon}\t{}",
                    STANDARD.encode(key_pem),
                    STANDARD.encode(message)
                ),
                Job::Verify { message, records } => {
                    write!(self.jobs, "verify\t{}", STANDARD.encode(message)).unwrap();
                    for (name, record) in records {
                        write!(self.jobs, "\t{name}={}", STANDARD.encode(record)).unwrap();
                    }
                    writeln!(self.jobs)
                }
            }
            .unwrap();
        }
        let jobs_path = self.scratch.path().join("jobs");
        let results_path = self.scratch.path().join("results");
        fs::write(&jobs_path, &self.jobs).unwrap();
        let mut cmd = self.python.command();
        cmd.arg(peers::dkimpy_helper())
            .arg("batch")
            .arg(&jobs_path)
            .arg(&results_path);
        let out = run_bounded(&mut cmd, Duration::from_secs(300)).unwrap();
        assert!(
            out.status.success(),
            "dkimpy helper failed: {}",
            out.stderr_text()
        );
        let results: Vec<String> = fs::read_to_string(&results_path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(results.len(), jobs.len(), "one result per job");
        results
    }
}

/// The signature fields of a `field <b64>` result.
fn field(result: &str) -> Vec<u8> {
    let b64 = result
        .strip_prefix("field ")
        .unwrap_or_else(|| panic!("dkimpy did not sign: {result}"));
    STANDARD.decode(b64).unwrap()
}

/// The per-signature verdicts of a `results …` line.
fn dkimpy_verdicts(result: &str) -> Vec<String> {
    result
        .strip_prefix("results ")
        .unwrap_or_else(|| panic!("dkimpy did not verify: {result}"))
        .split('\t')
        .map(str::to_owned)
        .collect()
}

/// Our verification of `message`, keys from `records`.
fn ours(message: &[u8], records: &[(String, String)]) -> Vec<(Verdict, Option<Reason>)> {
    let mut verifier = Verifier::new(VerifierConfig::default());
    for piece in message.chunks(61) {
        verifier.update(piece);
    }
    verifier.finish(SystemTime::now());
    let questions: Vec<_> = verifier.questions().collect();
    for q in questions {
        let lookup = match records.iter().find(|(n, _)| n == q.name().as_str()) {
            Some((_, r)) => KeyLookup::Records(vec![r.as_bytes().to_vec()]),
            None => KeyLookup::NotFound,
        };
        verifier.handle_key(q.name(), lookup);
    }
    verifier
        .into_results()
        .into_iter()
        .map(|r| (r.verdict(), r.reason().cloned()))
        .collect()
}

fn record(key: &SigningKey, algorithm: &str) -> (String, String) {
    (
        format!("{}._domainkey.{DOMAIN}", selector(algorithm)),
        key.dns_record(),
    )
}

/// One cross-check: a key, a canonicalization pair and a message.
struct Case {
    algorithm: &'static str,
    key: SigningKey,
    /// The key as dkimpy reads it.
    pem: &'static str,
    header: Canonicalization,
    body: Canonicalization,
    name: &'static str,
    message: Vec<u8>,
}

impl Case {
    /// How a failure names the case: `<algorithm> <c=> <message>`.
    fn label(&self) -> String {
        format!(
            "{} {}/{} {}",
            self.algorithm, self.header, self.body, self.name
        )
    }
}

/// Every key with every canonicalization pair and every message.
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (algorithm, key, pem) in keys() {
        for (header, body) in CANONICALIZATIONS {
            for (name, message) in messages() {
                cases.push(Case {
                    algorithm,
                    key: key.clone(),
                    pem,
                    header,
                    body,
                    name,
                    message,
                });
            }
        }
    }
    cases
}

#[test]
fn messages_we_sign_verify_with_dkimpy() {
    let Some(mut dkimpy) = Dkimpy::find() else {
        return;
    };
    let mut jobs = Vec::new();
    let mut labels = Vec::new();
    for case in cases() {
        let signer = Signer::new(case.key.clone(), DOMAIN, &selector(case.algorithm))
            .unwrap()
            .with_canonicalization(case.header, case.body);
        let f = signer
            .sign_message(&case.message, SystemTime::now(), &SystemRandom::new())
            .unwrap();
        let signed = [f.as_bytes(), &case.message].concat();
        let records = vec![record(&case.key, case.algorithm)];
        jobs.push(Job::Verify {
            message: signed.clone(),
            records: records.clone(),
        });
        labels.push(case.label());
        for (kind, t) in ["body", "header"].into_iter().zip(tampered(&signed)) {
            jobs.push(Job::Verify {
                message: t,
                records: records.clone(),
            });
            labels.push(format!("{} tampered {kind}", case.label()));
        }
    }
    let results = dkimpy.run(&jobs);
    let mut passed = 0;
    for (label, result) in labels.iter().zip(&results) {
        let verdicts = dkimpy_verdicts(result);
        assert_eq!(verdicts.len(), 1, "{label}: {result}");
        if label.contains("tampered") {
            assert!(
                verdicts[0].starts_with("fail"),
                "{label}: dkimpy says {}",
                verdicts[0]
            );
        } else {
            assert_eq!(verdicts[0], "pass", "{label}");
            passed += 1;
        }
    }
    eprintln!(
        "ours -> dkimpy: {passed} signed messages pass, {} tampered fail",
        results.len() - passed
    );
}

#[test]
fn messages_dkimpy_signs_verify_with_ours() {
    let Some(mut dkimpy) = Dkimpy::find() else {
        return;
    };
    let cases = cases();
    let jobs: Vec<Job> = cases
        .iter()
        .map(|case| Job::Sign {
            key_pem: case.pem,
            selector: selector(case.algorithm),
            algorithm: case.algorithm,
            canon: format!("{}/{}", case.header, case.body),
            message: case.message.clone(),
        })
        .collect();
    let results = dkimpy.run(&jobs);
    let mut checked = 0;
    for (case, result) in cases.iter().zip(&results) {
        let label = case.label();
        let records = [record(&case.key, case.algorithm)];
        let signed = [field(result), case.message.clone()].concat();
        assert!(
            String::from_utf8_lossy(&signed).contains(&format!("c={}/{}", case.header, case.body)),
            "{label}: dkimpy wrote another c="
        );
        assert_eq!(
            ours(&signed, &records),
            vec![(Verdict::Pass, None)],
            "{label}"
        );
        let [body, header] = tampered(&signed);
        assert_eq!(
            ours(&body, &records),
            vec![(Verdict::Fail, Some(Reason::BodyHashMismatch))],
            "{label} tampered body"
        );
        assert_eq!(
            ours(&header, &records),
            vec![(Verdict::Fail, Some(Reason::SignatureMismatch))],
            "{label} tampered header"
        );
        checked += 1;
    }
    assert_eq!(checked, jobs.len(), "dkimpy answered every job");
    eprintln!(
        "dkimpy -> ours: {checked} messages pass, {} tampered fail",
        checked * 2
    );
}

#[test]
fn two_signatures_both_ways() {
    let Some(mut dkimpy) = Dkimpy::find() else {
        return;
    };
    let [(rsa_alg, rsa, rsa_pem), (ed_alg, ed, ed_pem)] = keys();
    let records = vec![record(&rsa, rsa_alg), record(&ed, ed_alg)];
    let message = messages().remove(0).1;

    // Ours: RSA and Ed25519 in one pass.
    let signers = [
        Signer::new(rsa, DOMAIN, &selector(rsa_alg)).unwrap(),
        Signer::new(ed, DOMAIN, &selector(ed_alg))
            .unwrap()
            .with_canonicalization(Canonicalization::Simple, Canonicalization::Simple),
    ];
    let mut signing = MessageSigner::new(&signers);
    signing.update(&message);
    let fields = signing
        .finish(SystemTime::now(), &SystemRandom::new())
        .unwrap();
    let mut ours_signed: Vec<u8> = fields.iter().flat_map(|f| f.as_bytes().to_vec()).collect();
    ours_signed.extend_from_slice(&message);

    // dkimpy: RSA, then Ed25519 over the RSA-signed message.
    let first = dkimpy.run(&[Job::Sign {
        key_pem: rsa_pem,
        selector: selector(rsa_alg),
        algorithm: rsa_alg,
        canon: "relaxed/simple".into(),
        message: message.clone(),
    }]);
    let once = [field(&first[0]), message.clone()].concat();
    let second = dkimpy.run(&[
        Job::Sign {
            key_pem: ed_pem,
            selector: selector(ed_alg),
            algorithm: ed_alg,
            canon: "relaxed/relaxed".into(),
            message: once.clone(),
        },
        Job::Verify {
            message: ours_signed.clone(),
            records: records.clone(),
        },
    ]);
    let twice = [field(&second[0]), once].concat();

    assert_eq!(dkimpy_verdicts(&second[1]), ["pass", "pass"]);
    assert_eq!(ours(&twice, &records), vec![(Verdict::Pass, None); 2]);
    assert_eq!(ours(&ours_signed, &records), vec![(Verdict::Pass, None); 2]);
}

/// The one known difference (see the `dkim` module docs): a `relaxed`
/// body whose last line has no CRLF and ends in white space. RFC 6376
/// §3.4.4 drops white space at the end of lines, then adds the missing
/// CRLF; we (with Mail::DKIM and Stalwart's mail-auth) drop it from that
/// last line too, dkimpy keeps one SP. Pinned here so that a change on
/// either side is noticed; mail sent with DATA always ends in CRLF.
#[test]
fn unterminated_last_line_with_trailing_space_differs_from_dkimpy() {
    let Some(mut dkimpy) = Dkimpy::find() else {
        return;
    };
    let (algorithm, key, pem) = keys().into_iter().nth(1).unwrap();
    let records = vec![record(&key, algorithm)];
    let message = b"From: a@example.org\r\nSubject: x\r\n\r\nlast line  ".to_vec();
    let signer = Signer::new(key, DOMAIN, &selector(algorithm)).unwrap();
    let ours_field = signer
        .sign_message(&message, SystemTime::now(), &SystemRandom::new())
        .unwrap();
    let results = dkimpy.run(&[
        Job::Sign {
            key_pem: pem,
            selector: selector(algorithm),
            algorithm,
            canon: "relaxed/relaxed".into(),
            message: message.clone(),
        },
        Job::Verify {
            message: [ours_field.as_bytes(), &message].concat(),
            records: records.clone(),
        },
    ]);
    let theirs = [field(&results[0]), message.clone()].concat();
    assert_eq!(
        ours(&theirs, &records),
        vec![(Verdict::Fail, Some(Reason::BodyHashMismatch))]
    );
    assert!(dkimpy_verdicts(&results[1])[0].starts_with("fail: body hash mismatch"));
    // With the line ended, both agree.
    let ended = [&message[..], b"\r\n"].concat();
    let ours_field = signer
        .sign_message(&ended, SystemTime::now(), &SystemRandom::new())
        .unwrap();
    let results = dkimpy.run(&[Job::Verify {
        message: [ours_field.as_bytes(), &ended].concat(),
        records,
    }]);
    assert_eq!(dkimpy_verdicts(&results[0]), ["pass"]);
}
