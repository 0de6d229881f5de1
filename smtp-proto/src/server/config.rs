//! What a [`Server`](super::Server) offers and enforces: every knob with its
//! default and the reason for it.
//!
//! A `Config` is plain data. Build it with [`Config::new`] (a hostname and
//! safe defaults for everything else) and change the public fields. Values
//! that would make the session unusable are clamped when the server starts
//! (see each field), so starting a server never fails.

use std::time::Duration;

use crate::address::Domain;
use crate::data::BareLineEnding;
use crate::framing::{AUTH_LINE_MAX, COMMAND_LINE_MAX};
use crate::keyword::Mechanism;
use crate::reply::Reply;
use crate::session::{InjectionPolicy, Protocol, TlsMode};

/// The ESMTP extensions the server offers in its `EHLO`/`LHLO` reply
/// (RFC 5321 §4.1.1.1) besides `SIZE`, `STARTTLS` and `AUTH`, which follow
/// from [`Config::max_message_size`], [`Config::tls`] and
/// [`Config::auth`].
///
/// An extension that is not offered is also not accepted: its MAIL or RCPT
/// parameters are answered `555` (RFC 5321 §4.1.1.11) and its commands
/// `502` (RFC 5321 §4.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Offer {
    /// `PIPELINING` (RFC 2920). Default on: the server answers batches in
    /// order whether or not it is offered, so offering it only saves the
    /// client round trips.
    pub pipelining: bool,
    /// `8BITMIME` (RFC 6152), the `BODY=7BIT|8BITMIME` MAIL parameter.
    /// Default on: the body is passed through unchanged.
    pub eight_bit_mime: bool,
    /// `SMTPUTF8` (RFC 6531). Default on: addresses are validated as UTF-8
    /// either way, and the application sees whether the transaction asked
    /// for it.
    pub smtputf8: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034). Default on: every automatic reply
    /// after `EHLO` then carries its RFC 3463 code.
    pub enhanced_status_codes: bool,
    /// `CHUNKING` (RFC 3030), the `BDAT` command. Default on: counted chunks
    /// cannot be smuggled through and cost nothing extra.
    pub chunking: bool,
    /// `BINARYMIME` (RFC 3030 §3), the `BODY=BINARYMIME` parameter. Default
    /// off: binary bodies only make sense to applications that store them
    /// as such. Only offered together with [`Offer::chunking`].
    pub binarymime: bool,
    /// `DSN` (RFC 3461), the `RET`, `ENVID`, `NOTIFY` and `ORCPT`
    /// parameters. Default off: offering it promises delivery status
    /// notifications the application must then generate.
    pub dsn: bool,
    /// `REQUIRETLS` (RFC 8689). Default off; offered only while TLS is
    /// active (RFC 8689 §4: the keyword is meaningless in cleartext).
    pub requiretls: bool,
}

impl Default for Offer {
    fn default() -> Self {
        Self {
            pipelining: true,
            eight_bit_mime: true,
            smtputf8: true,
            enhanced_status_codes: true,
            chunking: true,
            binarymime: false,
            dsn: false,
            requiretls: false,
        }
    }
}

/// SMTP AUTH (RFC 4954) policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthConfig {
    /// The SASL mechanisms offered, in order. Empty (the default) means AUTH
    /// is not offered and the command is answered `502`. `PLAIN` and
    /// `LOGIN` are decoded by the server; every other mechanism is passed
    /// to the application step by step.
    pub mechanisms: Vec<Mechanism<'static>>,
    /// Whether AUTH is offered and accepted only under TLS. Default `true`:
    /// RFC 4954 §4 requires a configuration that keeps plaintext passwords
    /// off unencrypted connections; before TLS the command gets
    /// `538 5.7.11` (RFC 4954 §6).
    pub require_tls: bool,
    /// Whether `MAIL` requires a successful AUTH first (submission, RFC
    /// 6409 §4.3); otherwise `530 5.7.0` (RFC 4954 §6). Default `false`
    /// (a relay or MX accepts unauthenticated mail).
    pub required_for_mail: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mechanisms: Vec::new(),
            require_tls: true,
            required_for_mail: false,
        }
    }
}

/// Buffer and size limits. Every buffer the server keeps is bounded by one
/// of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest command line, CRLF included. Default 2048: RFC 5321
    /// §4.5.3.1.4 sets 512 but lets extensions raise it, and SIZE, DSN and
    /// AUTH= parameters do (Postfix's `line_length_limit` is 2048). Clamped
    /// to at least [`COMMAND_LINE_MAX`] (512), which a server MUST accept.
    pub command_line: usize,
    /// Longest line of the SASL exchange, CRLF included. Default and minimum
    /// [`AUTH_LINE_MAX`] (12288, RFC 4954 §4).
    pub auth_line: usize,
    /// The input buffer: pipelined commands and body bytes not yet handed
    /// to the application. Default 64 KiB; clamped to at least one
    /// [`Limits::auth_line`] plus one byte so that any allowed line fits.
    /// When it is full, [`Server::wants_read`](super::Server::wants_read)
    /// turns false.
    pub input_buffer: usize,
    /// Replies queued but not yet written. Default 16 KiB: a client that
    /// does not read its replies stops being served (its commands wait in
    /// the input buffer) instead of growing this buffer.
    pub output_buffer: usize,
    /// Recipients accepted per transaction; more get `452 4.5.3` (RFC 5321
    /// §4.5.3.1.10). Default and minimum 100: RFC 5321 §4.5.3.1.8 "the
    /// minimum total number of recipients that MUST be buffered is 100".
    pub max_recipients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            command_line: 2048,
            auth_line: AUTH_LINE_MAX,
            input_buffer: 64 * 1024,
            output_buffer: 16 * 1024,
            max_recipients: 100,
        }
    }
}

impl Limits {
    /// The limits with every value raised to its minimum.
    pub(crate) fn clamped(self) -> Self {
        let command_line = self.command_line.max(COMMAND_LINE_MAX);
        let auth_line = self.auth_line.max(AUTH_LINE_MAX);
        Self {
            command_line,
            auth_line,
            input_buffer: self.input_buffer.max(auth_line.max(command_line) + 1),
            output_buffer: self.output_buffer.max(4096),
            max_recipients: self.max_recipients.max(100),
        }
    }
}

/// Postfix-style error limits (`smtpd_soft_error_limit`,
/// `smtpd_hard_error_limit`, `smtpd_error_sleep_time`).
///
/// An *error* is a negative reply the server gives on its own: unknown
/// commands, syntax errors, bad sequences, refused parameters, over-long
/// lines. Replies chosen by the application do not count (its policy
/// decisions are not the client's protocol errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorLimits {
    /// After this many errors, each further error reply (with everything
    /// queued before it) is held back for [`ErrorLimits::delay`], and no
    /// other command is read meanwhile.
    /// Default 10 (Postfix). A sans-IO core cannot sleep; it holds its
    /// output and asks to be woken at the deadline instead.
    pub soft: u32,
    /// At this many errors the server answers `421 4.7.0` and closes.
    /// Default 20 (Postfix).
    pub hard: u32,
    /// How long each error reply past the soft limit is held. Default 1 s
    /// (Postfix's `smtpd_error_sleep_time`).
    pub delay: Duration,
}

impl Default for ErrorLimits {
    fn default() -> Self {
        Self {
            soft: 10,
            hard: 20,
            delay: Duration::from_secs(1),
        }
    }
}

/// Timeouts (RFC 5321 §4.5.3.2). `Duration::MAX` disables one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Waiting for the next command line (and for SASL responses). Default
    /// 5 minutes: RFC 5321 §4.5.3.2.7 "Server Timeout ... at least 5
    /// minutes while it is awaiting the next command".
    pub command: Duration,
    /// Waiting for more message content after `354` or inside a `BDAT`
    /// chunk. Default 5 minutes, Postfix's `smtpd_timeout`: the 3-minute
    /// "data block" figure of RFC 5321 §4.5.3.2.5 bounds each of the
    /// *client's* sends, not the pauses between them, so a server using it
    /// could cut off a conforming client.
    pub data: Duration,
    /// Waiting for the transport to take queued replies. Default 5 minutes;
    /// a peer that stops reading is disconnected without a reply (there is
    /// no way to send one).
    pub send: Duration,
    /// Waiting for [`Server::handle_tls_established`](super::Server::handle_tls_established)
    /// after [`Output::StartTls`](crate::Output::StartTls), after STARTTLS
    /// and under implicit TLS alike. Default 1 minute.
    pub tls_handshake: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            command: Duration::from_secs(5 * 60),
            data: Duration::from_secs(5 * 60),
            send: Duration::from_secs(5 * 60),
            tls_handshake: Duration::from_secs(60),
        }
    }
}

/// Everything a [`Server`](super::Server) needs to know before the first
/// byte.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The server's own name: in the greeting, the `EHLO` reply, `221` and
    /// `421` (RFC 5321 §4.1.1.1, §4.2).
    pub hostname: Domain<'static>,
    /// The greeting. `None` (the default) sends `220 <hostname> ESMTP` (or
    /// `LMTP`). A custom 2xx reply is sent as given; a `554` (RFC 5321
    /// §3.1: "No SMTP service here") makes the server answer every command
    /// but `QUIT` with `503`; a `421` is sent and the connection closed.
    pub greeting: Option<Reply<'static>>,
    /// SMTP or LMTP. Default SMTP.
    pub protocol: Protocol,
    /// The extensions offered (besides SIZE, STARTTLS and AUTH).
    pub offer: Offer,
    /// The largest message accepted, in octets, advertised as `SIZE n` (RFC
    /// 1870). A larger declared `SIZE=` is refused at `MAIL` with
    /// `552 5.3.4`; a larger actual body is read to its end and refused
    /// once with `552 5.3.4`. `None` advertises `SIZE` without a number and
    /// enforces nothing. Default 10 MB (Postfix's `message_size_limit`,
    /// 10240000).
    pub max_message_size: Option<u64>,
    /// How TLS is obtained: STARTTLS not offered (`Disabled`, the default,
    /// because the core cannot know whether the transport has a
    /// certificate), offered (`Opportunistic`), offered and required before
    /// mail (`Required`: `530 5.7.0` to MAIL, RCPT, DATA, BDAT, AUTH, VRFY
    /// and EXPN until TLS is active, RFC 3207 §4), or TLS from the first
    /// byte (`Implicit`: the session's first output is
    /// [`Output::StartTls`](crate::Output::StartTls) and the greeting
    /// follows the handshake). See [`TlsMode`].
    pub tls: TlsMode,
    /// What to do with plaintext pipelined after `STARTTLS` (before the
    /// handshake). Default [`InjectionPolicy::Close`]: close without
    /// another byte.
    pub on_injection: InjectionPolicy,
    /// AUTH mechanisms and policy. Default: not offered.
    pub auth: AuthConfig,
    /// The smuggling policy: what to do with a bare CR, a bare LF or a NUL
    /// in `DATA` content and in the BDAT chunks of a body that is not
    /// `BODY=BINARYMIME`. Default [`BareLineEnding::Reject`]: the message
    /// is read to its real end and refused with `550 5.5.2` (bare line
    /// ending) or `550 5.6.0` (NUL), nothing stored (see
    /// [`manual::_02_smtp_smuggling`](crate::manual::_02_smtp_smuggling));
    /// `Normalize` rewrites them (CRLF, NUL dropped), `Accept` keeps them.
    pub bare_line_ending: BareLineEnding,
    /// Whether a client that is not authenticated is disconnected with
    /// `554 5.5.0 Error: SMTP protocol synchronization` when it sends on
    /// where it must wait for a reply: after `EHLO`/`HELO`, `DATA`, the end
    /// of data, `VRFY`, `EXPN`, `NOOP`, `QUIT` (RFC 2920 §3.1), `STARTTLS`
    /// (RFC 3207 §4), during AUTH, and before the greeting. Default `true`,
    /// as Postfix 3.9's `smtpd_forbid_unauth_pipelining`: legitimate
    /// clients never do it, bulk-mail software and SMTP smuggling do (see
    /// [`SyncPoint`](super::SyncPoint)).
    pub forbid_unauth_pipelining: bool,
    /// How long the greeting is held back after the connection opens (or
    /// after an implicit-TLS handshake). Input in that time is pre-greeting
    /// talk, refused under [`Config::forbid_unauth_pipelining`] like
    /// postscreen's pre-greet test. Default zero (greet at once, Postfix's
    /// `smtpd`); postscreen waits 6 s (`postscreen_greet_wait`), which an
    /// MX on port 25 may copy — every client then waits that long for the
    /// `220`, within RFC 5321 §4.5.3.2.1's 5-minute greeting timeout.
    pub greeting_delay: Duration,
    /// Buffer and count limits.
    pub limits: Limits,
    /// Error limits.
    pub errors: ErrorLimits,
    /// Timeouts.
    pub timeouts: Timeouts,
}

impl Config {
    /// A configuration with the given hostname and every other field at its
    /// documented default.
    pub fn new(hostname: Domain<'static>) -> Self {
        Self {
            hostname,
            greeting: None,
            protocol: Protocol::default(),
            offer: Offer::default(),
            max_message_size: Some(10_240_000),
            tls: TlsMode::Disabled,
            on_injection: InjectionPolicy::default(),
            auth: AuthConfig::default(),
            bare_line_ending: BareLineEnding::default(),
            forbid_unauth_pipelining: true,
            greeting_delay: Duration::ZERO,
            limits: Limits::default(),
            errors: ErrorLimits::default(),
            timeouts: Timeouts::default(),
        }
    }
}
