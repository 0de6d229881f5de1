//! DNS on the event loop: a socket pump over the core's stub resolver.
//!
//! Every DNS decision — which server to ask, how long to wait, when to ask
//! the next one, when to switch to TCP, which answers to believe (RFC 5452),
//! what to cache — is [`smtp_proto::dns::Resolver`]'s, written once in the
//! core for every transport. [`DnsPump`] only moves its bytes over
//! non-blocking sockets registered on the loop's `mio::Poll`, exactly as the
//! resolver's module docs ask of a transport:
//!
//! - `Send`: one datagram from an unconnected UDP socket per address family,
//!   bound to port 0 (the kernel's random port: RFC 5452 §9.2's other half).
//!   A send that would block is dropped (the try times out as if it were
//!   lost); any other send error is reported with
//!   [`Resolver::handle_datagram_error`].
//! - Datagrams are read into a buffer of [`DATAGRAM_BUFFER`] octets and
//!   handed over with their source address, whoever sent them: the resolver
//!   drops what does not answer a try in flight from the server it was sent
//!   to.
//! - `OpenStream` / `CloseStream`: a non-blocking TCP connection per stream,
//!   written until its frame is out, read until the resolver closes it.
//! - `Wait { deadline }`: [`next_deadline`](DnsPump::next_deadline) for the
//!   loop's sleep, then [`handle_timeout`](DnsPump::handle_timeout).
//!
//! Message ids and MX tie-break seeds are drawn from the operating system's
//! random source ([`ring::rand::SystemRandom`]), 64 bits per lookup.
//!
//! # Bounds
//!
//! The resolver bounds lookups in flight, streams and message sizes (see
//! [`ResolverConfig`]). Here, one readiness event (or one backlog turn) reads
//! at most [`READ_BUDGET`] datagrams or stream reads from one socket, so a
//! flood of datagrams cannot starve the connections sharing the loop: what
//! is left is read on the next turn, which
//! [`next_deadline`](DnsPump::next_deadline) asks for at once (mio's
//! readiness is edge-triggered, so a socket not read to `WouldBlock` must be
//! remembered).
//!
//! The settings come from [`ResolverConfig`]; [`system_config`] reads them
//! from `/etc/resolv.conf` (parsing is the core's,
//! [`ResolverConfig::from_resolv_conf`]).

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use mio::net::{TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};
use ring::rand::{SecureRandom, SystemRandom};
use smtp_proto::dns::{
    DATAGRAM_BUFFER, LookupError, LookupId, Output, Question, Resolved, Resolver, ResolverConfig,
    StreamId,
};

/// Reads from one socket per readiness event before yielding to the loop:
/// a quarter of what a default Linux receive buffer holds of small
/// datagrams (about 256 in 208 KiB), so a full buffer takes a few turns,
/// each short beside the connections sharing the loop.
pub const READ_BUDGET: usize = 64;

/// Where the system's resolver settings live (`resolv.conf(5)`).
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The resolver settings of this machine: [`RESOLV_CONF`] parsed by
/// [`ResolverConfig::from_resolv_conf`]; a missing file gives glibc's
/// default (a resolver on the local host).
///
/// # Errors
///
/// The file exists but cannot be read.
pub fn system_config() -> io::Result<ResolverConfig> {
    match std::fs::read_to_string(RESOLV_CONF) {
        Ok(text) => Ok(ResolverConfig::from_resolv_conf(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ResolverConfig::default()),
        Err(e) => Err(e),
    }
}

/// Why [`DnsPump::lookup`] started nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupFailed {
    /// The resolver refused: too many lookups in flight. Ask again after
    /// one resolves.
    #[error(transparent)]
    Resolver(#[from] LookupError),
    /// The operating system's random source failed: no unpredictable
    /// message id can be drawn, so no query is sent.
    #[error("no random numbers from the operating system")]
    Random,
}

/// Token offsets from the first token: the two UDP sockets, then the streams.
const UDP4: usize = 0;
const UDP6: usize = 1;
const FIRST_STREAM: usize = 2;

/// A TCP stream the resolver asked for.
#[derive(Debug)]
struct Stream {
    id: StreamId,
    socket: TcpStream,
    /// The frame to write, and how much of it is written.
    out: Vec<u8>,
    written: usize,
    connected: bool,
}

/// The resolver's sockets on a `mio::Poll`. See the [module docs](self).
#[derive(Debug)]
pub struct DnsPump {
    resolver: Resolver,
    first_token: Token,
    udp: [Option<UdpSocket>; 2],
    /// At most `max_streams` (the resolver's), by token offset.
    streams: Vec<Option<Stream>>,
    max_streams: usize,
    /// Token offsets whose read budget ran out, and when that was.
    backlog: BTreeSet<usize>,
    backlog_at: Option<Instant>,
    deadline: Option<Instant>,
    resolved: VecDeque<Resolved>,
    buf: Vec<u8>,
    rng: SystemRandom,
}

impl DnsPump {
    /// The tokens a pump over `resolver` uses, from its first token: two UDP
    /// sockets and one per stream the resolver may open.
    pub fn tokens(resolver: &Resolver) -> usize {
        FIRST_STREAM.saturating_add(resolver.config().max_streams)
    }

    /// A pump over `resolver` using the tokens `first_token ..
    /// first_token + DnsPump::tokens(&resolver)` of the loop's poll. No
    /// socket is opened before a lookup needs it.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the token range overflows.
    pub fn new(resolver: Resolver, first_token: Token) -> io::Result<Self> {
        if first_token.0.checked_add(Self::tokens(&resolver)).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "DNS token range overflows",
            ));
        }
        Ok(Self {
            max_streams: resolver.config().max_streams,
            resolver,
            first_token,
            udp: [None, None],
            streams: Vec::new(),
            backlog: BTreeSet::new(),
            backlog_at: None,
            deadline: None,
            resolved: VecDeque::new(),
            buf: vec![0; DATAGRAM_BUFFER],
            rng: SystemRandom::new(),
        })
    }

    /// The resolver (its configuration, its cache).
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// Whether `token` is one of the pump's.
    pub fn owns(&self, token: Token) -> bool {
        token
            .0
            .checked_sub(self.first_token.0)
            .is_some_and(|offset| offset < Self::tokens(&self.resolver))
    }

    /// 64 bits from the operating system's random source (a lookup's seed,
    /// an MX tie-break seed).
    pub fn random_u64(&self) -> Option<u64> {
        let mut bytes = [0u8; 8];
        self.rng.fill(&mut bytes).ok()?;
        Some(u64::from_le_bytes(bytes))
    }

    /// Starts a lookup; its [`Resolved`] comes from
    /// [`poll_resolved`](Self::poll_resolved), possibly at once (a cached
    /// answer, no server).
    ///
    /// # Errors
    ///
    /// See [`LookupFailed`]; nothing was started.
    pub fn lookup(
        &mut self,
        registry: &Registry,
        now: Instant,
        question: Question,
    ) -> Result<LookupId, LookupFailed> {
        let seed = self.random_u64().ok_or(LookupFailed::Random)?;
        let id = self.resolver.lookup(now, question, seed)?;
        self.flush(registry, now);
        Ok(id)
    }

    /// Forgets a lookup: no [`Resolved`] comes for it (one already queued
    /// is dropped).
    pub fn cancel(&mut self, registry: &Registry, now: Instant, id: LookupId) {
        self.resolver.cancel(id);
        self.resolved.retain(|r| r.id != id);
        self.flush(registry, now);
    }

    /// A readiness event for one of the pump's tokens (others are ignored).
    pub fn handle_event(&mut self, registry: &Registry, now: Instant, token: Token) {
        if let Some(offset) = token.0.checked_sub(self.first_token.0) {
            self.read(registry, now, offset);
            self.flush(registry, now);
        }
    }

    /// Reads what a spent budget left, and hands the time to the resolver
    /// (tries whose deadline passed move on). Spurious calls are harmless.
    pub fn handle_timeout(&mut self, registry: &Registry, now: Instant) {
        if self.backlog_at.take().is_some() {
            for offset in std::mem::take(&mut self.backlog) {
                self.read(registry, now, offset);
            }
        }
        self.resolver.handle_timeout(now);
        self.flush(registry, now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) has work: the
    /// resolver's next deadline, or at once after a spent read budget.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.deadline, self.backlog_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next finished lookup. Drain it after every other call.
    pub fn poll_resolved(&mut self) -> Option<Resolved> {
        self.resolved.pop_front()
    }

    /// Lookups started and not yet handed out by
    /// [`poll_resolved`](Self::poll_resolved).
    pub fn in_flight(&self) -> usize {
        self.resolver.in_flight() + self.resolved.len()
    }

    /// Does what the resolver asks until it waits.
    fn flush(&mut self, registry: &Registry, now: Instant) {
        loop {
            let (mut failed_send, mut failed_stream) = (None, None);
            match self.resolver.poll(now) {
                Output::Send { server, bytes } => {
                    let family = if server.is_ipv4() { UDP4 } else { UDP6 };
                    let token = Token(self.first_token.0 + family);
                    match send(&mut self.udp[family], registry, token, server, bytes) {
                        Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                            tracing::debug!(%server, error = %e, "DNS query not sent");
                            failed_send = Some(server);
                        }
                        // Would block: as if the datagram were lost.
                        _ => {}
                    }
                }
                Output::OpenStream {
                    stream,
                    server,
                    bytes,
                } => {
                    let free = self.streams.iter().position(Option::is_none);
                    let slot = free.unwrap_or(self.streams.len());
                    let token = Token(self.first_token.0 + FIRST_STREAM + slot);
                    // More streams than the resolver allows never come;
                    // refused rather than trusted.
                    let opened = if slot < self.max_streams {
                        open(registry, token, stream, server, bytes)
                    } else {
                        Err(io::Error::other("no stream slot"))
                    };
                    match opened {
                        Ok(s) => {
                            if slot == self.streams.len() {
                                self.streams.push(None);
                            }
                            if let Some(entry) = self.streams.get_mut(slot) {
                                *entry = Some(s);
                            }
                        }
                        Err(e) => {
                            tracing::debug!(%server, error = %e, "DNS stream not opened");
                            failed_stream = Some(stream);
                        }
                    }
                }
                Output::CloseStream(stream) => {
                    let at = self
                        .streams
                        .iter()
                        .position(|s| s.as_ref().is_some_and(|s: &Stream| s.id == stream));
                    let taken = at.and_then(|i| self.streams.get_mut(i)?.take());
                    if let Some(mut s) = taken {
                        let _ = registry.deregister(&mut s.socket);
                    }
                }
                Output::Resolved(resolved) => self.resolved.push_back(resolved),
                Output::Wait { deadline } => {
                    self.deadline = deadline;
                    return;
                }
                // An output this pump does not know: nothing to do for it.
                _ => {}
            }
            if let Some(server) = failed_send {
                self.resolver.handle_datagram_error(now, server);
            }
            if let Some(stream) = failed_stream {
                self.resolver.handle_stream_error(now, stream);
            }
        }
    }

    /// Reads one socket, at most [`READ_BUDGET`] times.
    fn read(&mut self, registry: &Registry, now: Instant, offset: usize) {
        let spent = if offset == UDP4 || offset == UDP6 {
            self.read_udp(now, offset)
        } else {
            self.read_stream(registry, now, offset - FIRST_STREAM)
        };
        if spent {
            self.backlog.insert(offset);
            self.backlog_at = Some(now);
        }
    }

    /// `true` if the budget ran out before the socket was empty.
    fn read_udp(&mut self, now: Instant, family: usize) -> bool {
        let Some(socket) = &self.udp[family] else {
            return false;
        };
        for _ in 0..READ_BUDGET {
            match socket.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    let datagram = self.buf.get(..n).unwrap_or_default();
                    self.resolver.handle_datagram(now, from, datagram);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error reported on the socket, or worse: nothing
                // to hand over; the tries concerned time out.
                Err(e) => tracing::debug!(error = %e, "DNS socket error"),
            }
        }
        true
    }

    /// Connects, writes and reads one stream, reporting to the resolver.
    fn read_stream(&mut self, registry: &Registry, now: Instant, slot: usize) -> bool {
        let Some(Some(stream)) = self.streams.get_mut(slot) else {
            return false;
        };
        let id = stream.id;
        match progress(stream, &mut self.buf, |bytes| {
            self.resolver.handle_stream_input(now, id, bytes);
        }) {
            Ok(Progress::Open) => false,
            Ok(Progress::Spent) => true,
            Ok(Progress::Eof) => {
                self.resolver.handle_stream_eof(now, id);
                false
            }
            Err(e) => {
                tracing::debug!(stream = %id, error = %e, "DNS stream failed");
                if let Some(mut s) = self.streams.get_mut(slot).and_then(Option::take) {
                    let _ = registry.deregister(&mut s.socket);
                }
                self.resolver.handle_stream_error(now, id);
                false
            }
        }
    }
}

/// Sends one datagram, binding (and registering) the family's socket first.
fn send(
    socket: &mut Option<UdpSocket>,
    registry: &Registry,
    token: Token,
    server: SocketAddr,
    bytes: &[u8],
) -> io::Result<()> {
    if socket.is_none() {
        let any = if server.is_ipv4() {
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
        } else {
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
        };
        let mut bound = UdpSocket::bind(any)?;
        registry.register(&mut bound, token, Interest::READABLE)?;
        *socket = Some(bound);
    }
    let Some(socket) = socket else {
        return Err(io::ErrorKind::NotConnected.into());
    };
    socket.send_to(bytes, server).map(|_| ())
}

/// Starts a stream's connection; its frame is written once connected.
fn open(
    registry: &Registry,
    token: Token,
    id: StreamId,
    server: SocketAddr,
    bytes: &[u8],
) -> io::Result<Stream> {
    let mut socket = TcpStream::connect(server)?;
    registry.register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)?;
    Ok(Stream {
        id,
        socket,
        out: bytes.to_vec(),
        written: 0,
        connected: false,
    })
}

enum Progress {
    /// Waiting for the socket.
    Open,
    /// The read budget ran out.
    Spent,
    /// The server closed its side.
    Eof,
}

/// Finishes the connect, writes what is left of the frame, and hands what
/// arrives to `input`.
fn progress(
    stream: &mut Stream,
    buf: &mut [u8],
    mut input: impl FnMut(&[u8]),
) -> io::Result<Progress> {
    if !stream.connected {
        if let Some(e) = stream.socket.take_error()? {
            return Err(e);
        }
        match stream.socket.peer_addr() {
            Ok(_) => stream.connected = true,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(Progress::Open),
            Err(e) => return Err(e),
        }
    }
    while let Some(rest) = stream.out.get(stream.written..).filter(|r| !r.is_empty()) {
        match stream.socket.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => stream.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    for _ in 0..READ_BUDGET {
        match stream.socket.read(buf) {
            Ok(0) => return Ok(Progress::Eof),
            Ok(n) => input(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Progress::Open),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Progress::Spent)
}
