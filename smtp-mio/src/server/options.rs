//! How the server listens ([`Options`]), and what its loops share once it
//! is bound ([`Shared`]): the options, the connection counters and the
//! shutdown flag.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;

use smtp_proto::proxy::Cidr;
use smtp_proto::reply::Reply;
use smtp_proto::server::{self as proto, ClientRates, RateKind, RateLimits};

use super::listener::{ConnectionLimiter, ConnectionLimits};

/// How the server listens and what each session enforces.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The configuration of every session (hostname, extensions, limits,
    /// timeouts, TLS and AUTH policy).
    pub session: proto::Config,
    /// Listeners whose sessions follow `session.tls`: STARTTLS not offered,
    /// offered, or required
    /// ([`TlsMode::Required`](smtp_proto::TlsMode::Required): `530` to
    /// mail before it), or implicit TLS.
    pub listen: Vec<SocketAddr>,
    /// Implicit-TLS listeners (RFC 8314 §3.3, port 465): their sessions
    /// run with [`TlsMode::Implicit`](smtp_proto::TlsMode::Implicit)
    /// whatever `session.tls` says.
    pub tls_listen: Vec<SocketAddr>,
    /// The TLS configuration, required for any TLS mode but
    /// [`TlsMode::Disabled`](smtp_proto::TlsMode::Disabled) and for
    /// implicit-TLS listeners.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Event loops (threads). Default: one per available core.
    pub threads: usize,
    /// Connection limits (`421` beyond them).
    pub limits: ConnectionLimits,
    /// How long a shutdown waits for messages in progress. Default 30 s:
    /// long enough for a large message on a slow link to finish, short
    /// enough for a service manager's stop timeout (systemd's is 90 s).
    pub shutdown_grace: Duration,
    /// The PROXY protocol (v1 and v2, HAProxy's spec): when not empty,
    /// every listener expects a PROXY header before anything else (before
    /// the greeting, before an implicit-TLS handshake), and only from
    /// these networks — the trusted proxies. The client the header names
    /// is then the connection's peer for `Received:`, the per-client
    /// limits and the logs. A connection from elsewhere, with a malformed
    /// header or none within [`Options::proxy_timeout`], is closed without
    /// a greeting. Default empty: no PROXY protocol.
    pub proxy_protocol: Vec<Cidr>,
    /// How long a connection may take to send its PROXY header. Default
    /// 5 s, Postfix's `smtpd_upstream_proxy_timeout`: a proxy sends it at
    /// once.
    pub proxy_timeout: Duration,
    /// Per-client connection, message and recipient rates (Postfix's
    /// anvil; see [`smtp_proto::server::rates`]): over them a connection
    /// gets `421 4.7.0` instead of the greeting, a `MAIL` or `RCPT`
    /// `450 4.7.1`. Counted for the client the PROXY header names, if
    /// any. Default: no rate limited.
    pub rates: RateLimits,
}

impl Options {
    /// Options with `session` and every other field at its default (no
    /// listener yet).
    pub fn new(session: proto::Config) -> Self {
        Self {
            session,
            listen: Vec::new(),
            tls_listen: Vec::new(),
            tls: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            limits: ConnectionLimits::default(),
            shutdown_grace: Duration::from_secs(30),
            proxy_protocol: Vec::new(),
            proxy_timeout: Duration::from_secs(5),
            rates: RateLimits::default(),
        }
    }
}

/// Which kind of listener accepted a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ListenerKind {
    /// One of [`Options::listen`]: the sessions follow `session.tls`.
    Plain,
    /// One of [`Options::tls_listen`]: implicit TLS.
    ImplicitTls,
}

/// What the loops share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) options: Options,
    pub(super) limiter: ConnectionLimiter,
    shutdown: AtomicBool,
    /// `421 4.7.0 <host> Too many connections` for refused connections.
    pub(super) too_many: Vec<u8>,
    /// The per-client rate counters, shared by the loops (`None`: no rate
    /// limited).
    rates: Option<Mutex<ClientRates>>,
}

impl Shared {
    pub(super) fn new(options: Options) -> Self {
        let too_many = format!(
            "421 4.7.0 {} Too many connections, try again later\r\n",
            options.session.hostname
        )
        .into_bytes();
        let limiter = ConnectionLimiter::new(options.limits);
        let rates = options
            .rates
            .is_active()
            .then(|| Mutex::new(ClientRates::new(options.rates.clone())));
        Self {
            rates,
            options,
            limiter,
            shutdown: AtomicBool::new(false),
            too_many,
        }
    }

    /// Counts a `kind` event of client `ip`; the refusal if it is over its
    /// rate.
    pub(super) fn over_rate(
        &self,
        kind: RateKind,
        ip: IpAddr,
        now: Instant,
    ) -> Option<Reply<'static>> {
        let rates = self.rates.as_ref()?;
        // A poisoned lock only means another loop panicked mid-count: the
        // counters are still consistent enough to use.
        let mut rates = rates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let counted = match kind {
            RateKind::Connections => rates.connect(now, ip),
            RateKind::Messages => rates.message(now, ip),
            _ => rates.recipient(now, ip),
        };
        let exceeded = counted.err()?;
        tracing::info!(client = %exceeded.client, rate = ?exceeded.what, "over the per-client rate");
        Some(exceeded.reply(self.options.session.hostname.as_str()))
    }

    /// Asks every loop to shut down (they still need waking).
    pub(super) fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    /// Whether a shutdown was requested.
    pub(super) fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }
}
