//! One connection's byte stream: plaintext, or TLS through rustls, with the
//! switch in between (STARTTLS, RFC 3207) — and no read buffer of its own.
//!
//! The event loops move bytes between a socket and a session — the server's
//! ([`crate::server`]) or the client's ([`crate::delivery`]): the same
//! record layer serves both sides (`start_tls` for a server,
//! `start_tls_client` for a client). Both loops switch when the session
//! returns `Output::StartTls` — after STARTTLS, or as its first output
//! under implicit TLS — so the session's handshake timer covers every
//! handshake (implicit TLS, RFC 8314, is the same switch before any SMTP
//! byte). This module is the part of that which knows about TLS, kept apart from the loops so it
//! can be tested without sockets or sessions:
//!
//! - [`Transport::read`] fills the caller's buffer, no more: the loop asks
//!   for at most what the session can take (`Server::read_capacity`), so
//!   every byte read goes into the session at once. Nothing is ever held
//!   here, so nothing read in plaintext can survive the switch to TLS and be
//!   acted upon afterwards (the CVE-2011-0411 class of bugs lives in
//!   transport buffers). Under TLS, rustls decrypts into its own bounded
//!   buffer, which only ever holds data that arrived encrypted.
//! - [`Transport::write`] reports how much it took, so the loop can pass
//!   that to `advance_transmit`. Under TLS a short count means rustls'
//!   buffer was full (and has been flushed as far as the socket took it),
//!   not that the socket is: offer the rest again until a write fails with
//!   `WouldBlock`, since edge-triggered readiness follows only that.
//!   rustls' outgoing buffer is capped at [`TLS_BUFFER_LIMIT`], so a peer
//!   that never reads cannot make the loop buffer without bound.
//! - The handshake is driven by the same `read` and [`flush`](Transport::flush)
//!   calls as the data; its completion is reported once, as
//!   [`ReadOutcome::TlsEstablished`], for `Server::handle_tls_established`.
//!
//! Sockets are non-blocking: `WouldBlock` means "wait for readiness" and is
//! reported as [`ReadOutcome::WouldBlock`] on reads and as an
//! `io::ErrorKind::WouldBlock` error on writes, like the socket's own.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use smtp_proto::TlsInfo;
use smtp_proto::tls::{client_info, server_info};

/// Cap on rustls' outgoing buffers (plaintext waiting for the handshake,
/// and encrypted records waiting for the socket). A few TLS records: enough
/// to keep the socket busy, small enough for thousands of connections.
pub const TLS_BUFFER_LIMIT: usize = 32 * 1024;

/// What one [`Transport::read`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadOutcome {
    /// This many bytes of application data are in the buffer (0 only when
    /// the buffer was empty).
    Data(usize),
    /// Nothing more until the socket is readable again.
    WouldBlock,
    /// The peer closed its side (TCP FIN, or a TLS `close_notify`).
    Eof,
    /// The TLS handshake just completed: tell the session.
    TlsEstablished(TlsInfo),
}

/// Why [`Transport::start_tls`] refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartTlsError {
    /// The connection is already TLS.
    #[error("the connection is already using TLS")]
    AlreadyTls,
    /// rustls could not start a server connection.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A connection's stream over the socket `S` (a `mio::net::TcpStream` in
/// the server; anything non-blocking in tests).
#[derive(Debug)]
pub struct Transport<S> {
    socket: S,
    /// Boxed: a rustls connection is large, and most connections of a
    /// plaintext server never have one.
    tls: Option<Box<Tls>>,
}

#[derive(Debug)]
struct Tls {
    /// The server side (the mio server) or the client side (the delivery
    /// engine): the same record layer either way.
    conn: Connection,
    /// On the client side, the name the server is verified as (rustls does
    /// not hand it back): the SNI reported in [`TlsInfo`].
    server_name: Option<ServerName<'static>>,
    /// Whether the handshake's completion is still to be reported.
    handshaking: bool,
}

impl<S: Read + Write> Transport<S> {
    /// A plaintext connection (STARTTLS may follow).
    pub fn plain(socket: S) -> Self {
        Self { socket, tls: None }
    }

    /// Switches to TLS after STARTTLS: the session returned
    /// `Output::StartTls`, so its `220` is written and no plaintext input is
    /// pending anywhere. The handshake proceeds through `read` and `flush`.
    pub fn start_tls(&mut self, config: Arc<ServerConfig>) -> Result<(), StartTlsError> {
        if self.tls.is_some() {
            return Err(StartTlsError::AlreadyTls);
        }
        self.tls = Some(new_tls(ServerConnection::new(config)?.into(), None));
        Ok(())
    }

    /// The client side of STARTTLS: from now on bytes go through a rustls
    /// client connection verifying the server as `name`. The handshake
    /// starts at the next [`flush`](Self::flush).
    ///
    /// # Errors
    ///
    /// As [`start_tls`](Self::start_tls).
    pub fn start_tls_client(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<(), StartTlsError> {
        if self.tls.is_some() {
            return Err(StartTlsError::AlreadyTls);
        }
        let conn = ClientConnection::new(config, name.clone())?;
        self.tls = Some(new_tls(conn.into(), Some(name)));
        Ok(())
    }

    /// Whether TLS is in use (handshake done or in progress).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether a TLS handshake is in progress.
    pub fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.handshaking)
    }

    /// The negotiated TLS parameters, once the handshake is done.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        self.tls
            .as_ref()
            .filter(|t| !t.handshaking)
            .map(|t| info_of(t))
    }

    /// The socket.
    pub fn socket(&self) -> &S {
        &self.socket
    }

    /// The socket, mutably (to register it with a `Poll`).
    pub fn socket_mut(&mut self) -> &mut S {
        &mut self.socket
    }

    /// Reads application data into `buf`, at most `buf.len()` bytes, driving
    /// the TLS handshake on the way. Call it until it returns
    /// [`ReadOutcome::WouldBlock`] (the socket is drained; wait for the next
    /// readable event) or the session stops wanting input.
    ///
    /// A TLS protocol error is returned as an `InvalidData` error, after
    /// rustls' alert has been queued (call [`flush`](Self::flush) before
    /// closing if you want the peer to see it).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        let Some(tls) = self.tls.as_deref_mut() else {
            if buf.is_empty() {
                return Ok(ReadOutcome::Data(0));
            }
            loop {
                return match self.socket.read(buf) {
                    Ok(0) => Ok(ReadOutcome::Eof),
                    Ok(n) => Ok(ReadOutcome::Data(n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
                    // A signal interrupted the call: nothing happened, try
                    // again (reporting "nothing" would lose the readiness).
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
            }
        };
        loop {
            if tls.handshaking && !tls.conn.is_handshaking() {
                tls.handshaking = false;
                return Ok(ReadOutcome::TlsEstablished(info_of(tls)));
            }
            if !tls.handshaking {
                if buf.is_empty() {
                    return Ok(ReadOutcome::Data(0));
                }
                match tls.conn.reader().read(buf) {
                    // `close_notify` received and everything before it read.
                    Ok(0) => return Ok(ReadOutcome::Eof),
                    Ok(n) => return Ok(ReadOutcome::Data(n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // TCP closed without `close_notify`: for SMTP that is
                    // an end of input like any other (the session decides
                    // whether a message was cut off).
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Ok(ReadOutcome::Eof);
                    }
                    Err(e) => return Err(e),
                }
            }
            match tls.conn.read_tls(&mut self.socket) {
                Ok(0) => return Ok(ReadOutcome::Eof),
                Ok(_) => {
                    if let Err(e) = tls.conn.process_new_packets() {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadOutcome::WouldBlock);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes application data: straight to the socket in plaintext; into
    /// rustls (up to [`TLS_BUFFER_LIMIT`]) and on to the socket under TLS.
    /// Returns how many bytes were taken, for `advance_transmit`; a
    /// `WouldBlock` error when none could be.
    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.socket.write(data);
        };
        // Make room first: records already queued go out before new ones.
        flush_tls(tls, &mut self.socket).or_else(ignore_would_block)?;
        let taken = tls.conn.writer().write(data)?;
        flush_tls(tls, &mut self.socket).or_else(ignore_would_block)?;
        if taken == 0 && !data.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    /// Whether TLS records (handshake messages, alerts, encrypted data) are
    /// waiting for the socket.
    pub fn wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.conn.wants_write())
    }

    /// Writes queued TLS records to the socket. `Ok` when nothing is left;
    /// a `WouldBlock` error when the socket is full (wait for writability).
    /// Plaintext has nothing queued here.
    pub fn flush(&mut self) -> io::Result<()> {
        match self.tls.as_deref_mut() {
            Some(tls) => flush_tls(tls, &mut self.socket),
            None => Ok(()),
        }
    }

    /// Queues a TLS `close_notify` (nothing in plaintext) and tries to send
    /// it; the caller closes the socket afterwards.
    pub fn close_notify(&mut self) {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.conn.send_close_notify();
            // Best effort: the connection is ending either way.
            let _ = flush_tls(tls, &mut self.socket);
        }
    }
}

fn new_tls(mut conn: Connection, server_name: Option<ServerName<'static>>) -> Box<Tls> {
    conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
    Box::new(Tls {
        conn,
        server_name,
        handshaking: true,
    })
}

/// What the handshake negotiated; on the client side with the SNI sent
/// for the name the connection was made for, as `smtp-blocking` reports it.
fn info_of(tls: &Tls) -> TlsInfo {
    match &tls.conn {
        Connection::Server(server) => server_info(server),
        // Client connections are only ever made with a name (above).
        Connection::Client(client) => tls
            .server_name
            .as_ref()
            .map_or_else(TlsInfo::default, |name| client_info(client, name)),
    }
}

fn flush_tls(tls: &mut Tls, socket: &mut impl Write) -> io::Result<()> {
    while tls.conn.wants_write() {
        match tls.conn.write_tls(socket) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn ignore_would_block(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{TlsConfig, TlsIdentity};
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;
    use std::time::SystemTime;

    /// Both directions of an in-memory connection.
    #[derive(Default)]
    struct Wire {
        to_server: VecDeque<u8>,
        to_client: VecDeque<u8>,
        client_closed: bool,
        /// Bytes the server's socket may still take (None: unlimited).
        server_send_room: Option<usize>,
    }

    /// The server's end: non-blocking, like a mio socket.
    struct ServerEnd(Rc<RefCell<Wire>>);

    impl Read for ServerEnd {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let mut w = self.0.borrow_mut();
            if w.to_server.is_empty() {
                return if w.client_closed {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            let n = buf.len().min(w.to_server.len());
            for (slot, b) in buf.iter_mut().zip(w.to_server.drain(..n)) {
                *slot = b;
            }
            Ok(n)
        }
    }

    impl Write for ServerEnd {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut w = self.0.borrow_mut();
            let n = match w.server_send_room {
                Some(0) => return Err(io::ErrorKind::WouldBlock.into()),
                Some(room) => {
                    let n = room.min(buf.len());
                    w.server_send_room = Some(room - n);
                    n
                }
                None => buf.len(),
            };
            w.to_client.extend(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn pair() -> (Rc<RefCell<Wire>>, Transport<ServerEnd>) {
        let wire = Rc::new(RefCell::new(Wire::default()));
        let transport = Transport::plain(ServerEnd(Rc::clone(&wire)));
        (wire, transport)
    }

    fn identity_and_client() -> (Arc<ServerConfig>, ClientConnection) {
        let id = TlsIdentity::self_signed("mx.test", SystemTime::now()).unwrap();
        let client_config = TlsConfig::builder()
            .ca_pem(id.chain_pem().as_bytes())
            .unwrap()
            .build()
            .unwrap();
        let client = ClientConnection::new(
            Arc::clone(client_config.client_config()),
            ServerName::try_from("mx.test").unwrap(),
        )
        .unwrap();
        (id.server_config().unwrap(), client)
    }

    /// Moves client records to the wire and server records to the client;
    /// returns the application data the client received.
    fn pump_client(client: &mut ClientConnection, wire: &Rc<RefCell<Wire>>) -> Vec<u8> {
        let mut out = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut out).unwrap();
        }
        wire.borrow_mut().to_server.extend(out);
        let incoming: Vec<u8> = wire.borrow_mut().to_client.drain(..).collect();
        let mut slice = &incoming[..];
        let mut plain = Vec::new();
        loop {
            // The client's buffers are bounded too: feed, process, read,
            // until everything went through.
            while !slice.is_empty() {
                if client.read_tls(&mut slice).is_err() {
                    break;
                }
            }
            client.process_new_packets().unwrap();
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = client.reader().read(&mut buf) {
                plain.extend_from_slice(&buf[..n]);
            }
            if slice.is_empty() {
                return plain;
            }
        }
    }

    /// Runs the handshake to completion; returns the info reported.
    fn handshake(
        t: &mut Transport<ServerEnd>,
        client: &mut ClientConnection,
        wire: &Rc<RefCell<Wire>>,
    ) -> TlsInfo {
        let mut buf = [0u8; 64];
        for _ in 0..10 {
            pump_client(client, wire);
            match t.read(&mut buf).unwrap() {
                ReadOutcome::TlsEstablished(info) => {
                    t.flush().unwrap();
                    pump_client(client, wire);
                    assert!(!client.is_handshaking());
                    return info;
                }
                ReadOutcome::WouldBlock => {}
                other => panic!("unexpected {other:?} during handshake"),
            }
            t.flush().unwrap();
        }
        panic!("handshake did not complete");
    }

    #[test]
    fn plain_reads_never_take_more_than_asked() {
        let (wire, mut t) = pair();
        wire.borrow_mut()
            .to_server
            .extend(b"STARTTLS\r\nEHLO evil\r\n");
        let mut buf = [0u8; 10];
        assert_eq!(t.read(&mut buf).unwrap(), ReadOutcome::Data(10));
        assert_eq!(&buf, b"STARTTLS\r\n");
        // The rest is still in the socket, not in a buffer of ours.
        assert_eq!(wire.borrow().to_server.len(), 11);
        assert_eq!(t.read(&mut []).unwrap(), ReadOutcome::Data(0));
        let mut rest = [0u8; 64];
        assert_eq!(t.read(&mut rest).unwrap(), ReadOutcome::Data(11));
        assert_eq!(t.read(&mut rest).unwrap(), ReadOutcome::WouldBlock);
        wire.borrow_mut().client_closed = true;
        assert_eq!(t.read(&mut rest).unwrap(), ReadOutcome::Eof);
    }

    #[test]
    fn plain_writes_report_partial_progress() {
        let (wire, mut t) = pair();
        wire.borrow_mut().server_send_room = Some(5);
        assert_eq!(t.write(b"250 ok\r\n").unwrap(), 5);
        let err = t.write(b"k\r\n").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(!t.wants_write());
        t.flush().unwrap();
        assert_eq!(
            wire.borrow().to_client.iter().copied().collect::<Vec<_>>(),
            b"250 o"
        );
    }

    #[test]
    fn starttls_switch_then_encrypted_traffic_both_ways() {
        let (wire, mut t) = pair();
        let (config, mut client) = identity_and_client();
        // Plaintext phase.
        t.write(b"220 mx.test\r\n").unwrap();
        assert!(!t.is_tls());
        t.start_tls(Arc::clone(&config)).unwrap();
        assert!(t.is_tls() && t.is_handshaking());
        assert!(t.tls_info().is_none());
        assert!(matches!(
            t.start_tls(config),
            Err(StartTlsError::AlreadyTls)
        ));
        wire.borrow_mut().to_client.clear();
        let info = handshake(&mut t, &mut client, &wire);
        assert_eq!(info.protocol.as_deref(), Some("TLSv1.3"));
        assert_eq!(info.server_name.as_deref(), Some("mx.test"));
        assert!(!t.is_handshaking());
        assert_eq!(t.tls_info(), Some(info));

        // Client to server.
        client.writer().write_all(b"EHLO client\r\n").unwrap();
        pump_client(&mut client, &wire);
        let mut buf = [0u8; 4];
        let mut got = Vec::new();
        loop {
            match t.read(&mut buf).unwrap() {
                ReadOutcome::Data(n) => got.extend_from_slice(&buf[..n]),
                ReadOutcome::WouldBlock => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, b"EHLO client\r\n");
        // Server to client.
        assert_eq!(t.write(b"250 mx.test\r\n").unwrap(), 13);
        assert_eq!(pump_client(&mut client, &wire), b"250 mx.test\r\n");

        // close_notify from the client ends the input.
        client.send_close_notify();
        pump_client(&mut client, &wire);
        assert_eq!(t.read(&mut buf).unwrap(), ReadOutcome::Eof);
        t.close_notify();
    }

    /// The client side (the delivery engine's) reports what it negotiated
    /// and the SNI it sent: the host name, none for an address.
    #[test]
    fn client_side_reports_its_sni() {
        let id = TlsIdentity::self_signed("mx.test", SystemTime::now()).unwrap();
        let config = TlsConfig::builder()
            .ca_pem(id.chain_pem().as_bytes())
            .unwrap()
            .build()
            .unwrap();
        for (name, sni) in [("mx.test", Some("mx.test")), ("127.0.0.1", None)] {
            // The same in-memory socket, used by the client this time; the
            // peer is a bare rustls server.
            let (wire, mut t) = pair();
            let mut server = ServerConnection::new(id.server_config().unwrap()).unwrap();
            let name = smtp_proto::tls::server_name(name).unwrap();
            t.start_tls_client(Arc::clone(config.client_config()), name)
                .unwrap();
            assert!(t.tls_info().is_none());
            let mut buf = [0u8; 64];
            let info = (0..10)
                .find_map(|_| {
                    t.flush().unwrap();
                    let sent: Vec<u8> = wire.borrow_mut().to_client.drain(..).collect();
                    let mut slice = &sent[..];
                    while !slice.is_empty() {
                        server.read_tls(&mut slice).unwrap();
                    }
                    server.process_new_packets().unwrap();
                    let mut reply = Vec::new();
                    while server.wants_write() {
                        server.write_tls(&mut reply).unwrap();
                    }
                    wire.borrow_mut().to_server.extend(reply);
                    match t.read(&mut buf).unwrap() {
                        ReadOutcome::TlsEstablished(info) => Some(info),
                        ReadOutcome::WouldBlock => None,
                        other => panic!("unexpected {other:?} during handshake"),
                    }
                })
                .expect("the handshake completes");
            assert_eq!(info.protocol.as_deref(), Some("TLSv1.3"));
            assert_eq!(info.server_name.as_deref(), sni);
            assert_eq!(server.server_name(), sni);
            assert_eq!(t.tls_info(), Some(info));
        }
    }

    #[test]
    fn implicit_tls_and_unclean_close() {
        let wire = Rc::new(RefCell::new(Wire::default()));
        let (config, mut client) = identity_and_client();
        // Implicit TLS: the switch before any SMTP byte.
        let mut t = Transport::plain(ServerEnd(Rc::clone(&wire)));
        t.start_tls(config).unwrap();
        assert!(t.is_handshaking());
        handshake(&mut t, &mut client, &wire);
        // TCP closes without close_notify: still just the end of input.
        wire.borrow_mut().client_closed = true;
        let mut buf = [0u8; 16];
        assert_eq!(t.read(&mut buf).unwrap(), ReadOutcome::Eof);
    }

    /// Plaintext sent after STARTTLS (the injection attack) is never handed
    /// out as data: rustls rejects it as a broken handshake.
    #[test]
    fn plaintext_after_the_switch_is_an_error_not_data() {
        let (wire, mut t) = pair();
        let (config, _client) = identity_and_client();
        t.start_tls(config).unwrap();
        wire.borrow_mut()
            .to_server
            .extend(b"MAIL FROM:<evil@example.org>\r\n");
        let mut buf = [0u8; 64];
        let err = t.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // The alert is queued for the peer.
        assert!(t.wants_write());
        t.flush().unwrap();
        assert!(!wire.borrow().to_client.is_empty());
    }

    /// A client that never reads: the server's socket is full, rustls takes
    /// up to its limit and then refuses, so memory stays bounded.
    #[test]
    fn tls_output_is_bounded_when_the_peer_does_not_read() {
        let (wire, mut t) = pair();
        let (config, mut client) = identity_and_client();
        t.start_tls(config).unwrap();
        handshake(&mut t, &mut client, &wire);
        wire.borrow_mut().server_send_room = Some(0);
        let chunk = [b'x'; 4096];
        let mut taken = 0;
        for _ in 0..100 {
            match t.write(&chunk) {
                Ok(n) => taken += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(taken > 0);
        assert!(
            taken <= TLS_BUFFER_LIMIT + chunk.len(),
            "took {taken} bytes"
        );
        assert!(t.wants_write());
        assert_eq!(t.flush().unwrap_err().kind(), io::ErrorKind::WouldBlock);
        // The socket drains: everything taken reaches the client.
        wire.borrow_mut().server_send_room = None;
        t.flush().unwrap();
        let received = pump_client(&mut client, &wire);
        assert_eq!(received.len(), taken);
        assert!(received.iter().all(|&b| b == b'x'));
    }
}
