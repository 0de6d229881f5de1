//! Known answers (with their encode inverse), error cases and round trips for
//! `smtp_proto::command`.

use core::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use smtp_proto::address::{
    AddressError, AddressLiteral, Domain, ForwardPath, Host, LocalPart, Mailbox, ReversePath,
};
use smtp_proto::command::{
    AddressType, Argument, AuthParam, Body, ByMode, Command, CommandError, DateTime, DeliverBy,
    EsmtpValue, Hold, InitialResponse, MailParameters, MoreMailParameters, MoreRcptParameters,
    MtPriority, Notify, NotifyOn, OriginalRecipient, Parameter, ParameterErrorKind, RcptParameters,
    Ret, Rrvs, RrvsAction,
};
use smtp_proto::keyword::{Keyword, Mechanism};
use smtp_proto::xtext::XText;

#[path = "support/address_strategies.rs"]
mod address_strategies;
use address_strategies::{forward_path, host as host_strategy, mailbox, reverse_path};

fn mb(s: &str) -> Mailbox<'_> {
    Mailbox::parse(s).unwrap()
}

fn from(s: &str) -> ReversePath<'_> {
    ReversePath::Mailbox(mb(s))
}

fn to(s: &str) -> ForwardPath<'_> {
    ForwardPath::Mailbox(mb(s))
}

fn host(s: &str) -> Host<'_> {
    Host::parse(s).unwrap()
}

fn mail(s: &str) -> Command<'_> {
    Command::Mail {
        from: from(s),
        params: MailParameters::default(),
    }
}

fn rcpt(s: &str) -> Command<'_> {
    Command::Rcpt {
        to: to(s),
        params: RcptParameters::default(),
    }
}

fn encode(c: &Command<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    c.encode(&mut out);
    out
}

/// Parses `line`, compares with `expected`, encodes, compares with
/// `canonical` (or `line` itself), and parses the encoding again.
fn kat(line: &str, expected: &Command<'_>, canonical: Option<&str>) {
    let parsed = Command::parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert_eq!(&parsed, expected, "{line:?}");
    let out = encode(&parsed);
    let want = format!("{}\r\n", canonical.unwrap_or(line));
    assert_eq!(String::from_utf8_lossy(&out), want, "{line:?}");
    let again = Command::parse(&out[..out.len() - 2]).unwrap();
    assert_eq!(&again, expected, "{line:?}");
}

#[test]
fn rfc5321_appendix_d() {
    // D.1 A Typical SMTP Transaction Scenario; D.2 Aborted SMTP Transaction
    // Scenario; D.3 Relayed Mail Scenario; D.4 Verifying and Sending Scenario.
    let table: &[(&str, Command<'_>)] = &[
        (
            "EHLO bar.com",
            Command::Ehlo {
                host: host("bar.com"),
            },
        ),
        ("MAIL FROM:<Smith@bar.com>", mail("Smith@bar.com")),
        ("RCPT TO:<Jones@foo.com>", rcpt("Jones@foo.com")),
        ("RCPT TO:<Green@foo.com>", rcpt("Green@foo.com")),
        ("RCPT TO:<Brown@foo.com>", rcpt("Brown@foo.com")),
        ("DATA", Command::Data),
        ("QUIT", Command::Quit),
        ("RSET", Command::Rset),
        (
            "EHLO foo.com",
            Command::Ehlo {
                host: host("foo.com"),
            },
        ),
        ("MAIL FROM:<JQP@bar.com>", mail("JQP@bar.com")),
        ("RCPT TO:<Jones@XYZ.COM>", rcpt("Jones@XYZ.COM")),
        (
            "VRFY Crispin",
            Command::Vrfy {
                target: Argument::new("Crispin").unwrap(),
            },
        ),
        ("MAIL FROM:<EAK@bar.com>", mail("EAK@bar.com")),
        ("RCPT TO:<Admin.MRC@foo.com>", rcpt("Admin.MRC@foo.com")),
    ];
    for (line, cmd) in table {
        kat(line, cmd, None);
    }
    // The RFC 2821 edition of D.3 used a source route; it is accepted and
    // dropped (RFC 5321 §4.1.1.3, Appendix C).
    kat(
        "RCPT TO:<@foo.com:Jones@XYZ.COM>",
        &rcpt("Jones@XYZ.COM"),
        Some("RCPT TO:<Jones@XYZ.COM>"),
    );
}

#[test]
fn verbs_and_case() {
    let table: &[(&str, Command<'_>, &str)] = &[
        ("mail from:<a@b>", mail("a@b"), "MAIL FROM:<a@b>"),
        ("Mail From:<a@b>", mail("a@b"), "MAIL FROM:<a@b>"),
        ("rcpt to:<a@b>", rcpt("a@b"), "RCPT TO:<a@b>"),
        ("MAIL FROM: <a@b>", mail("a@b"), "MAIL FROM:<a@b>"),
        ("RCPT TO:  <a@b>", rcpt("a@b"), "RCPT TO:<a@b>"),
        ("MAIL FROM:<a@b>   ", mail("a@b"), "MAIL FROM:<a@b>"),
        (
            "ehlo x.example",
            Command::Ehlo {
                host: host("x.example"),
            },
            "EHLO x.example",
        ),
        (
            "HELO x.example",
            Command::Helo {
                host: host("x.example"),
            },
            "HELO x.example",
        ),
        (
            "LHLO x.example",
            Command::Lhlo {
                host: host("x.example"),
            },
            "LHLO x.example",
        ),
        (
            "HELO  my_pc",
            Command::Helo {
                host: host("my_pc"),
            },
            "HELO my_pc",
        ),
        (
            "EHLO [192.0.2.1]",
            Command::Ehlo {
                host: host("[192.0.2.1]"),
            },
            "EHLO [192.0.2.1]",
        ),
        (
            "EHLO [IPv6:2001:db8::1]",
            Command::Ehlo {
                host: Host::Literal(AddressLiteral::Ipv6(Ipv6Addr::new(
                    0x2001, 0xdb8, 0, 0, 0, 0, 0, 1,
                ))),
            },
            "EHLO [IPv6:2001:db8::1]",
        ),
        ("data", Command::Data, "DATA"),
        ("DATA ", Command::Data, "DATA"),
        ("rset", Command::Rset, "RSET"),
        ("quit", Command::Quit, "QUIT"),
        ("StartTLS", Command::StartTls, "STARTTLS"),
        ("noop", Command::Noop { text: None }, "NOOP"),
        (
            "NOOP hello there",
            Command::Noop {
                text: Some(Argument::new("hello there").unwrap()),
            },
            "NOOP hello there",
        ),
        ("help", Command::Help { topic: None }, "HELP"),
        (
            "HELP mail",
            Command::Help {
                topic: Some(Argument::new("mail").unwrap()),
            },
            "HELP mail",
        ),
        (
            "expn Example-People",
            Command::Expn {
                list: Argument::new("Example-People").unwrap(),
            },
            "EXPN Example-People",
        ),
        (
            "VRFY <Smith@bar.com>",
            Command::Vrfy {
                target: Argument::new("<Smith@bar.com>").unwrap(),
            },
            "VRFY <Smith@bar.com>",
        ),
        (
            "BDAT 0 LAST",
            Command::Bdat {
                size: 0,
                last: true,
            },
            "BDAT 0 LAST",
        ),
        (
            "bdat 1000 last",
            Command::Bdat {
                size: 1000,
                last: true,
            },
            "BDAT 1000 LAST",
        ),
        (
            "BDAT 86",
            Command::Bdat {
                size: 86,
                last: false,
            },
            "BDAT 86",
        ),
        (
            "BDAT 18446744073709551615",
            Command::Bdat {
                size: u64::MAX,
                last: false,
            },
            "BDAT 18446744073709551615",
        ),
        (
            "BDAT 007",
            Command::Bdat {
                size: 7,
                last: false,
            },
            "BDAT 7",
        ),
    ];
    for (line, cmd, canonical) in table {
        kat(line, cmd, Some(canonical));
    }
}

#[test]
fn paths_in_commands() {
    kat(
        "MAIL FROM:<>",
        &Command::Mail {
            from: ReversePath::Null,
            params: MailParameters::default(),
        },
        None,
    );
    for pm in ["<Postmaster>", "<postmaster>", "<POSTMASTER>"] {
        kat(
            &format!("RCPT TO:{pm}"),
            &Command::Rcpt {
                to: ForwardPath::Postmaster,
                params: RcptParameters::default(),
            },
            Some("RCPT TO:<Postmaster>"),
        );
    }
    kat(
        "RCPT TO:<\"john\\ doe\"@example.org>",
        &rcpt("\"john doe\"@example.org"),
        Some("RCPT TO:<\"john doe\"@example.org>"),
    );
    kat(
        "RCPT TO:<user@[192.0.2.1]>",
        &rcpt("user@[192.0.2.1]"),
        None,
    );
    kat(
        "RCPT TO:<user@[IPv6:2001:db8::1]>",
        &rcpt("user@[IPv6:2001:db8::1]"),
        None,
    );
    let c = Command::parse(b"RCPT TO:<user@[192.0.2.1]>").unwrap();
    let Command::Rcpt { to, .. } = &c else {
        panic!("not RCPT")
    };
    assert_eq!(
        to.mailbox().unwrap().host(),
        &Host::Literal(AddressLiteral::Ipv4(Ipv4Addr::new(192, 0, 2, 1)))
    );
}

#[test]
fn utf8_is_reported() {
    let line = "MAIL FROM:<用户@例子.广告> SMTPUTF8";
    let c = Command::parse(line.as_bytes()).unwrap();
    assert!(c.needs_smtputf8());
    let Command::Mail { from, params } = &c else {
        panic!("not MAIL")
    };
    assert!(from.is_utf8());
    assert!(params.smtputf8);
    kat(line, &c, None);
    for (line, utf8) in [
        ("RCPT TO:<jörg@example.org>", true),
        ("RCPT TO:<jorg@bücher.example>", true),
        ("RCPT TO:<jorg@example.org>", false),
        ("RCPT TO:<a@b> X-NOTE=é", true),
        ("VRFY jörg", true),
        ("EHLO bücher.example", true),
        ("EHLO example", false),
        ("RCPT TO:<a@b> ORCPT=utf-8;j\\x{F6}rg@x", false),
        ("MAIL FROM:<a@b> ENVID=+C3+A9", false),
    ] {
        let c = Command::parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(c.needs_smtputf8(), utf8, "{line}");
    }
    assert_eq!(smtp_proto::command::SMTPUTF8_REQUIRED, (553, (5, 6, 7)));
}

#[test]
fn auth() {
    let plain = Mechanism::new("PLAIN").unwrap();
    kat(
        "AUTH PLAIN",
        &Command::Auth {
            mechanism: plain.clone(),
            initial_response: None,
        },
        None,
    );
    kat(
        "AUTH PLAIN =",
        &Command::Auth {
            mechanism: plain.clone(),
            initial_response: Some(InitialResponse::new(b"")),
        },
        None,
    );
    // RFC 4954 §4 example: "\0tim\0tanstaaftanstaaf".
    kat(
        "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm",
        &Command::Auth {
            mechanism: plain.clone(),
            initial_response: Some(InitialResponse::new(b"\0tim\0tanstaaftanstaaf")),
        },
        None,
    );
    kat(
        "auth login dXNlcg",
        &Command::Auth {
            mechanism: Mechanism::LOGIN,
            initial_response: Some(InitialResponse::new(b"user")),
        },
        Some("AUTH login dXNlcg=="),
    );
    kat(
        "AUTH SCRAM-SHA-256",
        &Command::Auth {
            mechanism: Mechanism::new("SCRAM-SHA-256").unwrap(),
            initial_response: None,
        },
        None,
    );
    // The initial response never appears in Debug output.
    let c = Command::parse(b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm").unwrap();
    assert!(!format!("{c:?}").contains("tanstaaf"));
}

fn err(line: &[u8]) -> CommandError {
    match Command::parse(line) {
        Ok(c) => panic!("{:?} parsed as {c:?}", String::from_utf8_lossy(line)),
        Err(e) => e,
    }
}

#[test]
fn errors() {
    use CommandError as E;
    for unknown in [
        &b"FOO"[..],
        b"",
        b" ",
        b" MAIL FROM:<a@b>",
        b"MAILX FROM:<a@b>",
        b"MAI",
        b"DATA\r",
        b"QUIT\0",
        b"STARTTLSX",
        b"SEND FROM:<a@b>",
        b"\xff\xfe\xfd\xfc",
        b"\xc3\xa9tat",
    ] {
        let e = err(unknown);
        assert_eq!(e, E::UnknownVerb, "{unknown:?}");
        assert_eq!(e.reply_code(), 500);
        assert_eq!(e.enhanced_status(), (5, 5, 1));
    }
    let syntax: &[&[u8]] = &[
        b"DATA now",
        b"QUIT please",
        b"RSET x",
        b"STARTTLS x",
        b"EHLO",
        b"HELO ",
        b"VRFY",
        b"EXPN  ",
        b"MAIL",
        b"MAIL TO:<a@b>",
        b"MAIL FROM<a@b>",
        b"RCPT FROM:<a@b>",
        b"RCPT TO:<a@b>x",
        b"MAIL FROM:<a@b>SIZE=1",
        b"AUTH",
        b"AUTH PL=AIN",
        b"AUTH PLAIN AAAA BBBB",
        b"BDAT",
        b"BDAT 10 FIRST",
        b"BDAT 10 LAST x",
        b"NOOP a\tb",
        b"VRFY a\x01",
    ];
    for line in syntax {
        let e = err(line);
        assert!(matches!(e, E::Syntax(_)), "{line:?}: {e:?}");
        assert_eq!(e.reply_code(), 501);
        assert_eq!(e.enhanced_status(), (5, 5, 2));
    }
    assert_eq!(err(b"MAIL FROM:<a@b> \xff"), E::InvalidUtf8);
    assert_eq!(err(b"RCPT TO:<\xc3(@b>"), E::InvalidUtf8);
    assert_eq!(err(b"EHLO a..b"), E::InvalidHost(AddressError::Syntax));
    assert_eq!(err(b"EHLO a b"), E::InvalidHost(AddressError::Syntax));
    assert_eq!(
        err(b"EHLO [1.2.3.999]"),
        E::InvalidHost(AddressError::InvalidAddressLiteral)
    );
    // Paths without angle brackets are refused.
    let e = err(b"MAIL FROM:a@b");
    assert_eq!(e, E::InvalidReversePath(AddressError::Syntax));
    assert_eq!((e.reply_code(), e.enhanced_status()), (501, (5, 1, 7)));
    let e = err(b"RCPT TO:a@b");
    assert_eq!(e, E::InvalidForwardPath(AddressError::Syntax));
    assert_eq!((e.reply_code(), e.enhanced_status()), (501, (5, 1, 3)));
    assert_eq!(
        err(b"RCPT TO:<>"),
        E::InvalidForwardPath(AddressError::Syntax)
    );
    assert_eq!(
        err(b"MAIL FROM:<a b@c>"),
        E::InvalidReversePath(AddressError::Syntax)
    );
    assert_eq!(
        err(b"MAIL FROM:<a@[IPv6:zz]>"),
        E::InvalidReversePath(AddressError::InvalidAddressLiteral)
    );
    // Bad base64 is its own error so the server can answer 501 5.5.2.
    for bad in [
        &b"AUTH PLAIN AHRp!bQ"[..],
        b"AUTH PLAIN A",
        b"AUTH PLAIN ==",
        b"AUTH PLAIN AB=C",
    ] {
        let e = err(bad);
        assert_eq!(e, E::InvalidBase64, "{bad:?}");
        assert_eq!((e.reply_code(), e.enhanced_status()), (501, (5, 5, 2)));
    }
    // BDAT sizes: overflow and non-digits.
    for bad in [
        &b"BDAT 18446744073709551616"[..],
        b"BDAT 99999999999999999999999",
        b"BDAT -1",
        b"BDAT +1",
        b"BDAT 1e3",
        b"BDAT 0x10",
        b"BDAT LAST",
    ] {
        let e = err(bad);
        assert_eq!(e, E::InvalidChunkSize, "{bad:?}");
        assert_eq!((e.reply_code(), e.enhanced_status()), (501, (5, 5, 4)));
    }
}

#[test]
fn path_length_errors() {
    let l65 = "a".repeat(65);
    assert_eq!(
        err(format!("MAIL FROM:<{l65}@b.example>").as_bytes()),
        CommandError::InvalidReversePath(AddressError::LocalPartTooLong { len: 65 })
    );
    let d = vec!["d".repeat(63); 5].join(".");
    assert_eq!(
        err(format!("RCPT TO:<a@{d}>").as_bytes()),
        CommandError::InvalidForwardPath(AddressError::DomainTooLong { len: 319 })
    );
    let d = vec!["d".repeat(63); 4].join(".");
    assert_eq!(
        err(format!("RCPT TO:<abc@{d}>").as_bytes()),
        CommandError::InvalidForwardPath(AddressError::PathTooLong { len: 261 })
    );
    assert_eq!(
        err(format!("EHLO {}", "h".repeat(64)).as_bytes()),
        CommandError::InvalidHost(AddressError::LabelTooLong)
    );
}

#[test]
fn mail_parameters_known_answers() {
    let line = "MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ314159+2B1 \
                AUTH=e+3Dmc2@example.com REQUIRETLS MT-PRIORITY=-3 BY=120;RT HOLDFOR=3600 X-FOO=bar X-FLAG";
    let params = MailParameters {
        size: Some(1000),
        body: Some(Body::EightBitMime),
        smtputf8: true,
        ret: Some(Ret::Hdrs),
        envid: Some(XText::new("QQ314159+1").unwrap()),
        requiretls: true,
        more: Some(Box::new(MoreMailParameters {
            auth: Some(AuthParam::Mailbox(mb("e=mc2@example.com"))),
            mt_priority: MtPriority::new(-3),
            by: Some(DeliverBy {
                time: 120,
                mode: ByMode::Return,
                trace: true,
            }),
            hold: Some(Hold::For(3600)),
            other: vec![
                Parameter {
                    keyword: Keyword::new("X-FOO").unwrap(),
                    value: Some(EsmtpValue::new("bar").unwrap()),
                },
                Parameter {
                    keyword: Keyword::new("X-FLAG").unwrap(),
                    value: None,
                },
            ],
        })),
    };
    let cmd = Command::Mail {
        from: from("a@b"),
        params,
    };
    kat(line, &cmd, None);

    let table: &[(&str, MailParameters<'_>, &str)] = &[
        (
            "size=0 body=7bit",
            MailParameters {
                size: Some(0),
                body: Some(Body::SevenBit),
                ..Default::default()
            },
            " SIZE=0 BODY=7BIT",
        ),
        (
            "BODY=BINARYMIME  RET=full",
            MailParameters {
                body: Some(Body::BinaryMime),
                ret: Some(Ret::Full),
                ..Default::default()
            },
            " BODY=BINARYMIME RET=FULL",
        ),
        (
            "AUTH=<>",
            MailParameters {
                more: Some(Box::new(MoreMailParameters {
                    auth: Some(AuthParam::Unknown),
                    ..Default::default()
                })),
                ..Default::default()
            },
            " AUTH=<>",
        ),
        (
            "MT-PRIORITY=+9",
            MailParameters {
                more: Some(Box::new(MoreMailParameters {
                    mt_priority: MtPriority::new(9),
                    ..Default::default()
                })),
                ..Default::default()
            },
            " MT-PRIORITY=9",
        ),
        (
            "BY=-60;n",
            MailParameters {
                more: Some(Box::new(MoreMailParameters {
                    by: Some(DeliverBy {
                        time: -60,
                        mode: ByMode::Notify,
                        trace: false,
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            },
            " BY=-60;N",
        ),
        (
            "HOLDUNTIL=2025-02-28T12:00:00Z",
            MailParameters {
                more: Some(Box::new(MoreMailParameters {
                    hold: Some(Hold::Until(DateTime::new("2025-02-28T12:00:00Z").unwrap())),
                    ..Default::default()
                })),
                ..Default::default()
            },
            " HOLDUNTIL=2025-02-28T12:00:00Z",
        ),
        (
            "x-unknown=é",
            MailParameters {
                more: Some(Box::new(MoreMailParameters {
                    other: vec![Parameter {
                        keyword: Keyword::new("x-unknown").unwrap(),
                        value: Some(EsmtpValue::new("é").unwrap()),
                    }],
                    ..Default::default()
                })),
                ..Default::default()
            },
            " x-unknown=é",
        ),
    ];
    for (text, params, canonical) in table {
        let cmd = Command::Mail {
            from: ReversePath::Null,
            params: params.clone(),
        };
        kat(
            &format!("MAIL FROM:<> {text}"),
            &cmd,
            Some(&format!("MAIL FROM:<>{canonical}")),
        );
    }
}

#[test]
fn rcpt_parameters_known_answers() {
    let on = |s, f, d| Some(Notify::On(NotifyOn::new(s, f, d).unwrap()));
    let table: &[(&str, RcptParameters<'_>, &str)] = &[
        (
            "NOTIFY=NEVER",
            RcptParameters {
                notify: Some(Notify::Never),
                ..Default::default()
            },
            " NOTIFY=NEVER",
        ),
        (
            "notify=delay,success",
            RcptParameters {
                notify: on(true, false, true),
                ..Default::default()
            },
            " NOTIFY=SUCCESS,DELAY",
        ),
        (
            "NOTIFY=FAILURE ORCPT=rfc822;Bob+2Bx@example.com",
            RcptParameters {
                notify: on(false, true, false),
                orcpt: Some(
                    OriginalRecipient::new(AddressType::Rfc822, "Bob+x@example.com").unwrap(),
                ),
                ..Default::default()
            },
            " NOTIFY=FAILURE ORCPT=rfc822;Bob+2Bx@example.com",
        ),
        (
            "ORCPT=RFC822;a@b",
            RcptParameters {
                orcpt: Some(OriginalRecipient::new(AddressType::Rfc822, "a@b").unwrap()),
                ..Default::default()
            },
            " ORCPT=rfc822;a@b",
        ),
        (
            "ORCPT=utf-8;j\\x{F6}rg\\x{2B}x@example.com",
            RcptParameters {
                orcpt: Some(
                    OriginalRecipient::new(AddressType::Utf8, "jörg+x@example.com").unwrap(),
                ),
                ..Default::default()
            },
            " ORCPT=utf-8;j\\x{F6}rg\\x{2B}x@example.com",
        ),
        (
            // utf-8-addr-unitext (raw UTF-8) is accepted and re-encoded 7-bit.
            "ORCPT=UTF-8;用户@例子.广告",
            RcptParameters {
                orcpt: Some(OriginalRecipient::new(AddressType::Utf8, "用户@例子.广告").unwrap()),
                ..Default::default()
            },
            " ORCPT=utf-8;\\x{7528}\\x{6237}@\\x{4F8B}\\x{5B50}.\\x{5E7F}\\x{544A}",
        ),
        (
            "ORCPT=x400;c+3Dus",
            RcptParameters {
                orcpt: Some(
                    OriginalRecipient::new(
                        AddressType::Other(Keyword::new("x400").unwrap()),
                        "c=us",
                    )
                    .unwrap(),
                ),
                ..Default::default()
            },
            " ORCPT=x400;c+3Dus",
        ),
        (
            "RRVS=2014-04-03T23:01:00Z",
            RcptParameters {
                more: Some(Box::new(MoreRcptParameters {
                    rrvs: Some(Rrvs {
                        time: DateTime::new("2014-04-03T23:01:00Z").unwrap(),
                        action: None,
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            },
            " RRVS=2014-04-03T23:01:00Z",
        ),
        (
            "RRVS=2014-04-03T18:01:00.25-05:00;c",
            RcptParameters {
                more: Some(Box::new(MoreRcptParameters {
                    rrvs: Some(Rrvs {
                        time: DateTime::new("2014-04-03T18:01:00.25-05:00").unwrap(),
                        action: Some(RrvsAction::Continue),
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            },
            " RRVS=2014-04-03T18:01:00.25-05:00;C",
        ),
        (
            "RRVS=2014-04-03T23:01:00Z;R SIZE=10",
            RcptParameters {
                more: Some(Box::new(MoreRcptParameters {
                    rrvs: Some(Rrvs {
                        time: DateTime::new("2014-04-03T23:01:00Z").unwrap(),
                        action: Some(RrvsAction::Reject),
                    }),
                    // SIZE is a MAIL parameter: in RCPT it is unknown, and kept.
                    other: vec![Parameter {
                        keyword: Keyword::new("SIZE").unwrap(),
                        value: Some(EsmtpValue::new("10").unwrap()),
                    }],
                })),
                ..Default::default()
            },
            " RRVS=2014-04-03T23:01:00Z;R SIZE=10",
        ),
    ];
    for (text, params, canonical) in table {
        let cmd = Command::Rcpt {
            to: to("a@b"),
            params: params.clone(),
        };
        kat(
            &format!("RCPT TO:<a@b> {text}"),
            &cmd,
            Some(&format!("RCPT TO:<a@b>{canonical}")),
        );
    }
}

#[test]
fn parameter_errors() {
    use ParameterErrorKind as K;
    let cases: &[(&str, &str, K)] = &[
        ("MAIL FROM:<> SIZE=1 SIZE=2", "SIZE", K::Duplicate),
        ("MAIL FROM:<> size=1 SIZE=1", "SIZE", K::Duplicate),
        ("MAIL FROM:<> SMTPUTF8 smtputf8", "smtputf8", K::Duplicate),
        (
            "MAIL FROM:<> HOLDFOR=1 HOLDUNTIL=2025-01-01T00:00:00Z",
            "HOLDUNTIL",
            K::Duplicate,
        ),
        ("MAIL FROM:<> X-A=1 x-a=2", "x-a", K::Duplicate),
        (
            "RCPT TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER",
            "NOTIFY",
            K::Duplicate,
        ),
        ("MAIL FROM:<> SIZE=abc", "SIZE", K::InvalidValue),
        ("MAIL FROM:<> SIZE=-1", "SIZE", K::InvalidValue),
        ("MAIL FROM:<> SIZE=+1", "SIZE", K::InvalidValue),
        (
            "MAIL FROM:<> SIZE=18446744073709551616",
            "SIZE",
            K::InvalidValue,
        ),
        ("MAIL FROM:<> SIZE", "SIZE", K::MissingValue),
        ("MAIL FROM:<> SIZE=", "SIZE", K::Malformed),
        ("MAIL FROM:<> BODY=9BIT", "BODY", K::InvalidValue),
        ("MAIL FROM:<> SMTPUTF8=yes", "SMTPUTF8", K::UnexpectedValue),
        (
            "MAIL FROM:<> REQUIRETLS=1",
            "REQUIRETLS",
            K::UnexpectedValue,
        ),
        ("MAIL FROM:<> RET=ALL", "RET", K::InvalidValue),
        ("MAIL FROM:<> ENVID=a+zz", "ENVID", K::InvalidValue),
        ("MAIL FROM:<> ENVID=a=b", "ENVID", K::Malformed),
        ("MAIL FROM:<> AUTH=notanaddress", "AUTH", K::InvalidValue),
        ("MAIL FROM:<> AUTH=a+0D+0A@b", "AUTH", K::InvalidValue),
        (
            "MAIL FROM:<> MT-PRIORITY=10",
            "MT-PRIORITY",
            K::InvalidValue,
        ),
        ("MAIL FROM:<> MT-PRIORITY=-", "MT-PRIORITY", K::InvalidValue),
        ("MAIL FROM:<> BY=10", "BY", K::InvalidValue),
        ("MAIL FROM:<> BY=10;X", "BY", K::InvalidValue),
        ("MAIL FROM:<> BY=;R", "BY", K::InvalidValue),
        ("MAIL FROM:<> BY=99999999999;R", "BY", K::InvalidValue),
        ("MAIL FROM:<> HOLDFOR=1h", "HOLDFOR", K::InvalidValue),
        (
            "MAIL FROM:<> HOLDUNTIL=2025-01-01",
            "HOLDUNTIL",
            K::InvalidValue,
        ),
        (
            "MAIL FROM:<> HOLDUNTIL=2025-01-01T24:00:00Z",
            "HOLDUNTIL",
            K::InvalidValue,
        ),
        ("MAIL FROM:<> -X=1", "-X", K::Malformed),
        ("MAIL FROM:<> X_Y=1", "X_Y", K::Malformed),
        (
            "RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS",
            "NOTIFY",
            K::InvalidValue,
        ),
        (
            "RCPT TO:<a@b> NOTIFY=SUCCESS,SUCCESS",
            "NOTIFY",
            K::InvalidValue,
        ),
        ("RCPT TO:<a@b> NOTIFY=SOMETIMES", "NOTIFY", K::InvalidValue),
        ("RCPT TO:<a@b> NOTIFY=SUCCESS,", "NOTIFY", K::InvalidValue),
        ("RCPT TO:<a@b> ORCPT=a@b", "ORCPT", K::InvalidValue),
        ("RCPT TO:<a@b> ORCPT=rfc822;", "ORCPT", K::InvalidValue),
        ("RCPT TO:<a@b> ORCPT=rfc822;a+0Db", "ORCPT", K::InvalidValue),
        (
            "RCPT TO:<a@b> ORCPT=utf-8;a\\x{0}b",
            "ORCPT",
            K::InvalidValue,
        ),
        ("RCPT TO:<a@b> ORCPT=utf-8;a+b", "ORCPT", K::InvalidValue),
        ("RCPT TO:<a@b> RRVS=yesterday", "RRVS", K::InvalidValue),
        (
            "RCPT TO:<a@b> RRVS=2014-04-03T23:01:00Z;X",
            "RRVS",
            K::InvalidValue,
        ),
        (
            "RCPT TO:<a@b> RRVS=2014-13-03T23:01:00Z",
            "RRVS",
            K::InvalidValue,
        ),
    ];
    for (line, keyword, kind) in cases {
        let e = err(line.as_bytes());
        assert_eq!(
            e,
            CommandError::Parameter {
                keyword: (*keyword).to_owned(),
                kind: *kind
            },
            "{line}"
        );
        assert_eq!((e.reply_code(), e.enhanced_status()), (501, (5, 5, 4)));
        assert!(e.to_string().contains(keyword), "{e}");
    }
}

#[test]
fn constructors_refuse_injection() {
    for c in ['\r', '\n', '\0'] {
        let s = format!("x{c}RSET");
        assert!(Argument::new(&s).is_err());
        assert!(EsmtpValue::new(&s).is_err());
        assert!(Keyword::new(&s).is_err());
        assert!(Mechanism::new(&s).is_err());
        assert!(Domain::new(&s).is_err());
        assert!(LocalPart::new(&s).is_err());
        assert!(DateTime::new(&s).is_err());
        assert!(OriginalRecipient::new(AddressType::Rfc822, s.clone()).is_err());
    }
    assert!(Argument::new("").is_err());
    assert!(Argument::new(" x").is_err());
    assert!(Argument::new("x ").is_err());
    assert!(EsmtpValue::new("a b").is_err());
    assert!(EsmtpValue::new("a=b").is_err());
    assert!(MtPriority::new(10).is_none());
    assert!(MtPriority::new(-10).is_none());
    assert!(NotifyOn::new(false, false, false).is_none());
    // An ENVID with CR LF is escaped on the wire, not injected.
    let cmd = Command::Mail {
        from: ReversePath::Null,
        params: MailParameters {
            envid: Some(XText::new("a\r\nRSET").unwrap()),
            ..Default::default()
        },
    };
    assert_eq!(encode(&cmd), b"MAIL FROM:<> ENVID=a+0D+0ARSET\r\n");
}

#[test]
fn into_owned_outlives_input() {
    let line = b"MAIL FROM:<\"a b\"@example.org> ENVID=x+2By AUTH=<> X-Y=z".to_vec();
    let owned: Command<'static> = Command::parse(&line).unwrap().into_owned();
    let expected = Command::parse(&line).unwrap();
    assert_eq!(owned, expected);
    drop(line);
    assert_eq!(owned.verb(), "MAIL");
}

// ---------------------------------------------------------------------------
// proptest generators: valid values only.

fn date_time() -> impl Strategy<Value = DateTime<'static>> {
    (
        0u32..10000,
        1u32..=12,
        1u32..=31,
        0u32..24,
        0u32..60,
        0u32..=60,
        prop::option::of("[0-9]{1,4}"),
        prop_oneof![
            Just("Z".to_owned()),
            (prop_oneof![Just('+'), Just('-')], 0u32..24, 0u32..60)
                .prop_map(|(s, h, m)| format!("{s}{h:02}:{m:02}")),
        ],
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, off)| {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            let t = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}");
            DateTime::new(&t).unwrap().into_owned()
        })
}

/// Unknown parameters with distinct keywords that no typed field claims.
fn others() -> impl Strategy<Value = Vec<Parameter<'static>>> {
    prop::collection::btree_map(
        "X-[A-Z0-9]{1,6}",
        prop::option::of("[!-<>-~]{1,10}|[a-zé]{1,4}"),
        0..3,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| Parameter {
                keyword: Keyword::new(&k).unwrap().into_owned(),
                value: v.map(|v| EsmtpValue::new(&v).unwrap().into_owned()),
            })
            .collect()
    })
}

fn mail_params() -> impl Strategy<Value = MailParameters<'static>> {
    (
        (
            prop::option::of(any::<u64>()),
            prop::option::of(prop_oneof![
                Just(Body::SevenBit),
                Just(Body::EightBitMime),
                Just(Body::BinaryMime)
            ]),
            any::<bool>(),
            prop::option::of(prop_oneof![Just(Ret::Full), Just(Ret::Hdrs)]),
            prop::option::of(".{1,12}".prop_map(|s| XText::new(s).unwrap())),
            prop::option::of(prop_oneof![
                Just(AuthParam::Unknown),
                mailbox().prop_map(AuthParam::Mailbox)
            ]),
        ),
        (
            any::<bool>(),
            prop::option::of((-9i8..=9).prop_map(|p| MtPriority::new(p).unwrap())),
            prop::option::of(
                (
                    any::<i32>(),
                    prop_oneof![Just(ByMode::Notify), Just(ByMode::Return)],
                    any::<bool>(),
                )
                    .prop_map(|(time, mode, trace)| DeliverBy {
                        time,
                        mode,
                        trace,
                    }),
            ),
            prop::option::of(prop_oneof![
                any::<u32>().prop_map(Hold::For),
                date_time().prop_map(Hold::Until)
            ]),
            others(),
        ),
    )
        .prop_map(
            |(
                (size, body, smtputf8, ret, envid, auth),
                (requiretls, mt_priority, by, hold, other),
            )| MailParameters {
                size,
                body,
                smtputf8,
                ret,
                envid,
                requiretls,
                // Boxed even when empty: equality does not tell the two apart.
                more: Some(Box::new(MoreMailParameters {
                    auth,
                    mt_priority,
                    by,
                    hold,
                    other,
                })),
            },
        )
}

fn rcpt_params() -> impl Strategy<Value = RcptParameters<'static>> {
    let notify = prop_oneof![
        Just(Notify::Never),
        (any::<bool>(), any::<bool>(), any::<bool>())
            .prop_filter_map("empty", |(s, f, d)| NotifyOn::new(s, f, d).map(Notify::On)),
    ];
    let addr_type = prop_oneof![
        Just(AddressType::Rfc822),
        Just(AddressType::Utf8),
        "X[0-9]{3}".prop_map(|k| AddressType::Other(Keyword::new(&k).unwrap().into_owned())),
    ];
    let orcpt = (addr_type, "\\PC{1,20}").prop_map(|(t, a)| OriginalRecipient::new(t, a).unwrap());
    let rrvs = (
        date_time(),
        prop::option::of(prop_oneof![
            Just(RrvsAction::Continue),
            Just(RrvsAction::Reject)
        ]),
    )
        .prop_map(|(time, action)| Rrvs { time, action });
    (
        prop::option::of(notify),
        prop::option::of(orcpt),
        prop::option::of(rrvs),
        others(),
    )
        .prop_map(|(notify, orcpt, rrvs, other)| RcptParameters {
            notify,
            orcpt,
            more: Some(Box::new(MoreRcptParameters { rrvs, other })),
        })
}

fn argument() -> impl Strategy<Value = Argument<'static>> {
    "[!-~]([ -~]{0,10}[!-~])?|[a-zé漢]{1,6}".prop_map(|s| Argument::new(&s).unwrap().into_owned())
}

fn command() -> impl Strategy<Value = Command<'static>> {
    prop_oneof![
        1 => host_strategy().prop_map(|host| Command::Helo { host }),
        1 => host_strategy().prop_map(|host| Command::Ehlo { host }),
        1 => host_strategy().prop_map(|host| Command::Lhlo { host }),
        4 => (
            reverse_path(),
            mail_params()
        )
            .prop_map(|(from, params)| Command::Mail { from, params }),
        4 => (
            forward_path(),
            rcpt_params()
        )
            .prop_map(|(to, params)| Command::Rcpt { to, params }),
        1 => Just(Command::Data),
        1 => Just(Command::Rset),
        1 => Just(Command::Quit),
        1 => Just(Command::StartTls),
        1 => argument().prop_map(|target| Command::Vrfy { target }),
        1 => argument().prop_map(|list| Command::Expn { list }),
        1 => prop::option::of(argument()).prop_map(|topic| Command::Help { topic }),
        1 => prop::option::of(argument()).prop_map(|text| Command::Noop { text }),
        1 => (
            "[A-Za-z0-9_-]{1,20}",
            prop::option::of(prop::collection::vec(any::<u8>(), 0..40))
        )
            .prop_map(|(m, ir)| Command::Auth {
                mechanism: Mechanism::new(&m).unwrap().into_owned(),
                initial_response: ir.map(|ir| InitialResponse::new(&ir)),
            }),
        1 => (any::<u64>(), any::<bool>()).prop_map(|(size, last)| Command::Bdat { size, last }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn command_round_trip(cmd in command()) {
        let out = encode(&cmd);
        prop_assert!(out.ends_with(b"\r\n"));
        let body = &out[..out.len() - 2];
        // No CR or LF can appear inside an encoded command.
        prop_assert!(!body.contains(&b'\r') && !body.contains(&b'\n') && !body.contains(&0));
        let back = Command::parse(body);
        prop_assert_eq!(back.as_ref(), Ok(&cmd), "{}", String::from_utf8_lossy(body));
        prop_assert_eq!(back.unwrap().needs_smtputf8(), !body.is_ascii());
        prop_assert_eq!(cmd.clone().into_owned(), cmd);
    }

    #[test]
    fn random_bytes_never_panic(line in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Command::parse(&line);
    }

    #[test]
    fn random_command_like_lines_never_panic(
        verb in "(?i)(MAIL FROM:|RCPT TO:|EHLO |HELO |AUTH |BDAT |VRFY |NOOP |DATA|STARTTLS)",
        rest in "[<>@\\[\\]\":\\\\., =+;{}a-zA-Z0-9é\\x00\\r\\n-]{0,60}",
    ) {
        let line = format!("{verb}{rest}");
        if let Ok(cmd) = Command::parse(line.as_bytes()) {
            // Whatever parses re-encodes to something that parses to it.
            let out = encode(&cmd);
            prop_assert_eq!(Command::parse(&out[..out.len() - 2]), Ok(cmd));
        }
    }
}
