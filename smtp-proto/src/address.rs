//! Domains, address literals, mailboxes, reverse- and forward-paths
//! (RFC 5321 §4.1.2, §4.1.3; RFC 6531 §3.3).
//!
//! These are the values that end up between `<` and `>` in `MAIL FROM` and
//! `RCPT TO`, and after `EHLO`. Every type here is a *validated newtype*: it
//! can only be built by parsing or by a checked constructor, and neither
//! accepts CR, LF, NUL or any other control character. That is what makes
//! encoding infallible and what stops a program from smuggling a second
//! command through an address (mail-send formats raw strings; we don't).
//!
//! ## Choices worth knowing
//!
//! - **Canonical local parts.** [`LocalPart`] keeps the *decoded* value
//!   (`"john\ doe"` becomes `john doe`). Encoding writes it bare when it is a
//!   valid `Dot-string` and as a `Quoted-string` with the minimum of escapes
//!   otherwise, so equal values always encode the same way.
//! - **Case.** [`Domain`] compares ASCII case-insensitively (DNS semantics);
//!   local parts compare exactly (RFC 5321 §2.4: they may be case-sensitive).
//! - **Underscores.** Domain labels may contain `_`. RFC 5321 does not allow
//!   it, but real HELO names (Windows host names) and DNS names carry it, and
//!   it is harmless on the wire; Postfix accepts it too.
//! - **SMTPUTF8.** UTF-8 local parts and U-label domains parse (RFC 6531);
//!   [`Mailbox::is_utf8`] and friends report them so the session can refuse
//!   them (`553 5.6.7`) when SMTPUTF8 was not negotiated.
//! - **Source routes** (`<@a,@b:user@c>`) are accepted and dropped
//!   (RFC 5321 §4.1.1.3, Appendix C).
//! - **Limits** (RFC 5321 §4.5.3.1) are typed errors: local part 64 octets,
//!   domain 255, path 256 including the angle brackets. When parsing, they are
//!   measured on the text as received; for constructors, on the canonical
//!   encoding (which is never longer, except for one IPv6 corner that is
//!   checked as well), so whatever parses also re-encodes and re-parses.
//! - **Address literals** are validated by parsing their text into
//!   [`core::net`] addresses; no lookup happens.
//!
//! ## From text
//!
//! The `parse` functions read the wire grammar and borrow from the command
//! line. Addresses typed by a person or read from a configuration come in
//! through [`FromStr`] (and the same `TryFrom<&str>`) instead, which give
//! owned values and take the angle brackets as optional wherever that is
//! unambiguous: `a@b.example` and `<a@b.example>` are the same mailbox,
//! `<>` is the null reverse-path, `Postmaster` the special forward-path.
//! A control character is refused there as everywhere.
//!
//! ```
//! use smtp_proto::address::{AddressError, ForwardPath, Mailbox, ReversePath};
//!
//! let from: ReversePath = "alice@example.org".parse()?;
//! assert_eq!(from.to_string(), "<alice@example.org>");
//! let to: ForwardPath = "<bob@example.net>".parse()?;
//! assert_eq!(to.mailbox().unwrap().local_part().as_str(), "bob");
//! assert_eq!("<>".parse::<ReversePath>()?, ReversePath::Null);
//! assert_eq!(Mailbox::try_from("<>"), Err(AddressError::NullPath));
//! assert_eq!("bob".parse::<ForwardPath>(), Err(AddressError::MissingAt));
//! # Ok::<(), AddressError>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use core::net::{Ipv4Addr, Ipv6Addr};

use nom::bytes::complete::take_while1;
use nom::character::complete::char;
use nom::combinator::{opt, recognize};
use nom::error::{ErrorKind, ParseError};
use nom::multi::many0_count;
use nom::{IResult, Parser};
use thiserror::Error;

/// Longest local part, in octets. RFC 5321 §4.5.3.1.1.
pub const MAX_LOCAL_PART_LEN: usize = 64;
/// Longest domain, in octets. RFC 5321 §4.5.3.1.2.
pub const MAX_DOMAIN_LEN: usize = 255;
/// Longest reverse- or forward-path, angle brackets included.
/// RFC 5321 §4.5.3.1.3.
pub const MAX_PATH_LEN: usize = 256;
/// Longest DNS label, in octets (RFC 1035 §2.3.4); checked on ASCII labels
/// only, since a U-label's limit applies to its A-label form.
pub const MAX_LABEL_LEN: usize = 63;

/// Why an address, domain or path was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The text does not follow the grammar.
    #[error("malformed address")]
    Syntax,
    /// A control character (CR, LF, NUL, …) was given to a constructor.
    #[error("forbidden character {0:?} in address")]
    ForbiddenChar(char),
    /// The local part is longer than [`MAX_LOCAL_PART_LEN`].
    #[error("local part is {len} octets, more than 64")]
    LocalPartTooLong {
        /// Its length in octets.
        len: usize,
    },
    /// The domain is longer than [`MAX_DOMAIN_LEN`].
    #[error("domain is {len} octets, more than 255")]
    DomainTooLong {
        /// Its length in octets.
        len: usize,
    },
    /// A domain label is longer than [`MAX_LABEL_LEN`].
    #[error("domain label longer than 63 octets")]
    LabelTooLong,
    /// The path is longer than [`MAX_PATH_LEN`].
    #[error("path is {len} octets, more than 256")]
    PathTooLong {
        /// Its length in octets, angle brackets included.
        len: usize,
    },
    /// An address literal whose content is not a valid address of its kind.
    #[error("invalid address literal")]
    InvalidAddressLiteral,
    /// The text is empty.
    #[error("empty address")]
    Empty,
    /// `<>`, the null reverse-path, where a mailbox or a forward-path is
    /// needed (it is only valid as the sender of a bounce).
    #[error("the null path <> is only valid as a sender (reverse-path)")]
    NullPath,
    /// A mailbox without `@`: `local@domain` is needed.
    #[error("no @ in mailbox: local@domain is needed")]
    MissingAt,
}

// ---------------------------------------------------------------------------
// Internal parser plumbing.

/// The nom error type of this module: remembers a typed error when one was
/// raised, otherwise it is a plain syntax error.
#[derive(Debug)]
pub(crate) struct PErr<'a> {
    input: &'a str,
    kind: Option<AddressError>,
}

impl<'a> ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(input: &'a str, _: ErrorKind) -> Self {
        Self { input, kind: None }
    }
    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
    fn or(self, other: Self) -> Self {
        match (&self.kind, &other.kind) {
            (Some(_), None) => self,
            (None, Some(_)) => other,
            _ if self.input.len() < other.input.len() => self,
            _ => other,
        }
    }
}

type PRes<'a, T> = IResult<&'a str, T, PErr<'a>>;

fn failure<T>(input: &str, e: AddressError) -> PRes<'_, T> {
    Err(nom::Err::Failure(PErr {
        input,
        kind: Some(e),
    }))
}

fn syntax<T>(input: &str) -> PRes<'_, T> {
    Err(nom::Err::Error(PErr { input, kind: None }))
}

/// Maps a parser result to this module's public error.
#[inline]
pub(crate) fn finish<T>(r: PRes<'_, T>) -> Result<(&str, T), AddressError> {
    match r {
        Ok(v) => Ok(v),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
            Err(e.kind.unwrap_or(AddressError::Syntax))
        }
        // Only `complete` parsers are used, which never report Incomplete.
        Err(nom::Err::Incomplete(_)) => Err(AddressError::Syntax),
    }
}

/// Runs `p` and requires it to consume all of `s`.
fn whole<'a, T>(s: &'a str, p: impl Fn(&'a str) -> PRes<'a, T>) -> Result<T, AddressError> {
    reject_controls(s)?;
    match finish(p(s))? {
        ("", v) => Ok(v),
        _ => Err(AddressError::Syntax),
    }
}

/// Refuses control characters in constructor input with a precise error.
fn reject_controls(s: &str) -> Result<(), AddressError> {
    match find_control(s) {
        Some((_, c)) => Err(AddressError::ForbiddenChar(c)),
        None => Ok(()),
    }
}

/// The first control character of `s` (`char::is_control`: the Unicode
/// `Cc` category, U+0000–U+001F and U+007F–U+009F) and its byte offset.
///
/// Scans bytes instead of decoding characters: in UTF-8 the C0 controls and
/// DEL are single bytes, and the C1 controls are exactly the two-byte
/// sequences `C2 80`..`C2 9F` (`C2` is always a lead byte, never a
/// continuation byte, so it cannot be matched in the middle of a character).
pub(crate) fn find_control(s: &str) -> Option<(usize, char)> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let control = match c {
            0x00..=0x1f | 0x7f => true,
            0xc2 => b.get(i + 1).is_some_and(|&n| (0x80..=0x9f).contains(&n)),
            _ => false,
        };
        if control {
            // `i` is the offset of a lead byte or an ASCII byte: a boundary.
            return s.get(i..).and_then(|t| t.chars().next()).map(|ch| (i, ch));
        }
        i += 1;
    }
    None
}

/// Writes into a `Vec<u8>` through `fmt::Write`; never fails.
pub(crate) struct VecWriter<'v>(pub(crate) &'v mut Vec<u8>);

impl fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `UTF8-non-ascii` of RFC 6531 §3.3, minus C1 controls.
fn is_utf8_non_ascii(c: char) -> bool {
    !c.is_ascii() && !c.is_control()
}

/// `atext` of RFC 5322 §3.2.3, extended by RFC 6531 §3.3.
fn is_atext(c: char) -> bool {
    if c.is_ascii() {
        // An ASCII char's code is below 128: a valid table index.
        ATEXT[c as usize]
    } else {
        is_utf8_non_ascii(c)
    }
}

/// The ASCII part of `atext` (RFC 5322 §3.2.3):
/// `ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" /
/// "/" / "=" / "?" / "^" / "_" / "`" / "{" / "|" / "}" / "~"`.
const fn is_atext_ascii(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'/' | b'='
        | b'?' | b'^' | b'_' | b'`' | b'{' | b'|' | b'}' | b'~')
}

/// The ASCII label characters: `Let-dig / "-"`, plus `_` (module docs).
const fn is_label_ascii(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

// The byte tables of the ASCII fast paths. Only ASCII bytes are ever `true`:
// a scan stops at the first non-ASCII byte, and the caller then hands the
// whole input to the char-based nom parser that knows UTF-8 (RFC 6531).

/// [`is_atext_ascii`] as a table indexed by byte.
const ATEXT: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0u8;
    while b < 0x80 {
        t[b as usize] = is_atext_ascii(b);
        b += 1;
    }
    t
};

/// [`is_label_ascii`] as a table indexed by byte.
const LABEL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0u8;
    while b < 0x80 {
        t[b as usize] = is_label_ascii(b);
        b += 1;
    }
    t
};

/// Advances `pos` over bytes of `class`; returns the stop byte, if any.
#[inline(always)]
fn scan(b: &[u8], pos: &mut usize, class: &[bool; 256]) -> Option<u8> {
    while let Some(&c) = b.get(*pos) {
        if !class[usize::from(c)] {
            return Some(c);
        }
        *pos += 1;
    }
    None
}

/// `qtextSMTP` (RFC 5321 §4.1.2, RFC 6531 §3.3).
fn is_qtext(c: char) -> bool {
    matches!(c, ' ' | '!' | '#'..='[' | ']'..='~') || is_utf8_non_ascii(c)
}

/// The character after `\` in `quoted-pairSMTP` (%d32-126; UTF-8 accepted).
fn is_quoted_pair_char(c: char) -> bool {
    matches!(c, ' '..='~') || is_utf8_non_ascii(c)
}

/// Label characters: `Let-dig` / `-`, plus `_` (see module docs) and U-label
/// characters (RFC 6531).
fn is_label_char(c: char) -> bool {
    if c.is_ascii() {
        LABEL[c as usize]
    } else {
        is_utf8_non_ascii(c)
    }
}

/// `dcontent = %d33-90 / %d94-126` (RFC 5321 §4.1.3).
fn is_dcontent(c: char) -> bool {
    matches!(c, '!'..='Z' | '^'..='~')
}

/// `Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig`, non-empty.
fn is_ldh_str(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !s.ends_with('-')
}

// ---------------------------------------------------------------------------
// Domain

/// A domain name (RFC 5321 §4.1.2), possibly with UTF-8 U-labels (RFC 6531).
///
/// ```text
/// Domain     = sub-domain *("." sub-domain)
/// sub-domain = Let-dig [Ldh-str] / U-label
/// Let-dig    = ALPHA / DIGIT
/// Ldh-str    = *( ALPHA / DIGIT / "-" ) Let-dig
/// ```
///
/// Accepted beyond the ABNF: `_` inside labels (see the module docs). No
/// label may start or end with `-`; ASCII labels are at most 63 octets and
/// the whole name at most 255. Comparison ignores ASCII case.
///
/// ```
/// use smtp_proto::address::Domain;
/// let d = Domain::new("Mail.Example.ORG").unwrap();
/// assert_eq!(d, Domain::new("mail.example.org").unwrap());
/// assert!(!d.is_utf8());
/// assert!(Domain::new("bücher.example").unwrap().is_utf8());
/// assert!(Domain::new("a..b").is_err());
/// ```
#[derive(Clone)]
pub struct Domain<'a>(Cow<'a, str>);

impl Domain<'static> {
    /// `localhost` (RFC 6761 §6.3): the name of a host that has no other,
    /// e.g. the EHLO name of a client on a Unix socket.
    pub const LOCALHOST: Self = Domain(Cow::Borrowed("localhost"));
}

impl<'a> Domain<'a> {
    /// Validates a domain, borrowing it.
    pub fn new(s: &'a str) -> Result<Self, AddressError> {
        whole(s, domain)
    }

    /// The domain as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the domain contains U-labels (needs SMTPUTF8, RFC 6531).
    pub fn is_utf8(&self) -> bool {
        !self.0.is_ascii()
    }

    /// Appends the wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
    }

    /// Detaches the domain from the buffer it was parsed from.
    pub fn into_owned(self) -> Domain<'static> {
        Domain(Cow::Owned(self.0.into_owned()))
    }
}

impl PartialEq for Domain<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for Domain<'_> {}

impl Hash for Domain<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl fmt::Debug for Domain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Domain({:?})", self.0)
    }
}

impl fmt::Display for Domain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `sub-domain`: one label.
fn sub_domain(i: &str) -> PRes<'_, &str> {
    let (rest, label) = take_while1(is_label_char).parse(i)?;
    if label.starts_with('-') || label.ends_with('-') {
        return syntax(i);
    }
    if label.len() > MAX_LABEL_LEN && label.is_ascii() {
        return failure(i, AddressError::LabelTooLong);
    }
    Ok((rest, label))
}

/// `Domain = sub-domain *("." sub-domain)`, at most 255 octets.
///
/// The hot path (every EHLO and every path): a byte scan over ASCII labels.
/// It stops where [`domain_utf8`] would stop and raises the same errors; on
/// the first non-ASCII byte it defers to that parser for the whole input.
pub(crate) fn domain(i: &str) -> PRes<'_, Domain<'_>> {
    let b = i.as_bytes();
    // End of the last accepted label, and the scan position.
    let (mut end, mut pos) = (0, 0);
    loop {
        let start = pos;
        let stop = scan(b, &mut pos, &LABEL);
        if stop.is_some_and(|c| !c.is_ascii()) {
            return domain_utf8(i);
        }
        let label = b.get(start..pos).unwrap_or_default();
        if matches!(label, [] | [b'-', ..] | [.., b'-']) {
            // Not a `sub-domain`: an error for the first label; after a dot,
            // the domain ends before that dot.
            if start == 0 {
                return syntax(i);
            }
            break;
        }
        if label.len() > MAX_LABEL_LEN {
            return failure(i.get(start..).unwrap_or(i), AddressError::LabelTooLong);
        }
        end = pos;
        if stop != Some(b'.') {
            break;
        }
        pos += 1;
    }
    if end > MAX_DOMAIN_LEN {
        return failure(i, AddressError::DomainTooLong { len: end });
    }
    // `end` follows an ASCII byte: a char boundary.
    match i.split_at_checked(end) {
        Some((d, rest)) => Ok((rest, Domain(Cow::Borrowed(d)))),
        None => syntax(i),
    }
}

/// [`domain`] for input with UTF-8 (U-labels), char by char.
fn domain_utf8(i: &str) -> PRes<'_, Domain<'_>> {
    let (rest, d) = recognize((sub_domain, many0_count((char('.'), sub_domain)))).parse(i)?;
    if d.len() > MAX_DOMAIN_LEN {
        return failure(i, AddressError::DomainTooLong { len: d.len() });
    }
    Ok((rest, Domain(Cow::Borrowed(d))))
}

// ---------------------------------------------------------------------------
// Address literals

/// An address literal (RFC 5321 §4.1.3).
///
/// ```text
/// address-literal  = "[" ( IPv4-address-literal /
///                          IPv6-address-literal /
///                          General-address-literal ) "]"
/// IPv4-address-literal = Snum 3("."  Snum)
/// IPv6-address-literal = "IPv6:" IPv6-addr
/// General-address-literal = Standardized-tag ":" 1*dcontent
/// Standardized-tag = Ldh-str
/// dcontent         = %d33-90 / %d94-126
/// ```
///
/// IPv4 and IPv6 content is validated by parsing it into [`Ipv4Addr`] /
/// [`Ipv6Addr`] (text parsing, no lookup); IPv6 is re-encoded in its RFC 5952
/// canonical form. The `IPv6` tag is matched case-insensitively and may not
/// be used by a general literal.
///
/// ```
/// use smtp_proto::address::AddressLiteral;
/// let l = AddressLiteral::parse("[IPv6:2001:DB8::1]").unwrap();
/// assert_eq!(l.to_string(), "[IPv6:2001:db8::1]");
/// assert!(AddressLiteral::parse("[300.1.1.1]").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressLiteral<'a> {
    /// `[192.0.2.1]`
    Ipv4(Ipv4Addr),
    /// `[IPv6:2001:db8::1]`
    Ipv6(Ipv6Addr),
    /// `[tag:content]` with a standardized tag other than `IPv6`; boxed,
    /// as it is rare and would double the size of every [`Host`].
    General(Box<GeneralLiteral<'a>>),
}

/// A general address literal `[tag:content]` (RFC 5321 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GeneralLiteral<'a> {
    /// The `Standardized-tag`.
    pub tag: Cow<'a, str>,
    /// The content after the colon (`1*dcontent`).
    pub content: Cow<'a, str>,
}

impl<'a> AddressLiteral<'a> {
    /// Parses the bracketed wire form, e.g. `[192.0.2.1]`.
    pub fn parse(s: &'a str) -> Result<Self, AddressError> {
        whole(s, address_literal)
    }

    /// Builds a general literal `[tag:content]`.
    pub fn general(tag: &'a str, content: &'a str) -> Result<Self, AddressError> {
        reject_controls(tag)?;
        reject_controls(content)?;
        if !is_ldh_str(tag)
            || tag.eq_ignore_ascii_case("IPv6")
            || content.is_empty()
            || !content.chars().all(is_dcontent)
        {
            return Err(AddressError::InvalidAddressLiteral);
        }
        Ok(Self::General(Box::new(GeneralLiteral {
            tag: Cow::Borrowed(tag),
            content: Cow::Borrowed(content),
        })))
    }

    /// Appends the wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // VecWriter never fails.
        let _ = self.write(&mut VecWriter(out));
    }

    fn write(&self, w: &mut impl fmt::Write) -> fmt::Result {
        match self {
            Self::Ipv4(a) => write!(w, "[{a}]"),
            Self::Ipv6(a) => write!(w, "[IPv6:{a}]"),
            Self::General(g) => write!(w, "[{}:{}]", g.tag, g.content),
        }
    }

    /// Detaches the literal from the buffer it was parsed from.
    pub fn into_owned(self) -> AddressLiteral<'static> {
        match self {
            Self::Ipv4(a) => AddressLiteral::Ipv4(a),
            Self::Ipv6(a) => AddressLiteral::Ipv6(a),
            Self::General(g) => AddressLiteral::General(Box::new(GeneralLiteral {
                tag: Cow::Owned(g.tag.into_owned()),
                content: Cow::Owned(g.content.into_owned()),
            })),
        }
    }
}

impl From<Ipv4Addr> for AddressLiteral<'_> {
    fn from(a: Ipv4Addr) -> Self {
        Self::Ipv4(a)
    }
}

impl From<Ipv6Addr> for AddressLiteral<'_> {
    fn from(a: Ipv6Addr) -> Self {
        Self::Ipv6(a)
    }
}

impl fmt::Display for AddressLiteral<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f)
    }
}

/// `address-literal = "[" … "]"`; the content is interpreted after the
/// brackets are found.
pub(crate) fn address_literal(i: &str) -> PRes<'_, AddressLiteral<'_>> {
    let (rest, _) = char('[').parse(i)?;
    let (rest, inner) = take_while1(is_dcontent).parse(rest)?;
    let (rest, _) = char(']').parse(rest)?;
    let lit = match inner.split_once(':') {
        None => Ipv4Addr::from_str(inner).ok().map(AddressLiteral::Ipv4),
        Some((tag, content)) if tag.eq_ignore_ascii_case("IPv6") => {
            Ipv6Addr::from_str(content).ok().map(AddressLiteral::Ipv6)
        }
        Some((tag, content)) if is_ldh_str(tag) && !content.is_empty() => {
            Some(AddressLiteral::General(Box::new(GeneralLiteral {
                tag: Cow::Borrowed(tag),
                content: Cow::Borrowed(content),
            })))
        }
        Some(_) => None,
    };
    match lit {
        Some(l) => Ok((rest, l)),
        None => failure(i, AddressError::InvalidAddressLiteral),
    }
}

// ---------------------------------------------------------------------------
// Host: Domain / address-literal

/// What follows `@` in a mailbox, and the argument of EHLO/HELO/LHLO:
/// `Domain / address-literal` (RFC 5321 §4.1.2, §4.1.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host<'a> {
    /// A domain name.
    Domain(Domain<'a>),
    /// An address literal.
    Literal(AddressLiteral<'a>),
}

impl<'a> Host<'a> {
    /// Parses a domain or a bracketed address literal.
    pub fn parse(s: &'a str) -> Result<Self, AddressError> {
        whole(s, host)
    }

    /// Whether the host is a domain with U-labels.
    pub fn is_utf8(&self) -> bool {
        match self {
            Self::Domain(d) => d.is_utf8(),
            Self::Literal(_) => false,
        }
    }

    /// Appends the wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Domain(d) => d.encode(out),
            Self::Literal(l) => l.encode(out),
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            Self::Domain(d) => d.0.len(),
            Self::Literal(l) => {
                let mut buf = Vec::new();
                l.encode(&mut buf);
                buf.len()
            }
        }
    }

    /// Detaches the host from the buffer it was parsed from.
    pub fn into_owned(self) -> Host<'static> {
        match self {
            Self::Domain(d) => Host::Domain(d.into_owned()),
            Self::Literal(l) => Host::Literal(l.into_owned()),
        }
    }
}

impl<'a> From<Domain<'a>> for Host<'a> {
    fn from(d: Domain<'a>) -> Self {
        Self::Domain(d)
    }
}

impl<'a> From<AddressLiteral<'a>> for Host<'a> {
    fn from(l: AddressLiteral<'a>) -> Self {
        Self::Literal(l)
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(d) => d.fmt(f),
            Self::Literal(l) => l.fmt(f),
        }
    }
}

/// `Domain / address-literal`
pub(crate) fn host(i: &str) -> PRes<'_, Host<'_>> {
    if i.starts_with('[') {
        address_literal(i).map(|(r, l)| (r, Host::Literal(l)))
    } else {
        domain(i).map(|(r, d)| (r, Host::Domain(d)))
    }
}

// ---------------------------------------------------------------------------
// Local part

/// The part of a mailbox before `@` (RFC 5321 §4.1.2, RFC 6531 §3.3),
/// holding its decoded value.
///
/// ```text
/// Local-part      = Dot-string / Quoted-string
/// Dot-string      = Atom *("."  Atom)
/// Atom            = 1*atext
/// Quoted-string   = DQUOTE *QcontentSMTP DQUOTE
/// QcontentSMTP    = qtextSMTP / quoted-pairSMTP
/// quoted-pairSMTP = %d92 %d32-126
/// qtextSMTP       = %d32-33 / %d35-91 / %d93-126 / UTF8-non-ascii
/// ```
///
/// The wire form is canonical: bare when the value is a valid `Dot-string`,
/// otherwise quoted, escaping only `"` and `\`.
///
/// ```
/// use smtp_proto::address::LocalPart;
/// assert_eq!(LocalPart::new("john.doe").unwrap().to_string(), "john.doe");
/// assert_eq!(LocalPart::new("john doe").unwrap().to_string(), "\"john doe\"");
/// assert_eq!(LocalPart::new("a\"b").unwrap().to_string(), "\"a\\\"b\"");
/// assert!(LocalPart::new("a\r\nb").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocalPart<'a>(Cow<'a, str>);

impl<'a> LocalPart<'a> {
    /// Validates a decoded local part: no control characters, and its
    /// canonical encoding at most [`MAX_LOCAL_PART_LEN`] octets.
    pub fn new(value: &'a str) -> Result<Self, AddressError> {
        reject_controls(value)?;
        let lp = Self(Cow::Borrowed(value));
        let len = lp.encoded_len();
        if len > MAX_LOCAL_PART_LEN {
            return Err(AddressError::LocalPartTooLong { len });
        }
        Ok(lp)
    }

    /// The decoded value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the local part contains non-ASCII characters (SMTPUTF8).
    pub fn is_utf8(&self) -> bool {
        !self.0.is_ascii()
    }

    /// Whether the value is written bare (it is a valid `Dot-string`).
    pub fn is_dot_string(&self) -> bool {
        is_dot_string(&self.0)
    }

    /// Appends the canonical wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // VecWriter never fails.
        let _ = self.write(&mut VecWriter(out));
    }

    fn write(&self, w: &mut impl fmt::Write) -> fmt::Result {
        if self.is_dot_string() {
            return w.write_str(&self.0);
        }
        w.write_char('"')?;
        let mut rest: &str = &self.0;
        while let Some(pos) = rest.find(['"', '\\']) {
            let (head, tail) = rest.split_at(pos);
            w.write_str(head)?;
            w.write_char('\\')?;
            // `pos` indexes an ASCII quote or backslash, so `tail` is non-empty
            // and its first byte is a character boundary.
            let (esc, after) = tail.split_at(1);
            w.write_str(esc)?;
            rest = after;
        }
        w.write_str(rest)?;
        w.write_char('"')
    }

    /// Length of the canonical wire form in octets.
    pub fn encoded_len(&self) -> usize {
        if self.is_dot_string() {
            self.0.len()
        } else {
            2 + self.0.len() + self.0.bytes().filter(|&b| b == b'"' || b == b'\\').count()
        }
    }

    /// Detaches the local part from the buffer it was parsed from.
    pub fn into_owned(self) -> LocalPart<'static> {
        LocalPart(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Display for LocalPart<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f)
    }
}

fn is_dot_string(s: &str) -> bool {
    if s.is_ascii() {
        return matches!(dot_string(s), Ok(("", _)));
    }
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// `Dot-string = Atom *("." Atom)`, `Atom = 1*atext`
///
/// The hot path: a byte scan over ASCII atoms. It stops where
/// [`dot_string_utf8`] would stop; on the first non-ASCII byte it defers to
/// that parser for the whole input.
fn dot_string(i: &str) -> PRes<'_, &str> {
    let b = i.as_bytes();
    // End of the last complete atom, and the scan position.
    let (mut end, mut pos) = (0, 0);
    loop {
        let start = pos;
        let stop = scan(b, &mut pos, &ATEXT);
        if stop.is_some_and(|c| !c.is_ascii()) {
            return dot_string_utf8(i);
        }
        if pos == start {
            // An empty atom: the first one is an error, a later one ends the
            // string before its dot.
            break;
        }
        end = pos;
        if stop != Some(b'.') {
            break;
        }
        pos += 1;
    }
    if end == 0 {
        return syntax(i);
    }
    // `end` follows an ASCII byte: a char boundary.
    match i.split_at_checked(end) {
        Some((d, rest)) => Ok((rest, d)),
        None => syntax(i),
    }
}

/// [`dot_string`] for input with UTF-8 (RFC 6531 §3.3), char by char.
fn dot_string_utf8(i: &str) -> PRes<'_, &str> {
    let atom = || take_while1(is_atext);
    recognize((atom(), many0_count((char('.'), atom())))).parse(i)
}

/// `Quoted-string`, decoded; borrows when there is no escape.
fn quoted_string(i: &str) -> PRes<'_, Cow<'_, str>> {
    let Some(body) = i.strip_prefix('"') else {
        return syntax(i);
    };
    let mut owned: Option<String> = None;
    let mut start = 0;
    let mut chars = body.char_indices();
    while let Some((idx, c)) = chars.next() {
        match c {
            '"' => {
                let head = body.get(start..idx).unwrap_or_default();
                let rest = body.get(idx + 1..).unwrap_or_default();
                let value = match owned {
                    None => Cow::Borrowed(head),
                    Some(mut s) => {
                        s.push_str(head);
                        Cow::Owned(s)
                    }
                };
                return Ok((rest, value));
            }
            '\\' => match chars.next() {
                Some((next, e)) if is_quoted_pair_char(e) => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(body.get(start..idx).unwrap_or_default());
                    start = next;
                }
                _ => return syntax(i),
            },
            c if is_qtext(c) => {}
            _ => return syntax(i),
        }
    }
    syntax(i)
}

/// `Local-part = Dot-string / Quoted-string`, at most 64 octets as sent.
fn local_part(i: &str) -> PRes<'_, LocalPart<'_>> {
    let (rest, value) = if i.starts_with('"') {
        quoted_string(i)?
    } else {
        let (rest, v) = dot_string(i)?;
        (rest, Cow::Borrowed(v))
    };
    let len = i.len() - rest.len();
    if len > MAX_LOCAL_PART_LEN {
        return failure(i, AddressError::LocalPartTooLong { len });
    }
    Ok((rest, LocalPart(value)))
}

// ---------------------------------------------------------------------------
// Mailbox

/// A mailbox: `Local-part "@" ( Domain / address-literal )`
/// (RFC 5321 §4.1.2).
///
/// A mailbox is only valid if it fits in a path: its canonical encoding plus
/// the two angle brackets is at most [`MAX_PATH_LEN`] octets.
///
/// ```
/// use smtp_proto::address::Mailbox;
/// let m = Mailbox::parse("\"john\\ doe\"@example.org").unwrap();
/// assert_eq!(m.local_part().as_str(), "john doe");
/// assert_eq!(m.to_string(), "\"john doe\"@example.org");
/// assert!(Mailbox::parse("用户@例子.广告").unwrap().is_utf8());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox<'a> {
    local_part: LocalPart<'a>,
    host: Host<'a>,
}

impl<'a> Mailbox<'a> {
    /// Joins a local part and a host, checking the path length limit.
    pub fn new(local_part: LocalPart<'a>, host: impl Into<Host<'a>>) -> Result<Self, AddressError> {
        let mb = Self {
            local_part,
            host: host.into(),
        };
        let len = mb.encoded_len() + 2;
        if len > MAX_PATH_LEN {
            return Err(AddressError::PathTooLong { len });
        }
        Ok(mb)
    }

    /// Parses the wire form `local@domain` (no angle brackets).
    pub fn parse(s: &'a str) -> Result<Self, AddressError> {
        let mb = whole(s, mailbox)?;
        check_path_len(s.len() + 2, &mb)?;
        Ok(mb)
    }

    /// The local part.
    pub fn local_part(&self) -> &LocalPart<'a> {
        &self.local_part
    }

    /// The domain or address literal.
    pub fn host(&self) -> &Host<'a> {
        &self.host
    }

    /// The domain, if the host is not an address literal.
    pub fn domain(&self) -> Option<&Domain<'a>> {
        match &self.host {
            Host::Domain(d) => Some(d),
            Host::Literal(_) => None,
        }
    }

    /// Whether the mailbox needs SMTPUTF8 (RFC 6531): a non-ASCII local
    /// part or a U-label domain.
    pub fn is_utf8(&self) -> bool {
        self.local_part.is_utf8() || self.host.is_utf8()
    }

    /// Appends the canonical wire form (without angle brackets).
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.local_part.encode(out);
        out.push(b'@');
        self.host.encode(out);
    }

    /// Length of the canonical wire form in octets.
    pub fn encoded_len(&self) -> usize {
        self.local_part.encoded_len() + 1 + self.host.encoded_len()
    }

    /// Splits into local part and host.
    pub fn into_parts(self) -> (LocalPart<'a>, Host<'a>) {
        (self.local_part, self.host)
    }

    /// Detaches the mailbox from the buffer it was parsed from.
    pub fn into_owned(self) -> Mailbox<'static> {
        Mailbox {
            local_part: self.local_part.into_owned(),
            host: self.host.into_owned(),
        }
    }
}

impl fmt::Display for Mailbox<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local_part, self.host)
    }
}

/// `Mailbox = Local-part "@" ( Domain / address-literal )`
pub(crate) fn mailbox(i: &str) -> PRes<'_, Mailbox<'_>> {
    let (rest, local_part) = local_part(i)?;
    let Some(rest) = rest.strip_prefix('@') else {
        return syntax(rest);
    };
    let (rest, host) = host(rest)?;
    Ok((rest, Mailbox { local_part, host }))
}

/// Checks the path limit on the received length, and on the canonical length
/// when an IPv6 literal could re-encode longer than it was received.
fn check_path_len(wire_len: usize, mb: &Mailbox<'_>) -> Result<(), AddressError> {
    let len = if matches!(mb.host, Host::Literal(AddressLiteral::Ipv6(_))) {
        wire_len.max(mb.encoded_len() + 2)
    } else {
        wire_len
    };
    if len > MAX_PATH_LEN {
        return Err(AddressError::PathTooLong { len });
    }
    Ok(())
}

/// `A-d-l = At-domain *( "," At-domain )`, `At-domain = "@" Domain`
fn adl(i: &str) -> PRes<'_, &str> {
    let at_domain = || (char('@'), domain);
    recognize((at_domain(), many0_count((char(','), at_domain())))).parse(i)
}

/// The common shape of a path, `<dot-string@domain>` in ASCII, checked in
/// one pass over its bytes: returns the wire length of the path (brackets
/// included) and the index of the `@`.
///
/// `None` for anything else (a quoted local part, a source route, an address
/// literal, UTF-8, a limit exceeded, a syntax error): [`path`] then runs the
/// general parser, which accepts or refuses it with the precise error. Both
/// use the same byte tables, so whatever this accepts, the general parser
/// accepts identically.
#[inline]
fn simple_path(b: &[u8]) -> Option<(usize, usize)> {
    if b.first() != Some(&b'<') {
        return None;
    }
    // Local part: atoms of `atext` separated by single dots.
    let mut p = 1;
    let mut atom_start = p;
    let at = loop {
        let c = *b.get(p)?;
        if ATEXT[usize::from(c)] {
            p += 1;
            continue;
        }
        if p == atom_start {
            return None;
        }
        match c {
            b'.' => {
                p += 1;
                atom_start = p;
            }
            b'@' => break p,
            _ => return None,
        }
    };
    if at - 1 > MAX_LOCAL_PART_LEN {
        return None;
    }
    // Domain: labels of `LABEL` bytes, neither starting nor ending with `-`.
    p += 1;
    let mut label_start = p;
    loop {
        let c = *b.get(p)?;
        if LABEL[usize::from(c)] {
            p += 1;
            continue;
        }
        let label = b.get(label_start..p)?;
        if matches!(label, [] | [b'-', ..] | [.., b'-']) || label.len() > MAX_LABEL_LEN {
            return None;
        }
        match c {
            b'.' => {
                p += 1;
                label_start = p;
            }
            b'>' => break,
            _ => return None,
        }
    }
    let wire_len = p + 1;
    if p - at - 1 > MAX_DOMAIN_LEN || wire_len > MAX_PATH_LEN {
        return None;
    }
    Some((wire_len, at))
}

/// `Path = "<" [ A-d-l ":" ] Mailbox ">"`; the source route is dropped.
fn path(i: &str) -> PRes<'_, Mailbox<'_>> {
    if let Some(v) = simple_mailbox_path(i) {
        return Ok(v);
    }
    path_general(i)
}

/// A path of the common shape (see [`simple_path`]) as the rest of the
/// input and its mailbox; `None` for any other input. Inlined into the
/// command parser, so the mailbox is built where it is used (a result
/// passed back through the general parser's layers was copied field by
/// field and read back whole, stalling on the store buffer).
#[inline(always)]
pub(crate) fn simple_mailbox_path(i: &str) -> Option<(&str, Mailbox<'_>)> {
    let (len, at) = simple_path(i.as_bytes())?;
    // `at` and `len - 1` index ASCII bytes (`@`, `>`): char boundaries.
    let (local, domain, rest) = (i.get(1..at)?, i.get(at + 1..len - 1)?, i.get(len..)?);
    let mb = Mailbox {
        local_part: LocalPart(Cow::Borrowed(local)),
        host: Host::Domain(Domain(Cow::Borrowed(domain))),
    };
    Some((rest, mb))
}

/// [`path`] for every shape: source routes, quoted local parts, address
/// literals, UTF-8, and the precise error for what is not a path.
fn path_general(i: &str) -> PRes<'_, Mailbox<'_>> {
    let Some(rest) = i.strip_prefix('<') else {
        return syntax(i);
    };
    // A source route starts with `@`, which cannot start a mailbox.
    let rest = if rest.starts_with('@') {
        opt((adl, char(':'))).parse(rest)?.0
    } else {
        rest
    };
    let (rest, mb) = mailbox(rest)?;
    let Some(rest) = rest.strip_prefix('>') else {
        return syntax(rest);
    };
    match check_path_len(i.len() - rest.len(), &mb) {
        Ok(()) => Ok((rest, mb)),
        Err(e) => failure(i, e),
    }
}

// ---------------------------------------------------------------------------
// Paths

/// The argument of `MAIL FROM:` (RFC 5321 §4.1.2).
///
/// ```text
/// Reverse-path = Path / "<>"
/// ```
///
/// ```
/// use smtp_proto::address::ReversePath;
/// assert_eq!(ReversePath::parse("<>").unwrap(), ReversePath::Null);
/// let p = ReversePath::parse("<@relay.example:a@b.example>").unwrap();
/// assert_eq!(p.to_string(), "<a@b.example>");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReversePath<'a> {
    /// `<>`: the null reverse-path of bounces (RFC 5321 §4.5.5).
    Null,
    /// A mailbox.
    Mailbox(Mailbox<'a>),
}

impl<'a> ReversePath<'a> {
    /// Parses the wire form, angle brackets included.
    pub fn parse(s: &'a str) -> Result<Self, AddressError> {
        whole(s, reverse_path)
    }

    /// Whether the path needs SMTPUTF8 (RFC 6531).
    pub fn is_utf8(&self) -> bool {
        match self {
            Self::Null => false,
            Self::Mailbox(m) => m.is_utf8(),
        }
    }

    /// The mailbox, unless this is the null path.
    pub fn mailbox(&self) -> Option<&Mailbox<'a>> {
        match self {
            Self::Null => None,
            Self::Mailbox(m) => Some(m),
        }
    }

    /// Appends the wire form, angle brackets included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Null => out.extend_from_slice(b"<>"),
            Self::Mailbox(m) => {
                out.push(b'<');
                m.encode(out);
                out.push(b'>');
            }
        }
    }

    /// Detaches the path from the buffer it was parsed from.
    pub fn into_owned(self) -> ReversePath<'static> {
        match self {
            Self::Null => ReversePath::Null,
            Self::Mailbox(m) => ReversePath::Mailbox(m.into_owned()),
        }
    }
}

impl<'a> From<Mailbox<'a>> for ReversePath<'a> {
    fn from(m: Mailbox<'a>) -> Self {
        Self::Mailbox(m)
    }
}

impl fmt::Display for ReversePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("<>"),
            Self::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// `Reverse-path = Path / "<>"`
pub(crate) fn reverse_path(i: &str) -> PRes<'_, ReversePath<'_>> {
    if let Some(rest) = i.strip_prefix("<>") {
        return Ok((rest, ReversePath::Null));
    }
    path(i).map(|(r, m)| (r, ReversePath::Mailbox(m)))
}

/// The argument of `RCPT TO:` (RFC 5321 §4.1.2).
///
/// ```text
/// Forward-path = Path / "<Postmaster@" Domain ">" / "<Postmaster>"
/// ```
///
/// `<Postmaster>` (any case) is [`ForwardPath::Postmaster`] and is encoded as
/// `<Postmaster>`; `<Postmaster@domain>` is an ordinary mailbox.
///
/// ```
/// use smtp_proto::address::ForwardPath;
/// assert_eq!(ForwardPath::parse("<POSTMASTER>").unwrap(), ForwardPath::Postmaster);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ForwardPath<'a> {
    /// `<Postmaster>`, which every server must accept (RFC 5321 §4.5.1).
    Postmaster,
    /// A mailbox.
    Mailbox(Mailbox<'a>),
}

impl<'a> ForwardPath<'a> {
    /// Parses the wire form, angle brackets included.
    pub fn parse(s: &'a str) -> Result<Self, AddressError> {
        whole(s, forward_path)
    }

    /// Whether the path needs SMTPUTF8 (RFC 6531).
    pub fn is_utf8(&self) -> bool {
        match self {
            Self::Postmaster => false,
            Self::Mailbox(m) => m.is_utf8(),
        }
    }

    /// The mailbox, unless this is `<Postmaster>`.
    pub fn mailbox(&self) -> Option<&Mailbox<'a>> {
        match self {
            Self::Postmaster => None,
            Self::Mailbox(m) => Some(m),
        }
    }

    /// Appends the wire form, angle brackets included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Postmaster => out.extend_from_slice(b"<Postmaster>"),
            Self::Mailbox(m) => {
                out.push(b'<');
                m.encode(out);
                out.push(b'>');
            }
        }
    }

    /// Detaches the path from the buffer it was parsed from.
    pub fn into_owned(self) -> ForwardPath<'static> {
        match self {
            Self::Postmaster => ForwardPath::Postmaster,
            Self::Mailbox(m) => ForwardPath::Mailbox(m.into_owned()),
        }
    }
}

impl<'a> From<Mailbox<'a>> for ForwardPath<'a> {
    fn from(m: Mailbox<'a>) -> Self {
        Self::Mailbox(m)
    }
}

impl fmt::Display for ForwardPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postmaster => f.write_str("<Postmaster>"),
            Self::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// `Forward-path = Path / "<Postmaster@" Domain ">" / "<Postmaster>"`
pub(crate) fn forward_path(i: &str) -> PRes<'_, ForwardPath<'_>> {
    const POSTMASTER: &str = "<Postmaster>";
    if let Some(head) = i.get(..POSTMASTER.len())
        && head.eq_ignore_ascii_case(POSTMASTER)
    {
        let rest = i.get(POSTMASTER.len()..).unwrap_or_default();
        return Ok((rest, ForwardPath::Postmaster));
    }
    path(i).map(|(r, m)| (r, ForwardPath::Mailbox(m)))
}

// ---------------------------------------------------------------------------
// Owned values from text: `FromStr` and `TryFrom<&str>`
//
// The wire parsers above borrow from a command line and take exactly what
// the grammar allows there (`ForwardPath::parse` wants the brackets,
// `Mailbox::parse` refuses them). Text typed by a person or read from a
// configuration is more varied; these conversions take it as people write
// it and give owned values, ready for an envelope.

/// Makes a plain syntax error precise for the usual mistakes.
fn refine(s: &str, e: AddressError) -> AddressError {
    match e {
        AddressError::Syntax if s.is_empty() => AddressError::Empty,
        AddressError::Syntax if s == "<>" => AddressError::NullPath,
        AddressError::Syntax if !s.contains('@') => AddressError::MissingAt,
        e => e,
    }
}

/// `local@domain` or `<local@domain>` (a source route inside the brackets
/// is accepted and dropped, as on the wire).
fn mailbox_text(s: &str) -> Result<Mailbox<'_>, AddressError> {
    let mailbox = if s.starts_with('<') {
        // The path limit on what will be sent: the route is dropped.
        whole(s, path).and_then(|mb| check_path_len(mb.encoded_len() + 2, &mb).map(|()| mb))
    } else {
        Mailbox::parse(s)
    };
    mailbox.map_err(|e| refine(s, e))
}

/// `<>` or a mailbox.
fn reverse_path_text(s: &str) -> Result<ReversePath<'_>, AddressError> {
    if s == "<>" {
        return Ok(ReversePath::Null);
    }
    mailbox_text(s).map(ReversePath::Mailbox)
}

/// `Postmaster` or `<Postmaster>` (any case), or a mailbox.
fn forward_path_text(s: &str) -> Result<ForwardPath<'_>, AddressError> {
    if s.eq_ignore_ascii_case("Postmaster") || s.eq_ignore_ascii_case("<Postmaster>") {
        return Ok(ForwardPath::Postmaster);
    }
    mailbox_text(s).map(ForwardPath::Mailbox)
}

fn domain_text(s: &str) -> Result<Domain<'_>, AddressError> {
    Domain::new(s).map_err(|e| refine_empty(s, e))
}

fn host_text(s: &str) -> Result<Host<'_>, AddressError> {
    Host::parse(s).map_err(|e| refine_empty(s, e))
}

fn address_literal_text(s: &str) -> Result<AddressLiteral<'_>, AddressError> {
    AddressLiteral::parse(s).map_err(|e| refine_empty(s, e))
}

/// [`AddressError::Empty`] for empty text, else the error as it is.
fn refine_empty(s: &str, e: AddressError) -> AddressError {
    if s.is_empty() { AddressError::Empty } else { e }
}

/// `FromStr` and `TryFrom<&str>` for the owned form of each type, through
/// its text parser.
macro_rules! from_text {
    ($($ty:ident => $parse:ident, $what:literal;)*) => {$(
        #[doc = concat!("Parses ", $what, " from text into an owned value; see the")]
        #[doc = concat!("[`", stringify!($ty), "`] docs for the forms accepted.")]
        impl FromStr for $ty<'static> {
            type Err = AddressError;

            fn from_str(s: &str) -> Result<Self, AddressError> {
                $parse(s).map($ty::into_owned)
            }
        }

        #[doc = concat!("The same as [`", stringify!($ty), "`]'s `FromStr`.")]
        impl TryFrom<&str> for $ty<'static> {
            type Error = AddressError;

            fn try_from(s: &str) -> Result<Self, AddressError> {
                $parse(s).map($ty::into_owned)
            }
        }
    )*};
}

from_text! {
    Mailbox => mailbox_text, "a mailbox (`a@b` or `<a@b>`)";
    ReversePath => reverse_path_text, "a reverse-path (`<>`, `a@b` or `<a@b>`)";
    ForwardPath => forward_path_text, "a forward-path (`Postmaster`, `a@b` or `<a@b>`)";
    Domain => domain_text, "a domain";
    Host => host_text, "a domain or an address literal";
    AddressLiteral => address_literal_text, "an address literal (`[192.0.2.1]`)";
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A parser result reduced to what callers can observe: the rest, the
    /// value, and for an error whether it is fatal and its typed kind.
    fn outcome<T: ToString>(
        r: PRes<'_, T>,
    ) -> Result<(&str, String), (bool, Option<AddressError>)> {
        match r {
            Ok((rest, v)) => Ok((rest, v.to_string())),
            Err(nom::Err::Error(e)) => Err((false, e.kind)),
            Err(nom::Err::Failure(e)) => Err((true, e.kind)),
            Err(nom::Err::Incomplete(_)) => Err((true, None)),
        }
    }

    /// ASCII text made of the characters that matter to the scanners, with
    /// long runs so that the label and domain limits are reached.
    fn ascii_input() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                8 => "[a-z]{1,70}",
                2 => Just(".".to_owned()),
                2 => Just("-".to_owned()),
                1 => Just("_".to_owned()),
                1 => Just("@".to_owned()),
                1 => Just(">".to_owned()),
                1 => Just("!#+=".to_owned()),
                1 => Just(" ".to_owned()),
            ],
            0..12,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn domain_fast_path_matches_nom(s in ascii_input()) {
            prop_assert_eq!(outcome(domain(&s)), outcome(domain_utf8(&s)));
        }

        #[test]
        fn dot_string_fast_path_matches_nom(s in ascii_input()) {
            prop_assert_eq!(outcome(dot_string(&s)), outcome(dot_string_utf8(&s)));
        }

        #[test]
        fn simple_path_matches_general(s in ascii_input()) {
            let wire = format!("<{s}> x");
            if let Some((len, at)) = simple_path(wire.as_bytes()) {
                let general = path_general(&wire);
                prop_assert_eq!(
                    outcome(general),
                    Ok((&wire[len..], format!("{}@{}", &wire[1..at], &wire[at + 1..len - 1])))
                );
            }
        }

        #[test]
        fn find_control_matches_chars(s in "\\PC{0,8}[\\x00-\\x1f\\x7f\u{80}-\u{9f}]?\\PC{0,8}") {
            prop_assert_eq!(
                find_control(&s),
                s.char_indices().find(|(_, c)| c.is_control())
            );
        }
    }

    #[test]
    fn fast_paths_defer_to_utf8() {
        assert_eq!(
            outcome(domain("a.bücher.example x")),
            Ok((" x", "a.bücher.example".to_owned()))
        );
        assert_eq!(
            outcome(dot_string("ab.çd@x")),
            Ok(("@x", "ab.çd".to_owned()))
        );
        // A C1 control is not a label character.
        assert_eq!(outcome(domain("ab\u{85}")), Ok(("\u{85}", "ab".to_owned())));
        assert_eq!(find_control("a\u{85}"), Some((1, '\u{85}')));
        assert_eq!(find_control("é\u{a0}"), None);
    }
    #[test]
    fn from_text_takes_brackets_as_optional() {
        let bare: Mailbox<'static> = "a@b.example".parse().unwrap();
        let bracketed: Mailbox<'static> = "<a@b.example>".parse().unwrap();
        assert_eq!(bare, bracketed);
        assert_eq!(bare.to_string(), "a@b.example");
        // A source route is dropped as on the wire.
        assert_eq!(Mailbox::try_from("<@r.example:a@b.example>").unwrap(), bare);
        assert_eq!(
            ReversePath::try_from("a@b.example").unwrap(),
            ReversePath::Mailbox(bare.clone())
        );
        assert_eq!(ReversePath::try_from("<>").unwrap(), ReversePath::Null);
        assert_eq!(
            ForwardPath::try_from("<a@b.example>").unwrap(),
            ForwardPath::Mailbox(bare)
        );
        for postmaster in ["Postmaster", "<postmaster>", "POSTMASTER"] {
            assert_eq!(
                ForwardPath::try_from(postmaster).unwrap(),
                ForwardPath::Postmaster
            );
        }
        // Postmaster at a domain is an ordinary mailbox.
        assert!(matches!(
            "postmaster@b.example".parse::<ForwardPath<'_>>(),
            Ok(ForwardPath::Mailbox(_))
        ));
        assert_eq!(
            "b.example".parse::<Domain<'_>>().unwrap().as_str(),
            "b.example"
        );
        assert!(matches!(
            "[192.0.2.1]".parse::<Host<'_>>(),
            Ok(Host::Literal(_))
        ));
        assert!(matches!(
            "b.example".parse::<Host<'_>>(),
            Ok(Host::Domain(_))
        ));
        assert!("[192.0.2.1]".parse::<AddressLiteral<'_>>().is_ok());
    }

    #[test]
    fn localhost_is_a_valid_domain() {
        assert_eq!(Domain::new("localhost").unwrap(), Domain::LOCALHOST);
    }

    #[test]
    fn from_text_names_the_usual_mistakes() {
        assert_eq!("".parse::<Mailbox<'_>>(), Err(AddressError::Empty));
        assert_eq!("".parse::<ReversePath<'_>>(), Err(AddressError::Empty));
        assert_eq!("".parse::<Domain<'_>>(), Err(AddressError::Empty));
        assert_eq!("".parse::<Host<'_>>(), Err(AddressError::Empty));
        assert_eq!("<>".parse::<Mailbox<'_>>(), Err(AddressError::NullPath));
        assert_eq!("<>".parse::<ForwardPath<'_>>(), Err(AddressError::NullPath));
        assert_eq!(
            "bob".parse::<ForwardPath<'_>>(),
            Err(AddressError::MissingAt)
        );
        assert_eq!("<bob>".parse::<Mailbox<'_>>(), Err(AddressError::MissingAt));
        assert_eq!(
            "a@b.example>".parse::<Mailbox<'_>>(),
            Err(AddressError::Syntax)
        );
        assert_eq!(
            "<a@b.example".parse::<Mailbox<'_>>(),
            Err(AddressError::Syntax)
        );
        assert_eq!(
            "a b@c.example".parse::<Mailbox<'_>>(),
            Err(AddressError::Syntax)
        );
        // Nothing can carry a second command through an address.
        assert!("a@b.example\r\nRSET".parse::<Mailbox<'_>>().is_err());
        assert!("<a@b.example>\r\n".parse::<ReversePath<'_>>().is_err());
        assert!("b.example\n".parse::<Domain<'_>>().is_err());
        // 64 + 1 + 191 octets, 258 with the brackets: over the path limit
        // with or without them.
        let label = "b".repeat(60);
        let long_path = format!("{}@{label}.{label}.{label}.example", "a".repeat(64));
        for text in [long_path.clone(), format!("<{long_path}>")] {
            assert!(
                matches!(
                    text.parse::<Mailbox<'_>>(),
                    Err(AddressError::PathTooLong { .. })
                ),
                "{text}"
            );
        }
        let long = format!("{}@b.example", "a".repeat(65));
        assert_eq!(
            long.parse::<Mailbox<'_>>(),
            Err(AddressError::LocalPartTooLong { len: 65 })
        );
    }
}
