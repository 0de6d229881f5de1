//! Every state of the client session, in one place (h11's "rule 1").
//!
//! Two enums, because two things move independently:
//!
//! - [`State`]: the connection — greeting, hello, STARTTLS, AUTH, ready,
//!   quitting, closed. The session drives it by itself from its
//!   [`Config`](super::Config).
//! - [`TxPhase`]: the mail transaction inside [`State::Ready`] — the
//!   application drives it with `enqueue`, `start_body`, `write_body` and
//!   `finish_body`, and the replies move it on.
//!
//! The diagrams are in the [`client`](super) module docs.

use super::auth;
use super::body::BodySink;

/// The connection state.
#[derive(Debug)]
pub(crate) enum State {
    /// Waiting for the `220` greeting.
    Greeting,
    /// EHLO or LHLO sent.
    Hello,
    /// HELO sent after EHLO was refused with `500`/`502`.
    Helo,
    /// STARTTLS sent.
    StartTls,
    /// STARTTLS accepted: the transport runs the handshake.
    Handshake,
    /// AUTH exchange running.
    Auth(auth::Exchange),
    /// Setup done: transactions may run.
    Ready,
    /// QUIT sent (by the application or after a failure).
    Quitting,
    /// The session is over.
    Closed,
}

/// Where the mail transaction stands, from the client's side: what was
/// enqueued, corrected by the replies that arrived.
#[derive(Debug, Default)]
pub(crate) enum TxPhase {
    /// No transaction.
    #[default]
    Idle,
    /// MAIL enqueued (and not refused): RCPT, DATA, RSET may follow.
    Open,
    /// DATA enqueued: nothing may follow until its `354`.
    AwaitingData,
    /// The body is being written.
    Body(BodySink),
    /// The body has ended: waiting for the reply (or, under LMTP, one reply
    /// per accepted recipient).
    AwaitingFinal,
}

/// What the client knows about the current transaction.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    /// Which transaction this is (replies carry the id of the transaction
    /// their command belonged to, so a late reply to a reset transaction
    /// never counts for the next one).
    pub(crate) id: u64,
    /// The phase.
    pub(crate) phase: TxPhase,
    /// The reply to MAIL: `None` until it arrives.
    pub(crate) mail_accepted: Option<bool>,
    /// RCPT commands enqueued.
    pub(crate) rcpts: usize,
    /// RCPT replies received.
    pub(crate) rcpt_replies: usize,
    /// Indexes of the accepted RCPTs, in order.
    pub(crate) accepted: Vec<usize>,
    /// MAIL carried SMTPUTF8.
    pub(crate) smtputf8: bool,
    /// MAIL carried BODY=BINARYMIME (no line-ending checks, BDAT only).
    pub(crate) binary: bool,
    /// MAIL declared a body that may hold 8-bit octets (BODY=8BITMIME,
    /// BODY=BINARYMIME, or SMTPUTF8).
    pub(crate) eight_bit: bool,
    /// DATA was enqueued or a BDAT body started.
    pub(crate) body_requested: bool,
    /// Line-ending state of the body written so far.
    pub(crate) line_endings: super::body::LineEndings,
}

impl Transaction {
    /// Whether every RCPT has its reply and none was accepted.
    pub(crate) fn all_refused(&self) -> bool {
        self.rcpts > 0 && self.rcpt_replies == self.rcpts && self.accepted.is_empty()
    }

    /// Whether RCPT replies are still outstanding.
    pub(crate) fn rcpt_replies_pending(&self) -> bool {
        self.rcpt_replies < self.rcpts
    }

    /// The phase a transaction falls back to when its body is abandoned:
    /// `Open` (the server still holds the envelope; RSET it) unless MAIL was
    /// refused.
    pub(crate) fn fallback(&self) -> TxPhase {
        if self.mail_accepted == Some(false) {
            TxPhase::Idle
        } else {
            TxPhase::Open
        }
    }
}
