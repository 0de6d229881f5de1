//! The lookup state machine: questions in, datagrams and TCP frames out,
//! answers in, typed results out. See the [module docs](super) for the flow
//! and the transport's part.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use thiserror::Error;

use super::answer::{Answer, Rcode};
use super::cache::Cache;
use super::config::ResolverConfig;
use super::decode::{Decoded, Rejected, judge};
use super::error::{AnswerError, Failure};
use super::question::Question;
use super::rng::SplitMix64;
use super::tcp::{TcpFrame, parse_tcp_frame, write_tcp_frame};

/// The receive buffer a transport reads datagrams into, in octets.
///
/// The resolver advertises [`EDNS_UDP_PAYLOAD`](super::EDNS_UDP_PAYLOAD)
/// (1232) octets, so an answer this long comes from a server that ignored
/// it, and `recv` cut it to the buffer: a datagram of this length or more
/// is taken as truncated and the question is asked again over TCP. 4096 is
/// the largest payload RFC 6891 §6.2.5 suggests anyone advertise.
pub const DATAGRAM_BUFFER: usize = 4096;

// The EDNS size we advertise must leave room below the receive buffer, or
// the "a full buffer means truncated" rule would misfire.
const _: () = assert!((super::EDNS_UDP_PAYLOAD as usize) < DATAGRAM_BUFFER);

/// One lookup, from [`Resolver::lookup`]. Never reused by one resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(u64);

impl fmt::Display for LookupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dns#{}", self.0)
    }
}

/// One TCP stream the resolver asked for ([`Output::OpenStream`]). Never
/// reused by one resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(u64);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dns-tcp#{}", self.0)
    }
}

/// A lookup the resolver will not start. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LookupError {
    /// [`ResolverConfig::max_lookups`] lookups are started and not yet
    /// handed out: wait for one to resolve (or cancel one) and ask again.
    #[error("{limit} DNS lookups in flight")]
    TooManyLookups {
        /// The limit.
        limit: usize,
    },
}

/// A finished lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resolved {
    /// The lookup, as [`Resolver::lookup`] returned it.
    pub id: LookupId,
    /// What it asked.
    pub question: Question,
    /// What it found.
    pub result: Result<Answer, Failure>,
}

/// One thing the resolver needs its transport or application to do, from
/// [`Resolver::poll`].
#[must_use = "drain poll() until Wait and act on each output"]
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output<'a> {
    /// Send `bytes` as one UDP datagram to `server`. If sending fails, call
    /// [`Resolver::handle_datagram_error`]; if the socket would block, drop
    /// it (the try times out as if it were lost).
    Send {
        /// Where to.
        server: SocketAddr,
        /// The query message.
        bytes: &'a [u8],
    },
    /// Open a TCP connection to `server` and write `bytes` (the query with
    /// its length prefix) on it; hand what arrives to
    /// [`Resolver::handle_stream_input`], its end to
    /// [`Resolver::handle_stream_eof`], a failure (connect included) to
    /// [`Resolver::handle_stream_error`].
    OpenStream {
        /// The name the resolver gives the stream.
        stream: StreamId,
        /// Where to connect.
        server: SocketAddr,
        /// What to write, all of it, in order.
        bytes: &'a [u8],
    },
    /// Close the stream and forget it: the resolver ignores anything more
    /// about it. Comes exactly once for every stream that was opened.
    CloseStream(StreamId),
    /// A lookup finished; hand it to whoever asked.
    Resolved(Resolved),
    /// Nothing to do until a datagram or stream input arrives or
    /// `deadline` passes (then call [`Resolver::handle_timeout`]).
    Wait {
        /// When to call `handle_timeout` (`None`: nothing is in flight).
        deadline: Option<Instant>,
    },
}

/// A sans-IO DNS stub resolver. See the [module docs](super).
#[derive(Debug)]
pub struct Resolver {
    config: ResolverConfig,
    /// Every lookup started and not yet handed out by `poll`.
    lookups: BTreeMap<LookupId, LookupState>,
    /// The distinct questions in flight.
    queries: BTreeMap<QueryKey, Query>,
    by_question: BTreeMap<Question, QueryKey>,
    /// Message ids in flight, to the question each belongs to.
    ids: BTreeMap<u16, QueryKey>,
    /// TCP streams the resolver has asked for and not closed.
    streams: BTreeMap<StreamId, QueryKey>,
    pending: VecDeque<Pending>,
    cache: Option<Cache>,
    /// The bytes of the last `Send` or `OpenStream` output.
    scratch: Vec<u8>,
    next_lookup: u64,
    next_query: u64,
    next_stream: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct QueryKey(u64);

#[derive(Debug, Clone, Copy)]
enum LookupState {
    /// Waiting for the answer to this question.
    Waiting(QueryKey),
    /// Its [`Resolved`] waits in the output queue.
    Done,
}

/// One distinct question in flight and its tries.
#[derive(Debug)]
struct Query {
    question: Question,
    /// Draws the message id of every try, from the first lookup's seed.
    rng: SplitMix64,
    /// The lookups waiting for this question (identical lookups share it).
    waiters: Vec<LookupId>,
    /// Tries started so far.
    tries: usize,
    current: Option<Try>,
    /// The last failure code a server answered with.
    failed_rcode: Option<Rcode>,
    /// The last other error.
    last_error: Option<Failure>,
}

/// One try: one message id, one server, UDP and maybe then TCP.
#[derive(Debug)]
struct Try {
    id: u16,
    server: SocketAddr,
    /// Armed when the datagram or stream is handed out by `poll`.
    deadline: Option<Instant>,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    Udp {
        /// Handed out by `poll`: only then may an answer count.
        sent: bool,
    },
    Tcp {
        stream: StreamId,
        /// Handed out by `poll`: only then is a close owed.
        opened: bool,
        /// The answer frame so far; never longer than the frame it announces.
        buf: Vec<u8>,
    },
}

#[derive(Debug)]
enum Pending {
    Send(QueryKey, u16),
    Open(QueryKey, StreamId),
    Close(StreamId),
    Resolved(Resolved),
}

/// Source addresses compare by IP and port, with IPv4-mapped IPv6
/// addresses (`::ffff:192.0.2.1`, what a dual-stack socket reports) equal
/// to their IPv4 form; flow and scope ids are not compared.
fn same_server(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

impl Resolver {
    /// A resolver with `config` (values out of range are brought into
    /// range, see [`ResolverConfig`]).
    pub fn new(config: ResolverConfig) -> Self {
        let config = config.sanitized();
        let cache = config.cache.clone().map(Cache::new);
        Self {
            config,
            lookups: BTreeMap::new(),
            queries: BTreeMap::new(),
            by_question: BTreeMap::new(),
            ids: BTreeMap::new(),
            streams: BTreeMap::new(),
            pending: VecDeque::new(),
            cache,
            scratch: Vec::with_capacity(512),
            next_lookup: 0,
            next_query: 0,
            next_stream: 0,
        }
    }

    /// The configuration in use (after range checks).
    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    /// Starts looking up `question`.
    ///
    /// `seed` must be 64 fresh bits from the caller's CSPRNG: every try's
    /// message id is drawn from it (RFC 5452 §9.2), re-drawn if it collides
    /// with an id in flight. The result comes as [`Output::Resolved`] from
    /// [`poll`](Self::poll) — at the next poll if the cache holds the
    /// answer (no query is sent) or no server is configured.
    ///
    /// A lookup for a question already in flight joins it: one query goes
    /// out, every lookup gets the answer (RFC 5452 §5: identical queries in
    /// flight together make a spoofer's birthday attack easier).
    pub fn lookup(
        &mut self,
        now: Instant,
        question: Question,
        seed: u64,
    ) -> Result<LookupId, LookupError> {
        if self.lookups.len() >= self.config.max_lookups {
            return Err(LookupError::TooManyLookups {
                limit: self.config.max_lookups,
            });
        }
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        let cached = self
            .cache
            .as_mut()
            .and_then(|cache| cache.get(now, &question));
        if let Some(answer) = cached {
            self.resolve_now(id, question, Ok(answer));
            return Ok(id);
        }
        if self.config.servers.is_empty() {
            self.resolve_now(id, question, Err(Failure::NoServer));
            return Ok(id);
        }
        if let Some(&key) = self.by_question.get(&question)
            && let Some(query) = self.queries.get_mut(&key)
        {
            query.waiters.push(id);
            self.lookups.insert(id, LookupState::Waiting(key));
            return Ok(id);
        }
        let key = QueryKey(self.next_query);
        self.next_query += 1;
        self.by_question.insert(question.clone(), key);
        self.queries.insert(
            key,
            Query {
                question,
                rng: SplitMix64::new(seed),
                waiters: vec![id],
                tries: 0,
                current: None,
                failed_rcode: None,
                last_error: None,
            },
        );
        self.lookups.insert(id, LookupState::Waiting(key));
        self.next_try(now, key);
        Ok(id)
    }

    /// Forgets a lookup: no [`Resolved`] comes for it (one already queued
    /// is removed). When no other lookup shares its question, its query
    /// stops: its id is released and its stream closed
    /// ([`Output::CloseStream`]). Returns whether the lookup was known.
    pub fn cancel(&mut self, id: LookupId) -> bool {
        match self.lookups.remove(&id) {
            None => false,
            Some(LookupState::Done) => {
                self.pending
                    .retain(|p| !matches!(p, Pending::Resolved(r) if r.id == id));
                true
            }
            Some(LookupState::Waiting(key)) => {
                let Some(query) = self.queries.get_mut(&key) else {
                    return true;
                };
                query.waiters.retain(|w| *w != id);
                if query.waiters.is_empty() {
                    self.end_try(key);
                    if let Some(query) = self.queries.remove(&key) {
                        self.by_question.remove(&query.question);
                    }
                }
                true
            }
        }
    }

    /// The next thing to do. Call it after every other call until it
    /// returns [`Output::Wait`].
    ///
    /// A try's timeout starts when its datagram or stream is handed out
    /// here, so `now` should be the time of the send.
    pub fn poll(&mut self, now: Instant) -> Output<'_> {
        while let Some(pending) = self.pending.pop_front() {
            match pending {
                Pending::Send(key, id) => {
                    let Some(query) = self.queries.get_mut(&key) else {
                        continue;
                    };
                    let Some(current) = query.current.as_mut() else {
                        continue;
                    };
                    if current.id != id || !matches!(current.phase, Phase::Udp { sent: false }) {
                        continue;
                    }
                    current.phase = Phase::Udp { sent: true };
                    current.deadline = now.checked_add(self.config.timeout);
                    self.scratch.clear();
                    query.question.write_query(id, true, &mut self.scratch);
                    return Output::Send {
                        server: current.server,
                        bytes: &self.scratch,
                    };
                }
                Pending::Open(key, stream) => {
                    let Some(query) = self.queries.get_mut(&key) else {
                        continue;
                    };
                    let Some(current) = query.current.as_mut() else {
                        continue;
                    };
                    let Phase::Tcp {
                        stream: current_stream,
                        opened,
                        ..
                    } = &mut current.phase
                    else {
                        continue;
                    };
                    if *current_stream != stream || *opened {
                        continue;
                    }
                    *opened = true;
                    // The TCP exchange gets a timeout of its own, as the
                    // transports always gave it.
                    current.deadline = now.checked_add(self.config.timeout);
                    let message = query.question.to_query(current.id, true);
                    self.scratch.clear();
                    // A one-question query is far below 65535 octets.
                    write_tcp_frame(&message, &mut self.scratch)
                        .expect("a query fits in a TCP frame");
                    return Output::OpenStream {
                        stream,
                        server: current.server,
                        bytes: &self.scratch,
                    };
                }
                Pending::Close(stream) => return Output::CloseStream(stream),
                Pending::Resolved(resolved) => {
                    self.lookups.remove(&resolved.id);
                    return Output::Resolved(resolved);
                }
            }
        }
        Output::Wait {
            deadline: self.next_timeout(),
        }
    }

    /// The earliest try deadline; `None` when nothing waits for one.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.queries
            .values()
            .filter_map(|q| q.current.as_ref().and_then(|t| t.deadline))
            .min()
    }

    /// Lookups started and not yet handed out by [`poll`](Self::poll).
    pub fn in_flight(&self) -> usize {
        self.lookups.len()
    }

    /// Answers in the cache (expired ones included until they are next
    /// asked for or evicted); 0 without a cache.
    pub fn cache_len(&self) -> usize {
        self.cache.as_ref().map_or(0, Cache::len)
    }

    /// Empties the cache.
    pub fn clear_cache(&mut self) {
        if let Some(cache) = &mut self.cache {
            cache.clear();
        }
    }

    /// Tries whose deadline has passed move on to the next server (or end
    /// their lookup). Spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<QueryKey> = self
            .queries
            .iter()
            .filter(|(_, q)| {
                q.current
                    .as_ref()
                    .and_then(|t| t.deadline)
                    .is_some_and(|d| d <= now)
            })
            .map(|(key, _)| *key)
            .collect();
        for key in expired {
            self.fail_try(now, key, Failure::Timeout);
        }
    }

    /// A datagram arrived from `from`.
    ///
    /// It counts only if its id is the id of a try in flight, it comes from
    /// the exact address that try was sent to, that try still waits for a
    /// UDP answer, and it shows that it answers the try's question: a
    /// readable header and question section that repeats the name, type and
    /// class (RFC 5452 §9.1).
    /// Anything else is dropped without effect: a spoofer can neither decide
    /// the outcome nor end the wait for the real answer. Any bytes are safe.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Some(id) = bytes.first_chunk::<2>().map(|b| u16::from_be_bytes(*b)) else {
            return;
        };
        let Some(&key) = self.ids.get(&id) else {
            return;
        };
        let Some(query) = self.queries.get(&key) else {
            return;
        };
        let Some(current) = query.current.as_ref() else {
            return;
        };
        if current.id != id
            || !same_server(current.server, from)
            || !matches!(current.phase, Phase::Udp { sent: true })
        {
            return;
        }
        match judge(id, &query.question, bytes) {
            Err(Rejected::Unrelated(_)) => {}
            // Cut by the transport's buffer: the server ignored our EDNS
            // size. Ask over TCP, as for a truncated answer.
            _ if bytes.len() >= DATAGRAM_BUFFER => self.start_tcp(now, key),
            Err(Rejected::Unusable(e)) => self.fail_try(now, key, Failure::Unusable(e)),
            Ok(Decoded::Truncated) => self.start_tcp(now, key),
            Ok(Decoded::ServerFailure(rcode)) => self.server_failed(now, key, rcode),
            Ok(Decoded::Answer(answer)) => self.finish(now, key, Ok(answer)),
        }
    }

    /// Sending to `server` failed, or the transport learned that nothing
    /// listens there (an ICMP error reported on a connected socket): every
    /// try waiting for a UDP answer from `server` fails now and moves on.
    pub fn handle_datagram_error(&mut self, now: Instant, server: SocketAddr) {
        let failed: Vec<QueryKey> = self
            .queries
            .iter()
            .filter(|(_, q)| {
                q.current.as_ref().is_some_and(|t| {
                    same_server(t.server, server) && matches!(t.phase, Phase::Udp { sent: true })
                })
            })
            .map(|(key, _)| *key)
            .collect();
        for key in failed {
            self.fail_try(now, key, Failure::Unreachable);
        }
    }

    /// Bytes arrived on a stream. Only the answer frame is kept (at most
    /// [`ResolverConfig::max_tcp_message`] octets); anything after it is
    /// ignored. Input for an unknown or closed stream is ignored.
    pub fn handle_stream_input(&mut self, now: Instant, stream: StreamId, bytes: &[u8]) {
        let Some(&key) = self.streams.get(&stream) else {
            return;
        };
        let limit = self.config.max_tcp_message;
        let Some(query) = self.queries.get_mut(&key) else {
            return;
        };
        let Some(current) = query.current.as_mut() else {
            return;
        };
        let id = current.id;
        let Phase::Tcp {
            stream: current_stream,
            opened: true,
            buf,
        } = &mut current.phase
        else {
            return;
        };
        if *current_stream != stream {
            return;
        }
        let message = match take_frame(buf, bytes, limit) {
            Frame::Partial => return,
            Frame::TooLong(len) => {
                let error = AnswerError::Malformed(format!(
                    "TCP frame of {len} octets above the {limit}-octet limit"
                ));
                self.fail_try(now, key, Failure::Unusable(error));
                return;
            }
            Frame::Complete(message) => message,
        };
        // Over TCP the server is the only sender: an answer that does not
        // fit the query is an error, not noise.
        match judge(id, &query.question, &message) {
            Ok(Decoded::Answer(answer)) => self.finish(now, key, Ok(answer)),
            Ok(Decoded::ServerFailure(rcode)) => self.server_failed(now, key, rcode),
            // TCP has no size limit to truncate at.
            Ok(Decoded::Truncated) => {
                let error = AnswerError::Malformed(String::from("truncated answer over TCP"));
                self.fail_try(now, key, Failure::Unusable(error));
            }
            Err(Rejected::Unrelated(e) | Rejected::Unusable(e)) => {
                self.fail_try(now, key, Failure::Unusable(e));
            }
        }
    }

    /// The stream ended (the peer closed it). Before the whole answer
    /// arrived, the try fails and the next server is asked.
    pub fn handle_stream_eof(&mut self, now: Instant, stream: StreamId) {
        self.handle_stream_error(now, stream);
    }

    /// The stream failed (connect refused, reset …): the try fails and the
    /// next server is asked. Unknown or closed streams are ignored.
    pub fn handle_stream_error(&mut self, now: Instant, stream: StreamId) {
        let Some(&key) = self.streams.get(&stream) else {
            return;
        };
        let is_current = self
            .queries
            .get(&key)
            .and_then(|q| q.current.as_ref())
            .is_some_and(
                |t| matches!(t.phase, Phase::Tcp { stream: s, opened: true, .. } if s == stream),
            );
        if is_current {
            self.fail_try(now, key, Failure::Unreachable);
        }
    }

    /// Queues a result for a lookup that never reached the network.
    fn resolve_now(&mut self, id: LookupId, question: Question, result: Result<Answer, Failure>) {
        self.lookups.insert(id, LookupState::Done);
        self.pending.push_back(Pending::Resolved(Resolved {
            id,
            question,
            result,
        }));
    }

    /// Starts the next try of `key`, or ends the lookup when every try is
    /// used up: with the failure code kept, else the last error.
    fn next_try(&mut self, now: Instant, key: QueryKey) {
        let servers = self.config.servers.len();
        let tries = servers.saturating_mul(self.config.attempts);
        let Some(query) = self.queries.get_mut(&key) else {
            return;
        };
        if query.tries >= tries {
            let result = match (query.failed_rcode, query.last_error.take()) {
                (Some(rcode), _) => Err(Failure::ServerFailure(rcode)),
                (None, Some(error)) => Err(error),
                (None, None) => Err(Failure::Timeout),
            };
            self.finish(now, key, result);
            return;
        }
        let Some(&server) = query
            .tries
            .checked_rem(servers)
            .and_then(|i| self.config.servers.get(i))
        else {
            return;
        };
        query.tries += 1;
        let id = draw_id(&mut query.rng, &self.ids);
        self.ids.insert(id, key);
        query.current = Some(Try {
            id,
            server,
            deadline: None,
            phase: Phase::Udp { sent: false },
        });
        self.pending.push_back(Pending::Send(key, id));
    }

    /// Releases the current try of `key`: its id, its stream.
    fn end_try(&mut self, key: QueryKey) {
        let Some(current) = self.queries.get_mut(&key).and_then(|q| q.current.take()) else {
            return;
        };
        self.ids.remove(&current.id);
        if let Phase::Tcp { stream, opened, .. } = current.phase {
            self.streams.remove(&stream);
            if opened {
                self.pending.push_back(Pending::Close(stream));
            }
        }
    }

    /// The current try failed with `error`: record it and move on. A
    /// timeout never hides an error seen before it.
    fn fail_try(&mut self, now: Instant, key: QueryKey, error: Failure) {
        if let Some(query) = self.queries.get_mut(&key) {
            if error == Failure::Timeout {
                query.last_error.get_or_insert(error);
            } else {
                query.last_error = Some(error);
            }
        }
        self.end_try(key);
        self.next_try(now, key);
    }

    /// A server answered with a failure code: keep it, ask the next one.
    fn server_failed(&mut self, now: Instant, key: QueryKey, rcode: Rcode) {
        if let Some(query) = self.queries.get_mut(&key) {
            query.failed_rcode = Some(rcode);
        }
        self.end_try(key);
        self.next_try(now, key);
    }

    /// The current try's UDP answer was truncated: the same try goes on
    /// over TCP to the same server, with the same id.
    fn start_tcp(&mut self, now: Instant, key: QueryKey) {
        if self.streams.len() >= self.config.max_streams {
            self.fail_try(now, key, Failure::StreamsBusy);
            return;
        }
        let Some(current) = self.queries.get_mut(&key).and_then(|q| q.current.as_mut()) else {
            return;
        };
        let stream = StreamId(self.next_stream);
        self.next_stream += 1;
        self.streams.insert(stream, key);
        current.deadline = None;
        current.phase = Phase::Tcp {
            stream,
            opened: false,
            buf: Vec::new(),
        };
        self.pending.push_back(Pending::Open(key, stream));
    }

    /// Ends the question: every lookup waiting for it gets `result`, and an
    /// answer goes into the cache.
    fn finish(&mut self, now: Instant, key: QueryKey, result: Result<Answer, Failure>) {
        self.end_try(key);
        let Some(query) = self.queries.remove(&key) else {
            return;
        };
        self.by_question.remove(&query.question);
        if let (Some(cache), Ok(answer)) = (&mut self.cache, &result) {
            cache.insert(now, &query.question, answer);
        }
        for id in query.waiters {
            self.lookups.insert(id, LookupState::Done);
            self.pending.push_back(Pending::Resolved(Resolved {
                id,
                question: query.question.clone(),
                result: result.clone(),
            }));
        }
    }
}

/// A message id not in flight, drawn from `rng`.
fn draw_id(rng: &mut SplitMix64, in_flight: &BTreeMap<u16, QueryKey>) -> u16 {
    let mut id = rng.next_u16();
    // With at most `max_lookups` ids in flight out of 65536, a few draws
    // find a free one; the bounded scan after them always does, because
    // `max_lookups` is below the size of the id space.
    for _ in 0..16 {
        if !in_flight.contains_key(&id) {
            return id;
        }
        id = rng.next_u16();
    }
    (0..=u16::MAX)
        .map(|i| id.wrapping_add(i))
        .find(|candidate| !in_flight.contains_key(candidate))
        .unwrap_or(id)
}

/// Where a stream's answer frame stands after some input.
enum Frame {
    /// More input is needed.
    Partial,
    /// The frame announces a message of this many octets, above the limit.
    TooLong(usize),
    /// The message, without its length prefix.
    Complete(Vec<u8>),
}

/// Moves `input` into `buf` up to the end of the first frame (the rest is
/// not the answer and is dropped), so `buf` never holds more than
/// `limit + 2` octets.
fn take_frame(buf: &mut Vec<u8>, mut input: &[u8], limit: usize) -> Frame {
    loop {
        let needed = match parse_tcp_frame(buf) {
            TcpFrame::Complete { message, .. } => return Frame::Complete(message.to_vec()),
            TcpFrame::Incomplete { needed } => needed,
        };
        if needed > limit.saturating_add(2) {
            return Frame::TooLong(needed - 2);
        }
        if input.is_empty() {
            return Frame::Partial;
        }
        let take = needed.saturating_sub(buf.len()).min(input.len());
        let (head, rest) = input.split_at(take);
        buf.extend_from_slice(head);
        input = rest;
    }
}
