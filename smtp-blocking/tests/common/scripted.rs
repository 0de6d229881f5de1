//! A scripted SMTP server for the MX scenario table: it answers each
//! command with the reply the scenario lists, offers STARTTLS with a good,
//! self-signed or broken handshake, and counts its connections.
//!
//! The minimum the blocking transport's run of the table needs, until the
//! shared support (`smtp_tests::scripted`) replaces it. Bounded: every
//! read has a timeout, and dropping the server stops its accept loop
//! (woken by a connection of its own, not by polling).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// How long a connection may stay silent before the server drops it.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How the TLS handshake after `220` to STARTTLS goes.
#[derive(Clone)]
pub(crate) enum Handshake {
    /// With this certificate.
    With(Arc<ServerConfig>),
    /// The server reads the client's hello and closes the connection.
    Aborted,
}

/// STARTTLS at the server.
#[derive(Clone)]
pub(crate) enum Starttls {
    NotOffered,
    Refused(String),
    Offered(Handshake),
}

/// What the server says. Replies are single lines without CRLF.
#[derive(Clone)]
pub(crate) struct Script {
    pub(crate) greeting: String,
    /// The EHLO reply's first line; a positive one is followed by the
    /// extensions (and STARTTLS when offered).
    pub(crate) ehlo: String,
    pub(crate) starttls: Starttls,
    pub(crate) mail: String,
    /// The reply to the RCPT of a path (`<a@b>`); `rcpt_default` otherwise.
    pub(crate) rcpt: Vec<(String, String)>,
    pub(crate) rcpt_default: String,
    pub(crate) data: String,
    /// The reply after the content; `None`: close instead.
    pub(crate) end: Option<String>,
}

const EXTENSIONS: &[&str] = &["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"];

pub(crate) struct ScriptedServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

impl ScriptedServer {
    pub(crate) fn on(listener: TcpListener, script: Script) -> Self {
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let accept = {
            let (stop, connections) = (Arc::clone(&stop), Arc::clone(&connections));
            thread::spawn(move || {
                let mut workers = Vec::new();
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let script = script.clone();
                    workers.push(thread::spawn(move || {
                        let _ = serve(stream, &script);
                    }));
                }
                for worker in workers {
                    let _ = worker.join();
                }
            })
        };
        Self {
            addr,
            stop,
            connections,
            accept: Some(accept),
        }
    }

    /// TCP connections accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// The connection, plaintext or TLS; read a byte at a time so that no
/// plaintext is buffered across STARTTLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Conn {
    fn read_line(&mut self) -> io::Result<Option<String>> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            let n = match self {
                Self::Plain(s) => s.read(&mut byte)?,
                Self::Tls(s) => s.read(&mut byte)?,
            };
            if n == 0 {
                return Ok(None);
            }
            line.push(byte[0]);
        }
        line.truncate(line.len() - 2);
        Ok(Some(String::from_utf8_lossy(&line).into_owned()))
    }

    fn write_lines(&mut self, lines: &[String]) -> io::Result<()> {
        let mut out = String::new();
        for line in lines {
            out.push_str(line);
            out.push_str("\r\n");
        }
        match self {
            Self::Plain(s) => s.write_all(out.as_bytes()),
            Self::Tls(s) => {
                s.write_all(out.as_bytes())?;
                s.flush()
            }
        }
    }

    fn reply(&mut self, line: &str) -> io::Result<()> {
        self.write_lines(&[line.to_owned()])
    }
}

fn code(reply: &str) -> &str {
    reply.get(..3).unwrap_or(reply)
}

/// `250 text` as the first of several lines: `250-text`.
fn continued(reply: &str) -> String {
    format!("{}-{}", code(reply), reply.get(4..).unwrap_or_default())
}

fn serve(tcp: TcpStream, script: &Script) -> io::Result<()> {
    tcp.set_read_timeout(Some(READ_TIMEOUT))?;
    tcp.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut conn = Conn::Plain(tcp);
    conn.reply(&script.greeting)?;
    if code(&script.greeting) != "220" {
        if code(&script.greeting) == "421" {
            return Ok(());
        }
        // RFC 5321 §3.1: wait for QUIT.
        while let Some(line) = conn.read_line()? {
            if line.eq_ignore_ascii_case("QUIT") {
                return conn.reply("221 2.0.0 bye");
            }
            conn.reply("503 5.5.1 no service")?;
        }
        return Ok(());
    }
    let mut tls = false;
    let mut mail = false;
    let mut accepted = 0usize;
    while let Some(line) = conn.read_line()? {
        let upper = line.to_ascii_uppercase();
        let verb = upper.split(' ').next().unwrap_or_default();
        match verb {
            "EHLO" | "HELO" => {
                mail = false;
                accepted = 0;
                if !script.ehlo.starts_with('2') {
                    conn.reply(&script.ehlo)?;
                    continue;
                }
                let mut extensions: Vec<&str> = EXTENSIONS.to_vec();
                if !tls && !matches!(script.starttls, Starttls::NotOffered) {
                    extensions.push("STARTTLS");
                }
                let mut lines = vec![continued(&script.ehlo)];
                for (i, extension) in extensions.iter().enumerate() {
                    let sep = if i + 1 == extensions.len() { ' ' } else { '-' };
                    lines.push(format!("250{sep}{extension}"));
                }
                conn.write_lines(&lines)?;
            }
            "STARTTLS" if !tls => match &script.starttls {
                Starttls::NotOffered => conn.reply("502 5.5.1 not offered")?,
                Starttls::Refused(reply) => conn.reply(reply)?,
                Starttls::Offered(handshake) => {
                    conn.reply("220 2.0.0 go ahead")?;
                    let Conn::Plain(tcp) = conn else {
                        return Ok(());
                    };
                    match handshake {
                        Handshake::Aborted => {
                            let mut hello = [0u8; 512];
                            let _ = (&tcp).read(&mut hello);
                            return Ok(());
                        }
                        Handshake::With(config) => {
                            let session = ServerConnection::new(Arc::clone(config))
                                .map_err(io::Error::other)?;
                            let mut stream = StreamOwned::new(session, tcp);
                            while stream.conn.is_handshaking() {
                                stream.conn.complete_io(&mut stream.sock)?;
                            }
                            conn = Conn::Tls(Box::new(stream));
                            tls = true;
                            mail = false;
                            accepted = 0;
                        }
                    }
                }
            },
            "MAIL" => {
                mail = script.mail.starts_with('2');
                accepted = 0;
                conn.reply(&script.mail)?;
            }
            "RCPT" if !mail => conn.reply("503 5.5.1 MAIL first")?,
            "RCPT" => {
                let path = line
                    .find('<')
                    .and_then(|start| line.get(start..=line.find('>')?))
                    .unwrap_or_default();
                let reply = script
                    .rcpt
                    .iter()
                    .find(|(p, _)| p.eq_ignore_ascii_case(path))
                    .map_or(script.rcpt_default.as_str(), |(_, r)| r.as_str());
                if reply.starts_with('2') {
                    accepted += 1;
                }
                conn.reply(reply)?;
            }
            "DATA" if !mail || accepted == 0 => {
                conn.reply("554 5.5.1 no valid recipients")?;
            }
            "DATA" => {
                conn.reply(&script.data)?;
                if code(&script.data) != "354" {
                    continue;
                }
                loop {
                    match conn.read_line()? {
                        None => return Ok(()),
                        Some(l) if l == "." => break,
                        Some(_) => {}
                    }
                }
                mail = false;
                accepted = 0;
                match &script.end {
                    Some(reply) => conn.reply(reply)?,
                    None => return Ok(()),
                }
            }
            "RSET" => {
                mail = false;
                accepted = 0;
                conn.reply("250 2.0.0 ok")?;
            }
            "NOOP" => conn.reply("250 2.0.0 ok")?,
            "QUIT" => return conn.reply("221 2.0.0 bye"),
            _ => conn.reply("500 5.5.2 what?")?,
        }
    }
    Ok(())
}
