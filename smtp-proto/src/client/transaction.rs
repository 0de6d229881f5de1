//! The application's side: enqueued commands, the message body, and the
//! replies that move a mail transaction on (see the diagram in `state.rs`).
//!
//! Sequencing is checked against what was *enqueued*, corrected by replies
//! as they arrive, so a pipelining application gets the same answers as a
//! lock-step one: RCPT needs an open MAIL, DATA needs a RCPT, nothing may
//! follow DATA until its `354` or the end of data until its reply, and MAIL
//! parameters need the extensions that define them.

use super::body::{self, BodySink};
use super::event::{Event, ReplyTo, UsageError};
use super::state::{State, TxPhase};
use super::{BodyMode, BodyTransfer, Client, PendingKind};
use crate::command::{Body, Command, MailParameters, RcptParameters};
use crate::data::DotStuffer;
use crate::reply::Reply;

impl Client {
    /// Enqueues a command of a mail transaction, or RSET, NOOP, VRFY, EXPN,
    /// HELP, QUIT. It is written as soon as the pipelining rules allow, and
    /// its reply comes back as one [`Event::Reply`].
    ///
    /// EHLO, HELO, LHLO, STARTTLS and AUTH are the session's own business
    /// (from its [`Config`](super::Config)); BDAT goes through
    /// [`Client::start_body`]. `Command::Data` is the same as `start_body`
    /// with DATA forced.
    ///
    /// # Errors
    ///
    /// A [`UsageError`] if the command cannot be sent now; nothing changes.
    pub fn enqueue(&mut self, command: Command<'_>) -> Result<(), UsageError> {
        self.check_can_enqueue()?;
        let to = match &command {
            Command::Mail { from, params } => {
                if !matches!(self.tx.phase, TxPhase::Idle) {
                    return Err(UsageError::TransactionOpen);
                }
                self.check_mail_params(params)?;
                if from.is_utf8() && !params.smtputf8 {
                    return Err(UsageError::NeedsSmtpUtf8);
                }
                ReplyTo::Mail
            }
            Command::Rcpt { to, params } => {
                if !matches!(self.tx.phase, TxPhase::Open) {
                    return Err(UsageError::NoTransaction);
                }
                self.check_rcpt_params(params)?;
                if to.is_utf8() && !self.tx.smtputf8 {
                    return Err(UsageError::NeedsSmtpUtf8);
                }
                ReplyTo::Rcpt {
                    index: self.tx.rcpts,
                }
            }
            Command::Data => {
                self.start_body_with(BodyMode::Data)?;
                return Ok(());
            }
            Command::Rset => ReplyTo::Rset,
            Command::Noop { .. } => ReplyTo::Noop,
            Command::Vrfy { .. } => ReplyTo::Vrfy,
            Command::Expn { .. } => ReplyTo::Expn,
            Command::Help { .. } => ReplyTo::Help,
            Command::Quit => ReplyTo::Quit,
            Command::Bdat { .. } => return Err(UsageError::NotEnqueueable("BDAT")),
            other => return Err(UsageError::NotEnqueueable(other.verb())),
        };
        // Checks passed: commit.
        match &command {
            Command::Mail { params, .. } => {
                self.tx = super::state::Transaction {
                    id: self.next_tx_id(),
                    accepted: self.recycled_accepted(),
                    phase: TxPhase::Open,
                    smtputf8: params.smtputf8,
                    binary: params.body == Some(Body::BinaryMime),
                    eight_bit: params.smtputf8
                        || matches!(params.body, Some(Body::EightBitMime | Body::BinaryMime)),
                    ..Default::default()
                };
            }
            Command::Rcpt { .. } => self.tx.rcpts += 1,
            // RFC 5321 §4.1.1.5: RSET aborts the transaction.
            Command::Rset => self.reset_transaction(),
            Command::Quit => {
                self.state = State::Quitting;
                self.close_reason.get_or_insert(super::CloseReason::Quit);
            }
            _ => {}
        }
        // Encoded straight into the queue's buffer: no allocation per
        // command.
        self.pending
            .push(PendingKind::Command(to), self.tx.id, |out| {
                command.encode(out)
            });
        self.flush_pending();
        Ok(())
    }

    fn next_tx_id(&mut self) -> u64 {
        self.tx_seq += 1;
        self.tx_seq
    }

    /// No transaction (a fresh id, so late replies to the old one are not
    /// counted).
    fn reset_transaction(&mut self) {
        self.tx = super::state::Transaction {
            id: self.next_tx_id(),
            accepted: self.recycled_accepted(),
            ..Default::default()
        };
    }

    /// The old transaction's list of accepted recipients, emptied: its
    /// allocation serves the next transaction, so a steady stream of
    /// transactions allocates nothing per reply.
    fn recycled_accepted(&mut self) -> Vec<usize> {
        let mut accepted = std::mem::take(&mut self.tx.accepted);
        accepted.clear();
        accepted
    }

    /// Starts the body of the current transaction, with BDAT when the
    /// server offers CHUNKING and the configuration prefers it, else with
    /// DATA. Under BDAT the body may be written at once
    /// ([`Event::ReadyForBody`] is queued); under DATA after the `354`.
    ///
    /// # Errors
    ///
    /// [`UsageError::NoTransaction`] without MAIL, [`UsageError::NoRecipients`]
    /// without a RCPT (or when every RCPT was already refused), and the
    /// errors of [`Client::enqueue`].
    pub fn start_body(&mut self) -> Result<BodyMode, UsageError> {
        let chunking = self
            .extensions
            .as_ref()
            .is_some_and(|e| e.supports_chunking());
        let mode = if chunking && self.config.body_transfer == BodyTransfer::PreferBdat {
            BodyMode::Bdat
        } else {
            BodyMode::Data
        };
        self.start_body_with(mode)?;
        Ok(mode)
    }

    fn start_body_with(&mut self, mode: BodyMode) -> Result<(), UsageError> {
        self.check_can_enqueue()?;
        if !matches!(self.tx.phase, TxPhase::Open) {
            return Err(UsageError::NoTransaction);
        }
        if self.tx.rcpts == 0 || self.tx.all_refused() {
            return Err(UsageError::NoRecipients);
        }
        if self.tx.binary && mode == BodyMode::Data {
            // RFC 3030 §3: BINARYMIME only with BDAT.
            return Err(UsageError::ExtensionNotOffered("CHUNKING"));
        }
        self.tx.body_requested = true;
        self.tx.line_endings = body::LineEndings::default();
        match mode {
            BodyMode::Data => {
                self.tx.phase = TxPhase::AwaitingData;
                self.pending
                    .push(PendingKind::Command(ReplyTo::Data), self.tx.id, |out| {
                        Command::Data.encode(out);
                    });
                self.flush_pending();
            }
            BodyMode::Bdat => {
                self.tx.phase = TxPhase::Body(BodySink::Bdat { chunk: Vec::new() });
                self.events.push_back(Event::ReadyForBody);
            }
        }
        Ok(())
    }

    /// Writes the next piece of the message body and returns how many bytes
    /// of `chunk` were taken (possibly 0: the buffer is full). Offer the
    /// rest again once [`Client::wants_body`] is true — after the transport
    /// wrote something (`advance_transmit`) or, under BDAT without
    /// PIPELINING, after a chunk's reply. The body is never held whole:
    /// at most `body_buffer` bytes (see [`Config`](super::Config)) wait in
    /// the session.
    ///
    /// # Errors
    ///
    /// [`UsageError::NoBodyDue`] when no body is being written,
    /// [`UsageError::BareLineEnding`] for a bare CR or LF under the
    /// rejecting policy, [`UsageError::NulOctet`] for a NUL in a body that
    /// is not `BINARYMIME` (under every policy), [`UsageError::EightBitData`] for an octet above 127
    /// when MAIL declared a 7-bit body (nothing of the chunk is taken).
    pub fn write_body(&mut self, chunk: &[u8]) -> Result<usize, UsageError> {
        if !matches!(self.tx.phase, TxPhase::Body(_)) || self.is_closed() || self.error.is_some() {
            return Err(UsageError::NoBodyDue);
        }
        if body::rejects(self.config.bare_line_ending)
            && !self.tx.binary
            && let Some(offset) = self.tx.line_endings.find_bare(chunk)
        {
            return Err(UsageError::BareLineEnding { offset });
        }
        if !self.tx.binary
            && let Some(offset) = memchr::memchr(0, chunk)
        {
            // RFC 2045 §2.7–2.8; see `UsageError::NulOctet`.
            return Err(UsageError::NulOctet { offset });
        }
        // `is_ascii` scans a word at a time; the position is looked for
        // only when there is one to find.
        if !self.tx.eight_bit
            && !chunk.is_ascii()
            && let Some(offset) = chunk.iter().position(|&b| b >= 0x80)
        {
            // RFC 6152 §3, RFC 5321 §2.4: without BODY=8BITMIME the content
            // is 7-bit US-ASCII.
            return Err(UsageError::EightBitData { offset });
        }
        let room = self.body_room();
        let take = chunk.len().min(room);
        let Some(piece) = chunk.get(..take) else {
            return Ok(0);
        };
        if piece.is_empty() {
            return Ok(0);
        }
        let normalize = !body::rejects(self.config.bare_line_ending) && !self.tx.binary;
        let chunk_size = self.config.effective_bdat_chunk();
        let TxPhase::Body(sink) = &mut self.tx.phase else {
            return Err(UsageError::NoBodyDue);
        };
        match sink {
            BodySink::Data(stuffer) => {
                if let Err(e) = stuffer.stuff(piece, &mut self.out) {
                    // Unreachable under Reject (checked above) and under
                    // Normalize (the stuffer does not fail); reported
                    // rather than ignored all the same.
                    return Err(match e {
                        crate::data::StuffError::Nul { offset } => UsageError::NulOctet {
                            offset: usize::try_from(offset).unwrap_or(0),
                        },
                        crate::data::StuffError::BareCr { offset }
                        | crate::data::StuffError::BareLf { offset } => {
                            UsageError::BareLineEnding {
                                offset: usize::try_from(offset).unwrap_or(0),
                            }
                        }
                    });
                }
                self.tx.line_endings.take(piece);
            }
            BodySink::Bdat { chunk: buf } => {
                // Fill the chunk being built; seal it whenever it is full.
                let mut rest = piece;
                let mut sealed = Vec::new();
                while !rest.is_empty() {
                    let space = chunk_size.saturating_sub(buf.len()).max(1);
                    let (now, later) = rest.split_at(space.min(rest.len()));
                    if normalize {
                        body::normalize_into(now, &mut self.tx.line_endings, buf);
                    } else {
                        buf.extend_from_slice(now);
                        self.tx.line_endings.take(now);
                    }
                    if buf.len() >= chunk_size {
                        sealed.push(std::mem::take(buf));
                    }
                    rest = later;
                }
                for data in sealed {
                    self.seal_bdat(data, false);
                }
            }
        }
        Ok(take)
    }

    /// Ends the body: the terminator after DATA, or `BDAT <n> LAST`. The
    /// final reply (under LMTP one per accepted recipient) comes back as
    /// [`Event::Reply`] with [`ReplyTo::EndOfData`].
    ///
    /// # Errors
    ///
    /// [`UsageError::NoBodyDue`] when no body is being written,
    /// [`UsageError::BareLineEnding`] when the body ends in a bare CR under
    /// the rejecting policy.
    pub fn finish_body(&mut self) -> Result<(), UsageError> {
        if !matches!(self.tx.phase, TxPhase::Body(_)) || self.is_closed() || self.error.is_some() {
            return Err(UsageError::NoBodyDue);
        }
        if body::rejects(self.config.bare_line_ending)
            && !self.tx.binary
            && self.tx.line_endings.ends_in_cr()
        {
            return Err(UsageError::BareLineEnding { offset: 0 });
        }
        let phase = std::mem::replace(&mut self.tx.phase, TxPhase::AwaitingFinal);
        match phase {
            TxPhase::Body(BodySink::Data(mut stuffer)) => {
                // Checked above: no pending bare CR under Reject; Normalize
                // never fails.
                let _ = stuffer.finish(&mut self.out);
                self.push_final_replies();
            }
            TxPhase::Body(BodySink::Bdat { chunk }) => {
                self.seal_bdat(chunk, true);
                self.flush_pending();
            }
            other => self.tx.phase = other,
        }
        Ok(())
    }

    /// Queues a BDAT chunk (RFC 3030 §2: `BDAT <size> [LAST]` CRLF, then
    /// exactly `size` octets).
    fn seal_bdat(&mut self, data: Vec<u8>, last: bool) {
        let kind = if last {
            PendingKind::BdatLast
        } else {
            PendingKind::Bdat
        };
        self.pending.push(kind, self.tx.id, |out| {
            Command::Bdat {
                size: data.len() as u64,
                last,
            }
            .encode(out);
            out.extend_from_slice(&data);
        });
        self.flush_pending();
    }

    /// Body bytes `write_body` may take now.
    pub(super) fn body_room(&self) -> usize {
        let queued = self.pending.queued_bytes();
        let filling = match &self.tx.phase {
            TxPhase::Body(BodySink::Bdat { chunk }) => chunk.len(),
            _ => 0,
        };
        self.config
            .effective_body_buffer()
            .saturating_sub(self.out.len() + queued + filling)
    }

    /// Whether an application command may be enqueued at all now.
    fn check_can_enqueue(&self) -> Result<(), UsageError> {
        match self.state {
            State::Ready => {}
            State::Quitting | State::Closed => return Err(UsageError::Closed),
            _ if self.error.is_some() => return Err(UsageError::Closed),
            _ => return Err(UsageError::NotReady),
        }
        match self.tx.phase {
            TxPhase::AwaitingData => Err(UsageError::AwaitingReply(ReplyTo::Data)),
            TxPhase::Body(_) => Err(UsageError::BodyInProgress),
            TxPhase::AwaitingFinal => Err(UsageError::AwaitingReply(ReplyTo::EndOfData {
                recipient: None,
            })),
            TxPhase::Idle | TxPhase::Open => Ok(()),
        }
    }

    /// MAIL parameters need the extensions that define them.
    fn check_mail_params(&self, params: &MailParameters<'_>) -> Result<(), UsageError> {
        let ext = self.extensions.as_ref();
        let has = |f: fn(&crate::ehlo::Extensions<'static>) -> bool| ext.is_some_and(f);
        if let Some(size) = params.size {
            if !has(|e| e.supports_size()) {
                return Err(UsageError::ExtensionNotOffered("SIZE"));
            }
            // RFC 1870 §6.1: a client must not send a message larger than
            // the advertised fixed maximum.
            if let Some(limit) = ext.and_then(|e| e.max_size())
                && size > limit
            {
                return Err(UsageError::MessageTooLarge { size, limit });
            }
        }
        match params.body {
            Some(Body::EightBitMime) if !has(|e| e.supports_8bitmime()) => {
                return Err(UsageError::ExtensionNotOffered("8BITMIME"));
            }
            Some(Body::BinaryMime) if !has(|e| e.supports_binarymime()) => {
                return Err(UsageError::ExtensionNotOffered("BINARYMIME"));
            }
            Some(Body::BinaryMime)
                if !has(|e| e.supports_chunking())
                    || self.config.body_transfer != BodyTransfer::PreferBdat =>
            {
                return Err(UsageError::ExtensionNotOffered("CHUNKING"));
            }
            _ => {}
        }
        if params.smtputf8 && !has(|e| e.supports_smtputf8()) {
            return Err(UsageError::ExtensionNotOffered("SMTPUTF8"));
        }
        if (params.ret.is_some() || params.envid.is_some()) && !has(|e| e.supports_dsn()) {
            return Err(UsageError::ExtensionNotOffered("DSN"));
        }
        if params.requiretls && !(self.tls && has(|e| e.supports_requiretls())) {
            // RFC 8689 §4.1: only over TLS, only when offered.
            return Err(UsageError::ExtensionNotOffered("REQUIRETLS"));
        }
        if params.auth().is_some() && !has(|e| e.supports_auth()) {
            return Err(UsageError::ExtensionNotOffered("AUTH"));
        }
        if params.mt_priority().is_some() && !has(|e| e.mt_priority().is_some()) {
            return Err(UsageError::ExtensionNotOffered("MT-PRIORITY"));
        }
        if params.by().is_some() && !has(|e| e.deliver_by().is_some()) {
            return Err(UsageError::ExtensionNotOffered("DELIVERBY"));
        }
        if params.hold().is_some() && !has(|e| e.future_release().is_some()) {
            return Err(UsageError::ExtensionNotOffered("FUTURERELEASE"));
        }
        Ok(())
    }

    /// RCPT parameters need the extensions that define them.
    fn check_rcpt_params(&self, params: &RcptParameters<'_>) -> Result<(), UsageError> {
        let ext = self.extensions.as_ref();
        if (params.notify.is_some() || params.orcpt.is_some())
            && !ext.is_some_and(|e| e.supports_dsn())
        {
            return Err(UsageError::ExtensionNotOffered("DSN"));
        }
        if params.rrvs().is_some() && !ext.is_some_and(|e| e.contains("RRVS")) {
            return Err(UsageError::ExtensionNotOffered("RRVS"));
        }
        Ok(())
    }

    /// A reply to a transaction command (or RSET, NOOP, VRFY, EXPN, HELP).
    pub(super) fn on_transaction_reply(&mut self, to: ReplyTo, reply: &Reply<'static>, tx: u64) {
        if tx != self.tx.id {
            // A late reply to a transaction already reset (RSET, or MAIL
            // refused and a new MAIL enqueued): reported, not counted.
            return;
        }
        let ok = reply.is_positive_completion();
        match to {
            ReplyTo::Mail => {
                self.tx.mail_accepted = Some(ok);
                if !ok && matches!(self.tx.phase, TxPhase::Open) {
                    // No transaction on the server: nothing to RSET. The id
                    // stays, so the replies to pipelined RCPTs still count
                    // for this transaction.
                    self.tx.phase = TxPhase::Idle;
                }
            }
            ReplyTo::Rcpt { index } => {
                self.tx.rcpt_replies += 1;
                if ok {
                    self.tx.accepted.push(index);
                }
                if self.tx.all_refused() && self.tx.body_requested {
                    self.events.push_back(Event::NoValidRecipients);
                    if matches!(self.tx.phase, TxPhase::Body(BodySink::Bdat { .. }))
                        || self.has_pending_bdat()
                    {
                        self.abandon_bdat();
                    }
                }
            }
            ReplyTo::Data => {
                if reply.code() == crate::reply::ReplyCode::START_MAIL_INPUT {
                    if self.tx.accepted.is_empty() {
                        // A broken server: 354 with no recipient. Sending
                        // the body would deliver it nowhere, or worse; the
                        // only way out of DATA is to close.
                        self.fail(super::Error::DataWithoutRecipients, false);
                        return;
                    }
                    self.tx.phase = TxPhase::Body(BodySink::Data(DotStuffer::new(
                        self.config.bare_line_ending,
                    )));
                    self.events.push_back(Event::ReadyForBody);
                } else if matches!(self.tx.phase, TxPhase::AwaitingData) {
                    self.end_body();
                }
            }
            // RFC 3030 §3: after a failed chunk no more BDAT for this
            // transaction.
            ReplyTo::Bdat
                if !ok && matches!(self.tx.phase, TxPhase::Body(_) | TxPhase::AwaitingFinal) =>
            {
                self.abandon_bdat()
            }
            ReplyTo::EndOfData { .. } => {
                let more = self
                    .in_flight
                    .iter()
                    .any(|f| matches!(f.to, ReplyTo::EndOfData { .. }));
                if !more {
                    self.reset_transaction();
                    self.events.push_back(Event::TransactionEnded);
                }
            }
            _ => {}
        }
    }

    fn has_pending_bdat(&self) -> bool {
        self.pending
            .iter()
            .any(|p| matches!(p.kind, PendingKind::Bdat | PendingKind::BdatLast))
    }

    /// Drops unsent BDAT chunks and ends the body (a refused chunk, or no
    /// recipient accepted).
    fn abandon_bdat(&mut self) {
        self.pending
            .retain(|p| !matches!(p.kind, PendingKind::Bdat | PendingKind::BdatLast));
        let last_in_flight = self
            .in_flight
            .iter()
            .any(|f| matches!(f.to, ReplyTo::EndOfData { .. }));
        if !last_in_flight {
            self.end_body();
        }
    }

    /// The body will not be sent (or not completed): the transaction falls
    /// back to `Open` (or `Idle` if MAIL was refused) and is over.
    fn end_body(&mut self) {
        self.tx.phase = self.tx.fallback();
        self.tx.body_requested = false;
        self.events.push_back(Event::TransactionEnded);
    }
}
