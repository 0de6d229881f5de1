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
//! When no other connection to the address is open, the failure is the
//! walk's to judge, as always: a host that refuses everyone fails, and the
//! last connection standing tells every task waiting for that host.

use smtp_proto::client::{Error, Waiting};
use smtp_proto::mx::{ConnectionFailure, Destination};

use super::Engine;
use crate::delivery::connection::Phase;

/// Whether a setup failure is what a server over its connection limit
/// does: refuses or drops the TCP connection, says `421` or another `4yz`
/// greeting, closes at once, or never greets. A TLS failure, a refused
/// hello or authentication, or a `5yz` greeting is about the host, never
/// about how many connections it has.
pub(super) fn may_be_concurrency(failure: &ConnectionFailure) -> bool {
    match failure {
        ConnectionFailure::Connect => true,
        ConnectionFailure::Session(error) => match error {
            Error::ServiceNotAvailable(_) | Error::ConnectionClosed { .. } => true,
            Error::GreetingRejected(reply) => reply.is_transient_negative(),
            Error::Timeout(waiting) => !matches!(waiting, Waiting::TlsHandshake),
            _ => false,
        },
        _ => false,
    }
}

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
        if !may_be_concurrency(failure) {
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

#[cfg(test)]
mod tests {
    use smtp_proto::client::ReplyTo;
    use smtp_proto::mx::TlsFailure;
    use smtp_proto::reply::Reply;

    use super::*;

    #[test]
    fn only_what_an_overloaded_server_does_counts() {
        let parse = |wire: &[u8]| Reply::parse(wire).unwrap().unwrap().0.into_owned();
        let session = ConnectionFailure::Session;
        assert!(may_be_concurrency(&ConnectionFailure::Connect));
        assert!(may_be_concurrency(&session(Error::ServiceNotAvailable(
            parse(b"421 4.7.0 Too many connections\r\n")
        ))));
        assert!(may_be_concurrency(&session(Error::GreetingRejected(
            parse(b"450 busy\r\n")
        ))));
        assert!(may_be_concurrency(&session(Error::ConnectionClosed {
            partial_reply: false
        })));
        assert!(may_be_concurrency(&session(Error::Timeout(
            Waiting::Reply(ReplyTo::Greeting)
        ))));
        assert!(!may_be_concurrency(&session(Error::GreetingRejected(
            parse(b"554 No SMTP service here\r\n")
        ))));
        assert!(!may_be_concurrency(&session(Error::HelloRejected(parse(
            b"550 5.7.1 go away\r\n"
        )))));
        assert!(!may_be_concurrency(&session(Error::Timeout(
            Waiting::TlsHandshake
        ))));
        assert!(!may_be_concurrency(&ConnectionFailure::Tls(
            TlsFailure::Certificate
        )));
    }
}
