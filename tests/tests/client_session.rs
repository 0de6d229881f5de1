//! The client session against scripted server replies: setup (greeting,
//! EHLO/HELO/LHLO, STARTTLS, AUTH), transactions (pipelined and lock-step,
//! DATA and BDAT), usage errors, timeouts, LMTP and the MailTransaction
//! helper.

use std::time::Duration;

use smtp_proto::client::{
    AuthConfig, BodyTransfer, Config, Credentials, Envelope, Error, Event, MailTransaction,
    Outcome, ReplyTo, TransactionPhase, TransactionReport, UsageError, Waiting,
};
use smtp_proto::command::{Body, Command, MailParameters, RcptParameters};
use smtp_proto::data::BareLineEnding;
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::ReplyCode;
use smtp_proto::secret::Secret;
use smtp_proto::{BodyMode, InjectionPolicy, Protocol, TlsMode};
use smtp_tests::fixtures::{client_config, from, mail, outcomes, rcpt, to};
use smtp_tests::pair::ClientDriver;

const GREETING: &[u8] = b"220 mx.example.com ESMTP\r\n";
const EHLO_PIPE: &[u8] = b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n";
const EHLO_PLAIN: &[u8] = b"250-mx.example.com\r\n250 8BITMIME\r\n";
const EHLO_CHUNKING: &[u8] = b"250-mx.example.com\r\n250-PIPELINING\r\n250 CHUNKING\r\n";

fn config() -> Config {
    client_config(TlsMode::Disabled)
}

/// A driver past the greeting and EHLO (answered with `ehlo`), Ready.
fn ready(config: Config, ehlo: &[u8]) -> ClientDriver {
    let mut d = ClientDriver::new(config);
    d.feed(GREETING);
    assert_eq!(d.take_sent_text(), "EHLO client.example\r\n");
    d.feed(ehlo);
    assert!(d.saw(|e| *e == Event::Ready), "{:?}", d.events);
    d.take_events();
    d
}

fn replies(d: &mut ClientDriver) -> Vec<(ReplyTo, u16)> {
    d.take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Reply { to, reply } => Some((to, reply.code().as_u16())),
            _ => None,
        })
        .collect()
}

#[test]
fn greeting_ehlo_ready() {
    let mut d = ClientDriver::new(config());
    assert_eq!(d.take_sent(), b"", "nothing before the greeting");
    d.feed(GREETING);
    assert_eq!(d.take_sent_text(), "EHLO client.example\r\n");
    d.feed(EHLO_PIPE);
    let ev = d.take_events();
    assert!(
        matches!(&ev[0], Event::Reply { to: ReplyTo::Greeting, reply } if reply.code() == ReplyCode::SERVICE_READY)
    );
    assert!(matches!(
        &ev[1],
        Event::Reply {
            to: ReplyTo::Ehlo,
            ..
        }
    ));
    assert_eq!(ev[2], Event::Ready);
    assert!(d.client.is_ready());
    let ext = d.client.extensions().unwrap();
    assert!(ext.supports_pipelining());
    assert_eq!(ext.max_size(), Some(1000));
}

#[test]
fn extensions_are_case_insensitive() {
    let mut d = ready(config(), b"250-mx\r\n250-pipelining\r\n250 chunking\r\n");
    let ext = d.client.extensions().unwrap();
    assert!(ext.supports_pipelining() && ext.supports_chunking());
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    d.drain();
    assert_eq!(
        d.take_sent_text(),
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
    );
}

#[test]
fn pipelined_transaction_in_one_write() {
    let mut d = ready(config(), EHLO_PIPE);
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    d.client.enqueue(rcpt("c@example.net")).unwrap();
    assert_eq!(d.client.start_body().unwrap(), BodyMode::Data);
    // Nothing drained yet: one poll hands out the whole group.
    let smtp_proto::Output::Transmit(bytes) = d.client.poll(d.now) else {
        panic!("expected a transmit")
    };
    assert_eq!(
        bytes,
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n"
    );
    d.drain();
    d.take_sent();
    d.feed(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 No such user\r\n354 go\r\n");
    let ev = d.take_events();
    assert!(ev.contains(&Event::ReadyForBody));
    assert_eq!(d.client.transaction_phase(), TransactionPhase::Body);
    assert_eq!(
        d.client
            .write_body(b"Subject: x\r\n\r\n.hidden\r\n..two")
            .unwrap(),
        28
    );
    d.client.finish_body().unwrap();
    d.drain();
    assert_eq!(
        d.take_sent_text(),
        "Subject: x\r\n\r\n..hidden\r\n...two\r\n.\r\n"
    );
    d.feed(b"250 2.0.0 Ok: queued as 4Xk9sT3Hx7z9rJ\r\n");
    let r = replies(&mut d);
    assert_eq!(r, [(ReplyTo::EndOfData { recipient: None }, 250)]);
    assert_eq!(d.client.transaction_phase(), TransactionPhase::Idle);
    // Reuse for the next message.
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.drain();
    assert_eq!(d.take_sent_text(), "MAIL FROM:<a@example.org>\r\n");
}

#[test]
fn lock_step_without_pipelining() {
    let mut d = ready(config(), EHLO_PLAIN);
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    d.client.enqueue(Command::Data).unwrap();
    d.drain();
    assert_eq!(d.take_sent_text(), "MAIL FROM:<a@example.org>\r\n");
    d.feed(b"250 ok\r\n");
    assert_eq!(d.take_sent_text(), "RCPT TO:<b@example.net>\r\n");
    d.feed(b"250 ok\r\n");
    assert_eq!(d.take_sent_text(), "DATA\r\n");
    d.feed(b"354 go\r\n");
    assert_eq!(
        replies(&mut d),
        [
            (ReplyTo::Mail, 250),
            (ReplyTo::Rcpt { index: 0 }, 250),
            (ReplyTo::Data, 354)
        ]
    );
}

#[test]
fn bdat_when_chunking_is_offered() {
    let mut c = config();
    c.bdat_chunk = 8;
    let mut d = ready(c, EHLO_CHUNKING);
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    assert_eq!(d.client.start_body().unwrap(), BodyMode::Bdat);
    d.drain();
    assert!(d.take_events().contains(&Event::ReadyForBody));
    assert_eq!(d.client.write_body(b"0123456789\r\n.\r\n").unwrap(), 15);
    d.client.finish_body().unwrap();
    d.drain();
    // No body byte before the RCPT replies are in.
    assert_eq!(
        d.take_sent_text(),
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
    );
    d.feed(b"250 ok\r\n250 ok\r\n");
    // Chunks are pipelined; a dot line is plain data in BDAT.
    assert_eq!(
        d.take_sent_text(),
        "BDAT 8\r\n01234567BDAT 7 LAST\r\n89\r\n.\r\n"
    );
    d.feed(b"250 2.0.0 8 octets\r\n250 2.0.0 Ok: queued as X\r\n");
    assert_eq!(
        replies(&mut d),
        [
            (ReplyTo::Mail, 250),
            (ReplyTo::Rcpt { index: 0 }, 250),
            (ReplyTo::Bdat, 250),
            (ReplyTo::EndOfData { recipient: None }, 250)
        ]
    );
    assert_eq!(d.client.transaction_phase(), TransactionPhase::Idle);
}

#[test]
fn data_when_bdat_is_not_preferred() {
    let mut c = config();
    c.body_transfer = BodyTransfer::Data;
    let mut d = ready(c, EHLO_CHUNKING);
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    assert_eq!(d.client.start_body().unwrap(), BodyMode::Data);
}

#[test]
fn empty_bdat_body_is_bdat_0_last() {
    let mut d = ready(config(), EHLO_CHUNKING);
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    d.client.start_body().unwrap();
    d.client.finish_body().unwrap();
    d.drain();
    d.take_sent();
    d.feed(b"250 ok\r\n250 ok\r\n");
    assert_eq!(d.take_sent_text(), "BDAT 0 LAST\r\n");
}

#[test]
fn helo_fallback_uses_no_extensions() {
    let mut d = ClientDriver::new(config());
    d.feed(GREETING);
    d.take_sent();
    d.feed(b"500 5.5.1 Command unrecognized\r\n");
    assert_eq!(d.take_sent_text(), "HELO client.example\r\n");
    d.feed(b"250 mx.example.com\r\n");
    assert!(d.saw(|e| *e == Event::Ready));
    assert!(d.client.extensions().is_none());
    let sized = Command::Mail {
        from: from("a@example.org"),
        params: MailParameters {
            size: Some(10),
            ..Default::default()
        },
    };
    assert_eq!(
        d.client.enqueue(sized),
        Err(UsageError::ExtensionNotOffered("SIZE"))
    );
}

#[test]
fn ehlo_502_falls_back_but_other_refusals_fail() {
    let mut d = ClientDriver::new(config());
    d.feed(GREETING);
    d.take_sent();
    d.feed(b"502 not implemented\r\n");
    assert_eq!(d.take_sent_text(), "HELO client.example\r\n");

    let mut d = ClientDriver::new(config());
    d.feed(GREETING);
    d.take_sent();
    d.feed(b"550 go away\r\n");
    assert!(matches!(d.error(), Some(Error::HelloRejected(_))));
    assert_eq!(d.take_sent_text(), "QUIT\r\n");
    d.feed(b"221 bye\r\n");
    assert!(d.client.is_closed());
    assert_eq!(d.events.last(), Some(&Event::Closed));
}

#[test]
fn usage_errors_change_nothing() {
    let mut d = ClientDriver::new(config());
    assert_eq!(
        d.client.enqueue(mail("a@example.org")),
        Err(UsageError::NotReady)
    );
    d.feed(GREETING);
    d.feed(EHLO_PIPE);
    d.take_sent();
    assert_eq!(
        d.client.enqueue(rcpt("b@example.net")),
        Err(UsageError::NoTransaction)
    );
    assert_eq!(
        d.client.enqueue(Command::Data),
        Err(UsageError::NoTransaction)
    );
    assert_eq!(d.client.write_body(b"x"), Err(UsageError::NoBodyDue));
    assert_eq!(
        d.client.enqueue(Command::StartTls),
        Err(UsageError::NotEnqueueable("STARTTLS"))
    );
    assert_eq!(
        d.client.enqueue(Command::Bdat {
            size: 1,
            last: true
        }),
        Err(UsageError::NotEnqueueable("BDAT"))
    );
    d.client.enqueue(mail("a@example.org")).unwrap();
    assert_eq!(
        d.client.enqueue(mail("a@example.org")),
        Err(UsageError::TransactionOpen)
    );
    assert_eq!(
        d.client.enqueue(Command::Data),
        Err(UsageError::NoRecipients)
    );
    assert_eq!(d.client.start_body(), Err(UsageError::NoRecipients));
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    d.client.enqueue(Command::Data).unwrap();
    assert_eq!(
        d.client.enqueue(Command::Rset),
        Err(UsageError::AwaitingReply(ReplyTo::Data))
    );
    assert_eq!(d.client.write_body(b"x"), Err(UsageError::NoBodyDue));
    d.drain();
    assert_eq!(
        d.take_sent_text(),
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n",
        "the refused calls sent nothing"
    );
    d.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
    assert_eq!(
        d.client.enqueue(Command::Rset),
        Err(UsageError::BodyInProgress)
    );
    d.client.finish_body().unwrap();
    assert_eq!(
        d.client.enqueue(Command::Quit),
        Err(UsageError::AwaitingReply(ReplyTo::EndOfData {
            recipient: None
        }))
    );
    d.feed(b"250 ok\r\n");
    d.client.enqueue(Command::Quit).unwrap();
    assert_eq!(d.client.enqueue(Command::Rset), Err(UsageError::Closed));
    d.drain();
    assert_eq!(d.take_sent_text(), ".\r\nQUIT\r\n");
    d.feed(b"221 bye\r\n");
    assert!(d.client.is_closed());
}

#[test]
fn size_8bitmime_smtputf8_checks() {
    let mut d = ready(config(), EHLO_PIPE);
    let big = Command::Mail {
        from: from("a@example.org"),
        params: MailParameters {
            size: Some(1001),
            ..Default::default()
        },
    };
    assert_eq!(
        d.client.enqueue(big),
        Err(UsageError::MessageTooLarge {
            size: 1001,
            limit: 1000
        })
    );
    let eight = Command::Mail {
        from: from("a@example.org"),
        params: MailParameters {
            size: Some(1000),
            body: Some(Body::EightBitMime),
            ..Default::default()
        },
    };
    d.client.enqueue(eight).unwrap();
    d.drain();
    assert_eq!(
        d.take_sent_text(),
        "MAIL FROM:<a@example.org> SIZE=1000 BODY=8BITMIME\r\n"
    );
    assert_eq!(
        d.client.enqueue(Command::Rcpt {
            to: to("jösé@example.net"),
            params: RcptParameters::default()
        }),
        Err(UsageError::NeedsSmtpUtf8)
    );

    let mut d = ready(config(), b"250-mx\r\n250 SIZE\r\n");
    let eight = Command::Mail {
        from: from("a@example.org"),
        params: MailParameters {
            body: Some(Body::EightBitMime),
            ..Default::default()
        },
    };
    assert_eq!(
        d.client.enqueue(eight),
        Err(UsageError::ExtensionNotOffered("8BITMIME"))
    );
    let utf8 = Command::Mail {
        from: from("jösé@example.org"),
        params: MailParameters {
            smtputf8: true,
            ..Default::default()
        },
    };
    assert_eq!(
        d.client.enqueue(utf8),
        Err(UsageError::ExtensionNotOffered("SMTPUTF8"))
    );
    // SIZE without a limit accepts any size.
    let sized = Command::Mail {
        from: from("a@example.org"),
        params: MailParameters {
            size: Some(u64::MAX),
            ..Default::default()
        },
    };
    d.client.enqueue(sized).unwrap();
}

#[test]
fn bare_line_endings_are_refused_without_taking_anything() {
    let mut d = ready(config(), EHLO_PIPE);
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    d.client.enqueue(Command::Data).unwrap();
    d.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
    d.take_sent();
    assert_eq!(
        d.client.write_body(b"line\n.\nQUIT\n"),
        Err(UsageError::BareLineEnding { offset: 4 })
    );
    assert_eq!(d.client.write_body(b"ok\r"), Ok(3));
    assert_eq!(
        d.client.write_body(b"x"),
        Err(UsageError::BareLineEnding { offset: 0 })
    );
    assert_eq!(
        d.client.finish_body(),
        Err(UsageError::BareLineEnding { offset: 0 })
    );
    assert_eq!(d.client.write_body(b"\n"), Ok(1));
    d.client.finish_body().unwrap();
    d.drain();
    assert_eq!(d.take_sent_text(), "ok\r\n.\r\n");
}

#[test]
fn bare_line_endings_normalized_on_request() {
    let mut c = config();
    c.bare_line_ending = BareLineEnding::Normalize;
    let mut d = ready(c, EHLO_PIPE);
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    d.client.enqueue(Command::Data).unwrap();
    d.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
    d.take_sent();
    d.client.write_body(b"a\n.\nQUIT\n").unwrap();
    d.client.finish_body().unwrap();
    d.drain();
    assert_eq!(d.take_sent_text(), "a\r\n..\r\nQUIT\r\n.\r\n");
}

#[test]
fn body_is_streamed_through_a_bounded_buffer() {
    let mut c = config();
    c.body_buffer = 1024;
    let mut d = ready(c, EHLO_PIPE);
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    d.client.enqueue(Command::Data).unwrap();
    d.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
    d.take_sent();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    let body: Vec<u8> = line.repeat(2700);
    d.write_limit = 100;
    let mut off = 0;
    let mut zero_writes = 0;
    while off < body.len() {
        let n = d.client.write_body(&body[off..]).unwrap();
        assert!(n <= 1024);
        if n == 0 {
            zero_writes += 1;
            assert!(!d.client.wants_body());
            d.drain();
            assert!(d.client.wants_body());
        }
        off += n;
    }
    assert!(zero_writes > 0, "backpressure was applied");
    d.write_limit = usize::MAX;
    d.client.finish_body().unwrap();
    d.drain();
    let sent = d.take_sent();
    assert!(d.max_transmit <= 2 * 1024 + 8);
    assert_eq!(&sent[..body.len()], &body[..]);
    assert_eq!(&sent[body.len()..], b".\r\n");
}

#[test]
fn rset_aborts_and_allows_a_new_transaction() {
    let mut d = ready(config(), EHLO_PIPE);
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    d.client.enqueue(Command::Rset).unwrap();
    d.client.enqueue(mail("c@example.org")).unwrap();
    d.drain();
    assert_eq!(
        d.take_sent_text(),
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRSET\r\nMAIL FROM:<c@example.org>\r\n"
    );
    d.feed(b"250 ok\r\n250 ok\r\n250 reset\r\n250 ok\r\n");
    assert_eq!(
        replies(&mut d),
        [
            (ReplyTo::Mail, 250),
            (ReplyTo::Rcpt { index: 0 }, 250),
            (ReplyTo::Rset, 250),
            (ReplyTo::Mail, 250)
        ]
    );
    assert_eq!(d.client.transaction_phase(), TransactionPhase::Open);
}

#[test]
fn noop_ends_a_pipelined_group() {
    let mut d = ready(config(), EHLO_PIPE);
    d.client.enqueue(Command::Noop { text: None }).unwrap();
    d.client.enqueue(Command::Rset).unwrap();
    d.drain();
    assert_eq!(d.take_sent_text(), "NOOP\r\n");
    d.feed(b"250 ok\r\n");
    assert_eq!(d.take_sent_text(), "RSET\r\n");
}

// ---- STARTTLS ----------------------------------------------------------

const EHLO_TLS: &[u8] = b"250-mx.example.com\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n";

#[test]
fn starttls_required_upgrades_and_forgets_extensions() {
    let mut c = config();
    c.tls = TlsMode::Required;
    let mut d = ClientDriver::new(c);
    d.feed(GREETING);
    d.take_sent();
    d.feed(EHLO_TLS);
    assert_eq!(d.take_sent_text(), "STARTTLS\r\n");
    assert_eq!(d.starttls, 0);
    d.feed(b"220 2.0.0 Ready to start TLS\r\n");
    assert_eq!(d.starttls, 1);
    assert!(!d.client.wants_read());
    assert!(d.client.extensions().is_none(), "forgotten at once");
    assert_eq!(d.take_sent(), b"");
    d.tls_established();
    assert!(d.client.is_tls());
    assert_eq!(d.take_sent_text(), "EHLO client.example\r\n");
    d.feed(b"250-mx.example.com\r\n250 PIPELINING\r\n");
    assert!(d.saw(|e| *e == Event::Ready));
    let ext = d.client.extensions().unwrap();
    assert!(!ext.supports_starttls() && !ext.supports_auth());
}

#[test]
fn starttls_injection_is_discarded_and_closes() {
    let mut c = config();
    c.tls = TlsMode::Required;
    let mut d = ClientDriver::new(c);
    d.feed(GREETING);
    d.feed(EHLO_TLS);
    d.take_sent();
    d.feed(b"220 go ahead\r\n250 injected\r\n");
    assert_eq!(d.error(), Some(&Error::StartTlsInjection { bytes: 14 }));
    assert_eq!(d.starttls, 0, "no handshake over an injected stream");
    assert!(d.client.is_closed());
    assert!(!d.saw(|e| matches!(e, Event::Reply { to: ReplyTo::Ehlo, reply } if reply.first_line() == "injected")));
    assert_eq!(d.take_sent(), b"");
}

#[test]
fn starttls_injection_in_a_later_read_is_caught() {
    let mut c = config();
    c.tls = TlsMode::Required;
    let mut d = ClientDriver::new(c);
    d.feed(GREETING);
    d.feed(EHLO_TLS);
    d.feed(b"220 go ahead\r\n");
    assert_eq!(d.starttls, 1);
    d.feed(b"250 injected\r\n");
    assert!(matches!(d.error(), Some(Error::StartTlsInjection { .. })));
    assert!(d.client.is_closed());
}

#[test]
fn starttls_injection_can_be_discarded_by_policy() {
    let mut c = config();
    c.tls = TlsMode::Required;
    c.on_injection = InjectionPolicy::Discard;
    let mut d = ClientDriver::new(c);
    d.feed(GREETING);
    d.feed(EHLO_TLS);
    d.take_sent();
    d.feed(b"220 go ahead\r\n250-injected\r\n250 AUTH LOGIN\r\n");
    assert_eq!(d.error(), None);
    assert_eq!(d.starttls, 1);
    d.tls_established();
    assert_eq!(d.take_sent_text(), "EHLO client.example\r\n");
    assert!(
        d.client.extensions().is_none(),
        "the injected reply was never read"
    );
}

#[test]
fn starttls_required_but_not_offered_quits() {
    let mut c = config();
    c.tls = TlsMode::Required;
    let mut d = ClientDriver::new(c);
    d.feed(GREETING);
    d.take_sent();
    // Lower-case keyword is still STARTTLS; here it is absent.
    d.feed(b"250-mx.example.com\r\n250 AUTH PLAIN\r\n");
    assert_eq!(d.error(), Some(&Error::StartTlsNotOffered));
    assert_eq!(d.take_sent_text(), "QUIT\r\n", "nothing else in plaintext");
    d.feed(b"221 bye\r\n");
    assert!(d.client.is_closed());
}

#[test]
fn starttls_refused_required_vs_opportunistic() {
    for (mode, reply) in [
        (TlsMode::Required, &b"454 4.7.0 TLS not available\r\n"[..]),
        (TlsMode::Required, b"502 no\r\n"),
    ] {
        let mut c = config();
        c.tls = mode;
        let mut d = ClientDriver::new(c);
        d.feed(GREETING);
        d.feed(b"250-mx\r\n250 starttls\r\n");
        d.take_sent();
        d.feed(reply);
        assert!(matches!(d.error(), Some(Error::StartTlsRefused(_))));
        assert_eq!(d.take_sent_text(), "QUIT\r\n");
    }
    let mut c = config();
    c.tls = TlsMode::Opportunistic;
    let mut d = ClientDriver::new(c);
    d.feed(GREETING);
    d.feed(b"250-mx\r\n250 starttls\r\n");
    d.take_sent();
    d.feed(b"454 4.7.0 TLS not available\r\n");
    assert_eq!(d.error(), None);
    assert!(d.saw(|e| *e == Event::Ready));
    assert!(!d.client.is_tls());
}

#[test]
fn opportunistic_without_starttls_is_plaintext() {
    let mut c = config();
    c.tls = TlsMode::Opportunistic;
    let d = ready(c, EHLO_PLAIN);
    assert!(!d.client.is_tls());
}

#[test]
fn implicit_tls_starts_encrypted() {
    let mut c = config();
    c.tls = TlsMode::Implicit;
    c.auth = Some(AuthConfig::new(Credentials::password("u", "p")));
    let mut d = ClientDriver::new(c);
    // The first output is the handshake; the greeting is awaited after it.
    assert_eq!(d.starttls, 1);
    assert!(!d.client.is_tls());
    assert_eq!(
        d.client.next_timeout(),
        Some(d.now + Duration::from_secs(120))
    );
    d.tls_established();
    assert!(d.client.is_tls());
    assert_eq!(
        d.client.next_timeout(),
        Some(d.now + Duration::from_secs(300))
    );
    d.feed(GREETING);
    d.take_sent();
    d.feed(EHLO_TLS);
    assert_eq!(
        d.take_sent_text(),
        "AUTH PLAIN AHUAcA==\r\n",
        "no STARTTLS under TLS"
    );
}

// ---- AUTH --------------------------------------------------------------

/// A driver under implicit TLS, past its handshake: the session's first
/// output asked for it, and nothing was written before.
fn implicit(c: Config) -> ClientDriver {
    let mut d = ClientDriver::new(c);
    assert_eq!(d.starttls, 1, "implicit TLS starts with the handshake");
    assert!(d.sent.is_empty() && !d.client.is_tls());
    d.tls_established();
    assert!(d.client.is_tls() && d.drive_errors.is_empty());
    d
}

fn tls_config(auth: AuthConfig) -> Config {
    let mut c = config();
    c.tls = TlsMode::Implicit;
    c.auth = Some(auth);
    c
}

#[test]
fn auth_plain() {
    let mut d = implicit(tls_config(AuthConfig::new(Credentials::password(
        "tim",
        "tanstaaftanstaaf",
    ))));
    d.feed(GREETING);
    d.feed(b"250-mx\r\n250 AUTH LOGIN PLAIN\r\n");
    assert_eq!(
        d.take_sent_text(),
        "EHLO client.example\r\nAUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
    );
    d.feed(b"235 2.7.0 Authentication successful\r\n");
    assert!(d.saw(|e| *e
        == Event::Authenticated {
            mechanism: Mechanism::PLAIN
        }));
    assert!(d.saw(|e| *e == Event::Ready));
    assert_eq!(d.client.authenticated(), Some(&Mechanism::PLAIN));
}

#[test]
fn auth_login_two_steps() {
    let mut d = implicit(tls_config(AuthConfig::new(Credentials::password("u", "p"))));
    d.feed(GREETING);
    d.feed(b"250-mx\r\n250 AUTH=LOGIN\r\n");
    d.take_sent();
    d.feed(b"334 VXNlcm5hbWU6\r\n");
    assert_eq!(d.take_sent_text(), "dQ==\r\n");
    d.feed(b"334 UGFzc3dvcmQ6\r\n");
    assert_eq!(d.take_sent_text(), "cA==\r\n");
    d.feed(b"235 ok\r\n");
    assert!(d.client.is_ready());
}

#[test]
fn auth_failure_is_an_error_and_quits() {
    let mut d = implicit(tls_config(AuthConfig::new(Credentials::password("u", "p"))));
    d.feed(GREETING);
    d.feed(b"250-mx\r\n250 AUTH PLAIN\r\n");
    d.take_sent();
    d.feed(b"535 5.7.8 Authentication credentials invalid\r\n");
    assert!(matches!(d.error(), Some(Error::AuthFailed(r)) if r.code().as_u16() == 535));
    assert_eq!(d.take_sent_text(), "QUIT\r\n");
}

#[test]
fn xoauth2_error_document_gets_an_empty_response() {
    let mut d = implicit(tls_config(AuthConfig::with_credentials(vec![
        Credentials::password("u", "p"),
        Credentials::oauth2("u", "t"),
    ])));
    d.feed(GREETING);
    d.feed(b"250-mx\r\n250 AUTH PLAIN XOAUTH2\r\n");
    let sent = d.take_sent_text();
    assert!(
        sent.ends_with("AUTH XOAUTH2 dXNlcj11AWF1dGg9QmVhcmVyIHQBAQ==\r\n"),
        "{sent}"
    );
    d.feed(b"334 eyJzdGF0dXMiOiI0MDEifQ==\r\n");
    assert_eq!(d.take_sent_text(), "\r\n");
    d.feed(b"535 5.7.8 bad token\r\n");
    assert!(matches!(d.error(), Some(Error::AuthFailed(_))));
}

#[test]
fn auth_never_over_plaintext_by_default() {
    let mut c = config();
    c.auth = Some(AuthConfig::new(Credentials::password("u", "p")));
    let mut d = ClientDriver::new(c.clone());
    d.feed(GREETING);
    d.take_sent();
    d.feed(b"250-mx\r\n250 AUTH PLAIN\r\n");
    assert_eq!(d.error(), Some(&Error::AuthRequiresTls));
    assert_eq!(
        d.take_sent_text(),
        "QUIT\r\n",
        "no credentials in the clear"
    );

    let mut auth = AuthConfig::new(Credentials::password("u", "p"));
    auth.allow_plaintext = true;
    c.auth = Some(auth);
    let mut d = ClientDriver::new(c);
    d.feed(GREETING);
    d.take_sent();
    d.feed(b"250-mx\r\n250 AUTH PLAIN\r\n");
    assert_eq!(d.take_sent_text(), "AUTH PLAIN AHUAcA==\r\n");
}

#[test]
fn auth_without_a_usable_mechanism() {
    let mut d = implicit(tls_config(AuthConfig::new(Credentials::password("u", "p"))));
    d.feed(GREETING);
    d.take_sent();
    d.feed(b"250-mx\r\n250 AUTH CRAM-MD5\r\n");
    assert_eq!(d.error(), Some(&Error::AuthNotAvailable));
    assert_eq!(d.take_sent_text(), "QUIT\r\n");
}

#[test]
fn sasl_hook_step_by_step() {
    let mech = Mechanism::new("X-ECHO").unwrap();
    let mut d = implicit(tls_config(AuthConfig::with_credentials(vec![
        Credentials::password("u", "p"),
        Credentials::Sasl {
            mechanisms: vec![mech.clone()],
        },
    ])));
    d.feed(GREETING);
    d.take_sent();
    d.feed(b"250-mx\r\n250 AUTH PLAIN X-ECHO\r\n");
    assert_eq!(
        d.take_sent_text(),
        "AUTH X-ECHO\r\n",
        "the application's mechanism ranks first"
    );
    assert_eq!(
        d.client.auth_respond(Secret::new(b"early".to_vec())),
        Err(UsageError::NoChallenge)
    );
    d.feed(b"334 aGVsbG8=\r\n");
    assert!(d.saw(|e| *e
        == Event::AuthChallenge {
            mechanism: mech.clone(),
            challenge: Secret::new(b"hello".to_vec())
        }));
    d.client
        .auth_respond(Secret::new(b"world".to_vec()))
        .unwrap();
    d.drain();
    assert_eq!(d.take_sent_text(), "d29ybGQ=\r\n");
    d.feed(b"235 ok\r\n");
    assert_eq!(d.client.authenticated(), Some(&mech));

    // Cancelling.
    let mut d = implicit(tls_config(AuthConfig::new(Credentials::Sasl {
        mechanisms: vec![mech],
    })));
    d.feed(GREETING);
    d.feed(b"250-mx\r\n250 AUTH X-ECHO\r\n");
    d.feed(b"334 \r\n");
    d.take_sent();
    d.client.auth_cancel().unwrap();
    d.drain();
    assert_eq!(d.take_sent_text(), "*\r\n");
    d.feed(b"501 5.7.0 cancelled\r\n");
    assert_eq!(d.error(), Some(&Error::AuthCancelled));
}

// ---- LMTP --------------------------------------------------------------

#[test]
fn lmtp_one_reply_per_accepted_recipient() {
    let mut c = config();
    c.protocol = Protocol::Lmtp;
    let mut d = ClientDriver::new(c);
    d.feed(b"220 lmtp ready\r\n");
    assert_eq!(d.take_sent_text(), "LHLO client.example\r\n");
    d.feed(b"250-lmtp\r\n250 PIPELINING\r\n");
    let env = Envelope::new(
        from("a@example.org"),
        vec![
            to("b@example.net"),
            to("x@example.net"),
            to("c@example.net"),
        ],
    );
    let mut delivery = MailTransaction::start(&mut d.client, env).unwrap();
    d.drain();
    d.take_events();
    d.feed(b"250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n354 go\r\n");
    d.client.write_body(b"hi\r\n").unwrap();
    d.client.finish_body().unwrap();
    d.drain();
    d.feed(b"250 2.0.0 b delivered\r\n452 4.2.2 c over quota\r\n");
    let mut report = None;
    for e in d.take_events() {
        if let Some(r) = delivery.handle_event(&mut d.client, &e) {
            report = Some(r);
        }
    }
    let report = report.expect("report");
    assert_eq!(
        outcomes(&report),
        [
            Outcome::Accepted,
            Outcome::PermanentFailure,
            Outcome::TransientFailure
        ]
    );
    assert_eq!(
        report.recipients[0].reply.as_ref().unwrap().first_line(),
        "b delivered"
    );
}

#[test]
fn lhlo_refused_has_no_helo_fallback() {
    let mut c = config();
    c.protocol = Protocol::Lmtp;
    let mut d = ClientDriver::new(c);
    d.feed(b"220 lmtp ready\r\n");
    d.take_sent();
    d.feed(b"500 what\r\n");
    assert!(matches!(d.error(), Some(Error::HelloRejected(_))));
    assert_eq!(d.take_sent_text(), "QUIT\r\n");
}

// ---- MailTransaction ---------------------------------------------------

/// Runs a delivery against scripted replies: `before_body` answers the
/// envelope, `after_body` the end of data.
fn deliver(
    d: &mut ClientDriver,
    env: Envelope,
    before_body: &[u8],
    body: &[u8],
    after_body: &[u8],
) -> TransactionReport {
    let mut delivery = MailTransaction::start(&mut d.client, env).unwrap();
    d.drain();
    let mut report = None;
    let mut pump = |d: &mut ClientDriver, delivery: &mut MailTransaction| {
        for e in d.take_events() {
            if e == Event::ReadyForBody {
                assert_eq!(d.client.write_body(body).unwrap(), body.len());
                d.client.finish_body().unwrap();
            }
            if let Some(r) = delivery.handle_event(&mut d.client, &e) {
                report = Some(r);
            }
        }
        d.drain();
    };
    pump(d, &mut delivery);
    d.feed(before_body);
    pump(d, &mut delivery);
    d.feed(after_body);
    pump(d, &mut delivery);
    report.expect("delivery finished")
}

#[test]
fn delivery_reports_each_recipient_and_the_queue_id() {
    let mut d = ready(config(), EHLO_PIPE);
    let env = Envelope::new(
        from("a@example.org"),
        vec![to("b@example.net"), to("x@example.net")],
    );
    let report = deliver(
        &mut d,
        env,
        b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <x@example.net>: Recipient address rejected\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
        b"Subject: hi\r\n\r\nbody\r\n",
        b"250 2.0.0 Ok: queued as 4Xk9sT3Hx7z9rJ\r\n",
    );
    assert_eq!(report.recipients[0].outcome, Outcome::Accepted);
    assert_eq!(report.recipients[1].outcome, Outcome::PermanentFailure);
    assert_eq!(
        report.data.as_ref().unwrap().first_line(),
        "Ok: queued as 4Xk9sT3Hx7z9rJ"
    );
    assert_eq!(report.accepted().count(), 1);
    assert!(!report.all_accepted());
    assert_eq!(d.client.transaction_phase(), TransactionPhase::Idle);
}

#[test]
fn delivery_declares_size_only_when_offered() {
    let mut d = ready(config(), EHLO_PIPE);
    let mut env = Envelope::new(from("a@example.org"), vec![to("b@example.net")]);
    env.params.size = Some(999);
    MailTransaction::start(&mut d.client, env.clone()).unwrap();
    d.drain();
    assert!(
        d.take_sent_text()
            .starts_with("MAIL FROM:<a@example.org> SIZE=999\r\n")
    );

    let mut d = ready(config(), EHLO_PLAIN);
    MailTransaction::start(&mut d.client, env.clone()).unwrap();
    d.drain();
    assert!(
        d.take_sent_text()
            .starts_with("MAIL FROM:<a@example.org>\r\n")
    );

    let mut d = ready(config(), EHLO_PIPE);
    env.params.size = Some(5000);
    assert_eq!(
        MailTransaction::start(&mut d.client, env).map(|_| ()),
        Err(UsageError::MessageTooLarge {
            size: 5000,
            limit: 1000
        })
    );
    d.drain();
    assert_eq!(d.take_sent(), b"", "refused before sending");
}

#[test]
fn delivery_sets_smtputf8_or_refuses() {
    let ehlo = b"250-mx\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n";
    let mut d = ready(config(), ehlo);
    let env = Envelope::new(from("a@example.org"), vec![to("jösé@example.net")]);
    MailTransaction::start(&mut d.client, env.clone()).unwrap();
    d.drain();
    assert!(
        d.take_sent_text()
            .starts_with("MAIL FROM:<a@example.org> SMTPUTF8\r\nRCPT TO:<jösé@example.net>\r\n")
    );

    let mut d = ready(config(), EHLO_PIPE);
    assert_eq!(
        MailTransaction::start(&mut d.client, env).map(|_| ()),
        Err(UsageError::ExtensionNotOffered("SMTPUTF8"))
    );
}

#[test]
fn delivery_mail_refused() {
    let mut d = ready(config(), EHLO_PIPE);
    let env = Envelope::new(from("a@example.org"), vec![to("b@example.net")]);
    let report = deliver(
        &mut d,
        env,
        b"451 4.3.0 try later\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need RCPT\r\n",
        b"never",
        b"",
    );
    assert_eq!(report.recipients[0].outcome, Outcome::TransientFailure);
    assert_eq!(
        report.recipients[0].reply.as_ref().unwrap().code().as_u16(),
        451
    );
    assert!(!d.sent.windows(5).any(|w| w == b"never"));
    assert_eq!(d.client.transaction_phase(), TransactionPhase::Idle);
}

#[test]
fn delivery_data_refused_resets() {
    let mut d = ready(config(), EHLO_PIPE);
    let env = Envelope::new(from("a@example.org"), vec![to("b@example.net")]);
    let report = deliver(
        &mut d,
        env,
        b"250 ok\r\n250 ok\r\n554 5.5.1 no\r\n",
        b"never",
        b"",
    );
    assert_eq!(report.recipients[0].outcome, Outcome::PermanentFailure);
    assert!(d.take_sent_text().ends_with("DATA\r\nRSET\r\n"));
}

// ---- Timeouts ----------------------------------------------------------

#[test]
fn greeting_timeout_is_five_minutes() {
    let mut d = ClientDriver::new(config());
    assert_eq!(d.advance_to_deadline(), Some(Duration::from_secs(300)));
    assert_eq!(
        d.error(),
        Some(&Error::Timeout(Waiting::Reply(ReplyTo::Greeting)))
    );
    assert!(d.client.is_closed());
}

#[test]
fn phase_timeouts_follow_rfc_5321() {
    let mut d = ready(config(), EHLO_PLAIN);
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.drain();
    assert_eq!(
        d.client.next_timeout(),
        Some(d.now + Duration::from_secs(300))
    );
    d.advance(Duration::from_secs(299));
    assert_eq!(d.error(), None, "spurious timeout is harmless");
    d.feed(b"250 ok\r\n");
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    d.drain();
    d.feed(b"250 ok\r\n");
    d.client.enqueue(Command::Data).unwrap();
    d.drain();
    assert_eq!(
        d.client.next_timeout(),
        Some(d.now + Duration::from_secs(120))
    );
    d.feed(b"354 go\r\n");
    assert_eq!(
        d.client.next_timeout(),
        None,
        "no reply due while writing the body"
    );
    d.client.finish_body().unwrap();
    d.drain();
    assert_eq!(
        d.client.next_timeout(),
        Some(d.now + Duration::from_secs(600))
    );
    assert_eq!(d.advance_to_deadline(), Some(Duration::from_secs(600)));
    assert_eq!(
        d.error(),
        Some(&Error::Timeout(Waiting::Reply(ReplyTo::EndOfData {
            recipient: None
        })))
    );
}

#[test]
fn reply_timer_starts_when_the_last_byte_is_written() {
    let mut d = ClientDriver::new(config());
    d.write_limit = 0; // the socket takes nothing
    d.feed(GREETING);
    assert_eq!(d.take_sent(), b"");
    d.advance(Duration::from_secs(100));
    // Not written yet: no EHLO reply timer; the write timer is running.
    assert_eq!(d.error(), None);
    d.write_limit = usize::MAX;
    d.drain();
    assert_eq!(d.take_sent_text(), "EHLO client.example\r\n");
    assert_eq!(
        d.client.next_timeout(),
        Some(d.now + Duration::from_secs(300))
    );
}

#[test]
fn write_timeout_when_the_socket_takes_nothing() {
    let mut d = ClientDriver::new(config());
    d.write_limit = 0;
    d.feed(GREETING);
    assert_eq!(d.advance_to_deadline(), Some(Duration::from_secs(180)));
    assert_eq!(d.error(), Some(&Error::Timeout(Waiting::Write)));
}

#[test]
fn quit_without_reply_closes_after_timeout() {
    let mut d = ready(config(), EHLO_PIPE);
    d.client.enqueue(Command::Quit).unwrap();
    d.drain();
    assert_eq!(d.take_sent_text(), "QUIT\r\n");
    d.advance_to_deadline();
    assert!(d.client.is_closed());
    assert_eq!(d.error(), None);
}

#[test]
fn eof_after_quit_is_clean() {
    let mut d = ready(config(), EHLO_PIPE);
    d.client.enqueue(Command::Quit).unwrap();
    d.drain();
    d.eof();
    assert!(d.client.is_closed());
    assert_eq!(d.error(), None);
}

#[test]
fn eight_bit_content_needs_8bitmime() {
    let mut d = ready(config(), EHLO_PIPE);
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    d.client.enqueue(Command::Data).unwrap();
    d.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
    assert_eq!(
        d.client.write_body("Subject: caf\u{e9}\r\n".as_bytes()),
        Err(UsageError::EightBitData { offset: 12 })
    );
    assert_eq!(d.client.write_body(b"Subject: cafe\r\n"), Ok(15));

    // The MailTransaction declares it from the content.
    let mut d = ready(config(), EHLO_PIPE);
    let mut env = Envelope::new(from("a@example.org"), vec![to("b@example.net")]);
    env.declare_body("caf\u{e9}".as_bytes());
    MailTransaction::start(&mut d.client, env.clone()).unwrap();
    d.drain();
    assert!(
        d.take_sent_text()
            .starts_with("MAIL FROM:<a@example.org> BODY=8BITMIME\r\n")
    );
    let mut d = ready(config(), b"250-mx\r\n250 PIPELINING\r\n");
    assert_eq!(
        MailTransaction::start(&mut d.client, env).map(|_| ()),
        Err(UsageError::ExtensionNotOffered("8BITMIME"))
    );
}

#[test]
fn dsn_parameters_pass_through_when_offered() {
    use smtp_proto::command::{Notify, NotifyOn, Ret};
    use smtp_proto::xtext::XText;
    let mut d = ready(config(), EHLO_PIPE);
    let params = MailParameters {
        ret: Some(Ret::Hdrs),
        envid: Some(XText::new("QQ314159").unwrap().into_owned()),
        ..Default::default()
    };
    d.client
        .enqueue(Command::Mail {
            from: from("a@example.org"),
            params,
        })
        .unwrap();
    d.client
        .enqueue(Command::Rcpt {
            to: to("b@example.net"),
            params: RcptParameters {
                notify: Some(Notify::On(NotifyOn::new(true, true, false).unwrap())),
                ..Default::default()
            },
        })
        .unwrap();
    d.drain();
    assert_eq!(
        d.take_sent_text(),
        "MAIL FROM:<a@example.org> RET=HDRS ENVID=QQ314159\r\nRCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE\r\n"
    );
    let mut d = ready(config(), b"250-mx\r\n250 PIPELINING\r\n");
    let params = MailParameters {
        ret: Some(Ret::Full),
        ..Default::default()
    };
    assert_eq!(
        d.client.enqueue(Command::Mail {
            from: from("a@example.org"),
            params
        }),
        Err(UsageError::ExtensionNotOffered("DSN"))
    );
    let params = MailParameters {
        requiretls: true,
        ..Default::default()
    };
    assert_eq!(
        d.client.enqueue(Command::Mail {
            from: from("a@example.org"),
            params
        }),
        Err(UsageError::ExtensionNotOffered("REQUIRETLS"))
    );
}

#[test]
fn vrfy_expn_help_get_one_reply_each() {
    use smtp_proto::command::Argument;
    let mut d = ready(config(), EHLO_PIPE);
    d.client
        .enqueue(Command::Vrfy {
            target: Argument::new("postmaster").unwrap(),
        })
        .unwrap();
    d.client
        .enqueue(Command::Expn {
            list: Argument::new("staff").unwrap(),
        })
        .unwrap();
    d.client.enqueue(Command::Help { topic: None }).unwrap();
    d.drain();
    assert_eq!(d.take_sent_text(), "VRFY postmaster\r\n");
    d.feed(b"252 2.1.5 cannot verify\r\n");
    assert_eq!(d.take_sent_text(), "EXPN staff\r\n");
    d.feed(b"550 no\r\n");
    assert_eq!(d.take_sent_text(), "HELP\r\n");
    d.feed(b"214-help\r\n214 end\r\n");
    assert_eq!(
        replies(&mut d),
        [
            (ReplyTo::Vrfy, 252),
            (ReplyTo::Expn, 550),
            (ReplyTo::Help, 214)
        ]
    );
}

#[test]
fn late_replies_to_a_refused_transaction_do_not_count_for_the_next() {
    let mut d = ready(config(), EHLO_PIPE);
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    d.feed(b"550 5.7.1 sender refused\r\n");
    assert_eq!(d.client.transaction_phase(), TransactionPhase::Idle);
    assert_eq!(
        d.client.enqueue(rcpt("b@example.net")),
        Err(UsageError::NoTransaction)
    );
    // A new transaction while the old RCPT's reply is still due.
    d.client.enqueue(mail("c@example.org")).unwrap();
    d.client.enqueue(rcpt("d@example.net")).unwrap();
    d.client.enqueue(Command::Data).unwrap();
    d.feed(b"503 5.5.1 need MAIL\r\n250 ok\r\n550 no\r\n");
    // The old 503 did not count: the only RCPT of this transaction was
    // refused, so no body will follow.
    assert!(d.saw(|e| *e == Event::NoValidRecipients));
    d.feed(b"554 5.5.1 no valid recipients\r\n");
    assert_eq!(
        replies(&mut d),
        [
            (ReplyTo::Mail, 550),
            (ReplyTo::Rcpt { index: 0 }, 503),
            (ReplyTo::Mail, 250),
            (ReplyTo::Rcpt { index: 0 }, 550),
            (ReplyTo::Data, 554)
        ]
    );
    assert_eq!(d.client.transaction_phase(), TransactionPhase::Open);
}

#[test]
fn no_body_is_wanted_after_the_session_failed() {
    let mut d = ready(config(), EHLO_PIPE);
    d.client.enqueue(mail("a@example.org")).unwrap();
    d.client.enqueue(rcpt("b@example.net")).unwrap();
    d.client.enqueue(Command::Data).unwrap();
    d.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
    d.take_sent();
    assert!(d.client.wants_body());
    // The server goes away mid-body: the transport must stop offering
    // content (write_body would refuse it).
    d.client.handle_eof(d.now);
    assert!(!d.client.wants_body());
    assert!(d.client.write_body(b"more\r\n").is_err());
}
