//! Between the protocol session and the application: session events go to
//! the [`Session`] callbacks, each question with a [`Responder`]; the
//! answers come back (at once or later, through the loop's inbox) and are
//! given to the protocol session in question order.
//!
//! A connection's two sessions live together in [`Active`]; the
//! bookkeeping that keeps answers in order — questions asked, answers
//! applied, answers that came early — and where the connection is with a
//! message is [`Questions`]. Nothing here touches a socket.

use smtp_proto::reply::Reply;
use smtp_proto::server::{self as proto, Event, RateKind, UsageError};

use super::backend::{Session, local_error};
use super::completion::{Answer, Completion, Responder};

/// A connection's protocol session with its application handler.
pub(super) struct Active<S> {
    pub(super) server: proto::Server,
    pub(super) handler: Handler<S>,
}

/// The application's side of a connection.
pub(super) enum Handler<S> {
    /// Implicit TLS before the handshake: the [`Session`] is made when it
    /// is done, so that [`Backend::connect`](super::Backend::connect) sees
    /// the TLS parameters.
    AwaitingTls,
    /// The backend refused the connection: the session only sends the
    /// refusal and serves `QUIT`.
    Refused,
    /// The application's session. `tls_reported`: it was made after an
    /// implicit-TLS handshake, whose parameters its connect already had,
    /// so the session's `TlsEstablished` is not reported again.
    Ready { session: S, tls_reported: bool },
}

impl<S> Handler<S> {
    fn session(&mut self) -> Option<&mut S> {
        match self {
            Self::Ready { session, .. } => Some(session),
            _ => None,
        }
    }
}

/// Where a connection is with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageState {
    /// No message in progress.
    Idle,
    /// DATA/BDAT was asked as question number `n`; no answer yet.
    Asked(u64),
    /// The body is being received (or its end is being answered).
    Receiving,
}

/// The questions put to the application on one connection and the answers
/// applied, so that answers given out of order (from several threads)
/// still reach the protocol session in order.
pub(super) struct Questions {
    /// Where the connection is with a message (graceful shutdown waits
    /// for one in progress).
    message: MessageState,
    /// Questions asked.
    asked: u64,
    /// Answers applied.
    answered: u64,
    /// Answers that arrived before an earlier one.
    early: Vec<(u64, Answer)>,
}

impl Questions {
    /// No question asked yet.
    pub(super) fn new() -> Self {
        Self {
            message: MessageState::Idle,
            asked: 0,
            answered: 0,
            early: Vec::new(),
        }
    }

    /// Whether the connection is inside a message or waits for an answer:
    /// a graceful shutdown lets it finish.
    pub(super) fn busy(&self) -> bool {
        self.message != MessageState::Idle || self.answered < self.asked
    }

    /// Applies an answer of this connection, in question order; whether
    /// anything was applied. (The caller has checked the answer's
    /// generation.)
    pub(super) fn apply(&mut self, server: &mut proto::Server, completion: Completion) -> bool {
        if completion.seq < self.answered {
            return false;
        }
        if completion.seq > self.answered {
            self.early.push((completion.seq, completion.answer));
            return false;
        }
        let mut next = Some(completion.answer);
        while let Some(given) = next.take() {
            if self.message == MessageState::Asked(self.answered) {
                // The answer to DATA/BDAT: the message comes, or it does not.
                let accepted = match &given {
                    Answer::Accept => true,
                    Answer::Reply(reply) => reply.code().is_positive(),
                    _ => false,
                };
                self.message = if accepted {
                    MessageState::Receiving
                } else {
                    MessageState::Idle
                };
            }
            answer(server, given);
            self.answered += 1;
            if let Some(pos) = self.early.iter().position(|(seq, _)| *seq == self.answered) {
                next = Some(self.early.swap_remove(pos).1);
            }
        }
        true
    }
}

/// What [`dispatch`] leaves to the connection.
pub(super) enum Dispatched {
    /// Nothing.
    Done,
    /// The TLS handshake completed: the handler hears of it with the
    /// session's TLS parameters.
    TlsEstablished,
}

/// Hands one session event to the application; `responder(n)` makes the
/// responder of question number `n`. Sets `closed` when the session ends.
pub(super) fn dispatch<S: Session>(
    event: Event<'_>,
    handler: &mut Handler<S>,
    questions: &mut Questions,
    closed: &mut bool,
    responder: impl Fn(u64) -> Responder,
    over_rate: impl Fn(RateKind) -> Option<Reply<'static>>,
) -> Dispatched {
    let next = |asked: &mut u64| {
        let r = responder(*asked);
        *asked += 1;
        r
    };
    let asked = &mut questions.asked;
    let Some(session) = handler.session() else {
        // A refused connection asks nothing (nor does one before its
        // implicit-TLS handshake); answer anything all the same.
        if event.needs_answer() {
            next(asked).reply(local_error());
        }
        if let Event::Closed { reason } = event {
            tracing::debug!(?reason, "session closed");
            *closed = true;
        }
        return Dispatched::Done;
    };
    match event {
        Event::Helo { kind, host } => session.helo(kind, &host),
        // Per-client rates: over them the transaction gets 450 4.7.1 and
        // the handler is not asked.
        Event::Mail { from, params } => match over_rate(RateKind::Messages) {
            Some(reply) => next(asked).reply(reply),
            None => session.mail(&from, &params, next(asked)),
        },
        Event::Rcpt { to, params } => match over_rate(RateKind::Recipients) {
            Some(reply) => next(asked).reply(reply),
            None => session.rcpt(&to, &params, next(asked)),
        },
        Event::DataStart { mode, envelope } => {
            questions.message = MessageState::Asked(*asked);
            session.data_start(&envelope, mode, next(asked));
        }
        Event::Body(chunk) => session.data(chunk),
        Event::MessageEnd {
            size,
            replies,
            envelope,
        } => {
            questions.message = MessageState::Idle;
            let answers = (0..replies.max(1)).map(|_| next(asked)).collect();
            session.data_end(&envelope, size, answers);
        }
        Event::Reset { reason, envelope } => {
            questions.message = MessageState::Idle;
            session.reset(&envelope, reason);
        }
        Event::Auth {
            mechanism,
            initial_response,
        } => session.auth(
            &mechanism,
            initial_response.map(|ir| ir.decode()),
            next(asked),
        ),
        Event::AuthResponse(response) => session.auth_response(response, next(asked)),
        Event::AuthPlain {
            authzid,
            authcid,
            password,
        } => session.auth_plain(authzid, authcid, password, next(asked)),
        Event::AuthLogin { username, password } => {
            session.auth_login(username, password, next(asked))
        }
        Event::Vrfy { target } => session.vrfy(&target, next(asked)),
        Event::Expn { list } => session.expn(&list, next(asked)),
        Event::TlsEstablished => return Dispatched::TlsEstablished,
        Event::Closed { reason } => {
            questions.message = MessageState::Idle;
            tracing::debug!(?reason, "session closed");
            session.closed(reason);
            *closed = true;
        }
        other => {
            if other.needs_answer() {
                next(asked).reply(local_error());
            }
        }
    }
    Dispatched::Done
}

/// Gives one answer to the protocol session.
fn answer(server: &mut proto::Server, answer: Answer) {
    let result = match answer {
        Answer::Accept => server.accept(),
        Answer::Reply(reply) => server.reply(reply),
        Answer::AuthChallenge(challenge) => server.auth_challenge(&challenge),
        Answer::AuthSuccess => server.auth_success(),
        Answer::Abandoned => {
            tracing::warn!("a handler dropped its responder; answering 451");
            server.reply(local_error())
        }
    };
    match result {
        Ok(()) | Err(UsageError::NothingToAnswer | UsageError::Closed) => {}
        Err(e) => {
            // The handler's answer does not fit the question (a wrong reply
            // code): the client still gets an answer, a temporary failure.
            tracing::warn!(error = %e, "handler answer refused; answering 451");
            let _ = server.reply(local_error());
        }
    }
}
