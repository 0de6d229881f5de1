//! Shared by the loopback server tests: a server on 127.0.0.1 with a
//! Maildir in a temporary directory and a self-signed TLS identity.

// Each test crate uses its own subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use smtp_mio::server::Backend;
use smtp_mio::server::maildir::Maildir;
use smtp_mio::server::store::{Credentials, Store, StoreBackend};
use smtp_mio::server::{Options, Running, Server};
use smtp_mio::tls::TlsIdentity;
use smtp_proto::address::Domain;
use smtp_proto::server::Config;
use smtp_proto::{InjectionPolicy, TlsMode};

pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// A server on loopback with a Maildir in a temporary directory.
pub(crate) struct TestServer {
    pub(crate) running: Option<Running>,
    pub(crate) addr: SocketAddr,
    pub(crate) tls_addr: Option<SocketAddr>,
    pub(crate) identity: Arc<TlsIdentity>,
    pub(crate) dir: tempfile::TempDir,
}

impl TestServer {
    pub(crate) fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    pub(crate) fn files(&self, sub: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.maildir().join(sub))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    pub(crate) fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.shutdown();
        }
    }
}

pub(crate) fn session_config() -> Config {
    Config::new(Domain::new("mx.test").unwrap().into_owned())
}

/// Starts a server with the store backend; `configure` adjusts the options.
pub(crate) fn start_store(
    credentials: Credentials,
    configure: impl FnOnce(&mut Options),
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let maildir = Maildir::open(dir.path().join("maildir"))
        .unwrap()
        .with_hostname("mx.test");
    let backend = StoreBackend::new(Store::Maildir(Arc::new(maildir)), "mx.test", credentials);
    start_with(backend, dir, configure)
}

pub(crate) fn start_with<B: Backend>(
    backend: B,
    dir: tempfile::TempDir,
    configure: impl FnOnce(&mut Options),
) -> TestServer {
    let identity =
        Arc::new(TlsIdentity::self_signed("mx.test", std::time::SystemTime::now()).unwrap());
    let mut options = Options::new(session_config());
    options.listen = vec!["127.0.0.1:0".parse().unwrap()];
    options.threads = 2;
    options.shutdown_grace = Duration::from_secs(5);
    options.tls = Some(identity.server_config().unwrap());
    options.session.tls = TlsMode::Opportunistic;
    options.session.on_injection = InjectionPolicy::Close;
    configure(&mut options);
    let server = Server::bind(options, backend).unwrap();
    let addr = server
        .local_addrs()
        .first()
        .copied()
        .unwrap_or(([127, 0, 0, 1], 0).into());
    let tls_addr = server.tls_local_addrs().first().copied();
    let running = server.spawn().unwrap();
    TestServer {
        running: Some(running),
        addr,
        tls_addr,
        identity,
        dir,
    }
}
