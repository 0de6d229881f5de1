//! The client against hostile or broken servers, with recorded replies of
//! real servers as fixtures. Every case must end in a clear state: a typed
//! error and a closed session, never a reported success on a partial or
//! invalid reply, never unbounded buffering.

use std::time::Duration;

use smtp_proto::TlsMode;
use smtp_proto::client::{
    Config, Envelope, Error, Event, MailTransaction, Outcome, ReplyTo, TransactionPhase,
    UsageError, Waiting,
};
use smtp_proto::command::{Command, MailParameters, RcptParameters};
use smtp_proto::reply::ReplyError;
use smtp_tests::fixtures::{all_permanent, client_config, from, to};
use smtp_tests::pair::{ClientDriver, Split};

fn config() -> Config {
    client_config(TlsMode::Disabled)
}

/// Postfix 3.7 (`postconf -d` defaults plus TLS), recorded.
const POSTFIX_EHLO: &[u8] = b"250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";
/// Exim 4.96 style, recorded (greeting text on the first line, AUTH, PRDR).
const EXIM_EHLO: &[u8] = b"250-mx.example.net Hello client.example [192.0.2.1]\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250-AUTH PLAIN LOGIN\r\n250-CHUNKING\r\n250-PRDR\r\n250 HELP\r\n";
/// A server ending its EHLO reply with an empty `250 ` line.
const EMPTY_LAST_EHLO: &[u8] =
    b"250-smtp.example.org\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 \r\n";

fn greeted(config: Config) -> ClientDriver {
    let mut d = ClientDriver::new(config);
    d.feed(b"220 mx.example ESMTP\r\n");
    d.take_sent();
    d
}

fn ready(ehlo: &[u8]) -> ClientDriver {
    let mut d = greeted(config());
    d.feed(ehlo);
    assert!(d.saw(|e| *e == Event::Ready), "{:?}", d.events);
    d.take_events();
    d
}

fn closed_with(d: &ClientDriver, f: impl Fn(&Error) -> bool) {
    assert!(d.error().is_some_and(&f), "error: {:?}", d.error());
    assert!(d.client.is_closed());
    assert_eq!(d.events.last(), Some(&Event::Closed));
    assert!(!d.client.wants_read());
}

#[test]
fn recorded_postfix_ehlo() {
    let d = ready(POSTFIX_EHLO);
    let e = d.client.extensions().unwrap();
    assert!(e.supports_pipelining() && e.supports_chunking() && e.supports_smtputf8());
    assert!(e.supports_dsn() && e.supports_8bitmime() && e.supports_starttls());
    assert_eq!(e.max_size(), Some(10_240_000));
}

#[test]
fn recorded_exim_ehlo() {
    let d = ready(EXIM_EHLO);
    let e = d.client.extensions().unwrap();
    assert!(e.supports_auth() && e.supports_chunking() && e.contains("PRDR"));
    assert_eq!(e.max_size(), Some(52_428_800));
}

#[test]
fn ehlo_with_an_empty_last_line() {
    let d = ready(EMPTY_LAST_EHLO);
    assert!(d.client.extensions().unwrap().supports_pipelining());
}

#[test]
fn replies_with_and_without_enhanced_codes() {
    let mut d = ready(POSTFIX_EHLO);
    d.client
        .enqueue(Command::Mail {
            from: from("a@example.org"),
            params: MailParameters::default(),
        })
        .unwrap();
    for r in ["b", "c", "d"] {
        d.client
            .enqueue(Command::Rcpt {
                to: to(&format!("{r}@example.net")),
                params: RcptParameters::default(),
            })
            .unwrap();
    }
    d.drain();
    // Postfix (enhanced), Exim (none), Sendmail-style multi-line.
    d.feed(b"250 2.1.0 Ok\r\n250 Accepted\r\n550-5.1.1 <c@example.net>: user unknown\r\n550 5.1.1 see https://example.net/help\r\n451 Temporary local problem - please try later\r\n");
    let replies: Vec<_> = d
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Reply { reply, .. } => Some(reply),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 4);
    assert_eq!(
        replies[0].enhanced_code().map(|c| c.to_string()),
        Some("2.1.0".into())
    );
    assert_eq!(replies[1].enhanced_code(), None);
    assert_eq!(replies[1].first_line(), "Accepted");
    assert_eq!(replies[2].lines().len(), 2);
    assert_eq!(
        replies[2].lines().nth(1).unwrap(),
        "see https://example.net/help"
    );
    assert_eq!(replies[3].code().as_u16(), 451);
}

#[test]
fn reply_bytes_one_per_segment_give_the_same_events() {
    let script: [&[u8]; 3] = [
        b"220 mx ESMTP\r\n",
        b"250-mx\r\n250-PIPELINING\r\n250 SIZE 100\r\n",
        b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n",
    ];
    let run = |split: Split| {
        let mut d = ClientDriver::new(config());
        d.feed_split(script[0], split);
        d.feed_split(script[1], split);
        d.client
            .enqueue(Command::Mail {
                from: from("a@example.org"),
                params: MailParameters::default(),
            })
            .unwrap();
        d.client
            .enqueue(Command::Rcpt {
                to: to("b@example.net"),
                params: RcptParameters::default(),
            })
            .unwrap();
        d.client.enqueue(Command::Data).unwrap();
        d.drain();
        d.feed_split(script[2], split);
        (d.events, d.sent)
    };
    let whole = run(Split::Whole);
    assert!(whole.0.contains(&Event::ReadyForBody));
    assert_eq!(run(Split::Bytes), whole);
    for i in 0..script[2].len() {
        assert_eq!(run(Split::At(i)), whole, "split at {i}");
    }
}

#[test]
fn mixed_codes_in_a_multiline_reply() {
    let mut d = greeted(config());
    d.feed(b"250-mx\r\n251 PIPELINING\r\n");
    closed_with(&d, |e| {
        matches!(e, Error::InvalidReply(ReplyError::MixedCodes { .. }))
    });
    assert!(!d.saw(|e| *e == Event::Ready));
}

#[test]
fn a_reply_line_without_a_code() {
    let mut d = ClientDriver::new(config());
    d.feed(b"hello there\r\n");
    closed_with(&d, |e| {
        matches!(e, Error::InvalidReply(ReplyError::MissingCode))
    });
    assert_eq!(d.take_sent(), b"");
}

#[test]
fn a_100_kb_reply_line() {
    let mut d = greeted(config());
    let mut line = b"250 ".to_vec();
    line.extend(std::iter::repeat_n(b'x', 100 * 1024));
    line.extend_from_slice(b"\r\n");
    d.feed(&line);
    closed_with(&d, |e| matches!(e, Error::ReplyLineTooLong { max: 2048 }));
}

#[test]
fn a_never_ending_line_stops_at_the_limit() {
    let mut d = greeted(config());
    let chunk = [b'7'; 1000];
    let mut fed = 0;
    while d.client.wants_read() {
        d.feed(&chunk);
        fed += chunk.len();
        assert!(fed < 10_000, "kept reading past the limit");
    }
    assert!(
        fed <= 3000,
        "stopped within one read of the 2048-byte limit: {fed}"
    );
    closed_with(&d, |e| matches!(e, Error::ReplyLineTooLong { .. }));
}

#[test]
fn too_many_lines_in_one_reply() {
    let mut d = greeted(config());
    let mut reply = Vec::new();
    for _ in 0..200 {
        reply.extend_from_slice(b"250-X\r\n");
    }
    d.feed(&reply);
    closed_with(&d, |e| {
        matches!(e, Error::InvalidReply(ReplyError::TooManyLines { .. }))
    });
}

#[test]
fn greeting_554_quits_with_a_clear_error() {
    let mut d = ClientDriver::new(config());
    d.feed(b"554 5.7.1 No SMTP service here\r\n");
    assert!(matches!(d.error(), Some(Error::GreetingRejected(r)) if r.code().as_u16() == 554));
    assert_eq!(d.take_sent_text(), "QUIT\r\n");
    assert!(!d.client.is_closed(), "waits for the 221");
    d.feed(b"221 2.0.0 Bye\r\n");
    assert!(d.client.is_closed());
    assert_eq!(
        d.events
            .iter()
            .filter(|e| matches!(e, Event::Error(_)))
            .count(),
        1,
        "the error is reported once"
    );
}

#[test]
fn greeting_421_closes_without_quit() {
    let mut d = ClientDriver::new(config());
    d.feed(b"421 4.3.2 Service shutting down\r\n");
    closed_with(&d, |e| matches!(e, Error::ServiceNotAvailable(_)));
    assert_eq!(d.take_sent(), b"");
}

#[test]
fn ehlo_500_falls_back_to_helo() {
    let mut d = greeted(config());
    d.feed(b"500 5.5.2 Error: command not recognized\r\n");
    assert_eq!(d.take_sent_text(), "HELO client.example\r\n");
    d.feed(b"250 mx.example\r\n");
    assert!(d.client.is_ready());
    assert!(d.client.extensions().is_none());
}

#[test]
fn starttls_response_injection_closes() {
    let mut c = config();
    c.tls = TlsMode::Required;
    let mut d = greeted(c);
    d.feed(b"250-mx\r\n250 STARTTLS\r\n");
    assert_eq!(d.take_sent_text(), "STARTTLS\r\n");
    d.feed(b"220 go ahead\r\n250 injected\r\n");
    closed_with(&d, |e| *e == Error::StartTlsInjection { bytes: 14 });
    assert_eq!(d.starttls, 0);
    assert_eq!(d.take_sent(), b"");
}

#[test]
fn starttls_injection_split_at_every_index() {
    let script: &[u8] = b"220 go ahead\r\n250-example.org\r\n250 AUTH LOGIN\r\n";
    for i in 0..=script.len() {
        let mut c = config();
        c.tls = TlsMode::Required;
        let mut d = greeted(c);
        d.feed(b"250-mx\r\n250 STARTTLS\r\n");
        d.feed_split(script, Split::At(i));
        assert!(
            matches!(d.error(), Some(Error::StartTlsInjection { .. })),
            "split at {i}: {:?}",
            d.error()
        );
        assert!(d.client.extensions().is_none(), "split at {i}");
        assert!(d.client.is_closed());
    }
}

#[test]
fn starttls_not_offered_or_refused_in_required_mode() {
    // Stripped (O_1), refused (O_2, O_3), odd code (O_4).
    for (ehlo, reply) in [
        (&b"250-mx\r\n250 AUTH PLAIN\r\n"[..], None),
        (
            b"250-mx\r\n250 STARTTLS\r\n",
            Some(&b"502 5.5.1 not implemented\r\n"[..]),
        ),
        (
            b"250-mx\r\n250 STARTTLS\r\n",
            Some(b"454 4.7.0 TLS not available\r\n"),
        ),
        (
            b"250-mx\r\n250 STARTTLS\r\n",
            Some(b"354 do something else\r\n"),
        ),
    ] {
        let mut c = config();
        c.tls = TlsMode::Required;
        let mut d = greeted(c);
        d.feed(ehlo);
        if let Some(reply) = reply {
            assert_eq!(d.take_sent_text(), "STARTTLS\r\n");
            d.feed(reply);
        }
        assert!(matches!(
            d.error(),
            Some(Error::StartTlsNotOffered | Error::StartTlsRefused(_))
        ));
        assert_eq!(d.take_sent_text(), "QUIT\r\n", "only QUIT in plaintext");
        assert!(!d.client.is_ready());
    }
}

/// Starts a one-recipient delivery and answers the envelope.
fn delivery_in_body(ehlo: &[u8]) -> (ClientDriver, MailTransaction) {
    let mut d = ready(ehlo);
    let env = Envelope::new(from("a@example.org"), vec![to("b@example.net")]);
    let delivery = MailTransaction::start(&mut d.client, env).unwrap();
    d.drain();
    d.take_sent();
    (d, delivery)
}

fn report_of(
    d: &mut ClientDriver,
    delivery: &mut MailTransaction,
) -> Option<smtp_proto::client::TransactionReport> {
    let mut report = None;
    for e in d.take_events() {
        if let Some(r) = delivery.handle_event(&mut d.client, &e) {
            report = Some(r);
        }
    }
    d.drain();
    report
}

#[test]
fn close_in_the_middle_of_the_final_reply_is_not_success() {
    for split in [4usize, 10, 20] {
        let (mut d, mut delivery) = delivery_in_body(b"250-mx\r\n250 PIPELINING\r\n");
        d.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
        d.client.write_body(b"hello\r\n").unwrap();
        d.client.finish_body().unwrap();
        d.drain();
        let final_reply = b"250 2.0.0 Ok: queued as ABC\r\n";
        d.feed(&final_reply[..split]);
        d.eof();
        closed_with(&d, |e| {
            *e == Error::ConnectionClosed {
                partial_reply: true,
            }
        });
        assert!(!d.saw(|e| matches!(
            e,
            Event::Reply {
                to: ReplyTo::EndOfData { .. },
                ..
            }
        )));
        let report = report_of(&mut d, &mut delivery).expect("report");
        assert_eq!(report.recipients[0].outcome, Outcome::TransientFailure);
        assert_eq!(report.recipients[0].reply, None);
        assert!(report.error.is_some());
    }
}

#[test]
fn a_multiline_final_reply_cut_after_a_continuation_line() {
    let (mut d, mut delivery) = delivery_in_body(b"250-mx\r\n250 PIPELINING\r\n");
    d.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
    d.client.finish_body().unwrap();
    d.drain();
    d.feed(b"250-2.0.0 Ok\r\n");
    d.eof();
    closed_with(&d, |e| {
        *e == Error::ConnectionClosed {
            partial_reply: true,
        }
    });
    let report = report_of(&mut d, &mut delivery).unwrap();
    assert_eq!(report.recipients[0].outcome, Outcome::TransientFailure);
}

#[test]
fn eof_while_waiting() {
    let mut d = ready(b"250 mx\r\n");
    d.eof();
    closed_with(&d, |e| {
        *e == Error::ConnectionClosed {
            partial_reply: false,
        }
    });
}

#[test]
fn silence_times_out_on_the_virtual_clock() {
    let mut d = ClientDriver::new(config());
    assert_eq!(d.advance_to_deadline(), Some(Duration::from_secs(300)));
    closed_with(&d, |e| {
        *e == Error::Timeout(Waiting::Reply(ReplyTo::Greeting))
    });

    // A partial reply does not reset the timer.
    let mut d = greeted(config());
    d.advance(Duration::from_secs(200));
    d.feed(b"250-mx\r\n");
    assert_eq!(d.advance_to_deadline(), Some(Duration::from_secs(100)));
    closed_with(&d, |e| *e == Error::Timeout(Waiting::Reply(ReplyTo::Ehlo)));
}

#[test]
fn service_closing_421_in_the_middle_of_a_transaction() {
    let (mut d, mut delivery) = delivery_in_body(b"250-mx\r\n250 PIPELINING\r\n");
    d.feed(b"250 ok\r\n421 4.7.0 mx.example closing connection\r\n");
    closed_with(&d, |e| matches!(e, Error::ServiceNotAvailable(_)));
    assert!(d.saw(|e| matches!(e, Event::Reply { to: ReplyTo::Rcpt { index: 0 }, reply } if reply.code().as_u16() == 421)));
    let report = report_of(&mut d, &mut delivery).unwrap();
    assert_eq!(report.recipients[0].outcome, Outcome::TransientFailure);
    assert_eq!(d.take_sent(), b"", "no QUIT to a closing server");
}

/// Sends what the session has queued, which must be `sent`, and feeds the
/// server's `replies`, which refuse every recipient: the session must say
/// so.
fn every_rcpt_refused(d: &mut ClientDriver, sent: &str, replies: &[u8]) {
    d.drain();
    assert_eq!(d.take_sent_text(), sent);
    d.feed(replies);
    assert!(d.saw(|e| *e == Event::NoValidRecipients));
}

#[test]
fn every_rcpt_refused_under_pipelining_sends_no_body_data() {
    let mut d = ready(b"250-mx\r\n250 PIPELINING\r\n");
    let env = Envelope::new(
        from("a@example.org"),
        vec![to("b@example.net"), to("c@example.net")],
    );
    let mut delivery = MailTransaction::start(&mut d.client, env).unwrap();
    every_rcpt_refused(
        &mut d,
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n",
        b"250 ok\r\n550 no\r\n550 no\r\n554 5.5.1 Error: no valid recipients\r\n",
    );
    assert!(!d.saw(|e| *e == Event::ReadyForBody));
    assert_eq!(d.client.write_body(b"body"), Err(UsageError::NoBodyDue));
    let report = report_of(&mut d, &mut delivery).unwrap();
    assert!(all_permanent(&report));
    assert_eq!(d.take_sent_text(), "RSET\r\n");
}

#[test]
fn every_rcpt_refused_under_bdat_sends_no_chunk() {
    let mut d = ready(b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
    let env = Envelope::new(from("a@example.org"), vec![to("b@example.net")]);
    let mut delivery = MailTransaction::start(&mut d.client, env).unwrap();
    d.drain();
    // The application writes the body at once; it must wait in the session.
    for e in d.take_events() {
        assert!(delivery.handle_event(&mut d.client, &e).is_none());
    }
    assert_eq!(d.client.write_body(b"secret body\r\n").unwrap(), 13);
    d.client.finish_body().unwrap();
    every_rcpt_refused(
        &mut d,
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n",
        b"250 ok\r\n550 5.1.1 unknown\r\n",
    );
    let report = report_of(&mut d, &mut delivery).unwrap();
    assert_eq!(report.recipients[0].outcome, Outcome::PermanentFailure);
    assert_eq!(d.take_sent_text(), "RSET\r\n", "no BDAT, no body byte");
    assert_eq!(d.client.transaction_phase(), TransactionPhase::Idle);
}

#[test]
fn a_354_without_any_accepted_recipient_closes() {
    let mut d = ready(b"250-mx\r\n250 PIPELINING\r\n");
    let env = Envelope::new(from("a@example.org"), vec![to("b@example.net")]);
    MailTransaction::start(&mut d.client, env).unwrap();
    d.drain();
    d.take_sent();
    d.feed(b"250 ok\r\n550 no\r\n354 go ahead anyway\r\n");
    closed_with(&d, |e| *e == Error::DataWithoutRecipients);
    assert_eq!(d.take_sent(), b"");
}

#[test]
fn a_refused_bdat_chunk_stops_the_body() {
    let mut c = config();
    c.bdat_chunk = 4;
    let mut d = greeted(c);
    d.feed(b"250-mx\r\n250 CHUNKING\r\n");
    let env = Envelope::new(from("a@example.org"), vec![to("b@example.net")]);
    let mut delivery = MailTransaction::start(&mut d.client, env).unwrap();
    d.drain();
    d.feed(b"250 ok\r\n");
    d.feed(b"250 ok\r\n");
    d.take_sent();
    assert_eq!(d.client.write_body(b"aaaabbbbcc").unwrap(), 10);
    d.drain();
    // Lock-step (no PIPELINING): one chunk at a time.
    assert_eq!(d.take_sent_text(), "BDAT 4\r\naaaa");
    d.feed(b"552 5.3.4 too big\r\n");
    assert_eq!(d.take_sent(), b"", "no more BDAT after a refused chunk");
    assert_eq!(d.client.write_body(b"more"), Err(UsageError::NoBodyDue));
    let report = report_of(&mut d, &mut delivery).unwrap();
    assert_eq!(report.recipients[0].outcome, Outcome::PermanentFailure);
    assert_eq!(report.data.as_ref().unwrap().code().as_u16(), 552);
}

#[test]
fn an_unsolicited_reply() {
    let mut d = ready(b"250 mx\r\n");
    d.feed(b"250 surprise\r\n");
    closed_with(&d, |e| matches!(e, Error::UnexpectedReply(_)));
    let mut d = ready(b"250 mx\r\n");
    d.feed(b"421 4.4.2 idle timeout\r\n");
    closed_with(&d, |e| matches!(e, Error::ServiceNotAvailable(_)));
}

#[test]
fn a_reply_before_the_command_was_sent_is_unsolicited() {
    let mut d = ClientDriver::new(config());
    d.write_limit = 0;
    d.feed(b"220 mx\r\n");
    // EHLO is pending, not written: a "reply" now was not asked for.
    d.feed(b"250 mx\r\n");
    closed_with(&d, |e| matches!(e, Error::UnexpectedReply(_)));

    // After a 554 greeting the QUIT is queued; a reply in the same read
    // cannot answer it.
    let mut d = ClientDriver::new(config());
    d.feed(b"554 no\r\n250 fake\r\n");
    assert!(matches!(d.error(), Some(Error::GreetingRejected(_))));
    assert!(d.client.is_closed());
    assert!(!d.saw(|e| matches!(
        e,
        Event::Reply {
            to: ReplyTo::Quit,
            ..
        }
    )));
}

#[test]
fn huge_auth_mechanism_list_is_bounded() {
    let mut d = greeted(config());
    let mut ehlo = b"250-mx\r\n250 AUTH".to_vec();
    for i in 0..300 {
        ehlo.extend_from_slice(format!(" X-MECH-{i}").as_bytes());
    }
    ehlo.extend_from_slice(b"\r\n");
    d.feed(&ehlo);
    closed_with(&d, |e| matches!(e, Error::ReplyLineTooLong { .. }));
}
