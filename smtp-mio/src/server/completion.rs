//! Answers that arrive later, from any thread: how a handler can look up a
//! database or hand a message to a queue without blocking its event loop.
//!
//! Every question the server session asks the application (`MAIL`, `RCPT`,
//! the end of a message, an `AUTH` step, `VRFY`) is handed to the handler
//! together with a [`Responder`]. The handler may answer at once, inside the
//! callback, or move the responder to a worker thread and answer there. The
//! session reads no further command until the answer comes (the core holds
//! pipelined commands), so the loop keeps serving every other connection
//! meanwhile.
//!
//! A responder carries the connection's token *and generation*: if the
//! connection closed and its slot was reused before a late answer arrives,
//! the generation no longer matches and the loop drops the answer instead of
//! answering a stranger's command. It also carries the question's sequence
//! number on its connection: an LMTP message end asks for one answer per
//! recipient, and answers given from several threads may arrive out of
//! order; the loop applies them in sequence.
//!
//! Answers go into the loop's [`Inbox`] (a mutex-protected vector the loop
//! swaps out in one step). An answer from another thread also wakes the
//! loop through its `mio::Waker`; an answer given on the loop's own thread
//! (inside the callback) does not, because the loop drains the inbox right
//! after each callback anyway and a wake-up would cost a system call.
//!
//! A responder dropped without an answer (a handler bug, a worker that
//! panicked) still answers: [`Answer::Abandoned`], which the loop turns into
//! a `451 4.3.0` temporary failure, so the client retries later instead of
//! waiting for a reply that never comes.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, ThreadId};

use smtp_proto::reply::Reply;

/// The application's answer to one question of a server session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// The session's default positive reply (`250`, `354`, `252`…):
    /// `Server::accept`.
    Accept,
    /// A reply of the application's choosing: `Server::reply`.
    Reply(Reply<'static>),
    /// The next SASL challenge (decoded; the session base64-encodes it):
    /// `Server::auth_challenge`.
    AuthChallenge(Vec<u8>),
    /// Authentication succeeded: `Server::auth_success`.
    AuthSuccess,
    /// The responder was dropped without an answer; the loop replies with a
    /// temporary failure.
    Abandoned,
}

/// One answer on its way to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The connection's token in its loop.
    pub token: usize,
    /// The connection's generation: a reused token has another one.
    pub generation: u64,
    /// The question's number on its connection, counted from 0.
    pub seq: u64,
    /// The answer.
    pub answer: Answer,
}

/// The answers waiting for one event loop.
#[derive(Debug)]
pub struct Inbox {
    queue: Mutex<Vec<Completion>>,
    /// Wakes the loop's `Poll` (shared: mio allows one waker per `Poll`,
    /// and the shutdown handle needs it too); `None` in a loop that only
    /// answers inline.
    waker: Option<Arc<mio::Waker>>,
    /// The loop's thread: answers given there need no wake-up.
    owner: ThreadId,
}

impl Inbox {
    /// An inbox for the loop running on the current thread, woken by
    /// `waker` (registered with that loop's `Poll`).
    pub fn new(waker: Option<Arc<mio::Waker>>) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Vec::new()),
            waker,
            owner: thread::current().id(),
        })
    }

    /// A responder for question number `seq` of the connection `token`
    /// (of `generation`).
    pub fn responder(self: &Arc<Self>, token: usize, generation: u64, seq: u64) -> Responder {
        Responder {
            inbox: Some(Arc::clone(self)),
            token,
            generation,
            seq,
        }
    }

    /// Moves every waiting answer into `out`, in the order they were given.
    pub fn drain_into(&self, out: &mut Vec<Completion>) {
        let mut queue = self.lock();
        out.append(&mut queue);
    }

    /// Whether no answer is waiting.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn push(&self, completion: Completion) {
        self.lock().push(completion);
        if let Some(waker) = self
            .waker
            .as_ref()
            .filter(|_| thread::current().id() != self.owner)
        {
            // A failed wake-up (the loop is gone) leaves nobody to deliver
            // to: nothing else can be done.
            let _ = waker.wake();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Completion>> {
        // Pushing and draining cannot panic half-way, so a poisoned queue is
        // still a consistent queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The right to answer one question, once. It can be sent to another
/// thread; dropping it unanswered answers [`Answer::Abandoned`].
#[derive(Debug)]
#[must_use = "a question must be answered; dropping the responder answers 451"]
pub struct Responder {
    /// `None` once answered.
    inbox: Option<Arc<Inbox>>,
    token: usize,
    generation: u64,
    seq: u64,
}

impl Responder {
    /// Answers with the session's default positive reply.
    pub fn accept(self) {
        self.answer(Answer::Accept);
    }

    /// Answers with `reply`.
    pub fn reply(self, reply: Reply<'_>) {
        self.answer(Answer::Reply(reply.into_owned()));
    }

    /// Sends the next SASL challenge.
    pub fn auth_challenge(self, challenge: &[u8]) {
        self.answer(Answer::AuthChallenge(challenge.to_vec()));
    }

    /// Declares the client authenticated.
    pub fn auth_success(self) {
        self.answer(Answer::AuthSuccess);
    }

    /// Answers with `answer`.
    pub fn answer(mut self, answer: Answer) {
        self.send(answer);
    }

    fn send(&mut self, answer: Answer) {
        if let Some(inbox) = self.inbox.take() {
            inbox.push(Completion {
                token: self.token,
                generation: self.generation,
                seq: self.seq,
                answer,
            });
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.send(Answer::Abandoned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_proto::reply::ReplyCode;
    use std::time::Duration;

    const WAKE: mio::Token = mio::Token(usize::MAX);

    fn drained(inbox: &Inbox) -> Vec<Completion> {
        let mut out = Vec::new();
        inbox.drain_into(&mut out);
        out
    }

    #[test]
    fn inline_answers_arrive_in_order_without_waking() {
        let mut poll = mio::Poll::new().unwrap();
        let inbox = Inbox::new(Some(Arc::new(
            mio::Waker::new(poll.registry(), WAKE).unwrap(),
        )));
        inbox.responder(3, 1, 0).accept();
        let reply = Reply::new(ReplyCode::MAILBOX_UNAVAILABLE, "no such user").unwrap();
        inbox.responder(4, 7, 5).reply(reply.clone());
        assert_eq!(
            drained(&inbox),
            vec![
                Completion {
                    token: 3,
                    generation: 1,
                    seq: 0,
                    answer: Answer::Accept
                },
                Completion {
                    token: 4,
                    generation: 7,
                    seq: 5,
                    answer: Answer::Reply(reply.into_owned())
                },
            ]
        );
        assert!(inbox.is_empty());
        // Same-thread answers did not wake the loop.
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_millis(0)))
            .unwrap();
        assert!(events.is_empty());
    }

    #[test]
    fn answer_from_another_thread_wakes_the_loop() {
        let mut poll = mio::Poll::new().unwrap();
        let inbox = Inbox::new(Some(Arc::new(
            mio::Waker::new(poll.registry(), WAKE).unwrap(),
        )));
        let responder = inbox.responder(9, 2, 1);
        let worker = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            responder.auth_challenge(b"next?");
        });
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .unwrap();
        assert!(events.iter().any(|e| e.token() == WAKE));
        worker.join().unwrap();
        assert_eq!(
            drained(&inbox),
            vec![Completion {
                token: 9,
                generation: 2,
                seq: 1,
                answer: Answer::AuthChallenge(b"next?".to_vec())
            }]
        );
    }

    #[test]
    fn dropped_responder_answers_abandoned_once() {
        let inbox = Inbox::new(None);
        drop(inbox.responder(1, 1, 0));
        inbox.responder(2, 1, 0).auth_success();
        let got = drained(&inbox);
        assert_eq!(got.len(), 2, "an answered responder answers only once");
        assert_eq!(got[0].answer, Answer::Abandoned);
        assert_eq!(got[1].answer, Answer::AuthSuccess);
    }

    #[test]
    fn panicking_worker_still_answers() {
        let inbox = Inbox::new(None);
        let responder = inbox.responder(5, 3, 0);
        let result = thread::spawn(move || {
            let _held = responder;
            panic!("handler bug");
        })
        .join();
        assert!(result.is_err());
        assert_eq!(drained(&inbox)[0].answer, Answer::Abandoned);
    }
}
