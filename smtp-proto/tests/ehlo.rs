//! EHLO reply: real server replies, odd lines, server-side building and the
//! Extensions -> reply -> Extensions round trip.

use proptest::prelude::*;
use smtp_proto::ehlo::{EhloError, EhloParam, EhloReply, Extension, Extensions, Limits};
use smtp_proto::keyword::{Keyword, Mechanism};
use smtp_proto::reply::{Reply, ReplyCode};

fn reply(wire: &str) -> Reply<'_> {
    let (reply, used) = Reply::parse(wire.as_bytes()).unwrap().unwrap();
    assert_eq!(used, wire.len());
    reply
}

fn mechs(names: &[&'static str]) -> Vec<Mechanism<'static>> {
    names.iter().map(|n| Mechanism::new(n).unwrap()).collect()
}

fn other(keyword: &'static str, params: &[&'static str]) -> Extension<'static> {
    Extension::Other {
        keyword: Keyword::new(keyword).unwrap(),
        params: params.iter().map(|p| EhloParam::new(p).unwrap()).collect(),
    }
}

/// Parses, checks the extensions, and checks that encoding the parsed value
/// and parsing it again gives the same extensions.
fn check(
    wire: &str,
    domain: &str,
    greeting: &str,
    expected: &[Extension<'static>],
) -> Extensions<'static> {
    let r = reply(wire);
    let ehlo = EhloReply::parse(&r).unwrap();
    assert_eq!(ehlo.domain(), domain, "{wire:?}");
    assert_eq!(ehlo.greeting(), greeting, "{wire:?}");
    let got: Vec<_> = ehlo.extensions().iter().cloned().collect();
    assert_eq!(got, expected, "{wire:?}");
    let mut out = Vec::new();
    ehlo.encode(&mut out);
    let again = Reply::parse(&out).unwrap().unwrap().0;
    assert_eq!(again, ehlo.to_reply());
    let again = EhloReply::parse(&again).unwrap();
    assert_eq!(again.extensions(), ehlo.extensions());
    assert_eq!(
        ehlo.capabilities(),
        ehlo.extensions().capabilities(),
        "{wire:?}"
    );
    assert_eq!(again.capabilities(), ehlo.capabilities(), "{wire:?}");
    ehlo.into_owned().into_extensions()
}

#[test]
fn rfc5321_appendix_d() {
    let ext = check(
        "250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n",
        "foo.com",
        "greets bar.com",
        &[
            Extension::EightBitMime,
            Extension::Size(None),
            Extension::Dsn,
            Extension::Help,
        ],
    );
    assert!(ext.supports_8bitmime() && ext.supports_dsn() && ext.supports_help());
    assert!(ext.supports_size());
    assert_eq!(
        ext.max_size(),
        None,
        "SIZE without a number: no fixed limit"
    );
    assert!(!ext.supports_pipelining() && !ext.supports_starttls());
}

#[test]
fn postfix() {
    let wire = "250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n\
                250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n\
                250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";
    let ext = check(
        wire,
        "mail.example.com",
        "",
        &[
            Extension::Pipelining,
            Extension::Size(Some(10_240_000)),
            Extension::Vrfy,
            Extension::Etrn,
            Extension::StartTls,
            Extension::Auth(mechs(&["PLAIN", "LOGIN"])),
            Extension::EnhancedStatusCodes,
            Extension::EightBitMime,
            Extension::Dsn,
            Extension::SmtpUtf8,
            Extension::Chunking,
        ],
    );
    assert_eq!(ext.max_size(), Some(10_240_000));
    assert_eq!(ext.auth_mechanisms(), [Mechanism::PLAIN, Mechanism::LOGIN]);
    assert!(ext.supports_mechanism("plain") && !ext.supports_mechanism("XOAUTH2"));
    assert!(ext.supports_pipelining() && ext.supports_chunking() && ext.supports_smtputf8());
    assert!(ext.supports_enhanced_status_codes() && ext.supports_vrfy() && ext.supports_etrn());
    // The merged AUTH= line is not a duplicate.
    let r = reply(wire);
    assert!(EhloReply::parse(&r).unwrap().ignored_lines().is_empty());
}

#[test]
fn trailing_empty_line() {
    // Some servers end with a keyword-less `250 ` line.
    let r = reply("250-mx.example.net\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 \r\n");
    let ehlo = EhloReply::parse(&r).unwrap();
    assert_eq!(
        ehlo.extensions().iter().cloned().collect::<Vec<_>>(),
        [Extension::Pipelining, Extension::EightBitMime]
    );
    assert!(ehlo.ignored_lines().is_empty());
}

#[test]
fn exim() {
    let ext = check(
        "250-mail.example.org Hello client.example.net [192.0.2.1]\r\n250-SIZE 52428800\r\n\
         250-8BITMIME\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250-CHUNKING\r\n\
         250-STARTTLS\r\n250 HELP\r\n",
        "mail.example.org",
        "Hello client.example.net [192.0.2.1]",
        &[
            Extension::Size(Some(52_428_800)),
            Extension::EightBitMime,
            Extension::Pipelining,
            Extension::Auth(mechs(&["PLAIN", "LOGIN"])),
            Extension::Chunking,
            Extension::StartTls,
            Extension::Help,
        ],
    );
    assert_eq!(ext.max_size(), Some(52_428_800));
    assert!(ext.supports_starttls());
}

#[test]
fn gmail_like() {
    check(
        "250-smtp.gmail.com at your service, [192.0.2.7]\r\n250-SIZE 35882577\r\n\
         250-8BITMIME\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n\
         250-CHUNKING\r\n250 SMTPUTF8\r\n",
        "smtp.gmail.com",
        "at your service, [192.0.2.7]",
        &[
            Extension::Size(Some(35_882_577)),
            Extension::EightBitMime,
            Extension::StartTls,
            Extension::EnhancedStatusCodes,
            Extension::Pipelining,
            Extension::Chunking,
            Extension::SmtpUtf8,
        ],
    );
}

#[test]
fn case_insensitive_keywords() {
    let ext = check(
        "250-mx\r\n250-starttls\r\n250-auth plain login\r\n250-Pipelining\r\n250 size 1000\r\n",
        "mx",
        "",
        &[
            Extension::StartTls,
            Extension::Auth(mechs(&["plain", "login"])),
            Extension::Pipelining,
            Extension::Size(Some(1000)),
        ],
    );
    assert!(
        ext.supports_starttls(),
        "lower-case starttls must not be missed"
    );
    assert!(ext.supports_mechanism("PLAIN"));
    assert!(ext.contains("STARTTLS") && ext.contains("startTLS"));
    assert_eq!(ext.max_size(), Some(1000));
}

#[test]
fn old_auth_form() {
    let ext = check(
        "250-mx\r\n250 AUTH=LOGIN PLAIN\r\n",
        "mx",
        "",
        &[Extension::Auth(mechs(&["LOGIN", "PLAIN"]))],
    );
    assert!(ext.supports_auth());
    // Both forms merge without duplicates, in order of first appearance.
    check(
        "250-mx\r\n250-AUTH=LOGIN\r\n250-auth PLAIN LOGIN CRAM-MD5\r\n250 AUTH= XOAUTH2\r\n",
        "mx",
        "",
        &[Extension::Auth(mechs(&[
            "LOGIN", "PLAIN", "CRAM-MD5", "XOAUTH2",
        ]))],
    );
    check(
        "250-mx\r\n250 AUTH\r\n",
        "mx",
        "",
        &[Extension::Auth(vec![])],
    );
}

#[test]
fn size_zero_is_no_limit() {
    let ext = check(
        "250-mx\r\n250 SIZE 0\r\n",
        "mx",
        "",
        &[Extension::Size(Some(0))],
    );
    assert!(ext.supports_size());
    assert_eq!(ext.max_size(), None);
}

#[test]
fn parameterised_extensions() {
    let mut limits = Limits::new(Some(10), Some(100), None);
    limits
        .push_other(EhloParam::new("FUTURELIMIT=7").unwrap())
        .unwrap();
    let ext = check(
        "250-mx\r\n250-MT-PRIORITY MIXER\r\n250-DELIVERBY 240\r\n\
         250-FUTURERELEASE 604800 2012-10-19T00:00:00Z\r\n250-LIMITS rcptmax=100 MAILMAX=10 FUTURELIMIT=7\r\n\
         250-REQUIRETLS\r\n250-BINARYMIME\r\n250 X-EXPS GSSAPI NTLM\r\n",
        "mx",
        "",
        &[
            Extension::MtPriority(Some(Keyword::new("MIXER").unwrap())),
            Extension::DeliverBy(Some(240)),
            Extension::FutureRelease {
                max_interval: 604_800,
                max_datetime: EhloParam::new("2012-10-19T00:00:00Z").unwrap(),
            },
            Extension::Limits(limits),
            Extension::RequireTls,
            Extension::BinaryMime,
            other("X-EXPS", &["GSSAPI", "NTLM"]),
        ],
    );
    assert_eq!(ext.mt_priority().unwrap().unwrap().as_str(), "MIXER");
    assert!(
        ext.mt_priority()
            .unwrap()
            .unwrap()
            .is(smtp_proto::ehlo::MT_PRIORITY_MIXER)
    );
    assert_eq!(ext.deliver_by(), Some(Some(240)));
    assert_eq!(
        ext.future_release(),
        Some((604_800, "2012-10-19T00:00:00Z"))
    );
    let l = ext.limits().unwrap();
    assert_eq!(
        (l.mail_max, l.rcpt_max, l.rcpt_domain_max),
        (Some(10), Some(100), None)
    );
    assert_eq!(l.other(), [EhloParam::new("FUTURELIMIT=7").unwrap()]);
    assert!(ext.supports_requiretls() && ext.supports_binarymime());
    assert!(ext.contains("x-exps"));
    assert!(matches!(ext.get("X-EXPS"), Some(Extension::Other { .. })));
    check(
        "250-mx\r\n250-MT-PRIORITY\r\n250 DELIVERBY\r\n",
        "mx",
        "",
        &[Extension::MtPriority(None), Extension::DeliverBy(None)],
    );
}

#[test]
fn malformed_known_keywords_become_other() {
    let ext = check(
        "250-mx\r\n250-SIZE abc\r\n250-PIPELINING now\r\n\
         250-AUTH PLAIN THIS-MECHANISM-IS-TOO-LONG\r\n250-LIMITS RCPTMAX=x\r\n\
         250-FUTURERELEASE 10\r\n250 DELIVERBY -5\r\n",
        "mx",
        "",
        &[
            other("SIZE", &["abc"]),
            other("PIPELINING", &["now"]),
            other("AUTH", &["PLAIN", "THIS-MECHANISM-IS-TOO-LONG"]),
            other("LIMITS", &["RCPTMAX=x"]),
            other("FUTURERELEASE", &["10"]),
            other("DELIVERBY", &["-5"]),
        ],
    );
    assert_eq!(ext.max_size(), None);
    assert!(
        ext.contains("SIZE") && ext.contains("pipelining"),
        "still announced"
    );
    assert!(!ext.supports_pipelining() && !ext.supports_size() && !ext.supports_auth());
    assert!(ext.auth_mechanisms().is_empty());
    assert!(ext.limits().is_none());
    // A number too large for u64 is malformed too.
    check(
        "250-mx\r\n250 SIZE 99999999999999999999999\r\n",
        "mx",
        "",
        &[other("SIZE", &["99999999999999999999999"])],
    );
}

#[test]
fn odd_lines_are_kept_aside() {
    let r = reply(
        "250-mx.example.com\r\n250-SIZE 100\r\n250-SIZE 200\r\n250--BAD\r\n250-X\x01Y\r\n\
         250-X-OK caf\u{e9}\r\n250-AUTH=\r\n250-   \r\n250 8BITMIME   \r\n",
    );
    let ehlo = EhloReply::parse(&r).unwrap();
    assert_eq!(
        ehlo.extensions().iter().cloned().collect::<Vec<_>>(),
        [
            Extension::Size(Some(100)),
            Extension::Auth(vec![]),
            Extension::EightBitMime
        ]
    );
    assert_eq!(
        ehlo.ignored_lines(),
        ["SIZE 200", "-BAD", "X\x01Y", "X-OK caf\u{e9}"]
    );
    // Several spaces between parameters count as one.
    let r = reply("250-mx\r\n250 AUTH  PLAIN   LOGIN\r\n");
    assert_eq!(
        EhloReply::parse(&r).unwrap().extensions().auth_mechanisms(),
        [Mechanism::PLAIN, Mechanism::LOGIN]
    );
}

#[test]
fn single_line_and_errors() {
    let r = reply("250 mx.example.com\r\n");
    let ehlo = EhloReply::parse(&r).unwrap();
    assert_eq!(ehlo.domain(), "mx.example.com");
    assert!(ehlo.extensions().is_empty());
    let r = reply("250\r\n");
    assert_eq!(EhloReply::parse(&r).unwrap().domain(), "");
    let r = reply("502 5.5.1 EHLO not implemented\r\n");
    assert_eq!(
        EhloReply::parse(&r),
        Err(EhloError::NotOk(ReplyCode::COMMAND_NOT_IMPLEMENTED))
    );
    let r = reply("220 mx ESMTP\r\n");
    assert_eq!(
        EhloReply::parse(&r),
        Err(EhloError::NotOk(ReplyCode::SERVICE_READY))
    );
}

#[test]
fn server_side_build() {
    let ext: Extensions<'_> = [
        Extension::Pipelining,
        Extension::Size(Some(10_240_000)),
        Extension::Auth(mechs(&["PLAIN", "LOGIN", "PLAIN"])),
        Extension::StartTls,
        other("size", &["5"]),
    ]
    .into_iter()
    .collect();
    // The later SIZE replaced the first; the duplicate PLAIN is gone.
    assert_eq!(ext.max_size(), Some(5));
    assert_eq!(ext.auth_mechanisms(), [Mechanism::PLAIN, Mechanism::LOGIN]);
    let ehlo = EhloReply::new("mx.example.com", "at your service", ext.clone()).unwrap();
    let mut out = Vec::new();
    ehlo.encode(&mut out);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "250-mx.example.com at your service\r\n250-PIPELINING\r\n250-SIZE 5\r\n\
         250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"
    );
    assert_eq!(ehlo.to_reply().to_bytes(), out);
    let r = Reply::parse(&out).unwrap().unwrap().0;
    let back = EhloReply::parse(&r).unwrap();
    assert_eq!(back, ehlo);
    assert_eq!(back.extensions(), ext);

    let mut ext = ext;
    // Replacing a typed entry by a malformed one of the same keyword.
    assert_eq!(
        ext.insert(other("PIPELINING", &["x"])),
        Some(Extension::Pipelining)
    );
    assert!(!ext.supports_pipelining() && ext.contains("PIPELINING"));
    assert_eq!(
        ext.insert(Extension::Pipelining),
        Some(other("PIPELINING", &["x"]))
    );
    assert!(ext.supports_pipelining());
    assert_eq!(ext.remove("starttls"), Some(Extension::StartTls));
    assert!(!ext.supports_starttls() && !ext.contains("STARTTLS"));
    assert_eq!(ext.len(), 3);

    for (domain, greeting, err) in [
        ("", "", EhloError::InvalidDomain),
        ("mx example", "", EhloError::InvalidDomain),
        ("mx\r\nMAIL", "", EhloError::InvalidDomain),
        ("mx", "hi\r\n250 STARTTLS", EhloError::InvalidGreeting),
        ("mx", "a\0b", EhloError::InvalidGreeting),
        ("2.0.0", "", EhloError::InvalidGreeting),
    ] {
        assert_eq!(
            EhloReply::new(domain, greeting, Extensions::new()),
            Err(err),
            "{domain:?} {greeting:?}"
        );
    }
    // Limits refuse an "other" entry that names a typed limit.
    let mut l = Limits::default();
    assert!(l.push_other(EhloParam::new("rcptmax=5").unwrap()).is_err());
    assert!(EhloParam::new("a b").is_err() && EhloParam::new("").is_err());
}

fn keyword() -> impl Strategy<Value = Keyword<'static>> {
    prop_oneof![
        "[A-Za-z0-9][A-Za-z0-9-]{0,12}",
        prop::sample::select(vec![
            "SIZE",
            "AUTH",
            "LIMITS",
            "MT-PRIORITY",
            "DELIVERBY",
            "FUTURERELEASE",
            "starttls",
            "Pipelining",
        ])
        .prop_map(str::to_owned),
    ]
    .prop_map(|k| Keyword::new_owned(k).unwrap())
}

fn param() -> impl Strategy<Value = EhloParam<'static>> {
    prop_oneof!["[!-~]{1,12}", "[0-9]{1,4}", "[A-Z]{1,6}=[0-9]{1,3}"]
        .prop_map(|p| EhloParam::new_owned(p).unwrap())
}

fn extension() -> impl Strategy<Value = Extension<'static>> {
    let limits = (
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(param(), 0..3),
    )
        .prop_map(|(m, r, d, other)| {
            let mut l = Limits::new(m, r, d);
            for p in other {
                let _ = l.push_other(p);
            }
            Extension::Limits(l)
        });
    prop_oneof![
        proptest::option::of(any::<u64>()).prop_map(Extension::Size),
        proptest::collection::vec("[A-Za-z0-9_-]{1,20}", 0..5).prop_map(|m| {
            Extension::Auth(
                m.into_iter()
                    .map(|m| Mechanism::new_owned(m).unwrap())
                    .collect(),
            )
        }),
        Just(Extension::Pipelining),
        Just(Extension::EightBitMime),
        Just(Extension::BinaryMime),
        Just(Extension::Chunking),
        Just(Extension::SmtpUtf8),
        Just(Extension::Dsn),
        Just(Extension::EnhancedStatusCodes),
        Just(Extension::StartTls),
        Just(Extension::RequireTls),
        Just(Extension::Vrfy),
        Just(Extension::Etrn),
        Just(Extension::Help),
        proptest::option::of(keyword()).prop_map(Extension::MtPriority),
        proptest::option::of(any::<u64>()).prop_map(Extension::DeliverBy),
        (any::<u64>(), param()).prop_map(|(i, d)| Extension::FutureRelease {
            max_interval: i,
            max_datetime: d
        }),
        limits,
        (keyword(), proptest::collection::vec(param(), 0..4))
            .prop_map(|(keyword, params)| Extension::Other { keyword, params }),
    ]
}

proptest! {
    #[test]
    fn extensions_roundtrip(
        exts in proptest::collection::vec(extension(), 0..24),
        domain in "[a-z0-9][a-z0-9.-]{0,20}|\\[192\\.0\\.2\\.[0-9]{1,3}\\]",
        greeting in "[ -~]{0,30}",
    ) {
        let set: Extensions<'static> = exts.into_iter().collect();
        let ehlo = match EhloReply::new(domain.clone(), greeting.clone(), set.clone()) {
            Ok(e) => e,
            // Only a domain that reads as an enhanced status code.
            Err(e) => {
                prop_assert_eq!(e, EhloError::InvalidGreeting);
                prop_assert!(domain.starts_with('2'));
                return Ok(());
            }
        };
        let mut out = Vec::new();
        ehlo.encode(&mut out);
        prop_assert_eq!(&ehlo.to_reply().to_bytes(), &out);
        let (reply, used) = Reply::parse(&out).unwrap().unwrap();
        prop_assert_eq!(used, out.len());
        let back = EhloReply::parse(&reply).unwrap();
        prop_assert_eq!(back.domain(), domain.as_str());
        prop_assert_eq!(back.greeting(), greeting.as_str());
        prop_assert!(back.ignored_lines().is_empty());
        prop_assert_eq!(back.extensions(), set.clone());
        // Queries agree with the entries.
        prop_assert_eq!(back.extensions().len(), set.len());
        for e in &set {
            prop_assert!(back.extensions().contains(e.keyword()));
        }
    }

    #[test]
    fn any_text_never_panics(lines in proptest::collection::vec("[ -~\u{80}-\u{10ff}\t]{0,40}", 1..30)) {
        if let Ok(reply) = Reply::multiline(ReplyCode::OK, None, lines.iter().map(String::as_str)) {
            let ehlo = EhloReply::parse(&reply).unwrap();
            // Every line after the first is an extension, ignored, or empty.
            let empty = lines[1..].iter().filter(|l| l.trim_matches(' ').is_empty()).count();
            prop_assert!(ehlo.extensions().len() + ehlo.ignored_lines().len() + empty == lines.len() - 1);
            prop_assert_eq!(ehlo.capabilities(), ehlo.extensions().capabilities());
        }
    }
}

proptest! {
    /// Lines of known keywords with parameters that parse and that do not,
    /// repeated and mixed with malformed lines: the capabilities read in
    /// one pass agree with the typed set (the first line of a keyword
    /// counts, `Other` counts as announced, malformed lines do not).
    #[test]
    fn capabilities_match_the_typed_set(
        lines in prop::collection::vec(prop::sample::select(vec![
            "SIZE", "SIZE 100", "size 0", "SIZE abc", "SIZE 1 2", "SIZE=5", "SIZE \u{e9}",
            "AUTH PLAIN", "AUTH=LOGIN", "AUTH", "AUTH PL@IN", "AUTH= ", "AUTH=\u{e9}",
            "PIPELINING", "PIPELINING x", "pipelining", "-PIPELINING", "PIPELINING \u{e9}",
            "LIMITS MAILMAX=2", "LIMITS MAILMAX=2 MAILMAX=3", "LIMITS X=1", "LIMITS RCPTMAX=x",
            "MT-PRIORITY", "MT-PRIORITY MIXER", "MT-PRIORITY a b", "DELIVERBY 5", "DELIVERBY x",
            "FUTURERELEASE 60 2025-01-01T00:00:00Z", "FUTURERELEASE 60", "X-UNKNOWN 1", "",
            "  SIZE  7 ", "ENHANCEDSTATUSCODES", "ENHANCEDSTATUSCODES 1", "CHUNKING", "DSN",
        ]), 1..10),
    ) {
        let all: Vec<&str> = std::iter::once("mx.example.net").chain(lines.iter().copied()).collect();
        let built = Reply::multiline(ReplyCode::OK, None, all.iter().copied()).unwrap();
        let mut wire = Vec::new();
        built.encode(&mut wire);
        let (parsed, _) = Reply::parse(&wire).unwrap().unwrap();
        for reply in [&built, &parsed] {
            let ehlo = EhloReply::parse(reply).unwrap();
            let typed = ehlo.extensions();
            prop_assert_eq!(ehlo.capabilities(), typed.capabilities());
            prop_assert_eq!(ehlo.capabilities().max_size(), typed.max_size());
            prop_assert_eq!(ehlo.capabilities().supports_auth(), typed.supports_auth());
        }
    }
}

/// An EHLO line made of the pieces that matter to the keyword scanners:
/// known keywords in any case, unknown ones, parameters, runs of spaces,
/// `=`, long keywords, and bytes that are not keyword bytes.
fn ehlo_line() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            "PIPELINING", "8bitmime", "Dsn", "STARTTLS", "SIZE", "AUTH", "ENHANCEDSTATUSCODES",
            "CHUNKING", "SMTPUTF8", "VRFY", "HELP", "MT-PRIORITY", "LIMITS", "DELIVERBY",
            "BINARYMIME", "REQUIRETLS", "ETRN", "FUTURERELEASE", "X-EXPS", "PIPE_CONNECT",
        ])
        .prop_map(str::to_owned),
        2 => Just(" ".to_owned()),
        1 => Just("=".to_owned()),
        1 => "[0-9]{1,4}".prop_map(|s| s),
        1 => "[A-Za-z\\-]{1,20}".prop_map(|s| s),
        1 => Just("PLAIN LOGIN".to_owned()),
        1 => prop::sample::select(vec![
            "AUTH=", "MAILMAX=5", "RCPTMAX=1 RCPTMAX=2", "rcptdomainmax=x", "X=1", " 0",
            " 2025-01-01T00:00:00Z", "\t", " a\u{1}",
        ])
        .prop_map(str::to_owned),
        1 => Just("\u{e9}".to_owned()),
    ];
    prop::collection::vec(piece, 0..5).prop_map(|v| v.concat())
}

proptest! {
    /// A received reply is read in one pass over its wire form; a reply
    /// built line by line goes through `Reply::lines`. Both must agree.
    #[test]
    fn wire_pass_matches_line_by_line(lines in prop::collection::vec(ehlo_line(), 1..8)) {
        let mut all = vec!["mx.example.net hi".to_owned()];
        all.extend(lines);
        let mut wire = String::new();
        for (i, l) in all.iter().enumerate() {
            let sep = if i + 1 == all.len() { ' ' } else { '-' };
            wire.push_str(&format!("250{sep}{l}\r\n"));
        }
        let (parsed, _) = Reply::parse(wire.as_bytes()).unwrap().unwrap();
        let built = Reply::multiline(ReplyCode::OK, None, all.iter().map(String::as_str)).unwrap();
        prop_assert_eq!(&parsed, &built);
        let a = EhloReply::parse(&parsed).unwrap();
        let b = EhloReply::parse(&built).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.ignored_lines(), b.ignored_lines());
        // The one pass for the capabilities decides as the typed set does.
        prop_assert_eq!(a.capabilities(), a.extensions().capabilities());
        prop_assert_eq!(b.capabilities(), b.extensions().capabilities());
        let order = |e: &EhloReply<'_>| e.extensions().iter().map(|x| x.keyword().to_owned()).collect::<Vec<_>>();
        prop_assert_eq!(order(&a), order(&b));
    }
}
