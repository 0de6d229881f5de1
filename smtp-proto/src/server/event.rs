//! What the server tells the application.
//!
//! Events borrow from the server's buffers: command arguments from the
//! command line, body chunks straight out of the (unstuffed) input buffer,
//! SASL data from a small decode buffer, the [`Envelope`] from the text of
//! the transaction's commands the session keeps. Nothing is copied at
//! event time and no message is ever held whole. Call `into_owned()`-style conversions on the parts you
//! keep.
//!
//! Events come in two kinds:
//!
//! - **questions**, which the application must answer before the server
//!   reads another command ([`Event::needs_answer`]): `Mail`, `Rcpt`,
//!   `DataStart`, `MessageEnd`, `Auth`, `AuthResponse`, `AuthPlain`,
//!   `AuthLogin`, `Vrfy`, `Expn`;
//! - **facts**, already answered by the server as RFC 5321 decides:
//!   `Helo`, `Body`, `Reset`, `TlsEstablished`, `Closed`.

use crate::address::{ForwardPath, Host, ReversePath};
use crate::command::{Argument, InitialResponse, MailParameters, RcptParameters};
use crate::keyword::Mechanism;
use crate::secret::Secret;
use crate::session::BodyMode;

use super::envelope::Envelope;

/// Which greeting command the client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeloKind {
    /// `HELO` (RFC 5321 §4.1.1.1): plain SMTP, no extensions.
    Helo,
    /// `EHLO` (RFC 5321 §4.1.1.1): extended SMTP.
    Ehlo,
    /// `LHLO` (RFC 2033 §4.1): LMTP.
    Lhlo,
}

/// Why a transaction was dropped without a final reply from the
/// application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetReason {
    /// The client sent `RSET` (RFC 5321 §4.1.1.5).
    Rset,
    /// The client greeted again (`EHLO`/`HELO`/`LHLO` reset the state,
    /// RFC 5321 §4.1.4).
    Helo,
    /// The message grew past [`Config::max_message_size`](super::Config::max_message_size);
    /// it was read to its end and refused with `552 5.3.4`.
    MessageTooBig,
    /// The message held a bare CR or bare LF and the policy rejects it; it
    /// was read to its real end and refused with `550 5.5.2`.
    BareLineEnding,
    /// The message held a NUL and the policy rejects it; it was read to
    /// its real end and refused with `550 5.6.0`.
    Nul,
    /// A BDAT chunk arrived for a transaction without an accepted
    /// recipient; it was read, refused, and the transaction ended (RFC 3030
    /// §2: a failed chunk fails the transaction).
    ChunkRefused,
}

/// Why the session ended: recorded when closing starts, readable through
/// [`Server::close_reason`](super::Server::close_reason) from then on, and
/// handed out once more in [`Event::Closed`]. The first reason sticks: a
/// send timeout while the final `221` is flushed leaves it at `Quit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client sent `QUIT` and got `221`.
    Quit,
    /// The client closed its side; a message in progress was abandoned.
    Eof,
    /// No command or content arrived within the configured timeout; the
    /// server sent `421 4.4.2`.
    Timeout,
    /// The peer did not take the server's replies within the send timeout.
    SendTimeout,
    /// The TLS handshake (after STARTTLS, or of an implicit-TLS
    /// connection) did not complete within its timeout.
    TlsHandshakeTimeout,
    /// The hard error limit was reached; the server sent `421 4.7.0`.
    TooManyErrors,
    /// Plaintext followed `STARTTLS` and the policy closes
    /// ([`InjectionPolicy::Close`](crate::InjectionPolicy::Close)): nothing
    /// more was sent.
    StartTlsInjection {
        /// How many bytes were discarded.
        discarded: usize,
    },
    /// The application answered with a `421` reply (RFC 5321 §3.8) or
    /// called [`Server::shutdown`](super::Server::shutdown).
    Shutdown,
    /// The greeting was a `421` (service not available).
    Refused,
    /// The client sent on where it had to wait for a reply (see
    /// [`SyncPoint`](super::SyncPoint)); the server answered `554 5.5.0`.
    Synchronization(super::SyncPoint),
}

/// Something the application must see: a question to answer or a fact.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The client greeted; the server has answered (fact). The transaction
    /// state was reset (RFC 5321 §4.1.4).
    Helo {
        /// The command used.
        kind: HeloKind,
        /// The client's claimed identity: a domain or an address literal.
        host: Host<'a>,
    },
    /// `MAIL FROM` passed every check the server makes (sequence, offered
    /// parameters, declared size, SMTPUTF8). Answer [`accept`](super::Server::accept)
    /// (`250 2.1.0`) or [`reply`](super::Server::reply) with 2xx, 4xx or
    /// 5xx.
    Mail {
        /// The reverse-path (`<>` for bounces).
        from: ReversePath<'a>,
        /// The ESMTP parameters.
        params: MailParameters<'a>,
    },
    /// `RCPT TO` passed the server's checks (sequence, parameters,
    /// recipient limit). Answer `accept` (`250 2.1.5`) or reply 2xx, 4xx or
    /// 5xx. Only accepted (2xx) recipients count.
    Rcpt {
        /// The forward-path.
        to: ForwardPath<'a>,
        /// The ESMTP parameters.
        params: RcptParameters<'a>,
    },
    /// The client wants to send the message (`DATA`, or the first `BDAT` of
    /// the transaction). Answer `accept` (`354` for DATA; nothing for BDAT,
    /// whose chunk follows at once) or reply 4xx/5xx to refuse; a refused
    /// BDAT chunk is still read and discarded, and the transaction ends.
    DataStart {
        /// DATA or BDAT.
        mode: BodyMode,
        /// The transaction's envelope: reverse-path, MAIL parameters and
        /// the accepted recipients.
        envelope: Envelope<'a>,
    },
    /// A piece of message content, unstuffed (fact). Pieces arrive in
    /// order; their boundaries mean nothing.
    Body(&'a [u8]),
    /// The message is complete. Answer with the final reply (`accept`:
    /// `250 2.0.0`); in LMTP with one answer per accepted recipient, in
    /// the order they were accepted (RFC 2033 §4.2).
    MessageEnd {
        /// Octets of content (after unstuffing).
        size: u64,
        /// Answers expected: 1 in SMTP, the accepted recipients in LMTP.
        replies: usize,
        /// The message's envelope: reverse-path, MAIL parameters and the
        /// accepted recipients (in LMTP, in the order of the answers).
        envelope: Envelope<'a>,
    },
    /// A transaction was dropped without a final reply from the
    /// application (fact).
    Reset {
        /// Why.
        reason: ResetReason,
        /// The envelope of the dropped transaction (a refused message's
        /// too).
        envelope: Envelope<'a>,
    },
    /// `AUTH` with a mechanism the server passes through (anything but
    /// PLAIN and LOGIN). Answer [`auth_challenge`](super::Server::auth_challenge),
    /// [`auth_success`](super::Server::auth_success) or `reply` 4xx/5xx
    /// (e.g. `535 5.7.8`).
    Auth {
        /// The mechanism, as offered.
        mechanism: Mechanism<'a>,
        /// The initial response, borrowed from the command line (decode it
        /// with [`InitialResponse::decode_into`]); `Some(empty)` for `=`.
        initial_response: Option<InitialResponse<'a>>,
    },
    /// The client's (decoded) answer to a challenge. Answer as for
    /// [`Event::Auth`].
    AuthResponse(Secret<&'a [u8]>),
    /// `AUTH PLAIN` credentials, decoded (RFC 4616). Answer `auth_success`
    /// or reply 4xx/5xx.
    AuthPlain {
        /// The authorization identity, if the client asked for one.
        authzid: Option<&'a str>,
        /// The authentication identity (user name).
        authcid: &'a str,
        /// The password.
        password: Secret<&'a str>,
    },
    /// `AUTH LOGIN` credentials, decoded. Answer `auth_success` or reply
    /// 4xx/5xx.
    AuthLogin {
        /// The user name.
        username: &'a str,
        /// The password.
        password: Secret<&'a str>,
    },
    /// `VRFY` (RFC 5321 §3.5). Answer `accept` (`252 2.1.5`, "cannot VRFY
    /// user, but will accept message") or reply 2xx/4xx/5xx.
    Vrfy {
        /// The user or mailbox to verify, as sent.
        target: Argument<'a>,
    },
    /// `EXPN` (RFC 5321 §3.5). Answer as for [`Event::Vrfy`].
    Expn {
        /// The list to expand, as sent.
        list: Argument<'a>,
    },
    /// The TLS handshake completed; everything learned before it was
    /// forgotten (fact, RFC 3207 §4.2). Under implicit TLS it comes first,
    /// once the handshake is done and the greeting is queued.
    TlsEstablished,
    /// The session is over (fact, sent once). The transport closes the
    /// connection.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

impl Event<'_> {
    /// Whether the server waits for an application answer to this event
    /// before it reads another command.
    pub fn needs_answer(&self) -> bool {
        matches!(
            self,
            Self::Mail { .. }
                | Self::Rcpt { .. }
                | Self::DataStart { .. }
                | Self::MessageEnd { .. }
                | Self::Auth { .. }
                | Self::AuthResponse(_)
                | Self::AuthPlain { .. }
                | Self::AuthLogin { .. }
                | Self::Vrfy { .. }
                | Self::Expn { .. }
        )
    }
}
