//! Tests across the DKIM modules: the RFC 8463 known answers, signing and
//! verifying round trips, and every verification outcome.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;

use super::header::HeaderIndex;
use super::tag;
use super::*;
use crate::dns::{Answer, Failure, Name, Negative, Question, RecordData, Records, Txt};

const RSA2048: &str = include_str!("testdata/rsa2048.pem");
const RSA2048_PKCS1: &str = include_str!("testdata/rsa2048-pkcs1.pem");
const RSA4096: &str = include_str!("testdata/rsa4096.pem");
const RSA1024: &str = include_str!("testdata/rsa1024.pem");
const RSA512_SPKI: &str = include_str!("testdata/rsa512.spki.b64");
const ED25519: &str = include_str!("testdata/ed25519.pem");

/// RFC 8463 Appendix A.1: the Ed25519 secret key (seed), base64.
const RFC8463_SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
/// RFC 8463 Appendix A.2: the key records.
const RFC8463_ED25519_RECORD: &str =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
const RFC8463_RSA_RECORD: &str = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
/// RFC 8463 Appendix A.3: the signed message, both signatures.
const RFC8463_MESSAGE: &str = "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r
 d=football.example.com; i=@football.example.com;\r
 q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r
 subject : date : message-id : from : subject : date;\r
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r
 b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r
 Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r
 d=football.example.com; i=@football.example.com;\r
 q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r
 date : message-id : from : subject : date;\r
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r
 b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r
 DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r
 dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r
From: Joe SixPack <joe@football.example.com>\r
To: Suzie Q <suzie@shopping.example.net>\r
Subject: Is dinner ready?\r
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r
Message-ID: <20030712040037.46341.5F8J@football.example.com>\r
\r
Hi.\r
\r
We lost the game.  Are you hungry yet?\r
\r
Joe.\r
";

const MESSAGE: &[u8] = b"From: Alice <alice@example.org>\r
To: Bob <bob@example.net>,\r
\tCarol <carol@example.net>\r
Subject:   Lunch  \t today?\r
Date: Tue, 06 Oct 2026 12:00:00 +0000\r
Message-ID: <1@example.org>\r
Received: from somewhere by somewhere else\r
\r
Shall we meet at  noon?   \r
\r
Alice\r
\r
\r
";

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

const NOW: u64 = 1_790_000_000;

fn rng() -> SystemRandom {
    SystemRandom::new()
}

fn seed_key() -> SigningKey {
    SigningKey::ed25519_from_seed(&STANDARD.decode(RFC8463_SEED).unwrap()).unwrap()
}

fn key(pem: &str) -> SigningKey {
    SigningKey::from_pem(pem).unwrap()
}

/// Verifies `message` with `records` as the DNS (a name missing there is
/// NXDOMAIN), fed in pieces of `chunk` octets.
fn verify_with_config(
    message: &[u8],
    records: &[(&str, &str)],
    now: u64,
    config: VerifierConfig,
    chunk: usize,
) -> Vec<DkimResult> {
    let mut verifier = Verifier::new(config);
    for piece in message.chunks(chunk.max(1)) {
        verifier.update(piece);
    }
    verifier.finish(at(now));
    let questions: Vec<Question> = verifier.questions().collect();
    for q in questions {
        let lookup = match records.iter().find(|(name, _)| *name == q.name().as_str()) {
            Some((_, record)) => KeyLookup::Records(vec![record.as_bytes().to_vec()]),
            None => KeyLookup::NotFound,
        };
        assert!(verifier.handle_key(q.name(), lookup));
    }
    assert!(verifier.is_ready());
    verifier.into_results()
}

fn verify(message: &[u8], records: &[(&str, &str)], now: u64) -> Vec<DkimResult> {
    verify_with_config(message, records, now, VerifierConfig::default(), usize::MAX)
}

fn verdicts(results: &[DkimResult]) -> Vec<(Verdict, Option<Reason>)> {
    results
        .iter()
        .map(|r| (r.verdict(), r.reason().cloned()))
        .collect()
}

fn signed(signer: &Signer, message: &[u8]) -> Vec<u8> {
    let field = signer.sign_message(message, at(NOW), &rng()).unwrap();
    [field.as_bytes(), message].concat()
}

fn record_name(signer: &Signer) -> String {
    format!("{}._domainkey.{}", signer.selector(), signer.domain())
}

// ------------------------------------------------------------ known answers

#[test]
fn rfc8463_example_verifies_byte_for_byte() {
    let records = [
        (
            "brisbane._domainkey.football.example.com",
            RFC8463_ED25519_RECORD,
        ),
        ("test._domainkey.football.example.com", RFC8463_RSA_RECORD),
    ];
    // Its t= is from 2018; no x=, so it never expires.
    for chunk in [usize::MAX, 1, 7, 64] {
        let results = verify_with_config(
            RFC8463_MESSAGE.as_bytes(),
            &records,
            NOW,
            VerifierConfig::default(),
            chunk,
        );
        assert_eq!(
            verdicts(&results),
            vec![(Verdict::Pass, None), (Verdict::Pass, None)]
        );
        let (ed, rsa) = (&results[0], &results[1]);
        assert_eq!(ed.domain(), Some("football.example.com"));
        assert_eq!(ed.identity(), Some("@football.example.com"));
        assert_eq!(ed.selector(), Some("brisbane"));
        assert_eq!(ed.algorithm(), Some("ed25519-sha256"));
        assert_eq!(ed.b_prefix(), Some("/gCrinpc"));
        assert_eq!(ed.key_bits(), Some(256));
        assert!(!ed.is_weak_key());
        assert_eq!(rsa.key_bits(), Some(1024));
        assert!(rsa.is_weak_key());
        assert_eq!(
            rsa.resinfo(),
            "dkim=pass (1024-bit key; weak key) header.d=football.example.com \
             header.i=@football.example.com header.s=test header.a=rsa-sha256 header.b=F45dVWDf"
        );
    }
}

#[test]
fn rfc8463_ed25519_signature_is_reproduced_from_its_seed() {
    // Ed25519 is deterministic: signing the example's header data with the
    // A.1 seed gives the A.3 b= value exactly.
    let message = RFC8463_MESSAGE.as_bytes();
    let end = memchr::memmem::find(message, b"\r\n\r\n").unwrap() + 2;
    let section = &message[..end];
    let index = HeaderIndex::new(section);
    let field = index.fields[0];
    let raw = &section[field.start..field.end];
    let value_at = "DKIM-Signature:".len();
    let value = raw[value_at..].strip_suffix(b"\r\n").unwrap();
    let tags = tag::parse_tag_list(value).unwrap();
    let sig = Signature::from_tags(&tags).unwrap();
    let b = tags.iter().find(|t| t.name == b"b").unwrap();
    let data = verify::header_data(section, &index, &sig, raw, value_at, b);
    assert!(data.starts_with(b"from:Joe SixPack <joe@football.example.com>\r\nto:Suzie Q"));
    assert!(data.ends_with(b"subject : date; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b="));
    let signature = seed_key().sign_data(&data, &rng()).unwrap();
    assert_eq!(
        STANDARD.encode(&signature),
        STANDARD.encode(sig.signature())
    );
    // And the public key from the seed is the A.2 record's.
    assert_eq!(
        seed_key().dns_record(),
        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    );
}

#[test]
fn rfc8463_tampering_fails() {
    let records = [
        (
            "brisbane._domainkey.football.example.com",
            RFC8463_ED25519_RECORD,
        ),
        ("test._domainkey.football.example.com", RFC8463_RSA_RECORD),
    ];
    let body = RFC8463_MESSAGE.replace("hungry yet", "hungry now");
    assert_eq!(
        verdicts(&verify(body.as_bytes(), &records, NOW)),
        vec![(Verdict::Fail, Some(Reason::BodyHashMismatch)); 2]
    );
    let header = RFC8463_MESSAGE.replace("Is dinner ready?", "Is lunch ready?");
    assert_eq!(
        verdicts(&verify(header.as_bytes(), &records, NOW)),
        vec![(Verdict::Fail, Some(Reason::SignatureMismatch)); 2]
    );
    // Relaxed canonicalization ignores white space changes.
    let spaced = RFC8463_MESSAGE.replace("Subject: Is dinner", "SUBJECT:   Is \t dinner");
    assert_eq!(
        verdicts(&verify(spaced.as_bytes(), &records, NOW)),
        vec![(Verdict::Pass, None); 2]
    );
}

// -------------------------------------------------------------- signing

#[test]
fn keys_load_from_every_form() {
    let pkcs8 = key(RSA2048);
    let pkcs1 = key(RSA2048_PKCS1);
    assert_eq!(pkcs8.public_key(), pkcs1.public_key());
    assert_eq!(pkcs8.algorithm(), Algorithm::RsaSha256);
    assert_eq!(pkcs8.bits(), 2048);
    assert_eq!(key(RSA4096).bits(), 4096);
    let ed = key(ED25519);
    assert_eq!(ed.algorithm(), Algorithm::Ed25519Sha256);
    assert_eq!(ed.public_key().len(), 32);
    // The published record parses back to the same key.
    for k in [pkcs8, ed] {
        let record = KeyRecord::parse(k.dns_record().as_bytes()).unwrap();
        assert_eq!(record.key_type(), k.algorithm().key_type());
        match record.public_key() {
            PublicKey::Rsa(rsa) => assert_eq!(rsa.bits(), 2048),
            PublicKey::Ed25519(p) => assert_eq!(p[..], k.public_key()[..]),
            PublicKey::Revoked => panic!("revoked"),
        }
    }
    assert!(format!("{:?}", key(RSA2048)).contains("2048 bits"));
}

#[test]
fn unusable_keys_are_refused() {
    // ring signs with 2048 to 4096 bits only.
    assert!(matches!(
        SigningKey::from_pem(RSA1024),
        Err(KeyError::Rsa(_))
    ));
    assert!(matches!(
        SigningKey::from_pem("no pem"),
        Err(KeyError::Pem(_))
    ));
    assert!(matches!(
        SigningKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        Err(KeyError::UnsupportedPem(_))
    ));
    assert!(matches!(
        SigningKey::from_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
        ),
        Err(KeyError::UnsupportedPem(_))
    ));
    assert!(matches!(
        SigningKey::ed25519_from_seed(&[0; 31]),
        Err(KeyError::Ed25519(_))
    ));
}

#[test]
fn signer_configuration_errors() {
    let k = seed_key();
    assert!(matches!(
        Signer::new(k.clone(), "com", "s"),
        Err(SignerError::InvalidDomain(_))
    ));
    assert!(matches!(
        Signer::new(k.clone(), "exa mple.com", "s"),
        Err(SignerError::InvalidDomain(_))
    ));
    assert!(matches!(
        Signer::new(k.clone(), "example.com", "a b"),
        Err(SignerError::InvalidSelector(_))
    ));
    assert!(matches!(
        Signer::new(k.clone(), "example.com", ""),
        Err(SignerError::InvalidSelector(_))
    ));
    let signer = Signer::new(k, "Example.COM", "S1_x").unwrap();
    assert_eq!(signer.domain().as_str(), "example.com");
    assert_eq!(signer.selector(), "s1_x");
    assert!(matches!(
        signer.clone().with_identity("joe@example.net"),
        Err(SignerError::InvalidIdentity(_))
    ));
    assert!(signer.clone().with_identity("joe@mail.example.com").is_ok());
    assert!(matches!(
        signer.clone().with_headers(HeaderList::new().sign("to")),
        Err(SignerError::FromNotListed)
    ));
    assert!(matches!(
        signer
            .clone()
            .with_headers(HeaderList::new().sign("from").sign("x y")),
        Err(SignerError::InvalidHeaderName(_))
    ));
    assert_eq!(
        signer.sign_message(b"To: x\r\n\r\nbody\r\n", at(NOW), &rng()),
        Err(SignError::NoFrom)
    );
    assert_eq!(
        signer.sign_message(
            b"From: x\r\n\r\n",
            SystemTime::UNIX_EPOCH - Duration::from_secs(1),
            &rng()
        ),
        Err(SignError::TimeBeforeEpoch)
    );
    let hash = BodyHasher::new(Canonicalization::Simple).finish();
    assert!(matches!(
        signer.sign(b"From: x\r\n", &hash, at(NOW), &rng()),
        Err(SignError::CanonicalizationMismatch { .. })
    ));
}

#[test]
fn every_key_and_canonicalization_round_trips() {
    use Canonicalization::{Relaxed, Simple};
    let keys = [
        key(RSA2048),
        key(RSA2048_PKCS1),
        key(RSA4096),
        key(ED25519),
        seed_key(),
    ];
    let bodies: [&[u8]; 5] = [
        b"",
        b"no final line end",
        b"trailing  \t \r\n\r\n\r\n",
        b"8-bit: \xc3\xa9t\xc3\xa9 \xff\r\n",
        b"\r\n\r\n",
    ];
    for k in keys {
        for (hc, bc) in [
            (Simple, Simple),
            (Simple, Relaxed),
            (Relaxed, Simple),
            (Relaxed, Relaxed),
        ] {
            let signer = Signer::new(k.clone(), "example.org", "sel")
                .unwrap()
                .with_canonicalization(hc, bc);
            let record = k.dns_record();
            let name = record_name(&signer);
            let records = [(name.as_str(), record.as_str())];
            for body in bodies {
                let header = b"From: Alice <alice@example.org>\r\nSubject: x\r\nFrom: again@example.org\r\n\r\n";
                let message = [&header[..], body].concat();
                let out = signed(&signer, &message);
                let results = verify(&out, &records, NOW);
                assert_eq!(
                    verdicts(&results),
                    vec![(Verdict::Pass, None)],
                    "{hc}/{bc} {body:?}"
                );
                assert!(String::from_utf8_lossy(&out).contains(&format!("c={hc}/{bc};")));
                // Byte by byte gives the same.
                let bytewise =
                    verify_with_config(&out, &records, NOW, VerifierConfig::default(), 1);
                assert_eq!(bytewise, results);
            }
        }
    }
}

#[test]
fn tampering_fails_and_relaxed_forgives_white_space() {
    let k = key(RSA2048);
    for (hc, bc) in [
        (Canonicalization::Simple, Canonicalization::Simple),
        (Canonicalization::Relaxed, Canonicalization::Relaxed),
    ] {
        let signer = Signer::new(k.clone(), "example.org", "sel")
            .unwrap()
            .with_canonicalization(hc, bc);
        let record = k.dns_record();
        let name = record_name(&signer);
        let records = [(name.as_str(), record.as_str())];
        let out = signed(&signer, MESSAGE);
        assert_eq!(
            verdicts(&verify(&out, &records, NOW)),
            vec![(Verdict::Pass, None)]
        );

        let edit = |from: &str, to: &str| {
            let text = String::from_utf8(out.clone()).unwrap();
            assert!(text.contains(from), "{from}");
            text.replacen(from, to, 1).into_bytes()
        };
        let body_changed = edit("noon?", "nine?");
        assert_eq!(
            verdicts(&verify(&body_changed, &records, NOW)),
            vec![(Verdict::Fail, Some(Reason::BodyHashMismatch))]
        );
        let header_changed = edit("Lunch", "Brunch");
        assert_eq!(
            verdicts(&verify(&header_changed, &records, NOW)),
            vec![(Verdict::Fail, Some(Reason::SignatureMismatch))]
        );
        // Unsigned fields may change.
        let trace_changed = edit("somewhere else", "elsewhere");
        assert_eq!(
            verdicts(&verify(&trace_changed, &records, NOW)),
            vec![(Verdict::Pass, None)]
        );
        // Refolding and white space: relaxed passes, simple fails.
        let refolded = edit("Subject:   Lunch", "Subject: Lunch\r\n ");
        let spaced_body = edit("at  noon", "at \t noon");
        let (want_header, want_body) = match hc {
            Canonicalization::Relaxed => ((Verdict::Pass, None), (Verdict::Pass, None)),
            Canonicalization::Simple => (
                (Verdict::Fail, Some(Reason::SignatureMismatch)),
                (Verdict::Fail, Some(Reason::BodyHashMismatch)),
            ),
        };
        assert_eq!(
            verdicts(&verify(&refolded, &records, NOW)),
            vec![want_header]
        );
        assert_eq!(
            verdicts(&verify(&spaced_body, &records, NOW)),
            vec![want_body]
        );
        // Trailing empty lines never count.
        let more_lines = [&out[..], b"\r\n\r\n"].concat();
        assert_eq!(
            verdicts(&verify(&more_lines, &records, NOW)),
            vec![(Verdict::Pass, None)]
        );
    }
}

#[test]
fn over_signing_stops_added_fields() {
    let k = seed_key();
    let signer = Signer::new(k.clone(), "example.org", "sel").unwrap();
    let record = k.dns_record();
    let name = record_name(&signer);
    let records = [(name.as_str(), record.as_str())];
    let out = signed(&signer, MESSAGE);
    let text = String::from_utf8(out).unwrap();
    // Each present over-signed field once more; absent ones once (to
    // forbid them); Received never.
    let h: String = text
        .split("h=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        h.starts_with(
            "from:from:reply-to:subject:subject:date:date:to:to:cc:message-id:message-id:"
        ),
        "{h}"
    );
    assert!(!h.contains("received"));
    assert!(!h.contains("list-help"), "signed only when present: {h}");
    // Adding a second From, a Reply-To or a Cc anywhere breaks it.
    for added in [
        "From: mallory@evil.example\r\n",
        "Reply-To: x@evil.example\r\n",
        "Cc: x@evil.example\r\n",
    ] {
        for position in ["From: Alice", "\r\n\r\n"] {
            let tampered = if position == "From: Alice" {
                text.replacen(position, &format!("{added}{position}"), 1)
            } else {
                text.replacen(position, &format!("\r\n{}\r\n\r\n", added.trim_end()), 1)
            };
            assert_eq!(
                verdicts(&verify(tampered.as_bytes(), &records, NOW)),
                vec![(Verdict::Fail, Some(Reason::SignatureMismatch))],
                "{added} at {position}"
            );
        }
    }
    // A field not in the list may be added.
    let added = text.replacen("From: Alice", "X-Note: hi\r\nFrom: Alice", 1);
    assert_eq!(
        verdicts(&verify(added.as_bytes(), &records, NOW)),
        vec![(Verdict::Pass, None)]
    );
}

#[test]
fn fields_are_folded_to_78_octets() {
    let k = key(RSA4096);
    let mut headers = HeaderList::default();
    for i in 0..40 {
        headers = headers.over_sign(&format!("x-custom-field-number-{i}"));
    }
    let signer = Signer::new(
        k.clone(),
        "a-rather-long-subdomain.of-a-long-domain.example.org",
        "selector-2026-10",
    )
    .unwrap()
    .with_headers(headers)
    .unwrap()
    .with_identity("some.user+tag@mail.a-rather-long-subdomain.of-a-long-domain.example.org")
    .unwrap()
    .with_expiry(Duration::from_secs(86_400));
    let field = signer.sign_message(MESSAGE, at(NOW), &rng()).unwrap();
    let text = field.as_str();
    assert!(text.ends_with("\r\n"));
    for line in text.strip_suffix("\r\n").unwrap().split("\r\n") {
        assert!(line.len() <= MAX_LINE, "{} octets: {line}", line.len());
    }
    assert!(text.contains(&format!("t={NOW};")));
    assert!(text.contains(&format!("x={};", NOW + 86_400)));
    assert!(text.contains("i=some.user+tag@mail."));
    // And it verifies, with i= reported.
    let record = k.dns_record();
    let name = record_name(&signer);
    let out = [field.as_bytes(), MESSAGE].concat();
    let results = verify(&out, &[(name.as_str(), record.as_str())], NOW);
    assert_eq!(verdicts(&results), vec![(Verdict::Pass, None)]);
    assert_eq!(
        results[0].identity(),
        Some("some.user+tag@mail.a-rather-long-subdomain.of-a-long-domain.example.org")
    );
    // Without t=.
    let plain = Signer::new(k, "example.org", "s")
        .unwrap()
        .with_timestamp(false);
    let field = plain.sign_message(MESSAGE, at(NOW), &rng()).unwrap();
    assert!(!field.as_str().contains(" t="));
}

#[test]
fn several_signatures_on_one_message() {
    let rsa = Signer::new(key(RSA2048), "example.org", "rsa").unwrap();
    let ed = Signer::new(key(ED25519), "example.org", "ed")
        .unwrap()
        .with_canonicalization(Canonicalization::Simple, Canonicalization::Simple);
    let mut signing = MessageSigner::new(&[rsa.clone(), ed.clone()]);
    for piece in MESSAGE.chunks(5) {
        signing.update(piece);
    }
    let fields = signing.finish(at(NOW), &rng()).unwrap();
    assert_eq!(fields.len(), 2);
    assert_eq!(fields[0].algorithm(), Algorithm::RsaSha256);
    assert_eq!(fields[1].algorithm(), Algorithm::Ed25519Sha256);
    assert_eq!(fields[1].selector(), "ed");
    let mut out = Vec::new();
    for f in &fields {
        out.extend_from_slice(f.as_bytes());
    }
    out.extend_from_slice(MESSAGE);
    let rsa_record = rsa.key().dns_record();
    let ed_record = ed.key().dns_record();
    let (rsa_name, ed_name) = (record_name(&rsa), record_name(&ed));
    let records = [
        (rsa_name.as_str(), rsa_record.as_str()),
        (ed_name.as_str(), ed_record.as_str()),
    ];
    let results = verify(&out, &records, NOW);
    assert_eq!(verdicts(&results), vec![(Verdict::Pass, None); 2]);
    assert_eq!(results[0].selector(), Some("rsa"));
    assert_eq!(results[1].selector(), Some("ed"));
    // The same as signing each alone.
    let alone = rsa.sign_message(MESSAGE, at(NOW), &rng()).unwrap();
    assert_eq!(alone, fields[0]);
}

#[test]
fn body_first_then_headers() {
    let signer = Signer::new(seed_key(), "example.org", "s").unwrap();
    let split = memchr::memmem::find(MESSAGE, b"\r\n\r\n").unwrap();
    let (section, body) = (&MESSAGE[..split + 2], &MESSAGE[split + 4..]);
    let mut hasher = BodyHasher::new(signer.body_canonicalization());
    for piece in body.chunks(3) {
        hasher.update(piece);
    }
    let field = signer
        .sign(section, &hasher.finish(), at(NOW), &rng())
        .unwrap();
    assert_eq!(
        field,
        signer.sign_message(MESSAGE, at(NOW), &rng()).unwrap()
    );
    // With the empty line included too.
    let mut hasher = BodyHasher::new(signer.body_canonicalization());
    hasher.update(body);
    let with_blank = signer
        .sign(&MESSAGE[..split + 4], &hasher.finish(), at(NOW), &rng())
        .unwrap();
    assert_eq!(with_blank, field);
}

#[test]
fn signing_header_section_bound() {
    let signer = Signer::new(seed_key(), "example.org", "s").unwrap();
    let mut signing = MessageSigner::new(&[signer]).with_max_header_section(16);
    signing.update(MESSAGE);
    assert_eq!(
        signing.finish(at(NOW), &rng()),
        Err(SignError::HeaderSectionTooLarge { limit: 16 })
    );
}

// --------------------------------------------------------- verification

/// Builds a DKIM-Signature field from `tags` (everything but `b=`; `bh=`
/// is computed when it is `bh=;`), signed with `key` over `message`: the
/// way to test signatures our signer never makes (`l=`, odd `i=`, …).
fn sign_raw(key: &SigningKey, tags: &str, message: &[u8]) -> Vec<u8> {
    let split = memchr::memmem::find(message, b"\r\n\r\n").unwrap() + 2;
    let (section, body) = (&message[..split], &message[split + 2..]);
    let probe = Signature::parse(format!("{tags} b=AAAA").as_bytes()).unwrap();
    let mut canonical = canonicalize_body(probe.body_canonicalization(), body);
    if let Some(l) = probe.body_length() {
        canonical.truncate(usize::try_from(l).unwrap().min(canonical.len()));
    }
    let bh = STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, &canonical));
    let tags = tags.replace("bh=;", &format!("bh={bh};"));
    let field = format!("DKIM-Signature: {tags} b=AAAA\r\n");
    let value_at = "DKIM-Signature:".len();
    let all = [field.as_bytes(), section].concat();
    let index = HeaderIndex::new(&all);
    let raw = &all[..field.len()];
    let value = raw[value_at..].strip_suffix(b"\r\n").unwrap();
    let parsed = tag::parse_tag_list(value).unwrap();
    let b = parsed.iter().find(|t| t.name == b"b").unwrap();
    let sig = Signature::from_tags(&parsed).unwrap();
    let data = verify::header_data(&all, &index, &sig, raw, value_at, b);
    let signature = key.sign_data(&data, &rng()).unwrap();
    let field = field.replace("b=AAAA", &format!("b={}", STANDARD.encode(signature)));
    [field.as_bytes(), message].concat()
}

const ED_TAGS: &str =
    "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.org; s=s; h=from:subject; bh=;";

fn ed_records() -> [(&'static str, String); 1] {
    [("s._domainkey.example.org", seed_key().dns_record())]
}

fn verify_ed(message: &[u8], record: &str, now: u64) -> Vec<(Verdict, Option<Reason>)> {
    verdicts(&verify(
        message,
        &[("s._domainkey.example.org", record)],
        now,
    ))
}

#[test]
fn raw_signer_agrees_with_the_signer() {
    let out = sign_raw(&seed_key(), ED_TAGS, MESSAGE);
    let record = &ed_records()[0].1;
    assert_eq!(verify_ed(&out, record, NOW), vec![(Verdict::Pass, None)]);
}

#[test]
fn body_length_is_honoured_and_reported() {
    let record = ed_records()[0].1.clone();
    let body_at = memchr::memmem::find(MESSAGE, b"\r\n\r\n").unwrap() + 4;
    let canonical = canonicalize_body(Canonicalization::Relaxed, &MESSAGE[body_at..]);
    let tags = format!("{ED_TAGS} l=10;").replace("bh=; l=10;", "l=10; bh=;");
    let out = sign_raw(&seed_key(), &tags, MESSAGE);
    // Content appended after the signed part still passes: l= is honoured,
    // and reported.
    let click = b"Click here: http://evil.example/\r\n";
    let appended = [&out[..], click].concat();
    let results = verify(&appended, &[("s._domainkey.example.org", &record)], NOW);
    assert_eq!(verdicts(&results), vec![(Verdict::Pass, None)]);
    assert_eq!(results[0].body_length(), Some(10));
    let new_body = [&MESSAGE[body_at..], click].concat();
    let unsigned = canonicalize_body(Canonicalization::Relaxed, &new_body).len() as u64 - 10;
    assert_eq!(results[0].unsigned_body_octets(), Some(unsigned));
    assert!(results[0].resinfo().starts_with("dkim=pass (l=10) "));
    // A change inside the signed part fails.
    let text = String::from_utf8(out)
        .unwrap()
        .replacen("Shall", "Shell", 1);
    assert_eq!(
        verify_ed(text.as_bytes(), &record, NOW),
        vec![(Verdict::Fail, Some(Reason::BodyHashMismatch))]
    );
    // l= beyond the body.
    let long = sign_raw(
        &seed_key(),
        &ED_TAGS.replace("bh=;", "l=100000; bh=;"),
        MESSAGE,
    );
    assert_eq!(
        verify_ed(&long, &record, NOW),
        vec![(
            Verdict::Fail,
            Some(Reason::BodyShorterThanLength {
                body: canonical.len() as u64,
                length: 100_000
            })
        )]
    );
}

#[test]
fn expiry_and_future_timestamps() {
    let record = ed_records()[0].1.clone();
    let tags = ED_TAGS.replace("bh=;", "t=1000; x=2000; bh=;");
    let out = sign_raw(&seed_key(), &tags, MESSAGE);
    assert_eq!(verify_ed(&out, &record, 1500), vec![(Verdict::Pass, None)]);
    // Within the 300 s skew.
    assert_eq!(verify_ed(&out, &record, 2300), vec![(Verdict::Pass, None)]);
    assert_eq!(verify_ed(&out, &record, 700), vec![(Verdict::Pass, None)]);
    assert_eq!(
        verify_ed(&out, &record, 2301),
        vec![(Verdict::Neutral, Some(Reason::Expired { expiration: 2000 }))]
    );
    assert_eq!(
        verify_ed(&out, &record, 699),
        vec![(
            Verdict::Neutral,
            Some(Reason::FutureTimestamp { timestamp: 1000 })
        )]
    );
}

#[test]
fn key_record_outcomes() {
    let out = sign_raw(&seed_key(), ED_TAGS, MESSAGE);
    let p = STANDARD.encode(seed_key().public_key());
    let rsa_record = key(RSA2048).dns_record();
    let cases: Vec<(String, (Verdict, Option<Reason>))> = vec![
        (format!("v=DKIM1; k=ed25519; p={p}"), (Verdict::Pass, None)),
        (format!("k=ed25519; p={p}; t=y"), (Verdict::Pass, None)),
        (
            "v=DKIM1; k=ed25519; p=".into(),
            (Verdict::PermError, Some(Reason::KeyRevoked)),
        ),
        (
            rsa_record,
            (Verdict::PermError, Some(Reason::KeyTypeMismatch)),
        ),
        (
            format!("k=ed25519; h=sha1; p={p}"),
            (Verdict::PermError, Some(Reason::HashNotAllowed)),
        ),
        (
            format!("k=ed25519; s=tlsrpt; p={p}"),
            (Verdict::PermError, Some(Reason::ServiceNotEmail)),
        ),
        (
            format!("k=ed25519; s=email:tlsrpt; h=sha256:sha1; p={p}"),
            (Verdict::Pass, None),
        ),
        (
            format!("v=DKIM2; k=ed25519; p={p}"),
            (
                Verdict::PermError,
                Some(Reason::KeyRecord(KeyRecordError::UnsupportedVersion)),
            ),
        ),
        (
            "k=ed25519; p=AAAA".into(),
            (
                Verdict::PermError,
                Some(Reason::KeyRecord(KeyRecordError::InvalidPublicKey)),
            ),
        ),
    ];
    for (record, want) in cases {
        assert_eq!(
            verify_ed(&out, &record, NOW),
            vec![want.clone()],
            "{record}"
        );
    }
    let testing = verify(
        &out,
        &[(
            "s._domainkey.example.org",
            &format!("k=ed25519; t=y; p={p}"),
        )],
        NOW,
    );
    assert!(testing[0].is_testing());
    assert!(testing[0].resinfo().contains("(testing)"));
    // A wrong key: the signature does not verify.
    let other = key(ED25519).dns_record();
    assert_eq!(
        verify_ed(&out, &other, NOW),
        vec![(Verdict::Fail, Some(Reason::SignatureMismatch))]
    );
}

#[test]
fn strict_identity_flag() {
    let p = STANDARD.encode(seed_key().public_key());
    let strict = format!("k=ed25519; t=s; p={p}");
    let sub = sign_raw(
        &seed_key(),
        &ED_TAGS.replace("bh=;", "i=joe@mail.example.org; bh=;"),
        MESSAGE,
    );
    assert_eq!(
        verify_ed(&sub, &strict, NOW),
        vec![(Verdict::PermError, Some(Reason::IdentityNotExactDomain))]
    );
    let exact = sign_raw(
        &seed_key(),
        &ED_TAGS.replace("bh=;", "i=joe@example.org; bh=;"),
        MESSAGE,
    );
    assert_eq!(verify_ed(&exact, &strict, NOW), vec![(Verdict::Pass, None)]);
    let results = verify(&exact, &[("s._domainkey.example.org", &strict)], NOW);
    assert_eq!(results[0].identity(), Some("joe@example.org"));
}

#[test]
fn rsa_key_sizes() {
    let message = sign_raw(
        &key(RSA2048),
        &ED_TAGS.replace("ed25519-sha256", "rsa-sha256"),
        MESSAGE,
    );
    let record = key(RSA2048).dns_record();
    assert_eq!(
        verify_ed(&message, &record, NOW),
        vec![(Verdict::Pass, None)]
    );
    // A 512-bit key is refused before any arithmetic.
    let small = format!("v=DKIM1; p={}", RSA512_SPKI.trim());
    assert_eq!(
        verify_ed(&message, &small, NOW),
        vec![(Verdict::PermError, Some(Reason::KeyTooSmall { bits: 512 }))]
    );
    // Above the configured maximum.
    let config = VerifierConfig {
        max_rsa_bits: 1024,
        ..VerifierConfig::default()
    };
    let results = verify_with_config(
        &message,
        &[("s._domainkey.example.org", &record)],
        NOW,
        config,
        100,
    );
    assert_eq!(
        verdicts(&results),
        vec![(Verdict::PermError, Some(Reason::KeyTooLarge { bits: 2048 }))]
    );
    // The RFC 8463 1024-bit key: pass but weak by default, policy when the
    // minimum is raised.
    let records = [("test._domainkey.football.example.com", RFC8463_RSA_RECORD)];
    let config = VerifierConfig {
        min_rsa_bits: 2048,
        ..VerifierConfig::default()
    };
    let results = verify_with_config(RFC8463_MESSAGE.as_bytes(), &records, NOW, config, 100);
    assert_eq!(
        verdicts(&results)[1],
        (
            Verdict::Policy,
            Some(Reason::KeyBelowMinimum {
                bits: 1024,
                minimum: 2048
            })
        )
    );
    // (The Ed25519 signature's key was not given: no key.)
    assert_eq!(
        verdicts(&results)[0],
        (Verdict::PermError, Some(Reason::NoKey))
    );
}

#[test]
fn malformed_signatures_are_neutral_and_cost_no_lookup() {
    let record = ed_records()[0].1.clone();
    let good = String::from_utf8(sign_raw(&seed_key(), ED_TAGS, MESSAGE)).unwrap();
    let cases = [
        (
            "v=1;",
            "v=2;",
            Reason::Signature(SignatureError::UnsupportedVersion("2".into())),
        ),
        (
            "a=ed25519-sha256",
            "a=rsa-sha1",
            Reason::Signature(SignatureError::UnsupportedAlgorithm("rsa-sha1".into())),
        ),
        (
            "h=from:subject",
            "h=subject",
            Reason::Signature(SignatureError::FromNotSigned),
        ),
        (
            "d=example.org;",
            "d=example.org; d=example.org;",
            Reason::Signature(SignatureError::Syntax(TagListError::DuplicateTag(
                "d".into(),
            ))),
        ),
        (
            "d=example.org;",
            "d=example.org; i=x@example.net;",
            Reason::Signature(SignatureError::IdentityNotInDomain),
        ),
        (
            "v=1; ",
            "",
            Reason::Signature(SignatureError::MissingTag("v")),
        ),
    ];
    for (from, to, reason) in cases {
        let message = good.replacen(from, to, 1);
        let mut verifier = Verifier::new(VerifierConfig::default());
        verifier.update(message.as_bytes());
        verifier.finish(at(NOW));
        assert_eq!(verifier.questions().count(), 0, "{to}");
        assert!(verifier.is_ready());
        let results = verifier.into_results();
        assert_eq!(
            verdicts(&results),
            vec![(Verdict::Neutral, Some(reason.clone()))],
            "{to}"
        );
        // What could be read is still reported.
        if !matches!(reason, Reason::Signature(SignatureError::Syntax(_))) {
            assert_eq!(results[0].domain(), Some("example.org"), "{to}");
        }
    }
    // Unknown tags are ignored.
    let extra = sign_raw(
        &seed_key(),
        &format!("{ED_TAGS} future=thing;").replace("bh=; future=thing;", "future=thing; bh=;"),
        MESSAGE,
    );
    assert_eq!(verify_ed(&extra, &record, NOW), vec![(Verdict::Pass, None)]);
}

#[test]
fn signature_bounds() {
    let k = seed_key();
    let record = k.dns_record();
    // Six valid signatures: five checked, the sixth reported as policy.
    let mut message = MESSAGE.to_vec();
    for i in 0..6 {
        let signer = Signer::new(k.clone(), "example.org", &format!("s{i}")).unwrap();
        let field = signer.sign_message(&message, at(NOW), &rng()).unwrap();
        message = [field.as_bytes(), &message[..]].concat();
    }
    let names: Vec<String> = (0..6)
        .map(|i| format!("s{i}._domainkey.example.org"))
        .collect();
    let records: Vec<(&str, &str)> = names
        .iter()
        .map(|n| (n.as_str(), record.as_str()))
        .collect();
    let mut verifier = Verifier::new(VerifierConfig::default());
    verifier.update(&message);
    verifier.finish(at(NOW));
    assert_eq!(verifier.questions().count(), 5);
    drop(verifier);
    let results = verify(&message, &records, NOW);
    assert_eq!(results.len(), 6);
    assert!(results[..5].iter().all(|r| r.verdict() == Verdict::Pass));
    assert_eq!(
        results[5].reason(),
        Some(&Reason::TooManySignatures { limit: 5 })
    );
    assert_eq!(results[5].verdict(), Verdict::Policy);
    assert_eq!(results[5].selector(), Some("s0"));

    // A long h= list.
    let long_h = format!("{}{}", "from:".repeat(200), "subject");
    let many = sign_raw(&k, &ED_TAGS.replace("from:subject", &long_h), MESSAGE);
    assert_eq!(
        verify_ed(&many, &record, NOW),
        vec![(
            Verdict::Policy,
            Some(Reason::TooManySignedFields { limit: 128 })
        )]
    );

    // A header section over the bound: the signatures found are reported.
    let signed_message = sign_raw(&k, ED_TAGS, MESSAGE);
    let padding = format!("X-Pad: {}\r\n", "p".repeat(200)).repeat(600);
    let text = String::from_utf8(signed_message).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let big = format!("{head}\r\n{padding}\r\n{body}");
    let results = verify(big.as_bytes(), &[], NOW);
    assert_eq!(
        verdicts(&results),
        vec![(
            Verdict::Policy,
            Some(Reason::HeaderSectionTooLarge { limit: 102_400 })
        )]
    );
    assert_eq!(results[0].selector(), Some("s"));
}

#[test]
fn one_question_per_key_and_dns_outcomes() {
    let k = seed_key();
    let signer = Signer::new(k.clone(), "example.org", "s").unwrap();
    let once = signed(&signer, MESSAGE);
    let twice = signed(
        &signer.with_canonicalization(Canonicalization::Simple, Canonicalization::Simple),
        &once,
    );
    let start = |message: &[u8]| {
        let mut v = Verifier::new(VerifierConfig::default());
        v.update(message);
        v.finish(at(NOW));
        v
    };
    let mut v = start(&twice);
    let questions: Vec<Question> = v.questions().collect();
    assert_eq!(
        questions,
        vec![Question::txt(
            Name::parse("s._domainkey.example.org").unwrap()
        )]
    );
    assert!(!v.is_ready());
    // Answers to other questions are ignored.
    let other = Question::txt(Name::parse("x._domainkey.example.org").unwrap());
    assert!(!v.handle_answer(&other, &Err(Failure::Timeout)));
    let name = questions[0].name().clone();
    let records = Records {
        name: name.clone(),
        ttl: 300,
        data: RecordData::Txt(vec![
            Txt::new(vec![b"v=spf1 -all".to_vec().into_boxed_slice()]),
            Txt::new(
                k.dns_record()
                    .as_bytes()
                    .chunks(20)
                    .map(|c| c.to_vec().into_boxed_slice())
                    .collect(),
            ),
        ]),
    };
    assert!(v.handle_answer(&questions[0], &Ok(Answer::Records(records))));
    assert!(
        !v.handle_answer(&questions[0], &Err(Failure::Timeout)),
        "a second answer"
    );
    assert!(v.is_ready());
    assert_eq!(verdicts(&v.into_results()), vec![(Verdict::Pass, None); 2]);

    let mut v = start(&once);
    let negative = Negative {
        name: name.clone(),
        ttl: None,
    };
    assert!(v.handle_answer(&questions[0], &Ok(Answer::NxDomain(negative.clone()))));
    assert_eq!(
        verdicts(&v.into_results()),
        vec![(Verdict::PermError, Some(Reason::NoKey))]
    );
    let mut v = start(&once);
    assert!(v.handle_answer(&questions[0], &Ok(Answer::NoData(negative))));
    assert_eq!(
        verdicts(&v.into_results()),
        vec![(Verdict::PermError, Some(Reason::NoKey))]
    );
    let mut v = start(&once);
    assert!(v.handle_answer(&questions[0], &Err(Failure::Timeout)));
    assert_eq!(
        verdicts(&v.into_results()),
        vec![(Verdict::TempError, Some(Reason::Dns(Failure::Timeout)))]
    );
    // Not answered at all.
    let v = start(&once);
    assert_eq!(
        verdicts(&v.into_results()),
        vec![(Verdict::TempError, Some(Reason::NoAnswer))]
    );
    // Only non-key records.
    let mut v = start(&once);
    assert!(v.handle_key(&name, KeyLookup::Records(vec![b"v=spf1 -all".to_vec()])));
    assert_eq!(
        verdicts(&v.into_results()),
        vec![(
            Verdict::PermError,
            Some(Reason::KeyRecord(KeyRecordError::UnsupportedVersion))
        )]
    );
}

#[test]
fn unsigned_and_odd_messages() {
    for message in [
        &b""[..],
        b"\r\n",
        b"\r\nbody only\r\n",
        b"From: a\r\n",
        MESSAGE,
        b"no header at all",
    ] {
        let mut v = Verifier::new(VerifierConfig::default());
        v.update(message);
        v.finish(at(NOW));
        assert!(v.is_ready());
        assert!(v.into_results().is_empty());
    }
    // A signed message whose body is missing entirely (no empty line).
    let signer = Signer::new(seed_key(), "example.org", "s").unwrap();
    let header_only = b"From: a@example.org\r\nSubject: x\r\n";
    let out = signed(&signer, header_only);
    let record = signer.key().dns_record();
    assert_eq!(
        verdicts(&verify(&out, &[("s._domainkey.example.org", &record)], NOW)),
        vec![(Verdict::Pass, None)]
    );
}

#[test]
fn resinfo_quotes_what_is_not_a_token() {
    let record = ed_records()[0].1.clone();
    let out = sign_raw(
        &seed_key(),
        &ED_TAGS.replace("bh=;", "i=\"odd=20user\"@example.org; bh=;"),
        MESSAGE,
    );
    let results = verify(&out, &[("s._domainkey.example.org", &record)], NOW);
    assert_eq!(verdicts(&results), vec![(Verdict::Pass, None)]);
    let resinfo = results[0].resinfo();
    assert!(
        resinfo.contains("header.i=\"\\\"odd user\\\"@example.org\""),
        "{resinfo}"
    );
    let failed = verify(&out, &[], NOW);
    assert!(
        failed[0]
            .resinfo()
            .starts_with("dkim=permerror reason=\"no key for signature\" header.d=example.org")
    );
    assert_eq!(RESINFO_NONE, "dkim=none");
}

#[test]
fn verifier_and_signers_can_move_to_a_worker() {
    fn send<T: Send + 'static>() {}
    fn shared<T: Send + Sync + 'static>() {}
    // The mio server may finish a verification (its RSA operations) on a
    // worker thread; signers are shared by delivery threads.
    send::<Verifier>();
    send::<MessageSigner>();
    shared::<Signer>();
    shared::<SigningKey>();
    send::<DkimResult>();
}
