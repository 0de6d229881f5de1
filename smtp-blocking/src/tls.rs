//! TLS for the blocking client: the core's rustls glue, plus what a
//! transport owns — reading a CA file, and the errors of a connection.
//!
//! Whom to trust ([`TlsConfig`], built with [`TlsConfig::builder`]: the
//! webpki roots by default, CA certificates from PEM bytes, the loudly named
//! `dangerous_accept_any_certificate`), which name a certificate must match
//! ([`server_name`]) and the ring-only configuration are written once in
//! [`smtp_proto::tls`] (its `rustls` feature, which this crate turns on) and
//! shared with `smtp-mio`; its docs give the reasons for each choice. They
//! are re-exported here so that `smtp_blocking::TlsConfig` is all a program
//! needs to name.
//!
//! The core takes PEM *bytes*; reading a file is I/O, so it happens here:
//! [`ca_pem_file`] reads a CA file and names it in its errors.

use std::io;
use std::path::Path;

use thiserror::Error;

pub use smtp_proto::tls::{
    ConfigError, TlsConfig, TlsConfigBuilder, is_certificate_error, server_name,
};

/// Why TLS could not be set up, or a handshake failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The CA file could not be read.
    #[error("cannot read CA file {path}: {source}")]
    CaFile {
        /// The file that was asked for.
        path: String,
        /// What the file system said.
        source: io::Error,
    },
    /// The CA file was read but its contents were refused (not PEM, no
    /// certificate in it, a certificate rustls cannot use).
    #[error("CA file {path}: {source}")]
    CaPem {
        /// The file.
        path: String,
        /// What was wrong with its contents.
        source: ConfigError,
    },
    /// The configuration could not be built: an invalid server name, PEM
    /// bytes without a usable certificate, rustls refusing the settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
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
        matches!(self, Self::Handshake(e) if is_certificate_error(e))
    }
}

/// A configuration that trusts exactly the CA certificates in a PEM file
/// (the form of `--tls-ca FILE`, swaks' `--tls-ca-path`, Postfix's
/// `smtp_tls_CAfile`): the file's bytes handed to
/// [`TlsConfigBuilder::ca_pem`]. Sections other than `CERTIFICATE` (keys,
/// CRLs) are skipped; a file without a certificate is refused, as it would
/// trust nothing.
pub fn ca_pem_file(path: impl AsRef<Path>) -> Result<TlsConfig, TlsError> {
    let path = path.as_ref();
    let shown = || path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| TlsError::CaFile {
        path: shown(),
        source,
    })?;
    TlsConfig::builder()
        .ca_pem(&pem)
        .and_then(TlsConfigBuilder::build)
        .map_err(|source| TlsError::CaPem {
            path: shown(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ca_file_names_the_path() {
        let err = ca_pem_file("/nonexistent/ca.pem").unwrap_err();
        assert!(matches!(err, TlsError::CaFile { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_ca_file_without_certificates_names_the_path_and_the_problem() {
        let dir = std::env::temp_dir().join(format!("smtp-blocking-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = ca_pem_file(&path).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            matches!(
                err,
                TlsError::CaPem {
                    source: ConfigError::NoCertificate,
                    ..
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("empty.pem") && text.contains("no certificate"),
            "{text}"
        );
    }

    #[test]
    fn only_certificate_failures_of_a_handshake_are_certificate_errors() {
        let cert = TlsError::Handshake(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired,
        ));
        assert!(cert.is_certificate_error());
        let garbled = TlsError::Handshake(rustls::Error::DecryptError);
        assert!(!garbled.is_certificate_error());
        // A configuration problem is not a handshake at all.
        assert!(!TlsError::Config(ConfigError::NoCertificate).is_certificate_error());
    }
}
