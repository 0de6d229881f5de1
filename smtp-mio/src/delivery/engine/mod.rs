//! The event loop: jobs in, walks and connections out, results back.
//!
//! # Who decides what
//!
//! Every delivery decision is [`Walk`]'s: what to look up, where to connect
//! and with which TLS, what a connect, TLS or setup failure means, which
//! recipients a reply settles and which go on to another host, when a lost
//! transaction on a reused connection is sent again, and what each recipient
//! ends with. The engine follows the walk's recipe for an event loop (see
//! the [`Walk`] docs, "Many connections") and keeps only what is
//! scheduling: N connections in total and M per destination, connection
//! reuse across jobs, idle retirement, cancellation and shutdown.
//!
//! # Bookkeeping
//!
//! - A **job** becomes one **task** per destination — the relay, or each
//!   recipient domain and address literal under MX routing — and each task
//!   is one [`Walk`]. The job's result is sent when its last task is done,
//!   built from the walks' verdicts.
//! - A **destination** has its tasks waiting for a connection (the walk says
//!   [`Step::Connect`](smtp_proto::mx::Step::Connect)) in arrival order, its
//!   tasks waiting for DNS, its connections, and the lookups in flight for
//!   it: one per question, whose answer goes to every walk of the
//!   destination that waits (a walk that does not wait for it refuses it,
//!   harmlessly). It is forgotten when it has no task and no connection.
//! - A **connection** goes to one endpoint of the walk, opened for one task.
//!   Once ready it is *offered*: to that task first, then to the waiting
//!   tasks of its destination in order; the first walk to return a batch
//!   gets a transaction for exactly those recipients. After each
//!   transaction it is offered again (as reused). A connection nobody takes
//!   idles until [`idle_timeout`](super::EngineConfig::idle_timeout), or
//!   QUITs at once when other tasks wait for a slot. A connection that fails
//!   before it is ready is reported to the task it was opened for and to
//!   every task whose walk is at that same endpoint — unless other
//!   connections to that address are open: then it is the server's
//!   connection limit speaking, the destination's limit is lowered and the
//!   tasks wait for those connections ([`feedback`]).
//!
//! # Why one result per job, always
//!
//! A task ends only when its walk says every recipient has a verdict, and a
//! walk gets a verdict for every recipient on every path: answers, lost
//! connections, cancellation and shutdown ([`Walk::abort`]). A task is
//! reported once, when it ends, and a job once, when its last task ends.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use rustls::ClientConfig;
use slab::Slab;
use smtp_proto::address::ForwardPath;
use smtp_proto::client::{self as session, AuthConfig};
use smtp_proto::dns::Resolver;
use smtp_proto::mx::{Destination, HostName, MxHost, WalkConfig};
use smtp_proto::tls::TlsConfig;

use super::config::{EngineConfig, Routing};
use super::connection::{Conn, ConnEvent, Phase};
use super::handle::{Handle, Shared};
use super::job::{JobId, JobResult, RecipientReport, SubmitError};
use crate::delivery::dns::DnsPump;
use crate::timers::Deadlines;

mod connections;
mod feedback;
mod lookups;
mod schedule;
mod tasks;

use lookups::Asked;
use tasks::Task;

/// Token of the waker (requests from [`Handle`]s).
const WAKER: Token = Token(usize::MAX);
/// Read buffer, shared by every connection (each read is handed to its
/// session at once).
const SCRATCH: usize = 16 * 1024;

/// A task's key in the engine.
type TaskId = usize;

/// A counter the engine exposes for progress displays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Jobs submitted whose result is not out yet.
    pub pending_jobs: usize,
    /// Tasks waiting for a connection.
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

/// The tasks, connections and lookups of one destination.
#[derive(Default)]
struct Dest {
    /// Tasks whose walk wants a connection, in arrival order.
    queue: VecDeque<TaskId>,
    /// Tasks whose walk waits for a DNS answer.
    waiting: Vec<TaskId>,
    /// Its live tasks, counted to know when to forget it.
    tasks: usize,
    conns: Vec<usize>,
    /// Lookups in flight for it, one per question.
    asked: HashMap<Asked, smtp_proto::dns::LookupId>,
    /// The connection limit learned from its failures, below the
    /// configured one (see [`feedback`]); `None`: the configured one.
    limit: Option<usize>,
    /// Transactions that succeeded since `limit` last changed.
    successes: usize,
}

/// The relay: its destination, and the one host the walks are given.
struct RelayRoute {
    name: String,
    destination: Destination,
    host: Option<MxHost>,
}

/// The delivery engine: see the [module docs](super).
pub struct Engine {
    poll: Poll,
    events: Events,
    shared: Arc<Shared>,
    config: EngineConfig,
    /// The session configuration; each connection sets its TLS mode.
    session: session::Config,
    walk: WalkConfig,
    port: u16,
    /// Client TLS for connections that verify, and for those that do not.
    verified: Arc<ClientConfig>,
    unverified: Arc<ClientConfig>,
    relay: Option<RelayRoute>,
    dns: Option<DnsPump>,
    jobs: HashMap<JobId, JobState>,
    tasks: Slab<Task>,
    dests: HashMap<Destination, Dest>,
    conns: Slab<Conn>,
    deadlines: Deadlines<usize>,
    lookups: HashMap<smtp_proto::dns::LookupId, (Destination, Asked)>,
    /// Destinations whose walks wait for the resolver to take a lookup.
    dns_blocked: HashSet<Destination>,
    results: VecDeque<JobResult>,
    /// Destinations to schedule at the end of the turn.
    dirty: HashSet<Destination>,
    /// Destinations waiting for a free connection slot.
    starved: VecDeque<Destination>,
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
    /// once, with the system resolver; MX routing builds its resolver here
    /// (its sockets open with the first lookup).
    ///
    /// # Errors
    ///
    /// The event loop cannot be created, the relay's name does not
    /// resolve or is not a host name, or the TLS configuration without
    /// verification cannot be built.
    pub fn new(config: EngineConfig) -> io::Result<Self> {
        let poll = Poll::new()?;
        let shared = Arc::new(Shared::new(poll.registry(), WAKER)?);
        let mut session = session::Config::new(config.helo_name.clone());
        session.timeouts = config.timeouts;
        session.body_transfer = config.body_transfer;
        let mut relay = None;
        let mut dns = None;
        let (walk, port) = match &config.routing {
            Routing::Relay(r) => {
                relay = Some(relay_route(&r.host, r.port)?);
                if let Some(credentials) = &r.credentials {
                    let mut auth = AuthConfig::new(credentials.clone());
                    auth.allow_plaintext = r.allow_plaintext_auth;
                    session.auth = Some(auth);
                }
                (WalkConfig::with_tls(r.tls), r.port)
            }
            Routing::Mx(mx) => {
                let resolver = Resolver::new(mx.resolver.clone());
                // The pump's tokens sit just below the waker's.
                let first = (WAKER.0 - 1)
                    .checked_sub(DnsPump::tokens(&resolver))
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidInput, "too many DNS streams")
                    })?;
                dns = Some(DnsPump::new(resolver, Token(first))?);
                (mx.walk.clone(), mx.port)
            }
        };
        // Verification off means the core's accept-any configuration for
        // that connection (encryption without authentication).
        let unverified = TlsConfig::builder()
            .dangerous_accept_any_certificate()
            .build()
            .map_err(io::Error::other)?;
        Ok(Self {
            poll,
            events: Events::with_capacity(1024),
            shared,
            session,
            walk,
            port,
            verified: Arc::clone(config.tls.client_config()),
            unverified: Arc::clone(unverified.client_config()),
            relay,
            dns,
            config,
            jobs: HashMap::new(),
            tasks: Slab::new(),
            dests: HashMap::new(),
            conns: Slab::new(),
            deadlines: Deadlines::new(),
            lookups: HashMap::new(),
            dns_blocked: HashSet::new(),
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
            lookups: self.dns.as_ref().map_or(0, DnsPump::in_flight),
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
    pub fn submit(&mut self, job: super::Job) -> Result<JobId, SubmitError> {
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

    /// Cancels a job; its result is available at once. Recipients no
    /// transaction carried are reported [`Status::NotAttempted`]; a
    /// transaction in progress is cut off by closing its connection, and
    /// its recipients without a final answer are reported as temporary
    /// failures — the server may have taken the message if the content was
    /// complete, so a retry may duplicate it. Both with
    /// [`Failure::Cancelled`]. `false` if the job is unknown or done.
    ///
    /// [`Status::NotAttempted`]: super::Status::NotAttempted
    /// [`Failure::Cancelled`]: super::Failure::Cancelled
    pub fn cancel(&mut self, id: JobId) -> bool {
        let Some(state) = self.jobs.get(&id) else {
            return false;
        };
        let now = Instant::now();
        for task in state.tasks.clone() {
            // A finished task's slot may hold another job's task by now.
            if self.tasks.get(task).is_some_and(|t| t.job == id) {
                self.give_up(task, super::Failure::Cancelled, now);
            }
        }
        true
    }

    /// Begins a graceful shutdown: no new job is taken, transactions in
    /// progress finish, and every connection QUITs; recipients no
    /// transaction carried are reported [`Status::NotAttempted`]. Keep
    /// calling [`poll`](Self::poll) until
    /// [`is_shut_down`](Self::is_shut_down) (or use [`close`](Self::close)).
    ///
    /// [`Status::NotAttempted`]: super::Status::NotAttempted
    pub fn shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.drain_requests();
        let now = Instant::now();
        let idle: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.in_flight.is_empty())
            .map(|(k, _)| k)
            .collect();
        for task in idle {
            self.give_up(task, super::Failure::Shutdown, now);
        }
        let lookups: Vec<_> = self.lookups.drain().map(|(id, _)| id).collect();
        if let Some(dns) = self.dns.as_mut() {
            for id in lookups {
                dns.cancel(self.poll.registry(), now, id);
            }
        }
        for d in self.dests.values_mut() {
            d.asked.clear();
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
        // Answers that came without a wait (the cache) since the last turn.
        self.handle_dns(Instant::now());
        self.schedule_dirty(Instant::now());
        if !self.results.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let next = [
            self.deadlines.next_deadline(),
            self.dns.as_ref().and_then(DnsPump::next_deadline),
        ]
        .into_iter()
        .flatten()
        .min();
        let until_deadline = next.map(|d| d.saturating_duration_since(now));
        let mut wait = match (timeout, until_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if !self.dirty.is_empty() {
            // Scheduling left work for the next turn: do not sleep.
            wait = Some(Duration::ZERO);
        }
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
                dns.handle_event(self.poll.registry(), now, token);
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
        if let Some(dns) = self.dns.as_mut()
            && dns.next_deadline().is_some_and(|d| d <= now)
        {
            dns.handle_timeout(self.poll.registry(), now);
        }
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

/// The relay's route: a name looked up now with the system resolver (the
/// walk is given its addresses), or an address.
fn relay_route(host: &str, port: u16) -> io::Result<RelayRoute> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(RelayRoute {
            name: host.to_owned(),
            destination: Destination::Literal(ip),
            host: None,
        });
    }
    let name = HostName::parse(host).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the relay {host}: {e}"),
        )
    })?;
    let addrs: Vec<IpAddr> = (host, port)
        .to_socket_addrs()?
        .map(|a: SocketAddr| a.ip())
        .collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("the relay {host} has no address"),
        ));
    }
    Ok(RelayRoute {
        name: host.to_owned(),
        destination: Destination::Domain(name.clone()),
        host: Some(MxHost::new(name, 0).with_hints(addrs)),
    })
}
