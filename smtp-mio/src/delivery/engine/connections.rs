//! A connection's life in the loop: socket events, setup, jobs one at a
//! time, idle and QUIT, deadlines.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use smtp_proto::client::Client;

use super::Engine;
use crate::delivery::config::Routing;
use crate::delivery::connection::{Body, ConnEvent, Phase};
use crate::delivery::job::{Failure, Status};

impl Engine {
    pub(super) fn remove_conn(&mut self, conn: usize) {
        let registry = self.poll.registry();
        if let Some(mut c) = self.conns.try_remove(conn) {
            if let Some(t) = c.for_task.and_then(|t| self.tasks.get_mut(t)) {
                t.dedicated = None;
            }
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

    /// The TCP connection is up: start the session. Under implicit TLS
    /// (RFC 8314) its first output asks for the handshake, which the
    /// connection starts like one after STARTTLS.
    pub(super) fn established(&mut self, conn: usize, now: Instant) -> bool {
        let Some(c) = self.conns.get_mut(conn) else {
            return false;
        };
        let config = self.session.clone();
        c.client = Some(Client::new(config, now));
        c.phase = Phase::Setup;
        c.own_deadline = None;
        true
    }

    /// Runs a connection's session and acts on what it reports.
    pub(super) fn drive(&mut self, conn: usize, now: Instant) {
        let mut out = std::mem::take(&mut self.conn_events);
        if let Some(c) = self.conns.get_mut(conn) {
            c.drive(now, &mut self.scratch, &self.tls, &mut out);
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
                    } else if matches!(self.config.routing, Routing::Mx(_)) {
                        let reports =
                            self.reports_of(task, *report, failure.as_ref(), peer.as_ref());
                        self.settle(task, reports, peer.as_ref(), body, now);
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
    pub(super) fn next_job(&mut self, conn: usize, now: Instant) {
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
        let host = c.peer.as_ref().map(|p| p.name.as_str()).unwrap_or_default();
        // Its own task first, then the first one this host has not deferred.
        let pick = self.dests.get(&key).and_then(|d| {
            d.queue
                .iter()
                .position(|&t| Some(t) == c.for_task)
                .or_else(|| {
                    d.queue.iter().position(|&t| {
                        self.tasks
                            .get(t)
                            .is_none_or(|t| !t.deferred_by.iter().any(|h| h == host))
                    })
                })
        });
        c.for_task = None;
        let Some(task) = pick.and_then(|i| self.dests.get_mut(&key)?.queue.remove(i)) else {
            let waiting = self.dests.get(&key).is_some_and(|d| !d.queue.is_empty());
            if self.starved.is_empty() && !waiting {
                c.own_deadline = Some(now + self.config.idle_timeout);
            } else {
                // Another destination waits for a slot, or every task left
                // here was deferred by this host: give the slot up.
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
    pub(super) fn retire(&mut self, conn: usize, now: Instant) {
        let mut out = std::mem::take(&mut self.conn_events);
        if let Some(c) = self.conns.get_mut(conn) {
            match c.phase {
                Phase::Idle => {
                    c.quit(&mut out);
                    c.own_deadline = Some(now + self.config.quit_timeout);
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

    pub(super) fn on_deadline(&mut self, conn: usize, now: Instant) {
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
}
