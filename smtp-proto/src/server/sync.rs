//! Protocol synchronization: where a client must stop and wait for the
//! server's reply, and what happens when it does not.
//!
//! RFC 2920 §3.1 lets a client send several commands without waiting, but
//! only in groups: `EHLO`, `DATA`, `VRFY`, `EXPN`, `TURN`, `QUIT` and `NOOP`
//! "can only appear as the last command in a group", because their replies
//! change what the client may say next. The end of a message (the `CRLF .
//! CRLF` of DATA) ends a group as well: the final reply decides whether the
//! next transaction starts on a clean slate. RFC 3207 §4 forbids anything
//! after `STARTTLS` before the `220`, and an AUTH exchange (RFC 4954 §4) is
//! a dialogue, one line per reply. Input before the greeting (RFC 5321
//! §3.1: the client waits for the `220`) breaks the same rule.
//!
//! Well-behaved clients never send on at these points. Bulk-mail software
//! and, above all, SMTP smuggling do: a message whose content carries a
//! second transaction, relayed by a hop that ends the data where this
//! server does not, shows up here as a transaction pipelined behind the end
//! of data. Postfix 3.9 therefore disconnects such clients by default
//! (`smtpd_forbid_unauth_pipelining = yes`) with `554 5.5.0 Error: SMTP
//! protocol synchronization`, and postscreen's pre-greet test catches
//! clients that talk before the greeting, optionally after holding the
//! greeting back for a while (`postscreen_greet_wait`).
//!
//! # How the session decides
//!
//! A sans-IO core cannot peek at a socket, but it knows exactly when its
//! reply left: [`Server::advance_transmit`](super::Server::advance_transmit)
//! reports it. So at each [`SyncPoint`] the session raises a *barrier*
//! that falls once the point's reply has been written in full (and no
//! application answer is outstanding). Input is out of sync when
//!
//! - bytes already follow the group-ending command (or the end-of-data
//!   dot) in the input buffer when it is read, or
//! - [`Server::handle_input`](super::Server::handle_input) receives bytes
//!   while the barrier stands.
//!
//! The answer is `554 5.5.0 Error: SMTP protocol synchronization`, then the
//! connection closes ([`CloseReason::Synchronization`](super::CloseReason::Synchronization)).
//! Where the server answers the point itself (`EHLO`, `HELO`, `NOOP`) its
//! reply goes out first and the `554` answers the pipelined command, as in
//! Postfix; where the point asks a question (`DATA`, the end of data,
//! `VRFY`, `EXPN`, `AUTH`) or ends the session (`QUIT`), the `554` replaces
//! the answer and the application is not asked: a message whose end is
//! followed by pipelined input is refused, not stored. Input that arrives
//! while the application is deciding is refused after its answer (a
//! message the application already stored keeps its `250`).
//!
//! Authenticated clients are exempt (a submission client is known, and
//! some do pipeline after `DATA`). The rule is
//! [`Config::forbid_unauth_pipelining`](super::Config::forbid_unauth_pipelining),
//! on by default; [`Config::greeting_delay`](super::Config::greeting_delay)
//! holds the greeting back to give a pre-greeting talker time to show
//! itself.
//!
//! One exception: a lone `QUIT` behind the end of data. Postfix's smtp
//! client sends `.` and `QUIT` in one write when it will not reuse the
//! connection (it builds QUIT "before we have seen the `.` response" and
//! skips its reply), RFC 2920 §3.1 lets message content open a group, and
//! QUIT cannot smuggle a transaction. So when all the input behind the
//! dot is one `QUIT` line, the message is answered and then QUIT; anything
//! else there, or more behind that QUIT, is out of sync.
//!
//! BDAT chunks (RFC 3030 §4.2 pipelines them freely), `MAIL`, `RCPT`,
//! `RSET` and `HELP` are not points: a legitimate PIPELINING client
//! (lettre, Postfix's smtp client, swaks) sends `MAIL`/`RCPT`/`DATA` in one
//! group and waits after `DATA` and after the dot.

use super::replies;
use super::{CloseReason, Server};

/// A place in the dialogue after which the client must wait for the
/// server's reply before sending anything more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SyncPoint {
    /// The connection opened: the client waits for the greeting (RFC 5321
    /// §3.1; postscreen's pre-greet test).
    Greeting,
    /// `EHLO`, `HELO` or `LHLO` (RFC 2920 §3.1).
    Helo,
    /// `DATA` (RFC 2920 §3.1): the client waits for `354`.
    Data,
    /// The `CRLF . CRLF` ending DATA content: the client waits for the
    /// final reply.
    EndOfData,
    /// `VRFY` or `EXPN` (RFC 2920 §3.1).
    Verify,
    /// `NOOP` (RFC 2920 §3.1).
    Noop,
    /// `QUIT` (RFC 2920 §3.1).
    Quit,
    /// `STARTTLS` (RFC 3207 §4).
    StartTls,
    /// An `AUTH` command or a SASL response line (RFC 4954 §4).
    Auth,
}

impl SyncPoint {
    /// A short name for logs ("improper pipelining after DATA").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Greeting => "before the greeting",
            Self::Helo => "after EHLO/HELO",
            Self::Data => "after DATA",
            Self::EndOfData => "after the end of data",
            Self::Verify => "after VRFY/EXPN",
            Self::Noop => "after NOOP",
            Self::Quit => "after QUIT",
            Self::StartTls => "after STARTTLS",
            Self::Auth => "during AUTH",
        }
    }
}

impl std::fmt::Display for SyncPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The session's synchronization state.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sync {
    /// The point whose reply has not been written in full yet.
    pub(crate) barrier: Option<SyncPoint>,
    /// Out-of-sync input was seen; the session answers `554` and closes at
    /// the next opportunity.
    pub(crate) violation: Option<SyncPoint>,
}

impl Server {
    /// Whether the synchronization rule applies to this client now.
    pub(super) fn sync_enforced(&self) -> bool {
        self.config.forbid_unauth_pipelining && !self.authenticated
    }

    /// Raises the barrier of `point`: input before its reply is written is
    /// out of sync.
    pub(super) fn sync_barrier(&mut self, point: SyncPoint) {
        if self.config.forbid_unauth_pipelining {
            self.sync.barrier = Some(point);
        }
    }

    /// Whether input already follows the `len` bytes at the front of the
    /// input buffer, which end a group at `point`: if so (and the rule
    /// applies), the violation is recorded and `true` returned; otherwise
    /// the barrier of `point` is raised.
    pub(super) fn sync_check(&mut self, point: SyncPoint, len: usize) -> bool {
        if self.sync_enforced() && self.input.len() > len {
            self.sync.violation.get_or_insert(point);
            return true;
        }
        self.sync_barrier(point);
        false
    }

    /// Whether the unprocessed input is exactly one `QUIT` command line:
    /// the one thing a client may pipeline behind the end of data (see
    /// the module docs).
    pub(super) fn only_quit_pending(&self) -> bool {
        let input = self.input.bytes();
        match memchr::memmem::find(input, b"\r\n") {
            Some(end) if end + 2 == input.len() => matches!(
                input.get(..end).map(crate::command::Command::parse),
                Some(Ok(crate::command::Command::Quit))
            ),
            _ => false,
        }
    }

    /// Bytes arrived from the peer: out of sync while a barrier stands.
    pub(super) fn sync_input(&mut self) {
        if let Some(point) = self.sync.barrier
            && self.sync_enforced()
        {
            self.sync.violation.get_or_insert(point);
        }
    }

    /// The queued replies were written in full: the barrier falls unless an
    /// application answer (the point's own reply) is still outstanding or
    /// the greeting has not been queued yet.
    pub(super) fn sync_flushed(&mut self) {
        if self.awaiting.is_none() && !self.greeting_pending {
            self.sync.barrier = None;
        }
    }

    /// Answers `554 5.5.0 Error: SMTP protocol synchronization` and closes.
    /// The enhanced code is always sent (as Postfix does): the client is
    /// being disconnected, and the code names the reason for a human
    /// reading the log on the other side.
    pub(super) fn sync_close(&mut self, point: SyncPoint) {
        self.sync.violation = None;
        self.sync.barrier = None;
        self.greeting_pending = false;
        self.timers.stop(super::Timer::Greeting);
        replies::write(self.output.queue(), replies::SYNCHRONIZATION, true);
        self.close_silently(CloseReason::Synchronization(point));
    }
}
