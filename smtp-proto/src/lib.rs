//! # smtp-proto: SMTP without I/O
//!
//! The pure core of the workspace: it parses and emits SMTP commands and replies
//! (RFC 5321 and its extensions), frames lines and message data, runs the
//! client and server sessions as state machines, resolves DNS questions as a
//! stub resolver and plans MX delivery.
//!
//! ## What this crate never does
//!
//! It never opens a socket or a file, never spawns a thread, never reads a
//! clock and never draws a random number. Time comes in as an argument, DNS
//! ids are drawn from a seed that comes in as a value, and so are MX
//! tie-breaks. Every session is therefore
//! replayable and every test deterministic; the transports (`smtp-blocking`,
//! `smtp-mio`) are thin loops around it.
//!
//! The one exception is opt-in and sits beside the sessions, not inside
//! them: the `rustls` feature adds a `tls` module with the rustls
//! configuration both transports share. rustls is sans-IO too, but it draws
//! from the operating system's random source for every handshake, and
//! self-signed certificates are generated from it; the sessions themselves
//! stay deterministic. (The `dkim` feature's RSA signing takes a random
//! source too, as an argument: the caller's.)
//!
//! ## Map
//!
//! | module | what it holds |
//! |---|---|
//! | [`address`] | domains, address literals, mailboxes, reverse- and forward-paths |
//! | [`xtext`] | the `xtext` encoding of DSN parameters (RFC 3461 §4) |
//! | [`command`] | every command a client sends, parsed and encoded, with typed ESMTP parameters |
//! | [`reply`] | reply codes, enhanced status codes, single- and multi-line replies |
//! | [`ehlo`] | the EHLO reply as a typed extension set |
//! | [`framing`] | the CRLF line framer with RFC 5321 §4.5.3.1 limits |
//! | [`data`] | dot-stuffing, dot-unstuffing with strict end-of-data, BDAT chunk counting |
//! | [`secret`] | a redacting wrapper for credentials |
//! | [`server`] | the server session: bytes in, events and replies out |
//! | [`client`] | the client session: commands and bodies in, bytes and reply events out |
//! | [`manual`] | the security rationale: STARTTLS injection, SMTP smuggling, limits and defaults |
//! | [`dns`] | the stub resolver: DNS names, questions (MX, A, AAAA, TXT, TLSA, PTR), typed answers, the lookup state machine with its retry policy, RFC 5452 matching, `resolv.conf` text and an optional cache |
//! | [`mx`] | MX judgement (null MX, implicit MX, preference order; RFC 5321 §5.1, RFC 7505), the host plan, and the walk that makes every delivery decision for both transports |
//! | [`session`] | the one contract of both sessions (the [`Session`] trait, the time rule, [`Output`], [`session::drive`]) and their shared words: [`TlsMode`], [`InjectionPolicy`], [`Protocol`], [`BodyMode`] |
//! | [`time`] | the deadline table the sessions keep their RFC 5321 §4.5.3.2 timers in |
//! | [`auth_results`] | the `Authentication-Results` header field (RFC 8601): built for any method, folded, parsed; forged fields in our name removed as a message streams |
//! | `dkim` | feature `dkim`: DKIM signing and sans-IO verification (RFC 6376, RFC 8463) — keys, streaming body hashes, key records asked for as DNS questions, RFC 8601 results |
//! | `spf` | feature `spf`: SPF (RFC 7208) — strict record parsing, the macro language, `check_host()` as a DNS question/answer state machine with the processing limits |
//! | `dmarc` | feature `dmarc`: DMARC (RFC 7489, RFC 9091) — record discovery with the organizational domain, strict tags, identifier alignment, the `From:` domain |
//! | `tls` | feature `rustls`: the rustls glue both transports share — client trust, server certificates (PEM, self-signed), [`TlsInfo`] from a connection |
//!
//! The feature `auth` turns on `dkim`, `spf` and `dmarc` together: what a
//! receiving server authenticates with. `spf` needs no dependency; `dmarc`
//! adds the Public Suffix List (`psl`) and needs `spf` for its input type.
//!
//! Encoding is infallible: every value that reaches the wire was validated
//! when it was built, so no address, parameter or reply text can carry a CR or
//! LF that would smuggle a second command.
#![forbid(unsafe_code)]

pub mod address;
pub mod auth_results;
pub mod client;
pub mod command;
pub mod data;
#[cfg(feature = "dkim")]
pub mod dkim;
#[cfg(feature = "dmarc")]
pub mod dmarc;
pub mod dns;
pub mod ehlo;
pub mod framing;
pub mod keyword;
pub mod manual;
pub mod mx;
pub mod reply;
pub mod secret;
pub mod server;
pub mod session;
#[cfg(feature = "spf")]
pub mod spf;
pub mod time;
#[cfg(feature = "rustls")]
pub mod tls;
pub mod xtext;

pub use secret::Secret;
pub use session::{
    BodyMode, DriveError, InjectionPolicy, Output, Protocol, Session, TlsInfo, TlsMode,
};
