//! The `DKIM-Signature` header field (RFC 6376 §3.5), parsed into types.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use super::canon::Canonicalization;
use super::tag::{self, TagListError, TagSpec};
use crate::dns::{HostName, Name};

/// A signing algorithm (RFC 6376 §3.3, RFC 8463 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// `rsa-sha256`: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 6376 §3.3.1).
    RsaSha256,
    /// `ed25519-sha256`: Ed25519 over the SHA-256 of the header data
    /// (RFC 8463 §3).
    Ed25519Sha256,
}

impl Algorithm {
    /// The name in `a=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaSha256 => "rsa-sha256",
            Self::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    /// The key type (`k=`) the algorithm needs.
    pub fn key_type(self) -> KeyType {
        match self {
            Self::RsaSha256 => KeyType::Rsa,
            Self::Ed25519Sha256 => KeyType::Ed25519,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key type (`k=` of a key record, RFC 6376 §3.6.1, RFC 8463 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KeyType {
    /// `rsa`.
    Rsa,
    /// `ed25519`.
    Ed25519,
}

impl KeyType {
    /// The name in `k=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a `DKIM-Signature` field cannot be used (RFC 6376 §6.1.1: the
/// verifier ignores it and reports it).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The field is not a valid tag list.
    #[error("malformed tag list: {0}")]
    Syntax(#[from] TagListError),
    /// A required tag (`v`, `a`, `b`, `bh`, `d`, `h`, `s`) is missing.
    #[error("required tag {0}= missing")]
    MissingTag(&'static str),
    /// A tag's value breaks its grammar (RFC 6376 §3.5).
    #[error("invalid {0}= value")]
    InvalidValue(&'static str),
    /// `v=` is not `1`.
    #[error("unsupported version v={0}")]
    UnsupportedVersion(String),
    /// `a=` names an algorithm this verifier does not accept: an unknown
    /// one, or `rsa-sha1` (RFC 8301 §3.1: not to be used for verifying).
    #[error("unsupported algorithm a={0}")]
    UnsupportedAlgorithm(String),
    /// `c=` names an unknown canonicalization.
    #[error("unsupported canonicalization c={0}")]
    UnsupportedCanonicalization(String),
    /// `q=` does not offer `dns/txt`, the only query method (RFC 6376
    /// §3.5).
    #[error("no supported query method in q={0}")]
    UnsupportedQueryMethod(String),
    /// `h=` does not list `From` (RFC 6376 §5.4, §6.1.1).
    #[error("h= does not sign the From field")]
    FromNotSigned,
    /// The domain of `i=` is neither `d=` nor below it (RFC 6376 §3.5,
    /// §6.1.1).
    #[error("i= is not in the d= domain")]
    IdentityNotInDomain,
    /// `x=` is not after `t=` (RFC 6376 §3.5).
    #[error("x= is not later than t=")]
    ExpiryNotAfterTimestamp,
}

/// The agent or user identifier of `i=` (RFC 6376 §3.5): an optional local
/// part and a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    local_part: Option<String>,
    domain: HostName,
}

impl Identity {
    /// Reads `[local-part]@domain`; the local part may hold any printable
    /// text (it was quoted-printable in the field), the domain must be a
    /// host name.
    pub fn parse(text: &str) -> Option<Self> {
        let (local, domain) = text.rsplit_once('@')?;
        if local.chars().any(char::is_control) {
            return None;
        }
        let domain = HostName::parse(domain).ok()?;
        Some(Self {
            local_part: (!local.is_empty()).then(|| local.to_owned()),
            domain,
        })
    }

    /// The local part, if any.
    pub fn local_part(&self) -> Option<&str> {
        self.local_part.as_deref()
    }

    /// The domain.
    pub fn domain(&self) -> &HostName {
        &self.domain
    }

    /// Whether the domain is `domain` or a subdomain of it.
    pub fn is_in(&self, domain: &HostName) -> bool {
        self.domain.to_name().is_in(&domain.to_name())
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}",
            self.local_part.as_deref().unwrap_or(""),
            self.domain
        )
    }
}

/// A parsed `DKIM-Signature` field (RFC 6376 §3.5).
///
/// Parsing checks every tag this crate uses against its grammar and the
/// rules of §6.1.1 that need no DNS: version, algorithm, canonicalization,
/// query method, `From` signed, `i=` inside `d=`, `x=` after `t=`. Unknown
/// tags are ignored (§3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    algorithm: Algorithm,
    signature: Vec<u8>,
    body_hash: Vec<u8>,
    header_canonicalization: Canonicalization,
    body_canonicalization: Canonicalization,
    domain: HostName,
    signed_headers: Vec<String>,
    identity: Option<Identity>,
    body_length: Option<u64>,
    selector: String,
    timestamp: Option<u64>,
    expiration: Option<u64>,
    copied_headers: Option<String>,
    b_prefix: String,
    key_name: Name,
}

/// Tags read by [`Signature::parse`], for error messages.
const REQUIRED: [&str; 7] = ["v", "a", "b", "bh", "d", "h", "s"];

impl Signature {
    /// Parses the value of a `DKIM-Signature` field (everything after the
    /// colon, folding included, with or without the final CRLF).
    pub fn parse(value: &[u8]) -> Result<Self, SignatureError> {
        let value = value.strip_suffix(b"\r\n").unwrap_or(value);
        let tags = tag::parse_tag_list(value)?;
        Self::from_tags(&tags)
    }

    pub(crate) fn from_tags(tags: &[TagSpec<'_>]) -> Result<Self, SignatureError> {
        let get = |name: &str| {
            tags.iter()
                .find(|t| t.name == name.as_bytes())
                .map(|t| t.value)
        };
        for name in REQUIRED {
            if get(name).is_none() {
                return Err(SignatureError::MissingTag(name));
            }
        }
        let required = |name: &'static str| get(name).ok_or(SignatureError::MissingTag(name));

        let version = required("v")?;
        if version != b"1" {
            return Err(SignatureError::UnsupportedVersion(lossy(version)));
        }

        let a = required("a")?;
        let algorithm = if a.eq_ignore_ascii_case(b"rsa-sha256") {
            Algorithm::RsaSha256
        } else if a.eq_ignore_ascii_case(b"ed25519-sha256") {
            Algorithm::Ed25519Sha256
        } else if is_algorithm_syntax(a) {
            return Err(SignatureError::UnsupportedAlgorithm(lossy(a)));
        } else {
            return Err(SignatureError::InvalidValue("a"));
        };

        let b_raw = tag::strip_fws(required("b")?);
        let signature = decode_base64(&b_raw).ok_or(SignatureError::InvalidValue("b"))?;
        if signature.is_empty() {
            return Err(SignatureError::InvalidValue("b"));
        }
        let body_hash = decode_base64(&tag::strip_fws(required("bh")?))
            .ok_or(SignatureError::InvalidValue("bh"))?;

        let (header_canonicalization, body_canonicalization) = match get("c") {
            None => (Canonicalization::Simple, Canonicalization::Simple),
            Some(c) => {
                let unsupported = || SignatureError::UnsupportedCanonicalization(lossy(c));
                let (h, b) = match c.iter().position(|&b| b == b'/') {
                    Some(slash) => (&c[..slash], Some(&c[slash + 1..])),
                    None => (c, None),
                };
                let h = Canonicalization::from_name(h).ok_or_else(unsupported)?;
                let b = match b {
                    Some(b) => Canonicalization::from_name(b).ok_or_else(unsupported)?,
                    None => Canonicalization::Simple,
                };
                (h, b)
            }
        };

        let d = required("d")?;
        let domain = parse_domain(d).ok_or(SignatureError::InvalidValue("d"))?;

        let h = required("h")?;
        let mut signed_headers = Vec::new();
        for name in tag::split_list(h) {
            if name.is_empty() || !name.iter().all(|&b| matches!(b, 33..=57 | 59..=126)) {
                return Err(SignatureError::InvalidValue("h"));
            }
            // ftext is ASCII.
            signed_headers.push(String::from_utf8_lossy(name).to_ascii_lowercase());
        }
        if !signed_headers.iter().any(|n| n == "from") {
            return Err(SignatureError::FromNotSigned);
        }

        let identity = match get("i") {
            None => None,
            Some(i) => {
                let decoded = tag::decode_dkim_quoted_printable(i)
                    .ok_or(SignatureError::InvalidValue("i"))?;
                let text =
                    String::from_utf8(decoded).map_err(|_| SignatureError::InvalidValue("i"))?;
                let identity = Identity::parse(&text).ok_or(SignatureError::InvalidValue("i"))?;
                if !identity.is_in(&domain) {
                    return Err(SignatureError::IdentityNotInDomain);
                }
                Some(identity)
            }
        };

        let body_length = match get("l") {
            None => None,
            Some(l) => Some(parse_digits(l, 76).ok_or(SignatureError::InvalidValue("l"))?),
        };

        if let Some(q) = get("q") {
            let mut any = false;
            for method in tag::split_list(q) {
                if method.is_empty() {
                    return Err(SignatureError::InvalidValue("q"));
                }
                any |= method.eq_ignore_ascii_case(b"dns/txt");
            }
            if !any {
                return Err(SignatureError::UnsupportedQueryMethod(lossy(q)));
            }
        }

        let s = required("s")?;
        let selector = parse_selector(s).ok_or(SignatureError::InvalidValue("s"))?;
        // The key's name must be a DNS name (at most 253 characters).
        let key_name = Name::parse(&format!("{selector}._domainkey.{domain}"))
            .map_err(|_| SignatureError::InvalidValue("s"))?;

        let timestamp = match get("t") {
            None => None,
            Some(t) => Some(parse_digits(t, 12).ok_or(SignatureError::InvalidValue("t"))?),
        };
        let expiration = match get("x") {
            None => None,
            Some(x) => Some(parse_digits(x, 12).ok_or(SignatureError::InvalidValue("x"))?),
        };
        if let (Some(t), Some(x)) = (timestamp, expiration)
            && x <= t
        {
            return Err(SignatureError::ExpiryNotAfterTimestamp);
        }

        let copied_headers = get("z").map(lossy);

        // RFC 6008 §4: header.b carries the first characters of b=.
        let b_prefix = String::from_utf8_lossy(&b_raw[..b_raw.len().min(8)]).into_owned();

        Ok(Self {
            algorithm,
            signature,
            body_hash,
            header_canonicalization,
            body_canonicalization,
            domain,
            signed_headers,
            identity,
            body_length,
            selector,
            timestamp,
            expiration,
            copied_headers,
            b_prefix,
            key_name,
        })
    }

    /// `a=`.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// `b=`, decoded.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// `bh=`, decoded.
    pub fn body_hash(&self) -> &[u8] {
        &self.body_hash
    }

    /// The header canonicalization of `c=` (default `simple`).
    pub fn header_canonicalization(&self) -> Canonicalization {
        self.header_canonicalization
    }

    /// The body canonicalization of `c=` (default `simple`).
    pub fn body_canonicalization(&self) -> Canonicalization {
        self.body_canonicalization
    }

    /// `d=`, in lower case.
    pub fn domain(&self) -> &HostName {
        &self.domain
    }

    /// `h=`: the signed field names, in lower case, in order.
    pub fn signed_headers(&self) -> &[String] {
        &self.signed_headers
    }

    /// `i=`, decoded; `None` when absent (it then defaults to `@` and
    /// `d=`).
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// `l=`: how many octets of the canonical body are signed. Values
    /// beyond `u64` (the grammar allows 76 digits) are clamped.
    pub fn body_length(&self) -> Option<u64> {
        self.body_length
    }

    /// `s=`.
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// `t=`, seconds since the Unix epoch.
    pub fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }

    /// `x=`, seconds since the Unix epoch.
    pub fn expiration(&self) -> Option<u64> {
        self.expiration
    }

    /// `z=`, as written (not interpreted).
    pub fn copied_headers(&self) -> Option<&str> {
        self.copied_headers.as_deref()
    }

    /// The name whose TXT record holds the key: `s._domainkey.d`
    /// (RFC 6376 §3.6.2.1).
    pub fn key_name(&self) -> &Name {
        &self.key_name
    }

    /// The first eight characters of `b=` (RFC 6008 `header.b`).
    pub fn b_prefix(&self) -> &str {
        &self.b_prefix
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `sig-a-tag-alg = sig-a-tag-k "-" sig-a-tag-h`, each `ALPHA *(ALPHA /
/// DIGIT)`.
fn is_algorithm_syntax(a: &[u8]) -> bool {
    let word = |w: &[u8]| {
        w.first().is_some_and(u8::is_ascii_alphabetic) && w.iter().all(u8::is_ascii_alphanumeric)
    };
    match a.iter().position(|&b| b == b'-') {
        Some(dash) => word(&a[..dash]) && word(&a[dash + 1..]),
        None => false,
    }
}

/// Decodes base64 with padding (RFC 4648 §4, what `b=`, `bh=` and `p=`
/// hold).
pub(crate) fn decode_base64(b64: &[u8]) -> Option<Vec<u8>> {
    STANDARD.decode(b64).ok()
}

/// 1 to `max` decimal digits (RFC 6376 §3.5: `1*12DIGIT` for `t=` and
/// `x=`, `1*76DIGIT` for `l=`); values beyond `u64` clamp.
fn parse_digits(value: &[u8], max: usize) -> Option<u64> {
    if value.is_empty() || value.len() > max || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// `d=`: `domain-name = sub-domain 1*("." sub-domain)` (RFC 6376 §3.5,
/// RFC 5321 §4.1.2): a host name of at least two labels.
fn parse_domain(value: &[u8]) -> Option<HostName> {
    let text = std::str::from_utf8(value).ok()?;
    let host = HostName::parse(text).ok()?;
    (host.as_str().contains('.') && !text.ends_with('.')).then_some(host)
}

/// `s=`: `selector = sub-domain *("." sub-domain)` (RFC 6376 §3.1). Labels
/// of letters, digits and hyphens — and underscores, which some providers'
/// selectors hold — lower-cased.
fn parse_selector(value: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?;
    let valid = text.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    valid.then(|| text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "v=1; a=rsa-sha256; c=relaxed/simple; d=Example.ORG;\r\n \
        s=sel; t=100; x=200; i=jo=3Be@mail.example.org; l=12; q=dns/txt;\r\n \
        h=From : To:subject; z=From:a|To:b;\r\n \
        bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n b=AAEC\r\n AwQF; future=tag";

    fn with(replace: &str, by: &str) -> Result<Signature, SignatureError> {
        assert!(GOOD.contains(replace), "{replace}");
        Signature::parse(GOOD.replacen(replace, by, 1).as_bytes())
    }

    #[test]
    fn every_tag() {
        let sig = Signature::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(sig.algorithm(), Algorithm::RsaSha256);
        assert_eq!(sig.signature(), [0, 1, 2, 3, 4, 5]);
        assert_eq!(sig.body_hash().len(), 32);
        assert_eq!(sig.header_canonicalization(), Canonicalization::Relaxed);
        assert_eq!(sig.body_canonicalization(), Canonicalization::Simple);
        assert_eq!(sig.domain().as_str(), "example.org");
        assert_eq!(sig.signed_headers(), ["from", "to", "subject"]);
        let identity = sig.identity().unwrap();
        assert_eq!(identity.local_part(), Some("jo;e"));
        assert_eq!(identity.to_string(), "jo;e@mail.example.org");
        assert_eq!(sig.body_length(), Some(12));
        assert_eq!(sig.selector(), "sel");
        assert_eq!(sig.timestamp(), Some(100));
        assert_eq!(sig.expiration(), Some(200));
        assert_eq!(sig.copied_headers(), Some("From:a|To:b"));
        assert_eq!(sig.key_name().as_str(), "sel._domainkey.example.org");
        assert_eq!(sig.b_prefix(), "AAECAwQF");
    }

    #[test]
    fn defaults() {
        let sig =
            Signature::parse(b"v=1; a=ed25519-sha256; d=a.b; s=s; h=from; bh=; b=AA==").unwrap();
        assert_eq!(sig.algorithm(), Algorithm::Ed25519Sha256);
        assert_eq!(sig.header_canonicalization(), Canonicalization::Simple);
        assert_eq!(sig.body_canonicalization(), Canonicalization::Simple);
        assert_eq!(sig.identity(), None);
        assert_eq!(sig.body_length(), None);
        let relaxed_header =
            Signature::parse(b"v=1; a=rsa-sha256; c=relaxed; d=a.b; s=s; h=from; bh=; b=AA==")
                .unwrap();
        assert_eq!(
            relaxed_header.body_canonicalization(),
            Canonicalization::Simple
        );
        assert_eq!(
            relaxed_header.header_canonicalization(),
            Canonicalization::Relaxed
        );
    }

    #[test]
    fn errors() {
        use SignatureError::*;
        assert_eq!(with("v=1; ", "").unwrap_err(), MissingTag("v"));
        assert_eq!(
            with("v=1", "v=2").unwrap_err(),
            UnsupportedVersion("2".into())
        );
        assert_eq!(
            with("rsa-sha256", "rsa-sha1").unwrap_err(),
            UnsupportedAlgorithm("rsa-sha1".into())
        );
        assert_eq!(
            with("rsa-sha256", "rsa_sha256").unwrap_err(),
            InvalidValue("a")
        );
        assert_eq!(
            with("relaxed/simple", "relaxed/nofws").unwrap_err(),
            UnsupportedCanonicalization("relaxed/nofws".into())
        );
        assert_eq!(
            with("dns/txt", "dns/json").unwrap_err(),
            UnsupportedQueryMethod("dns/json".into())
        );
        assert_eq!(with("From : ", "").unwrap_err(), FromNotSigned);
        assert_eq!(
            with("mail.example.org", "example.com").unwrap_err(),
            IdentityNotInDomain
        );
        assert_eq!(
            with("mail.example.org", "badexample.org").unwrap_err(),
            IdentityNotInDomain
        );
        assert_eq!(with("x=200", "x=100").unwrap_err(), ExpiryNotAfterTimestamp);
        assert_eq!(
            with("t=100", "t=1234567890123").unwrap_err(),
            InvalidValue("t")
        );
        assert_eq!(with("l=12", "l=-1").unwrap_err(), InvalidValue("l"));
        assert_eq!(with("b=AAEC", "b=A!EC").unwrap_err(), InvalidValue("b"));
        assert_eq!(
            with("b=AAEC\r\n AwQF", "b=").unwrap_err(),
            InvalidValue("b")
        );
        assert_eq!(
            with("d=Example.ORG", "d=org").unwrap_err(),
            InvalidValue("d")
        );
        assert_eq!(
            with("d=Example.ORG", "d=exa_mple.org").unwrap_err(),
            InvalidValue("d")
        );
        assert_eq!(with("s=sel", "s=-sel").unwrap_err(), InvalidValue("s"));
        assert_eq!(
            with("i=jo=3Be@", "i=jo=0Ae@").unwrap_err(),
            InvalidValue("i")
        );
        assert_eq!(
            with("From : To", "From : : To").unwrap_err(),
            InvalidValue("h")
        );
        assert!(matches!(with("v=1;", "v=1;;").unwrap_err(), Syntax(_)));
        assert!(matches!(
            with("s=sel;", "s=sel; s=other;").unwrap_err(),
            Syntax(TagListError::DuplicateTag(_))
        ));
        // l= may hold 76 digits; larger values clamp.
        assert_eq!(
            with("l=12", &format!("l={}", "9".repeat(76)))
                .unwrap()
                .body_length(),
            Some(u64::MAX)
        );
        assert_eq!(
            with("l=12", &format!("l={}", "9".repeat(77))).unwrap_err(),
            InvalidValue("l")
        );
    }
}
