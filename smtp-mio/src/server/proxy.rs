//! Reading the PROXY protocol header of a connection from a trusted proxy
//! (see [`smtp_proto::proxy`] for the format and why only trusted sources
//! may send it).
//!
//! The header is *peeked* from the socket and parsed; only once it is
//! complete are exactly its octets read and dropped. Nothing after it is
//! ever taken from the socket here, so the SMTP session (or the TLS
//! handshake of an implicit-TLS listener) starts reading at its own first
//! byte, and no read buffer crosses from this stage into the next. Peeking
//! does not consume, but with edge-triggered readiness every new segment
//! wakes the loop again, so a header that arrives in pieces is read as
//! soon as it is whole.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use smtp_proto::proxy::{self, Header, ProxyError};

use super::options::ListenerKind;

/// A connection from a trusted proxy whose header has not arrived yet.
pub(super) struct ProxyWait {
    pub(super) stream: TcpStream,
    /// The proxy's address (the connection's real peer).
    pub(super) proxy: SocketAddr,
    pub(super) kind: ListenerKind,
    /// When to give up.
    pub(super) deadline: Instant,
}

/// What one look at the socket found.
pub(super) enum Peeked {
    /// The header was read: the client and the address it connected to
    /// (`None`: the real endpoints, for `LOCAL`/`UNKNOWN`).
    Header(Option<(SocketAddr, SocketAddr)>),
    /// Not complete yet: wait for more.
    Wait,
    /// Malformed, too long, closed or failed: close without a greeting.
    Refuse(String),
}

impl ProxyWait {
    /// Peeks at what arrived, using `buf` (the loop's read buffer, larger
    /// than any v1 header and than the v2 headers proxies send).
    pub(super) fn peek(&mut self, buf: &mut [u8]) -> Peeked {
        let n = loop {
            match self.stream.peek(buf) {
                Ok(0) => return Peeked::Refuse("closed before the PROXY header".to_owned()),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Peeked::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Peeked::Refuse(e.to_string()),
            }
        };
        let seen = buf.get(..n).unwrap_or_default();
        let (header, len) = match proxy::parse(seen) {
            Ok(Some(found)) => found,
            // A v2 header longer than the buffer is refused too: its TLVs
            // are of no use here.
            Ok(None) if n == buf.len() => {
                return Peeked::Refuse(ProxyError::TooLong.to_string());
            }
            Ok(None) => return Peeked::Wait,
            Err(e) => return Peeked::Refuse(e.to_string()),
        };
        // The header's octets are in the socket's buffer already: drop
        // exactly them.
        let mut left = len;
        while left > 0 {
            let Some(chunk) = buf.get_mut(..left) else {
                break;
            };
            match self.stream.read(chunk) {
                Ok(0) => return Peeked::Refuse("closed in the PROXY header".to_owned()),
                Ok(k) => left -= k.min(left),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Peeked::Refuse(e.to_string()),
            }
        }
        match header {
            Header::Proxied {
                source,
                destination,
            } => Peeked::Header(Some((source, destination))),
            _ => Peeked::Header(None),
        }
    }
}
