//! Jobs in, tasks per destination, results out: every path that ends a
//! task reports it here, once.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use smtp_proto::address::{AddressLiteral, ForwardPath, Host};
use smtp_proto::client::{Envelope, Outcome, TransactionReport};
use smtp_proto::mx::{HostName, Severity};

use super::{Deferred, Destination, Engine, JobState, LookupFor, Route, Task, TaskId};
use crate::delivery::config::Routing;
use crate::delivery::connection::Body;
use crate::delivery::handle::Request;
use crate::delivery::job::{
    Failure, Job, JobId, JobResult, Message, Peer, RecipientReport, Status,
};

impl Engine {
    pub(super) fn drain_requests(&mut self) {
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
    pub(super) fn reject(&mut self, id: JobId, envelope: Envelope, failure: Failure) {
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
    pub(super) fn accept(&mut self, id: JobId, job: Job, now: Instant) {
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
                deferred_by: Vec::new(),
                deferred: None,
                dedicated: None,
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
    pub(super) fn destination_of(&self, recipient: &ForwardPath<'_>) -> Result<String, Failure> {
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

    pub(super) fn enqueue(&mut self, key: String, task: TaskId, now: Instant) {
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

    pub(super) fn initial_route(&mut self, key: &str, now: Instant) -> Route {
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

    /// Reports every recipient of a task with the same outcome.
    pub(super) fn fail_task(
        &mut self,
        task: TaskId,
        status: Status,
        failure: Failure,
        peer: Option<Peer>,
    ) {
        let Some(t) = self.take_task(task) else {
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
    pub(super) fn complete_task(
        &mut self,
        task: TaskId,
        report: TransactionReport,
        failure: Option<Failure>,
        peer: Option<Peer>,
    ) {
        let reports = self.reports_of(task, report, failure.as_ref(), peer.as_ref());
        if let Some(t) = self.take_task(task) {
            self.finish_task(t.job, reports);
        }
    }

    /// A transaction's per-recipient results, by index in the job.
    pub(super) fn reports_of(
        &self,
        task: TaskId,
        report: TransactionReport,
        failure: Option<&Failure>,
        peer: Option<&Peer>,
    ) -> Vec<(usize, RecipientReport)> {
        let Some(t) = self.tasks.get(task) else {
            return Vec::new();
        };
        t.indices
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
                    _ => failure.cloned(),
                };
                (
                    i,
                    RecipientReport {
                        recipient: r.recipient,
                        status,
                        reply: r.reply,
                        peer: peer.cloned(),
                        failure,
                    },
                )
            })
            .collect()
    }

    /// Removes a task; a connection opened for it forgets it, so a later
    /// task in the same slot is not mistaken for it.
    pub(super) fn take_task(&mut self, task: TaskId) -> Option<Task> {
        let t = self.tasks.try_remove(task)?;
        if let Some(c) = t.dedicated.and_then(|c| self.conns.get_mut(c))
            && c.for_task == Some(task)
        {
            c.for_task = None;
        }
        Some(t)
    }

    /// Whether a recipient's result says "not here, not now": a 4xx reply
    /// (to MAIL, its RCPT, DATA or the content). Another MX host may take
    /// it (RFC 5321 §5.1: the client tries the next host on a temporary
    /// failure).
    pub(super) fn is_deferral(report: &RecipientReport) -> bool {
        report.status == Status::TemporaryFailure
            && report
                .reply
                .as_ref()
                .is_some_and(|reply| reply.code().is_transient_negative())
    }

    /// Puts a task back at the head of its destination's queue, once.
    pub(super) fn requeue(&mut self, task: TaskId, body: Body, now: Instant) {
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
        self.enqueue_front(key, task, now);
    }

    /// Puts a task that was already under way at the head of its
    /// destination's queue (made again if it was forgotten meanwhile).
    fn enqueue_front(&mut self, key: String, task: TaskId, now: Instant) {
        match self.dests.get_mut(&key) {
            Some(d) => {
                d.queue.push_front(task);
                self.dirty.insert(key);
            }
            None => self.enqueue(key, task, now),
        }
    }

    /// Ends a transaction under MX routing: recipients a host deferred
    /// (4xx) go on to the next host, in a task of their own that skips the
    /// hosts that deferred them; the others are final. If the content
    /// cannot be had again, everything is final.
    pub(super) fn settle(
        &mut self,
        task: TaskId,
        reports: Vec<(usize, RecipientReport)>,
        peer: Option<&Peer>,
        body: Body,
        now: Instant,
    ) {
        let (deferred, settled): (Vec<_>, Vec<_>) =
            reports.into_iter().partition(|(_, r)| Self::is_deferral(r));
        let body = if deferred.is_empty() {
            None
        } else {
            body.rewind()
        };
        let (Some(body), Some(t)) = (body, self.tasks.get(task)) else {
            let mut all = settled;
            all.extend(deferred);
            if let Some(t) = self.take_task(task) {
                self.finish_task(t.job, all);
            }
            return;
        };
        let mut deferred_by = t.deferred_by.clone();
        if let Some(peer) = peer {
            deferred_by.push(peer.name.clone());
        }
        let (job, key) = (t.job, t.dest.clone());
        let indices: Vec<usize> = deferred.iter().map(|(i, _)| *i).collect();
        let mut envelope = t.envelope.clone();
        envelope.recipients = t
            .indices
            .iter()
            .zip(&t.envelope.recipients)
            .filter(|(i, _)| indices.contains(i))
            .map(|(_, r)| r.clone())
            .collect();
        tracing::info!(
            %job,
            dest = %key,
            deferred = indices.len(),
            ?deferred_by,
            "deferred; trying the next MX host"
        );
        let retry = self.tasks.insert(Task {
            job,
            indices,
            envelope,
            body: Some(body),
            conn: None,
            dest: key.clone(),
            retried: false,
            deferred_by,
            deferred: Some(Box::new(Deferred { reports: deferred })),
            dedicated: None,
        });
        if let Some(state) = self.jobs.get_mut(&job) {
            state.open_tasks += 1;
            state.tasks.push(retry);
        }
        self.enqueue_front(key, retry, now);
        if let Some(t) = self.take_task(task) {
            self.finish_task(t.job, settled);
        }
    }

    /// Reports a deferred task with its last deferral (no other host is
    /// left to try).
    pub(super) fn give_up_deferred(&mut self, task: TaskId) {
        // Only a task still waiting: one another connection has taken is
        // that connection's to report.
        if self.tasks.get(task).is_none_or(|t| t.conn.is_some()) {
            return;
        }
        let Some(t) = self.take_task(task) else {
            return;
        };
        if let Some(d) = self.dests.get_mut(&t.dest) {
            d.queue.retain(|&q| q != task);
        }
        let reports = t.deferred.map(|d| d.reports).unwrap_or_default();
        self.finish_task(t.job, reports);
    }

    pub(super) fn finish_task(&mut self, job: JobId, reports: Vec<(usize, RecipientReport)>) {
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
        let recipients: Vec<RecipientReport> = state
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
        tracing::debug!(
            %job,
            accepted = recipients
                .iter()
                .filter(|r| r.status == Status::Accepted)
                .count(),
            recipients = recipients.len(),
            "job done"
        );
        self.results.push_back(JobResult {
            id: job,
            recipients,
        });
    }
}
