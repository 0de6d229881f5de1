//! The macro language of RFC 7208 §7: `macro-string`s in domain
//! specifications and explanation texts, parsed once into parts and
//! expanded against a [`MacroContext`].
//!
//! ```text
//! macro-string  = *( macro-expand / macro-literal )
//! macro-expand  = ( "%{" macro-letter transformers *delimiter "}" )
//!                 / "%%" / "%_" / "%-"
//! macro-literal = %x21-24 / %x26-7E       ; visible characters except "%"
//! macro-letter  = "s" / "l" / "o" / "d" / "i" / "p" / "h" / "c" / "r" / "t" / "v"
//! transformers  = *DIGIT [ "r" ]
//! delimiter     = "." / "-" / "+" / "," / "/" / "_" / "="
//! ```

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

/// The longest domain name a macro expansion may produce (RFC 7208 §7.3:
/// longer results lose labels from the left until they fit).
pub const MAX_EXPANDED_DOMAIN: usize = 253;

/// The longest expansion of one macro string, in octets. A record or
/// explanation is at most a DNS answer (64 KiB), but each `%{s}` in it
/// may stand for some 300 octets, three times that URL-escaped; this
/// bound keeps a hostile record from making megabytes of text. It is far
/// above anything useful: a domain-spec is cut to 253 characters, and an
/// explanation ends up in an SMTP reply line of at most 512 octets (RFC
/// 5321 §4.5.3.1.5).
pub const MAX_EXPANSION: usize = 8192;

/// Why a macro string is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MacroError {
    /// A `%` not followed by `{`, `%`, `_` or `-`, or at the end.
    #[error("'%' must be followed by '{{', '%', '_' or '-'")]
    BadPercent,
    /// A `%{` without its closing `}`.
    #[error("unterminated macro")]
    Unterminated,
    /// The letter is not one of `slodiphcrtv`.
    #[error("unknown macro letter {0:?}")]
    UnknownLetter(char),
    /// `c`, `r` or `t` outside an explanation text (RFC 7208 §7.2).
    #[error("macro letter {0:?} is allowed in exp= text only")]
    ExplanationOnly(char),
    /// A transformer count of zero (RFC 7208 §7.3: at least one).
    #[error("macro transformer count must be at least 1")]
    ZeroDigits,
    /// Something other than a delimiter after the transformers.
    #[error("invalid macro delimiter {0:?}")]
    BadDelimiter(char),
    /// A byte outside visible ASCII in a literal (space and control
    /// characters separate or break terms; 8-bit bytes are not SPF).
    #[error("invalid character 0x{0:02x} in macro string")]
    BadChar(u8),
}

/// A macro letter (RFC 7208 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MacroLetter {
    /// `s`: the sender (`local-part@domain`).
    Sender,
    /// `l`: the sender's local-part.
    LocalPart,
    /// `o`: the sender's domain.
    SenderDomain,
    /// `d`: the domain being checked (`<domain>` of `check_host()`).
    Domain,
    /// `i`: the client IP, dotted (IPv6 as 32 dotted nibbles).
    Ip,
    /// `p`: the validated domain name of the client IP (needs DNS).
    Validated,
    /// `v`: `in-addr` for IPv4, `ip6` for IPv6.
    IpVersion,
    /// `h`: the HELO/EHLO domain.
    Helo,
    /// `c`: the client IP in its usual text form (exp= only).
    ClientIp,
    /// `r`: the receiving host's domain (exp= only).
    Receiver,
    /// `t`: the current time in seconds since the epoch (exp= only).
    Timestamp,
}

impl MacroLetter {
    fn from_char(c: char) -> Option<Self> {
        Some(match c.to_ascii_lowercase() {
            's' => Self::Sender,
            'l' => Self::LocalPart,
            'o' => Self::SenderDomain,
            'd' => Self::Domain,
            'i' => Self::Ip,
            'p' => Self::Validated,
            'v' => Self::IpVersion,
            'h' => Self::Helo,
            'c' => Self::ClientIp,
            'r' => Self::Receiver,
            't' => Self::Timestamp,
            _ => return None,
        })
    }

    fn as_char(self) -> char {
        match self {
            Self::Sender => 's',
            Self::LocalPart => 'l',
            Self::SenderDomain => 'o',
            Self::Domain => 'd',
            Self::Ip => 'i',
            Self::Validated => 'p',
            Self::IpVersion => 'v',
            Self::Helo => 'h',
            Self::ClientIp => 'c',
            Self::Receiver => 'r',
            Self::Timestamp => 't',
        }
    }

    fn explanation_only(self) -> bool {
        matches!(self, Self::ClientIp | Self::Receiver | Self::Timestamp)
    }
}

/// One `%{…}` macro.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Macro {
    letter: MacroLetter,
    /// Upper-case letter: the expansion is URL-escaped.
    escape: bool,
    /// How many right-hand parts to keep.
    keep: Option<u32>,
    reverse: bool,
    /// The delimiters to split on (empty: `.`).
    delimiters: String,
}

impl Macro {
    /// The letter.
    pub fn letter(&self) -> MacroLetter {
        self.letter
    }

    /// Splits `value` on the delimiters, reverses if asked, keeps the
    /// right-hand parts asked for and joins with `.` (RFC 7208 §7.3).
    fn transform(&self, value: &str, out: &mut String) {
        let delimiters = if self.delimiters.is_empty() {
            "."
        } else {
            self.delimiters.as_str()
        };
        let mut parts: Vec<&str> = value.split(|c| delimiters.contains(c)).collect();
        if self.reverse {
            parts.reverse();
        }
        let skip = match self.keep {
            Some(n) => parts.len().saturating_sub(n as usize),
            None => 0,
        };
        let start = out.len();
        for (i, part) in parts[skip..].iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(part);
        }
        if self.escape {
            let raw = out.split_off(start);
            url_escape(&raw, out);
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn url_escape(raw: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in raw.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// A part of a [`MacroString`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Part {
    Literal(String),
    /// `%%` `%_` `%-`: their expansion.
    Escape(&'static str),
    Macro(Macro),
}

/// A parsed macro string: a domain-spec, an unknown modifier's value, or
/// an explanation text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MacroString {
    source: String,
    parts: Vec<Part>,
}

/// Which kind of text a macro string is: explanation texts allow `c`,
/// `r`, `t` and spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A domain-spec or a modifier's value.
    Domain,
    /// An explanation text (RFC 7208 §6.2: spaces allowed, `c`, `r`, `t`).
    Explanation,
}

impl MacroString {
    /// Parses a macro string of a domain-spec or modifier value (no `c`,
    /// `r`, `t`, no spaces).
    pub fn parse(text: &str) -> Result<Self, MacroError> {
        Self::parse_kind(text, Kind::Domain)
    }

    /// Parses an explanation text (RFC 7208 §6.2: the TXT record at the
    /// `exp=` domain): spaces and `c`, `r`, `t` allowed.
    pub fn parse_explanation(text: &str) -> Result<Self, MacroError> {
        Self::parse_kind(text, Kind::Explanation)
    }

    pub(crate) fn parse_kind(text: &str, kind: Kind) -> Result<Self, MacroError> {
        let bytes = text.as_bytes();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b != b'%' {
                let ok = (0x21..=0x7e).contains(&b) || (b == b' ' && kind == Kind::Explanation);
                if !ok {
                    return Err(MacroError::BadChar(b));
                }
                literal.push(char::from(b));
                i += 1;
                continue;
            }
            let escape = match bytes.get(i + 1) {
                Some(b'%') => Some("%"),
                Some(b'_') => Some(" "),
                Some(b'-') => Some("%20"),
                Some(b'{') => None,
                _ => return Err(MacroError::BadPercent),
            };
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            if let Some(escape) = escape {
                parts.push(Part::Escape(escape));
                i += 2;
                continue;
            }
            let body_start = i + 2;
            let Some(len) = bytes[body_start..].iter().position(|&b| b == b'}') else {
                return Err(MacroError::Unterminated);
            };
            parts.push(Part::Macro(parse_macro(
                &text[body_start..body_start + len],
                kind,
            )?));
            i = body_start + len + 1;
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self {
            source: text.to_owned(),
            parts,
        })
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether a `%{p}` macro occurs (its expansion needs DNS lookups).
    pub fn uses_validated_name(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Macro(m) if m.letter == MacroLetter::Validated))
    }

    /// Whether the string is a valid `domain-spec` (RFC 7208 §7.1): it
    /// ends in a macro-expand or in `"." toplabel ["."]`.
    pub(crate) fn is_domain_spec(&self) -> bool {
        match self.parts.last() {
            None => false,
            Some(Part::Macro(_) | Part::Escape(_)) => true,
            Some(Part::Literal(text)) => {
                let text = text.strip_suffix('.').unwrap_or(text);
                match text.rfind('.') {
                    Some(dot) => is_toplabel(&text[dot + 1..]),
                    None => false,
                }
            }
        }
    }

    /// Expands the string (RFC 7208 §7.3). `%{p}` expands to
    /// `ctx.validated`, or `unknown` when absent. `None` when the result
    /// would be longer than [`MAX_EXPANSION`].
    pub fn expand(&self, ctx: &MacroContext<'_>) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Escape(text) => out.push_str(text),
                Part::Macro(m) => {
                    let value = ctx.value(m.letter);
                    m.transform(&value, &mut out);
                }
            }
            if out.len() > MAX_EXPANSION {
                return None;
            }
        }
        Some(out)
    }

    /// Expands a domain-spec for a DNS question: a trailing dot dropped,
    /// and a result longer than [`MAX_EXPANDED_DOMAIN`] loses labels from
    /// the left until it fits (RFC 7208 §7.3). `None` when the expansion
    /// exceeds [`MAX_EXPANSION`].
    pub fn expand_domain(&self, ctx: &MacroContext<'_>) -> Option<String> {
        let mut out = self.expand(ctx)?;
        if out.ends_with('.') {
            out.pop();
        }
        while out.len() > MAX_EXPANDED_DOMAIN {
            match out.find('.') {
                Some(dot) => {
                    out.drain(..=dot);
                }
                None => break,
            }
        }
        Some(out)
    }
}

impl fmt::Display for MacroString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Debug for MacroString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacroString({:?})", self.source)
    }
}

/// `toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )`
fn is_toplabel(label: &str) -> bool {
    let b = label.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    if b.iter().all(u8::is_ascii_alphanumeric) {
        return b.iter().any(u8::is_ascii_alphabetic);
    }
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// Parses the inside of `%{…}`.
fn parse_macro(body: &str, kind: Kind) -> Result<Macro, MacroError> {
    let mut chars = body.chars();
    let Some(c) = chars.next() else {
        return Err(MacroError::UnknownLetter('}'));
    };
    let letter = MacroLetter::from_char(c).ok_or(MacroError::UnknownLetter(c))?;
    if kind == Kind::Domain && letter.explanation_only() {
        return Err(MacroError::ExplanationOnly(c));
    }
    let rest = chars.as_str();
    let digits_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let keep = if digits_len == 0 {
        None
    } else {
        // More digits than fit are as good as "all parts".
        let n = rest[..digits_len].parse::<u32>().unwrap_or(u32::MAX);
        if n == 0 {
            return Err(MacroError::ZeroDigits);
        }
        Some(n)
    };
    let mut rest = &rest[digits_len..];
    let reverse = if let Some(r) = rest.strip_prefix(['r', 'R']) {
        rest = r;
        true
    } else {
        false
    };
    if let Some(bad) = rest.chars().find(|c| !".-+,/_=".contains(*c)) {
        return Err(MacroError::BadDelimiter(bad));
    }
    Ok(Macro {
        letter,
        escape: c.is_ascii_uppercase(),
        keep,
        reverse,
        delimiters: rest.to_owned(),
    })
}

/// What macros expand to (RFC 7208 §7.2).
#[derive(Debug, Clone)]
pub struct MacroContext<'a> {
    /// The sender's local-part (`postmaster` when the identity has none).
    pub local_part: &'a str,
    /// The sender's domain.
    pub sender_domain: &'a str,
    /// The domain being checked (changes with `include` and `redirect`).
    pub domain: &'a str,
    /// The client IP.
    pub ip: IpAddr,
    /// The validated domain name of the IP (`%{p}`); `None` gives `unknown`.
    pub validated: Option<&'a str>,
    /// The HELO/EHLO domain.
    pub helo: &'a str,
    /// The receiving host's domain (`%{r}`).
    pub receiver: &'a str,
    /// Seconds since the Unix epoch (`%{t}`).
    pub timestamp: u64,
}

impl MacroContext<'_> {
    fn value(&self, letter: MacroLetter) -> String {
        match letter {
            MacroLetter::Sender => format!("{}@{}", self.local_part, self.sender_domain),
            MacroLetter::LocalPart => self.local_part.to_owned(),
            MacroLetter::SenderDomain => self.sender_domain.to_owned(),
            MacroLetter::Domain => self.domain.to_owned(),
            MacroLetter::Ip => dotted_ip(self.ip),
            MacroLetter::Validated => self.validated.unwrap_or("unknown").to_owned(),
            MacroLetter::IpVersion => match self.ip {
                IpAddr::V4(_) => "in-addr".to_owned(),
                IpAddr::V6(_) => "ip6".to_owned(),
            },
            MacroLetter::Helo => self.helo.to_owned(),
            MacroLetter::ClientIp => self.ip.to_string(),
            MacroLetter::Receiver => self.receiver.to_owned(),
            MacroLetter::Timestamp => self.timestamp.to_string(),
        }
    }
}

/// `%{i}`: IPv4 dotted decimal, IPv6 as 32 dot-separated nibbles, in
/// upper case as RFC 7208 §7.4's example writes them (DNS names compare
/// without case; explanations show them as written).
fn dotted_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            let mut s = String::with_capacity(63);
            for octet in v6.octets() {
                for nibble in [octet >> 4, octet & 0xf] {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push(char::from(HEX[usize::from(nibble)]));
                }
            }
            s
        }
    }
}

impl fmt::Display for MacroLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> MacroContext<'static> {
        MacroContext {
            local_part: "strong-bad",
            sender_domain: "email.example.com",
            domain: "email.example.com",
            ip: "192.0.2.3".parse().unwrap(),
            validated: Some("mx.example.org"),
            helo: "mx.example.org",
            receiver: "example.net",
            timestamp: 1_000_000,
        }
    }

    fn expand(s: &str) -> String {
        MacroString::parse_explanation(s)
            .unwrap()
            .expand(&ctx())
            .unwrap()
    }

    /// The examples of RFC 7208 §7.4.
    #[test]
    fn rfc_examples() {
        assert_eq!(expand("%{s}"), "strong-bad@email.example.com");
        assert_eq!(expand("%{o}"), "email.example.com");
        assert_eq!(expand("%{d}"), "email.example.com");
        assert_eq!(expand("%{d4}"), "email.example.com");
        assert_eq!(expand("%{d3}"), "email.example.com");
        assert_eq!(expand("%{d2}"), "example.com");
        assert_eq!(expand("%{d1}"), "com");
        assert_eq!(expand("%{dr}"), "com.example.email");
        assert_eq!(expand("%{d2r}"), "example.email");
        assert_eq!(expand("%{l}"), "strong-bad");
        assert_eq!(expand("%{l-}"), "strong.bad");
        assert_eq!(expand("%{lr}"), "strong-bad");
        assert_eq!(expand("%{lr-}"), "bad.strong");
        assert_eq!(expand("%{l1r-}"), "strong");
        assert_eq!(
            expand("%{ir}.%{v}._spf.%{d2}"),
            "3.2.0.192.in-addr._spf.example.com"
        );
        assert_eq!(
            expand("%{lr-}.lp._spf.%{d2}"),
            "bad.strong.lp._spf.example.com"
        );
        assert_eq!(
            expand("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}"),
            "3.2.0.192.in-addr.strong.lp._spf.example.com"
        );
        assert_eq!(
            expand("%{d2}.trusted-domains.example.net"),
            "example.com.trusted-domains.example.net"
        );
        assert_eq!(expand("%{c} %{r} %{t}"), "192.0.2.3 example.net 1000000");
        assert_eq!(expand("%%%_%-"), "% %20");
        assert_eq!(expand("%{S}"), "strong-bad%40email.example.com");
    }

    #[test]
    fn ipv6_nibbles() {
        let mut c = ctx();
        c.ip = "2001:db8::cb01".parse().unwrap();
        let m = MacroString::parse("%{ir}.%{v}._spf.%{d2}").unwrap();
        assert_eq!(
            m.expand(&c).unwrap(),
            "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com"
        );
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(MacroString::parse("%"), Err(MacroError::BadPercent));
        assert_eq!(MacroString::parse("%x"), Err(MacroError::BadPercent));
        assert_eq!(MacroString::parse("%{d"), Err(MacroError::Unterminated));
        assert_eq!(
            MacroString::parse("%{x}"),
            Err(MacroError::UnknownLetter('x'))
        );
        assert_eq!(MacroString::parse("%{d0}"), Err(MacroError::ZeroDigits));
        assert_eq!(
            MacroString::parse("%{c}"),
            Err(MacroError::ExplanationOnly('c'))
        );
        assert_eq!(
            MacroString::parse("%{d2x}"),
            Err(MacroError::BadDelimiter('x'))
        );
        assert_eq!(MacroString::parse("a b"), Err(MacroError::BadChar(b' ')));
        assert!(MacroString::parse_explanation("a b").is_ok());
    }

    #[test]
    fn domain_end() {
        for ok in [
            "example.com",
            "example.com.",
            "%{d}",
            "foo.%{d}",
            "a.b-c",
            "x.1-2",
        ] {
            assert!(MacroString::parse(ok).unwrap().is_domain_spec(), "{ok}");
        }
        for bad in [
            "com",
            "example.123",
            "example.-a",
            "%{d}com",
            "example.com..",
            "",
        ] {
            assert!(!MacroString::parse(bad).unwrap().is_domain_spec(), "{bad}");
        }
    }

    #[test]
    fn expansion_is_bounded() {
        let m = MacroString::parse_explanation(&"%{S}".repeat(1000)).unwrap();
        assert_eq!(m.expand(&ctx()), None);
        let m = MacroString::parse(&format!("{}.example.com", "%{s}".repeat(300))).unwrap();
        assert_eq!(m.expand_domain(&ctx()), None);
        let m = MacroString::parse_explanation(&"%{S}".repeat(10)).unwrap();
        assert!(m.expand(&ctx()).is_some());
    }

    #[test]
    fn long_expansion_is_cut_from_the_left() {
        let label = "a".repeat(60);
        let text = format!("{label}.{label}.{label}.{label}.{label}.example.com");
        let m = MacroString::parse(&text).unwrap();
        let out = m.expand_domain(&ctx()).unwrap();
        assert!(out.len() <= MAX_EXPANDED_DOMAIN);
        assert!(out.ends_with(".example.com"));
        assert_eq!(out.split('.').count(), 5);
    }
}
