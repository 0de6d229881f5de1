//! Arbitrary bytes as the value of a `DKIM-Signature` field: no panic, and
//! a field that parses keeps the rules RFC 6376 §6.1.1 checks without DNS.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::dkim::Signature;

fuzz_target!(|data: &[u8]| {
    let Ok(sig) = Signature::parse(data) else {
        return;
    };
    // From is always signed; i= lies within d=; x= after t=.
    assert!(sig.signed_headers().iter().any(|h| h == "from"));
    assert!(sig.signed_headers().iter().all(|h| !h.is_empty() && !h.contains(':')));
    if let Some(identity) = sig.identity() {
        assert!(identity.is_in(sig.domain()));
    }
    if let (Some(t), Some(x)) = (sig.timestamp(), sig.expiration()) {
        assert!(x > t);
    }
    assert!(!sig.signature().is_empty());
    assert!(sig.b_prefix().len() <= 8);
    // The key's name is a valid DNS name (the constructor checked it).
    let name = sig.key_name();
    assert!(name.as_str().ends_with(sig.domain().as_str()));
    assert!(name.as_str().starts_with(sig.selector()));
});
