//! The byte pipe under a session: TCP (or a Unix socket), optionally TLS.
//!
//! # What a channel does, and what it refuses to do
//!
//! A [`Channel`] moves bytes and nothing else. It knows no SMTP: it reads
//! whatever is there, writes what it is given, and switches to TLS when
//! told. Deadlines are absolute [`Instant`]s, as the core hands them out
//! (`Output::Wait { deadline }`); each call turns the time left into socket
//! timeouts, so a silent or slow peer can never block a program longer than
//! the core allows.
//!
//! **It keeps no read buffer of its own.** Every byte [`Channel::read`] takes
//! from the socket goes to the caller in the same call. This is what makes
//! STARTTLS safe: when the core sees the `220` to STARTTLS, any bytes that
//! came with it were sent *before* the handshake, in plaintext, by whoever
//! sits on the path, and the core discards them and fails the session (the
//! "NO STARTTLS" paper, Poddebniak et al., USENIX Security 2021; the server
//! side twin is CVE-2011-0411). A transport with a `BufReader` that survives
//! [`Channel::start_tls`] would hide such bytes from the core and hand them
//! to the session as if they had come over TLS — the bug class that paper
//! found in many clients. Here bytes not yet read stay in the kernel, and
//! after the switch rustls reads them as TLS records, which injected
//! plaintext is not: the handshake fails.
//!
//! After the switch rustls buffers records and decrypted bytes internally;
//! that is inside the TLS layer, where everything is authenticated.
//!
//! **`TCP_NODELAY` is always on.** SMTP is write-write-read: a client writes
//! a body chunk and then the terminator, or a pipelined group, and then waits
//! for the reply. With Nagle's algorithm the second small write waits for the
//! ACK of the first, which the server delays by up to 40 ms (Linux delayed
//! ACK): lettre 0.11 loses ~40 ms per message that way. The drive loop
//! already writes each group in one call; no delay is ever useful.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(unix)]
use std::os::unix::net::UnixStream;
#[cfg(unix)]
use std::path::Path;

use rustls::ClientConnection;
use smtp_proto::{TlsInfo, TlsMode};

use crate::error::{Error, Phase};
use crate::tls::{ConfigError, TlsConfig, TlsError, server_name};
use crate::url::{Endpoint, ServerUrl};

/// The socket under the channel.
#[derive(Debug)]
enum Socket {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Socket {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_read_timeout(timeout),
            #[cfg(unix)]
            Self::Unix(s) => s.set_read_timeout(timeout),
        }
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_write_timeout(timeout),
            #[cfg(unix)]
            Self::Unix(s) => s.set_write_timeout(timeout),
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Self::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Self::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write_vectored(bufs),
            #[cfg(unix)]
            Self::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection to an SMTP or LMTP server: plaintext, or TLS after
/// [`start_tls`](Self::start_tls) or [`connect_tls`](Self::connect_tls).
#[derive(Debug)]
pub struct Channel {
    socket: Socket,
    tls: Option<Box<ClientConnection>>,
    tls_info: Option<TlsInfo>,
}

/// The time left until `deadline`, as a socket timeout; `None` means no
/// deadline. A deadline that has passed is a timeout right away (a zero
/// socket timeout would mean "block forever" to the OS).
fn time_left(deadline: Option<Instant>, phase: Phase) -> Result<Option<Duration>, Error> {
    match deadline {
        None => Ok(None),
        Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(Error::Timeout(phase)),
        },
    }
}

impl Channel {
    /// Connects to the first address of `addrs` that accepts, in order,
    /// giving each `timeout_per_address` (a dead address must not eat the
    /// time of the live one behind it). `TCP_NODELAY` is set.
    ///
    /// Fails with [`Error::Connect`] holding the last address and its error,
    /// or [`Error::NoAddress`] if `addrs` is empty.
    pub fn connect(addrs: &[SocketAddr], timeout_per_address: Duration) -> Result<Self, Error> {
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(addr, timeout_per_address) {
                Ok(stream) => return Self::from_tcp(stream),
                Err(source) => last = Some((*addr, source)),
            }
        }
        match last {
            Some((addr, source)) => Err(Error::Connect { addr, source }),
            None => Err(Error::NoAddress(String::from("an empty address list"))),
        }
    }

    /// Resolves `host` with the system resolver (`getaddrinfo`: `/etc/hosts`,
    /// then DNS; this lookup itself has no timeout but the system's) and
    /// [connects](Self::connect) to its addresses in the order returned.
    /// For a submission server or a smart host; MX delivery resolves with
    /// [`crate::dns::Resolver`] instead.
    pub fn connect_host(
        host: &str,
        port: u16,
        timeout_per_address: Duration,
    ) -> Result<Self, Error> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let addrs: Vec<SocketAddr> = (bare, port)
            .to_socket_addrs()
            .map_err(|e| Error::Dns(crate::dns::DnsError::System(e)))?
            .collect();
        if addrs.is_empty() {
            return Err(Error::NoAddress(host.to_owned()));
        }
        Self::connect(&addrs, timeout_per_address)
    }

    /// Connects and runs the TLS handshake at once: implicit TLS (RFC 8314
    /// §3.3, port 465). `host` is the name the certificate must match. The
    /// handshake gets its own `handshake_timeout`, counted after the
    /// connection is made.
    pub fn connect_tls(
        addrs: &[SocketAddr],
        host: &str,
        config: &TlsConfig,
        timeout_per_address: Duration,
        handshake_timeout: Duration,
    ) -> Result<Self, Error> {
        let mut channel = Self::connect(addrs, timeout_per_address)?;
        channel.start_tls(config, host, Instant::now() + handshake_timeout)?;
        Ok(channel)
    }

    /// Opens the connection a [`ServerUrl`] describes: TCP to its host
    /// (system resolver, every address in turn, `connect_timeout` each),
    /// with the TLS handshake at once for `smtps://` (within
    /// `handshake_timeout`, verified against `tls`), or its Unix socket.
    /// STARTTLS is not run here: it comes later, when the session asks.
    pub fn open(
        url: &ServerUrl,
        tls: &TlsConfig,
        connect_timeout: Duration,
        handshake_timeout: Duration,
    ) -> Result<Self, Error> {
        match &url.endpoint {
            Endpoint::Tcp { host, port } => {
                let mut channel = Self::connect_host(host, *port, connect_timeout)?;
                if url.tls == TlsMode::Implicit {
                    channel.start_tls(tls, host, Instant::now() + handshake_timeout)?;
                }
                Ok(channel)
            }
            #[cfg(unix)]
            Endpoint::Unix(path) => Self::connect_unix(path),
            #[cfg(not(unix))]
            Endpoint::Unix(_) => Err(Error::NoAddress(String::from(
                "Unix sockets are not available on this platform",
            ))),
        }
    }

    /// Wraps a connected TCP stream and sets `TCP_NODELAY` on it.
    pub fn from_tcp(stream: TcpStream) -> Result<Self, Error> {
        stream.set_nodelay(true).map_err(Error::Io)?;
        Ok(Self {
            socket: Socket::Tcp(stream),
            tls: None,
            tls_info: None,
        })
    }

    /// Connects to a Unix socket, for LMTP to a local delivery agent
    /// (Dovecot's `lmtp` socket, Cyrus' `lmtp`). Plaintext only: the kernel
    /// already says who is on the other side.
    #[cfg(unix)]
    pub fn connect_unix(path: impl AsRef<Path>) -> Result<Self, Error> {
        let stream = UnixStream::connect(path).map_err(Error::Io)?;
        Ok(Self::from_unix(stream))
    }

    /// Wraps a connected Unix stream.
    #[cfg(unix)]
    pub fn from_unix(stream: UnixStream) -> Self {
        Self {
            socket: Socket::Unix(stream),
            tls: None,
            tls_info: None,
        }
    }

    /// Whether the channel runs TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// What the TLS handshake negotiated, once it is done.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls_info.as_ref()
    }

    /// The peer's address, for a TCP channel.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match &self.socket {
            Socket::Tcp(s) => s.peer_addr().ok(),
            #[cfg(unix)]
            Socket::Unix(_) => None,
        }
    }

    /// This side's address, for a TCP channel (the default EHLO name is
    /// built from it).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.socket {
            Socket::Tcp(s) => s.local_addr().ok(),
            #[cfg(unix)]
            Socket::Unix(_) => None,
        }
    }

    /// Reads what is available (at least one byte, or 0 at end of stream),
    /// waiting at most until `deadline`. Over TLS the bytes are decrypted.
    ///
    /// Every byte read is in `buf` when this returns; nothing is kept back
    /// (see the [module docs](self)).
    ///
    /// A TLS peer that closes TCP without a `close_notify` alert is reported
    /// as a plain end of stream: SMTP replies carry their own framing, so a
    /// truncation is caught by the session (an incomplete reply), and many
    /// servers close that way after `221`.
    pub fn read(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let Some(tls) = self.tls.as_deref_mut() else {
            self.socket
                .set_read_timeout(time_left(deadline, Phase::Reading)?)
                .map_err(Error::Io)?;
            return loop {
                match self.socket.read(buf) {
                    Ok(n) => break Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(Error::from_io(e, Phase::Reading)),
                }
            };
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(Error::from_io(e, Phase::Reading)),
            }
            self.socket
                .set_read_timeout(time_left(deadline, Phase::Reading)?)
                .map_err(Error::Io)?;
            match tls.read_tls(&mut self.socket) {
                // EOF: rustls remembers it, and the reader reports it above.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::from_io(e, Phase::Reading)),
            }
            let processed = tls.process_new_packets();
            // Alerts (on error) and key-update answers go out now.
            let flushed = flush_tls(tls, &mut self.socket, deadline);
            processed.map_err(|e| Error::Tls(TlsError::Handshake(e)))?;
            flushed?;
        }
    }

    /// Writes all of `data`, waiting at most until `deadline`. Call it once
    /// per `Output::Transmit`, which holds everything ready to go, so that a
    /// pipelined group leaves in one write.
    pub fn write_all(&mut self, data: &[u8], deadline: Option<Instant>) -> Result<(), Error> {
        match self.tls.as_deref_mut() {
            None => write_all_plain(&mut self.socket, data, deadline),
            Some(tls) => {
                let mut rest = data;
                while !rest.is_empty() {
                    // rustls takes up to its buffer limit (64 KiB by
                    // default) and seals it into records; flushing empties
                    // the buffer, so every round makes progress.
                    let taken = tls.writer().write(rest).map_err(Error::Io)?;
                    rest = rest.get(taken..).unwrap_or_default();
                    flush_tls(tls, &mut self.socket, deadline)?;
                }
                Ok(())
            }
        }
    }

    /// Switches the connection to TLS and runs the handshake to completion,
    /// waiting at most until `deadline`: after the `220` reply to STARTTLS
    /// (RFC 3207 §4), or at once for implicit TLS. `host` is the name the
    /// certificate must match (see [`server_name`]).
    ///
    /// Call it only when the session says so (`Output::StartTls`): the
    /// session has then dealt with every plaintext byte read so far, and this
    /// channel holds none (see the [module docs](self)).
    pub fn start_tls(
        &mut self,
        config: &TlsConfig,
        host: &str,
        deadline: Instant,
    ) -> Result<TlsInfo, Error> {
        if self.tls.is_some() {
            return Err(Error::Tls(TlsError::Unavailable(
                "the connection already runs TLS",
            )));
        }
        #[cfg(unix)]
        if matches!(self.socket, Socket::Unix(_)) {
            return Err(Error::Tls(TlsError::Unavailable(
                "TLS over a Unix socket is not supported",
            )));
        }
        let name = server_name(host)?;
        let mut tls = ClientConnection::new(Arc::clone(config.client_config()), name.clone())
            .map_err(|e| Error::Tls(TlsError::Config(ConfigError::Rustls(e))))?;
        while tls.is_handshaking() {
            let left = time_left(Some(deadline), Phase::TlsHandshake)?;
            self.socket.set_read_timeout(left).map_err(Error::Io)?;
            self.socket.set_write_timeout(left).map_err(Error::Io)?;
            match tls.complete_io(&mut self.socket) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Send the alert that explains the failure, if any.
                    let _ = flush_tls(&mut tls, &mut self.socket, Some(deadline));
                    return Err(Error::from_io(e, Phase::TlsHandshake));
                }
            }
        }
        flush_tls(&mut tls, &mut self.socket, Some(deadline))?;
        let info = smtp_proto::tls::client_info(&tls, &name);
        self.tls = Some(Box::new(tls));
        self.tls_info = Some(info.clone());
        Ok(info)
    }

    /// Closes the connection: a TLS `close_notify` (best effort, until
    /// `deadline`), then the write side of the socket. Call it after the
    /// session has ended (after `QUIT` and its reply).
    pub fn close(mut self, deadline: Option<Instant>) -> Result<(), Error> {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.send_close_notify();
            flush_tls(tls, &mut self.socket, deadline)?;
        }
        let shutdown = match &self.socket {
            Socket::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            #[cfg(unix)]
            Socket::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
        match shutdown {
            // The peer may have closed first; that is a closed connection too.
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(Error::Io(e)),
            _ => Ok(()),
        }
    }
}

fn write_all_plain(
    socket: &mut Socket,
    mut data: &[u8],
    deadline: Option<Instant>,
) -> Result<(), Error> {
    while !data.is_empty() {
        socket
            .set_write_timeout(time_left(deadline, Phase::Writing)?)
            .map_err(Error::Io)?;
        match socket.write(data) {
            Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) => data = data.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::from_io(e, Phase::Writing)),
        }
    }
    Ok(())
}

/// Writes every TLS record rustls has ready.
fn flush_tls(
    tls: &mut ClientConnection,
    socket: &mut Socket,
    deadline: Option<Instant>,
) -> Result<(), Error> {
    while tls.wants_write() {
        socket
            .set_write_timeout(time_left(deadline, Phase::Writing)?)
            .map_err(Error::Io)?;
        match tls.write_tls(socket) {
            Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::from_io(e, Phase::Writing)),
        }
    }
    Ok(())
}
