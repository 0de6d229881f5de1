//! Host names as the MX planner sees them: validated, lower-case, no root dot.

use std::fmt;

use hickory_proto::rr::Name;
use thiserror::Error;

/// The longest host name in text form, without the trailing root dot.
///
/// RFC 1035 §3.1 limits a name to 255 octets in wire form (length octets
/// included), which leaves 253 characters in dotted text. RFC 5321
/// §4.5.3.1.2 allows 255 octets for a domain, but no longer name can exist in
/// the DNS.
pub const MAX_HOST_NAME_LEN: usize = 253;

/// The longest label. RFC 1035 §2.3.4.
pub const MAX_LABEL_LEN: usize = 63;

/// Why a string or DNS name is not a usable host name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HostNameError {
    /// The name is empty or the root (`.`).
    #[error("empty host name")]
    Empty,
    /// The name is longer than [`MAX_HOST_NAME_LEN`] characters.
    #[error("host name longer than {MAX_HOST_NAME_LEN} characters")]
    TooLong,
    /// A label is empty (two dots in a row, or a leading dot).
    #[error("empty label in host name")]
    EmptyLabel,
    /// A label is longer than [`MAX_LABEL_LEN`] octets.
    #[error("label longer than {MAX_LABEL_LEN} octets in host name")]
    LabelTooLong,
    /// A label holds a byte other than a letter, digit or hyphen, or starts or
    /// ends with a hyphen (RFC 5321 §4.1.2 `sub-domain`). The byte is given.
    #[error("invalid byte 0x{0:02x} in host name")]
    InvalidByte(u8),
}

/// A host or domain name usable as an SMTP destination: the RFC 5321 §4.1.2
/// `Domain` syntax (LDH labels), stored in lower case without the root dot.
///
/// ```text
/// Domain     = sub-domain *("." sub-domain)
/// sub-domain = Let-dig [Ldh-str]
/// Let-dig    = ALPHA / DIGIT
/// Ldh-str    = *( ALPHA / DIGIT / "-" ) Let-dig
/// ```
///
/// A trailing root dot is accepted on input and dropped. Internationalized
/// names must be converted to A-labels (`xn--…`) by the caller. DNS names are
/// compared without regard to case (RFC 4343), so the stored form is lower
/// case and `==` is the DNS comparison. Names taken from an answer (MX
/// exchanges, CNAME targets) pass the same check, so a hostile answer cannot
/// hand a transport a name holding spaces, control bytes or escapes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName(String);

impl HostName {
    /// Validates `name` (an optional trailing `.` is dropped).
    pub fn parse(name: &str) -> Result<Self, HostNameError> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return Err(HostNameError::Empty);
        }
        if name.len() > MAX_HOST_NAME_LEN {
            return Err(HostNameError::TooLong);
        }
        for label in name.split('.') {
            check_label(label.as_bytes())?;
        }
        Ok(Self(name.to_ascii_lowercase()))
    }

    /// Validates a name decoded from a DNS message.
    pub(crate) fn from_dns(name: &Name) -> Result<Self, HostNameError> {
        if name.is_root() {
            return Err(HostNameError::Empty);
        }
        let mut text = String::new();
        for label in name.iter() {
            check_label(label)?;
            if !text.is_empty() {
                text.push('.');
            }
            // check_label admitted only ASCII letters, digits and hyphens.
            text.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
            if text.len() > MAX_HOST_NAME_LEN {
                return Err(HostNameError::TooLong);
            }
        }
        Ok(Self(text))
    }

    /// The fully qualified DNS name (with the root label) for a question.
    pub(crate) fn to_dns(&self) -> Name {
        // A validated HostName is 1..=253 characters of LDH labels of 1..=63
        // octets, which is always a valid fully qualified DNS name.
        let mut name = Name::from_ascii(&self.0).expect("validated host name is a valid DNS name");
        name.set_fqdn(true);
        name
    }

    /// The name in lower case, without the root dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks one label against `sub-domain` and RFC 1035 §2.3.4.
fn check_label(label: &[u8]) -> Result<(), HostNameError> {
    let (Some(&first), Some(&last)) = (label.first(), label.last()) else {
        return Err(HostNameError::EmptyLabel);
    };
    if label.len() > MAX_LABEL_LEN {
        return Err(HostNameError::LabelTooLong);
    }
    if let Some(&bad) = label
        .iter()
        .find(|b| !(b.is_ascii_alphanumeric() || **b == b'-'))
    {
        return Err(HostNameError::InvalidByte(bad));
    }
    for edge in [first, last] {
        if edge == b'-' {
            return Err(HostNameError::InvalidByte(edge));
        }
    }
    Ok(())
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostName({:?})", self.0)
    }
}

impl std::str::FromStr for HostName {
    type Err = HostNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let table: [(&str, Result<&str, HostNameError>); 14] = [
            ("Example.ORG", Ok("example.org")),
            ("example.org.", Ok("example.org")),
            ("a", Ok("a")),
            ("1-2.x9", Ok("1-2.x9")),
            ("", Err(HostNameError::Empty)),
            (".", Err(HostNameError::Empty)),
            ("a..b", Err(HostNameError::EmptyLabel)),
            (".a", Err(HostNameError::EmptyLabel)),
            ("-a.b", Err(HostNameError::InvalidByte(b'-'))),
            ("a-.b", Err(HostNameError::InvalidByte(b'-'))),
            ("a_b.c", Err(HostNameError::InvalidByte(b'_'))),
            ("a b", Err(HostNameError::InvalidByte(b' '))),
            ("a\r\nb", Err(HostNameError::InvalidByte(b'\r'))),
            ("é.fr", Err(HostNameError::InvalidByte(0xc3))),
        ];
        for (input, expected) in table {
            let parsed = HostName::parse(input);
            assert_eq!(
                parsed.as_ref().map(HostName::as_str),
                expected.as_ref().map(|s| *s),
                "{input:?}"
            );
        }
        assert_eq!(
            HostName::parse(&"a".repeat(64)),
            Err(HostNameError::LabelTooLong)
        );
        let long = vec!["a".repeat(63); 4].join(".");
        assert_eq!(long.len(), 255);
        assert_eq!(HostName::parse(&long), Err(HostNameError::TooLong));
        let max = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(61));
        assert_eq!(max.len(), MAX_HOST_NAME_LEN);
        assert!(HostName::parse(&max).is_ok());
        assert!(HostName::parse(&format!("{max}.")).is_ok());
        assert_eq!(
            HostName::parse(&format!("{max}b")),
            Err(HostNameError::TooLong)
        );
    }

    #[test]
    fn dns_round_trip() {
        let host = HostName::parse("Mx1.Example.org").unwrap();
        let dns = host.to_dns();
        assert!(dns.is_fqdn());
        assert_eq!(HostName::from_dns(&dns).unwrap(), host);
        assert_eq!(HostName::from_dns(&Name::root()), Err(HostNameError::Empty));
        let bad = Name::from_ascii("a_b.example.").unwrap();
        assert_eq!(
            HostName::from_dns(&bad),
            Err(HostNameError::InvalidByte(b'_'))
        );
    }
}
