//! The CRLF line framer: finds command and reply lines in a caller-owned buffer.
//!
//! # Why a separate framer
//!
//! SMTP commands and replies are lines ended by CRLF, and nothing else ends a
//! line: RFC 5321 §2.3.8 forbids a bare CR or a bare LF, and §4.1.1.4 forbids
//! servers to accept lines ended by a bare LF "even in the name of improved
//! robustness". Treating a bare LF as a line end is exactly what SMTP smuggling
//! exploits, so the framer never does it: a bare LF or bare CR stays inside
//! the line and is reported on the [`Line`] ([`Line::has_bare_lf`],
//! [`Line::has_bare_cr`]), so the session can answer `500`.
//!
//! The framer finds the line *before* any grammar runs (frame first, then
//! parse), so the parsers only ever see complete lines and "need more data"
//! never reaches them. It keeps a small scan state so that bytes already
//! scanned are never scanned again while a line trickles in byte by byte
//! (httparse's warning, lettre's quadratic `read_line`).
//!
//! # Limits
//!
//! Every line has a maximum length, CRLF included ([`COMMAND_LINE_MAX`],
//! [`REPLY_LINE_MAX`], [`TEXT_LINE_MAX`], [`AUTH_LINE_MAX`]); the session may
//! change it between lines with [`LineFramer::set_max_len`] (the SASL
//! exchange uses the AUTH limit). An over-long line is *poisoned*: it is
//! reported once ([`Frame::TooLong`]), its bytes are handed back for the
//! caller to drop as they arrive ([`Frame::Discard`]) up to and including the
//! next CRLF, and the following line is framed normally — the stream stays in
//! sync and the caller's buffer never holds more than `max_len - 1` bytes of
//! an unfinished line plus one read (imap-codec's fragmentizer).
//!
//! # Driving it
//!
//! The buffer always starts at the first byte of the line being framed. After
//! each call the caller removes [`Frame::consumed`] bytes from the front (or
//! advances an offset by that much), and calls again until
//! [`Frame::NeedMore`]:
//!
//! ```
//! use smtp_proto::framing::{Frame, LineFramer, COMMAND_LINE_MAX};
//!
//! let mut framer = LineFramer::new(COMMAND_LINE_MAX);
//! let mut buf: Vec<u8> = Vec::new();
//! let mut lines = Vec::new();
//! for read in [&b"NOOP\r\nQU"[..], b"IT\r\n"] {
//!     buf.extend_from_slice(read);
//!     loop {
//!         let frame = framer.next(&buf);
//!         let n = frame.consumed();
//!         match frame {
//!             Frame::Line(line) => lines.push(line.content().to_vec()),
//!             Frame::TooLong { .. } => { /* answer 500 once the line has ended */ }
//!             Frame::Discard { .. } => {}
//!             Frame::NeedMore => break,
//!         }
//!         buf.drain(..n);
//!     }
//! }
//! assert_eq!(lines, [b"NOOP".to_vec(), b"QUIT".to_vec()]);
//! ```

/// Longest command line, CRLF included: 512 octets.
///
/// RFC 5321 §4.5.3.1.4: "The maximum total length of a command line including
/// the command word and the \<CRLF\> is 512 octets."
pub const COMMAND_LINE_MAX: usize = 512;

/// Longest reply line, CRLF included: 512 octets.
///
/// RFC 5321 §4.5.3.1.5: "The maximum total length of a reply line including
/// the reply code and the \<CRLF\> is 512 octets."
pub const REPLY_LINE_MAX: usize = 512;

/// Longest text line of message data, CRLF included: 1000 octets.
///
/// RFC 5321 §4.5.3.1.6: "The maximum total length of a text line including
/// the \<CRLF\> is 1000 octets (not counting the leading dot duplicated for
/// transparency)."
pub const TEXT_LINE_MAX: usize = 1000;

/// Longest line of the AUTH exchange (the command with its initial response,
/// and each SASL response line), CRLF included: 12288 octets.
///
/// RFC 4954 §4 raises the RFC 5321 §4.5.3.1.4 command line limit to 12288
/// octets, CRLF included, for the AUTH command with its initial response and
/// for each line of the SASL exchange.
pub const AUTH_LINE_MAX: usize = 12288;

/// The shortest limit the framer accepts: a line always holds its CRLF.
pub const MIN_LINE_MAX: usize = 2;

/// A CRLF-terminated line found by [`LineFramer::next`], borrowed from the
/// caller's buffer.
///
/// The framer judges only line endings; NUL and any other octet are left to
/// the grammar, which rejects what it does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Line<'b> {
    /// The line with its CRLF.
    bytes: &'b [u8],
    bare_cr: bool,
    bare_lf: bool,
}

impl<'b> Line<'b> {
    /// The line without its CRLF: what a parser reads.
    #[inline]
    pub fn content(&self) -> &'b [u8] {
        // The framer only builds a `Line` over a slice ending in CRLF.
        self.bytes.strip_suffix(b"\r\n").unwrap_or(self.bytes)
    }

    /// The line as it was on the wire, CRLF included.
    #[inline]
    pub fn with_crlf(&self) -> &'b [u8] {
        self.bytes
    }

    /// Length on the wire, CRLF included; the number of bytes to drain.
    #[inline]
    pub fn wire_len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the line contains a LF not preceded by a CR (a protocol
    /// error for a command: RFC 5321 §2.3.8; answer `500`).
    #[inline]
    pub fn has_bare_lf(&self) -> bool {
        self.bare_lf
    }

    /// Whether the line contains a CR not followed by a LF (RFC 5321 §2.3.8).
    #[inline]
    pub fn has_bare_cr(&self) -> bool {
        self.bare_cr
    }

    /// Whether the line contains neither a bare CR nor a bare LF.
    #[inline]
    pub fn is_clean(&self) -> bool {
        !self.bare_cr && !self.bare_lf
    }
}

/// What [`LineFramer::next`] found at the front of the buffer.
///
/// Every variant says through [`Frame::consumed`] how many bytes the caller
/// must remove from the front of its buffer before the next call.
///
/// Deliberately not `#[non_exhaustive]`: these are all the things a line
/// framer can find, and a session must handle each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Frame<'b> {
    /// A complete line; remove [`Line::wire_len`] bytes after using it.
    Line(Line<'b>),
    /// The line at the front is longer than the limit. Reported once per
    /// over-long line; remove `discard` bytes (everything of the line
    /// buffered so far). If `ended` is false, [`Frame::Discard`]s follow until
    /// one has `ended == true`.
    TooLong {
        /// Bytes of the over-long line to drop now.
        discard: usize,
        /// Whether the line's CRLF was among them (the line is over).
        ended: bool,
    },
    /// More bytes of an over-long line already reported; remove `discard`
    /// bytes.
    Discard {
        /// Bytes of the over-long line to drop now.
        discard: usize,
        /// Whether the line's CRLF was among them (the line is over).
        ended: bool,
    },
    /// No complete line yet: keep the buffer, append more input, call again.
    NeedMore,
}

impl Frame<'_> {
    /// How many bytes to remove from the front of the buffer after handling
    /// this frame (zero for [`Frame::NeedMore`]).
    #[inline]
    pub fn consumed(&self) -> usize {
        match self {
            Frame::Line(line) => line.wire_len(),
            Frame::TooLong { discard, .. } | Frame::Discard { discard, .. } => *discard,
            Frame::NeedMore => 0,
        }
    }
}

/// Finds CRLF-terminated lines in a buffer the caller owns, with a length
/// limit and poisoning of over-long lines. See the [module docs](self).
///
/// The contract between calls: the buffer passed to [`LineFramer::next`]
/// starts where the previous frame's [`Frame::consumed`] bytes ended, and
/// after [`Frame::NeedMore`] it holds the same bytes as before followed by
/// new ones. A buffer shorter than what was already scanned is taken as a
/// fresh start and rescanned.
#[derive(Debug, Clone)]
pub struct LineFramer {
    max_len: usize,
    /// Bytes at the front of the current line already scanned: no line end
    /// among them. Never includes a trailing CR whose successor is unknown.
    scanned: usize,
    /// Bare CR / bare LF seen in `..scanned`.
    bare_cr: bool,
    bare_lf: bool,
    /// Inside an over-long line, dropping bytes up to its CRLF.
    discarding: bool,
    /// While discarding: the last dropped byte was a CR, so a LF at the
    /// front of the next buffer ends the line.
    discarded_cr: bool,
}

impl LineFramer {
    /// A framer whose lines may be at most `max_len` bytes long, CRLF
    /// included (clamped to at least [`MIN_LINE_MAX`]).
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len: max_len.max(MIN_LINE_MAX),
            scanned: 0,
            bare_cr: false,
            bare_lf: false,
            discarding: false,
            discarded_cr: false,
        }
    }

    /// The current limit, CRLF included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Changes the limit (clamped to at least [`MIN_LINE_MAX`]). It applies
    /// to the line at the front of the buffer on the next call; normally it
    /// is changed between lines (the session switches to [`AUTH_LINE_MAX`]
    /// while reading SASL responses).
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len.max(MIN_LINE_MAX);
    }

    /// Whether the framer is dropping the rest of an over-long line.
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// Forgets all scan state, for a buffer that starts afresh (after the
    /// STARTTLS handshake, when everything buffered before it was dropped).
    pub fn reset(&mut self) {
        *self = Self::new(self.max_len);
    }

    /// Frames the next line at the front of `buf`.
    pub fn next<'b>(&mut self, buf: &'b [u8]) -> Frame<'b> {
        if self.discarding {
            return self.discard(buf);
        }
        if buf.len() < self.scanned {
            // The caller started over with a different buffer: rescan.
            self.clear_scan();
        }
        let limit = buf.len().min(self.max_len);
        let window = buf.get(..limit).unwrap_or(buf);
        let mut pos = self.scanned.min(limit);
        loop {
            let Some(i) = window
                .get(pos..)
                .and_then(|rest| memchr::memchr2(b'\r', b'\n', rest))
                .map(|i| pos + i)
            else {
                // Nothing special up to the limit.
                pos = limit;
                break;
            };
            if window.get(i) == Some(&b'\n') {
                // Every CR is examined together with its successor below, so
                // a LF found here was not preceded by a CR.
                self.bare_lf = true;
                pos = i + 1;
                continue;
            }
            match window.get(i + 1) {
                Some(b'\n') => {
                    let line = Line {
                        bytes: window.get(..i + 2).unwrap_or(window),
                        bare_cr: self.bare_cr,
                        bare_lf: self.bare_lf,
                    };
                    self.clear_scan();
                    return Frame::Line(line);
                }
                Some(_) => {
                    self.bare_cr = true;
                    pos = i + 1;
                }
                None => {
                    // The CR is the last byte of the window: its successor
                    // decides, so it is scanned again next time.
                    pos = i;
                    break;
                }
            }
        }
        if buf.len() >= self.max_len {
            // No CRLF ends within the limit: poison the line.
            self.clear_scan();
            self.discarding = true;
            self.discarded_cr = false;
            return match self.discard(buf) {
                Frame::Discard { discard, ended } => Frame::TooLong { discard, ended },
                // `discard` returns `NeedMore` only for an empty buffer, and
                // this one holds at least `max_len >= 2` bytes.
                other => other,
            };
        }
        self.scanned = pos;
        Frame::NeedMore
    }

    fn clear_scan(&mut self) {
        self.scanned = 0;
        self.bare_cr = false;
        self.bare_lf = false;
    }

    /// Drops bytes of an over-long line up to and including its CRLF.
    fn discard(&mut self, buf: &[u8]) -> Frame<'static> {
        if buf.is_empty() {
            return Frame::NeedMore;
        }
        if self.discarded_cr && buf.first() == Some(&b'\n') {
            self.discarding = false;
            self.discarded_cr = false;
            return Frame::Discard {
                discard: 1,
                ended: true,
            };
        }
        if let Some(i) = memchr::memmem::find(buf, b"\r\n") {
            self.discarding = false;
            self.discarded_cr = false;
            return Frame::Discard {
                discard: i + 2,
                ended: true,
            };
        }
        self.discarded_cr = buf.last() == Some(&b'\r');
        Frame::Discard {
            discard: buf.len(),
            ended: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_resumes_where_it_stopped() {
        let mut f = LineFramer::new(AUTH_LINE_MAX);
        let mut buf = Vec::new();
        for i in 1..=100 {
            buf.push(b'x');
            assert_eq!(f.next(&buf), Frame::NeedMore);
            assert_eq!(f.scanned, i, "every byte is scanned once");
        }
        // A trailing CR is left for the next call, which sees its successor.
        buf.push(b'\r');
        assert_eq!(f.next(&buf), Frame::NeedMore);
        assert_eq!(f.scanned, 100);
        buf.push(b'\n');
        assert!(matches!(f.next(&buf), Frame::Line(l) if l.wire_len() == 102));
        assert_eq!(f.scanned, 0);
    }
}
