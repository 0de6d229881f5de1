//! Reply codec: known answers with their encode inverse, error cases, and
//! property tests.

use proptest::prelude::*;
use smtp_proto::reply::{
    EnhancedStatusCode as Esc, Reply, ReplyAssembler, ReplyCode, ReplyError, ReplyLimits,
    ReplyTextError,
};

fn code(n: u16) -> ReplyCode {
    ReplyCode::new(n).unwrap()
}

fn esc(s: &str) -> Esc {
    s.parse().unwrap()
}

/// Parses `wire` both ways (whole buffer, and line by line) and checks both
/// agree with the expected value and consume exactly `wire`.
fn parse_both(wire: &[u8]) -> Result<Reply<'_>, ReplyError> {
    let whole = Reply::parse(wire)?.map(|(r, used)| {
        assert_eq!(used, wire.len(), "consumed");
        r
    });
    let mut asm = ReplyAssembler::default();
    let mut got = None;
    let mut lines = wire.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        if lines.peek().is_none() {
            assert!(line.is_empty(), "wire must end with CRLF");
            break;
        }
        assert!(got.is_none(), "reply completed before its last line");
        got = asm.push_line(line.strip_suffix(b"\r").unwrap())?;
    }
    let whole = whole.expect("complete reply");
    assert_eq!(
        got.as_ref(),
        Some(&whole),
        "assembler and buffer parser agree"
    );
    assert!(!asm.is_partial());
    Ok(whole)
}

/// (wire, code, enhanced, lines, canonical encoding when it differs from wire)
type Kat = (
    &'static str,
    u16,
    Option<&'static str>,
    &'static [&'static str],
    Option<&'static str>,
);

const KATS: &[Kat] = &[
    // Single line.
    ("250 Ok\r\n", 250, None, &["Ok"], None),
    ("250\r\n", 250, None, &[""], None),
    ("250 \r\n", 250, None, &[""], Some("250\r\n")),
    ("250  two spaces\r\n", 250, None, &[" two spaces"], None),
    (
        "550 5.1.1 <x@y>: Recipient address rejected\r\n",
        550,
        Some("5.1.1"),
        &["<x@y>: Recipient address rejected"],
        None,
    ),
    ("250 2.0.0\r\n", 250, Some("2.0.0"), &[""], None),
    (
        "250 2.0.0 \r\n",
        250,
        Some("2.0.0"),
        &[""],
        Some("250 2.0.0\r\n"),
    ),
    (
        "250 2.01.0 Ok\r\n",
        250,
        Some("2.1.0"),
        &["Ok"],
        Some("250 2.1.0 Ok\r\n"),
    ),
    // An enhanced code of another class is text.
    ("550 2.0.0 odd\r\n", 550, None, &["2.0.0 odd"], None),
    (
        "354 3.5.0 go ahead\r\n",
        354,
        None,
        &["3.5.0 go ahead"],
        None,
    ),
    // Not followed by SP or end: text.
    ("250 2.0.0-x\r\n", 250, None, &["2.0.0-x"], None),
    ("250 2.0.0.1 x\r\n", 250, None, &["2.0.0.1 x"], None),
    ("250 2.0.0000 x\r\n", 250, None, &["2.0.0000 x"], None),
    // RFC 5321 Appendix D.
    (
        "220 foo.com Simple Mail Transfer Service Ready\r\n",
        220,
        None,
        &["foo.com Simple Mail Transfer Service Ready"],
        None,
    ),
    (
        "250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n",
        250,
        None,
        &["foo.com greets bar.com", "8BITMIME", "SIZE", "DSN", "HELP"],
        None,
    ),
    (
        "354 Start mail input; end with <CRLF>.<CRLF>\r\n",
        354,
        None,
        &["Start mail input; end with <CRLF>.<CRLF>"],
        None,
    ),
    (
        "221 foo.com Service closing transmission channel\r\n",
        221,
        None,
        &["foo.com Service closing transmission channel"],
        None,
    ),
    (
        "553 User ambiguous\r\n",
        553,
        None,
        &["User ambiguous"],
        None,
    ),
    (
        "251 User not local; will forward to <Jones@XYZ.COM>\r\n",
        251,
        None,
        &["User not local; will forward to <Jones@XYZ.COM>"],
        None,
    ),
    // Multi-line, enhanced code on every line (Postfix).
    (
        "550-5.7.1 Relaying denied\r\n550 5.7.1 See policy\r\n",
        550,
        Some("5.7.1"),
        &["Relaying denied", "See policy"],
        None,
    ),
    // Enhanced code on the first line only: read the same, written on all.
    (
        "550-5.7.1 Relaying denied\r\n550 See policy\r\n",
        550,
        Some("5.7.1"),
        &["Relaying denied", "See policy"],
        Some("550-5.7.1 Relaying denied\r\n550 5.7.1 See policy\r\n"),
    ),
    // A different enhanced code on a later line stays text.
    (
        "450-4.7.0 a\r\n450 4.7.1 b\r\n",
        450,
        Some("4.7.0"),
        &["a", "4.7.1 b"],
        Some("450-4.7.0 a\r\n450 4.7.0 4.7.1 b\r\n"),
    ),
    // No enhanced code on line 1: later lines untouched.
    (
        "250-hello\r\n250 2.0.0 x\r\n",
        250,
        None,
        &["hello", "2.0.0 x"],
        None,
    ),
    // Empty continuation lines.
    ("250-\r\n250-\r\n250\r\n", 250, None, &["", "", ""], None),
    (
        "250-a\r\n250 \r\n",
        250,
        None,
        &["a", ""],
        Some("250-a\r\n250\r\n"),
    ),
    // UTF-8 text (RFC 6531).
    (
        "550 5.1.1 Benutzer unbekannt: jöran@bücher.de\r\n",
        550,
        Some("5.1.1"),
        &["Benutzer unbekannt: jöran@bücher.de"],
        None,
    ),
    // Tab in text.
    ("250 a\tb\r\n", 250, None, &["a\tb"], None),
    // AUTH challenge.
    ("334 VXNlcm5hbWU6\r\n", 334, None, &["VXNlcm5hbWU6"], None),
    ("334 \r\n", 334, None, &[""], Some("334\r\n")),
];

#[test]
fn known_answers_and_inverse() {
    for &(wire, c, e, lines, canonical) in KATS {
        let reply = parse_both(wire.as_bytes()).unwrap_or_else(|err| panic!("{wire:?}: {err}"));
        assert_eq!(reply.code(), code(c), "{wire:?}");
        assert_eq!(reply.enhanced_code(), e.map(esc), "{wire:?}");
        assert_eq!(reply.lines(), lines, "{wire:?}");
        let encoded = reply.to_bytes();
        assert_eq!(
            String::from_utf8(encoded.clone()).unwrap(),
            canonical.unwrap_or(wire),
            "encode inverse of {wire:?}"
        );
        // The canonical form parses to the same value.
        assert_eq!(parse_both(&encoded).unwrap(), reply, "{wire:?}");
        // And the constructors build the same value.
        let built = Reply::multiline(code(c), e.map(esc), lines.iter().copied());
        if canonical.is_none() || e.is_some() || !lines[0].is_empty() {
            assert_eq!(built.as_ref(), Ok(&reply), "{wire:?}");
        }
    }
}

#[test]
fn borrowed_text() {
    let wire = b"250-mx.example.com\r\n250 2.0.0 Ok\r\n";
    let (reply, _) = Reply::parse(wire).unwrap().unwrap();
    // Every line is a slice of the input, not a copy.
    let range = wire.as_ptr_range();
    assert!(
        reply
            .lines()
            .all(|l| range.contains(&l.as_ptr()) && l.len() <= wire.len())
    );
    let owned: Reply<'static> = reply.clone().into_owned();
    assert_eq!(owned, reply);
}

#[test]
fn invalid_utf8_is_lossy() {
    let (reply, used) = Reply::parse(b"550 bad \xff\xfe text\r\n").unwrap().unwrap();
    assert_eq!(used, 17);
    assert_eq!(reply.lines(), ["bad \u{fffd}\u{fffd} text"]);
    let mut asm = ReplyAssembler::default();
    let r2 = asm.push_line(b"550 bad \xff\xfe text").unwrap().unwrap();
    assert_eq!(r2, reply);
}

#[test]
fn pipelined_replies_in_one_buffer() {
    let wire = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n";
    let mut rest = &wire[..];
    let mut codes = Vec::new();
    while let Some((reply, used)) = Reply::parse(rest).unwrap() {
        codes.push((reply.code().as_u16(), reply.enhanced_code()));
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    assert_eq!(
        codes,
        [
            (250, Some(Esc::ADDRESS_OK)),
            (250, Some(Esc::DESTINATION_VALID)),
            (354, None)
        ]
    );
}

#[test]
fn incomplete_is_not_complete() {
    for partial in [
        &b""[..],
        b"2",
        b"250",
        b"250 Ok",
        b"250 Ok\r",
        b"250-a\r\n",
        b"250-a\r\n250-b\r\n250 c",
    ] {
        assert_eq!(Reply::parse(partial), Ok(None), "{partial:?}");
    }
    let mut asm = ReplyAssembler::default();
    assert_eq!(asm.push_line(b"250-a"), Ok(None));
    assert_eq!(asm.push_line(b"250-b"), Ok(None));
    assert!(asm.is_partial());
    assert_eq!(asm.pending_lines(), 2);
    asm.reset();
    assert!(!asm.is_partial());
    assert_eq!(
        asm.push_line(b"250 c").unwrap().unwrap().lines(),
        ["c"],
        "reset forgets the partial reply"
    );
}

#[test]
fn errors() {
    let cases: &[(&[u8], ReplyError)] = &[
        (
            b"250-a\r\n251 b\r\n",
            ReplyError::MixedCodes {
                expected: code(250),
                found: code(251),
            },
        ),
        (
            b"250-a\r\n550 b\r\n",
            ReplyError::MixedCodes {
                expected: code(250),
                found: code(550),
            },
        ),
        (b"Ok\r\n", ReplyError::MissingCode),
        (b"\r\n", ReplyError::MissingCode),
        (b"25\r\n", ReplyError::MissingCode),
        (b"2x0 Ok\r\n", ReplyError::MissingCode),
        (b" 250 Ok\r\n", ReplyError::MissingCode),
        (b"600 Ok\r\n", ReplyError::InvalidCode(600)),
        (b"260 Ok\r\n", ReplyError::InvalidCode(260)),
        (b"199 Ok\r\n", ReplyError::InvalidCode(199)),
        (b"000\r\n", ReplyError::InvalidCode(0)),
        (b"2500 Ok\r\n", ReplyError::BadSeparator('0')),
        (b"250:Ok\r\n", ReplyError::BadSeparator(':')),
        (b"250\tOk\r\n", ReplyError::BadSeparator('\t')),
        (b"250 a\rb\r\n", ReplyError::InvalidChar('\r')),
        (b"250 a\0b\r\n", ReplyError::InvalidChar('\0')),
        (b"250 Ok\n", ReplyError::BareLineFeed),
        (b"250-a\r\n250 b\n", ReplyError::BareLineFeed),
        (b"250-a\r\n25", ReplyError::MissingCode),
    ];
    for (wire, err) in cases {
        // The last case is incomplete for the buffer parser: check it via
        // the assembler only.
        if wire.ends_with(b"\n") {
            assert_eq!(Reply::parse(wire).as_ref().err(), Some(err), "{wire:?}");
        }
        let mut asm = ReplyAssembler::default();
        let mut result = Ok(None);
        for line in wire.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            result = asm.push_line(line);
            if result.is_err() {
                break;
            }
        }
        if *err != ReplyError::BareLineFeed {
            assert_eq!(result.as_ref().err(), Some(err), "assembler {wire:?}");
            assert!(!asm.is_partial(), "error discards the partial reply");
        }
    }
    // A line handed to the assembler must not contain its CRLF.
    assert_eq!(
        ReplyAssembler::default().push_line(b"250 Ok\r\n"),
        Err(ReplyError::InvalidChar('\r'))
    );
}

#[test]
fn limits() {
    let limits = ReplyLimits {
        max_lines: 3,
        max_bytes: 40,
    };
    assert!(
        Reply::parse_with(b"250-a\r\n250-b\r\n250 c\r\n", &limits)
            .unwrap()
            .is_some()
    );
    assert_eq!(
        Reply::parse_with(b"250-a\r\n250-b\r\n250-c\r\n250 d\r\n", &limits),
        Err(ReplyError::TooManyLines { max: 3 })
    );
    // 4 lines arriving one by one: the fourth is refused.
    let mut asm = ReplyAssembler::new(limits);
    for line in [&b"250-a"[..], b"250-b", b"250-c"] {
        assert_eq!(asm.push_line(line), Ok(None));
    }
    assert_eq!(
        asm.push_line(b"250 d"),
        Err(ReplyError::TooManyLines { max: 3 })
    );
    // Bytes: 3 lines of 17 bytes each (with CRLF) exceed 40.
    assert_eq!(
        Reply::parse_with(
            b"250-aaaaaaaaaaaa\r\n250-bbbbbbbbbbbb\r\n250 cccccccccccc\r\n",
            &limits
        ),
        Err(ReplyError::TooLong { max: 40 })
    );
    // A first line longer than the limit.
    assert_eq!(
        Reply::parse_with(
            &[b"250 ".as_slice(), &[b'x'; 60], b"\r\n"].concat(),
            &limits
        ),
        Err(ReplyError::TooLong { max: 40 })
    );
    // An unterminated buffer beyond the limit is refused, not waited on.
    assert_eq!(
        Reply::parse_with(&[b"250 ".as_slice(), &[b'x'; 60]].concat(), &limits),
        Err(ReplyError::TooLong { max: 40 })
    );
    // Defaults: 128 lines pass, 129 do not.
    let many = |n: usize| {
        let mut v = Vec::new();
        for _ in 1..n {
            v.extend_from_slice(b"250-X\r\n");
        }
        v.extend_from_slice(b"250 X\r\n");
        v
    };
    assert_eq!(
        Reply::parse(&many(128)).unwrap().unwrap().0.lines().len(),
        128
    );
    assert_eq!(
        Reply::parse(&many(129)),
        Err(ReplyError::TooManyLines { max: 128 })
    );
}

#[test]
fn constructors() {
    let r = Reply::new(ReplyCode::OK, "Ok").unwrap();
    assert_eq!(r.to_bytes(), b"250 Ok\r\n");
    assert_eq!(r.first_line(), "Ok");
    assert!(r.is_positive_completion() && r.is_positive());
    let r = Reply::new(ReplyCode::OK, "").unwrap();
    assert_eq!(r.to_bytes(), b"250\r\n");
    let r = Reply::with_enhanced(ReplyCode::START_MAIL_INPUT, Esc::SUCCESS, "go");
    assert_eq!(
        r,
        Err(ReplyTextError::ClassMismatch {
            code: ReplyCode::START_MAIL_INPUT,
            enhanced: Esc::SUCCESS
        })
    );
    for bad in ["a\r\nMAIL FROM:<x>", "a\rb", "a\nb", "a\0b"] {
        assert!(matches!(
            Reply::new(ReplyCode::OK, bad),
            Err(ReplyTextError::InvalidChar { line: 0, .. })
        ));
    }
    assert_eq!(
        Reply::builder(ReplyCode::OK)
            .line("a")
            .line("b\r\n")
            .build(),
        Err(ReplyTextError::InvalidChar { line: 1, ch: '\r' })
    );
    assert_eq!(
        Reply::builder(ReplyCode::OK).build(),
        Err(ReplyTextError::NoLines)
    );
    assert_eq!(
        Reply::new(ReplyCode::OK, "2.0.0 Ok"),
        Err(ReplyTextError::AmbiguousText)
    );
    assert_eq!(
        Reply::new(ReplyCode::OK, "2.0.0"),
        Err(ReplyTextError::AmbiguousText)
    );
    // Of another class, or not followed by SP: plain text.
    assert!(Reply::new(ReplyCode::MAILBOX_UNAVAILABLE, "2.0.0 Ok").is_ok());
    assert!(Reply::new(ReplyCode::OK, "2.0.0-x").is_ok());
    // With an enhanced code, text may itself start with one.
    let r = Reply::with_enhanced(ReplyCode::OK, Esc::SUCCESS, "2.0.0 x").unwrap();
    assert_eq!(r.to_bytes(), b"250 2.0.0 2.0.0 x\r\n");
    assert_eq!(Reply::parse(&r.to_bytes()).unwrap().unwrap().0, r);
    let r = Reply::builder(ReplyCode::SERVICE_NOT_AVAILABLE)
        .enhanced(Esc::SYSTEM_TEMPORARY)
        .line("mx.example.com Service not available")
        .line("")
        .line("try later")
        .build()
        .unwrap();
    assert_eq!(
        r.to_bytes(),
        b"421-4.3.0 mx.example.com Service not available\r\n421-4.3.0\r\n421 4.3.0 try later\r\n"
    );
    assert_eq!(
        r.text(),
        "mx.example.com Service not available\n\ntry later"
    );
    assert!(r.is_transient_negative());
}

fn reply_code() -> impl Strategy<Value = ReplyCode> {
    (2u16..=5, 0u16..=5, 0u16..=9).prop_map(|(a, b, c)| code(a * 100 + b * 10 + c))
}

/// Text that the constructors accept: anything without CR, LF, NUL,
/// including UTF-8, tabs, leading spaces and digits.
fn safe_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        "[ \t0-9.a-zA-Zäöü€-]{0,30}",
        "[245]\\.[0-9]{1,3}\\.[0-9]{1,3}( [a-z ]{0,5})?",
        Just(String::new()),
    ]
}

prop_compose! {
    fn any_reply()(
        code in reply_code(),
        esc in proptest::option::of((0u16..=999, 0u16..=999)),
        lines in proptest::collection::vec(safe_text(), 1..8),
    ) -> Option<Reply<'static>> {
        let esc = esc.map(|(s, d)| Esc::new(code.first_digit(), s, d));
        let esc = match esc {
            Some(Ok(e)) => Some(e),
            Some(Err(_)) => None, // class 3: no enhanced code exists
            None => None,
        };
        Reply::multiline(code, esc, lines).ok()
    }
}

proptest! {
    #[test]
    fn parse_encode_roundtrip(reply in any_reply()) {
        // `None` only when the first line looks like an enhanced code and
        // none was given: the constructor refuses that.
        if let Some(reply) = reply {
            let wire = reply.to_bytes();
            let (parsed, used) = Reply::parse(&wire).unwrap().unwrap();
            prop_assert_eq!(used, wire.len());
            prop_assert_eq!(&parsed, &reply);
            let mut asm = ReplyAssembler::default();
            let mut got = None;
            for line in wire.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                prop_assert!(got.is_none());
                got = asm.push_line(line.strip_suffix(b"\r").unwrap()).unwrap();
            }
            prop_assert_eq!(got, Some(reply));
        }
    }

    #[test]
    fn random_lines_never_panic_or_exceed_limits(
        lines in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..20),
                "(250|550|251)[ -]?[ -~]{0,10}".prop_map(String::into_bytes),
            ],
            0..40,
        ),
        max_lines in 1usize..10,
        max_bytes in 1usize..200,
    ) {
        let limits = ReplyLimits { max_lines, max_bytes };
        let mut asm = ReplyAssembler::new(limits);
        for line in &lines {
            if let Ok(Some(reply)) = asm.push_line(line) {
                prop_assert!(reply.lines().len() <= max_lines);
                // Whatever was parsed encodes to something that parses back
                // to the same value (parse . encode is idempotent on parsed
                // replies, not only on constructed ones).
                let bytes = reply.to_bytes();
                let re = Reply::parse(&bytes).unwrap().unwrap().0;
                prop_assert_eq!(re, reply);
            }
            prop_assert!(asm.pending_lines() <= max_lines);
        }
        // The same bytes as one buffer.
        let mut buf = Vec::new();
        for line in &lines {
            buf.extend_from_slice(line);
            buf.extend_from_slice(b"\r\n");
        }
        let mut rest = &buf[..];
        while let Ok(Some((reply, used))) = Reply::parse_with(rest, &limits) {
            prop_assert!(used > 0 && used <= rest.len());
            prop_assert!(used <= max_bytes);
            prop_assert!(reply.lines().len() <= max_lines);
            rest = &rest[used..];
        }
    }

    #[test]
    fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Reply::parse(&buf);
        let mut asm = ReplyAssembler::default();
        for line in buf.split(|&b| b == b'\n') {
            let _ = asm.push_line(line);
        }
    }
}
