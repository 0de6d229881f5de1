//! DMARC record parsing and the `From:` domain parser on arbitrary bytes:
//! no panic; a parsed record's percentage stays within 0–100.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::dmarc::{Record, from_domain};

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = Record::parse(data) {
        assert!(record.pct <= 100);
    }
    if let Ok(domain) = from_domain(data) {
        assert!(!domain.as_str().is_empty());
    }
});
