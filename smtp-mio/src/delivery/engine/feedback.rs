//! Concurrency feedback: how many connections a destination takes is
//! learned, not only configured.
//!
//! A server that limits its clients (Postfix's `smtpd_client_connection_count_limit`,
//! a process limit, postscreen) answers the connection over its limit with a
//! `421` greeting, refuses the TCP connection, or closes it unanswered,
//! while the connections it already took work fine. Reporting such a
//! failure to the walks would fail the host for every recipient queued
//! behind it — the whole queue of a relay. It is a fact about concurrency,
//! not about the host, when other connections to the same address are open:
//! then the destination's limit drops to the number of those connections
//! and the tasks stay queued for them (negative feedback). Each batch of
//! `limit` transactions that succeed on it raises the limit by one again,
//! up to [`max_per_destination`](super::super::EngineConfig::max_per_destination)
//! (positive feedback, 1/concurrency per success as in Postfix's
//! SCHEDULER_README "concurrency feedback"). The learned limit lives as long
//! as the destination has work or connections.
//!
//! Which failures may mean a connection limit is the core's call
//! ([`ConnectionFailure::may_be_connection_limit`]); this module keeps
//! the counts. When no other connection to the address is open, the
//! failure is the walk's to judge, as always: a host that refuses everyone fails, and the
//! last connection standing tells every task waiting for that host.

use smtp_proto::mx::{ConnectionFailure, Destination};

use super::Engine;
use crate::delivery::connection::Phase;

impl Engine {
    /// The limit of connections to `key` now: the learned one, within the
    /// configured one.
    pub(super) fn destination_limit(&self, key: &Destination) -> usize {
        let configured = self.config.max_per_destination.max(1);
        self.dests
            .get(key)
            .and_then(|d| d.limit)
            .map_or(configured, |learned| learned.clamp(1, configured))
    }

    /// Connection `conn` failed during setup with `failure`. When other
    /// connections to its address are open, the destination's limit drops
    /// to their number and `true` is returned: the failure is not the
    /// walks' (see the [module docs](self)).
    pub(super) fn concurrency_feedback(
        &mut self,
        conn: usize,
        failure: &ConnectionFailure,
    ) -> bool {
        let Some(c) = self.conns.get(conn) else {
            return false;
        };
        if !failure.may_be_connection_limit() {
            return false;
        }
        let (key, addr) = (c.dest.clone(), c.addr);
        let others = self.dests.get(&key).map_or(0, |d| {
            d.conns
                .iter()
                .filter(|&&k| k != conn)
                .filter_map(|&k| self.conns.get(k))
                .filter(|o| o.addr == addr && !matches!(o.phase, Phase::Quitting | Phase::Closed))
                .count()
        });
        if others == 0 {
            return false;
        }
        let limit = others.min(self.destination_limit(&key));
        if let Some(d) = self.dests.get_mut(&key) {
            d.limit = Some(limit);
            d.successes = 0;
        }
        tracing::info!(
            dest = %key,
            %addr,
            limit,
            "connection refused while {others} are open: destination concurrency lowered"
        );
        true
    }

    /// A transaction succeeded on a connection to `key`: after `limit` of
    /// them the learned limit grows by one, until it is the configured one
    /// again.
    pub(super) fn transaction_succeeded(&mut self, key: &Destination) {
        let configured = self.config.max_per_destination.max(1);
        let Some(d) = self.dests.get_mut(key) else {
            return;
        };
        let Some(limit) = d.limit else {
            return;
        };
        d.successes += 1;
        if d.successes >= limit {
            d.successes = 0;
            d.limit = (limit + 1 < configured).then_some(limit + 1);
            self.dirty.insert(key.clone());
        }
    }
}
