//! Submitting, cancelling and shutting down from other threads.
//!
//! The engine's loop owns every connection; other threads talk to it
//! through a queue of requests and a [`mio::Waker`] that interrupts its
//! `poll`, the same pattern as the server's late answers
//! ([`completion`](crate::server::completion)).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mio::{Registry, Token, Waker};

use smtp_proto::dkim::Signer;

use super::dkim;
use super::job::{Job, JobId, SubmitError};

/// What another thread asks of the loop.
pub(super) enum Request {
    Submit(JobId, Box<Job>),
    Cancel(JobId),
    Shutdown,
}

/// The queue between [`Handle`]s and the loop.
pub(super) struct Shared {
    requests: Mutex<Vec<Request>>,
    waker: Waker,
    next_id: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
    /// The engine's DKIM signers, used by submitting threads.
    dkim: Vec<Signer>,
}

impl Shared {
    pub(super) fn new(
        registry: &Registry,
        token: Token,
        dkim: Vec<Signer>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            requests: Mutex::new(Vec::new()),
            waker: Waker::new(registry, token)?,
            next_id: AtomicU64::new(1),
            closed: std::sync::atomic::AtomicBool::new(false),
            dkim,
        })
    }

    pub(super) fn next_id(&self) -> JobId {
        JobId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Takes every request queued so far.
    pub(super) fn take(&self) -> Vec<Request> {
        std::mem::take(&mut *self.requests.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    fn push(&self, request: Request) {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request);
        // A failed wake leaves the request queued; the loop takes it on its
        // next turn (every deadline ends one).
        let _ = self.waker.wake();
    }
}

/// Submits, cancels and shuts down from any thread. Cheap to clone.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Handle {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Submits a job to the engine's loop; its result comes out of the
    /// loop (`Engine::run`'s callback).
    ///
    /// # Errors
    ///
    /// [`SubmitError::NoRecipients`], or [`SubmitError::ShuttingDown`] once
    /// a shutdown was requested through a handle. (A job that reaches the
    /// loop after a shutdown begun there is reported
    /// [`Status::NotAttempted`](super::Status::NotAttempted).)
    pub fn submit(&self, mut job: Job) -> Result<JobId, SubmitError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(SubmitError::ShuttingDown);
        }
        if job.envelope.recipients.is_empty() {
            return Err(SubmitError::NoRecipients);
        }
        // Here, on the submitting thread, not on the engine's loop.
        dkim::sign(&self.shared.dkim, &mut job);
        let id = self.shared.next_id();
        self.shared.push(Request::Submit(id, Box::new(job)));
        Ok(id)
    }

    /// Asks the loop to cancel a job (see `Engine::cancel`).
    pub fn cancel(&self, id: JobId) {
        self.shared.push(Request::Cancel(id));
    }

    /// Asks the loop to shut down gracefully (see `Engine::shutdown`).
    pub fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.push(Request::Shutdown);
    }
}
