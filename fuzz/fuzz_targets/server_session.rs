//! The server session under arbitrary input chunks and arbitrary application
//! behaviour (accept, refuse, answer late, partial writes, STARTTLS steps,
//! timeouts, EOF, implicit TLS): no panic, buffers within their limits,
//! every transmitted byte parses as replies, no DATA message ends unless
//! the input held CRLF "." CRLF, no mail or AUTH command reaches the
//! application before TLS when TLS is required, and the close reason, once
//! set, never changes and is the one `Event::Closed` reports.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smtp_proto::address::Domain;
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::{Reply, ReplyCode};
use smtp_proto::server::{Config, Event, Server};
use smtp_proto::{BodyMode, InjectionPolicy, Output, Protocol, TlsInfo, TlsMode};

#[derive(Debug, Arbitrary)]
struct Setup {
    lmtp: bool,
    starttls: Option<bool>,
    auth: bool,
    chunking: bool,
    max_size: Option<u16>,
    /// With `starttls`: require it (`530` to mail before TLS).
    required: bool,
    /// Implicit TLS (overrides `starttls`).
    implicit: bool,
    /// Protocol synchronization enforced (the default) or off, where
    /// pipelined groups get further into the session.
    sync: bool,
    /// A greeting delay in seconds (pre-greeting talk).
    greeting_delay: Option<u8>,
}

#[derive(Debug, Arbitrary)]
enum Step {
    Input(Vec<u8>),
    /// Well-formed client lines from a vocabulary (`VOCABULARY[i % len]`),
    /// in one read: pipelined groups and whole sessions are a few steps
    /// away, where random bytes rarely get past the greeting.
    Commands(Vec<u8>),
    /// Answer the pending question now.
    Answer(Answer),
    /// Leave questions unanswered for a while (answer later).
    Defer,
    /// Let the socket take only part of the pending output.
    ShortWrite(u8),
    Elapse(u16),
    TlsEstablished,
    Eof,
}

/// Client lines (CRLF included) from RFC 5321 examples and the transcript
/// tests, with the end-of-data sequences and their bare variants.
const VOCABULARY: [&[u8]; 32] = [
    b"EHLO client.example\r\n",
    b"HELO client.example\r\n",
    b"LHLO client.example\r\n",
    b"MAIL FROM:<a@example.org>\r\n",
    b"MAIL FROM:<> SIZE=100 BODY=8BITMIME\r\n",
    b"MAIL FROM:<a@example.org> BODY=BINARYMIME SMTPUTF8\r\n",
    b"RCPT TO:<b@example.net>\r\n",
    b"RCPT TO:<Postmaster> NOTIFY=NEVER\r\n",
    b"DATA\r\n",
    b"Subject: hi\r\n\r\nbody\r\n",
    b"..leading dot\r\n",
    b".\r\n",
    b"\r\n.\r\n",
    b"\n.\n",
    b"\r\n.\n",
    b"\r.\r",
    b"BDAT 5\r\nhello",
    b"BDAT 4 LAST\r\nbye\n",
    b"BDAT 0 LAST\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
    b"AUTH LOGIN\r\n",
    b"AUTH XOAUTH2\r\n",
    b"YWxpY2U=\r\n",
    b"*\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"VRFY alice\r\n",
    b"HELP\r\n",
    b"QUIT\r\n",
    b"bogus command\r\n",
    b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n",
];

#[derive(Debug, Arbitrary, Clone, Copy)]
enum Answer {
    Accept,
    Refuse(bool),
    Close,
    Challenge,
    AuthOk,
}

fuzz_target!(|input: (Setup, Vec<Step>)| {
    let (setup, steps) = input;
    let mut config = Config::new(Domain::new("mx.example.org").expect("valid"));
    if setup.lmtp {
        config.protocol = Protocol::Lmtp;
    }
    if let Some(close) = setup.starttls {
        config.tls = if setup.required {
            TlsMode::Required
        } else {
            TlsMode::Opportunistic
        };
        config.on_injection = if close {
            InjectionPolicy::Close
        } else {
            InjectionPolicy::Discard
        };
    }
    if setup.implicit {
        config.tls = TlsMode::Implicit;
    }
    let tls_required = config.tls == TlsMode::Required;
    if setup.auth {
        config.auth.mechanisms = vec![Mechanism::PLAIN, Mechanism::LOGIN, Mechanism::XOAUTH2];
        config.auth.require_tls = false;
    }
    config.offer.chunking = setup.chunking;
    config.forbid_unauth_pipelining = setup.sync;
    if let Some(secs) = setup.greeting_delay {
        config.greeting_delay = Duration::from_secs(u64::from(secs));
    }
    if let Some(n) = setup.max_size {
        config.max_message_size = Some(u64::from(n));
    }

    let start = Instant::now();
    let mut now = start;
    let mut server = Server::new(config, now);
    let mut sent = Vec::new();
    let mut received = Vec::new();
    let mut pending_question = false;
    let mut defer = false;
    let mut mode = BodyMode::Data;
    let mut answer = Answer::Accept;
    let mut write_limit = usize::MAX;
    let mut data_ends = 0;
    let mut close_reason = None;
    let mut closed_with = None;

    for step in steps.into_iter().take(64) {
        match step {
            Step::Input(bytes) => {
                let took = server.handle_input(now, &bytes);
                assert!(took <= bytes.len());
                received.extend_from_slice(&bytes[..took]);
            }
            Step::Commands(picks) => {
                let bytes: Vec<u8> = picks
                    .iter()
                    .flat_map(|&i| VOCABULARY[usize::from(i) % VOCABULARY.len()])
                    .copied()
                    .collect();
                let took = server.handle_input(now, &bytes);
                assert!(took <= bytes.len());
                received.extend_from_slice(&bytes[..took]);
            }
            Step::Answer(a) => {
                answer = a;
                defer = false;
            }
            Step::Defer => defer = true,
            Step::ShortWrite(n) => write_limit = usize::from(n),
            Step::Elapse(secs) => {
                now += Duration::from_secs(u64::from(secs));
                server.handle_timeout(now);
            }
            Step::TlsEstablished => {
                let _ = server.handle_tls_established(now, TlsInfo::default());
            }
            Step::Eof => server.handle_eof(now),
        }
        assert!(server.buffered_input() <= server.input_capacity());

        // Drain until Wait (bounded, in case of a bug that loops).
        for _ in 0..10_000 {
            if pending_question && !defer {
                let answered = match answer {
                    Answer::Accept => server.accept(),
                    Answer::Refuse(temp) => {
                        let code = if temp {
                            ReplyCode::new(450)
                        } else {
                            ReplyCode::new(550)
                        };
                        server.reply(Reply::new(code.expect("valid"), "no").expect("valid"))
                    }
                    Answer::Close => server.reply(
                        Reply::new(ReplyCode::new(421).expect("valid"), "bye").expect("valid"),
                    ),
                    Answer::Challenge => server.auth_challenge(b"more"),
                    Answer::AuthOk => server.auth_success(),
                };
                // An answer of the wrong kind is a usage error that leaves the
                // question open: fall back to accept, which every question
                // takes.
                if answered.is_err() {
                    server.accept().expect("every question accepts accept()");
                }
                pending_question = false;
            }
            let is_tls = server.is_tls();
            match server.poll(now) {
                Output::Event(event) => {
                    if tls_required && !is_tls {
                        assert!(
                            !matches!(
                                event,
                                Event::Mail { .. }
                                    | Event::Rcpt { .. }
                                    | Event::DataStart { .. }
                                    | Event::Auth { .. }
                                    | Event::AuthPlain { .. }
                                    | Event::AuthLogin { .. }
                                    | Event::Vrfy { .. }
                                    | Event::Expn { .. }
                            ),
                            "{event:?} before TLS although TLS is required"
                        );
                    }
                    if let Event::Closed { reason } = &event {
                        closed_with = Some(*reason);
                    }
                    if let Event::DataStart { mode: m, .. } = &event {
                        mode = *m;
                    }
                    if let Event::DataStart { envelope, .. } | Event::MessageEnd { envelope, .. } =
                        &event
                    {
                        // The kept command text re-parses (the accessors
                        // assert it in debug builds), and a message is only
                        // asked for with a recipient.
                        let _ = (envelope.from(), envelope.params());
                        assert_eq!(envelope.recipients().count(), envelope.recipient_count());
                        assert!(envelope.recipient_count() > 0, "{envelope:?}");
                    }
                    if let Event::Reset { envelope, .. } = &event {
                        let _ = (envelope.from(), envelope.params());
                        assert_eq!(envelope.recipients().count(), envelope.recipient_count());
                    }
                    if let Event::MessageEnd { .. } = &event
                        && mode == BodyMode::Data
                    {
                        // The body starts after the CRLF of `DATA`, so even an
                        // empty message shows CRLF "." CRLF in the input, and
                        // each message needs its own.
                        data_ends += 1;
                        let terminators =
                            memchr::memmem::find_iter(&received, b"\r\n.\r\n").count();
                        assert!(
                            data_ends <= terminators,
                            "{data_ends} DATA messages ended, {terminators} CRLF.CRLF in the input"
                        );
                    }
                    if event.needs_answer() {
                        pending_question = true;
                    }
                }
                Output::Transmit(bytes) => {
                    let n = bytes.len().min(write_limit.max(1));
                    sent.extend_from_slice(&bytes[..n]);
                    server.advance_transmit(now, n).expect("n <= pending");
                }
                Output::StartTls => {}
                Output::Wait { .. } => break,
                _ => break,
            }
            if close_reason.is_some() {
                assert_eq!(
                    server.close_reason().copied(),
                    close_reason,
                    "the reason sticks"
                );
            }
            close_reason = server.close_reason().copied();
            if let Some(reason) = closed_with.take() {
                assert_eq!(close_reason, Some(reason), "Closed says the sticky reason");
            }
        }
    }

    // Everything the server sent is a sequence of complete, valid replies
    // (the last one may be cut only if a partial write left it pending).
    let mut rest = &sent[..];
    while !rest.is_empty() {
        match Reply::parse(rest) {
            Ok(Some((_, used))) => rest = &rest[used..],
            Ok(None) => break,
            Err(e) => panic!(
                "server sent an invalid reply: {e}: {:?}",
                String::from_utf8_lossy(rest)
            ),
        }
    }
});
