//! TLS for the server and the delivery engine: the core's rustls glue, plus
//! reading certificate, key and CA files.
//!
//! The server's identity ([`TlsIdentity`]: a chain and key from PEM, or a
//! self-signed certificate made at start, with its SHA-256 [`Fingerprint`]
//! and rustls server configuration), the delivery engine's trust
//! ([`TlsConfig`]) and the [`TlsInfo`](smtp_proto::TlsInfo) of a finished
//! handshake are written once in [`smtp_proto::tls`] (its `rustls` feature,
//! which this crate turns on) and shared with `smtp-blocking`; its docs give
//! the reasons (ring only, verified by default, the validity of a
//! self-signed certificate, the OS random source). They are re-exported
//! here.
//!
//! The core takes PEM *bytes*; reading files is I/O, so it happens here,
//! and the errors name the file:
//!
//! - [`identity_from_pem_files`]: `--tls-cert FILE --tls-key FILE`, what an
//!   ACME client writes (`fullchain.pem`, `privkey.pem`);
//! - [`ca_pem_file`]: the CA certificates the delivery engine should trust.
//!
//! A self-signed identity needs no file: [`TlsIdentity::self_signed`] with
//! the host name and the current time.

use std::io;
use std::path::{Path, PathBuf};

pub use smtp_proto::tls::{ConfigError, Fingerprint, TlsConfig, TlsConfigBuilder, TlsIdentity};
use smtp_proto::tls::{certificates_from_pem, private_key_from_pem};

/// Why a TLS file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },
    /// The file was read but its contents were refused: not PEM, no
    /// certificate in a certificate file, no key in a key file.
    #[error("{path}: {source}")]
    Contents {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        #[source]
        source: ConfigError,
    },
}

/// Loads a certificate chain (leaf first, as ACME clients write
/// `fullchain.pem`) and a private key (PKCS#8, PKCS#1 or SEC1) from PEM
/// files. Whether the key matches the certificate is checked by
/// [`TlsIdentity::server_config`].
pub fn identity_from_pem_files(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
    let chain = certificates_from_pem(&read(cert)?).map_err(contents(cert))?;
    let key_der = private_key_from_pem(&read(key)?).map_err(contents(key))?;
    TlsIdentity::new(chain, key_der).map_err(contents(cert))
}

/// A configuration that trusts exactly the CA certificates in a PEM file
/// (the `--tls-ca FILE` of the `bulk-send` example); sections other than
/// `CERTIFICATE` are skipped, and a file without one is refused.
pub fn ca_pem_file(path: &Path) -> Result<TlsConfig, TlsError> {
    TlsConfig::builder()
        .ca_pem(&read(path)?)
        .and_then(TlsConfigBuilder::build)
        .map_err(contents(path))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn contents(path: &Path) -> impl FnOnce(ConfigError) -> TlsError {
    let path = path.to_owned();
    move |source| TlsError::Contents { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn identity_loads_from_pem_files() {
        // As an ACME client would write them: the chain and the key apart.
        let made = rcgen::generate_simple_self_signed(vec!["mx.example.org".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert_path = dir.path().join("fullchain.pem");
        let key_path = dir.path().join("privkey.pem");
        std::fs::write(&cert_path, made.cert.pem()).unwrap();
        std::fs::write(&key_path, made.signing_key.serialize_pem()).unwrap();
        let id = identity_from_pem_files(&cert_path, &key_path).unwrap();
        assert_eq!(id.fingerprint(), Fingerprint::of(made.cert.der()));
        id.server_config().unwrap();
    }

    #[test]
    fn a_chain_file_given_as_the_key_names_the_key_file() {
        let id = TlsIdentity::self_signed("mx.example.org", SystemTime::now()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert_path = dir.path().join("cert.pem");
        std::fs::write(&cert_path, id.chain_pem()).unwrap();
        // A certificate where the key should be: the key is what is
        // missing, and the error names the key file.
        let key_path = dir.path().join("key.pem");
        std::fs::write(&key_path, id.chain_pem()).unwrap();
        let err = identity_from_pem_files(&cert_path, &key_path).unwrap_err();
        assert!(
            matches!(
                &err,
                TlsError::Contents { path, source: ConfigError::NoPrivateKey } if path == &key_path
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("no private key"), "{err}");
        // A CA file of the chain lets a client trust it.
        let config = ca_pem_file(&cert_path).unwrap();
        assert!(!config.is_dangerous());
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = identity_from_pem_files(&missing, &missing).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let err = identity_from_pem_files(&empty, &missing).unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Contents {
                    source: ConfigError::NoCertificate,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(matches!(
            ca_pem_file(&empty),
            Err(TlsError::Contents {
                source: ConfigError::NoCertificate,
                ..
            })
        ));
        assert!(matches!(ca_pem_file(&missing), Err(TlsError::Read { .. })));
    }
}
