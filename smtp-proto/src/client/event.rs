//! What the client session tells its application: events, session errors
//! and usage errors.
//!
//! Three kinds, kept apart on purpose (h11's local/remote split):
//!
//! - [`Event`]s are facts. A `550` to RCPT is an [`Event::Reply`] like a
//!   `250`: negative replies are data, and partial success (some recipients
//!   accepted) is only expressible that way.
//! - [`Error`] is for a broken session: the server violated the protocol, a
//!   timer fired, the connection dropped, a TLS or AUTH requirement could not
//!   be met. It is reported once, as [`Event::Error`], and sticks
//!   ([`Client::error`](super::Client::error)).
//! - [`UsageError`] is the application's mistake (RCPT before MAIL, a body
//!   chunk when no body is due). It is returned by the call that made it and
//!   changes nothing.

use thiserror::Error;

use crate::keyword::Mechanism;
use crate::reply::{Reply, ReplyError};
use crate::secret::Secret;

/// Something the application must see. Drain them with `poll(now)`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete reply from the server, with what it answers. Every reply
    /// is reported, in order: the greeting, the setup exchanges the session
    /// runs by itself (EHLO, STARTTLS, AUTH) and every command the
    /// application enqueued, exactly one event per expected reply.
    Reply {
        /// What the reply answers.
        to: ReplyTo,
        /// The reply, with its code, enhanced status code and text.
        reply: Reply<'static>,
    },
    /// Connection setup (greeting, EHLO, STARTTLS, AUTH) is complete: the
    /// application may enqueue transactions now. Reported once.
    Ready,
    /// AUTH succeeded (`235`) with this mechanism.
    Authenticated {
        /// The mechanism that was used.
        mechanism: Mechanism<'static>,
    },
    /// A `334` challenge for an application-driven SASL mechanism
    /// ([`Credentials::Sasl`](super::Credentials::Sasl)). Answer with
    /// [`Client::auth_respond`](super::Client::auth_respond) or
    /// [`Client::auth_cancel`](super::Client::auth_cancel).
    AuthChallenge {
        /// The mechanism being run.
        mechanism: Mechanism<'static>,
        /// The challenge, base64-decoded (empty for `334 ` without text).
        challenge: Secret<Vec<u8>>,
    },
    /// The message body may be written now (`write_body`, then
    /// `finish_body`): after a `354` to DATA, or at once when the body goes
    /// out with BDAT.
    ReadyForBody,
    /// Every RCPT of the transaction was refused, so no body will be sent:
    /// a pending body is cancelled and `write_body` is refused. Under BDAT
    /// no chunk has left; under DATA the DATA reply follows as usual.
    NoValidRecipients,
    /// The mail transaction is over: every reply it will get has been
    /// reported. It ended with the reply (or replies) to the end of data,
    /// a refused DATA, a refused BDAT chunk, or no accepted recipient.
    /// [`Client::transaction_phase`](super::Client::transaction_phase) is
    /// now `Idle`, or `Open` when the server may still hold the envelope
    /// (RSET it before the next MAIL).
    TransactionEnded,
    /// The session failed; no more commands will be sent. [`Event::Closed`]
    /// follows once any final bytes (a `QUIT`) have been written.
    Error(Error),
    /// The session is over: close the connection. Nothing follows.
    Closed,
}

/// Why a client session ends: recorded when closing starts and readable
/// through [`Client::close_reason`](super::Client::close_reason) from then
/// on; the first reason sticks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The normal end: the application enqueued `QUIT` (the server's `221`,
    /// its closing the connection, or no answer within the timeout all end
    /// the session then). A failure while quitting is still reported as
    /// [`Event::Error`] and by [`Client::error`](super::Client::error).
    Quit,
    /// The session failed (the same error as [`Event::Error`]); a `QUIT`
    /// may still be written when the stream is in sync.
    Error(Error),
}

/// What a reply answers: a command, the greeting, or the end of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplyTo {
    /// The connection greeting (RFC 5321 §3.1).
    Greeting,
    /// `EHLO` (sent by the session).
    Ehlo,
    /// `HELO`, the fallback after EHLO got `500`/`502` (sent by the session).
    Helo,
    /// `LHLO` (LMTP, sent by the session).
    Lhlo,
    /// `STARTTLS` (sent by the session).
    StartTls,
    /// `AUTH` and each SASL response line (sent by the session).
    Auth,
    /// `MAIL FROM`.
    Mail,
    /// `RCPT TO`, the `index`-th of the transaction (from 0).
    Rcpt {
        /// Position of the RCPT in the transaction, in enqueue order.
        index: usize,
    },
    /// `DATA` (a `354` means: send the body).
    Data,
    /// A `BDAT` chunk that is not the last.
    Bdat,
    /// The end of the body: the `.` after DATA, or `BDAT … LAST`. Its reply
    /// says whether the message was accepted (the text usually carries the
    /// queue id).
    EndOfData {
        /// LMTP only: which accepted recipient this reply is for (the
        /// RCPT's `index`); RFC 2033 §4.2 sends one reply per accepted
        /// recipient, in RCPT order. `None` under SMTP.
        recipient: Option<usize>,
    },
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `VRFY`.
    Vrfy,
    /// `EXPN`.
    Expn,
    /// `HELP`.
    Help,
    /// `QUIT`.
    Quit,
}

/// Why a session failed. Reported once as [`Event::Error`]; the session
/// then closes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The server sent bytes that are not a valid reply (no code, mixed
    /// codes in a multi-line reply, too many lines, …).
    #[error("invalid reply from server: {0}")]
    InvalidReply(ReplyError),
    /// A reply line longer than the configured limit.
    #[error("reply line longer than {max} bytes")]
    ReplyLineTooLong {
        /// The limit, CRLF included.
        max: usize,
    },
    /// A reply arrived when none was due.
    #[error("unexpected reply from server: {}", .0.code())]
    UnexpectedReply(Reply<'static>),
    /// The greeting was not `220` (RFC 5321 §3.1: `554` means "no SMTP
    /// service here"; the session sends QUIT).
    #[error("server refused the session: {}", .0.code())]
    GreetingRejected(Reply<'static>),
    /// A `421`: the server is closing the connection (RFC 5321 §3.8).
    #[error("server is closing the connection: {}", .0.code())]
    ServiceNotAvailable(Reply<'static>),
    /// EHLO, HELO or LHLO was refused.
    #[error("server refused the client's hello: {}", .0.code())]
    HelloRejected(Reply<'static>),
    /// TLS is required but the server does not offer STARTTLS.
    #[error("TLS required but STARTTLS is not offered")]
    StartTlsNotOffered,
    /// TLS is required but STARTTLS was refused.
    #[error("TLS required but STARTTLS was refused: {}", .0.code())]
    StartTlsRefused(Reply<'static>),
    /// Bytes followed the `220` to STARTTLS before the handshake: injected
    /// plaintext (response injection). They were discarded unread.
    #[error("{bytes} bytes of plaintext followed the STARTTLS reply (response injection)")]
    StartTlsInjection {
        /// How many bytes were discarded (at least).
        bytes: usize,
    },
    /// AUTH is configured but the server offers no mechanism the
    /// credentials support.
    #[error("no offered AUTH mechanism matches the configured credentials")]
    AuthNotAvailable,
    /// AUTH is configured, but the session is not encrypted and plaintext
    /// AUTH is not allowed.
    #[error("AUTH refused over an unencrypted connection")]
    AuthRequiresTls,
    /// The server refused the credentials, or the exchange failed.
    #[error("authentication failed: {}", .0.code())]
    AuthFailed(Reply<'static>),
    /// The application cancelled the SASL exchange.
    #[error("authentication cancelled by the application")]
    AuthCancelled,
    /// The server answered DATA with `354` although no recipient was
    /// accepted; the session closes instead of sending a body.
    #[error("server accepted DATA without any accepted recipient")]
    DataWithoutRecipients,
    /// A timer fired.
    #[error("timed out waiting for {0}")]
    Timeout(Waiting),
    /// The connection closed while a reply was due or in the middle of one.
    /// A partial reply is never taken for a reply.
    #[error("connection closed by server{}", if *.partial_reply { " in the middle of a reply" } else { "" })]
    ConnectionClosed {
        /// Whether part of a reply had arrived.
        partial_reply: bool,
    },
}

/// What the session was waiting for when a timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Waiting {
    /// A reply.
    Reply(ReplyTo),
    /// The socket to take pending bytes (RFC 5321 §4.5.3.2.5).
    Write,
    /// The transport to finish the TLS handshake.
    TlsHandshake,
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reply(to) => write!(f, "the reply to {to:?}"),
            Self::Write => f.write_str("the connection to take data"),
            Self::TlsHandshake => f.write_str("the TLS handshake"),
        }
    }
}

/// The application asked for something the session cannot do now. Nothing
/// was changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// Connection setup (greeting, EHLO, STARTTLS, AUTH) is not finished;
    /// wait for [`Event::Ready`].
    #[error("session not ready yet")]
    NotReady,
    /// The session has ended (QUIT was enqueued, or it failed).
    #[error("session is closed or closing")]
    Closed,
    /// The session runs this command itself (EHLO, HELO, LHLO, STARTTLS,
    /// AUTH), or it goes through the body API (BDAT).
    #[error("{0} is not enqueued by the application")]
    NotEnqueueable(&'static str),
    /// MAIL while a transaction is open (RFC 5321 §4.1.1.2: no nested MAIL;
    /// RSET first).
    #[error("a mail transaction is already open")]
    TransactionOpen,
    /// RCPT or a body without MAIL.
    #[error("no mail transaction is open")]
    NoTransaction,
    /// DATA or a body without any RCPT.
    #[error("no recipient was given")]
    NoRecipients,
    /// A reply must arrive first: nothing may follow DATA before its `354`,
    /// or the end of data before its reply (RFC 2920 §3.1).
    #[error("waiting for the reply to {0:?}")]
    AwaitingReply(ReplyTo),
    /// A body is being written: only `write_body` and `finish_body` are
    /// possible until it ends.
    #[error("a message body is in progress")]
    BodyInProgress,
    /// No body is due now.
    #[error("no message body is due")]
    NoBodyDue,
    /// A MAIL or RCPT parameter needs an extension the server did not offer
    /// (for example `SIZE`, `8BITMIME`, `SMTPUTF8`, `DSN`, `REQUIRETLS`).
    #[error("the server does not offer {0}")]
    ExtensionNotOffered(&'static str),
    /// The declared size is over the server's SIZE limit (RFC 1870 §6).
    #[error("message of {size} octets exceeds the server's limit of {limit}")]
    MessageTooLarge {
        /// The declared size.
        size: u64,
        /// The server's advertised limit.
        limit: u64,
    },
    /// A non-ASCII address without the SMTPUTF8 parameter on MAIL
    /// (RFC 6531 §3.4).
    #[error("a non-ASCII address needs the SMTPUTF8 parameter on MAIL")]
    NeedsSmtpUtf8,
    /// The body chunk has a bare CR or LF at `offset` (of the chunk; for
    /// `finish_body`, the body ended in a CR) and the policy is
    /// [`BareLineEnding::Reject`](crate::data::BareLineEnding::Reject).
    /// Nothing of the chunk was taken: normalize it and write it again.
    #[error("bare CR or LF in the message body at offset {offset} of the chunk")]
    BareLineEnding {
        /// Offset of the offending byte in the chunk.
        offset: usize,
    },
    /// The body chunk has a NUL at `offset` and the body is not
    /// `BODY=BINARYMIME`: 7bit and 8bit data hold no NUL (RFC 2045
    /// §2.7–2.8), and a hop that strips NULs could see an end of data in
    /// `CRLF NUL . CRLF`. Refused under every policy; nothing of the chunk
    /// was taken.
    #[error(
        "NUL in the message body at offset {offset} of the chunk (not allowed in a 7bit or 8bit body)"
    )]
    NulOctet {
        /// Offset of the NUL in the chunk.
        offset: usize,
    },
    /// The body chunk has an octet above 127 at `offset`, but MAIL declared
    /// neither `BODY=8BITMIME` (RFC 6152) nor `BINARYMIME` nor `SMTPUTF8`:
    /// the content must be 7-bit (RFC 5321 §2.4). Nothing was taken.
    #[error("8-bit octet at offset {offset} of the chunk in a 7-bit message")]
    EightBitData {
        /// Offset of the octet in the chunk.
        offset: usize,
    },
    /// `auth_respond` or `auth_cancel` without a pending challenge.
    #[error("no SASL challenge is pending")]
    NoChallenge,
}
