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
//! - **Limits**: at most N connections in total and M per destination
//!   ([`EngineConfig::max_connections`], [`EngineConfig::max_per_destination`]);
//!   jobs for the same destination reuse an open connection, with an `RSET`
//!   pipelined before each reused transaction, up to a per-connection message
//!   limit; idle connections QUIT after a timeout. A reused connection that
//!   turns out to be dead (the server dropped it while idle: not one reply to
//!   the new transaction, so nothing was acknowledged and no content sent)
//!   costs nothing: the job goes out again, once, on another connection.
//! - **Routing** ([`Routing`]): a fixed relay (smarthost) with STARTTLS or
//!   implicit TLS and AUTH, or MX per recipient domain through the
//!   [`smtp_proto::mx`] planner over non-blocking DNS ([`crate::dns`]) in the
//!   same loop: hosts in preference order, next address on a connect
//!   failure, next host on a refusal before the session is ready; and
//!   recipients a host deferred (a 4xx to MAIL, their RCPT, DATA or the
//!   content — greylisting, "try later") go on to the next host, on a
//!   connection of their own that skips the hosts that deferred them, while
//!   the recipients that host accepted or refused are final. A null MX
//!   (RFC 7505) or NXDOMAIN fails permanently without a connection.
//! - **TLS**: rustls, driven by the session's `StartTls` output; certificates
//!   verified with webpki roots or a given root store
//!   ([`TlsConfig`](smtp_proto::tls::TlsConfig)). Required (and verified) for a relay by
//!   default; opportunistic by default under MX. Opportunistic TLS is, as
//!   Postfix's `may` level, unauthenticated (RFC 7435): encryption whenever
//!   offered, whatever the certificate, unless
//!   [`EngineConfig::verify_opportunistic`].
//! - **Cancellation and shutdown**: [`Engine::cancel`], [`Engine::shutdown`]
//!   (transactions in progress finish, connections QUIT, queued jobs are
//!   reported [`Status::NotAttempted`]), also from other threads through a
//!   [`Handle`].
//!
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
//! # use smtp_mio::store::{Credentials, Store, StoreBackend};
//! use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
//! use smtp_proto::TlsMode;
//! use smtp_proto::client::Envelope;
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
//! relay.tls = TlsMode::Disabled; // loopback test server without TLS
//! let mut engine = Engine::new(EngineConfig::relay(relay))?;
//! let handle = engine.handle();
//! let (results, finished) = mpsc::channel();
//! let thread = std::thread::spawn(move || engine.run(|r| results.send(r).unwrap()));
//!
//! // Anywhere, any thread:
//! let envelope = Envelope::new(
//!     ReversePath::Mailbox(Mailbox::parse("app@example.org").unwrap().into_owned()),
//!     vec![ForwardPath::Mailbox(Mailbox::parse("bob@example.net").unwrap().into_owned())],
//! );
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
mod engine;
mod handle;
mod job;

pub use config::{EngineConfig, MxRouting, Relay, Routing};
pub use engine::{Engine, Stats};
pub use handle::Handle;
pub use job::{
    Failure, Job, JobId, JobResult, Message, Peer, RecipientReport, Status, SubmitError,
};
