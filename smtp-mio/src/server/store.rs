//! Ready-made backends: deliver into a [`Maildir`], or discard (a sink for
//! benchmarks), optionally requiring AUTH.
//!
//! [`StoreBackend`] is what the `mail-server` example runs. Every message
//! gets a `Received:` header (RFC 5321 §4.4) naming the client's greeting,
//! its address, this server, the protocol type (`ESMTPSA`…) and the message
//! id; the body is streamed into `tmp/` chunk by chunk as it arrives, and
//! the `250` carrying the id is sent only after the message was `fsync`ed
//! and renamed into `new/` (see [`maildir`](super::maildir)). A storage
//! error at any point answers `452 4.3.1` when the disk, a quota or the
//! file size limit is full and `451 4.3.0` otherwise, and the partial file
//! is removed. What a killed process left in `tmp/` is ignored (names are
//! unique per process and `new/` only ever receives whole, synced files)
//! and removed once 36 hours old when the Maildir is opened
//! (`smtp-mio/tests/crash.rs` kills the server under load to prove it).
//!
//! The final `fsync`s and rename run on a small pool of committer threads,
//! not on the event loop: an `fsync` takes milliseconds, and a loop that
//! waited for it would stall every other connection it serves. The session
//! hands the delivery and its [`Responder`]s to the pool and the answer
//! comes back through the loop's inbox when the message is durable — the
//! late-answer path of [`completion`](super::completion) doing what it is
//! for.
//!
//! With credentials configured, `AUTH PLAIN` and `LOGIN` are checked against
//! them (the session config decides that AUTH is offered only under TLS and
//! required before `MAIL`); a failed attempt gets `535 5.7.8`.
//!
//! Every message and every connection gets its log line at `INFO`
//! ([`trace`](super::trace#log-lines)): the envelope, size, queue id and
//! reply of each message; the peer, TLS parameters and AUTH user of each
//! connection. No password is ever logged.

use std::net::IpAddr;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use smtp_proto::address::Host;
use smtp_proto::reply::{EnhancedStatusCode, Reply, ReplyCode};
use smtp_proto::secret::Secret;
use smtp_proto::server::{CloseReason, Envelope, HeloKind, ResetReason};
use smtp_proto::{BodyMode, TlsInfo};

use smtp_proto::auth_results::ForgedFilter;

use smtp_proto::dkim::DkimResult;

use super::authentication::{DkimCheck, DkimPolicy, DkimService, results_field};
use super::backend::{Backend, ConnectionInfo, Session, auth_refused, local_error};
use super::completion::Responder;
use super::maildir::{Delivery, Maildir};
use super::trace::{ConnectionLog, MessageLog, ProtocolBase, Received, WithProtocol, unbracketed};

/// Where accepted messages go.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Store {
    /// Into a Maildir.
    Maildir(Arc<Maildir>),
    /// Nowhere: the body is read and dropped (benchmarks, tests).
    Discard,
}

/// User names and passwords accepted by AUTH PLAIN and LOGIN.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    users: Vec<(String, Secret<String>)>,
}

impl Credentials {
    /// No user (every AUTH fails).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a user.
    pub fn add(&mut self, user: impl Into<String>, password: impl Into<String>) {
        self.users.push((user.into(), Secret::new(password.into())));
    }

    /// Whether no user is configured.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `user` with `password` is known. Every entry is compared in
    /// full, whatever matches, so the time taken does not tell which part
    /// of a guess was right.
    pub fn check(&self, user: &str, password: &str) -> bool {
        let mut ok = false;
        for (u, p) in &self.users {
            ok |= constant_time_eq(u.as_bytes(), user.as_bytes())
                & constant_time_eq(p.expose().as_bytes(), password.as_bytes());
        }
        ok
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Committer threads: `fsync` is I/O-bound, and a few in flight let the
/// disk serve them together.
const COMMITTERS: usize = 4;

/// A message to make durable, the header fields to put in front of it
/// (`Authentication-Results`; usually none), the answers waiting for it,
/// and its log line.
type CommitJob = (Delivery, Vec<u8>, Vec<Responder>, MessageLog);

/// The backend of the `mail-server` example: every connection stores into
/// one [`Store`].
#[derive(Debug, Clone)]
pub struct StoreBackend {
    store: Store,
    hostname: Arc<str>,
    credentials: Arc<Credentials>,
    /// The committer pool (Maildir only; `None` if it could not start, then
    /// commits run inline).
    committer: Option<Sender<CommitJob>>,
    /// DKIM verification, when on.
    dkim: Option<DkimService>,
    /// What to do with a message given its DKIM results.
    dkim_policy: Option<DkimPolicy>,
}

impl StoreBackend {
    /// A backend storing into `store`, naming itself `hostname` in trace
    /// headers, checking AUTH against `credentials`.
    pub fn new(store: Store, hostname: &str, credentials: Credentials) -> Self {
        let committer = match store {
            Store::Maildir(_) => spawn_committers(COMMITTERS),
            Store::Discard => None,
        };
        Self {
            store,
            hostname: Arc::from(hostname),
            credentials: Arc::new(credentials),
            committer,
            dkim: None,
            dkim_policy: None,
        }
    }

    /// Verifies the DKIM signatures of every message with `service`
    /// before answering its end, prepends `Authentication-Results` with
    /// the results (this server's host name as authserv-id), and removes
    /// the incoming `Authentication-Results` fields that claim that name
    /// (RFC 8601 §5). See [`authentication`](super::authentication).
    pub fn with_dkim(mut self, service: DkimService) -> Self {
        self.dkim = Some(service);
        self
    }

    /// Decides about each verified message from its DKIM results (with
    /// [`with_dkim`](Self::with_dkim)): `policy` returns `None` to store it,
    /// or the reply that refuses it, which every recipient gets; nothing of
    /// a refused message is kept. The default stores everything and leaves
    /// the judgement to the reader of `Authentication-Results`.
    pub fn with_dkim_policy(
        mut self,
        policy: impl Fn(&[DkimResult]) -> Option<Reply<'static>> + Send + Sync + 'static,
    ) -> Self {
        self.dkim_policy = Some(DkimPolicy::new(policy));
        self
    }
}

/// Starts `n` threads that commit deliveries and answer for them; they end
/// when the last sender (the backend and its sessions) is gone.
fn spawn_committers(n: usize) -> Option<Sender<CommitJob>> {
    let (jobs, queue) = mpsc::channel::<CommitJob>();
    let queue = Arc::new(Mutex::new(queue));
    let mut started = 0;
    for i in 0..n {
        let queue = Arc::clone(&queue);
        let spawned = std::thread::Builder::new()
            .name(format!("maildir-commit-{i}"))
            .spawn(move || {
                loop {
                    // Receiving cannot panic, so a poisoned lock still
                    // guards a consistent receiver.
                    let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok((delivery, header, answers, log)) = job else {
                        return;
                    };
                    answer_commit(
                        delivery
                            .commit_with_header(&header)
                            .map(|id| Some(id.to_string())),
                        answers,
                        &log,
                    );
                }
            });
        if spawned.is_ok() {
            started += 1;
        }
    }
    (started > 0).then_some(jobs)
}

/// Answers a message's end with the outcome of its commit — `250` with the
/// id, or `451` — and writes its log line. `Ok(None)`: discarded, no id.
fn answer_commit(
    result: std::io::Result<Option<String>>,
    answers: Vec<Responder>,
    log: &MessageLog,
) {
    let (id, reply) = match result {
        Ok(id) => {
            let text = match &id {
                Some(id) => format!("Ok: queued as {id}"),
                None => "Ok: discarded".to_owned(),
            };
            // The id holds no CR or LF; should the text ever be refused,
            // the standard 250 says the same.
            let reply = Reply::with_enhanced(ReplyCode::OK, EnhancedStatusCode::SUCCESS, text)
                .unwrap_or_else(|_| ok());
            (id, reply)
        }
        Err(e) => {
            tracing::warn!(parent: None, error = %e, "message not stored");
            (None, storage_failure(&e))
        }
    };
    log.replied(id.as_deref(), &reply);
    for answer in answers {
        answer.reply(reply.clone());
    }
}

/// A message whose end was received, on its way to being answered.
struct Message {
    delivery: Option<Delivery>,
    /// Storage failed during the message, and why.
    failed: Option<std::io::Error>,
    /// The store discards.
    discard: bool,
    answers: Vec<Responder>,
    log: MessageLog,
}

impl Message {
    /// Answers every recipient with `reply` and discards the message.
    fn refuse(self, reply: &Reply<'static>) {
        // Dropping the delivery removes its file.
        drop(self.delivery);
        self.log.replied(None, reply);
        for answer in self.answers {
            answer.reply(reply.clone());
        }
    }

    /// Commits the message with `header` in front (on the committer pool,
    /// inline if it is gone — never on the happy path: the pool lives as
    /// long as the backend) and answers.
    fn deliver(self, header: Vec<u8>, committer: Option<&Sender<CommitJob>>) {
        let Self {
            delivery,
            failed,
            discard,
            answers,
            log,
        } = self;
        match delivery {
            Some(delivery) => {
                let job = (delivery, header, answers, log);
                let job = match committer {
                    Some(committer) => match committer.send(job) {
                        Ok(()) => return,
                        Err(mpsc::SendError(job)) => job,
                    },
                    None => job,
                };
                let (delivery, header, answers, log) = job;
                answer_commit(
                    delivery
                        .commit_with_header(&header)
                        .map(|id| Some(id.to_string())),
                    answers,
                    &log,
                );
            }
            None if discard && failed.is_none() => answer_commit(Ok(None), answers, &log),
            None => answer_commit(
                Err(failed.unwrap_or_else(|| std::io::Error::other("the message was not stored"))),
                answers,
                &log,
            ),
        }
    }
}

/// The reply to a storage failure: `452 4.3.1 Insufficient system
/// storage` when the disk, a quota or the file size limit is full
/// (`ENOSPC`, `EDQUOT`, `EFBIG`: RFC 3463 X.3.1 mail system full, RFC 5321
/// §4.2.2's 452), else `451 4.3.0 Local error in processing` (a read-only
/// or missing directory, an I/O error). Both are transient: the client
/// keeps the message and tries again later.
fn storage_failure(e: &std::io::Error) -> Reply<'static> {
    let full = matches!(e.raw_os_error(), Some(28 | 122 | 27))
        || e.kind() == std::io::ErrorKind::StorageFull;
    if full {
        Reply::insufficient_storage()
    } else {
        local_error()
    }
}

/// `250 2.0.0 Ok`.
fn ok() -> Reply<'static> {
    Reply::ok()
}

impl Backend for StoreBackend {
    type Session = StoreSession;

    fn connect(&self, info: &ConnectionInfo) -> Result<StoreSession, Reply<'static>> {
        Ok(StoreSession {
            store: self.store.clone(),
            hostname: Arc::clone(&self.hostname),
            credentials: Arc::clone(&self.credentials),
            peer: info.peer.ip(),
            tls: info.tls.clone(),
            log: ConnectionLog::new(info),
            helo: String::new(),
            base: ProtocolBase::Esmtp,
            authenticated: false,
            delivery: None,
            failed: None,
            committer: self.committer.clone(),
            dkim: self.dkim.clone(),
            dkim_policy: self.dkim_policy.clone(),
            check: None,
            scratch: Vec::new(),
        })
    }
}

/// One connection of a [`StoreBackend`].
#[derive(Debug)]
pub struct StoreSession {
    store: Store,
    hostname: Arc<str>,
    credentials: Arc<Credentials>,
    peer: IpAddr,
    tls: Option<TlsInfo>,
    /// The connection's log line, and the lines of its messages.
    log: ConnectionLog,
    helo: String,
    base: ProtocolBase,
    authenticated: bool,
    /// The message being written (Maildir only).
    delivery: Option<Delivery>,
    /// Storage failed during this message: answer 451 or 452 at its end.
    failed: Option<std::io::Error>,
    committer: Option<Sender<CommitJob>>,
    dkim: Option<DkimService>,
    dkim_policy: Option<DkimPolicy>,
    /// The message's DKIM check, and the filter of forged
    /// `Authentication-Results` its copy goes through.
    check: Option<(DkimCheck, ForgedFilter)>,
    /// The filtered copy of a chunk.
    scratch: Vec<u8>,
}

impl StoreSession {
    /// Forgets the message in progress, if any (the envelope is the
    /// protocol session's; there is nothing else to forget).
    fn reset_transaction(&mut self) {
        // Dropping an uncommitted delivery removes its file.
        self.delivery = None;
        self.failed = None;
        self.check = None;
    }

    /// Appends to the message being written; a failure is answered at its
    /// end.
    fn write(&mut self, bytes: &[u8]) {
        if let Some(delivery) = self.delivery.as_mut()
            && let Err(e) = delivery.write(bytes)
        {
            tracing::warn!(error = %e, "writing the message failed");
            self.delivery = None;
            self.failed = Some(e);
        }
    }

    fn begin(&mut self, maildir: &Maildir, envelope: &Envelope<'_>) -> std::io::Result<Delivery> {
        let protocol = WithProtocol::new(self.base)
            .tls(self.tls.is_some())
            .authenticated(self.authenticated)
            .utf8(envelope.params().smtputf8);
        let mut received = Received::new(
            &self.helo,
            self.peer,
            &self.hostname,
            protocol,
            SystemTime::now(),
        );
        if let Some(tls) = &self.tls {
            received = received.with_tls(tls);
        }
        // RFC 5321 §4.4: the `for` clause holds one path at most (several
        // would disclose the other recipients): only a message to exactly
        // one recipient names it.
        let only = match envelope.recipient_count() {
            1 => envelope.recipients().next().map(|(to, _)| unbracketed(&to)),
            _ => None,
        };
        if let Some(only) = &only {
            received = received.with_recipient(only);
        }
        maildir.begin(&received)
    }
}

impl Session for StoreSession {
    fn helo(&mut self, kind: HeloKind, host: &Host<'_>) {
        self.reset_transaction();
        self.helo = host.to_string();
        self.log.helo(&self.helo);
        self.base = match kind {
            HeloKind::Helo => ProtocolBase::Smtp,
            HeloKind::Lhlo => ProtocolBase::Lmtp,
            _ => ProtocolBase::Esmtp,
        };
    }

    fn tls_established(&mut self, info: &TlsInfo) {
        self.reset_transaction();
        self.tls = Some(info.clone());
        self.log.tls(info);
        // RFC 3207 §4.2: everything learned before TLS is forgotten.
        self.authenticated = false;
        self.helo.clear();
    }

    fn data_start(&mut self, envelope: &Envelope<'_>, _mode: BodyMode, answer: Responder) {
        // A message begins: nothing of an earlier one is left (each ends
        // with `data_end` or `reset`; this is belt and braces).
        self.reset_transaction();
        if let Some(dkim) = &self.dkim {
            self.check = Some((dkim.check(), ForgedFilter::new(&self.hostname)));
        }
        let Store::Maildir(maildir) = &self.store else {
            answer.accept();
            return;
        };
        let maildir = Arc::clone(maildir);
        match self.begin(&maildir, envelope) {
            Ok(delivery) => {
                self.delivery = Some(delivery);
                answer.accept();
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a delivery");
                answer.reply(storage_failure(&e));
            }
        }
    }

    fn data(&mut self, chunk: &[u8]) {
        match self.check.as_mut() {
            Some((check, filter)) => {
                // The verifier sees the message as received; the copy
                // stored loses the fields forged in our name.
                check.update(chunk);
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                filter.update(chunk, &mut scratch);
                self.write(&scratch);
                self.scratch = scratch;
            }
            None => self.write(chunk),
        }
    }

    fn data_end(&mut self, envelope: &Envelope<'_>, size: u64, answers: Vec<Responder>) {
        let mut header = Vec::new();
        let check = self.check.take().map(|(check, mut filter)| {
            let mut tail = Vec::new();
            filter.finish(&mut tail);
            self.write(&tail);
            check
        });
        let message = Message {
            delivery: self.delivery.take(),
            failed: std::mem::take(&mut self.failed),
            discard: matches!(self.store, Store::Discard),
            answers,
            log: self.log.message(envelope, size),
        };
        let committer = self.committer.clone();
        // A message already lost (storage failed) is answered at once.
        let storable = message.delivery.is_some() || (message.discard && message.failed.is_none());
        match check {
            Some(check) if storable => {
                let hostname = Arc::clone(&self.hostname);
                let policy = self.dkim_policy.clone();
                check.finish(move |results| {
                    if let Some(reply) = policy.and_then(|policy| policy.decide(&results)) {
                        message.refuse(&reply);
                        return;
                    }
                    match results_field(&hostname, &results) {
                        Ok(field) => {
                            tracing::info!(parent: None, results = %field.value(), "DKIM");
                            header = field.to_field().into_bytes();
                        }
                        Err(e) => {
                            tracing::warn!(parent: None, error = %e, "no Authentication-Results")
                        }
                    }
                    message.deliver(header, committer.as_ref());
                });
            }
            _ => message.deliver(header, committer.as_ref()),
        }
    }

    fn reset(&mut self, envelope: &Envelope<'_>, reason: ResetReason) {
        if matches!(
            reason,
            ResetReason::MessageTooBig
                | ResetReason::BareLineEnding
                | ResetReason::Nul
                | ResetReason::ChunkRefused
        ) {
            // The session refused the message and gave the reply itself.
            self.log.refused_by_session(envelope, reason);
        }
        self.reset_transaction();
    }

    fn closed(&mut self, reason: CloseReason) {
        self.log.closed(reason);
    }

    fn auth_plain(
        &mut self,
        authzid: Option<&str>,
        authcid: &str,
        password: Secret<&str>,
        answer: Responder,
    ) {
        // Acting for another identity is not supported: only oneself.
        let identity_ok = authzid.is_none_or(|z| z.is_empty() || z == authcid);
        if identity_ok && self.credentials.check(authcid, password.expose()) {
            self.authenticated = true;
            self.log.authenticated(authcid);
            answer.auth_success();
        } else {
            self.log.auth_failed("PLAIN");
            answer.reply(auth_refused());
        }
    }

    fn auth_login(&mut self, username: &str, password: Secret<&str>, answer: Responder) {
        if self.credentials.check(username, password.expose()) {
            self.authenticated = true;
            self.log.authenticated(username);
            answer.auth_success();
        } else {
            self.log.auth_failed("LOGIN");
            answer.reply(auth_refused());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_check_user_and_password_together() {
        let mut c = Credentials::new();
        assert!(c.is_empty());
        assert!(!c.check("", ""));
        c.add("alice", "s3cret");
        c.add("bob", "hunter2");
        assert!(c.check("alice", "s3cret"));
        assert!(c.check("bob", "hunter2"));
        assert!(!c.check("alice", "hunter2"));
        assert!(!c.check("alice", "s3cre"));
        assert!(!c.check("carol", "s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
