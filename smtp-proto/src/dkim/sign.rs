//! Signing (RFC 6376 §5, RFC 8463): keys, the signer configuration, and
//! the signature of one message, its body hashed as it streams.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SecureRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use thiserror::Error;

use super::canon::{self, Canonicalization};
use super::der::{self, PemError};
use super::hash::{BodyHash, BodyHasher};
use super::header::{Fed, HeaderIndex, Splitter};
use super::signature::{Algorithm, Identity};
use super::tag;
use crate::dns::HostName;

/// The longest line of a `DKIM-Signature` field this crate writes, in
/// octets without the CRLF: RFC 5322 §2.1.1's 78. Only a single domain or
/// identity longer than a line can exceed it (no white space may be folded
/// into those).
pub const MAX_LINE: usize = 78;

/// The default bound on a message's header section when signing: 1 MiB.
/// The section is held in memory until it ends (the body is not); a
/// message of our own with a larger one is a bug, not mail.
pub const DEFAULT_MAX_SIGNED_HEADER_SECTION: usize = 1 << 20;

/// Why a private key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not PEM, or its PEM block is damaged.
    #[error("not a PEM private key ({0})")]
    Pem(&'static str),
    /// The PEM block is not a private key this crate reads (`PRIVATE KEY`,
    /// PKCS#8, or `RSA PRIVATE KEY`, PKCS#1): an encrypted key, a
    /// certificate, an OpenSSH key.
    #[error("unsupported PEM block {0:?} (want PRIVATE KEY or RSA PRIVATE KEY, unencrypted)")]
    UnsupportedPem(String),
    /// A PKCS#8 key of an algorithm other than RSA and Ed25519.
    #[error("unsupported key algorithm (want RSA or Ed25519)")]
    UnsupportedAlgorithm,
    /// ring refused the RSA key. ring signs with two-prime keys of 2048 to
    /// 4096 bits only (so 1024-bit keys, which RFC 8301 §3.2 still allows
    /// but advises against, cannot sign here).
    #[error("RSA key rejected ({0}); keys of 2048 to 4096 bits are supported")]
    Rsa(String),
    /// ring refused the Ed25519 key.
    #[error("Ed25519 key rejected ({0})")]
    Ed25519(String),
}

enum KeyPairInner {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key to sign with: RSA (2048–4096 bits) or Ed25519.
///
/// Cheap to clone (shared). `Debug` shows the algorithm and size, never the
/// key.
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<KeyPairInner>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, {} bits)", self.algorithm(), self.bits())
    }
}

impl SigningKey {
    /// Reads a PEM private key: `-----BEGIN PRIVATE KEY-----` (PKCS#8, RSA
    /// or Ed25519, as `openssl genpkey` writes) or `-----BEGIN RSA PRIVATE
    /// KEY-----` (PKCS#1, as `openssl genrsa` in OpenSSL 1.x writes).
    /// Encrypted keys are refused.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let block = der::parse_pem(pem).map_err(|e| {
            KeyError::Pem(match e {
                PemError::NoBlock => "no BEGIN line",
                PemError::Unterminated => "no END line",
                PemError::Encrypted => "encrypted",
                PemError::Base64 => "bad base64",
            })
        })?;
        match block.label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&block.der),
            "RSA PRIVATE KEY" => Self::rsa_from_pkcs1_der(&block.der),
            other => Err(KeyError::UnsupportedPem(other.to_owned())),
        }
    }

    /// Reads a DER PKCS#8 private key (RSA or Ed25519, v1 or v2).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        match der::pkcs8_algorithm(der) {
            Some(der::OID_RSA_ENCRYPTION) => RsaKeyPair::from_pkcs8(der)
                .map(|k| Self::new(KeyPairInner::Rsa(k)))
                .map_err(|e| KeyError::Rsa(e.to_string())),
            Some(der::OID_ED25519) => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map(|k| Self::new(KeyPairInner::Ed25519(k)))
                .map_err(|e| KeyError::Ed25519(e.to_string())),
            Some(_) => Err(KeyError::UnsupportedAlgorithm),
            None => Err(KeyError::Pem("not PKCS#8")),
        }
    }

    /// Reads a DER PKCS#1 `RSAPrivateKey`.
    pub fn rsa_from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        RsaKeyPair::from_der(der)
            .map(|k| Self::new(KeyPairInner::Rsa(k)))
            .map_err(|e| KeyError::Rsa(e.to_string()))
    }

    /// An Ed25519 key from its 32-octet seed (the private key as RFC 8032
    /// §5.1.5 and RFC 8463 Appendix A.1 write it).
    pub fn ed25519_from_seed(seed: &[u8]) -> Result<Self, KeyError> {
        Ed25519KeyPair::from_seed_unchecked(seed)
            .map(|k| Self::new(KeyPairInner::Ed25519(k)))
            .map_err(|e| KeyError::Ed25519(e.to_string()))
    }

    fn new(inner: KeyPairInner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        match &*self.inner {
            KeyPairInner::Rsa(_) => Algorithm::RsaSha256,
            KeyPairInner::Ed25519(_) => Algorithm::Ed25519Sha256,
        }
    }

    /// The key size in bits (the RSA modulus; 256 for Ed25519).
    pub fn bits(&self) -> u32 {
        match &*self.inner {
            KeyPairInner::Rsa(k) => {
                // A modulus of at most 4096 bits.
                u32::try_from(k.public().modulus_len() * 8).unwrap_or(u32::MAX)
            }
            KeyPairInner::Ed25519(_) => 256,
        }
    }

    /// The public key as `p=` carries it: `SubjectPublicKeyInfo` DER for
    /// RSA (RFC 6376 §3.6.1), the raw 32 octets for Ed25519 (RFC 8463
    /// §4.2).
    pub fn public_key(&self) -> Vec<u8> {
        match &*self.inner {
            KeyPairInner::Rsa(k) => der::rsa_spki(k.public().as_ref()),
            KeyPairInner::Ed25519(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// The TXT record to publish at `selector._domainkey.domain`:
    /// `v=DKIM1; k=rsa; p=…` (RFC 6376 §3.6.1). Longer than 255 octets for
    /// RSA: publish it as several character-strings of one record (RFC 6376
    /// §3.6.2.2).
    pub fn dns_record(&self) -> String {
        let key_type = self.algorithm().key_type();
        format!(
            "v=DKIM1; k={key_type}; p={}",
            STANDARD.encode(self.public_key())
        )
    }

    /// Signs the header data: RSASSA-PKCS1-v1_5 over SHA-256 (ring hashes),
    /// or Ed25519 over the SHA-256 of the data (RFC 8463 §3).
    pub(super) fn sign_data(
        &self,
        data: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, SignError> {
        match &*self.inner {
            KeyPairInner::Rsa(k) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, rng, data, &mut out)
                    .map_err(|_| SignError::Crypto)?;
                Ok(out)
            }
            KeyPairInner::Ed25519(k) => {
                let hash = ring::digest::digest(&ring::digest::SHA256, data);
                Ok(k.sign(hash.as_ref()).as_ref().to_vec())
            }
        }
    }
}

/// Which header fields a signature covers.
///
/// Each entry signs every instance of its field present in the message;
/// an *over-signed* entry is listed once more than it occurs, which signs
/// the absence of a further instance, so that nobody can add one (a
/// second `From`, a `Subject` where there was none) without breaking the
/// signature (RFC 6376 §5.4.2, §8.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderList {
    entries: Vec<(String, bool)>,
}

impl Default for HeaderList {
    /// The default list: [`HeaderList::DEFAULT_OVER_SIGNED`] entries
    /// over-signed, [`HeaderList::DEFAULT_SIGNED`] signed when present. Trace fields (`Received`,
    /// `Return-Path`) are never signed: relays add them (§5.4.1).
    fn default() -> Self {
        let mut list = Self::new();
        for name in Self::DEFAULT_OVER_SIGNED {
            list = list.over_sign(name);
        }
        for name in Self::DEFAULT_SIGNED {
            list = list.sign(name);
        }
        list
    }
}

impl HeaderList {
    /// Fields over-signed by default: those a reader sees or a client acts on
    /// (RFC 6376 §5.4.1's list), the MIME structure, and `List-Unsubscribe`
    /// with `List-Unsubscribe-Post`, which RFC 8058 §4 requires to be signed.
    pub const DEFAULT_OVER_SIGNED: &'static [&'static str] = &[
        "from",
        "reply-to",
        "subject",
        "date",
        "to",
        "cc",
        "message-id",
        "in-reply-to",
        "references",
        "sender",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ];

    /// Fields signed when present but not over-signed: those that relays
    /// and list servers legitimately add (RFC 6376 §5.4.1 lists the `Resent-*`
    /// and `List-*` fields as candidates).
    pub const DEFAULT_SIGNED: &'static [&'static str] = &[
        "resent-date",
        "resent-from",
        "resent-sender",
        "resent-to",
        "resent-cc",
        "resent-message-id",
        "list-help",
        "list-subscribe",
        "list-post",
        "list-owner",
        "list-archive",
        "content-id",
        "content-description",
    ];

    /// An empty list (`From` must be added before it can sign).
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Signs every instance of `name` present.
    pub fn sign(mut self, name: &str) -> Self {
        self.add(name, false);
        self
    }

    /// Signs every instance of `name` present and one more.
    pub fn over_sign(mut self, name: &str) -> Self {
        self.add(name, true);
        self
    }

    fn add(&mut self, name: &str, over: bool) {
        let name = name.to_ascii_lowercase();
        match self.entries.iter_mut().find(|e| e.0 == name) {
            Some(entry) => entry.1 |= over,
            None => self.entries.push((name, over)),
        }
    }

    /// The entries: lower-case name and whether it is over-signed.
    pub fn entries(&self) -> impl Iterator<Item = (&str, bool)> {
        self.entries.iter().map(|(n, o)| (n.as_str(), *o))
    }
}

/// Why a signer cannot be configured.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignerError {
    /// `d=` must be a domain name of at least two labels.
    #[error("invalid signing domain {0:?}")]
    InvalidDomain(String),
    /// `s=` must be labels of letters, digits, `-` and `_`.
    #[error("invalid selector {0:?}")]
    InvalidSelector(String),
    /// `i=` must be `[local-part]@domain` with the domain in `d=`.
    #[error("invalid identity {0:?} (want [local-part]@domain within the signing domain)")]
    InvalidIdentity(String),
    /// A header list entry is not a field name (RFC 5322 `ftext`).
    #[error("invalid header field name {0:?}")]
    InvalidHeaderName(String),
    /// The header list does not include `From` (RFC 6376 §5.4).
    #[error("the header list must include From")]
    FromNotListed,
}

/// Why a message could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignError {
    /// The message has no `From` field, which every signature must cover
    /// (RFC 6376 §5.4; RFC 5322 §3.6 requires one).
    #[error("the message has no From field")]
    NoFrom,
    /// The header section is larger than the signer's bound.
    #[error("header section larger than {limit} octets")]
    HeaderSectionTooLarge {
        /// The bound.
        limit: usize,
    },
    /// The body hash given to [`Signer::sign`] used the other body
    /// canonicalization.
    #[error("body hashed with {body} canonicalization, signer uses {signer}")]
    CanonicalizationMismatch {
        /// The signer's body canonicalization.
        signer: Canonicalization,
        /// The body hash's.
        body: Canonicalization,
    },
    /// The signing time is before 1970 (`t=` counts from the Unix epoch).
    #[error("signing time before the Unix epoch")]
    TimeBeforeEpoch,
    /// ring failed to sign (it does not with a key it accepted).
    #[error("signing failed")]
    Crypto,
}

/// One signing configuration: a key, the domain and selector that name
/// its public key in the DNS, and the signature's options.
///
/// Defaults: `relaxed/relaxed` canonicalization (it survives the white
/// space changes of relays; RFC 6376 §3.4), the [`HeaderList`] default,
/// `t=` on, no `x=`, no `i=` (verifiers read `@` and `d=`), never `l=`
/// (RFC 6376 §8.2: a body limit lets anyone append content).
///
/// Clone it freely: the key is shared.
#[derive(Debug, Clone)]
pub struct Signer {
    key: SigningKey,
    domain: HostName,
    selector: String,
    header_canonicalization: Canonicalization,
    body_canonicalization: Canonicalization,
    headers: HeaderList,
    identity: Option<Identity>,
    timestamp: bool,
    expiry: Option<Duration>,
}

impl Signer {
    /// Signs as `domain` with the key published at
    /// `selector._domainkey.domain`.
    pub fn new(key: SigningKey, domain: &str, selector: &str) -> Result<Self, SignerError> {
        let parsed = HostName::parse(domain)
            .ok()
            .filter(|d| d.as_str().contains('.') && !domain.ends_with('.'))
            .ok_or_else(|| SignerError::InvalidDomain(domain.to_owned()))?;
        let valid_selector = !selector.is_empty()
            && selector.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
            && crate::dns::Name::parse(&format!("{selector}._domainkey.{parsed}")).is_ok();
        if !valid_selector {
            return Err(SignerError::InvalidSelector(selector.to_owned()));
        }
        Ok(Self {
            key,
            domain: parsed,
            selector: selector.to_ascii_lowercase(),
            header_canonicalization: Canonicalization::Relaxed,
            body_canonicalization: Canonicalization::Relaxed,
            headers: HeaderList::default(),
            identity: None,
            timestamp: true,
            expiry: None,
        })
    }

    /// Sets `c=`.
    pub fn with_canonicalization(
        mut self,
        header: Canonicalization,
        body: Canonicalization,
    ) -> Self {
        self.header_canonicalization = header;
        self.body_canonicalization = body;
        self
    }

    /// Sets the fields to sign.
    pub fn with_headers(mut self, headers: HeaderList) -> Result<Self, SignerError> {
        for (name, _) in headers.entries() {
            if name.is_empty() || !name.bytes().all(|b| matches!(b, 33..=57 | 59..=126)) {
                return Err(SignerError::InvalidHeaderName(name.to_owned()));
            }
        }
        if !headers.entries().any(|(name, _)| name == "from") {
            return Err(SignerError::FromNotListed);
        }
        self.headers = headers;
        Ok(self)
    }

    /// Sets `i=`: `[local-part]@domain`, the domain being `d=` or below it.
    pub fn with_identity(mut self, identity: &str) -> Result<Self, SignerError> {
        let parsed = Identity::parse(identity)
            .filter(|i| i.is_in(&self.domain))
            .ok_or_else(|| SignerError::InvalidIdentity(identity.to_owned()))?;
        self.identity = Some(parsed);
        Ok(self)
    }

    /// Whether to write `t=`, the signing time (default on).
    pub fn with_timestamp(mut self, timestamp: bool) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Writes `x=`, the signing time plus `expiry` (whole seconds, at least
    /// one); implies `t=`.
    pub fn with_expiry(mut self, expiry: Duration) -> Self {
        self.expiry = Some(expiry.max(Duration::from_secs(1)));
        self
    }

    /// The key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// `d=`.
    pub fn domain(&self) -> &HostName {
        &self.domain
    }

    /// `s=`.
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The body canonicalization: the one a [`BodyHasher`] for
    /// [`sign`](Self::sign) must use.
    pub fn body_canonicalization(&self) -> Canonicalization {
        self.body_canonicalization
    }

    /// Signs a message whose body hash is known: `header_section` is the
    /// message's header fields (each with its CRLF; the empty line that
    /// ends them may follow and is ignored), `body` the hash of the body
    /// with [`body_canonicalization`](Self::body_canonicalization).
    ///
    /// `now` becomes `t=` (and the base of `x=`); `rng` is ring's
    /// `SecureRandom`, which its RSA signing API takes (PKCS#1 v1.5
    /// signatures themselves are deterministic; Ed25519 ignores it). The
    /// crate reads no clock and draws no randomness of its own: both come
    /// from the caller.
    pub fn sign(
        &self,
        header_section: &[u8],
        body: &BodyHash,
        now: SystemTime,
        rng: &dyn SecureRandom,
    ) -> Result<SignatureField, SignError> {
        if body.canonicalization() != self.body_canonicalization {
            return Err(SignError::CanonicalizationMismatch {
                signer: self.body_canonicalization,
                body: body.canonicalization(),
            });
        }
        let section = header_section
            .strip_suffix(b"\r\n\r\n")
            .map(|s| &header_section[..s.len() + 2])
            .unwrap_or(header_section);
        let index = HeaderIndex::new(section);
        if index.count(b"from") == 0 {
            return Err(SignError::NoFrom);
        }
        let seconds = if self.timestamp || self.expiry.is_some() {
            Some(
                now.duration_since(SystemTime::UNIX_EPOCH)
                    .map_err(|_| SignError::TimeBeforeEpoch)?
                    .as_secs(),
            )
        } else {
            None
        };

        // h=: each present instance, plus one for the over-signed.
        let mut names: Vec<&str> = Vec::new();
        for (name, over) in self.headers.entries() {
            let n = index.count(name.as_bytes()) + usize::from(over);
            names.extend(std::iter::repeat_n(name, n));
        }

        let mut field = Folder::new("DKIM-Signature:");
        field.tag("v=1;");
        field.tag(&format!("a={};", self.key.algorithm()));
        field.tag(&format!(
            "c={}/{};",
            self.header_canonicalization, self.body_canonicalization
        ));
        field.tag(&format!("d={};", self.domain));
        field.tag(&format!("s={};", self.selector));
        if let Some(t) = seconds {
            field.tag(&format!("t={t};"));
            if let Some(expiry) = self.expiry {
                field.tag(&format!("x={};", t.saturating_add(expiry.as_secs())));
            }
        }
        if let Some(identity) = &self.identity {
            field.tag(&format!(
                "i={};",
                tag::encode_dkim_quoted_printable(identity.to_string().as_bytes())
            ));
        }
        for (i, name) in names.iter().enumerate() {
            let piece = match (i, i + 1 == names.len()) {
                (0, true) => format!("h={name};"),
                (0, false) => format!("h={name}:"),
                (_, true) => format!("{name};"),
                (_, false) => format!("{name}:"),
            };
            if i == 0 {
                field.tag(&piece);
            } else {
                field.glued(&piece);
            }
        }
        field.tag(&format!("bh={};", body.to_base64()));
        field.start_b();

        // The header data: the selected fields, then this field without
        // its b= value and without a final CRLF (RFC 6376 §3.7).
        let mut data = Vec::with_capacity(section.len() + field.out.len());
        for i in index.select(names.iter().map(|n| n.as_bytes())) {
            let f = index.fields[i];
            canon::write_header(
                self.header_canonicalization,
                &section[f.start..f.end],
                &mut data,
            );
        }
        match self.header_canonicalization {
            Canonicalization::Simple => data.extend_from_slice(field.out.as_bytes()),
            Canonicalization::Relaxed => {
                canon::write_header(Canonicalization::Relaxed, field.out.as_bytes(), &mut data);
                // write_header ends the field with CRLF.
                data.truncate(data.len() - 2);
            }
        }

        let signature = self.key.sign_data(&data, rng)?;
        field.b_value(&STANDARD.encode(signature));
        field.out.push_str("\r\n");
        Ok(SignatureField {
            text: field.out,
            algorithm: self.key.algorithm(),
            domain: self.domain.clone(),
            selector: self.selector.clone(),
        })
    }

    /// Signs a whole message held in memory (header section, empty line,
    /// body). Streaming callers use [`MessageSigner`].
    pub fn sign_message(
        &self,
        message: &[u8],
        now: SystemTime,
        rng: &dyn SecureRandom,
    ) -> Result<SignatureField, SignError> {
        let mut splitter = Splitter::new(DEFAULT_MAX_SIGNED_HEADER_SECTION);
        let body = match splitter.feed(message) {
            Fed::Header => &[][..],
            Fed::HeaderDone { body } | Fed::Body(body) => body,
            Fed::Overflow => {
                return Err(SignError::HeaderSectionTooLarge {
                    limit: DEFAULT_MAX_SIGNED_HEADER_SECTION,
                });
            }
        };
        let mut hasher = BodyHasher::new(self.body_canonicalization);
        hasher.update(body);
        self.sign(splitter.section(), &hasher.finish(), now, rng)
    }
}

/// Builds a folded field: pieces joined by a space (tags) or nothing
/// (inside a value), a fold (CRLF SP) instead when a piece would pass
/// [`MAX_LINE`].
struct Folder {
    out: String,
    line: usize,
}

impl Folder {
    fn new(name: &str) -> Self {
        let mut out = String::with_capacity(1024);
        out.push_str(name);
        Self {
            out,
            line: name.len(),
        }
    }

    fn fold(&mut self) {
        self.out.push_str("\r\n ");
        self.line = 1;
    }

    /// A tag: after a space, or on a new line.
    fn tag(&mut self, piece: &str) {
        if self.line + 1 + piece.len() > MAX_LINE {
            self.fold();
        } else {
            self.out.push(' ');
            self.line += 1;
        }
        self.out.push_str(piece);
        self.line += piece.len();
    }

    /// A piece of a value: right after the previous one, or on a new line
    /// (folding white space is allowed around `:` in `h=`).
    fn glued(&mut self, piece: &str) {
        if self.line + piece.len() > MAX_LINE {
            self.fold();
        }
        self.out.push_str(piece);
        self.line += piece.len();
    }

    /// `b=`, with room for at least a few characters of its value on the
    /// same line: some verifiers keep white space between `b=` and the
    /// value in the hash, others drop it, so none is written there.
    fn start_b(&mut self) {
        const MIN_B: usize = 8;
        if self.line + 1 + 2 + MIN_B > MAX_LINE {
            self.fold();
        } else {
            self.out.push(' ');
            self.line += 1;
        }
        self.out.push_str("b=");
        self.line += 2;
    }

    /// The base64 value of `b=`, cut to fill each line.
    fn b_value(&mut self, mut b64: &str) {
        while !b64.is_empty() {
            let room = MAX_LINE.saturating_sub(self.line);
            if room == 0 {
                self.fold();
                continue;
            }
            // base64 is ASCII: any byte offset is a char boundary.
            let (head, tail) = b64.split_at(room.min(b64.len()));
            self.out.push_str(head);
            self.line += head.len();
            b64 = tail;
        }
    }
}

/// A `DKIM-Signature` field, ready to prepend to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureField {
    text: String,
    algorithm: Algorithm,
    domain: HostName,
    selector: String,
}

impl SignatureField {
    /// The whole field, `DKIM-Signature: ` to the final CRLF, folded to
    /// lines of at most [`MAX_LINE`] octets.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The field as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// `a=`.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// `d=`.
    pub fn domain(&self) -> &HostName {
        &self.domain
    }

    /// `s=`.
    pub fn selector(&self) -> &str {
        &self.selector
    }
}

impl fmt::Display for SignatureField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Signs one message with one or more [`Signer`]s (an RSA and an Ed25519
/// key together, say), reading it once as it streams: the header section
/// is kept (up to a bound), the body goes through one canonicalizer and
/// hash per body canonicalization in use, and [`finish`](Self::finish)
/// returns the fields to prepend, in signer order.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use smtp_proto::dkim::{MessageSigner, Signer, SigningKey, SystemRandom};
///
/// // RFC 8463 Appendix A.1's Ed25519 key (its seed, base64).
/// let seed = [
///     0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
///     0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
///     0x1c, 0xae, 0x7f, 0x60,
/// ];
/// let key = SigningKey::ed25519_from_seed(&seed).unwrap();
/// let signer = Signer::new(key, "football.example.com", "brisbane").unwrap();
///
/// let mut signing = MessageSigner::new(&[signer]);
/// signing.update(b"From: Joe SixPack <joe@football.example.com>\r\n");
/// signing.update(b"Subject: Is dinner ready?\r\n\r\nHi.\r\n");
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_528_637_909);
/// let fields = signing.finish(now, &SystemRandom::new()).unwrap();
/// assert!(fields[0].as_str().starts_with("DKIM-Signature: v=1; a=ed25519-sha256;"));
/// assert!(fields[0].as_str().lines().all(|line| line.len() <= 78));
/// ```
#[derive(Debug)]
pub struct MessageSigner {
    signers: Vec<Signer>,
    splitter: Splitter,
    limit: usize,
    simple: Option<BodyHasher>,
    relaxed: Option<BodyHasher>,
}

impl MessageSigner {
    /// Starts a message signed by each of `signers` (cheap clones).
    pub fn new(signers: &[Signer]) -> Self {
        let uses = |c| signers.iter().any(|s| s.body_canonicalization == c);
        Self {
            signers: signers.to_vec(),
            splitter: Splitter::new(DEFAULT_MAX_SIGNED_HEADER_SECTION),
            limit: DEFAULT_MAX_SIGNED_HEADER_SECTION,
            simple: uses(Canonicalization::Simple)
                .then(|| BodyHasher::new(Canonicalization::Simple)),
            relaxed: uses(Canonicalization::Relaxed)
                .then(|| BodyHasher::new(Canonicalization::Relaxed)),
        }
    }

    /// Bounds the header section (default
    /// [`DEFAULT_MAX_SIGNED_HEADER_SECTION`]); set before the first
    /// [`update`](Self::update).
    pub fn with_max_header_section(mut self, limit: usize) -> Self {
        self.limit = limit;
        self.splitter = Splitter::new(limit);
        self
    }

    /// Takes the next piece of the message (cut anywhere). A header
    /// section over the bound is reported by [`finish`](Self::finish).
    pub fn update(&mut self, chunk: &[u8]) {
        let body = match self.splitter.feed(chunk) {
            Fed::Header | Fed::Overflow => return,
            Fed::HeaderDone { body } | Fed::Body(body) => body,
        };
        if body.is_empty() {
            return;
        }
        for hasher in [&mut self.simple, &mut self.relaxed].into_iter().flatten() {
            hasher.update(body);
        }
    }

    /// Signs: one field per signer, in order. See [`Signer::sign`] for
    /// `now` and `rng`.
    pub fn finish(
        self,
        now: SystemTime,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<SignatureField>, SignError> {
        if self.splitter.overflowed() {
            return Err(SignError::HeaderSectionTooLarge { limit: self.limit });
        }
        let section = self.splitter.section();
        let simple = self.simple.map(BodyHasher::finish);
        let relaxed = self.relaxed.map(BodyHasher::finish);
        let mut fields = Vec::with_capacity(self.signers.len());
        for signer in &self.signers {
            let body = match signer.body_canonicalization {
                Canonicalization::Simple => simple.as_ref(),
                Canonicalization::Relaxed => relaxed.as_ref(),
            };
            // A hasher exists for every canonicalization a signer uses.
            let body = body.expect("a body hasher per canonicalization in use");
            fields.push(signer.sign(section, body, now, rng)?);
        }
        Ok(fields)
    }
}
