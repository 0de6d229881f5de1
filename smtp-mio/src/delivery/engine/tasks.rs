//! Jobs in, one walk per destination, results out: a task moves as its walk
//! says, and is reported once, from the walk's verdicts, when it is done.

use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use smtp_proto::address::ForwardPath;
use smtp_proto::client::{Envelope, Outcome};
use smtp_proto::command::RcptParameters;
use smtp_proto::mx::{
    BatchId, Destination, DestinationError, Lookup, MxAnswer, Reason, Step, Walk,
};

use super::{Dest, Engine, JobState, TaskId};
use crate::delivery::connection::Body;
use crate::delivery::dkim::Signing;
use crate::delivery::handle::Request;
use crate::delivery::job::{
    Failure, Job, JobId, JobResult, Message, Peer, RecipientReport, Status,
};

/// The content of a task, lent to one transaction at a time when it comes
/// from a reader.
pub(super) enum Content {
    Bytes(Arc<[u8]>),
    Reader(Box<dyn Read + Send>),
    /// The reader is out with a transaction.
    Lent,
    /// The reader was read: it cannot go out again.
    Spent,
}

impl Content {
    /// The body for a transaction, if the content can go out now.
    pub(super) fn lend(&mut self) -> Option<Body> {
        match std::mem::replace(self, Self::Lent) {
            Self::Bytes(bytes) => {
                *self = Self::Bytes(Arc::clone(&bytes));
                Some(Body::bytes(bytes))
            }
            Self::Reader(reader) => Some(Body::reader(reader)),
            other => {
                *self = other;
                None
            }
        }
    }

    /// The body back from its transaction: a reader is kept only if none
    /// of it was read.
    pub(super) fn give_back(&mut self, body: Body) {
        if matches!(self, Self::Lent) {
            *self = match body.into_unread_reader() {
                Some(reader) => Self::Reader(reader),
                None => Self::Spent,
            };
        }
    }

    /// Whether a transaction could take it now.
    pub(super) fn is_available(&self) -> bool {
        matches!(self, Self::Bytes(_) | Self::Reader(_))
    }
}

/// One job's share for one destination: one walk.
pub(super) struct Task {
    pub(super) job: JobId,
    /// `None` for recipients without a destination (their walk is done
    /// at once).
    pub(super) dest: Option<Destination>,
    pub(super) walk: Walk,
    /// The job's envelope without recipients: each batch gets its own.
    template: Envelope,
    /// The walk's recipients, in its order, and their index in the job.
    recipients: Vec<(ForwardPath<'static>, RcptParameters<'static>)>,
    indices: Vec<usize>,
    pub(super) content: Content,
    /// Batches in flight, and the connections carrying them.
    pub(super) in_flight: Vec<(BatchId, usize)>,
    /// The walk's recipients some transaction carried.
    attempted: Vec<bool>,
    /// Why the engine gave the walk up, for its `Aborted` verdicts.
    aborted: Option<Failure>,
    /// In its destination's queue (its walk wants a connection).
    pub(super) queued: bool,
    /// In its destination's DNS waiting list.
    pub(super) waiting: bool,
}

impl Task {
    /// The envelope of a batch (indices into the walk's recipients).
    pub(super) fn envelope(&self, batch: &[usize]) -> Envelope {
        let mut envelope = self.template.clone();
        envelope.recipients = batch
            .iter()
            .filter_map(|&i| self.recipients.get(i).cloned())
            .collect();
        envelope
    }

    /// Records that a batch went out on `conn`.
    pub(super) fn sent(&mut self, batch: BatchId, recipients: &[usize], conn: usize) {
        self.in_flight.push((batch, conn));
        for &i in recipients {
            if let Some(a) = self.attempted.get_mut(i) {
                *a = true;
            }
        }
    }

    /// Gives the walk up: every recipient without a verdict gets
    /// [`Reason::Aborted`], reported as `why`.
    pub(super) fn abort(&mut self, why: Failure) {
        self.walk.abort();
        self.in_flight.clear();
        self.aborted.get_or_insert(why);
    }
}

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

    /// The destination of a recipient: the relay's, or its domain part's.
    fn destination_of(&self, recipient: &ForwardPath<'_>) -> Result<Destination, DestinationError> {
        match &self.relay {
            Some(relay) => Ok(relay.destination.clone()),
            None => Destination::of_recipient(recipient),
        }
    }

    /// Splits a job into one walk per destination.
    pub(super) fn accept(&mut self, id: JobId, mut job: Job, now: Instant) {
        // Signed already when submitted through a handle.
        crate::delivery::dkim::sign(&self.config.dkim, &mut job);
        let Job {
            mut envelope,
            message,
            signing,
        } = job;
        if let Message::Bytes(bytes) = &message {
            if envelope.params.size.is_none() {
                envelope.params.size = u64::try_from(bytes.len()).ok();
            }
            if envelope.params.body.is_none() {
                envelope.declare_body(bytes);
            }
        }
        // Group recipients by destination, in first-seen order.
        let mut groups: Vec<(Result<Destination, DestinationError>, Vec<usize>)> = Vec::new();
        for (i, (recipient, _)) in envelope.recipients.iter().enumerate() {
            let key = self.destination_of(recipient);
            match groups.iter_mut().find(|(k, _)| k.is_ok() && *k == key) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let recipients: Vec<_> = std::mem::take(&mut envelope.recipients);
        let routable = groups.iter().filter(|(k, _)| k.is_ok()).count();
        let max_batch = self.walk.max_recipients_per_transaction.max(1);
        // A reader serves one transaction at a time: read it into memory
        // when one transaction cannot carry the job.
        let must_buffer = routable > 1 || groups.iter().any(|(_, m)| m.len() > max_batch);
        let content = match message {
            Message::Bytes(bytes) => Ok(Content::Bytes(bytes)),
            Message::Reader(mut reader) if must_buffer => {
                let mut all = Vec::new();
                match reader.read_to_end(&mut all) {
                    Ok(_) => Ok(Content::Bytes(all.into())),
                    Err(e) => Err(Failure::Content(e.to_string())),
                }
            }
            Message::Reader(reader) => Ok(Content::Reader(reader)),
        };
        let content = match signing {
            Signing::Failed(reason) => Err(Failure::Dkim(reason)),
            _ => content,
        };
        let (mut content, unreadable) = match content {
            Ok(content) => (Some(content), None),
            Err(failure) => (None, Some(failure)),
        };
        self.jobs.insert(
            id,
            JobState {
                reports: vec![None; recipients.len()],
                recipients: recipients.iter().map(|(r, _)| r.clone()).collect(),
                open_tasks: groups.len(),
                tasks: Vec::new(),
            },
        );
        for (key, indices) in groups {
            let n = indices.len();
            let walk = match &key {
                Ok(dest) => Walk::new(dest.clone(), n, &self.walk),
                Err(e) => Walk::unroutable(n, e.clone()),
            };
            // Only a routable walk needs the content; a reader goes to the
            // one there is (more than one would have buffered it).
            let task_content = match &mut content {
                Some(Content::Bytes(b)) => Content::Bytes(Arc::clone(b)),
                Some(c) if key.is_ok() => std::mem::replace(c, Content::Spent),
                _ => Content::Spent,
            };
            let task = self.tasks.insert(Task {
                job: id,
                dest: key.ok(),
                walk,
                template: envelope.clone(),
                recipients: indices
                    .iter()
                    .filter_map(|&i| recipients.get(i).cloned())
                    .collect(),
                indices,
                content: task_content,
                in_flight: Vec::new(),
                attempted: vec![false; n],
                aborted: None,
                queued: false,
                waiting: false,
            });
            if let Some(state) = self.jobs.get_mut(&id) {
                state.tasks.push(task);
            }
            if let Some(dest) = self.tasks.get(task).and_then(|t| t.dest.clone()) {
                self.dests.entry(dest).or_default().tasks += 1;
            }
            if let (Some(failure), Some(t)) = (&unreadable, self.tasks.get_mut(task)) {
                t.abort(failure.clone());
            }
            self.advance(task, now);
        }
    }

    /// Does what the task's walk asks next, until it waits for something:
    /// a DNS answer, a connection, a transaction; reports it when done.
    pub(super) fn advance(&mut self, task: TaskId, now: Instant) {
        loop {
            let shutting_down = self.shutting_down;
            let Some(t) = self.tasks.get_mut(task) else {
                return;
            };
            if shutting_down && t.in_flight.is_empty() && !t.walk.is_done() {
                t.abort(Failure::Shutdown);
            }
            enum Next {
                Done,
                Mx,
                Addresses,
                Connect,
                Wait,
            }
            let next = match t.walk.next_step() {
                Step::Done => Next::Done,
                Step::LookupMx(_) => Next::Mx,
                Step::LookupAddresses(_) => Next::Addresses,
                Step::Connect(_) => Next::Connect,
                Step::Wait => Next::Wait,
                // A step this engine does not know: give the walk up
                // rather than stall it.
                _ => {
                    t.abort(Failure::Walk(Reason::Aborted));
                    continue;
                }
            };
            let dest = t.dest.clone();
            if !matches!(next, Next::Connect) {
                self.unqueue(task);
            }
            if !matches!(next, Next::Mx | Next::Addresses) {
                self.unwait(task);
            }
            match next {
                Next::Done => {
                    self.finish_task(task);
                    return;
                }
                Next::Mx if self.relay.is_some() => {
                    let host = self.relay.as_ref().and_then(|r| r.host.clone());
                    if let Some(t) = self.tasks.get_mut(task) {
                        let answer = host.map_or(MxAnswer::NxDomain, |h| MxAnswer::Hosts(vec![h]));
                        if t.walk.mx_lookup(Lookup::Answered(answer)).is_err() {
                            t.abort(Failure::Walk(Reason::Aborted));
                        }
                    }
                }
                Next::Mx | Next::Addresses => {
                    if let Some(dest) = dest {
                        let Some(t) = self.tasks.get_mut(task) else {
                            return;
                        };
                        if !t.waiting {
                            t.waiting = true;
                            self.dests
                                .entry(dest.clone())
                                .or_default()
                                .waiting
                                .push(task);
                        }
                        if self.ask(task, &dest, now) {
                            return;
                        }
                    } else {
                        return;
                    }
                }
                Next::Connect => {
                    let Some(t) = self.tasks.get_mut(task) else {
                        return;
                    };
                    if matches!(t.content, Content::Spent) && t.in_flight.is_empty() {
                        t.abort(Failure::Content(String::from(
                            "the content came from a reader that was already read",
                        )));
                        continue;
                    }
                    if !t.queued
                        && let Some(dest) = dest
                    {
                        t.queued = true;
                        // Recipients back from a transaction (deferred, or
                        // lost on a reused connection) go first: the next
                        // connection is theirs, as they waited longest.
                        let again = t.attempted.iter().any(|&a| a);
                        let queue = &mut self.dests.entry(dest.clone()).or_default().queue;
                        if again {
                            queue.push_front(task);
                        } else {
                            queue.push_back(task);
                        }
                        self.dirty.insert(dest);
                    }
                    return;
                }
                Next::Wait => return,
            }
        }
    }

    /// Takes a task out of its destination's queue.
    pub(super) fn unqueue(&mut self, task: TaskId) {
        let Some(t) = self.tasks.get_mut(task).filter(|t| t.queued) else {
            return;
        };
        t.queued = false;
        if let Some(d) = t.dest.as_ref().and_then(|k| self.dests.get_mut(k)) {
            remove(&mut d.queue, task);
        }
    }

    /// Takes a task out of its destination's DNS waiting list.
    fn unwait(&mut self, task: TaskId) {
        let Some(t) = self.tasks.get_mut(task).filter(|t| t.waiting) else {
            return;
        };
        t.waiting = false;
        if let Some(d) = t.dest.as_ref().and_then(|k| self.dests.get_mut(k)) {
            d.waiting.retain(|&w| w != task);
        }
    }

    /// Ends a task at once (cancel, shutdown): its transactions' connections
    /// close, its walk gives up, and it is reported.
    pub(super) fn give_up(&mut self, task: TaskId, why: Failure, now: Instant) {
        let Some(t) = self.tasks.get_mut(task) else {
            return;
        };
        let carrying: Vec<usize> = t.in_flight.iter().map(|&(_, conn)| conn).collect();
        t.abort(why);
        for conn in carrying {
            if let Some(c) = self.conns.get_mut(conn) {
                c.abort();
            }
            self.remove_conn(conn);
        }
        self.advance(task, now);
    }

    /// Reports a done task from its walk's verdicts.
    fn finish_task(&mut self, task: TaskId) {
        self.unqueue(task);
        self.unwait(task);
        let Some(t) = self.tasks.try_remove(task) else {
            return;
        };
        if let Some(dest) = &t.dest
            && let Some(d) = self.dests.get_mut(dest)
        {
            d.tasks = d.tasks.saturating_sub(1);
            // Its slot may soon hold another task: a connection opened for
            // this one must not report its failure there.
            for &conn in &d.conns {
                if let Some(c) = self.conns.get_mut(conn)
                    && c.opener == Some(task)
                {
                    c.opener = None;
                }
            }
            self.dirty.insert(dest.clone());
        }
        let relay_name = self.relay.as_ref().map(|r| r.name.clone());
        let mut reports = Vec::with_capacity(t.indices.len());
        for (i, verdict) in t.walk.verdicts() {
            let Some((&index, (recipient, _))) = t.indices.get(i).zip(t.recipients.get(i)) else {
                continue;
            };
            let aborted = matches!(verdict.reason(), Some(Reason::Aborted));
            let status = match verdict.outcome() {
                Outcome::Accepted => Status::Accepted,
                Outcome::PermanentFailure => Status::PermanentFailure,
                _ if aborted && !t.attempted.get(i).copied().unwrap_or(true) => {
                    Status::NotAttempted
                }
                _ => Status::TemporaryFailure,
            };
            let failure = match verdict.reason() {
                Some(Reason::Aborted) => t.aborted.clone(),
                Some(reason) => Some(Failure::Walk(reason.clone())),
                None => None,
            };
            let addr = verdict.ip().map(|ip| SocketAddr::new(ip, self.port));
            let name = match (&relay_name, verdict.host(), &t.dest, addr) {
                (Some(name), _, _, Some(_)) => Some(name.clone()),
                (None, Some(host), _, _) => Some(host.as_str().to_owned()),
                (None, None, Some(dest), Some(_)) => Some(dest.to_string()),
                _ => None,
            };
            let peer = name.map(|name| Peer { name, addr });
            reports.push((
                index,
                RecipientReport {
                    recipient: recipient.clone(),
                    status,
                    reply: verdict.reply().cloned(),
                    peer,
                    failure,
                },
            ));
        }
        self.finish_job_part(t.job, reports);
    }

    fn finish_job_part(&mut self, job: JobId, reports: Vec<(usize, RecipientReport)>) {
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
                // A done walk has a verdict for every recipient; a slot left
                // empty would be a bookkeeping bug, reported, never hidden.
                report.unwrap_or(RecipientReport {
                    recipient,
                    status: Status::TemporaryFailure,
                    reply: None,
                    peer: None,
                    failure: Some(Failure::Walk(Reason::NoReply)),
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

    /// Forgets a destination with nothing left.
    pub(super) fn forget_if_empty(&mut self, key: &Destination) {
        if let Some(d) = self.dests.get(key)
            && is_empty(d)
        {
            self.dests.remove(key);
            self.dns_blocked.remove(key);
        }
    }
}

fn is_empty(d: &Dest) -> bool {
    d.tasks == 0 && d.conns.is_empty() && d.asked.is_empty()
}

/// Removes `task` from a queue (usually near its front).
fn remove(queue: &mut VecDeque<TaskId>, task: TaskId) {
    if let Some(at) = queue.iter().position(|&t| t == task) {
        queue.remove(at);
    }
}
