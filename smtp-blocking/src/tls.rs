//! TLS client configuration: rustls with the ring provider, verified by default.
//!
//! # Why it looks like this
//!
//! - **One crypto provider, chosen here.** The configuration is built with
//!   [`rustls::ClientConfig::builder_with_provider`] and ring, never with the
//!   process-wide default provider: a program that links another rustls user
//!   with aws-lc enabled cannot make this crate panic ("no default provider")
//!   or silently change its algorithms, and the build needs no cmake or nasm.
//! - **Verified by default.** [`TlsConfig::default`] trusts the Mozilla roots
//!   shipped in `webpki-roots`, so a program that never thinks about TLS gets
//!   certificate and host name checks. A private CA is one call away
//!   ([`TlsConfigBuilder::ca_pem_file`]).
//! - **Skipping verification is loud.** The only way to accept any certificate
//!   is [`TlsConfigBuilder::dangerous_accept_any_certificate`]; the name says
//!   what it does, so it stands out in review. Even then the handshake
//!   signatures are checked, so the peer must hold the key of the certificate
//!   it shows (which keeps a test against a self-signed server honest about
//!   everything except *whose* key it is).
//! - **SNI from the host name, none for an address.** RFC 6066 §3 forbids IP
//!   literals in SNI; [`server_name`] turns `127.0.0.1` or `[::1]` into a
//!   [`ServerName::IpAddress`] (verified against the certificate's IP SANs,
//!   and sent without SNI) and anything else into a DNS name.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use thiserror::Error;

/// Why a TLS configuration could not be built, or a handshake failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The CA file could not be read.
    #[error("cannot read CA file {path}: {source}")]
    CaFile {
        /// The file that was asked for.
        path: String,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The PEM text is not valid PEM.
    #[error("invalid PEM in CA certificates: {0}")]
    Pem(String),
    /// The PEM text holds no `CERTIFICATE` section, so it would trust
    /// nothing: almost certainly the wrong file (a key, an empty file).
    #[error("no CA certificate found in the PEM input")]
    NoCertificates,
    /// A certificate could not be added to the root store (rustls rejected
    /// its DER).
    #[error("unusable CA certificate: {0}")]
    BadCertificate(rustls::Error),
    /// The host name is neither an IP address nor a valid DNS name, so it
    /// cannot be verified against a certificate.
    #[error("{0:?} is not a valid TLS server name")]
    InvalidServerName(String),
    /// rustls refused the configuration (no usable protocol version).
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
    /// The handshake failed: certificate not trusted, wrong host name, no
    /// shared cipher suite, an alert from the server, garbage instead of TLS
    /// records.
    #[error("TLS handshake failed: {0}")]
    Handshake(rustls::Error),
    /// TLS was asked for on a transport that does not offer it (a Unix
    /// socket), or twice on the same connection.
    #[error("TLS is not available here: {0}")]
    Unavailable(&'static str),
}

impl TlsError {
    /// Whether the failure concerns the peer's certificate (untrusted,
    /// expired, wrong name): the one TLS failure a user can fix by
    /// configuration, and that must never be silently ignored.
    pub fn is_certificate_error(&self) -> bool {
        matches!(
            self,
            Self::Handshake(rustls::Error::InvalidCertificate(_))
                | Self::Handshake(rustls::Error::NoCertificatesPresented)
        )
    }
}

/// The ring provider with its default (safe) cipher suites and key exchange
/// groups.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whom to trust.
#[derive(Debug, Clone)]
enum Trust {
    /// The Mozilla root program, as shipped by `webpki-roots`.
    WebPki,
    /// Exactly these roots.
    Roots(RootCertStore),
    /// Any certificate (signatures still checked).
    DangerousAnyCertificate,
}

/// Builds a [`TlsConfig`]. Start from [`TlsConfig::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TlsConfigBuilder {
    trust: Trust,
}

impl TlsConfigBuilder {
    /// Trusts the Mozilla root program (`webpki-roots`): the default, right
    /// for public submission servers and MX hosts.
    pub fn webpki_roots(mut self) -> Self {
        self.trust = Trust::WebPki;
        self
    }

    /// Trusts exactly the roots in `store` (and nothing else).
    pub fn root_store(mut self, store: RootCertStore) -> Self {
        self.trust = Trust::Roots(store);
        self
    }

    /// Trusts exactly the CA certificates in a PEM file (the form of
    /// `--tls-ca FILE`, swaks' `--tls-ca-path`, Postfix's `smtp_tls_CAfile`).
    /// Sections other than `CERTIFICATE` (keys, CRLs) are skipped.
    pub fn ca_pem_file(self, path: impl AsRef<Path>) -> Result<Self, TlsError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|source| TlsError::CaFile {
            path: path.display().to_string(),
            source,
        })?;
        self.ca_pem(&pem)
    }

    /// Trusts exactly the CA certificates in PEM text (see
    /// [`ca_pem_file`](Self::ca_pem_file)).
    pub fn ca_pem(self, pem: &[u8]) -> Result<Self, TlsError> {
        let mut store = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| TlsError::Pem(e.to_string()))?;
            store.add(cert).map_err(TlsError::BadCertificate)?;
        }
        if store.is_empty() {
            return Err(TlsError::NoCertificates);
        }
        Ok(self.root_store(store))
    }

    /// **DANGER: accepts any server certificate.** Neither the chain nor the
    /// host name nor the validity dates are checked, so anyone on the path
    /// can read and change the mail, and AUTH credentials go to whoever
    /// answers. For tests against a throw-away server only (the `--insecure`
    /// of the `send` example); a test with a CA of its own should use
    /// [`ca_pem`](Self::ca_pem) instead.
    ///
    /// The handshake signatures are still verified, so the server must hold
    /// the private key of the certificate it presents.
    pub fn dangerous_accept_any_certificate(mut self) -> Self {
        self.trust = Trust::DangerousAnyCertificate;
        self
    }

    /// Builds the configuration: TLS 1.2 and 1.3 with ring's default suites,
    /// no client certificate.
    pub fn build(self) -> Result<TlsConfig, TlsError> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?;
        let insecure = matches!(self.trust, Trust::DangerousAnyCertificate);
        let config = match self.trust {
            Trust::WebPki => {
                let store = RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                builder.with_root_certificates(store).with_no_client_auth()
            }
            Trust::Roots(store) => builder.with_root_certificates(store).with_no_client_auth(),
            Trust::DangerousAnyCertificate => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth(),
        };
        Ok(TlsConfig {
            config: Arc::new(config),
            insecure,
        })
    }
}

/// A shared rustls client configuration, cheap to clone.
///
/// One value serves every connection of a program; rustls keeps its session
/// resumption cache inside it, so reusing it makes reconnects cheaper.
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    insecure: bool,
}

impl TlsConfig {
    /// A builder that starts from the default trust (webpki roots).
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder {
            trust: Trust::WebPki,
        }
    }

    /// Wraps a rustls configuration built elsewhere (client certificates,
    /// pinned keys, another provider). The caller answers for its safety.
    pub fn from_client_config(config: Arc<ClientConfig>) -> Self {
        Self {
            config,
            insecure: false,
        }
    }

    /// The rustls configuration, to create connections from.
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Whether this configuration was built with
    /// [`TlsConfigBuilder::dangerous_accept_any_certificate`], so that a
    /// program can warn about it in its logs.
    pub fn is_dangerous(&self) -> bool {
        self.insecure
    }
}

/// Verified against the webpki roots.
impl Default for TlsConfig {
    fn default() -> Self {
        // The default protocol versions always exist in the ring provider,
        // and the webpki trust needs no input: building cannot fail.
        Self::builder()
            .build()
            .expect("the default TLS configuration always builds")
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("dangerous_accept_any_certificate", &self.insecure)
            .finish_non_exhaustive()
    }
}

/// The TLS server name for `host`: an IP address (`192.0.2.1`, `::1`,
/// `[::1]`) becomes [`ServerName::IpAddress`] (no SNI is sent, RFC 6066 §3,
/// and the certificate must name the address), anything else a DNS name
/// (sent as SNI and checked against the certificate). A trailing dot is
/// removed, since certificates never carry it.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::InvalidServerName(host.to_owned()))
}

/// The verifier behind [`TlsConfigBuilder::dangerous_accept_any_certificate`]:
/// the chain and name are not checked, the handshake signatures are.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("mail.example.org", Some("DnsName(\"mail.example.org\")")),
            ("mail.example.org.", Some("DnsName(\"mail.example.org\")")),
            ("127.0.0.1", Some("IpAddress(V4(Ipv4Addr([127, 0, 0, 1])))")),
            ("::1", None),
            ("[::1]", None),
            ("bad name", None),
            ("", None),
        ];
        for (host, debug) in cases {
            let got = server_name(host);
            match (debug, host) {
                (Some(expected), _) => {
                    assert_eq!(format!("{:?}", got.unwrap()), *expected, "{host}")
                }
                (None, h) if h.contains("::1") => {
                    assert!(matches!(got, Ok(ServerName::IpAddress(_))), "{host}")
                }
                (None, _) => assert!(matches!(got, Err(TlsError::InvalidServerName(_))), "{host}"),
            }
        }
    }

    #[test]
    fn default_config_builds_and_is_not_dangerous() {
        let config = TlsConfig::default();
        assert!(!config.is_dangerous());
        let insecure = TlsConfig::builder()
            .dangerous_accept_any_certificate()
            .build()
            .unwrap();
        assert!(insecure.is_dangerous());
        assert!(format!("{insecure:?}").contains("dangerous_accept_any_certificate: true"));
    }

    #[test]
    fn pem_without_certificates_is_refused() {
        let err = TlsConfig::builder().ca_pem(b"").unwrap_err();
        assert!(matches!(err, TlsError::NoCertificates), "{err:?}");
        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let err = TlsConfig::builder().ca_pem(key_only).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificates), "{err:?}");
    }

    #[test]
    fn broken_pem_is_refused() {
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n";
        let err = TlsConfig::builder().ca_pem(broken).unwrap_err();
        assert!(matches!(err, TlsError::Pem(_)), "{err:?}");
    }

    #[test]
    fn missing_ca_file_names_the_path() {
        let err = TlsConfig::builder()
            .ca_pem_file("/nonexistent/ca.pem")
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
