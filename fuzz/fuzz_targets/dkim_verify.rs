//! Verification of arbitrary messages, cut anywhere, with key lookups
//! answered by a good Ed25519 record, the RFC 8463 RSA record, NXDOMAIN, a
//! DNS failure or arbitrary record bytes: no panic, and bounded work — at
//! most `max_signatures` lookups, one result per `DKIM-Signature` field.
//!
//! Input layout (raw bytes, so that seeds are easy to write):
//! byte 0 picks the answers, byte 1 the chunk size (0: whole), byte 2 the
//! time, bytes 3–4 the length of an arbitrary key record that follows,
//! then the message.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use smtp_proto::dkim::{KeyLookup, Reason, SigningKey, Verdict, Verifier, VerifierConfig};
use smtp_proto::dns::Failure;

/// RFC 8463 Appendix A.1's Ed25519 seed: the seeds in the corpus are
/// signed with it, for `s._domainkey.example.org`.
const SEED: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
    0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
    0x7f, 0x60,
];
const RSA_1024: &str = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
/// The signing time of the seeds.
const NOW: u64 = 1_790_000_000;

fn ed25519_record() -> &'static str {
    static RECORD: OnceLock<String> = OnceLock::new();
    RECORD.get_or_init(|| {
        SigningKey::ed25519_from_seed(&SEED)
            .expect("a 32-octet seed")
            .dns_record()
    })
}

fuzz_target!(|data: &[u8]| {
    let [answers, chunk, time, len_hi, len_lo, rest @ ..] = data else {
        return;
    };
    let record_len = usize::from(u16::from_be_bytes([*len_hi, *len_lo])).min(rest.len());
    let (record, message) = rest.split_at(record_len);
    let config = VerifierConfig::default();
    let max_signatures = config.max_signatures;
    let mut verifier = Verifier::new(config);
    let chunk = if *chunk == 0 { usize::MAX } else { usize::from(*chunk) };
    for piece in message.chunks(chunk.min(message.len().max(1))) {
        verifier.update(piece);
    }
    let now = match time {
        0 => NOW,
        t => NOW.wrapping_add(u64::from(*t) * 3600).wrapping_sub(128 * 3600),
    };
    verifier.finish(SystemTime::UNIX_EPOCH + Duration::from_secs(now));
    let questions: Vec<_> = verifier.questions().collect();
    assert!(questions.len() <= max_signatures);
    for (i, q) in questions.iter().enumerate() {
        let lookup = match (answers >> (i % 4 * 2)) & 3 {
            0 => KeyLookup::Records(vec![ed25519_record().as_bytes().to_vec()]),
            1 if answers & 0x80 != 0 => KeyLookup::Records(vec![RSA_1024.as_bytes().to_vec()]),
            1 => KeyLookup::Failed(Failure::Timeout),
            2 => KeyLookup::NotFound,
            _ => KeyLookup::Records(vec![record.to_vec(), ed25519_record().as_bytes().to_vec()]),
        };
        assert!(verifier.handle_key(q.name(), lookup));
        // A second answer is refused.
        assert!(!verifier.handle_key(q.name(), KeyLookup::NotFound));
    }
    assert!(verifier.is_ready());
    let results = verifier.into_results();
    // One result per DKIM-Signature field: never more than the message
    // holds such names (one extra for an over-long header section).
    let fields = memchr::memmem::find_iter(&message.to_ascii_lowercase(), b"dkim-signature").count();
    assert!(results.len() <= fields + 1, "{} results, {fields} fields", results.len());
    let mut checked = 0;
    for r in &results {
        match r.reason() {
            None => assert_eq!(r.verdict(), Verdict::Pass),
            Some(reason) => assert_eq!(r.verdict(), reason.verdict()),
        }
        if !matches!(
            r.reason(),
            Some(Reason::Signature(_) | Reason::TooManySignatures { .. } | Reason::TooManySignedFields { .. } | Reason::HeaderSectionTooLarge { .. })
        ) {
            checked += 1;
        }
        let resinfo = r.resinfo();
        assert!(!resinfo.contains('\r') && !resinfo.contains('\n'));
    }
    assert!(checked <= max_signatures);
});
