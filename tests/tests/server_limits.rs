//! Limits, timeouts on a virtual clock, error limits, asynchronous answers,
//! batching and memory bounds of the server session.

use std::time::{Duration, Instant};

use smtp_proto::Output;
use smtp_proto::address::Domain;
use smtp_proto::reply::{Reply, ReplyCode};
use smtp_proto::server::{CloseReason, Config, Event, Server};
use smtp_tests::serve::{self, Answer};
use smtp_tests::transcript::run;

fn config() -> Config {
    let mut config = Config::new(Domain::new("mx.example.org").unwrap().into_owned());
    // These tests pipeline whole transactions (behind NOOP and the end of
    // data) to exercise batching and late answers; the synchronization
    // rule, on by default, has its own tests (server_sync.rs).
    config.forbid_unauth_pipelining = false;
    config
}

/// Drains the server, answering every question with `accept`; returns the
/// transmits (one entry per `Transmit`) and the event count.
fn drain_sync(server: &mut Server, now: Instant) -> (Vec<Vec<u8>>, usize) {
    let mut writes = Vec::new();
    let mut events = 0;
    serve::drain(
        server,
        now,
        |b| writes.push(b.to_vec()),
        |_| {
            events += 1;
            Answer::Accept
        },
    );
    (writes, events)
}

#[test]
fn a_pipelined_batch_is_answered_in_one_transmit() {
    let now = Instant::now();
    let mut server = Server::new(config(), now);
    drain_sync(&mut server, now);
    let batch = b"EHLO c.example\r\n";
    assert_eq!(server.handle_input(now, batch), batch.len());
    drain_sync(&mut server, now);
    let batch = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nNOOP\r\nRSET\r\nMAIL FROM:<a@example.org>\r\n";
    assert_eq!(server.handle_input(now, batch), batch.len());
    let (writes, _) = drain_sync(&mut server, now);
    assert_eq!(writes.len(), 1, "one write for the whole batch: {writes:?}");
    assert_eq!(
        writes[0],
        b"250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n250 2.1.5 Recipient ok\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n250 2.1.0 Sender ok\r\n"
    );
}

#[test]
fn asynchronous_answers_while_more_input_arrives() {
    let now = Instant::now();
    let mut server = Server::new(config(), now);
    drain_sync(&mut server, now);
    let _ = server.handle_input(now, b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\n");
    let mut wire = Vec::new();
    // Poll without answering: the EHLO reply goes out, MAIL waits.
    let mut asked = 0;
    let deadline = serve::drain(
        &mut server,
        now,
        |b| wire.extend_from_slice(b),
        |e| {
            if matches!(e, Event::Mail { .. }) {
                asked += 1;
                Answer::Later
            } else {
                Answer::Accept
            }
        },
    );
    assert_eq!(
        deadline, None,
        "no peer timeout while the application thinks"
    );
    assert_eq!(asked, 1);
    assert!(wire.starts_with(b"250-mx.example.org\r\n"), "{wire:?}");
    let before = wire.len();
    // More pipelined input arrives; nothing is answered yet.
    let _ = server.handle_input(now, b"RCPT TO:<b@example.org>\r\nNOOP\r\n");
    assert!(matches!(server.poll(now), Output::Wait { .. }));
    // The answer comes "later".
    let later = now + Duration::from_secs(30);
    server.accept().unwrap();
    let mut rcpt = false;
    serve::drain(
        &mut server,
        later,
        |b| wire.extend_from_slice(b),
        |e| match e {
            Event::Rcpt { .. } => {
                rcpt = true;
                Answer::Reply(Reply::new(ReplyCode::MAILBOX_UNAVAILABLE, "no").unwrap())
            }
            _ => Answer::Accept,
        },
    );
    assert!(rcpt);
    assert_eq!(
        &wire[before..],
        b"250 2.1.0 Sender ok\r\n550 no\r\n250 2.0.0 Ok\r\n"
    );
}

#[test]
fn idle_timeout_sends_421_on_a_virtual_clock() {
    run(r"
S: 220 mx.example.org ESMTP
T: +299
H: HELO c.example
T: +299
X: open
T: +1
S: 421 mx.example.org Error: timeout exceeded
E: closed timeout
X: closed
");
}

#[test]
fn data_timeout_and_no_timeout_while_the_application_decides() {
    run(r"
S: 220 mx.example.org ESMTP
H: HELO c.example
C: MAIL FROM:<a@example.org>
E: mail FROM:<a@example.org>
T: +3600
X: open
A: accept
S: 250 Sender ok
C: RCPT TO:<b@example.org>
E: rcpt TO:<b@example.org>
A: accept
S: 250 Recipient ok
C: DATA
E: data-start data
A: accept
S: 354 End data with <CR><LF>.<CR><LF>
B: some text
E: body some text
T: +300
S: 421 mx.example.org Error: timeout exceeded
E: closed timeout
");
}

#[test]
fn error_limit_closes_with_421() {
    run(r"
!errors 2 4 0
S: 220 mx.example.org ESMTP
C: FOO
C: BAR
C: BAZ
C: QUX
C: NOOP
S: 500 Command unrecognized
S: 500 Command unrecognized
S: 500 Command unrecognized
S: 500 Command unrecognized
S: 421 mx.example.org Error: too many errors
E: closed too-many-errors
");
}

#[test]
fn soft_error_limit_holds_replies_back() {
    run(r"
!errors 1 10 1000
S: 220 mx.example.org ESMTP
C: FOO
C: BAR
C: NOOP
X: open
T: +1
S: 500 Command unrecognized
S: 500 Command unrecognized
S: 250 Ok
");
}

#[test]
fn over_long_line_then_a_valid_command() {
    let long = "X".repeat(5000);
    run(&format!(
        "S: 220 mx.example.org ESMTP\nC: NOOP {long}\nC: NOOP\nS: 500 Line too long\nS: 250 Ok\n"
    ));
}

#[test]
fn send_timeout_drops_a_peer_that_does_not_read() {
    let now = Instant::now();
    let mut server = Server::new(config(), now);
    assert!(matches!(server.poll(now), Output::Transmit(_)));
    let deadline = server.next_timeout().unwrap();
    server.handle_timeout(deadline);
    match server.poll(deadline) {
        Output::Event(Event::Closed { reason }) => assert_eq!(reason, CloseReason::SendTimeout),
        other => panic!("{other:?}"),
    }
    assert!(server.is_closed());
}

#[test]
fn full_input_buffer_stops_reading_until_answered() {
    let now = Instant::now();
    let mut c = config();
    c.limits.input_buffer = 0; // clamped to the minimum (an AUTH line + 1)
    let mut server = Server::new(c, now);
    drain_sync(&mut server, now);
    let _ = server.handle_input(now, b"HELO c\r\n");
    drain_sync(&mut server, now);
    let _ = server.handle_input(now, b"MAIL FROM:<a@example.org>\r\n");
    assert!(matches!(
        server.poll(now),
        Output::Event(Event::Mail { .. })
    ));
    let flood = vec![b'N'; 100_000];
    let taken = server.handle_input(now, &flood);
    assert!(taken < flood.len());
    assert!(!server.wants_read());
    assert_eq!(server.handle_input(now, b"more"), 0);
    assert!(server.buffered_input() <= 12_289 + 64);
    server.accept().unwrap();
    drain_sync(&mut server, now);
    assert!(
        server.wants_read(),
        "the over-long line was dropped as it arrived"
    );
}

#[test]
fn idle_session_holds_no_large_buffer_after_a_big_body() {
    let now = Instant::now();
    let mut server = Server::new(config(), now);
    drain_sync(&mut server, now);
    let _ = server.handle_input(
        now,
        b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
    );
    drain_sync(&mut server, now);
    let line = b"0123456789012345678901234567890123456789012345678901234567890123456789\r\n";
    let mut body_events = 0;
    for _ in 0..5000 {
        let mut rest: &[u8] = line;
        while !rest.is_empty() {
            let n = server.handle_input(now, rest);
            rest = &rest[n..];
            let (_, e) = drain_sync(&mut server, now);
            body_events += e;
        }
    }
    let _ = server.handle_input(now, b".\r\n");
    drain_sync(&mut server, now);
    assert!(body_events > 0);
    assert!(
        server.input_capacity() <= 4096,
        "capacity {}",
        server.input_capacity()
    );
    assert_eq!(server.buffered_input(), 0);
}

#[test]
fn misuse_changes_nothing() {
    let now = Instant::now();
    let mut server = Server::new(config(), now);
    assert!(server.accept().is_err());
    assert!(server.auth_challenge(b"x").is_err());
    let pending = match server.poll(now) {
        Output::Transmit(b) => b.len(),
        other => panic!("{other:?}"),
    };
    assert!(server.advance_transmit(now, pending + 1).is_err());
    assert!(matches!(server.poll(now), Output::Transmit(b) if b.len() == pending));
    assert!(
        server
            .handle_tls_established(now, smtp_proto::TlsInfo::default())
            .is_err()
    );
}

#[test]
fn starttls_output_only_after_the_220_is_fully_written() {
    let now = Instant::now();
    let mut c = config();
    c.tls = smtp_proto::TlsMode::Opportunistic;
    c.on_injection = smtp_proto::InjectionPolicy::Close;
    let mut server = Server::new(c, now);
    drain_sync(&mut server, now);
    let _ = server.handle_input(now, b"EHLO c\r\n");
    drain_sync(&mut server, now);
    let _ = server.handle_input(now, b"STARTTLS\r\n");
    let Output::Transmit(b) = server.poll(now) else {
        panic!("220 first")
    };
    assert_eq!(b, b"220 2.0.0 Ready to start TLS\r\n");
    server.advance_transmit(now, 10).unwrap();
    assert!(matches!(server.poll(now), Output::Transmit(b) if b == b"Ready to start TLS\r\n"));
    server.advance_transmit(now, 20).unwrap();
    assert!(matches!(server.poll(now), Output::StartTls));
    assert!(
        !server.wants_read(),
        "the handshake bytes go to TLS, not the core"
    );
    assert_eq!(server.handle_input(now, b"\x16\x03\x01"), 3);
    assert_eq!(server.discarded_plaintext(), 3);
    server
        .handle_tls_established(now, smtp_proto::TlsInfo::default())
        .unwrap();
    assert!(server.is_tls());
    assert!(matches!(
        server.poll(now),
        Output::Event(Event::TlsEstablished)
    ));
}

#[test]
fn greeting_421_closes_and_extensions_follow_the_config() {
    run(r"
!greeting 421 mx.example.org busy
S: 421 mx.example.org busy
E: closed refused
X: closed
");
    run(r"
!tls
!offer +dsn +requiretls -pipelining -chunking
!max-size none
E: starttls
X: tls
E: tls-established
S: 220 mx.example.org ESMTP
C: EHLO c.example
S: 250-mx.example.org
S: 250-SIZE
S: 250-8BITMIME
S: 250-ENHANCEDSTATUSCODES
S: 250-SMTPUTF8
S: 250-DSN
S: 250 REQUIRETLS
E: helo ehlo c.example
C: MAIL FROM:<a@example.org> RET=HDRS ENVID=x REQUIRETLS
E: mail FROM:<a@example.org> RET=HDRS ENVID=x REQUIRETLS
A: accept
S: 250 2.1.0 Sender ok
C: RCPT TO:<b@example.org> NOTIFY=NEVER
E: rcpt TO:<b@example.org> NOTIFY=NEVER
A: accept
S: 250 2.1.5 Recipient ok
B: BDAT 1 LAST\r\nxNOOP\r\n
E: reset chunk-refused
S: 502 5.5.1 Command not implemented
S: 250 2.0.0 Ok
");
}
