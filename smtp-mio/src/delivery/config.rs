//! How the engine routes, connects and limits itself.
//!
//! Every limit has a default taken from an RFC or from what Postfix ships,
//! cited where it is defined, and every one can be changed.

use std::time::Duration;

use smtp_proto::TlsMode;
use smtp_proto::address::Host;
use smtp_proto::client::{BodyTransfer, Credentials, Timeouts};
use smtp_proto::dkim::Signer;
use smtp_proto::dns::{CacheConfig, ResolverConfig};
use smtp_proto::mx::{TlsPolicy, WalkConfig};
use smtp_proto::tls::TlsConfig;

/// Where messages go.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Routing {
    /// Every message to one smarthost (a submission server, a relay).
    Relay(Relay),
    /// Each recipient domain's MX hosts, looked up in the loop.
    Mx(MxRouting),
}

/// A fixed relay ("smarthost"): one host and port, with the TLS mode and
/// credentials it asks for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Relay {
    /// Host name or IP address. A name is looked up once, when the engine
    /// is built (with the system resolver), and is the name the
    /// certificate must carry.
    pub host: String,
    /// Port: 587 for submission with STARTTLS, 465 for implicit TLS, 25
    /// for relay between MTAs (RFC 8314 §3.3, RFC 6409 §3.1).
    pub port: u16,
    /// TLS: required and verified by default
    /// (`TlsPolicy::new(TlsMode::Required)`) — a relay usually gets
    /// credentials, and those never cross the network in plaintext.
    /// [`TlsPolicy::with_verify`] turns verification off (Postfix's
    /// `encrypt`); under [`TlsMode::Opportunistic`] the rules of
    /// [`smtp_proto::mx::Walk`] apply, plaintext fallback included.
    pub tls: TlsPolicy,
    /// AUTH credentials (PLAIN, LOGIN or XOAUTH2, the strongest offered).
    pub credentials: Option<Credentials>,
    /// Allow AUTH without TLS (loopback tests, legacy relays). Off by
    /// default.
    pub allow_plaintext_auth: bool,
}

impl Relay {
    /// A relay at `host:port`, TLS required, no credentials.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            tls: TlsPolicy::new(TlsMode::Required),
            credentials: None,
            allow_plaintext_auth: false,
        }
    }
}

/// MX routing: per recipient domain, the MX hosts in preference order
/// (RFC 5321 §5.1), or the domain itself when it has no MX; an address
/// literal (`user@[192.0.2.1]`) is connected to directly. Every decision on
/// the way is [`smtp_proto::mx::Walk`]'s, configured by [`walk`](Self::walk).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MxRouting {
    /// The DNS servers asked (UDP, TCP on truncation), their timeouts and
    /// rounds, the bounds, and the answer cache: [`crate::dns::system_config`]
    /// reads `/etc/resolv.conf`. [`MxRouting::new`] turns the cache on
    /// ([`CacheConfig::default`]): a bulk send to one domain then asks for
    /// its MX and address records once per TTL instead of once per message.
    /// Set `resolver.cache = None` to ask every time.
    pub resolver: ResolverConfig,
    /// The SMTP port of the MX hosts: 25 (RFC 5321 §4.5.4.1). Tests point
    /// it elsewhere.
    pub port: u16,
    /// The walk's rules: TLS ([`WalkConfig::tls`], opportunistic and
    /// unverified by default, as Postfix's `may`: RFC 3207, RFC 7435),
    /// address families, hints, local names (mail-loop detection), hosts
    /// and addresses tried, recipients per transaction (100).
    pub walk: WalkConfig,
}

impl MxRouting {
    /// MX routing through `resolver` (its cache turned on if it has none),
    /// port 25, the walk's defaults.
    pub fn new(mut resolver: ResolverConfig) -> Self {
        if resolver.cache.is_none() {
            resolver.cache = Some(CacheConfig::default());
        }
        Self {
            resolver,
            port: 25,
            walk: WalkConfig::default(),
        }
    }
}

/// The engine's configuration: see each field for its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Relay or MX.
    pub routing: Routing,
    /// The name sent in EHLO. Default `localhost`; an MTA should set its
    /// fully-qualified name (RFC 5321 §4.1.1.1).
    pub helo_name: Host<'static>,
    /// At most this many connections in total (N). Default 100, Postfix's
    /// `default_process_limit`.
    pub max_connections: usize,
    /// At most this many connections per destination (M): the relay, or
    /// one recipient domain. Default 20, Postfix's
    /// `default_destination_concurrency_limit`.
    pub max_per_destination: usize,
    /// Messages one connection carries before it QUITs. Default 100 (Exim's
    /// `connection_max_messages` is 500; a bound keeps one long session from
    /// pinning a server process forever).
    pub max_messages_per_connection: usize,
    /// An idle connection is closed (QUIT) after this long without a job.
    /// Default 2 s, Postfix's `smtp_connection_cache_time_limit`.
    pub idle_timeout: Duration,
    /// Time to establish the TCP connection. Default 30 s, Postfix's
    /// `smtp_connect_timeout`.
    pub connect_timeout: Duration,
    /// How long to wait for the reply to QUIT before closing anyway.
    /// Default 10 s. Postfix waits `smtp_quit_timeout` (300 s); nothing
    /// depends on that reply — every message on the connection was already
    /// answered — so a shorter wait keeps shutdown prompt.
    pub quit_timeout: Duration,
    /// The session's per-command deadlines (RFC 5321 §4.5.3.2 defaults).
    pub timeouts: Timeouts,
    /// The trust for connections that verify the server's certificate
    /// ([`TlsPolicy::verify`]): webpki roots by default, or a given root
    /// store; see [`TlsConfig::builder`]. Connections that do not verify
    /// (opportunistic TLS by default) use an accept-any configuration of
    /// their own.
    pub tls: TlsConfig,
    /// BDAT when the server offers CHUNKING (default), or always DATA.
    pub body_transfer: BodyTransfer,
    /// DKIM signers: every job is signed once by each, in order (RSA and
    /// Ed25519 together for dual signing), before it is sent; one that
    /// cannot be signed fails with [`Failure::Dkim`](super::Failure::Dkim).
    /// Through a [`Handle`](super::Handle) the signing happens on the
    /// submitting thread. Default none.
    pub dkim: Vec<Signer>,
}

impl EngineConfig {
    /// A configuration with the given routing and every default.
    pub fn new(routing: Routing) -> Self {
        Self {
            routing,
            helo_name: Host::parse("localhost")
                .map(Host::into_owned)
                .unwrap_or_else(|_| unreachable_host()),
            max_connections: 100,
            max_per_destination: 20,
            max_messages_per_connection: 100,
            idle_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(30),
            quit_timeout: Duration::from_secs(10),
            timeouts: Timeouts::default(),
            tls: TlsConfig::default(),
            body_transfer: BodyTransfer::default(),
            dkim: Vec::new(),
        }
    }

    /// Through a relay.
    pub fn relay(relay: Relay) -> Self {
        Self::new(Routing::Relay(relay))
    }

    /// By MX.
    pub fn mx(mx: MxRouting) -> Self {
        Self::new(Routing::Mx(mx))
    }
}

/// `localhost` always parses; this only satisfies the type checker without
/// a panic path.
fn unreachable_host() -> Host<'static> {
    Host::Literal(smtp_proto::address::AddressLiteral::Ipv4(
        std::net::Ipv4Addr::LOCALHOST,
    ))
}
