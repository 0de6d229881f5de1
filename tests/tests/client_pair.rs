//! The client against the real server session, in memory on a virtual
//! clock (`smtp_tests::pair::Pair`): every feature end to end, with the
//! bytes cut whole, byte by byte, and at every index.

use smtp_proto::address::Domain;
use smtp_proto::client::{
    self, AuthConfig, Credentials, Envelope, Error, Event, Outcome, ReplyTo, TransactionPhase,
    Waiting,
};
use smtp_proto::command::Command;
use smtp_proto::data::BareLineEnding;
use smtp_proto::keyword::Mechanism;
use smtp_proto::server;
use smtp_proto::{InjectionPolicy, Protocol, TlsMode};
use smtp_tests::fixtures::{self, all_permanent, from, outcomes, to};
use smtp_tests::pair::{Pair, Split};

fn client_config() -> client::Config {
    fixtures::client_config(TlsMode::Disabled)
}

fn server_config() -> server::Config {
    server::Config::new(Domain::new("mx.example.com").unwrap().into_owned())
}

fn ready_pair(c: client::Config, s: server::Config, split: Split) -> Pair {
    let mut p = Pair::new(c, s);
    p.split = split;
    p.run();
    assert!(
        p.client.is_ready(),
        "{:?}\n{:?}",
        p.client_events,
        p.app.log
    );
    p
}

/// A pair run to its end where the client logs in as `user` with
/// `password` (the server's application knows `sesame`), with the client's
/// and the server's TLS modes and `server` changing the rest of the
/// server's configuration.
fn auth_pair(
    client_tls: TlsMode,
    password: &str,
    server_tls: TlsMode,
    server: impl FnOnce(&mut server::Config),
) -> Pair {
    let mut c = fixtures::client_config(client_tls);
    c.auth = Some(AuthConfig::new(Credentials::password("user", password)));
    let mut s = server_config();
    s.tls = server_tls;
    server(&mut s);
    let mut p = Pair::new(c, s);
    p.app.password = "sesame".into();
    p.run();
    p
}

const BODY: &[u8] =
    b"From: a@example.org\r\nSubject: test\r\n\r\n.a line with a dot\r\n..two\r\nend\r\n";

fn envelope() -> Envelope {
    Envelope::new(
        from("a@example.org"),
        vec![
            to("b@example.net"),
            to("x@example.net"),
            to("c@example.net"),
        ],
    )
}

/// One full session: delivery with a refused recipient, then QUIT.
fn full_session(
    split: Split,
    c: client::Config,
    s: server::Config,
) -> (Pair, client::TransactionReport) {
    let mut p = ready_pair(c, s, split);
    p.app.refuse_rcpt.push("x@example.net".into());
    let report = p.deliver_message(envelope(), BODY, 7).unwrap();
    p.client.enqueue(Command::Quit).unwrap();
    p.run();
    (p, report)
}

#[test]
fn delivery_end_to_end() {
    use Outcome::{Accepted, PermanentFailure};
    let (p, report) = full_session(Split::Whole, client_config(), server_config());
    assert_eq!(outcomes(&report), [Accepted, PermanentFailure, Accepted]);
    assert_eq!(p.app.messages, [BODY.to_vec()]);
    assert!(p.client.is_closed() && p.server.is_closed());
    assert_eq!(p.client.error(), None);
    assert!(p.app.usage_errors.is_empty(), "{:?}", p.app.usage_errors);
}

#[test]
fn the_same_session_split_anywhere_gives_the_same_events() {
    let (whole, _) = full_session(Split::Whole, client_config(), server_config());
    let (bytes, _) = full_session(Split::Bytes, client_config(), server_config());
    assert_eq!(whole.client_events, bytes.client_events);
    assert_eq!(whole.c2s, bytes.c2s);
    assert_eq!(whole.app.messages, bytes.app.messages);
    for i in 1..200 {
        let (p, _) = full_session(Split::At(i), client_config(), server_config());
        assert_eq!(whole.client_events, p.client_events, "split at {i}");
        assert_eq!(whole.app.messages, p.app.messages, "split at {i}");
    }
}

#[test]
fn data_instead_of_bdat() {
    let mut s = server_config();
    s.offer.chunking = false;
    let (p, report) = full_session(Split::Whole, client_config(), s);
    assert!(report.data.unwrap().is_positive_completion());
    assert_eq!(p.app.messages, [BODY.to_vec()]);
    let c2s = String::from_utf8_lossy(&p.c2s).into_owned();
    assert!(
        c2s.contains("\r\nDATA\r\n") && !c2s.contains("BDAT"),
        "{c2s}"
    );
    assert!(c2s.contains("\r\n..a line with a dot\r\n...two\r\n"));
}

#[test]
fn pipelining_sends_the_envelope_in_one_write() {
    let mut s = server_config();
    s.offer.chunking = false;
    let mut p = ready_pair(client_config(), s, Split::Whole);
    let before = p.c2s.len();
    client::MailTransaction::start(&mut p.client, envelope()).unwrap();
    let smtp_proto::Output::Transmit(bytes) = p.client.poll(p.now) else {
        panic!("expected a transmit")
    };
    let text = String::from_utf8_lossy(bytes).into_owned();
    assert_eq!(text.matches("RCPT TO").count(), 3);
    assert!(text.starts_with("MAIL FROM") && text.ends_with("DATA\r\n"));
    let _ = before;
}

#[test]
fn lock_step_without_pipelining() {
    let mut s = server_config();
    s.offer.pipelining = false;
    let (p, report) = full_session(Split::Whole, client_config(), s);
    assert_eq!(report.accepted().count(), 2);
    assert_eq!(p.app.messages.len(), 1);
}

#[test]
fn starttls_then_auth_end_to_end() {
    let mut p = auth_pair(TlsMode::Required, "sesame", TlsMode::Opportunistic, |s| {
        s.on_injection = InjectionPolicy::Close;
        s.auth.mechanisms = vec![Mechanism::PLAIN, Mechanism::LOGIN];
    });
    assert!(p.client.is_tls() && p.server.is_tls());
    assert_eq!(p.client.authenticated(), Some(&Mechanism::PLAIN));
    assert!(p.client.is_ready(), "{:?}", p.client_events);
    let ehlos = p
        .client_events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Reply {
                    to: ReplyTo::Ehlo,
                    ..
                }
            )
        })
        .count();
    assert_eq!(ehlos, 2, "EHLO again after the handshake");
    let report = p.deliver_message(envelope(), BODY, 1000).unwrap();
    assert_eq!(report.accepted().count(), 3);
}

#[test]
fn wrong_password_fails_the_session() {
    let p = auth_pair(TlsMode::Implicit, "wrong", TlsMode::Implicit, |s| {
        s.auth.mechanisms = vec![Mechanism::LOGIN];
        s.auth.require_tls = false;
    });
    assert!(matches!(p.client.error(), Some(Error::AuthFailed(r)) if r.code().as_u16() == 535));
    assert!(p.client.is_closed());
}

#[test]
fn starttls_required_against_a_server_without_it() {
    let c = fixtures::client_config(TlsMode::Required);
    let mut p = Pair::new(c, server_config());
    p.run();
    assert_eq!(p.client.error(), Some(&Error::StartTlsNotOffered));
    assert!(p.client.is_closed());
    let c2s = String::from_utf8_lossy(&p.c2s).into_owned();
    assert_eq!(c2s, "EHLO client.example\r\nQUIT\r\n");
}

#[test]
fn lmtp_end_to_end() {
    let mut c = client_config();
    c.protocol = Protocol::Lmtp;
    let mut s = server_config();
    s.protocol = Protocol::Lmtp;
    let (p, report) = full_session(Split::Whole, c, s);
    assert_eq!(report.accepted().count(), 2);
    let finals = p
        .client_events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Reply {
                    to: ReplyTo::EndOfData { recipient: Some(_) },
                    ..
                }
            )
        })
        .count();
    assert_eq!(finals, 2, "one reply per accepted recipient");
}

#[test]
fn every_recipient_refused_sends_no_body() {
    for chunking in [true, false] {
        let mut s = server_config();
        s.offer.chunking = chunking;
        let mut p = ready_pair(client_config(), s, Split::Whole);
        p.app.refuse_rcpt = vec![
            "b@example.net".into(),
            "x@example.net".into(),
            "c@example.net".into(),
        ];
        let report = p.deliver_message(envelope(), BODY, 10).unwrap();
        assert!(all_permanent(&report));
        assert!(p.app.messages.is_empty());
        assert!(!p.c2s.windows(4).any(|w| w == b"From"), "no body byte sent");
        assert_eq!(p.client.transaction_phase(), TransactionPhase::Idle);
        // The connection carries the next message.
        p.app.refuse_rcpt.clear();
        let report = p.deliver_message(envelope(), BODY, 10).unwrap();
        assert!(report.all_accepted());
    }
}

#[test]
fn refused_data_then_reuse() {
    let mut p = ready_pair(client_config(), server_config(), Split::Whole);
    p.app.refuse_data = true;
    let report = p.deliver_message(envelope(), BODY, 10).unwrap();
    assert!(all_permanent(&report));
    p.app.refuse_data = false;
    let report = p.deliver_message(envelope(), BODY, 10).unwrap();
    assert!(report.all_accepted());
    assert_eq!(p.app.messages.len(), 1);
}

#[test]
fn temporary_recipient_failure() {
    let mut p = ready_pair(client_config(), server_config(), Split::Whole);
    p.app.defer_rcpt.push("c@example.net".into());
    let report = p.deliver_message(envelope(), BODY, 10).unwrap();
    assert_eq!(report.recipients[2].outcome, Outcome::TransientFailure);
    assert_eq!(report.recipients[0].outcome, Outcome::Accepted);
}

#[test]
fn bare_line_endings_normalized_arrive_clean() {
    let mut c = client_config();
    c.bare_line_ending = BareLineEnding::Normalize;
    let mut p = ready_pair(c, server_config(), Split::Whole);
    let report = p
        .deliver_message(envelope(), b"a\n.\nMAIL FROM:<evil@x>\n", 3)
        .unwrap();
    assert!(report.all_accepted() || report.accepted().count() == 3);
    assert_eq!(
        p.app.messages,
        [b"a\r\n.\r\nMAIL FROM:<evil@x>\r\n".to_vec()]
    );
}

#[test]
fn an_idle_client_is_timed_out_by_the_server() {
    let mut p = ready_pair(client_config(), server_config(), Split::Whole);
    let moved = p.advance_to_deadline().unwrap();
    assert_eq!(moved.as_secs(), 300);
    assert!(matches!(
        p.client.error(),
        Some(Error::ServiceNotAvailable(_))
    ));
    assert!(p.client.is_closed());
}

#[test]
fn size_limit_refused_before_sending() {
    let mut s = server_config();
    s.max_message_size = Some(100);
    let mut p = ready_pair(client_config(), s, Split::Whole);
    let mut env = envelope();
    env.params.size = Some(101);
    let before = p.c2s.len();
    assert_eq!(
        client::MailTransaction::start(&mut p.client, env).map(|_| ()),
        Err(client::UsageError::MessageTooLarge {
            size: 101,
            limit: 100
        })
    );
    p.run();
    assert_eq!(p.c2s.len(), before);
    let _ = Waiting::Write;
}

#[test]
fn application_sasl_mechanism_end_to_end() {
    let mech = Mechanism::new("X-ECHO").unwrap();
    let mut c = fixtures::client_config(TlsMode::Implicit);
    c.auth = Some(AuthConfig::new(Credentials::Sasl {
        mechanisms: vec![mech.clone()],
    }));
    let mut s = server_config();
    s.tls = TlsMode::Implicit;
    s.auth.mechanisms = vec![Mechanism::PLAIN, mech.clone()];
    s.auth.require_tls = false;
    let mut p = Pair::new(c, s);
    p.app.sasl = Some((b"who are you?".to_vec(), b"it is me".to_vec()));
    p.run();
    let challenge = p
        .client_events
        .iter()
        .find_map(|e| match e {
            Event::AuthChallenge { challenge, .. } => Some(challenge.expose().clone()),
            _ => None,
        })
        .expect("a challenge");
    assert_eq!(challenge, b"who are you?");
    p.client
        .auth_respond(smtp_proto::Secret::new(b"it is me".to_vec()))
        .unwrap();
    p.run();
    assert_eq!(p.client.authenticated(), Some(&mech));
    assert!(p.client.is_ready());
}

#[test]
fn a_stalled_server_times_out_the_mail_reply() {
    let mut p = ready_pair(client_config(), server_config(), Split::Whole);
    p.app.stall_mail = true;
    client::MailTransaction::start(&mut p.client, envelope()).unwrap();
    p.run();
    let moved = p.advance_to_deadline().unwrap();
    assert_eq!(moved.as_secs(), 300, "RFC 5321 §4.5.3.2.2");
    assert_eq!(
        p.client.error(),
        Some(&Error::Timeout(Waiting::Reply(ReplyTo::Mail)))
    );
    assert!(p.client.is_closed());
}

#[test]
fn smtputf8_and_8bitmime_end_to_end() {
    let mut p = ready_pair(client_config(), server_config(), Split::Whole);
    let body = "Subject: caf\u{e9}\r\n\r\nol\u{e9}\r\n".as_bytes();
    let mut env = Envelope::new(from("a@example.org"), vec![to("jös\u{e9}@example.net")]);
    env.declare_body(body);
    let report = p.deliver_message(env, body, 5).unwrap();
    assert!(report.all_accepted(), "{report:?}");
    let c2s = String::from_utf8_lossy(&p.c2s).into_owned();
    assert!(c2s.contains("BODY=8BITMIME SMTPUTF8\r\n"), "{c2s}");
    assert_eq!(p.app.messages, [body.to_vec()]);
}

#[test]
fn dsn_parameters_end_to_end() {
    use smtp_proto::command::{Notify, NotifyOn, RcptParameters, Ret};
    let mut s = server_config();
    s.offer.dsn = true;
    let mut p = ready_pair(client_config(), s, Split::Whole);
    let mut env = Envelope::new(from("a@example.org"), vec![]);
    env.recipients.push((
        to("b@example.net"),
        RcptParameters {
            notify: Some(Notify::On(NotifyOn::new(false, true, true).unwrap())),
            ..Default::default()
        },
    ));
    env.params.ret = Some(Ret::Hdrs);
    let report = p.deliver_message(env, BODY, 100).unwrap();
    assert!(report.all_accepted());
    assert!(p.app.log.iter().any(|l| l.contains("Hdrs")));
    assert!(p.app.log.iter().any(|l| l.contains("NotifyOn")));
}

#[test]
fn a_large_body_streams_through_bounded_buffers() {
    for chunking in [true, false] {
        let mut s = server_config();
        s.offer.chunking = chunking;
        let mut c = client_config();
        c.body_buffer = 4096;
        c.bdat_chunk = 1500;
        let mut p = ready_pair(c, s, Split::At(1000));
        let line = b"The quick brown fox jumps over the lazy dog. 0123456789\r\n.\r\n";
        let body = line.repeat(20_000);
        let report = p
            .deliver_message(
                Envelope::new(from("a@example.org"), vec![to("b@example.net")]),
                &body,
                3000,
            )
            .unwrap();
        assert!(report.all_accepted());
        assert_eq!(p.app.messages.len(), 1);
        assert!(
            p.app.messages[0] == body,
            "body intact (chunking: {chunking})"
        );
    }
}

#[test]
fn server_requiring_starttls_against_each_client_mode() {
    let mut s = server_config();
    s.tls = TlsMode::Required;
    // A client that does STARTTLS when offered gets its mail through, over
    // TLS, with EHLO sent again after the handshake.
    for mode in [TlsMode::Opportunistic, TlsMode::Required] {
        let c = fixtures::client_config(mode);
        let mut p = ready_pair(c, s.clone(), Split::Whole);
        assert!(p.client.is_tls() && p.server.is_tls());
        let report = p.deliver_message(envelope(), BODY, 1000).unwrap();
        assert_eq!(report.accepted().count(), 3);
    }
    // A client without TLS is refused at MAIL with 530 5.7.0 (RFC 3207 §4):
    // a permanent failure for every recipient, and the server's application
    // never saw the transaction.
    let mut p = ready_pair(client_config(), s, Split::Bytes);
    assert!(!p.client.is_tls());
    let report = p.deliver_message(envelope(), BODY, 1000).unwrap();
    let mail = report.mail.as_ref().expect("a reply to MAIL");
    assert_eq!(mail.code().as_u16(), 530);
    assert_eq!(mail.first_line(), "Must issue a STARTTLS command first");
    assert!(all_permanent(&report));
    assert!(p.app.messages.is_empty());
    assert!(
        !p.app.log.iter().any(|e| e.starts_with("Mail")),
        "{:?}",
        p.app.log
    );
}
