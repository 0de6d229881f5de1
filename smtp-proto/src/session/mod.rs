//! The one contract of both sessions: what a transport calls, in which
//! order, with which time — and a generic helper that drives either side.
//!
//! [`Client`](crate::client::Client) and [`Server`](crate::server::Server)
//! have the same method set with the same shapes, written down as the
//! [`Session`] trait (both also have the methods inherently, so a program
//! need not import the trait). A transport is therefore one loop, whichever
//! side it drives:
//!
//! 1. **drain**: call `poll(now)` until [`Output::Wait`]. Write each
//!    [`Output::Transmit`] and report what the socket took with
//!    `advance_transmit(now, n)`; on [`Output::StartTls`] run the TLS
//!    handshake and report it with `handle_tls_established(now, info)`;
//!    hand each [`Output::Event`] to the application;
//! 2. **apply** what the application decided (the server's answers, the
//!    client's commands and body), and drain again;
//! 3. **wait** for input (at most `read_capacity()` bytes, handed to
//!    `handle_input(now, ..)`, which says how many it took), for the end of
//!    the stream (`handle_eof(now)`) or for the `Wait` deadline
//!    (`handle_timeout(now)`).
//!
//! [`drive`] is step 1 as a function over a [`Transport`]; the examples
//! below are complete loops, for a server and for a client. The tests'
//! in-memory pair, the std-net test servers and the blocking client use
//! it; the mio server keeps a loop of its own for reasons given in its
//! module docs.
//!
//! # The time rule
//!
//! **Every method that may change state takes `now`**: the inputs
//! (`handle_input`, `handle_eof`, `handle_timeout`,
//! `handle_tls_established`), the write report (`advance_transmit`) — and
//! `poll(now)`, on both sides. The session never reads a clock; time is an
//! argument like bytes are, so a session is replayable and its timeouts are
//! testable on a virtual clock. The anchors are quinn-proto, whose
//! `poll_transmit(now, ..)` and `handle_timeout(now)` take the time, and
//! str0m, which passes the time with every input.
//!
//! Why `poll` takes it too: the server does its work lazily in `poll` — it
//! parses the next pipelined command only once the previous one is
//! answered, which is how it applies backpressure — so a deadline armed
//! there (the idle timer once a reply is queued, the send timer when it
//! offers a transmit, the handshake timer when it hands out
//! [`Output::StartTls`]) needs the time at that moment, not the time of
//! the last input. The client takes it as well, so that one loop shape
//! drives both sides and work can move into its `poll` later without an
//! API break; today it arms its handshake timer there.
//!
//! `now` must not go backwards (pass a monotonic [`Instant`]). Spurious
//! `handle_timeout` calls are harmless.
//!
//! # Errors that stick, and misuse
//!
//! A session ends once and says why: [`Session::close_reason`] is set when
//! closing starts and never changes afterwards (the server's
//! [`CloseReason`](crate::server::CloseReason), the client's
//! [`CloseReason`](crate::client::CloseReason)). A transport that reports
//! more bytes written than were offered, or a handshake nobody asked for,
//! gets a [`DriveError`] and nothing changes — on both sides.
//!
//! # A server, driven
//!
//! ```
//! use std::io;
//! use std::time::Instant;
//!
//! use smtp_proto::TlsInfo;
//! use smtp_proto::address::Domain;
//! use smtp_proto::server::{CloseReason, Config, Server};
//! use smtp_proto::session::{self, Drained, Transport};
//!
//! /// The byte pipe: here a vector standing in for a socket.
//! struct Wire(Vec<u8>);
//!
//! impl Transport for Wire {
//!     type Error = io::Error;
//!     fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
//!         self.0.extend_from_slice(bytes);
//!         Ok(bytes.len())
//!     }
//!     fn start_tls(&mut self) -> io::Result<Option<TlsInfo>> {
//!         Err(io::Error::other("no TLS on this wire"))
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut server = Server::new(Config::new(Domain::new("mx.example.org")?), Instant::now());
//! let mut wire = Wire(Vec::new());
//! // What the client sends, read by read.
//! // (One group per read: a client that does not wait after EHLO is refused,
//! // see `server::SyncPoint`.)
//! let mut reads = [&b"EHLO client.example\r\n"[..], b"MAIL FROM:<a@example.org>\r\n", b"QUIT\r\n"].into_iter();
//! let mut unread: &[u8] = &[];
//! loop {
//!     // 1. Drain: the transport writes, the callback notes the answers.
//!     let mut answers = 0;
//!     let drained = session::drive(&mut server, Instant::now(), &mut wire, |event| {
//!         if event.needs_answer() {
//!             answers += 1; // MAIL, RCPT, DATA, ...: this application accepts all
//!         }
//!     })?;
//!     // 2. Apply the answers; the session may have more to say.
//!     for _ in 0..answers {
//!         server.accept()?;
//!     }
//!     if answers > 0 {
//!         continue;
//!     }
//!     // 3. Wait. A socket transport reads at most `server.read_capacity()`
//!     //    bytes with the deadline as its timeout, and calls
//!     //    `handle_timeout(now)` when the deadline passes.
//!     match drained {
//!         Drained::Wait { deadline: _ } => {
//!             if unread.is_empty() {
//!                 match reads.next() {
//!                     Some(bytes) => unread = bytes,
//!                     None => {
//!                         server.handle_eof(Instant::now());
//!                         continue;
//!                     }
//!                 }
//!             }
//!             let taken = server.handle_input(Instant::now(), unread);
//!             unread = &unread[taken..]; // offered again after the next drain
//!         }
//!         Drained::Closed => break,
//!         Drained::WriteBlocked | Drained::Handshake => unreachable!("a Vec takes all; no TLS"),
//!         _ => unreachable!("a later kind of wait"),
//!     }
//! }
//! let text = String::from_utf8(wire.0)?;
//! assert!(text.starts_with("220 mx.example.org ESMTP\r\n250-mx.example.org\r\n"));
//! assert!(text.contains("\r\n250 2.1.0 Sender ok\r\n221 2.0.0 mx.example.org Service closing"));
//! assert_eq!(server.close_reason(), Some(&CloseReason::Quit));
//! # Ok(())
//! # }
//! ```
//!
//! # A client, driven
//!
//! The same loop; the application's part is to enqueue commands and write
//! bodies when the events say so.
//!
//! ```
//! # use std::io;
//! # use smtp_proto::TlsInfo;
//! # use smtp_proto::session::Transport;
//! # struct Wire(Vec<u8>);
//! # impl Transport for Wire {
//! #     type Error = io::Error;
//! #     fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
//! #         self.0.extend_from_slice(bytes);
//! #         Ok(bytes.len())
//! #     }
//! #     fn start_tls(&mut self) -> io::Result<Option<TlsInfo>> {
//! #         Err(io::Error::other("no TLS on this wire"))
//! #     }
//! # }
//! use std::time::Instant;
//!
//! use smtp_proto::TlsMode;
//! use smtp_proto::address::Host;
//! use smtp_proto::client::{self, Client, CloseReason, Event};
//! use smtp_proto::command::Command;
//! use smtp_proto::session::{self, Drained};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = client::Config::new(Host::parse("client.example")?);
//! config.tls = TlsMode::Disabled; // this scripted server has no TLS
//! let mut client = Client::new(config, Instant::now());
//! let mut wire = Wire(Vec::new());
//! // What the server answers, read by read.
//! let mut reads = [&b"220 mx.example.org ESMTP\r\n"[..], b"250 mx.example.org\r\n", b"221 2.0.0 Bye\r\n"]
//!     .into_iter();
//! let mut unread: &[u8] = &[];
//! let mut events = Vec::new();
//! loop {
//!     // 1. Drain: the transport writes, the callback keeps the events.
//!     let drained = session::drive(&mut client, Instant::now(), &mut wire, |event| events.push(event))?;
//!     // 2. Act on them (enqueue, start_body, write_body, ...); drain again.
//!     let acted = !events.is_empty();
//!     for event in events.drain(..) {
//!         if event == Event::Ready {
//!             client.enqueue(Command::Quit)?;
//!         }
//!     }
//!     if acted {
//!         continue;
//!     }
//!     // 3. Wait, as for the server.
//!     match drained {
//!         Drained::Wait { deadline: _ } => {
//!             if unread.is_empty() {
//!                 match reads.next() {
//!                     Some(bytes) => unread = bytes,
//!                     None => {
//!                         client.handle_eof(Instant::now());
//!                         continue;
//!                     }
//!                 }
//!             }
//!             let taken = client.handle_input(Instant::now(), unread);
//!             unread = &unread[taken..];
//!         }
//!         Drained::Closed => break,
//!         Drained::WriteBlocked | Drained::Handshake => unreachable!("a Vec takes all; no TLS"),
//!         _ => unreachable!("a later kind of wait"),
//!     }
//! }
//! assert_eq!(wire.0, b"EHLO client.example\r\nQUIT\r\n");
//! assert_eq!(client.close_reason(), Some(&CloseReason::Quit));
//! # Ok(())
//! # }
//! ```

mod drive;
mod output;
mod vocabulary;

use std::fmt;
use std::time::Instant;

use thiserror::Error;

pub use drive::{Drained, Transport, drive};
pub use output::{Output, TlsInfo};
pub use vocabulary::{BodyMode, InjectionPolicy, Protocol, TlsMode};

/// A transport's mistake, refused by either session; the call changed
/// nothing.
///
/// These are bugs in the code that moves bytes, never the peer's doing
/// (the peer's mistakes end the session with a
/// [`close_reason`](Session::close_reason)), and never the application's
/// (those are each side's `UsageError`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DriveError {
    /// `advance_transmit` reported more bytes than were offered.
    #[error("advanced by {advanced} bytes but only {pending} were pending")]
    TransmitOverrun {
        /// Bytes reported written.
        advanced: usize,
        /// Bytes that were pending.
        pending: usize,
    },
    /// `handle_tls_established` without a preceding [`Output::StartTls`].
    #[error("no TLS handshake was requested")]
    NoHandshakePending,
}

impl From<DriveError> for std::io::Error {
    fn from(e: DriveError) -> Self {
        Self::other(e)
    }
}

/// The contract both sessions implement; see the [module docs](self) for
/// the loop and the time rule.
///
/// [`Client`](crate::client::Client) and [`Server`](crate::server::Server)
/// have every method inherently too, with the same names and shapes; the
/// trait is for code that drives either, like [`drive`].
pub trait Session {
    /// What the session tells the application: the server's events borrow
    /// its input buffer, the client's are owned.
    type Event<'a>
    where
        Self: 'a;
    /// Why the session ended.
    type CloseReason: fmt::Debug;

    /// How many bytes [`handle_input`](Session::handle_input) takes now;
    /// read no more than this. Zero while the session reads nothing (a TLS
    /// handshake, a full input buffer, the end).
    fn read_capacity(&self) -> usize;
    /// Bytes received; returns how many were taken (keep the rest and offer
    /// it again after the next drain).
    #[must_use = "bytes not taken must be offered again"]
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> usize;
    /// The peer closed its sending side (or the connection broke).
    fn handle_eof(&mut self, now: Instant);
    /// Time has passed: fires every timer due at `now`. Spurious calls are
    /// harmless.
    fn handle_timeout(&mut self, now: Instant);
    /// The TLS handshake asked for by [`Output::StartTls`] completed.
    ///
    /// # Errors
    ///
    /// [`DriveError::NoHandshakePending`] when none was asked for.
    fn handle_tls_established(&mut self, now: Instant, info: TlsInfo) -> Result<(), DriveError>;
    /// The next thing to do; call until [`Output::Wait`].
    fn poll(&mut self, now: Instant) -> Output<'_, Self::Event<'_>>;
    /// The transport wrote `n` bytes of the last [`Output::Transmit`].
    ///
    /// # Errors
    ///
    /// [`DriveError::TransmitOverrun`] when `n` is more than was offered.
    fn advance_transmit(&mut self, now: Instant, n: usize) -> Result<(), DriveError>;
    /// The earliest deadline at which `handle_timeout` must be called.
    fn next_timeout(&self) -> Option<Instant>;
    /// Whether the session runs over TLS.
    fn is_tls(&self) -> bool;
    /// What the transport reported about the TLS session.
    fn tls_info(&self) -> Option<&TlsInfo>;
    /// Whether the session is over (the transport closes the connection).
    fn is_closed(&self) -> bool;
    /// Why the session ends: set when closing starts (before the last bytes
    /// are written) and never changed afterwards.
    fn close_reason(&self) -> Option<&Self::CloseReason>;
}
