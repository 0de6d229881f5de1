//! The server half's DKIM verification service against the fake DNS
//! server: key records looked up without blocking the caller, results in
//! the `done` callback, `temperror` when the DNS is silent (bounded by the
//! service's timeout), many messages in flight at once, and the
//! `Authentication-Results` field built from the results.

use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use hickory_proto::rr::RecordType;
use smtp_mio::server::authentication::{DkimConfig, DkimService, results_field};
use smtp_proto::auth_results::AuthenticationResults;
use smtp_proto::dkim::{DkimResult, Signer, SigningKey, SystemRandom, Verdict};
use smtp_proto::dns::ResolverConfig;
use smtp_tests::fake_dns::{self, Answer, FakeDns};

/// Far beyond any answer on loopback; only a broken service waits this long.
const WAIT: Duration = Duration::from_secs(60);

const MESSAGE: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\n\
Subject: hello\r\nDate: Thu, 03 Dec 2026 12:00:00 +0000\r\n\r\nHi Bob.\r\n";

fn ed25519() -> SigningKey {
    SigningKey::ed25519_from_seed(&[7u8; 32]).unwrap()
}

fn rsa2048() -> SigningKey {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../smtp-proto/src/dkim/testdata/rsa2048.pem"
    );
    SigningKey::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `message` with the fields of `signers` in front.
fn signed(signers: &[Signer], message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for signer in signers {
        let field = signer
            .sign_message(message, SystemTime::now(), &SystemRandom::new())
            .unwrap();
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(message);
    out
}

/// A DNS zone holding the public keys of `keys` at their selectors.
fn zone(keys: &[(&str, &SigningKey)]) -> FakeDns {
    let names: Vec<String> = keys
        .iter()
        .map(|(selector, _)| format!("{selector}._domainkey.example.org"))
        .collect();
    let entries = keys
        .iter()
        .zip(&names)
        .map(|((_, key), owner)| {
            let record = key.dns_record();
            // Character-strings of at most 255 octets (RFC 6376 §3.6.2.2).
            let strings: Vec<&str> = record
                .as_bytes()
                .chunks(255)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            let answer = Answer::records(vec![fake_dns::txt(owner, &strings)]);
            (owner.as_str(), RecordType::TXT, answer)
        })
        .collect();
    FakeDns::start(entries)
}

fn service(dns: &FakeDns, timeout: Duration) -> DkimService {
    let mut resolver = ResolverConfig::new(vec![dns.addr()]);
    resolver.timeout = timeout;
    resolver.attempts = 1;
    let mut config = DkimConfig::new(resolver);
    config.timeout = timeout;
    DkimService::start(config).unwrap()
}

/// Verifies `message` through `service`, as a session does.
fn verify(service: &DkimService, message: &[u8]) -> Vec<DkimResult> {
    let (tx, rx) = mpsc::channel();
    let mut check = service.check();
    for piece in message.chunks(7) {
        check.update(piece);
    }
    check.finish(move |results| tx.send(results).unwrap());
    rx.recv_timeout(WAIT).expect("the service answers")
}

#[test]
fn dual_signature_passes_and_fields_name_both() {
    let (ed, rsa) = (ed25519(), rsa2048());
    let dns = zone(&[("ed", &ed), ("rsa", &rsa)]);
    let service = service(&dns, Duration::from_secs(5));
    let signers = [
        Signer::new(ed, "example.org", "ed").unwrap(),
        Signer::new(rsa, "example.org", "rsa").unwrap(),
    ];
    let results = verify(&service, &signed(&signers, MESSAGE));
    let verdicts: Vec<_> = results.iter().map(DkimResult::verdict).collect();
    assert_eq!(verdicts, [Verdict::Pass, Verdict::Pass]);
    let field = results_field("mx.example.net", &results).unwrap();
    let text = field.to_field();
    assert!(text.starts_with("Authentication-Results: mx.example.net;\r\n\tdkim=pass"));
    let parsed =
        AuthenticationResults::parse(&text.as_bytes()[b"Authentication-Results:".len()..]).unwrap();
    let selectors: Vec<_> = parsed
        .of_method("dkim")
        .map(|r| {
            (
                r.result(),
                r.property("header", "d"),
                r.property("header", "s"),
            )
        })
        .collect();
    assert_eq!(
        selectors,
        [
            ("pass", Some("example.org"), Some("ed")),
            ("pass", Some("example.org"), Some("rsa"))
        ]
    );
}

#[test]
fn tampered_unsigned_and_missing_key() {
    let ed = ed25519();
    let dns = zone(&[("ed", &ed)]);
    let service = service(&dns, Duration::from_secs(5));
    let signer = Signer::new(ed, "example.org", "ed").unwrap();
    let mut tampered = signed(std::slice::from_ref(&signer), MESSAGE);
    let at = tampered.len() - 4;
    tampered[at] = b'X';
    let results = verify(&service, &tampered);
    assert_eq!(results[0].verdict(), Verdict::Fail);
    assert!(verify(&service, MESSAGE).is_empty());
    let field = results_field("mx.example.net", &[]).unwrap();
    assert_eq!(
        field.to_field(),
        "Authentication-Results: mx.example.net;\r\n\tdkim=none\r\n"
    );
    // A selector the zone does not hold: no key, permerror.
    let other = Signer::new(ed25519(), "example.org", "gone").unwrap();
    let results = verify(&service, &signed(&[other], MESSAGE));
    assert_eq!(results[0].verdict(), Verdict::PermError);
}

/// A service asking a DNS server that never answers (300 ms timeout), and
/// a message signed with a key it would have to look up there.
fn silent_service() -> (FakeDns, DkimService, Vec<u8>) {
    let dns = FakeDns::start(vec![(
        "ed._domainkey.example.org",
        RecordType::TXT,
        Answer::Silent,
    )]);
    let service = service(&dns, Duration::from_millis(300));
    let signer = Signer::new(ed25519(), "example.org", "ed").unwrap();
    let message = signed(&[signer], MESSAGE);
    (dns, service, message)
}

#[test]
fn silent_dns_gives_temperror_within_the_timeout() {
    let (_dns, service, message) = silent_service();
    // Several messages wait at once; each is answered.
    let (tx, rx) = mpsc::channel();
    for i in 0..20 {
        let mut check = service.check();
        check.update(&message);
        let tx = tx.clone();
        check.finish(move |results| tx.send((i, results)).unwrap());
    }
    drop(tx);
    let mut seen = Vec::new();
    while let Ok((i, results)) = rx.recv_timeout(WAIT) {
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].verdict(), Verdict::TempError, "message {i}");
        seen.push(i);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
}

#[test]
fn dropping_the_service_answers_what_it_holds() {
    let (_dns, service, message) = silent_service();
    let (tx, rx) = mpsc::channel();
    let mut check = service.check();
    check.update(&message);
    check.finish(move |results| tx.send(results).unwrap());
    drop(service);
    let results = rx
        .recv_timeout(WAIT)
        .expect("answered before the thread ended");
    assert_eq!(results[0].verdict(), Verdict::TempError);
}
