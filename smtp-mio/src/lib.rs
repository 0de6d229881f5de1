//! # smtp-mio: SMTP on mio event loops
//!
//! An SMTP server that holds thousands of connections on a few threads, and a
//! delivery engine that runs many client sessions at once, both driving
//! [`smtp_proto`]'s sans-IO sessions with rustls for TLS.
//!
//! ## A server in a few lines
//!
//! A [`Backend`](server::Backend) makes a [`Session`](server::Session) per
//! connection; the session answers `MAIL`, `RCPT`, the end of a message…
//! through a [`Responder`](server::Responder), now or later from any
//! thread. Everything else — parsing, pipelining, limits, timeouts,
//! STARTTLS — is the `smtp-proto` session's job, driven by the loop.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use smtp_mio::server::{Backend, ConnectionInfo, Options, Responder, Server, Session};
//! use smtp_proto::address::{Domain, ForwardPath};
//! use smtp_proto::command::RcptParameters;
//! use smtp_proto::reply::Reply;
//! use smtp_proto::server::{Config, Envelope};
//!
//! /// Takes mail for the postmaster of `domain` only.
//! struct OnlyPostmaster {
//!     domain: Domain<'static>,
//! }
//!
//! struct Handler {
//!     domain: Domain<'static>,
//! }
//!
//! impl Backend for OnlyPostmaster {
//!     type Session = Handler;
//!     fn connect(&self, _: &ConnectionInfo) -> Result<Handler, Reply<'static>> {
//!         Ok(Handler { domain: self.domain.clone() })
//!     }
//! }
//!
//! impl Session for Handler {
//!     fn rcpt(&mut self, to: &ForwardPath<'_>, _: &RcptParameters<'_>, answer: Responder) {
//!         // `<Postmaster>`, or postmaster at our domain (RFC 5321 §4.5.1;
//!         // that local part and domains are case-insensitive).
//!         let postmaster = match to {
//!             ForwardPath::Postmaster => true,
//!             ForwardPath::Mailbox(mailbox) => {
//!                 mailbox.local_part().as_str().eq_ignore_ascii_case("postmaster")
//!                     && mailbox.domain() == Some(&self.domain)
//!             }
//!         };
//!         if postmaster {
//!             answer.accept();
//!         } else {
//!             // `550 5.1.1`: the enhanced code (RFC 3463: bad destination
//!             // mailbox) because ENHANCEDSTATUSCODES is offered.
//!             answer.reply(Reply::mailbox_unavailable());
//!         }
//!     }
//!
//!     fn data_end(&mut self, envelope: &Envelope<'_>, size: u64, answers: Vec<Responder>) {
//!         // The session's own record of the transaction: nothing to track
//!         // in `mail` and `rcpt`, nothing to forget on RSET.
//!         for (to, _) in envelope.recipients() {
//!             eprintln!("{size} octets from {} for {to}", envelope.from());
//!         }
//!         for answer in answers {
//!             answer.accept();
//!         }
//!     }
//!     // mail, data_start, data, reset, auth_*, vrfy... have defaults.
//! }
//!
//! let domain = Domain::new("mx.example").unwrap();
//! let mut options = Options::new(Config::new(domain.clone()));
//! options.listen = vec!["127.0.0.1:0".parse().unwrap()];
//! options.threads = 1;
//! let server = Server::bind(options, OnlyPostmaster { domain }).unwrap();
//! let addr = server.local_addrs()[0];
//! let running = server.spawn().unwrap();
//!
//! let mut stream = std::net::TcpStream::connect(addr).unwrap();
//! let mut replies = BufReader::new(stream.try_clone().unwrap());
//! // The last line of each reply (EHLO's has several).
//! let mut next_reply = move || loop {
//!     let mut line = String::new();
//!     replies.read_line(&mut line).unwrap();
//!     if line.as_bytes().get(3) != Some(&b'-') {
//!         break line.trim_end().to_owned();
//!     }
//! };
//! // One group at a time (RFC 2920 §3.1): the client waits after EHLO,
//! // DATA and the end of data, or the server answers 554 5.5.0 and hangs up.
//! let mut got = vec![next_reply()];
//! for (group, replies) in [
//!     (&b"EHLO me\r\n"[..], 1),
//!     (b"MAIL FROM:<a@b.example>\r\nRCPT TO:<x@mx.example>\r\n\
//!        RCPT TO:<PostMaster@MX.example>\r\nDATA\r\n", 4),
//!     (b"Subject: hi\r\n\r\nHello.\r\n.\r\n", 1),
//!     (b"QUIT\r\n", 1),
//! ] {
//!     stream.write_all(group).unwrap();
//!     got.extend((0..replies).map(|_| next_reply()));
//! }
//! let codes: Vec<&str> = got.iter().map(|r| &r[..3]).collect();
//! assert_eq!(codes, ["220", "250", "250", "550", "250", "354", "250", "221"]);
//! assert_eq!(got[3], "550 5.1.1 Mailbox unavailable");
//! drop((stream, next_reply)); // our FIN ends the server's lingering close
//! running.shutdown().unwrap();
//! ```
//!
//! The `mail-server` example is this with [`server::store::StoreBackend`]: Maildir
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
//! use smtp_proto::client::{Credentials, Envelope};
//!
//! let mut relay = Relay::new("smtp.example.com", 587); // STARTTLS required
//! relay.credentials = Some(Credentials::password("app", "app-password"));
//! let mut engine = Engine::new(EngineConfig::relay(relay))?;
//! for to in ["ann@example.net", "bob@example.org"] {
//!     let envelope = Envelope::parse("news@example.com", [to])?;
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
//! ## Layout: two halves and what they share
//!
//! The crate has two halves that never call each other — the [`server`]
//! (connections in) and the [`delivery`] engine (connections out) — and a
//! few modules both build on. Each part does one job and is tested on its
//! own:
//!
//! | module | job |
//! |---|---|
//! | **server half** | |
//! | [`server`] | N mio event loops: accept, read and write in one pass, deadlines, late answers, graceful shutdown; its module docs show how its parts are layered |
//! | [`server::backend`] | the application interface: `Backend` per server, `Session` per connection, the envelope at the end of each message |
//! | [`server::completion`] | answers from handlers on any thread, delivered to the loop through a `mio::Waker` |
//! | [`server::listener`] | listeners bound exclusively, a handle per loop (or `SO_REUSEPORT` on request); connection limits with RAII guards |
//! | [`server::authentication`] | DKIM verification of incoming mail on a service thread (key lookups through the [`dns`] pump, a deadline, bounded work), results as `Authentication-Results` and for the application to decide |
//! | [`server::store`] | ready-made backends: Maildir delivery or discard, with AUTH PLAIN/LOGIN |
//! | [`server::maildir`] | durable Maildir delivery: `tmp/`, `fsync`, rename into `new/`, `fsync` the directory |
//! | [`server::trace`] | the `Received:` header (RFC 5321 §4.4) with RFC 3848 protocol types, and the per-connection and per-message log lines |
//! | **delivery half** | |
//! | [`delivery`] | the outbound engine: many client sessions on one poll following the core's MX walk, N/M connection limits, reuse, relay or MX routing, TLS, shutdown |
//! | **shared by both** | |
//! | [`dns`] | the core's DNS resolver pumped on a loop's poll (UDP sockets, TCP streams, `/etc/resolv.conf`): the delivery engine's MX lookups, the server's DKIM key lookups |
//! | [`transport`] | one connection's bytes, server or client side: plaintext, the STARTTLS switch, rustls; no read buffer of its own |
//! | [`tls`] | reading certificate, key and CA files into the core's rustls glue ([`smtp_proto::tls`]: the server's identity, self-signed at start if need be, client trust, ring only) |
//! | [`timers`] | the deadlines of thousands of sessions (or lookups), so a loop sleeps exactly until the next |
//!
//! ### Public paths
//!
//! Everything of the server half is named through [`server`]: the types a
//! program needs to write a server are re-exported there
//! (`smtp_mio::server::{Server, Options, Backend, Session, ConnectionInfo,
//! Responder}`), the rest lives in its submodules
//! (`smtp_mio::server::store::StoreBackend`,
//! `smtp_mio::server::listener::ConnectionLimits`…). The delivery half is
//! named through [`delivery`] the same way. The shared modules sit at the
//! root.
//!
//! What this crate never does: parse or decide SMTP itself (that is
//! `smtp-proto`'s job, once), keep a read buffer of its own across STARTTLS,
//! or answer `250` to a message before it is on disk.
#![forbid(unsafe_code)]

pub mod delivery;
pub mod dns;
pub mod server;
pub mod timers;
pub mod tls;
pub mod transport;

/// The sans-IO core whose sessions this crate drives, re-exported: a
/// program can name `smtp_mio::smtp_proto::…` (configs, replies, the
/// shared [`TlsMode`](smtp_proto::TlsMode)) and always get the very version
/// this crate was built against, without keeping two versions in lockstep.
pub use smtp_proto;
