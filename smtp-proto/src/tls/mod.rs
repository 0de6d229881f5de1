//! rustls glue, written once for both transports (cargo feature `rustls`).
//!
//! What a TLS-speaking SMTP program needs besides the sessions:
//!
//! - **Client trust**: [`TlsConfig`], built with [`TlsConfig::builder`] —
//!   the Mozilla roots of `webpki-roots` by default, CA certificates from PEM
//!   bytes ([`TlsConfigBuilder::ca_pem`]), a root store of your own, or the
//!   loudly named [`TlsConfigBuilder::dangerous_accept_any_certificate`];
//!   [`server_name`] turns a host into what the certificate must match.
//! - **Server identity**: [`TlsIdentity`], a certificate chain and its key
//!   from PEM bytes ([`TlsIdentity::from_pem`]) or a throwaway self-signed
//!   certificate ([`TlsIdentity::self_signed`]) with its SHA-256
//!   [`Fingerprint`], and the rustls [`ServerConfig`](rustls::ServerConfig)
//!   presenting it.
//! - **What was negotiated**: [`server_info`] and [`client_info`] read a
//!   finished rustls connection into the [`TlsInfo`] that
//!   `handle_tls_established` takes.
//!
//! # Why it lives in the core, behind a feature
//!
//! Both transports need exactly this, and two copies drift (they did: the
//! blocking client and the mio engine each had one). Neither transport may
//! depend on the other, so the one copy sits below both. That is no breach of
//! the core's sans-IO rule: rustls is itself sans-IO — a
//! `ClientConnection` or `ServerConnection` takes bytes in and hands bytes out
//! and never touches a socket — and quinn-proto carries its rustls glue behind
//! a feature in the same way. Nothing in this module reads a file or opens a
//! socket: every function takes PEM *bytes*, and reading `cert.pem`,
//! `key.pem` or a CA file stays in the transports (which name the file in
//! their errors).
//!
//! The feature is off by default so that the codec and the sessions stay
//! usable without a TLS library: a program that only parses SMTP, and the
//! fuzzers, build no crypto. `smtp-blocking` and `smtp-mio` turn it on.
//!
//! # Randomness
//!
//! The sessions in [`client`](crate::client) and [`server`](crate::server)
//! never draw a random number; they are deterministic functions of their
//! input and the time handed to them. **This module is different, and says
//! so plainly:** rustls draws from the operating system's random source (via
//! ring) for every handshake — client and server randoms, key shares, session
//! tickets — and [`TlsIdentity::self_signed`] generates its key pair from the
//! same source. The TLS connection runs beside the session, in the transport,
//! not inside it: the session only learns that a handshake finished
//! ([`TlsInfo`]), so its replayability is untouched.
//!
//! # Choices
//!
//! - **One crypto provider, chosen here.** Every configuration is built with
//!   rustls' `builder_with_provider` and ring ([`crypto_provider`]), never
//!   with the process-wide default provider: a program that links another
//!   rustls user with aws-lc enabled cannot make this crate panic ("no default
//!   provider") or silently change its algorithms, and the build needs no
//!   cmake or nasm. TLS 1.2 and 1.3 with ring's default suites and groups.
//! - **Verified by default.** [`TlsConfig::default`] trusts the webpki roots,
//!   so a program that never thinks about TLS gets certificate and host name
//!   checks.
//! - **Skipping verification is loud.** The only way to accept any
//!   certificate is [`TlsConfigBuilder::dangerous_accept_any_certificate`];
//!   the name stands out in review. Even then the handshake signatures are
//!   checked, so the peer must hold the key of the certificate it shows.
//!   Opportunistic TLS between MTAs uses it (RFC 7435: encryption without
//!   authentication still defeats a passive eavesdropper).
//! - **SNI from the host name, none for an address.** RFC 6066 §3 forbids IP
//!   literals in SNI; [`server_name`] turns `127.0.0.1` or `[::1]` into an
//!   IP address (verified against the certificate's IP SANs, sent without
//!   SNI) and anything else into a DNS name.
//! - **A self-signed certificate looks like one an operator would make.** It
//!   is valid from one day before the caller's `now` (clock skew between the
//!   two ends) to 90 days after (the lifetime of an ACME certificate), not
//!   from 1975 to 4096: a certificate that never expires is a finding in
//!   every audit, and a server that runs longer than that should have a real
//!   one.

mod identity;
mod info;
mod trust;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::SystemTime;

pub use rustls;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use crate::TlsInfo;
pub use identity::{Fingerprint, SELF_SIGNED_BACKDATE, SELF_SIGNED_LIFETIME, TlsIdentity};
pub use info::{client_info, server_info};
pub use trust::{TlsConfig, TlsConfigBuilder, server_name};

/// Why a TLS configuration, trust store or identity could not be built.
///
/// Nothing here concerns a connection: handshake failures are rustls errors
/// that the transports report (see [`is_certificate_error`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The input is not valid PEM (a section without its end line, bad
    /// base64).
    #[error("invalid PEM: {0}")]
    Pem(#[source] pem::Error),
    /// The PEM input holds no `CERTIFICATE` section, so it would trust (or
    /// present) nothing: almost certainly the wrong file (a key, an empty
    /// file).
    #[error("no certificate in the PEM input (no CERTIFICATE section)")]
    NoCertificate,
    /// The PEM input holds no private key: a certificate file given as the
    /// key, or an empty file.
    #[error(
        "no private key in the PEM input (no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section)"
    )]
    NoPrivateKey,
    /// A CA certificate could not be added to the root store (rustls
    /// rejected its DER).
    #[error("unusable CA certificate: {0}")]
    BadCertificate(#[source] rustls::Error),
    /// The host name is neither an IP address nor a valid DNS name, so it
    /// cannot be verified against a certificate.
    #[error("{0:?} is not a valid TLS server name")]
    InvalidServerName(String),
    /// rustls refused the configuration: no usable protocol version, or a
    /// key that does not match the certificate.
    #[error("TLS configuration: {0}")]
    Rustls(#[source] rustls::Error),
    /// The self-signed certificate could not be generated.
    #[error("generating a certificate: {0}")]
    Generate(#[source] rcgen::Error),
    /// The validity period around this time cannot be written in a
    /// certificate (RFC 5280 §4.1.2.5 times run from year 0 to 9999).
    #[error("no certificate validity can be written around {0:?}")]
    Validity(SystemTime),
}

/// rustls' ring provider with its default (safe) cipher suites, key
/// exchange groups and signature algorithms: the one provider every
/// configuration of this module is built on. Use it for a configuration of
/// your own (client certificates, pinned keys) to stay on the same
/// algorithms.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whether a handshake failure concerns the peer's certificate (untrusted,
/// expired, wrong name, none presented): the one TLS failure a person must
/// fix by configuration, so retrying it later does not help and it must
/// never be silently ignored. Other failures (a reset, a garbled record, no
/// shared cipher suite) may pass.
pub fn is_certificate_error(error: &rustls::Error) -> bool {
    matches!(
        error,
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
    )
}

/// Every `CERTIFICATE` section of PEM text, in order (sections of other
/// kinds, such as keys or CRLs, are skipped). At least one is required.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ConfigError::Pem)?;
    if certs.is_empty() {
        return Err(ConfigError::NoCertificate);
    }
    Ok(certs)
}

/// The first private key in PEM text: PKCS#8 (`PRIVATE KEY`), PKCS#1
/// (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`); other sections are
/// skipped. None at all is [`ConfigError::NoPrivateKey`].
pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, ConfigError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => ConfigError::NoPrivateKey,
        other => ConfigError::Pem(other),
    })
}

/// RFC 7468 PEM: base64 in 64-column lines between BEGIN/END labels.
fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        // Base64 text is ASCII, so every index is a char boundary.
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
