//! The one session contract (`smtp_proto::session`), checked on both sides
//! through the same generic code wherever the rule is the same: a write
//! report over what was offered and a handshake nobody asked for are
//! refused with a `DriveError` and change nothing; the close reason is set
//! when closing starts and sticks; implicit TLS makes `StartTls` the first
//! output, reads nothing before the handshake, and is bounded by the
//! handshake timer; `session::drive` stops where the transport says.

use std::time::{Duration, Instant};

use smtp_proto::address::Domain;
use smtp_proto::client::{self, Client, Waiting};
use smtp_proto::server::{self, CloseReason, Server};
use smtp_proto::session::{self, Drained, Transport};
use smtp_proto::{DriveError, Output, Session, TlsInfo, TlsMode};
use smtp_tests::fixtures::client_config;
use smtp_tests::pair::{Pair, Split};

fn server_config(tls: TlsMode) -> server::Config {
    let mut c = server::Config::new(Domain::new("mx.example.org").unwrap().into_owned());
    c.tls = tls;
    c
}

/// The first transmit of a session (the server's greeting, the client's
/// EHLO after a greeting), as the generic contract sees it.
fn pending_transmit<S: Session>(s: &mut S, now: Instant) -> Vec<u8> {
    match s.poll(now) {
        Output::Transmit(bytes) => bytes.to_vec(),
        _ => panic!("expected a transmit"),
    }
}

/// A write report over what was offered is refused, and the same bytes are
/// offered again: the session did not move.
fn overrun_is_refused<S: Session>(s: &mut S, now: Instant) {
    let bytes = pending_transmit(s, now);
    let n = bytes.len();
    assert_eq!(
        s.advance_transmit(now, n + 1),
        Err(DriveError::TransmitOverrun {
            advanced: n + 1,
            pending: n
        })
    );
    assert_eq!(pending_transmit(s, now), bytes, "nothing changed");
    // A partial report is fine, and then the rest is all that is pending.
    s.advance_transmit(now, 1).unwrap();
    assert_eq!(
        s.advance_transmit(now, n),
        Err(DriveError::TransmitOverrun {
            advanced: n,
            pending: n - 1
        })
    );
    s.advance_transmit(now, n - 1).unwrap();
    assert!(matches!(s.poll(now), Output::Wait { .. }));
    assert_eq!(
        s.advance_transmit(now, 1),
        Err(DriveError::TransmitOverrun {
            advanced: 1,
            pending: 0
        })
    );
}

#[test]
fn transmit_overrun_is_a_drive_error_on_both_sides() {
    let now = Instant::now();
    let mut server = Server::new(server_config(TlsMode::Disabled), now);
    overrun_is_refused(&mut server, now);

    let mut client = Client::new(client_config(TlsMode::Disabled), now);
    let greeting = b"220 mx.example.org ESMTP\r\n";
    assert_eq!(client.handle_input(now, greeting), greeting.len());
    assert!(matches!(
        client.poll(now),
        Output::Event(client::Event::Reply { .. })
    ));
    overrun_is_refused(&mut client, now);
    assert_eq!(
        client.error(),
        None,
        "the client no longer clamps, nor fails"
    );
}

/// A handshake report without `StartTls` is refused and changes nothing.
fn unasked_handshake_is_refused<S: Session>(s: &mut S, now: Instant) {
    assert_eq!(
        s.handle_tls_established(now, TlsInfo::default()),
        Err(DriveError::NoHandshakePending)
    );
    assert!(!s.is_tls());
    assert_eq!(s.tls_info(), None);
}

#[test]
fn unasked_handshake_is_a_drive_error_on_both_sides() {
    let now = Instant::now();
    let mut server = Server::new(server_config(TlsMode::Opportunistic), now);
    unasked_handshake_is_refused(&mut server, now);
    let mut client = Client::new(client_config(TlsMode::Required), now);
    unasked_handshake_is_refused(&mut client, now);
    // Asked once, reported once: a second report is refused too.
    let mut server = Server::new(server_config(TlsMode::Implicit), now);
    assert_eq!(server.poll(now), Output::StartTls);
    server
        .handle_tls_established(now, TlsInfo::default())
        .unwrap();
    assert_eq!(
        server.handle_tls_established(now, TlsInfo::default()),
        Err(DriveError::NoHandshakePending)
    );
}

/// Under implicit TLS the first output is `StartTls`, nothing is read or
/// written before the handshake, and the handshake timer runs from that
/// output.
fn implicit_starts_with_the_handshake<S: Session>(s: &mut S, now: Instant, limit: Duration) {
    assert_eq!(s.read_capacity(), 0, "nothing is read before the handshake");
    assert!(matches!(s.poll(now), Output::StartTls));
    assert!(!s.is_tls());
    assert_eq!(s.read_capacity(), 0);
    assert_eq!(s.next_timeout(), Some(now + limit));
    assert!(matches!(s.poll(now), Output::Wait { .. }), "asked once");
    assert!(s.close_reason().is_none());
}

#[test]
fn implicit_tls_first_output_is_start_tls_on_both_sides() {
    let now = Instant::now();
    let mut server = Server::new(server_config(TlsMode::Implicit), now);
    implicit_starts_with_the_handshake(&mut server, now, Duration::from_secs(60));
    let info = TlsInfo::new(Some("TLSv1.3".into()), None, Some("mx.example.org".into()));
    server.handle_tls_established(now, info.clone()).unwrap();
    assert!(server.is_tls());
    assert_eq!(server.tls_info(), Some(&info));
    assert_eq!(
        server.poll(now),
        Output::Event(server::Event::TlsEstablished)
    );
    // The greeting only now; STARTTLS is not offered over TLS.
    assert_eq!(
        pending_transmit(&mut server, now),
        b"220 mx.example.org ESMTP\r\n"
    );
    assert!(server.read_capacity() > 0);

    let mut client = Client::new(client_config(TlsMode::Implicit), now);
    implicit_starts_with_the_handshake(&mut client, now, Duration::from_secs(120));
    client.handle_tls_established(now, info.clone()).unwrap();
    assert!(client.is_tls());
    assert_eq!(client.tls_info(), Some(&info));
    assert!(client.read_capacity() > 0);
    // The greeting is awaited now, with its own timer (RFC 5321 §4.5.3.2.1).
    assert_eq!(client.next_timeout(), Some(now + Duration::from_secs(300)));
    assert!(matches!(client.poll(now), Output::Wait { .. }));
}

#[test]
fn implicit_tls_handshake_timeout_on_both_sides() {
    let now = Instant::now();
    let mut server = Server::new(server_config(TlsMode::Implicit), now);
    assert_eq!(server.poll(now), Output::StartTls);
    let deadline = server.next_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(60));
    server.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(server.close_reason(), None, "not yet");
    server.handle_timeout(deadline);
    assert_eq!(
        server.close_reason(),
        Some(&CloseReason::TlsHandshakeTimeout)
    );
    assert_eq!(
        server.poll(deadline),
        Output::Event(server::Event::Closed {
            reason: CloseReason::TlsHandshakeTimeout
        }),
        "closed without a byte: no greeting was ever queued"
    );
    assert!(server.is_closed());

    let mut client = Client::new(client_config(TlsMode::Implicit), now);
    assert_eq!(client.poll(now), Output::StartTls);
    let deadline = client.next_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(120));
    client.handle_timeout(deadline);
    let expected = client::Error::Timeout(Waiting::TlsHandshake);
    assert_eq!(
        client.close_reason(),
        Some(&client::CloseReason::Error(expected.clone()))
    );
    assert_eq!(
        client.poll(deadline),
        Output::Event(client::Event::Error(expected))
    );
    assert_eq!(client.poll(deadline), Output::Event(client::Event::Closed));
    assert!(client.is_closed());
}

#[test]
fn implicit_tls_end_to_end_in_the_pair() {
    let mut p = Pair::new(
        client_config(TlsMode::Implicit),
        server_config(TlsMode::Implicit),
    );
    p.split = Split::Bytes;
    p.run();
    assert!(p.client.is_ready(), "{:?}", p.client_events);
    assert!(p.client.is_tls() && p.server.is_tls());
    assert!(p.app.usage_errors.is_empty(), "{:?}", p.app.usage_errors);
    assert_eq!(
        p.app.log.first().map(String::as_str),
        Some("TlsEstablished")
    );
    assert!(!String::from_utf8_lossy(&p.s2c).contains("STARTTLS"));
}

#[test]
fn server_close_reason_is_set_when_closing_starts_and_sticks() {
    let now = Instant::now();
    let mut server = Server::new(server_config(TlsMode::Disabled), now);
    let greeting = pending_transmit(&mut server, now);
    server.advance_transmit(now, greeting.len()).unwrap();
    assert_eq!(server.close_reason(), None);
    assert_eq!(server.handle_input(now, b"QUIT\r\n"), 6);
    let bye = pending_transmit(&mut server, now);
    assert!(bye.starts_with(b"221 "));
    assert_eq!(
        server.close_reason(),
        Some(&CloseReason::Quit),
        "set before the 221 is written"
    );
    // The peer never takes the 221: the send timeout fires while closing,
    // and the reason stays the first one.
    let deadline = server.next_timeout().unwrap();
    server.handle_timeout(deadline);
    assert_eq!(server.close_reason(), Some(&CloseReason::Quit));
    assert_eq!(
        server.poll(deadline),
        Output::Event(server::Event::Closed {
            reason: CloseReason::Quit
        })
    );
    assert!(server.is_closed());
    server.handle_eof(deadline);
    assert_eq!(server.close_reason(), Some(&CloseReason::Quit));
}

#[test]
fn client_close_reason_is_set_when_closing_starts_and_sticks() {
    let now = Instant::now();
    // The normal end: QUIT enqueued is the start of closing.
    let mut p = Pair::new(
        client_config(TlsMode::Disabled),
        server_config(TlsMode::Disabled),
    );
    p.run();
    assert!(p.client.is_ready());
    assert_eq!(p.client.close_reason(), None);
    p.client
        .enqueue(smtp_proto::command::Command::Quit)
        .unwrap();
    assert_eq!(p.client.close_reason(), Some(&client::CloseReason::Quit));
    p.run();
    assert!(p.client.is_closed() && p.server.is_closed());
    assert_eq!(p.client.close_reason(), Some(&client::CloseReason::Quit));
    assert_eq!(p.server.close_reason(), Some(&CloseReason::Quit));

    // A failure: the reason is set at once, while the QUIT that RFC 5321
    // §3.1 asks for after a 554 greeting is still to be written, and a
    // later EOF does not change it.
    let mut client = Client::new(client_config(TlsMode::Disabled), now);
    let greeting = b"554 no service here\r\n";
    assert_eq!(client.handle_input(now, greeting), greeting.len());
    let reason = client.close_reason().cloned();
    assert!(
        matches!(
            &reason,
            Some(client::CloseReason::Error(client::Error::GreetingRejected(
                _
            )))
        ),
        "{reason:?}"
    );
    assert!(!client.is_closed());
    while !matches!(client.poll(now), Output::Transmit(_)) {}
    client.handle_eof(now);
    assert!(client.is_closed());
    assert_eq!(client.close_reason().cloned(), reason);

    // A failure after QUIT is still reported as the error, but the reason
    // stays the normal end that started the closing.
    let mut p = Pair::new(
        client_config(TlsMode::Disabled),
        server_config(TlsMode::Disabled),
    );
    p.run();
    p.client
        .enqueue(smtp_proto::command::Command::Quit)
        .unwrap();
    let now = p.now;
    loop {
        match p.client.poll(now) {
            Output::Transmit(bytes) => {
                let n = bytes.len();
                p.client.advance_transmit(now, n).unwrap();
            }
            Output::Wait { .. } => break,
            _ => {}
        }
    }
    let bogus = b"xyz\r\n";
    assert_eq!(p.client.handle_input(now, bogus), bogus.len());
    assert!(matches!(
        p.client.error(),
        Some(client::Error::InvalidReply(_))
    ));
    assert!(p.client.is_closed());
    assert_eq!(p.client.close_reason(), Some(&client::CloseReason::Quit));
}

/// A transport for `session::drive` that takes at most `room` bytes, and
/// answers a TLS request with `tls`.
struct Socket {
    written: Vec<u8>,
    room: usize,
    tls: Option<TlsInfo>,
    /// Report one more byte than written (a broken transport).
    lie: bool,
}

impl Transport for Socket {
    type Error = DriveError;

    fn write(&mut self, bytes: &[u8]) -> Result<usize, DriveError> {
        let n = bytes.len().min(self.room);
        self.room -= n;
        self.written.extend_from_slice(&bytes[..n]);
        Ok(n + usize::from(self.lie))
    }

    fn start_tls(&mut self) -> Result<Option<TlsInfo>, DriveError> {
        Ok(self.tls.clone())
    }
}

fn socket(room: usize, tls: Option<TlsInfo>) -> Socket {
    Socket {
        written: Vec::new(),
        room,
        tls,
        lie: false,
    }
}

/// The generic helper stops where the transport says, the same way for
/// either side.
fn drive_stops_where_the_transport_says<S: Session>(mut make: impl FnMut() -> S) {
    let now = Instant::now();
    // Full socket: the drain stops, the rest stays pending.
    let mut s = make();
    let mut full = socket(0, None);
    assert_eq!(
        session::drive(&mut s, now, &mut full, |_| {}),
        Ok(Drained::Handshake),
        "implicit TLS first: the handshake runs on in the transport"
    );
    s.handle_tls_established(now, TlsInfo::default()).unwrap();
    let drained = session::drive(&mut s, now, &mut full, |_| {});
    assert!(
        matches!(drained, Ok(Drained::WriteBlocked | Drained::Wait { .. })),
        "{drained:?}"
    );
    // A transport that finishes the handshake at once (wrapped in TLS at
    // accept or connect) lets the drain go on to a wait.
    let mut s = make();
    let mut done = socket(usize::MAX, Some(TlsInfo::default()));
    let drained = session::drive(&mut s, now, &mut done, |_| {});
    assert!(matches!(drained, Ok(Drained::Wait { .. })), "{drained:?}");
    assert!(s.is_tls());
}

#[test]
fn drive_helper_follows_the_transport_on_both_sides() {
    let now = Instant::now();
    drive_stops_where_the_transport_says(|| Server::new(server_config(TlsMode::Implicit), now));
    drive_stops_where_the_transport_says(|| Client::new(client_config(TlsMode::Implicit), now));

    // The server writes its greeting after the handshake: a full socket
    // blocks it; the liar is caught on it.
    let mut server = Server::new(server_config(TlsMode::Implicit), now);
    let mut full = socket(0, Some(TlsInfo::default()));
    assert_eq!(
        session::drive(&mut server, now, &mut full, |_| {}),
        Ok(Drained::WriteBlocked)
    );
    let mut liar = socket(usize::MAX, None);
    liar.lie = true;
    assert_eq!(
        session::drive(&mut server, now, &mut liar, |_| {}),
        Err(DriveError::TransmitOverrun {
            advanced: 27,
            pending: 26
        })
    );

    // The client's EHLO after the greeting, likewise.
    let mut client = Client::new(client_config(TlsMode::Disabled), now);
    let greeting = b"220 mx.example.org ESMTP\r\n";
    assert_eq!(client.handle_input(now, greeting), greeting.len());
    let mut liar = socket(usize::MAX, None);
    liar.lie = true;
    let mut events = Vec::new();
    assert_eq!(
        session::drive(&mut client, now, &mut liar, |e| events.push(e)),
        Err(DriveError::TransmitOverrun {
            advanced: 22,
            pending: 21
        })
    );
    assert_eq!(events.len(), 1, "the greeting's reply event came first");
    let mut honest = socket(usize::MAX, None);
    assert_eq!(
        session::drive(&mut client, now, &mut honest, |_| {}),
        Ok(Drained::Wait {
            deadline: client.next_timeout()
        })
    );
    assert_eq!(
        honest.written, b"EHLO client.example\r\n",
        "offered again, whole"
    );
}
