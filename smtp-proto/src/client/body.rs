//! The outgoing message body: dot-stuffed DATA or counted BDAT chunks.
//!
//! The body is streamed: `write_body` takes as much of a chunk as fits in a
//! bounded buffer and says how much it took. Under DATA the bytes go
//! through a [`DotStuffer`] straight into the transmit buffer; under BDAT
//! they fill a chunk that is sealed (`BDAT <n>`) when full or at the end
//! (`BDAT <n> LAST`).
//!
//! Bare CR and bare LF are checked here, before anything is taken, so a
//! refused chunk leaves the session unchanged (the [`DotStuffer`] itself
//! would have written everything before the offending byte, and DATA has no
//! way to take bytes back).

use crate::data::{BareLineEnding, DotStuffer};

/// How the body of the current transaction goes out.
#[derive(Debug, Clone)]
pub(crate) enum BodySink {
    /// After `354`: stuffed into the transmit buffer.
    Data(DotStuffer),
    /// Chunks of `BDAT`; `chunk` holds the bytes of the chunk being filled.
    Bdat {
        /// The chunk being filled.
        chunk: Vec<u8>,
    },
}

/// Tracks the last body byte across chunks to find bare line endings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LineEndings {
    /// The last byte taken was a CR (its LF may start the next chunk).
    after_cr: bool,
}

impl LineEndings {
    /// The offset in `chunk` of the first bare CR or bare LF, given what
    /// came before. A CR at the very end is not bare yet.
    pub(crate) fn find_bare(&self, chunk: &[u8]) -> Option<usize> {
        let mut pos = 0;
        if self.after_cr {
            match chunk.first() {
                None => return None,
                Some(b'\n') => pos = 1,
                // The CR that ended the previous chunk was bare; report the
                // first byte of this chunk, which proves it.
                Some(_) => return Some(0),
            }
        }
        while let Some(i) = chunk
            .get(pos..)
            .and_then(|rest| memchr::memchr2(b'\r', b'\n', rest))
        {
            let at = pos + i;
            if chunk.get(at) == Some(&b'\n') {
                return Some(at);
            }
            match chunk.get(at + 1) {
                Some(b'\n') => pos = at + 2,
                Some(_) => return Some(at),
                None => return None,
            }
        }
        None
    }

    /// Records that `chunk` was taken.
    pub(crate) fn take(&mut self, chunk: &[u8]) {
        if let Some(&last) = chunk.last() {
            self.after_cr = last == b'\r';
        }
    }

    /// Whether the body so far ends in a CR (bare if the body ends here).
    pub(crate) fn ends_in_cr(&self) -> bool {
        self.after_cr
    }
}

/// Normalizes bare CR and bare LF to CRLF for BDAT (DATA's [`DotStuffer`]
/// does it itself), appending to `out`. `after_cr` carries a CR that ended
/// the previous chunk and was already written as CRLF.
pub(crate) fn normalize_into(chunk: &[u8], state: &mut LineEndings, out: &mut Vec<u8>) {
    let mut after_cr = state.after_cr;
    for &b in chunk {
        match b {
            b'\n' if after_cr => {
                // The CRLF was already written when the CR arrived.
                after_cr = false;
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                after_cr = true;
            }
            _ => {
                out.push(b);
                after_cr = false;
            }
        }
    }
    state.after_cr = after_cr;
}

/// Whether a policy refuses bare line endings.
pub(crate) fn rejects(policy: BareLineEnding) -> bool {
    policy == BareLineEnding::Reject
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(prev_cr: bool, chunk: &[u8]) -> Option<usize> {
        LineEndings { after_cr: prev_cr }.find_bare(chunk)
    }

    #[test]
    fn finds_bare_line_endings() {
        assert_eq!(bare(false, b"a\r\nb\r\n"), None);
        assert_eq!(bare(false, b"a\nb"), Some(1));
        assert_eq!(bare(false, b"a\rb"), Some(1));
        assert_eq!(bare(false, b"a\r"), None, "undecided at the end");
        assert_eq!(bare(true, b"\nx"), None);
        assert_eq!(bare(true, b"x"), Some(0));
        assert_eq!(bare(true, b""), None);
        assert_eq!(bare(false, b"\r\n\n"), Some(2));
        assert_eq!(bare(false, b"\r\r\n"), Some(0));
    }

    #[test]
    fn normalizes_across_chunks() {
        let mut st = LineEndings::default();
        let mut out = Vec::new();
        normalize_into(b"a\r", &mut st, &mut out);
        normalize_into(b"\nb\nc\rd", &mut st, &mut out);
        normalize_into(b"\r", &mut st, &mut out);
        normalize_into(b"\r\n", &mut st, &mut out);
        assert_eq!(out, b"a\r\nb\r\nc\r\nd\r\n\r\n");
    }
}
