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
//! With [`StoreBackend::with_dkim`] and [`StoreBackend::with_auth_checks`]
//! each message is checked (DKIM; SPF at `MAIL FROM`, DMARC at its end)
//! and stored with one `Authentication-Results` field in front; see
//! [`auth_checks`](super::auth_checks) for the policy.
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

use smtp_proto::address::ReversePath;
use smtp_proto::command::MailParameters;
use smtp_proto::dkim::DkimResult;
use smtp_proto::dmarc::{self, Authenticated, DmarcResult};
use smtp_proto::spf::{self, SpfResult};

use super::auth_checks::{AuthChecks, AuthVerdicts, Decision, X_QUARANTINE};
use super::authentication::{DkimCheck, DkimPolicy, DkimService};
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
    /// SPF and DMARC, when on, and the service asking their questions.
    auth: Option<(DkimService, Arc<AuthChecks>)>,
    /// The application's decision at `MAIL FROM` (default: the checks').
    spf_policy: Option<SpfPolicy>,
    /// The application's decision at the end of data (default: the
    /// checks').
    message_policy: Option<MessagePolicy>,
}

/// A decision at `MAIL FROM` from the SPF result and whether the client
/// authenticated: `None` to go on, or the refusal.
#[derive(Clone)]
struct SpfPolicy(Arc<SpfPolicyFn>);

type SpfPolicyFn = dyn Fn(&SpfResult, bool) -> Option<Reply<'static>> + Send + Sync;

/// A decision on a message from all its results.
#[derive(Clone)]
struct MessagePolicy(Arc<dyn Fn(&AuthVerdicts) -> Decision + Send + Sync>);

impl std::fmt::Debug for SpfPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpfPolicy").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for MessagePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagePolicy").finish_non_exhaustive()
    }
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
            auth: None,
            spf_policy: None,
            message_policy: None,
        }
    }

    /// Evaluates SPF at `MAIL FROM` and DMARC at the end of data as
    /// `checks` says, asking DNS through `service` (the DKIM service's
    /// thread and pump, whether DKIM verification is on or not), and
    /// records the results in the one `Authentication-Results` field
    /// (see [`auth_checks`](super::auth_checks)). The `MAIL` reply waits
    /// for the SPF result, the reply to the end of data for DMARC's.
    pub fn with_auth_checks(mut self, service: DkimService, checks: AuthChecks) -> Self {
        self.auth = Some((service, Arc::new(checks)));
        self
    }

    /// Decides at `MAIL FROM` from the SPF result and whether the client
    /// authenticated, instead of [`AuthChecks::spf_decision`]: `None`
    /// accepts the sender, a reply refuses it.
    pub fn with_spf_policy(
        mut self,
        policy: impl Fn(&SpfResult, bool) -> Option<Reply<'static>> + Send + Sync + 'static,
    ) -> Self {
        self.spf_policy = Some(SpfPolicy(Arc::new(policy)));
        self
    }

    /// Decides about each message from every result (SPF, DKIM, DMARC),
    /// instead of [`AuthChecks::message_decision`]. Called on the service
    /// thread, after [`with_dkim_policy`](Self::with_dkim_policy)'s
    /// decision if there is one.
    pub fn with_message_policy(
        mut self,
        policy: impl Fn(&AuthVerdicts) -> Decision + Send + Sync + 'static,
    ) -> Self {
        self.message_policy = Some(MessagePolicy(Arc::new(policy)));
        self
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

/// A message at its end, through its checks: DKIM's results, then
/// DMARC's, then the decision and the delivery. Runs on the service thread
/// (or inline when nothing is looked up).
struct Finishing {
    message: Message,
    committer: Option<Sender<CommitJob>>,
    hostname: Arc<str>,
    dkim_policy: Option<DkimPolicy>,
    message_policy: Option<MessagePolicy>,
    checks: Option<Arc<AuthChecks>>,
    /// DMARC, when on for this client.
    dmarc: Option<(DkimService, Arc<AuthChecks>)>,
    header_section: Option<Vec<u8>>,
    verdicts: AuthVerdicts,
}

impl Finishing {
    /// DKIM is done (`None`: not verified); DMARC next, if on.
    fn after_dkim(mut self, dkim: Option<Vec<DkimResult>>) {
        if let (Some(policy), Some(results)) = (&self.dkim_policy, &dkim)
            && let Some(reply) = policy.decide(results)
        {
            self.message.refuse(&reply);
            return;
        }
        self.verdicts.dkim = dkim;
        let Some((service, _)) = self.dmarc.take() else {
            self.conclude();
            return;
        };
        let header = self.header_section.take().unwrap_or_default();
        match dmarc::from_domain(&header) {
            Ok(from) => {
                let auth = Authenticated::new(
                    self.verdicts.spf.as_ref(),
                    self.verdicts.dkim_pass_domains(),
                );
                let evaluator = dmarc::Evaluator::new(from, auth, sample());
                service.check_dmarc(evaluator, move |result| {
                    self.verdicts.dmarc = Some(result);
                    self.conclude();
                });
            }
            Err(e) => {
                self.verdicts.dmarc = Some(DmarcResult::from_error(e));
                self.conclude();
            }
        }
    }

    /// Every result is in: decide, and deliver with the results in front.
    fn conclude(self) {
        let Self {
            message,
            committer,
            hostname,
            message_policy,
            checks,
            verdicts,
            ..
        } = self;
        let decision = match (&message_policy, &checks) {
            (Some(policy), _) => (policy.0)(&verdicts),
            (None, Some(checks)) => checks.message_decision(&verdicts),
            (None, None) => Decision::Accept,
        };
        let mut header = Vec::new();
        match decision {
            Decision::Refuse(reply) => {
                message.refuse(&reply);
                return;
            }
            Decision::Quarantine => {
                let from = verdicts
                    .dmarc
                    .as_ref()
                    .and_then(DmarcResult::from_domain)
                    .map_or("", |d| d.as_str());
                header.extend_from_slice(
                    format!("{X_QUARANTINE}: dmarc header.from={from}\r\n").as_bytes(),
                );
            }
            Decision::Accept => {}
        }
        let checked = verdicts.spf.is_some() || verdicts.dkim.is_some() || verdicts.dmarc.is_some();
        if checked {
            match verdicts.results_field(&hostname) {
                Ok(field) => {
                    tracing::info!(parent: None, results = %field.value(), "authentication");
                    header.extend_from_slice(field.to_field().as_bytes());
                }
                Err(e) => {
                    tracing::warn!(parent: None, error = %e, "no Authentication-Results")
                }
            }
        }
        message.deliver(header, committer.as_ref());
    }
}

/// A number from 0 to 99 for DMARC's `pct` sampling (RFC 7489 §6.6.4),
/// from the OS random source; 0 (the full policy applies) should it fail.
fn sample() -> u8 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    match ring::rand::SystemRandom::new().fill(&mut bytes) {
        // 2^32 mod 100 = 96: the bias is below 10^-7.
        Ok(()) => (u32::from_le_bytes(bytes) % 100) as u8,
        Err(_) => 0,
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
            filter: None,
            scratch: Vec::new(),
            auth: self
                .auth
                .clone()
                .filter(|(_, checks)| !checks.is_exempt(info.peer.ip())),
            spf_policy: self.spf_policy.clone(),
            message_policy: self.message_policy.clone(),
            // Fields in our name are removed for exempt clients too: they
            // are not checked, but nobody speaks for this server.
            remove_forged: self.dkim.is_some() || self.auth.is_some(),
            spf: None,
            header_section: None,
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
    /// The message's DKIM check.
    check: Option<DkimCheck>,
    /// The filter of forged `Authentication-Results` the stored copy goes
    /// through (whenever something is checked).
    filter: Option<ForgedFilter>,
    /// The filtered copy of a chunk.
    scratch: Vec<u8>,
    /// SPF and DMARC (`None` when off, or for an exempt client).
    auth: Option<(DkimService, Arc<AuthChecks>)>,
    spf_policy: Option<SpfPolicy>,
    message_policy: Option<MessagePolicy>,
    /// Remove incoming `Authentication-Results` in our name.
    remove_forged: bool,
    /// The transaction's SPF result, filled in before `MAIL` is answered.
    spf: Option<Arc<Mutex<Option<SpfResult>>>>,
    /// The message's header section as far as received, for DMARC's
    /// `From:` (at most [`MAX_HEADER_SECTION`] octets); `None` once it is
    /// complete or when DMARC is off.
    header_section: Option<HeaderSection>,
}

/// The header section kept for DMARC, at most this long: the DKIM
/// verifier's bound (RFC 5322 sets none; 100 KiB is far beyond any
/// legitimate header section).
const MAX_HEADER_SECTION: usize = 102_400;

/// A message's header section, collected as the message streams.
#[derive(Debug, Default)]
struct HeaderSection {
    bytes: Vec<u8>,
    complete: bool,
}

impl HeaderSection {
    fn update(&mut self, chunk: &[u8]) {
        if self.complete {
            return;
        }
        let start = self.bytes.len().saturating_sub(3);
        let room = MAX_HEADER_SECTION.saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        if let Some(end) = self.bytes[start..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
        {
            self.bytes.truncate(start + end + 4);
            self.complete = true;
        } else if self.bytes.starts_with(b"\r\n") {
            // No header field at all.
            self.bytes.truncate(2);
            self.complete = true;
        } else if self.bytes.len() >= MAX_HEADER_SECTION {
            self.complete = true;
        }
    }
}

impl StoreSession {
    /// Forgets the message in progress, if any (the envelope is the
    /// protocol session's; there is nothing else to forget).
    fn reset_transaction(&mut self) {
        // Dropping an uncommitted delivery removes its file.
        self.delivery = None;
        self.failed = None;
        self.check = None;
        self.filter = None;
        self.header_section = None;
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
        self.spf = None;
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
        self.spf = None;
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
            self.check = Some(dkim.check());
        }
        if self.remove_forged {
            self.filter = Some(ForgedFilter::new(&self.hostname));
        }
        if self.auth.as_ref().is_some_and(|(_, checks)| checks.dmarc) {
            self.header_section = Some(HeaderSection::default());
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
        // The verifiers see the message as received; the copy stored loses
        // the fields forged in our name.
        if let Some(check) = self.check.as_mut() {
            check.update(chunk);
        }
        if let Some(header) = self.header_section.as_mut() {
            header.update(chunk);
        }
        match self.filter.as_mut() {
            Some(filter) => {
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
        if let Some(mut filter) = self.filter.take() {
            let mut tail = Vec::new();
            filter.finish(&mut tail);
            self.write(&tail);
        }
        let check = self.check.take();
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
        if !storable {
            message.deliver(Vec::new(), committer.as_ref());
            return;
        }
        let spf = self
            .spf
            .as_ref()
            .and_then(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).take());
        let dmarc = self.auth.clone().filter(|(_, checks)| checks.dmarc);
        let finishing = Finishing {
            message,
            committer,
            hostname: Arc::clone(&self.hostname),
            dkim_policy: self.dkim_policy.clone(),
            message_policy: self.message_policy.clone(),
            checks: self.auth.as_ref().map(|(_, checks)| Arc::clone(checks)),
            dmarc,
            header_section: self.header_section.take().map(|h| h.bytes),
            verdicts: AuthVerdicts {
                spf,
                dkim: None,
                dmarc: None,
                authenticated: self.authenticated,
            },
        };
        match check {
            Some(check) => check.finish(move |results| finishing.after_dkim(Some(results))),
            None => finishing.after_dkim(None),
        }
    }

    fn mail(&mut self, from: &ReversePath<'_>, _params: &MailParameters<'_>, answer: Responder) {
        self.spf = None;
        let Some((service, checks)) = &self.auth else {
            answer.accept();
            return;
        };
        if !checks.spf {
            answer.accept();
            return;
        }
        // The null reverse-path checks the HELO identity (RFC 7208 §2.4).
        let sender = from.mailbox().map(ToString::to_string).unwrap_or_default();
        let evaluator = spf::Evaluator::mail_from(
            checks.spf_config.clone(),
            self.peer,
            &self.helo,
            &sender,
            SystemTime::now(),
        );
        let slot = Arc::new(Mutex::new(None));
        self.spf = Some(Arc::clone(&slot));
        let checks = Arc::clone(checks);
        let policy = self.spf_policy.clone();
        let authenticated = self.authenticated;
        service.check_spf(evaluator, move |result| {
            tracing::info!(
                parent: None,
                spf = result.method_result(),
                sender = result.sender(),
                problem = result.problem().map(ToString::to_string),
                "SPF"
            );
            let refusal = match policy {
                Some(policy) => (policy.0)(&result, authenticated),
                None => checks.spf_decision(&result, authenticated),
            };
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
            match refusal {
                Some(reply) => answer.reply(reply),
                None => answer.accept(),
            }
        });
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
    fn header_section_ends_at_the_blank_line_whatever_the_chunks() {
        let message = b"From: a@example.org\r\nSubject: s\r\n\r\nBody\r\n\r\nmore\r\n";
        for size in 1..message.len() {
            let mut h = HeaderSection::default();
            for chunk in message.chunks(size) {
                h.update(chunk);
            }
            assert!(h.complete, "chunks of {size}");
            assert_eq!(h.bytes, b"From: a@example.org\r\nSubject: s\r\n\r\n");
        }
        let mut h = HeaderSection::default();
        h.update(b"\r\nno header");
        assert!(h.complete);
        assert_eq!(h.bytes, b"\r\n");
        // Bounded: an endless header section stops at the limit.
        let mut h = HeaderSection::default();
        let line = b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        for _ in 0..(2 * MAX_HEADER_SECTION / line.len()) {
            h.update(line);
        }
        assert!(h.complete);
        assert_eq!(h.bytes.len(), MAX_HEADER_SECTION);
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
