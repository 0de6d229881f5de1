//! Which destination gets connections, within N in total and M per
//! destination: scheduling only — where each connection goes is the walk's
//! [`Step::Connect`].

use std::time::Instant;

use smtp_proto::mx::{Destination, Step};

use super::{Engine, TaskId};
use crate::delivery::connection::{Phase, Target};

impl Engine {
    /// Schedules every destination touched since the last call (and those
    /// their scheduling touches, a bounded number of rounds: the rest waits
    /// for the next turn, which then does not sleep).
    pub(super) fn schedule_dirty(&mut self, now: Instant) {
        for _ in 0..8 {
            if self.dirty.is_empty() {
                return;
            }
            let dirty: Vec<Destination> = self.dirty.drain().collect();
            for key in dirty {
                self.schedule(&key, now);
            }
        }
    }

    fn schedule(&mut self, key: &Destination, now: Instant) {
        // Idle connections are offered to the tasks waiting here.
        let idle: Vec<usize> = self.dests.get(key).map_or_else(Vec::new, |d| {
            d.conns
                .iter()
                .copied()
                .filter(|&c| self.conns.get(c).is_some_and(|c| c.phase == Phase::Idle))
                .collect()
        });
        for conn in idle {
            if self.dests.get(key).is_none_or(|d| d.queue.is_empty()) {
                break;
            }
            self.offer(conn, now);
        }
        if !self.shutting_down {
            for (task, target) in self.wanted(key) {
                self.open(key, task, target, now);
            }
        }
        self.forget_if_empty(key);
    }

    /// The connections to open now for `key`: one for each task whose walk
    /// wants an endpoint that no connection on its way will serve, in queue
    /// order, within M and N. When N is full, an idle connection of another
    /// destination is retired to make room, and `key` waits for the slot.
    fn wanted(&mut self, key: &Destination) -> Vec<(TaskId, Target)> {
        let limit = self.destination_limit(key);
        let Some(d) = self.dests.get(key) else {
            return Vec::new();
        };
        if d.conns.len() >= limit || d.queue.is_empty() {
            return Vec::new();
        }
        let mut room = limit - d.conns.len();
        // Connections on their way, per endpoint: each will be offered to
        // one waiting task.
        let mut coming: Vec<(Target, usize)> = Vec::new();
        for conn in d.conns.iter().filter_map(|&c| self.conns.get(c)) {
            if conn.is_coming() {
                match coming.iter_mut().find(|(t, _)| *t == conn.target) {
                    Some((_, n)) => *n += 1,
                    None => coming.push((conn.target.clone(), 1)),
                }
            }
        }
        let mut open = Vec::new();
        let mut starved = false;
        for &task in &d.queue {
            let Some(t) = self.tasks.get(task) else {
                continue;
            };
            if !t.content.is_available() {
                continue;
            }
            let Step::Connect(endpoint) = t.walk.next_step() else {
                continue;
            };
            if let Some((_, n)) = coming.iter_mut().find(|(t, n)| *n > 0 && t.is(&endpoint)) {
                *n -= 1;
                continue;
            }
            if room == 0 {
                break;
            }
            if self.conns.len() + open.len() >= self.config.max_connections.max(1) {
                starved = true;
                break;
            }
            let target = Target::of(&endpoint);
            coming.push((target.clone(), 0));
            open.push((task, target));
            room -= 1;
        }
        if starved {
            if !self.starved.iter().any(|k| k == key) {
                self.starved.push_back(key.clone());
            }
            self.make_room(key, Instant::now());
        }
        open
    }

    /// Closes an idle connection of another destination to free a slot.
    /// The slot stays taken until that connection has closed, so the
    /// destination still waits; `remove_conn` wakes it.
    fn make_room(&mut self, key: &Destination, now: Instant) {
        let victim = self
            .conns
            .iter()
            .find(|(_, c)| c.phase == Phase::Idle && c.dest != *key)
            .map(|(k, _)| k);
        if let Some(conn) = victim {
            self.retire(conn, now);
        }
    }
}
