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

use mio::{Events, Poll, Token};
use rustls::ClientConfig;
use slab::Slab;
use smtp_proto::address::ForwardPath;
use smtp_proto::client::{self as session, AuthConfig, Envelope};
use smtp_proto::mx::{HostName, HostPlan, Severity};
use smtp_proto::tls::TlsConfig;

use super::config::{EngineConfig, Routing};
use super::connection::{Body, Conn, ConnEvent, Phase};
use super::handle::{Handle, Shared};
use super::job::{Failure, Job, JobId, JobResult, RecipientReport, Status, SubmitError};
use crate::dns::{DnsClient, LookupId};
use crate::timers::Deadlines;

mod connections;
mod jobs;
mod routing;
mod schedule;

/// Token of the waker (requests from [`Handle`]s).
const WAKER: Token = Token(usize::MAX);
/// First token of the DNS client's sockets.
const DNS_FIRST: usize = usize::MAX - 1 - DnsClient::TOKENS;
/// Read buffer, shared by every connection (each read is handed to its
/// session at once).
const SCRATCH: usize = 16 * 1024;

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
    /// MX hosts that deferred these recipients (4xx): the task is tried on
    /// the next host, and reported with `deferred` when none is left.
    deferred_by: Vec<String>,
    deferred: Option<Box<Deferred>>,
    /// The connection opened to carry it past `deferred_by`.
    dedicated: Option<usize>,
}

/// The last deferral of a task: its recipients' results at the host that
/// deferred them, reported if no other host takes them.
struct Deferred {
    reports: Vec<(usize, RecipientReport)>,
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
    Plan(HostPlan),
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
        // Opportunistic TLS encrypts without authenticating unless asked
        // to (see `EngineConfig::verify_opportunistic`).
        let tls =
            if session.tls == smtp_proto::TlsMode::Opportunistic && !config.verify_opportunistic {
                let unverified = TlsConfig::builder()
                    .dangerous_accept_any_certificate()
                    .build()
                    .map_err(io::Error::other)?;
                Arc::clone(unverified.client_config())
            } else {
                Arc::clone(config.tls.client_config())
            };
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
            // A finished task's slot may hold another job's task by now.
            let Some(t) = self.tasks.get(task).filter(|t| t.job == id) else {
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
                    if let Some(d) = self.dests.get_mut(&t.dest) {
                        d.queue.retain(|&q| q != task);
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
        // Taken first, then handled: a deadline re-armed while handling
        // waits for the next turn instead of being popped again here.
        let mut expired = Vec::new();
        while let Some(conn) = self.deadlines.pop_expired(now) {
            expired.push(conn);
        }
        for conn in expired {
            self.on_deadline(conn, now);
        }
        self.schedule_dirty(now);
        Ok(())
    }
}
