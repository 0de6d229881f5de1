//! # smtp-mio: SMTP on mio event loops
//!
//! An SMTP server that holds thousands of connections on a few threads, and a
//! delivery engine that runs many client sessions at once, both driving
//! [`smtp_proto`]'s sans-IO sessions with rustls for TLS.
//!
//! ## A server in a few lines
//!
//! A [`Backend`](backend::Backend) makes a [`Session`](backend::Session) per
//! connection; the session answers `MAIL`, `RCPT`, the end of a message…
//! through a [`Responder`](completion::Responder), now or later from any
//! thread. Everything else — parsing, pipelining, limits, timeouts,
//! STARTTLS — is the `smtp-proto` session's job, driven by the loop.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use smtp_mio::backend::{Backend, ConnectionInfo, Session};
//! use smtp_mio::completion::Responder;
//! use smtp_mio::server::{Options, Server};
//! use smtp_proto::address::{Domain, ForwardPath};
//! use smtp_proto::command::RcptParameters;
//! use smtp_proto::reply::{Reply, ReplyCode};
//! use smtp_proto::server::Config;
//!
//! struct OnlyPostmaster;
//! struct Handler;
//!
//! impl Backend for OnlyPostmaster {
//!     type Session = Handler;
//!     fn connect(&self, _: &ConnectionInfo) -> Result<Handler, Reply<'static>> {
//!         Ok(Handler)
//!     }
//! }
//!
//! impl Session for Handler {
//!     fn rcpt(&mut self, to: &ForwardPath<'_>, _: &RcptParameters<'_>, answer: Responder) {
//!         if to.to_string().starts_with("<postmaster@") {
//!             answer.accept();
//!         } else {
//!             answer.reply(Reply::new(ReplyCode::MAILBOX_UNAVAILABLE, "no such user").unwrap());
//!         }
//!     }
//!     // mail, data, data_end, auth_*, vrfy... have defaults.
//! }
//!
//! let mut options = Options::new(Config::new(Domain::new("mx.example").unwrap()));
//! options.listen = vec!["127.0.0.1:0".parse().unwrap()];
//! options.threads = 1;
//! let server = Server::bind(options, OnlyPostmaster).unwrap();
//! let addr = server.local_addrs()[0];
//! let running = server.spawn().unwrap();
//!
//! let mut stream = std::net::TcpStream::connect(addr).unwrap();
//! let mut replies = BufReader::new(stream.try_clone().unwrap());
//! stream.write_all(b"HELO me\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@mx.example>\r\nQUIT\r\n").unwrap();
//! let mut codes = Vec::new();
//! for _ in 0..5 {
//!     let mut line = String::new();
//!     replies.read_line(&mut line).unwrap();
//!     codes.push(line[..3].to_owned());
//! }
//! assert_eq!(codes, ["220", "250", "250", "550", "221"]);
//! drop((stream, replies)); // our FIN ends the server's lingering close
//! running.shutdown().unwrap();
//! ```
//!
//! The `mail-server` example is this with [`store::StoreBackend`]: Maildir
//! delivery, STARTTLS with a certificate made at start, AUTH for submission.
//!
//! ## A relay in a few lines
//!
//! The [`delivery`] engine is the other direction: jobs in, SMTP sessions
//! out — many at once on one poll, to a smarthost or by MX — and one result
//! per job back. A minimal relay hands every job to a submission server:
//!
//! ```no_run
//! use smtp_mio::delivery::{Engine, EngineConfig, Job, Relay};
//! use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
//! use smtp_proto::client::{Credentials, Envelope};
//!
//! let mut relay = Relay::new("smtp.example.com", 587); // STARTTLS required
//! relay.credentials = Some(Credentials::password("app", "app-password"));
//! let mut engine = Engine::new(EngineConfig::relay(relay))?;
//! for to in ["ann@example.net", "bob@example.org"] {
//!     let envelope = Envelope::new(
//!         ReversePath::Mailbox(Mailbox::parse("news@example.com")?.into_owned()),
//!         vec![ForwardPath::Mailbox(Mailbox::parse(to)?.into_owned())],
//!     );
//!     engine.submit(Job::new(envelope, b"Subject: news\r\n\r\nHello.\r\n".to_vec()))?;
//! }
//! engine.run_until_done(|result| println!("{}: {:?}", result.id, result.recipients))?;
//! engine.close(|_| {})?; // QUIT and close every connection
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The [`delivery`] module docs show the same relay on its own thread, fed
//! through a [`Handle`](delivery::Handle); the `bulk-send` example is a load
//! generator built on it.
//!
//! ## Parts
//!
//! The loop is built from parts that each do one job and are tested on
//! their own:
//!
//! | module | job |
//! |---|---|
//! | [`server`] | N mio event loops: accept, read and write in one pass, deadlines, late answers, graceful shutdown |
//! | [`backend`] | the application interface: `Backend` per server, `Session` per connection |
//! | [`store`] | ready-made backends: Maildir delivery or discard, with AUTH PLAIN/LOGIN |
//! | [`transport`] | one connection's bytes, server or client side: plaintext, the STARTTLS switch, rustls; no read buffer of its own |
//! | [`completion`] | answers from handlers on any thread, delivered to the loop through a `mio::Waker` |
//! | [`listener`] | listeners bound exclusively, a handle per loop (or `SO_REUSEPORT` on request); connection limits with RAII guards |
//! | [`delivery`] | the outbound engine: many client sessions on one poll following the core's MX walk, N/M connection limits, reuse, relay or MX routing, TLS, shutdown |
//! | [`dns`] | the core's DNS resolver pumped on the loop's poll (UDP sockets, TCP streams, `/etc/resolv.conf`) |
//! | [`timers`] | the deadlines of thousands of sessions, so a loop sleeps exactly until the next |
//! | [`tls`] | reading certificate, key and CA files into the core's rustls glue ([`smtp_proto::tls`]: the server's identity, self-signed at start if need be, client trust, ring only) |
//! | [`maildir`] | durable Maildir delivery: `tmp/`, `fsync`, rename into `new/`, `fsync` the directory |
//! | [`trace`] | the `Received:` header (RFC 5321 §4.4) with RFC 3848 protocol types |
//!
//! What this crate never does: parse or decide SMTP itself (that is
//! `smtp-proto`'s job, once), keep a read buffer of its own across STARTTLS,
//! or answer `250` to a message before it is on disk.
#![forbid(unsafe_code)]

pub mod backend;
pub mod completion;
pub mod delivery;
pub mod dns;
pub mod listener;
pub mod maildir;
pub mod server;
pub mod store;
pub mod timers;
pub mod tls;
pub mod trace;
pub mod transport;

/// The sans-IO core whose sessions this crate drives, re-exported: a
/// program can name `smtp_mio::smtp_proto::…` (configs, replies, the
/// shared [`TlsMode`](smtp_proto::TlsMode)) and always get the very version
/// this crate was built against, without keeping two versions in lockstep.
pub use smtp_proto;
