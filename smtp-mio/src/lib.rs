//! # smtp-mio: SMTP on mio event loops
//!
//! An SMTP server that holds thousands of connections on a few threads, and a
//! delivery engine that runs many client sessions at once, both driving
//! [`smtp_proto`]'s sans-IO sessions with rustls for TLS.
//!
//! The event loop itself is built from parts that each do one job and are
//! tested on their own:
//!
//! | module | job |
//! |---|---|
//! | [`transport`] | one connection's bytes: plaintext, the STARTTLS switch, rustls; no read buffer of its own |
//! | [`completion`] | answers from handlers on any thread, delivered to the loop through a `mio::Waker` |
//! | [`listener`] | `SO_REUSEPORT` listeners, one per loop; connection limits with RAII guards |
//! | [`timers`] | the deadlines of thousands of sessions, so a loop sleeps exactly until the next |
//! | [`tls`] | the server's certificate (PEM files or self-signed at start) and rustls config (ring only) |
//! | [`maildir`] | durable Maildir delivery: `tmp/`, `fsync`, rename into `new/`, `fsync` the directory |
//! | [`trace`] | the `Received:` header (RFC 5321 §4.4) with RFC 3848 protocol types |
//!
//! What this crate never does: parse or decide SMTP itself (that is
//! `smtp-proto`'s job, once), keep a read buffer of its own across STARTTLS,
//! or answer `250` to a message before it is on disk.
#![forbid(unsafe_code)]

pub mod completion;
pub mod listener;
pub mod maildir;
pub mod timers;
pub mod tls;
pub mod trace;
pub mod transport;
