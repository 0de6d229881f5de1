//! A DNS stub resolver without I/O: questions in, datagrams and TCP frames
//! out, answers in, typed results out.
//!
//! # Why this lives in the core
//!
//! Every routing and authentication decision of a mail system starts with
//! DNS: MX and address records for delivery (RFC 5321 §5.1), TXT records for
//! SPF, DKIM and DMARC, TLSA records for DANE, PTR records for SPF's `ptr`.
//! How to ask — which server, how long to wait, when to ask the next one,
//! when to switch to TCP, which answers to believe — is policy, and policy
//! written once per transport drifts: the blocking and the event-loop
//! transports each kept a copy, with private verdict types, and the copies
//! disagreed within days. So the policy is written here, once, and a
//! transport only moves bytes: it sends the datagrams and opens the streams
//! the [`Resolver`] names, hands back what arrives, and sleeps until the
//! resolver's deadline. hickory-proto is the message codec; nothing here
//! reads a clock, draws a random number or touches a socket, so every retry
//! path is a deterministic test. (The state lives in ordered maps: std's
//! `HashMap` seeds itself from the operating system, and its iteration
//! order would make the order of outputs vary from run to run.)
//!
//! # The flow
//!
//! 1. [`Resolver::lookup`] with a [`Question`] and 64 random bits from the
//!    caller's CSPRNG returns a [`LookupId`].
//! 2. [`Resolver::poll`] hands out what to do, one [`Output`] per call,
//!    until [`Output::Wait`]: send a datagram to a server, open a TCP stream
//!    and write a frame on it, close a stream, a lookup [resolved](Resolved).
//! 3. The transport hands in what happens — [`handle_datagram`] with the
//!    source address, [`handle_stream_input`] / [`handle_stream_eof`] /
//!    [`handle_stream_error`] per stream, [`handle_datagram_error`] when a
//!    send fails, [`handle_timeout`] when the deadline passes — and polls
//!    again.
//!
//! A lookup is a sequence of *tries*, the policy both transports had:
//!
//! - the servers in configured order, for [`ResolverConfig::attempts`]
//!   rounds (RFC 1035 §4.2.1: try the other servers before asking one
//!   again), each try with a fresh message id and its own
//!   [`ResolverConfig::timeout`];
//! - a final answer — records, NODATA, NXDOMAIN — ends the lookup;
//! - a failure code (SERVFAIL, REFUSED, FORMERR …) is kept and the next
//!   server is asked; it is the result only if nobody does better
//!   ([`Failure::ServerFailure`]);
//! - a truncated answer (or a datagram that fills [`DATAGRAM_BUFFER`])
//!   moves the same try to TCP, same server, same id, fresh timeout
//!   (RFC 7766 §5);
//! - silence until the deadline, an unreachable server, an unusable answer,
//!   or no free stream: the next server.
//!
//! A lookup thus makes at most `servers × attempts` tries of at most two
//! timeouts each (UDP, then TCP), and its result is an [`Answer`] or a
//! [`Failure`]; for MX and address questions, [`crate::mx::MxAnswer`] and
//! [`crate::mx::AddressAnswer`] judge it for delivery.
//!
//! # Which answers count (RFC 5452)
//!
//! A datagram counts only if its id is the id of a try in flight, it comes
//! from the exact address (IP and port) that try was sent to, the try still
//! waits for a UDP answer, and its readable question section repeats the
//! try's name, type and class. Anything else — unreadable bytes included —
//! is dropped without effect, so a spoofer can neither decide the outcome
//! nor end the wait for the real answer. (A failure code without question
//! section is taken, as servers send them: it can only move the lookup to
//! the next server, never decide it.)
//! Identical lookups in flight share one query (RFC 5452 §5). Ids come from
//! the caller's seed and never collide with an id in flight; the other half
//! of RFC 5452 §9.2, an unpredictable source port, is the transport's (bind
//! to port 0). Over TCP the server is the only sender, so an answer that
//! does not fit fails the try.
//!
//! # What the transport must do
//!
//! - `Send { server, bytes }`: send one datagram to `server` from a socket
//!   bound to a random port. If the send fails, call
//!   [`handle_datagram_error`]; if it would block, drop it (the try times
//!   out). A transport with a connected socket per server that sees an ICMP
//!   error on it reports it the same way.
//! - Read datagrams into a buffer of [`DATAGRAM_BUFFER`] octets and hand
//!   each, with its source address, to [`handle_datagram`]. Anything can be
//!   handed in; the resolver judges it.
//! - `OpenStream { stream, server, bytes }`: connect, write all of `bytes`
//!   (keep what the socket does not take yet), hand everything read to
//!   [`handle_stream_input`], the peer's close to [`handle_stream_eof`], any
//!   failure (connect included) to [`handle_stream_error`].
//! - `CloseStream(stream)`: drop the connection. It comes exactly once per
//!   opened stream.
//! - `Wait { deadline }`: sleep until input or the deadline, then
//!   [`handle_timeout`]. Calling it early or twice is harmless.
//! - After every call, [`poll`](Resolver::poll) until `Wait`, with the
//!   current time: a try's timeout starts when its output is handed out.
//!
//! A blocking transport does this with one `UdpSocket` per server family and
//! a `TcpStream` per stream, reading with the deadline as socket timeout; an
//! event loop registers the sockets and streams and calls the same methods
//! from its readiness events.
//!
//! # Limits
//!
//! | limit | default | why |
//! |---|---|---|
//! | [`ResolverConfig::timeout`] per try | 5 s | glibc `RES_TIMEOUT`; RFC 1123 §6.1.3.3 |
//! | [`ResolverConfig::attempts`] | 2 rounds | glibc `RES_DFLRETRY`; RFC 1035 §4.2.1 |
//! | [`MAX_NAMESERVERS`] from `resolv.conf` | 3 | glibc `MAXNS` |
//! | [`ResolverConfig::max_lookups`] in flight | 256 | ids in flight dilute the id space (RFC 5452 §5, §9.2) |
//! | [`ResolverConfig::max_streams`] at once | 8 | few TCP connections per server (RFC 7766 §6.2.2) |
//! | [`ResolverConfig::max_tcp_message`] | 65535 octets | the two-octet TCP length (RFC 1035 §4.2.2) |
//! | [`EDNS_UDP_PAYLOAD`] advertised | 1232 octets | no IP fragmentation (RFC 6891 §6.2.5, DNS Flag Day 2020) |
//! | [`DATAGRAM_BUFFER`] | 4096 octets | RFC 6891 §6.2.5's largest suggested payload; a full buffer is a cut answer |
//! | [`MAX_NAME_LEN`] / [`MAX_LABEL_LEN`] | 253 / 63 | RFC 1035 §2.3.4, §3.1 |
//! | [`MAX_CNAME_CHAIN`] | 8 | RFC 1034 §3.6.2 sets none; resolvers stop near 8–16 |
//! | [`MAX_HINTS_PER_HOST`] | 16 | address hints per MX exchange from one answer |
//! | [`CacheConfig::max_entries`] | 512 | bounded memory |
//! | [`CacheConfig::max_ttl`] | 1 day | below RFC 8767 §4's 7-day cap |
//! | [`CacheConfig::max_negative_ttl`] | 1 hour | RFC 2308 §5 (one to three hours) |
//! | [`CacheConfig::negative_ttl_without_soa`] | 0 (not kept) | RFC 2308 §5 |
//!
//! # Example
//!
//! A whole lookup against a server simulated in memory:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Instant;
//! use smtp_proto::dns::{Answer, Name, Output, Question, Resolver, ResolverConfig};
//!
//! let server: SocketAddr = "192.0.2.53:53".parse().unwrap();
//! let mut resolver = Resolver::new(ResolverConfig::new(vec![server]));
//! let now = Instant::now();
//! let question = Question::txt(Name::parse("_dmarc.example.org").unwrap());
//! let id = resolver.lookup(now, question, 0x5eed).unwrap();
//!
//! let query = match resolver.poll(now) {
//!     Output::Send { server: to, bytes } => {
//!         assert_eq!(to, server);
//!         bytes.to_vec()
//!     }
//!     other => panic!("{other:?}"),
//! };
//! assert!(matches!(resolver.poll(now), Output::Wait { deadline: Some(_) }));
//!
//! // ... the transport sends `query` and receives `answer` from `server` ...
//! # let answer = {
//! #     use hickory_proto::op::{Message, MessageType, OpCode};
//! #     use hickory_proto::rr::{rdata::TXT, Name, RData, Record};
//! #     let q = Message::from_vec(&query).unwrap();
//! #     let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
//! #     let owner = Name::from_ascii("_dmarc.example.org.").unwrap();
//! #     m.add_queries(q.queries);
//! #     let txt = TXT::new(vec!["v=DMARC1; ".into(), "p=reject".into()]);
//! #     m.add_answer(Record::from_rdata(owner, 300, RData::TXT(txt)));
//! #     m.to_vec().unwrap()
//! # };
//! resolver.handle_datagram(now, server, &answer);
//! match resolver.poll(now) {
//!     Output::Resolved(resolved) => {
//!         assert_eq!(resolved.id, id);
//!         let Ok(Answer::Records(records)) = resolved.result else { panic!() };
//!         let txt = &records.txt().unwrap()[0];
//!         assert_eq!(txt.joined(), b"v=DMARC1; p=reject");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(resolver.poll(now), Output::Wait { deadline: None });
//! ```
//!
//! [`handle_datagram`]: Resolver::handle_datagram
//! [`handle_datagram_error`]: Resolver::handle_datagram_error
//! [`handle_stream_input`]: Resolver::handle_stream_input
//! [`handle_stream_eof`]: Resolver::handle_stream_eof
//! [`handle_stream_error`]: Resolver::handle_stream_error
//! [`handle_timeout`]: Resolver::handle_timeout

mod answer;
mod cache;
mod config;
mod decode;
mod error;
mod name;
mod question;
mod resolver;
pub(crate) mod rng;
mod tcp;

pub use answer::{
    Answer, Disposition, Exchange, MxRecord, Negative, Rcode, RecordData, Records, Severity, Tlsa,
    Txt,
};
pub use config::{
    CacheConfig, DNS_PORT, MAX_NAMESERVERS, MAX_RESOLV_CONF_ATTEMPTS, MAX_RESOLV_CONF_TIMEOUT,
    ResolverConfig,
};
pub(crate) use decode::{Decoded, decode};
pub use error::{AnswerError, Failure};
pub use name::{
    HostName, HostNameError, MAX_HOST_NAME_LEN, MAX_LABEL_LEN, MAX_NAME_LEN, Name, NameError,
};
pub use question::{EDNS_UDP_PAYLOAD, Question, RecordType};
pub use resolver::{DATAGRAM_BUFFER, LookupError, LookupId, Output, Resolved, Resolver, StreamId};
pub use tcp::{FrameTooLong, MAX_TCP_MESSAGE, TcpFrame, parse_tcp_frame, write_tcp_frame};

/// The longest CNAME chain followed inside one answer before giving up.
///
/// RFC 1034 §3.6.2 lets a resolver follow aliases; no RFC fixes a limit.
/// Recursive resolvers stop near 8–16 (BIND: 16, Unbound: 11); a name
/// behind more than 8 aliases is broken, and the bound keeps a hostile
/// answer from making the walk long.
pub const MAX_CNAME_CHAIN: usize = 8;

/// The most address hints kept per MX exchange from one answer. A hostile
/// answer could list thousands; a real one lists a few.
pub const MAX_HINTS_PER_HOST: usize = 16;
