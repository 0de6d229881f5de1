//! BDAT (CHUNKING, RFC 3030): counted chunks, and line-ending checks for
//! bodies that must still be made of CRLF lines.

use super::BodyStats;

/// The octets of one `BDAT <size> [LAST]` chunk (RFC 3030 §2), taken from
/// the stream by count.
///
/// Nothing inside a chunk is interpreted: no unstuffing, no end-of-data
/// scan; a chunk may hold `CRLF . CRLF` as plain data. After the chunk
/// the stream is back to command lines.
///
/// ```
/// use smtp_proto::data::BdatChunk;
///
/// let mut chunk = BdatChunk::new(7);
/// assert_eq!(chunk.take(b"a\r\n.\r\n"), b"a\r\n.\r\n");
/// assert_eq!(chunk.take(b"zQUIT\r\n"), b"z");
/// assert!(chunk.is_complete());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BdatChunk {
    remaining: u64,
}

impl BdatChunk {
    /// A chunk of `size` octets, as announced by `BDAT <size>`.
    pub fn new(size: u64) -> Self {
        Self { remaining: size }
    }

    /// Takes the chunk's next octets from the front of `buf`: at most the
    /// octets still owed. The caller removes `taken.len()` bytes from its
    /// buffer; whatever follows a complete chunk is the next command.
    pub fn take<'b>(&mut self, buf: &'b [u8]) -> &'b [u8] {
        let n = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.remaining -= n as u64;
        buf.get(..n).unwrap_or(buf)
    }

    /// Octets still owed.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Whether every octet of the chunk has been taken.
    pub fn is_complete(&self) -> bool {
        self.remaining == 0
    }
}

/// Rewrites a body that arrives in pieces so that CR and LF occur only as
/// CRLF and no NUL remains: a bare CR or bare LF becomes CRLF, a NUL is
/// dropped ([`BareLineEnding::Normalize`](super::BareLineEnding::Normalize)
/// for BDAT chunks, and the client's BDAT bodies).
///
/// Nothing is held back: a CR is written as CRLF at once, and a LF right
/// after it (in the same piece or the next) is then skipped.
///
/// ```
/// use smtp_proto::data::LineEndingNormalizer;
///
/// let mut n = LineEndingNormalizer::new();
/// let mut out = Vec::new();
/// n.normalize(b"a\r", &mut out);
/// n.normalize(b"\nb\nc\0\rd", &mut out);
/// assert_eq!(out, b"a\r\nb\r\nc\r\nd");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineEndingNormalizer {
    /// The last byte taken was a CR, already written as CRLF.
    after_cr: bool,
}

impl LineEndingNormalizer {
    /// A normalizer at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `piece` comes out of [`LineEndingNormalizer::normalize`]
    /// unchanged: no bare CR or LF, no NUL, and no CR at either edge that
    /// the pieces around it decide.
    pub fn is_unchanged(&self, piece: &[u8]) -> bool {
        if self.after_cr || piece.last() == Some(&b'\r') {
            return false;
        }
        let mut pos = 0;
        while let Some(i) = piece
            .get(pos..)
            .and_then(|rest| memchr::memchr3(b'\r', b'\n', 0, rest))
            .map(|i| pos + i)
        {
            if piece.get(i) == Some(&b'\r') && piece.get(i + 1) == Some(&b'\n') {
                pos = i + 2;
            } else {
                return false;
            }
        }
        true
    }

    /// Records that `piece` went out unchanged (see
    /// [`LineEndingNormalizer::is_unchanged`]).
    pub fn pass(&mut self, piece: &[u8]) {
        if let Some(&last) = piece.last() {
            self.after_cr = last == b'\r';
        }
    }

    /// Appends the normalized `piece` to `out`.
    pub fn normalize(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        out.reserve(piece.len() + 2);
        let mut after_cr = self.after_cr;
        for &b in piece {
            match b {
                // The CRLF was written when the CR arrived.
                b'\n' if after_cr => after_cr = false,
                b'\n' => out.extend_from_slice(b"\r\n"),
                b'\r' => {
                    out.extend_from_slice(b"\r\n");
                    after_cr = true;
                }
                0 => after_cr = false,
                _ => {
                    out.push(b);
                    after_cr = false;
                }
            }
        }
        self.after_cr = after_cr;
    }
}

/// Counts bare CR, bare LF and NUL (and octets) in a body that arrives in
/// pieces, such as the chunks of a `7BIT` or `8BITMIME` message sent with
/// BDAT. See the [module docs](super) for how the session uses it.
///
/// A CR at the end of a piece is judged by the first byte of the next; call
/// [`LineEndingCheck::finish`] after the last piece.
#[derive(Debug, Clone, Default)]
pub struct LineEndingCheck {
    stats: BodyStats,
    pending_cr: bool,
}

impl LineEndingCheck {
    /// A check at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans the next piece of the body.
    pub fn scan(&mut self, piece: &[u8]) {
        self.stats.octets += piece.len() as u64;
        let mut pos = 0;
        if self.pending_cr {
            match piece.first() {
                None => return,
                Some(b'\n') => pos = 1,
                Some(_) => self.stats.bare_cr += 1,
            }
            self.pending_cr = false;
        }
        while let Some(i) = piece
            .get(pos..)
            .and_then(|rest| memchr::memchr3(b'\r', b'\n', 0, rest))
            .map(|i| pos + i)
        {
            match piece.get(i) {
                Some(b'\r') => match piece.get(i + 1) {
                    Some(b'\n') => pos = i + 2,
                    Some(_) => {
                        self.stats.bare_cr += 1;
                        pos = i + 1;
                    }
                    None => {
                        self.pending_cr = true;
                        return;
                    }
                },
                Some(b'\n') => {
                    self.stats.bare_lf += 1;
                    pos = i + 1;
                }
                _ => {
                    self.stats.nul += 1;
                    pos = i + 1;
                }
            }
        }
    }

    /// Ends the body: a CR left at its very end was bare.
    pub fn finish(&mut self) -> &BodyStats {
        if std::mem::take(&mut self.pending_cr) {
            self.stats.bare_cr += 1;
        }
        &self.stats
    }

    /// The counts so far (a CR at the end of the last piece is not yet
    /// counted).
    pub fn stats(&self) -> &BodyStats {
        &self.stats
    }
}
