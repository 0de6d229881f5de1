//! Deadlines of many connections, ordered so an event loop sleeps exactly
//! until the next one.
//!
//! Every session reports its next deadline through `Output::Wait { deadline }`
//! after each round of `poll()`. An event loop holding thousands of
//! connections must turn those into one number — how long `mio::Poll::poll`
//! may sleep — and, when it wakes, find the few connections whose deadline
//! passed without looking at the others.
//!
//! [`Deadlines`] keeps an ordered set of `(deadline, key)` pairs plus an index
//! from key to its current deadline. Because the index remembers the old
//! deadline, replacing one is an exact removal and insertion (`O(log n)`),
//! not the lazy deletion a binary heap would need: the set never holds stale
//! entries, so its size is bounded by the number of connections, and a
//! connection that re-arms its idle timer on every command does not grow it.
//! Setting the deadline a key already has is a lookup and nothing else, which
//! is the common case (most polls leave the deadline unchanged).
//!
//! Ties are broken by key order, so expiry is deterministic.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The deadlines of many keys (connection tokens), at most one per key.
#[derive(Debug, Clone)]
pub struct Deadlines<K> {
    /// Every armed deadline, in firing order.
    ordered: BTreeSet<(Instant, K)>,
    /// The deadline of each key in `ordered`, to find its entry again.
    by_key: HashMap<K, Instant>,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Self {
            ordered: BTreeSet::new(),
            by_key: HashMap::new(),
        }
    }
}

impl<K: Copy + Ord + Hash> Deadlines<K> {
    /// An empty set of deadlines.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms `key` to fire at `deadline`, replacing its previous deadline;
    /// `None` disarms it (the session waits for input only).
    pub fn set(&mut self, key: K, deadline: Option<Instant>) {
        let Some(deadline) = deadline else {
            self.remove(key);
            return;
        };
        match self.by_key.insert(key, deadline) {
            Some(old) if old == deadline => {}
            Some(old) => {
                self.ordered.remove(&(old, key));
                self.ordered.insert((deadline, key));
            }
            None => {
                self.ordered.insert((deadline, key));
            }
        }
    }

    /// Disarms `key` (a closed connection); returns its deadline if it had one.
    pub fn remove(&mut self, key: K) -> Option<Instant> {
        let old = self.by_key.remove(&key)?;
        self.ordered.remove(&(old, key));
        Some(old)
    }

    /// The deadline of `key`, if armed.
    pub fn get(&self, key: K) -> Option<Instant> {
        self.by_key.get(&key).copied()
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.ordered.first().map(|&(deadline, _)| deadline)
    }

    /// How long an event loop may sleep at `now`: `None` (no deadline, sleep
    /// until an event) or the time to the earliest deadline, zero if it has
    /// already passed. mio rounds a timeout up to the next millisecond, so
    /// the loop never wakes before the deadline it slept for.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        self.next_deadline()
            .map(|deadline| deadline.saturating_duration_since(now))
    }

    /// Disarms and returns the key with the earliest deadline if that
    /// deadline is at or before `now`. Call it until it returns `None`, and
    /// hand each key's session `handle_timeout(now)`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<K> {
        let &(deadline, key) = self.ordered.first()?;
        if deadline > now {
            return None;
        }
        self.ordered.pop_first();
        self.by_key.remove(&key);
        Some(key)
    }

    /// Number of armed deadlines.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no deadline is armed.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn empty_sleeps_forever() {
        let d = Deadlines::<usize>::new();
        assert_eq!(d.timeout(Instant::now()), None);
        assert_eq!(d.next_deadline(), None);
        assert!(d.is_empty());
    }

    #[test]
    fn earliest_deadline_wins_and_replacement_moves_it() {
        let t = Instant::now();
        let mut d = Deadlines::new();
        d.set(1usize, Some(at(t, 300)));
        d.set(2, Some(at(t, 100)));
        d.set(3, Some(at(t, 200)));
        assert_eq!(d.next_deadline(), Some(at(t, 100)));
        assert_eq!(d.timeout(t), Some(Duration::from_millis(100)));
        // Key 2 re-arms later (a command reset its timer): 3 is next.
        d.set(2, Some(at(t, 400)));
        assert_eq!(d.next_deadline(), Some(at(t, 200)));
        assert_eq!(d.len(), 3);
        assert_eq!(d.get(2), Some(at(t, 400)));
    }

    #[test]
    fn passed_deadline_gives_zero_timeout() {
        let t = Instant::now();
        let mut d = Deadlines::new();
        d.set(7usize, Some(t));
        assert_eq!(d.timeout(at(t, 50)), Some(Duration::ZERO));
    }

    #[test]
    fn none_and_remove_disarm() {
        let t = Instant::now();
        let mut d = Deadlines::new();
        d.set(1usize, Some(at(t, 10)));
        d.set(2, Some(at(t, 20)));
        d.set(1, None);
        assert_eq!(d.next_deadline(), Some(at(t, 20)));
        assert_eq!(d.remove(2), Some(at(t, 20)));
        assert_eq!(d.remove(2), None);
        assert!(d.is_empty());
        assert_eq!(d.pop_expired(at(t, 100)), None);
    }

    #[test]
    fn pop_expired_yields_due_keys_in_order_then_stops() {
        let t = Instant::now();
        let mut d = Deadlines::new();
        d.set(5usize, Some(at(t, 30)));
        d.set(4, Some(at(t, 10)));
        d.set(9, Some(at(t, 10))); // tie: key order decides
        d.set(1, Some(at(t, 50)));
        let now = at(t, 30);
        let mut fired = Vec::new();
        while let Some(k) = d.pop_expired(now) {
            fired.push(k);
        }
        assert_eq!(fired, vec![4, 9, 5]);
        assert_eq!(d.len(), 1);
        assert_eq!(d.next_deadline(), Some(at(t, 50)));
    }

    #[test]
    fn unchanged_deadline_keeps_one_entry() {
        let t = Instant::now();
        let mut d = Deadlines::new();
        for _ in 0..1000 {
            d.set(3usize, Some(at(t, 10)));
        }
        assert_eq!(d.ordered.len(), 1);
        assert_eq!(d.len(), 1);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, Option<u16>),
        Remove(u8),
        Pop(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), proptest::option::of(0u16..500)).prop_map(|(k, d)| Op::Set(k % 16, d)),
            any::<u8>().prop_map(|k| Op::Remove(k % 16)),
            (0u16..500).prop_map(Op::Pop),
        ]
    }

    proptest! {
        /// Against a naive model (a map scanned for its minimum), every
        /// sequence of operations gives the same deadlines and expiries, and
        /// the ordered set never holds a stale entry.
        #[test]
        fn matches_naive_model(ops in proptest::collection::vec(op(), 0..200)) {
            let t = Instant::now();
            let mut d = Deadlines::new();
            let mut model: HashMap<u8, Instant> = HashMap::new();
            for op in ops {
                match op {
                    Op::Set(k, ms) => {
                        let deadline = ms.map(|ms| at(t, ms.into()));
                        d.set(k, deadline);
                        match deadline {
                            Some(dl) => { model.insert(k, dl); }
                            None => { model.remove(&k); }
                        }
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(d.remove(k), model.remove(&k));
                    }
                    Op::Pop(ms) => {
                        let now = at(t, ms.into());
                        let expect = model
                            .iter()
                            .filter(|&(_, &dl)| dl <= now)
                            .map(|(&k, &dl)| (dl, k))
                            .min();
                        let got = d.pop_expired(now);
                        prop_assert_eq!(got, expect.map(|(_, k)| k));
                        if let Some((_, k)) = expect {
                            model.remove(&k);
                        }
                    }
                }
                prop_assert_eq!(d.len(), model.len());
                prop_assert_eq!(d.ordered.len(), model.len());
                prop_assert_eq!(d.next_deadline(), model.values().min().copied());
            }
        }
    }
}
