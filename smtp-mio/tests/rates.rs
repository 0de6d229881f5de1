//! Per-client rates on the mio server, a short real run: connections over
//! the rate get `421 4.7.0` instead of the greeting, `MAIL` and `RCPT` over
//! theirs `450 4.7.1`, and the connection goes on.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use smtp_mio::server::store::Credentials;

mod common;
use common::{TIMEOUT, start_store};

struct Conn {
    stream: TcpStream,
    replies: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: std::net::SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let replies = BufReader::new(stream.try_clone().unwrap());
        Self { stream, replies }
    }

    fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            assert!(self.replies.read_line(&mut line).unwrap() > 0, "closed");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.trim_end().to_owned();
            }
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }
}

#[test]
fn connection_message_and_recipient_rates() {
    let server = start_store(Credentials::new(), |o| {
        o.rates.connections = Some(2);
        o.rates.messages = Some(2);
        o.rates.recipients = Some(3);
        // The test client is on loopback, exempt by default.
        o.rates.count_loopback = true;
    });
    let mut a = Conn::open(server.addr);
    assert!(a.reply().starts_with("220 "));
    let mut b = Conn::open(server.addr);
    assert!(b.reply().starts_with("220 "));
    let mut c = Conn::open(server.addr);
    assert_eq!(
        c.reply(),
        "421 4.7.0 mx.test Error: too many connections from 127.0.0.1"
    );

    assert!(a.cmd("EHLO client.test").starts_with("250 "));
    assert!(a.cmd("MAIL FROM:<a@example.org>").starts_with("250 "));
    for to in ["b", "c", "d"] {
        assert!(
            a.cmd(&format!("RCPT TO:<{to}@example.net>"))
                .starts_with("250 ")
        );
    }
    assert_eq!(
        a.cmd("RCPT TO:<e@example.net>"),
        "450 4.7.1 Error: too many recipients from 127.0.0.1"
    );
    assert!(a.cmd("RSET").starts_with("250 "));
    assert!(a.cmd("MAIL FROM:<a@example.org>").starts_with("250 "));
    assert!(a.cmd("RSET").starts_with("250 "));
    assert_eq!(
        a.cmd("MAIL FROM:<a@example.org>"),
        "450 4.7.1 Error: too much mail from 127.0.0.1"
    );
    // The rate is the client's, not the connection's.
    assert!(b.cmd("EHLO client.test").starts_with("250 "));
    assert_eq!(
        b.cmd("MAIL FROM:<a@example.org>"),
        "450 4.7.1 Error: too much mail from 127.0.0.1"
    );
    assert!(a.cmd("QUIT").starts_with("221 "));
    assert!(b.cmd("QUIT").starts_with("221 "));
}
