//! # STARTTLS command injection
//!
//! ## The attack
//!
//! `STARTTLS` (RFC 3207) upgrades a plaintext connection to TLS in the
//! middle of the session. Everything before the handshake can be read and
//! changed by anyone on the path. In 2011 Wietse Venema showed that many
//! servers read ahead: a man in the middle appends a command to the
//! client's `STARTTLS` in the same TCP segment,
//!
//! ```text
//! C: STARTTLS\r\nRSET\r\n          (one segment; "RSET" added by the attacker)
//! S: 220 2.0.0 Ready to start TLS
//!    ... handshake ...
//! S: 250 2.0.0 Ok                   (answer to the injected RSET, inside TLS)
//! ```
//!
//! and the server, having buffered the extra line before the switch, runs
//! it *as if it had arrived over TLS* (CVE-2011-0411; Postfix, qmail-tls,
//! Pure-FTPd, INN, Dovecot's CVE-2021-33515, aiosmtpd's CVE-2024-34083).
//! The injected command can steer the first post-TLS exchange: steal
//! credentials sent with `AUTH`, or mail. The USENIX Security 2021 study
//! "Why TLS is better without STARTTLS" still found it on about 2% of mail
//! servers.
//!
//! The bug is always the same: a read buffer that survives the switch. In
//! an I/O library it hides in a `BufReader`; in a sans-IO core it would hide
//! in the core's input buffer.
//!
//! ## What [`Server`](crate::server::Server) does
//!
//! 1. When `STARTTLS` is accepted, the server looks at its input buffer.
//!    Anything behind the `STARTTLS` line is plaintext the client had no
//!    business sending (an honest client waits for the `220`).
//! 2. With the default [`InjectionPolicy::Close`](crate::InjectionPolicy::Close)
//!    the server sends nothing more — not even the `220` — and closes with
//!    [`CloseReason::StartTlsInjection`](crate::server::CloseReason::StartTlsInjection).
//!    An attacker gets no TLS session to abuse and a broken client gets a
//!    clear failure. With [`InjectionPolicy::Discard`](crate::InjectionPolicy::Discard)
//!    (Postfix's choice) the bytes are dropped and counted
//!    ([`Server::discarded_plaintext`](crate::server::Server::discarded_plaintext))
//!    and the handshake goes ahead. Either way, they are never parsed.
//! 3. The `220` is written completely before [`Output::StartTls`](crate::Output::StartTls)
//!    is returned, so the transport never starts the handshake with a
//!    plaintext reply still queued.
//! 4. Bytes handed in between `Output::StartTls` and
//!    [`Server::handle_tls_established`](crate::server::Server::handle_tls_established)
//!    are taken, counted and dropped: the transport should be feeding them
//!    to its TLS library, not to the core.
//! 5. After the handshake the session forgets everything learned in
//!    plaintext (RFC 3207 §4.2): the `EHLO` name, any AUTH state. The
//!    client must send `EHLO` again (`503` otherwise), `STARTTLS` is no
//!    longer advertised and a second one gets `503 5.5.1`.
//!
//! ## What the transport must do
//!
//! Keep no read buffer of its own across the switch. Every byte read from
//! the socket goes into the core until `Output::StartTls`, then into the TLS
//! library. A transport that read ahead into a private buffer re-creates the
//! bug outside the core, where no test of the core can see it.
//!
//! The client side has the mirror-image attack (response injection after
//! the `220`); the client session discards and refuses such bytes.
