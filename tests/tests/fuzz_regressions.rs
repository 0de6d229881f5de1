//! Inputs the fuzz targets (`fuzz/`) found, replayed through the public API
//! so they stay fixed without nightly or cargo-fuzz. Each test names the
//! target and the artifact it came from; see fuzz/README.md for how to add
//! one.

use std::time::Instant;

use smtp_proto::client::{Client, Error, Event, ReplyTo};
use smtp_proto::{Output, TlsMode};
use smtp_tests::fixtures::{client_config, mail, rcpt};

fn client() -> (Client, Instant) {
    let now = Instant::now();
    (Client::new(client_config(TlsMode::Disabled), now), now)
}

/// Drains the client like a transport that writes everything at once;
/// returns the events.
fn drain(client: &mut Client, now: Instant) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        match client.poll(now) {
            Output::Event(e) => events.push(e),
            Output::Transmit(bytes) => {
                let n = bytes.len();
                client.advance_transmit(now, n).unwrap();
            }
            _ => return events,
        }
    }
}

/// Hands server bytes to the client, which takes them all.
fn feed(client: &mut Client, now: Instant, bytes: &[u8]) {
    assert_eq!(client.handle_input(now, bytes), bytes.len());
}

fn is_accepted(e: &Event) -> bool {
    matches!(e, Event::Reply { to: ReplyTo::EndOfData { .. }, reply } if reply.is_positive_completion())
}

/// Opens a transaction up to the body: `chunking` offers CHUNKING (BDAT).
fn to_body(chunking: bool) -> (Client, Instant) {
    let (mut client, now) = client();
    feed(&mut client, now, b"220 mx.example ESMTP\r\n");
    drain(&mut client, now);
    let ehlo: &[u8] = if chunking {
        b"250-mx.example\r\n250-8BITMIME\r\n250 CHUNKING\r\n"
    } else {
        b"250-mx.example\r\n250 8BITMIME\r\n"
    };
    feed(&mut client, now, ehlo);
    assert!(drain(&mut client, now).contains(&Event::Ready));
    client.enqueue(mail("a@example.org")).unwrap();
    drain(&mut client, now);
    feed(&mut client, now, b"250 2.1.0 ok\r\n");
    client.enqueue(rcpt("b@example.net")).unwrap();
    drain(&mut client, now);
    feed(&mut client, now, b"250 2.1.5 ok\r\n");
    client.start_body().unwrap();
    let mut events = drain(&mut client, now);
    if !chunking {
        feed(&mut client, now, b"354 go\r\n");
    }
    events.extend(drain(&mut client, now));
    assert!(events.contains(&Event::ReadyForBody), "{events:?}");
    client.write_body(b"hello\r\n").unwrap();
    drain(&mut client, now);
    (client, now)
}

/// client_session, artifacts/client_session/crash-63c9b4d2… (minimized to
/// minimized-from-971a4c24…): the first bytes of a `250` arrived before the
/// end of data was written and the rest after it; the client took the
/// reply as the final one and reported the message accepted although the
/// server started "accepting" it before the body had left. A reply whose
/// first byte arrives before its command is written is unsolicited.
#[test]
fn final_reply_begun_before_the_end_of_data_is_not_an_acceptance_data() {
    reply_begun_before_the_end_is_unexpected(false, b"250 2.0.0 que", b"ued\r\n");
}

/// The same under BDAT (the shape the fuzzer found first).
#[test]
fn final_reply_begun_before_the_end_of_data_is_not_an_acceptance_bdat() {
    reply_begun_before_the_end_is_unexpected(true, b"250 \x01", b"220 mx.example ESMTP\r\n");
}

/// With the body being sent (BDAT if `chunking`), `before` arrives, then
/// the application ends the body, then `after`: no acceptance is reported
/// and the session fails with an unexpected reply.
fn reply_begun_before_the_end_is_unexpected(chunking: bool, before: &[u8], after: &[u8]) {
    let (mut client, now) = to_body(chunking);
    feed(&mut client, now, before);
    client.finish_body().unwrap();
    let mut events = drain(&mut client, now);
    feed(&mut client, now, after);
    events.extend(drain(&mut client, now));
    assert!(!events.iter().any(is_accepted), "{events:?}");
    assert!(
        matches!(client.error(), Some(Error::UnexpectedReply(_))),
        "{:?}",
        client.error()
    );
}

/// The honest order still works: the final reply, split across reads, all
/// of it after the end of data.
#[test]
fn final_reply_split_after_the_end_of_data_is_accepted() {
    for chunking in [false, true] {
        let (mut client, now) = to_body(chunking);
        client.finish_body().unwrap();
        let mut events = drain(&mut client, now);
        feed(&mut client, now, b"250 2.0.0 que");
        feed(&mut client, now, b"ued\r\n");
        events.extend(drain(&mut client, now));
        assert!(events.iter().any(is_accepted), "{events:?}");
        assert_eq!(client.error(), None);
    }
}

/// `dkim_canonicalization`, crash-478818b81fc0c6bf: relaxed header
/// unfolding removed CRLF pairs one at a time, and the bytes around a
/// removed pair (`\r` `\r\n` `\n`) formed a new CRLF inside the canonical
/// value. Bare LFs now go too, so no line end survives.
#[test]
fn relaxed_header_unfolding_leaves_no_line_end() {
    use smtp_proto::dkim::{Canonicalization, canonicalize_header};
    let field = [58, 181, 255, 13, 13, 13, 10, 10, 13, 10, 10, 61];
    let out = canonicalize_header(Canonicalization::Relaxed, &field);
    let value = &out[1..out.len() - 2];
    assert!(!value.windows(2).any(|w| w == b"\r\n"), "{out:?}");
    assert_eq!(out, b":\xb5\xff\r\r=\r\n");
}
