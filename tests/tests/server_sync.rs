//! Protocol synchronization (RFC 2920 §3.1, RFC 3207 §4, RFC 4954 §4):
//! raw client bytes against the server session, for every point where a
//! client must wait, unauthenticated (refused with `554 5.5.0` and
//! disconnected) and authenticated (served), and the legitimate
//! PIPELINING shapes that must keep working.

use std::time::{Duration, Instant};

use base64::Engine as _;
use smtp_proto::address::Domain;
use smtp_proto::keyword::Mechanism;
use smtp_proto::server::{CloseReason, Config, Event, Server, SyncPoint};
use smtp_proto::{Output, TlsMode};

const SYNC: &[u8] = b"554 5.5.0 Error: SMTP protocol synchronization\r\n";

fn config() -> Config {
    let mut config = Config::new(Domain::new("mx.example.org").unwrap().into_owned());
    config.auth.mechanisms = vec![Mechanism::PLAIN, Mechanism::LOGIN];
    config.auth.require_tls = false;
    config
}

/// A server session with a scripted application: it answers every question
/// with `accept` unless told to hold the answers back.
struct Harness {
    server: Server,
    now: Instant,
    /// Everything the server wrote.
    wire: Vec<u8>,
    /// Event names, in order.
    events: Vec<String>,
    /// Hold questions instead of answering them.
    hold: bool,
    /// Write replies (`advance_transmit`) as they come.
    write: bool,
    starttls: usize,
}

impl Harness {
    fn new(config: Config) -> Self {
        let now = Instant::now();
        let mut h = Self {
            server: Server::new(config, now),
            now,
            wire: Vec::new(),
            events: Vec::new(),
            hold: false,
            write: true,
            starttls: 0,
        };
        h.drain();
        h
    }

    fn drain(&mut self) {
        for _ in 0..10_000 {
            let answer = match self.server.poll(self.now) {
                Output::Transmit(bytes) => {
                    if !self.write {
                        return;
                    }
                    let n = bytes.len();
                    self.wire.extend_from_slice(bytes);
                    self.server.advance_transmit(self.now, n).unwrap();
                    false
                }
                Output::Event(event) => {
                    let name = match &event {
                        Event::Helo { .. } => "helo".to_owned(),
                        Event::Mail { .. } => "mail".to_owned(),
                        Event::Rcpt { .. } => "rcpt".to_owned(),
                        Event::DataStart { .. } => "data-start".to_owned(),
                        Event::Body(b) => format!("body {}", b.escape_ascii()),
                        Event::MessageEnd { .. } => "message-end".to_owned(),
                        Event::AuthPlain { .. } => "auth-plain".to_owned(),
                        Event::AuthLogin { .. } => "auth-login".to_owned(),
                        Event::Vrfy { .. } => "vrfy".to_owned(),
                        Event::Expn { .. } => "expn".to_owned(),
                        Event::Reset { .. } => "reset".to_owned(),
                        Event::Closed { reason } => format!("closed {reason:?}"),
                        other => format!("{other:?}"),
                    };
                    let answer = event.needs_answer();
                    self.events.push(name);
                    answer && !self.hold
                }
                Output::StartTls => {
                    self.starttls += 1;
                    return;
                }
                Output::Wait { .. } => return,
                _ => return,
            };
            if answer {
                self.server.accept().unwrap();
            }
        }
        panic!("the server never waited");
    }

    /// The client sends `bytes` in one write; the server reads and answers.
    fn send(&mut self, bytes: &[u8]) {
        assert_eq!(self.server.handle_input(self.now, bytes), bytes.len());
        self.drain();
    }

    /// Takes what the server wrote so far.
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.wire)
    }

    fn take_text(&mut self) -> String {
        String::from_utf8_lossy(&self.take()).into_owned()
    }

    fn saw(&self, name: &str) -> bool {
        self.events.iter().any(|e| e == name)
    }

    /// A greeted session, replies taken.
    fn greeted(config: Config) -> Self {
        let mut h = Self::new(config);
        h.send(b"EHLO client.example\r\n");
        h.take();
        h
    }

    /// Authenticated with AUTH PLAIN (initial response).
    fn authenticate(&mut self) {
        let ir = base64::engine::general_purpose::STANDARD.encode(b"\0user\0secret");
        self.send(format!("AUTH PLAIN {ir}\r\n").as_bytes());
        assert!(self.take_text().starts_with("235 "));
        assert!(self.server.is_authenticated());
    }

    fn assert_sync_closed(&mut self, point: SyncPoint) {
        assert!(self.server.is_closed(), "closed: {:?}", self.events);
        assert_eq!(
            self.server.close_reason(),
            Some(&CloseReason::Synchronization(point))
        );
    }
}

/// The wire must end with the 554, and it must be the only 554.
fn ends_with_sync(wire: &[u8]) -> bool {
    wire.ends_with(SYNC) && wire.windows(SYNC.len()).filter(|w| *w == SYNC).count() == 1
}

// ------------------------------------------------ a transaction behind DATA

const ENVELOPE: &[u8] = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n";
const SMUGGLED: &[u8] =
    b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nforged\r\n.\r\n";

fn open_data(h: &mut Harness) {
    h.send(ENVELOPE);
    assert_eq!(
        h.take_text(),
        "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    );
}

#[test]
fn transaction_pipelined_behind_the_end_of_data_is_refused() {
    let mut h = Harness::greeted(config());
    open_data(&mut h);
    let mut batch = b"Subject: one\r\n\r\nfirst\r\n.\r\n".to_vec();
    batch.extend_from_slice(SMUGGLED);
    h.send(&batch);
    // One reply, to the first message: not stored, nothing of the second.
    assert_eq!(h.take(), SYNC);
    assert!(!h.saw("message-end"), "{:?}", h.events);
    assert_eq!(h.events.iter().filter(|e| *e == "mail").count(), 1);
    h.assert_sync_closed(SyncPoint::EndOfData);
}

#[test]
fn input_after_the_dot_while_the_application_decides_is_refused_after_its_answer() {
    let mut h = Harness::greeted(config());
    open_data(&mut h);
    h.hold = true;
    h.send(b"first\r\n.\r\n");
    assert!(h.saw("message-end"));
    // The client sends on before the final reply.
    h.send(b"MAIL FROM:<b@example.org>\r\n");
    assert!(!h.server.is_closed());
    h.server.accept().unwrap();
    h.hold = false;
    h.drain();
    // The stored message keeps its 250; the pipelined command gets 554.
    assert_eq!(
        h.take(),
        [&b"250 2.0.0 Message accepted\r\n"[..], SYNC].concat()
    );
    assert_eq!(h.events.iter().filter(|e| *e == "mail").count(), 1);
    h.assert_sync_closed(SyncPoint::EndOfData);
}

#[test]
fn input_after_the_dot_before_the_reply_is_written_is_refused() {
    let mut h = Harness::greeted(config());
    open_data(&mut h);
    h.write = false;
    h.send(b"first\r\n.\r\n");
    // The 250 is queued, not yet written: the client cannot have seen it.
    h.send(b"MAIL FROM:<b@example.org>\r\n");
    h.write = true;
    h.drain();
    assert!(ends_with_sync(&h.take()));
    h.assert_sync_closed(SyncPoint::EndOfData);
}

#[test]
fn a_lone_quit_behind_the_dot_is_served_as_postfix_sends_it() {
    // Postfix's smtp client writes "." and "QUIT" together when it will
    // not reuse the connection: the message is answered, then QUIT.
    let mut h = Harness::greeted(config());
    open_data(&mut h);
    h.send(b"first\r\n.\r\nQUIT\r\n");
    assert!(h.saw("message-end"));
    assert_eq!(
        h.take_text(),
        "250 2.0.0 Message accepted\r\n221 2.0.0 mx.example.org Service closing transmission channel\r\n"
    );
    assert_eq!(h.server.close_reason(), Some(&CloseReason::Quit));

    // The QUIT in a second segment, before the 250 was written: the same.
    let mut h = Harness::greeted(config());
    open_data(&mut h);
    h.hold = true;
    h.send(b"first\r\n.\r\n");
    h.send(b"QUIT\r\n");
    h.server.accept().unwrap();
    h.hold = false;
    h.drain();
    assert!(
        h.take_text()
            .ends_with("221 2.0.0 mx.example.org Service closing transmission channel\r\n")
    );
    assert_eq!(h.server.close_reason(), Some(&CloseReason::Quit));

    // Anything more than that QUIT is out of sync, and the message is not
    // stored.
    for behind in [&b"QUIT\r\nNOOP\r\n"[..], b"RSET\r\n", b"QUIT"] {
        let mut h = Harness::greeted(config());
        open_data(&mut h);
        h.send(&[&b"first\r\n.\r\n"[..], behind].concat());
        assert_eq!(h.take(), SYNC, "{}", behind.escape_ascii());
        assert!(!h.saw("message-end"));
    }
}

#[test]
fn authenticated_client_may_pipeline_behind_the_end_of_data() {
    let mut h = Harness::greeted(config());
    h.authenticate();
    open_data(&mut h);
    let mut batch = b"first\r\n.\r\n".to_vec();
    batch.extend_from_slice(SMUGGLED);
    batch.extend_from_slice(b"QUIT\r\n");
    h.send(&batch);
    assert_eq!(
        h.take_text(),
        "250 2.0.0 Message accepted\r\n250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n\
         354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Message accepted\r\n\
         221 2.0.0 mx.example.org Service closing transmission channel\r\n"
    );
    assert_eq!(h.server.close_reason(), Some(&CloseReason::Quit));
}

#[test]
fn the_rule_can_be_turned_off() {
    let mut c = config();
    c.forbid_unauth_pipelining = false;
    let mut h = Harness::greeted(c);
    open_data(&mut h);
    let mut batch = b"first\r\n.\r\n".to_vec();
    batch.extend_from_slice(SMUGGLED);
    h.send(&batch);
    assert_eq!(
        h.events.iter().filter(|e| *e == "message-end").count(),
        2,
        "{:?}",
        h.events
    );
    assert!(!h.server.is_closed());
}

// --------------------------------------------------------- DATA itself

#[test]
fn content_pipelined_behind_data_is_refused() {
    let mut h = Harness::greeted(config());
    h.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n");
    assert_eq!(
        h.take(),
        [
            &b"250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"[..],
            SYNC
        ]
        .concat()
    );
    assert!(!h.saw("data-start"));
    h.assert_sync_closed(SyncPoint::Data);
}

#[test]
fn authenticated_client_may_pipeline_behind_data() {
    let mut h = Harness::greeted(config());
    h.authenticate();
    h.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nbody\r\n.\r\n");
    assert!(h.take_text().ends_with("250 2.0.0 Message accepted\r\n"));
    assert!(h.saw("message-end"));
}

// ------------------------------------------------- the other group ends

/// Sends `first` with `behind` pipelined after it on a greeted session and
/// expects `reply` (the first command's own answer, if the server gives it)
/// followed by the 554.
fn pipelined(first: &[u8], behind: &[u8], reply: &str, point: SyncPoint) {
    let mut h = Harness::greeted(config());
    h.send(&[first, behind].concat());
    let wire = h.take();
    assert_eq!(
        wire,
        [reply.as_bytes(), SYNC].concat(),
        "{}",
        wire.escape_ascii()
    );
    h.assert_sync_closed(point);

    // Authenticated, the same bytes are served.
    let mut h = Harness::greeted(config());
    h.authenticate();
    h.send(&[first, behind].concat());
    assert!(!ends_with_sync(&h.take()));
    assert_ne!(
        h.server.close_reason(),
        Some(&CloseReason::Synchronization(point))
    );
}

#[test]
fn pipelined_after_ehlo() {
    // EHLO is answered (as Postfix does); the pipelined MAIL gets the 554.
    let mut h = Harness::new(config());
    h.take();
    h.send(b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n");
    let wire = h.take_text();
    assert!(wire.starts_with("250-mx.example.org\r\n"), "{wire}");
    assert!(ends_with_sync(wire.as_bytes()), "{wire}");
    assert!(!h.saw("mail"));
    h.assert_sync_closed(SyncPoint::Helo);

    pipelined(
        b"HELO client.example\r\n",
        b"MAIL FROM:<a@example.org>\r\n",
        "250 mx.example.org\r\n",
        SyncPoint::Helo,
    );
}

#[test]
fn pipelined_after_noop() {
    pipelined(
        b"NOOP\r\n",
        b"RSET\r\n",
        "250 2.0.0 Ok\r\n",
        SyncPoint::Noop,
    );
}

#[test]
fn pipelined_after_vrfy_and_expn() {
    pipelined(b"VRFY postmaster\r\n", b"NOOP\r\n", "", SyncPoint::Verify);
    pipelined(b"EXPN staff\r\n", b"NOOP\r\n", "", SyncPoint::Verify);
}

#[test]
fn pipelined_after_quit() {
    let mut h = Harness::greeted(config());
    h.send(b"QUIT\r\nNOOP\r\n");
    assert_eq!(h.take(), SYNC);
    h.assert_sync_closed(SyncPoint::Quit);
}

#[test]
fn authenticated_quit_and_starttls_follow_their_own_rules() {
    // QUIT with more behind it: 221 (the rest is never read).
    let mut h = Harness::greeted(config());
    h.authenticate();
    h.send(b"QUIT\r\nNOOP\r\n");
    assert!(h.take_text().starts_with("221 "));
    assert_eq!(h.server.close_reason(), Some(&CloseReason::Quit));
    // STARTTLS with plaintext behind it: the injection policy decides
    // (close without a word by default), not the synchronization rule.
    let mut c = config();
    c.tls = TlsMode::Opportunistic;
    let mut h = Harness::greeted(c);
    h.authenticate();
    h.send(b"STARTTLS\r\nEHLO client.example\r\n");
    assert!(h.take().is_empty());
    assert!(matches!(
        h.server.close_reason(),
        Some(CloseReason::StartTlsInjection { .. })
    ));
}

#[test]
fn pipelined_after_auth() {
    let ir = base64::engine::general_purpose::STANDARD.encode(b"\0user\0secret");
    // With the initial response: nothing may follow before 235.
    let mut h = Harness::greeted(config());
    h.send(format!("AUTH PLAIN {ir}\r\nMAIL FROM:<a@example.org>\r\n").as_bytes());
    assert_eq!(h.take(), SYNC);
    assert!(!h.saw("auth-plain"));
    assert!(!h.server.is_authenticated());
    h.assert_sync_closed(SyncPoint::Auth);

    // The response sent before the 334 challenge.
    let mut h = Harness::greeted(config());
    h.send(format!("AUTH PLAIN\r\n{ir}\r\n").as_bytes());
    assert_eq!(h.take(), SYNC);
    h.assert_sync_closed(SyncPoint::Auth);

    // LOGIN: user name and password in one write.
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let mut h = Harness::greeted(config());
    h.send(b"AUTH LOGIN\r\n");
    assert_eq!(h.take_text(), "334 VXNlcm5hbWU6\r\n");
    h.send(format!("{}\r\n{}\r\n", b64(b"user"), b64(b"secret")).as_bytes());
    assert_eq!(h.take(), SYNC);
    assert!(!h.saw("auth-login"));
    h.assert_sync_closed(SyncPoint::Auth);

    // One line per reply is served.
    let mut h = Harness::greeted(config());
    h.send(b"AUTH LOGIN\r\n");
    h.send(format!("{}\r\n", b64(b"user")).as_bytes());
    h.send(format!("{}\r\n", b64(b"secret")).as_bytes());
    assert!(h.saw("auth-login"));
    assert!(
        h.take_text()
            .ends_with("235 2.7.0 Authentication successful\r\n")
    );
}

#[test]
fn pipelined_after_starttls() {
    let mut c = config();
    c.tls = TlsMode::Opportunistic;
    let mut h = Harness::greeted(c);
    h.send(b"STARTTLS\r\nEHLO client.example\r\n");
    assert_eq!(h.take(), SYNC);
    assert_eq!(h.starttls, 0, "no TLS switch after injected plaintext");
    h.assert_sync_closed(SyncPoint::StartTls);
}

#[test]
fn a_command_sent_before_the_reply_was_written_is_out_of_sync() {
    let mut h = Harness::new(config());
    h.take();
    h.write = false;
    h.send(b"EHLO client.example\r\n");
    // The EHLO reply is queued but not written: the client sent on blind.
    h.send(b"MAIL FROM:<a@example.org>\r\n");
    h.write = true;
    h.drain();
    assert!(ends_with_sync(&h.take()));
    assert!(!h.saw("mail"));
    h.assert_sync_closed(SyncPoint::Helo);
}

// ------------------------------------------------------- before the greeting

#[test]
fn input_before_the_greeting_is_written_is_refused() {
    let now = Instant::now();
    let mut server = Server::new(config(), now);
    // The transport has not written the 220 yet when the client talks.
    assert_eq!(server.handle_input(now, b"EHLO early\r\n"), 12);
    let mut wire = Vec::new();
    loop {
        match server.poll(now) {
            Output::Transmit(b) => {
                let n = b.len();
                wire.extend_from_slice(b);
                server.advance_transmit(now, n).unwrap();
            }
            Output::Event(Event::Closed { reason }) => {
                assert_eq!(reason, CloseReason::Synchronization(SyncPoint::Greeting));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wire, [&b"220 mx.example.org ESMTP\r\n"[..], SYNC].concat());
}

#[test]
fn greeting_delay_catches_a_pre_greeting_talker() {
    let mut c = config();
    c.greeting_delay = Duration::from_secs(6);
    let mut h = Harness::new(c);
    assert!(h.take().is_empty(), "the greeting is held back");
    assert_eq!(
        h.server.next_timeout(),
        Some(h.now + Duration::from_secs(6))
    );
    h.now += Duration::from_secs(2);
    h.send(b"EHLO early\r\n");
    // No greeting at all, just the refusal.
    assert_eq!(h.take(), SYNC);
    assert!(!h.saw("helo"));
    h.assert_sync_closed(SyncPoint::Greeting);
}

#[test]
fn greeting_delay_then_a_patient_client_is_served() {
    let mut c = config();
    c.greeting_delay = Duration::from_secs(6);
    let mut h = Harness::new(c);
    h.now += Duration::from_secs(6);
    h.server.handle_timeout(h.now);
    h.drain();
    assert_eq!(h.take_text(), "220 mx.example.org ESMTP\r\n");
    h.send(b"EHLO client.example\r\n");
    assert!(h.take_text().starts_with("250-mx.example.org"));
    assert!(h.saw("helo"));
    assert!(!h.server.is_closed());
}

#[test]
fn greeting_delay_without_the_rule_only_delays() {
    let mut c = config();
    c.greeting_delay = Duration::from_secs(6);
    c.forbid_unauth_pipelining = false;
    let mut h = Harness::new(c);
    h.send(b"EHLO early\r\n");
    assert!(h.take().is_empty());
    h.now += Duration::from_secs(6);
    h.server.handle_timeout(h.now);
    h.drain();
    let wire = h.take_text();
    assert!(
        wire.starts_with("220 mx.example.org ESMTP\r\n250-mx.example.org"),
        "{wire}"
    );
}

#[test]
fn eof_during_the_greeting_delay_closes() {
    let mut c = config();
    c.greeting_delay = Duration::from_secs(6);
    let mut h = Harness::new(c);
    h.server.handle_eof(h.now);
    h.drain();
    assert_eq!(h.server.close_reason(), Some(&CloseReason::Eof));
    assert!(h.take().is_empty());
}

// ------------------------------------------------- legitimate pipelining

#[test]
fn rfc_2920_groups_are_served() {
    let mut h = Harness::greeted(config());
    // MAIL, RCPT, RCPT, DATA in one group (RFC 2920 §3.1's example).
    h.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n");
    assert!(
        h.take_text()
            .ends_with("354 End data with <CR><LF>.<CR><LF>\r\n")
    );
    h.send(b"body\r\n.\r\n");
    assert_eq!(h.take_text(), "250 2.0.0 Message accepted\r\n");
    // RSET may open the next group; NOOP ends it.
    h.send(b"RSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nNOOP\r\n");
    assert_eq!(
        h.take_text(),
        "250 2.0.0 Ok\r\n250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n250 2.0.0 Ok\r\n"
    );
    h.send(b"QUIT\r\n");
    assert_eq!(h.server.close_reason(), Some(&CloseReason::Quit));
}

#[test]
fn bdat_chunks_are_pipelined_freely() {
    let mut h = Harness::greeted(config());
    // RFC 3030 §4.2: the envelope and every chunk in one write.
    h.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 6\r\nhello\nBDAT 7 LAST\r\nworld\r\n");
    // (The bare LF is refused at the end, under the default policy.)
    let wire = h.take_text();
    assert!(wire.contains("250 2.0.0 6 octets received\r\n"), "{wire}");
    assert!(!h.server.is_closed());
    h.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 7\r\nhello\r\nBDAT 0 LAST\r\n");
    let wire = h.take_text();
    assert!(wire.ends_with("250 2.0.0 Message accepted\r\n"), "{wire}");
    assert!(!h.server.is_closed());
}
