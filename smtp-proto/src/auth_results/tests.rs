use proptest::prelude::*;

use super::*;

fn parse(field: &str) -> AuthenticationResults {
    let value = field
        .strip_prefix("Authentication-Results:")
        .expect("a field");
    AuthenticationResults::parse(value.as_bytes()).unwrap_or_else(|e| panic!("{field}: {e}"))
}

fn props(r: &MethodResult) -> Vec<(&str, &str, &str)> {
    r.properties()
        .iter()
        .map(|p| (p.ptype(), p.property(), p.value()))
        .collect()
}

// RFC 8601 Appendix B, each example's fields.

#[test]
fn b2_service_provided_no_authentication_done() {
    let f = parse("Authentication-Results: example.org 1; none");
    assert_eq!(f.authserv_id(), "example.org");
    assert_eq!(f.version(), Some(1));
    assert!(f.results().is_empty());
}

#[test]
fn b3_service_provided_authentication_done() {
    let f = parse(
        "Authentication-Results: example.com;\r\n          spf=pass smtp.mailfrom=example.net",
    );
    assert_eq!(f.authserv_id(), "example.com");
    let [spf] = f.results() else { panic!() };
    assert_eq!((spf.method(), spf.result()), ("spf", "pass"));
    assert_eq!(props(spf), [("smtp", "mailfrom", "example.net")]);
}

#[test]
fn b4_several_authentications_single_mta() {
    let f = parse(
        "Authentication-Results: example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n          spf=pass smtp.mailfrom=example.net",
    );
    let [auth, spf] = f.results() else { panic!() };
    assert_eq!((auth.method(), auth.result()), ("auth", "pass"));
    assert_eq!(auth.comment(), None, "comments are not kept");
    assert_eq!(props(auth), [("smtp", "auth", "sender@example.net")]);
    assert_eq!(spf.property("smtp", "mailfrom"), Some("example.net"));
    let f = parse(
        "Authentication-Results: example.com; iprev=pass\r\n          policy.iprev=192.0.2.200",
    );
    let [iprev] = f.results() else { panic!() };
    assert_eq!(iprev.property("policy", "iprev"), Some("192.0.2.200"));
}

#[test]
fn b5_several_authentications_different_mtas() {
    let f = parse(
        "Authentication-Results: example.com;\r\n          dkim=pass (good signature) header.d=example.com",
    );
    assert_eq!(f.results()[0].property("header", "d"), Some("example.com"));
    let f = parse(
        "Authentication-Results: example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.com;\r\n          spf=fail smtp.mailfrom=example.com",
    );
    assert_eq!(f.results()[1].result(), "fail");
}

#[test]
fn b6_multi_tiered() {
    let f = parse(
        "Authentication-Results: example.com;\r\n      dkim=pass reason=\"good signature\"\r\n        header.i=@mail-router.example.net;\r\n      dkim=fail reason=\"bad signature\"\r\n        header.i=@newyork.example.com",
    );
    let [a, b] = f.results() else { panic!() };
    assert_eq!(a.reason(), Some("good signature"));
    assert_eq!(a.property("header", "i"), Some("@mail-router.example.net"));
    assert_eq!((b.result(), b.reason()), ("fail", Some("bad signature")));
    assert_eq!(f.of_method("DKIM").count(), 2);
}

#[test]
fn b7_comment_heavy() {
    let f = parse(
        "Authentication-Results: foo.example.net (foobar) 1 (baz);\r\n    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n      policy (A dot can go here) . (like that) expired\r\n      (this surprised me) = (as I wasn't expecting it) 1362471462",
    );
    assert_eq!((f.authserv_id(), f.version()), ("foo.example.net", Some(1)));
    let [dkim] = f.results() else { panic!() };
    assert_eq!(
        (dkim.method(), dkim.version(), dkim.result()),
        ("dkim", Some(1), "fail")
    );
    assert_eq!(props(dkim), [("policy", "expired", "1362471462")]);
    // Written back without the comments.
    assert_eq!(
        f.value(),
        "foo.example.net 1; dkim/1=fail policy.expired=1362471462"
    );
}

#[test]
fn lenient_where_harmless_strict_elsewhere() {
    let f = parse("Authentication-Results: example.com; dkim=pass header.b=gfT/i2HB;");
    assert_eq!(f.results()[0].property("header", "b"), Some("gfT/i2HB"));
    let f = parse("Authentication-Results: \"example.org\"; none");
    assert_eq!(f.authserv_id(), "example.org");
    for bad in [
        "",
        " ; ",
        "example.com",
        "example.com;",
        "example.com; dkim",
        "example.com; dkim=",
        "example.com; dkim=pass header",
        "example.com; dkim=pass header.d",
        "example.com; dkim=pass header.d=",
        "example.com; dkim=pass (unterminated",
        "example.com; dkim=pass reason=\"open",
        "example.com 99999999999; none",
        "example.com; -dkim=pass",
        "example.com; none; dkim=pass",
        "example.com; dkim=pass header.d=\"a\\\r\n\r\nb\"",
        "example.com; dkim=pass reason=\"nul\x00\"",
    ] {
        assert!(
            AuthenticationResults::parse(bad.as_bytes()).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn builds_folded_field_that_parses_back() {
    let field = AuthenticationResults::new("mx.example.org")
        .unwrap()
        .with(
            MethodResult::new("dkim", "pass")
                .unwrap()
                .with_comment("2048-bit key")
                .unwrap()
                .with_property("header", "d", "example.com")
                .unwrap()
                .with_property("header", "i", "@example.com")
                .unwrap()
                .with_property("header", "s", "selector2024")
                .unwrap()
                .with_property("header", "a", "rsa-sha256")
                .unwrap()
                .with_property("header", "b", "AbC/+9xY")
                .unwrap(),
        )
        .with(
            MethodResult::new("dkim", "fail")
                .unwrap()
                .with_reason("body hash did not verify")
                .unwrap()
                .with_property("header", "d", "example.net")
                .unwrap(),
        );
    let text = field.to_field();
    assert_eq!(
        text,
        "Authentication-Results: mx.example.org;\r\n\
         \tdkim=pass (2048-bit key) header.d=example.com header.i=@example.com\r\n\
         \theader.s=selector2024 header.a=rsa-sha256 header.b=\"AbC/+9xY\";\r\n\
         \tdkim=fail reason=\"body hash did not verify\" header.d=example.net\r\n"
    );
    for line in text.split("\r\n") {
        assert!(line.len() <= MAX_LINE, "{line:?}");
    }
    let back = parse(text.trim_end());
    let mut expected = field;
    expected.results[0].comment = None;
    assert_eq!(back, expected);
}

#[test]
fn none_and_quoting() {
    let f = AuthenticationResults::new("mx.example.org").unwrap();
    assert_eq!(
        f.to_field(),
        "Authentication-Results: mx.example.org; none\r\n"
    );
    let r = MethodResult::new("Auth", "PASS")
        .unwrap()
        .with_property("smtp", "auth", "a \"quoted\" user\\name")
        .unwrap()
        .with_comment("nested (comment)")
        .unwrap();
    assert_eq!(
        r.to_string(),
        "auth=pass (nested \\(comment\\)) smtp.auth=\"a \\\"quoted\\\" user\\\\name\""
    );
    let back = AuthenticationResults::parse(format!("x; {r}").as_bytes()).unwrap();
    assert_eq!(
        back.results()[0].property("smtp", "auth"),
        Some("a \"quoted\" user\\name")
    );
}

#[test]
fn builders_refuse_what_could_break_the_field() {
    assert!(matches!(
        MethodResult::new("dk im", "pass"),
        Err(BuildError::NotKeyword(_))
    ));
    assert!(matches!(
        MethodResult::new("dkim", "-pass"),
        Err(BuildError::NotKeyword(_))
    ));
    assert!(matches!(
        Property::new("header", "d", "x\r\nInjected: yes"),
        Err(BuildError::ControlCharacter(_))
    ));
    assert!(matches!(
        MethodResult::new("dkim", "pass")
            .unwrap()
            .with_reason("a\nb"),
        Err(BuildError::ControlCharacter(_))
    ));
    assert!(matches!(
        AuthenticationResults::new(""),
        Err(BuildError::Empty)
    ));
    assert!(matches!(
        AuthenticationResults::new("mx\r\n"),
        Err(BuildError::ControlCharacter(_))
    ));
}

#[test]
fn authserv_id_alone() {
    assert_eq!(
        authserv_id(b" mx.example.org (c); garbage =").as_deref(),
        Some("mx.example.org")
    );
    assert_eq!(
        authserv_id(b"\"mx.example.org\"; none").as_deref(),
        Some("mx.example.org")
    );
    assert_eq!(authserv_id(b"  ; none"), None);
}

const MESSAGE: &str = "Received: from a\r\n\
Authentication-Results: MX.example.org.;\r\n\
\tdkim=pass header.d=forged.example\r\n\
Authentication-Results: other.example; dkim=pass header.d=real.example\r\n\
Authentication-Results: mx.example.org (no results, malformed)\r\n\
Subject: Authentication-Results: mx.example.org; dkim=pass\r\n\
Authentication-Results:\r\n mx.example.org; spf=pass\r\n\
X-Long: 1\r\n\
\r\n\
Authentication-Results: mx.example.org; body text stays\r\n";

const FILTERED: &str = "Received: from a\r\n\
Authentication-Results: other.example; dkim=pass header.d=real.example\r\n\
Subject: Authentication-Results: mx.example.org; dkim=pass\r\n\
X-Long: 1\r\n\
\r\n\
Authentication-Results: mx.example.org; body text stays\r\n";

fn filtered(pieces: &[&[u8]]) -> (Vec<u8>, usize) {
    let mut filter = ForgedFilter::new("mx.example.org");
    let mut out = Vec::new();
    for piece in pieces {
        filter.update(piece, &mut out);
    }
    filter.finish(&mut out);
    (out, filter.removed())
}

#[test]
fn filter_removes_our_fields_only_at_every_cut() {
    let m = MESSAGE.as_bytes();
    for cut in 0..=m.len() {
        let (out, removed) = filtered(&[&m[..cut], &m[cut..]]);
        assert_eq!(String::from_utf8_lossy(&out), FILTERED, "cut at {cut}");
        assert_eq!(removed, 3);
    }
    let bytes: Vec<&[u8]> = m.chunks(1).collect();
    assert_eq!(filtered(&bytes).0, FILTERED.as_bytes());
}

#[test]
fn filter_edges() {
    // Ends inside a held field: judged at finish.
    assert_eq!(
        filtered(&[b"Authentication-Results: mx.example.org"]).0,
        b""
    );
    assert_eq!(
        filtered(&[b"Authentication-Results: other"]).0,
        b"Authentication-Results: other"
    );
    // A header section only, and a lone CR.
    assert_eq!(filtered(&[b"A: b\r\n"]).0, b"A: b\r\n");
    assert_eq!(filtered(&[b"A: b\r\n\r"]).0, b"A: b\r\n\r");
    // A field too long to hold is judged by its start.
    let mut long = b"Authentication-Results: mx.example.org ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 5000));
    long.extend_from_slice(b"\r\n\r\nbody");
    let (out, removed) = filtered(&[&long]);
    assert_eq!((out.as_slice(), removed), (&b"\r\nbody"[..], 1));
    let mut other = b"X-Other: ".to_vec();
    other.extend(std::iter::repeat_n(b'y', 5000));
    assert_eq!(filtered(&[&other]).0, other);
}

proptest! {
    #[test]
    fn parse_never_panics(s in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = AuthenticationResults::parse(&s);
        let _ = authserv_id(&s);
    }

    #[test]
    fn built_fields_parse_back(
        id in "[a-z0-9]{1,20}(\\.[a-z0-9]{1,20}){0,3}",
        method in "[a-z][a-z0-9-]{0,10}[a-z0-9]",
        result in "[a-z]{1,10}",
        reason in proptest::option::of("[ -~]{1,60}"),
        values in proptest::collection::vec("[ -~]{1,90}", 0..5),
    ) {
        let mut r = MethodResult::new(&method, &result).unwrap();
        if let Some(reason) = &reason {
            r = r.with_reason(reason).unwrap();
        }
        for (i, v) in values.iter().enumerate() {
            r = r.with_property("header", &format!("p{i}"), v).unwrap();
        }
        let field = AuthenticationResults::new(&id).unwrap().with(r);
        let text = field.to_field();
        let value = text.strip_prefix("Authentication-Results:").unwrap();
        prop_assert_eq!(AuthenticationResults::parse(value.as_bytes()).unwrap(), field);
    }

    #[test]
    fn filter_is_identity_without_our_fields(
        m in "([A-Z][a-z-]{0,10}: [ -~]{0,40}\r\n){0,6}\r\n[ -~\r\n]{0,60}",
        cut in 0usize..200,
    ) {
        let b = m.as_bytes();
        let cut = cut.min(b.len());
        let (out, removed) = filtered(&[&b[..cut], &b[cut..]]);
        prop_assert_eq!(out, b);
        prop_assert_eq!(removed, 0);
    }
}
