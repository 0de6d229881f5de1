//! Key records (RFC 6376 §3.6.1, RFC 8463 §4): the TXT record at
//! `selector._domainkey.domain`, parsed into types.

use std::fmt;

use thiserror::Error;

use super::der::{self, RsaComponents};
use super::signature::{KeyType, decode_base64};
use super::tag::{self, TagListError};

/// Why a TXT record is not a usable DKIM key record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyRecordError {
    /// The record is not a valid tag list.
    #[error("malformed key record: {0}")]
    Syntax(#[from] TagListError),
    /// `v=` is not `DKIM1` (RFC 6376 §3.6.1: such records are discarded).
    #[error("key record version is not DKIM1")]
    UnsupportedVersion,
    /// No `p=` tag (it is required; an empty one means revoked).
    #[error("key record without p=")]
    MissingPublicKey,
    /// `k=` names a key type this verifier does not know.
    #[error("unsupported key type k={0}")]
    UnsupportedKeyType(String),
    /// `p=` is not base64, not an RSA public key (`SubjectPublicKeyInfo`
    /// or `RSAPublicKey` DER) for `k=rsa`, or not 32 octets for
    /// `k=ed25519` (RFC 8463 §4.2).
    #[error("invalid public key in p=")]
    InvalidPublicKey,
}

/// The public key of a record.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKey {
    /// An empty `p=`: the key was revoked (RFC 6376 §3.6.1).
    Revoked,
    /// An RSA key.
    Rsa(RsaPublicKey),
    /// An Ed25519 key (RFC 8463 §4.2: the raw 32 octets).
    Ed25519([u8; 32]),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Revoked => f.write_str("Revoked"),
            Self::Rsa(key) => write!(f, "Rsa({} bits)", key.bits()),
            Self::Ed25519(_) => f.write_str("Ed25519"),
        }
    }
}

/// An RSA public key: modulus and exponent.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    pub(crate) components: RsaComponents,
}

impl RsaPublicKey {
    /// The modulus size in bits.
    pub fn bits(&self) -> u32 {
        self.components.bits()
    }

    /// The modulus, big-endian, without leading zeros.
    pub fn modulus(&self) -> &[u8] {
        &self.components.n
    }

    /// The public exponent, big-endian, without leading zeros.
    pub fn exponent(&self) -> &[u8] {
        &self.components.e
    }
}

/// A parsed key record (RFC 6376 §3.6.1).
///
/// Parsing is strict about the tags it reads (`v=`, `k=`, `p=`) and keeps
/// the others (`h=`, `s=`, `t=`) for the verifier to judge against the
/// signature; unknown tags are ignored (§3.6.1: "Unrecognized tags MUST be
/// ignored"), and so are unknown flags in `t=` and unknown hash
/// algorithms in `h=`. `v=`, when present, must be `DKIM1`; its position is
/// not checked (§3.6.1 wants it first; real records sometimes put it
/// later, and the value alone tells a DKIM record from another TXT record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    key_type: KeyType,
    public_key: PublicKey,
    hash_algorithms: Option<Vec<String>>,
    services: Option<Vec<String>>,
    testing: bool,
    strict_identity: bool,
}

impl KeyRecord {
    /// Parses a key record: the TXT record's strings joined
    /// ([`Txt::joined`](crate::dns::Txt::joined)).
    pub fn parse(record: &[u8]) -> Result<Self, KeyRecordError> {
        let tags = tag::parse_tag_list(record)?;
        let get = |name: &[u8]| tags.iter().find(|t| t.name == name).map(|t| t.value);
        if let Some(v) = get(b"v")
            && v != b"DKIM1"
        {
            return Err(KeyRecordError::UnsupportedVersion);
        }
        let key_type = match get(b"k") {
            None => KeyType::Rsa,
            Some(k) if k.eq_ignore_ascii_case(b"rsa") => KeyType::Rsa,
            Some(k) if k.eq_ignore_ascii_case(b"ed25519") => KeyType::Ed25519,
            Some(k) => {
                return Err(KeyRecordError::UnsupportedKeyType(
                    String::from_utf8_lossy(k).into_owned(),
                ));
            }
        };
        let p = tag::strip_fws(get(b"p").ok_or(KeyRecordError::MissingPublicKey)?);
        let public_key = if p.is_empty() {
            PublicKey::Revoked
        } else {
            let bytes = decode_base64(&p).ok_or(KeyRecordError::InvalidPublicKey)?;
            match key_type {
                KeyType::Rsa => PublicKey::Rsa(RsaPublicKey {
                    components: der::rsa_public_key(&bytes)
                        .ok_or(KeyRecordError::InvalidPublicKey)?,
                }),
                KeyType::Ed25519 => PublicKey::Ed25519(
                    bytes
                        .try_into()
                        .map_err(|_| KeyRecordError::InvalidPublicKey)?,
                ),
            }
        };
        let list = |name: &[u8]| {
            get(name).map(|value| {
                tag::split_list(value)
                    .map(|item| String::from_utf8_lossy(item).to_ascii_lowercase())
                    .collect::<Vec<_>>()
            })
        };
        let flags = list(b"t").unwrap_or_default();
        Ok(Self {
            key_type,
            public_key,
            hash_algorithms: list(b"h"),
            services: list(b"s"),
            testing: flags.iter().any(|f| f == "y"),
            strict_identity: flags.iter().any(|f| f == "s"),
        })
    }

    /// `k=` (default `rsa`).
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// `p=`.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Whether `h=` allows SHA-256 (it does when absent).
    pub fn allows_sha256(&self) -> bool {
        self.hash_algorithms
            .as_ref()
            .is_none_or(|list| list.iter().any(|h| h == "sha256"))
    }

    /// Whether `s=` allows email (`*` or `email`; it does when absent).
    pub fn allows_email(&self) -> bool {
        self.services
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s == "*" || s == "email"))
    }

    /// `t=y`: the domain is testing DKIM (RFC 6376 §3.6.1: results must not
    /// be treated differently from unsigned mail).
    pub fn is_testing(&self) -> bool {
        self.testing
    }

    /// `t=s`: the domain of `i=` must be exactly `d=`, not a subdomain.
    pub fn is_strict_identity(&self) -> bool {
        self.strict_identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8463 Appendix A.2.
    const RSA_1024: &str = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
    const ED25519: &str = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

    #[test]
    fn rfc8463_records() {
        let rsa = KeyRecord::parse(RSA_1024.as_bytes()).unwrap();
        assert_eq!(rsa.key_type(), KeyType::Rsa);
        let PublicKey::Rsa(key) = rsa.public_key() else {
            panic!()
        };
        assert_eq!(key.bits(), 1024);
        assert_eq!(key.exponent(), [1, 0, 1]);
        assert!(rsa.allows_sha256() && rsa.allows_email());
        assert!(!rsa.is_testing() && !rsa.is_strict_identity());
        let ed = KeyRecord::parse(ED25519.as_bytes()).unwrap();
        assert!(matches!(ed.public_key(), PublicKey::Ed25519(k) if k[0] == 0xd7));
    }

    #[test]
    fn tags_and_errors() {
        let rec =
            KeyRecord::parse(b"p=; t=y:s:q; h=sha1:SHA256; s=email; n=note; x=unknown").unwrap();
        assert_eq!(rec.public_key(), &PublicKey::Revoked);
        assert!(rec.is_testing() && rec.is_strict_identity());
        assert!(rec.allows_sha256() && rec.allows_email());
        let rec = KeyRecord::parse(b"p=; h=sha1; s=tlsrpt").unwrap();
        assert!(!rec.allows_sha256() && !rec.allows_email());
        assert!(KeyRecord::parse(b"p=; s=*").unwrap().allows_email());
        // Whitespace inside p= (folded TXT records) is removed.
        let folded = RSA_1024.replace("MIGf", "MI Gf");
        assert!(KeyRecord::parse(folded.as_bytes()).is_ok());

        use KeyRecordError::*;
        assert_eq!(
            KeyRecord::parse(b"v=DKIM2; p=").unwrap_err(),
            UnsupportedVersion
        );
        assert_eq!(KeyRecord::parse(b"v=DKIM1").unwrap_err(), MissingPublicKey);
        assert_eq!(
            KeyRecord::parse(b"k=dsa; p=AA==").unwrap_err(),
            UnsupportedKeyType("dsa".into())
        );
        assert_eq!(KeyRecord::parse(b"p=AA==").unwrap_err(), InvalidPublicKey);
        assert_eq!(
            KeyRecord::parse(b"k=ed25519; p=AA==").unwrap_err(),
            InvalidPublicKey
        );
        assert_eq!(KeyRecord::parse(b"p=!!").unwrap_err(), InvalidPublicKey);
        // Other TXT records at the same name are not key records.
        assert!(matches!(
            KeyRecord::parse(b"google-site-verification=x").unwrap_err(),
            Syntax(_)
        ));
        assert_eq!(
            KeyRecord::parse(b"v=spf1 -all").unwrap_err(),
            UnsupportedVersion
        );
    }
}
