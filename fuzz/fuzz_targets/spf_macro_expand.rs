//! The RFC 7208 §7 macro language on arbitrary text: parsing never
//! panics, an expansion is never longer than `MAX_EXPANSION`, and
//! expansion of a domain-spec never yields a dotted name longer than 253
//! characters.
//!
//! Byte 0 picks the client address (IPv4 or IPv6) and whether the text is
//! an explanation; the rest is the macro string.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use smtp_proto::spf::{MAX_EXPANDED_DOMAIN, MAX_EXPANSION, MacroContext, MacroString};

fuzz_target!(|data: &[u8]| {
    let [flags, rest @ ..] = data else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let ip: IpAddr = if flags & 1 == 0 {
        "192.0.2.3".parse().unwrap()
    } else {
        "2001:db8::cb01".parse().unwrap()
    };
    let parsed = if flags & 2 == 0 {
        MacroString::parse(text)
    } else {
        MacroString::parse_explanation(text)
    };
    let Ok(m) = parsed else { return };
    let ctx = MacroContext {
        local_part: "strong-bad+tag",
        sender_domain: "email.example.com",
        domain: "email.example.com",
        ip,
        validated: (flags & 4 != 0).then_some("mx.example.org"),
        helo: "mx.example.org",
        receiver: "receiver.example.net",
        timestamp: 1_790_000_000,
    };
    if let Some(text) = m.expand(&ctx) {
        assert!(text.len() <= MAX_EXPANSION);
    }
    if let Some(domain) = m.expand_domain(&ctx) {
        assert!(domain.len() <= MAX_EXPANDED_DOMAIN || !domain.contains('.'));
    }
});
