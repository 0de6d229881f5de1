//! Every state of a server session, in one place (h11's rule 1).
//!
//! The session is a closed enum, [`State`], moved by value from one state to
//! the next: a transaction is a [`Transaction`] *inside* the state, not a set
//! of flags beside it, so leaving the transaction (RSET, EHLO, a final
//! reply, a refused message, STARTTLS) drops every part of it at once —
//! there is no field a reset could forget (the 2026 Postfix fixes for
//! "state not reset after an error" were all that bug).
//!
//! Orthogonal to the state is the question the application has not yet
//! answered ([`Awaiting`]); while it is open the server reads nothing.
//! See the [module docs](super) for the diagram.

use std::ops::Range;

use crate::command::Body;
use crate::data::{BdatChunk, DotUnstuffer, LineEndingCheck, LineEndingNormalizer};
use crate::reply::Reply;
use crate::session::BodyMode;
use crate::time::TimerKind;

use super::event::{CloseReason, ResetReason};
use super::replies::Canned;

/// Progress of a BDAT transfer inside a transaction.
#[derive(Debug, Clone)]
pub(crate) struct Chunking {
    /// Octets handed out so far (after any normalization).
    pub(crate) octets: u64,
    /// Bare CR / LF and NUL counts over the chunks so far, as received:
    /// under `BareLineEnding::Reject` a 7BIT/8BITMIME message with any is
    /// refused after its LAST chunk (counted chunks cannot be cut short,
    /// but the message may be relayed with DATA later).
    pub(crate) check: LineEndingCheck,
    /// Whether chunks are normalized as they are handed out
    /// (`BareLineEnding::Normalize`, body not BINARYMIME).
    pub(crate) normalize: bool,
    /// The normalizer's state across chunks.
    pub(crate) normalizer: LineEndingNormalizer,
}

impl Chunking {
    /// The progress of a transfer that starts now.
    pub(crate) fn new(normalize: bool) -> Self {
        Self {
            octets: 0,
            check: LineEndingCheck::new(),
            normalize,
            normalizer: LineEndingNormalizer::new(),
        }
    }
}

/// One mail transaction, from an accepted `MAIL` to its final reply: what
/// the session's checks need. The addresses themselves are kept apart, in
/// the session's [`EnvelopeLines`](super::envelope::EnvelopeLines), a
/// buffer reused from one transaction to the next.
#[derive(Debug, Clone)]
pub(crate) struct Transaction {
    /// The MAIL command carried `SMTPUTF8` (RFC 6531 §3.4).
    pub(crate) smtputf8: bool,
    /// The declared `BODY=` (RFC 6152, RFC 3030 §3).
    pub(crate) body: Option<Body>,
    /// RCPT commands the application saw.
    pub(crate) rcpt_attempts: usize,
    /// RCPT commands the application accepted.
    pub(crate) recipients: usize,
    /// `Some` once a BDAT chunk was accepted: DATA is then refused (RFC
    /// 3030 §2) and further chunks add to the count.
    pub(crate) chunking: Option<Chunking>,
}

impl Transaction {
    /// A new transaction.
    pub(crate) fn new(smtputf8: bool, body: Option<Body>) -> Self {
        Self {
            smtputf8,
            body,
            rcpt_attempts: 0,
            recipients: 0,
            chunking: None,
        }
    }
}

/// One step of a SASL exchange the server runs (reading a response line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SaslStep {
    /// PLAIN: the client's message, after `334 `.
    Plain,
    /// LOGIN: the user name, after `334 VXNlcm5hbWU6`.
    LoginUser,
    /// LOGIN: the password, after `334 UGFzc3dvcmQ6`; the decoded user
    /// name is at the front of the SASL buffer.
    LoginPassword {
        /// Length of the user name in the SASL buffer.
        user_len: usize,
    },
    /// Any other mechanism: the response to the application's challenge.
    Relay,
}

/// Where the session stands.
#[derive(Debug)]
pub(crate) enum State {
    /// Reading command lines; `Some` inside a transaction.
    Command(Option<Transaction>),
    /// Reading `DATA` content after `354`.
    Data {
        /// The transaction.
        envelope: Transaction,
        /// The end-of-data automaton.
        unstuffer: DotUnstuffer,
        /// The content passed the size limit: it is read and dropped.
        too_big: bool,
    },
    /// Reading the octets of a `BDAT` chunk.
    Chunk {
        /// The transaction; `None` when the chunk is read only to be
        /// discarded (refused BDAT: RFC 3030 §2 still requires reading it).
        envelope: Option<Transaction>,
        /// Octets still owed.
        chunk: BdatChunk,
        /// Octets announced.
        size: u64,
        /// `BDAT ... LAST`.
        last: bool,
        /// What to answer once the chunk is consumed.
        verdict: ChunkVerdict,
    },
    /// Reading one SASL response line.
    Sasl(SaslStep),
    /// `220` to STARTTLS queued (or, under implicit TLS, the session just
    /// started); `Output::StartTls` once everything queued is written.
    StartTls,
    /// `Output::StartTls` given; waiting for the handshake.
    Handshake,
    /// Flushing the last replies; then `Event::Closed`. The reason is the
    /// first one recorded (`Server::close_reason` keeps it after `Closed`).
    Closing(CloseReason),
    /// `Event::Closed` delivered.
    Closed,
}

/// The answer a BDAT chunk gets once its octets are consumed.
#[derive(Debug)]
pub(crate) enum ChunkVerdict {
    /// The chunk is part of an accepted transfer.
    Accept,
    /// Refused by the server before the chunk arrived (a client error,
    /// counted); the reply follows the chunk.
    Refuse(Canned),
    /// Refused by the application; its reply follows the chunk.
    Declined(Reply<'static>),
}

impl State {
    /// Whether the peer is expected to send something now (a command, a
    /// SASL response or content): the idle timer runs.
    pub(crate) fn reads_peer(&self) -> bool {
        matches!(
            self,
            Self::Command(_) | Self::Data { .. } | Self::Chunk { .. } | Self::Sasl(_)
        )
    }

    /// Whether the state reads message content.
    pub(crate) fn in_content(&self) -> bool {
        matches!(self, Self::Data { .. } | Self::Chunk { .. })
    }

    /// The open transaction, if any.
    pub(crate) fn envelope(&self) -> Option<&Transaction> {
        match self {
            Self::Command(envelope) => envelope.as_ref(),
            Self::Data { envelope, .. } => Some(envelope),
            Self::Chunk { envelope, .. } => envelope.as_ref(),
            _ => None,
        }
    }
}

/// A question put to the application and not yet answered.
#[derive(Debug)]
pub(crate) enum Awaiting {
    /// `MAIL`: the envelope to open if accepted.
    Mail(Transaction),
    /// `RCPT`.
    Rcpt,
    /// `DATA` or the first `BDAT`.
    DataStart(BodyStart),
    /// The final reply(ies) to a message.
    MessageEnd {
        /// Replies still owed (LMTP: one per accepted recipient).
        remaining: usize,
    },
    /// A mechanism the application runs: challenge, success or failure.
    Auth,
    /// Decoded PLAIN/LOGIN credentials: success or failure.
    AuthCredentials,
    /// `VRFY` or `EXPN`.
    Verify,
}

/// What a `DataStart` question opens when accepted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BodyStart {
    /// DATA: `354` and the unstuffer.
    Data,
    /// The first BDAT: its chunk.
    Bdat {
        /// Announced octets.
        size: u64,
        /// `LAST`.
        last: bool,
    },
}

impl BodyStart {
    /// The mode reported to the application.
    pub(crate) fn mode(self) -> BodyMode {
        match self {
            Self::Data => BodyMode::Data,
            Self::Bdat { .. } => BodyMode::Bdat,
        }
    }
}

/// An event waiting to be rendered from the server's buffers (see
/// `Server::render`): positions, not borrows, so the state machine can run
/// between finding an event and handing it out.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    /// A command line at the front of the input buffer (`len` bytes without
    /// CRLF) whose event is built by parsing it again.
    Command {
        /// Line length without CRLF.
        len: usize,
    },
    /// `DATA` or the first `BDAT` of a transaction.
    DataStart(BodyMode),
    /// A body piece at the front of the input buffer.
    Body {
        /// Its length.
        len: usize,
    },
    /// The SASL buffer holds a relayed response.
    AuthResponse,
    /// The SASL buffer holds a PLAIN message.
    AuthPlain {
        /// The authorization identity, if any.
        authzid: Option<Range<usize>>,
        /// The authentication identity.
        authcid: Range<usize>,
        /// The password.
        password: Range<usize>,
    },
    /// The SASL buffer holds LOGIN credentials.
    AuthLogin {
        /// Length of the user name at the front.
        user_len: usize,
    },
    /// The message is complete.
    MessageEnd {
        /// Content octets.
        size: u64,
        /// Replies expected.
        replies: usize,
    },
    /// A fact owned by the server.
    Fact(Fact),
}

/// Facts the server queues while it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fact {
    /// A transaction was dropped.
    Reset(ResetReason),
    /// The handshake completed.
    TlsEstablished,
}

/// The server's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Waiting for the peer (command, SASL line, content).
    Idle,
    /// Waiting for the transport to take queued replies.
    Send,
    /// Waiting for the TLS handshake.
    Handshake,
    /// Holding replies back after too many errors.
    ErrorDelay,
    /// Holding the greeting back ([`Config::greeting_delay`](super::Config::greeting_delay)).
    Greeting,
}

impl TimerKind for Timer {
    const ALL: &'static [Self] = &[
        Self::ErrorDelay,
        Self::Send,
        Self::Handshake,
        Self::Idle,
        Self::Greeting,
    ];

    fn slot(self) -> usize {
        self as usize
    }
}

/// Number of [`Timer`] kinds.
pub(crate) const TIMERS: usize = 5;
