//! How the resolver asks: servers, timeouts, rounds, bounds, cache — and
//! the `resolv.conf(5)` text that usually says so.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The DNS port. RFC 1035 §4.2.
pub const DNS_PORT: u16 = 53;

/// Nameservers read from `resolv.conf` at most (glibc's `MAXNS`).
pub const MAX_NAMESERVERS: usize = 3;

/// The longest per-try timeout `resolv.conf` may set (glibc's
/// `RES_MAXRETRANS`, 30 s).
pub const MAX_RESOLV_CONF_TIMEOUT: Duration = Duration::from_secs(30);

/// The most rounds `resolv.conf` may set (glibc's `RES_MAXRETRY`).
pub const MAX_RESOLV_CONF_ATTEMPTS: usize = 5;

/// How a [`Resolver`](super::Resolver) asks, and how much it holds at once.
///
/// Built with [`ResolverConfig::new`] (servers, defaults for the rest) or
/// [`ResolverConfig::from_resolv_conf`]; the fields are public so that a
/// caller can change any of them. Values out of range are brought into
/// range when the resolver is built (at least one attempt, at least one
/// millisecond per try, at least one lookup and one stream).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolverConfig {
    /// The servers, asked in this order in every round (RFC 1035 §4.2.1:
    /// try other servers before repeating a query to one). Default: one
    /// resolver on the local host, `127.0.0.1:53`, glibc's default.
    pub servers: Vec<SocketAddr>,
    /// The time one server gets to answer one try. A try moved to TCP after
    /// a truncated answer gets this time again for the TCP exchange.
    /// Default 5 s: glibc's `RES_TIMEOUT` (`resolv.conf(5)` `timeout:`);
    /// RFC 1123 §6.1.3.3 asks for retransmission intervals of seconds, not
    /// less. A timeout too large to add to an `Instant` arms no deadline.
    pub timeout: Duration,
    /// Rounds over [`servers`](Self::servers) before a lookup gives up: a
    /// lookup makes at most `servers.len() * attempts` tries. Default 2:
    /// glibc's `RES_DFLRETRY` (`resolv.conf(5)` `attempts:`).
    pub attempts: usize,
    /// Lookups started and not yet handed out by
    /// [`poll`](super::Resolver::poll); more are refused with
    /// [`LookupError::TooManyLookups`](super::LookupError::TooManyLookups).
    /// Default 256. Each distinct question in flight holds one message id,
    /// and every id in flight is one more value a blind spoofer may hit
    /// (RFC 5452 §5, §9.2): 256 of 65536 keeps that below 1 in 256 per
    /// forged datagram before the source port is even guessed, while
    /// leaving room for a delivery engine's 100 connections (an MX and two
    /// address lookups each).
    pub max_lookups: usize,
    /// TCP streams open at once. A truncated answer that finds none free
    /// fails its try (the next server is asked; nothing queues). Default 8:
    /// RFC 7766 §6.2.2 asks clients to keep concurrent connections to a
    /// server few; truncation is rare (answers above
    /// [`EDNS_UDP_PAYLOAD`](super::EDNS_UDP_PAYLOAD)).
    pub max_streams: usize,
    /// The largest DNS message accepted over TCP, in octets; a frame that
    /// announces more fails its try. Default and ceiling 65535, the most a
    /// two-octet length can say (RFC 1035 §4.2.2); lower it to bound the
    /// memory of a stream below `max_streams` × 64 KiB.
    pub max_tcp_message: usize,
    /// The answer cache, if any. Default none: a stub normally sits in
    /// front of a caching recursive resolver (RFC 1034 §5.3.1), which
    /// already keeps answers for their TTL; turn it on to save the round
    /// trips of a bulk send that asks about one domain many times.
    pub cache: Option<CacheConfig>,
}

impl ResolverConfig {
    /// Asks `servers` in order, with the defaults for everything else.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        Self {
            servers,
            timeout: Duration::from_secs(5),
            attempts: 2,
            max_lookups: 256,
            max_streams: 8,
            max_tcp_message: super::MAX_TCP_MESSAGE,
            cache: None,
        }
    }

    /// Parses `resolv.conf(5)` text.
    ///
    /// - `nameserver ADDR`: at most [`MAX_NAMESERVERS`] (glibc's `MAXNS`;
    ///   later lines are ignored), port 53. An address with a zone index
    ///   (`fe80::1%eth0`) or anything else that is not an IP address is
    ///   skipped. Without a usable line, `127.0.0.1` (glibc's default).
    /// - `options timeout:N` (seconds, 1 to 30, glibc's bounds) and
    ///   `options attempts:N` (1 to 5).
    /// - Comments start with `#` or `;`. Other lines and options (`search`,
    ///   `domain`, `sortlist`, `ndots:`, `rotate` …) concern host name
    ///   completion or are not supported, and are ignored, as are lines that
    ///   do not parse: a broken file degrades to the defaults, never to an
    ///   error.
    ///
    /// Reading the file is the transport's business; this function only
    /// reads text.
    pub fn from_resolv_conf(text: &str) -> Self {
        let mut config = Self::new(Vec::new());
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default().trim();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok())
                        && config.servers.len() < MAX_NAMESERVERS
                    {
                        config.servers.push(SocketAddr::new(ip, DNS_PORT));
                    }
                }
                Some("options") => {
                    for option in words {
                        if let Some(n) = option.strip_prefix("timeout:")
                            && let Ok(secs) = n.parse::<u64>()
                        {
                            config.timeout = Duration::from_secs(secs)
                                .clamp(Duration::from_secs(1), MAX_RESOLV_CONF_TIMEOUT);
                        } else if let Some(n) = option.strip_prefix("attempts:")
                            && let Ok(n) = n.parse::<usize>()
                        {
                            config.attempts = n.clamp(1, MAX_RESOLV_CONF_ATTEMPTS);
                        }
                    }
                }
                _ => {}
            }
        }
        if config.servers.is_empty() {
            config
                .servers
                .push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DNS_PORT));
        }
        config
    }

    /// The same configuration with a cache.
    #[must_use]
    pub fn with_cache(mut self, cache: CacheConfig) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The configuration with every value in range (see the type docs).
    pub(crate) fn sanitized(mut self) -> Self {
        self.timeout = self.timeout.max(Duration::from_millis(1));
        self.attempts = self.attempts.max(1);
        // Every lookup in flight may hold one message id: never more than
        // the id space (then a free id always exists).
        self.max_lookups = self.max_lookups.clamp(1, usize::from(u16::MAX));
        self.max_streams = self.max_streams.max(1);
        self.max_tcp_message = self.max_tcp_message.clamp(12, super::MAX_TCP_MESSAGE);
        if let Some(cache) = &mut self.cache {
            cache.max_ttl = cache.max_ttl.max(cache.min_ttl);
        }
        self
    }
}

/// The default configuration: `ResolverConfig::new` with the local host's
/// resolver, as glibc assumes without a `resolv.conf`.
impl Default for ResolverConfig {
    fn default() -> Self {
        Self::from_resolv_conf("")
    }
}

/// How the answer cache keeps answers. Time comes from the caller (the
/// `now` of each call); nothing expires on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Answers kept at most; when full, expired entries go first, then the
    /// one closest to expiry. Default 512: a large bulk send touches a few
    /// hundred domains; each entry holds one decoded answer (bounded by the
    /// 64 KiB message it came from, usually far less).
    pub max_entries: usize,
    /// TTLs below this are raised to it, in seconds. Default 0: a TTL of
    /// zero means "use only for this transaction" (RFC 1035 §3.2.1), and
    /// such answers are then not cached.
    pub min_ttl: u32,
    /// TTLs above this are lowered to it, in seconds. Default 86400 (one
    /// day): RFC 8767 §4 suggests capping TTLs at 7 days; a stub in front
    /// of a recursive resolver gains nothing from holding answers longer
    /// than its resolver would re-check them.
    pub max_ttl: u32,
    /// Negative answers (NXDOMAIN, NODATA) are kept for the SOA-derived TTL
    /// of RFC 2308 §5, at most this long, in seconds; a negative answer
    /// without an SOA is kept for
    /// [`negative_ttl_without_soa`](Self::negative_ttl_without_soa) (by
    /// default not at all, RFC 2308 §5). Default 3600: RFC 2308 §5 finds
    /// one to three hours sensible and longer problematic, and a domain
    /// that just got its MX records should not wait long to receive mail.
    pub max_negative_ttl: u32,
    /// How long a negative answer *without* an SOA is kept, in seconds.
    /// Default 0: not kept, as RFC 2308 §5 says. Its reason there is two
    /// caching servers answering each other and keeping a negative answer
    /// alive forever; a stub cache answers nobody but its own program, so
    /// a short time is safe, and it matters where a resolver leaves the SOA
    /// out and limits the rate of questions (some cloud resolvers do): a
    /// receiving server asks the same SPF and DMARC names for every message
    /// of a sender, and without this every one of them goes to the network.
    pub negative_ttl_without_soa: u32,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 512,
            min_ttl: 0,
            max_ttl: 86_400,
            max_negative_ttl: 3_600,
            negative_ttl_without_soa: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_and_options() {
        let text = "\
# generated
search example.org
nameserver 192.0.2.1
nameserver 2001:db8::53 ; trailing comment
nameserver not-an-address
nameserver fe80::1%eth0
nameserver 192.0.2.2
nameserver 192.0.2.3
options ndots:2 timeout:3 attempts:4
";
        let config = ResolverConfig::from_resolv_conf(text);
        assert_eq!(
            config.servers,
            [
                "192.0.2.1:53".parse::<SocketAddr>().unwrap(),
                "[2001:db8::53]:53".parse().unwrap(),
                "192.0.2.2:53".parse().unwrap(),
            ]
        );
        assert_eq!(config.timeout, Duration::from_secs(3));
        assert_eq!(config.attempts, 4);
    }

    #[test]
    fn resolv_conf_defaults_and_caps() {
        let config = ResolverConfig::from_resolv_conf("options timeout:99 attempts:0\n");
        assert_eq!(
            config.servers,
            ["127.0.0.1:53".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.attempts, 1);
        let config = ResolverConfig::from_resolv_conf("options timeout:0 attempts:9\n");
        assert_eq!(config.timeout, Duration::from_secs(1));
        assert_eq!(config.attempts, 5);
        let config = ResolverConfig::from_resolv_conf("");
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(config.attempts, 2);
        assert_eq!(config, ResolverConfig::default());
        assert_eq!(config.cache, None);
    }

    #[test]
    fn resolv_conf_garbage_degrades_to_defaults() {
        let text = "nameserver\noptions timeout:x attempts:-1 timeout:\n\u{0}\u{ff}junk\nnameserver 999.1.1.1\n";
        let config = ResolverConfig::from_resolv_conf(text);
        assert_eq!(config, ResolverConfig::default());
    }

    #[test]
    fn sanitized_brings_values_into_range() {
        let mut config = ResolverConfig::new(Vec::new());
        config.timeout = Duration::ZERO;
        config.attempts = 0;
        config.max_lookups = 0;
        config.max_streams = 0;
        config.max_tcp_message = 1 << 20;
        config.cache = Some(CacheConfig {
            min_ttl: 60,
            max_ttl: 10,
            ..CacheConfig::default()
        });
        let config = config.sanitized();
        assert_eq!(config.timeout, Duration::from_millis(1));
        assert_eq!(config.attempts, 1);
        assert_eq!(config.max_lookups, 1);
        assert_eq!(config.max_streams, 1);
        assert_eq!(config.max_tcp_message, 65_535);
        assert_eq!(config.cache.unwrap().max_ttl, 60);
    }
}
