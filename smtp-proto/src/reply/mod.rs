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
//! constructors and [`Reply::encode`]s it, the client gets it from
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
#[derive(Clone)]
pub struct Reply<'a> {
    code: ReplyCode,
    enhanced: Option<EnhancedStatusCode>,
    lines: Lines<'a>,
}

/// The lines of a reply. Most replies have one line, which is kept inline so
/// that parsing or building it allocates nothing; [`Lines::as_slice`] serves
/// both forms as one slice, and equality, hashing and `Debug` of [`Reply`] go
/// through that slice, so the representation is invisible.
#[derive(Clone)]
enum Lines<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl<'a> Lines<'a> {
    /// Collects lines, keeping a single one inline.
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
            None => Self::One(first),
            Some(second) => {
                let mut all = Vec::with_capacity(iter.size_hint().0.saturating_add(2));
                all.push(first);
                all.push(second.into());
                all.extend(iter.map(Into::into));
                Self::Many(all)
            }
        }
    }

    fn as_slice(&self) -> &[Cow<'a, str>] {
        match self {
            Self::One(line) => std::slice::from_ref(line),
            Self::Many(lines) => lines,
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Many(lines) => lines.len(),
        }
    }

    /// Appends a line; a single inline line moves into a vector with room
    /// for `room` lines in all.
    #[inline]
    fn push(&mut self, line: Cow<'a, str>, room: usize) {
        match self {
            Self::Many(lines) => lines.push(line),
            Self::One(first) => {
                let mut lines = Vec::with_capacity(room.max(2));
                lines.push(std::mem::take(first));
                lines.push(line);
                *self = Self::Many(lines);
            }
        }
    }

    fn into_owned(self) -> Lines<'static> {
        let own = |l: Cow<'a, str>| Cow::Owned(l.into_owned());
        match self {
            Self::One(line) => Lines::One(own(line)),
            Self::Many(lines) => Lines::Many(lines.into_iter().map(own).collect()),
        }
    }
}

impl std::fmt::Debug for Lines<'_> {
    /// As the slice of lines, whichever the form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

impl PartialEq for Reply<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.enhanced == other.enhanced
            && self.lines.as_slice() == other.lines.as_slice()
    }
}

impl Eq for Reply<'_> {}

impl std::hash::Hash for Reply<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Field by field, as `#[derive(Hash)]` over a `Vec` of lines did.
        self.code.hash(state);
        self.enhanced.hash(state);
        self.lines.as_slice().hash(state);
    }
}

impl std::fmt::Debug for Reply<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("code", &self.code)
            .field("enhanced", &self.enhanced)
            .field("lines", &self.lines)
            .finish()
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
        validate(code, enhanced, lines.as_slice())?;
        Ok(Self {
            code,
            enhanced,
            lines,
        })
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

    /// Assembles a parsed reply from its lines; the parser has already
    /// checked every line.
    fn from_lines(code: ReplyCode, enhanced: Option<EnhancedStatusCode>, lines: Lines<'a>) -> Self {
        Self {
            code,
            enhanced,
            lines,
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
    pub fn lines(&self) -> &[Cow<'a, str>] {
        self.lines.as_slice()
    }

    /// The first line's text (in the greeting and the EHLO reply, the
    /// server's domain comes first).
    pub fn first_line(&self) -> &str {
        // `lines` is never empty: constructors refuse it and the parser
        // creates a reply only from at least one line.
        self.lines.as_slice().first().map_or("", |l| l)
    }

    /// All lines joined with `\n`, for logs and error messages.
    pub fn text(&self) -> String {
        self.lines.as_slice().join("\n")
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
        let lines = self.lines.as_slice();
        let last = lines.len().saturating_sub(1);
        out.reserve(lines.iter().map(|l| l.len() + 16).sum());
        for (i, line) in lines.iter().enumerate() {
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

fn validate(
    code: ReplyCode,
    enhanced: Option<EnhancedStatusCode>,
    lines: &[Cow<'_, str>],
) -> Result<(), ReplyTextError> {
    let first = lines.first().ok_or(ReplyTextError::NoLines)?;
    for (i, line) in lines.iter().enumerate() {
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
