//! The EHLO reply as a typed extension set (RFC 5321 §4.1.1.1, §4.1.4).
//!
//! ```text
//! ehlo-ok-rsp  = ( "250" SP Domain [ SP ehlo-greet ] CRLF )
//!              / ( "250-" Domain [ SP ehlo-greet ] CRLF
//!                  *( "250-" ehlo-line CRLF )
//!                  "250" SP ehlo-line CRLF )
//! ehlo-greet   = 1*(%d0-9 / %d11-12 / %d14-127)
//! ehlo-line    = ehlo-keyword *( SP ehlo-param )
//! ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
//! ehlo-param   = 1*(%d33-126)
//! ```
//!
//! A client reads the server's capabilities once per session (and again after
//! STARTTLS, when everything learned before must be forgotten); the server
//! writes them from its configuration. Both use [`Extensions`]: parse a
//! [`Reply`] with [`EhloReply::parse`], or build one with [`EhloReply::new`]
//! and [`EhloReply::encode`]. Parsing what was encoded gives back the same set.
//!
//! Parsing reads the reply once for its [`Capabilities`] (which extensions
//! are announced, as bits, and the SIZE value) and allocates nothing; the
//! typed [`Extensions`] are read from the same reply when
//! [`EhloReply::extensions`] asks for them, by the same rules.
//!
//! # Decisions
//!
//! - **Keywords are case-insensitive** (RFC 5321 §2.4): `250-starttls` is
//!   STARTTLS (lettre misses it and silently skips TLS).
//! - **Unknown keywords are kept** as [`Extension::Other`] with their
//!   parameters, in the order the server sent them.
//! - **A known keyword with malformed parameters** (`SIZE abc`, `PIPELINING x`,
//!   an `AUTH` mechanism longer than 20 characters) does not fail the reply:
//!   the line becomes [`Extension::Other`], so the typed queries
//!   ([`Extensions::max_size`], [`Extensions::supports_pipelining`]) do not see
//!   it, while [`Extensions::contains`] still reports the keyword as present.
//!   A client that insists on STARTTLS therefore fails closed on a garbled
//!   `STARTTLS` line rather than guessing.
//! - **Lines that fit no `ehlo-line`** (a bad keyword, a parameter with a
//!   control or non-ASCII character) and **repeated keywords** (the first one
//!   counts) are kept verbatim in [`EhloReply::ignored_lines`]. Empty lines
//!   (some servers end with a bare `250 `) are skipped.
//! - **AUTH** is read from `AUTH PLAIN LOGIN` and from the pre-standard
//!   `AUTH=PLAIN LOGIN` form; both merge into one [`Extension::Auth`] list
//!   without duplicates. Encoding writes the standard form only.
//! - **SIZE**: `SIZE` without a number and `SIZE 0` both mean the server
//!   announces no fixed limit (RFC 1870 §4). [`Extension::Size`] keeps what was
//!   written (`None`, `Some(0)`), [`Extensions::max_size`] interprets it.

use std::borrow::Cow;
use std::fmt;

use thiserror::Error;

use crate::keyword::{Keyword, Mechanism, TokenError};
use crate::reply::{Reply, ReplyCode};

/// A parameter on an EHLO line (RFC 5321 §4.1.1.1): printable ASCII without
/// space.
///
/// ```text
/// ehlo-param = 1*(%d33-126)
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EhloParam<'a>(Cow<'a, str>);

impl<'a> EhloParam<'a> {
    /// Validates a parameter, borrowing it.
    pub fn new(s: &'a str) -> Result<Self, TokenError> {
        validate_param(s)?;
        Ok(Self(Cow::Borrowed(s)))
    }

    /// Validates an owned parameter.
    pub fn new_owned(s: String) -> Result<EhloParam<'static>, TokenError> {
        validate_param(&s)?;
        Ok(EhloParam(Cow::Owned(s)))
    }

    /// The parameter as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Detaches the parameter from the buffer it was parsed from.
    pub fn into_owned(self) -> EhloParam<'static> {
        EhloParam(Cow::Owned(self.0.into_owned()))
    }
}

fn validate_param(s: &str) -> Result<(), TokenError> {
    if s.is_empty() {
        return Err(TokenError::Empty);
    }
    // Fast path over bytes; the char walk only names the offending character.
    if s.bytes().all(|b| matches!(b, b'!'..=b'~')) {
        return Ok(());
    }
    match s.chars().find(|c| !matches!(c, '!'..='~')) {
        Some(c) => Err(TokenError::InvalidChar(c)),
        None => Ok(()),
    }
}

impl fmt::Debug for EhloParam<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EhloParam({:?})", self.0)
    }
}

impl fmt::Display for EhloParam<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `MIXER`, the default MT-PRIORITY profile (RFC 6710 §9.2).
pub const MT_PRIORITY_MIXER: &str = "MIXER";
/// `STANAG4406`, the military messaging MT-PRIORITY profile (RFC 6710 §9.3).
pub const MT_PRIORITY_STANAG4406: &str = "STANAG4406";
/// `NSEP`, the National Security / Emergency Preparedness profile (RFC 6710 §9.4).
pub const MT_PRIORITY_NSEP: &str = "NSEP";

/// The limits of the LIMITS extension (RFC 9422 §4).
///
/// ```text
/// limits-param = "LIMITS" SP limit *(SP limit)
/// limit        = limit-name "=" limit-value
/// ```
///
/// The three limits RFC 9422 registers are typed; any other is kept verbatim
/// (`NAME=value`) in [`Limits::other`], never dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Limits<'a> {
    /// `MAILMAX`: most transactions (MAIL commands) per session (RFC 9422 §5.1).
    pub mail_max: Option<u32>,
    /// `RCPTMAX`: most recipients per transaction (RFC 9422 §5.2).
    pub rcpt_max: Option<u32>,
    /// `RCPTDOMAINMAX`: most distinct recipient domains per transaction
    /// (RFC 9422 §5.3).
    pub rcpt_domain_max: Option<u32>,
    other: Vec<EhloParam<'a>>,
}

const MAILMAX: &str = "MAILMAX";
const RCPTMAX: &str = "RCPTMAX";
const RCPTDOMAINMAX: &str = "RCPTDOMAINMAX";

impl<'a> Limits<'a> {
    /// The three registered limits; unregistered ones are added with
    /// [`Limits::push_other`].
    pub fn new(mail_max: Option<u32>, rcpt_max: Option<u32>, rcpt_domain_max: Option<u32>) -> Self {
        Self {
            mail_max,
            rcpt_max,
            rcpt_domain_max,
            other: Vec::new(),
        }
    }

    /// Limits not registered by RFC 9422, each as written (`NAME=value`).
    pub fn other(&self) -> &[EhloParam<'a>] {
        &self.other
    }

    /// Adds an unregistered limit. Refused (and handed back) when its name is
    /// one of the typed ones, which must be set through their fields.
    pub fn push_other(&mut self, limit: EhloParam<'a>) -> Result<(), EhloParam<'a>> {
        let name = limit.as_str().split('=').next().unwrap_or_default();
        if [MAILMAX, RCPTMAX, RCPTDOMAINMAX]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(name))
        {
            return Err(limit);
        }
        self.other.push(limit);
        Ok(())
    }

    /// Detaches the limits from the buffer they were parsed from.
    pub fn into_owned(self) -> Limits<'static> {
        Limits {
            mail_max: self.mail_max,
            rcpt_max: self.rcpt_max,
            rcpt_domain_max: self.rcpt_domain_max,
            other: self.other.into_iter().map(EhloParam::into_owned).collect(),
        }
    }

    fn parse(params: impl Iterator<Item = &'a str>) -> Option<Self> {
        let mut limits = Self::default();
        for p in params {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            let slot = if name.eq_ignore_ascii_case(MAILMAX) {
                &mut limits.mail_max
            } else if name.eq_ignore_ascii_case(RCPTMAX) {
                &mut limits.rcpt_max
            } else if name.eq_ignore_ascii_case(RCPTDOMAINMAX) {
                &mut limits.rcpt_domain_max
            } else {
                limits.other.push(EhloParam::new(p).ok()?);
                continue;
            };
            if slot.is_some() {
                return None;
            }
            *slot = Some(u32::try_from(parse_number(value)?).ok()?);
        }
        Some(limits)
    }
}

/// One service extension from an EHLO reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Extension<'a> {
    /// `SIZE [n]`: message size declaration (RFC 1870). `None` (no number) or
    /// `Some(0)` means no fixed maximum; see [`Extensions::max_size`].
    Size(Option<u64>),
    /// `AUTH mech...`: SMTP authentication (RFC 4954), with the mechanisms
    /// offered, in the server's order, without duplicates.
    Auth(Vec<Mechanism<'a>>),
    /// `PIPELINING` (RFC 2920).
    Pipelining,
    /// `8BITMIME` (RFC 6152).
    EightBitMime,
    /// `BINARYMIME` (RFC 3030).
    BinaryMime,
    /// `CHUNKING`: the BDAT command (RFC 3030).
    Chunking,
    /// `SMTPUTF8`: internationalized addresses (RFC 6531).
    SmtpUtf8,
    /// `DSN`: delivery status notifications (RFC 3461).
    Dsn,
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    EnhancedStatusCodes,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `REQUIRETLS` (RFC 8689).
    RequireTls,
    /// `MT-PRIORITY [profile]` (RFC 6710 §3): the priority profile, compared
    /// case-insensitively (see [`MT_PRIORITY_MIXER`] and its siblings).
    MtPriority(Option<Keyword<'a>>),
    /// `DELIVERBY [min-by-time]` (RFC 2852 §4): the smallest by-time in
    /// seconds the server accepts, when given.
    DeliverBy(Option<u64>),
    /// `FUTURERELEASE max-interval max-datetime` (RFC 4865 §3).
    FutureRelease {
        /// Longest hold in seconds (`HOLDFOR`).
        max_interval: u64,
        /// Latest release date-time (`HOLDUNTIL`), an RFC 3339 date-time as
        /// written.
        max_datetime: EhloParam<'a>,
    },
    /// `LIMITS name=value...` (RFC 9422).
    Limits(Limits<'a>),
    /// `VRFY` (RFC 5321 §3.5.2).
    Vrfy,
    /// `ETRN` (RFC 1985).
    Etrn,
    /// `HELP` (RFC 5321 §4.1.1.8).
    Help,
    /// Any other keyword, or a known one whose parameters did not parse.
    Other {
        /// The keyword as written.
        keyword: Keyword<'a>,
        /// Its parameters.
        params: Vec<EhloParam<'a>>,
    },
}

/// Index of a typed extension in the presence bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Size,
    Auth,
    Pipelining,
    EightBitMime,
    BinaryMime,
    Chunking,
    SmtpUtf8,
    Dsn,
    EnhancedStatusCodes,
    StartTls,
    RequireTls,
    MtPriority,
    DeliverBy,
    FutureRelease,
    Limits,
    Vrfy,
    Etrn,
    Help,
}

impl Kind {
    const fn bit(self) -> u32 {
        1 << self as u8
    }

    const fn keyword(self) -> &'static str {
        match self {
            Self::Size => "SIZE",
            Self::Auth => "AUTH",
            Self::Pipelining => "PIPELINING",
            Self::EightBitMime => "8BITMIME",
            Self::BinaryMime => "BINARYMIME",
            Self::Chunking => "CHUNKING",
            Self::SmtpUtf8 => "SMTPUTF8",
            Self::Dsn => "DSN",
            Self::EnhancedStatusCodes => "ENHANCEDSTATUSCODES",
            Self::StartTls => "STARTTLS",
            Self::RequireTls => "REQUIRETLS",
            Self::MtPriority => "MT-PRIORITY",
            Self::DeliverBy => "DELIVERBY",
            Self::FutureRelease => "FUTURERELEASE",
            Self::Limits => "LIMITS",
            Self::Vrfy => "VRFY",
            Self::Etrn => "ETRN",
            Self::Help => "HELP",
        }
    }

    /// Whether the keyword takes no parameters (see [`Kind::flag`]).
    #[inline]
    const fn is_flag(self) -> bool {
        !matches!(
            self,
            Self::Size
                | Self::Auth
                | Self::MtPriority
                | Self::DeliverBy
                | Self::FutureRelease
                | Self::Limits
        )
    }

    /// The extension of a keyword that takes no parameters.
    #[inline]
    fn flag(self) -> Option<Extension<'static>> {
        Some(match self {
            Self::Pipelining => Extension::Pipelining,
            Self::EightBitMime => Extension::EightBitMime,
            Self::BinaryMime => Extension::BinaryMime,
            Self::Chunking => Extension::Chunking,
            Self::SmtpUtf8 => Extension::SmtpUtf8,
            Self::Dsn => Extension::Dsn,
            Self::EnhancedStatusCodes => Extension::EnhancedStatusCodes,
            Self::StartTls => Extension::StartTls,
            Self::RequireTls => Extension::RequireTls,
            Self::Vrfy => Extension::Vrfy,
            Self::Etrn => Extension::Etrn,
            Self::Help => Extension::Help,
            Self::Size
            | Self::Auth
            | Self::MtPriority
            | Self::DeliverBy
            | Self::FutureRelease
            | Self::Limits => return None,
        })
    }

    /// The typed extension a keyword names, ignoring case.
    fn of(keyword: &str) -> Option<Self> {
        let b = keyword.as_bytes();
        if b.len() > KIND_MAX_LEN || !b.iter().all(|&c| KEYWORD_BYTE[usize::from(c)]) {
            return None;
        }
        Self::of_keyword(b)
    }

    /// The typed extension of an `ehlo-keyword` (letters, digits and `-`
    /// only, which the caller has checked), ignoring case.
    ///
    /// Called for every EHLO line: the first 16 bytes are loaded as one
    /// 128-bit word and upper-cased in it (in these bytes only letters have
    /// bit 6 set, so clearing bit 5 where bit 6 is set upper-cases letters
    /// and leaves digits and `-` alone), then matched against the known
    /// keywords as whole words (the zero padding tells lengths apart); the
    /// length, and for the one keyword longer than 16 bytes its tail, are
    /// checked afterwards.
    #[inline]
    fn of_keyword(keyword: &[u8]) -> Option<Self> {
        if keyword.len() > KIND_MAX_LEN {
            return None;
        }
        let kind = Self::of_folded(fold16(first16(keyword)))?;
        // Equal first 16 bytes; the length rules out a longer keyword, and
        // only ENHANCEDSTATUSCODES has a tail.
        let known = kind.keyword().as_bytes();
        let tail = keyword.get(16..).unwrap_or_default();
        let known_tail = known.get(16..).unwrap_or_default();
        (keyword.len() == known.len() && tail.eq_ignore_ascii_case(known_tail)).then_some(kind)
    }

    /// The known keyword whose first 16 bytes, upper case and zero padded,
    /// are `w`: one multiplicative hash into a 32-slot table built at
    /// compile time (collision-free for the known keywords, checked when
    /// the table is built), then one comparison.
    #[inline]
    fn of_folded(w: u128) -> Option<Self> {
        let (word, kind) = KIND_TABLE[kind_slot(w)];
        if word == w { kind } else { None }
    }

    /// The known keyword that opens `line` (after any leading spaces),
    /// found without a byte-by-byte scan: the first 16 bytes are loaded as
    /// one word, the keyword's end is the first space (or `=`) in it, and
    /// the folded keyword is matched whole. A folded byte equals a letter
    /// only if it was that letter in either case, and a digit or `-` only
    /// if it was that byte, so a match proves the keyword well-formed.
    ///
    /// `None` for anything else (an unknown keyword, one of 16 bytes or
    /// more, `AUTH=`): the caller then scans the line byte by byte.
    #[inline]
    fn opening(line: &[u8]) -> Option<(usize, Self)> {
        let head = first16(line);
        let delims = |x: u64| zero_bytes(x ^ SP) | zero_bytes(x ^ EQ);
        let end = first_marked(delims(head as u64), delims((head >> 64) as u64)).min(line.len());
        if end == 0 || end >= 16 || line.get(end).is_some_and(|&c| c != b' ') {
            return None;
        }
        let keyword = head & ((1u128 << (8 * end)) - 1);
        let kind = Self::of_folded(fold16(keyword))?;
        (kind.keyword().len() == end).then_some((end, kind))
    }
}

/// A word with every byte `b`.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// A word of spaces: a keyword delimiter [`Kind::opening`] and
/// [`flag_at`] search for with [`zero_bytes`].
const SP: u64 = splat(b' ');
/// A word of `=`: ends `AUTH` in `AUTH=mech`.
const EQ: u64 = splat(b'=');
/// A word of CRs: ends a flag line in [`flag_at`].
const CR: u64 = splat(b'\r');

/// The high bit of each zero byte of `x` (SWAR: eight bytes at once;
/// `zero_bytes(x ^ splat(c))` marks the bytes equal to `c`). A borrow can
/// mark a byte above a zero byte, never below one, so the lowest mark is
/// exact, in one such mask and in a union of them. Callers OR the masks
/// of the named constants themselves: a helper looping over a list of
/// delimiters compiled to about 6 more instructions per EHLO reply
/// (callgrind, the codec benchmark's `ours-replies` profile).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(splat(0x01)) & !x & splat(0x80)
}

/// The index of the first marked byte of a 16-byte little-endian word,
/// given the marks of its low and high halves (see [`zero_bytes`]), or 16
/// when none is marked.
#[inline(always)]
fn first_marked(lo: u64, hi: u64) -> usize {
    match (lo, hi) {
        (d, _) if d != 0 => d.trailing_zeros() as usize / 8,
        (_, d) if d != 0 => 8 + d.trailing_zeros() as usize / 8,
        _ => 16,
    }
}

/// Upper-cases the letters of a word of keyword bytes: in letters, digits
/// and `-` only letters have bit 6 set, so clearing bit 5 where bit 6 is set
/// upper-cases letters and leaves digits and `-` alone.
#[inline(always)]
fn fold16(w: u128) -> u128 {
    const BIT6: u128 = u128::from_ne_bytes([0x40; 16]);
    w & !((w & BIT6) >> 1)
}

/// The first 16 bytes of `b` as a little-endian word, zero padded, loaded
/// straight from `b` (two overlapping loads where it is shorter), never
/// through a buffer on the stack, whose byte stores would stall the wide
/// load that follows.
#[inline(always)]
fn first16(b: &[u8]) -> u128 {
    fn load<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
        let mut out = [0; N];
        if let Some(src) = b.get(at..at + N) {
            out.copy_from_slice(src);
        }
        out
    }
    let len = b.len();
    if len >= 16 {
        u128::from_le_bytes(load(b, 0))
    } else if len >= 8 {
        let lo = u64::from_le_bytes(load(b, 0));
        // Bytes `len - 8 .. len`, shifted so that byte 8 lands at the bottom.
        let hi = u64::from_le_bytes(load(b, len - 8))
            .checked_shr(8 * (16 - len) as u32)
            .unwrap_or(0);
        u128::from(lo) | u128::from(hi) << 64
    } else if len >= 4 {
        let lo = u32::from_le_bytes(load(b, 0));
        let hi = u32::from_le_bytes(load(b, len - 4))
            .checked_shr(8 * (8 - len) as u32)
            .unwrap_or(0);
        u128::from(lo) | u128::from(hi) << 32
    } else {
        b.iter().rev().fold(0u128, |w, &c| w << 8 | u128::from(c))
    }
}

/// Every typed extension, for building [`KIND_TABLE`].
const KINDS: [Kind; 18] = [
    Kind::Size,
    Kind::Auth,
    Kind::Pipelining,
    Kind::EightBitMime,
    Kind::BinaryMime,
    Kind::Chunking,
    Kind::SmtpUtf8,
    Kind::Dsn,
    Kind::EnhancedStatusCodes,
    Kind::StartTls,
    Kind::RequireTls,
    Kind::MtPriority,
    Kind::DeliverBy,
    Kind::FutureRelease,
    Kind::Limits,
    Kind::Vrfy,
    Kind::Etrn,
    Kind::Help,
];

/// The slot of a folded keyword word in [`KIND_TABLE`]. The multiplier was
/// searched for: it sends the 18 known keywords to 18 different slots.
const fn kind_slot(w: u128) -> usize {
    let x = (w as u64) ^ ((w >> 64) as u64);
    (x.wrapping_mul(0xa8ea_37f7_523d_2a55) >> 59) as usize
}

/// Each known keyword's first 16 bytes (zero padded) in its slot.
static KIND_TABLE: [(u128, Option<Kind>); 32] = {
    let mut table = [(0u128, None); 32];
    let mut i = 0;
    while i < KINDS.len() {
        let kind = KINDS[i];
        let b = kind.keyword().as_bytes();
        let mut w = [0u8; 16];
        let mut j = 0;
        while j < b.len() && j < 16 {
            w[j] = b[j];
            j += 1;
        }
        let w = u128::from_le_bytes(w);
        let slot = kind_slot(w);
        assert!(
            table[slot].1.is_none(),
            "two known EHLO keywords share a slot"
        );
        table[slot] = (w, Some(kind));
        i += 1;
    }
    table
};

/// The longest known keyword (`ENHANCEDSTATUSCODES`).
const KIND_MAX_LEN: usize = 19;

/// `1*digit` as a number; `None` when empty, not all digits, or too large.
fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |n, b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

fn push_number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // `n % 10` < 10; `i` stays in bounds because u64 has at most 20 digits.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

impl<'a> Extension<'a> {
    /// The keyword this extension is announced with, in its canonical
    /// spelling (for [`Extension::Other`], as written).
    pub fn keyword(&self) -> &str {
        match self.kind() {
            Some(kind) => kind.keyword(),
            None => match self {
                Self::Other { keyword, .. } => keyword.as_str(),
                // `kind()` is `None` only for `Other`.
                _ => "",
            },
        }
    }

    fn kind(&self) -> Option<Kind> {
        Some(match self {
            Self::Size(_) => Kind::Size,
            Self::Auth(_) => Kind::Auth,
            Self::Pipelining => Kind::Pipelining,
            Self::EightBitMime => Kind::EightBitMime,
            Self::BinaryMime => Kind::BinaryMime,
            Self::Chunking => Kind::Chunking,
            Self::SmtpUtf8 => Kind::SmtpUtf8,
            Self::Dsn => Kind::Dsn,
            Self::EnhancedStatusCodes => Kind::EnhancedStatusCodes,
            Self::StartTls => Kind::StartTls,
            Self::RequireTls => Kind::RequireTls,
            Self::MtPriority(_) => Kind::MtPriority,
            Self::DeliverBy(_) => Kind::DeliverBy,
            Self::FutureRelease { .. } => Kind::FutureRelease,
            Self::Limits(_) => Kind::Limits,
            Self::Vrfy => Kind::Vrfy,
            Self::Etrn => Kind::Etrn,
            Self::Help => Kind::Help,
            Self::Other { .. } => return None,
        })
    }

    /// Interprets a keyword and its parameters: the typed extension when the
    /// keyword is known and the parameters fit its grammar, otherwise
    /// [`Extension::Other`].
    pub fn from_parts(keyword: Keyword<'a>, params: Vec<EhloParam<'a>>) -> Self {
        let typed = {
            // The typed value borrows from `params`, which is consumed
            // below, so it is detached (this path is for values built by
            // hand; parsing goes through `typed` directly and borrows).
            Kind::of(keyword.as_str())
                .and_then(|kind| typed(kind, params.iter().map(EhloParam::as_str)))
                .map(Extension::into_owned)
        };
        match typed {
            Some(ext) => ext,
            None => Self::Other { keyword, params },
        }
    }

    /// Appends the `ehlo-line` (without code or CRLF).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.keyword().as_bytes());
        let param = |out: &mut Vec<u8>, p: &str| {
            out.push(b' ');
            out.extend_from_slice(p.as_bytes());
        };
        match self {
            Self::Size(Some(n)) | Self::DeliverBy(Some(n)) => {
                out.push(b' ');
                push_number(out, *n);
            }
            Self::Auth(mechs) => mechs.iter().for_each(|m| param(out, m.as_str())),
            Self::MtPriority(Some(profile)) => param(out, profile.as_str()),
            Self::FutureRelease {
                max_interval,
                max_datetime,
            } => {
                out.push(b' ');
                push_number(out, *max_interval);
                param(out, max_datetime.as_str());
            }
            Self::Limits(limits) => {
                for (name, value) in [
                    (MAILMAX, limits.mail_max),
                    (RCPTMAX, limits.rcpt_max),
                    (RCPTDOMAINMAX, limits.rcpt_domain_max),
                ] {
                    if let Some(v) = value {
                        param(out, name);
                        out.push(b'=');
                        push_number(out, u64::from(v));
                    }
                }
                limits.other.iter().for_each(|p| param(out, p.as_str()));
            }
            Self::Other { params, .. } => params.iter().for_each(|p| param(out, p.as_str())),
            _ => {}
        }
    }

    /// Detaches the extension from the buffer it was parsed from.
    pub fn into_owned(self) -> Extension<'static> {
        match self {
            Self::Size(n) => Extension::Size(n),
            Self::Auth(m) => Extension::Auth(m.into_iter().map(Mechanism::into_owned).collect()),
            Self::Pipelining => Extension::Pipelining,
            Self::EightBitMime => Extension::EightBitMime,
            Self::BinaryMime => Extension::BinaryMime,
            Self::Chunking => Extension::Chunking,
            Self::SmtpUtf8 => Extension::SmtpUtf8,
            Self::Dsn => Extension::Dsn,
            Self::EnhancedStatusCodes => Extension::EnhancedStatusCodes,
            Self::StartTls => Extension::StartTls,
            Self::RequireTls => Extension::RequireTls,
            Self::MtPriority(p) => Extension::MtPriority(p.map(Keyword::into_owned)),
            Self::DeliverBy(n) => Extension::DeliverBy(n),
            Self::FutureRelease {
                max_interval,
                max_datetime,
            } => Extension::FutureRelease {
                max_interval,
                max_datetime: max_datetime.into_owned(),
            },
            Self::Limits(l) => Extension::Limits(l.into_owned()),
            Self::Vrfy => Extension::Vrfy,
            Self::Etrn => Extension::Etrn,
            Self::Help => Extension::Help,
            Self::Other { keyword, params } => Extension::Other {
                keyword: keyword.into_owned(),
                params: params.into_iter().map(EhloParam::into_owned).collect(),
            },
        }
    }
}

/// The typed form of a known keyword's parameters; `None` when they do not
/// fit its grammar.
fn typed<'a, I>(kind: Kind, params: I) -> Option<Extension<'a>>
where
    I: Iterator<Item = &'a str> + Clone,
{
    // At most `N` parameters, as an array padded with `None`; `None` overall
    // when there are more.
    fn at_most<'a, const N: usize>(
        mut params: impl Iterator<Item = &'a str>,
    ) -> Option<[Option<&'a str>; N]> {
        let mut out = [None; N];
        for slot in &mut out {
            *slot = params.next();
        }
        params.next().is_none().then_some(out)
    }
    let flag = |ext: Extension<'a>| params.clone().next().is_none().then_some(ext);
    match kind {
        // "SIZE" [SP size-param]; size-param = 1*20DIGIT (RFC 1870 §4)
        Kind::Size => match at_most::<1>(params)? {
            [None] => Some(Extension::Size(None)),
            [Some(n)] => Some(Extension::Size(Some(parse_number(n)?))),
        },
        // "AUTH" 1*(SP sasl-mech) (RFC 4954 §3)
        Kind::Auth => {
            let mut mechs: Vec<Mechanism<'a>> = Vec::new();
            for p in params {
                let m = Mechanism::new(p).ok()?;
                if !mechs.contains(&m) {
                    mechs.push(m);
                }
            }
            Some(Extension::Auth(mechs))
        }
        Kind::Pipelining => flag(Extension::Pipelining),
        Kind::EightBitMime => flag(Extension::EightBitMime),
        Kind::BinaryMime => flag(Extension::BinaryMime),
        Kind::Chunking => flag(Extension::Chunking),
        Kind::SmtpUtf8 => flag(Extension::SmtpUtf8),
        Kind::Dsn => flag(Extension::Dsn),
        Kind::EnhancedStatusCodes => flag(Extension::EnhancedStatusCodes),
        Kind::StartTls => flag(Extension::StartTls),
        Kind::RequireTls => flag(Extension::RequireTls),
        Kind::Vrfy => flag(Extension::Vrfy),
        Kind::Etrn => flag(Extension::Etrn),
        Kind::Help => flag(Extension::Help),
        // "MT-PRIORITY" [SP priority-profile] (RFC 6710 §3)
        Kind::MtPriority => match at_most::<1>(params)? {
            [None] => Some(Extension::MtPriority(None)),
            [Some(p)] => Some(Extension::MtPriority(Some(Keyword::new(p).ok()?))),
        },
        // "DELIVERBY" [SP min-by-time] (RFC 2852 §4)
        Kind::DeliverBy => match at_most::<1>(params)? {
            [None] => Some(Extension::DeliverBy(None)),
            [Some(n)] => Some(Extension::DeliverBy(Some(parse_number(n)?))),
        },
        // "FUTURERELEASE" SP max-future-release-interval
        //                 SP max-future-release-date-time (RFC 4865 §3)
        Kind::FutureRelease => match at_most::<2>(params)? {
            [Some(interval), Some(datetime)] => Some(Extension::FutureRelease {
                max_interval: parse_number(interval)?,
                max_datetime: EhloParam::new(datetime).ok()?,
            }),
            _ => None,
        },
        Kind::Limits => Limits::parse(params).map(Extension::Limits),
    }
}

impl fmt::Display for Extension<'_> {
    /// The `ehlo-line`, e.g. `SIZE 10240000` or `AUTH PLAIN LOGIN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.encode(&mut out);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// The set of extensions a server announces: at most one entry per keyword,
/// in the order announced.
///
/// Presence of each typed extension is kept in a bit set, so the
/// `supports_*` queries are a mask test; the entries themselves (parameters,
/// unknown keywords) are kept in full.
///
/// Equality ignores order: two sets are equal when they hold equal entries.
#[derive(Debug, Clone, Default)]
pub struct Extensions<'a> {
    entries: Vec<Extension<'a>>,
    present: u32,
}

impl PartialEq for Extensions<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.present == other.present
            && self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .all(|e| other.get(e.keyword()) == Some(e))
    }
}

impl Eq for Extensions<'_> {}

impl<'a> Extensions<'a> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an extension, replacing (and returning) any entry with the same
    /// keyword. An [`Extension::Other`] whose keyword is a known one is
    /// interpreted first (so `Other { SIZE, ["100"] }` becomes `Size(Some(100))`),
    /// and duplicate AUTH mechanisms are removed: the set then encodes to an
    /// EHLO reply that parses back to itself.
    pub fn insert(&mut self, ext: Extension<'a>) -> Option<Extension<'a>> {
        let ext = match ext {
            Extension::Other { keyword, params } => Extension::from_parts(keyword, params),
            Extension::Auth(mechs) => {
                let mut unique: Vec<Mechanism<'a>> = Vec::with_capacity(mechs.len());
                for m in mechs {
                    if !unique.contains(&m) {
                        unique.push(m);
                    }
                }
                Extension::Auth(unique)
            }
            other => other,
        };
        let slot = self
            .position(ext.keyword())
            .and_then(|i| self.entries.get_mut(i));
        let Some(slot) = slot else {
            self.add_new(ext);
            return None;
        };
        // Same keyword, but a typed entry may replace an `Other` or the
        // reverse: keep the presence bits in step.
        let new_bit = ext.kind().map_or(0, Kind::bit);
        let old = std::mem::replace(slot, ext);
        self.present = (self.present & !old.kind().map_or(0, Kind::bit)) | new_bit;
        Some(old)
    }

    fn add_new(&mut self, ext: Extension<'a>) {
        if let Some(kind) = ext.kind() {
            self.present |= kind.bit();
        }
        self.entries.push(ext);
    }

    /// Removes the entry with this keyword (any case).
    pub fn remove(&mut self, keyword: &str) -> Option<Extension<'a>> {
        let i = self.position(keyword)?;
        let ext = self.entries.remove(i);
        if let Some(kind) = ext.kind() {
            self.present &= !kind.bit();
        }
        Some(ext)
    }

    fn position(&self, keyword: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.keyword().eq_ignore_ascii_case(keyword))
    }

    /// The entry announced with this keyword (any case), typed or not.
    pub fn get(&self, keyword: &str) -> Option<&Extension<'a>> {
        self.position(keyword).and_then(|i| self.entries.get(i))
    }

    /// Whether the server announced this keyword (any case), whether its
    /// parameters parsed or not.
    pub fn contains(&self, keyword: &str) -> bool {
        match Kind::of(keyword) {
            Some(kind) if self.has(kind) => true,
            _ => self.position(keyword).is_some(),
        }
    }

    fn has(&self, kind: Kind) -> bool {
        self.present & kind.bit() != 0
    }

    fn find(&self, kind: Kind) -> Option<&Extension<'a>> {
        if !self.has(kind) {
            return None;
        }
        self.entries.iter().find(|e| e.kind() == Some(kind))
    }

    /// The entries in the order announced.
    pub fn iter(&self) -> std::slice::Iter<'_, Extension<'a>> {
        self.entries.iter()
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty (a server that announces nothing).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `PIPELINING` (RFC 2920).
    pub fn supports_pipelining(&self) -> bool {
        self.has(Kind::Pipelining)
    }

    /// `8BITMIME` (RFC 6152).
    pub fn supports_8bitmime(&self) -> bool {
        self.has(Kind::EightBitMime)
    }

    /// `BINARYMIME` (RFC 3030).
    pub fn supports_binarymime(&self) -> bool {
        self.has(Kind::BinaryMime)
    }

    /// `CHUNKING` (RFC 3030): BDAT may be used.
    pub fn supports_chunking(&self) -> bool {
        self.has(Kind::Chunking)
    }

    /// `SMTPUTF8` (RFC 6531).
    pub fn supports_smtputf8(&self) -> bool {
        self.has(Kind::SmtpUtf8)
    }

    /// `DSN` (RFC 3461).
    pub fn supports_dsn(&self) -> bool {
        self.has(Kind::Dsn)
    }

    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub fn supports_enhanced_status_codes(&self) -> bool {
        self.has(Kind::EnhancedStatusCodes)
    }

    /// `STARTTLS` (RFC 3207).
    pub fn supports_starttls(&self) -> bool {
        self.has(Kind::StartTls)
    }

    /// `REQUIRETLS` (RFC 8689).
    pub fn supports_requiretls(&self) -> bool {
        self.has(Kind::RequireTls)
    }

    /// `VRFY` announced as an extension.
    pub fn supports_vrfy(&self) -> bool {
        self.has(Kind::Vrfy)
    }

    /// `ETRN` (RFC 1985).
    pub fn supports_etrn(&self) -> bool {
        self.has(Kind::Etrn)
    }

    /// `HELP` announced as an extension.
    pub fn supports_help(&self) -> bool {
        self.has(Kind::Help)
    }

    /// `AUTH` announced (with or without mechanisms).
    pub fn supports_auth(&self) -> bool {
        self.has(Kind::Auth)
    }

    /// The SASL mechanisms announced with `AUTH`, in the server's order
    /// (empty when there is no AUTH).
    pub fn auth_mechanisms(&self) -> &[Mechanism<'a>] {
        match self.find(Kind::Auth) {
            Some(Extension::Auth(m)) => m,
            _ => &[],
        }
    }

    /// Whether `AUTH` lists this mechanism (any case).
    pub fn supports_mechanism(&self, mechanism: &str) -> bool {
        self.auth_mechanisms().iter().any(|m| m.is(mechanism))
    }

    /// `SIZE` announced (RFC 1870), with or without a number.
    pub fn supports_size(&self) -> bool {
        self.has(Kind::Size)
    }

    /// The fixed maximum message size in octets: `Some(n)` only for `SIZE n`
    /// with `n > 0`. `SIZE`, `SIZE 0` and no SIZE at all give `None` (no
    /// limit announced, RFC 1870 §4).
    pub fn max_size(&self) -> Option<u64> {
        match self.find(Kind::Size) {
            Some(Extension::Size(Some(n))) if *n > 0 => Some(*n),
            _ => None,
        }
    }

    /// `MT-PRIORITY` announced; the inner value is its profile, if named.
    pub fn mt_priority(&self) -> Option<Option<&Keyword<'a>>> {
        match self.find(Kind::MtPriority) {
            Some(Extension::MtPriority(p)) => Some(p.as_ref()),
            _ => None,
        }
    }

    /// `DELIVERBY` announced; the inner value is its minimum by-time.
    pub fn deliver_by(&self) -> Option<Option<u64>> {
        match self.find(Kind::DeliverBy) {
            Some(Extension::DeliverBy(n)) => Some(*n),
            _ => None,
        }
    }

    /// `FUTURERELEASE` announced: the longest interval in seconds and the
    /// latest date-time as written.
    pub fn future_release(&self) -> Option<(u64, &str)> {
        match self.find(Kind::FutureRelease) {
            Some(Extension::FutureRelease {
                max_interval,
                max_datetime,
            }) => Some((*max_interval, max_datetime.as_str())),
            _ => None,
        }
    }

    /// `LIMITS` announced (RFC 9422).
    pub fn limits(&self) -> Option<&Limits<'a>> {
        match self.find(Kind::Limits) {
            Some(Extension::Limits(l)) => Some(l),
            _ => None,
        }
    }

    /// Detaches the set from the buffer it was parsed from.
    pub fn into_owned(self) -> Extensions<'static> {
        Extensions {
            entries: self
                .entries
                .into_iter()
                .map(Extension::into_owned)
                .collect(),
            present: self.present,
        }
    }

    /// The presence of each typed extension and the SIZE value: what
    /// [`EhloReply::capabilities`] reads without building the set.
    pub fn capabilities(&self) -> Capabilities {
        let size = match self.find(Kind::Size) {
            Some(Extension::Size(n)) => *n,
            _ => None,
        };
        Capabilities {
            present: self.present,
            size,
        }
    }
}

/// What an EHLO reply offers, in a few words: which typed extensions it
/// announces (a bit each) and the SIZE value. [`EhloReply::parse`] reads
/// this in its one pass without building the typed [`Extensions`] (no
/// allocation); the same value comes from [`Extensions::capabilities`].
///
/// The rules are the typed set's: an extension counts only when its line
/// parsed as the typed extension (`SIZE abc` is not SIZE here), and the
/// first line of a keyword counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Capabilities {
    present: u32,
    size: Option<u64>,
}

impl Capabilities {
    fn has(self, kind: Kind) -> bool {
        self.present & kind.bit() != 0
    }

    /// `PIPELINING` (RFC 2920).
    pub fn supports_pipelining(self) -> bool {
        self.has(Kind::Pipelining)
    }

    /// `8BITMIME` (RFC 6152).
    pub fn supports_8bitmime(self) -> bool {
        self.has(Kind::EightBitMime)
    }

    /// `BINARYMIME` (RFC 3030).
    pub fn supports_binarymime(self) -> bool {
        self.has(Kind::BinaryMime)
    }

    /// `CHUNKING` (RFC 3030): BDAT may be used.
    pub fn supports_chunking(self) -> bool {
        self.has(Kind::Chunking)
    }

    /// `SMTPUTF8` (RFC 6531).
    pub fn supports_smtputf8(self) -> bool {
        self.has(Kind::SmtpUtf8)
    }

    /// `DSN` (RFC 3461).
    pub fn supports_dsn(self) -> bool {
        self.has(Kind::Dsn)
    }

    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub fn supports_enhanced_status_codes(self) -> bool {
        self.has(Kind::EnhancedStatusCodes)
    }

    /// `STARTTLS` (RFC 3207).
    pub fn supports_starttls(self) -> bool {
        self.has(Kind::StartTls)
    }

    /// `REQUIRETLS` (RFC 8689).
    pub fn supports_requiretls(self) -> bool {
        self.has(Kind::RequireTls)
    }

    /// `VRFY` announced as an extension.
    pub fn supports_vrfy(self) -> bool {
        self.has(Kind::Vrfy)
    }

    /// `ETRN` (RFC 1985).
    pub fn supports_etrn(self) -> bool {
        self.has(Kind::Etrn)
    }

    /// `HELP` announced as an extension.
    pub fn supports_help(self) -> bool {
        self.has(Kind::Help)
    }

    /// `AUTH` announced with well-formed mechanisms (which
    /// [`Extensions::auth_mechanisms`] lists).
    pub fn supports_auth(self) -> bool {
        self.has(Kind::Auth)
    }

    /// `MT-PRIORITY` (RFC 6710).
    pub fn supports_mt_priority(self) -> bool {
        self.has(Kind::MtPriority)
    }

    /// `DELIVERBY` (RFC 2852).
    pub fn supports_deliver_by(self) -> bool {
        self.has(Kind::DeliverBy)
    }

    /// `FUTURERELEASE` (RFC 4865).
    pub fn supports_future_release(self) -> bool {
        self.has(Kind::FutureRelease)
    }

    /// `LIMITS` (RFC 9422).
    pub fn supports_limits(self) -> bool {
        self.has(Kind::Limits)
    }

    /// `SIZE` announced (RFC 1870), with or without a number.
    pub fn supports_size(self) -> bool {
        self.has(Kind::Size)
    }

    /// The fixed maximum message size in octets, as
    /// [`Extensions::max_size`]: `Some(n)` only for `SIZE n` with `n > 0`.
    pub fn max_size(self) -> Option<u64> {
        self.size.filter(|&n| n > 0 && self.has(Kind::Size))
    }
}

impl<'a> FromIterator<Extension<'a>> for Extensions<'a> {
    fn from_iter<I: IntoIterator<Item = Extension<'a>>>(iter: I) -> Self {
        let mut set = Self::new();
        for ext in iter {
            set.insert(ext);
        }
        set
    }
}

impl<'s, 'a> IntoIterator for &'s Extensions<'a> {
    type Item = &'s Extension<'a>;
    type IntoIter = std::slice::Iter<'s, Extension<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

/// Why an EHLO reply cannot be read or built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EhloError {
    /// The reply is not `250` (a `5yz` means "no EHLO here": fall back to
    /// HELO or give up).
    #[error("EHLO reply has code {0}, not 250")]
    NotOk(ReplyCode),
    /// The server domain is empty or contains a space or control character.
    #[error("invalid domain in EHLO reply")]
    InvalidDomain,
    /// The greeting contains CR, LF or NUL, or the first line would be read
    /// back as an enhanced status code.
    #[error("invalid greeting in EHLO reply")]
    InvalidGreeting,
}

/// A positive reply to EHLO: the server's domain, its greeting and the
/// extensions it announces.
///
/// The reply is kept as received (or, from [`EhloReply::new`], as it will be
/// sent); parsing reads it once for its [`Capabilities`] and allocates
/// nothing. The typed [`Extensions`] and the [`ignored
/// lines`](EhloReply::ignored_lines) are read from it again when asked for.
#[derive(Clone)]
pub struct EhloReply<'a> {
    domain: Cow<'a, str>,
    greeting: Cow<'a, str>,
    capabilities: Capabilities,
    /// The whole reply: the source of the typed view.
    reply: Cow<'a, Reply<'a>>,
}

impl PartialEq for EhloReply<'_> {
    /// Equal domain, greeting, extensions and ignored lines.
    fn eq(&self, other: &Self) -> bool {
        if self.domain != other.domain
            || self.greeting != other.greeting
            || self.capabilities != other.capabilities
        {
            return false;
        }
        let (a, b) = (self.collect(), other.collect());
        a.extensions == b.extensions && a.ignored == b.ignored
    }
}

impl Eq for EhloReply<'_> {}

impl fmt::Debug for EhloReply<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.collect();
        f.debug_struct("EhloReply")
            .field("domain", &self.domain)
            .field("greeting", &self.greeting)
            .field("extensions", &c.extensions)
            .field("ignored", &c.ignored)
            .finish()
    }
}

impl<'a> EhloReply<'a> {
    /// Builds the server's EHLO reply. `greeting` may be empty.
    ///
    /// ```
    /// # use smtp_proto::ehlo::{EhloReply, Extension, Extensions};
    /// let mut ext = Extensions::new();
    /// ext.insert(Extension::Size(Some(10_240_000)));
    /// ext.insert(Extension::Pipelining);
    /// let ehlo = EhloReply::new("mx.example.com", "", ext).unwrap();
    /// let mut out = Vec::new();
    /// ehlo.encode(&mut out);
    /// assert_eq!(out, b"250-mx.example.com\r\n250-SIZE 10240000\r\n250 PIPELINING\r\n");
    /// ```
    pub fn new(
        domain: impl Into<Cow<'a, str>>,
        greeting: impl Into<Cow<'a, str>>,
        extensions: Extensions<'a>,
    ) -> Result<Self, EhloError> {
        let domain = domain.into();
        let greeting = greeting.into();
        if domain.is_empty() || domain.chars().any(|c| c == ' ' || c.is_control()) {
            return Err(EhloError::InvalidDomain);
        }
        let first = if greeting.is_empty() {
            domain.to_string()
        } else {
            format!("{domain} {greeting}")
        };
        // Reuse the reply rules for the first line: no CR/LF/NUL, and nothing
        // a client would read as an enhanced status code.
        Reply::new(ReplyCode::OK, first.as_str()).map_err(|_| EhloError::InvalidGreeting)?;
        let mut lines = Vec::with_capacity(extensions.len() + 1);
        lines.push(Cow::Owned(first));
        for ext in &extensions {
            lines.push(Cow::Owned(ext.to_string()));
        }
        // Every line is free of CR, LF and NUL: the first was checked above,
        // extension lines are built from validated keywords, parameters and
        // numbers.
        Ok(Self {
            domain,
            greeting,
            capabilities: extensions.capabilities(),
            reply: Cow::Owned(Reply::from_parts(ReplyCode::OK, None, lines)),
        })
    }

    /// Reads a reply to EHLO. Only `250` is an EHLO reply; anything else is
    /// [`EhloError::NotOk`]. Never fails on the content of a `250` reply:
    /// see the [module docs](self) for what happens to odd lines.
    ///
    /// One pass over the lines finds the domain, the greeting and the
    /// [`Capabilities`], without allocating; the typed extensions are read
    /// again from `reply` by [`EhloReply::extensions`]. The result borrows
    /// from `reply`; call [`EhloReply::into_owned`] to keep it.
    pub fn parse(reply: &'a Reply<'_>) -> Result<Self, EhloError> {
        if reply.code() != ReplyCode::OK {
            return Err(EhloError::NotOk(reply.code()));
        }
        // `Reply` is covariant in its lifetime: the borrowed reply is
        // viewed as living for `'a`.
        let reply: &'a Reply<'a> = reply;
        let mut summary = Summary::default();
        let (domain, greeting) = read_lines(&mut summary, reply);
        Ok(Self {
            domain: Cow::Borrowed(domain),
            greeting: Cow::Borrowed(greeting),
            capabilities: summary.capabilities,
            reply: Cow::Borrowed(reply),
        })
    }

    /// The server's domain (or address literal) from the first line, as
    /// written; empty only if the server sent none.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The free text after the domain (may be empty).
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Which typed extensions the reply announces, and its SIZE: read by
    /// [`EhloReply::parse`], nothing is built.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The announced extensions, typed, read from the reply now (each call
    /// reads it again; keep the result, or [`Extensions::into_owned`] it,
    /// to query it often).
    pub fn extensions(&self) -> Extensions<'_> {
        self.collect().extensions
    }

    /// Takes the extensions, dropping domain and greeting.
    pub fn into_extensions(self) -> Extensions<'a> {
        match self.reply {
            Cow::Borrowed(reply) => {
                let mut c = Collect::for_reply(reply);
                read_lines(&mut c, reply);
                c.extensions
            }
            Cow::Owned(reply) => {
                let mut c = Collect::for_reply(&reply);
                read_lines(&mut c, &reply);
                c.extensions.into_owned()
            }
        }
    }

    /// Lines that did not become an extension: not an `ehlo-line`, or a
    /// repeated keyword. Kept for logging and diagnosis; not encoded.
    pub fn ignored_lines(&self) -> Vec<&str> {
        self.collect().ignored
    }

    fn collect(&self) -> Collect<'_> {
        let mut c = Collect::for_reply(&self.reply);
        read_lines(&mut c, &self.reply);
        c
    }

    /// Appends the reply in wire form: `250-domain greeting`, one line per
    /// extension, the last with `250 `.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let extensions = self.extensions();
        let n = extensions.len();
        out.extend_from_slice(if n == 0 { b"250 " } else { b"250-" });
        out.extend_from_slice(self.domain.as_bytes());
        if !self.greeting.is_empty() {
            out.push(b' ');
            out.extend_from_slice(self.greeting.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        for (i, ext) in extensions.iter().enumerate() {
            out.extend_from_slice(if i + 1 == n { b"250 " } else { b"250-" });
            ext.encode(out);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The reply as a [`Reply`] value (for a server core that sends
    /// `Reply`s).
    pub fn to_reply(&self) -> Reply<'static> {
        let extensions = self.extensions();
        let mut lines = Vec::with_capacity(extensions.len() + 1);
        lines.push(Cow::Owned(if self.greeting.is_empty() {
            self.domain.to_string()
        } else {
            format!("{} {}", self.domain, self.greeting)
        }));
        for ext in &extensions {
            lines.push(Cow::Owned(ext.to_string()));
        }
        // Every line is free of CR, LF and NUL: the domain and greeting were
        // checked by `new` or by the reply parser, extension lines are built
        // from validated keywords, parameters and numbers.
        Reply::from_parts(ReplyCode::OK, None, lines)
    }

    /// Detaches the reply from the buffer it was parsed from.
    pub fn into_owned(self) -> EhloReply<'static> {
        EhloReply {
            domain: Cow::Owned(self.domain.into_owned()),
            greeting: Cow::Owned(self.greeting.into_owned()),
            capabilities: self.capabilities,
            reply: Cow::Owned(self.reply.into_owned().into_owned()),
        }
    }
}

/// What a pass over the lines of an EHLO reply does with them: the typed
/// set ([`Collect`]) or the capabilities alone ([`Summary`]).
trait LineSink<'a> {
    /// Keywords already announced: a bit per known keyword (whether its
    /// line became the typed extension or `Other`), so the repeat check is
    /// a mask test.
    fn seen(&mut self) -> &mut u32;
    /// A known keyword without parameters, announced for the first time.
    fn flag(&mut self, kind: Kind);
    /// A line that is not a flag announced for the first time.
    fn other_line(&mut self, line: &'a str);
}

/// The domain and the greeting of the first line: split at the first
/// space (a byte search; `str::split_once` with a `char` pattern is slower
/// for these short lines).
#[inline]
fn split_first_line(first: &str) -> (&str, &str) {
    match first.bytes().position(|b| b == b' ') {
        // `i` is at an ASCII space: both sides are on char boundaries.
        Some(i) => (
            first.get(..i).unwrap_or_default(),
            first.get(i + 1..).unwrap_or_default(),
        ),
        None => (first, ""),
    }
}

/// Reads every line of `reply` into `sink`; returns the domain and
/// greeting.
fn read_lines<'a, S: LineSink<'a>>(sink: &mut S, reply: &'a Reply<'a>) -> (&'a str, &'a str) {
    match reply.wire_lines() {
        Some(raw) => read_wire(sink, raw),
        None => {
            let mut lines = reply.lines();
            let first = lines.next().unwrap_or_default();
            for line in lines {
                read_line(sink, line);
            }
            split_first_line(first)
        }
    }
}

/// Reads the lines of a reply in its wire form (see [`Reply::wire_lines`])
/// in one pass; returns the domain and greeting.
///
/// A line that is a known keyword without parameters (`PIPELINING`,
/// `8BITMIME`, …) is settled from one 16-byte load at its start, which finds
/// the keyword, its end and the line's CR at once; any other line goes
/// through [`LineSink::other_line`], as from [`Reply::lines`].
fn read_wire<'a, S: LineSink<'a>>(sink: &mut S, raw: &'a str) -> (&'a str, &'a str) {
    let b = raw.as_bytes();
    // Each line is `ddd-text`, `ddd text` or `ddd`, CRLF between lines.
    let text = |from: usize, to: usize| raw.get((from + 4).min(to)..to).unwrap_or_default();
    let first_end = crate::reply::find_cr(b).unwrap_or(b.len());
    let first = text(0, first_end);
    let mut pos = first_end + 2;
    while pos < b.len() {
        let start = pos + 4;
        if matches!(b.get(pos + 3), Some(b'-' | b' '))
            && let Some(end) = flag_at(sink, b, start)
        {
            pos = end + 2;
            continue;
        }
        let end = b
            .get(pos..)
            .and_then(crate::reply::find_cr)
            .map_or(b.len(), |n| pos + n);
        sink.other_line(text(pos, end));
        pos = end + 2;
    }
    split_first_line(first)
}

/// The flag line at `start` in `b` (a known keyword without parameters, not
/// announced before, ending at a CR or at the end of `b`), added; returns
/// the index of that CR (or the end).
#[inline]
fn flag_at<'a, S: LineSink<'a>>(sink: &mut S, b: &[u8], start: usize) -> Option<usize> {
    let rest = b.get(start..)?;
    let head = match rest.get(..16) {
        Some(word) => {
            let mut w = [0; 16];
            w.copy_from_slice(word);
            u128::from_le_bytes(w)
        }
        None => first16(rest),
    };
    let delims = |x: u64| zero_bytes(x ^ SP) | zero_bytes(x ^ EQ) | zero_bytes(x ^ CR);
    let end = first_marked(delims(head as u64), delims((head >> 64) as u64)).min(rest.len());
    let (kind, end) = if end == 16 {
        // No delimiter in the first 16 bytes: a long keyword
        // (ENHANCEDSTATUSCODES), whose tail is compared as well.
        let kind = Kind::of_folded(fold16(head))?;
        let known = kind.keyword().as_bytes();
        let tail = rest.get(16..known.len())?;
        if !tail.eq_ignore_ascii_case(known.get(16..)?) {
            return None;
        }
        (kind, known.len())
    } else {
        if end == 0 {
            return None;
        }
        let kind = Kind::of_folded(fold16(head & ((1u128 << (8 * end)) - 1)))?;
        if kind.keyword().len() != end {
            return None;
        }
        (kind, end)
    };
    if rest.get(end).is_some_and(|&c| c != b'\r') || *sink.seen() & kind.bit() != 0 {
        return None;
    }
    if !kind.is_flag() {
        return None;
    }
    *sink.seen() |= kind.bit();
    sink.flag(kind);
    Some(start + end)
}

/// One line after the first, as [`Reply::lines`] gives it.
fn read_line<'a, S: LineSink<'a>>(sink: &mut S, line: &'a str) {
    // The usual line, a known keyword without parameters (`8BITMIME`,
    // `PIPELINING`, …) announced once: its presence bit and its entry, and
    // nothing else to look at.
    if let Some((end, kind)) = Kind::opening(line.as_bytes())
        && kind.is_flag()
        && *sink.seen() & kind.bit() == 0
        && line
            .as_bytes()
            .get(end..)
            .is_some_and(|r| r.iter().all(|&b| b == b' '))
    {
        *sink.seen() |= kind.bit();
        sink.flag(kind);
        return;
    }
    sink.other_line(line);
}

/// The capabilities of an EHLO reply as its lines are read: the decisions
/// of [`Collect`] (typed or not, first line of a keyword counts), without
/// building anything.
#[derive(Default)]
struct Summary {
    capabilities: Capabilities,
    seen: u32,
}

impl<'a> LineSink<'a> for Summary {
    fn seen(&mut self) -> &mut u32 {
        &mut self.seen
    }

    fn flag(&mut self, kind: Kind) {
        self.capabilities.present |= kind.bit();
    }

    fn other_line(&mut self, line: &'a str) {
        // Unknown keywords, empty and malformed lines change nothing here;
        // a repeated known keyword neither (the first line counts, and a
        // repeated AUTH only adds mechanisms).
        let Some((kind, typed)) = classify_ehlo_line(line) else {
            return;
        };
        if self.seen & kind.bit() != 0 {
            return;
        }
        self.seen |= kind.bit();
        if let Some(size) = typed {
            self.capabilities.present |= kind.bit();
            if kind == Kind::Size {
                self.capabilities.size = size;
            }
        }
    }
}

/// The extensions of an EHLO reply as they are read, line by line.
struct Collect<'a> {
    extensions: Extensions<'a>,
    ignored: Vec<&'a str>,
    /// See [`LineSink::seen`]; unknown keywords are compared with the
    /// unknown entries only (a known keyword can never equal an unknown
    /// one).
    seen: u32,
}

impl<'a> Collect<'a> {
    fn for_reply(reply: &Reply<'_>) -> Self {
        Self {
            extensions: Extensions {
                entries: Vec::with_capacity(reply.lines().len()),
                present: 0,
            },
            ignored: Vec::new(),
            seen: 0,
        }
    }
}

impl<'a> LineSink<'a> for Collect<'a> {
    fn seen(&mut self) -> &mut u32 {
        &mut self.seen
    }

    fn flag(&mut self, kind: Kind) {
        if let Some(flag) = kind.flag() {
            self.extensions.add_new(flag);
        }
    }

    /// A line that is not a flag announced for the first time.
    fn other_line(&mut self, line: &'a str) {
        let (kind, ext) = match parse_ehlo_line(line) {
            LineOutcome::Empty => return,
            LineOutcome::Malformed => {
                self.ignored.push(line);
                return;
            }
            LineOutcome::Ext(kind, ext) => (kind, ext),
        };
        let repeat = match kind {
            Some(kind) => self.seen & kind.bit() != 0,
            None => self.extensions.entries.iter().any(|e| match e {
                Extension::Other { keyword, .. } => keyword.is(ext.keyword()),
                _ => false,
            }),
        };
        if !repeat {
            self.seen |= kind.map_or(0, Kind::bit);
            self.extensions.add_new(ext);
            return;
        }
        // A repeated AUTH merges into the first one when both parsed; any
        // other repeat is ignored (the first one counts).
        let first_auth = match ext {
            Extension::Auth(_) => self.extensions.entries.iter_mut().find_map(|e| match e {
                Extension::Auth(have) => Some(have),
                _ => None,
            }),
            _ => None,
        };
        match (first_auth, ext) {
            (Some(have), Extension::Auth(more)) => {
                for m in more {
                    if !have.contains(&m) {
                        have.push(m);
                    }
                }
            }
            _ => self.ignored.push(line),
        }
    }
}

enum LineOutcome<'a> {
    Empty,
    Malformed,
    /// The extension, and the known keyword its line names (also when the
    /// parameters did not parse and the extension is `Other`).
    Ext(Option<Kind>, Extension<'a>),
}

/// The space-separated tokens of an EHLO line; runs of spaces count as one
/// separator (the same tokens as `split(' ')` without the empty ones).
#[derive(Clone)]
struct Tokens<'a>(&'a str);

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let b = self.0.as_bytes();
        let start = b.iter().position(|&c| c != b' ')?;
        let end = b
            .get(start..)?
            .iter()
            .position(|&c| c == b' ')
            .map_or(b.len(), |n| start + n);
        // `start` and `end` are at ASCII spaces or the ends: char boundaries.
        let token = self.0.get(start..end)?;
        self.0 = self.0.get(end..)?;
        Some(token)
    }
}

/// ```text
/// ehlo-line    = ehlo-keyword *( SP ehlo-param )
///              / "AUTH=" sasl-mech *( SP sasl-mech )   ; pre-RFC 2554 form
/// ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
/// ```
/// Runs of spaces count as one separator.
///
/// The keyword is delimited with a table scan over its bytes, then its
/// first bytes are upper-cased for the lookup of its [`Kind`].
/// The bytes of an `ehlo-keyword`: letters, digits and `-`.
static KEYWORD_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'-';
        c += 1;
    }
    t
};

/// Where the keyword that starts `bytes` ends: at the first byte that is
/// neither a letter, a digit nor `-` (or the end).
#[inline]
fn keyword_end(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&c| !KEYWORD_BYTE[usize::from(c)])
        .unwrap_or(bytes.len())
}

/// Whether the keyword ending at `end` is `AUTH` and an `=` follows: the
/// pre-RFC 2554 `AUTH=mech ...` form that servers still announce for old
/// clients.
#[inline]
fn is_auth_equals(bytes: &[u8], end: usize) -> bool {
    end == 4
        && bytes.get(4) == Some(&b'=')
        && bytes
            .get(..4)
            .is_some_and(|k| k.eq_ignore_ascii_case(b"AUTH"))
}

/// What [`parse_ehlo_line`] decides about a line, for the capabilities
/// alone: `None` for an empty or malformed line or an unknown keyword,
/// else the known keyword and, when its parameters parse as the typed
/// extension, `Some` of the SIZE value (`None` for other keywords). Builds
/// nothing; the proptests hold it to [`parse_ehlo_line`].
fn classify_ehlo_line(line: &str) -> Option<(Kind, Option<Option<u64>>)> {
    let line = line.trim_start_matches(' ');
    let bytes = line.as_bytes();
    if let Some((end, kind)) = Kind::opening(bytes) {
        let rest = line.get(end..).unwrap_or_default();
        if let Some(size) = typed_summary(kind, Tokens(rest)) {
            return Some((kind, Some(size)));
        }
    }
    let end = keyword_end(bytes);
    if end == 0 {
        // Empty, or not starting with a keyword byte (a `-` start is
        // malformed too, and no known keyword starts with `-`).
        return None;
    }
    match bytes.get(end) {
        None | Some(b' ') => {}
        Some(b'=') if is_auth_equals(bytes, end) => {
            let params = Tokens(line.get(5..).unwrap_or_default());
            return typed_summary(Kind::Auth, params).map(|size| (Kind::Auth, Some(size)));
        }
        Some(_) => return None,
    }
    if bytes.first() == Some(&b'-') {
        return None;
    }
    let kind = Kind::of_keyword(bytes.get(..end).unwrap_or_default())?;
    let tokens = Tokens(line.get(end..).unwrap_or_default());
    if let Some(size) = typed_summary(kind, tokens.clone()) {
        return Some((kind, Some(size)));
    }
    // `Other`, unless a parameter is not an `ehlo-param` (then the line is
    // malformed and ignored).
    for p in tokens {
        validate_param(p).ok()?;
    }
    Some((kind, None))
}

/// Whether [`typed`] takes these parameters, and the SIZE value, without
/// building the AUTH mechanism list or the LIMITS extras.
fn typed_summary<'a, I>(kind: Kind, params: I) -> Option<Option<u64>>
where
    I: Iterator<Item = &'a str> + Clone,
{
    match kind {
        Kind::Auth => {
            for p in params {
                Mechanism::new(p).ok()?;
            }
            Some(None)
        }
        Kind::Limits => {
            let mut seen = [false; 3];
            for p in params {
                let (name, value) = p.split_once('=').unwrap_or((p, ""));
                let slot = [MAILMAX, RCPTMAX, RCPTDOMAINMAX]
                    .iter()
                    .position(|k| k.eq_ignore_ascii_case(name));
                match slot.and_then(|i| seen.get_mut(i)) {
                    Some(seen) => {
                        if *seen {
                            return None;
                        }
                        *seen = true;
                        u32::try_from(parse_number(value)?).ok()?;
                    }
                    None => validate_param(p).ok()?,
                }
            }
            Some(None)
        }
        Kind::Size => {
            let mut params = params;
            match (params.next(), params.next()) {
                (None, _) => Some(None),
                (Some(n), None) => Some(Some(parse_number(n)?)),
                (Some(_), Some(_)) => None,
            }
        }
        // The other typed forms borrow and allocate nothing.
        _ => match typed(kind, params)? {
            Extension::Size(n) => Some(n),
            _ => Some(None),
        },
    }
}

fn parse_ehlo_line(line: &str) -> LineOutcome<'_> {
    let line = line.trim_start_matches(' ');
    if line.is_empty() {
        return LineOutcome::Empty;
    }
    let bytes = line.as_bytes();
    if let Some((end, kind)) = Kind::opening(bytes) {
        // `end` is at an ASCII space or the end of the line.
        let rest = line.get(end..).unwrap_or_default();
        if let Some(ext) = typed(kind, Tokens(rest)) {
            return LineOutcome::Ext(Some(kind), ext);
        }
    }
    // The keyword must not start with `-`.
    let end = keyword_end(bytes);
    if bytes.first() == Some(&b'-') {
        return LineOutcome::Malformed;
    }
    match bytes.get(end) {
        None | Some(b' ') => {}
        Some(b'=') if is_auth_equals(bytes, end) => {
            // `AUTH=mech ...`: the mechanisms start right after the `=` (an
            // empty first token is skipped like any other).
            let params = Tokens(line.get(5..).unwrap_or_default());
            return match typed(Kind::Auth, params) {
                Some(ext) => LineOutcome::Ext(Some(Kind::Auth), ext),
                None => LineOutcome::Malformed,
            };
        }
        Some(_) => return LineOutcome::Malformed,
    }
    // `end` is at an ASCII space or the end of the line: char boundaries.
    let (first, rest) = (
        line.get(..end).unwrap_or_default(),
        line.get(end..).unwrap_or_default(),
    );
    let tokens = Tokens(rest);
    let keyword = Keyword::from_validated(first);
    let kind = Kind::of_keyword(bytes.get(..end).unwrap_or_default());
    if let Some(ext) = kind.and_then(|kind| typed(kind, tokens.clone())) {
        return LineOutcome::Ext(kind, ext);
    }
    let mut checked = Vec::new();
    for p in tokens {
        match EhloParam::new(p) {
            Ok(p) => checked.push(p),
            Err(_) => return LineOutcome::Malformed,
        }
    }
    LineOutcome::Ext(
        kind,
        Extension::Other {
            keyword,
            params: checked,
        },
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Every kind, from the table the parser is built from; the test
    /// below holds it to the enum.
    const ALL: [Kind; 18] = KINDS;

    #[test]
    fn kinds_lists_every_kind_once_in_order() {
        for (i, kind) in ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i, "{kind:?}");
        }
        assert_eq!(Kind::Help as usize + 1, ALL.len(), "Help is the last kind");
    }

    /// The obvious version of [`Kind::of`].
    fn kind_reference(keyword: &str) -> Option<Kind> {
        ALL.into_iter()
            .find(|k| k.keyword().eq_ignore_ascii_case(keyword))
    }

    /// The three-pass version of the keyword step of [`parse_ehlo_line`]:
    /// whether the first token is a keyword, and its kind.
    fn keyword_reference(line: &str) -> Option<Option<Kind>> {
        let first = line.split(' ').find(|t| !t.is_empty())?;
        Keyword::new(first).ok()?;
        Some(kind_reference(first))
    }

    #[test]
    fn first16_pads_with_zeros() {
        for len in 0..=20 {
            let b: Vec<u8> = (1..=len as u8).collect();
            let mut want = [0u8; 16];
            for (d, s) in want.iter_mut().zip(&b) {
                *d = *s;
            }
            assert_eq!(first16(&b), u128::from_le_bytes(want), "{len}");
        }
    }

    #[test]
    fn kind_known_answers() {
        for kind in ALL {
            let kw = kind.keyword();
            assert_eq!(Kind::of(kw), Some(kind), "{kw}");
            assert_eq!(Kind::of(&kw.to_ascii_lowercase()), Some(kind), "{kw}");
            assert_eq!(Kind::of(&format!("{kw}X")), None, "{kw}");
            assert_eq!(Kind::of(&format!("{kw}\0")), None, "{kw}");
            assert_eq!(Kind::of(&kw[..kw.len() - 1]), None, "{kw}");
        }
        for s in [
            "",
            "X",
            "ENHANCEDSTATUSCODE",
            "ENHANCEDSTATUSCOXES",
            "SIZE ",
        ] {
            assert_eq!(Kind::of(s), None, "{s:?}");
        }
    }

    #[test]
    fn ehlo_line_keyword_known_answers() {
        let kind = |line| match parse_ehlo_line(line) {
            LineOutcome::Ext(kind, _) => Ok(kind),
            LineOutcome::Malformed => Err("malformed"),
            LineOutcome::Empty => Err("empty"),
        };
        assert_eq!(kind("  "), Err("empty"));
        assert_eq!(kind(" size  100 "), Ok(Some(Kind::Size)));
        assert_eq!(kind("X-ENHANCEDSTATUSCODES"), Ok(None));
        assert_eq!(kind("-SIZE"), Err("malformed"));
        assert_eq!(kind("SIZE\t1"), Err("malformed"));
        assert_eq!(kind("SIZE=1"), Err("malformed"));
        assert_eq!(kind("auth=PLAIN LOGIN"), Ok(Some(Kind::Auth)));
        assert_eq!(kind("AUTH= PLAIN"), Ok(Some(Kind::Auth)));
        assert_eq!(kind("AUTHX=PLAIN"), Err("malformed"));
        assert_eq!(kind("AUTH==PLAIN"), Err("malformed"));
        assert_eq!(kind("ST\u{e9}RTTLS"), Err("malformed"));
    }

    proptest! {
        #[test]
        fn kind_matches_reference(
            s in prop_oneof![
                proptest::sample::select(ALL.map(Kind::keyword).to_vec()).prop_map(String::from),
                "[a-zA-Z0-9= \\-]{0,22}",
                "(?i)(size|auth|dsn|mt-priority|enhancedstatuscodes|8bitmime)[a-z0-9\\-=\0]{0,3}",
            ],
        ) {
            prop_assert_eq!(Kind::of(&s), kind_reference(&s));
            if !s.to_ascii_uppercase().trim_start_matches(' ').starts_with("AUTH=") {
                let got = match parse_ehlo_line(&s) {
                    LineOutcome::Ext(kind, _) => Some(kind),
                    // A known keyword's line is never malformed for its
                    // keyword alone; here the parameters are printable.
                    LineOutcome::Malformed | LineOutcome::Empty => None,
                };
                prop_assert_eq!(got, keyword_reference(&s));
            }
        }
    }
}
