//! Deadlines kept in a small table indexed by an enum (quinn's `TimerTable`).
//!
//! A session has a handful of timers — RFC 5321 §4.5.3.2 names one per phase —
//! and at most a few are armed at once. A fixed array indexed by the timer's
//! discriminant is all it takes: arming and disarming are stores, the next
//! deadline is a minimum over a few slots, and nothing allocates.

use std::time::{Duration, Instant};

/// A timer kind that can index a [`TimerTable`] of `N` slots.
pub trait TimerKind: Copy + 'static {
    /// Every kind, in slot order.
    const ALL: &'static [Self];
    /// This kind's slot, below the table size.
    fn slot(self) -> usize;
}

/// Armed deadlines, at most one per timer kind.
#[derive(Debug, Clone)]
pub struct TimerTable<T, const N: usize> {
    deadlines: [Option<Instant>; N],
    _kind: std::marker::PhantomData<T>,
}

impl<T: TimerKind, const N: usize> Default for TimerTable<T, N> {
    fn default() -> Self {
        Self {
            deadlines: [None; N],
            _kind: std::marker::PhantomData,
        }
    }
}

impl<T: TimerKind, const N: usize> TimerTable<T, N> {
    /// Arms `kind` to fire at `now + after`, replacing any earlier deadline.
    pub fn set(&mut self, kind: T, now: Instant, after: Duration) {
        // `checked_add` because a configured timeout may be huge (Duration::MAX
        // means "never"); an unrepresentable deadline is simply not armed.
        self.deadlines[kind.slot()] = now.checked_add(after);
    }

    /// Disarms `kind`.
    pub fn stop(&mut self, kind: T) {
        self.deadlines[kind.slot()] = None;
    }

    /// Disarms every timer.
    pub fn stop_all(&mut self) {
        self.deadlines = [None; N];
    }

    /// The deadline of `kind`, if armed.
    pub fn get(&self, kind: T) -> Option<Instant> {
        self.deadlines[kind.slot()]
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The first timer kind (in slot order) whose deadline is at or before `now`.
    pub fn expired(&self, now: Instant) -> Option<T> {
        T::ALL
            .iter()
            .copied()
            .find(|k| self.deadlines[k.slot()].is_some_and(|d| d <= now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kind {
        A,
        B,
    }

    impl TimerKind for Kind {
        const ALL: &'static [Self] = &[Self::A, Self::B];
        fn slot(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn earliest_and_expired() {
        let now = Instant::now();
        let mut t: TimerTable<Kind, 2> = TimerTable::default();
        assert_eq!(t.next_deadline(), None);
        t.set(Kind::B, now, Duration::from_secs(5));
        t.set(Kind::A, now, Duration::from_secs(10));
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(5)));
        assert_eq!(t.expired(now + Duration::from_secs(4)), None);
        assert_eq!(t.expired(now + Duration::from_secs(5)), Some(Kind::B));
        t.stop(Kind::B);
        assert_eq!(t.expired(now + Duration::from_secs(11)), Some(Kind::A));
        t.set(Kind::A, now, Duration::MAX);
        assert_eq!(t.get(Kind::A), None, "an unrepresentable deadline is never");
        t.stop_all();
        assert_eq!(t.next_deadline(), None);
    }
}
