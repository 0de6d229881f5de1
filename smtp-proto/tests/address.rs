//! Known answers, error cases and round trips for `smtp_proto::address`.

use core::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use smtp_proto::address::{
    AddressError, AddressLiteral, Domain, ForwardPath, Host, LocalPart, Mailbox, ReversePath,
};

#[path = "support/address_strategies.rs"]
mod address_strategies;
use address_strategies::{forward_path, host, mailbox, reverse_path};

fn enc_rp(p: &ReversePath<'_>) -> String {
    let mut out = Vec::new();
    p.encode(&mut out);
    String::from_utf8(out).unwrap()
}

fn enc_fp(p: &ForwardPath<'_>) -> String {
    let mut out = Vec::new();
    p.encode(&mut out);
    String::from_utf8(out).unwrap()
}

/// (wire, decoded local part, host as displayed, canonical wire, is_utf8)
const REVERSE_PATHS: &[(&str, &str, &str, &str, bool)] = &[
    (
        "<Smith@bar.com>",
        "Smith",
        "bar.com",
        "<Smith@bar.com>",
        false,
    ),
    ("<JQP@bar.com>", "JQP", "bar.com", "<JQP@bar.com>", false),
    ("<a.b.c@d-e.f>", "a.b.c", "d-e.f", "<a.b.c@d-e.f>", false),
    (
        "<!#$%&'*+/=?^_`{|}~-@x.y>",
        "!#$%&'*+/=?^_`{|}~-",
        "x.y",
        "<!#$%&'*+/=?^_`{|}~-@x.y>",
        false,
    ),
    (
        "<\"john\\ doe\"@example.org>",
        "john doe",
        "example.org",
        "<\"john doe\"@example.org>",
        false,
    ),
    (
        "<\"john doe\"@example.org>",
        "john doe",
        "example.org",
        "<\"john doe\"@example.org>",
        false,
    ),
    (
        "<\"a\\\"b\\\\c\"@example.org>",
        "a\"b\\c",
        "example.org",
        "<\"a\\\"b\\\\c\"@example.org>",
        false,
    ),
    // A quoted local part that is a valid dot-string is re-encoded bare.
    (
        "<\"plain\"@example.org>",
        "plain",
        "example.org",
        "<plain@example.org>",
        false,
    ),
    (
        "<\"\\p\\l\\a\\i\\n\"@example.org>",
        "plain",
        "example.org",
        "<plain@example.org>",
        false,
    ),
    (
        "<\"\"@example.org>",
        "",
        "example.org",
        "<\"\"@example.org>",
        false,
    ),
    (
        "<\"a..b\"@example.org>",
        "a..b",
        "example.org",
        "<\"a..b\"@example.org>",
        false,
    ),
    (
        "<user@[192.0.2.1]>",
        "user",
        "[192.0.2.1]",
        "<user@[192.0.2.1]>",
        false,
    ),
    (
        "<user@[IPv6:2001:db8::1]>",
        "user",
        "[IPv6:2001:db8::1]",
        "<user@[IPv6:2001:db8::1]>",
        false,
    ),
    (
        "<user@[ipv6:2001:DB8:0:0:0:0:0:1]>",
        "user",
        "[IPv6:2001:db8::1]",
        "<user@[IPv6:2001:db8::1]>",
        false,
    ),
    (
        "<user@[IPv6:::ffff:192.0.2.1]>",
        "user",
        "[IPv6:::ffff:192.0.2.1]",
        "<user@[IPv6:::ffff:192.0.2.1]>",
        false,
    ),
    (
        "<user@[x-tag:some;content]>",
        "user",
        "[x-tag:some;content]",
        "<user@[x-tag:some;content]>",
        false,
    ),
    // Source routes are accepted and dropped (RFC 5321 §4.1.1.3, App. C).
    (
        "<@foo.com:Jones@XYZ.COM>",
        "Jones",
        "XYZ.COM",
        "<Jones@XYZ.COM>",
        false,
    ),
    (
        "<@a.example,@b.example:user@c.example>",
        "user",
        "c.example",
        "<user@c.example>",
        false,
    ),
    // Underscores in labels (lenient; see the module docs).
    (
        "<u@my_host.example>",
        "u",
        "my_host.example",
        "<u@my_host.example>",
        false,
    ),
    // SMTPUTF8 (RFC 6531).
    (
        "<用户@例子.广告>",
        "用户",
        "例子.广告",
        "<用户@例子.广告>",
        true,
    ),
    (
        "<ascii@bücher.example>",
        "ascii",
        "bücher.example",
        "<ascii@bücher.example>",
        true,
    ),
    (
        "<\"jörg doe\"@example.org>",
        "jörg doe",
        "example.org",
        "<\"jörg doe\"@example.org>",
        true,
    ),
];

#[test]
fn reverse_path_known_answers() {
    for &(wire, local, host, canonical, utf8) in REVERSE_PATHS {
        let p = ReversePath::parse(wire).unwrap_or_else(|e| panic!("{wire}: {e}"));
        let m = p.mailbox().unwrap();
        assert_eq!(m.local_part().as_str(), local, "{wire}");
        assert_eq!(m.host().to_string(), host, "{wire}");
        assert_eq!(p.is_utf8(), utf8, "{wire}");
        assert_eq!(enc_rp(&p), canonical, "{wire}");
        assert_eq!(p.to_string(), canonical, "{wire}");
        assert_eq!(ReversePath::parse(canonical).unwrap(), p, "{wire}");
        // The same text is a valid forward-path.
        let f = ForwardPath::parse(wire).unwrap();
        assert_eq!(enc_fp(&f), canonical);
    }
}

#[test]
fn null_and_postmaster() {
    assert_eq!(ReversePath::parse("<>").unwrap(), ReversePath::Null);
    assert_eq!(enc_rp(&ReversePath::Null), "<>");
    assert!(ForwardPath::parse("<>").is_err());
    for pm in [
        "<Postmaster>",
        "<postmaster>",
        "<POSTMASTER>",
        "<PostMaster>",
    ] {
        let f = ForwardPath::parse(pm).unwrap();
        assert_eq!(f, ForwardPath::Postmaster);
        assert_eq!(enc_fp(&f), "<Postmaster>");
        assert!(!f.is_utf8());
    }
    // <Postmaster@domain> is an ordinary mailbox.
    let f = ForwardPath::parse("<Postmaster@example.org>").unwrap();
    assert_eq!(f.mailbox().unwrap().local_part().as_str(), "Postmaster");
    // A bare "<Postmaster>" is not a valid reverse-path.
    assert!(ReversePath::parse("<Postmaster>").is_err());
}

#[test]
fn literals() {
    assert_eq!(
        AddressLiteral::parse("[192.0.2.1]").unwrap(),
        AddressLiteral::Ipv4(Ipv4Addr::new(192, 0, 2, 1))
    );
    assert_eq!(
        AddressLiteral::parse("[IPv6:2001:db8::1]").unwrap(),
        AddressLiteral::Ipv6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
    );
    for bad in [
        "[256.0.0.1]",
        "[1.2.3]",
        "[1.2.3.4.5]",
        "[IPv6:2001:db8::g]",
        "[IPv6:1.2.3.4]",
        "[IPv6:]",
        "[tag:]",
        "[tag-:x]",
        "[]",
        "[a b]",
        "[1.2.3.4",
        "[a[b:c]",
        "[IPv6:fe80::1%eth0]",
    ] {
        assert!(AddressLiteral::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        AddressLiteral::parse("[300.1.1.1]"),
        Err(AddressError::InvalidAddressLiteral)
    );
    let g = AddressLiteral::general("x-tag", "abc").unwrap();
    assert_eq!(g.to_string(), "[x-tag:abc]");
    assert!(AddressLiteral::general("IPv6", "::1").is_err());
    assert!(AddressLiteral::general("x", "a]b").is_err());
    assert!(AddressLiteral::general("x", "a\r\nb").is_err());
    let h: Host<'_> = AddressLiteral::from(Ipv6Addr::LOCALHOST).into();
    assert_eq!(h.to_string(), "[IPv6:::1]");
}

#[test]
fn domains() {
    for ok in [
        "a",
        "example.org",
        "EXAMPLE.ORG",
        "a-b.c-d.e",
        "1.2.3.4",
        "xn--bcher-kva.example",
        "bücher.example",
        "_dmarc.example.org",
        "win_host",
    ] {
        let d = Domain::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(d.as_str(), ok);
    }
    assert_eq!(
        Domain::new("Example.ORG").unwrap(),
        Domain::new("example.org").unwrap()
    );
    for bad in [
        "",
        ".",
        "a.",
        ".a",
        "a..b",
        "-a",
        "a-",
        "a.-b",
        "a b",
        "a@b",
        "[1.2.3.4]",
    ] {
        assert!(Domain::new(bad).is_err(), "{bad:?}");
    }
    let label63 = "a".repeat(63);
    assert!(Domain::new(&label63).is_ok());
    assert_eq!(
        Domain::new(&"a".repeat(64)),
        Err(AddressError::LabelTooLong)
    );
    // 4 * 63 + 3 dots = 255 octets: the longest domain.
    let d255 = [label63.as_str(); 4].join(".");
    assert_eq!(d255.len(), 255);
    assert!(Domain::new(&d255).is_ok());
    let d257 = format!("{d255}.b");
    assert_eq!(
        Domain::new(&d257),
        Err(AddressError::DomainTooLong { len: 257 })
    );
}

#[test]
fn length_limits() {
    let l64 = "a".repeat(64);
    let l65 = "a".repeat(65);
    assert!(Mailbox::parse(&format!("{l64}@x.example")).is_ok());
    assert_eq!(
        Mailbox::parse(&format!("{l65}@x.example")),
        Err(AddressError::LocalPartTooLong { len: 65 })
    );
    assert_eq!(
        ReversePath::parse(&format!("<{l65}@x.example>")),
        Err(AddressError::LocalPartTooLong { len: 65 })
    );
    assert!(LocalPart::new(&l64).is_ok());
    assert_eq!(
        LocalPart::new(&l65),
        Err(AddressError::LocalPartTooLong { len: 65 })
    );
    // Quoting counts: 62 characters + a space quote to 65 octets.
    let spaced = format!("{} b", "a".repeat(60));
    assert_eq!(LocalPart::new(&spaced).unwrap().encoded_len(), 64);
    let spaced = format!("{} b", "a".repeat(61));
    assert_eq!(
        LocalPart::new(&spaced),
        Err(AddressError::LocalPartTooLong { len: 65 })
    );
    // Path: 256 octets including brackets is the maximum.
    let label = "d".repeat(63);
    let domain = format!("{label}.{label}.{label}.{}", "d".repeat(60)); // 252 octets
    assert_eq!(domain.len(), 252);
    let ok = format!("<a@{domain}>"); // 1 + 1 + 1 + 252 + 1 = 256
    assert_eq!(ok.len(), 256);
    assert!(ReversePath::parse(&ok).is_ok());
    let long = format!("<ab@{domain}>");
    assert_eq!(
        ReversePath::parse(&long),
        Err(AddressError::PathTooLong { len: 257 })
    );
    assert_eq!(
        ForwardPath::parse(&long),
        Err(AddressError::PathTooLong { len: 257 })
    );
    let lp = LocalPart::new("ab").unwrap();
    let d = Domain::new(&domain).unwrap();
    assert_eq!(
        Mailbox::new(lp, d),
        Err(AddressError::PathTooLong { len: 257 })
    );
    // A source route counts towards the path length as received.
    let route = vec!["r".repeat(60); 4].join(".");
    let routed = format!("<@{route},@{route}:a@b.c>");
    assert!(matches!(
        ReversePath::parse(&routed),
        Err(AddressError::PathTooLong { .. })
    ));
}

#[test]
fn syntax_errors() {
    for bad in [
        "",
        "<",
        ">",
        "<a>",
        "<a@>",
        "<@b>",
        "a@b",
        "<a@b",
        "a@b>",
        "<a@b> ",
        "<<a@b>>",
        "<a@@b>",
        "<a..b@c>",
        "<.a@c>",
        "<a.@c>",
        "<a b@c>",
        "<\"a@c>",
        "<\"a\"b@c>",
        "<\"a\\\"@c>",
        "<@foo.com,Jones@XYZ.COM>",
        "<@foo.com:>",
        "<a@b..c>",
        "<a@b.>",
        "<a@[1.2.3.4>",
        "<a\"@b>",
    ] {
        assert!(ReversePath::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn constructors_reject_controls() {
    for c in ['\r', '\n', '\0', '\t', '\x7f', '\u{85}'] {
        let s = format!("a{c}b");
        assert_eq!(
            LocalPart::new(&s),
            Err(AddressError::ForbiddenChar(c)),
            "{c:?}"
        );
        assert_eq!(
            Domain::new(&s),
            Err(AddressError::ForbiddenChar(c)),
            "{c:?}"
        );
        let m = format!("a{c}@b.example");
        assert_eq!(Mailbox::parse(&m), Err(AddressError::ForbiddenChar(c)));
        let p = format!("<a@b.example{c}>");
        assert_eq!(ReversePath::parse(&p), Err(AddressError::ForbiddenChar(c)));
        assert_eq!(ForwardPath::parse(&p), Err(AddressError::ForbiddenChar(c)));
        assert_eq!(Host::parse(&s), Err(AddressError::ForbiddenChar(c)));
    }
    // Quoted strings cannot carry a control either, escaped or not.
    assert!(ReversePath::parse("<\"a\\\u{7f}\"@b>").is_err());
}

#[test]
fn into_owned_is_static() {
    let s = String::from("<\"x y\"@[IPv6:::1]>");
    let owned: ReversePath<'static> = ReversePath::parse(&s).unwrap().into_owned();
    drop(s);
    assert_eq!(owned.to_string(), "<\"x y\"@[IPv6:::1]>");
}

// ---------------------------------------------------------------------------
// proptest: generators of valid values only (shared with the command tests).

proptest! {
    #[test]
    fn mailbox_round_trip(m in mailbox()) {
        let wire = m.to_string();
        let mut enc = Vec::new();
        m.encode(&mut enc);
        prop_assert_eq!(enc.as_slice(), wire.as_bytes());
        prop_assert_eq!(enc.len(), m.encoded_len());
        let back = Mailbox::parse(&wire).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.is_utf8(), !wire.is_ascii());
    }

    #[test]
    fn paths_round_trip(r in reverse_path(), f in forward_path()) {
        let (rw, fw) = (enc_rp(&r), enc_fp(&f));
        prop_assert_eq!(ReversePath::parse(&rw).unwrap(), r);
        prop_assert_eq!(ForwardPath::parse(&fw).unwrap(), f);
    }

    #[test]
    fn host_round_trip(h in host()) {
        let wire = h.to_string();
        prop_assert_eq!(Host::parse(&wire).unwrap(), h);
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,40}|[<>@\\[\\]\":\\\\., a-z0-9]{0,40}") {
        let _ = ReversePath::parse(&s);
        let _ = ForwardPath::parse(&s);
        let _ = Mailbox::parse(&s);
        let _ = Domain::new(&s);
        let _ = Host::parse(&s);
        let _ = AddressLiteral::parse(&s);
        if let Ok(p) = ReversePath::parse(&s) {
            // Whatever parses re-encodes to something that parses to it.
            let wire = enc_rp(&p);
            prop_assert_eq!(ReversePath::parse(&wire).unwrap(), p);
        }
    }
}
