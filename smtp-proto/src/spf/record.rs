//! SPF records (RFC 7208 §4.5, §4.6, §5, §6), parsed strictly into typed
//! terms before anything is evaluated (§4.6: a syntax error anywhere makes
//! the whole record a `permerror`, without further interpretation).
//!
//! ```text
//! record           = version terms *SP
//! version          = "v=spf1"
//! terms            = *( 1*SP ( directive / modifier ) )
//! directive        = [ qualifier ] mechanism
//! qualifier        = "+" / "-" / "?" / "~"
//! mechanism        = ( all / include / a / mx / ptr / ip4 / ip6 / exists )
//! all              = "all"
//! include          = "include"  ":" domain-spec
//! a                = "a"      [ ":" domain-spec ] [ dual-cidr-length ]
//! mx               = "mx"     [ ":" domain-spec ] [ dual-cidr-length ]
//! ptr              = "ptr"    [ ":" domain-spec ]
//! ip4              = "ip4"      ":" ip4-network   [ ip4-cidr-length ]
//! ip6              = "ip6"      ":" ip6-network   [ ip6-cidr-length ]
//! exists           = "exists"   ":" domain-spec
//! dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ]
//! ip4-cidr-length  = "/" ("0" / %x31-39 0*1DIGIT) ; value range 0-32
//! ip6-cidr-length  = "/" ("0" / %x31-39 0*2DIGIT) ; value range 0-128
//! modifier         = redirect / explanation / unknown-modifier
//! redirect         = "redirect" "=" domain-spec
//! explanation      = "exp" "=" domain-spec
//! unknown-modifier = name "=" macro-string
//! name             = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
//! ```

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use super::macros::{MacroError, MacroString};

/// Why a TXT record is not a valid SPF record (each is a `permerror`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record does not start with `v=spf1` followed by a space or its
    /// end (such TXT records are not SPF records at all, RFC 7208 §4.5).
    #[error("not an SPF record (no \"v=spf1\")")]
    NotSpf,
    /// A byte outside 7-bit ASCII (RFC 7208 §3.1).
    #[error("non-ASCII byte in SPF record")]
    NonAscii,
    /// A term that is neither a known mechanism nor a modifier.
    #[error("unknown mechanism in term {0:?}")]
    UnknownMechanism(String),
    /// A mechanism whose argument does not fit its grammar.
    #[error("invalid term {term:?}: {why}")]
    InvalidTerm {
        /// The term as written.
        term: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A macro string that does not parse.
    #[error("invalid macro in term {term:?}: {error}")]
    Macro {
        /// The term as written.
        term: String,
        /// The macro error.
        error: MacroError,
    },
    /// `redirect=` or `exp=` given twice (RFC 7208 §6).
    #[error("modifier {0}= appears more than once")]
    DuplicateModifier(&'static str),
}

/// A directive's qualifier (RFC 7208 §4.6.2): the result when its
/// mechanism matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qualifier {
    /// `+` (the default).
    Pass,
    /// `-`.
    Fail,
    /// `~`.
    SoftFail,
    /// `?`.
    Neutral,
}

impl Qualifier {
    fn as_char(self) -> char {
        match self {
            Self::Pass => '+',
            Self::Fail => '-',
            Self::SoftFail => '~',
            Self::Neutral => '?',
        }
    }
}

/// A mechanism (RFC 7208 §5). Domain specifications are macro strings;
/// `None` means the current domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// `all`: always matches.
    All,
    /// `include:<domain-spec>`: matches when the named policy passes.
    Include(MacroString),
    /// `a[:domain][/cidr4][//cidr6]`.
    A {
        /// The domain to look up (the current domain when absent).
        domain: Option<MacroString>,
        /// Prefix length for IPv4 clients.
        cidr4: u8,
        /// Prefix length for IPv6 clients.
        cidr6: u8,
    },
    /// `mx[:domain][/cidr4][//cidr6]`.
    Mx {
        /// The domain whose MX hosts are looked up.
        domain: Option<MacroString>,
        /// Prefix length for IPv4 clients.
        cidr4: u8,
        /// Prefix length for IPv6 clients.
        cidr6: u8,
    },
    /// `ptr[:domain]` (RFC 7208 §5.5; discouraged, still evaluated).
    Ptr(Option<MacroString>),
    /// `ip4:<network>[/cidr]`.
    Ip4 {
        /// The network address.
        addr: Ipv4Addr,
        /// Its prefix length.
        prefix: u8,
    },
    /// `ip6:<network>[/cidr]`.
    Ip6 {
        /// The network address.
        addr: Ipv6Addr,
        /// Its prefix length.
        prefix: u8,
    },
    /// `exists:<domain-spec>`: matches when the name has an A record.
    Exists(MacroString),
}

impl Mechanism {
    /// Whether evaluating the mechanism queries DNS, and so counts toward
    /// the limit of 10 (RFC 7208 §4.6.4).
    pub fn queries_dns(&self) -> bool {
        !matches!(self, Self::All | Self::Ip4 { .. } | Self::Ip6 { .. })
    }
}

/// A qualifier and its mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Directive {
    /// The result when the mechanism matches.
    pub qualifier: Qualifier,
    /// The mechanism.
    pub mechanism: Mechanism,
}

/// A parsed SPF record: its directives in order, and the two modifiers
/// RFC 7208 defines (unknown modifiers are checked for syntax and
/// dropped, §6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    directives: Vec<Directive>,
    redirect: Option<MacroString>,
    explanation: Option<MacroString>,
}

/// Whether a TXT record is an SPF version 1 record (RFC 7208 §4.5):
/// `v=spf1` (any case) alone or followed by a space. Others are ignored.
pub fn is_spf_record(txt: &[u8]) -> bool {
    txt.len() >= 6 && txt[..6].eq_ignore_ascii_case(b"v=spf1") && (txt.len() == 6 || txt[6] == b' ')
}

impl Record {
    /// Parses a whole TXT record (its strings joined).
    pub fn parse(txt: &[u8]) -> Result<Self, RecordError> {
        if !is_spf_record(txt) {
            return Err(RecordError::NotSpf);
        }
        let text = std::str::from_utf8(txt)
            .ok()
            .filter(|t| t.is_ascii())
            .ok_or(RecordError::NonAscii)?;
        let mut record = Self {
            directives: Vec::new(),
            redirect: None,
            explanation: None,
        };
        for term in text[6..].split(' ').filter(|t| !t.is_empty()) {
            record.add_term(term)?;
        }
        Ok(record)
    }

    fn add_term(&mut self, term: &str) -> Result<(), RecordError> {
        if let Some((name, value)) = split_modifier(term) {
            let macro_err = |error| RecordError::Macro {
                term: term.to_owned(),
                error,
            };
            let value = MacroString::parse(value).map_err(macro_err)?;
            let (slot, label) = if name.eq_ignore_ascii_case("redirect") {
                (&mut self.redirect, "redirect")
            } else if name.eq_ignore_ascii_case("exp") {
                (&mut self.explanation, "exp")
            } else {
                // RFC 7208 §6: unrecognized modifiers are ignored (their
                // value was checked as a macro-string above).
                return Ok(());
            };
            if !value.is_domain_spec() {
                return Err(invalid(term, "not a domain-spec"));
            }
            if slot.is_some() {
                return Err(RecordError::DuplicateModifier(label));
            }
            *slot = Some(value);
            return Ok(());
        }
        self.directives.push(parse_directive(term)?);
        Ok(())
    }

    /// The directives, left to right.
    pub fn directives(&self) -> &[Directive] {
        &self.directives
    }

    /// The `redirect=` domain-spec.
    pub fn redirect(&self) -> Option<&MacroString> {
        self.redirect.as_ref()
    }

    /// The `exp=` domain-spec.
    pub fn explanation(&self) -> Option<&MacroString> {
        self.explanation.as_ref()
    }
}

impl fmt::Display for Record {
    /// The record in canonical form (explicit qualifiers, lower case).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("v=spf1")?;
        for d in &self.directives {
            write!(f, " {}", d.qualifier.as_char())?;
            let dual = |f: &mut fmt::Formatter<'_>, c4: u8, c6: u8| -> fmt::Result {
                if c4 != 32 {
                    write!(f, "/{c4}")?;
                }
                if c6 != 128 {
                    write!(f, "//{c6}")?;
                }
                Ok(())
            };
            match &d.mechanism {
                Mechanism::All => f.write_str("all")?,
                Mechanism::Include(m) => write!(f, "include:{m}")?,
                Mechanism::A {
                    domain,
                    cidr4,
                    cidr6,
                } => {
                    f.write_str("a")?;
                    if let Some(m) = domain {
                        write!(f, ":{m}")?;
                    }
                    dual(f, *cidr4, *cidr6)?;
                }
                Mechanism::Mx {
                    domain,
                    cidr4,
                    cidr6,
                } => {
                    f.write_str("mx")?;
                    if let Some(m) = domain {
                        write!(f, ":{m}")?;
                    }
                    dual(f, *cidr4, *cidr6)?;
                }
                Mechanism::Ptr(domain) => {
                    f.write_str("ptr")?;
                    if let Some(m) = domain {
                        write!(f, ":{m}")?;
                    }
                }
                Mechanism::Ip4 { addr, prefix } => write!(f, "ip4:{addr}/{prefix}")?,
                Mechanism::Ip6 { addr, prefix } => write!(f, "ip6:{addr}/{prefix}")?,
                Mechanism::Exists(m) => write!(f, "exists:{m}")?,
            }
        }
        if let Some(m) = &self.redirect {
            write!(f, " redirect={m}")?;
        }
        if let Some(m) = &self.explanation {
            write!(f, " exp={m}")?;
        }
        Ok(())
    }
}

fn invalid(term: &str, why: &'static str) -> RecordError {
    RecordError::InvalidTerm {
        term: term.to_owned(),
        why,
    }
}

/// `name "=" value`, if the term is a modifier.
fn split_modifier(term: &str) -> Option<(&str, &str)> {
    let eq = term.find('=')?;
    let name = &term[..eq];
    let b = name.as_bytes();
    let ok = b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    ok.then(|| (name, &term[eq + 1..]))
}

fn parse_directive(term: &str) -> Result<Directive, RecordError> {
    let (qualifier, rest) = match term.as_bytes().first() {
        Some(b'+') => (Qualifier::Pass, &term[1..]),
        Some(b'-') => (Qualifier::Fail, &term[1..]),
        Some(b'~') => (Qualifier::SoftFail, &term[1..]),
        Some(b'?') => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let name_len = rest.find([':', '/']).unwrap_or(rest.len());
    let (name, arg) = rest.split_at(name_len);
    let name = name.to_ascii_lowercase();
    let domain_spec = |text: &str| -> Result<MacroString, RecordError> {
        let m = MacroString::parse(text).map_err(|error| RecordError::Macro {
            term: term.to_owned(),
            error,
        })?;
        if m.is_domain_spec() {
            Ok(m)
        } else {
            Err(invalid(term, "not a domain-spec"))
        }
    };
    let required = |arg: &str| -> Result<MacroString, RecordError> {
        match arg.strip_prefix(':') {
            Some(spec) => domain_spec(spec),
            None => Err(invalid(term, "needs \":\" and a domain")),
        }
    };
    let mechanism = match name.as_str() {
        "all" => {
            if !arg.is_empty() {
                return Err(invalid(term, "all takes no argument"));
            }
            Mechanism::All
        }
        "include" => Mechanism::Include(required(arg)?),
        "exists" => Mechanism::Exists(required(arg)?),
        "ptr" => Mechanism::Ptr(match arg {
            "" => None,
            _ => Some(required(arg)?),
        }),
        "a" | "mx" => {
            let (spec, cidr4, cidr6) =
                split_dual_cidr(arg).ok_or_else(|| invalid(term, "bad CIDR length"))?;
            let domain = match spec {
                "" => None,
                _ => Some(required(spec)?),
            };
            if name == "a" {
                Mechanism::A {
                    domain,
                    cidr4,
                    cidr6,
                }
            } else {
                Mechanism::Mx {
                    domain,
                    cidr4,
                    cidr6,
                }
            }
        }
        "ip4" => {
            let net = arg
                .strip_prefix(':')
                .ok_or_else(|| invalid(term, "needs \":\" and an address"))?;
            let (addr, prefix) =
                split_cidr(net, 32).ok_or_else(|| invalid(term, "bad CIDR length"))?;
            let addr = parse_ip4(addr).ok_or_else(|| invalid(term, "bad IPv4 address"))?;
            Mechanism::Ip4 { addr, prefix }
        }
        "ip6" => {
            let net = arg
                .strip_prefix(':')
                .ok_or_else(|| invalid(term, "needs \":\" and an address"))?;
            let (addr, prefix) =
                split_cidr(net, 128).ok_or_else(|| invalid(term, "bad CIDR length"))?;
            let addr = addr
                .parse::<Ipv6Addr>()
                .ok()
                .filter(|_| {
                    addr.bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                })
                .ok_or_else(|| invalid(term, "bad IPv6 address"))?;
            Mechanism::Ip6 { addr, prefix }
        }
        _ => return Err(RecordError::UnknownMechanism(term.to_owned())),
    };
    Ok(Directive {
        qualifier,
        mechanism,
    })
}

/// A CIDR length: `"0" / %x31-39 *DIGIT`, at most `max`.
fn parse_len(digits: &str, max: u8) -> Option<u8> {
    let b = digits.as_bytes();
    if b.is_empty()
        || b.len() > 3
        || !b.iter().all(u8::is_ascii_digit)
        || (b.len() > 1 && b[0] == b'0')
    {
        return None;
    }
    digits.parse::<u8>().ok().filter(|n| *n <= max)
}

/// Splits `text[/len]` for ip4/ip6; `None` when a length is malformed.
fn split_cidr(text: &str, max: u8) -> Option<(&str, u8)> {
    match text.rfind('/') {
        Some(slash) => Some((&text[..slash], parse_len(&text[slash + 1..], max)?)),
        None => Some((text, max)),
    }
}

/// Splits `[:domain-spec][/len4][//len6]` from the right. A trailing
/// `/digits` that is not a valid length is an error rather than part of
/// the domain (a toplabel cannot hold `/`, and a macro cannot end in
/// digits after `}`).
fn split_dual_cidr(arg: &str) -> Option<(&str, u8, u8)> {
    let mut rest = arg;
    let mut cidr6 = 128;
    let mut cidr4 = 32;
    if let Some(pos) = rest.rfind("//") {
        let digits = &rest[pos + 2..];
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            cidr6 = parse_len(digits, 128)?;
            rest = &rest[..pos];
        }
    }
    if let Some(pos) = rest.rfind('/') {
        let digits = &rest[pos + 1..];
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            cidr4 = parse_len(digits, 32)?;
            rest = &rest[..pos];
        }
    }
    Some((rest, cidr4, cidr6))
}

/// A strict dotted quad: four decimal octets, no leading zeros.
fn parse_ip4(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        *octet = parse_len(part, 255)?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Record, RecordError> {
        Record::parse(s.as_bytes())
    }

    #[test]
    fn mechanisms_and_modifiers() {
        let r = parse("v=spf1 +a -mx:%{d}/24//64 ~ptr ?include:_spf.example.com ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{i}.x.example.org -all redirect=example.org exp=exp.%{d} moo=cow").unwrap();
        assert_eq!(r.directives().len(), 8);
        assert_eq!(
            r.directives()[1].mechanism,
            Mechanism::Mx {
                domain: Some(MacroString::parse("%{d}").unwrap()),
                cidr4: 24,
                cidr6: 64
            }
        );
        assert_eq!(r.redirect().unwrap().as_str(), "example.org");
        assert_eq!(r.explanation().unwrap().as_str(), "exp.%{d}");
        assert_eq!(
            r.to_string(),
            "v=spf1 +a -mx:%{d}/24//64 ~ptr ?include:_spf.example.com +ip4:192.0.2.0/24 +ip6:2001:db8::/32 +exists:%{i}.x.example.org -all redirect=example.org exp=exp.%{d}"
        );
        assert_eq!(parse("v=spf1").unwrap().directives().len(), 0);
        assert_eq!(
            parse("v=spf1 a//64").unwrap().directives()[0].mechanism,
            Mechanism::A {
                domain: None,
                cidr4: 32,
                cidr6: 64
            }
        );
        assert_eq!(
            parse("v=spf1 mx:%%%_/.Clara.de/27").unwrap().directives()[0].mechanism,
            Mechanism::Mx {
                domain: Some(MacroString::parse("%%%_/.Clara.de").unwrap()),
                cidr4: 27,
                cidr6: 128
            }
        );
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "v=spf1 moo",
            "v=spf1 a:",
            "v=spf1 a:foo",
            "v=spf1 a/33",
            "v=spf1 a/024",
            "v=spf1 a//129",
            "v=spf1 all:x",
            "v=spf1 ip4:1.2.3.4/33",
            "v=spf1 ip4:1.2.03.4",
            "v=spf1 ip4:1.2.3",
            "v=spf1 ip4:1.2.3.4//32",
            "v=spf1 ip6:2001:db8::zz",
            "v=spf1 ip6:2001:db8::/129",
            "v=spf1 include",
            "v=spf1 exists",
            "v=spf1 redirect=a.example redirect=b.example",
            "v=spf1 exp=a.example exp=b.example",
            "v=spf1 exp=",
            "v=spf1 moo=%",
            "v=spf1 a:%{c}.example.com",
            "v=spf1 =a",
            "v=spf1 a:example.com\r",
            "v=spf1 \u{e9}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("v=spf10"), Err(RecordError::NotSpf));
        assert!(is_spf_record(b"V=SpF1"));
        assert!(!is_spf_record(b"v=spf1\t-all"));
    }
}
