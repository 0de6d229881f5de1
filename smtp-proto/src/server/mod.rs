//! The server session: bytes in, events and replies out, no I/O.
//!
//! A [`Server`] is one SMTP (or LMTP) connection seen from the receiving
//! side. The transport hands it bytes ([`Server::handle_input`]), the end of
//! input ([`Server::handle_eof`]), the passing of time
//! ([`Server::handle_timeout`]) and the end of a TLS handshake
//! ([`Server::handle_tls_established`]); after each, it drains
//! [`Server::poll`] until [`Output::Wait`] — the contract both sessions
//! share, with its time rule, is in [`session`](crate::session), and
//! [`session::drive`](crate::session::drive) is that drain as a function.
//! The application answers the
//! questions among the events ([`Server::accept`], [`Server::reply`],
//! [`Server::auth_challenge`], [`Server::auth_success`]) whenever it is
//! ready — at once or much later, after a database lookup. Until it does,
//! the server reads no further command; pipelined input waits in the
//! bounded input buffer and [`Server::wants_read`] turns false when it is
//! full.
//!
//! ```
//! use std::time::Instant;
//! use smtp_proto::address::Domain;
//! use smtp_proto::server::{Config, Server};
//! use smtp_proto::Output;
//!
//! let now = Instant::now();
//! let mut server = Server::new(Config::new(Domain::new("mx.example.org").unwrap()), now);
//! let mut wire = Vec::new();
//! let mut drain = |server: &mut Server, wire: &mut Vec<u8>| loop {
//!     // An event borrows the server: decide, then answer after the match.
//!     let answer = match server.poll(now) {
//!         Output::Transmit(bytes) => {
//!             let n = bytes.len();
//!             wire.extend_from_slice(bytes);
//!             server.advance_transmit(now, n).unwrap();
//!             false
//!         }
//!         Output::Event(event) => event.needs_answer(),
//!         _ => break,
//!     };
//!     if answer {
//!         server.accept().unwrap();
//!     }
//! };
//! drain(&mut server, &mut wire);
//! // One group per read: a client waits for the reply to HELO (RFC 2920
//! // §3.1), or it is refused ([`SyncPoint`]).
//! for group in [&b"HELO client.example\r\n"[..], b"MAIL FROM:<a@example.org>\r\n"] {
//!     assert_eq!(server.handle_input(now, group), group.len());
//!     drain(&mut server, &mut wire);
//! }
//! assert_eq!(
//!     wire,
//!     b"220 mx.example.org ESMTP\r\n250 mx.example.org\r\n250 Sender ok\r\n"
//! );
//! ```
//!
//! # What the server decides, and what the application decides
//!
//! Everything RFC 5321 and its extensions fully decide is answered by the
//! server itself: the greeting, `EHLO`/`HELO`/`LHLO` from the [`Config`],
//! `NOOP`, `RSET`, `HELP`, `QUIT`, `STARTTLS`, syntax errors (`500`, `501`),
//! bad sequences (`503`), parameters not offered (`555`), declared sizes over
//! the limit (`552`), recipients over the limit (`452`), over-long lines,
//! too many errors and timeouts (`421`). Policy is the application's: it
//! accepts or refuses each `MAIL`, `RCPT`, `DATA`, message, `AUTH` step and
//! `VRFY`/`EXPN`. The greeting commands are facts, not questions: refusing a
//! client by its `EHLO` name is better done at `MAIL` or `RCPT`, where the
//! reply is not misread (Postfix's `smtpd_delay_reject` reasoning).
//!
//! # States
//!
//! ```text
//!                  new()                  new() under TlsMode::Implicit
//!                    │ 220 greeting                  │ (nothing queued)
//!                    ▼                               ▼
//!   ┌───────▶ Command(None) ◀─ handle_tls_established ◀─ Handshake ◀─ StartTls
//!   │          │   ▲  ▲  ▲       (implicit: 220 greeting)    ▲
//!   │    MAIL  │   │  │  └─ RSET/EHLO/refused message/final reply   │ Output::StartTls
//!   │ accepted ▼   │  │                                             │ (queue written)
//!   │     Command(Some(envelope))    STARTTLS: 220 ────────────▶ StartTls
//!   │      │            │                (plaintext after it: close or discard)
//!   │ DATA │ 354   BDAT │ (counted)
//!   │      ▼            ▼
//!   │    Data ─────  Chunk ── non-LAST: 250 ──▶ Command(Some(envelope))
//!   │ CRLF.CRLF │       │ LAST
//!   │           ▼       ▼
//!   └──── MessageEnd question (final reply; LMTP: one per recipient)
//!
//!   AUTH ──▶ Sasl(step) ──response──▶ question ──challenge──▶ Sasl(step)
//!                                        └─ success/failure ─▶ Command(None)
//!
//!   any state ── QUIT (221) / timeout, error limit, shutdown (421) / EOF ──▶ Closing ──▶ Closed
//! ```
//!
//! The transaction is an envelope held *inside* the state, so
//! every way out of it — RSET, a new EHLO, a refused or completed message,
//! an error in a BDAT chunk — drops all of it at once.
//!
//! # Pipelining and flushing
//!
//! Replies are queued, not written one by one: the server answers every
//! complete command in its input buffer and only then offers the queue as
//! one [`Output::Transmit`] — when no complete command is left, when an
//! application answer is awaited, or when the session switches to TLS or
//! closes. A pipelined batch that arrives in one read is therefore answered
//! in one write (RFC 2920 §3.2), and however the input is split the bytes
//! written are the same.
//!
//! # Security defaults
//!
//! See the [`manual`](crate::manual): plaintext after `STARTTLS` closes the
//! connection; only `CRLF.CRLF` ends `DATA`, and a message with a bare CR
//! or LF is refused at its real end; AUTH is offered only under TLS; every
//! buffer is bounded. Under [`TlsMode::Required`] mail and authentication
//! commands before STARTTLS get `530 5.7.0` (RFC 3207 §4). An
//! unauthenticated client that sends on where RFC 2920 §3.1 says to wait —
//! a transaction pipelined behind the end of data, anything behind `EHLO`,
//! `DATA`, `STARTTLS` or an AUTH step, input before the greeting — gets
//! `554 5.5.0` and is disconnected ([`SyncPoint`],
//! [`Config::forbid_unauth_pipelining`]). A NUL in message content is
//! refused like a bare line ending, in DATA and in 7bit/8bit BDAT bodies
//! ([`Config::bare_line_ending`]).

mod auth;
mod buffer;
mod commands;
mod config;
mod content;
mod envelope;
mod error;
mod event;
pub mod rates;
mod replies;
mod sasl;
mod state;
mod sync;

use std::collections::VecDeque;
use std::time::Instant;

use crate::command::Command;
use crate::framing::LineFramer;
use crate::reply::{Reply, ReplyCode};
use crate::secret::Secret;
use crate::session::{DriveError, InjectionPolicy, Output, Protocol, Session, TlsInfo, TlsMode};
use crate::time::TimerTable;

pub use config::{AuthConfig, Config, ErrorLimits, Limits, Offer, Timeouts};
pub use envelope::{Envelope, Recipients};
pub use error::{Question, UsageError};
pub use event::{CloseReason, Event, HeloKind, ResetReason};
pub use rates::{ClientRates, RateExceeded, RateKind, RateLimits};
pub use sync::SyncPoint;

use envelope::EnvelopeLines;
use replies::Canned;
use state::{Awaiting, BodyStart, Fact, Pending, SaslStep, State, TIMERS, Timer, Transaction};

/// One server session. See the [module docs](self).
#[derive(Debug)]
pub struct Server {
    config: Config,
    state: State,
    /// The question the application has not answered yet.
    awaiting: Option<Awaiting>,
    /// The greeting command of the session, `None` before it (and after
    /// STARTTLS).
    greeted: Option<HeloKind>,
    authenticated: bool,
    tls: Option<TlsInfo>,
    /// The greeting refused service (`554`): only QUIT is served.
    no_service: bool,
    input: buffer::Input,
    output: buffer::Output,
    framer: LineFramer,
    timers: TimerTable<Timer, TIMERS>,
    now: Instant,
    errors: u32,
    eof: bool,
    /// Facts to hand out before anything else (at most two at a time).
    facts: VecDeque<Fact>,
    /// Decoded SASL data the current auth event borrows.
    sasl: Vec<u8>,
    /// The text of the transaction's accepted MAIL and RCPT commands, for
    /// the [`Envelope`] of `DataStart` and `MessageEnd`.
    envelope_lines: EnvelopeLines,
    /// Plaintext bytes discarded at the STARTTLS boundary.
    discarded: usize,
    /// Why the session ends, from the moment closing starts (sticky).
    close_reason: Option<CloseReason>,
    /// Implicit TLS: the greeting is queued once the handshake is done.
    greeting_due: bool,
    /// The greeting is held back ([`Config::greeting_delay`]) until the
    /// greeting timer fires.
    greeting_pending: bool,
    /// Protocol synchronization (RFC 2920 §3.1): the barrier and any
    /// violation seen.
    sync: sync::Sync,
}

/// What one step of the state machine did.
enum Step {
    /// Progress; step again.
    Continue,
    /// An event is ready.
    Emit(Pending),
    /// Nothing more until input, an answer or time.
    Stall,
}

impl Server {
    /// A session on a new connection.
    ///
    /// The greeting is queued at once — unless `config.tls` is
    /// [`TlsMode::Implicit`] (RFC 8314 §3.3: submissions on port 465): then
    /// the first output is [`Output::StartTls`], the handshake timer runs
    /// from it, and the greeting follows
    /// [`Server::handle_tls_established`]. STARTTLS is then never offered,
    /// and AUTH is available at once.
    pub fn new(mut config: Config, now: Instant) -> Self {
        config.limits = config.limits.clamped();
        let limits = config.limits;
        let implicit = config.tls == TlsMode::Implicit;
        let mut server = Self {
            state: if implicit {
                State::StartTls
            } else {
                State::Command(None)
            },
            awaiting: None,
            greeted: None,
            authenticated: false,
            tls: None,
            no_service: false,
            input: buffer::Input::new(limits.input_buffer),
            output: buffer::Output::new(limits.output_buffer),
            framer: LineFramer::new(limits.command_line),
            timers: TimerTable::default(),
            now,
            errors: 0,
            eof: false,
            facts: VecDeque::new(),
            sasl: Vec::new(),
            envelope_lines: EnvelopeLines::default(),
            discarded: 0,
            close_reason: None,
            greeting_due: implicit,
            greeting_pending: false,
            sync: sync::Sync::default(),
            config,
        };
        if !implicit {
            server.begin_greeting();
        }
        server
    }

    /// Greets now, or arms the greeting timer under
    /// [`Config::greeting_delay`]. Either way the client must wait for the
    /// greeting ([`SyncPoint::Greeting`]).
    fn begin_greeting(&mut self) {
        self.sync_barrier(SyncPoint::Greeting);
        if self.config.greeting_delay.is_zero() {
            self.queue_greeting();
        } else {
            self.greeting_pending = true;
            self.timers
                .set(Timer::Greeting, self.now, self.config.greeting_delay);
        }
    }

    /// Queues the greeting (RFC 5321 §3.1, §4.2): the configured one, or
    /// `220 <hostname> ESMTP`.
    fn queue_greeting(&mut self) {
        match &self.config.greeting {
            None => replies::write_greeting(
                self.output.queue(),
                self.config.hostname.as_str(),
                self.config.protocol == Protocol::Lmtp,
            ),
            Some(greeting) => {
                greeting.encode(self.output.queue());
                if greeting.code() == ReplyCode::SERVICE_NOT_AVAILABLE {
                    self.close_silently(CloseReason::Refused);
                } else if !greeting.code().is_positive_completion() {
                    self.no_service = true;
                }
            }
        }
    }

    // ----- A. getters -------------------------------------------------------

    /// Whether the server takes input now: not closed, not in the TLS
    /// handshake, and room in the input buffer.
    pub fn wants_read(&self) -> bool {
        self.read_capacity() > 0
    }

    /// How many bytes [`Server::handle_input`] would take now: room in the
    /// input buffer, and 0 during a TLS handshake (the bytes are TLS
    /// records), before an implicit-TLS handshake, and after the end.
    /// Between an accepted `STARTTLS` and [`Output::StartTls`] input is
    /// still taken, so that plaintext injected there is seen and dealt
    /// with ([`Config::on_injection`]).
    pub fn read_capacity(&self) -> usize {
        match self.state {
            State::Handshake | State::Closing(_) | State::Closed => 0,
            State::StartTls if self.greeting_due => 0,
            _ => self.input.room(),
        }
    }

    /// Whether the session runs over TLS (implicit, or after STARTTLS).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// What the transport reported about the TLS session.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// Whether the client authenticated successfully in this session.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Whether the session is over ([`Event::Closed`] was handed out).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Why the session ends: `Some` from the moment closing starts (the
    /// last replies may still be waiting to be written), and the same
    /// reason [`Event::Closed`] carries. The first reason sticks.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.close_reason.as_ref()
    }

    /// The earliest deadline at which [`Server::handle_timeout`] must be
    /// called.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Plaintext bytes discarded at the STARTTLS boundary (pipelined after
    /// `STARTTLS`, or received during the handshake). Never acted on.
    pub fn discarded_plaintext(&self) -> usize {
        self.discarded
    }

    /// Errors counted toward the [`ErrorLimits`].
    pub fn error_count(&self) -> u32 {
        self.errors
    }

    /// Bytes received and not yet processed (bounded by
    /// [`Limits::input_buffer`]).
    pub fn buffered_input(&self) -> usize {
        self.input.len()
    }

    /// The input buffer's allocation, for checking that an idle session
    /// holds no large buffer.
    pub fn input_capacity(&self) -> usize {
        self.input.capacity()
    }

    /// Whether a mail transaction is open (RFC 5321 §3.3): `MAIL` was
    /// accepted and neither the end of the message nor a reset has closed
    /// it. A graceful shutdown lets such a session finish its message
    /// before it sends `421`; one between transactions can take the `421`
    /// at once.
    pub fn in_transaction(&self) -> bool {
        matches!(
            self.state,
            State::Command(Some(_)) | State::Data { .. } | State::Chunk { .. }
        )
    }

    // ----- B. inputs --------------------------------------------------------

    /// Hands the server bytes received from the peer; returns how many it
    /// took (at most [`Server::read_capacity`]; keep the rest and offer it
    /// again after polling). Only buffers: the work happens in
    /// [`Server::poll`].
    ///
    /// Bytes that arrive after `STARTTLS` and before the handshake are
    /// taken and discarded (and, by default, end the session); bytes after
    /// the session closed are taken and dropped.
    #[must_use = "bytes not taken must be offered again"]
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        self.now = now;
        match self.state {
            State::Closing(_) | State::Closed => return data.len(),
            State::StartTls => {
                self.plaintext_after_starttls(data.len());
                return data.len();
            }
            State::Handshake => {
                self.discarded += data.len();
                return data.len();
            }
            _ => {}
        }
        self.input.settle();
        let taken = self.input.push(data);
        if taken > 0 {
            self.sync_input();
            self.arm_idle();
        }
        taken
    }

    /// The peer closed its sending side. Complete commands already buffered
    /// are still answered; then the session closes ([`CloseReason::Eof`]).
    pub fn handle_eof(&mut self, now: Instant) {
        self.now = now;
        self.eof = true;
        if matches!(self.state, State::StartTls | State::Handshake) {
            self.close_silently(CloseReason::Eof);
        }
    }

    /// Time has passed; fires every timer due at `now`. Spurious calls are
    /// harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        while let Some(timer) = self.timers.expired(now) {
            self.timers.stop(timer);
            match timer {
                Timer::ErrorDelay => {}
                Timer::Idle => {
                    if self.state.reads_peer() && self.awaiting.is_none() {
                        self.close_with(&replies::TIMEOUT, CloseReason::Timeout);
                    }
                }
                Timer::Send => {
                    self.output.clear();
                    self.close_silently(CloseReason::SendTimeout);
                }
                Timer::Handshake => self.close_silently(CloseReason::TlsHandshakeTimeout),
                Timer::Greeting => {
                    if self.greeting_pending {
                        self.greeting_pending = false;
                        self.queue_greeting();
                    }
                }
            }
        }
    }

    /// The TLS handshake that followed [`Output::StartTls`] completed.
    /// Everything learned before it is forgotten (RFC 3207 §4.2): the
    /// client must greet again, and STARTTLS is no longer offered. Under
    /// implicit TLS the greeting is queued now. [`Event::TlsEstablished`]
    /// follows either way.
    ///
    /// # Errors
    ///
    /// [`DriveError::NoHandshakePending`] without a preceding
    /// [`Output::StartTls`]; nothing changes.
    pub fn handle_tls_established(&mut self, now: Instant, tls: TlsInfo) -> Result<(), DriveError> {
        if !matches!(self.state, State::Handshake) {
            return Err(DriveError::NoHandshakePending);
        }
        self.now = now;
        self.timers.stop(Timer::Handshake);
        self.tls = Some(tls);
        self.greeted = None;
        self.authenticated = false;
        self.sasl.clear();
        self.input.clear();
        self.framer.reset();
        self.framer.set_max_len(self.config.limits.command_line);
        self.state = State::Command(None);
        self.facts.push_back(Fact::TlsEstablished);
        if self.greeting_due {
            self.greeting_due = false;
            self.begin_greeting();
        }
        self.arm_idle();
        Ok(())
    }

    /// The transport wrote `n` bytes of the last [`Output::Transmit`].
    ///
    /// # Errors
    ///
    /// [`DriveError::TransmitOverrun`] when `n` is more than was offered;
    /// nothing changes.
    pub fn advance_transmit(&mut self, now: Instant, n: usize) -> Result<(), DriveError> {
        self.now = now;
        self.output
            .advance(n)
            .map_err(|pending| DriveError::TransmitOverrun {
                advanced: n,
                pending,
            })?;
        if self.output.pending().is_empty() {
            self.sync_flushed();
            self.timers.stop(Timer::Send);
            // The client's turn starts when our reply is out.
            self.arm_idle();
        } else if n > 0 {
            self.timers.set(Timer::Send, now, self.config.timeouts.send);
        }
        Ok(())
    }

    // ----- D. output --------------------------------------------------------

    /// The next thing to do. Call after every input or answer until it
    /// returns [`Output::Wait`].
    pub fn poll(&mut self, now: Instant) -> Output<'_, Event<'_>> {
        self.now = now;
        self.input.settle();
        if self.awaiting.is_none() && self.state.envelope().is_none() && self.facts.is_empty() {
            // No transaction, and no event of the last one still to come:
            // a large envelope buffer goes back.
            self.envelope_lines.release();
        }
        match self.drive() {
            Some(pending) => Output::Event(self.render(pending)),
            None => self.flush_or_wait(),
        }
    }

    /// Runs the state machine until it has an event or cannot go on.
    fn drive(&mut self) -> Option<Pending> {
        loop {
            if let Some(fact) = self.facts.pop_front() {
                return Some(Pending::Fact(fact));
            }
            if let Some(point) = self.sync.violation
                && self.awaiting.is_none()
                && self.state.reads_peer()
            {
                if point == SyncPoint::EndOfData && self.only_quit_pending() {
                    // A QUIT sent behind the dot in a second segment: served
                    // (see `sync`).
                    self.sync.violation = None;
                } else {
                    self.sync_close(point);
                    continue;
                }
            }
            if self.errors >= self.config.errors.hard && self.state.reads_peer() {
                self.close_with(&replies::TOO_MANY_ERRORS, CloseReason::TooManyErrors);
            }
            if self.greeting_pending {
                // Nothing is read before the greeting; input meanwhile is
                // pre-greeting talk (handled above when the rule applies).
                if self.eof {
                    self.close_silently(CloseReason::Eof);
                    continue;
                }
                return None;
            }
            if self.awaiting.is_some()
                || self.timers.get(Timer::ErrorDelay).is_some()
                || self.output.is_full()
            {
                return None;
            }
            let step = match self.state {
                State::Command(_) => self.read_command(),
                State::Sasl(_) => self.read_sasl(),
                State::Data { .. } => self.read_data(),
                State::Chunk { .. } => self.read_chunk(),
                State::StartTls | State::Handshake | State::Closing(_) | State::Closed => {
                    Step::Stall
                }
            };
            match step {
                Step::Continue => {}
                Step::Emit(pending) => return Some(pending),
                Step::Stall => return None,
            }
        }
    }

    /// Offers queued bytes, then the TLS switch or the end, else a wait.
    fn flush_or_wait(&mut self) -> Output<'_, Event<'_>> {
        if self.timers.get(Timer::ErrorDelay).is_some() {
            return Output::Wait {
                deadline: self.timers.next_deadline(),
            };
        }
        if !self.output.pending().is_empty() {
            if self.timers.get(Timer::Send).is_none() {
                self.timers
                    .set(Timer::Send, self.now, self.config.timeouts.send);
            }
            return Output::Transmit(self.output.pending());
        }
        self.timers.stop(Timer::Send);
        match self.state {
            State::StartTls => {
                self.state = State::Handshake;
                self.timers.stop(Timer::Idle);
                self.timers.set(
                    Timer::Handshake,
                    self.now,
                    self.config.timeouts.tls_handshake,
                );
                return Output::StartTls;
            }
            State::Closing(reason) => {
                self.state = State::Closed;
                self.timers.stop_all();
                self.input.clear();
                self.sasl = Vec::new();
                self.envelope_lines = EnvelopeLines::default();
                return Output::Event(Event::Closed { reason });
            }
            _ => {}
        }
        if self.state.reads_peer() && self.awaiting.is_none() {
            if self.timers.get(Timer::Idle).is_none() {
                self.arm_idle();
            }
        } else {
            self.timers.stop(Timer::Idle);
        }
        Output::Wait {
            deadline: self.timers.next_deadline(),
        }
    }

    /// Builds the event for `pending` from the buffers it points into.
    fn render(&self, pending: Pending) -> Event<'_> {
        match pending {
            Pending::Command { len } => self.render_command(len),
            Pending::DataStart(mode) => Event::DataStart {
                mode,
                envelope: self.envelope_lines.view(),
            },
            Pending::Body { len } => Event::Body(self.input.bytes().get(..len).unwrap_or_default()),
            Pending::MessageEnd { size, replies } => Event::MessageEnd {
                size,
                replies,
                envelope: self.envelope_lines.view(),
            },
            Pending::AuthResponse => Event::AuthResponse(Secret::new(&self.sasl)),
            Pending::AuthPlain {
                authzid,
                authcid,
                password,
            } => Event::AuthPlain {
                authzid: authzid.map(|r| sasl::text(self.sasl.get(r).unwrap_or_default())),
                authcid: sasl::text(self.sasl.get(authcid).unwrap_or_default()),
                password: Secret::new(sasl::text(self.sasl.get(password).unwrap_or_default())),
            },
            Pending::AuthLogin { user_len } => {
                let (user, password) = self.sasl.split_at(user_len.min(self.sasl.len()));
                Event::AuthLogin {
                    username: sasl::text(user),
                    password: Secret::new(sasl::text(password)),
                }
            }
            Pending::Fact(Fact::Reset(reason)) => Event::Reset {
                reason,
                envelope: self.envelope_lines.view(),
            },
            Pending::Fact(Fact::TlsEstablished) => Event::TlsEstablished,
        }
    }

    /// Builds the event of a command line at the front of the input.
    fn render_command(&self, len: usize) -> Event<'_> {
        let line = self.input.bytes().get(..len).unwrap_or_default();
        // Invariant: these bytes were parsed into this very command when the
        // line was read (`read_command`), nothing has touched them since
        // (they are handed out), and parsing is deterministic.
        match Command::parse(line) {
            Ok(Command::Helo { host }) => Event::Helo {
                kind: HeloKind::Helo,
                host,
            },
            Ok(Command::Ehlo { host }) => Event::Helo {
                kind: HeloKind::Ehlo,
                host,
            },
            Ok(Command::Lhlo { host }) => Event::Helo {
                kind: HeloKind::Lhlo,
                host,
            },
            Ok(Command::Mail { from, params }) => Event::Mail { from, params },
            Ok(Command::Rcpt { to, params }) => Event::Rcpt { to, params },
            Ok(Command::Vrfy { target }) => Event::Vrfy { target },
            Ok(Command::Expn { list }) => Event::Expn { list },
            Ok(Command::Auth {
                mechanism,
                initial_response,
            }) => Event::Auth {
                mechanism,
                initial_response,
            },
            _ => unreachable!("a handed-out command line re-parses as the same command"),
        }
    }

    // ----- C. application answers -------------------------------------------

    /// Answers the open question positively with the standard reply:
    /// `250 2.1.0` to MAIL, `250 2.1.5` to RCPT, `354` to DATA (nothing to a
    /// first BDAT: its chunk follows), `250 2.0.0` to a message (one
    /// recipient's worth in LMTP), `235 2.7.0` to AUTH, `252` to
    /// VRFY/EXPN.
    pub fn accept(&mut self) -> Result<(), UsageError> {
        let awaiting = self.awaiting.take().ok_or(UsageError::NothingToAnswer)?;
        let enhanced = self.enhanced();
        let out = self.output.queue();
        match awaiting {
            Awaiting::Mail(envelope) => {
                replies::write(out, replies::MAIL_OK, enhanced);
                self.mail_accepted(envelope);
            }
            Awaiting::Rcpt => {
                replies::write(out, replies::RCPT_OK, enhanced);
                self.recipient_accepted();
            }
            Awaiting::DataStart(start) => {
                if let BodyStart::Data = start {
                    replies::write(out, replies::DATA_GO, enhanced);
                }
                self.open_body(start);
            }
            Awaiting::MessageEnd { remaining } => {
                replies::write(out, replies::MESSAGE_OK, enhanced);
                self.message_answered(remaining);
            }
            Awaiting::Auth | Awaiting::AuthCredentials => {
                replies::write(out, replies::AUTH_OK, enhanced);
                self.authenticated = true;
                self.sasl.clear();
            }
            Awaiting::Verify => replies::write(out, replies::CANNOT_VERIFY, enhanced),
        }
        Ok(())
    }

    /// Answers the open question with `reply`, whose code must fit it:
    ///
    /// | question | positive | negative |
    /// |---|---|---|
    /// | MAIL | 250 | 4xx, 5xx |
    /// | RCPT | 250, 251 | 4xx, 5xx |
    /// | DATA | 354 | 4xx, 5xx |
    /// | first BDAT | — | 4xx, 5xx (sent after the chunk is read) |
    /// | message end | 250 | 4xx, 5xx |
    /// | AUTH | 235 | 4xx, 5xx |
    /// | VRFY, EXPN | 250, 251, 252 | 4xx, 5xx |
    ///
    /// A `421` is allowed everywhere and closes the session after it is
    /// sent (RFC 5321 §3.8). A refused DATA or BDAT ends the transaction.
    /// Anything else is a [`UsageError::WrongReplyCode`] and changes
    /// nothing.
    pub fn reply(&mut self, reply: Reply<'_>) -> Result<(), UsageError> {
        let awaiting = self.awaiting.as_ref().ok_or(UsageError::NothingToAnswer)?;
        let code = reply.code();
        let question = awaiting.question();
        let positive = match question {
            Question::Mail | Question::MessageEnd => code == ReplyCode::OK,
            Question::Rcpt => {
                code == ReplyCode::OK || code == ReplyCode::USER_NOT_LOCAL_WILL_FORWARD
            }
            Question::Data => code == ReplyCode::START_MAIL_INPUT,
            Question::Bdat => false,
            Question::Auth | Question::AuthCredentials => code == ReplyCode::AUTH_SUCCEEDED,
            Question::Verify => matches!(code.as_u16(), 250..=252),
        };
        if !positive && !code.is_transient_negative() && !code.is_permanent_negative() {
            return Err(UsageError::WrongReplyCode { code, question });
        }
        let awaiting = self.awaiting.take().ok_or(UsageError::NothingToAnswer)?;
        if code == ReplyCode::SERVICE_NOT_AVAILABLE {
            reply.encode(self.output.queue());
            self.close_silently(CloseReason::Shutdown);
            return Ok(());
        }
        if let Awaiting::DataStart(BodyStart::Bdat { size, last }) = awaiting {
            // The refused chunk is still read (RFC 3030 §2); the reply
            // follows it.
            self.state = State::Chunk {
                envelope: None,
                chunk: crate::data::BdatChunk::new(size),
                size,
                last,
                verdict: state::ChunkVerdict::Declined(reply.into_owned()),
            };
            return Ok(());
        }
        reply.encode(self.output.queue());
        match awaiting {
            Awaiting::Mail(envelope) if positive => self.mail_accepted(envelope),
            Awaiting::Rcpt if positive => self.recipient_accepted(),
            Awaiting::DataStart(start) if positive => self.open_body(start),
            Awaiting::DataStart(_) => self.state = State::Command(None),
            Awaiting::MessageEnd { remaining } => self.message_answered(remaining),
            Awaiting::Auth | Awaiting::AuthCredentials => {
                self.authenticated = positive;
                self.sasl.clear();
            }
            Awaiting::Mail(_) | Awaiting::Rcpt | Awaiting::Verify => {}
        }
        Ok(())
    }

    /// Sends a SASL challenge (`334` + base64) for a mechanism the
    /// application runs ([`Event::Auth`], [`Event::AuthResponse`]); the
    /// client's answer arrives as [`Event::AuthResponse`].
    pub fn auth_challenge(&mut self, challenge: &[u8]) -> Result<(), UsageError> {
        match &self.awaiting {
            Some(Awaiting::Auth) => {}
            Some(other) => {
                return Err(UsageError::WrongAnswer {
                    question: other.question(),
                });
            }
            None => return Err(UsageError::NothingToAnswer),
        }
        let max = sasl::max_challenge(self.config.limits.auth_line);
        if challenge.len() > max {
            return Err(UsageError::ChallengeTooLong {
                len: challenge.len(),
            });
        }
        self.awaiting = None;
        replies::write_challenge(self.output.queue(), challenge);
        self.sasl.clear();
        self.enter_sasl(SaslStep::Relay);
        Ok(())
    }

    /// Ends an AUTH exchange successfully (`235 2.7.0`).
    pub fn auth_success(&mut self) -> Result<(), UsageError> {
        match &self.awaiting {
            Some(Awaiting::Auth | Awaiting::AuthCredentials) => self.accept(),
            Some(other) => Err(UsageError::WrongAnswer {
                question: other.question(),
            }),
            None => Err(UsageError::NothingToAnswer),
        }
    }

    /// Ends the session from the application's side: `421 4.3.2` and close
    /// ([`CloseReason::Shutdown`]). An open question is dropped.
    pub fn shutdown(&mut self) -> Result<(), UsageError> {
        match self.state {
            State::Closing(_) | State::Closed => Err(UsageError::Closed),
            State::StartTls | State::Handshake => {
                self.close_silently(CloseReason::Shutdown);
                Ok(())
            }
            _ => {
                self.close_with(&replies::SHUTDOWN, CloseReason::Shutdown);
                Ok(())
            }
        }
    }

    // ----- shared helpers ---------------------------------------------------

    /// Whether automatic replies carry enhanced status codes (RFC 2034 §3).
    fn enhanced(&self) -> bool {
        self.config.offer.enhanced_status_codes
            && matches!(self.greeted, Some(HeloKind::Ehlo | HeloKind::Lhlo))
    }

    /// Queues an automatic reply.
    fn say(&mut self, canned: Canned) {
        let enhanced = self.enhanced();
        replies::write(self.output.queue(), canned, enhanced);
    }

    /// Queues an automatic error reply and counts the error; past the soft
    /// limit the output is held back for the configured delay.
    fn error(&mut self, canned: Canned) {
        self.say(canned);
        self.errors = self.errors.saturating_add(1);
        let limits = self.config.errors;
        if self.errors > limits.soft && !limits.delay.is_zero() {
            self.timers.set(Timer::ErrorDelay, self.now, limits.delay);
        }
    }

    /// Arms the idle timer for the current state.
    fn arm_idle(&mut self) {
        if self.state.reads_peer() && self.awaiting.is_none() {
            let timeout = if self.state.in_content() {
                self.config.timeouts.data
            } else {
                self.config.timeouts.command
            };
            self.timers.set(Timer::Idle, self.now, timeout);
        }
    }

    /// Sends `421 <hostname> text` and closes after it is written.
    fn close_with(&mut self, closing: &replies::Closing, reason: CloseReason) {
        let enhanced = self.enhanced();
        replies::write_closing(
            self.output.queue(),
            closing,
            self.config.hostname.as_str(),
            enhanced,
        );
        self.close_silently(reason);
    }

    /// Closes after the queued output is written, reading nothing more.
    /// The first reason recorded sticks.
    fn close_silently(&mut self, reason: CloseReason) {
        if matches!(self.state, State::Closed) {
            return;
        }
        let reason = *self.close_reason.get_or_insert(reason);
        self.awaiting = None;
        self.input.clear();
        self.facts.clear();
        self.timers.stop(Timer::Idle);
        self.timers.stop(Timer::Handshake);
        self.timers.stop(Timer::ErrorDelay);
        self.timers.stop(Timer::Greeting);
        self.greeting_pending = false;
        self.state = State::Closing(reason);
    }

    /// Plaintext arrived between `STARTTLS` and the handshake.
    fn plaintext_after_starttls(&mut self, n: usize) {
        let n = n + self.input.clear();
        self.discarded += n;
        if self.config.on_injection == InjectionPolicy::Close {
            // Send nothing more, not even the 220.
            self.output.clear();
            self.close_silently(CloseReason::StartTlsInjection { discarded: n });
        }
    }

    /// An accepted MAIL: the transaction is open.
    fn mail_accepted(&mut self, transaction: Transaction) {
        self.state = State::Command(Some(transaction));
        self.envelope_lines.mail_accepted();
    }

    /// An accepted RCPT: one more recipient.
    fn recipient_accepted(&mut self) {
        if let State::Command(Some(envelope)) = &mut self.state {
            envelope.recipients += 1;
            self.envelope_lines.rcpt_accepted();
        }
    }

    /// One final reply given; the transaction is over after the last.
    fn message_answered(&mut self, remaining: usize) {
        if remaining > 1 {
            self.awaiting = Some(Awaiting::MessageEnd {
                remaining: remaining - 1,
            });
        }
    }

    /// Enters a SASL step: response lines may be as long as AUTH allows.
    fn enter_sasl(&mut self, step: SaslStep) {
        self.framer.set_max_len(self.config.limits.auth_line);
        self.state = State::Sasl(step);
    }

    /// Leaves the SASL exchange for command lines.
    fn leave_sasl(&mut self) {
        self.framer.set_max_len(self.config.limits.command_line);
        if matches!(self.state, State::Sasl(_)) {
            self.state = State::Command(None);
        }
    }

    /// The transaction in the current state.
    fn envelope(&self) -> Option<&Transaction> {
        self.state.envelope()
    }

    /// Input ended while the server waited for more: close.
    fn need_more(&mut self) -> Step {
        if self.eof {
            self.close_silently(CloseReason::Eof);
            Step::Continue
        } else {
            Step::Stall
        }
    }
}

impl Session for Server {
    type Event<'a> = Event<'a>;
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

    fn poll(&mut self, now: Instant) -> Output<'_, Event<'_>> {
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

impl Awaiting {
    /// The question, for error reports.
    fn question(&self) -> Question {
        match self {
            Self::Mail(_) => Question::Mail,
            Self::Rcpt => Question::Rcpt,
            Self::DataStart(BodyStart::Data) => Question::Data,
            Self::DataStart(BodyStart::Bdat { .. }) => Question::Bdat,
            Self::MessageEnd { .. } => Question::MessageEnd,
            Self::Auth => Question::Auth,
            Self::AuthCredentials => Question::AuthCredentials,
            Self::Verify => Question::Verify,
        }
    }
}
