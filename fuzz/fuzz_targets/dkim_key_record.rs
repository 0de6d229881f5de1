//! Arbitrary bytes as a DKIM key record (a TXT record's joined strings): no
//! panic, and a record that parses holds a usable key description.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::dkim::{KeyRecord, KeyType, PublicKey};

fuzz_target!(|data: &[u8]| {
    let Ok(record) = KeyRecord::parse(data) else {
        return;
    };
    match record.public_key() {
        PublicKey::Rsa(rsa) => {
            assert_eq!(record.key_type(), KeyType::Rsa);
            // Magnitudes without leading zeros; the size follows from them.
            assert!(rsa.modulus().first().is_some_and(|&b| b != 0));
            assert!(rsa.exponent().first().is_some_and(|&b| b != 0));
            let bits = rsa.bits();
            assert!(bits > (rsa.modulus().len() as u32 - 1) * 8);
            assert!(bits <= rsa.modulus().len() as u32 * 8);
        }
        PublicKey::Ed25519(_) => assert_eq!(record.key_type(), KeyType::Ed25519),
        PublicKey::Revoked => {}
        _ => {}
    }
    let _ = (record.allows_sha256(), record.allows_email());
    let _ = (record.is_testing(), record.is_strict_identity());
});
