//! Message content: `DATA` (dot-stuffed, ended only by `CRLF.CRLF`) and
//! `BDAT` chunks (counted).
//!
//! Content is never buffered whole: each piece is unstuffed in place at the
//! front of the input buffer and handed out as [`Event::Body`](super::Event::Body).
//! A message over the size limit keeps its framing — it is read to its end
//! without further events — and gets one `552` there. A DATA message with
//! a bare CR or LF is, by default, refused at its *real* end (see
//! [`manual::_02_smtp_smuggling`](crate::manual::_02_smtp_smuggling)).
//! Whatever ends a message, the transaction is gone afterwards: the state
//! goes back to `Command(None)` by value.

use crate::command::Body;
use crate::data::{BareLineEnding, BdatChunk, BodyStats, DotUnstuffer};

use super::event::ResetReason;
use super::replies;
use super::state::{Awaiting, BodyStart, ChunkVerdict, Chunking, Fact, Pending, State};
use super::{Protocol, Server, Step, SyncPoint};

impl Server {
    /// Moves from an accepted DATA or BDAT into reading content.
    pub(super) fn open_body(&mut self, start: BodyStart) {
        let State::Command(Some(mut envelope)) =
            std::mem::replace(&mut self.state, State::Command(None))
        else {
            // DataStart is only asked inside a transaction, and the state
            // cannot change while the question is open.
            return;
        };
        self.state = match start {
            BodyStart::Data => State::Data {
                envelope,
                unstuffer: DotUnstuffer::new(self.config.bare_line_ending),
                too_big: false,
            },
            BodyStart::Bdat { size, last } => {
                let normalize = self.config.bare_line_ending.normalizes_received()
                    && envelope.body != Some(Body::BinaryMime);
                envelope
                    .chunking
                    .get_or_insert_with(|| Chunking::new(normalize));
                State::Chunk {
                    envelope: Some(envelope),
                    chunk: BdatChunk::new(size),
                    size,
                    last,
                    verdict: ChunkVerdict::Accept,
                }
            }
        };
        self.arm_idle();
    }

    /// Reads DATA content.
    pub(super) fn read_data(&mut self) -> Step {
        let State::Data {
            unstuffer, too_big, ..
        } = &mut self.state
        else {
            return Step::Stall;
        };
        if unstuffer.is_done() {
            return self.end_data();
        }
        if self.input.is_empty() {
            return self.need_more();
        }
        let was_too_big = *too_big;
        let piece = unstuffer.unstuff_in_place(self.input.vec_mut());
        // Content past the size limit is read and dropped; exactly the
        // octets up to the limit are handed out, however the input was cut.
        let within = within_limit(
            self.config.max_message_size,
            unstuffer.stats().octets,
            piece.body_len,
        );
        *too_big |= within < piece.body_len;
        if within > 0 && !was_too_big {
            self.input.hand_out(piece.consumed);
            return Step::Emit(Pending::Body { len: within });
        }
        self.input.consume(piece.consumed);
        Step::Continue
    }

    /// The real end of DATA was read: refuse or ask for the final reply.
    fn end_data(&mut self) -> Step {
        let State::Data {
            envelope,
            unstuffer,
            too_big,
        } = std::mem::replace(&mut self.state, State::Command(None))
        else {
            return Step::Stall;
        };
        let stats = *unstuffer.stats();
        if self.only_quit_pending() {
            // The one command a client may pipeline behind the dot (see
            // `sync`); anything arriving after it is still out of sync.
            self.sync_barrier(SyncPoint::EndOfData);
        } else if self.sync_check(SyncPoint::EndOfData, 0) {
            // Input pipelined behind the end of data (the next transaction
            // of a smuggling attempt, or a client that does not wait for
            // the final reply): the message is refused, not stored.
            self.sync_close(SyncPoint::EndOfData);
            return Step::Continue;
        }
        if too_big {
            self.say(replies::MESSAGE_TOO_BIG);
            self.facts
                .push_back(Fact::Reset(ResetReason::MessageTooBig));
            return Step::Continue;
        }
        if self.refuse_content(&stats) {
            return Step::Continue;
        }
        self.ask_final_reply(envelope.recipients, stats.octets)
    }

    /// Under [`BareLineEnding::Reject`], refuses a complete message whose
    /// content held a bare CR, a bare LF or a NUL: one reply at its real
    /// end, nothing handed on for storage. Returns whether it did.
    fn refuse_content(&mut self, stats: &BodyStats) -> bool {
        if self.config.bare_line_ending != BareLineEnding::Reject {
            return false;
        }
        let (reply, reason) = if stats.has_bare_line_ending() {
            (replies::BARE_LINE_ENDING, ResetReason::BareLineEnding)
        } else if stats.has_nul() {
            (replies::NUL_RECEIVED, ResetReason::Nul)
        } else {
            return false;
        };
        self.say(reply);
        self.facts.push_back(Fact::Reset(reason));
        true
    }

    /// Asks the application for the final reply(ies).
    fn ask_final_reply(&mut self, recipients: usize, size: u64) -> Step {
        let replies = match self.config.protocol {
            // RFC 2033 §4.2: one reply per successful RCPT.
            Protocol::Lmtp => recipients.max(1),
            _ => 1,
        };
        self.awaiting = Some(Awaiting::MessageEnd { remaining: replies });
        Step::Emit(Pending::MessageEnd { size, replies })
    }

    /// Reads BDAT chunk octets.
    pub(super) fn read_chunk(&mut self) -> Step {
        let State::Chunk {
            envelope,
            chunk,
            verdict,
            ..
        } = &mut self.state
        else {
            return Step::Stall;
        };
        if chunk.is_complete() {
            return self.end_chunk();
        }
        if self.input.is_empty() {
            return self.need_more();
        }
        let piece = chunk.take(self.input.bytes());
        let n = piece.len();
        let accepting = matches!(verdict, ChunkVerdict::Accept);
        let Some(progress) = envelope
            .as_mut()
            .filter(|_| accepting)
            .and_then(|e| e.chunking.as_mut())
        else {
            self.input.consume(n);
            return Step::Continue;
        };
        progress.check.scan(piece);
        // Under Normalize a 7BIT/8BITMIME chunk is rewritten in place
        // before it is handed out (bare line endings to CRLF, NULs
        // dropped); a clean piece is left as it is.
        let n = if progress.normalize && !progress.normalizer.is_unchanged(piece) {
            let mut normalized = Vec::with_capacity(n + n / 8 + 2);
            progress.normalizer.normalize(piece, &mut normalized);
            let len = normalized.len();
            self.input.vec_mut().splice(..n, normalized);
            len
        } else {
            progress.normalizer.pass(piece);
            n
        };
        progress.octets = progress.octets.saturating_add(n as u64);
        let within = within_limit(self.config.max_message_size, progress.octets, n);
        if within < n {
            // RFC 3030 §2: the chunk is still read; its reply is 552 and the
            // transaction is over. The octets up to the limit go out first.
            *envelope = None;
            *verdict = ChunkVerdict::Refuse(replies::MESSAGE_TOO_BIG);
            self.facts
                .push_back(Fact::Reset(ResetReason::MessageTooBig));
            if within > 0 {
                self.input.hand_out(n);
                return Step::Emit(Pending::Body { len: within });
            }
            self.input.consume(n);
            return Step::Continue;
        }
        self.input.hand_out(n);
        Step::Emit(Pending::Body { len: n })
    }

    /// A chunk was read completely: answer it.
    fn end_chunk(&mut self) -> Step {
        let State::Chunk {
            envelope,
            size,
            last,
            verdict,
            ..
        } = std::mem::replace(&mut self.state, State::Command(None))
        else {
            return Step::Stall;
        };
        match (verdict, envelope) {
            (ChunkVerdict::Refuse(reply), _) => {
                self.error(reply);
                Step::Continue
            }
            (ChunkVerdict::Declined(reply), _) => {
                reply.encode(self.output.queue());
                Step::Continue
            }
            (ChunkVerdict::Accept, Some(mut envelope)) => {
                if last {
                    let binary = envelope.body == Some(Body::BinaryMime);
                    let Some(chunking) = envelope.chunking.as_mut() else {
                        return self.ask_final_reply(envelope.recipients, 0);
                    };
                    let stats = *chunking.check.finish();
                    if !binary && self.refuse_content(&stats) {
                        return Step::Continue;
                    }
                    return self.ask_final_reply(envelope.recipients, chunking.octets);
                }
                let enhanced = self.enhanced();
                replies::write_chunk_ok(self.output.queue(), size, enhanced);
                self.state = State::Command(Some(envelope));
                Step::Continue
            }
            // An accepted chunk always has its envelope (set together in
            // `open_body`); answer as if refused should that ever break.
            (ChunkVerdict::Accept, None) => {
                self.error(replies::NEED_MAIL);
                Step::Continue
            }
        }
    }
}

/// How many of the `piece` octets just produced (bringing the total to
/// `total`) are within the size limit.
fn within_limit(max: Option<u64>, total: u64, piece: usize) -> usize {
    let Some(max) = max else {
        return piece;
    };
    let before = total.saturating_sub(piece as u64);
    usize::try_from(max.saturating_sub(before)).map_or(piece, |room| room.min(piece))
}
