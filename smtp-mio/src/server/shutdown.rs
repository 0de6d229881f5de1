//! Graceful shutdown: the [`ShutdownHandle`] that asks for it from any
//! thread, and each loop's [`Grace`] period.
//!
//! A loop that sees the request stops accepting, closes idle connections
//! (greeted, or between transactions) with `421 4.3.2` (RFC 5321 §3.8,
//! RFC 3463: system not accepting network messages), and lets connections
//! inside a mail transaction (from an accepted `MAIL` to the end of the
//! message) or waiting for a handler's answer finish until
//! [`Options::shutdown_grace`] has passed; each gets its `421` as soon as
//! it is between transactions, and the rest when the grace ends. A peer that does not even take its `421`
//! within [`HARD_CLOSE_AFTER_GRACE`] more is dropped.
//!
//! [`Options::shutdown_grace`]: super::Options::shutdown_grace

use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Waker;

use super::options::Shared;

/// After the grace period, how long connections get to take their `421`
/// before they are dropped.
const HARD_CLOSE_AFTER_GRACE: Duration = Duration::from_secs(5);

/// Stops a server gracefully from any thread (see the
/// [module docs](super#shutdown)).
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
    wakers: Vec<Arc<Waker>>,
}

impl ShutdownHandle {
    /// A handle that wakes these loops.
    pub(super) fn new(shared: Arc<Shared>, wakers: Vec<Arc<Waker>>) -> Self {
        Self { shared, wakers }
    }

    /// Starts the graceful shutdown; returns at once.
    pub fn shutdown(&self) {
        self.shared.request_shutdown();
        for waker in &self.wakers {
            // A loop that is gone needs no wake-up.
            let _ = waker.wake();
        }
    }

    /// Whether a shutdown was requested.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown_requested()
    }
}

/// Where a loop's shutdown stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Within the grace period: busy connections may finish.
    Graceful,
    /// The grace period is over: every connection gets its `421`.
    Forced,
    /// The `421`s had their time: whoever is left is dropped.
    Hard,
}

/// One loop's grace period, from the moment it saw the shutdown request.
#[derive(Debug, Default)]
pub(super) struct Grace {
    /// When the grace period ends; `None` before the shutdown.
    deadline: Option<Instant>,
}

impl Grace {
    /// Whether the shutdown started.
    pub(super) fn started(&self) -> bool {
        self.deadline.is_some()
    }

    /// Starts the grace period at `now`, once; whether this call started
    /// it.
    pub(super) fn start(&mut self, now: Instant, grace: Duration) -> bool {
        if self.deadline.is_some() {
            return false;
        }
        self.deadline = Some(now + grace);
        true
    }

    /// How long the loop may sleep for the shutdown's sake: until the end
    /// of the grace period, then until the stragglers are dropped.
    pub(super) fn timeout(&self, now: Instant) -> Option<Duration> {
        self.deadline.map(|d| {
            let next = if d > now {
                d
            } else {
                d + HARD_CLOSE_AFTER_GRACE
            };
            next.saturating_duration_since(now)
        })
    }

    /// The phase at `now` (of a started shutdown).
    pub(super) fn phase(&self, now: Instant) -> Phase {
        match self.deadline {
            Some(d) if d + HARD_CLOSE_AFTER_GRACE <= now => Phase::Hard,
            Some(d) if d <= now => Phase::Forced,
            _ => Phase::Graceful,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_runs_graceful_then_forced_then_hard() {
        let now = Instant::now();
        let mut grace = Grace::default();
        assert!(!grace.started());
        assert_eq!(grace.timeout(now), None);
        assert!(grace.start(now, Duration::from_secs(30)));
        assert!(!grace.start(now + Duration::from_secs(1), Duration::ZERO));
        assert!(grace.started());
        assert_eq!(grace.phase(now), Phase::Graceful);
        assert_eq!(grace.timeout(now), Some(Duration::from_secs(30)));
        let end = now + Duration::from_secs(30);
        assert_eq!(grace.phase(end), Phase::Forced);
        assert_eq!(grace.timeout(end), Some(HARD_CLOSE_AFTER_GRACE));
        assert_eq!(grace.phase(end + HARD_CLOSE_AFTER_GRACE), Phase::Hard);
        assert_eq!(
            grace.timeout(end + HARD_CLOSE_AFTER_GRACE),
            Some(Duration::ZERO)
        );
    }
}
