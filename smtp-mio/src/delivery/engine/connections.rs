//! A connection's life in the loop: connect, setup, offers to the walks,
//! transactions, idle and QUIT, deadlines, and failures reported to the
//! walks.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Token};
use rustls::ClientConfig;
use smtp_proto::client::{Client, TransactionReport, UsageError};
use smtp_proto::mx::{ConnectionFailure, Destination, Freshness, Step, TransactionOutcome};

use super::{Engine, TaskId};
use crate::delivery::connection::{Conn, ConnEvent, Phase, Target, Ticket};
use crate::delivery::job::Failure;

impl Engine {
    /// Opens a connection to `target` for `task`. A connect that fails at
    /// once is reported to the walks like one that fails later.
    pub(super) fn open(&mut self, key: &Destination, task: TaskId, target: Target, now: Instant) {
        let addr = SocketAddr::new(target.ip, self.port);
        let stream = TcpStream::connect(addr);
        let slot = self.conns.vacant_entry();
        let conn = slot.key();
        let registered = stream.and_then(|mut s| {
            self.poll
                .registry()
                .register(&mut s, Token(conn), Interest::READABLE | Interest::WRITABLE)
                .map(|()| s)
        });
        let stream = match registered {
            Ok(stream) => stream,
            Err(e) => {
                tracing::info!(dest = %key, %addr, error = %e, "connect failed");
                self.connection_failed(key, Some(task), &target, ConnectionFailure::Connect, now);
                return;
            }
        };
        tracing::debug!(dest = %key, host = ?target.host, %addr, "connecting");
        let mut c = Conn::new(key.clone(), target, addr, Some(task), stream);
        c.own_deadline = Some(now + self.config.connect_timeout);
        self.deadlines.set(conn, c.deadline());
        slot.insert(c);
        self.dests.entry(key.clone()).or_default().conns.push(conn);
    }

    /// Reports a connection that ended before it was ready to the task it
    /// was opened for and to every task whose walk is at that endpoint (a
    /// fact about the endpoint, not about one walk); each moves on.
    pub(super) fn connection_failed(
        &mut self,
        key: &Destination,
        opener: Option<TaskId>,
        target: &Target,
        failure: ConnectionFailure,
        now: Instant,
    ) {
        let mut affected: Vec<TaskId> = opener.into_iter().collect();
        if let Some(d) = self.dests.get(key) {
            for &task in &d.queue {
                let here = self.tasks.get(task).is_some_and(
                    |t| matches!(t.walk.next_step(), Step::Connect(e) if target.is(&e)),
                );
                if here && Some(task) != opener {
                    affected.push(task);
                }
            }
        }
        for &task in &affected {
            if let Some(t) = self.tasks.get_mut(task)
                && t.dest.as_ref() == Some(key)
            {
                let _ = t.walk.connection_failed(
                    target.host.as_ref(),
                    target.ip,
                    target.tls,
                    failure.clone(),
                );
            }
        }
        for task in affected {
            self.advance(task, now);
        }
        self.dirty.insert(key.clone());
    }

    pub(super) fn remove_conn(&mut self, conn: usize) {
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
    pub(super) fn on_socket(&mut self, conn: usize, now: Instant) {
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
            let mut out = std::mem::take(&mut self.conn_events);
            match failed {
                Some(e) => c.connect_failed(format!("connect to {}: {e}", c.addr), &mut out),
                None => {
                    let _ = stream.set_nodelay(true);
                    let mut session = self.session.clone();
                    session.tls = c.target.tls.mode();
                    c.established(session, now);
                }
            }
            self.handle_conn_events(conn, &mut out, now);
            self.conn_events = out;
        }
        self.drive(conn, now);
    }

    /// The client TLS for a connection: verifying or not, as its endpoint
    /// says.
    fn tls_for(&self, conn: usize) -> Arc<ClientConfig> {
        let verify = self.conns.get(conn).is_some_and(|c| c.target.tls.verify());
        Arc::clone(if verify {
            &self.verified
        } else {
            &self.unverified
        })
    }

    /// Runs a connection's session and acts on what it reports.
    pub(super) fn drive(&mut self, conn: usize, now: Instant) {
        let tls = self.tls_for(conn);
        let mut out = std::mem::take(&mut self.conn_events);
        if let Some(c) = self.conns.get_mut(conn) {
            c.drive(now, &mut self.scratch, &tls, &mut out);
        }
        self.handle_conn_events(conn, &mut out, now);
        self.conn_events = out;
    }

    pub(super) fn handle_conn_events(
        &mut self,
        conn: usize,
        out: &mut Vec<ConnEvent>,
        now: Instant,
    ) {
        let tls = self.tls_for(conn);
        let mut pending: VecDeque<ConnEvent> = out.drain(..).collect();
        while let Some(event) = pending.pop_front() {
            match event {
                ConnEvent::Ready => self.offer(conn, now),
                ConnEvent::Done {
                    ticket,
                    report,
                    body,
                    content,
                } => {
                    self.transaction_done(conn, ticket, *report, body, content, now);
                    self.offer(conn, now);
                }
                ConnEvent::Closed { setup } => {
                    let setup = setup.filter(|_| !self.shutting_down);
                    match setup {
                        Some(failure) if self.concurrency_feedback(conn, &failure) => {
                            // The tasks stay queued for the open connections.
                            self.remove_conn(conn);
                        }
                        Some(failure) => {
                            if let Some(c) = self.conns.get(conn) {
                                tracing::info!(
                                    dest = %c.dest,
                                    addr = %c.addr,
                                    reason = c.last_failure.as_deref().unwrap_or("unknown"),
                                    "connection failed during setup"
                                );
                                let (key, opener, target) =
                                    (c.dest.clone(), c.opener, c.target.clone());
                                self.remove_conn(conn);
                                self.connection_failed(&key, opener, &target, failure, now);
                            }
                        }
                        None => self.remove_conn(conn),
                    }
                    return;
                }
            }
            let mut more = Vec::new();
            if let Some(c) = self.conns.get_mut(conn) {
                c.drive(now, &mut self.scratch, &tls, &mut more);
            }
            pending.extend(more);
        }
        if let Some(c) = self.conns.get(conn) {
            self.deadlines.set(conn, c.deadline());
        }
    }

    /// A transaction is over: its walk learns the outcome.
    fn transaction_done(
        &mut self,
        conn: usize,
        ticket: Ticket,
        report: TransactionReport,
        body: crate::delivery::connection::Body,
        content: Option<String>,
        now: Instant,
    ) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.delivered += 1;
            if report.error.is_none() {
                let key = c.dest.clone();
                self.transaction_succeeded(&key);
            }
        }
        let Some(t) = self.tasks.get_mut(ticket.task) else {
            return;
        };
        // Another task in the same slot after a cancel: not ours.
        let Some(at) = t
            .in_flight
            .iter()
            .position(|&(b, c)| b == ticket.batch && c == conn)
        else {
            return;
        };
        t.in_flight.remove(at);
        t.content.give_back(body);
        let _ = t
            .walk
            .transaction_done(ticket.batch, TransactionOutcome::from_report(report));
        if let Some(why) = content {
            // The reader failed: the content cannot go anywhere.
            t.abort(Failure::Content(why));
        }
        self.advance(ticket.task, now);
    }

    /// A ready connection is offered to the walks: the task it was opened
    /// for first, then the tasks of its destination waiting for a
    /// connection, in order; the first batch wins. Nobody: it idles, or
    /// QUITs when others wait for its slot.
    pub(super) fn offer(&mut self, conn: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.phase != Phase::Idle || !c.client.as_ref().is_some_and(Client::is_ready) {
            return;
        }
        if self.shutting_down || c.delivered >= self.config.max_messages_per_connection.max(1) {
            self.retire(conn, now);
            return;
        }
        let freshness = if c.delivered == 0 {
            Freshness::Fresh
        } else {
            Freshness::Reused
        };
        let key = c.dest.clone();
        let opener = c.opener.take();
        let mut candidates: Vec<TaskId> = opener.into_iter().collect();
        let queue_len = self.dests.get(&key).map_or(0, |d| d.queue.len());
        let mut index = 0;
        loop {
            let task = match candidates.pop() {
                Some(task) => task,
                None => {
                    let Some(&task) = self.dests.get(&key).and_then(|d| d.queue.get(index)) else {
                        break;
                    };
                    index += 1;
                    task
                }
            };
            if self.try_batch(conn, task, freshness, now) {
                return;
            }
            if index > queue_len {
                break;
            }
        }
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let waiting = self.dests.get(&key).is_some_and(|d| !d.queue.is_empty());
        if self.starved.is_empty() && !waiting {
            c.own_deadline = Some(now + self.config.idle_timeout);
            self.deadlines.set(conn, c.deadline());
        } else {
            // Another destination waits for a slot, or the tasks here want
            // another host: give the slot up.
            self.retire(conn, now);
        }
    }

    /// Offers the connection to one task's walk; starts the transaction of
    /// the batch it returns. `true` if the connection took one.
    fn try_batch(&mut self, conn: usize, task: TaskId, freshness: Freshness, now: Instant) -> bool {
        let (Some(c), Some(t)) = (self.conns.get_mut(conn), self.tasks.get_mut(task)) else {
            return false;
        };
        if t.dest.as_ref() != Some(&c.dest) || !t.content.is_available() {
            return false;
        }
        let target = &c.target;
        let Some(batch) = t
            .walk
            .offer(target.host.as_ref(), target.ip, target.tls, freshness)
        else {
            return false;
        };
        let Some(body) = t.content.lend() else {
            // Checked above; were it gone, the batch would count as a
            // transaction that got no reply.
            let _ = t.walk.transaction_done(batch.id(), lost());
            self.advance(task, now);
            return false;
        };
        let envelope = t.envelope(batch.recipients());
        let ticket = Ticket {
            task,
            batch: batch.id(),
        };
        // A reused connection starts from a clean state, whatever the last
        // transaction left: RSET, pipelined with MAIL when possible.
        let rset = c.delivered > 0
            && c.client
                .as_ref()
                .and_then(Client::extensions)
                .is_some_and(|e| e.supports_pipelining());
        c.own_deadline = None;
        match c.start(ticket, envelope, body, rset) {
            Ok(()) => {
                t.sent(batch.id(), batch.recipients(), conn);
                self.advance(task, now);
                true
            }
            Err((usage, body)) => {
                t.content.give_back(body);
                if matches!(
                    usage,
                    UsageError::NotReady | UsageError::Closed | UsageError::TransactionOpen
                ) {
                    // The connection's state, not the message: nothing went
                    // out, as if the connection had died unanswered.
                    let _ = t.walk.transaction_done(batch.id(), lost());
                    self.advance(task, now);
                    self.retire(conn, now);
                    return true;
                }
                // The session will not send this message here (SIZE, a
                // missing extension): the walk decides what that means.
                let _ = t.walk.message_refused(batch.id(), usage);
                self.advance(task, now);
                false
            }
        }
    }

    /// QUITs an idle connection, closes one still setting up; a busy one
    /// finishes its transaction first (then `offer` retires it).
    pub(super) fn retire(&mut self, conn: usize, now: Instant) {
        let tls = self.tls_for(conn);
        let mut out = std::mem::take(&mut self.conn_events);
        if let Some(c) = self.conns.get_mut(conn) {
            match c.phase {
                Phase::Idle => {
                    c.quit(&mut out);
                    c.own_deadline = Some(now + self.config.quit_timeout);
                    c.drive(now, &mut self.scratch, &tls, &mut out);
                }
                Phase::Busy | Phase::Quitting | Phase::Closed => {}
                Phase::Connecting | Phase::Setup => {
                    c.abort();
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

    pub(super) fn on_deadline(&mut self, conn: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let own_due = c.own_deadline.is_some_and(|d| d <= now);
        match c.phase {
            Phase::Connecting if own_due => {
                let mut out = std::mem::take(&mut self.conn_events);
                c.connect_failed(format!("connect to {}: timed out", c.addr), &mut out);
                self.handle_conn_events(conn, &mut out, now);
                self.conn_events = out;
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
}

/// A transaction that got no reply at all and sent nothing.
fn lost() -> TransactionOutcome {
    TransactionOutcome::new(None, Vec::new(), None)
}
