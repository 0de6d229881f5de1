//! What the client session decides before it connects: its name, its TLS and
//! AUTH policy, how it sends bodies, its limits and its timeouts.
//!
//! Every default is the safe one: STARTTLS is required unless switched off,
//! AUTH never runs over plaintext, bodies with a bare CR or LF are refused,
//! injected bytes after STARTTLS end the session, and every timeout is the
//! RFC 5321 §4.5.3.2 minimum.

use std::time::Duration;

use crate::address::Host;
use crate::data::BareLineEnding;
use crate::keyword::Mechanism;
use crate::reply::ReplyLimits;
use crate::secret::Secret;
use crate::session::{InjectionPolicy, Protocol, TlsMode};

/// Settings of one client session. Build it with [`Config::new`] and adjust
/// the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The name sent with EHLO, HELO or LHLO: this host's fully qualified
    /// domain name, or an address literal if it has none (RFC 5321
    /// §4.1.1.1).
    pub helo_name: Host<'static>,
    /// SMTP or LMTP (RFC 2033).
    pub protocol: Protocol,
    /// How TLS is obtained. Default [`TlsMode::Required`]: STARTTLS must be
    /// offered and succeed, or the session fails without sending anything
    /// else in plaintext. `Opportunistic` goes on in plaintext when
    /// STARTTLS is not offered or refused; `Disabled` never sends it;
    /// `Implicit` makes the first output [`Output::StartTls`](crate::Output::StartTls)
    /// and awaits the greeting after the handshake (RFC 8314 §3.3).
    pub tls: TlsMode,
    /// What to do with reply bytes that arrive after the `220` to STARTTLS
    /// and before the handshake (response injection). Default
    /// [`InjectionPolicy::Close`]: the session fails with
    /// [`Error::StartTlsInjection`](super::Error::StartTlsInjection).
    pub on_injection: InjectionPolicy,
    /// Credentials for AUTH (RFC 4954); `None`: never authenticate.
    pub auth: Option<AuthConfig>,
    /// Whether to group commands when the server offers PIPELINING
    /// (RFC 2920). Default `true`: it saves a round trip per recipient.
    pub pipelining: bool,
    /// DATA or BDAT for message bodies. Default [`BodyTransfer::PreferBdat`].
    pub body_transfer: BodyTransfer,
    /// What to do with a bare CR or LF in a message body. Default
    /// [`BareLineEnding::Reject`] (they are the raw material of SMTP
    /// smuggling, CVE-2023-51764).
    pub bare_line_ending: BareLineEnding,
    /// The most body bytes the session holds at once (stuffed DATA waiting
    /// to be written, or an unsent BDAT chunk). `write_body` takes no more
    /// than fits. Default 64 KiB: large enough that a transport writes full
    /// TCP segments, small enough that the body is never buffered whole.
    pub body_buffer: usize,
    /// The size of a BDAT chunk (RFC 3030). Clamped to `body_buffer`.
    /// Default 32 KiB, so one chunk is in flight while the next fills.
    pub bdat_chunk: usize,
    /// The longest reply line accepted, CRLF included. Default 2048, like
    /// Postfix's `line_length_limit`: RFC 5321 §4.5.3.1.5 says 512, real
    /// servers send more; anything longer ends the session.
    pub max_reply_line: usize,
    /// Bounds on one (multi-line) reply.
    pub reply_limits: ReplyLimits,
    /// Per-phase timeouts.
    pub timeouts: Timeouts,
}

impl Config {
    /// A configuration with every default, sending `helo_name`.
    pub fn new(helo_name: Host<'static>) -> Self {
        Self {
            helo_name,
            protocol: Protocol::Smtp,
            tls: TlsMode::Required,
            on_injection: InjectionPolicy::Close,
            auth: None,
            pipelining: true,
            body_transfer: BodyTransfer::PreferBdat,
            bare_line_ending: BareLineEnding::Reject,
            body_buffer: 64 * 1024,
            bdat_chunk: 32 * 1024,
            max_reply_line: 2048,
            reply_limits: ReplyLimits::default(),
            timeouts: Timeouts::default(),
        }
    }

    /// The body buffer, at least one byte.
    pub(crate) fn effective_body_buffer(&self) -> usize {
        self.body_buffer.max(1)
    }

    /// The BDAT chunk size, between one byte and the body buffer.
    pub(crate) fn effective_bdat_chunk(&self) -> usize {
        self.bdat_chunk.clamp(1, self.effective_body_buffer())
    }
}

/// Which body command to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BodyTransfer {
    /// BDAT when the server offers CHUNKING (RFC 3030), else DATA. BDAT
    /// needs no dot-stuffing and has no end-of-data sequence to smuggle.
    #[default]
    PreferBdat,
    /// Always DATA.
    Data,
}

/// AUTH settings (RFC 4954).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthConfig {
    /// The credentials, tried in the order of mechanism strength: the
    /// session picks the strongest mechanism the server offers that some
    /// credential supports.
    pub credentials: Vec<Credentials>,
    /// Allow AUTH without TLS. Default `false`: RFC 4954 §4 asks for a way
    /// to forbid plaintext password mechanisms without TLS, and a password
    /// sent in the clear is a password given away.
    pub allow_plaintext: bool,
}

impl AuthConfig {
    /// AUTH with one set of credentials, over TLS only.
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials: vec![credentials],
            allow_plaintext: false,
        }
    }

    /// AUTH with several sets of credentials (the strongest offered
    /// mechanism wins), over TLS only.
    pub fn with_credentials(credentials: Vec<Credentials>) -> Self {
        Self {
            credentials,
            allow_plaintext: false,
        }
    }
}

/// One set of credentials and the mechanisms it can drive.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// A user name and password: `PLAIN` (RFC 4616), else `LOGIN`.
    Password {
        /// The authorization identity (`authzid`), usually `None`: act as
        /// `username`.
        authzid: Option<String>,
        /// The authentication identity.
        username: String,
        /// The password.
        password: Secret<String>,
    },
    /// An OAuth 2.0 bearer token: `XOAUTH2`.
    OAuth2 {
        /// The user the token belongs to.
        username: String,
        /// The access token.
        token: Secret<String>,
    },
    /// Any other SASL mechanism, driven step by step by the application:
    /// the session sends `AUTH <mechanism>` and reports every `334`
    /// challenge as [`Event::AuthChallenge`](super::Event); the application
    /// answers with [`Client::auth_respond`](super::Client::auth_respond).
    /// Listed mechanisms rank above the built-in ones, first listed first.
    Sasl {
        /// Mechanisms the application implements, strongest first.
        mechanisms: Vec<Mechanism<'static>>,
    },
}

impl Credentials {
    /// Password credentials without an authorization identity.
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Password {
            authzid: None,
            username: username.into(),
            password: Secret::new(password.into()),
        }
    }

    /// XOAUTH2 credentials.
    pub fn oauth2(username: impl Into<String>, token: impl Into<String>) -> Self {
        Self::OAuth2 {
            username: username.into(),
            token: Secret::new(token.into()),
        }
    }
}

/// Timeouts per phase (RFC 5321 §4.5.3.2). A reply timer starts when the
/// command's last byte has been written (`advance_transmit`), not when it
/// was queued, so a slow socket never eats into the server's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Waiting for the `220` greeting. RFC 5321 §4.5.3.2.1: 5 minutes.
    pub greeting: Duration,
    /// Waiting for the reply to MAIL. RFC 5321 §4.5.3.2.2: 5 minutes.
    pub mail: Duration,
    /// Waiting for the reply to RCPT. RFC 5321 §4.5.3.2.3: 5 minutes.
    pub rcpt: Duration,
    /// Waiting for the `354` to DATA. RFC 5321 §4.5.3.2.4: 2 minutes.
    pub data_initiation: Duration,
    /// Writing: while bytes stay pending after a write, the socket must
    /// take more within this time. RFC 5321 §4.5.3.2.5 ("data block"): 3
    /// minutes. The timer runs from `advance_transmit`: a transport whose
    /// socket took nothing reports `advance_transmit(now, 0)` to start it.
    pub data_block: Duration,
    /// Waiting for the reply after the end of data (`.` or `BDAT … LAST`).
    /// RFC 5321 §4.5.3.2.6: 10 minutes, because the server may be
    /// delivering before it answers.
    pub data_termination: Duration,
    /// Waiting for the reply to a BDAT chunk that is not the last. RFC 3030
    /// names no value; the data block timeout, 3 minutes, by analogy.
    pub bdat_chunk: Duration,
    /// Waiting for the reply to any other command (EHLO, HELO, STARTTLS,
    /// AUTH, RSET, NOOP, VRFY, EXPN, HELP, QUIT). RFC 5321 names none; 5
    /// minutes like MAIL.
    pub other: Duration,
    /// Waiting for the transport to finish the TLS handshake (after
    /// STARTTLS, and under implicit TLS before the greeting). 2 minutes:
    /// the handshake is a few round trips.
    pub tls_handshake: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        const MIN: u64 = 60;
        Self {
            greeting: Duration::from_secs(5 * MIN),
            mail: Duration::from_secs(5 * MIN),
            rcpt: Duration::from_secs(5 * MIN),
            data_initiation: Duration::from_secs(2 * MIN),
            data_block: Duration::from_secs(3 * MIN),
            data_termination: Duration::from_secs(10 * MIN),
            bdat_chunk: Duration::from_secs(3 * MIN),
            other: Duration::from_secs(5 * MIN),
            tls_handshake: Duration::from_secs(2 * MIN),
        }
    }
}
