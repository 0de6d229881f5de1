//! Where a connection goes: routes (relay addresses, address literals, MX
//! plans), DNS answers, and the walk of a connection over its plan.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Token};
use smtp_proto::mx::{HostName, HostPlan, MxAnswer, Next, PlanConfig, Severity};
use smtp_proto::tls::server_name;

use super::{Engine, LookupFor, Route, TaskId};
use crate::delivery::config::Routing;
use crate::delivery::connection::{Conn, Dial, Phase};
use crate::delivery::job::{Failure, Peer, Status};
use crate::dns::{DnsFailure, LookupOutcome};
use crate::transport::Transport;

impl Engine {
    pub(super) fn handle_dns(&mut self, now: Instant) {
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

    pub(super) fn on_mx(&mut self, key: &str, answer: Result<MxAnswer, DnsFailure>) {
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
                Some(hosts) => match HostPlan::new(hosts, &plan_config) {
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

    pub(super) fn on_addresses(
        &mut self,
        key: &str,
        host: HostName,
        answer: Result<Vec<IpAddr>, DnsFailure>,
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

    /// Opens a new connection for a destination with a ready route.
    pub(super) fn open(&mut self, key: &str, now: Instant) {
        self.open_for(key, None, now);
    }

    /// Opens a connection for `task`, deferred by some hosts: it skips them
    /// and carries that task first.
    pub(super) fn open_dedicated(&mut self, key: &str, task: TaskId, now: Instant) {
        self.open_for(key, Some(task), now);
    }

    fn open_for(&mut self, key: &str, task: Option<TaskId>, now: Instant) {
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
        let mut c = Conn::new(key.to_owned(), dial);
        if let Some(t) = task.and_then(|t| self.tasks.get(t)) {
            c.for_task = task;
            c.avoid.clone_from(&t.deferred_by);
        }
        let conn = self.conns.insert(c);
        if let Some(t) = task.and_then(|t| self.tasks.get_mut(t)) {
            t.dedicated = Some(conn);
        }
        if let Some(d) = self.dests.get_mut(key) {
            d.conns.push(conn);
        }
        self.dial(conn, now);
    }

    /// Walks a connection's plan to its next target and connects, or
    /// starts a lookup, or gives up.
    pub(super) fn dial(&mut self, conn: usize, now: Instant) {
        loop {
            let Some(c) = self.conns.get_mut(conn) else {
                return;
            };
            let key = c.dest.clone();
            let target = match &mut c.dial {
                Dial::Addresses { name, addrs, next } => match addrs.get(*next) {
                    Some(_) if c.avoid.contains(name) => Err(Severity::Temporary),
                    Some(addr) => Ok((name.clone(), *addr)),
                    None => Err(Severity::Temporary),
                },
                Dial::Mx { plan, port } => match plan.next_target() {
                    Next::Connect(target)
                        if c.avoid.iter().any(|h| h == target.host().name().as_str()) =>
                    {
                        // This host deferred the task the connection is for.
                        // (The plan is at a Connect step, so this cannot
                        // fail; if it did, the walk would not move: stop.)
                        match plan.on_temporary_failure() {
                            Ok(()) => continue,
                            Err(_) => Err(Severity::Temporary),
                        }
                    }
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
                            // At a Resolve step neither call can fail; if one
                            // did, the walk would not move: stop rather than
                            // spin.
                            Some(Ok(ips)) => match plan.resolved(ips.clone()) {
                                Ok(()) => continue,
                                Err(_) => Err(Severity::Temporary),
                            },
                            Some(Err(severity)) => match plan.resolution_failed(*severity) {
                                Ok(()) => continue,
                                Err(_) => Err(Severity::Temporary),
                            },
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
                    if !self.advance_plan(conn, false) {
                        self.unreachable(conn, Severity::Temporary);
                        return;
                    }
                }
                Err(severity) => {
                    self.unreachable(conn, severity);
                    return;
                }
            }
        }
    }

    /// Starts a TCP connect. `false` if it failed at once.
    pub(super) fn connect(
        &mut self,
        conn: usize,
        name: String,
        addr: SocketAddr,
        now: Instant,
    ) -> bool {
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
        tracing::debug!(dest = %c.dest, host = %name, %addr, "connecting");
        c.transport = Some(Transport::plain(stream));
        c.client = None;
        c.phase = Phase::Connecting;
        c.own_deadline = Some(now + self.config.connect_timeout);
        c.session_deadline = None;
        self.deadlines.set(conn, c.deadline());
        true
    }

    /// Moves a connection's plan past a failed attempt.
    /// `false` if the plan did not move (it was not at a connection
    /// target, which the walk never leaves it at): the caller stops rather
    /// than try the same target forever.
    pub(super) fn advance_plan(&mut self, conn: usize, replied: bool) -> bool {
        let Some(c) = self.conns.get_mut(conn) else {
            return false;
        };
        match &mut c.dial {
            Dial::Addresses { next, .. } => {
                *next += 1;
                true
            }
            Dial::Mx { plan, .. } => if replied {
                plan.on_temporary_failure()
            } else {
                plan.on_connect_failed()
            }
            .is_ok(),
        }
    }

    /// Drops a failed attempt's socket and session and dials the next
    /// target.
    pub(super) fn redial(&mut self, conn: usize, replied: bool, now: Instant) {
        let registry = self.poll.registry();
        if let Some(c) = self.conns.get_mut(conn) {
            tracing::info!(
                dest = %c.dest,
                peer = ?c.peer.as_ref().map(ToString::to_string),
                reason = c.last_failure.as_deref().unwrap_or("unknown"),
                "attempt failed, trying the next target"
            );
            if let Some(mut t) = c.transport.take() {
                let _ = registry.deregister(t.socket_mut());
            }
            c.client = None;
            c.phase = Phase::Dialing;
            c.own_deadline = None;
            c.session_deadline = None;
        }
        self.deadlines.remove(conn);
        if self.advance_plan(conn, replied) {
            self.dial(conn, now);
        } else {
            self.unreachable(conn, Severity::Temporary);
        }
    }

    /// Every target of a connection failed.
    pub(super) fn unreachable(&mut self, conn: usize, severity: Severity) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        if !c.avoid.is_empty() {
            // A connection past the hosts that deferred one task found no
            // other: that task gets its last deferral; the destination and
            // its other tasks are not concerned.
            let task = c.for_task;
            self.remove_conn(conn);
            if let Some(task) = task {
                self.give_up_deferred(task);
            }
            return;
        }
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
        tracing::warn!(dest = %key, %failure, queued = d.queue.len(), "destination unreachable");
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
}
