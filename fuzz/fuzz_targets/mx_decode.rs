//! Arbitrary DNS response bytes into the MX and address decoders: no panic,
//! and any hosts returned come sorted by preference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::mx::{AddressQuery, MxAnswer, MxQuery};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    // Use the id in the input so the decoder gets past the id check.
    let id = rest
        .get(..2)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let query = MxQuery::new(id, "example.org").expect("a valid domain");
    if let Ok(MxAnswer::Hosts(hosts)) = query.decode(rest, u64::from(seed)) {
        assert!(!hosts.is_empty());
        assert!(
            hosts
                .windows(2)
                .all(|w| w[0].preference() <= w[1].preference())
        );
    }
    let _ = AddressQuery::a(id, "mx.example.org")
        .expect("a valid domain")
        .decode(rest);
    let _ = AddressQuery::aaaa(id, "mx.example.org")
        .expect("a valid domain")
        .decode(rest);
    let _ = smtp_proto::mx::parse_tcp_frame(rest);
});
