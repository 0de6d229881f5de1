//! Reply codes (RFC 5321 §4.2).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A three-digit SMTP reply code, validated (RFC 5321 §4.2).
///
/// ```text
/// Reply-code = %x32-35 %x30-35 %x30-39
/// ```
///
/// The first digit is 2–5 (SMTP has no `1yz` preliminary replies), the second
/// 0–5, the third 0–9. A value outside that range cannot be built, so every
/// `ReplyCode` encodes to three digits a peer will accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(u16);

/// A number that is not a valid reply code (0 when the text was not a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid reply code {0}: must be 2yz-5yz with y in 0-5")]
pub struct ReplyCodeError(pub u16);

/// What the first digit of a reply code says (RFC 5321 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyClass {
    /// `2yz`: the requested action has been successfully completed.
    PositiveCompletion,
    /// `3yz`: the command has been accepted, more information is needed
    /// (`354` after DATA, `334` during AUTH).
    PositiveIntermediate,
    /// `4yz`: the command was not accepted; the error condition is temporary
    /// and the action may be requested again.
    TransientNegative,
    /// `5yz`: the command was not accepted and should not be repeated as is.
    PermanentNegative,
}

impl ReplyClass {
    /// The first digit of codes in this class.
    pub const fn digit(self) -> u8 {
        match self {
            Self::PositiveCompletion => 2,
            Self::PositiveIntermediate => 3,
            Self::TransientNegative => 4,
            Self::PermanentNegative => 5,
        }
    }
}

impl ReplyCode {
    /// The code written as three ASCII digits, if they are digits and make
    /// a valid code: checked on the digits, without dividing the number
    /// back into them (this runs for every reply line).
    #[inline]
    pub(crate) fn from_ascii_checked(digits: [u8; 3]) -> Result<Self, Option<u16>> {
        let [a, b, c] = digits;
        if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
            return Err(None);
        }
        let n = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
        if (b'2'..=b'5').contains(&a) && b <= b'5' {
            Ok(Self(n))
        } else {
            Err(Some(n))
        }
    }
}

const fn valid(code: u16) -> bool {
    let first = code / 100;
    let second = (code / 10) % 10;
    code < 1000 && first >= 2 && first <= 5 && second <= 5
}

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal;)*) => {
        impl ReplyCode {
            $(
                $(#[$doc])*
                pub const $name: Self = Self($value);
            )*
        }
    };
}

codes! {
    /// `220 <domain> Service ready` (RFC 5321 §4.2.2, §4.2.3).
    SERVICE_READY = 220;
    /// `221 <domain> Service closing transmission channel` (RFC 5321 §4.2.2).
    SERVICE_CLOSING = 221;
    /// `235 Authentication successful` (RFC 4954 §6).
    AUTH_SUCCEEDED = 235;
    /// `250 Requested mail action okay, completed` (RFC 5321 §4.2.2).
    OK = 250;
    /// `251 User not local; will forward to <forward-path>` (RFC 5321 §4.2.2).
    USER_NOT_LOCAL_WILL_FORWARD = 251;
    /// `252 Cannot VRFY user, but will accept message and attempt delivery`
    /// (RFC 5321 §4.2.2, §3.5.3).
    CANNOT_VERIFY = 252;
    /// `334` server challenge during AUTH (RFC 4954 §4).
    AUTH_CHALLENGE = 334;
    /// `354 Start mail input; end with <CRLF>.<CRLF>` (RFC 5321 §4.2.2).
    START_MAIL_INPUT = 354;
    /// `421 <domain> Service not available, closing transmission channel`
    /// (RFC 5321 §4.2.2).
    SERVICE_NOT_AVAILABLE = 421;
    /// `450 Requested mail action not taken: mailbox unavailable` (temporary,
    /// RFC 5321 §4.2.2).
    MAILBOX_BUSY = 450;
    /// `451 Requested action aborted: local error in processing` (RFC 5321 §4.2.2).
    LOCAL_ERROR = 451;
    /// `452 Requested action not taken: insufficient system storage`
    /// (RFC 5321 §4.2.2; also "too many recipients", §4.5.3.1.10).
    INSUFFICIENT_STORAGE = 452;
    /// `454 Temporary authentication failure` (RFC 4954 §6); also
    /// `454 TLS not available due to temporary reason` (RFC 3207 §4).
    TEMPORARY_FAILURE = 454;
    /// `500 Syntax error, command unrecognized` (RFC 5321 §4.2.2; also
    /// "command line too long").
    SYNTAX_ERROR = 500;
    /// `501 Syntax error in parameters or arguments` (RFC 5321 §4.2.2).
    PARAMETER_SYNTAX_ERROR = 501;
    /// `502 Command not implemented` (RFC 5321 §4.2.2).
    COMMAND_NOT_IMPLEMENTED = 502;
    /// `503 Bad sequence of commands` (RFC 5321 §4.2.2).
    BAD_SEQUENCE = 503;
    /// `504 Command parameter not implemented` (RFC 5321 §4.2.2).
    PARAMETER_NOT_IMPLEMENTED = 504;
    /// `530 Authentication required` (RFC 4954 §6); also "Must issue a
    /// STARTTLS command first" (RFC 3207 §4).
    AUTH_REQUIRED = 530;
    /// `534 Authentication mechanism is too weak` (RFC 4954 §6).
    AUTH_MECHANISM_TOO_WEAK = 534;
    /// `535 Authentication credentials invalid` (RFC 4954 §6).
    AUTH_CREDENTIALS_INVALID = 535;
    /// `550 Requested action not taken: mailbox unavailable` (RFC 5321 §4.2.2).
    MAILBOX_UNAVAILABLE = 550;
    /// `551 User not local; please try <forward-path>` (RFC 5321 §4.2.2).
    USER_NOT_LOCAL = 551;
    /// `552 Requested mail action aborted: exceeded storage allocation`
    /// (RFC 5321 §4.2.2; RFC 1870 message size).
    EXCEEDED_STORAGE = 552;
    /// `553 Requested action not taken: mailbox name not allowed`
    /// (RFC 5321 §4.2.2).
    MAILBOX_NAME_NOT_ALLOWED = 553;
    /// `554 Transaction failed` (or, in the greeting, "No SMTP service here")
    /// (RFC 5321 §4.2.2, §3.1).
    TRANSACTION_FAILED = 554;
    /// `555 MAIL FROM/RCPT TO parameters not recognized or not implemented`
    /// (RFC 5321 §4.2.2).
    PARAMETERS_NOT_RECOGNIZED = 555;
}

impl ReplyCode {
    /// Validates a reply code.
    pub const fn new(code: u16) -> Result<Self, ReplyCodeError> {
        if valid(code) {
            Ok(Self(code))
        } else {
            Err(ReplyCodeError(code))
        }
    }

    /// Validates three ASCII digits (`b'2'`, `b'5'`, `b'0'`). Returns `None`
    /// when a byte is not a digit or the code is out of range.
    pub const fn from_ascii(digits: [u8; 3]) -> Option<Self> {
        let [a, b, c] = digits;
        if !a.is_ascii_digit() || !b.is_ascii_digit() || !c.is_ascii_digit() {
            return None;
        }
        let code = (a - b'0') as u16 * 100 + (b - b'0') as u16 * 10 + (c - b'0') as u16;
        // `valid` on the digits themselves: no division.
        if a >= b'2' && a <= b'5' && b <= b'5' {
            Some(Self(code))
        } else {
            None
        }
    }

    /// The code as a number.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// The three digits in ASCII, as written on the wire.
    pub const fn to_ascii(self) -> [u8; 3] {
        // The code is < 1000 by construction, so each digit is 0-9.
        [
            b'0' + (self.0 / 100) as u8,
            b'0' + ((self.0 / 10) % 10) as u8,
            b'0' + (self.0 % 10) as u8,
        ]
    }

    /// The first digit (2–5).
    pub const fn first_digit(self) -> u8 {
        (self.0 / 100) as u8
    }

    /// The second digit (0–5): the category of the reply (RFC 5321 §4.2.1:
    /// 0 syntax, 1 information, 2 connections, 5 mail system).
    pub const fn second_digit(self) -> u8 {
        ((self.0 / 10) % 10) as u8
    }

    /// The third digit (0–9).
    pub const fn third_digit(self) -> u8 {
        (self.0 % 10) as u8
    }

    /// The class the first digit names.
    pub const fn class(self) -> ReplyClass {
        match self.first_digit() {
            2 => ReplyClass::PositiveCompletion,
            3 => ReplyClass::PositiveIntermediate,
            4 => ReplyClass::TransientNegative,
            // The first digit is 2-5 by construction.
            _ => ReplyClass::PermanentNegative,
        }
    }

    /// `2yz` or `3yz`: the command was accepted.
    pub const fn is_positive(self) -> bool {
        self.first_digit() <= 3
    }

    /// `2yz`: the action completed.
    pub const fn is_positive_completion(self) -> bool {
        self.first_digit() == 2
    }

    /// `3yz`: accepted, the server waits for more (DATA body, AUTH response).
    pub const fn is_positive_intermediate(self) -> bool {
        self.first_digit() == 3
    }

    /// `4yz` or `5yz`: the command was not accepted.
    pub const fn is_negative(self) -> bool {
        self.first_digit() >= 4
    }

    /// `4yz`: try again later.
    pub const fn is_transient_negative(self) -> bool {
        self.first_digit() == 4
    }

    /// `5yz`: do not repeat the same request.
    pub const fn is_permanent_negative(self) -> bool {
        self.first_digit() == 5
    }
}

impl TryFrom<u16> for ReplyCode {
    type Error = ReplyCodeError;

    fn try_from(code: u16) -> Result<Self, Self::Error> {
        Self::new(code)
    }
}

impl From<ReplyCode> for u16 {
    fn from(code: ReplyCode) -> Self {
        code.0
    }
}

impl FromStr for ReplyCode {
    type Err = ReplyCodeError;

    /// Parses exactly three ASCII digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match <[u8; 3]>::try_from(s.as_bytes()) {
            Ok(digits) => Self::from_ascii(digits).ok_or(ReplyCodeError(s.parse().unwrap_or(0))),
            Err(_) => Err(ReplyCodeError(s.parse().unwrap_or(0))),
        }
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range() {
        for n in 0..=1200u16 {
            let ok = (200..600).contains(&n) && (n / 10) % 10 <= 5;
            assert_eq!(ReplyCode::new(n).is_ok(), ok, "{n}");
        }
    }

    #[test]
    fn digits_and_class() {
        let c = ReplyCode::START_MAIL_INPUT;
        assert_eq!(c.to_ascii(), *b"354");
        assert_eq!(c.class(), ReplyClass::PositiveIntermediate);
        assert!(c.is_positive() && c.is_positive_intermediate() && !c.is_negative());
        assert_eq!(ReplyCode::from_ascii(*b"2x0"), None);
        assert_eq!(ReplyCode::from_ascii(*b"260"), None);
        assert_eq!(ReplyCode::from_ascii(*b"600"), None);
        assert_eq!(
            ReplyCode::from_ascii(*b"559"),
            Some(ReplyCode::new(559).unwrap())
        );
        assert_eq!(
            "421".parse::<ReplyCode>(),
            Ok(ReplyCode::SERVICE_NOT_AVAILABLE)
        );
        assert_eq!("4210".parse::<ReplyCode>(), Err(ReplyCodeError(4210)));
        assert_eq!(ReplyCode::MAILBOX_UNAVAILABLE.to_string(), "550");
        assert_eq!(
            ReplyCode::MAILBOX_BUSY.class(),
            ReplyClass::TransientNegative
        );
        assert_eq!(ReplyClass::PermanentNegative.digit(), 5);
    }
}
