//! The test PKI: a CA that signs server certificates, self-signed
//! certificates, and the server side of a TLS handshake over a socket.
//!
//! Built on the core's rustls glue ([`smtp_proto::tls`]), as the
//! transports are: server identities are [`TlsIdentity`] values and every
//! configuration uses the core's ring provider. The core makes self-signed
//! certificates only (what a mail server makes at its first start), so the
//! CA is rcgen's: a test that verifies certificates needs a chain a client
//! can be told to trust, and one CA can sign certificates for several host
//! names (the MX hosts of a scenario).
//!
//! Every key is fresh (from the OS random source, as rustls' handshakes
//! are): nothing secret is checked in.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use smtp_proto::tls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use smtp_proto::tls::rustls::{
    ConnectionCommon, ServerConfig, ServerConnection, SideData, StreamOwned,
};
use smtp_proto::tls::{TlsConfig, TlsIdentity};

/// How long the server side of a handshake may take before it fails.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A certificate authority for one test: its certificate is what a client
/// is told to trust, and it signs server certificates for any names.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// A fresh CA ("smtp-tests test CA").
    pub fn new() -> Self {
        // Invariant: constant, valid parameters and a freshly generated key.
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "smtp-tests test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("a CA certificate");
        Self { issuer }
    }

    /// The CA certificate, PEM: what a client trusts (`--tls-ca`,
    /// [`TlsConfig::builder`]`().ca_pem(..)`).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A client configuration trusting this CA only.
    pub fn client_config(&self) -> TlsConfig {
        // Invariant: the CA's own PEM is valid.
        TlsConfig::builder()
            .ca_pem(self.pem().as_bytes())
            .expect("the CA's PEM")
            .build()
            .expect("a client configuration")
    }

    /// A server certificate for `names` (host names or IP addresses; the
    /// first is also the common name), signed by this CA, with its key.
    ///
    /// # Panics
    ///
    /// When a name is neither a valid DNS name nor an IP address.
    pub fn issue(&self, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("valid certificate names");
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first);
        }
        let key = KeyPair::generate().expect("a server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a signed certificate");
        let identity = TlsIdentity::new(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("one certificate");
        Leaf {
            identity,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A server certificate signed by a [`TestCa`], with its key.
#[derive(Debug)]
pub struct Leaf {
    /// The certificate and key, as a server presents them.
    pub identity: TlsIdentity,
    /// The certificate, PEM (for peers that read files).
    pub cert_pem: String,
    /// The private key, PEM (for peers that read files).
    pub key_pem: String,
}

impl Leaf {
    /// A rustls server configuration presenting this certificate.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        // Invariant: the key is the certificate's own.
        self.identity
            .server_config()
            .expect("a server configuration")
    }
}

/// A fresh CA and a server certificate it signed for `localhost` and
/// `127.0.0.1`: what most TLS tests need.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate, PEM: what the client trusts.
    pub ca_pem: String,
    /// The server certificate, PEM.
    pub cert_pem: String,
    /// The server certificate's key, PEM.
    pub key_pem: String,
    /// A rustls server configuration presenting the server certificate.
    pub server_config: Arc<ServerConfig>,
}

impl TestPki {
    /// Writes the server certificate and its key to `cert.pem` and
    /// `key.pem` in `dir` (for peers that read files); returns both paths.
    pub fn write_server_files(&self, dir: &Path) -> io::Result<(PathBuf, PathBuf)> {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, &self.cert_pem)?;
        std::fs::write(&key, &self.key_pem)?;
        Ok((cert, key))
    }
}

/// A fresh [`TestPki`].
pub fn pki() -> TestPki {
    let ca = TestCa::new();
    let leaf = ca.issue(&["localhost", "127.0.0.1"]);
    TestPki {
        ca_pem: ca.pem(),
        server_config: leaf.server_config(),
        cert_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
    }
}

/// A rustls server configuration presenting a fresh self-signed
/// certificate for `host` (and `localhost`, `127.0.0.1`, `::1`): the core's
/// [`TlsIdentity::self_signed`], which a verifying client refuses.
pub fn self_signed(host: &str) -> Arc<ServerConfig> {
    // Invariant: the clock is after 1970, and the key is the certificate's.
    TlsIdentity::self_signed(host, SystemTime::now())
        .and_then(|identity| identity.server_config())
        .expect("a self-signed identity")
}

/// A TCP connection in plaintext or over TLS, either side
/// (`ClientConnection` or `ServerConnection`): what a hand-written peer
/// reads and writes before and after STARTTLS.
#[derive(Debug)]
pub enum MaybeTls<C> {
    /// Plaintext.
    Plain(TcpStream),
    /// TLS over the connection.
    Tls(Box<StreamOwned<C, TcpStream>>),
}

impl<C, S> Read for MaybeTls<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<S>>,
    S: SideData,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl<C, S> Write for MaybeTls<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<S>>,
    S: SideData,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// Runs the server side of a TLS handshake on `tcp` (bounded by
/// [`HANDSHAKE_TIMEOUT`]) and returns the encrypted stream.
pub fn accept_tls(
    tcp: TcpStream,
    config: &Arc<ServerConfig>,
) -> io::Result<StreamOwned<ServerConnection, TcpStream>> {
    tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    tcp.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use smtp_proto::tls::rustls::ClientConnection;
    use smtp_proto::tls::server_name;

    use super::*;

    /// A client trusting the CA `ca_pem` connects to a server presenting
    /// `config` under the name `host`; the server echoes one byte.
    fn handshake(ca_pem: &str, config: Arc<ServerConfig>, host: &str) -> io::Result<u8> {
        let trust = TlsConfig::builder()
            .ca_pem(ca_pem.as_bytes())
            .and_then(|b| b.build())
            .map_err(io::Error::other)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = thread::spawn(move || -> io::Result<()> {
            let (tcp, _) = listener.accept()?;
            let mut tls = accept_tls(tcp, &config)?;
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte)?;
            tls.write_all(&byte)?;
            tls.flush()
        });
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let client = ClientConnection::new(
            Arc::clone(trust.client_config()),
            server_name(host).map_err(io::Error::other)?,
        )
        .map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(client, tcp);
        let result = (|| {
            tls.write_all(b"x")?;
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte)?;
            Ok(byte[0])
        })();
        drop(tls);
        let _ = server.join();
        result
    }

    #[test]
    fn a_leaf_is_trusted_for_its_names_through_its_ca() {
        let ca = TestCa::new();
        let leaf = ca.issue(&["mx1.example.net", "127.0.0.1"]);
        assert!(leaf.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(leaf.key_pem.contains("PRIVATE KEY"));
        let ca_pem = ca.pem();
        assert!(!ca.client_config().is_dangerous());
        assert_eq!(
            handshake(&ca_pem, leaf.server_config(), "mx1.example.net").unwrap(),
            b'x'
        );
        assert_eq!(
            handshake(&ca_pem, leaf.server_config(), "127.0.0.1").unwrap(),
            b'x'
        );
        // Another name, another CA, a self-signed certificate: refused.
        assert!(handshake(&ca_pem, leaf.server_config(), "mx2.example.net").is_err());
        let other = TestCa::new().pem();
        assert!(handshake(&other, leaf.server_config(), "mx1.example.net").is_err());
        let untrusted = self_signed("mx1.example.net");
        assert!(handshake(&ca_pem, untrusted, "mx1.example.net").is_err());
    }

    #[test]
    fn the_default_pki_serves_localhost() {
        let pki = pki();
        assert_eq!(
            handshake(&pki.ca_pem, pki.server_config.clone(), "localhost").unwrap(),
            b'x'
        );
        assert!(pki.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pki.key_pem.contains("PRIVATE KEY"));
    }
}
