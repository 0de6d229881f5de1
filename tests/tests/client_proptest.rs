//! Properties of the client session:
//!
//! 1. Arbitrary server bytes, cut into arbitrary reads and mixed with
//!    arbitrary application calls and clock moves, never panic, and the
//!    session's output stays coherent (one error at most, nothing written
//!    after `Closed`).
//! 2. Every byte the client transmits is either a command that
//!    `Command::parse` reads back, or message data that the server side of
//!    the codec (dot-unstuffing, BDAT counting) turns back into exactly the
//!    body the application wrote — under DATA and BDAT, with and without
//!    PIPELINING, for any body and any write pattern.

use std::time::Duration;

use proptest::prelude::*;
use smtp_proto::address::{ForwardPath, ReversePath};
use smtp_proto::client::{Client, Config, Envelope, Event, MailTransaction, Outcome};
use smtp_proto::command::{Command, MailParameters, RcptParameters};
use smtp_proto::data::{BareLineEnding, DotUnstuffer};
use smtp_proto::framing::{Frame, LineFramer};
use smtp_proto::{Output, TlsMode};
use smtp_tests::fixtures::{all_permanent, client_config, mailbox};
use smtp_tests::reference::crlf_normalized;

fn config() -> Config {
    client_config(TlsMode::Disabled)
}

#[derive(Debug, Clone)]
enum Step {
    Input(Vec<u8>),
    Mail,
    Rcpt,
    Data,
    StartBody,
    Write(Vec<u8>),
    Finish,
    Rset,
    Quit,
    Advance(u16),
    Transmit(u16),
    Eof,
}

fn reply_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Plausible replies and fragments.
        prop::sample::select(vec![
            &b"220 mx ESMTP\r\n"[..],
            b"250-mx\r\n",
            b"250-PIPELINING\r\n",
            b"250-CHUNKING\r\n",
            b"250-SIZE 10\r\n",
            b"250 STARTTLS\r\n",
            b"250 2.0.0 ok\r\n",
            b"354 go\r\n",
            b"550 5.1.1 no\r\n",
            b"421 bye\r\n",
            b"334 \r\n",
            b"221 bye\r\n",
            b"250",
            b"\r\n",
            b"\n",
            b"\r",
            b"2",
        ])
        .prop_map(<[u8]>::to_vec),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => reply_bytes().prop_map(Step::Input),
        1 => Just(Step::Mail),
        1 => Just(Step::Rcpt),
        1 => Just(Step::Data),
        1 => Just(Step::StartBody),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Step::Write),
        1 => Just(Step::Finish),
        1 => Just(Step::Rset),
        1 => Just(Step::Quit),
        1 => any::<u16>().prop_map(Step::Advance),
        2 => any::<u16>().prop_map(Step::Transmit),
        1 => Just(Step::Eof),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_server_bytes_never_panic(steps in prop::collection::vec(step(), 0..60), tls in 0u8..4) {
        let mut c = config();
        c.tls = match tls { 0 => TlsMode::Disabled, 1 => TlsMode::Required, 2 => TlsMode::Opportunistic, _ => TlsMode::Implicit };
        let mut now = std::time::Instant::now();
        let mut client = Client::new(c, now);
        let mut errors = 0;
        let mut closed = false;
        for step in steps {
            match &step {
                Step::Input(b) => prop_assert_eq!(client.handle_input(now, b), b.len(), "the client takes all"),
                Step::Mail => { let _ = client.enqueue(Command::Mail { from: ReversePath::Mailbox(mailbox("a@b.example")), params: MailParameters::default() }); }
                Step::Rcpt => { let _ = client.enqueue(Command::Rcpt { to: ForwardPath::Mailbox(mailbox("c@d.example")), params: RcptParameters::default() }); }
                Step::Data => { let _ = client.enqueue(Command::Data); }
                Step::StartBody => { let _ = client.start_body(); }
                Step::Write(b) => { let _ = client.write_body(b); }
                Step::Finish => { let _ = client.finish_body(); }
                Step::Rset => { let _ = client.enqueue(Command::Rset); }
                Step::Quit => { let _ = client.enqueue(Command::Quit); }
                Step::Advance(s) => { now += Duration::from_secs(u64::from(*s)); client.handle_timeout(now); }
                Step::Transmit(_) | Step::Eof => {}
            }
            if let Step::Eof = step { client.handle_eof(now); }
            // Drain like a transport, writing up to the step's budget.
            let mut budget = if let Step::Transmit(n) = step { usize::from(n) } else { usize::MAX };
            for _ in 0..10_000 {
                match client.poll(now) {
                    Output::Event(Event::Error(_)) => { errors += 1; prop_assert!(!closed); }
                    Output::Event(Event::Closed) => { prop_assert!(!closed, "Closed twice"); closed = true; }
                    Output::Event(_) => prop_assert!(!closed, "event after Closed"),
                    Output::Transmit(bytes) => {
                        prop_assert!(!closed, "transmit after Closed");
                        prop_assert!(!bytes.is_empty());
                        prop_assert!(bytes.len() <= 128 * 1024, "bounded output");
                        let n = bytes.len().min(budget);
                        budget -= n;
                        prop_assert!(client.advance_transmit(now, n).is_ok());
                        if budget == 0 { break; }
                    }
                    Output::StartTls => prop_assert!(client.handle_tls_established(now, smtp_proto::TlsInfo::default()).is_ok(), "the handshake was asked for"),
                    Output::Wait { .. } => break,
                    _ => {}
                }
            }
            prop_assert!(errors <= 1, "the error is reported once");
            prop_assert_eq!(closed, client.is_closed());
        }
    }
}

// ---- Property 2: the transmitted stream parses --------------------------

/// Reads the client's byte stream the way a server would: command lines,
/// DATA bodies (dot-unstuffed to their end) and BDAT chunks (counted), and
/// answers each command. It checks that every line parses as a command.
struct Reader {
    framer: LineFramer,
    buf: Vec<u8>,
    mode: Mode,
    bodies: Vec<Vec<u8>>,
    current: Vec<u8>,
    accept_rcpt: Vec<bool>,
    rcpts_seen: usize,
    accepted: usize,
    ehlo: &'static [u8],
    commands: Vec<String>,
}

enum Mode {
    Commands,
    Data(DotUnstuffer),
    Bdat { remaining: u64, last: bool },
}

impl Reader {
    /// Consumes what it can of `bytes` and returns the replies to send.
    fn read(&mut self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        self.buf.extend_from_slice(bytes);
        let mut replies = Vec::new();
        loop {
            match &mut self.mode {
                Mode::Data(unstuffer) => {
                    let mut out = Vec::new();
                    let r = unstuffer.unstuff(&self.buf, &mut out);
                    self.current.extend_from_slice(&out);
                    self.buf.drain(..r.consumed);
                    if !r.end {
                        return Ok(replies);
                    }
                    self.bodies.push(std::mem::take(&mut self.current));
                    replies.extend_from_slice(b"250 2.0.0 queued\r\n");
                    self.mode = Mode::Commands;
                }
                Mode::Bdat { remaining, last } => {
                    let take = (*remaining).min(self.buf.len() as u64) as usize;
                    self.current.extend(self.buf.drain(..take));
                    *remaining -= take as u64;
                    if *remaining > 0 {
                        return Ok(replies);
                    }
                    if *last {
                        self.bodies.push(std::mem::take(&mut self.current));
                    }
                    replies.extend_from_slice(b"250 2.0.0 chunk\r\n");
                    self.mode = Mode::Commands;
                }
                Mode::Commands => {
                    let frame = self.framer.next(&self.buf);
                    let Frame::Line(line) = frame else {
                        if let Frame::NeedMore = frame {
                            return Ok(replies);
                        }
                        return Err("over-long command line".into());
                    };
                    let n = line.wire_len();
                    let text = line.content().to_vec();
                    self.buf.drain(..n);
                    let cmd = Command::parse(&text).map_err(|e| {
                        format!("{:?} does not parse: {e}", String::from_utf8_lossy(&text))
                    })?;
                    self.commands.push(cmd.verb().to_string());
                    match cmd {
                        Command::Ehlo { .. } => replies.extend_from_slice(self.ehlo),
                        Command::Mail { .. } => {
                            self.rcpts_seen = 0;
                            self.accepted = 0;
                            replies.extend_from_slice(b"250 2.1.0 ok\r\n");
                        }
                        Command::Rcpt { .. } => {
                            let ok = self
                                .accept_rcpt
                                .get(self.rcpts_seen)
                                .copied()
                                .unwrap_or(true);
                            self.rcpts_seen += 1;
                            if ok {
                                self.accepted += 1;
                                replies.extend_from_slice(b"250 2.1.5 ok\r\n");
                            } else {
                                replies.extend_from_slice(b"550 5.1.1 no\r\n");
                            }
                        }
                        Command::Data => {
                            if self.accepted == 0 {
                                replies.extend_from_slice(b"554 5.5.1 no valid recipients\r\n");
                            } else {
                                replies.extend_from_slice(b"354 go\r\n");
                                self.mode = Mode::Data(DotUnstuffer::new(BareLineEnding::Reject));
                            }
                        }
                        Command::Bdat { size, last } => {
                            if self.accepted == 0 {
                                return Err("BDAT after every RCPT was refused".into());
                            }
                            self.mode = Mode::Bdat {
                                remaining: size,
                                last,
                            };
                        }
                        Command::Rset => replies.extend_from_slice(b"250 2.0.0 reset\r\n"),
                        Command::Quit => replies.extend_from_slice(b"221 2.0.0 bye\r\n"),
                        other => return Err(format!("unexpected command {}", other.verb())),
                    }
                }
            }
        }
    }
}

/// A delivery's report, the bodies the reader received, the verbs it saw.
type Run = (
    smtp_proto::client::TransactionReport,
    Vec<Vec<u8>>,
    Vec<String>,
);

/// Runs one delivery against the reader; returns the report, the bodies
/// the reader received and the commands it saw.
#[allow(clippy::too_many_arguments)]
fn run_delivery(
    ehlo: &'static [u8],
    accept_rcpt: Vec<bool>,
    body: &[u8],
    writes: &[usize],
    socket: usize,
    bdat_chunk: usize,
) -> Result<Run, String> {
    let mut c = config();
    c.bare_line_ending = BareLineEnding::Normalize;
    c.body_buffer = 256;
    c.bdat_chunk = bdat_chunk;
    let now = std::time::Instant::now();
    let mut client = Client::new(c, now);
    let mut reader = Reader {
        framer: LineFramer::new(4096),
        buf: Vec::new(),
        mode: Mode::Commands,
        bodies: Vec::new(),
        current: Vec::new(),
        accept_rcpt: accept_rcpt.clone(),
        rcpts_seen: 0,
        accepted: 0,
        ehlo,
        commands: Vec::new(),
    };
    let greeting = b"220 mx ESMTP\r\n";
    assert_eq!(client.handle_input(now, greeting), greeting.len());
    let recipients = (0..accept_rcpt.len())
        .map(|i| ForwardPath::Mailbox(mailbox(&format!("r{i}@example.net"))))
        .collect();
    let mut env = Envelope::new(ReversePath::Mailbox(mailbox("a@example.org")), recipients);
    env.declare_body(body);
    let mut env = Some(env);
    let mut transaction: Option<MailTransaction> = None;
    let mut report = None;
    let mut in_body = false;
    let mut written = 0;
    let mut write_idx = 0;
    let mut idle = 0;
    for _round in 0..100_000 {
        let mut inbound = Vec::new();
        let mut progressed = false;
        // Drain the client like a transport with a small socket.
        let mut budget = socket;
        loop {
            match client.poll(now) {
                Output::Event(e) => {
                    progressed = true;
                    if e == Event::Ready
                        && let Some(env) = env.take()
                    {
                        transaction = Some(
                            MailTransaction::start(&mut client, env).map_err(|e| e.to_string())?,
                        );
                    }
                    if e == Event::ReadyForBody {
                        in_body = true;
                    }
                    if let Some(d) = transaction.as_mut()
                        && let Some(r) = d.handle_event(&mut client, &e)
                    {
                        report = Some(r);
                    }
                    if let Event::Error(e) = e {
                        return Err(format!("session error: {e}"));
                    }
                }
                Output::Transmit(bytes) => {
                    let n = bytes.len().min(budget);
                    if n == 0 {
                        break;
                    }
                    inbound.extend_from_slice(&bytes[..n]);
                    client.advance_transmit(now, n).map_err(|e| e.to_string())?;
                    budget -= n;
                    progressed = true;
                }
                Output::Wait { .. } => break,
                _ => return Err("unexpected output".into()),
            }
        }
        if in_body && client.wants_body() {
            if written < body.len() {
                let want = writes.get(write_idx).copied().unwrap_or(body.len()).max(1);
                write_idx += 1;
                let end = (written + want).min(body.len());
                let n = client
                    .write_body(&body[written..end])
                    .map_err(|e| e.to_string())?;
                written += n;
                progressed |= n > 0;
            } else {
                client.finish_body().map_err(|e| e.to_string())?;
                in_body = false;
                progressed = true;
            }
        }
        let replies = reader.read(&inbound)?;
        if !replies.is_empty() {
            if client.handle_input(now, &replies) != replies.len() {
                return Err("the client left input".into());
            }
            progressed = true;
        }
        if report.is_some() && !progressed && reader.buf.is_empty() {
            break;
        }
        if progressed {
            idle = 0;
        } else {
            idle += 1;
            if idle > 3 && report.is_none() {
                return Err("stalled".into());
            }
        }
    }
    let report = report.ok_or("no report")?;
    Ok((report, reader.bodies, reader.commands))
}

const EHLO_VARIANTS: [&[u8]; 4] = [
    b"250-mx\r\n250 8BITMIME\r\n",
    b"250-mx\r\n250-8BITMIME\r\n250 PIPELINING\r\n",
    b"250-mx\r\n250-8BITMIME\r\n250 CHUNKING\r\n",
    b"250-mx\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 CHUNKING\r\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn transmitted_bytes_parse_and_bodies_round_trip(
        ehlo in 0usize..4,
        accept in prop::collection::vec(prop::bool::weighted(0.7), 1..5),
        // No NUL: the client refuses it in a 7bit/8bit body (client_nul.rs).
        body in prop::collection::vec(prop_oneof![
            4 => 1u8..=255,
            2 => Just(b'.'),
            2 => Just(b'\r'),
            2 => Just(b'\n'),
        ], 0..1500),
        writes in prop::collection::vec(1usize..400, 0..20),
        socket in 1usize..600,
        bdat_chunk in 1usize..300,
    ) {
        let ehlo_reply = EHLO_VARIANTS[ehlo];
        let (report, bodies, commands) = run_delivery(ehlo_reply, accept.clone(), &body, &writes, socket, bdat_chunk)
            .map_err(TestCaseError::fail)?;
        let any_accepted = accept.iter().any(|&a| a);
        let bdat = ehlo >= 2;
        if any_accepted {
            prop_assert_eq!(bodies.len(), 1);
            let mut expected = crlf_normalized(&body);
            if !bdat && !expected.is_empty() && !expected.ends_with(b"\r\n") {
                expected.extend_from_slice(b"\r\n");
            }
            prop_assert_eq!(&bodies[0], &expected);
            for (r, &a) in report.recipients.iter().zip(&accept) {
                prop_assert_eq!(r.outcome, if a { Outcome::Accepted } else { Outcome::PermanentFailure });
            }
        } else {
            prop_assert!(bodies.is_empty(), "no body without an accepted recipient");
            prop_assert!(!commands.iter().any(|c| c == "BDAT"));
            prop_assert!(all_permanent(&report));
        }
    }
}
