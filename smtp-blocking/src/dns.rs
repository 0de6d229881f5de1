//! A blocking socket pump under the core's DNS stub resolver.
//!
//! # Why a resolver of our own, and why this module decides nothing
//!
//! The system resolver (`getaddrinfo`) answers A and AAAA but not MX, and it
//! hides the difference between "no such domain" (bounce the mail) and "the
//! server failed" (retry later), which MX delivery must know (RFC 5321 §5.1,
//! RFC 7505). So MX delivery asks the nameservers itself — but every DNS
//! decision is the core's: [`smtp_proto::dns::Resolver`] builds the queries,
//! draws the message ids from our seed, picks the server of each try, moves a
//! truncated answer to TCP, asks the next server after SERVFAIL or silence,
//! keeps the failure answer, and drops unrelated or spoofed datagrams (wrong
//! id, wrong source address or port, wrong question: RFC 5452). This module
//! is the pump its docs describe, and nothing more:
//!
//! - `Send`: one datagram from a [`UdpSocket`] the operating system bound to
//!   a random port (the other half of RFC 5452 §9.2). The socket is
//!   unconnected, so every datagram that arrives is handed in with its source
//!   address and the core judges it. **One socket per pump**: a pump lives
//!   for one call of the public methods below (one [`deliver_mx`] for MX
//!   delivery), so every call gets a fresh port. It is IPv4 when every server
//!   is IPv4, else IPv6 — dual-stack where the system allows it, IPv4
//!   servers then being reached at their IPv4-mapped address — so that one
//!   blocking read waits for every server;
//! - `OpenStream`: a [`TcpStream`] (connect and write within the per-try
//!   timeout), its bytes, end and errors handed in; `CloseStream` drops it;
//! - `Wait`: the deadline becomes the socket's read timeout (the open
//!   stream's while one waits for its answer, after taking in any datagram
//!   that arrived meanwhile), then `handle_timeout`.
//!
//! Lookup seeds come from the operating system's random source
//! (`getrandom`), as do the seeds that shuffle MX hosts of equal preference:
//! the core takes both as values so that it stays deterministic.
//!
//! What the answers mean for delivery (null MX, implicit MX, which host
//! next) is judged by [`smtp_proto::mx`]; reading `resolv.conf` is I/O and
//! stays here ([`Resolver::from_resolv_conf_file`]), parsing its text is the
//! core's ([`ResolverConfig::from_resolv_conf`]).
//!
//! [`deliver_mx`]: crate::mx::deliver_mx

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use smtp_proto::dns::{
    self as core, Answer, AnswerError, DATAGRAM_BUFFER, Failure, LookupError, LookupId, Name,
    NameError, Output, Question, ResolverConfig, StreamId, Txt,
};
use smtp_proto::mx::{HostName, MxAnswer, Severity, merge_address_lookups};
use thiserror::Error;

pub use smtp_proto::dns::{DNS_PORT, MAX_NAMESERVERS};

/// Why a lookup failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The name is not a valid DNS name (or, where a host is asked about,
    /// not a valid host name). Permanent.
    #[error("invalid domain {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is invalid.
        reason: NameError,
    },
    /// The name does not exist (NXDOMAIN). Permanent.
    #[error("{0}: no such domain")]
    NxDomain(String),
    /// The core's resolver found no answer: every server failed (SERVFAIL,
    /// REFUSED …), timed out, was unreachable, or sent answers it could
    /// not use. Temporary.
    #[error("DNS lookup for {name} failed: {failure}")]
    Lookup {
        /// The name asked about.
        name: String,
        /// What the resolver saw last.
        failure: Failure,
    },
    /// The answer could not be judged (an MX answer naming invalid hosts,
    /// a CNAME chain ending at one). Temporary: a broken answer must not
    /// bounce mail.
    #[error("unusable DNS answer for {name}: {error}")]
    Answer {
        /// The name asked about.
        name: String,
        /// What is wrong with the answer.
        error: AnswerError,
    },
    /// More lookups at once than the configuration allows.
    #[error(transparent)]
    Limit(#[from] LookupError),
    /// A socket could not be used, or the system has no random numbers.
    #[error("DNS transport: {0}")]
    Io(#[source] io::Error),
    /// The system resolver (`getaddrinfo`) failed.
    #[error("host lookup failed: {0}")]
    System(#[source] io::Error),
}

impl DnsError {
    /// Whether retrying later may help. Only what the domain's owner
    /// published (NXDOMAIN) and invalid names are permanent; anything a
    /// network or a server may fix is temporary.
    pub fn severity(&self) -> Severity {
        match self {
            Self::NxDomain(_) | Self::InvalidName { .. } => Severity::Permanent,
            _ => Severity::Temporary,
        }
    }
}

/// A blocking DNS stub resolver: a configuration for the core's resolver,
/// and the socket pump that runs it (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolver {
    config: ResolverConfig,
}

impl Resolver {
    /// A resolver asking the given servers in order, with the core's
    /// defaults: a 5-second timeout per try and 2 rounds over the servers,
    /// as glibc's stub resolver (`resolv.conf(5)`: `timeout:5`,
    /// `attempts:2`).
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        Self::with_config(ResolverConfig::new(servers))
    }

    /// A resolver with a complete core configuration (limits, cache).
    pub fn with_config(config: ResolverConfig) -> Self {
        Self { config }
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
    /// [`ResolverConfig::from_resolv_conf`].
    pub fn from_resolv_conf(text: &str) -> Self {
        Self::with_config(ResolverConfig::from_resolv_conf(text))
    }

    /// The core configuration.
    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    /// The same resolver with another per-try timeout (at least 1 ms).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The same resolver with another number of rounds over the servers
    /// (at least 1).
    #[must_use]
    pub fn attempts(mut self, attempts: usize) -> Self {
        self.config.attempts = attempts.max(1);
        self
    }

    /// The servers asked, in order.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.config.servers
    }

    /// The time one server gets to answer one try
    /// ([`ResolverConfig::timeout`]).
    pub fn query_timeout(&self) -> Duration {
        self.config.timeout
    }

    /// The rounds over [`servers`](Self::servers)
    /// ([`ResolverConfig::attempts`]).
    pub fn query_attempts(&self) -> usize {
        self.config.attempts
    }

    /// Asks every question at once and returns the core's result for each,
    /// in order. `Err` only when the pump itself cannot run (no socket, no
    /// random numbers, too many questions).
    pub fn lookup_all(
        &self,
        questions: &[Question],
    ) -> Result<Vec<Result<Answer, Failure>>, DnsError> {
        Pump::new(self.config.clone()).run(questions)
    }

    /// Asks one question.
    pub fn lookup(&self, question: Question) -> Result<Answer, DnsError> {
        let name = question.name().to_string();
        let result = self.lookup_all(std::slice::from_ref(&question))?;
        match result.into_iter().next() {
            Some(Ok(answer)) => Ok(answer),
            Some(Err(failure)) => Err(DnsError::Lookup { name, failure }),
            None => Err(DnsError::Lookup {
                name,
                failure: Failure::Timeout,
            }),
        }
    }

    /// The mail exchangers of `domain`, as the core judges the answer
    /// ([`MxAnswer::from_answer`]): [`MxAnswer::Hosts`] (equal preferences
    /// in a random order), [`MxAnswer::Implicit`], [`MxAnswer::NullMx`] or
    /// [`MxAnswer::NxDomain`]. A lookup that found no answer (SERVFAIL from
    /// every server, timeouts) is [`DnsError::Lookup`].
    pub fn resolve_mx(&self, domain: &str) -> Result<MxAnswer, DnsError> {
        let host = host_name(domain)?;
        let answer = self.lookup(Question::mx(&host))?;
        MxAnswer::from_answer(&answer, random_u64()?).map_err(|error| DnsError::Answer {
            name: domain.to_owned(),
            error,
        })
    }

    /// The A and AAAA addresses of `host` (asked at once), A first, each in
    /// answer order; empty when the host exists without addresses. One
    /// family's failure beside the other's addresses is no failure, and a
    /// temporary failure wins over NXDOMAIN ([`merge_address_lookups`]).
    pub fn resolve_addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let name = host_name(host)?;
        let results = self.lookup_all(&[Question::a(&name), Question::aaaa(&name)])?;
        let lookups = results.into_iter().map(|result| match result {
            Ok(Answer::NxDomain(_)) => Err(DnsError::NxDomain(host.to_owned())),
            Ok(answer) => Ok(answer
                .records()
                .and_then(|r| r.addresses())
                .unwrap_or_default()
                .to_vec()),
            Err(failure) => Err(DnsError::Lookup {
                name: host.to_owned(),
                failure,
            }),
        });
        merge_address_lookups(lookups, DnsError::severity)
    }

    /// The TXT records of `name` (`_dmarc.example.org`,
    /// `s1._domainkey.example.org`): none when the name has no TXT record,
    /// [`DnsError::NxDomain`] when it does not exist.
    pub fn resolve_txt(&self, name: &str) -> Result<Vec<Txt>, DnsError> {
        let parsed = Name::parse(name).map_err(|reason| DnsError::InvalidName {
            name: name.to_owned(),
            reason,
        })?;
        match self.lookup(Question::txt(parsed))? {
            Answer::NxDomain(_) => Err(DnsError::NxDomain(name.to_owned())),
            answer => Ok(answer
                .records()
                .and_then(|r| r.txt())
                .unwrap_or_default()
                .to_vec()),
        }
    }
}

fn host_name(name: &str) -> Result<HostName, DnsError> {
    HostName::parse(name).map_err(|reason| DnsError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// The core's resolver and the sockets it asks for, for one call (one MX
/// delivery): see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Pump {
    resolver: core::Resolver,
    socket: Option<UdpSocket>,
    streams: BTreeMap<StreamId, TcpStream>,
    buf: Vec<u8>,
    /// Every server is IPv4: the socket can be too.
    ipv4_only: bool,
    /// The per-try timeout, for connecting and writing a stream.
    timeout: Duration,
}

impl Pump {
    pub(crate) fn new(config: ResolverConfig) -> Self {
        let resolver = core::Resolver::new(config);
        Self {
            ipv4_only: resolver.config().servers.iter().all(SocketAddr::is_ipv4),
            timeout: resolver.config().timeout,
            resolver,
            socket: None,
            streams: BTreeMap::new(),
            buf: vec![0; DATAGRAM_BUFFER],
        }
    }

    /// Looks every question up at once; returns when all are resolved. The
    /// core bounds the time: at most `servers × attempts` tries of at most
    /// two timeouts each.
    pub(crate) fn run(
        &mut self,
        questions: &[Question],
    ) -> Result<Vec<Result<Answer, Failure>>, DnsError> {
        let mut ids: Vec<LookupId> = Vec::with_capacity(questions.len());
        for question in questions {
            let started = random_u64().and_then(|seed| {
                let now = Instant::now();
                Ok(self.resolver.lookup(now, question.clone(), seed)?)
            });
            match started {
                Ok(id) => ids.push(id),
                Err(e) => {
                    // Leave nothing in flight for the pump's next call.
                    for id in ids {
                        self.resolver.cancel(id);
                    }
                    let _ = self.drain();
                    return Err(e);
                }
            }
        }
        let mut results: BTreeMap<LookupId, Result<Answer, Failure>> = BTreeMap::new();
        while results.len() < ids.len() {
            let (resolved, deadline) = self.drain();
            results.extend(resolved);
            if results.len() >= ids.len() {
                break;
            }
            match deadline {
                Some(deadline) => self.wait(deadline)?,
                // Nothing in flight and not everything resolved: cannot
                // happen with the core's contract; never spin on it.
                None => break,
            }
        }
        Ok(ids
            .iter()
            .map(|id| results.remove(id).unwrap_or(Err(Failure::Timeout)))
            .collect())
    }

    /// Does what the resolver asks until it waits; returns the lookups that
    /// finished and the deadline.
    fn drain(&mut self) -> (Finished, Option<Instant>) {
        let mut resolved = Vec::new();
        loop {
            let now = Instant::now();
            let failed: Failed = match self.resolver.poll(now) {
                Output::Send { server, bytes } => {
                    send(&mut self.socket, server, bytes, self.ipv4_only)
                        .err()
                        .map_or(Failed::Nothing, |_| Failed::Datagram(server))
                }
                Output::OpenStream {
                    stream,
                    server,
                    bytes,
                } => match open(server, bytes, self.timeout) {
                    Ok(tcp) => {
                        self.streams.insert(stream, tcp);
                        Failed::Nothing
                    }
                    Err(_) => Failed::Stream(stream),
                },
                Output::CloseStream(stream) => {
                    self.streams.remove(&stream);
                    Failed::Nothing
                }
                Output::Resolved(r) => {
                    resolved.push((r.id, r.result));
                    Failed::Nothing
                }
                Output::Wait { deadline } => return (resolved, deadline),
                // A future output this pump does not know: nothing to do.
                _ => Failed::Nothing,
            };
            match failed {
                Failed::Nothing => {}
                Failed::Datagram(server) => self.resolver.handle_datagram_error(now, server),
                Failed::Stream(stream) => self.resolver.handle_stream_error(now, stream),
            }
        }
    }

    /// Waits for input until `deadline`, hands it in, or reports the
    /// timeout.
    fn wait(&mut self, deadline: Instant) -> Result<(), DnsError> {
        let now = Instant::now();
        let Some(left) = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
        else {
            self.take_datagrams()?;
            self.resolver.handle_timeout(now);
            return Ok(());
        };
        if let Some(&id) = self.streams.keys().next() {
            // Datagrams that came while a stream held us are answers too.
            self.take_datagrams()?;
            let Some(stream) = self.streams.get_mut(&id) else {
                return Ok(());
            };
            let read = stream
                .set_read_timeout(Some(left))
                .and_then(|()| stream.read(&mut self.buf));
            let now = Instant::now();
            match read {
                Ok(0) => self.resolver.handle_stream_eof(now, id),
                Ok(n) => {
                    let bytes = self.buf.get(..n).unwrap_or_default();
                    self.resolver.handle_stream_input(now, id, bytes);
                }
                Err(e) if timed_out(&e) => {
                    self.take_datagrams()?;
                    self.resolver.handle_timeout(now);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.resolver.handle_stream_error(now, id),
            }
            return Ok(());
        }
        let Some(socket) = &self.socket else {
            // Nothing to read from (no datagram could be sent): the tries
            // time out as the core says.
            std::thread::sleep(left);
            self.resolver.handle_timeout(Instant::now());
            return Ok(());
        };
        socket.set_read_timeout(Some(left)).map_err(DnsError::Io)?;
        match socket.recv_from(&mut self.buf) {
            Ok((n, from)) => {
                let bytes = self.buf.get(..n).unwrap_or_default();
                self.resolver.handle_datagram(Instant::now(), from, bytes);
            }
            Err(e) if timed_out(&e) => self.resolver.handle_timeout(Instant::now()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(DnsError::Io(e)),
        }
        Ok(())
    }

    /// Hands in every datagram waiting in the socket, without blocking.
    fn take_datagrams(&mut self) -> Result<(), DnsError> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        socket.set_nonblocking(true).map_err(DnsError::Io)?;
        let result = loop {
            match socket.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    let bytes = self.buf.get(..n).unwrap_or_default();
                    self.resolver.handle_datagram(Instant::now(), from, bytes);
                }
                Err(e) if timed_out(&e) => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(DnsError::Io(e)),
            }
        };
        socket.set_nonblocking(false).map_err(DnsError::Io)?;
        result
    }
}

/// Lookups that finished, with their results.
type Finished = Vec<(LookupId, Result<Answer, Failure>)>;

/// What failed while acting on one output.
enum Failed {
    Nothing,
    Datagram(SocketAddr),
    Stream(StreamId),
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Sends one datagram, binding the pump's socket first if needed. A
/// datagram the socket would not take now is dropped (the try times out).
fn send(
    socket: &mut Option<UdpSocket>,
    server: SocketAddr,
    bytes: &[u8],
    ipv4_only: bool,
) -> io::Result<()> {
    if socket.is_none() {
        *socket = Some(bind(ipv4_only)?);
    }
    let Some(socket) = socket.as_ref() else {
        return Err(io::ErrorKind::NotConnected.into());
    };
    let to = match (socket.local_addr()?, server) {
        (SocketAddr::V6(_), SocketAddr::V4(v4)) => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        _ => server,
    };
    match socket.send_to(bytes, to) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other.map(|_| ()),
    }
}

/// The pump's UDP socket, on a port the system picks: IPv4 when every
/// server is IPv4, else IPv6 (dual-stack where the system allows it; IPv4
/// if IPv6 is not available).
fn bind(ipv4_only: bool) -> io::Result<UdpSocket> {
    let v4 = || UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0));
    if ipv4_only {
        return v4();
    }
    UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).or_else(|_| v4())
}

/// Opens a TCP stream for a truncated answer: connect and write within
/// `timeout`.
fn open(server: SocketAddr, bytes: &[u8], timeout: Duration) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&server, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(bytes)?;
    Ok(stream)
}

/// 64 bits from the operating system's random source: a lookup's seed
/// (its message ids, RFC 5452 §9.2) or an MX tie-break seed.
pub(crate) fn random_u64() -> Result<u64, DnsError> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| DnsError::Io(io::Error::other(format!("no random numbers: {e}"))))?;
    Ok(u64::from_ne_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_text_goes_through_the_core() {
        let text = "nameserver 192.0.2.1\noptions timeout:3 attempts:4\n";
        let r = Resolver::from_resolv_conf(text);
        assert_eq!(r.config(), &ResolverConfig::from_resolv_conf(text));
        assert_eq!(r.query_timeout(), Duration::from_secs(3));
        assert_eq!(r.query_attempts(), 4);
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
        let failed = |failure| DnsError::Lookup {
            name: "x".into(),
            failure,
        };
        assert_eq!(failed(Failure::Timeout).severity(), Severity::Temporary);
        assert_eq!(
            failed(Failure::ServerFailure(core::Rcode::SERVFAIL)).severity(),
            Severity::Temporary
        );
        assert_eq!(failed(Failure::NoServer).severity(), Severity::Temporary);
    }

    #[test]
    fn an_empty_server_list_fails_at_once() {
        let r = Resolver::new(Vec::new());
        let err = r.resolve_mx("example.org").unwrap_err();
        assert!(
            matches!(
                err,
                DnsError::Lookup {
                    failure: Failure::NoServer,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn invalid_names_fail_before_any_query() {
        let r = Resolver::new(Vec::new());
        for err in [
            r.resolve_mx("bad name").unwrap_err(),
            r.resolve_addresses("").unwrap_err(),
            r.resolve_addresses("_dmarc.example.org").unwrap_err(),
            r.resolve_txt("two..dots").unwrap_err(),
        ] {
            assert!(matches!(err, DnsError::InvalidName { .. }), "{err:?}");
        }
    }

    #[test]
    fn random_seeds_vary() {
        let seeds: std::collections::BTreeSet<u64> =
            (0..16).map(|_| random_u64().unwrap()).collect();
        assert!(seeds.len() > 1, "16 random draws were all equal");
    }

    #[test]
    fn the_socket_family_follows_the_servers() {
        let v4: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let v6: SocketAddr = "[::1]:53".parse().unwrap();
        let pump = Pump::new(ResolverConfig::new(vec![v4]));
        assert!(pump.ipv4_only);
        assert!(bind(true).unwrap().local_addr().unwrap().is_ipv4());
        let pump = Pump::new(ResolverConfig::new(vec![v4, v6]));
        assert!(!pump.ipv4_only);
        // IPv6 where the system has it, else IPv4; either way a socket.
        assert!(bind(false).is_ok());
    }
}
