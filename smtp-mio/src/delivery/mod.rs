//! The delivery engine: many outbound SMTP sessions at once on one
//! `mio::Poll`, for a relay, a newsletter sender, a delivery agent.
//!
//! The caller submits [`Job`]s (an envelope and the message, in memory or
//! from a reader) and gets one [`JobResult`] per job as it completes: per
//! recipient accepted, temporary or permanent failure, with the full reply
//! and the [`Peer`] that gave it.
//!
//! What it does, and where each decision lives:
//!
//! - **Sessions**: each connection runs `smtp_proto`'s sans-IO
//!   [`Client`](smtp_proto::client::Client) — greeting, EHLO, STARTTLS,
//!   AUTH, pipelined MAIL/RCPT/DATA or BDAT, dot-stuffing, every deadline of
//!   RFC 5321 §4.5.3.2. This module only moves bytes and time, so a stuck
//!   peer is bounded by the session's deadlines and never blocks the others.
//! - **Delivery policy**: every decision between "here are the recipients"
//!   and "here is what happened to each" is [`smtp_proto::mx::Walk`]'s, the
//!   one set of rules both transports follow: one walk per job and
//!   destination (the relay, or each recipient domain and address literal
//!   under MX routing). The walk says what to look up, where to connect and
//!   with which TLS, which recipients to send in a transaction (at most 100,
//!   RFC 5321 §4.5.3.1.8), what a connect, TLS or setup failure means, which
//!   recipients a reply settles and which go on to the next MX host (a 4xx
//!   moves just the recipients it concerns), when a transaction lost on a
//!   reused connection goes out again, and what each recipient ends with.
//!   Its docs give the rules and their reasons; the engine reports what
//!   happened and builds each [`JobResult`] from the walk's verdicts.
//! - **Routing** ([`Routing`]): a fixed relay (smarthost) with STARTTLS or
//!   implicit TLS and AUTH — a walk whose one host is the relay — or MX per
//!   recipient domain, the DNS asked through the core's resolver
//!   ([`smtp_proto::dns::Resolver`], its answer cache on) pumped on the
//!   same poll ([`crate::delivery::dns`]).
//! - **TLS**: rustls, driven by the session's `StartTls` output, with the
//!   walk's [`TlsPolicy`](smtp_proto::mx::TlsPolicy) per connection: a
//!   connection that verifies uses [`EngineConfig::tls`] (webpki roots or a
//!   given root store), one that does not uses the core's accept-any
//!   configuration. Required (and verified) for a relay by default;
//!   opportunistic and unverified by default under MX, as Postfix's `may`
//!   level (RFC 7435), with the walk's plaintext pass when TLS fails on
//!   every host.
//! - **Limits** (scheduling, the engine's own): at most N connections in
//!   total and M per destination ([`EngineConfig::max_connections`],
//!   [`EngineConfig::max_per_destination`]); a ready connection is offered
//!   to every walk of its destination, so jobs reuse open connections, with
//!   an `RSET` pipelined before each reused transaction, up to a
//!   per-connection message limit; idle connections QUIT after a timeout.
//! - **Cancellation and shutdown**: [`Engine::cancel`], [`Engine::shutdown`]
//!   (transactions in progress finish, connections QUIT, recipients no
//!   transaction carried are reported [`Status::NotAttempted`]), also from
//!   other threads through a [`Handle`].
//!
//! # Behaviour since the walk
//!
//! Following the one walk changed what some jobs end with:
//!
//! - A transaction that loses its connection after the content was sent
//!   (or before any reply on a fresh connection) is a deferral by that
//!   host: under MX routing its recipients go on to the next host (RFC 5321
//!   §6.1 accepts the duplicate this may cause), instead of failing at once.
//! - A connection that fails before it is ready is reported to every walk
//!   waiting for that endpoint: they all move on together (to the next
//!   address or host, or to their last verdict), instead of each opening
//!   its own connection to a dead host. For a relay this means the jobs
//!   queued behind a refused or unreachable relay fail together. (The old
//!   engine lowered the destination's connection limit after such a
//!   failure instead; that feedback is gone.)
//! - Opportunistic TLS with verification turned on
//!   ([`TlsPolicy::with_verify`](smtp_proto::mx::TlsPolicy::with_verify))
//!   moves past a host whose certificate fails, and falls back to one
//!   plaintext pass when every host failed on TLS (RFC 7435), instead of
//!   failing the message.
//! - Recipients are sent at most 100 per transaction.
//! - A reader's content ([`Message::Reader`]) goes out once; recipients the
//!   walk sends elsewhere after it was read fail with
//!   [`Failure::Content`].

//! # A minimal relay
//!
//! Everything submitted goes to one smarthost; the loop runs on its own
//! thread and results come back on a channel. (The smarthost here is the
//! `smtp-mio` server, so the example runs as a test.)
//!
//! ```
//! use std::sync::mpsc;
//! use smtp_mio::delivery::{Engine, EngineConfig, Job, Relay, Status};
//! # use smtp_mio::server::{Options, Server};
//! # use smtp_mio::server::store::{Credentials, Store, StoreBackend};
//! use smtp_proto::client::Envelope;
//! use smtp_proto::mx::TlsPolicy;
//!
//! # let mut options = Options::new(smtp_proto::server::Config::new(
//! #     smtp_proto::address::Domain::new("smarthost.example").unwrap()));
//! # options.listen = vec!["127.0.0.1:0".parse().unwrap()];
//! # options.threads = 1;
//! # let backend = StoreBackend::new(Store::Discard, "smarthost.example", Credentials::new());
//! # let server = Server::bind(options, backend).unwrap();
//! # let port = server.local_addrs()[0].port();
//! # let running = server.spawn().unwrap();
//! let mut relay = Relay::new("127.0.0.1", port);
//! relay.tls = TlsPolicy::plaintext(); // loopback test server without TLS
//! let mut engine = Engine::new(EngineConfig::relay(relay))?;
//! let handle = engine.handle();
//! let (results, finished) = mpsc::channel();
//! let thread = std::thread::spawn(move || engine.run(|r| results.send(r).unwrap()));
//!
//! // Anywhere, any thread:
//! let envelope = Envelope::parse("app@example.org", ["bob@example.net"])?;
//! let message = b"Subject: hello\r\n\r\nHi Bob.\r\n".to_vec();
//! let id = handle.submit(Job::new(envelope, message))?;
//!
//! let result = finished.recv()?;
//! assert_eq!(result.id, id);
//! assert_eq!(result.recipients[0].status, Status::Accepted);
//! handle.shutdown(); // finish, QUIT, stop
//! thread.join().unwrap()?;
//! # running.shutdown().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A program that just sends a batch drives the engine on its own thread
//! instead: [`Engine::submit`] every job, then [`Engine::run_until_done`],
//! then [`Engine::close`]. The `bulk-send` example does that.

mod config;
mod connection;
pub mod dns;
mod engine;
mod handle;
mod job;

pub use config::{EngineConfig, MxRouting, Relay, Routing};
pub use engine::{Engine, Stats};
pub use handle::Handle;
pub use job::{
    Failure, Job, JobId, JobResult, Message, Peer, RecipientReport, Status, SubmitError,
};
