//! In-memory harnesses for the client session on a virtual clock.
//!
//! - [`ClientDriver`]: a [`Client`] against scripted server bytes. The test
//!   feeds replies (whole, byte by byte, or split at an index), the driver
//!   drains `poll()` exactly as a transport would — collecting events,
//!   "writing" every transmit, noting a STARTTLS request — and moves the
//!   clock to the next deadline when asked. Nothing ever sleeps.
//!
//! Time is virtual: [`ClientDriver::now`] starts at a fixed `Instant` and
//! only moves when a test moves it.

use std::time::{Duration, Instant};

use smtp_proto::Output;
use smtp_proto::client::{Client, Config, Error, Event};

/// How received bytes are cut into reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// One read.
    Whole,
    /// One read per byte.
    Bytes,
    /// Two reads, the first of this many bytes.
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
        };
        d.drain();
        d
    }

    /// Drains `poll()` until `Wait`: records events, writes transmits (at
    /// most `write_limit` bytes in all; then the "socket" is full and the
    /// drain stops), notes STARTTLS. Returns the deadline of the final
    /// `Wait`.
    pub fn drain(&mut self) -> Option<Instant> {
        let mut budget = self.write_limit;
        // Bounded: a correct client reaches Wait; a runaway loop fails the
        // test instead of hanging it.
        for _ in 0..1_000_000 {
            match self.client.poll() {
                Output::Event(e) => self.events.push(e),
                Output::Transmit(bytes) => {
                    let n = bytes.len().min(budget);
                    self.max_transmit = self.max_transmit.max(bytes.len());
                    self.sent.extend_from_slice(&bytes[..n]);
                    self.client.advance_transmit(self.now, n);
                    budget -= n;
                    if budget == 0 {
                        return self.client.next_timeout();
                    }
                }
                Output::StartTls => self.starttls += 1,
                Output::Wait { deadline } => return deadline,
                _ => panic!("unknown output"),
            }
        }
        panic!("client never reached Wait");
    }

    /// Feeds server bytes, cut as `split` says. Drains first (a transport
    /// drains after every application call, so what the client had to say
    /// is on the wire before the server answers) and after each read.
    pub fn feed_split(&mut self, bytes: &[u8], split: Split) {
        self.drain();
        for seg in segments(bytes, split) {
            self.client.handle_input(self.now, seg);
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
        self.client
            .handle_tls_established(self.now, smtp_proto::TlsInfo::default());
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
