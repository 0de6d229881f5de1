//! # SMTP smuggling
//!
//! ## The attack
//!
//! A message ends at `<CRLF>.<CRLF>` (RFC 5321 §4.1.1.4). In December 2023
//! Timo Longin (SEC Consult) showed that servers disagree about what else
//! ends it. If the outbound server A relays a message containing, say,
//! `\n.\r\n` unchanged, and the inbound server B takes that as the end of
//! data, then everything after it is read by B as *new commands* — a second,
//! "smuggled" transaction that inherits A's SPF and DKIM standing:
//!
//! ```text
//! C: DATA
//! S: 354 End data with <CR><LF>.<CR><LF>
//! C: Subject: hello\r\n
//! C: \r\n
//! C: text\n.\r\n                              <- B ends the message here
//! C: MAIL FROM:<ceo@bank.example>\r\n         <- and runs this as a command
//! C: RCPT TO:<victim@example.org>\r\n
//! C: DATA\r\n ... \r\n.\r\n                    <- the real end for A
//! ```
//!
//! Postfix (CVE-2023-51764), Sendmail (CVE-2023-51765), Exim
//! (CVE-2023-51766), aiosmtpd (CVE-2024-27305) and others accepted one
//! variant or another: `\n.\n`, `\n.\r\n`, `\r\n.\n`, `\r.\r`,
//! `\r\n.\r\r\n` (a parser stripping *all* CRs before LF), and NUL tricks
//! like `\r\n\0.\r\n` for servers that drop NULs before looking.
//!
//! RFC 5321 §4.1.1.4 is explicit: servers "MUST NOT" treat `<LF>.<LF>` as
//! the end of data, "even in the name of improved robustness".
//!
//! ## What [`Server`](crate::server::Server) does
//!
//! - **One terminator.** The end of `DATA` is recognised by a small byte
//!   automaton ([`DotUnstuffer`](crate::data::DotUnstuffer)) only as `CR LF
//!   . CR LF` where the first CR LF really ended a line. A bare CR or bare LF
//!   never ends a line and never starts one for the purpose of the
//!   terminator; none of the variants above ends the message, and none of
//!   the bytes after them is ever read as a command.
//! - **Delayed reject.** With the default
//!   [`BareLineEnding::Reject`](crate::data::BareLineEnding::Reject), a
//!   message that contained a bare CR or bare LF is read to its real end and
//!   then refused with `550 5.5.2 Message refused: bare CR or LF received`
//!   (Postfix's `smtpd_forbid_bare_newline = reject` answers `550 5.5.2`).
//!   Rejecting early and then reading the rest as commands would hand the
//!   attacker exactly what the attack wants; the session stays in sync
//!   instead, and the transaction is reset completely.
//! - **NUL counts too.** `CR LF NUL . CR LF` and `CR LF . NUL CR LF` are
//!   content here, but an end of data to a hop that strips NULs before it
//!   looks. Under the default policy a message with a NUL is refused the
//!   same way (`550 5.6.0 Message refused: NUL received`).
//! - **Normalize.** [`BareLineEnding::Normalize`](crate::data::BareLineEnding::Normalize)
//!   accepts such messages and turns each bare CR or LF into CRLF and drops
//!   each NUL, as Postfix ≥ 3.9 does with bare newlines by default — still
//!   without ever ending the message early. Choose it for a server that
//!   must accept mail from sloppy senders.
//!   [`BareLineEnding::Accept`](crate::data::BareLineEnding::Accept) stores
//!   them as sent.
//! - **Protocol synchronization.** A transaction pipelined behind the end
//!   of data — what a smuggled transaction looks like to the receiving
//!   side — is refused with `554 5.5.0` and the connection closed, unless
//!   the client authenticated (see
//!   [`SyncPoint`](crate::server::SyncPoint)).
//! - **Commands too.** A command line is only ever ended by CRLF; a command
//!   containing a bare CR or LF is refused whole (`500 5.5.2`).
//! - **BDAT** is counted, so nothing inside a chunk can end it; but a
//!   message received with BDAT may leave with DATA, so the same policy
//!   covers the chunks of a `7BIT` or `8BITMIME` body (refused after the
//!   `LAST` chunk, or normalized). `BODY=BINARYMIME` content may hold any
//!   octet and is left alone.
//!
//! The regression tests in `tests/tests/server_smuggling.rs` send every
//! variant followed by a smuggled `MAIL FROM` and check that it is never
//! answered.
