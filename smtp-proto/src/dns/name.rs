//! DNS names: [`Name`] for any question or record this crate handles, and
//! [`HostName`], the stricter subset that SMTP can connect to.

use std::fmt;
use std::net::IpAddr;

use hickory_proto::rr::Name as WireName;
use thiserror::Error;

/// The longest name in text form, without the trailing root dot.
///
/// RFC 1035 §3.1 limits a name to 255 octets in wire form (length octets
/// included), which leaves 253 characters in dotted text. RFC 5321
/// §4.5.3.1.2 allows 255 octets for a domain, but no longer name can exist in
/// the DNS.
pub const MAX_NAME_LEN: usize = 253;

/// The longest host name in text form: the same bound as [`MAX_NAME_LEN`].
pub const MAX_HOST_NAME_LEN: usize = MAX_NAME_LEN;

/// The longest label. RFC 1035 §2.3.4.
pub const MAX_LABEL_LEN: usize = 63;

/// Why a string or DNS name is not a usable [`Name`] or [`HostName`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty or the root (`.`).
    #[error("empty name")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] characters.
    #[error("name longer than {MAX_NAME_LEN} characters")]
    TooLong,
    /// A label is empty (two dots in a row, or a leading dot).
    #[error("empty label in name")]
    EmptyLabel,
    /// A label is longer than [`MAX_LABEL_LEN`] octets.
    #[error("label longer than {MAX_LABEL_LEN} octets in name")]
    LabelTooLong,
    /// A label holds a byte the name kind does not allow (see [`Name`] and
    /// [`HostName`]). The byte is given.
    #[error("invalid byte 0x{0:02x} in name")]
    InvalidByte(u8),
}

/// The error of [`HostName`] validation: the same cases as for any name.
pub type HostNameError = NameError;

/// A DNS name as questions and answers use it: validated, lower case, no
/// root dot.
///
/// Each label is 1 to [`MAX_LABEL_LEN`] octets of printable ASCII other
/// than `.` and `\` (0x21–0x7E), or a space inside the label (never at its
/// edges); the whole name is at most [`MAX_NAME_LEN`]
/// characters (RFC 1035 §2.3.4, §3.1). That is wider than a host name on
/// purpose: the names that mail authentication asks about hold underscores
/// (`_dmarc.example.org`, `s1._domainkey.example.org`,
/// `_25._tcp.mx.example.org`, RFC 8552), and RFC 2317 reverse delegations
/// alias PTR names to labels such as `0/25`. It is narrower than the DNS
/// (RFC 2181 §11 allows any octet) so that the text form never needs
/// escaping: no control or 8-bit octets, no dot inside a label, no other
/// whitespace than an inner space. The space is there because SPF macro
/// expansion may build such names (RFC 7208 §7.3: `%_` is a space; the
/// RFC 7208 test suite's `macro-mania-in-domain` asks for one) and refusing
/// them would turn a valid lookup into a void one. A name outside this set,
/// in a question or an answer, is refused.
///
/// DNS names are compared without regard to case (RFC 4343), so the stored
/// form is lower case and `==` is the DNS comparison. A trailing root dot is
/// accepted on input and dropped.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

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
/// Every host name is a [`Name`] ([`HostName::to_name`]); a name is a host
/// name only if it passes this stricter check ([`HostName::from_name`]).
/// Internationalized names must be converted to A-labels (`xn--…`) by the
/// caller. Names taken from an answer (MX exchanges, CNAME targets) pass the
/// same check, so a hostile answer cannot hand a transport a name holding
/// spaces, control bytes or escapes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName(String);

/// Which bytes a label may hold.
#[derive(Clone, Copy)]
enum Kind {
    /// [`Name`]: printable ASCII but `.` and `\`, and inner spaces.
    Dns,
    /// [`HostName`]: letters, digits, inner hyphens.
    Host,
}

/// Validates dotted text (an optional trailing root dot is dropped) and
/// returns it in lower case.
fn parse_text(text: &str, kind: Kind) -> Result<String, NameError> {
    let text = text.strip_suffix('.').unwrap_or(text);
    if text.is_empty() {
        return Err(NameError::Empty);
    }
    if text.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    for label in text.split('.') {
        check_label(label.as_bytes(), kind)?;
    }
    Ok(text.to_ascii_lowercase())
}

/// Validates a name decoded from a DNS message and returns its text.
fn from_wire(name: &WireName) -> Result<String, NameError> {
    if name.is_root() {
        return Err(NameError::Empty);
    }
    let mut text = String::new();
    for label in name.iter() {
        check_label(label, Kind::Dns)?;
        if !text.is_empty() {
            text.push('.');
        }
        // check_label admitted only printable ASCII.
        text.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
        if text.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
    }
    Ok(text)
}

/// The fully qualified wire name of validated text.
fn to_wire(text: &str) -> WireName {
    // Raw labels, not `from_ascii`: a validated label is 1..=63 octets and
    // the name at most 255 octets in wire form, and raw labels are taken as
    // they are (no escape or IDNA processing of bytes such as `\` or `*`).
    let mut name = WireName::from_labels(text.split('.').map(str::as_bytes))
        .expect("a validated name is a valid DNS name");
    name.set_fqdn(true);
    name
}

/// Checks one label against the kind's alphabet and RFC 1035 §2.3.4.
fn check_label(label: &[u8], kind: Kind) -> Result<(), NameError> {
    let (Some(&first), Some(&last)) = (label.first(), label.last()) else {
        return Err(NameError::EmptyLabel);
    };
    if label.len() > MAX_LABEL_LEN {
        return Err(NameError::LabelTooLong);
    }
    match kind {
        Kind::Dns => {
            if let Some(&bad) = label
                .iter()
                .find(|&&b| !(b.is_ascii_graphic() || b == b' ') || b == b'.' || b == b'\\')
            {
                return Err(NameError::InvalidByte(bad));
            }
            for edge in [first, last] {
                if edge == b' ' {
                    return Err(NameError::InvalidByte(edge));
                }
            }
        }
        Kind::Host => {
            if let Some(&bad) = label
                .iter()
                .find(|b| !(b.is_ascii_alphanumeric() || **b == b'-'))
            {
                return Err(NameError::InvalidByte(bad));
            }
            for edge in [first, last] {
                if edge == b'-' {
                    return Err(NameError::InvalidByte(edge));
                }
            }
        }
    }
    Ok(())
}

impl Name {
    /// Validates `name` (an optional trailing `.` is dropped).
    pub fn parse(name: &str) -> Result<Self, NameError> {
        parse_text(name, Kind::Dns).map(Self)
    }

    /// The name PTR questions ask about for `ip` (RFC 1035 §3.5
    /// `in-addr.arpa`, RFC 3596 §2.5 `ip6.arpa`): `1.2.0.192.in-addr.arpa`
    /// for 192.0.2.1, one nibble per label for IPv6. An IPv4-mapped IPv6
    /// address is asked about as IPv6, as written.
    pub fn reverse(ip: IpAddr) -> Self {
        let mut text = String::with_capacity(72);
        match ip {
            IpAddr::V4(v4) => {
                for octet in v4.octets().iter().rev() {
                    text.push_str(&octet.to_string());
                    text.push('.');
                }
                text.push_str("in-addr.arpa");
            }
            IpAddr::V6(v6) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                for octet in v6.octets().iter().rev() {
                    for nibble in [octet & 0x0f, octet >> 4] {
                        text.push(char::from(HEX[usize::from(nibble)]));
                        text.push('.');
                    }
                }
                text.push_str("ip6.arpa");
            }
        }
        // At most 72 characters of digits, letters and dots.
        Self(text)
    }

    /// Validates a name decoded from a DNS message.
    pub(crate) fn from_wire(name: &WireName) -> Result<Self, NameError> {
        from_wire(name).map(Self)
    }

    /// The fully qualified DNS name (with the root label) for a message.
    pub(crate) fn to_wire(&self) -> WireName {
        to_wire(&self.0)
    }

    /// The name in lower case, without the root dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The labels, from the leftmost.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// Whether `self` is `zone` or a name below it (`a.example.org` is in
    /// `example.org`; `badexample.org` is not).
    pub fn is_in(&self, zone: &Self) -> bool {
        self.0 == zone.0
            || self
                .0
                .strip_suffix(zone.0.as_str())
                .is_some_and(|head| head.ends_with('.'))
    }

    /// The name as a host name, if it is one.
    pub fn to_host_name(&self) -> Result<HostName, NameError> {
        HostName::from_name(self)
    }
}

impl HostName {
    /// Validates `name` (an optional trailing `.` is dropped).
    pub fn parse(name: &str) -> Result<Self, NameError> {
        parse_text(name, Kind::Host).map(Self)
    }

    /// The host name `name` is, if its labels are LDH labels.
    pub fn from_name(name: &Name) -> Result<Self, NameError> {
        for label in name.labels() {
            check_label(label.as_bytes(), Kind::Host)?;
        }
        Ok(Self(name.0.clone()))
    }

    /// The host name as a DNS name (always valid: LDH is a subset).
    pub fn to_name(&self) -> Name {
        Name(self.0.clone())
    }

    /// The name in lower case, without the root dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<HostName> for Name {
    fn from(host: HostName) -> Self {
        Self(host.0)
    }
}

impl From<&HostName> for Name {
    fn from(host: &HostName) -> Self {
        host.to_name()
    }
}

impl TryFrom<&Name> for HostName {
    type Error = NameError;

    fn try_from(name: &Name) -> Result<Self, Self::Error> {
        Self::from_name(name)
    }
}

impl PartialEq<HostName> for Name {
    fn eq(&self, other: &HostName) -> bool {
        self.0 == other.0
    }
}

impl PartialEq<Name> for HostName {
    fn eq(&self, other: &Name) -> bool {
        self.0 == other.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({:?})", self.0)
    }
}

impl std::str::FromStr for Name {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
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
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_name_table() {
        let table: [(&str, Result<&str, NameError>); 14] = [
            ("Example.ORG", Ok("example.org")),
            ("example.org.", Ok("example.org")),
            ("a", Ok("a")),
            ("1-2.x9", Ok("1-2.x9")),
            ("", Err(NameError::Empty)),
            (".", Err(NameError::Empty)),
            ("a..b", Err(NameError::EmptyLabel)),
            (".a", Err(NameError::EmptyLabel)),
            ("-a.b", Err(NameError::InvalidByte(b'-'))),
            ("a-.b", Err(NameError::InvalidByte(b'-'))),
            ("a_b.c", Err(NameError::InvalidByte(b'_'))),
            ("a b", Err(NameError::InvalidByte(b' '))),
            ("a\r\nb", Err(NameError::InvalidByte(b'\r'))),
            ("é.fr", Err(NameError::InvalidByte(0xc3))),
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
            Err(NameError::LabelTooLong)
        );
        let long = vec!["a".repeat(63); 4].join(".");
        assert_eq!(long.len(), 255);
        assert_eq!(HostName::parse(&long), Err(NameError::TooLong));
        let max = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(61));
        assert_eq!(max.len(), MAX_HOST_NAME_LEN);
        assert!(HostName::parse(&max).is_ok());
        assert!(HostName::parse(&format!("{max}.")).is_ok());
        assert_eq!(HostName::parse(&format!("{max}b")), Err(NameError::TooLong));
    }

    #[test]
    fn dns_name_table() {
        let table: [(&str, Result<&str, NameError>); 15] = [
            ("_dmarc.Example.org", Ok("_dmarc.example.org")),
            (
                "s1._domainkey.example.org.",
                Ok("s1._domainkey.example.org"),
            ),
            ("_25._tcp.mx.example.org", Ok("_25._tcp.mx.example.org")),
            ("0/25.2.0.192.in-addr.arpa", Ok("0/25.2.0.192.in-addr.arpa")),
            ("-edge-.example", Ok("-edge-.example")),
            ("*.example", Ok("*.example")),
            ("", Err(NameError::Empty)),
            ("a..b", Err(NameError::EmptyLabel)),
            ("a b.c", Ok("a b.c")),
            (" a.b", Err(NameError::InvalidByte(b' '))),
            ("a.b ", Err(NameError::InvalidByte(b' '))),
            ("a\tb", Err(NameError::InvalidByte(b'\t'))),
            ("a\\b", Err(NameError::InvalidByte(b'\\'))),
            ("a\x7fb", Err(NameError::InvalidByte(0x7f))),
            ("é.fr", Err(NameError::InvalidByte(0xc3))),
        ];
        for (input, expected) in table {
            let parsed = Name::parse(input);
            assert_eq!(
                parsed.as_ref().map(Name::as_str),
                expected.as_ref().map(|s| *s),
                "{input:?}"
            );
        }
        assert_eq!(Name::parse(&"a".repeat(64)), Err(NameError::LabelTooLong));
        let long = vec!["_".repeat(63); 4].join(".");
        assert_eq!(Name::parse(&long), Err(NameError::TooLong));
    }

    #[test]
    fn wire_round_trip() {
        let host = HostName::parse("Mx1.Example.org").unwrap();
        let dns = host.to_name().to_wire();
        assert!(dns.is_fqdn());
        assert_eq!(Name::from_wire(&dns).unwrap(), host);
        assert_eq!(Name::from_wire(&WireName::root()), Err(NameError::Empty));
        let bad = WireName::from_ascii("a_b.example.").unwrap();
        let name = Name::from_wire(&bad).unwrap();
        assert_eq!(name.as_str(), "a_b.example");
        assert_eq!(name.to_host_name(), Err(NameError::InvalidByte(b'_')));
        for text in ["0/25.2.0.192.in-addr.arpa", "*.x", "a\"b.c", "_x._y"] {
            let name = Name::parse(text).unwrap();
            let wire = name.to_wire();
            assert_eq!(wire.iter().count(), name.labels().count());
            assert_eq!(Name::from_wire(&wire).unwrap(), name, "{text}");
        }
        let spaced = WireName::from_labels([b"a b".as_slice(), b"x"]).unwrap();
        assert_eq!(Name::from_wire(&spaced).unwrap().as_str(), "a b.x");
        let edge = WireName::from_labels([b"a ".as_slice(), b"x"]).unwrap();
        assert_eq!(Name::from_wire(&edge), Err(NameError::InvalidByte(b' ')));
        let tab = WireName::from_labels([b"a\tb".as_slice(), b"x"]).unwrap();
        assert_eq!(Name::from_wire(&tab), Err(NameError::InvalidByte(b'\t')));
    }

    #[test]
    fn conversions_and_zones() {
        let host = HostName::parse("mx.example.org").unwrap();
        let name = Name::from(&host);
        assert_eq!(name, host);
        assert_eq!(HostName::try_from(&name).unwrap(), host);
        let zone = Name::parse("example.org").unwrap();
        assert!(name.is_in(&zone));
        assert!(zone.is_in(&zone));
        assert!(!Name::parse("badexample.org").unwrap().is_in(&zone));
        assert!(!zone.is_in(&name));
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            Name::reverse("192.0.2.1".parse().unwrap()).as_str(),
            "1.2.0.192.in-addr.arpa"
        );
        // The example of RFC 3596 §2.5.
        let v6 = Name::reverse("4321:0:1:2:3:4:567:89ab".parse().unwrap());
        assert_eq!(
            v6.as_str(),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa"
        );
        assert_eq!(Name::parse(v6.as_str()).unwrap(), v6);
    }
}
