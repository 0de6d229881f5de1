//! Protocol synchronization over real sockets: the mio server refuses
//! unauthenticated clients that send on where they must wait (`554 5.5.0`
//! and a closed connection, nothing stored), serves authenticated ones,
//! and catches a client that talks before a delayed greeting.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;
use smtp_mio::server::store::Credentials;
use smtp_proto::keyword::Mechanism;

mod common;
use common::{TIMEOUT, TestServer, start_store};

const SYNC: &str = "554 5.5.0 Error: SMTP protocol synchronization\r\n";

/// A raw client: writes bytes, reads until a reply ending in `until` or
/// the end of the connection.
struct Raw {
    stream: TcpStream,
    got: Vec<u8>,
}

impl Raw {
    fn connect(server: &TestServer) -> Self {
        let stream = TcpStream::connect_timeout(&server.addr, TIMEOUT).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        Self {
            stream,
            got: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads until the text read so far ends with `until`; panics on a
    /// timeout.
    fn read_until(&mut self, until: &str) -> String {
        let mut buf = [0u8; 4096];
        while !self.got.ends_with(until.as_bytes()) {
            let n = self.stream.read(&mut buf).expect("read within the timeout");
            assert!(
                n > 0,
                "closed before {until:?}: {}",
                self.got.escape_ascii()
            );
            self.got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&std::mem::take(&mut self.got)).into_owned()
    }

    /// Reads to the end of the connection; returns everything read.
    fn read_to_end(&mut self) -> String {
        let mut rest = Vec::new();
        // A reset after the server's close counts as the end as well.
        let _ = self.stream.read_to_end(&mut rest);
        self.got.extend_from_slice(&rest);
        String::from_utf8_lossy(&std::mem::take(&mut self.got)).into_owned()
    }

    fn greeted(server: &TestServer) -> Self {
        let mut c = Self::connect(server);
        c.read_until(" ESMTP\r\n");
        c.send(b"EHLO client.test\r\n");
        c.read_ehlo();
        c
    }

    /// Reads a whole EHLO reply (up to its `250 ` line).
    fn read_ehlo(&mut self) -> String {
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&self.got).into_owned();
            if text.ends_with("\r\n") && text.lines().last().is_some_and(|l| l.starts_with("250 "))
            {
                self.got.clear();
                return text;
            }
            let n = self.stream.read(&mut buf).expect("read within the timeout");
            assert!(n > 0, "closed in the EHLO reply: {text}");
            self.got.extend_from_slice(&buf[..n]);
        }
    }
}

#[test]
fn a_transaction_pipelined_behind_the_end_of_data_is_refused_and_nothing_stored() {
    let server = start_store(Credentials::new(), |_| {});
    let mut c = Raw::greeted(&server);
    c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
    c.read_until("354 End data with <CR><LF>.<CR><LF>\r\n");
    c.send(
        b"Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<evil@example.com>\r\n\
          RCPT TO:<b@example.net>\r\nDATA\r\nsmuggled\r\n.\r\n",
    );
    assert_eq!(c.read_to_end(), SYNC);
    server.wait_sessions_ended(1);
    assert!(server.files("new").is_empty(), "nothing stored");
    assert!(server.files("tmp").is_empty(), "no leftovers");
}

#[test]
fn pipelined_after_ehlo_and_before_354_are_refused() {
    let server = start_store(Credentials::new(), |_| {});
    let mut c = Raw::connect(&server);
    c.read_until(" ESMTP\r\n");
    c.send(b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n");
    let got = c.read_to_end();
    assert!(got.starts_with("250-mx.test\r\n"), "{got}");
    assert!(got.ends_with(&format!("250 STARTTLS\r\n{SYNC}")), "{got}");

    let mut c = Raw::greeted(&server);
    c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nbody\r\n.\r\n");
    assert_eq!(
        c.read_to_end(),
        format!("250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n{SYNC}")
    );
    server.wait_sessions_ended(2);
    assert!(server.files("new").is_empty());
}

#[test]
fn pipelined_after_starttls_is_refused_in_plaintext() {
    let server = start_store(Credentials::new(), |_| {});
    let mut c = Raw::greeted(&server);
    c.send(b"STARTTLS\r\nMAIL FROM:<a@example.org>\r\n");
    assert_eq!(c.read_to_end(), SYNC);
}

#[test]
fn an_authenticated_client_may_pipeline() {
    let mut credentials = Credentials::new();
    credentials.add("alice", "s3cret");
    let server = start_store(credentials, |o| {
        o.session.auth.mechanisms = vec![Mechanism::PLAIN];
        o.session.auth.require_tls = false;
    });
    let mut c = Raw::greeted(&server);
    let ir = base64::engine::general_purpose::STANDARD.encode(b"\0alice\0s3cret");
    c.send(format!("AUTH PLAIN {ir}\r\n").as_bytes());
    c.read_until("235 2.7.0 Authentication successful\r\n");
    // Everything in one write, two messages and QUIT.
    c.send(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\none\r\n.\r\n\
          MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\ntwo\r\n.\r\nQUIT\r\n",
    );
    let got = c.read_to_end();
    assert_eq!(got.matches("250 2.0.0 Ok: queued as").count(), 2, "{got}");
    assert!(got.ends_with("221 2.0.0 mx.test Service closing transmission channel\r\n"));
    server.wait_sessions_ended(1);
    assert_eq!(server.files("new").len(), 2);
}

#[test]
fn a_client_talking_before_a_delayed_greeting_gets_no_greeting() {
    let server = start_store(Credentials::new(), |o| {
        o.session.greeting_delay = Duration::from_millis(300);
    });
    let mut c = Raw::connect(&server);
    c.send(b"EHLO early.test\r\n");
    assert_eq!(c.read_to_end(), SYNC);

    // A patient client gets the greeting after the delay and is served.
    let mut c = Raw::connect(&server);
    c.read_until("220 mx.test ESMTP\r\n");
    c.send(b"EHLO client.test\r\n");
    c.read_ehlo();
    c.send(b"QUIT\r\n");
    assert!(c.read_to_end().starts_with("221 "));
}
