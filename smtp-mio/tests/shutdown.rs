//! Graceful shutdown as clients see it: a connection between transactions
//! (greeted, or after a message) gets `421 4.3.2` and is closed at once; a
//! connection inside a transaction finishes it first, then gets its `421`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use smtp_mio::server::store::Credentials;

use common::{TIMEOUT, start_store};

/// A plain client reading whole replies.
struct Line {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Line {
    fn connect(server: &common::TestServer) -> Self {
        let stream = TcpStream::connect_timeout(&server.addr, TIMEOUT).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut c = Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        assert!(c.reply().starts_with("220 "));
        c
    }

    /// The next reply, its lines joined by `\n`.
    fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap();
            assert!(n > 0, "closed after {lines:?}");
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    fn cmd(&mut self, command: &str) -> String {
        self.writer
            .write_all(format!("{command}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }

    /// Whether the server closed the connection (EOF, nothing more).
    fn closed(&mut self) -> bool {
        let mut rest = String::new();
        matches!(self.reader.read_line(&mut rest), Ok(0))
    }
}

fn code(reply: &str) -> &str {
    reply.get(..3).unwrap_or(reply)
}

#[test]
fn idle_connections_get_421_and_a_transaction_in_progress_finishes() {
    let server = start_store(Credentials::new(), |o| o.threads = 1);

    // Greeted with EHLO, nothing else.
    let mut greeted = Line::connect(&server);
    assert_eq!(code(&greeted.cmd("EHLO client.test")), "250");
    // Between transactions: one message done.
    let mut between = Line::connect(&server);
    assert_eq!(code(&between.cmd("EHLO client.test")), "250");
    assert_eq!(code(&between.cmd("MAIL FROM:<a@example.org>")), "250");
    assert_eq!(code(&between.cmd("RCPT TO:<b@example.net>")), "250");
    assert_eq!(code(&between.cmd("DATA")), "354");
    assert_eq!(code(&between.cmd("Subject: one\r\n\r\nfirst\r\n.")), "250");
    // Inside a transaction: MAIL and RCPT accepted, DATA not sent yet.
    let mut open = Line::connect(&server);
    assert_eq!(code(&open.cmd("EHLO client.test")), "250");
    assert_eq!(code(&open.cmd("MAIL FROM:<c@example.org>")), "250");
    assert_eq!(code(&open.cmd("RCPT TO:<d@example.net>")), "250");

    server
        .running
        .as_ref()
        .unwrap()
        .shutdown_handle()
        .shutdown();

    for idle in [&mut greeted, &mut between] {
        let reply = idle.reply();
        assert!(reply.starts_with("421 4.3.2 "), "{reply}");
        assert!(idle.closed());
    }

    // The transaction goes on to its end, then the 421.
    assert_eq!(code(&open.cmd("DATA")), "354");
    assert_eq!(code(&open.cmd("Subject: two\r\n\r\nsecond\r\n.")), "250");
    let reply = open.reply();
    assert!(reply.starts_with("421 4.3.2 "), "{reply}");
    assert!(open.closed());

    assert_eq!(server.files("new").len(), 2);
    server.shutdown();
}
