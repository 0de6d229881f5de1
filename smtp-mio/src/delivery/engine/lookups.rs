//! The walks' DNS questions, asked through the pump once per destination,
//! and the answers handed to every walk of the destination that waits.

use std::time::Instant;

use smtp_proto::dns::{self, Answer, Question, Resolved};
use smtp_proto::mx::{
    AddressAnswer, Destination, HostName, Lookup, MxAnswer, QueryType, Step, Walk,
};

use super::{Engine, TaskId};
use crate::dns::{DnsPump, LookupFailed};

/// A question asked for a destination: its MX records, or one address
/// query of one of its hosts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Asked {
    Mx,
    Address(HostName, QueryType),
}

/// An answer, in the walk's terms.
enum Found {
    Mx(Lookup<MxAnswer>),
    Address(HostName, QueryType, Lookup<AddressAnswer>),
}

impl Found {
    /// Hands the answer to a walk; one that does not wait for it refuses
    /// it, harmlessly.
    fn tell(&self, walk: &mut Walk) {
        let _ = match self {
            Self::Mx(lookup) => walk.mx_lookup(lookup.clone()),
            Self::Address(host, query, lookup) => walk.address_lookup(host, *query, lookup.clone()),
        };
    }

    fn failed(asked: &Asked) -> Self {
        match asked {
            Asked::Mx => Self::Mx(Lookup::Failed),
            Asked::Address(host, query) => Self::Address(host.clone(), *query, Lookup::Failed),
        }
    }
}

/// The resolver's result for an MX question, judged by the core
/// ([`MxAnswer::from_answer`]); only failure codes are kept from a failed
/// lookup, the rest is "no usable answer".
fn mx_lookup(result: Result<Answer, dns::Failure>, seed: u64) -> Lookup<MxAnswer> {
    match result {
        Ok(answer) => MxAnswer::from_answer(&answer, seed).map_or(Lookup::Failed, Lookup::Answered),
        Err(failure) => failure.rcode().map_or(Lookup::Failed, |rcode| {
            Lookup::Answered(MxAnswer::Temporary(rcode))
        }),
    }
}

/// The same for an address question.
fn address_lookup(result: Result<Answer, dns::Failure>) -> Lookup<AddressAnswer> {
    match result {
        Ok(answer) => Lookup::Answered(AddressAnswer::from_answer(&answer)),
        Err(failure) => failure.rcode().map_or(Lookup::Failed, |rcode| {
            Lookup::Answered(AddressAnswer::Temporary(rcode))
        }),
    }
}

impl Engine {
    /// Asks what the task's walk waits for, unless that question is in
    /// flight for its destination already. `true`: the task waits for the
    /// answer; `false`: its walk was answered now (go on with it).
    pub(super) fn ask(&mut self, task: TaskId, dest: &Destination, now: Instant) -> bool {
        let Some(t) = self.tasks.get(task) else {
            return true;
        };
        let questions: Vec<(Asked, Question)> = match t.walk.next_step() {
            Step::LookupMx(domain) => vec![(Asked::Mx, Question::mx(domain))],
            Step::LookupAddresses(lookup) => lookup
                .queries()
                .map(|q| {
                    (
                        Asked::Address(lookup.host().clone(), q),
                        q.question(lookup.host()),
                    )
                })
                .collect(),
            _ => return false,
        };
        let mut answered = Vec::new();
        for (asked, question) in questions {
            if self
                .dests
                .get(dest)
                .is_some_and(|d| d.asked.contains_key(&asked))
            {
                continue;
            }
            // Relay routing has no resolver: its walks are given their
            // host with its addresses, so they never ask.
            let Some(dns) = self.dns.as_mut() else {
                answered.push(Found::failed(&asked));
                continue;
            };
            match dns.lookup(self.poll.registry(), now, question) {
                Ok(id) => {
                    self.dests
                        .entry(dest.clone())
                        .or_default()
                        .asked
                        .insert(asked.clone(), id);
                    self.lookups.insert(id, (dest.clone(), asked));
                }
                // Too many lookups in flight: asked again when one ends.
                Err(LookupFailed::Resolver(_)) => {
                    self.dns_blocked.insert(dest.clone());
                }
                Err(_) => answered.push(Found::failed(&asked)),
            }
        }
        if answered.is_empty() {
            return true;
        }
        if let Some(t) = self.tasks.get_mut(task) {
            for found in &answered {
                found.tell(&mut t.walk);
            }
        }
        false
    }

    /// Hands every finished lookup to the walks waiting for it; then gives
    /// walks that found the resolver full another chance.
    pub(super) fn handle_dns(&mut self, now: Instant) {
        // Each round hands out answers or wakes blocked walks, which move
        // on; the bound only guards against a resolver that keeps refusing
        // while saying it has room.
        for _ in 0..64 {
            while let Some(resolved) = self.dns.as_mut().and_then(DnsPump::poll_resolved) {
                self.on_resolved(resolved, now);
            }
            let room = self.dns.as_ref().is_some_and(|dns| {
                dns.resolver().in_flight() < dns.resolver().config().max_lookups
            });
            if !room || self.dns_blocked.is_empty() {
                return;
            }
            let blocked: Vec<Destination> = self.dns_blocked.drain().collect();
            for dest in blocked {
                self.wake_waiting(&dest, now);
            }
        }
    }

    fn on_resolved(&mut self, resolved: Resolved, now: Instant) {
        let Some((dest, asked)) = self.lookups.remove(&resolved.id) else {
            return;
        };
        if let Some(d) = self.dests.get_mut(&dest) {
            d.asked.remove(&asked);
        }
        let found = match asked {
            Asked::Mx => {
                // The order of equal preferences is drawn from it (RFC 5321
                // §5.1); without randomness it is the answer's.
                let seed = self
                    .dns
                    .as_ref()
                    .and_then(DnsPump::random_u64)
                    .unwrap_or_default();
                Found::Mx(mx_lookup(resolved.result, seed))
            }
            Asked::Address(host, query) => {
                Found::Address(host, query, address_lookup(resolved.result))
            }
        };
        let waiting = self
            .dests
            .get(&dest)
            .map(|d| d.waiting.clone())
            .unwrap_or_default();
        for &task in &waiting {
            if let Some(t) = self.tasks.get_mut(task) {
                found.tell(&mut t.walk);
            }
        }
        for task in waiting {
            self.advance(task, now);
        }
        self.dirty.insert(dest);
    }

    /// Goes on with every task of `dest` waiting for DNS.
    fn wake_waiting(&mut self, dest: &Destination, now: Instant) {
        let waiting = self
            .dests
            .get(dest)
            .map(|d| d.waiting.clone())
            .unwrap_or_default();
        for task in waiting {
            self.advance(task, now);
        }
    }
}
