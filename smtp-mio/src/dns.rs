//! A non-blocking DNS stub resolver for MX delivery inside a mio event loop.
//!
//! # Why it exists
//!
//! The delivery engine runs many SMTP client sessions on one `mio::Poll`.
//! Routing a message needs DNS (the MX hosts of the recipient's domain, then
//! the A and AAAA records of each host), and a lookup may take seconds: a
//! blocking call such as [`smtp_blocking::Resolver::resolve_mx`] would stall
//! every other session of the loop for that long. [`DnsClient`] is its
//! non-blocking twin: the same servers, timeouts, retries and judgements
//! (the protocol work — queries, answers, CNAMEs, null MX, host order — is
//! [`smtp_proto::mx`]'s, once), but driven by the loop's readiness events and
//! deadlines instead of sleeping in `recv`.
//!
//! # The flow
//!
//! 1. [`DnsClient::new`] takes the servers, per-query timeout and number of
//!    rounds from a [`smtp_blocking::Resolver`] (which reads `resolv.conf`)
//!    and claims [`DnsClient::TOKENS`] consecutive tokens of the loop.
//! 2. [`lookup_mx`](DnsClient::lookup_mx) sends one MX query;
//!    [`lookup_addresses`](DnsClient::lookup_addresses) sends an A and an
//!    AAAA query at once. Each returns a [`LookupId`].
//! 3. The loop hands every event whose token the client
//!    [`owns`](DnsClient::owns) to [`handle_event`](DnsClient::handle_event),
//!    sleeps no longer than [`next_deadline`](DnsClient::next_deadline), calls
//!    [`handle_timeout`](DnsClient::handle_timeout) when it wakes (spurious
//!    calls are harmless), and drains [`poll_resolved`](DnsClient::poll_resolved)
//!    after each of these calls.
//!
//! Each query is a sequence of *tries*, exactly as in the blocking resolver:
//! the servers in turn, for `attempts` rounds, each try with a fresh random
//! id and its own `query_timeout`. A try ends with
//!
//! - a final answer (hosts, implicit MX, null MX, NXDOMAIN, addresses): the
//!   query is done;
//! - a failure code (SERVFAIL, REFUSED …): kept, and the next server is
//!   asked; it is the result only if no server does better;
//! - a truncated answer: the same query over TCP to the same server
//!   (RFC 7766), with a fresh `query_timeout` for the TCP exchange (as the
//!   blocking resolver gives its `tcp_exchange`);
//! - a timeout, a socket error or an unusable answer: the next server.
//!
//! When every try has failed, the query resolves with the failure answer
//! kept, else with the last error (a timeout only if nothing else went
//! wrong). A lookup is thus bounded by `servers × attempts` tries of at most
//! two `query_timeout`s each (UDP, then TCP after truncation).
//!
//! # Anti-spoofing
//!
//! The UDP sockets are unconnected (one per address family, shared by every
//! query), so anyone can send to them. A datagram counts only if
//!
//! - its id is the id of a query in flight (ids are drawn from the
//!   operating system's random source with [`ring::rand::SystemRandom`] and
//!   unique among the queries in flight, RFC 5452 §9.2),
//! - it comes from the exact address and port that query was sent to, while
//!   that query still waits for a UDP answer, and
//! - the core does not call it [unrelated](AnswerError::is_unrelated) (not a
//!   response, another question: RFC 5452 §9.1).
//!
//! Anything else is dropped without effect: a spoofer can neither decide the
//! outcome nor end the wait for the real answer. Over TCP the server is the
//! only sender, so an answer that does not fit the query fails the try, as
//! in the blocking resolver. MX tie-break seeds are random too, one per
//! lookup.
//!
//! # Limits
//!
//! - Datagrams are read into a 4 KiB buffer. We advertise an EDNS payload of
//!   [`EDNS_UDP_PAYLOAD`] (1232) octets, so a datagram that fills the buffer
//!   came from a server that ignored it and was cut by `recv`: if it answers
//!   the query it is treated as truncated and the query is asked again over
//!   TCP.
//! - At most [`TCP_STREAMS`] TCP exchanges run at once (one token each). A
//!   truncated answer that finds no free stream fails that try (as a socket
//!   error would) and the next server is asked; the client never queues.
//! - A TCP answer is read with a buffer bounded by the frame it announces
//!   (at most 65537 octets, [`parse_tcp_frame`]).
//! - One event or timeout reads at most [`UDP_READ_BUDGET`] datagrams per
//!   socket, so a flood cannot starve the loop; the rest is read on the next
//!   call of [`handle_timeout`](DnsClient::handle_timeout), which
//!   [`next_deadline`](DnsClient::next_deadline) asks for at once.
//! - A UDP send that would block is treated as a lost datagram: the try
//!   waits out its timeout.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};
use ring::rand::{SecureRandom, SystemRandom};
use smtp_proto::mx::{
    AddressAnswer, AddressQuery, AnswerError, EDNS_UDP_PAYLOAD, HostName, MxAnswer, MxQuery,
    QueryType, Rcode, Severity, TcpFrame, merge_address_lookups, parse_tcp_frame,
};
use thiserror::Error;

use crate::timers::Deadlines;

/// TCP exchanges that may run at once (after truncated UDP answers).
pub const TCP_STREAMS: usize = 8;

/// Datagrams read from one UDP socket per call before yielding to the loop.
pub const UDP_READ_BUDGET: usize = 256;

/// The UDP receive buffer. Larger than any answer to our EDNS payload size;
/// a datagram that fills it is treated as truncated.
const UDP_BUFFER: usize = 4096;

/// Token offsets from `first_token`.
const UDP4: usize = 0;
const UDP6: usize = 1;
const FIRST_TCP: usize = 2;

/// One lookup, as returned by [`DnsClient::lookup_mx`] and
/// [`DnsClient::lookup_addresses`]. Never reused by one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(u64);

impl fmt::Display for LookupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dns#{}", self.0)
    }
}

/// A finished lookup, from [`DnsClient::poll_resolved`].
#[derive(Debug)]
pub struct Resolved {
    /// The lookup.
    pub id: LookupId,
    /// What it found.
    pub outcome: LookupOutcome,
}

/// What a lookup found.
#[derive(Debug)]
pub enum LookupOutcome {
    /// The answer to [`DnsClient::lookup_mx`]: [`MxAnswer::Hosts`],
    /// [`MxAnswer::Implicit`], [`MxAnswer::NullMx`] or
    /// [`MxAnswer::NxDomain`], as [`smtp_blocking::Resolver::resolve_mx`]
    /// returns them. Never [`MxAnswer::Truncated`] (asked again over TCP)
    /// nor [`MxAnswer::Temporary`] (an `Err` with
    /// [`DnsFailureKind::ServerFailure`] once every server was tried).
    Mx(Result<MxAnswer, DnsFailure>),
    /// The answer to [`DnsClient::lookup_addresses`]: the A addresses, then
    /// the AAAA addresses, each in answer order; empty when the host exists
    /// but has none. Combined as
    /// [`smtp_blocking::Resolver::resolve_addresses`] does: an error only if
    /// no address was found; then a temporary failure of one query wins over
    /// NXDOMAIN from the other.
    Addresses(Result<Vec<IpAddr>, DnsFailure>),
}

/// Why a lookup failed.
#[derive(Debug, Clone, Error)]
#[error("DNS lookup for {name}: {kind}")]
pub struct DnsFailure {
    name: String,
    kind: DnsFailureKind,
}

impl DnsFailure {
    /// Whether retrying later may help: only NXDOMAIN is
    /// [`Permanent`](Severity::Permanent); anything the network or a server
    /// may fix is [`Temporary`](Severity::Temporary).
    pub fn severity(&self) -> Severity {
        match self.kind {
            DnsFailureKind::NxDomain => Severity::Permanent,
            _ => Severity::Temporary,
        }
    }

    /// The name that was looked up.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What went wrong.
    pub fn kind(&self) -> &DnsFailureKind {
        &self.kind
    }
}

/// What went wrong in a [`DnsFailure`].
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum DnsFailureKind {
    /// The name does not exist (NXDOMAIN). Permanent. (An MX lookup reports
    /// it as `Ok(MxAnswer::NxDomain)` instead, as the blocking resolver.)
    #[error("no such domain (NXDOMAIN)")]
    NxDomain,
    /// Every server answered with a failure code (SERVFAIL, REFUSED …) or
    /// did worse; this is the last such code.
    #[error("server failure ({0})")]
    ServerFailure(Rcode),
    /// No usable answer came before the timeout from any server.
    #[error("timed out")]
    Timeout,
    /// The answer could not be used (malformed, CNAME loop, invalid host
    /// names, truncated over TCP).
    #[error("unusable answer: {0}")]
    Answer(AnswerError),
    /// A socket operation failed.
    #[error("transport error: {0}")]
    Io(Arc<io::Error>),
    /// An answer was truncated and all [`TCP_STREAMS`] TCP streams were
    /// busy.
    #[error("no free TCP stream for a truncated answer")]
    TcpBusy,
    /// No nameserver is configured.
    #[error("no DNS server configured")]
    NoServer,
}

impl DnsFailureKind {
    fn io(e: io::Error) -> Self {
        Self::Io(Arc::new(e))
    }
}

/// Which query of a lookup: the MX query, or the A or AAAA query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct QueryKey {
    lookup: LookupId,
    /// Index into [`Lookup::parts`].
    part: usize,
}

/// A query as sent in one try.
#[derive(Debug)]
enum Query {
    Mx(MxQuery),
    Address(AddressQuery),
}

impl Query {
    fn build(id: u16, name: &HostName, query_type: QueryType) -> Self {
        match query_type {
            QueryType::Mx => Self::Mx(MxQuery::for_host(id, name.clone())),
            other => Self::Address(AddressQuery::for_host(id, name.clone(), other)),
        }
    }

    fn udp_bytes(&self) -> Vec<u8> {
        match self {
            Self::Mx(q) => q.to_bytes(),
            Self::Address(q) => q.to_bytes(),
        }
    }

    fn tcp_bytes(&self) -> Vec<u8> {
        match self {
            Self::Mx(q) => q.to_tcp_bytes(),
            Self::Address(q) => q.to_tcp_bytes(),
        }
    }

    fn decode(&self, bytes: &[u8], seed: u64) -> Result<Answer, AnswerError> {
        match self {
            Self::Mx(q) => q.decode(bytes, seed).map(Answer::Mx),
            Self::Address(q) => q.decode(bytes).map(Answer::Address),
        }
    }
}

/// A decoded answer of either kind.
#[derive(Debug)]
enum Answer {
    Mx(MxAnswer),
    Address(AddressAnswer),
}

/// How an answer steers the query (as in the blocking resolver).
enum Verdict {
    /// Done: hosts, addresses, NXDOMAIN, null MX.
    Final,
    /// Ask again over TCP.
    Truncated,
    /// A failure code: ask the next server.
    Failed,
}

impl Answer {
    fn verdict(&self) -> Verdict {
        match self {
            Self::Mx(MxAnswer::Truncated) | Self::Address(AddressAnswer::Truncated) => {
                Verdict::Truncated
            }
            Self::Mx(MxAnswer::Temporary(_)) | Self::Address(AddressAnswer::Temporary(_)) => {
                Verdict::Failed
            }
            _ => Verdict::Final,
        }
    }
}

/// The try in progress of one query.
#[derive(Debug)]
struct Try {
    /// The query id, reserved in [`DnsClient::queries`].
    id: u16,
    query: Query,
    server: SocketAddr,
    /// The TCP slot once the UDP answer was truncated; UDP datagrams are
    /// then ignored.
    tcp: Option<usize>,
}

/// One query of a lookup, across its tries.
#[derive(Debug)]
struct Part {
    query_type: QueryType,
    /// Tries started so far.
    tries: usize,
    current: Option<Try>,
    /// The last failure-code answer (SERVFAIL …), returned if nothing better
    /// comes.
    failed_answer: Option<Answer>,
    /// The last error, returned if no answer at all comes.
    last_error: Option<DnsFailureKind>,
    done: Option<Result<Answer, DnsFailureKind>>,
}

impl Part {
    fn new(query_type: QueryType) -> Self {
        Self {
            query_type,
            tries: 0,
            current: None,
            failed_answer: None,
            last_error: None,
            done: None,
        }
    }
}

#[derive(Debug)]
struct Lookup {
    name: HostName,
    /// The MX tie-break seed (unused for address lookups).
    seed: u64,
    /// One part for MX; A then AAAA for addresses.
    parts: Vec<Part>,
}

/// A TCP exchange in progress.
#[derive(Debug)]
struct TcpConn {
    stream: TcpStream,
    key: QueryKey,
    connected: bool,
    out: Vec<u8>,
    written: usize,
    /// The answer frame so far; never longer than the frame it announces.
    buf: Vec<u8>,
}

/// A non-blocking DNS stub resolver driven by a mio event loop. See the
/// [module documentation](self).
#[derive(Debug)]
pub struct DnsClient {
    servers: Vec<SocketAddr>,
    timeout: Duration,
    attempts: usize,
    first_token: Token,
    udp4: Option<UdpSocket>,
    udp6: Option<UdpSocket>,
    /// Sockets whose read budget ran out: read again at `backlog_at`.
    backlog: [bool; 2],
    backlog_at: Option<Instant>,
    tcp: Vec<Option<TcpConn>>,
    lookups: HashMap<LookupId, Lookup>,
    /// Query ids in flight, to find the query an answer is for.
    queries: HashMap<u16, QueryKey>,
    deadlines: Deadlines<QueryKey>,
    resolved: VecDeque<Resolved>,
    next_id: u64,
    rng: SystemRandom,
}

impl DnsClient {
    /// Tokens the client uses, from `first_token`: two UDP sockets (IPv4,
    /// IPv6) and [`TCP_STREAMS`] TCP streams.
    pub const TOKENS: usize = FIRST_TCP + TCP_STREAMS;

    /// A client asking the servers of `resolver` in order, with its
    /// per-query timeout and number of rounds
    /// ([`query_timeout`](smtp_blocking::Resolver::query_timeout),
    /// [`query_attempts`](smtp_blocking::Resolver::query_attempts)).
    ///
    /// It uses the tokens `first_token .. first_token + DnsClient::TOKENS`
    /// of `registry`'s poll; no socket is opened until a lookup needs it.
    /// Fails (`InvalidInput`) only if that token range overflows.
    pub fn new(
        resolver: &smtp_blocking::Resolver,
        registry: &Registry,
        first_token: Token,
    ) -> io::Result<Self> {
        // Sockets are registered lazily; the registry is taken here so that
        // the signature can grow eager registration without a change.
        let _ = registry;
        if first_token.0.checked_add(Self::TOKENS).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "DNS client token range overflows",
            ));
        }
        Ok(Self {
            servers: resolver.servers().to_vec(),
            timeout: resolver.query_timeout().max(Duration::from_millis(1)),
            attempts: resolver.query_attempts().max(1),
            first_token,
            udp4: None,
            udp6: None,
            backlog: [false; 2],
            backlog_at: None,
            tcp: (0..TCP_STREAMS).map(|_| None).collect(),
            lookups: HashMap::new(),
            queries: HashMap::new(),
            deadlines: Deadlines::new(),
            resolved: VecDeque::new(),
            next_id: 0,
            rng: SystemRandom::new(),
        })
    }

    /// Whether `token` is one of this client's ([`TOKENS`](Self::TOKENS)
    /// from `first_token`).
    pub fn owns(&self, token: Token) -> bool {
        token
            .0
            .checked_sub(self.first_token.0)
            .is_some_and(|offset| offset < Self::TOKENS)
    }

    /// Starts looking up the mail exchangers of `domain`; the answer comes
    /// as [`LookupOutcome::Mx`] from [`poll_resolved`](Self::poll_resolved)
    /// (possibly already now, e.g. without servers).
    pub fn lookup_mx(&mut self, registry: &Registry, now: Instant, domain: &HostName) -> LookupId {
        let id = self.new_lookup_id();
        let seed = match self.random_u64() {
            Ok(seed) => seed,
            Err(e) => {
                self.resolved.push_back(Resolved {
                    id,
                    outcome: LookupOutcome::Mx(Err(DnsFailure {
                        name: domain.to_string(),
                        kind: DnsFailureKind::io(e),
                    })),
                });
                return id;
            }
        };
        self.start_lookup(registry, now, id, domain, seed, &[QueryType::Mx]);
        id
    }

    /// Starts looking up the A and AAAA records of `host` (two queries at
    /// once); the answer comes as [`LookupOutcome::Addresses`] from
    /// [`poll_resolved`](Self::poll_resolved).
    pub fn lookup_addresses(
        &mut self,
        registry: &Registry,
        now: Instant,
        host: &HostName,
    ) -> LookupId {
        let id = self.new_lookup_id();
        self.start_lookup(registry, now, id, host, 0, &[QueryType::A, QueryType::Aaaa]);
        id
    }

    /// Forgets a lookup: its queries stop, its TCP streams close, and no
    /// [`Resolved`] comes for it (one already queued is removed). Unknown
    /// or finished ids are ignored.
    pub fn cancel(&mut self, id: LookupId) {
        if let Some(lookup) = self.lookups.remove(&id) {
            for (part, state) in lookup.parts.into_iter().enumerate() {
                let key = QueryKey { lookup: id, part };
                self.deadlines.remove(key);
                if let Some(current) = state.current {
                    self.queries.remove(&current.id);
                    if let Some(slot) = current.tcp {
                        // Dropping the stream closes it, which also removes
                        // it from the poll (no registry here to deregister).
                        if let Some(entry) = self.tcp.get_mut(slot) {
                            *entry = None;
                        }
                    }
                }
            }
        }
        self.resolved.retain(|r| r.id != id);
    }

    /// Handles a readiness event for one of this client's tokens (others
    /// are ignored).
    pub fn handle_event(&mut self, registry: &Registry, now: Instant, event: &mio::event::Event) {
        let Some(offset) = event.token().0.checked_sub(self.first_token.0) else {
            return;
        };
        match offset {
            UDP4 | UDP6 => self.read_udp(registry, now, offset),
            _ => {
                if let Some(slot) = offset.checked_sub(FIRST_TCP)
                    && slot < TCP_STREAMS
                {
                    self.progress_tcp(registry, now, slot);
                }
            }
        }
    }

    /// Handles the passing of time: queries whose try timed out move on to
    /// the next server (or fail). Spurious calls are harmless.
    pub fn handle_timeout(&mut self, registry: &Registry, now: Instant) {
        if self.backlog_at.is_some_and(|at| at <= now) {
            self.backlog_at = None;
            for family in [UDP4, UDP6] {
                if std::mem::take(&mut self.backlog[family]) {
                    self.read_udp(registry, now, family);
                }
            }
        }
        while let Some(key) = self.deadlines.pop_expired(now) {
            let Some(part) = self.part_mut(key) else {
                continue;
            };
            if part.current.is_none() {
                continue;
            }
            part.last_error.get_or_insert(DnsFailureKind::Timeout);
            self.next_try(registry, now, key);
        }
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout)
    /// has work; `None` when nothing is in flight.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.deadlines.next_deadline(), self.backlog_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next finished lookup, in the order they finished. Drain it after
    /// every other call.
    pub fn poll_resolved(&mut self) -> Option<Resolved> {
        self.resolved.pop_front()
    }

    /// Lookups started and neither finished nor cancelled (finished ones
    /// waiting in [`poll_resolved`](Self::poll_resolved) are not counted).
    pub fn in_flight(&self) -> usize {
        self.lookups.len()
    }

    fn new_lookup_id(&mut self) -> LookupId {
        let id = LookupId(self.next_id);
        self.next_id += 1;
        id
    }

    fn start_lookup(
        &mut self,
        registry: &Registry,
        now: Instant,
        id: LookupId,
        name: &HostName,
        seed: u64,
        types: &[QueryType],
    ) {
        let lookup = Lookup {
            name: name.clone(),
            seed,
            parts: types.iter().map(|&t| Part::new(t)).collect(),
        };
        self.lookups.insert(id, lookup);
        for part in 0..types.len() {
            self.next_try(registry, now, QueryKey { lookup: id, part });
        }
    }

    fn part_mut(&mut self, key: QueryKey) -> Option<&mut Part> {
        self.lookups
            .get_mut(&key.lookup)
            .and_then(|l| l.parts.get_mut(key.part))
    }

    /// Ends the current try of `key` (if any) and starts the next one, or
    /// finishes the query when every try is used up. The caller has
    /// recorded why the try failed.
    fn next_try(&mut self, registry: &Registry, now: Instant, key: QueryKey) {
        self.end_try(registry, key);
        let tries = self.servers.len().saturating_mul(self.attempts);
        loop {
            let Some(lookup) = self.lookups.get_mut(&key.lookup) else {
                return;
            };
            let name = lookup.name.clone();
            let Some(part) = lookup.parts.get_mut(key.part) else {
                return;
            };
            if part.done.is_some() {
                return;
            }
            if self.servers.is_empty() {
                part.last_error = Some(DnsFailureKind::NoServer);
            }
            if part.tries >= tries {
                let result = match (part.failed_answer.take(), part.last_error.take()) {
                    (Some(answer), _) => Ok(answer),
                    (None, error) => Err(error.unwrap_or(DnsFailureKind::Timeout)),
                };
                self.finish_part(key, result);
                return;
            }
            let Some(&server) = part
                .tries
                .checked_rem(self.servers.len())
                .and_then(|i| self.servers.get(i))
            else {
                return;
            };
            part.tries += 1;
            let query_type = part.query_type;
            let Some(id) = self.reserve_id(key) else {
                if let Some(part) = self.part_mut(key) {
                    part.last_error = Some(DnsFailureKind::io(io::Error::other(
                        "no free DNS query id or no random numbers",
                    )));
                }
                continue;
            };
            let query = Query::build(id, &name, query_type);
            match self.send_udp(registry, server, &query.udp_bytes()) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // As if the datagram were lost: wait out the timeout.
                    tracing::debug!(%server, "DNS query dropped: UDP send would block");
                }
                Err(e) => {
                    self.queries.remove(&id);
                    tracing::debug!(%server, error = %e, "DNS query not sent");
                    if let Some(part) = self.part_mut(key) {
                        part.last_error = Some(DnsFailureKind::io(e));
                    }
                    continue;
                }
            }
            if let Some(part) = self.part_mut(key) {
                part.current = Some(Try {
                    id,
                    query,
                    server,
                    tcp: None,
                });
            }
            self.deadlines.set(key, Some(now + self.timeout));
            return;
        }
    }

    /// Releases the current try of `key`: its id, its TCP stream, its
    /// deadline.
    fn end_try(&mut self, registry: &Registry, key: QueryKey) {
        self.deadlines.remove(key);
        let Some(current) = self.part_mut(key).and_then(|p| p.current.take()) else {
            return;
        };
        self.queries.remove(&current.id);
        if let Some(slot) = current.tcp {
            self.close_tcp(registry, slot);
        }
    }

    fn close_tcp(&mut self, registry: &Registry, slot: usize) {
        if let Some(mut conn) = self.tcp.get_mut(slot).and_then(Option::take) {
            let _ = registry.deregister(&mut conn.stream);
        }
    }

    /// Records the result of a query; when every query of the lookup is
    /// done, queues the lookup's [`Resolved`].
    fn finish_part(&mut self, key: QueryKey, result: Result<Answer, DnsFailureKind>) {
        let Some(lookup) = self.lookups.get_mut(&key.lookup) else {
            return;
        };
        let Some(part) = lookup.parts.get_mut(key.part) else {
            return;
        };
        part.done = Some(result);
        if lookup.parts.iter().any(|p| p.done.is_none()) {
            return;
        }
        let Some(lookup) = self.lookups.remove(&key.lookup) else {
            return;
        };
        let outcome = outcome(lookup);
        self.resolved.push_back(Resolved {
            id: key.lookup,
            outcome,
        });
    }

    /// A fresh random query id, unique among the queries in flight, reserved
    /// for `key`. `None` if the random source fails or all 65536 ids are in
    /// use.
    fn reserve_id(&mut self, key: QueryKey) -> Option<u16> {
        let mut bytes = [0u8; 2];
        for _ in 0..16 {
            self.rng.fill(&mut bytes).ok()?;
            let id = u16::from_ne_bytes(bytes);
            if let std::collections::hash_map::Entry::Vacant(entry) = self.queries.entry(id) {
                entry.insert(key);
                return Some(id);
            }
        }
        // Very many queries in flight: take the next free id after a random
        // one.
        let start = u16::from_ne_bytes(bytes);
        let id = (0..=u16::MAX)
            .map(|i| start.wrapping_add(i))
            .find(|id| !self.queries.contains_key(id))?;
        self.queries.insert(id, key);
        Some(id)
    }

    fn random_u64(&self) -> io::Result<u64> {
        let mut bytes = [0u8; 8];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| io::Error::other("no random numbers"))?;
        Ok(u64::from_ne_bytes(bytes))
    }

    /// Sends a datagram from the socket of `server`'s family, binding and
    /// registering it first if needed.
    fn send_udp(
        &mut self,
        registry: &Registry,
        server: SocketAddr,
        bytes: &[u8],
    ) -> io::Result<()> {
        let (family, local) = match server {
            SocketAddr::V4(_) => (UDP4, SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)),
            SocketAddr::V6(_) => (UDP6, SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)),
        };
        let token = Token(self.first_token.0 + family);
        let slot = if family == UDP4 {
            &mut self.udp4
        } else {
            &mut self.udp6
        };
        if slot.is_none() {
            let mut socket = UdpSocket::bind(local)?;
            registry.register(&mut socket, token, Interest::READABLE)?;
            *slot = Some(socket);
        }
        let Some(socket) = slot.as_ref() else {
            return Err(io::Error::other("UDP socket missing"));
        };
        loop {
            match socket.send_to(bytes, server) {
                Ok(n) if n == bytes.len() => return Ok(()),
                Ok(_) => return Err(io::Error::other("DNS query datagram cut short")),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads datagrams from one UDP socket until it would block (or the
    /// read budget is spent) and hands each to [`Self::on_datagram`].
    fn read_udp(&mut self, registry: &Registry, now: Instant, family: usize) {
        let mut buf = [0u8; UDP_BUFFER];
        let mut errors = 0;
        for _ in 0..UDP_READ_BUDGET {
            let socket = if family == UDP4 {
                self.udp4.as_ref()
            } else {
                self.udp6.as_ref()
            };
            let Some(socket) = socket else {
                return;
            };
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let datagram = buf.get(..n).unwrap_or_default();
                    self.on_datagram(registry, now, datagram, from, n >= UDP_BUFFER);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // An unconnected socket reports no ICMP errors on Linux;
                    // anything else is transient. Bounded, so a persistent
                    // error cannot spin the loop.
                    tracing::debug!(error = %e, "DNS UDP receive failed");
                    errors += 1;
                    if errors > 8 {
                        return;
                    }
                }
            }
        }
        // Budget spent: more may be queued, and edge-triggered
        // readiness will not tell us again. Read on in handle_timeout.
        if let Some(flag) = self.backlog.get_mut(family) {
            *flag = true;
        }
        self.backlog_at = Some(self.backlog_at.map_or(now, |at| at.min(now)));
    }

    /// One datagram: used only if it answers a query in flight, from the
    /// server that query was sent to (see the module docs).
    fn on_datagram(
        &mut self,
        registry: &Registry,
        now: Instant,
        datagram: &[u8],
        from: SocketAddr,
        oversized: bool,
    ) {
        let Some(id) = datagram.first_chunk::<2>().map(|b| u16::from_be_bytes(*b)) else {
            return;
        };
        let Some(&key) = self.queries.get(&id) else {
            tracing::trace!(%from, id, "DNS datagram for no query in flight dropped");
            return;
        };
        let Some(lookup) = self.lookups.get(&key.lookup) else {
            return;
        };
        let seed = lookup.seed;
        let Some(current) = lookup.parts.get(key.part).and_then(|p| p.current.as_ref()) else {
            return;
        };
        if current.server != from || current.tcp.is_some() {
            tracing::debug!(%from, id, "DNS datagram from the wrong source dropped");
            return;
        }
        let decoded = current.query.decode(datagram, seed);
        match decoded {
            Err(e) if e.is_unrelated() => {
                tracing::debug!(%from, error = %e, "unrelated DNS datagram dropped");
            }
            // Cut by our buffer: the server ignored our EDNS size. Ask over
            // TCP as for a truncated answer.
            _ if oversized => self.start_tcp(registry, now, key),
            Err(e) => {
                if let Some(part) = self.part_mut(key) {
                    part.last_error = Some(DnsFailureKind::Answer(e));
                }
                self.next_try(registry, now, key);
            }
            Ok(answer) => self.on_answer(registry, now, key, answer, false),
        }
    }

    fn on_answer(
        &mut self,
        registry: &Registry,
        now: Instant,
        key: QueryKey,
        answer: Answer,
        over_tcp: bool,
    ) {
        match answer.verdict() {
            Verdict::Final => {
                self.end_try(registry, key);
                self.finish_part(key, Ok(answer));
            }
            Verdict::Failed => {
                if let Some(part) = self.part_mut(key) {
                    part.failed_answer = Some(answer);
                }
                self.next_try(registry, now, key);
            }
            Verdict::Truncated if over_tcp => {
                // TCP has no size limit to truncate at.
                if let Some(part) = self.part_mut(key) {
                    part.last_error = Some(DnsFailureKind::Answer(AnswerError::Malformed(
                        String::from("truncated answer over TCP"),
                    )));
                }
                self.next_try(registry, now, key);
            }
            Verdict::Truncated => self.start_tcp(registry, now, key),
        }
    }

    /// Asks the current try's query again over TCP, to the same server.
    fn start_tcp(&mut self, registry: &Registry, now: Instant, key: QueryKey) {
        let Some(current) = self.part_mut(key).and_then(|p| p.current.as_ref()) else {
            return;
        };
        let (server, out) = (current.server, current.query.tcp_bytes());
        let Some(slot) = self.tcp.iter().position(Option::is_none) else {
            tracing::debug!(%server, "truncated DNS answer: no free TCP stream");
            if let Some(part) = self.part_mut(key) {
                part.last_error = Some(DnsFailureKind::TcpBusy);
            }
            self.next_try(registry, now, key);
            return;
        };
        let token = Token(self.first_token.0 + FIRST_TCP + slot);
        let connected = TcpStream::connect(server).and_then(|mut stream| {
            registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
            Ok(stream)
        });
        let stream = match connected {
            Ok(stream) => stream,
            Err(e) => {
                if let Some(part) = self.part_mut(key) {
                    part.last_error = Some(DnsFailureKind::io(e));
                }
                self.next_try(registry, now, key);
                return;
            }
        };
        if let Some(entry) = self.tcp.get_mut(slot) {
            *entry = Some(TcpConn {
                stream,
                key,
                connected: false,
                out,
                written: 0,
                buf: Vec::with_capacity(512),
            });
        }
        if let Some(current) = self.part_mut(key).and_then(|p| p.current.as_mut()) {
            current.tcp = Some(slot);
        }
        // The TCP exchange gets its own timeout, as in the blocking resolver.
        self.deadlines.set(key, Some(now + self.timeout));
    }

    /// Moves a TCP exchange on: finish connecting, write the query, read
    /// the answer frame.
    fn progress_tcp(&mut self, registry: &Registry, now: Instant, slot: usize) {
        let Some(conn) = self.tcp.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let key = conn.key;
        match tcp_io(conn) {
            Ok(None) => {}
            Ok(Some(message)) => {
                self.close_tcp(registry, slot);
                if let Some(current) = self.part_mut(key).and_then(|p| p.current.as_mut()) {
                    current.tcp = None;
                }
                let Some(lookup) = self.lookups.get(&key.lookup) else {
                    return;
                };
                let Some(current) = lookup.parts.get(key.part).and_then(|p| p.current.as_ref())
                else {
                    return;
                };
                // Over TCP the server is the only sender: an answer that does
                // not fit the query is an error, not noise.
                match current.query.decode(&message, lookup.seed) {
                    Ok(answer) => self.on_answer(registry, now, key, answer, true),
                    Err(e) => {
                        if let Some(part) = self.part_mut(key) {
                            part.last_error = Some(DnsFailureKind::Answer(e));
                        }
                        self.next_try(registry, now, key);
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "DNS over TCP failed");
                if let Some(part) = self.part_mut(key) {
                    part.last_error = Some(DnsFailureKind::io(e));
                }
                self.next_try(registry, now, key);
            }
        }
    }
}

/// Does what the stream allows now; returns the answer message once its
/// frame is complete.
fn tcp_io(conn: &mut TcpConn) -> io::Result<Option<Vec<u8>>> {
    if !conn.connected {
        if let Some(e) = conn.stream.take_error()? {
            return Err(e);
        }
        match conn.stream.peer_addr() {
            Ok(_) => conn.connected = true,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    while let Some(rest) = conn.out.get(conn.written..).filter(|r| !r.is_empty()) {
        match conn.stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut chunk = [0u8; 4096];
    loop {
        let needed = match parse_tcp_frame(&conn.buf) {
            TcpFrame::Complete { message, .. } => return Ok(Some(message.to_vec())),
            TcpFrame::Incomplete { needed } => needed,
        };
        // Read no further than the frame: the buffer stays bounded by it.
        let want = needed.saturating_sub(conn.buf.len()).min(chunk.len());
        let Some(into) = chunk.get_mut(..want) else {
            return Err(io::Error::other("DNS TCP buffer"));
        };
        match conn.stream.read(into) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => conn
                .buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The outcome of a finished lookup, mapped and combined as the blocking
/// resolver does.
fn outcome(lookup: Lookup) -> LookupOutcome {
    let name = lookup.name.to_string();
    let fail = |kind| DnsFailure {
        name: name.clone(),
        kind,
    };
    let unexpected =
        || DnsFailureKind::Answer(AnswerError::Malformed(String::from("unexpected answer")));
    let mut parts = lookup.parts.into_iter();
    let first = parts.next();
    if first
        .as_ref()
        .is_some_and(|p| p.query_type == QueryType::Mx)
    {
        let result = match first.and_then(|p| p.done) {
            Some(Ok(Answer::Mx(MxAnswer::Temporary(rcode)))) => {
                Err(fail(DnsFailureKind::ServerFailure(rcode)))
            }
            Some(Ok(Answer::Mx(MxAnswer::Truncated))) => Err(fail(unexpected())),
            Some(Ok(Answer::Mx(answer))) => Ok(answer),
            Some(Ok(Answer::Address(_))) | None => Err(fail(unexpected())),
            Some(Err(kind)) => Err(fail(kind)),
        };
        return LookupOutcome::Mx(result);
    }
    let lookups = first.into_iter().chain(parts).map(|part| {
        match part.done {
            Some(Ok(Answer::Address(AddressAnswer::Addresses(ips)))) => Ok(ips),
            Some(Ok(Answer::Address(AddressAnswer::NxDomain))) => Err(DnsFailureKind::NxDomain),
            Some(Ok(Answer::Address(AddressAnswer::Temporary(rcode)))) => {
                Err(DnsFailureKind::ServerFailure(rcode))
            }
            Some(Ok(_)) | None => Err(unexpected()),
            Some(Err(kind)) => Err(kind),
        }
        .map_err(fail)
    });
    LookupOutcome::Addresses(merge_address_lookups(lookups, DnsFailure::severity))
}

// The EDNS size we advertise must leave room below our receive buffer, or
// the "oversized means truncated" rule would misfire.
const _: () = assert!((EDNS_UDP_PAYLOAD as usize) < UDP_BUFFER);
