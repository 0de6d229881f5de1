//! Waiting for another thread without sleeping: a value that announces its
//! changes ([`Signal`]) and a one-way gate ([`Gate`]).
//!
//! A test that sleeps "long enough" for a server thread to get somewhere is
//! slow when the machine is idle and flaky when it is busy. The servers of
//! this crate publish what a test waits for (sessions ended, connections
//! closed) through a [`Signal`], and a test that must hold a peer back until
//! it has checked something opens a [`Gate`] when it is done. Every wait
//! takes a bound, so a bug fails the test instead of hanging it.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A value shared between threads whose every change wakes the threads
/// waiting on it.
#[derive(Debug, Default)]
pub struct Signal<T> {
    value: Mutex<T>,
    changed: Condvar,
}

impl<T> Signal<T> {
    /// A signal holding `value`.
    pub fn new(value: T) -> Self {
        Self {
            value: Mutex::new(value),
            changed: Condvar::new(),
        }
    }

    /// Changes the value and wakes every waiter.
    pub fn update<R>(&self, change: impl FnOnce(&mut T) -> R) -> R {
        let result = change(&mut self.lock());
        self.changed.notify_all();
        result
    }

    /// Reads the value.
    pub fn read<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        read(&self.lock())
    }

    /// Waits until `ready` returns `Some` (checked now and after every
    /// change), at most `timeout`; `None` when the time ran out first.
    pub fn wait_for<R>(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&T) -> Option<R>,
    ) -> Option<R> {
        let end = Instant::now() + timeout;
        let mut value = self.lock();
        loop {
            if let Some(result) = ready(&value) {
                return Some(result);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            value = self
                .changed
                .wait_timeout(value, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Locks, ignoring poisoning: a panicking thread must not hide what was
    /// recorded before it panicked.
    fn lock(&self) -> MutexGuard<'_, T> {
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A gate that is closed until [`open`](Self::open)ed, once and for all:
/// the peer waits on it, the test opens it once it has checked what it
/// wanted to check while the peer was held.
#[derive(Debug, Default)]
pub struct Gate(Signal<bool>);

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens the gate; every waiter passes, now and later.
    pub fn open(&self) {
        self.0.update(|open| *open = true);
    }

    /// Whether the gate is open.
    pub fn is_open(&self) -> bool {
        self.0.read(|open| *open)
    }

    /// Waits until the gate is open, at most `timeout`; whether it opened.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.0
            .wait_for(timeout, |open| open.then_some(()))
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use super::*;

    #[test]
    fn a_waiter_sees_the_change_it_waits_for() {
        let signal = Arc::new(Signal::new(0));
        let writer = {
            let signal = Arc::clone(&signal);
            thread::spawn(move || {
                for _ in 0..5 {
                    signal.update(|n| *n += 1);
                }
            })
        };
        let seen = signal.wait_for(Duration::from_secs(10), |n| (*n == 5).then_some(*n));
        assert_eq!(seen, Some(5));
        writer.join().unwrap();
    }

    #[test]
    fn a_wait_ends_at_its_bound() {
        let signal = Signal::new(false);
        let started = Instant::now();
        assert_eq!(
            signal.wait_for(Duration::from_millis(20), |v| v.then_some(())),
            None
        );
        assert!(started.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn a_gate_lets_waiters_through_once_open() {
        let gate = Arc::new(Gate::new());
        assert!(!gate.is_open());
        let waiter = {
            let gate = Arc::clone(&gate);
            thread::spawn(move || gate.wait(Duration::from_secs(10)))
        };
        gate.open();
        assert!(waiter.join().unwrap());
        assert!(gate.wait(Duration::ZERO), "an open gate stays open");
    }
}
