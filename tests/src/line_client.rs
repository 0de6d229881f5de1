//! A raw SMTP client over TCP: the test writes command lines (or any
//! bytes, well-formed or not) and reads replies (RFC 5321 §4.2: lines
//! `code-text` until the one whose fourth byte is a space), nothing more.
//! For tests that check a server's exact replies, its limits and its
//! closes, where a real client would get in the way.
//!
//! Every read is bounded by the timeout given at connection time. The
//! panicking methods are for tests that expect the server to answer; the
//! `try_` ones for tests where the server may be gone (killed on purpose).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One TCP connection to an SMTP server, read reply by reply.
#[derive(Debug)]
pub struct LineClient {
    stream: TcpStream,
    replies: BufReader<TcpStream>,
}

impl LineClient {
    /// Connects to `addr`, every connect and read bounded by `timeout`. The
    /// greeting is not read: see [`greeted`](Self::greeted).
    pub fn try_connect(addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let replies = BufReader::new(stream.try_clone()?);
        Ok(Self { stream, replies })
    }

    /// [`try_connect`](Self::try_connect).
    ///
    /// # Panics
    ///
    /// When the connection fails.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Self {
        Self::try_connect(addr, timeout).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    /// [`connect`](Self::connect), then the greeting, which must be `220`.
    ///
    /// # Panics
    ///
    /// When the connection fails or the greeting is not `220`.
    pub fn greeted(addr: SocketAddr, timeout: Duration) -> Self {
        let mut client = Self::connect(addr, timeout);
        let greeting = client.reply();
        assert!(greeting.starts_with("220"), "greeting: {greeting:?}");
        client
    }

    /// The socket, to write to or shut down directly.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Writes `bytes` as they are.
    pub fn try_write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// [`try_write`](Self::try_write).
    ///
    /// # Panics
    ///
    /// When the write fails.
    pub fn write(&mut self, bytes: &[u8]) {
        self.try_write(bytes).expect("write to the server");
    }

    /// The lines of the next reply, without their line ends. An
    /// `UnexpectedEof` error when the server closes first, `InvalidData`
    /// for a line too short to hold a code.
    pub fn try_reply_lines(&mut self) -> io::Result<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.replies.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("closed after {lines:?}"),
                ));
            }
            let line = line.trim_end().to_owned();
            if line.len() < 3 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("short reply line {line:?}"),
                ));
            }
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return Ok(lines);
            }
        }
    }

    /// The lines of the next reply.
    ///
    /// # Panics
    ///
    /// When the server closes first, the read times out, or a line is
    /// malformed.
    pub fn reply_lines(&mut self) -> Vec<String> {
        self.try_reply_lines()
            .unwrap_or_else(|e| panic!("reading a reply: {e}"))
    }

    /// The next reply, its lines joined by `\n`.
    ///
    /// # Panics
    ///
    /// As [`reply_lines`](Self::reply_lines).
    pub fn reply(&mut self) -> String {
        self.reply_lines().join("\n")
    }

    /// The last line of the next reply (the one that ends it).
    ///
    /// # Panics
    ///
    /// As [`reply_lines`](Self::reply_lines).
    pub fn last_line(&mut self) -> String {
        self.reply_lines().pop().unwrap_or_default()
    }

    /// Writes `line` and CRLF; the reply, its lines joined by `\n`.
    ///
    /// # Panics
    ///
    /// When the write fails, or as [`reply_lines`](Self::reply_lines).
    pub fn cmd(&mut self, line: &str) -> String {
        self.write(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Writes `line` and CRLF; the last line of the reply.
    ///
    /// # Panics
    ///
    /// As [`cmd`](Self::cmd).
    pub fn cmd_last(&mut self, line: &str) -> String {
        self.write(format!("{line}\r\n").as_bytes());
        self.last_line()
    }

    /// One transaction to `rcpt` with `message` (its text, the final dot
    /// added here): the replies to MAIL and, when MAIL was accepted, to the
    /// end of data. RCPT must get `250` and DATA `354`.
    ///
    /// # Panics
    ///
    /// When RCPT or DATA is refused, or as [`cmd`](Self::cmd).
    pub fn transaction(
        &mut self,
        from: &str,
        rcpt: &str,
        message: &str,
    ) -> (String, Option<String>) {
        let mail = self.cmd(&format!("MAIL FROM:<{from}>"));
        if !mail.starts_with("250") {
            return (mail, None);
        }
        let to = self.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert!(to.starts_with("250"), "RCPT TO:<{rcpt}>: {to}");
        let data = self.cmd("DATA");
        assert!(data.starts_with("354"), "DATA: {data}");
        self.write(message.as_bytes());
        let end = self.cmd(".");
        (mail, Some(end))
    }

    /// Whether the server closed the connection: end of input with nothing
    /// more to read.
    pub fn closed(&mut self) -> bool {
        let mut rest = String::new();
        matches!(self.replies.read_line(&mut rest), Ok(0))
    }
}
