//! The event loop: jobs in, connections out, results back.
//!
//! # Bookkeeping
//!
//! - A **job** becomes one **task** per destination: the relay, or each
//!   recipient domain (and each address literal) under MX routing. The job's
//!   result is sent when its last task is done.
//! - A **destination** has a queue of tasks, its connections, and (under MX
//!   routing) its route: the MX lookup in flight, the plan built from the
//!   answer, the host addresses looked up so far. It is forgotten when it has
//!   neither tasks nor connections, so nothing grows with the number of
//!   domains ever seen.
//! - A **connection** walks its own copy of the destination's plan: each
//!   failed attempt (connect refused or timed out, TLS failed, a refusal
//!   before the session was ready) moves it on — to the next address after a
//!   connect failure, to the next host after a reply — until one host is
//!   ready. Only then does it take tasks, one at a time, from its
//!   destination's queue; between tasks it is idle, and an idle connection is
//!   closed after [`idle_timeout`](super::EngineConfig::idle_timeout) or
//!   after [`max_messages_per_connection`](super::EngineConfig::max_messages_per_connection).
//!
//! # Scheduling
//!
//! After every turn, each destination touched is scheduled: idle
//! connections take queued tasks, and new connections are opened while the
//! queue is longer than the number already on their way, within the
//! destination's limit (M) and the engine's (N). When N is reached, an idle
//! connection of another destination is closed to make room, and the
//! destination waits for a slot. A destination whose every connection
//! failed has its queue failed with the last failure (Postfix's "dead
//! destination"); one that fails while others to it are open is held to the
//! number open.
//!
//! # Why one result per job, always
//!
//! Every path that drops a task reports it: a transaction that ends (any
//! way: reply, error, lost connection, cancel), a destination that cannot be
//! reached, a refused MX lookup, a shutdown. A task belongs to exactly one
//! place at a time — a destination's queue or one connection — so it is
//! reported exactly once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::ClientConfig;
use slab::Slab;
use smtp_blocking::tls::server_name;
use smtp_proto::address::{AddressLiteral, ForwardPath, Host};
use smtp_proto::client::{
    self as session, AuthConfig, Client, DeliveryReport, Envelope, Outcome, TlsMode,
};
use smtp_proto::mx::{DeliveryPlan, HostName, MxAnswer, Next, PlanConfig, Severity};

use super::config::{EngineConfig, Routing};
use super::connection::{Body, Conn, ConnEvent, Dial, Phase};
use super::handle::{Handle, Request, Shared};
use super::job::{
    Failure, Job, JobId, JobResult, Message, Peer, RecipientReport, Status, SubmitError,
};
use crate::dns::{DnsClient, LookupId, LookupOutcome};
use crate::timers::Deadlines;
use crate::transport::Transport;

/// Token of the waker (requests from [`Handle`]s).
const WAKER: Token = Token(usize::MAX);
/// First token of the DNS client's sockets.
const DNS_FIRST: usize = usize::MAX - 1 - DnsClient::TOKENS;
/// Read buffer, shared by every connection (each read is handed to its
/// session at once).
const SCRATCH: usize = 16 * 1024;
/// How long the engine waits for the reply to QUIT before closing anyway.
/// Postfix waits `smtp_quit_timeout` (300 s); nothing depends on that reply
/// — every message on the connection was already answered — so a shorter
/// wait keeps shutdown prompt.
const QUIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A task's key in the engine.
pub(super) type TaskId = usize;

/// A counter the engine exposes for progress displays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Jobs submitted whose result is not out yet.
    pub pending_jobs: usize,
    /// Tasks waiting in destination queues.
    pub queued: usize,
    /// Open connections (any phase).
    pub connections: usize,
    /// Connections carrying a transaction.
    pub busy: usize,
    /// DNS lookups in flight.
    pub lookups: usize,
}

/// One job's progress.
struct JobState {
    reports: Vec<Option<RecipientReport>>,
    recipients: Vec<ForwardPath<'static>>,
    open_tasks: usize,
    tasks: Vec<TaskId>,
}

/// One job's share for one destination.
struct Task {
    job: JobId,
    /// Indices of its recipients in the job's envelope.
    indices: Vec<usize>,
    envelope: Envelope,
    body: Option<Body>,
    /// The connection carrying it, once started.
    conn: Option<usize>,
    /// Its destination key.
    dest: String,
    /// Already sent again once after a connection was lost without a reply.
    retried: bool,
}

/// How a destination is reached.
enum Route {
    /// Fixed addresses (the relay, an address literal).
    Addresses {
        name: String,
        addrs: Arc<[SocketAddr]>,
    },
    /// MX lookup in flight.
    Looking,
    /// The plan every new connection walks a copy of.
    Plan(DeliveryPlan),
    /// The destination cannot be reached: queued tasks fail with this.
    Failed(Failure, Severity),
}

/// Tasks, connections and route of one destination.
struct Destination {
    route: Route,
    queue: VecDeque<TaskId>,
    conns: Vec<usize>,
    /// Connection limit (M, lowered by failures).
    limit: usize,
    /// Host addresses looked up (MX routing), shared by its connections.
    addresses: HashMap<HostName, Result<Vec<IpAddr>, Severity>>,
    /// Host lookups in flight.
    resolving: HashMap<HostName, LookupId>,
}

/// What a DNS lookup is for.
enum LookupFor {
    Mx(String),
    Host(String, HostName),
}

/// The delivery engine: see the [module docs](super).
pub struct Engine {
    poll: Poll,
    events: Events,
    shared: Arc<Shared>,
    config: EngineConfig,
    session: session::Config,
    tls: Arc<ClientConfig>,
    /// The relay's addresses, looked up once.
    relay: Option<(String, Arc<[SocketAddr]>)>,
    dns: Option<DnsClient>,
    jobs: HashMap<JobId, JobState>,
    tasks: Slab<Task>,
    dests: HashMap<String, Destination>,
    conns: Slab<Conn>,
    deadlines: Deadlines<usize>,
    lookups: HashMap<LookupId, LookupFor>,
    results: VecDeque<JobResult>,
    /// Destinations to schedule at the end of the turn.
    dirty: HashSet<String>,
    /// Destinations waiting for a free connection slot.
    starved: VecDeque<String>,
    shutting_down: bool,
    scratch: Vec<u8>,
    conn_events: Vec<ConnEvent>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("stats", &self.stats())
            .field("shutting_down", &self.shutting_down)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with `config`. A relay given by name is looked up here,
    /// once, with the system resolver; MX routing opens its DNS sockets
    /// here.
    ///
    /// # Errors
    ///
    /// The event loop or a DNS socket cannot be created, or the relay's name
    /// does not resolve.
    pub fn new(config: EngineConfig) -> io::Result<Self> {
        let poll = Poll::new()?;
        let shared = Arc::new(Shared::new(poll.registry(), WAKER)?);
        let mut session = session::Config::new(config.helo_name.clone());
        session.timeouts = config.timeouts;
        session.body_transfer = config.body_transfer;
        let mut relay = None;
        let mut dns = None;
        match &config.routing {
            Routing::Relay(r) => {
                let addrs: Vec<SocketAddr> = (r.host.as_str(), r.port).to_socket_addrs()?.collect();
                if addrs.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("the relay {} has no address", r.host),
                    ));
                }
                relay = Some((r.host.clone(), addrs.into()));
                session.tls = r.tls;
                if let Some(credentials) = &r.credentials {
                    let mut auth = AuthConfig::new(credentials.clone());
                    auth.allow_plaintext = r.allow_plaintext_auth;
                    session.auth = Some(auth);
                }
            }
            Routing::Mx(mx) => {
                session.tls = mx.tls;
                dns = Some(DnsClient::new(
                    &mx.resolver,
                    poll.registry(),
                    Token(DNS_FIRST),
                )?);
            }
        }
        let tls = Arc::clone(config.tls.client_config());
        Ok(Self {
            poll,
            events: Events::with_capacity(1024),
            shared,
            session,
            tls,
            relay,
            dns,
            config,
            jobs: HashMap::new(),
            tasks: Slab::new(),
            dests: HashMap::new(),
            conns: Slab::new(),
            deadlines: Deadlines::new(),
            lookups: HashMap::new(),
            results: VecDeque::new(),
            dirty: HashSet::new(),
            starved: VecDeque::new(),
            shutting_down: false,
            scratch: vec![0; SCRATCH],
            conn_events: Vec::new(),
        })
    }

    /// A handle to submit, cancel and shut down from other threads; it
    /// wakes the loop.
    pub fn handle(&self) -> Handle {
        Handle::new(Arc::clone(&self.shared))
    }

    /// Counters for progress displays.
    pub fn stats(&self) -> Stats {
        Stats {
            pending_jobs: self.jobs.len(),
            queued: self.dests.values().map(|d| d.queue.len()).sum(),
            connections: self.conns.len(),
            busy: self
                .conns
                .iter()
                .filter(|(_, c)| c.phase == Phase::Busy)
                .count(),
            lookups: self.dns.as_ref().map_or(0, DnsClient::in_flight),
        }
    }

    /// Whether every submitted job has its result (taken or not).
    pub fn is_done(&self) -> bool {
        self.jobs.is_empty() && self.shared.is_empty()
    }

    /// Whether the engine was shut down and every connection is closed.
    pub fn is_shut_down(&self) -> bool {
        self.shutting_down && self.conns.is_empty() && self.is_done()
    }

    /// Submits a job; its [`JobResult`] comes out of
    /// [`next_result`](Self::next_result) when every recipient has an
    /// outcome.
    ///
    /// # Errors
    ///
    /// [`SubmitError::NoRecipients`], or [`SubmitError::ShuttingDown`] after
    /// [`shutdown`](Self::shutdown).
    pub fn submit(&mut self, job: Job) -> Result<JobId, SubmitError> {
        if self.shutting_down {
            return Err(SubmitError::ShuttingDown);
        }
        if job.envelope.recipients.is_empty() {
            return Err(SubmitError::NoRecipients);
        }
        let id = self.shared.next_id();
        self.accept(id, job, Instant::now());
        Ok(id)
    }

    /// Cancels a job. Its tasks still queued are reported
    /// [`Status::NotAttempted`]; a transaction in progress is cut off by
    /// closing its connection, and its recipients without a final answer
    /// are reported as temporary failures ([`Failure::Cancelled`]) — the
    /// server may have taken the message if the content was complete, so a
    /// retry may duplicate it. `false` if the job is unknown or done.
    pub fn cancel(&mut self, id: JobId) -> bool {
        let Some(state) = self.jobs.get(&id) else {
            return false;
        };
        let tasks = state.tasks.clone();
        for task in tasks {
            let Some(t) = self.tasks.get(task) else {
                continue;
            };
            match t.conn {
                Some(conn) => {
                    let mut out = std::mem::take(&mut self.conn_events);
                    if let Some(c) = self.conns.get_mut(conn) {
                        c.abort(Failure::Cancelled, &mut out);
                    }
                    self.handle_conn_events(conn, &mut out, Instant::now());
                    self.conn_events = out;
                }
                None => {
                    let dest = self.dest_of(task);
                    if let Some(d) = dest.and_then(|k| self.dests.get_mut(&k)) {
                        d.queue.retain(|&t| t != task);
                    }
                    self.fail_task(task, Status::NotAttempted, Failure::Cancelled, None);
                }
            }
        }
        true
    }

    /// Begins a graceful shutdown: no new job is taken, queued tasks are
    /// reported [`Status::NotAttempted`], transactions in progress finish,
    /// and every connection QUITs. Keep calling [`poll`](Self::poll) until
    /// [`is_shut_down`](Self::is_shut_down) (or use [`close`](Self::close)).
    pub fn shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.drain_requests();
        let now = Instant::now();
        let keys: Vec<String> = self.dests.keys().cloned().collect();
        for key in keys {
            let queue = self
                .dests
                .get_mut(&key)
                .map(|d| std::mem::take(&mut d.queue))
                .unwrap_or_default();
            for task in queue {
                self.fail_task(task, Status::NotAttempted, Failure::Shutdown, None);
            }
        }
        let ids: Vec<LookupId> = self.lookups.drain().map(|(id, _)| id).collect();
        if let Some(dns) = self.dns.as_mut() {
            for id in ids {
                dns.cancel(id);
            }
        }
        let conns: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for conn in conns {
            self.retire(conn, now);
        }
    }

    /// Takes the next finished job's result.
    pub fn next_result(&mut self) -> Option<JobResult> {
        self.results.pop_front()
    }

    /// Runs until every submitted job has its result, handing each to
    /// `on_result` as it comes. Idle connections stay open (until their
    /// idle timeout) for the next jobs.
    ///
    /// # Errors
    ///
    /// The event loop failed.
    pub fn run_until_done(&mut self, mut on_result: impl FnMut(JobResult)) -> io::Result<()> {
        loop {
            while let Some(result) = self.next_result() {
                on_result(result);
            }
            if self.is_done() {
                return Ok(());
            }
            self.poll(None)?;
        }
    }

    /// Runs until [`shutdown`](Self::shutdown) (called here or through a
    /// [`Handle`]) has finished, handing each result to `on_result`: the
    /// loop of a long-running relay on its own thread.
    ///
    /// # Errors
    ///
    /// The event loop failed.
    pub fn run(&mut self, mut on_result: impl FnMut(JobResult)) -> io::Result<()> {
        loop {
            while let Some(result) = self.next_result() {
                on_result(result);
            }
            if self.is_shut_down() {
                return Ok(());
            }
            self.poll(None)?;
        }
    }

    /// Shuts down and runs until every connection is closed, handing the
    /// remaining results to `on_result`.
    ///
    /// # Errors
    ///
    /// The event loop failed.
    pub fn close(mut self, on_result: impl FnMut(JobResult)) -> io::Result<()> {
        self.shutdown();
        self.run(on_result)
    }

    /// One turn of the loop: waits for socket readiness, a deadline, a
    /// request from a [`Handle`], or `timeout` — whichever comes first —
    /// and handles everything that is ready. Results are then available
    /// from [`next_result`](Self::next_result).
    ///
    /// # Errors
    ///
    /// `mio::Poll::poll` failed (other than by a signal).
    pub fn poll(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.drain_requests();
        self.schedule_dirty(Instant::now());
        if !self.results.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let next = [
            self.deadlines.next_deadline(),
            self.dns.as_ref().and_then(DnsClient::next_deadline),
        ]
        .into_iter()
        .flatten()
        .min();
        let until_deadline = next.map(|d| d.saturating_duration_since(now));
        let wait = match (timeout, until_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match self.poll.poll(&mut self.events, wait) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        let mut ready = Vec::new();
        let mut wake = false;
        for event in &self.events {
            let token = event.token();
            if token == WAKER {
                wake = true;
            } else if let Some(dns) = self.dns.as_mut().filter(|d| d.owns(token)) {
                dns.handle_event(self.poll.registry(), now, event);
            } else {
                ready.push(token.0);
            }
        }
        if wake {
            self.drain_requests();
        }
        for conn in ready {
            self.on_socket(conn, now);
        }
        let now = Instant::now();
        self.handle_dns(now);
        while let Some(conn) = self.deadlines.pop_expired(now) {
            self.on_deadline(conn, now);
        }
        self.schedule_dirty(now);
        Ok(())
    }

    // ---- jobs and tasks ----------------------------------------------------

    fn drain_requests(&mut self) {
        for request in self.shared.take() {
            match request {
                Request::Submit(id, job) => {
                    if self.shutting_down {
                        self.reject(id, job.envelope, Failure::Shutdown);
                    } else {
                        self.accept(id, *job, Instant::now());
                    }
                }
                Request::Cancel(id) => {
                    self.cancel(id);
                }
                Request::Shutdown => self.shutdown(),
            }
        }
    }

    /// Reports a job that was never queued.
    fn reject(&mut self, id: JobId, envelope: Envelope, failure: Failure) {
        let recipients = envelope
            .recipients
            .into_iter()
            .map(|(recipient, _)| RecipientReport {
                recipient,
                status: Status::NotAttempted,
                reply: None,
                peer: None,
                failure: Some(failure.clone()),
            })
            .collect();
        self.results.push_back(JobResult { id, recipients });
    }

    /// Splits a job into tasks per destination and queues them.
    fn accept(&mut self, id: JobId, job: Job, now: Instant) {
        let Job {
            mut envelope,
            message,
        } = job;
        let recipients: Vec<ForwardPath<'static>> =
            envelope.recipients.iter().map(|(r, _)| r.clone()).collect();
        if let Message::Bytes(bytes) = &message {
            if envelope.params.size.is_none() {
                envelope.params.size = u64::try_from(bytes.len()).ok();
            }
            if envelope.params.body.is_none() {
                envelope.declare_body(bytes);
            }
        }
        // Group recipients by destination, in first-seen order.
        let mut groups: Vec<(Result<String, Failure>, Vec<usize>)> = Vec::new();
        for (i, (recipient, _)) in envelope.recipients.iter().enumerate() {
            let key = self.destination_of(recipient);
            match groups.iter_mut().find(|(k, _)| match (k, &key) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let n = recipients.len();
        self.jobs.insert(
            id,
            JobState {
                reports: vec![None; n],
                recipients,
                open_tasks: groups.len(),
                tasks: Vec::new(),
            },
        );
        let routable = groups.iter().filter(|(k, _)| k.is_ok()).count();
        let mut shared_bytes: Option<Result<Arc<[u8]>, Failure>> = None;
        let mut message = Some(message);
        if routable > 1 {
            shared_bytes = Some(match message.take() {
                Some(Message::Bytes(b)) => Ok(b),
                Some(Message::Reader(mut r)) => {
                    let mut all = Vec::new();
                    match r.read_to_end(&mut all) {
                        Ok(_) => Ok(all.into()),
                        Err(e) => Err(Failure::Content(e.to_string())),
                    }
                }
                None => Err(Failure::Content(String::from("no content"))),
            });
        }
        for (key, indices) in groups {
            let task_envelope = {
                let mut e = envelope.clone();
                e.recipients = indices
                    .iter()
                    .filter_map(|&i| envelope.recipients.get(i).cloned())
                    .collect();
                e
            };
            let task = self.tasks.insert(Task {
                job: id,
                indices,
                envelope: task_envelope,
                body: None,
                conn: None,
                dest: key.as_ref().cloned().unwrap_or_default(),
                retried: false,
            });
            if let Some(state) = self.jobs.get_mut(&id) {
                state.tasks.push(task);
            }
            let key = match key {
                Ok(key) => key,
                Err(failure) => {
                    self.fail_task(task, Status::PermanentFailure, failure, None);
                    continue;
                }
            };
            let body = match (&shared_bytes, message.take()) {
                (Some(Ok(bytes)), _) => Body::bytes(Arc::clone(bytes)),
                (Some(Err(failure)), _) => {
                    self.fail_task(task, Status::TemporaryFailure, failure.clone(), None);
                    continue;
                }
                (None, Some(Message::Bytes(bytes))) => Body::bytes(bytes),
                (None, Some(Message::Reader(reader))) => Body::reader(reader),
                (None, None) => Body::bytes(Arc::from(&[][..])),
            };
            if let Some(t) = self.tasks.get_mut(task) {
                t.body = Some(body);
            }
            self.enqueue(key, task, now);
        }
    }

    /// The destination key of a recipient: the relay, a domain (lower
    /// case), or an address literal.
    fn destination_of(&self, recipient: &ForwardPath<'_>) -> Result<String, Failure> {
        if self.relay.is_some() {
            return Ok(String::from("relay"));
        }
        let no_route = || Failure::NoRoute(recipient.to_string());
        match recipient.mailbox().map(|m| m.host()) {
            Some(Host::Domain(d)) => Ok(d.as_str().to_ascii_lowercase()),
            Some(Host::Literal(AddressLiteral::Ipv4(ip))) => Ok(format!("[{ip}]")),
            Some(Host::Literal(AddressLiteral::Ipv6(ip))) => Ok(format!("[IPv6:{ip}]")),
            _ => Err(no_route()),
        }
    }

    fn enqueue(&mut self, key: String, task: TaskId, now: Instant) {
        if !self.dests.contains_key(&key) {
            let route = self.initial_route(&key, now);
            self.dests.insert(
                key.clone(),
                Destination {
                    route,
                    queue: VecDeque::new(),
                    conns: Vec::new(),
                    limit: self.config.max_per_destination.max(1),
                    addresses: HashMap::new(),
                    resolving: HashMap::new(),
                },
            );
        }
        if let Some(d) = self.dests.get_mut(&key) {
            d.queue.push_back(task);
        }
        self.dirty.insert(key);
    }

    fn initial_route(&mut self, key: &str, now: Instant) -> Route {
        if let Some((name, addrs)) = &self.relay {
            return Route::Addresses {
                name: name.clone(),
                addrs: Arc::clone(addrs),
            };
        }
        let port = match &self.config.routing {
            Routing::Mx(mx) => mx.port,
            Routing::Relay(r) => r.port,
        };
        if let Some(literal) = key.strip_prefix('[').and_then(|k| k.strip_suffix(']')) {
            let ip = literal.strip_prefix("IPv6:").unwrap_or(literal);
            return match ip.parse::<IpAddr>() {
                Ok(ip) => Route::Addresses {
                    name: key.to_owned(),
                    addrs: Arc::from(vec![SocketAddr::new(ip, port)]),
                },
                Err(_) => Route::Failed(Failure::NoRoute(key.to_owned()), Severity::Permanent),
            };
        }
        let name = match HostName::parse(key) {
            Ok(name) => name,
            Err(e) => {
                return Route::Failed(Failure::NoRoute(format!("{key}: {e}")), Severity::Permanent);
            }
        };
        match self.dns.as_mut() {
            Some(dns) => {
                let id = dns.lookup_mx(self.poll.registry(), now, &name);
                self.lookups.insert(id, LookupFor::Mx(key.to_owned()));
                Route::Looking
            }
            None => Route::Failed(Failure::NoRoute(key.to_owned()), Severity::Permanent),
        }
    }

    fn dest_of(&self, task: TaskId) -> Option<String> {
        self.tasks.get(task).map(|t| t.dest.clone())
    }

    /// Reports every recipient of a task with the same outcome.
    fn fail_task(&mut self, task: TaskId, status: Status, failure: Failure, peer: Option<Peer>) {
        let Some(t) = self.tasks.try_remove(task) else {
            return;
        };
        let reports = t
            .indices
            .iter()
            .zip(&t.envelope.recipients)
            .map(|(&i, (recipient, _))| {
                (
                    i,
                    RecipientReport {
                        recipient: recipient.clone(),
                        status,
                        reply: None,
                        peer: peer.clone(),
                        failure: Some(failure.clone()),
                    },
                )
            })
            .collect();
        self.finish_task(t.job, reports);
    }

    /// Reports a task from the session's delivery report.
    fn complete_task(
        &mut self,
        task: TaskId,
        report: DeliveryReport,
        failure: Option<Failure>,
        peer: Option<Peer>,
    ) {
        let Some(t) = self.tasks.try_remove(task) else {
            return;
        };
        let reports = t
            .indices
            .iter()
            .zip(report.recipients)
            .map(|(&i, r)| {
                let status = match r.outcome {
                    Outcome::Accepted => Status::Accepted,
                    Outcome::PermanentFailure => Status::PermanentFailure,
                    _ => Status::TemporaryFailure,
                };
                let failure = match status {
                    Status::Accepted => None,
                    _ => failure.clone(),
                };
                (
                    i,
                    RecipientReport {
                        recipient: r.recipient,
                        status,
                        reply: r.reply,
                        peer: peer.clone(),
                        failure,
                    },
                )
            })
            .collect();
        self.finish_task(t.job, reports);
    }

    /// Puts a task back at the head of its destination's queue, once.
    fn requeue(&mut self, task: TaskId, body: Body, now: Instant) {
        let Some(t) = self.tasks.get_mut(task) else {
            return;
        };
        if t.retried {
            let failure =
                Failure::Connection(String::from("connection lost before any reply, twice"));
            self.fail_task(task, Status::TemporaryFailure, failure, None);
            return;
        }
        t.retried = true;
        t.conn = None;
        t.body = Some(body);
        let key = t.dest.clone();
        if !self.dests.contains_key(&key) {
            self.enqueue(key, task, now);
            return;
        }
        if let Some(d) = self.dests.get_mut(&key) {
            d.queue.push_front(task);
        }
        self.dirty.insert(key);
    }

    fn finish_task(&mut self, job: JobId, reports: Vec<(usize, RecipientReport)>) {
        let Some(state) = self.jobs.get_mut(&job) else {
            return;
        };
        for (i, report) in reports {
            if let Some(slot) = state.reports.get_mut(i) {
                *slot = Some(report);
            }
        }
        state.open_tasks = state.open_tasks.saturating_sub(1);
        if state.open_tasks > 0 {
            return;
        }
        let Some(state) = self.jobs.remove(&job) else {
            return;
        };
        let recipients = state
            .reports
            .into_iter()
            .zip(state.recipients)
            .map(|(report, recipient)| {
                // Every recipient belongs to exactly one task; a slot left
                // empty would be a bookkeeping bug, reported, never hidden.
                report.unwrap_or(RecipientReport {
                    recipient,
                    status: Status::TemporaryFailure,
                    reply: None,
                    peer: None,
                    failure: Some(Failure::Connection(String::from("no outcome recorded"))),
                })
            })
            .collect();
        self.results.push_back(JobResult {
            id: job,
            recipients,
        });
    }

    // ---- DNS ---------------------------------------------------------------

    fn handle_dns(&mut self, now: Instant) {
        let Some(dns) = self.dns.as_mut() else {
            return;
        };
        dns.handle_timeout(self.poll.registry(), now);
        let mut resolved = Vec::new();
        while let Some(r) = dns.poll_resolved() {
            resolved.push(r);
        }
        for r in resolved {
            match (self.lookups.remove(&r.id), r.outcome) {
                (Some(LookupFor::Mx(key)), LookupOutcome::Mx(answer)) => {
                    self.on_mx(&key, answer);
                }
                (Some(LookupFor::Host(key, host)), LookupOutcome::Addresses(answer)) => {
                    self.on_addresses(&key, host, answer, now);
                }
                _ => {}
            }
        }
    }

    fn on_mx(&mut self, key: &str, answer: Result<MxAnswer, crate::dns::DnsFailure>) {
        let plan_config = match &self.config.routing {
            Routing::Mx(mx) => mx.plan.clone(),
            Routing::Relay(_) => PlanConfig::default(),
        };
        let route = match answer {
            Ok(MxAnswer::NullMx) => {
                Route::Failed(Failure::NullMx(key.to_owned()), Severity::Permanent)
            }
            Ok(MxAnswer::NxDomain) => {
                Route::Failed(Failure::NxDomain(key.to_owned()), Severity::Permanent)
            }
            Ok(answer) => match answer.into_hosts() {
                Some(hosts) => match DeliveryPlan::new(hosts, &plan_config) {
                    Ok(plan) => Route::Plan(plan),
                    Err(e) => {
                        Route::Failed(Failure::NoRoute(format!("{key}: {e}")), Severity::Permanent)
                    }
                },
                None => Route::Failed(
                    Failure::NoRoute(format!("{key}: no hosts in the answer")),
                    Severity::Temporary,
                ),
            },
            Err(failure) => {
                let severity = failure.severity();
                Route::Failed(Failure::Dns(failure), severity)
            }
        };
        if let Some(d) = self.dests.get_mut(key) {
            d.route = route;
        }
        self.dirty.insert(key.to_owned());
    }

    fn on_addresses(
        &mut self,
        key: &str,
        host: HostName,
        answer: Result<Vec<IpAddr>, crate::dns::DnsFailure>,
        now: Instant,
    ) {
        let Some(d) = self.dests.get_mut(key) else {
            return;
        };
        d.resolving.remove(&host);
        d.addresses
            .insert(host.clone(), answer.map_err(|f| f.severity()));
        let waiting: Vec<usize> = d
            .conns
            .iter()
            .copied()
            .filter(|&c| {
                self.conns
                    .get(c)
                    .is_some_and(|c| c.phase == Phase::Resolving(host.clone()))
            })
            .collect();
        for conn in waiting {
            if let Some(c) = self.conns.get_mut(conn) {
                c.phase = Phase::Dialing;
            }
            self.dial(conn, now);
        }
    }

    // ---- connections -------------------------------------------------------

    /// Opens a new connection for a destination with a ready route.
    fn open(&mut self, key: &str, now: Instant) {
        let Some(d) = self.dests.get(key) else {
            return;
        };
        let port = match &self.config.routing {
            Routing::Mx(mx) => mx.port,
            Routing::Relay(r) => r.port,
        };
        let dial = match &d.route {
            Route::Addresses { name, addrs } => Dial::Addresses {
                name: name.clone(),
                addrs: Arc::clone(addrs),
                next: 0,
            },
            Route::Plan(plan) => Dial::Mx {
                plan: plan.clone(),
                port,
            },
            _ => return,
        };
        let conn = self.conns.insert(Conn::new(key.to_owned(), dial));
        if let Some(d) = self.dests.get_mut(key) {
            d.conns.push(conn);
        }
        self.dial(conn, now);
    }

    /// Walks a connection's plan to its next target and connects, or
    /// starts a lookup, or gives up.
    fn dial(&mut self, conn: usize, now: Instant) {
        loop {
            let Some(c) = self.conns.get_mut(conn) else {
                return;
            };
            let key = c.dest.clone();
            let target = match &mut c.dial {
                Dial::Addresses { name, addrs, next } => match addrs.get(*next) {
                    Some(addr) => Ok((name.clone(), *addr)),
                    None => Err(Severity::Temporary),
                },
                Dial::Mx { plan, port } => match plan.next_target() {
                    Next::Connect(target) => Ok((
                        target.host().name().as_str().to_owned(),
                        SocketAddr::new(target.ip(), *port),
                    )),
                    Next::Resolve(host) => {
                        let host = host.name().clone();
                        let Some(d) = self.dests.get_mut(&key) else {
                            return;
                        };
                        match d.addresses.get(&host) {
                            Some(Ok(ips)) => {
                                let _ = plan.resolved(ips.clone());
                                continue;
                            }
                            Some(Err(severity)) => {
                                let _ = plan.resolution_failed(*severity);
                                continue;
                            }
                            None => {
                                if !d.resolving.contains_key(&host)
                                    && let Some(dns) = self.dns.as_mut()
                                {
                                    let id = dns.lookup_addresses(self.poll.registry(), now, &host);
                                    d.resolving.insert(host.clone(), id);
                                    self.lookups
                                        .insert(id, LookupFor::Host(key.clone(), host.clone()));
                                }
                                c.phase = Phase::Resolving(host);
                                return;
                            }
                        }
                    }
                    Next::Exhausted(severity) => Err(severity),
                    // A step this engine does not know: give up on the
                    // plan rather than spin.
                    _ => Err(Severity::Temporary),
                },
            };
            match target {
                Ok((name, addr)) => {
                    if self.connect(conn, name, addr, now) {
                        return;
                    }
                    // Could not even start: next target.
                    self.advance_plan(conn, false);
                }
                Err(severity) => {
                    self.unreachable(conn, severity);
                    return;
                }
            }
        }
    }

    /// Starts a TCP connect. `false` if it failed at once.
    fn connect(&mut self, conn: usize, name: String, addr: SocketAddr, now: Instant) -> bool {
        let registry = self.poll.registry();
        let Some(c) = self.conns.get_mut(conn) else {
            return false;
        };
        c.peer = Some(Peer {
            name: name.clone(),
            addr,
        });
        c.tls_name = server_name(&name).ok();
        c.setup_replied = false;
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                c.last_failure = Some(format!("connect to {addr}: {e}"));
                return false;
            }
        };
        if let Err(e) = registry.register(
            &mut stream,
            Token(conn),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            c.last_failure = Some(format!("connect to {addr}: {e}"));
            return false;
        }
        c.transport = Some(Transport::plain(stream));
        c.client = None;
        c.phase = Phase::Connecting;
        c.own_deadline = Some(now + self.config.connect_timeout);
        c.session_deadline = None;
        self.deadlines.set(conn, c.deadline());
        true
    }

    /// Moves a connection's plan past a failed attempt.
    fn advance_plan(&mut self, conn: usize, replied: bool) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        match &mut c.dial {
            Dial::Addresses { next, .. } => *next += 1,
            Dial::Mx { plan, .. } => {
                let _ = if replied {
                    plan.on_temporary_failure()
                } else {
                    plan.on_connect_failed()
                };
            }
        }
    }

    /// Drops a failed attempt's socket and session and dials the next
    /// target.
    fn redial(&mut self, conn: usize, replied: bool, now: Instant) {
        let registry = self.poll.registry();
        if let Some(c) = self.conns.get_mut(conn) {
            if let Some(mut t) = c.transport.take() {
                let _ = registry.deregister(t.socket_mut());
            }
            c.client = None;
            c.phase = Phase::Dialing;
            c.own_deadline = None;
            c.session_deadline = None;
        }
        self.deadlines.remove(conn);
        self.advance_plan(conn, replied);
        self.dial(conn, now);
    }

    /// Every target of a connection failed.
    fn unreachable(&mut self, conn: usize, severity: Severity) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let key = c.dest.clone();
        let peer = c.peer.clone();
        let failure = Failure::Unreachable(
            c.last_failure
                .clone()
                .unwrap_or_else(|| String::from("no usable address")),
        );
        self.remove_conn(conn);
        let Some(d) = self.dests.get_mut(&key) else {
            return;
        };
        if d.conns.is_empty() {
            // A dead destination: everything queued for it fails now
            // rather than waiting for connections that fail the same way.
            let queue = std::mem::take(&mut d.queue);
            let status = match severity {
                Severity::Permanent => Status::PermanentFailure,
                Severity::Temporary => Status::TemporaryFailure,
            };
            for task in queue {
                self.fail_task(task, status, failure.clone(), peer.clone());
            }
        } else {
            d.limit = d.conns.len().max(1);
        }
        self.dirty.insert(key);
    }

    fn remove_conn(&mut self, conn: usize) {
        let registry = self.poll.registry();
        if let Some(mut c) = self.conns.try_remove(conn) {
            if let Some(mut t) = c.transport.take() {
                let _ = registry.deregister(t.socket_mut());
            }
            if let Some(d) = self.dests.get_mut(&c.dest) {
                d.conns.retain(|&k| k != conn);
            }
            self.dirty.insert(c.dest.clone());
        }
        self.deadlines.remove(conn);
        // A slot is free: destinations waiting for one get a turn.
        self.dirty.extend(self.starved.drain(..));
    }

    /// A socket event on a connection.
    fn on_socket(&mut self, conn: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.phase == Phase::Connecting {
            let Some(t) = c.transport.as_mut() else {
                return;
            };
            let stream = t.socket_mut();
            let failed = match stream.take_error() {
                Ok(Some(e)) | Err(e) => Some(e),
                Ok(None) => match stream.peer_addr() {
                    Ok(_) => None,
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                    Err(e) => Some(e),
                },
            };
            if let Some(e) = failed {
                let addr = c
                    .peer
                    .as_ref()
                    .map(|p| p.addr.to_string())
                    .unwrap_or_default();
                c.last_failure = Some(format!("connect to {addr}: {e}"));
                self.redial(conn, false, now);
                return;
            }
            let _ = stream.set_nodelay(true);
            if !self.established(conn, now) {
                return;
            }
        }
        self.drive(conn, now);
    }

    /// The TCP connection is up: start the session (and implicit TLS).
    fn established(&mut self, conn: usize, now: Instant) -> bool {
        let Some(c) = self.conns.get_mut(conn) else {
            return false;
        };
        let config = self.session.clone();
        if config.tls == TlsMode::Implicit {
            // Implicit TLS (RFC 8314): the handshake comes before any SMTP
            // byte, on the same stream.
            let started = match (c.tls_name.clone(), c.transport.as_mut()) {
                (Some(name), Some(t)) => t
                    .start_tls_client(Arc::clone(&self.tls), name)
                    .map_err(|e| format!("TLS: {e}")),
                _ => Err(String::from("no TLS server name")),
            };
            if let Err(e) = started {
                c.last_failure = Some(e);
                self.redial(conn, false, now);
                return false;
            }
        }
        c.client = Some(Client::new(config, now));
        c.phase = Phase::Setup;
        c.own_deadline = None;
        true
    }

    /// Runs a connection's session and acts on what it reports.
    fn drive(&mut self, conn: usize, now: Instant) {
        let mut out = std::mem::take(&mut self.conn_events);
        if let Some(c) = self.conns.get_mut(conn) {
            c.drive(now, &mut self.scratch, &self.tls, &mut out);
        }
        self.handle_conn_events(conn, &mut out, now);
        self.conn_events = out;
    }

    fn handle_conn_events(&mut self, conn: usize, out: &mut Vec<ConnEvent>, now: Instant) {
        let mut pending: VecDeque<ConnEvent> = out.drain(..).collect();
        while let Some(event) = pending.pop_front() {
            match event {
                ConnEvent::Ready => self.next_job(conn, now),
                ConnEvent::TaskDone {
                    task,
                    report,
                    failure,
                    body,
                } => {
                    let (peer, reused) = self
                        .conns
                        .get_mut(conn)
                        .map(|c| {
                            c.delivered += 1;
                            (c.peer.clone(), c.delivered > 1)
                        })
                        .unwrap_or_default();
                    if reused
                        && report.mail.is_none()
                        && !matches!(failure, Some(Failure::Cancelled))
                    {
                        // Not one reply on a reused connection: the server
                        // had dropped it (an idle timeout racing our MAIL).
                        // Nothing was acknowledged and no content sent, so
                        // the task goes out again, once, on another one.
                        self.requeue(task, body, now);
                    } else {
                        self.complete_task(task, *report, failure, peer);
                    }
                    self.next_job(conn, now);
                }
                ConnEvent::Closed {
                    during_setup,
                    replied,
                    ..
                } => {
                    if during_setup && !self.shutting_down {
                        self.redial(conn, replied, now);
                    } else {
                        if let Some(task) = self
                            .conns
                            .get_mut(conn)
                            .and_then(|c| c.active.take())
                            .map(|a| a.task)
                        {
                            // Defensive: a transaction always reports before
                            // its connection closes.
                            self.fail_task(
                                task,
                                Status::TemporaryFailure,
                                Failure::Connection(String::from("connection closed")),
                                None,
                            );
                        }
                        self.remove_conn(conn);
                    }
                    return;
                }
            }
            let mut more = Vec::new();
            if let Some(c) = self.conns.get_mut(conn) {
                c.drive(now, &mut self.scratch, &self.tls, &mut more);
            }
            pending.extend(more);
        }
        if let Some(c) = self.conns.get(conn) {
            self.deadlines.set(conn, c.deadline());
        }
    }

    /// A connection is ready for another job: give it one, or let it idle,
    /// or retire it.
    fn next_job(&mut self, conn: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.phase != Phase::Idle {
            return;
        }
        if self.shutting_down || c.delivered >= self.config.max_messages_per_connection.max(1) {
            self.retire(conn, now);
            return;
        }
        let key = c.dest.clone();
        let Some(task) = self.dests.get_mut(&key).and_then(|d| d.queue.pop_front()) else {
            if self.starved.is_empty() {
                c.own_deadline = Some(now + self.config.idle_timeout);
            } else {
                // Another destination waits for a slot: give it this one.
                self.retire(conn, now);
            }
            return;
        };
        let rset = c.delivered > 0
            && c.client
                .as_ref()
                .and_then(Client::extensions)
                .is_some_and(|e| e.supports_pipelining());
        let Some(t) = self.tasks.get_mut(task) else {
            return;
        };
        let body = t
            .body
            .take()
            .unwrap_or_else(|| Body::bytes(Arc::from(&[][..])));
        let envelope = t.envelope.clone();
        c.own_deadline = None;
        match c.start(task, envelope, body, rset) {
            Ok(()) => t.conn = Some(conn),
            Err(failure) => {
                let peer = c.peer.clone();
                self.fail_task(task, Status::PermanentFailure, failure, peer);
                // The connection is still good: try the next task.
                self.next_job(conn, now);
            }
        }
    }

    /// QUITs an idle connection, closes one still setting up; a busy one
    /// finishes its transaction first (then `next_job` retires it).
    fn retire(&mut self, conn: usize, now: Instant) {
        let mut out = std::mem::take(&mut self.conn_events);
        if let Some(c) = self.conns.get_mut(conn) {
            match c.phase {
                Phase::Idle => {
                    c.quit(&mut out);
                    c.own_deadline = Some(now + QUIT_TIMEOUT);
                    c.drive(now, &mut self.scratch, &self.tls, &mut out);
                }
                Phase::Busy | Phase::Quitting | Phase::Closed => {}
                _ => {
                    c.phase = Phase::Closed;
                    out.clear();
                    self.remove_conn(conn);
                    self.conn_events = out;
                    return;
                }
            }
        }
        self.handle_conn_events(conn, &mut out, now);
        self.conn_events = out;
    }

    fn on_deadline(&mut self, conn: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let own_due = c.own_deadline.is_some_and(|d| d <= now);
        match c.phase {
            Phase::Connecting if own_due => {
                let addr = c
                    .peer
                    .as_ref()
                    .map(|p| p.addr.to_string())
                    .unwrap_or_default();
                c.last_failure = Some(format!("connect to {addr}: timed out"));
                self.redial(conn, false, now);
                return;
            }
            Phase::Idle if own_due => {
                self.retire(conn, now);
                return;
            }
            Phase::Quitting if own_due => {
                self.remove_conn(conn);
                return;
            }
            _ => {}
        }
        if let Some(client) = c.client.as_mut() {
            client.handle_timeout(now);
        }
        self.drive(conn, now);
    }

    // ---- scheduling --------------------------------------------------------

    fn schedule_dirty(&mut self, now: Instant) {
        let dirty: Vec<String> = self.dirty.drain().collect();
        for key in dirty {
            self.schedule(&key, now);
        }
    }

    fn schedule(&mut self, key: &str, now: Instant) {
        let Some(d) = self.dests.get_mut(key) else {
            return;
        };
        if let Route::Failed(failure, severity) = &d.route {
            let (failure, severity) = (failure.clone(), *severity);
            let queue = std::mem::take(&mut d.queue);
            let status = match severity {
                Severity::Permanent => Status::PermanentFailure,
                Severity::Temporary => Status::TemporaryFailure,
            };
            for task in queue {
                self.fail_task(task, status, failure.clone(), None);
            }
        }
        // Idle connections take queued tasks.
        let idle: Vec<usize> = self.dests.get(key).map_or_else(Vec::new, |d| {
            d.conns
                .iter()
                .copied()
                .filter(|&c| self.conns.get(c).is_some_and(|c| c.phase == Phase::Idle))
                .collect()
        });
        for conn in idle {
            if self.dests.get(key).is_some_and(|d| d.queue.is_empty()) {
                break;
            }
            self.next_job(conn, now);
            let mut out = std::mem::take(&mut self.conn_events);
            if let Some(c) = self.conns.get_mut(conn) {
                c.drive(now, &mut self.scratch, &self.tls, &mut out);
            }
            self.handle_conn_events(conn, &mut out, now);
            self.conn_events = out;
        }
        // New connections while the queue outgrows those on their way.
        loop {
            let Some(d) = self.dests.get(key) else {
                return;
            };
            if !matches!(d.route, Route::Addresses { .. } | Route::Plan(_)) {
                break;
            }
            let coming = d
                .conns
                .iter()
                .filter(|&&c| self.conns.get(c).is_some_and(Conn::is_coming))
                .count();
            if d.queue.len() <= coming || d.conns.len() >= d.limit || self.shutting_down {
                break;
            }
            if self.conns.len() >= self.config.max_connections.max(1) {
                if !self.starved.iter().any(|k| k == key) {
                    self.starved.push_back(key.to_owned());
                }
                self.make_room(key, now);
                break;
            }
            self.open(key, now);
        }
        // Forget a destination with nothing left.
        if let Some(d) = self.dests.get(key)
            && d.queue.is_empty()
            && d.conns.is_empty()
            && !matches!(d.route, Route::Looking)
        {
            self.dests.remove(key);
        }
    }

    /// Closes an idle connection of another destination to free a slot.
    /// The slot stays taken until that connection has closed, so the
    /// destination still waits; `remove_conn` wakes it.
    fn make_room(&mut self, key: &str, now: Instant) {
        let victim = self
            .conns
            .iter()
            .find(|(_, c)| c.phase == Phase::Idle && c.dest != key)
            .map(|(k, _)| k);
        if let Some(conn) = victim {
            self.retire(conn, now);
        }
    }
}
