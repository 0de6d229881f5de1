//! The server side: the certificate chain and key a server presents.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{
    ConfigError, certificates_from_pem, crypto_provider, pem_encode, private_key_from_pem,
};

/// How long before the caller's `now` a self-signed certificate becomes
/// valid: one day, so that a client whose clock runs behind the server's
/// (RFC 5280 §4.1.2.5 validity is checked against the *client's* clock)
/// still accepts it.
pub const SELF_SIGNED_BACKDATE: Duration = Duration::from_secs(24 * 60 * 60);

/// How long after the caller's `now` a self-signed certificate stays
/// valid: 90 days, the lifetime of an ACME (Let's Encrypt) certificate — what
/// an operator expects of a certificate made without asking anyone, and a
/// nudge to install a real one on a server that runs longer.
pub const SELF_SIGNED_LIFETIME: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// A SHA-256 fingerprint of a DER certificate, displayed as colon-separated
/// upper-case hex pairs (`AA:BB:…`), the form `openssl x509 -fingerprint
/// -sha256` and browsers show.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0u8; 32];
        // A SHA-256 digest is always 32 bytes.
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A certificate chain with its private key: what a server presents.
///
/// A mail server should offer STARTTLS from its first start: opportunistic
/// TLS with an unverifiable certificate still protects against passive
/// eavesdropping, which is why MTAs encrypt with self-signed certificates
/// every day (RFC 7435). So an identity comes from one of two places:
/// [`from_pem`](Self::from_pem) (what an operator gets from an ACME client)
/// or [`self_signed`](Self::self_signed) (made at start).
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("TlsIdentity")
            .field("certificates", &self.chain.len())
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// An identity from a chain (leaf first) and its key. An empty chain is
    /// [`ConfigError::NoCertificate`]; whether the key matches the leaf is
    /// checked by [`server_config`](Self::server_config).
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, ConfigError> {
        if chain.is_empty() {
            return Err(ConfigError::NoCertificate);
        }
        Ok(Self { chain, key })
    }

    /// An identity from PEM text: a certificate chain, leaf first (as ACME
    /// clients write `fullchain.pem`), and a private key (PKCS#8, PKCS#1 or
    /// SEC1). The two may be the same text. A key input without a key is
    /// [`ConfigError::NoPrivateKey`], a chain input without a certificate
    /// [`ConfigError::NoCertificate`].
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, ConfigError> {
        let chain = certificates_from_pem(chain_pem)?;
        let key = private_key_from_pem(key_pem)?;
        Self::new(chain, key)
    }

    /// Generates a fresh ECDSA P-256 key and a self-signed certificate for
    /// `localhost`, `127.0.0.1`, `::1` and `hostname` (if it is another
    /// name; an IP address becomes an IP SAN), with `hostname` (or
    /// `localhost`) as its common name. It is valid from
    /// [`SELF_SIGNED_BACKDATE`] before `now` to [`SELF_SIGNED_LIFETIME`]
    /// after it.
    ///
    /// The key comes from the operating system's random source (see the
    /// [module docs](super#randomness)); `now` comes from the caller, like
    /// every time in this crate.
    pub fn self_signed(hostname: &str, now: SystemTime) -> Result<Self, ConfigError> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if !hostname.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(hostname)) {
            names.push(hostname.to_owned());
        }
        let mut params = rcgen::CertificateParams::new(names).map_err(ConfigError::Generate)?;
        let common_name = if hostname.is_empty() {
            "localhost"
        } else {
            hostname
        };
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let unix = unix_seconds(now).ok_or(ConfigError::Validity(now))?;
        params.not_before = x509_time(unix.checked_sub(seconds(SELF_SIGNED_BACKDATE)))
            .ok_or(ConfigError::Validity(now))?;
        params.not_after = x509_time(unix.checked_add(seconds(SELF_SIGNED_LIFETIME)))
            .ok_or(ConfigError::Validity(now))?;
        let key_pair = rcgen::KeyPair::generate().map_err(ConfigError::Generate)?;
        let cert = params
            .self_signed(&key_pair)
            .map_err(ConfigError::Generate)?;
        Self::new(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der())),
        )
    }

    /// The certificates, leaf first (never empty).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The SHA-256 fingerprint of the leaf certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        // Both constructors guarantee at least one certificate.
        Fingerprint::of(self.chain.first().map_or(&[][..], |c| c.as_ref()))
    }

    /// The chain in PEM form, for a client to trust (only the public
    /// certificates; the key never leaves this value).
    pub fn chain_pem(&self) -> String {
        let mut out = String::new();
        for cert in &self.chain {
            out.push_str(&pem_encode("CERTIFICATE", cert.as_ref()));
        }
        out
    }

    /// A rustls server configuration presenting this identity, on the ring
    /// provider with rustls' default protocol versions (TLS 1.2 and 1.3), no
    /// client certificates. A key that does not match the leaf certificate
    /// is refused here ([`ConfigError::Rustls`]).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, ConfigError> {
        let config = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(ConfigError::Rustls)?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(ConfigError::Rustls)?;
        Ok(Arc::new(config))
    }

    /// The key in PEM form, for tests that write an identity to files.
    #[cfg(test)]
    pub(super) fn key_pem(&self) -> String {
        match &self.key {
            PrivateKeyDer::Pkcs8(k) => pem_encode("PRIVATE KEY", k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => pem_encode("RSA PRIVATE KEY", k.secret_pkcs1_der()),
            PrivateKeyDer::Sec1(k) => pem_encode("EC PRIVATE KEY", k.secret_sec1_der()),
            _ => unreachable!("the tests only make PKCS#8, PKCS#1 and SEC1 keys"),
        }
    }

    /// The same identity with another key, for tests of mismatches.
    #[cfg(test)]
    pub(super) fn with_key_of(&self, other: &Self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: other.key.clone_key(),
        }
    }

    /// The private key, for tests that build a server by hand.
    #[cfg(test)]
    pub(super) fn key(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }
}

/// Seconds since the Unix epoch, negative before it; `None` out of range.
fn unix_seconds(t: SystemTime) -> Option<i64> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).ok(),
        Err(before) => i64::try_from(before.duration().as_secs()).ok().map(|s| -s),
    }
}

fn seconds(d: Duration) -> i64 {
    // The two validity constants are a few million seconds.
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A certificate time, if it can be written: RFC 5280 §4.1.2.5 encodes
/// years 0 to 9999 (UTCTime before 2050, GeneralizedTime otherwise).
fn x509_time(unix: Option<i64>) -> Option<time::OffsetDateTime> {
    let at = time::OffsetDateTime::from_unix_timestamp(unix?).ok()?;
    (0..=9999).contains(&at.year()).then_some(at)
}
