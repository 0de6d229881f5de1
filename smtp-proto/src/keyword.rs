//! Case-insensitive protocol tokens shared by commands and replies.
//!
//! An ESMTP keyword names both an EHLO extension (`PIPELINING`, `SIZE`) and a
//! MAIL/RCPT parameter (`BODY`, `NOTIFY`); a SASL mechanism name appears in
//! both the `AUTH` command and the `AUTH` extension. Both are compared without
//! regard to case (RFC 5321 §2.4: "verbs and argument values ... are not case
//! sensitive"), which lettre forgot for `starttls`.

use std::borrow::Cow;
use std::fmt;

use thiserror::Error;

/// A token that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is empty.
    #[error("empty token")]
    Empty,
    /// The token is longer than its grammar allows.
    #[error("token longer than {max} characters")]
    TooLong {
        /// The longest allowed token.
        max: usize,
    },
    /// The token contains a character its grammar forbids.
    #[error("invalid character {0:?} in token")]
    InvalidChar(char),
}

/// An ESMTP keyword (RFC 5321 §4.1.2), compared case-insensitively.
///
/// ```text
/// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
/// ehlo-keyword  = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
/// ```
#[derive(Clone)]
pub struct Keyword<'a>(Cow<'a, str>);

impl<'a> Keyword<'a> {
    /// Validates a keyword, borrowing it.
    pub fn new(s: &'a str) -> Result<Self, TokenError> {
        validate_keyword(s)?;
        Ok(Self(Cow::Borrowed(s)))
    }

    /// Wraps text the caller has already checked against the keyword
    /// grammar (the MAIL/RCPT parameter splitter and the EHLO keyword scan
    /// validate while scanning), so it is not scanned twice; debug builds
    /// check again.
    #[inline]
    pub(crate) fn from_validated(s: &'a str) -> Self {
        debug_assert!(validate_keyword(s).is_ok(), "not a keyword: {s:?}");
        Self(Cow::Borrowed(s))
    }

    /// Validates an owned keyword.
    pub fn new_owned(s: String) -> Result<Keyword<'static>, TokenError> {
        validate_keyword(&s)?;
        Ok(Keyword(Cow::Owned(s)))
    }

    /// The keyword as it was written (case preserved).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this keyword equals `other`, ignoring ASCII case.
    pub fn is(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }

    /// Detaches the keyword from the buffer it was parsed from.
    pub fn into_owned(self) -> Keyword<'static> {
        Keyword(Cow::Owned(self.0.into_owned()))
    }
}

fn validate_keyword(s: &str) -> Result<(), TokenError> {
    // A byte scan: every valid character is ASCII, so the first byte that
    // fails starts a character (all bytes before it are ASCII).
    let b = s.as_bytes();
    let bad = match b.first() {
        None => return Err(TokenError::Empty),
        Some(c) if !c.is_ascii_alphanumeric() => Some(0),
        Some(_) => b
            .iter()
            .position(|&c| !(c.is_ascii_alphanumeric() || c == b'-')),
    };
    match bad {
        Some(i) => Err(TokenError::InvalidChar(char_at(s, i))),
        None => Ok(()),
    }
}

/// The character starting at byte `i` of `s` (a boundary by the callers'
/// construction); U+FFFD if there is none.
fn char_at(s: &str, i: usize) -> char {
    s.get(i..)
        .and_then(|t| t.chars().next())
        .unwrap_or(char::REPLACEMENT_CHARACTER)
}

impl PartialEq for Keyword<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for Keyword<'_> {}

impl std::hash::Hash for Keyword<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_uppercase());
        }
    }
}

impl fmt::Debug for Keyword<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keyword({:?})", self.0)
    }
}

impl fmt::Display for Keyword<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SASL mechanism name (RFC 4422 §3.1), compared case-insensitively.
///
/// ```text
/// sasl-mech = 1*20mech-char
/// mech-char = UPPER-ALPHA / DIGIT / HYPHEN / UNDERSCORE
/// ```
///
/// Lower-case letters are accepted on input (peers send them) and kept as
/// written; comparison ignores case.
#[derive(Clone)]
pub struct Mechanism<'a>(Cow<'a, str>);

/// The longest SASL mechanism name (RFC 4422 §3.1).
pub const MAX_MECHANISM_LEN: usize = 20;

impl<'a> Mechanism<'a> {
    /// `PLAIN` (RFC 4616).
    pub const PLAIN: Mechanism<'static> = Mechanism(Cow::Borrowed("PLAIN"));
    /// `LOGIN` (draft-murchison-sasl-login).
    pub const LOGIN: Mechanism<'static> = Mechanism(Cow::Borrowed("LOGIN"));
    /// `XOAUTH2` (Google's OAuth 2.0 mechanism).
    pub const XOAUTH2: Mechanism<'static> = Mechanism(Cow::Borrowed("XOAUTH2"));
    /// `OAUTHBEARER` (RFC 7628).
    pub const OAUTHBEARER: Mechanism<'static> = Mechanism(Cow::Borrowed("OAUTHBEARER"));

    /// Validates a mechanism name, borrowing it.
    pub fn new(s: &'a str) -> Result<Self, TokenError> {
        validate_mechanism(s)?;
        Ok(Self(Cow::Borrowed(s)))
    }

    /// Validates an owned mechanism name.
    pub fn new_owned(s: String) -> Result<Mechanism<'static>, TokenError> {
        validate_mechanism(&s)?;
        Ok(Mechanism(Cow::Owned(s)))
    }

    /// The name as it was written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this mechanism is `other`, ignoring ASCII case.
    pub fn is(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }

    /// Detaches the name from the buffer it was parsed from.
    pub fn into_owned(self) -> Mechanism<'static> {
        Mechanism(Cow::Owned(self.0.into_owned()))
    }
}

fn validate_mechanism(s: &str) -> Result<(), TokenError> {
    if s.is_empty() {
        return Err(TokenError::Empty);
    }
    if let Some(i) = s
        .bytes()
        .position(|c| !(c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
    {
        // Every byte before `i` is ASCII: `i` starts a character.
        return Err(TokenError::InvalidChar(char_at(s, i)));
    }
    if s.len() > MAX_MECHANISM_LEN {
        return Err(TokenError::TooLong {
            max: MAX_MECHANISM_LEN,
        });
    }
    Ok(())
}

impl PartialEq for Mechanism<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for Mechanism<'_> {}

impl std::hash::Hash for Mechanism<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_uppercase());
        }
    }
}

impl fmt::Debug for Mechanism<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mechanism({:?})", self.0)
    }
}

impl fmt::Display for Mechanism<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_known_answers() {
        assert!(Keyword::new("SIZE").is_ok());
        assert!(Keyword::new("X-EXPS").is_ok());
        assert!(Keyword::new("8BITMIME").is_ok());
        assert_eq!(Keyword::new(""), Err(TokenError::Empty));
        assert_eq!(Keyword::new("-X"), Err(TokenError::InvalidChar('-')));
        assert_eq!(Keyword::new("A B"), Err(TokenError::InvalidChar(' ')));
        assert_eq!(Keyword::new("A\r\n"), Err(TokenError::InvalidChar('\r')));
        assert_eq!(
            Keyword::new("starttls").unwrap(),
            Keyword::new("STARTTLS").unwrap()
        );
        assert!(Keyword::new("StartTLS").unwrap().is("STARTTLS"));
    }

    #[test]
    fn mechanism_known_answers() {
        assert!(Mechanism::new("SCRAM-SHA-256").is_ok());
        assert!(Mechanism::new("x_y").is_ok());
        assert_eq!(Mechanism::new("plain").unwrap(), Mechanism::PLAIN);
        assert_eq!(
            Mechanism::new("ABCDEFGHIJKLMNOPQRSTU"),
            Err(TokenError::TooLong { max: 20 })
        );
        assert_eq!(Mechanism::new("A=B"), Err(TokenError::InvalidChar('=')));
    }
}
