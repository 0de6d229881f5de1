//! Reply parsing: a whole reply from a buffer, or line by line.

use std::borrow::Cow;

use thiserror::Error;

use super::enhanced::{self, EnhancedStatusCode};
use super::{Reply, ReplyCode, Text};

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
/// (the CRLF already removed). Checks code and separator only; the caller
/// checks the text for CR, LF and NUL.
fn parse_head(line: &[u8]) -> Result<Line<'_>, ReplyError> {
    let (digits, rest) = line
        .split_first_chunk::<3>()
        .ok_or(ReplyError::MissingCode)?;
    let code = ReplyCode::from_ascii_checked(*digits).map_err(|e| match e {
        None => ReplyError::MissingCode,
        Some(n) => ReplyError::InvalidCode(n),
    })?;
    let (more, text) = match rest.split_first() {
        None => (false, rest),
        Some((b' ', text)) => (false, text),
        Some((b'-', text)) => (true, text),
        Some((&b, _)) => return Err(ReplyError::BadSeparator(char::from(b))),
    };
    Ok(Line { code, more, text })
}

/// [`parse_head`] plus the check that the text holds no CR, LF or NUL, for a
/// line whose CRLF is already removed.
fn parse_line(line: &[u8]) -> Result<Line<'_>, ReplyError> {
    let parsed = parse_head(line)?;
    if let Some(pos) = memchr::memchr3(b'\r', b'\n', 0, parsed.text) {
        return Err(ReplyError::InvalidChar(char::from(
            parsed.text.get(pos).copied().unwrap_or(0),
        )));
    }
    Ok(parsed)
}

/// Finds the end of the first line in `buf`: returns the index of the
/// first LF and the index of the first CR or NUL before it (which may be the
/// CR of the line's CRLF), or `None` when there is no LF.
///
/// One vector search for the first CR, LF or NUL settles the usual line,
/// which holds none of them before its CRLF; anything else is looked at
/// again byte by byte.
#[inline]
fn scan_line(buf: &[u8]) -> Option<(usize, Option<usize>)> {
    let i = memchr::memchr3(b'\r', b'\n', 0, buf)?;
    if buf.get(i) == Some(&b'\r') && buf.get(i + 1) == Some(&b'\n') {
        return Some((i + 1, Some(i)));
    }
    let nl = i + memchr::memchr(b'\n', buf.get(i..)?)?;
    let bad = buf.get(i..nl)?.iter().position(|&b| b == b'\r' || b == 0);
    Some((nl, bad.map(|b| i + b)))
}

/// Reply text as a string: borrowed when it is valid UTF-8 (the usual
/// case, checked by the standard library's ASCII-fast validator), otherwise
/// decoded lossily (each bad sequence becomes U+FFFD).
fn text_str(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The enhanced code opening the first line's text, and the text after it.
fn split_first(line: &Line<'_>) -> (Option<EnhancedStatusCode>, usize) {
    match enhanced::split_text(line.text, line.code.first_digit()) {
        Some((esc, n)) => (Some(esc), n),
        None => (None, 0),
    }
}

/// What the lines of a reply must agree on, and the limits, checked line by
/// line as they arrive.
#[derive(Debug)]
struct Tally {
    code: ReplyCode,
    lines: usize,
    bytes: usize,
}

impl Tally {
    fn first(line: &Line<'_>, wire_len: usize, limits: &ReplyLimits) -> Result<Self, ReplyError> {
        if limits.max_lines == 0 {
            return Err(ReplyError::TooManyLines { max: 0 });
        }
        if wire_len > limits.max_bytes {
            return Err(ReplyError::TooLong {
                max: limits.max_bytes,
            });
        }
        Ok(Self {
            code: line.code,
            lines: 1,
            bytes: wire_len,
        })
    }

    fn next(
        &mut self,
        line: &Line<'_>,
        wire_len: usize,
        limits: &ReplyLimits,
    ) -> Result<(), ReplyError> {
        if line.code != self.code {
            return Err(ReplyError::MixedCodes {
                expected: self.code,
                found: line.code,
            });
        }
        if self.lines >= limits.max_lines {
            return Err(ReplyError::TooManyLines {
                max: limits.max_lines,
            });
        }
        self.lines += 1;
        self.bytes = self.bytes.saturating_add(wire_len);
        if self.bytes > limits.max_bytes {
            return Err(ReplyError::TooLong {
                max: limits.max_bytes,
            });
        }
        Ok(())
    }
}

/// The text of a single-line reply after its enhanced code, as an owned or
/// borrowed [`Text`].
fn single_text<'a>(text: Cow<'a, str>, skip: usize) -> Text<'a> {
    match text {
        // `skip` counts the ASCII bytes of the enhanced code and its space.
        Cow::Borrowed(t) => Text::Borrowed(t.get(skip..).unwrap_or_default()),
        Cow::Owned(t) => Text::copied(t.get(skip..).unwrap_or_default()),
    }
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
    #[inline]
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
        let mut tally: Option<Tally> = None;
        // The first line, split: its code, enhanced code and text.
        let mut first: Option<(ReplyCode, Option<EnhancedStatusCode>, &'a [u8])> = None;
        loop {
            let rest = buf.get(pos..).unwrap_or_default();
            let Some((nl, first_bad)) = scan_line(rest) else {
                // Bound the wait for a final line, not just the lines seen.
                if buf.len() > limits.max_bytes {
                    return Err(ReplyError::TooLong {
                        max: limits.max_bytes,
                    });
                }
                return Ok(None);
            };
            // `nl` < `rest.len()`, found by the scan.
            let raw = rest.get(..nl).unwrap_or_default();
            let line_bytes = raw.strip_suffix(b"\r").ok_or(ReplyError::BareLineFeed)?;
            let wire_len = nl + 1;
            pos += wire_len;
            let line = parse_head(line_bytes)?;
            // The code and separator are digits, SP or `-`, so a CR or NUL
            // inside `line_bytes` (that is, before its CRLF) is in the text.
            if let Some(bad) = first_bad.filter(|&i| i < line_bytes.len()) {
                return Err(ReplyError::InvalidChar(char::from(
                    line_bytes.get(bad).copied().unwrap_or(0),
                )));
            }
            match tally.as_mut() {
                None => {
                    tally = Some(Tally::first(&line, wire_len, limits)?);
                    let (esc, skip) = split_first(&line);
                    first = Some((line.code, esc, line.text.get(skip..).unwrap_or_default()));
                }
                Some(t) => t.next(&line, wire_len, limits)?,
            }
            if line.more {
                continue;
            }
            // The final line: `first` and `tally` were set on the first one.
            let (Some((code, esc, text)), Some(tally)) = (first, tally) else {
                return Ok(None);
            };
            let reply = if tally.lines == 1 {
                match std::str::from_utf8(text) {
                    // The usual case, built where it is returned.
                    Ok(t) => {
                        return Ok(Some((Self::parsed_one(code, esc, Text::Borrowed(t)), pos)));
                    }
                    Err(_) => Self::parsed_one(code, esc, single_text(text_str(text), 0)),
                }
            } else {
                // Every line in one piece, without the final CRLF: one UTF-8
                // check for the whole reply, and nothing to collect.
                let raw = buf.get(..pos - 2).unwrap_or_default();
                let raw = match text_str(raw) {
                    Cow::Borrowed(r) => Text::Borrowed(r),
                    Cow::Owned(r) => Text::from_cow(Cow::Owned(r)),
                };
                Self::parsed_wire(code, esc, raw, tally.lines)
            };
            return Ok(Some((reply, pos)));
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
    /// The reply being assembled, when some lines have arrived.
    tally: Option<Tally>,
    /// Its lines so far, as received (UTF-8 errors replaced), CRLF between
    /// them; the buffer is kept across replies.
    raw: String,
}

impl ReplyAssembler {
    /// An assembler enforcing `limits`.
    pub fn new(limits: ReplyLimits) -> Self {
        Self {
            limits,
            tally: None,
            raw: String::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &ReplyLimits {
        &self.limits
    }

    /// Whether some lines of a reply have arrived but not its final line.
    pub fn is_partial(&self) -> bool {
        self.tally.is_some()
    }

    /// How many lines of the current reply have arrived.
    pub fn pending_lines(&self) -> usize {
        self.tally.as_ref().map_or(0, |t| t.lines)
    }

    /// Discards a partial reply (for example after STARTTLS, when nothing
    /// received before the handshake may be kept).
    pub fn reset(&mut self) {
        self.tally = None;
        self.raw.clear();
    }

    /// Feeds one line, without its CRLF.
    pub fn push_line(&mut self, line: &[u8]) -> Result<Option<Reply<'static>>, ReplyError> {
        let result = self.push_inner(line);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn push_inner(&mut self, line: &[u8]) -> Result<Option<Reply<'static>>, ReplyError> {
        let parsed = parse_line(line)?;
        let wire_len = line.len().saturating_add(2);
        match self.tally.as_mut() {
            None if !parsed.more => {
                // A single-line reply, the usual case: owned straight away
                // (short text stays inside the reply).
                Tally::first(&parsed, wire_len, &self.limits)?;
                let (esc, skip) = split_first(&parsed);
                let text = single_text(text_str(parsed.text), skip);
                return Ok(Some(Reply::parsed_one(parsed.code, esc, text.into_owned())));
            }
            None => {
                self.tally = Some(Tally::first(&parsed, wire_len, &self.limits)?);
                self.raw.clear();
            }
            Some(t) => {
                t.next(&parsed, wire_len, &self.limits)?;
                self.raw.push_str("\r\n");
            }
        }
        self.raw.push_str(&text_str(line));
        if parsed.more {
            return Ok(None);
        }
        let Some(tally) = self.tally.take() else {
            return Ok(None);
        };
        // The first line's enhanced code decides for all (as in `parse`).
        let first = self.raw.split("\r\n").next().unwrap_or_default();
        let esc = parse_head(first.as_bytes())
            .ok()
            .and_then(|l| split_first(&l).0);
        let reply = Reply::parsed_wire(tally.code, esc, Text::copied(&self.raw), tally.lines);
        self.raw.clear();
        Ok(Some(reply))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The obvious byte-by-byte version of [`scan_line`].
    fn scan_reference(buf: &[u8]) -> Option<(usize, Option<usize>)> {
        let nl = buf.iter().position(|&b| b == b'\n')?;
        let bad = buf.get(..nl)?.iter().position(|&b| b == b'\r' || b == 0);
        Some((nl, bad))
    }

    #[test]
    fn scan_line_known_answers() {
        assert_eq!(scan_line(b""), None);
        assert_eq!(scan_line(b"250 ok\r"), None);
        assert_eq!(scan_line(b"\n"), Some((0, None)));
        assert_eq!(scan_line(b"250 ok\r\n"), Some((7, Some(6))));
        assert_eq!(
            scan_line(b"250 a very long line of text\r\n"),
            Some((29, Some(28)))
        );
        assert_eq!(
            scan_line(b"250 a\0b\tc\x0bd\x80\xff\r\n"),
            Some((14, Some(5)))
        );
        assert_eq!(scan_line(b"250 bare lf\n250 next\r\n"), Some((11, None)));
    }

    #[test]
    fn multi_line_text_is_checked_once_and_split_on_demand() {
        // 0xFF is never valid UTF-8: the whole reply is decoded lossily.
        let mut buf = b"250-ok\r\n250-bad \xffx\r\n".to_vec();
        buf.extend_from_slice("250 fine \u{e9}\r\n".as_bytes());
        let (reply, used) = Reply::parse(&buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(reply.lines(), ["ok", "bad \u{fffd}x", "fine \u{e9}"]);
        // Long lines, and the enhanced code stripped only where it repeats.
        let first = "a".repeat(3000);
        let wire = format!("550-5.1.1 {first}\r\n550-5.1.2 x\r\n550 5.1.1\r\n");
        let (reply, used) = Reply::parse(wire.as_bytes()).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(reply.lines(), [first.as_str(), "5.1.2 x", ""]);
        let owned = reply.clone().into_owned();
        assert_eq!(owned, reply);
    }

    #[test]
    fn owned_single_line_replies_keep_short_text_inline() {
        let mut asm = ReplyAssembler::default();
        let reply = asm
            .push_line(b"250 2.0.0 Ok: queued as 4Z1b2c3d4e")
            .unwrap()
            .unwrap();
        assert!(matches!(
            reply.lines,
            super::super::Lines::One(Text::Inline { .. })
        ));
        assert_eq!(reply.lines(), ["Ok: queued as 4Z1b2c3d4e"]);
        let long = format!("250 {}", "x".repeat(200));
        let reply = asm.push_line(long.as_bytes()).unwrap().unwrap();
        assert!(matches!(
            reply.lines,
            super::super::Lines::One(Text::Heap(_))
        ));
        assert_eq!(reply.first_line().len(), 200);
    }

    proptest! {
        #[test]
        fn scan_line_matches_reference(
            buf in proptest::collection::vec(
                prop_oneof![
                    Just(b'\n'), Just(b'\r'), Just(0u8), Just(b'\t'), Just(0x0du8 + 1),
                    Just(0x80u8), Just(0xffu8), any::<u8>(), b'a'..=b'z',
                ],
                0..80,
            ),
        ) {
            prop_assert_eq!(scan_line(&buf), scan_reference(&buf));
        }
    }
}
