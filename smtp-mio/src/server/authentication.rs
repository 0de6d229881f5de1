//! DKIM verification of incoming mail without stalling an event loop
//! (RFC 6376 §6), with results for `Authentication-Results` (RFC 8601).
//!
//! The core's [`Verifier`] does everything but I/O: it hashes the body as
//! it streams, and at the end names the TXT records (the signers' public
//! keys) it needs. This module supplies the I/O, in a [`DkimService`]: one
//! thread with its own `mio::Poll` and the crate's non-blocking DNS pump
//! ([`crate::dns`]) over the core's resolver (with its answer cache), shared
//! by every connection of every event loop.
//!
//! ```text
//! event loop (per message)                 DkimService thread
//!   data():     DkimCheck::update ─┐
//!   data_end(): DkimCheck::finish ─┴─ job ─▶ finish, TXT lookups (DnsPump)
//!               (answers kept)                 … answers, or the deadline
//!                                             into_results (the RSA/Ed25519 work)
//!   late answer ◀── Responder ◀── done(results) ◀──┘
//! ```
//!
//! The event loop only hashes (which it would pay for reading the message
//! anyway); the reply to the end of data is deferred through the session's
//! [`Responder`](super::Responder)s, which the `done` callback answers —
//! the same late-answer path a database lookup uses. So a slow DNS server
//! holds up only the messages that wait for it, never other connections,
//! and never longer than [`DkimConfig::timeout`]: then the lookups still
//! unanswered count as `temperror`. A message with many signatures costs
//! at most [`VerifierConfig::max_signatures`] lookups and key operations;
//! more than [`DkimConfig::max_pending`] messages waiting at once are not
//! looked up at all (their signatures report `temperror`), so the thread's
//! memory is bounded too.
//!
//! The same thread and pump evaluate SPF at `MAIL FROM`
//! ([`DkimService::check_spf`]) and DMARC at the end of data
//! ([`DkimService::check_dmarc`]): each is a core evaluator whose questions
//! are asked as it raises them (an SPF `include:` raises more after its
//! answer), under the same deadline. See
//! [`auth_checks`](super::auth_checks) for what a server does with the
//! results.
//!
//! # Why a thread of its own, and the crypto on it
//!
//! Measured on this project's shared 2-core machine (release build, a
//! 4 KiB message with one RSA-2048 signature, 2000 rounds): hashing and
//! parsing as the message streams, about 11 µs, which the loop pays
//! inline; [`Verifier::into_results`] — key record parsing and the RSA
//! verification — about 32 µs. That would not stall a loop noticeably (a
//! network round trip is a thousand times longer), but it is per
//! signature, up to five per message, and every loop would need its own
//! DNS sockets and pending-verification state inside its connection
//! handling. A single service thread keeps the server's event loops as
//! they are, shares one resolver cache among them, and takes the public-key
//! work with it for free: it runs where the keys arrive.
//!
//! # Use in a session
//!
//! [`StoreBackend`](super::store::StoreBackend) does this when given a
//! service (`mail-server --dkim-verify on`). A custom
//! [`Session`](super::Session) starts a [`DkimCheck`] in `data_start`,
//! feeds it in `data`, and in `data_end` moves its responders into the
//! `done` callback, where it decides: store the message with
//! [`results_field`] prepended, or refuse it.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use mio::{Events, Poll, Token, Waker};
use slab::Slab;
use smtp_proto::auth_results::{AuthenticationResults, BuildError};
use smtp_proto::dkim::{DkimResult, Verifier, VerifierConfig, method_result_none};
use smtp_proto::dmarc::{DmarcResult, Evaluator as DmarcEvaluator};
use smtp_proto::dns::{Answer, CacheConfig, Failure, LookupId, Question, Resolver, ResolverConfig};
use smtp_proto::reply::Reply;
use smtp_proto::spf::{Evaluator as SpfEvaluator, SpfResult};

use crate::dns::{DnsPump, LookupFailed};

/// The service's settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DkimConfig {
    /// The DNS servers asked for key records, the resolver's bounds and
    /// its answer cache ([`crate::dns::system_config`] reads
    /// `/etc/resolv.conf`).
    pub resolver: ResolverConfig,
    /// The verifier's bounds (signatures per message, header section,
    /// key sizes).
    pub verifier: VerifierConfig,
    /// How long one message may wait for its key records before those
    /// still missing count as `temperror`. Default 30 s: RFC 6376 sets no
    /// figure, the resolver's own rounds (RFC 1536's 2 to 5 s per try,
    /// a few tries) fit, and it is well inside the 10 minutes a client
    /// waits for the reply to the end of data (RFC 5321 §4.5.3.2.6).
    pub timeout: Duration,
    /// Messages waiting for key records at once, at most (default 4096);
    /// beyond that a message's signatures report `temperror` at once
    /// rather than queueing without bound.
    pub max_pending: usize,
}

impl DkimConfig {
    /// Defaults, asking the DNS servers of `resolver`, with the answer
    /// cache turned on if it is not (the keys of a busy sender's domain
    /// are then asked once per TTL). The cache turned on here also keeps
    /// negative answers without an SOA for 60 s
    /// ([`CacheConfig::negative_ttl_without_soa`]): the SPF and DMARC
    /// names of a sender without records are asked for every message, and
    /// a resolver that leaves the SOA out and limits the rate of questions
    /// would otherwise make a busy server wait out its DNS timeouts.
    pub fn new(resolver: ResolverConfig) -> Self {
        let resolver = match resolver.cache {
            Some(_) => resolver,
            None => {
                let mut cache = CacheConfig::default();
                cache.negative_ttl_without_soa = 60;
                resolver.with_cache(cache)
            }
        };
        Self {
            resolver,
            verifier: VerifierConfig::default(),
            timeout: Duration::from_secs(30),
            max_pending: 4096,
        }
    }
}

/// A decision on a message from its DKIM results: `None` to accept it,
/// or the reply that refuses it (`550 5.7.20`, RFC 7372, for "no passing
/// signature"). Called on the service thread; see
/// [`StoreBackend::with_dkim_policy`](super::store::StoreBackend::with_dkim_policy).
#[derive(Clone)]
pub struct DkimPolicy(Arc<PolicyFn>);

type PolicyFn = dyn Fn(&[DkimResult]) -> Option<Reply<'static>> + Send + Sync;

impl DkimPolicy {
    /// A policy deciding with `decide`.
    pub fn new(
        decide: impl Fn(&[DkimResult]) -> Option<Reply<'static>> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(decide))
    }

    /// The decision on a message with `results`.
    pub fn decide(&self, results: &[DkimResult]) -> Option<Reply<'static>> {
        (self.0)(results)
    }
}

impl std::fmt::Debug for DkimPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimPolicy").finish_non_exhaustive()
    }
}

/// What is called with a message's results, on the service thread. It
/// should answer the message's responders and return quickly (hand slow
/// work, such as an `fsync`, to another thread).
pub type Done = Box<dyn FnOnce(Vec<DkimResult>) + Send>;

/// One evaluation handed to the service: a DKIM verification, an SPF or
/// a DMARC check. Each is the core's question/answer machine with the
/// callback that takes its result.
trait Job: Send {
    /// Called once, when the service takes the job (a DKIM verifier
    /// checks its body hashes here, off the event loop).
    fn start(&mut self) {}
    /// The questions it wants answered now.
    fn questions(&self) -> Vec<Question>;
    /// An answer to one of them.
    fn handle_answer(&mut self, question: &Question, result: &Result<Answer, Failure>);
    /// Whether it has its result.
    fn is_done(&self) -> bool;
    /// Gives the result (unanswered questions count as `temperror`) to
    /// its callback.
    fn complete(self: Box<Self>);
}

/// A message's DKIM verification.
struct DkimJob {
    verifier: Verifier,
    done: Done,
}

impl Job for DkimJob {
    fn start(&mut self) {
        self.verifier.finish(SystemTime::now());
    }
    fn questions(&self) -> Vec<Question> {
        self.verifier.questions().collect()
    }
    fn handle_answer(&mut self, question: &Question, result: &Result<Answer, Failure>) {
        self.verifier.handle_answer(question, result);
    }
    fn is_done(&self) -> bool {
        self.verifier.is_ready()
    }
    fn complete(self: Box<Self>) {
        complete(self.verifier, self.done);
    }
}

/// An SPF check (at `MAIL FROM`).
struct SpfJob {
    evaluator: SpfEvaluator,
    done: Box<dyn FnOnce(SpfResult) + Send>,
}

impl Job for SpfJob {
    fn questions(&self) -> Vec<Question> {
        self.evaluator.questions().cloned().collect()
    }
    fn handle_answer(&mut self, question: &Question, result: &Result<Answer, Failure>) {
        self.evaluator.handle_answer(question, result);
    }
    fn is_done(&self) -> bool {
        self.evaluator.is_done()
    }
    fn complete(self: Box<Self>) {
        let Self { evaluator, done } = *self;
        let result = evaluator.into_result();
        if catch_unwind(AssertUnwindSafe(move || done(result))).is_err() {
            tracing::error!("an SPF result callback panicked");
        }
    }
}

/// A DMARC check (at the end of data).
struct DmarcJob {
    evaluator: DmarcEvaluator,
    done: Box<dyn FnOnce(DmarcResult) + Send>,
}

impl Job for DmarcJob {
    fn questions(&self) -> Vec<Question> {
        self.evaluator.questions().cloned().collect()
    }
    fn handle_answer(&mut self, question: &Question, result: &Result<Answer, Failure>) {
        self.evaluator.handle_answer(question, result);
    }
    fn is_done(&self) -> bool {
        self.evaluator.is_done()
    }
    fn complete(self: Box<Self>) {
        let Self { evaluator, done } = *self;
        let result = evaluator.into_result();
        if catch_unwind(AssertUnwindSafe(move || done(result))).is_err() {
            tracing::error!("a DMARC result callback panicked");
        }
    }
}

/// The handle every session shares: cloning it is cheap. The thread ends
/// when the last handle is dropped, once the messages it holds are done.
#[derive(Clone)]
pub struct DkimService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DkimService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimService").finish_non_exhaustive()
    }
}

struct Inner {
    jobs: Sender<Box<dyn Job>>,
    waker: Waker,
    verifier: VerifierConfig,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The sender is dropped with `self`; wake the thread so that it
        // sees the channel closed, finishes what it holds and returns.
        let (closed, _) = mpsc::channel();
        self.jobs = closed;
        let _ = self.waker.wake();
        // Joined so that messages held are answered before the program
        // exits — unless this is the service thread itself (a callback
        // that kept the last handle).
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

/// The waker's token; the DNS pump's tokens start at 0.
const WAKER: Token = Token(usize::MAX);

impl DkimService {
    /// Starts the service thread.
    ///
    /// # Errors
    ///
    /// The poll, its waker or the thread could not be made.
    pub fn start(config: DkimConfig) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let resolver = Resolver::new(config.resolver.clone());
        let pump = DnsPump::new(resolver, Token(0))?;
        let (jobs, queue) = mpsc::channel();
        let verifier = config.verifier.clone();
        let thread = thread::Builder::new()
            .name("dkim-verify".to_owned())
            .spawn(move || Worker::new(poll, pump, queue, config).run())?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs,
                waker,
                verifier,
                thread: Some(thread),
            }),
        })
    }

    /// Evaluates SPF with `evaluator` (made at `MAIL FROM`, see
    /// [`smtp_proto::spf`]) on the service thread, asking its questions
    /// through the service's DNS pump, and calls `done` with the result —
    /// `temperror` for what is unanswered at [`DkimConfig::timeout`].
    pub fn check_spf(
        &self,
        evaluator: SpfEvaluator,
        done: impl FnOnce(SpfResult) + Send + 'static,
    ) {
        self.submit(Box::new(SpfJob {
            evaluator,
            done: Box::new(done),
        }));
    }

    /// Evaluates DMARC with `evaluator` (see [`smtp_proto::dmarc`]) on the
    /// service thread, as [`check_spf`](Self::check_spf) does SPF. May be
    /// called from a result callback (the DMARC check follows the DKIM one).
    pub fn check_dmarc(
        &self,
        evaluator: DmarcEvaluator,
        done: impl FnOnce(DmarcResult) + Send + 'static,
    ) {
        self.submit(Box::new(DmarcJob {
            evaluator,
            done: Box::new(done),
        }));
    }

    /// Hands a job to the thread (or completes it here, without answers,
    /// if the thread is gone).
    fn submit(&self, job: Box<dyn Job>) {
        if let Err(mpsc::SendError(job)) = self.inner.jobs.send(job) {
            job.complete();
            return;
        }
        // A failed wake-up means the thread is gone; the job was then
        // dropped with the channel, and with it the responders it held,
        // which answer 451.
        let _ = self.inner.waker.wake();
    }

    /// A check for one message.
    pub fn check(&self) -> DkimCheck {
        DkimCheck {
            verifier: Verifier::new(self.inner.verifier.clone()),
            service: self.clone(),
        }
    }
}

/// The verification of one message: feed it the message as the session
/// delivers it (unstuffed), then [`finish`](Self::finish).
pub struct DkimCheck {
    verifier: Verifier,
    service: DkimService,
}

impl std::fmt::Debug for DkimCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimCheck").finish_non_exhaustive()
    }
}

impl DkimCheck {
    /// The next piece of the message.
    pub fn update(&mut self, chunk: &[u8]) {
        self.verifier.update(chunk);
    }

    /// The message is complete: its keys are looked up and its signatures
    /// checked on the service thread, which then calls `done` with one
    /// result per `DKIM-Signature` field (none for an unsigned message).
    pub fn finish(self, done: impl FnOnce(Vec<DkimResult>) + Send + 'static) {
        // Should the thread be gone (it panicked), the job is judged
        // without keys, here.
        self.service.submit(Box::new(DkimJob {
            verifier: self.verifier,
            done: Box::new(done),
        }));
    }
}

/// The `Authentication-Results` field of a message's DKIM results, in the
/// name of `authserv_id` (this server's host name): one `dkim=` result per
/// signature, `dkim=none` for none.
///
/// # Errors
///
/// An `authserv_id` that cannot be written (empty, control characters).
pub fn results_field(
    authserv_id: &str,
    results: &[DkimResult],
) -> Result<AuthenticationResults, BuildError> {
    let mut field = AuthenticationResults::new(authserv_id)?;
    if results.is_empty() {
        field.push(method_result_none());
    }
    for r in results {
        field.push(r.method_result());
    }
    Ok(field)
}

/// Judges `verifier` with what it has and hands the results over; a
/// panicking callback is contained (its responders answer 451).
fn complete(verifier: Verifier, done: Done) {
    let results = verifier.into_results();
    if catch_unwind(AssertUnwindSafe(move || done(results))).is_err() {
        tracing::error!("a DKIM result callback panicked");
    }
}

/// A job waiting for its answers.
struct Pending {
    job: Box<dyn Job>,
    deadline: Instant,
    lookups: Vec<LookupId>,
    /// The questions already asked or queued (an SPF evaluation lists
    /// those still unanswered again after each answer).
    asked: Vec<Question>,
}

/// The service thread's state.
struct Worker {
    poll: Poll,
    pump: DnsPump,
    queue: Receiver<Box<dyn Job>>,
    config: DkimConfig,
    pending: Slab<Pending>,
    /// Which message each lookup is for.
    lookups: std::collections::HashMap<LookupId, usize>,
    /// Questions not yet asked (the resolver was full).
    waiting: std::collections::VecDeque<(usize, Question)>,
}

impl Worker {
    fn new(poll: Poll, pump: DnsPump, queue: Receiver<Box<dyn Job>>, config: DkimConfig) -> Self {
        Self {
            poll,
            pump,
            queue,
            config,
            pending: Slab::new(),
            lookups: std::collections::HashMap::new(),
            waiting: std::collections::VecDeque::new(),
        }
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let mut open = true;
        loop {
            let now = Instant::now();
            let next = self
                .pending
                .iter()
                .map(|(_, p)| p.deadline)
                .chain(self.pump.next_deadline())
                .min();
            let timeout = next.map(|d| d.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!(error = %e, "DKIM service poll failed; stopping");
                break;
            }
            let now = Instant::now();
            for event in &events {
                if event.token() != WAKER {
                    self.pump
                        .handle_event(self.poll.registry(), now, event.token());
                }
            }
            self.pump.handle_timeout(self.poll.registry(), now);
            loop {
                match self.queue.try_recv() {
                    Ok(job) => self.admit(job, now),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            self.progress(now);
            let expired: Vec<usize> = self
                .pending
                .iter()
                .filter(|(_, p)| p.deadline <= now)
                .map(|(key, _)| key)
                .collect();
            for key in expired {
                self.finish(key, now);
            }
            if !open && self.pending.is_empty() {
                return;
            }
        }
        // The poll failed: judge what is held without its keys.
        let keys: Vec<usize> = self.pending.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.finish(key, Instant::now());
        }
    }

    /// A new job: started (a message's body hashes are checked), its
    /// questions queued.
    fn admit(&mut self, mut job: Box<dyn Job>, now: Instant) {
        job.start();
        if job.is_done() || self.pending.len() >= self.config.max_pending {
            job.complete();
            return;
        }
        let questions = job.questions();
        let key = self.pending.insert(Pending {
            job,
            deadline: now + self.config.timeout,
            lookups: Vec::new(),
            asked: questions.clone(),
        });
        self.waiting.extend(questions.into_iter().map(|q| (key, q)));
    }

    /// Asks what can be asked and takes what was answered, until nothing
    /// moves (a cached answer resolves at once).
    fn progress(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Some((key, question)) = self.waiting.front().cloned() {
                if !self.pending.contains(key) {
                    self.waiting.pop_front();
                    continue;
                }
                match self.pump.lookup(self.poll.registry(), now, question) {
                    Ok(id) => {
                        self.waiting.pop_front();
                        self.lookups.insert(id, key);
                        self.pending[key].lookups.push(id);
                        moved = true;
                    }
                    // Full: asked when a lookup finishes.
                    Err(LookupFailed::Resolver(_)) => break,
                    Err(LookupFailed::Random) => {
                        // No safe query id: this key stays unanswered
                        // (temperror at the deadline).
                        tracing::warn!("no random numbers for a DNS query id");
                        self.waiting.pop_front();
                    }
                }
            }
            while let Some(resolved) = self.pump.poll_resolved() {
                moved = true;
                let Some(key) = self.lookups.remove(&resolved.id) else {
                    continue;
                };
                let Some(pending) = self.pending.get_mut(key) else {
                    continue;
                };
                pending.lookups.retain(|id| *id != resolved.id);
                pending
                    .job
                    .handle_answer(&resolved.question, &resolved.result);
                if !pending.job.is_done() {
                    // An answer can raise new questions (an SPF include).
                    for question in pending.job.questions() {
                        if !pending.asked.contains(&question) {
                            pending.asked.push(question.clone());
                            self.waiting.push_back((key, question));
                        }
                    }
                }
                let queued = self.waiting.iter().any(|(k, _)| *k == key);
                if pending.job.is_done() || (pending.lookups.is_empty() && !queued) {
                    self.finish(key, now);
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Ends a message's wait: lookups still out are cancelled and count as
    /// `temperror`.
    fn finish(&mut self, key: usize, now: Instant) {
        let Some(pending) = self.pending.try_remove(key) else {
            return;
        };
        for id in &pending.lookups {
            self.lookups.remove(id);
            self.pump.cancel(self.poll.registry(), now, *id);
        }
        self.waiting.retain(|(k, _)| *k != key);
        pending.job.complete();
    }
}
