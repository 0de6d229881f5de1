//! The words both sessions share: how TLS is obtained, what to do with
//! plaintext injected at the STARTTLS boundary, SMTP or LMTP, DATA or BDAT.
//!
//! One type per notion, for the client and the server alike, so that a
//! program configuring both (a relay, a test harness) never translates
//! between two spellings of the same thing, and a transport passes the
//! value through without a mapping of its own.

use std::fmt;

/// How a session obtains TLS (RFC 3207 STARTTLS, RFC 8314 implicit TLS).
///
/// The same four words on both sides; what each means for the client and
/// the server:
///
/// | mode | client ([`client::Config::tls`](crate::client::Config::tls)) | server ([`server::Config::tls`](crate::server::Config::tls)) |
/// |---|---|---|
/// | `Disabled` | never sends STARTTLS | does not offer STARTTLS; the command gets `502` |
/// | `Opportunistic` | STARTTLS when offered, else plaintext | offers STARTTLS; the client may go on without it (Postfix `may`) |
/// | `Required` | STARTTLS must be offered and succeed, else the session fails | offers STARTTLS and refuses mail before it: `530 5.7.0` to MAIL, RCPT, DATA, BDAT, AUTH, VRFY, EXPN (RFC 3207 §4; Postfix `encrypt`) |
/// | `Implicit` | TLS from the first byte | TLS from the first byte |
///
/// Under `Implicit` the *first* output of either session is
/// [`Output::StartTls`](crate::Output::StartTls), before the greeting is
/// written (server) or awaited (client): the transport runs the handshake
/// (or, if it wrapped the connection in TLS when it accepted or connected
/// it, finishes it) and reports it with `handle_tls_established`, exactly as
/// after STARTTLS. The handshake timer covers it on both sides.
///
/// There is no `Default`: the safe default differs by side. A client
/// requires TLS unless told otherwise
/// ([`client::Config::new`](crate::client::Config::new)); a server cannot
/// know whether its transport has a certificate and starts `Disabled`
/// ([`server::Config::new`](crate::server::Config::new)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsMode {
    /// No TLS: the client never sends STARTTLS; the server does not offer
    /// it.
    Disabled,
    /// STARTTLS when possible, plaintext otherwise. This is what
    /// MTA-to-MTA relaying does without MTA-STS or DANE (RFC 7435).
    Opportunistic,
    /// STARTTLS, and nothing that matters in plaintext: the client fails
    /// the session when STARTTLS is not offered or refused (no silent
    /// downgrade, the NO STARTTLS paper's "stripping" cases); the server
    /// answers `530 5.7.0 Must issue a STARTTLS command first` to mail and
    /// authentication commands until TLS is active (RFC 3207 §4).
    Required,
    /// TLS from the first byte (RFC 8314 §3.3, port 465): the session's
    /// first output is [`Output::StartTls`](crate::Output::StartTls), and
    /// STARTTLS is never sent nor offered.
    Implicit,
}

impl TlsMode {
    /// The mode's name in lower case: `disabled`, `opportunistic`,
    /// `required`, `implicit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Opportunistic => "opportunistic",
            Self::Required => "required",
            Self::Implicit => "implicit",
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with plaintext that arrives after STARTTLS was accepted and
/// before the TLS handshake: bytes pipelined behind `STARTTLS` on the server
/// (CVE-2011-0411), bytes behind the `220` on the client (response
/// injection, Poddebniak et al., USENIX Security 2021; Exim
/// CVE-2021-38371). See
/// [`manual::_01_starttls_injection`](crate::manual::_01_starttls_injection).
///
/// A field of its own in both configs (`on_injection`), apart from the TLS
/// mode: it matters for `Opportunistic` and `Required` alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum InjectionPolicy {
    /// End the session: the server closes without another byte (no `220`,
    /// no handshake; Momentum's `starttls_injection_policy = reject`), the
    /// client fails with
    /// [`client::Error::StartTlsInjection`](crate::client::Error::StartTlsInjection).
    /// The default: an honest peer sends nothing there, so the bytes are an
    /// attack or a broken peer, and neither should get a TLS session.
    #[default]
    Close,
    /// Discard the bytes, count them, and go on with the handshake
    /// (Postfix's behaviour as a server). Nothing discarded is ever acted
    /// on.
    Discard,
}

/// SMTP (RFC 5321) or LMTP (RFC 2033).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// SMTP: `EHLO` (the client falls back to `HELO` on `500`/`502`), one
    /// reply after the message.
    #[default]
    Smtp,
    /// LMTP: `LHLO` only, and after the message one reply per accepted
    /// recipient (RFC 2033 §4.2).
    Lmtp,
}

/// How message content is transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyMode {
    /// `DATA` (RFC 5321 §4.1.1.4): dot-stuffed lines ending at `CRLF.CRLF`;
    /// the client writes the body after the `354`.
    Data,
    /// `BDAT` (RFC 3030): counted chunks; the client writes the body at
    /// once.
    Bdat,
}
