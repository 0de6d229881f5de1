//! In-memory harnesses for the client session on a virtual clock.
//!
//! - [`ClientDriver`]: a [`Client`] against scripted server bytes. The test
//!   feeds replies (whole, byte by byte, or split at an index), the driver
//!   drains the session with [`session::drive`] exactly as a transport
//!   would — collecting events, "writing" every transmit, noting a
//!   STARTTLS request — and moves the clock to the next deadline when
//!   asked. This is the hostile-server harness: the script can be
//!   anything.
//! - [`Pair`]: a [`Client`] and a [`Server`] connected in memory, the
//!   server's application scripted by [`ServerApp`]. Both sides are
//!   drained by the same generic [`session::drive`] over the same
//!   in-memory [`Transport`]. Bytes move whole, byte by byte, or in pieces
//!   of a given size; a TLS "handshake" (STARTTLS or implicit) completes
//!   when both sides asked for it.
//!
//! Time is virtual: `now` starts at an `Instant` taken once and only moves
//! when a test moves it (to the earliest deadline, when both sides wait).
//! Nothing ever sleeps.

use std::time::{Duration, Instant};

use smtp_proto::client::{Client, Config, Error, Event};
use smtp_proto::session::{self, Drained, Transport};
use smtp_proto::{DriveError, Session, TlsInfo};

/// How received bytes are cut into reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// One read.
    Whole,
    /// One read per byte.
    Bytes,
    /// Reads of this many bytes (for a [`ClientDriver`] feed: two reads,
    /// the first of this many bytes).
    At(usize),
}

/// Splits `bytes` into reads.
pub fn segments(bytes: &[u8], split: Split) -> Vec<&[u8]> {
    match split {
        Split::Whole => vec![bytes],
        Split::Bytes => bytes.chunks(1).collect(),
        Split::At(i) => {
            let i = i.min(bytes.len());
            vec![&bytes[..i], &bytes[i..]]
        }
    }
}

/// A client session driven against scripted server bytes.
#[derive(Debug)]
pub struct ClientDriver {
    /// The session under test.
    pub client: Client,
    /// The virtual clock.
    pub now: Instant,
    /// Every byte the client transmitted, in order.
    pub sent: Vec<u8>,
    /// Position in `sent` up to which [`ClientDriver::take_sent`] returned.
    taken: usize,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// How many times the client asked for a TLS handshake.
    pub starttls: usize,
    /// Largest single transmit seen (to check bounded buffers).
    pub max_transmit: usize,
    /// Write at most this many bytes per [`ClientDriver::drain`] (a slow
    /// socket); `usize::MAX` by default.
    pub write_limit: usize,
    /// Transport misuse the session refused (a bug in the harness).
    pub drive_errors: Vec<DriveError>,
}

/// The [`ClientDriver`]'s socket: takes what the budget allows, and notes
/// a TLS request (the test completes the handshake).
struct DriverWire<'a> {
    sent: &'a mut Vec<u8>,
    budget: usize,
    max_transmit: &'a mut usize,
    starttls: &'a mut usize,
}

impl Transport for DriverWire<'_> {
    type Error = DriveError;

    fn write(&mut self, bytes: &[u8]) -> Result<usize, DriveError> {
        *self.max_transmit = (*self.max_transmit).max(bytes.len());
        let n = bytes.len().min(self.budget);
        self.sent.extend_from_slice(&bytes[..n]);
        self.budget -= n;
        Ok(n)
    }

    fn start_tls(&mut self) -> Result<Option<TlsInfo>, DriveError> {
        *self.starttls += 1;
        Ok(None)
    }
}

impl ClientDriver {
    /// A client created now with `config`, drained once.
    pub fn new(config: Config) -> Self {
        let now = Instant::now();
        let mut d = Self {
            client: Client::new(config, now),
            now,
            sent: Vec::new(),
            taken: 0,
            events: Vec::new(),
            starttls: 0,
            max_transmit: 0,
            write_limit: usize::MAX,
            drive_errors: Vec::new(),
        };
        d.drain();
        d
    }

    /// Drains the session with [`session::drive`]: records events, writes
    /// transmits (at most `write_limit` bytes in all; then the "socket" is
    /// full and the drain stops), notes STARTTLS. Returns the session's
    /// next deadline.
    pub fn drain(&mut self) -> Option<Instant> {
        let mut wire = DriverWire {
            sent: &mut self.sent,
            budget: self.write_limit,
            max_transmit: &mut self.max_transmit,
            starttls: &mut self.starttls,
        };
        let events = &mut self.events;
        let before = events.len();
        let drained = session::drive(&mut self.client, self.now, &mut wire, |e| {
            // A correct client reaches a wait; a runaway one fails the test
            // instead of hanging it.
            assert!(
                events.len() - before < 1_000_000,
                "client never reached Wait"
            );
            events.push(e);
        });
        match drained {
            Ok(Drained::Wait { deadline }) => deadline,
            Ok(_) => self.client.next_timeout(),
            Err(e) => {
                self.drive_errors.push(e);
                self.client.next_timeout()
            }
        }
    }

    /// Feeds server bytes, cut as `split` says. Drains first (a transport
    /// drains after every application call, so what the client had to say
    /// is on the wire before the server answers) and after each read.
    pub fn feed_split(&mut self, bytes: &[u8], split: Split) {
        self.drain();
        for seg in segments(bytes, split) {
            let taken = self.client.handle_input(self.now, seg);
            assert_eq!(taken, seg.len(), "the client takes every byte");
            self.drain();
        }
    }

    /// Feeds server bytes in one read.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.feed_split(bytes, Split::Whole);
    }

    /// The server closes the connection.
    pub fn eof(&mut self) {
        self.client.handle_eof(self.now);
        self.drain();
    }

    /// Completes a requested TLS handshake.
    pub fn tls_established(&mut self) {
        if let Err(e) = self
            .client
            .handle_tls_established(self.now, TlsInfo::default())
        {
            self.drive_errors.push(e);
        }
        self.drain();
    }

    /// Moves the clock by `d` and fires timers.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.client.handle_timeout(self.now);
        self.drain();
    }

    /// Moves the clock to the next deadline, if any, and fires it. Returns
    /// how far the clock moved.
    pub fn advance_to_deadline(&mut self) -> Option<Duration> {
        let deadline = self.client.next_timeout()?;
        let moved = deadline.saturating_duration_since(self.now);
        self.now = self.now.max(deadline);
        self.client.handle_timeout(self.now);
        self.drain();
        Some(moved)
    }

    /// The bytes transmitted since the last call.
    pub fn take_sent(&mut self) -> Vec<u8> {
        let out = self.sent[self.taken..].to_vec();
        self.taken = self.sent.len();
        out
    }

    /// The transmitted bytes since the last call, as text.
    pub fn take_sent_text(&mut self) -> String {
        String::from_utf8_lossy(&self.take_sent()).into_owned()
    }

    /// The events since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Whether an event matching `f` was recorded (and not yet taken).
    pub fn saw(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(f)
    }

    /// The session error, if any.
    pub fn error(&self) -> Option<&Error> {
        self.client.error()
    }
}

// ---- Client against server ---------------------------------------------

use smtp_proto::client;
use smtp_proto::reply::{EnhancedStatusCode, Reply, ReplyCode};
use smtp_proto::server::{self, Server};

/// The scripted application behind the [`Pair`]'s server: it accepts
/// everything except what it is told to refuse, and keeps what it received.
#[derive(Debug, Default)]
pub struct ServerApp {
    /// Recipients (the address text, e.g. `x@example.net`) answered `550`.
    pub refuse_rcpt: Vec<String>,
    /// Recipients answered `452` (temporary).
    pub defer_rcpt: Vec<String>,
    /// Answer DATA (or the first BDAT) with `554`.
    pub refuse_data: bool,
    /// The password AUTH PLAIN / LOGIN accepts.
    pub password: String,
    /// For a pass-through SASL mechanism: the challenge sent after AUTH,
    /// and the response that succeeds (anything else gets `535`).
    pub sasl: Option<(Vec<u8>, Vec<u8>)>,
    /// Never answer MAIL (a server stuck in a policy lookup).
    pub stall_mail: bool,
    /// Bodies of the messages received, complete.
    pub messages: Vec<Vec<u8>>,
    /// The body being received.
    current: Vec<u8>,
    /// Every server event, as debug text.
    pub log: Vec<String>,
    /// Answers the server refused (a bug in the test or the server).
    pub usage_errors: Vec<String>,
}

enum Answer {
    None,
    Challenge(Vec<u8>),
    Accept,
    AcceptAll,
    Reply(u16, (u8, u16, u16), &'static str),
    AuthSuccess,
}

/// One side's end of the in-memory connection: every write is taken whole
/// and put in transit to the other side; a TLS request is noted and
/// completes when both sides made one (see [`Pair::run`]).
struct PairWire<'a> {
    /// Everything this side wrote, for the test to read.
    written: &'a mut Vec<u8>,
    /// Bytes on their way to the other side.
    in_transit: &'a mut Vec<u8>,
    tls: &'a mut bool,
    moved: bool,
}

impl<'a> PairWire<'a> {
    /// One side's end of the wire: what it wrote, what is in transit to
    /// the other side, whether it asked for the TLS handshake.
    fn new(written: &'a mut Vec<u8>, in_transit: &'a mut Vec<u8>, tls: &'a mut bool) -> Self {
        Self {
            written,
            in_transit,
            tls,
            moved: false,
        }
    }
}

impl Transport for PairWire<'_> {
    type Error = DriveError;

    fn write(&mut self, bytes: &[u8]) -> Result<usize, DriveError> {
        self.written.extend_from_slice(bytes);
        self.in_transit.extend_from_slice(bytes);
        self.moved |= !bytes.is_empty();
        Ok(bytes.len())
    }

    fn start_tls(&mut self) -> Result<Option<TlsInfo>, DriveError> {
        *self.tls = true;
        self.moved = true;
        Ok(None)
    }
}

/// A client and a server session connected in memory, on a virtual clock.
///
/// Bytes written by one side are handed to the other, cut as
/// [`Pair::split`] says; the server's events are answered by
/// [`Pair::app`]; a STARTTLS request completes when both sides asked for
/// it. [`Pair::run`] moves bytes until neither side has anything to do;
/// [`Pair::advance_to_deadline`] then moves the clock to the earliest
/// deadline of the two. Nothing sleeps.
#[derive(Debug)]
pub struct Pair {
    /// The client session.
    pub client: Client,
    /// The server session.
    pub server: Server,
    /// The virtual clock.
    pub now: Instant,
    /// How bytes are cut on the way.
    pub split: Split,
    /// The server's application.
    pub app: ServerApp,
    /// Client events, in order.
    pub client_events: Vec<Event>,
    /// Client-to-server bytes, as written.
    pub c2s: Vec<u8>,
    /// Server-to-client bytes, as written.
    pub s2c: Vec<u8>,
    /// Bytes on their way to the server (not taken yet).
    to_server: Vec<u8>,
    /// Bytes on their way to the client.
    to_client: Vec<u8>,
    client_tls: bool,
    server_tls: bool,
    /// Whether the client's transport has closed the connection.
    pub client_closed: bool,
    /// Whether the server's transport has closed the connection.
    pub server_closed: bool,
    /// Whether the server was told the client closed.
    server_eof: bool,
    /// Whether the client was told the server closed.
    client_eof: bool,
}

impl Pair {
    /// A connected pair at a fixed virtual time.
    pub fn new(client_config: Config, server_config: server::Config) -> Self {
        let now = Instant::now();
        Self {
            client: Client::new(client_config, now),
            server: Server::new(server_config, now),
            now,
            split: Split::Whole,
            app: ServerApp::default(),
            client_events: Vec::new(),
            c2s: Vec::new(),
            s2c: Vec::new(),
            to_server: Vec::new(),
            to_client: Vec::new(),
            client_tls: false,
            server_tls: false,
            client_closed: false,
            server_closed: false,
            server_eof: false,
            client_eof: false,
        }
    }

    /// Moves bytes and answers events until neither side makes progress.
    pub fn run(&mut self) {
        for _ in 0..1_000_000 {
            let mut progress = self.drain_client();
            progress |= self.drain_server();
            if self.client_tls && self.server_tls {
                self.client_tls = false;
                self.server_tls = false;
                let info = TlsInfo::default();
                if let Err(e) = self.client.handle_tls_established(self.now, info.clone()) {
                    self.app.usage_errors.push(format!("client tls: {e:?}"));
                }
                if let Err(e) = self.server.handle_tls_established(self.now, info) {
                    self.app.usage_errors.push(format!("tls: {e:?}"));
                }
                progress = true;
            }
            progress |= self.deliver();
            if !progress {
                return;
            }
        }
        panic!("the pair never settled");
    }

    /// Moves the clock to the earliest deadline of either side, fires it
    /// and runs. Returns how far the clock moved, or `None` if neither side
    /// has a deadline.
    pub fn advance_to_deadline(&mut self) -> Option<Duration> {
        let deadline = match (self.client.next_timeout(), self.server.next_timeout()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        let moved = deadline.saturating_duration_since(self.now);
        self.now = self.now.max(deadline);
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.run();
        Some(moved)
    }

    /// Drains the client with [`session::drive`]; whether anything moved.
    fn drain_client(&mut self) -> bool {
        let mut wire = PairWire::new(&mut self.c2s, &mut self.to_server, &mut self.client_tls);
        let events = &mut self.client_events;
        let closed = &mut self.client_closed;
        let mut seen = false;
        let drained = session::drive(&mut self.client, self.now, &mut wire, |e| {
            if e == Event::Closed {
                *closed = true;
            }
            events.push(e);
            seen = true;
        });
        if let Err(e) = drained {
            self.app.usage_errors.push(format!("client drive: {e:?}"));
        }
        wire.moved || seen
    }

    /// Drains the server with the same [`session::drive`]; its
    /// application's answers are applied after the drain (the callback
    /// cannot touch the session), then it is drained again.
    fn drain_server(&mut self) -> bool {
        let mut progress = false;
        loop {
            let mut wire = PairWire::new(&mut self.s2c, &mut self.to_client, &mut self.server_tls);
            let app = &mut self.app;
            let closed = &mut self.server_closed;
            let mut answers = Vec::new();
            let drained = session::drive(&mut self.server, self.now, &mut wire, |e| {
                app.log.push(format!("{e:?}"));
                answers.push(Self::answer(app, &e, closed));
            });
            progress |= wire.moved || !answers.is_empty();
            if let Err(e) = drained {
                self.app.usage_errors.push(format!("advance: {e:?}"));
            }
            let mut answered = false;
            for answer in answers {
                answered |= !matches!(answer, Answer::None);
                if let Err(e) = self.apply(answer) {
                    self.app.usage_errors.push(format!("{e:?}"));
                }
            }
            if !answered {
                return progress;
            }
        }
    }

    /// Gives one answer of the scripted application to the server.
    fn apply(&mut self, answer: Answer) -> Result<(), server::UsageError> {
        match answer {
            Answer::None => Ok(()),
            Answer::Accept => self.server.accept(),
            Answer::AcceptAll => {
                let mut r = self.server.accept();
                while r.is_ok() {
                    r = self.server.accept();
                    if matches!(r, Err(server::UsageError::NothingToAnswer)) {
                        r = Ok(());
                        break;
                    }
                }
                r
            }
            Answer::AuthSuccess => self.server.auth_success(),
            Answer::Challenge(c) => self.server.auth_challenge(&c),
            Answer::Reply(code, (c, s, d), text) => {
                // Test replies are built from constants: valid by construction.
                let reply = Reply::with_enhanced(
                    ReplyCode::new(code).expect("valid code"),
                    EnhancedStatusCode::new(c, s, d).expect("valid enhanced code"),
                    text,
                )
                .expect("valid text");
                self.server.reply(reply)
            }
        }
    }

    fn answer(app: &mut ServerApp, e: &server::Event<'_>, closed: &mut bool) -> Answer {
        match e {
            server::Event::Mail { .. } => {
                app.current.clear();
                if app.stall_mail {
                    Answer::None
                } else {
                    Answer::Accept
                }
            }
            server::Event::Auth { .. } => match &app.sasl {
                Some((challenge, _)) => Answer::Challenge(challenge.clone()),
                None => Answer::Reply(504, (5, 5, 4), "unrecognized mechanism"),
            },
            server::Event::AuthResponse(response) => match &app.sasl {
                Some((_, expected)) if response.expose() == &expected.as_slice() => {
                    Answer::AuthSuccess
                }
                _ => Answer::Reply(535, (5, 7, 8), "bad credentials"),
            },
            server::Event::Rcpt { to, .. } => {
                let text = to.to_string();
                let bare = text.trim_start_matches('<').trim_end_matches('>');
                if app.refuse_rcpt.iter().any(|r| r == bare) {
                    Answer::Reply(550, (5, 1, 1), "no such user")
                } else if app.defer_rcpt.iter().any(|r| r == bare) {
                    Answer::Reply(452, (4, 2, 2), "over quota")
                } else {
                    Answer::Accept
                }
            }
            server::Event::DataStart { .. } => {
                if app.refuse_data {
                    Answer::Reply(554, (5, 7, 1), "not today")
                } else {
                    Answer::Accept
                }
            }
            server::Event::Body(b) => {
                app.current.extend_from_slice(b);
                Answer::None
            }
            server::Event::MessageEnd { .. } => {
                app.messages.push(std::mem::take(&mut app.current));
                Answer::AcceptAll
            }
            server::Event::AuthPlain { password, .. }
            | server::Event::AuthLogin { password, .. } => {
                if *password.expose() == app.password {
                    Answer::AuthSuccess
                } else {
                    Answer::Reply(535, (5, 7, 8), "bad credentials")
                }
            }
            server::Event::Vrfy { .. } | server::Event::Expn { .. } => Answer::Accept,
            server::Event::Closed { .. } => {
                *closed = true;
                Answer::None
            }
            _ => Answer::None,
        }
    }

    /// Hands bytes in transit to the other side, cut as `split` says.
    fn deliver(&mut self) -> bool {
        let to_server = hand_over(
            &mut self.server,
            self.now,
            self.split,
            &mut self.to_server,
            self.server_closed,
            self.client_closed,
            &mut self.server_eof,
        );
        let to_client = hand_over(
            &mut self.client,
            self.now,
            self.split,
            &mut self.to_client,
            self.client_closed,
            self.server_closed,
            &mut self.client_eof,
        );
        to_server || to_client
    }

    /// Runs one mail transaction of `body` (written in pieces of `piece`
    /// bytes) for `envelope` on a ready client, and returns its report.
    pub fn deliver_message(
        &mut self,
        envelope: client::Envelope,
        body: &[u8],
        piece: usize,
    ) -> Result<client::TransactionReport, client::UsageError> {
        let mut transaction = client::MailTransaction::start(&mut self.client, envelope)?;
        let mut seen = self.client_events.len();
        let mut written = 0;
        let mut writing = false;
        let mut finished = false;
        for _ in 0..1_000_000 {
            self.run();
            let events: Vec<Event> = self.client_events[seen..].to_vec();
            seen = self.client_events.len();
            for e in &events {
                if *e == Event::ReadyForBody {
                    writing = true;
                }
                if let Some(report) = transaction.handle_event(&mut self.client, e) {
                    self.run();
                    return Ok(report);
                }
            }
            if writing && !finished {
                if written < body.len() {
                    let end = (written + piece.max(1)).min(body.len());
                    written += self.client.write_body(&body[written..end])?;
                } else {
                    self.client.finish_body()?;
                    finished = true;
                }
                continue;
            }
            if events.is_empty() && self.advance_to_deadline().is_none() {
                panic!("delivery stalled without a deadline");
            }
        }
        panic!("delivery never finished");
    }
}

/// Hands the bytes in `transit` to `receiver` (one piece, cut as `split`
/// says) while the receiver's transport is open; once the sender's
/// transport has closed and every byte was taken, reports the end of
/// input, once (`eof_told`). Whether anything moved.
fn hand_over<S: Session + ?Sized>(
    receiver: &mut S,
    now: Instant,
    split: Split,
    transit: &mut Vec<u8>,
    receiver_closed: bool,
    sender_closed: bool,
    eof_told: &mut bool,
) -> bool {
    if !transit.is_empty() && !receiver_closed {
        let take = match split {
            Split::Whole => transit.len(),
            Split::Bytes => 1,
            Split::At(i) => i.clamp(1, transit.len()),
        }
        .min(transit.len());
        let n = receiver.handle_input(now, &transit[..take]);
        transit.drain(..n);
        n > 0
    } else if sender_closed && !*eof_told && transit.is_empty() {
        // The sender's transport closed the connection.
        receiver.handle_eof(now);
        *eof_told = true;
        true
    } else {
        false
    }
}
