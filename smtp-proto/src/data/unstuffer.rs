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
/// Text           NUL        count it, write it (Normalize: drop it)  Text
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
/// Speed: in a clean body the only bytes that need a decision are a dot
/// after a CRLF. `memchr2` (vectorized at run time) finds the next dot
/// after a LF or NUL, which ends the stretch examined (up to 16 KiB); one
/// branch-free pass over byte pairs (which the compiler vectorizes) proves
/// that nothing before it is a bare CR or a bare LF. That stretch
/// is then moved with one `copy_within` in place (not at all until the
/// first removed dot); the copying [`unstuff`](Self::unstuff) appends each
/// 64-byte block as soon as it is proven, so the input is read once. Only
/// where the proof fails does the byte-exact automaton run, jumping with
/// `memchr3` from one CR, LF or NUL to the next. Both APIs share that one
/// loop, generic over where the body goes.
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
        let mut sink = InPlace { buf, w: 0 };
        let consumed = self.run(&mut sink);
        Unstuffed {
            body_len: sink.w,
            consumed,
            end: self.is_done(),
        }
    }

    /// Unstuffs `input`, appending the body to `out`.
    ///
    /// One pass: each stretch the scan proves plain is copied from `input`
    /// to `out` as it stands, and only the bytes around a stuffed dot, a
    /// bare line ending or a NUL go through the automaton; `input` is never
    /// copied whole first.
    pub fn unstuff(&mut self, input: &[u8], out: &mut Vec<u8>) -> Unstuffed {
        let start = out.len();
        // The body is at most as long as the input unless bare line endings
        // are normalized; this spares the stretch copies any reallocation.
        out.reserve(input.len());
        let consumed = self.run(&mut Append { input, out, start });
        Unstuffed {
            body_len: out.len() - start,
            consumed,
            end: self.is_done(),
        }
    }

    /// Runs the automaton over `sink`'s input from its start, writing the
    /// body to `sink`. Returns how much input was read.
    fn run<S: Sink>(&mut self, sink: &mut S) -> usize {
        let normalize = self.policy.normalizes_received();
        let mut r = 0;
        // The byte-exact automaton alone handles `r..slow_until`: a stretch
        // the bulk path stopped at is not examined twice.
        let mut slow_until = 0;
        loop {
            match self.state {
                State::Done => break,
                State::Text if r >= slow_until => {
                    let (end, resume) = sink.copy_plain(r);
                    let ends_line = end > 0 && sink.input().get(r + end - 1) == Some(&b'\n');
                    r += end;
                    // A plain stretch ending in LF ends in CRLF: line start.
                    if ends_line {
                        self.state = State::LineStart;
                    }
                    slow_until = r + resume;
                }
                State::Text => {
                    // Fast path: one run reaches from `r` to the next byte
                    // that needs a decision, stepping over every CRLF whose
                    // next line does not start with a dot, and is copied as
                    // a whole.
                    let end = ordinary_run(sink.input(), r);
                    sink.copy(r, end - r);
                    r = end;
                    let Some(&b) = sink.input().get(r) else { break };
                    r += 1;
                    match b {
                        b'\r' => {
                            sink.emit(&mut r, b"\r");
                            self.state = State::Cr;
                        }
                        b'\n' => {
                            self.stats.bare_lf += 1;
                            let out: &[u8] = if normalize { b"\r\n" } else { b"\n" };
                            sink.emit(&mut r, out);
                            self.state = State::WeakLineStart;
                        }
                        _ => {
                            self.stats.nul += 1;
                            if !normalize {
                                sink.emit(&mut r, b"\0");
                            }
                        }
                    }
                }
                State::Cr => {
                    let Some(&b) = sink.input().get(r) else { break };
                    if b == b'\n' {
                        r += 1;
                        sink.emit(&mut r, b"\n");
                        self.state = State::LineStart;
                    } else {
                        // The CR already written was bare; `b` is read anew.
                        self.stats.bare_cr += 1;
                        if normalize {
                            sink.emit(&mut r, b"\n");
                        }
                        self.state = State::WeakLineStart;
                    }
                }
                State::LineStart => {
                    let Some(&b) = sink.input().get(r) else { break };
                    if b == b'.' {
                        r += 1;
                        self.state = State::Dot;
                    } else {
                        self.state = State::Text;
                    }
                }
                State::WeakLineStart => {
                    let Some(&b) = sink.input().get(r) else { break };
                    if b == b'.' {
                        // Stuffing by a sender that took the bare line ending
                        // for a line end; removed, but never a terminator.
                        r += 1;
                    }
                    self.state = State::Text;
                }
                State::Dot => {
                    let Some(&b) = sink.input().get(r) else { break };
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
                    let Some(&b) = sink.input().get(r) else { break };
                    if b == b'\n' {
                        r += 1;
                        self.state = State::Done;
                        break;
                    }
                    // `.` CR other: a stuffed line whose CR is bare.
                    self.stats.bare_cr += 1;
                    let out: &[u8] = if normalize { b"\r\n" } else { b"\r" };
                    sink.emit(&mut r, out);
                    self.state = State::WeakLineStart;
                }
            }
        }
        self.stats.octets += sink.written() as u64;
        r
    }
}

/// Where [`DotUnstuffer::run`] reads its input and writes the body: the one
/// automaton serves both the in-place and the copying API.
trait Sink {
    /// The input, read from position 0 on (positions shift only through
    /// [`Sink::emit`]).
    fn input(&self) -> &[u8];
    /// Writes the `n` input bytes at `r` to the body as they stand; the
    /// caller has checked that `r..r + n` lies inside the input.
    fn copy(&mut self, r: usize, n: usize);
    /// Writes `bytes` to the body; the read position `r` is updated if the
    /// unread input had to move.
    fn emit(&mut self, r: &mut usize, bytes: &[u8]);
    /// Body bytes written in this call.
    fn written(&self) -> usize;
    /// Finds the plain prefix of the window at `r` (see [`plain_prefix`])
    /// and writes it to the body; returns `(end, resume)`.
    fn copy_plain(&mut self, r: usize) -> (usize, usize);
}

/// The window of `input` the bulk path examines from `r`, and whether it
/// reaches the end of the input.
///
/// The window ends at the first dot that follows a LF inside it, or at the
/// first NUL after its first byte (that byte included, so that the window
/// never holds a LF-dot pair or a NUL except as its last byte, which
/// [`plain_prefix`] leaves to the automaton): the pair scan then never has
/// to look for dots or NULs. Both are found with one `memchr2` pass
/// (vectorized at run time), which costs little where dots are rare
/// (base64 attachments have none) and one check of the byte before each
/// dot elsewhere.
#[inline(always)]
fn window_at(input: &[u8], r: usize) -> (&[u8], bool) {
    let window = input
        .get(r..input.len().min(r + WINDOW))
        .unwrap_or_default();
    let next = window.get(1..).unwrap_or_default();
    for k in memchr::memchr2_iter(b'.', 0, next) {
        // `window[k + 1]` is the dot or the NUL.
        if next.get(k) == Some(&0) || window.get(k) == Some(&b'\n') {
            return (window.get(..k + 2).unwrap_or_default(), false);
        }
    }
    (window, r + window.len() == input.len())
}

/// The body overwrites the input it was read from: `buf[..w]`. The write
/// position never passes the read position.
struct InPlace<'b> {
    buf: &'b mut Vec<u8>,
    w: usize,
}

impl Sink for InPlace<'_> {
    #[inline(always)]
    fn input(&self) -> &[u8] {
        self.buf
    }

    #[inline(always)]
    fn copy(&mut self, r: usize, n: usize) {
        // Not at all while nothing has been removed (`r == w`).
        if r != self.w && n > 0 {
            // In range: `r..r + n` lies inside `buf` (caller's contract) and
            // `w <= r`.
            self.buf.copy_within(r..r + n, self.w);
        }
        self.w += n;
    }

    #[inline(always)]
    fn emit(&mut self, r: &mut usize, bytes: &[u8]) {
        if self.w + bytes.len() > *r {
            make_room(self.buf, r, bytes.len());
        }
        if let Some(dst) = self.buf.get_mut(self.w..self.w + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.w += bytes.len();
        }
    }

    #[inline(always)]
    fn written(&self) -> usize {
        self.w
    }

    #[inline(always)]
    fn copy_plain(&mut self, r: usize) -> (usize, usize) {
        // Proof first, then one `copy_within` (none while `r == w`).
        let (window, at_input_end) = window_at(self.buf, r);
        let (end, resume, _) = plain_prefix(window, at_input_end, |_| true);
        self.copy(r, end);
        (end, resume)
    }
}

/// The body is appended to `out`, read from a separate `input`.
struct Append<'a, 'b> {
    input: &'a [u8],
    out: &'b mut Vec<u8>,
    /// `out.len()` on entry.
    start: usize,
}

impl Sink for Append<'_, '_> {
    #[inline(always)]
    fn input(&self) -> &[u8] {
        self.input
    }

    #[inline(always)]
    fn copy(&mut self, r: usize, n: usize) {
        if let Some(run) = self.input.get(r..r + n) {
            self.out.extend_from_slice(run);
        }
    }

    #[inline(always)]
    fn emit(&mut self, _r: &mut usize, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    #[inline(always)]
    fn written(&self) -> usize {
        self.out.len() - self.start
    }

    #[inline(always)]
    fn copy_plain(&mut self, r: usize) -> (usize, usize) {
        // Each block is appended as soon as it is proven, while it is still
        // in registers and L1: the input is read once.
        let (window, at_input_end) = window_at(self.input, r);
        let base = self.out.len();
        // The vector is moved into a local for the loop: its length and
        // pointer then stay in registers instead of being stored and
        // reloaded around every block append (the caller's `Vec` is
        // behind a reference the byte stores might alias).
        let mut out = std::mem::take(&mut *self.out);
        // Room for the whole window first, and a capacity test per block
        // that then always passes: it proves to the compiler that the
        // block append never grows the vector, so the loop holds no call
        // (which kept the vector's fields and the compare constants from
        // staying in registers across blocks).
        out.reserve(window.len());
        let (end, resume, appended) = plain_prefix(window, at_input_end, |block| {
            if out.capacity() - out.len() < BLOCK {
                return false;
            }
            out.extend_from_slice(block);
            true
        });
        match window.get(appended..end) {
            Some(rest) => out.extend_from_slice(rest),
            // The last proven block ended in a CR whose LF the automaton
            // must see: take it back.
            None => out.truncate(base + end),
        }
        *self.out = out;
        (end, resume)
    }
}

/// Longest stretch the bulk path proves and moves at once: small enough to
/// stay in the L1/L2 cache between the proof and the move, large enough
/// that the per-stretch cost vanishes.
const WINDOW: usize = 16 * 1024;

/// Whether the byte pair `a b` (read in the `Text` state) needs the
/// automaton: a CR without its LF, or a LF without its CR. A NUL and a line
/// end followed by a dot need it too, but [`window_at`] keeps those out of
/// the windows (and [`plain_prefix`] takes a NUL only as a window's first
/// byte, which it leaves to the automaton). Branch-free so that loops over
/// it vectorize.
#[inline(always)]
fn needs_decision(a: u8, b: u8) -> bool {
    (a == b'\r') != (b == b'\n')
}

/// Whether any pair `(a[i], b[i])` needs the automaton (one vector
/// reduction: the compiler turns the loop into compares and ORs).
#[inline(always)]
fn block_flagged(a: &[u8], b: &[u8]) -> bool {
    let mut flag = false;
    for (&x, &y) in a.iter().zip(b) {
        flag |= needs_decision(x, y);
    }
    flag
}

/// Pairs checked per step of [`plain_prefix`]'s vector loop.
const BLOCK: usize = 64;

/// Splits `window` (read from the `Text` state, cut by [`window_at`]) into a
/// plain prefix and the rest: returns `(end, resume)` where `window[..end]`
/// is body exactly as it stands (every CR followed by its LF and every LF
/// preceded by its CR inside it, no NUL, no line end followed by a dot
/// (the window holds none but its last two bytes), not ending in CR), so
/// the automaton would copy it unchanged and end in `LineStart` after a
/// final LF or in `Text` otherwise. `resume` is how many bytes after `end`
/// the automaton should read byte by byte before the bulk path runs again
/// (0 when the prefix stops at a `CRLF .` or at the window end).
/// `at_buf_end` says whether the window reaches the end of the input, so
/// that its last byte has no unseen successor.
///
/// Each whole block of `BLOCK` bytes found plain on the way is passed to
/// `on_block` in order; the third value returned is how many bytes those
/// blocks hold. It can exceed `end` by one (a block ending in a CR whose LF
/// starts a flagged pair), never more. When `on_block` returns false the
/// block is not taken and the rest of the window is examined byte by byte
/// (correct, only slower).
#[inline(always)]
fn plain_prefix(
    window: &[u8],
    at_buf_end: bool,
    mut on_block: impl FnMut(&[u8]) -> bool,
) -> (usize, usize, usize) {
    let Some(&first) = window.first() else {
        // The end of the input: the automaton stops there.
        return (0, 1, 0);
    };
    if first == b'\n' || first == 0 {
        // A bare LF, or a NUL (the only place [`window_at`] lets one be
        // but the last byte).
        return (0, 1, 0);
    }
    let next = window.get(1..).unwrap_or_default();
    // Whole blocks of pairs `(window[i], window[i + 1])` without a decision.
    let mut checked = 0;
    let mut stopped = false;
    for (a, b) in window.chunks_exact(BLOCK).zip(next.chunks_exact(BLOCK)) {
        if block_flagged(a, b) || !on_block(a) {
            stopped = true;
            break;
        }
        checked += BLOCK;
    }
    // The pairs after the last whole block: when every block passed, the
    // last `BLOCK` pairs of the window (overlapping those already checked)
    // are checked as one more block, and if they pass so does the tail,
    // without a byte-by-byte search (which a window cut at a dot would
    // otherwise need every time).
    let pairs = next.len();
    let tail_plain = !stopped
        && pairs >= BLOCK
        && !block_flagged(
            window.get(pairs - BLOCK..pairs).unwrap_or_default(),
            next.get(pairs - BLOCK..).unwrap_or_default(),
        );
    let flagged = if tail_plain {
        None
    } else {
        let tail_a = window.get(checked..).unwrap_or_default();
        let tail_b = next.get(checked..).unwrap_or_default();
        tail_a
            .iter()
            .zip(tail_b)
            .position(|(&x, &y)| needs_decision(x, y))
            .map(|k| checked + k)
    };
    let (end, resume) = match flagged {
        // Bytes `i` and `i + 1` need the automaton.
        Some(i) => (i, 2),
        // Every pair passed; the last byte's successor is unseen unless the
        // input ends here, and then it must be neither CR (its LF may come
        // in the next call) nor NUL.
        None if at_buf_end && window.last().is_some_and(|&c| c != b'\r' && c != 0) => {
            (window.len(), 0)
        }
        // The input ends in a CR or NUL: the automaton takes it.
        None if at_buf_end => (window.len() - 1, 1),
        // The window ends inside the input: its last byte (never a LF here,
        // see below) starts the next window.
        None => (window.len() - 1, 0),
    };
    // A CR whose LF lies beyond `end` stays for the automaton (or for the
    // next window, so that a window never starts with the LF of a CRLF).
    if end > 0 && window.get(end - 1) == Some(&b'\r') {
        (end - 1, resume + 1, checked)
    } else {
        (end, resume, checked)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A body several windows long: stuffed dots, a bare LF, a bare CR and
    /// a NUL placed on and around window boundaries.
    fn long_wire() -> (Vec<u8>, Vec<u8>) {
        let mut wire = Vec::new();
        let mut body = Vec::new();
        let mut i = 0;
        while wire.len() < 3 * WINDOW + 100 {
            let line: &[u8] = match i % 7 {
                0 => b"..stuffed line",
                3 => b"plain\nbare lf",
                5 => b"cr\ralone and a \0",
                _ => b"an ordinary line of text",
            };
            wire.extend_from_slice(line);
            body.extend_from_slice(if i % 7 == 0 { &line[1..] } else { line });
            // Make lines of varying length so that boundaries move around.
            let pad = "x".repeat(i % 97);
            wire.extend_from_slice(pad.as_bytes());
            body.extend_from_slice(pad.as_bytes());
            wire.extend_from_slice(b"\r\n");
            body.extend_from_slice(b"\r\n");
            i += 1;
        }
        wire.extend_from_slice(b".\r\nQUIT\r\n");
        (wire, body)
    }

    /// Every decision point placed at every offset around a block boundary,
    /// so that a proven block can end in the CR of a CRLF the automaton
    /// must see (the copying API then takes that CR back).
    #[test]
    fn decisions_at_block_boundaries() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"\r\n\nz", b"\r\n\nz"),
            (b"\r\n.z", b"\r\nz"),
            (b"\r\rz", b"\r\rz"),
            (b"\r\n\0z", b"\r\n\0z"),
            (b"\n.z", b"\nz"),
            (b"\r\n\r\n", b"\r\n\r\n"),
        ];
        for (mid, want) in cases {
            for pad in BLOCK - 4..BLOCK + 4 {
                let mut wire = vec![b'x'; pad];
                wire.extend_from_slice(mid);
                wire.extend_from_slice(b"\r\n.\r\n");
                let mut body = vec![b'x'; pad];
                body.extend_from_slice(want);
                body.extend_from_slice(b"\r\n");
                let mut a = DotUnstuffer::new(BareLineEnding::Reject);
                let mut out = Vec::new();
                let r = a.unstuff(&wire, &mut out);
                assert!(r.end && r.consumed == wire.len(), "{mid:?} {pad}");
                assert_eq!(out, body, "{mid:?} {pad}");
                let mut b = DotUnstuffer::new(BareLineEnding::Reject);
                let mut buf = wire.clone();
                let r = b.unstuff_in_place(&mut buf);
                assert!(r.end && r.consumed == wire.len(), "{mid:?} {pad}");
                assert_eq!(&buf[..r.body_len], &body[..], "{mid:?} {pad}");
                assert_eq!(a.stats(), b.stats(), "{mid:?} {pad}");
            }
        }
    }

    #[test]
    fn long_bodies_split_anywhere_unstuff_alike() {
        let (wire, body) = long_wire();
        let mut whole = DotUnstuffer::new(BareLineEnding::Reject);
        let mut buf = wire.clone();
        let r = whole.unstuff_in_place(&mut buf);
        assert!(r.end);
        assert_eq!(&buf[..r.body_len], &body[..]);
        assert_eq!(&wire[r.consumed..], b"QUIT\r\n");
        for step in [1, 2, 3, 4093, WINDOW - 1, WINDOW + 1] {
            let mut u = DotUnstuffer::new(BareLineEnding::Reject);
            let mut out = Vec::new();
            let mut used = 0;
            for chunk in wire.chunks(step) {
                let r = u.unstuff(chunk, &mut out);
                used += r.consumed;
                if r.end {
                    break;
                }
            }
            assert_eq!(out, body, "step {step}");
            assert_eq!(used, wire.len() - 6, "step {step}");
            assert_eq!(u.stats(), whole.stats(), "step {step}");
        }
        let s = whole.stats();
        assert!(s.bare_cr > 0 && s.bare_lf > 0 && s.nul > 0);
        assert_eq!(s.bare_cr, s.nul);
        assert_eq!(s.octets, body.len() as u64);
    }
}
