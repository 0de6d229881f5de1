//! What only this crate's tests share: the mio server on 127.0.0.1 with a
//! Maildir in a temporary directory and a self-signed TLS identity, a
//! resolver for the fake DNS server, and for the delivery engine its
//! client timeouts ([`timeouts`]) and the loop that runs it until every job
//! is reported ([`drive`]). Everything else (the fake DNS server,
//! scripted servers, the test PKI, the peers) is in `smtp-tests`.
//!
//! The server's backend is wrapped in [`Watched`], which counts the sessions
//! that ended, so that a test waits for "every connection is gone" on a
//! signal ([`TestServer::wait_sessions_ended`]) instead of sleeping and
//! looking again.

// Each test crate uses its own subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use smtp_mio::server::completion::Responder;
use smtp_mio::server::maildir::Maildir;
use smtp_mio::server::store::{Credentials, Store, StoreBackend};
use smtp_mio::server::{Backend, ConnectionInfo, Session};
use smtp_mio::server::{Options, Running, Server};
use smtp_mio::tls::TlsIdentity;
use smtp_proto::address::{Domain, ForwardPath, Host, ReversePath};
use smtp_proto::command::{Argument, MailParameters, RcptParameters};
use smtp_proto::dns::ResolverConfig;
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::Reply;
use smtp_proto::secret::Secret;
use smtp_proto::server::{CloseReason, Config, Envelope, HeloKind, ResetReason};
use smtp_proto::{BodyMode, InjectionPolicy, TlsInfo, TlsMode};
use smtp_tests::fake_dns::FakeDns;
use smtp_tests::sync::Signal;

pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// A server on loopback with a Maildir in a temporary directory.
pub(crate) struct TestServer {
    pub(crate) running: Option<Running>,
    pub(crate) addr: SocketAddr,
    pub(crate) tls_addr: Option<SocketAddr>,
    pub(crate) identity: Arc<TlsIdentity>,
    pub(crate) dir: tempfile::TempDir,
    /// Sessions ended so far (dropped by the server, after `closed`).
    pub(crate) ended: Arc<Signal<usize>>,
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

    /// The messages delivered to `new/`, in file-name order.
    pub(crate) fn messages(&self) -> Vec<String> {
        self.files("new")
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    }

    /// Waits until `n` sessions in all have ended (their connections
    /// closed and their handlers dropped, with whatever they held), at most
    /// [`TIMEOUT`].
    pub(crate) fn wait_sessions_ended(&self, n: usize) {
        let ended = self.ended.wait_for(TIMEOUT, |e| (*e >= n).then_some(()));
        assert!(
            ended.is_some(),
            "{} of {n} sessions ended within {TIMEOUT:?}",
            self.ended.read(|e| *e)
        );
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
    let (dir, backend) = store_backend(credentials);
    start_with(backend, dir, configure)
}

/// A temporary directory and the store backend delivering into its
/// `maildir`, for [`start_with`] once the test has added to it.
pub(crate) fn store_backend(credentials: Credentials) -> (tempfile::TempDir, StoreBackend) {
    let dir = tempfile::tempdir().unwrap();
    let maildir = Maildir::open(dir.path().join("maildir"))
        .unwrap()
        .with_hostname("mx.test");
    let backend = StoreBackend::new(Store::Maildir(Arc::new(maildir)), "mx.test", credentials);
    (dir, backend)
}

/// The DKIM verification service asking the fake DNS server `dns`, each
/// key lookup bounded by 5 seconds.
pub(crate) fn dkim_service(dns: &FakeDns) -> smtp_mio::server::authentication::DkimService {
    let mut config = smtp_mio::server::authentication::DkimConfig::new(resolver(dns));
    config.timeout = Duration::from_secs(5);
    smtp_mio::server::authentication::DkimService::start(config).unwrap()
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
    let ended = Arc::new(Signal::new(0));
    let backend = Watched {
        inner: backend,
        ended: Arc::clone(&ended),
    };
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
        ended,
    }
}

/// The resolver settings for `dns` alone: short timeouts, one round.
pub(crate) fn resolver(dns: &FakeDns) -> ResolverConfig {
    let mut config = ResolverConfig::new(vec![dns.addr()]);
    config.timeout = Duration::from_millis(300);
    config.attempts = 1;
    config
}

/// A backend whose sessions count themselves when they end.
pub(crate) struct Watched<B> {
    inner: B,
    ended: Arc<Signal<usize>>,
}

impl<B: Backend> Backend for Watched<B> {
    type Session = WatchedSession<B::Session>;

    fn connect(&self, info: &ConnectionInfo) -> Result<Self::Session, Reply<'static>> {
        Ok(WatchedSession {
            inner: Some(self.inner.connect(info)?),
            ended: Arc::clone(&self.ended),
        })
    }
}

/// A session that, when dropped, drops its inner session first (a Maildir
/// delivery in progress removes its `tmp/` file then) and counts itself.
pub(crate) struct WatchedSession<S> {
    /// Taken only when dropped.
    inner: Option<S>,
    ended: Arc<Signal<usize>>,
}

impl<S> WatchedSession<S> {
    fn inner(&mut self) -> &mut S {
        self.inner.as_mut().expect("present until dropped")
    }
}

impl<S> Drop for WatchedSession<S> {
    fn drop(&mut self) {
        drop(self.inner.take());
        self.ended.update(|n| *n += 1);
    }
}

impl<S: Session> Session for WatchedSession<S> {
    fn helo(&mut self, kind: HeloKind, host: &Host<'_>) {
        self.inner().helo(kind, host);
    }

    fn tls_established(&mut self, info: &TlsInfo) {
        self.inner().tls_established(info);
    }

    fn mail(&mut self, from: &ReversePath<'_>, params: &MailParameters<'_>, answer: Responder) {
        self.inner().mail(from, params, answer);
    }

    fn rcpt(&mut self, to: &ForwardPath<'_>, params: &RcptParameters<'_>, answer: Responder) {
        self.inner().rcpt(to, params, answer);
    }

    fn data_start(&mut self, envelope: &Envelope<'_>, mode: BodyMode, answer: Responder) {
        self.inner().data_start(envelope, mode, answer);
    }

    fn data(&mut self, chunk: &[u8]) {
        self.inner().data(chunk);
    }

    fn data_end(&mut self, envelope: &Envelope<'_>, size: u64, answers: Vec<Responder>) {
        self.inner().data_end(envelope, size, answers);
    }

    fn reset(&mut self, envelope: &Envelope<'_>, reason: ResetReason) {
        self.inner().reset(envelope, reason);
    }

    fn auth_plain(
        &mut self,
        authzid: Option<&str>,
        authcid: &str,
        password: Secret<&str>,
        answer: Responder,
    ) {
        self.inner().auth_plain(authzid, authcid, password, answer);
    }

    fn auth_login(&mut self, username: &str, password: Secret<&str>, answer: Responder) {
        self.inner().auth_login(username, password, answer);
    }

    fn auth(
        &mut self,
        mechanism: &Mechanism<'_>,
        initial_response: Option<Secret<Vec<u8>>>,
        answer: Responder,
    ) {
        self.inner().auth(mechanism, initial_response, answer);
    }

    fn auth_response(&mut self, response: Secret<&[u8]>, answer: Responder) {
        self.inner().auth_response(response, answer);
    }

    fn vrfy(&mut self, target: &Argument<'_>, answer: Responder) {
        self.inner().vrfy(target, answer);
    }

    fn expn(&mut self, list: &Argument<'_>, answer: Responder) {
        self.inner().expn(list, answer);
    }

    fn closed(&mut self, reason: CloseReason) {
        self.inner().closed(reason);
    }
}

/// Client timeouts that are all `d`: long enough for a loaded machine, short
/// enough to bound a broken test.
pub(crate) fn timeouts(d: Duration) -> smtp_proto::client::Timeouts {
    let mut t = smtp_proto::client::Timeouts::default();
    t.greeting = d;
    t.mail = d;
    t.rcpt = d;
    t.data_initiation = d;
    t.data_block = d;
    t.data_termination = d;
    t.bdat_chunk = d;
    t.other = d;
    t.tls_handshake = d;
    t
}

/// Runs the delivery engine until every job is reported, at most `limit`,
/// and checks that each of `submitted` got exactly one result; the results
/// in job order.
pub(crate) fn drive(
    engine: &mut smtp_mio::delivery::Engine,
    submitted: &[smtp_mio::delivery::JobId],
    limit: Duration,
) -> Vec<smtp_mio::delivery::JobResult> {
    let start = std::time::Instant::now();
    let mut results = Vec::new();
    while !engine.is_done() {
        assert!(start.elapsed() < limit, "engine still busy: {engine:?}");
        engine.poll(Some(Duration::from_millis(100))).unwrap();
        while let Some(r) = engine.next_result() {
            results.push(r);
        }
    }
    while let Some(r) = engine.next_result() {
        results.push(r);
    }
    let ids: std::collections::HashSet<_> = results.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), results.len(), "a job was reported twice");
    assert_eq!(
        ids,
        submitted.iter().copied().collect(),
        "every job reported exactly once"
    );
    results.sort_by_key(|r| r.id);
    results
}

/// A TLS client session that trusts `identity` (the test server's
/// self-signed one) and names the server `mx.test`.
pub(crate) fn tls_client(identity: &TlsIdentity) -> rustls::ClientConnection {
    let config = smtp_mio::tls::TlsConfig::builder()
        .ca_pem(identity.chain_pem().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    rustls::ClientConnection::new(
        Arc::clone(config.client_config()),
        rustls::pki_types::ServerName::try_from("mx.test").unwrap(),
    )
    .unwrap()
}
