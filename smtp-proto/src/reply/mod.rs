//! SMTP replies: codes, enhanced status codes, single- and multi-line text
//! (RFC 5321 §4.2, RFC 3463).
//!
//! ```text
//! Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//!              Reply-code [ SP textstring ] CRLF
//! Reply-code = %x32-35 %x30-35 %x30-39
//! textstring = 1*(%d09 / %d32-126)   ; extended to UTF-8 by RFC 6531
//! ```
//!
//! One [`Reply`] type serves both sides: the server builds it through the
//! constructors (the common ones ready made and infallible:
//! [`Reply::ok`], [`Reply::mailbox_unavailable`], [`Reply::local_error`]…)
//! and [`Reply::encode`]s it, the client gets it from
//! [`Reply::parse`] (a whole reply in a buffer, borrowed) or from a
//! [`ReplyAssembler`] fed one framed line at a time (owned). Because both
//! directions go through the same value, `parse(encode(r)) == r` holds for
//! every reply the constructors can build, and the tests check it.
//!
//! # Decisions
//!
//! - **Negative replies are values, not errors.** A `550` is a [`Reply`];
//!   [`ReplyError`] is only for bytes that are not a reply at all.
//! - **Empty text is allowed.** `250\r\n` and `250 \r\n` both parse to one
//!   empty line (lettre rejects the first). Encoding writes `250\r\n`.
//! - **Every line of a multi-line reply must carry the same code.** `250-a`
//!   followed by `251 b` is [`ReplyError::MixedCodes`] (Stalwart accepts it and
//!   keeps the first code; a client acting on the wrong code is worse than one
//!   that stops).
//! - **Enhanced status codes** (RFC 3463) are split off the text when the
//!   first line's text starts with `class.subject.detail` whose class equals
//!   the reply code's first digit, followed by a space or the end of the line
//!   (`250 2.1.5 Ok`, `250 2.0.0`). A code of another class (`550 2.0.0 x`),
//!   or none on the first line, leaves every line's text untouched. When the
//!   first line has one, the same code (same value) is also stripped from the
//!   start of every later line that carries it (Postfix writes it on every
//!   line; servers that write it once are read the same way). Encoding writes
//!   it on every line. Constructors refuse text that would be read back as an
//!   enhanced code it was not given as, so the round trip is exact.
//! - **Text is UTF-8** (RFC 6531 permits UTF-8 in reply text). Invalid UTF-8
//!   from a peer is decoded lossily (each bad sequence becomes U+FFFD) rather
//!   than refused: the code, which is what a session acts on, is intact, and a
//!   garbled diagnostic is no reason to drop a connection. Valid text stays
//!   borrowed.
//! - **CR, LF and NUL never appear in text**: constructors refuse them
//!   ([`ReplyTextError`]) and the parser reports them
//!   ([`ReplyError::InvalidChar`]), so [`Reply::encode`] is infallible and a
//!   parsed reply relayed by a proxy cannot inject a line.
//! - **Bounded**: at most [`ReplyLimits::max_lines`] lines and
//!   [`ReplyLimits::max_bytes`] bytes per reply (defaults 128 and 64 KiB). The
//!   length of each line is the line framer's business (RFC 5321
//!   §4.5.3.1.5 says 512 octets; real servers send more).

mod code;
mod common;
mod enhanced;
mod parse;

use std::borrow::Cow;

use thiserror::Error;

pub use code::{ReplyClass, ReplyCode, ReplyCodeError};
pub use enhanced::{EnhancedStatusCode, EnhancedStatusCodeError};
pub use parse::{ReplyAssembler, ReplyError, ReplyLimits};

/// The longest reply line RFC 5321 requires a client to accept, including the
/// code and CRLF (RFC 5321 §4.5.3.1.5). Servers should keep their lines within
/// it; this module does not enforce it on input (the line framer does).
pub const MAX_REPLY_LINE_LEN: usize = 512;

/// An SMTP reply: a code, an optional enhanced status code and one or more
/// lines of text (RFC 5321 §4.2).
///
/// There is always at least one line; a reply without text has one empty
/// line. The enhanced code, when present, is not part of the line texts (see
/// the [module docs](self) for how it is split and written back).
///
/// A parsed reply keeps its lines as they were received, in one piece, and
/// [`Reply::lines`] splits them as it goes: parsing a multi-line reply
/// allocates nothing. An owned reply ([`Reply::into_owned`], and every reply
/// a [`ReplyAssembler`] returns) keeps short text inside itself, so the usual
/// replies (`250 2.1.5 Ok`, `354 …`, `250 2.0.0 Ok: queued as …`) are owned
/// without a heap allocation.
#[derive(Clone)]
pub struct Reply<'a> {
    code: ReplyCode,
    enhanced: Option<EnhancedStatusCode>,
    lines: Lines<'a>,
}

/// The lines of a reply, in one of three forms; [`Reply::lines`] serves
/// them all as one iterator, and equality, hashing and `Debug` of [`Reply`]
/// go through it, so the representation is invisible.
#[derive(Clone)]
enum Lines<'a> {
    /// A single line's text.
    One(Text<'a>),
    /// A parsed multi-line reply as received, lines separated by CRLF,
    /// each with its code and separator, without the final CRLF; every line
    /// was checked by the parser. `count` lines.
    Wire { raw: Text<'a>, count: usize },
    /// Lines given one by one to a constructor.
    Many(Vec<Cow<'a, str>>),
}

/// Bytes of text an owned reply keeps inside itself.
const INLINE: usize = 70;

/// A string borrowed, kept inline when short, or on the heap.
#[derive(Clone)]
enum Text<'a> {
    Borrowed(&'a str),
    /// The first `len` bytes of the array: always a whole UTF-8 string,
    /// copied from a `&str`.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(String),
}

impl<'a> Text<'a> {
    fn as_str(&self) -> &str {
        match self {
            Self::Borrowed(s) => s,
            // Copied from a `str` whole: valid UTF-8, so `from_utf8` cannot
            // fail (and is cheap on text this short).
            Self::Inline { len, bytes } => bytes
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            Self::Heap(s) => s,
        }
    }

    /// An owned copy: inline when it fits.
    fn copied(s: &str) -> Text<'static> {
        match u8::try_from(s.len()) {
            Ok(len) if s.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                if let Some(dst) = bytes.get_mut(..s.len()) {
                    dst.copy_from_slice(s.as_bytes());
                }
                Text::Inline { len, bytes }
            }
            _ => Text::Heap(s.to_owned()),
        }
    }

    fn from_cow(s: Cow<'a, str>) -> Self {
        match s {
            Cow::Borrowed(s) => Self::Borrowed(s),
            Cow::Owned(s) if s.len() <= INLINE => Text::copied(&s),
            Cow::Owned(s) => Self::Heap(s),
        }
    }

    fn into_owned(self) -> Text<'static> {
        match self {
            Self::Borrowed(s) => Text::copied(s),
            Self::Inline { len, bytes } => Text::Inline { len, bytes },
            Self::Heap(s) => Text::Heap(s),
        }
    }
}

impl<'a> Lines<'a> {
    /// Collects lines, keeping a single one as [`Lines::One`].
    fn collect<I, T>(lines: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Cow<'a, str>>,
    {
        let mut iter = lines.into_iter();
        let Some(first) = iter.next() else {
            return Self::Many(Vec::new());
        };
        let first = first.into();
        match iter.next() {
            None => Self::One(Text::from_cow(first)),
            Some(second) => {
                let mut all = Vec::with_capacity(iter.size_hint().0.saturating_add(2));
                all.push(first);
                all.push(second.into());
                all.extend(iter.map(Into::into));
                Self::Many(all)
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Wire { count, .. } => *count,
            Self::Many(lines) => lines.len(),
        }
    }

    fn into_owned(self) -> Lines<'static> {
        match self {
            Self::One(text) => Lines::One(text.into_owned()),
            Self::Wire { raw, count } => Lines::Wire {
                raw: raw.into_owned(),
                count,
            },
            Self::Many(lines) => Lines::Many(
                lines
                    .into_iter()
                    .map(|l| Cow::Owned(l.into_owned()))
                    .collect(),
            ),
        }
    }
}

/// The lines of a [`Reply`], each without code, separator, enhanced code or
/// CRLF (see [`Reply::lines`]).
#[derive(Clone, Debug)]
pub struct ReplyLines<'r> {
    inner: LinesIter<'r>,
    enhanced: Option<EnhancedStatusCode>,
    left: usize,
}

#[derive(Clone, Debug)]
enum LinesIter<'r> {
    One(Option<&'r str>),
    Wire(&'r str),
    Many(std::slice::Iter<'r, Cow<'r, str>>),
}

impl<'r> Iterator for ReplyLines<'r> {
    type Item = &'r str;

    fn next(&mut self) -> Option<&'r str> {
        let line = match &mut self.inner {
            LinesIter::One(line) => line.take(),
            LinesIter::Many(lines) => lines.next().map(|l| &**l),
            LinesIter::Wire(rest) => {
                if self.left == 0 {
                    return None;
                }
                // The parser let no CR into the text: the first CR is the
                // line's CRLF (an ASCII pair, so both ends are boundaries).
                let end = find_cr(rest.as_bytes()).unwrap_or(rest.len());
                let line = rest.get(..end).unwrap_or_default();
                *rest = rest.get(end + 2..).unwrap_or_default();
                // `ddd`, `ddd-text` or `ddd text`: the code and separator are
                // ASCII, so byte 3 and 4 are char boundaries when present.
                let text = line.get(4..).unwrap_or_default();
                Some(match self.enhanced {
                    Some(esc) => match enhanced::split_text(text.as_bytes(), esc.class()) {
                        Some((found, n)) if found == esc => text.get(n..).unwrap_or_default(),
                        _ => text,
                    },
                    None => text,
                })
            }
        };
        self.left = self.left.saturating_sub(1);
        line
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for ReplyLines<'_> {}

/// The index of the first CR in `b`, eight bytes at a time (reply lines are
/// short: a vector search costs more to set up than this whole loop).
#[inline]
pub(crate) fn find_cr(b: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const CR: u64 = u64::from_ne_bytes([b'\r'; 8]);
    let mut words = b.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let mut w = [0; 8];
        w.copy_from_slice(word);
        let x = u64::from_le_bytes(w) ^ CR;
        // The lowest set bit marks the first zero byte of `x` exactly.
        let zero = x.wrapping_sub(ONES) & !x & HIGH;
        if zero != 0 {
            return Some(base + zero.trailing_zeros() as usize / 8);
        }
        base += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| c == b'\r')
        .map(|i| base + i)
}

/// Compares the lines with a list, as in `assert_eq!(reply.lines(), ["a", "b"])`.
impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for ReplyLines<'_> {
    fn eq(&self, other: &[S; N]) -> bool {
        self.len() == N && self.clone().eq(other.iter().map(AsRef::as_ref))
    }
}

/// Compares the lines with a list.
impl<S: AsRef<str>> PartialEq<[S]> for ReplyLines<'_> {
    fn eq(&self, other: &[S]) -> bool {
        self.len() == other.len() && self.clone().eq(other.iter().map(AsRef::as_ref))
    }
}

/// Compares the lines with a list.
impl<S: AsRef<str>> PartialEq<&[S]> for ReplyLines<'_> {
    fn eq(&self, other: &&[S]) -> bool {
        *self == **other
    }
}

/// Compares the lines with a list.
impl<S: AsRef<str>> PartialEq<Vec<S>> for ReplyLines<'_> {
    fn eq(&self, other: &Vec<S>) -> bool {
        *self == other[..]
    }
}

impl PartialEq for Reply<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.enhanced == other.enhanced
            && self.lines.len() == other.lines.len()
            && self.lines().eq(other.lines())
    }
}

impl Eq for Reply<'_> {}

impl std::hash::Hash for Reply<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.code.hash(state);
        self.enhanced.hash(state);
        state.write_usize(self.lines.len());
        for line in self.lines() {
            line.hash(state);
        }
    }
}

impl std::fmt::Debug for Reply<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("code", &self.code)
            .field("enhanced", &self.enhanced)
            .field("lines", &self.lines().collect::<Vec<_>>())
            .finish()
    }
}

/// The reply as the wire shows it, without the CRLFs: `550 5.1.1 No such
/// user`; a multi-line reply puts each line on its own, joined by `\n`
/// (`250-mx.example.com\n250 PIPELINING`), ready for a log line or an
/// error message.
///
/// ```
/// # use smtp_proto::reply::Reply;
/// assert_eq!(Reply::ok().to_string(), "250 2.0.0 Ok");
/// let (ehlo, _) = Reply::parse(b"250-mx.example.com\r\n250 SIZE 1000\r\n").unwrap().unwrap();
/// assert_eq!(ehlo.to_string(), "250-mx.example.com\n250 SIZE 1000");
/// ```
impl std::fmt::Display for Reply<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", self.code)?;
            let separator = if i < last { "-" } else { " " };
            match (self.enhanced, line.is_empty()) {
                (None, true) if i == last => {}
                (None, _) => write!(f, "{separator}{line}")?,
                (Some(esc), true) => write!(f, "{separator}{esc}")?,
                (Some(esc), false) => write!(f, "{separator}{esc} {line}")?,
            }
        }
        Ok(())
    }
}

/// Text that cannot go into a reply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplyTextError {
    /// A line contains CR, LF or NUL, which would break the framing.
    #[error("reply line {line} contains forbidden character {ch:?}")]
    InvalidChar {
        /// Index of the offending line.
        line: usize,
        /// The character (`'\r'`, `'\n'` or `'\0'`).
        ch: char,
    },
    /// A reply needs at least one line (which may be empty).
    #[error("a reply needs at least one line")]
    NoLines,
    /// The enhanced code's class differs from the reply code's first digit
    /// (RFC 3463 §2: "the class ... must match the reply code").
    #[error("enhanced status class {enhanced} does not match reply code {code}")]
    ClassMismatch {
        /// The reply code.
        code: ReplyCode,
        /// The enhanced status code.
        enhanced: EnhancedStatusCode,
    },
    /// The reply has no enhanced code but its first line starts with one of
    /// the reply's class; a peer would read it as one. Use
    /// [`Reply::with_enhanced`] instead.
    #[error("reply text starts with an enhanced status code; pass it as one")]
    AmbiguousText,
}

impl<'a> Reply<'a> {
    /// A single-line reply without enhanced code.
    ///
    /// ```
    /// # use smtp_proto::reply::{Reply, ReplyCode};
    /// let reply = Reply::new(ReplyCode::OK, "Ok").unwrap();
    /// let mut out = Vec::new();
    /// reply.encode(&mut out);
    /// assert_eq!(out, b"250 Ok\r\n");
    /// ```
    pub fn new(code: ReplyCode, text: impl Into<Cow<'a, str>>) -> Result<Self, ReplyTextError> {
        Self::multiline(code, None, [text])
    }

    /// A single-line reply with an enhanced status code, which must be of the
    /// reply code's class.
    ///
    /// ```
    /// # use smtp_proto::reply::{EnhancedStatusCode, Reply, ReplyCode};
    /// let reply = Reply::with_enhanced(
    ///     ReplyCode::MAILBOX_UNAVAILABLE,
    ///     EnhancedStatusCode::BAD_DESTINATION_MAILBOX,
    ///     "No such user",
    /// )
    /// .unwrap();
    /// let mut out = Vec::new();
    /// reply.encode(&mut out);
    /// assert_eq!(out, b"550 5.1.1 No such user\r\n");
    /// ```
    pub fn with_enhanced(
        code: ReplyCode,
        enhanced: EnhancedStatusCode,
        text: impl Into<Cow<'a, str>>,
    ) -> Result<Self, ReplyTextError> {
        Self::multiline(code, Some(enhanced), [text])
    }

    /// A reply of one or more lines.
    ///
    /// ```
    /// # use smtp_proto::reply::{Reply, ReplyCode};
    /// let reply = Reply::multiline(ReplyCode::OK, None, ["mx.example.com", "PIPELINING"]).unwrap();
    /// let mut out = Vec::new();
    /// reply.encode(&mut out);
    /// assert_eq!(out, b"250-mx.example.com\r\n250 PIPELINING\r\n");
    /// ```
    pub fn multiline<I, T>(
        code: ReplyCode,
        enhanced: Option<EnhancedStatusCode>,
        lines: I,
    ) -> Result<Self, ReplyTextError>
    where
        I: IntoIterator<Item = T>,
        T: Into<Cow<'a, str>>,
    {
        let lines = Lines::collect(lines);
        let reply = Self {
            code,
            enhanced,
            lines,
        };
        validate(&reply)?;
        Ok(reply)
    }

    /// Starts a multi-line reply built line by line; errors are reported by
    /// [`ReplyBuilder::build`].
    pub fn builder(code: ReplyCode) -> ReplyBuilder<'a> {
        ReplyBuilder {
            code,
            enhanced: None,
            lines: Vec::new(),
        }
    }

    /// Assembles a reply whose lines the caller has already checked (free of
    /// CR, LF and NUL, at least one).
    pub(crate) fn from_parts(
        code: ReplyCode,
        enhanced: Option<EnhancedStatusCode>,
        lines: Vec<Cow<'a, str>>,
    ) -> Self {
        Self {
            code,
            enhanced,
            lines: Lines::collect(lines),
        }
    }

    /// A parsed single-line reply; the parser has checked the text.
    #[inline(always)]
    fn parsed_one(code: ReplyCode, enhanced: Option<EnhancedStatusCode>, text: Text<'a>) -> Self {
        Self {
            code,
            enhanced,
            lines: Lines::One(text),
        }
    }

    /// A parsed multi-line reply: `raw` is every line as received (code,
    /// separator, text), CRLF between them, none at the end; the parser has
    /// checked each line.
    #[inline(always)]
    fn parsed_wire(
        code: ReplyCode,
        enhanced: Option<EnhancedStatusCode>,
        raw: Text<'a>,
        count: usize,
    ) -> Self {
        Self {
            code,
            enhanced,
            lines: Lines::Wire { raw, count },
        }
    }

    /// The reply code.
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The enhanced status code, when the reply carries one.
    pub fn enhanced_code(&self) -> Option<EnhancedStatusCode> {
        self.enhanced
    }

    /// The text of each line, without code, separator, enhanced code or CRLF.
    /// Never empty.
    ///
    /// ```
    /// # use smtp_proto::reply::Reply;
    /// let (reply, _) = Reply::parse(b"250-mx.example.com\r\n250 SIZE\r\n").unwrap().unwrap();
    /// assert!(reply.lines().eq(["mx.example.com", "SIZE"]));
    /// assert_eq!(reply.lines().len(), 2);
    /// ```
    pub fn lines(&self) -> ReplyLines<'_> {
        let inner = match &self.lines {
            Lines::One(text) => LinesIter::One(Some(text.as_str())),
            Lines::Wire { raw, .. } => LinesIter::Wire(raw.as_str()),
            Lines::Many(lines) => LinesIter::Many(lines.iter()),
        };
        ReplyLines {
            inner,
            enhanced: self.enhanced,
            left: self.lines.len(),
        }
    }

    /// A parsed multi-line reply without enhanced code as received: every
    /// line with its code and separator, CRLF between them, none at the
    /// end (what [`Reply::lines`] splits). For readers that walk the lines
    /// in one pass of their own (the EHLO reply).
    pub(crate) fn wire_lines(&self) -> Option<&str> {
        match &self.lines {
            Lines::Wire { raw, .. } if self.enhanced.is_none() => Some(raw.as_str()),
            _ => None,
        }
    }

    /// The first line's text (in the greeting and the EHLO reply, the
    /// server's domain comes first).
    pub fn first_line(&self) -> &str {
        // There is always a line: constructors refuse none and the parser
        // creates a reply only from at least one.
        self.lines().next().unwrap_or_default()
    }

    /// All lines joined with `\n`, for logs and error messages.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, line) in self.lines().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(line);
        }
        out
    }

    /// Shorthand for `self.code().is_positive()` (`2yz` or `3yz`).
    pub fn is_positive(&self) -> bool {
        self.code.is_positive()
    }

    /// Shorthand for `self.code().is_positive_completion()` (`2yz`).
    pub fn is_positive_completion(&self) -> bool {
        self.code.is_positive_completion()
    }

    /// Shorthand for `self.code().is_positive_intermediate()` (`3yz`).
    pub fn is_positive_intermediate(&self) -> bool {
        self.code.is_positive_intermediate()
    }

    /// Shorthand for `self.code().is_transient_negative()` (`4yz`).
    pub fn is_transient_negative(&self) -> bool {
        self.code.is_transient_negative()
    }

    /// Shorthand for `self.code().is_permanent_negative()` (`5yz`).
    pub fn is_permanent_negative(&self) -> bool {
        self.code.is_permanent_negative()
    }

    /// Appends the reply in wire form: `250-line\r\n` … `250 last\r\n`, the
    /// enhanced code (if any) after the separator of every line, and no
    /// trailing space when a line's text is empty.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let code = self.code.to_ascii();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines().enumerate() {
            out.extend_from_slice(&code);
            let more = i < last;
            match (self.enhanced, line.is_empty()) {
                (None, true) if !more => {}
                (None, _) => {
                    out.push(if more { b'-' } else { b' ' });
                    out.extend_from_slice(line.as_bytes());
                }
                (Some(esc), empty) => {
                    out.push(if more { b'-' } else { b' ' });
                    esc.encode(out);
                    if !empty {
                        out.push(b' ');
                        out.extend_from_slice(line.as_bytes());
                    }
                }
            }
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The reply in wire form, as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Detaches the reply from the buffer it was parsed from.
    pub fn into_owned(self) -> Reply<'static> {
        Reply {
            code: self.code,
            enhanced: self.enhanced,
            lines: self.lines.into_owned(),
        }
    }
}

fn validate(reply: &Reply<'_>) -> Result<(), ReplyTextError> {
    let (code, enhanced) = (reply.code, reply.enhanced);
    let first = reply.lines().next().ok_or(ReplyTextError::NoLines)?;
    for (i, line) in reply.lines().enumerate() {
        if let Some(pos) = memchr::memchr3(b'\r', b'\n', 0, line.as_bytes()) {
            return Err(ReplyTextError::InvalidChar {
                line: i,
                // `pos` indexes an ASCII byte found by memchr3.
                ch: char::from(line.as_bytes()[pos]),
            });
        }
    }
    match enhanced {
        Some(esc) if esc.class() != code.first_digit() => Err(ReplyTextError::ClassMismatch {
            code,
            enhanced: esc,
        }),
        None if enhanced::split_text(first.as_bytes(), code.first_digit()).is_some() => {
            Err(ReplyTextError::AmbiguousText)
        }
        _ => Ok(()),
    }
}

/// Builds a multi-line [`Reply`] one line at a time.
///
/// ```
/// # use smtp_proto::reply::{EnhancedStatusCode, Reply, ReplyCode};
/// let reply = Reply::builder(ReplyCode::MAILBOX_UNAVAILABLE)
///     .enhanced(EnhancedStatusCode::NOT_AUTHORIZED)
///     .line("Relaying denied.")
///     .line("See https://example.com/policy")
///     .build()
///     .unwrap();
/// assert_eq!(
///     reply.to_bytes(),
///     b"550-5.7.1 Relaying denied.\r\n550 5.7.1 See https://example.com/policy\r\n"
/// );
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ReplyBuilder<'a> {
    code: ReplyCode,
    enhanced: Option<EnhancedStatusCode>,
    lines: Vec<Cow<'a, str>>,
}

impl<'a> ReplyBuilder<'a> {
    /// Sets the enhanced status code written on every line.
    pub fn enhanced(mut self, enhanced: EnhancedStatusCode) -> Self {
        self.enhanced = Some(enhanced);
        self
    }

    /// Appends a line of text.
    pub fn line(mut self, text: impl Into<Cow<'a, str>>) -> Self {
        self.lines.push(text.into());
        self
    }

    /// Validates and returns the reply.
    pub fn build(self) -> Result<Reply<'a>, ReplyTextError> {
        Reply::multiline(self.code, self.enhanced, self.lines)
    }
}
