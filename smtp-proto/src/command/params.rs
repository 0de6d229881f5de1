//! Typed ESMTP parameters of MAIL and RCPT (RFC 5321 §4.1.2 and extensions).
//!
//! ```text
//! Mail-parameters  = esmtp-param *(SP esmtp-param)
//! Rcpt-parameters  = esmtp-param *(SP esmtp-param)
//! esmtp-param      = esmtp-keyword ["=" esmtp-value]
//! esmtp-keyword    = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
//! esmtp-value      = 1*(%d33-60 / %d62-126)   ; any CHAR excluding "=", SP, and control
//! esmtp-value      =/ UTF8-non-ascii          ; RFC 6531 §3.3
//! ```
//!
//! Known parameters land in typed fields; unknown ones are kept, in order, in
//! `other` (never dropped), so a server can answer `555 5.5.4` for those it
//! does not implement. Keywords are case-insensitive. A parameter given twice
//! (including an unknown one: RFC 1869 allows each keyword at most once) or with an
//! invalid value is a [`CommandError::Parameter`] naming the keyword.
//!
//! The structs have public fields: a client builds them directly, e.g.
//! `MailParameters { size: Some(1024), ..Default::default() }`. Every field
//! type is validated on construction, so encoding is infallible. The one rule
//! the types cannot enforce: `other` must not repeat a keyword that has a
//! typed field (the parser never puts one there).

use std::borrow::Cow;
use std::fmt;

use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::take_while_m_n;
use nom::character::complete::{char, digit1, one_of};
use nom::combinator::{all_consuming, opt};
use thiserror::Error;

use super::CommandError;
use crate::address::Mailbox;
use crate::keyword::{Keyword, TokenError};
use crate::xtext::{self, XText, XTextError};

/// What is wrong with one parameter (see [`CommandError::Parameter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParameterErrorKind {
    /// The keyword or the value breaks the `esmtp-param` grammar.
    #[error("malformed parameter")]
    Malformed,
    /// The parameter appeared twice (for HOLDFOR/HOLDUNTIL: both appeared).
    #[error("duplicate parameter")]
    Duplicate,
    /// The parameter requires a value and has none.
    #[error("missing value")]
    MissingValue,
    /// The parameter takes no value and has one.
    #[error("unexpected value")]
    UnexpectedValue,
    /// The value does not follow the parameter's own grammar.
    #[error("invalid value")]
    InvalidValue,
}

fn perr(keyword: &str, kind: ParameterErrorKind) -> CommandError {
    CommandError::Parameter {
        keyword: keyword.to_owned(),
        kind,
    }
}

// ---------------------------------------------------------------------------
// Unknown parameters

/// An `esmtp-value` (RFC 5321 §4.1.2, RFC 6531 §3.3): one or more characters,
/// none of them SP, `=` or a control character.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EsmtpValue<'a>(Cow<'a, str>);

impl<'a> EsmtpValue<'a> {
    /// Validates a value, borrowing it.
    pub fn new(s: &'a str) -> Result<Self, TokenError> {
        if s.is_empty() {
            return Err(TokenError::Empty);
        }
        match s.chars().find(|&c| !is_esmtp_value_char(c)) {
            Some(c) => Err(TokenError::InvalidChar(c)),
            None => Ok(Self(Cow::Borrowed(s))),
        }
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Detaches the value from the buffer it was parsed from.
    pub fn into_owned(self) -> EsmtpValue<'static> {
        EsmtpValue(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Display for EsmtpValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_esmtp_value_char(c: char) -> bool {
    matches!(c, '!'..='<' | '>'..='~') || (!c.is_ascii() && !c.is_control())
}

/// A parameter without a typed field, kept as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Parameter<'a> {
    /// The keyword, compared case-insensitively.
    pub keyword: Keyword<'a>,
    /// The value after `=`, if any.
    pub value: Option<EsmtpValue<'a>>,
}

impl Parameter<'_> {
    /// Detaches the parameter from the buffer it was parsed from.
    pub fn into_owned(self) -> Parameter<'static> {
        Parameter {
            keyword: self.keyword.into_owned(),
            value: self.value.map(EsmtpValue::into_owned),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(b' ');
        out.extend_from_slice(self.keyword.as_str().as_bytes());
        if let Some(v) = &self.value {
            out.push(b'=');
            out.extend_from_slice(v.as_str().as_bytes());
        }
    }
}

// ---------------------------------------------------------------------------
// Value types

/// `BODY=` (RFC 6152 §2, RFC 3030 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Body {
    /// `7BIT`
    SevenBit,
    /// `8BITMIME` (RFC 6152)
    EightBitMime,
    /// `BINARYMIME` (RFC 3030; requires BDAT)
    BinaryMime,
}

impl Body {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SevenBit => "7BIT",
            Self::EightBitMime => "8BITMIME",
            Self::BinaryMime => "BINARYMIME",
        }
    }
}

/// `RET=` (RFC 3461 §4.3): how much of the message a DSN returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ret {
    /// `FULL`: the whole message.
    Full,
    /// `HDRS`: the headers only.
    Hdrs,
}

impl Ret {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Hdrs => "HDRS",
        }
    }
}

/// `AUTH=` of MAIL (RFC 4954 §5): who submitted the message.
///
/// ```text
/// auth-param = "AUTH=" ( addr-spec / "<>" )   ; addr-spec as xtext
/// ```
///
/// The xtext-decoded value must be a mailbox. One pair of angle brackets
/// around it is accepted and dropped: curl's `--mail-auth` sends
/// `AUTH=<user@example.org>`, after the shape of RFC 4954's own `AUTH=<>`
/// (Postfix accepts any printable value). The mailbox inside is still
/// validated, and encoding always writes the bare addr-spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthParam<'a> {
    /// `AUTH=<>`: the submitter is unknown or not trusted.
    Unknown,
    /// The authenticated submitter.
    Mailbox(Mailbox<'a>),
}

impl AuthParam<'_> {
    /// Detaches the value from the buffer it was parsed from.
    pub fn into_owned(self) -> AuthParam<'static> {
        match self {
            Self::Unknown => AuthParam::Unknown,
            Self::Mailbox(m) => AuthParam::Mailbox(m.into_owned()),
        }
    }
}

/// The `AUTH=` value without one pair of surrounding angle brackets.
fn unbracket(s: &str) -> &str {
    s.strip_prefix('<')
        .and_then(|inner| inner.strip_suffix('>'))
        .unwrap_or(s)
}

/// `MT-PRIORITY=` (RFC 6710 §3): a priority from -9 to 9.
///
/// ```text
/// priority-value = [ "-" / "+" ] DIGIT   ; -9 .. 9
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MtPriority(i8);

impl MtPriority {
    /// Lowest priority. RFC 6710 §3.
    pub const MIN: i8 = -9;
    /// Highest priority. RFC 6710 §3.
    pub const MAX: i8 = 9;

    /// A priority, if it is within -9..=9.
    pub fn new(v: i8) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&v).then_some(Self(v))
    }

    /// The priority.
    pub fn get(self) -> i8 {
        self.0
    }
}

/// The by-mode of `BY=` (RFC 2852 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByMode {
    /// `N`: notify the sender if the deadline passes.
    Notify,
    /// `R`: return the message if it cannot be delivered by the deadline.
    Return,
}

/// `BY=` (RFC 2852 §4): deliver within a time.
///
/// ```text
/// by-value = by-time ";" by-mode [ by-trace ]
/// by-time  = [ "-" / "+" ] 1*9digit
/// by-mode  = "N" / "R"
/// by-trace = "T"
/// ```
///
/// Accepted beyond the ABNF: any `by-time` that fits an `i32`, and lower-case
/// mode letters. Whether a non-positive time is allowed with mode `R` is a
/// policy question for the server (RFC 2852 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliverBy {
    /// Seconds from now.
    pub time: i32,
    /// What to do when the deadline passes.
    pub mode: ByMode,
    /// Whether to trace (`T`).
    pub trace: bool,
}

/// HOLDFOR or HOLDUNTIL (RFC 4865 §5): future release.
///
/// The two are mutually exclusive; giving both is a duplicate parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Hold<'a> {
    /// `HOLDFOR=` seconds (`1*9DIGIT`; any `u32` accepted).
    For(u32),
    /// `HOLDUNTIL=` an RFC 3339 date-time.
    Until(DateTime<'a>),
}

impl Hold<'_> {
    /// Detaches the value from the buffer it was parsed from.
    pub fn into_owned(self) -> Hold<'static> {
        match self {
            Self::For(s) => Hold::For(s),
            Self::Until(d) => Hold::Until(d.into_owned()),
        }
    }
}

/// An RFC 3339 §5.6 `date-time`, kept as validated text (HOLDUNTIL, RRVS).
///
/// ```text
/// date-time      = full-date "T" full-time
/// full-date      = date-fullyear "-" date-month "-" date-mday
/// full-time      = partial-time time-offset
/// partial-time   = time-hour ":" time-minute ":" time-second [time-secfrac]
/// time-secfrac   = "." 1*DIGIT
/// time-offset    = "Z" / time-numoffset
/// time-numoffset = ("+" / "-") time-hour ":" time-minute
/// ```
///
/// Field ranges are checked (month 01–12, day 01–31, hour 00–23, minute
/// 00–59, second 00–60); `T` and `Z` may be lower case (RFC 3339 §5.6 note).
/// The calendar (30 February) is not: that takes a clock library.
///
/// ```
/// use smtp_proto::command::DateTime;
/// assert!(DateTime::new("2025-01-31T23:59:60.5+01:00").is_ok());
/// assert!(DateTime::new("2025-13-01T00:00:00Z").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DateTime<'a>(Cow<'a, str>);

/// A malformed RFC 3339 `date-time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid RFC 3339 date-time")]
pub struct DateTimeError;

impl<'a> DateTime<'a> {
    /// Validates a date-time, borrowing it.
    pub fn new(s: &'a str) -> Result<Self, DateTimeError> {
        if is_date_time(s) {
            Ok(Self(Cow::Borrowed(s)))
        } else {
            Err(DateTimeError)
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Detaches the value from the buffer it was parsed from.
    pub fn into_owned(self) -> DateTime<'static> {
        DateTime(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Display for DateTime<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_date_time(s: &str) -> bool {
    type E<'x> = nom::error::Error<&'x str>;
    fn num<'x>(n: usize) -> impl Parser<&'x str, Output = u32, Error = E<'x>> {
        take_while_m_n(n, n, |c: char| c.is_ascii_digit()).map(|d: &str| {
            d.bytes()
                .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
        })
    }
    let offset = alt((
        one_of("Zz").map(|_| (0, 0)),
        (one_of("+-"), num(2), char(':'), num(2)).map(|(_, h, _, m)| (h, m)),
    ));
    let mut p = all_consuming((
        (num(4), char('-'), num(2), char('-'), num(2)),
        one_of("Tt"),
        (num(2), char(':'), num(2), char(':'), num(2)),
        opt((char('.'), digit1)),
        offset,
    ));
    match p.parse(s) {
        Ok((_, ((_, _, mo, _, d), _, (h, _, mi, _, sec), _, (oh, om)))) => {
            (1..=12).contains(&mo)
                && (1..=31).contains(&d)
                && h <= 23
                && mi <= 59
                && sec <= 60
                && oh <= 23
                && om <= 59
        }
        Err(_) => false,
    }
}

/// `NOTIFY=` (RFC 3461 §4.1).
///
/// ```text
/// notify-esmtp-value = "NEVER" / 1#notify-list-element
/// notify-list-element = "SUCCESS" / "FAILURE" / "DELAY"
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notify {
    /// `NEVER`
    Never,
    /// One or more of SUCCESS, FAILURE, DELAY.
    On(NotifyOn),
}

/// The non-empty set of conditions of `NOTIFY=` other than `NEVER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotifyOn {
    success: bool,
    failure: bool,
    delay: bool,
}

impl NotifyOn {
    /// The set, if at least one condition is chosen.
    pub fn new(success: bool, failure: bool, delay: bool) -> Option<Self> {
        (success || failure || delay).then_some(Self {
            success,
            failure,
            delay,
        })
    }

    /// `SUCCESS`
    pub fn success(self) -> bool {
        self.success
    }

    /// `FAILURE`
    pub fn failure(self) -> bool {
        self.failure
    }

    /// `DELAY`
    pub fn delay(self) -> bool {
        self.delay
    }
}

/// The address type of `ORCPT=` (RFC 3461 §4.2, RFC 6533 §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AddressType<'a> {
    /// `rfc822`: the address is xtext.
    Rfc822,
    /// `utf-8`: the address is `utf-8-addr-xtext` / `utf-8-addr-unitext`
    /// (RFC 6533).
    Utf8,
    /// Any other registered type (`x400`, `unknown`, …); the address is xtext.
    Other(Keyword<'a>),
}

impl AddressType<'_> {
    /// Detaches the value from the buffer it was parsed from.
    pub fn into_owned(self) -> AddressType<'static> {
        match self {
            Self::Rfc822 => AddressType::Rfc822,
            Self::Utf8 => AddressType::Utf8,
            Self::Other(k) => AddressType::Other(k.into_owned()),
        }
    }
}

/// `ORCPT=` (RFC 3461 §4.2): the original recipient, decoded.
///
/// ```text
/// orcpt-parameter = "ORCPT=" original-recipient-address
/// original-recipient-address = addr-type ";" xtext
/// addr-type = atom
/// utf-8-type-addr = "utf-8;" utf-8-enc-addr         ; RFC 6533 §3
/// ```
///
/// The address is kept decoded. `utf-8` addresses are encoded as
/// `utf-8-addr-xtext` (7-bit, valid with or without SMTPUTF8), all others as
/// xtext. The address must be non-empty and free of control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OriginalRecipient<'a> {
    addr_type: AddressType<'a>,
    address: Cow<'a, str>,
}

impl<'a> OriginalRecipient<'a> {
    /// Validates an original recipient.
    pub fn new(
        addr_type: AddressType<'a>,
        address: impl Into<Cow<'a, str>>,
    ) -> Result<Self, XTextError> {
        let address = address.into();
        if address.is_empty() {
            return Err(XTextError::Empty);
        }
        if let Some((offset, ch)) = crate::address::find_control(&address) {
            return Err(XTextError::InvalidChar { ch, offset });
        }
        Ok(Self { addr_type, address })
    }

    /// The address type.
    pub fn addr_type(&self) -> &AddressType<'a> {
        &self.addr_type
    }

    /// The decoded address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Detaches the value from the buffer it was parsed from.
    pub fn into_owned(self) -> OriginalRecipient<'static> {
        OriginalRecipient {
            addr_type: self.addr_type.into_owned(),
            address: Cow::Owned(self.address.into_owned()),
        }
    }

    fn parse(v: &'a str) -> Option<Self> {
        // A byte scan: the type is a few bytes, shorter than memchr's setup.
        let semi = v.bytes().position(|b| b == b';')?;
        // `semi` indexes an ASCII `;`: char boundaries on both sides.
        let (ty, addr) = (v.get(..semi)?, v.get(semi + 1..)?);
        let (w, wl) = (pack(ty.as_bytes()), ty.len());
        let addr_type = if RFC822.is(w, wl) {
            AddressType::Rfc822
        } else if UTF_8.is(w, wl) {
            AddressType::Utf8
        } else {
            AddressType::Other(Keyword::new(ty).ok()?)
        };
        let address = match addr_type {
            AddressType::Utf8 => xtext::decode_utf8_addr(addr).ok()?,
            _ => match xtext::decode_xtext(addr).ok()? {
                // Undecoded xtext is non-empty and all `xchar` (%d33-126):
                // no control character, nothing more to check.
                Cow::Borrowed(a) => {
                    return Some(Self {
                        addr_type,
                        address: Cow::Borrowed(a),
                    });
                }
                owned => owned,
            },
        };
        Self::new(addr_type, address).ok()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match &self.addr_type {
            AddressType::Rfc822 => out.extend_from_slice(b"rfc822;"),
            AddressType::Utf8 => out.extend_from_slice(b"utf-8;"),
            AddressType::Other(k) => {
                out.extend_from_slice(k.as_str().as_bytes());
                out.push(b';');
            }
        }
        match self.addr_type {
            AddressType::Utf8 => xtext::encode_utf8_addr_xtext(&self.address, out),
            _ => xtext::encode_xtext_bytes(&self.address, out),
        }
    }
}

/// The action of `RRVS=` (RFC 7293 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RrvsAction {
    /// `C`: continue (deliver) if the check cannot be done.
    Continue,
    /// `R`: reject if the check cannot be done.
    Reject,
}

/// `RRVS=` (RFC 7293 §3.1): require the recipient to have existed since.
///
/// ```text
/// rrvs-param = "RRVS=" date-time [ ";" ( "C" / "R" ) ]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rrvs<'a> {
    /// The time since which the mailbox must have belonged to the same user.
    pub time: DateTime<'a>,
    /// What to do if the check cannot be made.
    pub action: Option<RrvsAction>,
}

impl Rrvs<'_> {
    /// Detaches the value from the buffer it was parsed from.
    pub fn into_owned(self) -> Rrvs<'static> {
        Rrvs {
            time: self.time.into_owned(),
            action: self.action,
        }
    }
}

// ---------------------------------------------------------------------------
// MAIL

/// The parameters of `MAIL FROM:` (RFC 5321 §4.1.1.2 and extensions).
///
/// The parameters clients send every day (SIZE, BODY, SMTPUTF8, the DSN
/// pair RET and ENVID, REQUIRETLS) are fields; the rarely used ones sit in
/// [`MailParameters::more`], boxed, so that a parsed `MAIL` stays small:
/// a command is moved a few times on its way to the application, and a
/// smaller one moves faster. `more` is `None` unless one of them is given.
///
/// ```
/// use smtp_proto::command::{MailParameters, MoreMailParameters, MtPriority};
/// let mut p = MailParameters { size: Some(1024), ..Default::default() };
/// p.more_mut().mt_priority = MtPriority::new(3);
/// assert_eq!(p.mt_priority(), MtPriority::new(3));
/// ```
#[derive(Debug, Clone, Default)]
pub struct MailParameters<'a> {
    /// `SIZE=` declared message size in octets (RFC 1870).
    pub size: Option<u64>,
    /// `BODY=` (RFC 6152, RFC 3030).
    pub body: Option<Body>,
    /// `SMTPUTF8` (RFC 6531 §3.4).
    pub smtputf8: bool,
    /// `RET=` (RFC 3461 §4.3).
    pub ret: Option<Ret>,
    /// `REQUIRETLS` (RFC 8689 §4).
    pub requiretls: bool,
    /// `ENVID=` xtext-decoded envelope id (RFC 3461 §4.4).
    pub envid: Option<XText<'a>>,
    /// The rarely used parameters; `None` when none of them is given.
    pub more: Option<Box<MoreMailParameters<'a>>>,
}

/// The rarely used parameters of `MAIL FROM:` (see [`MailParameters`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MoreMailParameters<'a> {
    /// `AUTH=` (RFC 4954 §5).
    pub auth: Option<AuthParam<'a>>,
    /// `MT-PRIORITY=` (RFC 6710).
    pub mt_priority: Option<MtPriority>,
    /// `BY=` (RFC 2852).
    pub by: Option<DeliverBy>,
    /// `HOLDFOR=` / `HOLDUNTIL=` (RFC 4865).
    pub hold: Option<Hold<'a>>,
    /// Every other parameter, in the order received.
    pub other: Vec<Parameter<'a>>,
}

impl MoreMailParameters<'_> {
    /// Detaches the parameters from the buffer they were parsed from.
    pub fn into_owned(self) -> MoreMailParameters<'static> {
        MoreMailParameters {
            auth: self.auth.map(AuthParam::into_owned),
            mt_priority: self.mt_priority,
            by: self.by,
            hold: self.hold.map(Hold::into_owned),
            other: self.other.into_iter().map(Parameter::into_owned).collect(),
        }
    }
}

/// `more: None` and `more` holding nothing are the same parameters.
impl PartialEq for MailParameters<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.size == other.size
            && self.body == other.body
            && self.smtputf8 == other.smtputf8
            && self.ret == other.ret
            && self.requiretls == other.requiretls
            && self.envid == other.envid
            && more_eq(self.more.as_deref(), other.more.as_deref())
    }
}

impl Eq for MailParameters<'_> {}

/// Whether two optional boxes of rare parameters hold the same, `None`
/// counting as the default.
fn more_eq<T: Default + PartialEq>(a: Option<&T>, b: Option<&T>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        (Some(m), None) | (None, Some(m)) => *m == T::default(),
        (None, None) => true,
    }
}

impl<'a> MailParameters<'a> {
    /// The rarely used parameters, created empty if there are none yet.
    pub fn more_mut(&mut self) -> &mut MoreMailParameters<'a> {
        self.more.get_or_insert_with(Box::default)
    }

    /// `AUTH=` (RFC 4954 §5).
    pub fn auth(&self) -> Option<&AuthParam<'a>> {
        self.more.as_ref()?.auth.as_ref()
    }

    /// `MT-PRIORITY=` (RFC 6710).
    pub fn mt_priority(&self) -> Option<MtPriority> {
        self.more.as_ref()?.mt_priority
    }

    /// `BY=` (RFC 2852).
    pub fn by(&self) -> Option<DeliverBy> {
        self.more.as_ref()?.by
    }

    /// `HOLDFOR=` / `HOLDUNTIL=` (RFC 4865).
    pub fn hold(&self) -> Option<&Hold<'a>> {
        self.more.as_ref()?.hold.as_ref()
    }

    /// Every parameter without a typed field, in the order received.
    pub fn other(&self) -> &[Parameter<'a>] {
        self.more.as_ref().map_or(&[], |m| &m.other)
    }
}

impl MailParameters<'_> {
    /// Whether no parameter is set.
    pub fn is_empty(&self) -> bool {
        self.size.is_none()
            && self.body.is_none()
            && !self.smtputf8
            && self.ret.is_none()
            && !self.requiretls
            && self.envid.is_none()
            && self
                .more
                .as_deref()
                .is_none_or(|m| *m == MoreMailParameters::default())
    }

    /// Detaches the parameters from the buffer they were parsed from.
    pub fn into_owned(self) -> MailParameters<'static> {
        MailParameters {
            size: self.size,
            body: self.body,
            smtputf8: self.smtputf8,
            ret: self.ret,
            requiretls: self.requiretls,
            envid: self.envid.map(XText::into_owned),
            more: self.more.map(|m| Box::new(m.into_owned())),
        }
    }

    /// Appends each parameter as ` KEYWORD[=value]` (leading space included).
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(size) = self.size {
            out.extend_from_slice(b" SIZE=");
            push_num(out, size);
        }
        if let Some(body) = self.body {
            out.extend_from_slice(b" BODY=");
            out.extend_from_slice(body.as_str().as_bytes());
        }
        if self.smtputf8 {
            out.extend_from_slice(b" SMTPUTF8");
        }
        if let Some(ret) = self.ret {
            out.extend_from_slice(b" RET=");
            out.extend_from_slice(ret.as_str().as_bytes());
        }
        if let Some(envid) = &self.envid {
            out.extend_from_slice(b" ENVID=");
            envid.encode(out);
        }
        match self.auth() {
            None => {}
            Some(AuthParam::Unknown) => out.extend_from_slice(b" AUTH=<>"),
            Some(AuthParam::Mailbox(m)) => {
                out.extend_from_slice(b" AUTH=");
                xtext::encode_xtext_bytes(&m.to_string(), out);
            }
        }
        if self.requiretls {
            out.extend_from_slice(b" REQUIRETLS");
        }
        if let Some(p) = self.mt_priority() {
            out.extend_from_slice(b" MT-PRIORITY=");
            push_num(out, p.get());
        }
        if let Some(by) = self.by() {
            out.extend_from_slice(b" BY=");
            push_num(out, by.time);
            out.extend_from_slice(match by.mode {
                ByMode::Notify => b";N",
                ByMode::Return => b";R",
            });
            if by.trace {
                out.push(b'T');
            }
        }
        match self.hold() {
            None => {}
            Some(Hold::For(s)) => {
                out.extend_from_slice(b" HOLDFOR=");
                push_num(out, *s);
            }
            Some(Hold::Until(d)) => {
                out.extend_from_slice(b" HOLDUNTIL=");
                out.extend_from_slice(d.as_str().as_bytes());
            }
        }
        for p in self.other() {
            p.encode(out);
        }
    }

    /// Whether encoding puts non-ASCII on the wire (an unknown parameter's
    /// value); typed values are always encoded as ASCII.
    pub(crate) fn is_utf8(&self) -> bool {
        other_is_utf8(self.other())
    }
}

fn other_is_utf8(other: &[Parameter<'_>]) -> bool {
    other
        .iter()
        .any(|p| p.value.as_ref().is_some_and(|v| !v.as_str().is_ascii()))
}

pub(super) fn push_num(out: &mut Vec<u8>, n: impl fmt::Display) {
    // VecWriter never fails.
    let _ = fmt::Write::write_fmt(&mut crate::address::VecWriter(out), format_args!("{n}"));
}

/// Splits `text` (what follows the path) into `(keyword, value)` pairs,
/// validating the `esmtp-param` grammar. Runs of spaces are accepted between
/// parameters.
///
/// A byte scan (this runs for every MAIL and RCPT): each token ends at the
/// next space, its keyword at the first `=`.
fn split_params(text: &str) -> impl Iterator<Item = Result<(&str, Option<&str>), CommandError>> {
    super::words(text).map(split_param)
}

/// The bytes of `esmtp-keyword` after the first: `ALPHA / DIGIT / "-"`.
const KEYWORD_TAIL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0u8;
    while b < 0x80 {
        t[b as usize] = b.is_ascii_alphanumeric() || b == b'-';
        b += 1;
    }
    t
};

/// The ASCII bytes of `esmtp-value`: `%d33-60 / %d62-126`.
const VALUE_ASCII: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0u8;
    while b < 0x80 {
        t[b as usize] = matches!(b, b'!'..=b'<' | b'>'..=b'~');
        b += 1;
    }
    t
};

/// `esmtp-param = esmtp-keyword ["=" esmtp-value]`, one space-free token,
/// checked in one pass over its bytes. The keyword is returned as text; the
/// caller wraps it in a [`Keyword`] only when it keeps it (`other`).
fn split_param(token: &str) -> Result<(&str, Option<&str>), CommandError> {
    let b = token.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if !KEYWORD_TAIL[usize::from(c)] {
            break;
        }
        i += 1;
    }
    let first_ok = b.first().is_some_and(u8::is_ascii_alphanumeric);
    let (kw, value) = match b.get(i) {
        // `i` indexes an ASCII `=` (or is the end): char boundaries.
        None if first_ok => return Ok((token, None)),
        Some(b'=') if first_ok => (
            token.get(..i).unwrap_or_default(),
            token.get(i + 1..).unwrap_or_default(),
        ),
        _ => {
            // Name the keyword as sent: the text up to the first `=`.
            let kw = token.split_once('=').map_or(token, |(k, _)| k);
            return Err(perr(kw, ParameterErrorKind::Malformed));
        }
    };
    if !is_esmtp_value(value) {
        return Err(perr(kw, ParameterErrorKind::Malformed));
    }
    Ok((kw, Some(value)))
}

/// `esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii)`; ASCII bytes are
/// checked by table, non-ASCII text char by char.
fn is_esmtp_value(v: &str) -> bool {
    let mut ascii = true;
    for &b in v.as_bytes() {
        if !VALUE_ASCII[usize::from(b)] {
            if b.is_ascii() {
                return false;
            }
            ascii = false;
        }
    }
    !v.is_empty() && (ascii || v.chars().all(is_esmtp_value_char))
}

/// An ASCII word of up to 8 bytes folded into an integer for one-compare,
/// case-insensitive matching: [`fold`] of a received token equals
/// `Word::new(b"NAME").0` only if the token is `NAME` in any case.
///
/// The constant side is lower-cased; the received side gets the case bit
/// (0x20) set only at the positions where the constant has a letter, so a
/// non-letter byte must match exactly (no `0x18` passing for `8`).
#[derive(Clone, Copy)]
struct Word {
    /// The lower-cased word, little-endian, zero padded.
    lower: u64,
    /// 0x20 at each letter position.
    mask: u64,
    len: usize,
}

impl Word {
    const fn new(w: &[u8]) -> Self {
        assert!(w.len() <= 8, "a folded word has at most 8 bytes");
        let (mut lower, mut mask, mut i) = (0u64, 0u64, 0);
        while i < w.len() {
            let c = w[i];
            if c.is_ascii_alphabetic() {
                mask |= 0x20 << (8 * i);
            }
            lower |= (c.to_ascii_lowercase() as u64) << (8 * i);
            i += 1;
        }
        Self {
            lower,
            mask,
            len: w.len(),
        }
    }

    /// Whether `packed` (from [`pack`]) of a `len`-byte token is this word,
    /// ignoring ASCII case.
    #[inline(always)]
    fn is(self, packed: u64, len: usize) -> bool {
        len == self.len && packed | self.mask == self.lower
    }
}

/// Up to 8 bytes, little-endian and zero padded; 0 for longer input (which
/// no [`Word`] matches, as their lengths differ).
#[inline(always)]
fn pack(b: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    match buf.get_mut(..b.len()) {
        Some(dst) => {
            dst.copy_from_slice(b);
            u64::from_le_bytes(buf)
        }
        None => 0,
    }
}

// The keywords and values matched by [`Word`].
const SIZE: Word = Word::new(b"SIZE");
const BODY: Word = Word::new(b"BODY");
const AUTH: Word = Word::new(b"AUTH");
const RET: Word = Word::new(b"RET");
const ENVID: Word = Word::new(b"ENVID");
const SMTPUTF8: Word = Word::new(b"SMTPUTF8");
const BY: Word = Word::new(b"BY");
const HOLDFOR: Word = Word::new(b"HOLDFOR");
const NOTIFY: Word = Word::new(b"NOTIFY");
const ORCPT: Word = Word::new(b"ORCPT");
const RRVS: Word = Word::new(b"RRVS");
const EIGHTBITMIME: Word = Word::new(b"8BITMIME");
const SEVENBIT: Word = Word::new(b"7BIT");
const HDRS: Word = Word::new(b"HDRS");
const FULL: Word = Word::new(b"FULL");
const NEVER: Word = Word::new(b"NEVER");
const SUCCESS: Word = Word::new(b"SUCCESS");
const FAILURE: Word = Word::new(b"FAILURE");
const DELAY: Word = Word::new(b"DELAY");
const RFC822: Word = Word::new(b"rfc822");
const UTF_8: Word = Word::new(b"utf-8");

fn need<'v>(kw: &str, v: Option<&'v str>) -> Result<&'v str, CommandError> {
    v.ok_or_else(|| perr(kw, ParameterErrorKind::MissingValue))
}

fn none(kw: &str, v: Option<&str>) -> Result<(), CommandError> {
    match v {
        None => Ok(()),
        Some(_) => Err(perr(kw, ParameterErrorKind::UnexpectedValue)),
    }
}

fn set<T>(slot: &mut Option<T>, kw: &str, v: T) -> Result<(), CommandError> {
    if slot.is_some() {
        return Err(perr(kw, ParameterErrorKind::Duplicate));
    }
    *slot = Some(v);
    Ok(())
}

fn set_flag(slot: &mut bool, kw: &str) -> Result<(), CommandError> {
    if *slot {
        return Err(perr(kw, ParameterErrorKind::Duplicate));
    }
    *slot = true;
    Ok(())
}

fn invalid(kw: &str) -> CommandError {
    perr(kw, ParameterErrorKind::InvalidValue)
}

/// `1*DIGIT` into an unsigned integer; no sign, no overflow.
fn digits<T: TryFrom<u64>>(s: &str) -> Option<T> {
    if s.is_empty() {
        return None;
    }
    // One pass, checked arithmetic (SIZE= runs on most MAIL commands).
    let n = s.bytes().try_fold(0u64, |n, b| {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d))
    })?;
    T::try_from(n).ok()
}

fn push_other<'a>(
    other: &mut Vec<Parameter<'a>>,
    keyword: &'a str,
    value: Option<&'a str>,
) -> Result<(), CommandError> {
    // Checked by `split_param`.
    let keyword = Keyword::from_validated(keyword);
    if other.iter().any(|p| p.keyword == keyword) {
        return Err(perr(keyword.as_str(), ParameterErrorKind::Duplicate));
    }
    other.push(Parameter {
        keyword,
        // Validated by `split_params`.
        value: value.map(|v| EsmtpValue(Cow::Borrowed(v))),
    });
    Ok(())
}

/// Parses `Mail-parameters` (the text after the reverse-path).
pub(crate) fn parse_mail_params(text: &str) -> Result<MailParameters<'_>, CommandError> {
    let mut p = MailParameters::default();
    if text.is_empty() {
        // The common case: no parameters.
        return Ok(p);
    }
    for item in split_params(text) {
        let (kw, v) = item?;
        let (k, len) = (pack(kw.as_bytes()), kw.len());
        let is = |name: &str| kw.eq_ignore_ascii_case(name);
        match len {
            4 if SIZE.is(k, len) => {
                let n = digits(need(kw, v)?).ok_or_else(|| invalid(kw))?;
                set(&mut p.size, kw, n)?;
            }
            4 if BODY.is(k, len) => {
                let v = need(kw, v)?;
                let (w, wl) = (pack(v.as_bytes()), v.len());
                let b = if EIGHTBITMIME.is(w, wl) {
                    Body::EightBitMime
                } else if SEVENBIT.is(w, wl) {
                    Body::SevenBit
                } else if v.eq_ignore_ascii_case("BINARYMIME") {
                    Body::BinaryMime
                } else {
                    return Err(invalid(kw));
                };
                set(&mut p.body, kw, b)?;
            }
            4 if AUTH.is(k, len) => {
                let v = need(kw, v)?;
                let a = if v == "<>" {
                    AuthParam::Unknown
                } else {
                    let decoded = xtext::decode_xtext(v).map_err(|_| invalid(kw))?;
                    if unbracket(&decoded).is_empty() {
                        AuthParam::Unknown
                    } else {
                        let mb = match decoded {
                            Cow::Borrowed(s) => Mailbox::parse(unbracket(s)),
                            Cow::Owned(s) => Mailbox::parse(unbracket(&s)).map(Mailbox::into_owned),
                        };
                        AuthParam::Mailbox(mb.map_err(|_| invalid(kw))?)
                    }
                };
                set(&mut p.more_mut().auth, kw, a)?;
            }
            3 if RET.is(k, len) => {
                let v = need(kw, v)?;
                let (w, wl) = (pack(v.as_bytes()), v.len());
                let r = if HDRS.is(w, wl) {
                    Ret::Hdrs
                } else if FULL.is(w, wl) {
                    Ret::Full
                } else {
                    return Err(invalid(kw));
                };
                set(&mut p.ret, kw, r)?;
            }
            5 if ENVID.is(k, len) => {
                let x = XText::parse(need(kw, v)?).map_err(|_| invalid(kw))?;
                set(&mut p.envid, kw, x)?;
            }
            8 if SMTPUTF8.is(k, len) => {
                none(kw, v)?;
                set_flag(&mut p.smtputf8, kw)?;
            }
            10 if is("REQUIRETLS") => {
                none(kw, v)?;
                set_flag(&mut p.requiretls, kw)?;
            }
            11 if is("MT-PRIORITY") => {
                let v = need(kw, v)?;
                let n = match v.as_bytes() {
                    [d] | [b'+', d] if d.is_ascii_digit() => (d - b'0') as i8,
                    [b'-', d] if d.is_ascii_digit() => -((d - b'0') as i8),
                    _ => return Err(invalid(kw)),
                };
                // -9..=9 by construction.
                let prio = MtPriority::new(n).ok_or_else(|| invalid(kw))?;
                set(&mut p.more_mut().mt_priority, kw, prio)?;
            }
            2 if BY.is(k, len) => {
                let by = parse_by(need(kw, v)?).ok_or_else(|| invalid(kw))?;
                set(&mut p.more_mut().by, kw, by)?;
            }
            7 if HOLDFOR.is(k, len) => {
                let n = digits(need(kw, v)?).ok_or_else(|| invalid(kw))?;
                set(&mut p.more_mut().hold, kw, Hold::For(n))?;
            }
            9 if is("HOLDUNTIL") => {
                let d = DateTime::new(need(kw, v)?).map_err(|_| invalid(kw))?;
                set(&mut p.more_mut().hold, kw, Hold::Until(d))?;
            }
            _ => push_other(&mut p.more_mut().other, kw, v)?,
        }
    }
    Ok(p)
}

/// `by-value = by-time ";" by-mode [ by-trace ]`
fn parse_by(v: &str) -> Option<DeliverBy> {
    let (time, mode) = v.split_once(';')?;
    let unsigned = time.strip_prefix(['+', '-']).unwrap_or(time);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let time: i32 = time.parse().ok()?;
    let (mode, trace) = match mode.as_bytes() {
        [m] => (*m, false),
        [m, b'T' | b't'] => (*m, true),
        _ => return None,
    };
    let mode = match mode {
        b'N' | b'n' => ByMode::Notify,
        b'R' | b'r' => ByMode::Return,
        _ => return None,
    };
    Some(DeliverBy { time, mode, trace })
}

// ---------------------------------------------------------------------------
// RCPT

/// The parameters of `RCPT TO:` (RFC 5321 §4.1.1.3 and extensions).
///
/// NOTIFY and ORCPT (DSN) are fields; the rarely used ones sit in
/// [`RcptParameters::more`], boxed (see [`MailParameters`] for why).
#[derive(Debug, Clone, Default)]
pub struct RcptParameters<'a> {
    /// `NOTIFY=` (RFC 3461 §4.1).
    pub notify: Option<Notify>,
    /// `ORCPT=` (RFC 3461 §4.2, RFC 6533).
    pub orcpt: Option<OriginalRecipient<'a>>,
    /// The rarely used parameters; `None` when none of them is given.
    pub more: Option<Box<MoreRcptParameters<'a>>>,
}

/// The rarely used parameters of `RCPT TO:` (see [`RcptParameters`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MoreRcptParameters<'a> {
    /// `RRVS=` (RFC 7293).
    pub rrvs: Option<Rrvs<'a>>,
    /// Every other parameter, in the order received.
    pub other: Vec<Parameter<'a>>,
}

impl MoreRcptParameters<'_> {
    /// Detaches the parameters from the buffer they were parsed from.
    pub fn into_owned(self) -> MoreRcptParameters<'static> {
        MoreRcptParameters {
            rrvs: self.rrvs.map(Rrvs::into_owned),
            other: self.other.into_iter().map(Parameter::into_owned).collect(),
        }
    }
}

/// `more: None` and `more` holding nothing are the same parameters.
impl PartialEq for RcptParameters<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.notify == other.notify
            && self.orcpt == other.orcpt
            && more_eq(self.more.as_deref(), other.more.as_deref())
    }
}

impl Eq for RcptParameters<'_> {}

impl<'a> RcptParameters<'a> {
    /// The rarely used parameters, created empty if there are none yet.
    pub fn more_mut(&mut self) -> &mut MoreRcptParameters<'a> {
        self.more.get_or_insert_with(Box::default)
    }

    /// `RRVS=` (RFC 7293).
    pub fn rrvs(&self) -> Option<&Rrvs<'a>> {
        self.more.as_ref()?.rrvs.as_ref()
    }

    /// Every parameter without a typed field, in the order received.
    pub fn other(&self) -> &[Parameter<'a>] {
        self.more.as_ref().map_or(&[], |m| &m.other)
    }
}

impl RcptParameters<'_> {
    /// Whether no parameter is set.
    pub fn is_empty(&self) -> bool {
        self.notify.is_none()
            && self.orcpt.is_none()
            && self
                .more
                .as_deref()
                .is_none_or(|m| *m == MoreRcptParameters::default())
    }

    /// Detaches the parameters from the buffer they were parsed from.
    pub fn into_owned(self) -> RcptParameters<'static> {
        RcptParameters {
            notify: self.notify,
            orcpt: self.orcpt.map(OriginalRecipient::into_owned),
            more: self.more.map(|m| Box::new(m.into_owned())),
        }
    }

    /// Appends each parameter as ` KEYWORD[=value]` (leading space included).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self.notify {
            None => {}
            Some(Notify::Never) => out.extend_from_slice(b" NOTIFY=NEVER"),
            Some(Notify::On(on)) => {
                out.extend_from_slice(b" NOTIFY=");
                let mut sep = false;
                for (set, name) in [
                    (on.success, &b"SUCCESS"[..]),
                    (on.failure, b"FAILURE"),
                    (on.delay, b"DELAY"),
                ] {
                    if set {
                        if sep {
                            out.push(b',');
                        }
                        out.extend_from_slice(name);
                        sep = true;
                    }
                }
            }
        }
        if let Some(o) = &self.orcpt {
            out.extend_from_slice(b" ORCPT=");
            o.encode(out);
        }
        if let Some(r) = self.rrvs() {
            out.extend_from_slice(b" RRVS=");
            out.extend_from_slice(r.time.as_str().as_bytes());
            match r.action {
                None => {}
                Some(RrvsAction::Continue) => out.extend_from_slice(b";C"),
                Some(RrvsAction::Reject) => out.extend_from_slice(b";R"),
            }
        }
        for p in self.other() {
            p.encode(out);
        }
    }

    pub(crate) fn is_utf8(&self) -> bool {
        other_is_utf8(self.other())
    }
}

/// Parses `Rcpt-parameters` (the text after the forward-path).
pub(crate) fn parse_rcpt_params(text: &str) -> Result<RcptParameters<'_>, CommandError> {
    let mut p = RcptParameters::default();
    if text.is_empty() {
        // The common case: no parameters.
        return Ok(p);
    }
    for item in split_params(text) {
        let (kw, v) = item?;
        let (k, len) = (pack(kw.as_bytes()), kw.len());
        match len {
            6 if NOTIFY.is(k, len) => {
                let n = parse_notify(need(kw, v)?).ok_or_else(|| invalid(kw))?;
                set(&mut p.notify, kw, n)?;
            }
            5 if ORCPT.is(k, len) => {
                let o = OriginalRecipient::parse(need(kw, v)?).ok_or_else(|| invalid(kw))?;
                set(&mut p.orcpt, kw, o)?;
            }
            4 if RRVS.is(k, len) => {
                let v = need(kw, v)?;
                let (time, action) = match v.rsplit_once(';') {
                    Some((t, "C" | "c")) => (t, Some(RrvsAction::Continue)),
                    Some((t, "R" | "r")) => (t, Some(RrvsAction::Reject)),
                    Some(_) => return Err(invalid(kw)),
                    None => (v, None),
                };
                let time = DateTime::new(time).map_err(|_| invalid(kw))?;
                set(&mut p.more_mut().rrvs, kw, Rrvs { time, action })?;
            }
            _ => push_other(&mut p.more_mut().other, kw, v)?,
        }
    }
    Ok(p)
}

/// `notify-esmtp-value = "NEVER" / 1#notify-list-element`
fn parse_notify(v: &str) -> Option<Notify> {
    if NEVER.is(pack(v.as_bytes()), v.len()) {
        return Some(Notify::Never);
    }
    let (mut s, mut f, mut d) = (false, false, false);
    for item in v.as_bytes().split(|&b| b == b',') {
        let (w, wl) = (pack(item), item.len());
        let slot = if SUCCESS.is(w, wl) {
            &mut s
        } else if FAILURE.is(w, wl) {
            &mut f
        } else if DELAY.is(w, wl) {
            &mut d
        } else {
            return None;
        };
        if *slot {
            return None;
        }
        *slot = true;
    }
    NotifyOn::new(s, f, d).map(Notify::On)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_words_match_case_insensitively_and_nothing_else() {
        for ok in ["8BITMIME", "8bitmime", "8BitMime"] {
            assert!(EIGHTBITMIME.is(pack(ok.as_bytes()), ok.len()), "{ok}");
        }
        // A byte that differs from a digit or `-` only in the case bit must
        // not match (0x18 | 0x20 == b'8', 0x0d | 0x20 == b'-').
        for bad in [
            &b"\x18BITMIME"[..],
            b"8BITMIM",
            b"8BITMIMEX",
            b"7BIT\0",
            b"",
        ] {
            assert!(!EIGHTBITMIME.is(pack(bad), bad.len()), "{bad:?}");
            assert!(!SEVENBIT.is(pack(bad), bad.len()), "{bad:?}");
        }
        assert!(UTF_8.is(pack(b"UTF-8"), 5));
        assert!(!UTF_8.is(pack(b"UTF\x0d8"), 5));
        assert!(!RFC822.is(pack(b"RFC\x182\x122"), 6));
    }

    #[test]
    fn split_param_checks_keyword_and_value_in_one_pass() {
        assert_eq!(split_param("SIZE=10").unwrap(), ("SIZE", Some("10")));
        assert_eq!(split_param("X-A1").unwrap(), ("X-A1", None));
        assert_eq!(split_param("X=ü").unwrap(), ("X", Some("ü")));
        for (bad, kw) in [
            ("-X=1", "-X"),
            ("X_Y=1", "X_Y"),
            ("=1", ""),
            ("X=", "X"),
            ("X=a=b", "X"),
            ("X=\u{85}", "X"),
            ("X=a\u{7f}", "X"),
            ("Ü=1", "Ü"),
        ] {
            assert_eq!(
                split_param(bad),
                Err(perr(kw, ParameterErrorKind::Malformed)),
                "{bad:?}"
            );
        }
    }
}
