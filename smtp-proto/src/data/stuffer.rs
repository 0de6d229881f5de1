//! The client side of DATA: dot-stuffs an outgoing body and writes the
//! terminator.

use thiserror::Error;

use super::BareLineEnding;

/// A body the [`DotStuffer`] refused under [`BareLineEnding::Reject`].
///
/// Everything before the offending byte was stuffed and written; the
/// offending byte and what follows were not. The error sticks: later calls
/// return it again and [`DotStuffer::finish`] writes no terminator, because
/// terminating here would deliver a truncated message. DATA has no abort, so
/// the client session closes the connection (or, better, checks bodies it
/// did not produce itself before sending `DATA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StuffError {
    /// A CR not followed by a LF, at this offset of the body.
    #[error("bare CR at body offset {offset}")]
    BareCr {
        /// Offset of the CR from the start of the body.
        offset: u64,
    },
    /// A LF not preceded by a CR, at this offset of the body.
    #[error("bare LF at body offset {offset}")]
    BareLf {
        /// Offset of the LF from the start of the body.
        offset: u64,
    },
    /// A NUL at this offset of the body: not allowed in 7bit or 8bit data
    /// (RFC 2045 §2.7–2.8), which a DATA body is, and an end of data to a
    /// hop that strips NULs (`CRLF NUL . CRLF`).
    #[error("NUL at body offset {offset}")]
    Nul {
        /// Offset of the NUL from the start of the body.
        offset: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the body start or after an emitted CRLF.
    LineStart,
    /// Inside a line.
    Text,
    /// A CR was taken but not yet written: its successor decides whether it
    /// is half of a CRLF or a bare CR.
    Cr,
}

/// Streaming dot-stuffer for outgoing DATA (RFC 5321 §4.5.2). See the
/// [module docs](super).
///
/// Its output contains CR and LF only as CRLF pairs, and every line of it
/// that starts with a dot starts with two, so it cannot contain
/// `CRLF . CRLF` before the terminator written by [`DotStuffer::finish`].
/// The input may be split anywhere (a CR at the end of a chunk is held until
/// the next byte shows what it is).
#[derive(Debug, Clone)]
pub struct DotStuffer {
    state: State,
    policy: BareLineEnding,
    /// Body bytes taken so far (offsets in errors count from here).
    taken: u64,
    error: Option<StuffError>,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new(BareLineEnding::default())
    }
}

impl DotStuffer {
    /// A stuffer at the start of a body.
    pub fn new(policy: BareLineEnding) -> Self {
        Self {
            state: State::LineStart,
            policy,
            taken: 0,
            error: None,
        }
    }

    /// The policy for bare CR and bare LF.
    pub fn policy(&self) -> BareLineEnding {
        self.policy
    }

    /// Body bytes taken so far.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Stuffs `input`, appending the wire bytes to `out`. The whole chunk is
    /// taken (a trailing CR is kept in the stuffer's state); the caller
    /// applies backpressure by the size of the chunks it passes.
    ///
    /// Under [`BareLineEnding::Reject`] a bare CR, a bare LF or a NUL stops
    /// the stuffer with an error that sticks (see [`StuffError`]); under the
    /// other policies bare line endings become CRLF and NULs are dropped.
    pub fn stuff(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), StuffError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        // A sender never puts a bare line ending or a NUL on the wire:
        // `Accept` sends like `Normalize`.
        let normalize = self.policy != BareLineEnding::Reject;
        let base = self.taken;
        let mut pos = 0;
        out.reserve(input.len() + input.len() / 64 + 2);
        while let Some(&b) = input.get(pos) {
            match self.state {
                State::LineStart => {
                    if b == 0 {
                        if !normalize {
                            let offset = base + pos as u64;
                            return Err(self.fail(StuffError::Nul { offset }, offset));
                        }
                        // Dropped; the next byte is still at the line start
                        // (a dot there is stuffed, so that a hop stripping
                        // NULs cannot see `CRLF . CRLF` either).
                        pos += 1;
                        continue;
                    }
                    if b == b'.' {
                        out.push(b'.');
                    }
                    self.state = State::Text;
                }
                State::Cr => {
                    if b == b'\n' {
                        pos += 1;
                    } else if !normalize {
                        // The held CR is the byte before `b`.
                        let offset = (base + pos as u64).saturating_sub(1);
                        return Err(self.fail(StuffError::BareCr { offset }, base + pos as u64));
                    }
                    // CRLF, or a bare CR normalized to CRLF (`b` is read
                    // again as the first byte of the next line).
                    out.extend_from_slice(b"\r\n");
                    self.state = State::LineStart;
                }
                State::Text => {
                    // Fast path: copy up to the next byte that needs a
                    // decision, stepping over every CRLF whose next line does
                    // not start with a dot.
                    let rest = input.get(pos..).unwrap_or_default();
                    let k = ordinary_run(rest);
                    out.extend_from_slice(rest.get(..k).unwrap_or_default());
                    pos += k;
                    if k == rest.len() {
                        break;
                    }
                    if rest.get(k) == Some(&b'\r') {
                        pos += 1;
                        self.state = State::Cr;
                    } else if rest.get(k) == Some(&0) {
                        if !normalize {
                            let offset = base + pos as u64;
                            return Err(self.fail(StuffError::Nul { offset }, offset));
                        }
                        pos += 1;
                    } else if normalize {
                        pos += 1;
                        out.extend_from_slice(b"\r\n");
                        self.state = State::LineStart;
                    } else {
                        let offset = base + pos as u64;
                        return Err(self.fail(StuffError::BareLf { offset }, offset));
                    }
                }
            }
        }
        self.taken = base + pos as u64;
        Ok(())
    }

    /// Ends the body: writes a CRLF if the body did not end with one, then
    /// the terminator `.` CRLF (RFC 5321 §4.1.1.4). The stuffer is then
    /// ready for a new body. An empty body gives just `.` CRLF.
    ///
    /// Under [`BareLineEnding::Reject`] a body ending in a bare CR is refused
    /// here; after any error nothing is written.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StuffError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.state {
            State::LineStart => {}
            State::Text => out.extend_from_slice(b"\r\n"),
            State::Cr => {
                if self.policy == BareLineEnding::Reject {
                    let offset = self.taken.saturating_sub(1);
                    return Err(self.fail(StuffError::BareCr { offset }, self.taken));
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b".\r\n");
        *self = Self::new(self.policy);
        Ok(())
    }

    fn fail(&mut self, error: StuffError, taken: u64) -> StuffError {
        self.taken = taken;
        self.error = Some(error);
        error
    }
}

/// The length of the prefix of `rest` that is copied as it stands: up to the
/// first bare CR or LF, NUL, CRLF followed by a dot or a NUL, or CR or CRLF
/// at its end.
fn ordinary_run(rest: &[u8]) -> usize {
    let mut pos = 0;
    while let Some(i) = rest
        .get(pos..)
        .and_then(|r| memchr::memchr3(b'\r', b'\n', 0, r))
        .map(|k| pos + k)
    {
        if rest.get(i) == Some(&b'\r')
            && rest.get(i + 1) == Some(&b'\n')
            && rest.get(i + 2).is_some_and(|&c| c != b'.' && c != 0)
        {
            pos = i + 2;
        } else {
            return i;
        }
    }
    rest.len()
}
