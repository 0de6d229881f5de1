//! A small blocking stub resolver for MX delivery, on top of [`smtp_proto::mx`].
//!
//! # Why a resolver of our own
//!
//! The system resolver (`getaddrinfo`) answers A and AAAA but not MX, and it
//! hides the difference between "no such domain" (bounce the mail) and "the
//! server failed" (retry later), which MX delivery must know (RFC 5321 §5.1,
//! RFC 7505). The protocol work — building queries, judging answers, CNAMEs,
//! null MX, ordering hosts — lives in the core ([`smtp_proto::mx`]); this
//! module only moves the bytes:
//!
//! - over UDP to the nameservers of `/etc/resolv.conf` (or a configured
//!   address), each query with a fresh random id from a connected socket
//!   (so datagrams from other sources never arrive), waiting out the timeout
//!   for the real answer while ignoring unrelated datagrams (wrong id or
//!   question: RFC 5452 §9.1, [`AnswerError::is_unrelated`]);
//! - over TCP to the same server when the UDP answer is truncated (RFC 7766);
//! - to the next server, and then around again for `attempts` rounds, on a
//!   timeout or a failure answer (SERVFAIL, REFUSED), as the glibc stub does.
//!
//! Query ids and MX tie-break seeds come from the operating system's random
//! source (`getrandom`): an id an off-path attacker can guess makes spoofing
//! an answer easy (RFC 5452 §9.2), and the core takes both as values so that
//! it stays deterministic.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use smtp_proto::dns::ResolverConfig;
use smtp_proto::mx::{
    AddressAnswer, AddressQuery, AnswerError, HostName, HostNameError, HostPlan, MxAnswer, MxHost,
    MxQuery, Next, PlanConfig, PlanError, QueryType, Rcode, Severity, TcpFrame,
    merge_address_lookups, parse_tcp_frame,
};
use thiserror::Error;

pub use smtp_proto::dns::{DNS_PORT, MAX_NAMESERVERS};

/// The largest DNS message we read over UDP: a datagram cannot be larger.
const UDP_BUFFER: usize = 65_535;

/// Why a lookup failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN). Permanent.
    #[error("{0}: no such domain")]
    NxDomain(String),
    /// The domain publishes a null MX (RFC 7505): it accepts no mail.
    /// Permanent; RFC 7505 §4.1 suggests reply code 556 with 5.1.10.
    #[error("{0} accepts no mail (null MX)")]
    NullMx(String),
    /// The name is not a valid host name. Permanent.
    #[error("invalid domain {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is invalid.
        reason: HostNameError,
    },
    /// The server answered with a failure code (SERVFAIL, REFUSED, …).
    #[error("DNS server failure for {name}: {rcode}")]
    ServerFailure {
        /// The name asked about.
        name: String,
        /// The response code.
        rcode: Rcode,
    },
    /// No usable answer came before the timeout from any server.
    #[error("DNS lookup for {0} timed out")]
    Timeout(String),
    /// The answer could not be used (malformed, CNAME loop, invalid host
    /// names). Temporary: a broken answer must not bounce mail.
    #[error("unusable DNS answer for {name}: {error}")]
    Answer {
        /// The name asked about.
        name: String,
        /// What is wrong with the answer.
        error: AnswerError,
    },
    /// No host plan could be built (the MX list points back at us).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// No nameserver is configured (an empty server list).
    #[error("no DNS server configured")]
    NoServer,
    /// A socket operation failed.
    #[error("DNS transport: {0}")]
    Io(#[source] io::Error),
    /// The system resolver (`getaddrinfo`) failed.
    #[error("host lookup failed: {0}")]
    System(#[source] io::Error),
}

impl DnsError {
    /// Whether retrying later may help. Only facts that the domain's owner
    /// published (NXDOMAIN, null MX), invalid names and mail loops are
    /// permanent; anything the network or a server may fix is temporary.
    pub fn severity(&self) -> Severity {
        match self {
            Self::NxDomain(_) | Self::NullMx(_) | Self::InvalidName { .. } | Self::Plan(_) => {
                Severity::Permanent
            }
            _ => Severity::Temporary,
        }
    }
}

/// Where to connect next, as found by [`Resolver::next_target`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Connect to `ip`; verify TLS against `host`.
    Connect {
        /// The MX host name (for TLS verification and logs).
        host: HostName,
        /// The address to connect to.
        ip: IpAddr,
    },
    /// Every host has been tried (see [`Next::Exhausted`]).
    Exhausted(Severity),
}

/// A blocking DNS stub resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolver {
    servers: Vec<SocketAddr>,
    timeout: Duration,
    attempts: usize,
}

impl Resolver {
    /// A resolver asking the given servers in order.
    ///
    /// Defaults: a 5-second timeout per query and 2 rounds over the servers,
    /// as glibc's stub resolver (`resolv.conf(5)`: `timeout:5`,
    /// `attempts:2`).
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        Self {
            servers,
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }

    /// The system's resolver: the nameservers and options of
    /// `/etc/resolv.conf`.
    pub fn from_system() -> Result<Self, DnsError> {
        Self::from_resolv_conf_file("/etc/resolv.conf")
    }

    /// The resolver described by a `resolv.conf` file. A missing file means
    /// the built-in default (a resolver on the local host), as in glibc.
    pub fn from_resolv_conf_file(path: impl AsRef<Path>) -> Result<Self, DnsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::from_resolv_conf(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::from_resolv_conf("")),
            Err(e) => Err(DnsError::Io(e)),
        }
    }

    /// Parses `resolv.conf(5)` text with the core's
    /// [`ResolverConfig::from_resolv_conf`] (nameservers, `timeout:`,
    /// `attempts:`, glibc's defaults and bounds).
    pub fn from_resolv_conf(text: &str) -> Self {
        let config = ResolverConfig::from_resolv_conf(text);
        Self {
            servers: config.servers,
            timeout: config.timeout,
            attempts: config.attempts,
        }
    }

    /// The core resolver configuration with these servers, timeout and
    /// rounds (the core's defaults for the rest).
    pub fn config(&self) -> ResolverConfig {
        let mut config = ResolverConfig::new(self.servers.clone());
        config.timeout = self.timeout;
        config.attempts = self.attempts;
        config
    }

    /// The same resolver with another per-query timeout (the time one
    /// server gets to answer one query; at least 1 ms).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The same resolver with another number of rounds over the servers
    /// (at least 1).
    #[must_use]
    pub fn attempts(mut self, attempts: usize) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The servers asked, in order.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// The time one server gets to answer one query (`options timeout:N`
    /// of `resolv.conf`, or [`timeout`](Self::timeout)). A query retried
    /// over TCP after a truncated answer gets this time again for the TCP
    /// exchange.
    pub fn query_timeout(&self) -> Duration {
        self.timeout
    }

    /// The number of rounds over [`servers`](Self::servers) before a lookup
    /// gives up (`options attempts:N`, or [`attempts`](Self::attempts));
    /// at least 1. A query is sent at most `servers().len() * query_attempts()`
    /// times.
    pub fn query_attempts(&self) -> usize {
        self.attempts
    }

    /// Looks up the mail exchangers of `domain`.
    ///
    /// Returns the core's judgement: [`MxAnswer::Hosts`],
    /// [`MxAnswer::Implicit`] (no MX records: the domain itself),
    /// [`MxAnswer::NullMx`] or [`MxAnswer::NxDomain`]; never
    /// [`MxAnswer::Truncated`] (asked again over TCP) nor
    /// [`MxAnswer::Temporary`] (reported as [`DnsError::ServerFailure`]
    /// after every server was tried). Hosts of equal preference are in a
    /// random order.
    pub fn resolve_mx(&self, domain: &str) -> Result<MxAnswer, DnsError> {
        let host = parse_name(domain)?;
        let seed = random_u64()?;
        let answer = self.exchange(
            domain,
            |id| MxQuery::for_host(id, host.clone()),
            |query, bytes| query.decode(bytes, seed),
            |query| query.to_bytes(),
            |query| query.to_tcp_bytes(),
            |answer| match answer {
                MxAnswer::Truncated => Verdict::Truncated,
                MxAnswer::Temporary(_) => Verdict::Failed,
                _ => Verdict::Final,
            },
        )?;
        match answer {
            MxAnswer::Temporary(rcode) => Err(DnsError::ServerFailure {
                name: domain.to_owned(),
                rcode,
            }),
            answer => Ok(answer),
        }
    }

    /// The hosts to try for `domain`: its MX hosts, or the domain itself
    /// (implicit MX). NXDOMAIN and null MX are permanent errors.
    pub fn mx_hosts(&self, domain: &str) -> Result<Vec<MxHost>, DnsError> {
        match self.resolve_mx(domain)? {
            MxAnswer::NullMx => Err(DnsError::NullMx(domain.to_owned())),
            MxAnswer::NxDomain => Err(DnsError::NxDomain(domain.to_owned())),
            answer => answer.into_hosts().ok_or_else(|| DnsError::Answer {
                name: domain.to_owned(),
                error: AnswerError::Malformed(String::from("no hosts in the answer")),
            }),
        }
    }

    /// A host plan for `domain`: [`mx_hosts`](Self::mx_hosts) handed to
    /// [`HostPlan::new`]. Walk it with [`next_target`](Self::next_target).
    pub fn host_plan(&self, domain: &str, config: &PlanConfig) -> Result<HostPlan, DnsError> {
        Ok(HostPlan::new(self.mx_hosts(domain)?, config)?)
    }

    /// Looks up the A and AAAA records of `host` (two queries) and returns
    /// the addresses of both, A first, each in answer order. Empty when the
    /// host exists but has no address. If one query fails temporarily and
    /// the other finds nothing, the temporary error is returned; NXDOMAIN is
    /// returned only when neither query found an address.
    pub fn resolve_addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let name = parse_name(host)?;
        let lookups = [QueryType::A, QueryType::Aaaa]
            .map(|query_type| self.resolve_one_family(host, &name, query_type));
        merge_address_lookups(lookups, DnsError::severity)
    }

    fn resolve_one_family(
        &self,
        host: &str,
        name: &HostName,
        query_type: QueryType,
    ) -> Result<Vec<IpAddr>, DnsError> {
        let answer = self.exchange(
            host,
            |id| AddressQuery::for_host(id, name.clone(), query_type),
            |query, bytes| query.decode(bytes),
            |query| query.to_bytes(),
            |query| query.to_tcp_bytes(),
            |answer| match answer {
                AddressAnswer::Truncated => Verdict::Truncated,
                AddressAnswer::Temporary(_) => Verdict::Failed,
                _ => Verdict::Final,
            },
        )?;
        match answer {
            AddressAnswer::Addresses(ips) => Ok(ips),
            AddressAnswer::NxDomain => Err(DnsError::NxDomain(host.to_owned())),
            AddressAnswer::Temporary(rcode) => Err(DnsError::ServerFailure {
                name: host.to_owned(),
                rcode,
            }),
            // exchange() retries truncated answers over TCP and never
            // returns one; a future variant is treated as unusable.
            _ => Err(DnsError::Answer {
                name: host.to_owned(),
                error: AnswerError::Malformed(String::from("unexpected answer")),
            }),
        }
    }

    /// Walks `plan` to the next connection target, looking up hosts as the
    /// plan reaches them (A and AAAA, reported with
    /// [`HostPlan::resolved`] or [`HostPlan::resolution_failed`]).
    ///
    /// After a connection attempt, report its outcome to the plan
    /// ([`HostPlan::on_connect_failed`],
    /// [`HostPlan::on_temporary_failure`]) and call this again.
    pub fn next_target(&self, plan: &mut HostPlan) -> Step {
        loop {
            let host = match plan.next_target() {
                Next::Connect(target) => {
                    return Step::Connect {
                        host: target.host().name().clone(),
                        ip: target.ip(),
                    };
                }
                Next::Exhausted(severity) => return Step::Exhausted(severity),
                Next::Resolve(host) => host.name().clone(),
                // A future step kind this walker does not know: stop rather
                // than spin.
                _ => return Step::Exhausted(Severity::Temporary),
            };
            // The plan is at a Resolve step (just matched), so neither call
            // can fail with a usage error; if one did, the loop would see
            // the same step again, so stop instead.
            let reported = match self.resolve_addresses(host.as_str()) {
                Ok(ips) => plan.resolved(ips),
                Err(e) => plan.resolution_failed(e.severity()),
            };
            if reported.is_err() {
                return Step::Exhausted(Severity::Temporary);
            }
        }
    }

    /// Sends a query to each server in turn, for `attempts` rounds, and
    /// returns the first final answer. A failure answer (SERVFAIL …) moves
    /// on to the next server and is returned if no server does better.
    fn exchange<Q, A>(
        &self,
        name: &str,
        build: impl Fn(u16) -> Q,
        decode: impl Fn(&Q, &[u8]) -> Result<A, AnswerError>,
        udp_bytes: impl Fn(&Q) -> Vec<u8>,
        tcp_bytes: impl Fn(&Q) -> Vec<u8>,
        verdict: impl Fn(&A) -> Verdict,
    ) -> Result<A, DnsError> {
        if self.servers.is_empty() {
            return Err(DnsError::NoServer);
        }
        let mut last_error: Option<DnsError> = None;
        let mut failed_answer: Option<A> = None;
        for _ in 0..self.attempts {
            for server in &self.servers {
                let query = build(random_u16()?);
                let outcome = udp_exchange(*server, &udp_bytes(&query), self.timeout, |bytes| {
                    decode(&query, bytes)
                })
                .and_then(|answer| match verdict(&answer) {
                    Verdict::Truncated => {
                        tcp_exchange(*server, &tcp_bytes(&query), self.timeout, |bytes| {
                            decode(&query, bytes)
                        })
                        .and_then(|answer| match verdict(&answer) {
                            // TCP has no size limit to truncate at.
                            Verdict::Truncated => Err(Exchange::Answer(AnswerError::Malformed(
                                String::from("truncated answer over TCP"),
                            ))),
                            _ => Ok(answer),
                        })
                    }
                    _ => Ok(answer),
                });
                match outcome {
                    Ok(answer) => match verdict(&answer) {
                        Verdict::Final => return Ok(answer),
                        // Truncated answers were retried over TCP above.
                        Verdict::Failed | Verdict::Truncated => failed_answer = Some(answer),
                    },
                    Err(Exchange::Timeout) => {
                        last_error.get_or_insert_with(|| DnsError::Timeout(name.to_owned()));
                    }
                    Err(Exchange::Io(e)) => last_error = Some(DnsError::Io(e)),
                    Err(Exchange::Answer(error)) => {
                        last_error = Some(DnsError::Answer {
                            name: name.to_owned(),
                            error,
                        });
                    }
                }
            }
        }
        if let Some(answer) = failed_answer {
            return Ok(answer);
        }
        Err(last_error.unwrap_or_else(|| DnsError::Timeout(name.to_owned())))
    }
}

/// How an answer steers the exchange.
enum Verdict {
    /// Done: hosts, addresses, NXDOMAIN, null MX.
    Final,
    /// Ask again over TCP.
    Truncated,
    /// A failure code: ask the next server.
    Failed,
}

/// How one exchange with one server failed.
enum Exchange {
    Timeout,
    Io(io::Error),
    Answer(AnswerError),
}

impl From<io::Error> for Exchange {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Self::Timeout,
            _ => Self::Io(e),
        }
    }
}

fn parse_name(name: &str) -> Result<HostName, DnsError> {
    HostName::parse(name).map_err(|reason| DnsError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// One UDP query: send, then read datagrams until one is the answer or the
/// timeout passes. Unrelated datagrams (wrong id, wrong question, not a
/// response) are dropped: a spoofer must not be able to decide the outcome,
/// nor end the wait for the real answer.
fn udp_exchange<A>(
    server: SocketAddr,
    query: &[u8],
    timeout: Duration,
    decode: impl Fn(&[u8]) -> Result<A, AnswerError>,
) -> Result<A, Exchange> {
    let local = match server {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let socket = UdpSocket::bind(local)?;
    // A connected socket only receives datagrams from the server's address.
    socket.connect(server)?;
    socket.send(query)?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(Exchange::Timeout)?;
        socket.set_read_timeout(Some(left))?;
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // An ICMP port unreachable from an earlier send surfaces here:
            // nobody listens at that address.
            Err(e) => return Err(e.into()),
        };
        let datagram = buf.get(..n).unwrap_or_default();
        match decode(datagram) {
            Ok(answer) => return Ok(answer),
            Err(e) if e.is_unrelated() => continue,
            Err(e) => return Err(Exchange::Answer(e)),
        }
    }
}

/// One TCP query (RFC 7766): connect, send the length-prefixed query, read
/// one length-prefixed answer, all within `timeout`. Over TCP the server is
/// the only sender, so an unrelated answer is an error, not noise.
fn tcp_exchange<A>(
    server: SocketAddr,
    query: &[u8],
    timeout: Duration,
    decode: impl Fn(&[u8]) -> Result<A, AnswerError>,
) -> Result<A, Exchange> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(Exchange::Timeout)
    };
    let mut stream = TcpStream::connect_timeout(&server, left()?)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(left()?))?;
    stream.write_all(query)?;
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        if let TcpFrame::Complete { message, .. } = parse_tcp_frame(&buf) {
            return decode(message).map_err(Exchange::Answer);
        }
        stream.set_read_timeout(Some(left()?))?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(Exchange::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        // The frame is at most 65537 octets; parse_tcp_frame finds it as
        // soon as it is complete, so the buffer stays bounded by that plus
        // one chunk.
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], DnsError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| DnsError::Io(io::Error::other(format!("no random numbers: {e}"))))?;
    Ok(bytes)
}

/// A fresh query id from the OS random source (RFC 5452 §9.2).
fn random_u16() -> Result<u16, DnsError> {
    Ok(u16::from_ne_bytes(random_bytes()?))
}

/// A fresh MX tie-break seed from the OS random source.
fn random_u64() -> Result<u64, DnsError> {
    Ok(u64::from_ne_bytes(random_bytes()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_text_goes_through_the_core() {
        // The parsing and its tests live in smtp_proto::dns; this checks
        // the wrapper carries every value across.
        let text = "nameserver 192.0.2.1\noptions timeout:3 attempts:4\n";
        let r = Resolver::from_resolv_conf(text);
        let core = ResolverConfig::from_resolv_conf(text);
        assert_eq!(r.servers(), core.servers);
        assert_eq!(r.query_timeout(), Duration::from_secs(3));
        assert_eq!(r.query_attempts(), 4);
        assert_eq!(r.config(), core);
    }

    #[test]
    fn missing_resolv_conf_means_localhost() {
        let r = Resolver::from_resolv_conf_file("/nonexistent/resolv.conf").unwrap();
        assert_eq!(
            r.servers(),
            &["127.0.0.1:53".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn severities() {
        assert_eq!(
            DnsError::NxDomain("x".into()).severity(),
            Severity::Permanent
        );
        assert_eq!(DnsError::NullMx("x".into()).severity(), Severity::Permanent);
        assert_eq!(
            DnsError::Timeout("x".into()).severity(),
            Severity::Temporary
        );
        assert_eq!(
            DnsError::ServerFailure {
                name: "x".into(),
                rcode: Rcode::SERVFAIL
            }
            .severity(),
            Severity::Temporary
        );
        assert_eq!(DnsError::NoServer.severity(), Severity::Temporary);
    }

    #[test]
    fn empty_server_list_is_an_error_not_a_hang() {
        let r = Resolver::new(Vec::new());
        assert!(matches!(
            r.resolve_mx("example.org"),
            Err(DnsError::NoServer)
        ));
    }

    #[test]
    fn invalid_names_fail_before_any_query() {
        let r = Resolver::new(Vec::new());
        assert!(matches!(
            r.resolve_mx("bad name"),
            Err(DnsError::InvalidName { .. })
        ));
        assert!(matches!(
            r.resolve_addresses(""),
            Err(DnsError::InvalidName { .. })
        ));
    }

    #[test]
    fn random_ids_vary() {
        let ids: std::collections::BTreeSet<u64> = (0..16).map(|_| random_u64().unwrap()).collect();
        assert!(ids.len() > 1, "16 random draws were all equal");
    }
}
