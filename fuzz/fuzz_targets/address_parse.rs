//! Arbitrary text as a path, mailbox or domain: no panic; whatever parses
//! re-encodes within the RFC 5321 §4.5.3.1 limits and re-parses to the same
//! value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::address::{Domain, ForwardPath, MAX_PATH_LEN, Mailbox, ReversePath};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = ReversePath::parse(s) {
        let wire = p.to_string();
        assert!(wire.len() <= MAX_PATH_LEN, "{wire}");
        assert_eq!(ReversePath::parse(&wire).expect("re-parses"), p);
    }
    if let Ok(p) = ForwardPath::parse(s) {
        let wire = p.to_string();
        assert!(wire.len() <= MAX_PATH_LEN, "{wire}");
        assert_eq!(ForwardPath::parse(&wire).expect("re-parses"), p);
    }
    if let Ok(m) = Mailbox::parse(s) {
        let wire = m.to_string();
        assert_eq!(Mailbox::parse(&wire).expect("re-parses"), m);
        assert_eq!(m.is_utf8(), !wire.is_ascii());
    }
    if let Ok(d) = Domain::new(s) {
        assert_eq!(Domain::new(&d.to_string()).expect("re-parses"), d);
    }
});
