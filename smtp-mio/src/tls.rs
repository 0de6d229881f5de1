//! The server's TLS identity and rustls configuration.
//!
//! A mail server should offer STARTTLS from its first start: opportunistic
//! TLS with an unverifiable certificate still protects against passive
//! eavesdropping, which is why MTAs encrypt with self-signed certificates
//! every day (RFC 7435, "Opportunistic Security"). So an identity comes from
//! one of two places:
//!
//! - [`TlsIdentity::from_pem_files`]: a certificate chain and private key in
//!   PEM files (what an operator gets from an ACME client);
//! - [`TlsIdentity::self_signed`]: a fresh ECDSA P-256 certificate made at
//!   start for `localhost`, `127.0.0.1`, `::1` and the configured host name.
//!   Its SHA-256 [`Fingerprint`] is printed so a person can compare it with
//!   what a client sees, and its PEM can be written to a file that test
//!   clients trust (`--tls-ca FILE`).
//!
//! Only rustls' `ring` provider is used (no aws-lc: nothing to build with
//! cmake or nasm), with rustls' safe defaults: TLS 1.2 and 1.3, no client
//! certificates, a session cache for resumption.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConnection, CommonState, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use smtp_proto::TlsInfo;

/// Why a TLS identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    /// rustls refused the certificate or key (e.g. they do not match).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The self-signed certificate could not be generated.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing the certificate file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
}

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

/// A certificate chain with its private key: what the server presents.
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
    /// Loads a certificate chain (leaf first, as ACME clients write
    /// `fullchain.pem`) and a private key (PKCS#8, PKCS#1 or SEC1) from PEM
    /// files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let pem_error = |path: &Path| {
            let path = path.to_owned();
            move |source| TlsError::Pem { path, source }
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(pem_error(cert))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem_error(cert))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate(cert.to_owned()));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(pem_error(key))?;
        Ok(Self { chain, key })
    }

    /// Generates a self-signed certificate for `localhost`, `127.0.0.1`,
    /// `::1` and `hostname` (if it is another name), valid from 1975 to 4096
    /// (rcgen's defaults: a test identity should never expire under a test).
    pub fn self_signed(hostname: &str) -> Result<Self, TlsError> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if !hostname.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(hostname)) {
            names.push(hostname.to_owned());
        }
        let mut params = rcgen::CertificateParams::new(names)?;
        let common_name = if hostname.is_empty() {
            "localhost"
        } else {
            hostname
        };
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let key_pair = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key_pair)?;
        Ok(Self {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der())),
        })
    }

    /// The certificates, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The SHA-256 fingerprint of the leaf certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        // Both constructors guarantee at least one certificate.
        Fingerprint::of(self.chain.first().map_or(&[][..], |c| c.as_ref()))
    }

    /// The chain in PEM form, for a client to trust.
    pub fn chain_pem(&self) -> String {
        let mut out = String::new();
        for cert in &self.chain {
            out.push_str(&pem_encode("CERTIFICATE", cert.as_ref()));
        }
        out
    }

    /// Writes [`chain_pem`](Self::chain_pem) to `path` (only the public
    /// certificate; the key never leaves memory).
    pub fn write_chain_pem(&self, path: &Path) -> Result<(), TlsError> {
        std::fs::write(path, self.chain_pem()).map_err(|source| TlsError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// A rustls server configuration presenting this identity, on the
    /// `ring` provider with rustls' default protocol versions.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        Ok(Arc::new(config))
    }
}

/// What the session and the trace header should know about a finished
/// handshake: protocol version (`TLSv1.3`), cipher suite and SNI name.
pub fn tls_info(conn: &ServerConnection) -> TlsInfo {
    negotiated(conn, conn.server_name().map(str::to_owned))
}

/// The same for the client side of a connection (the delivery engine):
/// protocol version and cipher suite; the name is the one the client
/// verified, which it already knows.
pub fn client_tls_info(conn: &ClientConnection) -> TlsInfo {
    negotiated(conn, None)
}

fn negotiated(state: &CommonState, server_name: Option<String>) -> TlsInfo {
    let protocol = state.protocol_version().map(|v| match v {
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        other => format!("{other:?}"),
    });
    let cipher = state
        .negotiated_cipher_suite()
        .map(|s| match s.suite().as_str() {
            Some(name) => name.to_owned(),
            None => format!("{:?}", s.suite()),
        });
    TlsInfo::new(protocol, cipher, server_name)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn fingerprint_format_known_answer() {
        // SHA-256 of the empty string.
        assert_eq!(
            Fingerprint::of(b"").to_string(),
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:\
             27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }

    #[test]
    fn pem_encoding_round_trips() {
        for len in [0usize, 1, 2, 3, 47, 48, 49, 100] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let pem = pem_encode("CERTIFICATE", &der);
            if len > 0 {
                let back = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
                assert_eq!(back.as_ref(), &der[..], "{len}");
            }
            assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        }
    }

    #[test]
    fn self_signed_identity_round_trips_through_pem_files() {
        let id = TlsIdentity::self_signed("mx.example.org").unwrap();
        assert_eq!(id.chain().len(), 1);
        let dir = tempfile::tempdir().unwrap();
        let cert_path = dir.path().join("cert.pem");
        id.write_chain_pem(&cert_path).unwrap();
        let key_path = dir.path().join("key.pem");
        let key_der = match &id.key {
            PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
            other => panic!("unexpected key kind {other:?}"),
        };
        std::fs::write(&key_path, pem_encode("PRIVATE KEY", &key_der)).unwrap();
        let loaded = TlsIdentity::from_pem_files(&cert_path, &key_path).unwrap();
        assert_eq!(loaded.fingerprint(), id.fingerprint());
        loaded.server_config().unwrap();
        // The Debug form shows the fingerprint, never the key.
        let debug = format!("{loaded:?}");
        assert!(debug.contains(&id.fingerprint().to_string()));
    }

    #[test]
    fn pem_file_errors_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            TlsIdentity::from_pem_files(&missing, &missing),
            Err(TlsError::Pem { .. })
        ));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        assert!(matches!(
            TlsIdentity::from_pem_files(&empty, &empty),
            Err(TlsError::NoCertificate(_))
        ));
        // A key that does not match the certificate is refused.
        let a = TlsIdentity::self_signed("a").unwrap();
        let b = TlsIdentity::self_signed("b").unwrap();
        let mixed = TlsIdentity {
            chain: a.chain.clone(),
            key: b.key.clone_key(),
        };
        assert!(matches!(mixed.server_config(), Err(TlsError::Rustls(_))));
    }

    /// A rustls client that trusts only the written PEM completes a
    /// handshake with the server config, for each name the certificate
    /// covers, and `tls_info` reports what was negotiated.
    #[test]
    fn handshake_in_memory_for_every_name() {
        let id = TlsIdentity::self_signed("mx.example.org").unwrap();
        let server_config = id.server_config().unwrap();
        let mut roots = rustls::RootCertStore::empty();
        let anchor = CertificateDer::from_pem_slice(id.chain_pem().as_bytes()).unwrap();
        roots.add(anchor).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client_config = Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        for name in ["localhost", "127.0.0.1", "::1", "mx.example.org"] {
            let server_name = rustls_pki_types::ServerName::try_from(name)
                .unwrap()
                .to_owned();
            let mut client =
                ClientConnection::new(Arc::clone(&client_config), server_name).unwrap();
            let mut server = ServerConnection::new(Arc::clone(&server_config)).unwrap();
            let mut rounds = 0;
            while client.is_handshaking() || server.is_handshaking() {
                rounds += 1;
                assert!(rounds < 10, "handshake did not finish for {name}");
                transfer(&mut client, &mut server);
                server.process_new_packets().unwrap();
                transfer(&mut server, &mut client);
                client.process_new_packets().unwrap();
            }
            // Application data flows through.
            client.writer().write_all(b"EHLO x\r\n").unwrap();
            transfer(&mut client, &mut server);
            server.process_new_packets().unwrap();
            let mut got = [0u8; 8];
            server.reader().read_exact(&mut got).unwrap();
            assert_eq!(&got, b"EHLO x\r\n");
            let info = tls_info(&server);
            assert_eq!(info.protocol.as_deref(), Some("TLSv1.3"));
            assert!(info.cipher.as_deref().unwrap().starts_with("TLS13_"));
            let expect_sni = name.parse::<std::net::IpAddr>().is_err();
            assert_eq!(info.server_name.is_some(), expect_sni, "{name}");
        }
        // A name the certificate does not cover fails verification.
        let server_name = rustls_pki_types::ServerName::try_from("other.example")
            .unwrap()
            .to_owned();
        let mut client = ClientConnection::new(client_config, server_name).unwrap();
        let mut server = ServerConnection::new(server_config).unwrap();
        transfer(&mut client, &mut server);
        server.process_new_packets().unwrap();
        transfer(&mut server, &mut client);
        assert!(client.process_new_packets().is_err());
    }

    /// Moves every pending TLS record from one connection to the other.
    fn transfer<A, B, DA, DB>(from: &mut A, to: &mut B)
    where
        A: std::ops::DerefMut<Target = rustls::ConnectionCommon<DA>>,
        B: std::ops::DerefMut<Target = rustls::ConnectionCommon<DB>>,
    {
        let mut buf = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut buf).unwrap();
        }
        let mut slice = &buf[..];
        while !slice.is_empty() {
            to.read_tls(&mut slice).unwrap();
        }
    }
}
