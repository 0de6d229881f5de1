//! The envelope of the open mail transaction (RFC 5321 §2.3.1: "the
//! originator address, one or more recipient addresses, and optional
//! protocol extension material"), as the application sees it at
//! [`Event::DataStart`](super::Event::DataStart),
//! [`Event::MessageEnd`](super::Event::MessageEnd) and, when the
//! transaction ends without a final reply, [`Event::Reset`](super::Event::Reset).
//!
//! The session knows the envelope anyway — it decides which `MAIL` and
//! `RCPT` count — so an application need not track the commands itself,
//! nor remember to forget them on `RSET`, a new `EHLO` or a refused
//! message. The commands' own events borrow the input buffer, which moves
//! on, so the session keeps the *text* of each command that counts: the
//! accepted `MAIL` line and one line per accepted `RCPT`, CRLF-separated,
//! in one buffer per session that is cleared (not freed) at each `MAIL`.
//! After the first transaction of a connection that costs no allocation,
//! and a command is copied once, a few dozen bytes. [`Envelope`] is a view
//! over that text that parses a line when asked: an application that
//! looks at nothing pays nothing, and what it looks at borrows from the
//! session, like every other event.
//!
//! The buffer holds at most one `MAIL` line and
//! [`Limits::max_recipients`](super::Limits::max_recipients) `RCPT` lines
//! (each at most [`Limits::command_line`](super::Limits::command_line)
//! octets); after a large envelope it is shrunk back to the idle size of
//! the session's other buffers when the transaction ends.

use std::fmt;

use crate::address::{ForwardPath, ReversePath};
use crate::command::{Command, MailParameters, RcptParameters};

use super::buffer::IDLE_CAPACITY;

/// Room for a typical envelope (a `MAIL` and a few `RCPT` lines), reserved
/// at once so that it is one allocation per session.
const TYPICAL: usize = 256;

/// The text of the open transaction's accepted `MAIL` and `RCPT` commands,
/// and of one command awaiting its answer after them.
#[derive(Debug, Default)]
pub(crate) struct EnvelopeLines {
    /// Command lines, each without its CRLF and followed by one.
    buf: Vec<u8>,
    /// How much of `buf` the envelope holds (the accepted commands); a
    /// command awaiting its answer follows.
    accepted: usize,
    /// Accepted `RCPT` lines.
    recipients: usize,
}

impl EnvelopeLines {
    /// A `MAIL` command is put to the application: a new envelope starts
    /// with it (still awaiting its answer).
    pub(crate) fn mail(&mut self, line: &[u8]) {
        self.buf.clear();
        self.accepted = 0;
        self.recipients = 0;
        self.push(line);
    }

    /// An `RCPT` command is put to the application (after a refused one,
    /// whose line it replaces).
    pub(crate) fn rcpt(&mut self, line: &[u8]) {
        self.buf.truncate(self.accepted);
        self.push(line);
    }

    /// The `MAIL` was accepted: the envelope is open.
    pub(crate) fn mail_accepted(&mut self) {
        self.accepted = self.buf.len();
    }

    /// The `RCPT` was accepted: one more recipient.
    pub(crate) fn rcpt_accepted(&mut self) {
        self.accepted = self.buf.len();
        self.recipients += 1;
    }

    /// No transaction is open and none of its events is still to come: a
    /// large buffer is given back.
    pub(crate) fn release(&mut self) {
        if self.buf.capacity() > IDLE_CAPACITY {
            *self = Self::default();
        }
    }

    /// The envelope as it stands.
    pub(crate) fn view(&self) -> Envelope<'_> {
        Envelope {
            lines: self.buf.get(..self.accepted).unwrap_or_default(),
            recipients: self.recipients,
        }
    }

    fn push(&mut self, line: &[u8]) {
        if self.buf.capacity() == 0 {
            self.buf.reserve(TYPICAL.max(line.len() + 2));
        }
        self.buf.extend_from_slice(line);
        self.buf.extend_from_slice(b"\r\n");
    }
}

/// The envelope of a mail transaction: its reverse-path and `MAIL`
/// parameters, and its accepted recipients with their `RCPT` parameters,
/// in the order they were accepted (in LMTP, the order of the final
/// replies, RFC 2033 §4.2). Refused recipients are not in it.
///
/// The session knows the envelope anyway — it decides which `MAIL` and
/// `RCPT` count — so an application need not track those commands itself,
/// nor remember to forget them on `RSET`, a new greeting or a refused
/// message. The session keeps the text of the commands that count (one
/// buffer per session, cleared at each `MAIL`: a few dozen bytes copied
/// per command, no allocation after the first transaction), and this view
/// borrows it: each accessor parses the command text when called, so call
/// it once and keep what you need; `into_owned()` on the parts gives
/// `'static` values. An application that looks at nothing pays nothing.
///
/// ```
/// use std::time::Instant;
/// use smtp_proto::Output;
/// use smtp_proto::address::Domain;
/// use smtp_proto::server::{Config, Event, Server};
///
/// let now = Instant::now();
/// let mut config = Config::new(Domain::new("mx.example.org").unwrap());
/// // The whole session in one read, as only an authenticated client may
/// // send it (see `SyncPoint`): here the rule is off.
/// config.forbid_unauth_pipelining = false;
/// let mut server = Server::new(config, now);
/// let input = b"EHLO c.example\r\nMAIL FROM:<a@example.org> SIZE=3\r\n\
///               RCPT TO:<b@example.net>\r\nDATA\r\nhi\r\n.\r\n";
/// assert_eq!(server.handle_input(now, input), input.len());
/// let mut seen = Vec::new();
/// loop {
///     let answer = match server.poll(now) {
///         Output::Event(Event::MessageEnd { envelope, .. }) => {
///             seen.push(envelope.from().to_string());
///             seen.extend(envelope.recipients().map(|(to, _)| to.to_string()));
///             assert_eq!(envelope.params().size, Some(3));
///             true
///         }
///         Output::Event(event) => event.needs_answer(),
///         Output::Transmit(bytes) => {
///             let n = bytes.len();
///             server.advance_transmit(now, n).unwrap();
///             false
///         }
///         _ => break,
///     };
///     if answer {
///         server.accept().unwrap();
///     }
/// }
/// assert_eq!(seen, ["<a@example.org>", "<b@example.net>"]);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The `MAIL` line, then one line per accepted `RCPT`, each followed by
    /// CRLF.
    lines: &'a [u8],
    recipients: usize,
}

impl<'a> Envelope<'a> {
    /// The reverse-path (`<>` for a bounce).
    pub fn from(&self) -> ReversePath<'a> {
        self.mail().map_or(ReversePath::Null, |(from, _)| from)
    }

    /// The `MAIL` parameters (`SIZE`, `BODY`, `SMTPUTF8`, `RET`/`ENVID`…).
    pub fn params(&self) -> MailParameters<'a> {
        self.mail().map(|(_, params)| params).unwrap_or_default()
    }

    /// The accepted recipients and their `RCPT` parameters, in order.
    pub fn recipients(&self) -> Recipients<'a> {
        let rest = split_line(self.lines).map_or(&[][..], |(_, rest)| rest);
        Recipients { rest }
    }

    /// How many recipients were accepted (at least one once the message
    /// is asked for).
    pub fn recipient_count(&self) -> usize {
        self.recipients
    }

    fn mail(&self) -> Option<(ReversePath<'a>, MailParameters<'a>)> {
        let (line, _) = split_line(self.lines)?;
        // Invariant: the line was parsed into this very command when the
        // session read it, and parsing is deterministic.
        match Command::parse(line) {
            Ok(Command::Mail { from, params }) => Some((from, params)),
            other => {
                debug_assert!(false, "a kept MAIL line re-parses as {other:?}");
                None
            }
        }
    }
}

impl fmt::Debug for Envelope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct List<'a>(Recipients<'a>);
        impl fmt::Debug for List<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.clone()).finish()
            }
        }
        f.debug_struct("Envelope")
            .field("from", &self.from())
            .field("params", &self.params())
            .field("recipients", &List(self.recipients()))
            .finish()
    }
}

/// The recipients of an [`Envelope`], parsed one by one.
#[derive(Debug, Clone)]
pub struct Recipients<'a> {
    /// The `RCPT` lines not yet returned.
    rest: &'a [u8],
}

impl<'a> Iterator for Recipients<'a> {
    type Item = (ForwardPath<'a>, RcptParameters<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some((line, rest)) = split_line(self.rest) {
            self.rest = rest;
            // Invariant as for the MAIL line.
            match Command::parse(line) {
                Ok(Command::Rcpt { to, params }) => return Some((to, params)),
                other => debug_assert!(false, "a kept RCPT line re-parses as {other:?}"),
            }
        }
        None
    }
}

/// The first line of `text` (without its CRLF) and the rest. Kept lines
/// hold no CR of their own: a command line with a bare CR is refused
/// before it is parsed.
fn split_line(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = memchr::memchr(b'\r', text)?;
    Some((text.get(..end)?, text.get(end + 2..).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_only_accepted_commands() {
        let mut lines = EnvelopeLines::default();
        lines.mail(b"MAIL FROM:<a@example.org> BODY=8BITMIME");
        assert_eq!(lines.view().lines, b"", "not accepted yet");
        lines.mail_accepted();
        lines.rcpt(b"RCPT TO:<refused@example.net>");
        lines.rcpt(b"RCPT TO:<b@example.net> NOTIFY=NEVER");
        lines.rcpt_accepted();
        lines.rcpt(b"RCPT TO:<pending@example.net>");
        let view = lines.view();
        assert_eq!(view.from().to_string(), "<a@example.org>");
        assert!(view.params().body.is_some());
        let to: Vec<String> = view.recipients().map(|(to, _)| to.to_string()).collect();
        assert_eq!(to, ["<b@example.net>"]);
        assert_eq!(view.recipient_count(), 1);
        let (_, params) = view.recipients().next().unwrap();
        assert!(params.notify.is_some());
        let debug = format!("{view:?}");
        assert!(
            debug.contains("NOTIFY") || debug.contains("notify: Some(Never)"),
            "{debug}"
        );

        // A new MAIL starts over, in the same allocation.
        let capacity = lines.buf.capacity();
        lines.mail(b"MAIL FROM:<>");
        lines.mail_accepted();
        assert_eq!(lines.view().from(), ReversePath::Null);
        assert_eq!(lines.view().recipients().count(), 0);
        assert_eq!(lines.buf.capacity(), capacity);
    }

    /// A session with `n` accepted recipients, through `end` (`DATA` and a
    /// message, or `RSET`); the recipient counts of the envelopes handed
    /// out, and the envelope buffer's capacity once the session waits.
    fn large_transaction(n: usize, end: &[u8]) -> (Vec<usize>, usize) {
        use std::time::Instant;

        use crate::Output;
        use crate::address::Domain;
        use crate::server::{Config, Event, Server};

        let now = Instant::now();
        let mut config = Config::new(Domain::new("mx.example.org").unwrap());
        config.limits.max_recipients = n;
        config.limits.input_buffer = 1 << 20;
        // The whole session in one read (pipelined behind EHLO and DATA).
        config.forbid_unauth_pipelining = false;
        let mut server = Server::new(config, now);
        let mut input = b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\n".to_vec();
        for i in 0..n {
            input.extend_from_slice(
                format!("RCPT TO:<recipient-{i:04}@example.net>\r\n").as_bytes(),
            );
        }
        input.extend_from_slice(end);
        assert_eq!(server.handle_input(now, &input), input.len());
        let mut counts = Vec::new();
        loop {
            let answer = match server.poll(now) {
                Output::Event(
                    Event::DataStart { envelope, .. }
                    | Event::MessageEnd { envelope, .. }
                    | Event::Reset { envelope, .. },
                ) => {
                    counts.push(envelope.recipients().count());
                    true
                }
                Output::Event(event) => event.needs_answer(),
                Output::Transmit(bytes) => {
                    let n = bytes.len();
                    server.advance_transmit(now, n).unwrap();
                    false
                }
                _ => break,
            };
            if answer {
                // Facts (the reset) accept nothing: ignore the usage error.
                let _ = server.accept();
            }
        }
        (counts, server.envelope_lines.buf.capacity())
    }

    #[test]
    fn a_large_envelope_is_whole_and_then_released() {
        let (counts, capacity) = large_transaction(150, b"DATA\r\nhi\r\n.\r\n");
        assert_eq!(counts, [150, 150]);
        assert!(capacity <= IDLE_CAPACITY, "{capacity}");
        let (counts, capacity) = large_transaction(150, b"RSET\r\n");
        assert_eq!(counts, [150]);
        assert!(capacity <= IDLE_CAPACITY, "{capacity}");
    }

    #[test]
    fn a_large_envelope_is_released() {
        let mut lines = EnvelopeLines::default();
        lines.mail(b"MAIL FROM:<a@example.org>");
        lines.mail_accepted();
        for i in 0..200 {
            lines.rcpt(format!("RCPT TO:<recipient-{i:04}@example.net>").as_bytes());
            lines.rcpt_accepted();
        }
        assert_eq!(lines.view().recipients().count(), 200);
        assert!(lines.buf.capacity() > IDLE_CAPACITY);
        lines.release();
        assert_eq!(lines.buf.capacity(), 0);
        assert_eq!(lines.view().recipient_count(), 0);
    }
}
