//! The DNS resolver state machine driven by arbitrary answers: datagrams
//! (raw, or with the id and question of the query in flight spliced in so
//! that the fuzzer gets past the matching), stream bytes, stream ends and
//! errors, send errors, time, new lookups and cancellations.
//!
//! Invariants: no panic; every lookup resolves at most once and never after
//! it was cancelled; a stream is closed only after it was opened, and at
//! most once; the lookups held never exceed the bound; once time runs out,
//! every lookup has ended and every opened stream is closed; MX answers
//! judged by the mx module come sorted by preference.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smtp_proto::dns::{
    CacheConfig, LookupId, Name, Output, Question, RecordType, Resolver, ResolverConfig, StreamId,
};
use smtp_proto::mx::MxAnswer;

const NAMES: [&str; 4] = [
    "example.org",
    "_dmarc.example.org",
    "s1._domainkey.example.org",
    "_25._tcp.mx.example.org",
];

#[derive(Arbitrary, Debug)]
struct Input {
    servers: u8,
    attempts: u8,
    max_lookups: u8,
    max_streams: u8,
    max_tcp_message: u16,
    cache: bool,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Lookup {
        name: u8,
        record_type: u8,
        seed: u64,
    },
    Cancel(u8),
    /// Raw bytes from a server (or elsewhere).
    Raw {
        from: u8,
        bytes: Vec<u8>,
    },
    /// An answer to the latest query: its id and question, QR set, then
    /// the fuzzer's flags, counts and records.
    Answer {
        flags: u16,
        counts: [u16; 3],
        records: Vec<u8>,
        from_server: bool,
    },
    /// Stream bytes, raw or as one frame.
    Stream {
        which: u8,
        bytes: Vec<u8>,
        frame: bool,
    },
    StreamEof(u8),
    StreamError(u8),
    DatagramError(u8),
    Time(u16),
}

fn server(n: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, n], 53))
}

struct State {
    resolver: Resolver,
    now: Instant,
    max_lookups: usize,
    /// Lookups started and not yet resolved or cancelled.
    live: BTreeSet<LookupId>,
    cancelled: BTreeSet<LookupId>,
    resolved: BTreeSet<LookupId>,
    opened: Vec<StreamId>,
    closed: BTreeSet<StreamId>,
    /// The latest datagram sent, per server.
    queries: BTreeMap<SocketAddr, Vec<u8>>,
    last_server: SocketAddr,
    mx_seed: u64,
}

impl State {
    fn drain(&mut self) {
        loop {
            match self.resolver.poll(self.now) {
                Output::Send { server, bytes } => {
                    self.queries.insert(server, bytes.to_vec());
                    self.last_server = server;
                }
                Output::OpenStream { stream, .. } => {
                    assert!(!self.opened.contains(&stream), "a stream opened twice");
                    self.opened.push(stream);
                }
                Output::CloseStream(stream) => {
                    assert!(
                        self.opened.contains(&stream),
                        "closing a stream never opened"
                    );
                    assert!(self.closed.insert(stream), "a stream closed twice");
                }
                Output::Resolved(resolved) => {
                    assert!(
                        !self.cancelled.contains(&resolved.id),
                        "result after cancel"
                    );
                    assert!(self.resolved.insert(resolved.id), "resolved twice");
                    assert!(self.live.remove(&resolved.id));
                    if let Ok(answer) = &resolved.result
                        && resolved.question.record_type() == RecordType::Mx
                        && let Ok(MxAnswer::Hosts(hosts)) =
                            MxAnswer::from_answer(answer, self.mx_seed)
                    {
                        assert!(!hosts.is_empty());
                        assert!(
                            hosts
                                .windows(2)
                                .all(|w| w[0].preference() <= w[1].preference())
                        );
                    }
                }
                Output::Wait { .. } => break,
                other => panic!("unknown output {other:?}"),
            }
        }
        assert!(self.resolver.in_flight() <= self.max_lookups);
    }

    fn stream(&self, which: u8) -> Option<StreamId> {
        if self.opened.is_empty() {
            return None;
        }
        self.opened
            .get(self.opened.len() - 1 - usize::from(which) % self.opened.len())
            .copied()
    }
}

fuzz_target!(|input: Input| {
    let servers: Vec<SocketAddr> = (1..=1 + input.servers % 3).map(server).collect();
    let mut config = ResolverConfig::new(servers.clone());
    config.attempts = usize::from(input.attempts % 3);
    config.max_lookups = usize::from(input.max_lookups % 8);
    config.max_streams = usize::from(input.max_streams % 3);
    config.max_tcp_message = usize::from(input.max_tcp_message);
    if input.cache {
        config.cache = Some(CacheConfig::default());
    }
    let resolver = Resolver::new(config);
    let max_lookups = resolver.config().max_lookups;
    let mut state = State {
        resolver,
        now: Instant::now(),
        max_lookups,
        live: BTreeSet::new(),
        cancelled: BTreeSet::new(),
        resolved: BTreeSet::new(),
        opened: Vec::new(),
        closed: BTreeSet::new(),
        queries: BTreeMap::new(),
        last_server: servers[0],
        mx_seed: u64::from(input.max_tcp_message),
    };
    for step in input.steps.into_iter().take(64) {
        match step {
            Step::Lookup {
                name,
                record_type,
                seed,
            } => {
                let name = Name::parse(NAMES[usize::from(name) % NAMES.len()]).expect("valid");
                let record_type = RecordType::ALL[usize::from(record_type) % RecordType::ALL.len()];
                let question = Question::new(name, record_type);
                if let Ok(id) = state.resolver.lookup(state.now, question, seed) {
                    state.live.insert(id);
                }
            }
            Step::Cancel(which) => {
                if let Some(&id) = state
                    .live
                    .iter()
                    .nth(usize::from(which) % state.live.len().max(1))
                {
                    assert!(state.resolver.cancel(id));
                    state.live.remove(&id);
                    state.cancelled.insert(id);
                }
            }
            Step::Raw { from, bytes } => {
                state
                    .resolver
                    .handle_datagram(state.now, server(from % 4 + 1), &bytes);
            }
            Step::Answer {
                flags,
                counts,
                records,
                from_server,
            } => {
                let to = state.last_server;
                if let Some(query) = state.queries.get(&to).cloned() {
                    // Header (12) + question + OPT record (11 octets).
                    let question = query
                        .get(12..query.len().saturating_sub(11))
                        .unwrap_or_default();
                    let mut bytes = Vec::with_capacity(12 + question.len() + records.len());
                    bytes.extend_from_slice(&query[..2]);
                    bytes.extend_from_slice(&(flags | 0x8000).to_be_bytes());
                    bytes.extend_from_slice(&1u16.to_be_bytes());
                    for count in counts {
                        bytes.extend_from_slice(&(count % 8).to_be_bytes());
                    }
                    bytes.extend_from_slice(question);
                    bytes.extend_from_slice(&records);
                    let from = if from_server { to } else { server(9) };
                    state.resolver.handle_datagram(state.now, from, &bytes);
                }
            }
            Step::Stream {
                which,
                bytes,
                frame,
            } => {
                if let Some(stream) = state.stream(which) {
                    let mut input = Vec::with_capacity(bytes.len() + 2);
                    if frame {
                        input.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
                    }
                    input.extend_from_slice(&bytes);
                    state
                        .resolver
                        .handle_stream_input(state.now, stream, &input);
                }
            }
            Step::StreamEof(which) => {
                if let Some(stream) = state.stream(which) {
                    state.resolver.handle_stream_eof(state.now, stream);
                }
            }
            Step::StreamError(which) => {
                if let Some(stream) = state.stream(which) {
                    state.resolver.handle_stream_error(state.now, stream);
                }
            }
            Step::DatagramError(which) => {
                state
                    .resolver
                    .handle_datagram_error(state.now, server(which % 4 + 1));
            }
            Step::Time(ms) => {
                state.now += Duration::from_millis(u64::from(ms));
                state.resolver.handle_timeout(state.now);
            }
        }
        state.drain();
    }
    // Let time run out: every lookup ends, every stream closes.
    for _ in 0..16 {
        state.now += Duration::from_secs(5);
        state.resolver.handle_timeout(state.now);
        state.drain();
    }
    assert!(
        state.live.is_empty(),
        "lookups never ended: {:?}",
        state.live
    );
    assert_eq!(state.closed.len(), state.opened.len(), "streams left open");
    assert_eq!(state.resolver.in_flight(), 0);
    assert_eq!(state.resolver.next_timeout(), None);
});
