//! The client session: commands and bodies in, bytes and reply events out.
//!
//! [`Client`] is a sans-IO state machine with the same contract as the
//! server session (see [`session`](crate::session), where the loop and the
//! time rule are written down once for both): the transport feeds it what
//! it reads (`handle_input`, `handle_eof`), tells it the time
//! (`handle_timeout`) and when a TLS handshake finished
//! (`handle_tls_established`), and after every call drains
//! [`Client::poll`] until [`Output::Wait`], writing what it is given and
//! reporting the write with [`Client::advance_transmit`];
//! [`session::drive`](crate::session::drive) does that drain.
//!
//! # Layers
//!
//! 1. **Connection setup is automatic.** From its [`Config`] the session
//!    reads the greeting, sends EHLO (HELO on `500`/`502`; LHLO for LMTP),
//!    runs STARTTLS ([`TlsMode`]: required, opportunistic or disabled) and
//!    EHLO again, then
//!    AUTH with the strongest mechanism it has credentials for, and reports
//!    [`Event::Ready`]. Every reply is reported as an [`Event::Reply`] on
//!    the way, so a transcript can be logged.
//! 2. **Transactions are the application's**, through one low-level API:
//!    [`Client::enqueue`] a [`Command`] (MAIL, RCPT, DATA, RSET, NOOP, VRFY,
//!    EXPN, HELP, QUIT), then [`Client::start_body`] (DATA or BDAT, chosen
//!    from the server's extensions) or `enqueue(Command::Data)`,
//!    [`Client::write_body`] and [`Client::finish_body`]. Sequencing is
//!    checked before anything is sent: a misuse is a [`UsageError`] and
//!    changes nothing. Each command gets exactly one [`Event::Reply`],
//!    matched through an in-flight queue; with PIPELINING (RFC 2920) MAIL,
//!    the RCPTs and DATA leave in one write.
//! 3. **[`MailTransaction`]** is a convenience built only on that public
//!    API: send one message to many recipients and get a
//!    [`TransactionReport`] with a result per recipient.
//!
//! # States
//!
//! The connection, driven by the session itself:
//!
//! ```text
//!  new() under TlsMode::Implicit: Handshake ──Output::StartTls, handle_tls_established──▶ Greeting
//!  new() ──▶ Greeting ──220──▶ Hello ──250──┬─▶ StartTls ──220──▶ Handshake
//!    │                           │ 500/502   │        │ refused      │ handle_tls_
//!    │                           ▼ (SMTP)    │        │ (opportun.)  │ established
//!    │                          Helo ──250───┤        ▼              ▼
//!    │                                       ├──▶ Auth ◀──334──▶   Hello (again,
//!    │                                       │     │ 235            everything
//!    │                                       ▼     ▼                forgotten)
//!    │                                  Ready (Event::Ready)
//!    │                                       │ enqueue(QUIT)
//!    ▼                                       ▼
//!  any failure ─────────────(QUIT if in sync)──▶ Quitting ──221 / EOF──▶ Closed
//! ```
//!
//! Failures: a non-`220` greeting, a refused hello, STARTTLS missing or
//! refused in [`TlsMode::Required`], AUTH
//! impossible or refused: `Event::Error`, QUIT, `Closed`. A `421`, an invalid
//! reply, a timeout, EOF, or injected bytes after STARTTLS: `Event::Error`
//! and `Closed` at once (the stream cannot be trusted for a QUIT). Either
//! way [`Client::close_reason`] says why from the first moment
//! ([`CloseReason::Error`]; [`CloseReason::Quit`] for the normal end).
//!
//! The transaction inside `Ready` ([`TransactionPhase`]), driven by the
//! application; commands are pipelined when the server offers PIPELINING,
//! so "enqueued" may run ahead of the replies:
//!
//! ```text
//!         MAIL                    DATA / start_body (DATA)          354
//!  Idle ───────▶ Open ──RCPT*──▶ ───────────────────────▶ AwaitingData ───▶ Body
//!   ▲  ◀─MAIL refused─┘  │         start_body (BDAT) ─────────────────────▶ Body
//!   │                    │ RSET                                              │
//!   ├────────────────────┘                                      finish_body  ▼
//!   └──────────────── final reply(ies) to the end of data ◀──── AwaitingFinal
//! ```
//!
//! A negative reply to DATA or to a BDAT chunk, or every RCPT refused, ends
//! the body before it starts (no body byte is sent) and leaves the
//! transaction `Open` (RSET, then MAIL again), or `Idle` if MAIL itself was
//! refused. Each end is reported as [`Event::TransactionEnded`].
//!
//! # Safety properties
//!
//! - A reply is acted on only when complete: every line of a multi-line
//!   reply must carry the same code, lines and replies are bounded, and EOF
//!   in the middle of a reply is [`Error::ConnectionClosed`], never success
//!   (Python's smtplib took a truncated `250` at EOF for success). A reply
//!   whose first byte arrived before its command was written (as reported
//!   by `advance_transmit`) is unsolicited ([`Error::UnexpectedReply`]),
//!   even if it completes later.
//! - Nothing follows STARTTLS in a write; bytes after its `220` are
//!   injected plaintext and end the session by default
//!   ([`Error::StartTlsInjection`]); after the handshake every extension is
//!   forgotten and EHLO is sent again (RFC 3207 §4.2).
//! - AUTH never runs without TLS unless [`AuthConfig::allow_plaintext`].
//! - No body byte is sent after a refused DATA, a refused BDAT chunk, or
//!   when every RCPT was refused.
//! - Bodies are streamed through a bounded buffer and dot-stuffed (DATA) or
//!   counted (BDAT); a bare CR or LF is refused by default.
//!
//! # Example
//!
//! ```
//! use std::time::Instant;
//! use smtp_proto::{Output, TlsMode};
//! use smtp_proto::address::Host;
//! use smtp_proto::client::{Client, Config, Event};
//!
//! let mut config = Config::new(Host::parse("client.example").unwrap());
//! config.tls = TlsMode::Disabled;
//! let now = Instant::now();
//! let mut client = Client::new(config, now);
//! let greeting = b"220 mx.example ESMTP\r\n";
//! assert_eq!(client.handle_input(now, greeting), greeting.len());
//! assert!(matches!(client.poll(now), Output::Event(Event::Reply { .. })));
//! let Output::Transmit(bytes) = client.poll(now) else { panic!() };
//! assert_eq!(bytes, b"EHLO client.example\r\n");
//! let n = bytes.len();
//! client.advance_transmit(now, n).unwrap();
//! let _ = client.handle_input(now, b"250-mx.example\r\n250 PIPELINING\r\n");
//! assert!(matches!(client.poll(now), Output::Event(Event::Reply { .. })));
//! assert_eq!(client.poll(now), Output::Event(Event::Ready));
//! ```

mod auth;
mod body;
mod config;
mod event;
mod mail_transaction;
mod setup;
mod state;
mod transaction;

use std::collections::VecDeque;
use std::time::Instant;

pub use config::{AuthConfig, BodyTransfer, Config, Credentials, Timeouts};
pub use event::{CloseReason, Error, Event, ReplyTo, UsageError, Waiting};
pub use mail_transaction::{
    Envelope, EnvelopeError, MailTransaction, Outcome, RecipientResult, TransactionReport,
};

use crate::command::Command;
use crate::ehlo::Extensions;
use crate::framing::{Frame, LineFramer};
use crate::keyword::Mechanism;
use crate::reply::{Reply, ReplyAssembler, ReplyCode};
use crate::session::{
    BodyMode, DriveError, InjectionPolicy, Output, Protocol, Session, TlsInfo, TlsMode,
};
use crate::time::{TimerKind, TimerTable};

use state::{State, Transaction};

/// The client's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The reply at the head of the in-flight queue.
    Reply,
    /// Pending bytes must be taken by the socket (RFC 5321 §4.5.3.2.5).
    Write,
    /// The TLS handshake.
    Handshake,
}

impl TimerKind for Timer {
    const ALL: &'static [Self] = &[Self::Reply, Self::Write, Self::Handshake];
    fn slot(self) -> usize {
        self as usize
    }
}

/// A command written (or being written) whose reply is due.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    /// What the reply answers.
    to: ReplyTo,
    /// Stream offset just after the command's last byte.
    end: u64,
    /// Nothing may be sent after it until its reply (RFC 2920 §3.1).
    group_end: bool,
    /// Sequence number, so the reply timer is armed once per entry.
    id: u64,
    /// The transaction the command belonged to.
    tx: u64,
}

/// A command (or BDAT chunk) enqueued but not yet written; its wire bytes
/// are in [`PendingQueue::bytes`].
#[derive(Debug)]
struct Pending {
    /// How many wire bytes (command line, and for BDAT the chunk).
    len: usize,
    /// What its replies answer.
    kind: PendingKind,
    /// The transaction it was enqueued in.
    tx: u64,
}

/// The commands (and BDAT chunks) enqueued but not yet written, in order,
/// their wire bytes back to back in one buffer that is kept and reused:
/// once it has grown to its working size, enqueueing a command allocates
/// nothing (each command is encoded straight into it).
#[derive(Debug, Default)]
struct PendingQueue {
    items: VecDeque<Pending>,
    bytes: Vec<u8>,
    /// Bytes at the front of `bytes` already moved out.
    front: usize,
}

impl PendingQueue {
    /// Queues what `write` appends to the buffer as one item.
    fn push(&mut self, kind: PendingKind, tx: u64, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.bytes.len();
        write(&mut self.bytes);
        self.items.push_back(Pending {
            len: self.bytes.len() - start,
            kind,
            tx,
        });
    }

    fn front(&self) -> Option<&Pending> {
        self.items.front()
    }

    /// Moves the first item's bytes to the end of `out`.
    fn pop_into(&mut self, out: &mut Vec<u8>) -> Option<Pending> {
        let item = self.items.pop_front()?;
        let end = self.front + item.len;
        out.extend_from_slice(self.bytes.get(self.front..end).unwrap_or_default());
        self.front = end;
        if self.items.is_empty() {
            self.bytes.clear();
            self.front = 0;
        } else if self.front > self.bytes.len() / 2 {
            // Never empty (a pipelining stream): keep the buffer from
            // growing by dropping what was moved out (no allocation).
            self.bytes.drain(..self.front);
            self.front = 0;
        }
        Some(item)
    }

    fn iter(&self) -> impl Iterator<Item = &Pending> {
        self.items.iter()
    }

    /// Wire bytes queued.
    fn queued_bytes(&self) -> usize {
        self.bytes.len() - self.front
    }

    /// Keeps the items `keep` accepts, with their bytes, in order.
    fn retain(&mut self, keep: impl Fn(&Pending) -> bool) {
        let (mut read, mut write) = (self.front, 0);
        for item in &self.items {
            if keep(item) {
                // `write <= read`: bytes only move towards the front.
                self.bytes.copy_within(read..read + item.len, write);
                write += item.len;
            }
            read += item.len;
        }
        self.bytes.truncate(write);
        self.front = 0;
        self.items.retain(keep);
    }

    fn clear(&mut self) {
        self.items.clear();
        self.bytes.clear();
        self.front = 0;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PendingKind {
    /// A command with one reply.
    Command(ReplyTo),
    /// A BDAT chunk that is not the last.
    Bdat,
    /// The last BDAT chunk: one reply, or one per accepted recipient (LMTP).
    BdatLast,
}

/// Where the current mail transaction stands (see
/// [`Client::transaction_phase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransactionPhase {
    /// No transaction: MAIL may be enqueued.
    Idle,
    /// MAIL enqueued (and not refused): RCPT, the body, RSET may follow.
    /// Also after a refused DATA or BDAT chunk or when no recipient was
    /// accepted: the server still holds the envelope, so RSET before the
    /// next MAIL.
    Open,
    /// DATA sent, waiting for its `354`.
    AwaitingData,
    /// The body is being written.
    Body,
    /// The body has ended, waiting for the final reply (or replies).
    AwaitingFinal,
}

/// A sans-IO SMTP (or LMTP) client session. See the [module docs](self).
#[derive(Debug)]
pub struct Client {
    config: Config,
    state: State,
    tx: Transaction,
    /// The last transaction id handed out.
    tx_seq: u64,
    /// Extensions from the last EHLO/LHLO reply (none after HELO, none
    /// before the hello, forgotten at STARTTLS).
    extensions: Option<Extensions<'static>>,
    tls: bool,
    tls_info: Option<TlsInfo>,
    authenticated: Option<Mechanism<'static>>,
    /// Whether `Output::StartTls` was handed out for the current handshake.
    starttls_signalled: bool,
    /// Received bytes not yet framed into lines (bounded by the framer).
    input: Vec<u8>,
    /// How many bytes at the front of `input` arrived in an earlier
    /// `handle_input` call, and `written` when the first of them arrived.
    input_old: usize,
    input_mark: u64,
    /// `written` when the first byte of the reply being assembled arrived:
    /// a reply can only answer a command written before it began.
    reply_mark: u64,
    framer: LineFramer,
    assembler: ReplyAssembler,
    /// Bytes to write.
    out: Vec<u8>,
    /// Bytes written so far, over the whole session.
    written: u64,
    pending: PendingQueue,
    in_flight: VecDeque<InFlight>,
    next_id: u64,
    /// The in-flight entry the reply timer is armed for.
    timed: Option<u64>,
    events: VecDeque<Event>,
    timers: TimerTable<Timer, 3>,
    error: Option<Error>,
    /// Why the session ends, from the moment closing starts (sticky).
    close_reason: Option<CloseReason>,
    /// Implicit TLS: the greeting is awaited once the handshake is done.
    greeting_due: bool,
    /// Reading stopped (after a failure): input is ignored.
    reading: bool,
}

impl Client {
    /// A session that has just connected at `now` and waits for the
    /// greeting — or, under [`TlsMode::Implicit`], first asks for the TLS
    /// handshake ([`Output::StartTls`], with the handshake timer running
    /// from then) and awaits the greeting after
    /// [`Client::handle_tls_established`].
    pub fn new(config: Config, now: Instant) -> Self {
        let implicit = config.tls == TlsMode::Implicit;
        let framer = LineFramer::new(config.max_reply_line);
        let assembler = ReplyAssembler::new(config.reply_limits);
        let mut client = Self {
            config,
            state: if implicit {
                State::Handshake
            } else {
                State::Greeting
            },
            tx: Transaction::default(),
            tx_seq: 0,
            extensions: None,
            tls: false,
            tls_info: None,
            authenticated: None,
            starttls_signalled: false,
            input: Vec::new(),
            input_old: 0,
            input_mark: 0,
            reply_mark: 0,
            framer,
            assembler,
            out: Vec::new(),
            written: 0,
            pending: PendingQueue::default(),
            in_flight: VecDeque::new(),
            next_id: 0,
            timed: None,
            events: VecDeque::new(),
            timers: TimerTable::default(),
            error: None,
            close_reason: None,
            greeting_due: implicit,
            reading: true,
        };
        client.push_in_flight(ReplyTo::Greeting, true);
        if !implicit {
            client.arm_reply_timer(now);
        }
        client
    }

    // ---- A. getters ----------------------------------------------------

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The extensions of the last EHLO/LHLO reply; `None` before it, after
    /// a HELO fallback, and between STARTTLS and the EHLO that follows.
    pub fn extensions(&self) -> Option<&Extensions<'static>> {
        self.extensions.as_ref()
    }

    /// Whether the connection is encrypted (implicit TLS, or after a
    /// STARTTLS handshake).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// What the transport reported about the TLS session.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls_info.as_ref()
    }

    /// The mechanism AUTH succeeded with, if it ran.
    pub fn authenticated(&self) -> Option<&Mechanism<'static>> {
        self.authenticated.as_ref()
    }

    /// Whether setup is done and transactions may be enqueued.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready)
    }

    /// Whether the session is over (the transport should close).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether the session wants more input.
    pub fn wants_read(&self) -> bool {
        self.reading && !self.is_closed() && !matches!(self.state, State::Handshake)
    }

    /// How many bytes [`Client::handle_input`] takes now: unbounded
    /// (`usize::MAX`) while the session reads, because replies are framed
    /// and parsed as they arrive and at most one partial line is kept
    /// (bounded by [`Config::max_reply_line`]); 0 during a TLS handshake
    /// and after the end.
    pub fn read_capacity(&self) -> usize {
        if self.wants_read() { usize::MAX } else { 0 }
    }

    /// The error the session failed with, if it did (it sticks).
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Why the session ends: `Some` from the moment closing starts (QUIT
    /// enqueued, or a failure), before [`Event::Closed`]; the first reason
    /// sticks.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.close_reason.as_ref()
    }

    /// The next deadline: call [`Client::handle_timeout`] when it passes.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// How the body of the current transaction is being sent, once
    /// started.
    pub fn body_mode(&self) -> Option<BodyMode> {
        match &self.tx.phase {
            state::TxPhase::AwaitingData => Some(BodyMode::Data),
            state::TxPhase::Body(body::BodySink::Data(_)) => Some(BodyMode::Data),
            state::TxPhase::Body(body::BodySink::Bdat { .. }) => Some(BodyMode::Bdat),
            _ => None,
        }
    }

    /// Where the current mail transaction stands.
    pub fn transaction_phase(&self) -> TransactionPhase {
        match self.tx.phase {
            state::TxPhase::Idle => TransactionPhase::Idle,
            state::TxPhase::Open => TransactionPhase::Open,
            state::TxPhase::AwaitingData => TransactionPhase::AwaitingData,
            state::TxPhase::Body(_) => TransactionPhase::Body,
            state::TxPhase::AwaitingFinal => TransactionPhase::AwaitingFinal,
        }
    }

    /// Whether `write_body` can take bytes now (a body is due and the
    /// buffer has room).
    pub fn wants_body(&self) -> bool {
        matches!(self.tx.phase, state::TxPhase::Body(_))
            && self.error.is_none()
            && !self.is_closed()
            && self.body_room() > 0
    }

    // ---- B. inputs -----------------------------------------------------

    /// Bytes read from the connection; returns how many were taken, which
    /// is all of them. They are framed and parsed at once (unlike the
    /// server, which parses in `poll`): complete replies become events, and
    /// bytes that follow the `220` to STARTTLS in the same read are caught
    /// before anything could act on them. Bytes handed in while the TLS
    /// handshake is pending are injected plaintext (taken and dealt with
    /// per [`Config::on_injection`]); bytes after the end are taken and
    /// dropped.
    #[must_use = "bytes not taken must be offered again"]
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> usize {
        if !self.reading || self.is_closed() {
            return bytes.len();
        }
        if matches!(self.state, State::Handshake) {
            // After the 220 to STARTTLS the transport must hand every byte
            // to TLS; plaintext arriving here was injected.
            self.on_injected(bytes.len());
            return bytes.len();
        }
        // Bytes already buffered keep the mark of their arrival; the new
        // ones arrive now, after `written` bytes were sent.
        self.input_old = self.input.len();
        if self.input_old == 0 {
            self.input_mark = self.written;
        }
        self.input.extend_from_slice(bytes);
        self.process_input();
        self.after_input(now);
        bytes.len()
    }

    /// The peer closed its side. A reply that was due (or half received)
    /// fails the session; after QUIT it is the normal end.
    pub fn handle_eof(&mut self, now: Instant) {
        let _ = now;
        if self.is_closed() {
            return;
        }
        if matches!(self.state, State::Quitting) {
            // After QUIT the server closing is the normal end, with or
            // without its 221.
            self.close();
            return;
        }
        let partial_reply = self.assembler.is_partial() || !self.input.is_empty();
        self.fail(Error::ConnectionClosed { partial_reply }, false);
    }

    /// Time passed; fires the timers that are due. Spurious calls are
    /// harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(timer) = self.timers.expired(now) else {
            return;
        };
        self.timers.stop(timer);
        if matches!(self.state, State::Quitting) && self.error.is_some() {
            // Already failed and leaving; the QUIT reply is not worth waiting for.
            self.close();
            return;
        }
        let waiting = match timer {
            Timer::Reply => match self.in_flight.front() {
                Some(head) => Waiting::Reply(head.to),
                None => return,
            },
            Timer::Write => Waiting::Write,
            Timer::Handshake => Waiting::TlsHandshake,
        };
        if matches!(self.state, State::Quitting) && waiting == Waiting::Reply(ReplyTo::Quit) {
            // The server did not answer QUIT: the session is over anyway.
            self.close();
            return;
        }
        self.fail(Error::Timeout(waiting), false);
    }

    /// The transport finished the TLS handshake that [`Output::StartTls`]
    /// asked for. After STARTTLS everything learned before is forgotten and
    /// EHLO (LHLO) is sent again; under implicit TLS the greeting is
    /// awaited now (its timer starts).
    ///
    /// # Errors
    ///
    /// [`DriveError::NoHandshakePending`] when no handshake was asked for
    /// (or the session ended meanwhile); nothing changes.
    pub fn handle_tls_established(
        &mut self,
        now: Instant,
        info: TlsInfo,
    ) -> Result<(), DriveError> {
        if !(matches!(self.state, State::Handshake) && self.starttls_signalled) {
            return Err(DriveError::NoHandshakePending);
        }
        self.tls = true;
        self.tls_info = Some(info);
        self.timers.stop(Timer::Handshake);
        self.starttls_signalled = false;
        if self.greeting_due {
            self.greeting_due = false;
            self.state = State::Greeting;
        } else {
            self.send_hello();
        }
        self.arm_reply_timer(now);
        Ok(())
    }

    // ---- D. output -----------------------------------------------------

    /// The next thing to do: an event, bytes to write, a TLS handshake to
    /// start, or a wait. Call until [`Output::Wait`] after every input or
    /// intent. `now` arms the handshake timer when
    /// [`Output::StartTls`] is handed out (see the
    /// [time rule](crate::session#the-time-rule)).
    pub fn poll(&mut self, now: Instant) -> Output<'_, Event> {
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        if matches!(self.state, State::Handshake) && self.out.is_empty() {
            if !self.starttls_signalled {
                self.starttls_signalled = true;
                self.arm_handshake_timer(now);
                return Output::StartTls;
            }
            return Output::Wait {
                deadline: self.timers.next_deadline(),
            };
        }
        if !self.out.is_empty() {
            return Output::Transmit(&self.out);
        }
        Output::Wait {
            deadline: self.timers.next_deadline(),
        }
    }

    /// The transport wrote `n` bytes of the last [`Output::Transmit`]. Call
    /// it right after the write, before handing in input read later: a
    /// reply to a command the session does not know to be written is
    /// unsolicited.
    ///
    /// # Errors
    ///
    /// [`DriveError::TransmitOverrun`] when `n` is more than was offered;
    /// nothing changes.
    pub fn advance_transmit(&mut self, now: Instant, n: usize) -> Result<(), DriveError> {
        if n > self.out.len() {
            return Err(DriveError::TransmitOverrun {
                advanced: n,
                pending: self.out.len(),
            });
        }
        self.out.drain(..n);
        self.written += n as u64;
        if self.out.is_empty() {
            self.timers.stop(Timer::Write);
        } else if n > 0 || self.timers.get(Timer::Write).is_none() {
            self.timers
                .set(Timer::Write, now, self.config.timeouts.data_block);
        }
        self.arm_reply_timer(now);
        if matches!(self.state, State::Handshake) && self.out.is_empty() {
            self.arm_handshake_timer(now);
        }
        Ok(())
    }

    // ---- internals: input ----------------------------------------------

    /// Frames and parses buffered input until it runs out or the session
    /// stops reading.
    fn process_input(&mut self) {
        while self.reading && !self.is_closed() {
            let frame = self.framer.next(&self.input);
            let consumed = frame.consumed();
            let arrived = if self.input_old > 0 {
                self.input_mark
            } else {
                self.written
            };
            let parsed = match frame {
                Frame::Line(line) => {
                    if !self.assembler.is_partial() {
                        self.reply_mark = arrived;
                    }
                    Some(self.assembler.push_line(line.content()))
                }
                Frame::TooLong { .. } | Frame::Discard { .. } => None,
                Frame::NeedMore => return,
            };
            self.input.drain(..consumed.min(self.input.len()));
            self.input_old = self.input_old.saturating_sub(consumed);
            if self.input_old == 0 {
                self.input_mark = self.written;
            }
            match parsed {
                None => {
                    let max = self.framer.max_len();
                    self.fail(Error::ReplyLineTooLong { max }, false);
                    return;
                }
                Some(Err(e)) => {
                    self.fail(Error::InvalidReply(e), false);
                    return;
                }
                Some(Ok(None)) => {}
                Some(Ok(Some(reply))) => {
                    self.on_reply(reply);
                    if matches!(self.state, State::Handshake) {
                        // Whatever is left arrived with the 220 to STARTTLS.
                        let left = self.input.len();
                        self.input.clear();
                        self.input_old = 0;
                        self.framer.reset();
                        self.assembler.reset();
                        if left > 0 {
                            self.on_injected(left);
                        }
                        return;
                    }
                }
            }
        }
    }

    /// Plaintext bytes after the `220` to STARTTLS.
    fn on_injected(&mut self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        match self.config.on_injection {
            InjectionPolicy::Discard => {}
            _ => self.fail(Error::StartTlsInjection { bytes }, false),
        }
    }

    /// Timers and writes after input was processed.
    fn after_input(&mut self, now: Instant) {
        self.arm_reply_timer(now);
        if matches!(self.state, State::Handshake) && self.out.is_empty() {
            self.arm_handshake_timer(now);
        }
    }

    /// One complete reply: match it with the oldest in-flight command.
    fn on_reply(&mut self, reply: Reply<'static>) {
        // A reply can only answer a command the server has received, so
        // the head of the queue must have been written in full before the
        // reply's first byte arrived; anything else is unsolicited (a `421`
        // is the server closing on its own). Checking only when the reply
        // completes would let a server start a `250` to the end of data
        // before the body has left, and finish it after.
        let head = match self.in_flight.front() {
            Some(head) if self.reply_mark >= head.end => *head,
            _ => {
                let error = if reply.code() == ReplyCode::SERVICE_NOT_AVAILABLE {
                    Error::ServiceNotAvailable(reply)
                } else {
                    Error::UnexpectedReply(reply)
                };
                if self.error.is_some() {
                    self.close();
                } else {
                    self.fail(error, false);
                }
                return;
            }
        };
        self.in_flight.pop_front();
        self.timers.stop(Timer::Reply);
        self.timed = None;
        let to = head.to;
        self.events.push_back(Event::Reply {
            to,
            reply: reply.clone(),
        });
        if reply.code() == ReplyCode::SERVICE_NOT_AVAILABLE && to != ReplyTo::Quit {
            // RFC 5321 §3.8: the server is going away; nothing more will be
            // answered.
            self.fail(Error::ServiceNotAvailable(reply), false);
            return;
        }
        match to {
            ReplyTo::Greeting => self.on_greeting(reply),
            ReplyTo::Ehlo | ReplyTo::Lhlo => self.on_hello(reply),
            ReplyTo::Helo => self.on_helo(reply),
            ReplyTo::StartTls => self.on_starttls(reply),
            ReplyTo::Auth => self.on_auth(reply),
            ReplyTo::Quit => self.close(),
            _ => self.on_transaction_reply(to, &reply, head.tx),
        }
        self.flush_pending();
    }

    // ---- internals: output ---------------------------------------------

    /// Records that a command whose bytes were just appended to `out` is
    /// awaiting its reply.
    fn push_in_flight(&mut self, to: ReplyTo, group_end: bool) {
        self.push_in_flight_for(to, group_end, self.tx.id);
    }

    /// [`Client::push_in_flight`] for a command of transaction `tx`.
    fn push_in_flight_for(&mut self, to: ReplyTo, group_end: bool, tx: u64) {
        let end = self.written + self.out.len() as u64;
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight.push_back(InFlight {
            to,
            end,
            group_end,
            id,
            tx,
        });
    }

    /// Writes a command the session sends by itself.
    fn send_command(&mut self, command: &Command<'_>, to: ReplyTo) {
        command.encode(&mut self.out);
        self.push_in_flight(to, true);
    }

    /// Whether the server offers PIPELINING and the client uses it.
    fn pipelining(&self) -> bool {
        self.config.pipelining
            && self
                .extensions
                .as_ref()
                .is_some_and(Extensions::supports_pipelining)
    }

    /// Moves enqueued commands to the transmit buffer as far as the
    /// pipelining rules allow (RFC 2920 §3.1): without PIPELINING one at a
    /// time; with it, until a command that must be last in a group.
    fn flush_pending(&mut self) {
        if !matches!(self.state, State::Ready | State::Quitting) {
            return;
        }
        let pipelining = self.pipelining();
        while let Some(front) = self.pending.front() {
            if self.in_flight.iter().any(|f| f.group_end) {
                break;
            }
            if !pipelining && !self.in_flight.is_empty() {
                break;
            }
            let is_bdat = matches!(front.kind, PendingKind::Bdat | PendingKind::BdatLast);
            if is_bdat && self.tx.rcpt_replies_pending() {
                // No body byte leaves before it is known that some
                // recipient was accepted.
                break;
            }
            let Some(item) = self.pending.pop_into(&mut self.out) else {
                break;
            };
            match item.kind {
                PendingKind::Command(to) => {
                    let group_end =
                        !matches!(to, ReplyTo::Mail | ReplyTo::Rcpt { .. } | ReplyTo::Rset);
                    self.push_in_flight_for(to, group_end, item.tx);
                }
                PendingKind::Bdat => self.push_in_flight_for(ReplyTo::Bdat, false, item.tx),
                PendingKind::BdatLast => self.push_final_replies(),
            }
        }
    }

    /// Expects the reply (SMTP) or replies (LMTP: one per accepted
    /// recipient) to the end of the body just written.
    fn push_final_replies(&mut self) {
        match self.config.protocol {
            Protocol::Lmtp => {
                let accepted = self.tx.accepted.clone();
                for index in accepted {
                    self.push_in_flight(
                        ReplyTo::EndOfData {
                            recipient: Some(index),
                        },
                        true,
                    );
                }
            }
            _ => self.push_in_flight(ReplyTo::EndOfData { recipient: None }, true),
        }
    }

    // ---- internals: timers ---------------------------------------------

    /// Arms the reply timer for the head of the in-flight queue once its
    /// last byte is written.
    fn arm_reply_timer(&mut self, now: Instant) {
        match self.in_flight.front() {
            Some(head) if self.written >= head.end => {
                if self.timed != Some(head.id) {
                    let after = self.reply_timeout(head.to);
                    self.timed = Some(head.id);
                    self.timers.set(Timer::Reply, now, after);
                }
            }
            Some(_) => {}
            None => {
                self.timers.stop(Timer::Reply);
                self.timed = None;
            }
        }
    }

    fn arm_handshake_timer(&mut self, now: Instant) {
        if self.timers.get(Timer::Handshake).is_none() {
            self.timers
                .set(Timer::Handshake, now, self.config.timeouts.tls_handshake);
        }
    }

    /// RFC 5321 §4.5.3.2 timeout for a reply.
    fn reply_timeout(&self, to: ReplyTo) -> std::time::Duration {
        let t = &self.config.timeouts;
        match to {
            ReplyTo::Greeting => t.greeting,
            ReplyTo::Mail => t.mail,
            ReplyTo::Rcpt { .. } => t.rcpt,
            ReplyTo::Data => t.data_initiation,
            ReplyTo::Bdat => t.bdat_chunk,
            ReplyTo::EndOfData { .. } => t.data_termination,
            _ => t.other,
        }
    }

    // ---- internals: ending ---------------------------------------------

    /// Fails the session once. With `quit`, and when the stream is in sync
    /// (nothing in flight), a QUIT is sent first (RFC 5321 §3.1 for a `554`
    /// greeting); otherwise the session closes at once.
    fn fail(&mut self, error: Error, quit: bool) {
        if self.error.is_some() || self.is_closed() {
            return;
        }
        if self.close_reason.is_none() {
            self.close_reason = Some(CloseReason::Error(error.clone()));
        }
        self.error = Some(error.clone());
        self.events.push_back(Event::Error(error));
        self.pending.clear();
        self.reading = quit && self.in_flight.is_empty();
        if quit && self.in_flight.is_empty() && !matches!(self.tx.phase, state::TxPhase::Body(_)) {
            self.state = State::Quitting;
            self.send_command(&Command::Quit, ReplyTo::Quit);
        } else {
            self.close();
        }
    }

    /// Ends the session. Every way here passes through a failure or QUIT,
    /// which recorded the reason; `Quit` is the fallback for the normal
    /// end.
    fn close(&mut self) {
        if self.is_closed() {
            return;
        }
        self.close_reason.get_or_insert(CloseReason::Quit);
        self.state = State::Closed;
        self.reading = false;
        self.timers.stop_all();
        self.timed = None;
        self.pending.clear();
        self.in_flight.clear();
        self.out.clear();
        self.input.clear();
        self.events.push_back(Event::Closed);
    }
}

impl Session for Client {
    type Event<'a> = Event;
    type CloseReason = CloseReason;

    fn read_capacity(&self) -> usize {
        Self::read_capacity(self)
    }

    fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> usize {
        Self::handle_input(self, now, bytes)
    }

    fn handle_eof(&mut self, now: Instant) {
        Self::handle_eof(self, now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Self::handle_timeout(self, now);
    }

    fn handle_tls_established(&mut self, now: Instant, info: TlsInfo) -> Result<(), DriveError> {
        Self::handle_tls_established(self, now, info)
    }

    fn poll(&mut self, now: Instant) -> Output<'_, Event> {
        Self::poll(self, now)
    }

    fn advance_transmit(&mut self, now: Instant, n: usize) -> Result<(), DriveError> {
        Self::advance_transmit(self, now, n)
    }

    fn next_timeout(&self) -> Option<Instant> {
        Self::next_timeout(self)
    }

    fn is_tls(&self) -> bool {
        Self::is_tls(self)
    }

    fn tls_info(&self) -> Option<&TlsInfo> {
        Self::tls_info(self)
    }

    fn is_closed(&self) -> bool {
        Self::is_closed(self)
    }

    fn close_reason(&self) -> Option<&CloseReason> {
        Self::close_reason(self)
    }
}

#[cfg(test)]
mod tests {
    use super::{PendingKind, PendingQueue, ReplyTo};

    /// Items come out in order with their own bytes, whatever was kept
    /// or dropped in between, and the buffer is reused.
    #[test]
    fn pending_queue_keeps_order_and_bytes() {
        let mut q = PendingQueue::default();
        let cmd = PendingKind::Command(ReplyTo::Rset);
        q.push(cmd, 1, |o| o.extend_from_slice(b"MAIL\r\n"));
        q.push(PendingKind::Bdat, 1, |o| {
            o.extend_from_slice(b"BDAT 3\r\nabc")
        });
        q.push(cmd, 1, |o| o.extend_from_slice(b"RCPT\r\n"));
        q.push(PendingKind::BdatLast, 1, |o| {
            o.extend_from_slice(b"BDAT 1 LAST\r\nz")
        });
        q.push(cmd, 2, |o| o.extend_from_slice(b"RSET\r\n"));
        assert_eq!(q.queued_bytes(), 6 + 11 + 6 + 14 + 6);
        let mut out = Vec::new();
        assert!(q.pop_into(&mut out).is_some());
        assert_eq!(out, b"MAIL\r\n");
        q.retain(|p| !matches!(p.kind, PendingKind::Bdat | PendingKind::BdatLast));
        assert_eq!(q.queued_bytes(), 12);
        let mut out = Vec::new();
        while q.pop_into(&mut out).is_some() {}
        assert_eq!(out, b"RCPT\r\nRSET\r\n");
        assert_eq!(q.queued_bytes(), 0);
        // Many items never all drained at once: the buffer stays small.
        for i in 0..1000 {
            q.push(cmd, i, |o| o.extend_from_slice(b"NOOP\r\n"));
            if i % 2 == 1 {
                q.pop_into(&mut out);
            }
        }
        assert_eq!(q.queued_bytes(), 500 * 6);
        assert!(q.bytes.len() <= 2 * 500 * 6 + 6);
        q.clear();
        assert!(q.front().is_none());
        assert_eq!(q.queued_bytes(), 0);
    }
}
