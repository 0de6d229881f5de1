//! Draining a server session by hand, for tests that feed it directly
//! (without [`pair`](crate::pair) or a transcript): every transmit is
//! written whole, every event is shown to the test, which answers it now,
//! later or not at all.

use std::time::Instant;

use smtp_proto::Output;
use smtp_proto::reply::Reply;
use smtp_proto::server::{Event, Server};

/// A test's answer to a server event.
#[derive(Debug)]
pub enum Answer {
    /// `accept()` (events that need no answer take this one too).
    Accept,
    /// `reply(..)` with this reply.
    Reply(Reply<'static>),
    /// No answer yet: the session waits for it, and the test gives it
    /// later with `accept()` or `reply(..)`.
    Later,
}

/// Polls `server` at `now` until it waits, and returns that wait's
/// deadline. Each transmit is handed to `written` and reported written
/// whole; each event is handed to `on_event`, and its answer applied when
/// the event needs one. Allocates nothing itself, so the allocation tests
/// can use it. Panics on `StartTls` (TLS sessions are driven by a
/// [`Pair`](crate::pair::Pair)) and on a session that never waits.
pub fn drain(
    server: &mut Server,
    now: Instant,
    mut written: impl FnMut(&[u8]),
    mut on_event: impl FnMut(&Event<'_>) -> Answer,
) -> Option<Instant> {
    for _ in 0..100_000 {
        let answer = match server.poll(now) {
            Output::Transmit(bytes) => {
                let n = bytes.len();
                written(bytes);
                server.advance_transmit(now, n).unwrap();
                continue;
            }
            Output::Event(event) => {
                let answer = on_event(&event);
                if !event.needs_answer() {
                    continue;
                }
                answer
            }
            Output::Wait { deadline } => return deadline,
            other => panic!("serve::drain handles no {other:?}"),
        };
        match answer {
            Answer::Accept => server.accept().unwrap(),
            Answer::Reply(reply) => server.reply(reply).unwrap(),
            Answer::Later => {}
        }
    }
    panic!("the server never waited");
}

/// [`drain`] accepting everything; returns how many events the server
/// reported.
pub fn accept_all(server: &mut Server, now: Instant) -> usize {
    let mut events = 0;
    drain(
        server,
        now,
        |_| {},
        |_| {
            events += 1;
            Answer::Accept
        },
    );
    events
}
