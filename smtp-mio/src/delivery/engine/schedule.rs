//! Which destination gets connections and jobs, within N and M.

use std::time::Instant;

use smtp_proto::mx::Severity;

use super::{Engine, Route, TaskId};
use crate::delivery::connection::Phase;
use crate::delivery::job::Status;

impl Engine {
    pub(super) fn schedule_dirty(&mut self, now: Instant) {
        let dirty: Vec<String> = self.dirty.drain().collect();
        for key in dirty {
            self.schedule(&key, now);
        }
    }

    pub(super) fn schedule(&mut self, key: &str, now: Instant) {
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
        // New connections while the queue outgrows those on their way; a
        // task that hosts deferred gets one of its own, past those hosts.
        loop {
            let Some(d) = self.dests.get(key) else {
                return;
            };
            if !matches!(d.route, Route::Addresses { .. } | Route::Plan(_))
                || d.conns.len() >= d.limit
                || self.shutting_down
            {
                break;
            }
            let deferred = |t: &TaskId| {
                self.tasks
                    .get(*t)
                    .is_some_and(|t| !t.deferred_by.is_empty())
            };
            let dedicated =
                d.queue.iter().copied().find(|t| {
                    deferred(t) && self.tasks.get(*t).is_some_and(|t| t.dedicated.is_none())
                });
            let plain = d.queue.iter().filter(|t| !deferred(t)).count();
            let coming = d
                .conns
                .iter()
                .filter(|&&c| {
                    self.conns
                        .get(c)
                        .is_some_and(|c| c.is_coming() && c.for_task.is_none())
                })
                .count();
            if dedicated.is_none() && plain <= coming {
                break;
            }
            if self.conns.len() >= self.config.max_connections.max(1) {
                if !self.starved.iter().any(|k| k == key) {
                    self.starved.push_back(key.to_owned());
                }
                self.make_room(key, now);
                break;
            }
            match dedicated {
                Some(task) => self.open_dedicated(key, task, now),
                None => self.open(key, now),
            }
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
    pub(super) fn make_room(&mut self, key: &str, now: Instant) {
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
