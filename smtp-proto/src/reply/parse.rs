//! Reply parsing: a whole reply from a buffer, or line by line.

use std::borrow::Cow;

use thiserror::Error;

use super::enhanced::{self, EnhancedStatusCode};
use super::{Lines, Reply, ReplyCode};

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
    let (&[a, b, c], rest) = line
        .split_first_chunk::<3>()
        .ok_or(ReplyError::MissingCode)?;
    if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
        return Err(ReplyError::MissingCode);
    }
    let n = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    let code = ReplyCode::new(n).map_err(|e| ReplyError::InvalidCode(e.0))?;
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

/// Eight copies of one byte, for the word-at-a-time scan.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// The high bit of each byte of `w` that is zero. Bits above a zero byte may
/// be set spuriously (borrow), but the lowest set bit is always exact, which
/// is all [`scan_word`] uses.
const fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(splat(0x01)) & !w & splat(0x80)
}

/// Whether some byte of `w` is below 0x0E (NUL, TAB, LF, CR and a few rare
/// controls): the "haszero(x - n)" test. Almost every word of a reply line
/// fails it, so [`scan_line`] looks closer only at the few that pass.
const fn has_low_byte(w: u64) -> bool {
    w.wrapping_sub(splat(0x0E)) & !w & splat(0x80) != 0
}

/// A word of [`scan_line`] that holds a low byte: the byte index of its
/// first LF, and of its first CR or NUL when that comes before any LF.
#[inline(never)]
fn scan_word(w: u64) -> (Option<usize>, Option<usize>) {
    let lf = zero_bytes(w ^ splat(b'\n'));
    let bad = zero_bytes(w ^ splat(b'\r')) | zero_bytes(w);
    // Little endian: the lowest set bit belongs to the first byte in memory.
    let lf_at = (lf != 0).then(|| lf.trailing_zeros() as usize / 8);
    let bad_at = (bad != 0)
        .then(|| bad.trailing_zeros() as usize / 8)
        .filter(|&b| lf_at.is_none_or(|l| b < l));
    (lf_at, bad_at)
}

/// Finds the end of the first line in `buf` in one pass: returns the index
/// of the first LF and the index of the first CR or NUL before it (which may
/// be the CR of the line's CRLF), or `None` when there is no LF.
///
/// Reply lines are short and almost never hold a control character, so the
/// scan reads eight bytes at a time (SWAR), never byte by byte.
fn scan_line(buf: &[u8]) -> Option<(usize, Option<usize>)> {
    let mut first_bad = None;
    let mut base = 0usize;
    let mut rest = buf;
    let mut last = [b'a'; 8];
    loop {
        let w = match rest.split_first_chunk::<8>() {
            Some((word, tail)) => {
                rest = tail;
                u64::from_le_bytes(*word)
            }
            None if rest.is_empty() => return None,
            None => {
                // Pad the last few bytes with a byte the scan ignores.
                for (d, s) in last.iter_mut().zip(rest) {
                    *d = *s;
                }
                rest = &[];
                u64::from_le_bytes(last)
            }
        };
        if has_low_byte(w) {
            let (lf, bad) = scan_word(w);
            if first_bad.is_none() {
                first_bad = bad.map(|b| base + b);
            }
            if let Some(lf) = lf {
                return Some((base + lf, first_bad));
            }
        }
        base += 8;
    }
}

/// Reply text as a string: borrowed when it is valid UTF-8 (the usual
/// case, checked by the standard library's ASCII-fast validator), otherwise
/// decoded lossily.
fn text_str(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// How far ahead of a multi-line reply's current line its UTF-8 is checked
/// in one call (the rest of a typical EHLO reply; bounded so a buffer full of
/// pipelined replies is not re-checked for every reply).
const UTF8_WINDOW: usize = 2048;

/// Valid UTF-8 over a stretch of the input, `text` starting at byte `start`,
/// so the lines of a multi-line reply are checked in one `from_utf8` call
/// rather than one call per line.
struct Utf8Window<'a> {
    buf: &'a [u8],
    start: usize,
    text: &'a str,
}

impl<'a> Utf8Window<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            start: 0,
            text: "",
        }
    }

    /// The text of `bytes`, a sub-slice of the window's buffer.
    fn text(&mut self, bytes: &'a [u8]) -> Cow<'a, str> {
        // `bytes` lies inside `buf` (the parser slices it from there), so
        // the difference of the addresses is its offset.
        let Some(at) = bytes.as_ptr().addr().checked_sub(self.buf.as_ptr().addr()) else {
            return text_str(bytes);
        };
        if let Some(s) = self.lookup(at, bytes.len()) {
            return Cow::Borrowed(s);
        }
        let end = self
            .buf
            .len()
            .min(at.saturating_add(UTF8_WINDOW.max(bytes.len())));
        let ahead = self.buf.get(at..end).unwrap_or_default();
        self.start = at;
        self.text = match std::str::from_utf8(ahead) {
            Ok(s) => s,
            // Keep the valid prefix; lines past it are decoded one by one.
            Err(e) => ahead
                .get(..e.valid_up_to())
                .and_then(|v| std::str::from_utf8(v).ok())
                .unwrap_or_default(),
        };
        match self.lookup(at, bytes.len()) {
            Some(s) => Cow::Borrowed(s),
            None => text_str(bytes),
        }
    }

    fn lookup(&self, at: usize, len: usize) -> Option<&'a str> {
        let from = at.checked_sub(self.start)?;
        // `get` also refuses a range that does not fall on char boundaries.
        self.text.get(from..from.checked_add(len)?)
    }
}

/// A reply under construction.
#[derive(Debug)]
struct Partial<'a> {
    code: ReplyCode,
    enhanced: Option<EnhancedStatusCode>,
    lines: Lines<'a>,
    bytes: usize,
}

/// Room for the lines of a multi-line reply, reserved when its second line
/// arrives: enough for a typical EHLO reply without growing.
const MULTI_LINE_ROOM: usize = 16;

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
        Self {
            code: line.code,
            enhanced,
            lines: Lines::One(text(text_bytes)),
            bytes: wire_len,
        }
    }

    #[inline]
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
        self.lines.push(text(bytes), MULTI_LINE_ROOM);
        Ok(())
    }

    fn finish(self) -> Reply<'a> {
        Reply::from_lines(self.code, self.enhanced, self.lines)
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
        let mut window = Utf8Window::new(buf);
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
            match partial.as_mut() {
                // A single-line reply: its text is all there is to check.
                None if !line.more => {
                    check_first(wire_len, limits)?;
                    partial = Some(Partial::start(&line, wire_len, text_str));
                }
                None => {
                    check_first(wire_len, limits)?;
                    partial = Some(Partial::start(&line, wire_len, |t| window.text(t)));
                }
                Some(p) => p.push(&line, wire_len, limits, |t| window.text(t))?,
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
        let text = |t: &[u8]| Cow::Owned(text_str(t).into_owned());
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
    fn multi_line_text_checked_through_window() {
        // 0xFF is never valid UTF-8.
        let mut buf = b"250-ok\r\n250-bad \xffx\r\n".to_vec();
        buf.extend_from_slice("250 fine \u{e9}\r\n".as_bytes());
        let (reply, used) = Reply::parse(&buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(reply.lines(), ["ok", "bad \u{fffd}x", "fine \u{e9}"]);
        assert!(matches!(reply.lines()[0], Cow::Borrowed(_)));
        assert!(matches!(reply.lines()[1], Cow::Owned(_)));
        assert!(matches!(reply.lines()[2], Cow::Borrowed(_)));

        // Lines past the window, and a two-byte character across its end.
        for first_len in [UTF8_WINDOW - 12, UTF8_WINDOW - 11, UTF8_WINDOW + 5] {
            let first = "a".repeat(first_len);
            let second = format!("{}\u{e9}\u{e9}{}", "b".repeat(3), "c".repeat(UTF8_WINDOW));
            let wire = format!("250-{first}\r\n250-{second}\r\n250 end\r\n");
            let (reply, used) = Reply::parse(wire.as_bytes()).unwrap().unwrap();
            assert_eq!(used, wire.len());
            assert_eq!(reply.lines(), [first.as_str(), second.as_str(), "end"]);
            assert!(reply.lines().iter().all(|l| matches!(l, Cow::Borrowed(_))));
        }
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
