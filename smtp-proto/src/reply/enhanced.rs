//! Enhanced mail system status codes (RFC 3463, registry of RFC 5248).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// An enhanced status code such as `5.1.1` (RFC 3463 §2).
///
/// ```text
/// status-code = class "." subject "." detail
/// class       = "2" / "4" / "5"
/// subject     = 1*3digit
/// detail      = 1*3digit
/// ```
///
/// Only valid codes can be built. Subject and detail are numbers, so
/// `5.01.1` on the wire (allowed by the ABNF) reads as `5.1.1` and is written
/// back as `5.1.1`.
///
/// There is no class `3`: RFC 3463 has none, so the `3yz` intermediate
/// replies (`334`, `354`) never carry an enhanced code and text such as
/// `354 3.5.0 go ahead` stays text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedStatusCode {
    class: u8,
    subject: u16,
    detail: u16,
}

/// Why a value is not an enhanced status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EnhancedStatusCodeError {
    /// The class is not 2, 4 or 5.
    #[error("enhanced status class must be 2, 4 or 5")]
    InvalidClass,
    /// The subject or detail is above 999 (more than three digits).
    #[error("enhanced status subject and detail must be 0-999")]
    OutOfRange,
    /// The text is not `class.subject.detail`.
    #[error("not an enhanced status code")]
    Syntax,
}

macro_rules! esc {
    ($($(#[$doc:meta])* $name:ident = ($c:literal, $s:literal, $d:literal);)*) => {
        impl EnhancedStatusCode {
            $(
                $(#[$doc])*
                pub const $name: Self = Self { class: $c, subject: $s, detail: $d };
            )*
        }
    };
}

esc! {
    /// `2.0.0` Other undefined status: generic success (RFC 3463 §3.1).
    SUCCESS = (2, 0, 0);
    /// `2.1.0` Other address status: sender accepted (RFC 3463 §3.2).
    ADDRESS_OK = (2, 1, 0);
    /// `2.1.5` Destination address valid (RFC 3463 §3.2).
    DESTINATION_VALID = (2, 1, 5);
    /// `2.6.0` Other or undefined media status: message accepted (RFC 3463 §3.7).
    MESSAGE_OK = (2, 6, 0);
    /// `2.7.0` Other security status: authentication succeeded (RFC 4954 §6).
    SECURITY_OK = (2, 7, 0);
    /// `4.2.0` Other or undefined mailbox status, temporary: mailbox busy,
    /// greylisted (RFC 3463 §3.3).
    MAILBOX_TEMPORARY = (4, 2, 0);
    /// `4.3.0` Other or undefined mail system status (RFC 3463 §3.4).
    SYSTEM_TEMPORARY = (4, 3, 0);
    /// `4.3.1` Mail system full (RFC 3463 §3.4).
    MAIL_SYSTEM_FULL = (4, 3, 1);
    /// `4.3.2` System not accepting network messages: shutting down, too
    /// busy (RFC 3463 §3.4).
    NOT_ACCEPTING_MESSAGES = (4, 3, 2);
    /// `4.4.2` Bad connection (RFC 3463 §3.5).
    BAD_CONNECTION = (4, 4, 2);
    /// `4.5.3` Too many recipients (RFC 3463 §3.6), temporary.
    TOO_MANY_RECIPIENTS_TEMPORARY = (4, 5, 3);
    /// `4.7.0` Other security status, temporary: temporary authentication
    /// failure, TLS not available (RFC 4954 §6, RFC 3207).
    SECURITY_TEMPORARY = (4, 7, 0);
    /// `4.7.24` SPF validation error, temporary: the sender's SPF policy
    /// could not be evaluated for a DNS error (RFC 7372 §3.2).
    SPF_ERROR_TEMPORARY = (4, 7, 24);
    /// `5.0.0` Other undefined status (RFC 3463 §3.1).
    PERMANENT_FAILURE = (5, 0, 0);
    /// `5.1.1` Bad destination mailbox address (RFC 3463 §3.2).
    BAD_DESTINATION_MAILBOX = (5, 1, 1);
    /// `5.1.3` Bad destination mailbox address syntax (RFC 3463 §3.2).
    BAD_DESTINATION_SYNTAX = (5, 1, 3);
    /// `5.1.7` Bad sender's mailbox address syntax (RFC 3463 §3.2).
    BAD_SENDER_SYNTAX = (5, 1, 7);
    /// `5.2.2` Mailbox full (RFC 3463 §3.3).
    MAILBOX_FULL = (5, 2, 2);
    /// `5.3.4` Message too big for system (RFC 3463 §3.4).
    MESSAGE_TOO_BIG = (5, 3, 4);
    /// `5.5.1` Invalid command (RFC 3463 §3.6).
    INVALID_COMMAND = (5, 5, 1);
    /// `5.5.2` Syntax error (RFC 3463 §3.6).
    SYNTAX_ERROR = (5, 5, 2);
    /// `5.5.3` Too many recipients (RFC 3463 §3.6).
    TOO_MANY_RECIPIENTS = (5, 5, 3);
    /// `5.5.4` Invalid command arguments (RFC 3463 §3.6).
    INVALID_ARGUMENTS = (5, 5, 4);
    /// `5.6.7` Non-ASCII addresses not permitted for that sender/recipient
    /// (RFC 6531 §3.7.5).
    NON_ASCII_ADDRESS_NOT_PERMITTED = (5, 6, 7);
    /// `5.7.0` Other or undefined security status: authentication required
    /// (RFC 4954 §6), must issue STARTTLS first (RFC 3207 §4).
    SECURITY_POLICY = (5, 7, 0);
    /// `5.7.1` Delivery not authorized, message refused (RFC 3463 §3.8).
    NOT_AUTHORIZED = (5, 7, 1);
    /// `5.7.23` SPF validation failed: the client is not authorized by
    /// the sender's SPF policy (RFC 7372 §3.2).
    SPF_FAILED = (5, 7, 23);
    /// `5.7.8` Authentication credentials invalid (RFC 4954 §6).
    AUTH_CREDENTIALS_INVALID = (5, 7, 8);
    /// `5.7.9` Authentication mechanism is too weak (RFC 4954 §6).
    AUTH_MECHANISM_TOO_WEAK = (5, 7, 9);
    /// `5.7.10` REQUIRETLS support required (RFC 8689 §5).
    REQUIRETLS_NEEDED = (5, 7, 10);
    /// `5.7.11` Encryption required for requested authentication mechanism
    /// (RFC 4954 §6).
    ENCRYPTION_REQUIRED = (5, 7, 11);
}

impl EnhancedStatusCode {
    /// Validates a code: class 2, 4 or 5; subject and detail 0–999.
    pub const fn new(
        class: u8,
        subject: u16,
        detail: u16,
    ) -> Result<Self, EnhancedStatusCodeError> {
        if !matches!(class, 2 | 4 | 5) {
            return Err(EnhancedStatusCodeError::InvalidClass);
        }
        if subject > 999 || detail > 999 {
            return Err(EnhancedStatusCodeError::OutOfRange);
        }
        Ok(Self {
            class,
            subject,
            detail,
        })
    }

    /// The class: 2 (success), 4 (persistent transient failure) or 5
    /// (permanent failure).
    pub const fn class(self) -> u8 {
        self.class
    }

    /// The subject (RFC 3463 §3: 0 other, 1 addressing, 2 mailbox, 3 mail
    /// system, 4 network, 5 protocol, 6 content, 7 security).
    pub const fn subject(self) -> u16 {
        self.subject
    }

    /// The detail within the subject.
    pub const fn detail(self) -> u16 {
        self.detail
    }

    /// Appends `class.subject.detail` to `out`.
    pub fn encode(self, out: &mut Vec<u8>) {
        out.push(b'0' + self.class);
        out.push(b'.');
        push_number(out, self.subject);
        out.push(b'.');
        push_number(out, self.detail);
    }
}

fn push_number(out: &mut Vec<u8>, n: u16) {
    // n <= 999 by construction.
    if n >= 100 {
        out.push(b'0' + (n / 100) as u8);
    }
    if n >= 10 {
        out.push(b'0' + ((n / 10) % 10) as u8);
    }
    out.push(b'0' + (n % 10) as u8);
}

/// Reads 1–3 digits at `*pos`, advancing it.
fn digits(bytes: &[u8], pos: &mut usize) -> Option<u16> {
    let mut value = 0u16;
    let start = *pos;
    while let Some(&b) = bytes.get(*pos) {
        if !b.is_ascii_digit() {
            break;
        }
        if *pos - start == 3 {
            return None;
        }
        value = value * 10 + u16::from(b - b'0');
        *pos += 1;
    }
    (*pos > start).then_some(value)
}

/// Parses `class "." subject "." detail` at the start of `bytes`; returns the
/// code and how many bytes it took. Whatever follows is not examined.
pub(crate) fn parse_prefix(bytes: &[u8]) -> Option<(EnhancedStatusCode, usize)> {
    let class = match bytes.first() {
        Some(&c @ (b'2' | b'4' | b'5')) => c - b'0',
        _ => return None,
    };
    if bytes.get(1) != Some(&b'.') {
        return None;
    }
    let mut pos = 2;
    let subject = digits(bytes, &mut pos)?;
    if bytes.get(pos) != Some(&b'.') {
        return None;
    }
    pos += 1;
    let detail = digits(bytes, &mut pos)?;
    Some((
        EnhancedStatusCode {
            class,
            subject,
            detail,
        },
        pos,
    ))
}

/// The enhanced code that opens a reply line's text, when there is one.
///
/// It counts only when its class equals `class` (the reply code's first digit)
/// and it is followed by a space or by the end of the text. Returns the code
/// and the number of bytes to strip (including the one space).
pub(crate) fn split_text(text: &[u8], class: u8) -> Option<(EnhancedStatusCode, usize)> {
    // Fast reject: most texts do not start with a digit.
    if text.first() != Some(&(b'0' + class)) {
        return None;
    }
    let (code, len) = parse_prefix(text)?;
    match text.get(len) {
        None => Some((code, len)),
        Some(b' ') => Some((code, len + 1)),
        Some(_) => None,
    }
}

impl FromStr for EnhancedStatusCode {
    type Err = EnhancedStatusCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match parse_prefix(s.as_bytes()) {
            Some((code, len)) if len == s.len() => Ok(code),
            _ => {
                if !matches!(s.as_bytes().first(), Some(b'2' | b'4' | b'5')) {
                    Err(EnhancedStatusCodeError::InvalidClass)
                } else {
                    Err(EnhancedStatusCodeError::Syntax)
                }
            }
        }
    }
}

impl fmt::Display for EnhancedStatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        for (text, code) in [
            ("2.0.0", EnhancedStatusCode::SUCCESS),
            ("5.1.1", EnhancedStatusCode::BAD_DESTINATION_MAILBOX),
            ("5.7.11", EnhancedStatusCode::ENCRYPTION_REQUIRED),
            ("4.999.999", EnhancedStatusCode::new(4, 999, 999).unwrap()),
        ] {
            assert_eq!(text.parse::<EnhancedStatusCode>(), Ok(code));
            assert_eq!(code.to_string(), text);
            let mut out = Vec::new();
            code.encode(&mut out);
            assert_eq!(out, text.as_bytes());
        }
        assert_eq!(
            "5.01.1".parse(),
            Ok(EnhancedStatusCode::BAD_DESTINATION_MAILBOX)
        );
    }

    #[test]
    fn rejects() {
        use EnhancedStatusCodeError::*;
        for (text, err) in [
            ("3.5.0", InvalidClass),
            ("6.0.0", InvalidClass),
            ("", InvalidClass),
            ("2.0", Syntax),
            ("2.0.", Syntax),
            ("2..0", Syntax),
            ("2.1000.0", Syntax),
            ("2.0.0 ", Syntax),
            ("2.0.0x", Syntax),
            ("22.0.0", Syntax),
        ] {
            assert_eq!(text.parse::<EnhancedStatusCode>(), Err(err), "{text:?}");
        }
        assert_eq!(EnhancedStatusCode::new(3, 5, 0), Err(InvalidClass));
        assert_eq!(EnhancedStatusCode::new(2, 1000, 0), Err(OutOfRange));
    }

    #[test]
    fn split() {
        assert_eq!(
            split_text(b"2.1.5 Ok", 2),
            Some((EnhancedStatusCode::DESTINATION_VALID, 6))
        );
        assert_eq!(
            split_text(b"2.1.5", 2),
            Some((EnhancedStatusCode::DESTINATION_VALID, 5))
        );
        assert_eq!(split_text(b"2.1.5 Ok", 5), None);
        assert_eq!(split_text(b"2.1.5-Ok", 2), None);
        assert_eq!(split_text(b"2.1.5.3 Ok", 2), None);
        assert_eq!(split_text(b"", 2), None);
    }
}
