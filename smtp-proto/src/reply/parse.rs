//! Reply parsing: a whole reply from a buffer, or line by line.

use std::borrow::Cow;

use thiserror::Error;

use super::enhanced::{self, EnhancedStatusCode};
use super::{Reply, ReplyCode};

/// Bounds on one reply, so a hostile server cannot make a client buffer
/// without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Most lines in one reply. Default 128: EHLO replies of 10–25 lines are
    /// normal and a few help or policy texts run to a few dozen; 128 leaves
    /// room without letting one reply grow unbounded.
    pub max_lines: usize,
    /// Most bytes in one reply, counting each line's code, text and CRLF.
    /// Default 65 536: 128 lines of the 512 octets RFC 5321 §4.5.3.1.5 allows.
    pub max_bytes: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        Self {
            max_lines: 128,
            max_bytes: 128 * super::MAX_REPLY_LINE_LEN,
        }
    }
}

/// Bytes that are not a valid reply. A session should treat any of these as
/// fatal for the connection: the peer is not speaking SMTP.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The line does not start with three digits (`2x0 Ok`, `Ok`, `25`).
    #[error("reply line does not start with a three-digit code")]
    MissingCode,
    /// Three digits that are not a reply code (`600`, `260`, `199`).
    #[error("invalid reply code {0:03}")]
    InvalidCode(u16),
    /// The byte after the code is not SP, `-` or the end of the line.
    #[error("invalid separator {0:?} after reply code")]
    BadSeparator(char),
    /// A continuation line carries a different code than the first line.
    #[error("multi-line reply mixes codes {expected} and {found}")]
    MixedCodes {
        /// The first line's code.
        expected: ReplyCode,
        /// The code of the offending line.
        found: ReplyCode,
    },
    /// The text contains CR, LF or NUL.
    #[error("reply text contains forbidden character {0:?}")]
    InvalidChar(char),
    /// A line in a buffer ends with LF not preceded by CR.
    #[error("reply line ends with a bare LF")]
    BareLineFeed,
    /// More lines than [`ReplyLimits::max_lines`].
    #[error("reply has more than {max} lines")]
    TooManyLines {
        /// The limit.
        max: usize,
    },
    /// More bytes than [`ReplyLimits::max_bytes`].
    #[error("reply is longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
}

/// One reply line, split.
struct Line<'b> {
    code: ReplyCode,
    more: bool,
    text: &'b [u8],
}

/// ```text
/// reply-line = Reply-code ( "-" [ textstring ] / [ SP textstring ] )
/// ```
/// (the CRLF already removed).
fn parse_line(line: &[u8]) -> Result<Line<'_>, ReplyError> {
    let (&digits, rest) = line
        .split_first_chunk::<3>()
        .ok_or(ReplyError::MissingCode)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(ReplyError::MissingCode);
    }
    let n = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let code = ReplyCode::new(n).map_err(|e| ReplyError::InvalidCode(e.0))?;
    let (more, text) = match rest.split_first() {
        None => (false, rest),
        Some((b' ', text)) => (false, text),
        Some((b'-', text)) => (true, text),
        Some((&b, _)) => return Err(ReplyError::BadSeparator(char::from(b))),
    };
    if let Some(pos) = memchr::memchr3(b'\r', b'\n', 0, text) {
        return Err(ReplyError::InvalidChar(char::from(
            text.get(pos).copied().unwrap_or(0),
        )));
    }
    Ok(Line { code, more, text })
}

/// A reply under construction.
#[derive(Debug)]
struct Partial<'a> {
    code: ReplyCode,
    enhanced: Option<EnhancedStatusCode>,
    lines: Vec<Cow<'a, str>>,
    bytes: usize,
}

impl<'a> Partial<'a> {
    fn start<'b>(
        line: &Line<'b>,
        wire_len: usize,
        text: impl FnOnce(&'b [u8]) -> Cow<'a, str>,
    ) -> Self {
        let (enhanced, text_bytes) = match enhanced::split_text(line.text, line.code.first_digit())
        {
            // `n` is at most `line.text.len()` (split_text counts bytes it saw).
            Some((esc, n)) => (Some(esc), line.text.get(n..).unwrap_or_default()),
            None => (None, line.text),
        };
        let mut lines = Vec::with_capacity(if line.more { 16 } else { 1 });
        lines.push(text(text_bytes));
        Self {
            code: line.code,
            enhanced,
            lines,
            bytes: wire_len,
        }
    }

    fn push<'b>(
        &mut self,
        line: &Line<'b>,
        wire_len: usize,
        limits: &ReplyLimits,
        text: impl FnOnce(&'b [u8]) -> Cow<'a, str>,
    ) -> Result<(), ReplyError> {
        if line.code != self.code {
            return Err(ReplyError::MixedCodes {
                expected: self.code,
                found: line.code,
            });
        }
        if self.lines.len() >= limits.max_lines {
            return Err(ReplyError::TooManyLines {
                max: limits.max_lines,
            });
        }
        self.bytes = self.bytes.saturating_add(wire_len);
        if self.bytes > limits.max_bytes {
            return Err(ReplyError::TooLong {
                max: limits.max_bytes,
            });
        }
        let mut bytes = line.text;
        if let Some(esc) = self.enhanced
            && let Some((found, n)) = enhanced::split_text(bytes, self.code.first_digit())
            && found == esc
        {
            bytes = bytes.get(n..).unwrap_or_default();
        }
        self.lines.push(text(bytes));
        Ok(())
    }

    fn finish(self) -> Reply<'a> {
        Reply::from_parts(self.code, self.enhanced, self.lines)
    }
}

fn check_first(wire_len: usize, limits: &ReplyLimits) -> Result<(), ReplyError> {
    if limits.max_lines == 0 {
        return Err(ReplyError::TooManyLines { max: 0 });
    }
    if wire_len > limits.max_bytes {
        return Err(ReplyError::TooLong {
            max: limits.max_bytes,
        });
    }
    Ok(())
}

impl<'a> Reply<'a> {
    /// Parses one complete reply at the start of `buf`, with the default
    /// [`ReplyLimits`].
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a reply (no final
    /// line yet): a client must never act on an incomplete reply. Otherwise
    /// returns the reply, borrowing its text from `buf`, and the number of
    /// bytes it took (what follows may be the next pipelined reply).
    ///
    /// ```
    /// # use smtp_proto::reply::{Reply, ReplyCode};
    /// let buf = b"250-mx.example.com\r\n250 SIZE\r\n354 go\r\n";
    /// let (reply, used) = Reply::parse(buf).unwrap().unwrap();
    /// assert_eq!(reply.code(), ReplyCode::OK);
    /// assert_eq!(reply.lines(), ["mx.example.com", "SIZE"]);
    /// assert_eq!(&buf[used..], b"354 go\r\n");
    /// assert_eq!(Reply::parse(b"250-mx.example.com\r\n250 SI").unwrap(), None);
    /// ```
    pub fn parse(buf: &'a [u8]) -> Result<Option<(Self, usize)>, ReplyError> {
        Self::parse_with(buf, &ReplyLimits::default())
    }

    /// [`Reply::parse`] with explicit limits. Lines must end in CRLF; a bare
    /// LF is [`ReplyError::BareLineFeed`].
    pub fn parse_with(
        buf: &'a [u8],
        limits: &ReplyLimits,
    ) -> Result<Option<(Self, usize)>, ReplyError> {
        let mut pos = 0usize;
        let mut partial: Option<Partial<'a>> = None;
        loop {
            let rest = buf.get(pos..).unwrap_or_default();
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                // Bound the wait for a final line, not just the lines seen.
                if buf.len() > limits.max_bytes {
                    return Err(ReplyError::TooLong {
                        max: limits.max_bytes,
                    });
                }
                return Ok(None);
            };
            // `nl` < `rest.len()`, found by memchr.
            let raw = rest.get(..nl).unwrap_or_default();
            let line_bytes = raw.strip_suffix(b"\r").ok_or(ReplyError::BareLineFeed)?;
            let wire_len = nl + 1;
            pos += wire_len;
            let line = parse_line(line_bytes)?;
            let text = |t: &'a [u8]| String::from_utf8_lossy(t);
            match partial.as_mut() {
                None => {
                    check_first(wire_len, limits)?;
                    partial = Some(Partial::start(&line, wire_len, text));
                }
                Some(p) => p.push(&line, wire_len, limits, text)?,
            }
            if !line.more {
                // `partial` was set above on this or an earlier iteration.
                return Ok(partial.map(|p| (p.finish(), pos)));
            }
        }
    }
}

/// Assembles replies from lines a line framer delivers, one at a time.
///
/// Each line is passed without its CRLF. `push_line` returns `Ok(None)` until
/// a reply's final line arrives, then the complete reply (owned, so the
/// framer's buffer can be reused). An incomplete reply is never returned.
///
/// After an error the partial reply is discarded and the assembler starts
/// afresh, but the stream is out of sync: a session should close the
/// connection.
///
/// ```
/// # use smtp_proto::reply::{ReplyAssembler, ReplyCode};
/// let mut asm = ReplyAssembler::default();
/// assert_eq!(asm.push_line(b"250-mx.example.com").unwrap(), None);
/// assert!(asm.is_partial());
/// let reply = asm.push_line(b"250 8BITMIME").unwrap().unwrap();
/// assert_eq!(reply.code(), ReplyCode::OK);
/// assert_eq!(reply.lines(), ["mx.example.com", "8BITMIME"]);
/// ```
#[derive(Debug, Default)]
pub struct ReplyAssembler {
    limits: ReplyLimits,
    partial: Option<Partial<'static>>,
}

impl ReplyAssembler {
    /// An assembler enforcing `limits`.
    pub fn new(limits: ReplyLimits) -> Self {
        Self {
            limits,
            partial: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &ReplyLimits {
        &self.limits
    }

    /// Whether some lines of a reply have arrived but not its final line.
    pub fn is_partial(&self) -> bool {
        self.partial.is_some()
    }

    /// How many lines of the current reply have arrived.
    pub fn pending_lines(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.lines.len())
    }

    /// Discards a partial reply (for example after STARTTLS, when nothing
    /// received before the handshake may be kept).
    pub fn reset(&mut self) {
        self.partial = None;
    }

    /// Feeds one line, without its CRLF.
    pub fn push_line(&mut self, line: &[u8]) -> Result<Option<Reply<'static>>, ReplyError> {
        let result = self.push_inner(line);
        if result.is_err() {
            self.partial = None;
        }
        result
    }

    fn push_inner(&mut self, line: &[u8]) -> Result<Option<Reply<'static>>, ReplyError> {
        let parsed = parse_line(line)?;
        let wire_len = line.len().saturating_add(2);
        let text = |t: &[u8]| Cow::Owned(String::from_utf8_lossy(t).into_owned());
        match self.partial.as_mut() {
            None => {
                check_first(wire_len, &self.limits)?;
                self.partial = Some(Partial::start(&parsed, wire_len, text));
            }
            Some(p) => p.push(&parsed, wire_len, &self.limits, text)?,
        }
        if parsed.more {
            Ok(None)
        } else {
            Ok(self.partial.take().map(Partial::finish))
        }
    }
}
