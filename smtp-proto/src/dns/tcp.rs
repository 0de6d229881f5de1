//! DNS over TCP framing: a two-octet length before each message
//! (RFC 1035 §4.2.2, RFC 7766 §8).

use thiserror::Error;

/// The largest DNS message a TCP frame can carry: its length is two octets
/// (RFC 1035 §4.2.2).
pub const MAX_TCP_MESSAGE: usize = 65_535;

/// A message too long for the two-octet length of a TCP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("DNS message of {0} octets exceeds the 65535-octet TCP frame limit")]
pub struct FrameTooLong(pub usize);

/// Appends `message` to `out` with its two-octet big-endian length prefix
/// (RFC 1035 §4.2.2, RFC 7766 §8).
pub fn write_tcp_frame(message: &[u8], out: &mut Vec<u8>) -> Result<(), FrameTooLong> {
    let len = u16::try_from(message.len()).map_err(|_| FrameTooLong(message.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    Ok(())
}

/// The result of looking for one DNS message at the start of a TCP stream
/// buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum TcpFrame<'a> {
    /// A whole message is buffered.
    Complete {
        /// The message, without its length prefix.
        message: &'a [u8],
        /// Octets to drop from the front of the buffer (prefix + message).
        consumed: usize,
    },
    /// The frame is not complete yet.
    Incomplete {
        /// The buffer must hold at least this many octets in all before
        /// the frame is complete (2 while the prefix itself is incomplete).
        needed: usize,
    },
}

/// Finds the first length-prefixed message in a TCP receive buffer
/// (RFC 1035 §4.2.2). The frame can never exceed 65537 octets, so a reader
/// that buffers only up to `needed` is bounded.
pub fn parse_tcp_frame(buf: &[u8]) -> TcpFrame<'_> {
    let Some((prefix, rest)) = buf.split_first_chunk::<2>() else {
        return TcpFrame::Incomplete { needed: 2 };
    };
    let len = usize::from(u16::from_be_bytes(*prefix));
    match rest.get(..len) {
        Some(message) => TcpFrame::Complete {
            message,
            consumed: len + 2,
        },
        None => TcpFrame::Incomplete { needed: len + 2 },
    }
}
