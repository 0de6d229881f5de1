//! The envelope a server session hands out with `DataStart`, `MessageEnd`
//! and `Reset`: the accepted MAIL and RCPT commands of the transaction,
//! nothing refused, nothing of an earlier transaction, whatever the
//! pipelining and however late the answers come.

use std::time::Instant;

use smtp_proto::Protocol;
use smtp_proto::address::Domain;
use smtp_proto::reply::{Reply, ReplyCode};
use smtp_proto::server::{Config, Envelope, Event, Server};
use smtp_tests::serve::{self, Answer};

fn config() -> Config {
    let mut config = Config::new(Domain::new("mx.example.org").unwrap().into_owned());
    // These tests pipeline whole transactions (behind NOOP and the end of
    // data) to exercise batching and late answers; the synchronization
    // rule, on by default, has its own tests (server_sync.rs).
    config.forbid_unauth_pipelining = false;
    config
}

/// A server with `config` at a fixed time, and an empty record of what it
/// showed of its envelopes.
fn start(config: Config) -> (Server, Instant, Vec<Seen>) {
    let now = Instant::now();
    (Server::new(config, now), now, Vec::new())
}

/// What a test saw of an envelope.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    /// `data-start`, `message-end` or `reset`.
    at: &'static str,
    from: String,
    size: Option<u64>,
    to: Vec<String>,
}

fn seen(at: &'static str, envelope: &Envelope<'_>) -> Seen {
    let to: Vec<String> = envelope
        .recipients()
        .map(|(to, params)| match params.notify {
            Some(_) => format!("{to} +notify"),
            None => to.to_string(),
        })
        .collect();
    assert_eq!(to.len(), envelope.recipient_count());
    Seen {
        at,
        from: envelope.from().to_string(),
        size: envelope.params().size,
        to,
    }
}

fn expect(at: &'static str, from: &str, size: Option<u64>, to: &[&str]) -> Seen {
    Seen {
        at,
        from: from.to_owned(),
        size,
        to: to.iter().map(|t| (*t).to_owned()).collect(),
    }
}

/// Drains the server, answering each question with `answer` (`None`:
/// accept); records the envelopes and returns whether a question is left
/// open (`answer` returned `Some(None)`: answer later).
fn drain(
    server: &mut Server,
    now: Instant,
    seen_: &mut Vec<Seen>,
    answer: &mut dyn FnMut(&Event<'_>) -> Option<Option<Reply<'static>>>,
) -> bool {
    let mut open = false;
    serve::drain(
        server,
        now,
        |_| {},
        |event| {
            match event {
                Event::DataStart { envelope, .. } => seen_.push(seen("data-start", envelope)),
                Event::MessageEnd { envelope, .. } => seen_.push(seen("message-end", envelope)),
                Event::Reset { envelope, .. } => seen_.push(seen("reset", envelope)),
                _ => {}
            }
            if !event.needs_answer() {
                return Answer::Accept;
            }
            match answer(event) {
                None => Answer::Accept,
                Some(Some(reply)) => Answer::Reply(reply),
                Some(None) => {
                    open = true;
                    Answer::Later
                }
            }
        },
    );
    open
}

fn refuse(code: u16) -> Option<Option<Reply<'static>>> {
    Some(Some(
        Reply::new(ReplyCode::new(code).unwrap(), "no").unwrap(),
    ))
}

#[test]
fn only_accepted_recipients_after_rset_and_a_second_transaction() {
    let (mut server, now, mut seen) = start(config());
    // One pipelined batch: a transaction abandoned by RSET, then two
    // messages on the same connection, with refused recipients among them.
    let input = b"EHLO c.example\r\n\
        MAIL FROM:<old@example.org>\r\nRCPT TO:<old@example.net>\r\nRSET\r\n\
        MAIL FROM:<a@example.org> SIZE=4\r\nRCPT TO:<refused@example.net>\r\n\
        RCPT TO:<b@example.net> NOTIFY=NEVER\r\nRCPT TO:<c@example.net>\r\nDATA\r\nhi\r\n.\r\n\
        MAIL FROM:<>\r\nRCPT TO:<d@example.net>\r\nRCPT TO:<also-refused@example.net>\r\n\
        DATA\r\nho\r\n.\r\nQUIT\r\n";
    let mut config = config();
    config.offer.dsn = true;
    let mut server_dsn = Server::new(config, now);
    for server in [&mut server, &mut server_dsn] {
        assert_eq!(server.handle_input(now, input), input.len());
    }
    let mut answer = |event: &Event<'_>| match event {
        Event::Rcpt { to, .. } if to.to_string().contains("refused") => refuse(550),
        _ => None,
    };
    // Without DSN offered NOTIFY is refused by the session itself (555):
    // that recipient is not in the envelope either.
    drain(&mut server, now, &mut seen, &mut answer);
    assert_eq!(
        seen,
        [
            expect("reset", "<old@example.org>", None, &["<old@example.net>"]),
            expect(
                "data-start",
                "<a@example.org>",
                Some(4),
                &["<c@example.net>"]
            ),
            expect(
                "message-end",
                "<a@example.org>",
                Some(4),
                &["<c@example.net>"]
            ),
            expect("data-start", "<>", None, &["<d@example.net>"]),
            expect("message-end", "<>", None, &["<d@example.net>"]),
        ]
    );
    seen.clear();
    drain(&mut server_dsn, now, &mut seen, &mut answer);
    let first = ["<b@example.net> +notify", "<c@example.net>"];
    assert_eq!(
        seen,
        [
            expect("reset", "<old@example.org>", None, &["<old@example.net>"]),
            expect("data-start", "<a@example.org>", Some(4), &first),
            expect("message-end", "<a@example.org>", Some(4), &first),
            expect("data-start", "<>", None, &["<d@example.net>"]),
            expect("message-end", "<>", None, &["<d@example.net>"]),
        ]
    );
}

#[test]
fn late_answers_while_more_input_arrives() {
    let (mut server, now, mut seen) = start(config());
    let mut later = |event: &Event<'_>| match event {
        Event::Mail { .. } | Event::Rcpt { .. } => Some(None),
        _ => None,
    };
    let feed = |server: &mut Server, bytes: &[u8]| {
        assert_eq!(server.handle_input(now, bytes), bytes.len());
    };
    feed(
        &mut server,
        b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\n",
    );
    assert!(drain(&mut server, now, &mut seen, &mut later));
    // The MAIL line is gone from the input buffer before it is answered.
    feed(&mut server, b"RCPT TO:<b@example.net>\r\n");
    server.accept().unwrap();
    assert!(drain(&mut server, now, &mut seen, &mut later));
    feed(&mut server, b"RCPT TO:<c@example.net>\r\nDATA\r\n");
    // 251: "user not local; will forward" accepts the recipient too.
    let forward = Reply::new(ReplyCode::USER_NOT_LOCAL_WILL_FORWARD, "forwarding").unwrap();
    server.reply(forward).unwrap();
    assert!(drain(&mut server, now, &mut seen, &mut later));
    server
        .reply(Reply::new(ReplyCode::new(450).unwrap(), "busy").unwrap())
        .unwrap();
    drain(&mut server, now, &mut seen, &mut later);
    feed(&mut server, b"x\r\n.\r\n");
    drain(&mut server, now, &mut seen, &mut later);
    assert_eq!(
        seen,
        [
            expect("data-start", "<a@example.org>", None, &["<b@example.net>"]),
            expect("message-end", "<a@example.org>", None, &["<b@example.net>"]),
        ]
    );
}

#[test]
fn a_refused_mail_opens_no_envelope_and_the_next_one_does() {
    let (mut server, now, mut seen) = start(config());
    let input = b"EHLO c.example\r\nMAIL FROM:<spam@example.org>\r\nRCPT TO:<b@example.net>\r\n\
        MAIL FROM:<ham@example.org>\r\nRCPT TO:<b@example.net>\r\nBDAT 2 LAST\r\nhi";
    assert_eq!(server.handle_input(now, input), input.len());
    drain(&mut server, now, &mut seen, &mut |event| match event {
        Event::Mail { from, .. } if from.to_string().contains("spam") => refuse(550),
        _ => None,
    });
    assert_eq!(
        seen,
        [
            expect(
                "data-start",
                "<ham@example.org>",
                None,
                &["<b@example.net>"]
            ),
            expect(
                "message-end",
                "<ham@example.org>",
                None,
                &["<b@example.net>"]
            ),
        ]
    );
}

#[test]
fn lmtp_recipients_come_in_the_order_of_the_answers() {
    let mut config = config();
    config.protocol = Protocol::Lmtp;
    let (mut server, now, mut seen) = start(config);
    let input = b"LHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@example.net>\r\n\
        RCPT TO:<nobody@example.net>\r\nRCPT TO:<y@example.net>\r\nDATA\r\nhi\r\n.\r\n";
    assert_eq!(server.handle_input(now, input), input.len());
    let mut replies = None;
    drain(&mut server, now, &mut seen, &mut |event| match event {
        Event::Rcpt { to, .. } if to.to_string().contains("nobody") => refuse(550),
        Event::MessageEnd { replies: n, .. } => {
            replies = Some(*n);
            None
        }
        _ => None,
    });
    assert_eq!(replies, Some(2), "one answer per accepted recipient");
    assert_eq!(
        seen.last(),
        Some(&expect(
            "message-end",
            "<a@example.org>",
            None,
            &["<x@example.net>", "<y@example.net>"]
        ))
    );
}

#[test]
fn a_message_the_session_refuses_resets_with_its_envelope() {
    let mut config = config();
    config.max_message_size = Some(4);
    let (mut server, now, mut seen) = start(config);
    let input = b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n\
        DATA\r\nmuch too long\r\n.\r\nMAIL FROM:<c@example.org>\r\nRCPT TO:<d@example.net>\r\n\
        EHLO again.example\r\n";
    assert_eq!(server.handle_input(now, input), input.len());
    drain(&mut server, now, &mut seen, &mut |_| None);
    assert_eq!(
        seen,
        [
            expect("data-start", "<a@example.org>", None, &["<b@example.net>"]),
            expect("reset", "<a@example.org>", None, &["<b@example.net>"]),
            expect("reset", "<c@example.org>", None, &["<d@example.net>"]),
        ]
    );
}
