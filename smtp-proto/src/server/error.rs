//! Misuse of the server API by the application or transport.
//!
//! These are the application's mistakes, never the peer's (h11's split of
//! local and remote errors): the peer's mistakes are answered on the wire
//! and, when fatal, end in [`Event::Closed`](super::Event::Closed). A call
//! that returns a `UsageError` changed nothing. The transport's mistakes
//! (a write report over what was offered, a handshake nobody asked for)
//! are a [`DriveError`](crate::DriveError), shared with the client.

use thiserror::Error;

use crate::reply::ReplyCode;

/// What the server was waiting for when an answer did not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Question {
    /// An answer to `MAIL`.
    Mail,
    /// An answer to `RCPT`.
    Rcpt,
    /// An answer to `DATA`.
    Data,
    /// An answer to the first `BDAT` of a transaction.
    Bdat,
    /// A final reply to a message.
    MessageEnd,
    /// The next step of a SASL exchange for a mechanism the application
    /// runs itself.
    Auth,
    /// The verdict on decoded PLAIN or LOGIN credentials.
    AuthCredentials,
    /// An answer to `VRFY` or `EXPN`.
    Verify,
}

/// A call the server cannot honour in its current state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// No event is waiting for an answer.
    #[error("no question is waiting for an answer")]
    NothingToAnswer,
    /// The reply code does not fit the question (e.g. `354` to `RCPT`).
    #[error("reply code {code} does not answer {question:?}")]
    WrongReplyCode {
        /// The code given.
        code: ReplyCode,
        /// What was asked.
        question: Question,
    },
    /// This kind of answer does not fit the question (e.g. a SASL challenge
    /// to `MAIL`).
    #[error("this answer does not fit {question:?}")]
    WrongAnswer {
        /// What was asked.
        question: Question,
    },
    /// A SASL challenge longer than an AUTH line can carry (RFC 4954 §4).
    #[error("SASL challenge of {len} bytes does not fit one AUTH line")]
    ChallengeTooLong {
        /// The challenge length before base64.
        len: usize,
    },
    /// The session is closed.
    #[error("the session is closed")]
    Closed,
}
