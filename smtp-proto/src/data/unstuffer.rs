//! The server side of DATA: removes dot-stuffing in place and finds the one
//! true end of data.

use super::{BareLineEnding, BodyStats};

/// Where the automaton stands between two input bytes.
///
/// ```text
/// state          next byte  action                                   next state
/// LineStart      '.'        drop it                                  Dot
/// LineStart      other      (read it again)                          Text
/// Dot            CR         hold it                                  DotCr
/// Dot            other      the dot stays dropped; read it again     Text
/// DotCr          LF         end of data: CRLF . CRLF                 Done
/// DotCr          other      write the held CR (bare); read it again  WeakLineStart
/// Text           CR         write it                                 Cr
/// Text           LF         bare LF: write it (Normalize: CRLF)      WeakLineStart
/// Text           NUL        count it, write it                       Text
/// Text           other      write it (whole runs at once)            Text
/// Cr             LF         write it                                 LineStart
/// Cr             other      bare CR (Normalize: write a LF); again   WeakLineStart
/// WeakLineStart  '.'        drop it                                  Text
/// WeakLineStart  other      (read it again)                          Text
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the body start or after a CRLF: a dot here is stuffing or the
    /// start of the terminator.
    LineStart,
    /// After a bare CR or bare LF: a dot here is removed as stuffing, but
    /// the end of data is never found here.
    WeakLineStart,
    /// Inside a line.
    Text,
    /// A CR was written; its successor tells whether it ended the line.
    Cr,
    /// A line-start dot was read (a dot at a line start is never written).
    Dot,
    /// A line-start dot and a CR were read; neither was written.
    DotCr,
    /// The terminator was read.
    Done,
}

/// The outcome of one [`DotUnstuffer`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Unstuffed {
    /// Bytes of message body produced by this call. For
    /// [`DotUnstuffer::unstuff_in_place`] they are `buf[..body_len]`; for
    /// [`DotUnstuffer::unstuff`] they were appended to `out`.
    pub body_len: usize,
    /// How much to remove from the front of the buffer
    /// ([`DotUnstuffer::unstuff_in_place`]) or how many input bytes were used
    /// ([`DotUnstuffer::unstuff`]). Everything is consumed unless `end` is
    /// true; what follows the terminator is left for the command framer
    /// (pipelined commands after the end of data).
    pub consumed: usize,
    /// Whether the terminator `CRLF . CRLF` was reached: the message is
    /// complete and the session answers it.
    pub end: bool,
}

/// Streaming dot-unstuffer for incoming DATA (RFC 5321 §4.5.2), ending the
/// message only at a real `CRLF . CRLF`. See the [module docs](super).
///
/// State is kept between calls, so the input may be split anywhere. The
/// first byte fed is the first byte of the body (the byte after the CRLF of
/// the `354` exchange's `DATA` command line), so a lone `.` CRLF at once is
/// an empty message.
///
/// Speed: the scan jumps with `memchr3` from one CR, LF or NUL to the next
/// and moves whole runs with `copy_within`; until the first removed dot no
/// byte is moved at all.
#[derive(Debug, Clone)]
pub struct DotUnstuffer {
    state: State,
    policy: BareLineEnding,
    stats: BodyStats,
}

impl Default for DotUnstuffer {
    fn default() -> Self {
        Self::new(BareLineEnding::default())
    }
}

impl DotUnstuffer {
    /// An unstuffer at the start of a body.
    pub fn new(policy: BareLineEnding) -> Self {
        Self {
            state: State::LineStart,
            policy,
            stats: BodyStats::default(),
        }
    }

    /// The policy for bare CR and bare LF.
    pub fn policy(&self) -> BareLineEnding {
        self.policy
    }

    /// What the body held so far: size, bare CR, bare LF and NUL counts.
    pub fn stats(&self) -> &BodyStats {
        &self.stats
    }

    /// Whether the terminator has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Starts over for a new message, with the same policy.
    pub fn reset(&mut self) {
        *self = Self::new(self.policy);
    }

    /// Unstuffs `buf` in place: the body comes out in `buf[..body_len]`,
    /// then the caller removes `buf[..consumed]` (`buf.drain(..consumed)`).
    ///
    /// Without normalization the body never outgrows the input. When
    /// [`BareLineEnding::Normalize`] turns a bare LF into CRLF, or a dot line
    /// cut between two calls turns out to hold a bare CR, the output can
    /// catch up with the input; the unstuffer then moves the unread rest of
    /// `buf` further back once per call (growing `buf` by at most its unread
    /// length plus 2), so `consumed` can exceed the length `buf` had on entry
    /// minus the unread tail. Draining `consumed` bytes is always right.
    pub fn unstuff_in_place(&mut self, buf: &mut Vec<u8>) -> Unstuffed {
        let (w, r) = self.run(buf, 0);
        Unstuffed {
            body_len: w,
            consumed: r,
            end: self.is_done(),
        }
    }

    /// Unstuffs `input`, appending the body to `out`.
    pub fn unstuff(&mut self, input: &[u8], out: &mut Vec<u8>) -> Unstuffed {
        let start = out.len();
        out.extend_from_slice(input);
        let (w, r) = self.run(out, start);
        let unread = out.len().saturating_sub(r);
        out.truncate(w);
        Unstuffed {
            body_len: w - start,
            consumed: input.len().saturating_sub(unread),
            end: self.is_done(),
        }
    }

    /// Runs the automaton over `buf[start..]`, writing the body from `start`.
    /// Returns (end of written body, end of read input). Invariant: the
    /// write position never passes the read position.
    fn run(&mut self, buf: &mut Vec<u8>, start: usize) -> (usize, usize) {
        let normalize = self.policy == BareLineEnding::Normalize;
        let mut r = start;
        let mut w = start;
        loop {
            match self.state {
                State::Done => break,
                State::Text => {
                    // Fast path: one run reaches from `r` to the next byte
                    // that needs a decision, stepping over every CRLF whose
                    // next line does not start with a dot, and moves as a
                    // whole (not at all while nothing has been removed).
                    let end = ordinary_run(buf, r);
                    move_run(buf, r, w, end - r);
                    w += end - r;
                    r = end;
                    let Some(&b) = buf.get(r) else { break };
                    r += 1;
                    match b {
                        b'\r' => {
                            emit(buf, &mut r, &mut w, b"\r");
                            self.state = State::Cr;
                        }
                        b'\n' => {
                            self.stats.bare_lf += 1;
                            let out: &[u8] = if normalize { b"\r\n" } else { b"\n" };
                            emit(buf, &mut r, &mut w, out);
                            self.state = State::WeakLineStart;
                        }
                        _ => {
                            self.stats.nul += 1;
                            emit(buf, &mut r, &mut w, b"\0");
                        }
                    }
                }
                State::Cr => {
                    let Some(&b) = buf.get(r) else { break };
                    if b == b'\n' {
                        r += 1;
                        emit(buf, &mut r, &mut w, b"\n");
                        self.state = State::LineStart;
                    } else {
                        // The CR already written was bare; `b` is read anew.
                        self.stats.bare_cr += 1;
                        if normalize {
                            emit(buf, &mut r, &mut w, b"\n");
                        }
                        self.state = State::WeakLineStart;
                    }
                }
                State::LineStart => {
                    let Some(&b) = buf.get(r) else { break };
                    if b == b'.' {
                        r += 1;
                        self.state = State::Dot;
                    } else {
                        self.state = State::Text;
                    }
                }
                State::WeakLineStart => {
                    let Some(&b) = buf.get(r) else { break };
                    if b == b'.' {
                        // Stuffing by a sender that took the bare line ending
                        // for a line end; removed, but never a terminator.
                        r += 1;
                    }
                    self.state = State::Text;
                }
                State::Dot => {
                    let Some(&b) = buf.get(r) else { break };
                    if b == b'\r' {
                        r += 1;
                        self.state = State::DotCr;
                    } else {
                        // A stuffed line (RFC 5321 §4.5.2): the dot is gone,
                        // `b` is ordinary line content (a LF here is bare).
                        self.state = State::Text;
                    }
                }
                State::DotCr => {
                    let Some(&b) = buf.get(r) else { break };
                    if b == b'\n' {
                        r += 1;
                        self.state = State::Done;
                        break;
                    }
                    // `.` CR other: a stuffed line whose CR is bare.
                    self.stats.bare_cr += 1;
                    let out: &[u8] = if normalize { b"\r\n" } else { b"\r" };
                    emit(buf, &mut r, &mut w, out);
                    self.state = State::WeakLineStart;
                }
            }
        }
        self.stats.octets += (w - start) as u64;
        (w, r)
    }
}

/// The end of the run of bytes from `from` that are body as they stand: up
/// to the next NUL, bare CR or LF, CRLF followed by a dot, CR or CRLF at the
/// end of the buffer, or the end of the buffer.
fn ordinary_run(buf: &[u8], from: usize) -> usize {
    let mut pos = from;
    loop {
        let Some(i) = buf
            .get(pos..)
            .and_then(|rest| memchr::memchr3(b'\r', b'\n', 0, rest))
            .map(|k| pos + k)
        else {
            return buf.len();
        };
        if buf.get(i) == Some(&b'\r')
            && buf.get(i + 1) == Some(&b'\n')
            && buf.get(i + 2).is_some_and(|&c| c != b'.')
        {
            // A line end followed by an ordinary line start.
            pos = i + 2;
        } else {
            return i;
        }
    }
}

/// Moves `n` body bytes from the read position to the write position.
fn move_run(buf: &mut [u8], r: usize, w: usize, n: usize) {
    // In range: callers pass a run `r..r + n` that `ordinary_run` found
    // inside `buf`, and `w <= r`.
    if r != w && n > 0 {
        buf.copy_within(r..r + n, w);
    }
}

/// Writes `bytes` at the write position, first moving the unread input
/// further back if the output would overtake it.
fn emit(buf: &mut Vec<u8>, r: &mut usize, w: &mut usize, bytes: &[u8]) {
    if *w + bytes.len() > *r {
        make_room(buf, r, bytes.len());
    }
    if let Some(dst) = buf.get_mut(*w..*w + bytes.len()) {
        dst.copy_from_slice(bytes);
        *w += bytes.len();
    }
}

/// Moves the unread tail `buf[r..]` back by its own length plus `need`, so
/// that the rest of this call has room for every insertion it can make: each
/// unread byte yields at most two body bytes, plus `need` for the pending
/// insertion. Happens at most once per call.
fn make_room(buf: &mut Vec<u8>, r: &mut usize, need: usize) {
    let old_len = buf.len();
    // `*r <= buf.len()`: the read position never passes the end.
    let unread = old_len - *r;
    let gap = unread + need;
    buf.resize(old_len + gap, 0);
    buf.copy_within(*r..old_len, *r + gap);
    *r += gap;
}
