//! The client session sending messages (through `client::MailTransaction`) to a
//! server made of arbitrary bytes, cut into arbitrary reads, with arbitrary
//! configuration (PIPELINING, BDAT or DATA, STARTTLS with a simulated
//! handshake, AUTH, LMTP), partial writes, timeouts and EOF.
//!
//! Checked:
//! - no panic, at most one error, nothing after `Closed`; the close reason,
//!   once set, never changes;
//! - every transmitted byte is a command that `Command::parse` reads back
//!   (or a SASL response line after AUTH), a correctly dot-stuffed DATA body
//!   that unstuffs to exactly what the application wrote (normalized), or
//!   a BDAT chunk; nothing follows STARTTLS in the same write;
//! - a positive reply to the end of data is reported only when a complete
//!   reply with that code and text was fed *after* the last byte of the
//!   body left the client, and a delivery reports a recipient accepted
//!   only after such a reply.
//!
//! Server input comes either raw or from a small vocabulary of well-formed
//! replies (greeting, EHLO with chosen extensions, 250, 354, 334, 235, …),
//! so the fuzzer gets past the handshake quickly.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smtp_proto::address::{ForwardPath, Host, Mailbox, ReversePath};
use smtp_proto::client::{
    AuthConfig, BodyTransfer, Client, Config, Credentials, Envelope, Event, MailTransaction,
    Outcome, ReplyTo,
};
use smtp_proto::command::Command;
use smtp_proto::data::{BareLineEnding, DotUnstuffer};
use smtp_proto::framing::{AUTH_LINE_MAX, Frame, LineFramer};
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::{Reply, ReplyLimits};
use smtp_proto::secret::Secret;
use smtp_proto::{BodyMode, InjectionPolicy, Output, Protocol, TlsMode};

/// The reference models the property tests use too.
#[path = "../../tests/src/reference.rs"]
mod reference;

#[derive(Debug, Arbitrary)]
struct Setup {
    lmtp: bool,
    pipelining: bool,
    data_only: bool,
    tls: u8,
    injection_discard: bool,
    auth: Option<AuthSetup>,
    normalize: bool,
    body_buffer: u16,
    bdat_chunk: u16,
    recipients: u8,
    messages: u8,
    /// Sizes of the successive `write_body` calls (cycled).
    writes: Vec<u8>,
    body: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct AuthSetup {
    password: bool,
    oauth: bool,
    sasl: bool,
    allow_plaintext: bool,
    /// Answer SASL challenges (else cancel).
    respond: bool,
}

#[derive(Debug, Arbitrary)]
enum Step {
    /// Arbitrary server bytes.
    Raw(Vec<u8>),
    /// A well-formed reply from the vocabulary.
    Reply {
        code: u8,
        multiline: bool,
    },
    /// A multi-line EHLO reply with the extensions picked by the bits.
    Ehlo(u16),
    /// The simulated TLS handshake finishes.
    TlsDone,
    /// Let the socket take at most this many bytes per write from now on.
    ShortWrite(u8),
    /// The application enqueues a command of its own (misuse included).
    App(u8),
    Elapse(u16),
    Eof,
}

const CODES: [&[u8]; 16] = [
    b"220 mx.example ESMTP",
    b"250 2.0.0 ok",
    b"354 go ahead",
    b"334 ",
    b"334 VXNlcm5hbWU6",
    b"235 2.7.0 ok",
    b"221 2.0.0 bye",
    b"421 4.3.2 closing",
    b"450 4.2.0 later",
    b"452 4.5.3 too many",
    b"500 5.5.1 what",
    b"502 5.5.1 no",
    b"530 5.7.0 tls first",
    b"535 5.7.8 bad",
    b"550 5.1.1 unknown",
    b"554 5.6.0 no",
];

const EXTENSIONS: [&str; 12] = [
    "PIPELINING",
    "CHUNKING",
    "STARTTLS",
    "AUTH PLAIN LOGIN XOAUTH2 X-FUZZ",
    "8BITMIME",
    "SIZE 1000",
    "SMTPUTF8",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "BINARYMIME",
    "AUTH=LOGIN",
    "X-UNKNOWN with params",
];

fn mailbox(s: &str) -> Mailbox<'static> {
    Mailbox::parse(s).expect("a valid mailbox").into_owned()
}

/// Reads the client's byte stream the way a server would and checks it.
struct Reader {
    framer: LineFramer,
    buf: Vec<u8>,
    mode: Mode,
    /// The line after AUTH (or a SASL response) may be a SASL response.
    auth: bool,
    /// The client reported `ReadyForBody` for a DATA body.
    data_go: bool,
    body: Vec<u8>,
    /// Bodies completed on the wire, with their mode.
    bodies: Vec<(BodyMode, Vec<u8>)>,
    /// The end of the latest body was written (and `fed.len()` then).
    end_at: Option<usize>,
}

enum Mode {
    Commands,
    /// DATA was sent: either its body follows (after a `354`) or commands.
    AfterData,
    Data(DotUnstuffer),
    Bdat {
        remaining: u64,
        last: bool,
    },
}

fn is_sasl_line(line: &[u8]) -> bool {
    line == b"*"
        || line
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

impl Reader {
    /// Takes one write of the client; `fed` is how many server bytes have
    /// been handed to the client so far.
    /// `all_refused`: every RCPT of the current transaction has been
    /// refused, so no body byte may leave.
    fn read(&mut self, bytes: &[u8], fed: usize, all_refused: bool) {
        self.buf.extend_from_slice(bytes);
        loop {
            match &mut self.mode {
                Mode::AfterData => {
                    if self.buf.is_empty() {
                        return;
                    }
                    self.mode = if std::mem::take(&mut self.data_go) {
                        assert!(!all_refused, "a DATA body after every RCPT was refused");
                        Mode::Data(DotUnstuffer::new(BareLineEnding::Reject))
                    } else {
                        Mode::Commands
                    };
                }
                Mode::Data(unstuffer) => {
                    let r = unstuffer.unstuff(&self.buf, &mut self.body);
                    self.buf.drain(..r.consumed);
                    if !r.end {
                        return;
                    }
                    self.end(BodyMode::Data, fed);
                }
                Mode::Bdat { remaining, last } => {
                    let take = (*remaining).min(self.buf.len() as u64) as usize;
                    self.body.extend(self.buf.drain(..take));
                    *remaining -= take as u64;
                    if *remaining > 0 {
                        return;
                    }
                    if *last {
                        self.end(BodyMode::Bdat, fed);
                    } else {
                        self.mode = Mode::Commands;
                    }
                }
                Mode::Commands => {
                    let frame = self.framer.next(&self.buf);
                    let line = match frame {
                        Frame::Line(line) => line,
                        Frame::NeedMore => return,
                        _ => panic!("the client sent an over-long line"),
                    };
                    let n = line.wire_len();
                    let text = line.content().to_vec();
                    self.buf.drain(..n);
                    let cmd = match Command::parse(&text) {
                        Ok(cmd) => cmd,
                        Err(e) => {
                            assert!(
                                self.auth && is_sasl_line(&text),
                                "the client sent {:?}, which is no command: {e}",
                                String::from_utf8_lossy(&text)
                            );
                            continue;
                        }
                    };
                    self.auth = false;
                    match cmd {
                        Command::Auth { .. } => self.auth = true,
                        Command::StartTls => assert!(
                            self.buf.is_empty(),
                            "bytes followed STARTTLS in the same write"
                        ),
                        Command::Mail { .. } => {
                            // A new transaction: chunks of an abandoned
                            // BDAT body are dropped.
                            self.end_at = None;
                            self.body.clear();
                        }
                        Command::Data => {
                            self.data_go = false;
                            self.mode = Mode::AfterData;
                        }
                        Command::Bdat { size, last } => {
                            assert!(!all_refused, "a BDAT chunk after every RCPT was refused");
                            self.mode = Mode::Bdat {
                                remaining: size,
                                last,
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    fn end(&mut self, mode: BodyMode, fed: usize) {
        self.bodies.push((mode, std::mem::take(&mut self.body)));
        self.end_at = Some(fed);
        self.mode = Mode::Commands;
    }
}

/// What a body becomes on the wire: bare CR and LF as CRLF, and under DATA
/// a final CRLF added when the body does not end with one.
fn expected_wire(body: &[u8], mode: BodyMode) -> Vec<u8> {
    let mut out = reference::crlf_normalized(body);
    if mode == BodyMode::Data && !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Feeds `bytes` to the client, keeping them in `fed`: the client must
/// take all.
fn feed(client: &mut Client, now: Instant, fed: &mut Vec<u8>, bytes: &[u8]) {
    fed.extend_from_slice(bytes);
    assert_eq!(
        client.handle_input(now, bytes),
        bytes.len(),
        "the client takes all"
    );
}

/// Whether `fed[from..]` holds, at a line start, a complete reply equal to
/// `reply`.
fn fed_reply_after(fed: &[u8], from: usize, reply: &Reply<'_>, limits: &ReplyLimits) -> bool {
    let mut p = from;
    while p < fed.len() {
        let line_start = p == 0 || fed.get(p - 1) == Some(&b'\n');
        if line_start
            && let Ok(Some((r, _))) = Reply::parse_with(&fed[p..], limits)
            && r == *reply
        {
            return true;
        }
        match memchr::memchr(b'\n', &fed[p..]) {
            Some(i) => p += i + 1,
            None => break,
        }
    }
    false
}

fuzz_target!(|input: (Setup, Vec<Step>)| {
    let (setup, steps) = input;
    let mut config = Config::new(Host::parse("client.example").expect("valid"));
    if setup.lmtp {
        config.protocol = Protocol::Lmtp;
    }
    config.pipelining = setup.pipelining;
    if setup.data_only {
        config.body_transfer = BodyTransfer::Data;
    }
    config.tls = match setup.tls % 4 {
        0 => TlsMode::Disabled,
        1 => TlsMode::Opportunistic,
        2 => TlsMode::Required,
        _ => TlsMode::Implicit,
    };
    if setup.injection_discard {
        config.on_injection = InjectionPolicy::Discard;
    }
    if let Some(a) = &setup.auth {
        let mut creds = Vec::new();
        if a.sasl {
            creds.push(Credentials::Sasl {
                mechanisms: vec![Mechanism::new("X-FUZZ").expect("valid")],
            });
        }
        if a.password {
            creds.push(Credentials::password("alice", "secret"));
        }
        if a.oauth {
            creds.push(Credentials::oauth2("alice", "token"));
        }
        let mut auth = AuthConfig::with_credentials(creds);
        auth.allow_plaintext = a.allow_plaintext;
        config.auth = Some(auth);
    }
    if setup.normalize {
        config.bare_line_ending = BareLineEnding::Normalize;
    }
    config.body_buffer = usize::from(setup.body_buffer);
    config.bdat_chunk = usize::from(setup.bdat_chunk);
    let limits = config.reply_limits.clone();
    let respond = setup.auth.as_ref().is_some_and(|a| a.respond);
    let recipients = usize::from(setup.recipients % 4) + 1;
    let messages = usize::from(setup.messages % 3) + 1;

    let mut now = Instant::now();
    let mut client = Client::new(config, now);
    let mut reader = Reader {
        framer: LineFramer::new(AUTH_LINE_MAX),
        buf: Vec::new(),
        mode: Mode::Commands,
        auth: false,
        data_go: false,
        body: Vec::new(),
        bodies: Vec::new(),
        end_at: None,
    };
    // Every server byte handed to the client.
    let mut fed: Vec<u8> = Vec::new();
    let mut write_limit = usize::MAX;
    let mut closed = false;
    let mut errors = 0;
    let mut handshake = false;
    let mut delivery: Option<MailTransaction> = None;
    let mut close_reason = None;
    let mut sent_messages = 0;
    // The application's body of the current transaction, as taken.
    let mut body_taken: Vec<u8> = Vec::new();
    let mut body_pos = 0;
    let mut write_idx = 0;
    let mut in_body = false;
    // Bodies the application finished, as they must appear on the wire.
    let mut finished: Vec<Vec<u8>> = Vec::new();
    let mut final_ok_seen = false;
    // RCPTs of the current delivery, and their replies so far.
    let mut recipients_now = usize::MAX;
    let mut rcpt_replies = 0;
    let mut rcpt_accepted = 0;

    for step in steps.into_iter().take(64) {
        match step {
            Step::Raw(bytes) => {
                feed(&mut client, now, &mut fed, &bytes);
            }
            Step::Reply { code, multiline } => {
                let line = CODES[usize::from(code) % CODES.len()];
                let mut bytes = Vec::new();
                if multiline && line.len() > 4 {
                    bytes.extend_from_slice(&line[..3]);
                    bytes.extend_from_slice(b"-first line\r\n");
                }
                bytes.extend_from_slice(line);
                bytes.extend_from_slice(b"\r\n");
                feed(&mut client, now, &mut fed, &bytes);
            }
            Step::Ehlo(bits) => {
                let mut bytes = b"250-mx.example greets you".to_vec();
                for (i, ext) in EXTENSIONS.iter().enumerate() {
                    if bits & (1 << i) != 0 {
                        bytes.extend_from_slice(b"\r\n250-");
                        bytes.extend_from_slice(ext.as_bytes());
                    }
                }
                bytes.extend_from_slice(b"\r\n250 HELP\r\n");
                feed(&mut client, now, &mut fed, &bytes);
            }
            Step::TlsDone => {
                let asked = std::mem::take(&mut handshake);
                let done = client.handle_tls_established(now, smtp_proto::TlsInfo::default());
                // Refused (and nothing changed) unless the session asked
                // and has not ended since.
                assert_eq!(done.is_ok(), asked && !client.is_closed(), "{done:?}");
            }
            Step::ShortWrite(n) => write_limit = usize::from(n).max(1),
            Step::App(n) => {
                let _ = match n % 6 {
                    0 => client.enqueue(Command::Rset),
                    1 => client.enqueue(Command::Noop { text: None }),
                    2 => client.enqueue(Command::Quit),
                    3 => client.write_body(b"extra\r\n").map(|n| {
                        body_taken.extend_from_slice(&b"extra\r\n"[..n]);
                    }),
                    4 => {
                        // Finishing early: the rest of the body is dropped.
                        let mode = client.body_mode();
                        client.finish_body().map(|()| {
                            in_body = false;
                            let mode = mode.expect("a body in progress has a mode");
                            finished.push(expected_wire(&body_taken, mode));
                        })
                    }
                    _ => client.enqueue(Command::Data),
                };
            }
            Step::Elapse(secs) => {
                now += Duration::from_secs(u64::from(secs));
                client.handle_timeout(now);
            }
            Step::Eof => client.handle_eof(now),
        }

        for _ in 0..10_000 {
            // The application: write the body as the session asks for it.
            if in_body && client.wants_body() {
                if body_pos < setup.body.len() {
                    let size = setup
                        .writes
                        .get(write_idx % setup.writes.len().max(1))
                        .map_or(usize::MAX, |&w| usize::from(w).max(1));
                    write_idx += 1;
                    let end = body_pos.saturating_add(size).min(setup.body.len());
                    match client.write_body(&setup.body[body_pos..end]) {
                        Ok(n) => {
                            body_taken.extend_from_slice(&setup.body[body_pos..body_pos + n]);
                            body_pos += n;
                        }
                        // A refused piece (a bare line ending, 8-bit data)
                        // is skipped.
                        Err(_) => body_pos = end,
                    }
                } else {
                    in_body = false;
                    let mode = client.body_mode();
                    if client.finish_body().is_ok() {
                        let mode = mode.expect("a body in progress has a mode");
                        finished.push(expected_wire(&body_taken, mode));
                    }
                }
            }
            match client.poll(now) {
                Output::Event(event) => {
                    assert!(!closed, "an event after Closed: {event:?}");
                    match &event {
                        Event::Ready => {
                            let env = Envelope::new(
                                ReversePath::Mailbox(mailbox("a@example.org")),
                                (0..recipients)
                                    .map(|i| {
                                        ForwardPath::Mailbox(mailbox(&format!("r{i}@example.net")))
                                    })
                                    .collect(),
                            );
                            delivery = MailTransaction::start(&mut client, env).ok();
                            (recipients_now, rcpt_replies, rcpt_accepted) = (recipients, 0, 0);
                            sent_messages += 1;
                        }
                        Event::Reply {
                            to: ReplyTo::Rcpt { .. },
                            reply,
                        } => {
                            rcpt_replies += 1;
                            rcpt_accepted += usize::from(reply.is_positive_completion());
                        }
                        Event::ReadyForBody => {
                            in_body = true;
                            body_taken.clear();
                            body_pos = 0;
                            if client.body_mode() == Some(BodyMode::Data) {
                                reader.data_go = true;
                            }
                        }
                        Event::Reply {
                            to: ReplyTo::EndOfData { .. },
                            reply,
                        } if reply.is_positive_completion() => {
                            let at = reader
                                .end_at
                                .expect("a positive final reply before the end of data was sent");
                            assert!(
                                fed_reply_after(&fed, at, reply, &limits),
                                "a positive final reply that the server did not send after the end of data: {reply:?}"
                            );
                            final_ok_seen = true;
                        }
                        Event::AuthChallenge { .. } => {
                            let _ = if respond {
                                client.auth_respond(Secret::new(b"fuzz".to_vec()))
                            } else {
                                client.auth_cancel()
                            };
                        }
                        Event::Error(_) => errors += 1,
                        Event::Closed => closed = true,
                        _ => {}
                    }
                    if let Some(d) = delivery.as_mut()
                        && let Some(report) = d.handle_event(&mut client, &event)
                    {
                        if report
                            .recipients
                            .iter()
                            .any(|r| r.outcome == Outcome::Accepted)
                        {
                            assert!(final_ok_seen, "accepted without a positive final reply");
                        }
                        final_ok_seen = false;
                        delivery = None;
                        in_body = false;
                        if sent_messages < messages {
                            let env = Envelope::new(
                                ReversePath::Null,
                                vec![ForwardPath::Mailbox(mailbox("again@example.net"))],
                            );
                            delivery = MailTransaction::start(&mut client, env).ok();
                            (recipients_now, rcpt_replies, rcpt_accepted) = (1, 0, 0);
                            sent_messages += 1;
                        } else {
                            let _ = client.enqueue(Command::Quit);
                        }
                    }
                }
                Output::Transmit(bytes) => {
                    assert!(!closed, "a transmit after Closed");
                    assert!(!bytes.is_empty());
                    let n = bytes.len().min(write_limit);
                    let all_refused = rcpt_replies == recipients_now && rcpt_accepted == 0;
                    reader.read(&bytes[..n], fed.len(), all_refused);
                    client.advance_transmit(now, n).expect("n <= pending");
                }
                Output::StartTls => {
                    assert!(!closed, "STARTTLS after Closed");
                    handshake = true;
                }
                _ => break,
            }
            if close_reason.is_some() {
                assert_eq!(
                    client.close_reason(),
                    close_reason.as_ref(),
                    "the reason sticks"
                );
            }
            close_reason = client.close_reason().cloned();
        }
        assert!(errors <= 1, "the error is reported once");
        assert_eq!(closed, client.is_closed());
    }

    // Every body seen on the wire is one the application finished, in order.
    let mut expected = finished.iter();
    for (mode, body) in &reader.bodies {
        assert!(
            expected.any(|e| e == body),
            "a {mode:?} body on the wire that the application did not write: {:?}",
            String::from_utf8_lossy(body)
        );
    }
});
