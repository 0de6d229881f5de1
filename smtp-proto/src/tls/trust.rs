//! The client side: whom to trust, and which name to verify.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{ConfigError, certificates_from_pem, crypto_provider};

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

    /// Trusts exactly the CA certificates in PEM text (the contents of
    /// `--tls-ca FILE`, swaks' `--tls-ca-path`, Postfix's `smtp_tls_CAfile`).
    /// Sections other than `CERTIFICATE` (keys, CRLs) are skipped; PEM with
    /// no certificate at all is refused ([`ConfigError::NoCertificate`]), as
    /// it would trust nothing.
    pub fn ca_pem(self, pem: &[u8]) -> Result<Self, ConfigError> {
        let mut store = RootCertStore::empty();
        for cert in certificates_from_pem(pem)? {
            store.add(cert).map_err(ConfigError::BadCertificate)?;
        }
        Ok(self.root_store(store))
    }

    /// **DANGER: accepts any server certificate.** Neither the chain nor the
    /// host name nor the validity dates are checked, so anyone on the path
    /// can read and change the mail, and AUTH credentials go to whoever
    /// answers. For opportunistic TLS between MTAs (RFC 7435) and tests
    /// against a throwaway server; a test with a CA of its own should use
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
    pub fn build(self) -> Result<TlsConfig, ConfigError> {
        let provider = crypto_provider();
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(ConfigError::Rustls)?;
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
/// removed, since certificates never carry it, and the name is lower-cased
/// (DNS names are case-insensitive, RFC 4343; servers see SNI in lower
/// case, so both ends report the same name).
pub fn server_name(host: &str) -> Result<ServerName<'static>, ConfigError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    ServerName::try_from(name.to_ascii_lowercase())
        .map_err(|_| ConfigError::InvalidServerName(host.to_owned()))
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
