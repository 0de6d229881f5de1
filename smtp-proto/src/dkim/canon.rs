//! Canonicalization (RFC 6376 §3.4): the `simple` and `relaxed` forms of
//! header fields and of the body, the body form computed as the body
//! streams through.
//!
//! The body canonicalizers keep a few bits of state between chunks — the
//! line ends not yet known to be inside the body (a run of empty lines is
//! only dropped if nothing follows it), a white-space run, a CR that may
//! start a CRLF — and write the canonical bytes to a sink as soon as they
//! are certain, so a message of any size is canonicalized in constant
//! memory and the same bytes come out however the input is cut.

use std::fmt;

/// A canonicalization algorithm (RFC 6376 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Canonicalization {
    /// `simple` (§3.4.1, §3.4.3): header fields unchanged; the body with
    /// its trailing empty lines removed and one CRLF at its end. The
    /// RFC 6376 default.
    #[default]
    Simple,
    /// `relaxed` (§3.4.2, §3.4.4): header names in lower case, values
    /// unfolded with white-space runs reduced to one space; body lines
    /// without trailing white space, runs reduced, trailing empty lines
    /// removed. It survives the rewrapping and white-space changes of
    /// common relays.
    Relaxed,
}

impl Canonicalization {
    /// The name in `c=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Simple => "simple",
            Self::Relaxed => "relaxed",
        }
    }

    /// Reads a name of `c=` (case-insensitive).
    pub(crate) fn from_name(name: &[u8]) -> Option<Self> {
        if name.eq_ignore_ascii_case(b"simple") {
            Some(Self::Simple)
        } else if name.eq_ignore_ascii_case(b"relaxed") {
            Some(Self::Relaxed)
        } else {
            None
        }
    }
}

impl fmt::Display for Canonicalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where canonical bytes go.
pub(crate) trait Sink {
    fn write(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn write(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Thirty-two CRLFs, to write runs of line ends in few calls.
const CRLFS: &[u8; 64] = b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\
\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";

fn write_crlfs(out: &mut impl Sink, mut n: u64) {
    while n > 0 {
        let take = n.min(32);
        // `take` is at most 32.
        out.write(&CRLFS[..take as usize * 2]);
        n -= take;
    }
}

/// A streaming body canonicalizer.
#[derive(Debug, Clone)]
pub(crate) struct BodyCanonicalizer {
    canonicalization: Canonicalization,
    /// Line ends held back: they are written only when content follows
    /// (trailing empty lines are dropped by both algorithms).
    pending_crlf: u64,
    /// `relaxed`: a white-space run held back (dropped at a line end,
    /// written as one SP before content).
    pending_wsp: bool,
    /// The last byte seen was a CR that may start a CRLF.
    pending_cr: bool,
    /// `relaxed`: some content was written (an empty body stays empty).
    any: bool,
}

impl BodyCanonicalizer {
    pub(crate) fn new(canonicalization: Canonicalization) -> Self {
        Self {
            canonicalization,
            pending_crlf: 0,
            pending_wsp: false,
            pending_cr: false,
            any: false,
        }
    }

    /// Canonicalizes the next piece of the body.
    pub(crate) fn update(&mut self, chunk: &[u8], out: &mut impl Sink) {
        match self.canonicalization {
            Canonicalization::Simple => self.simple(chunk, out),
            Canonicalization::Relaxed => self.relaxed(chunk, out),
        }
    }

    /// Writes what the end of the body decides.
    pub(crate) fn finish(&mut self, out: &mut impl Sink) {
        match self.canonicalization {
            Canonicalization::Simple => {
                // §3.4.3: trailing empty lines go; the body ends with one
                // CRLF (an empty body is a single CRLF).
                if self.pending_cr {
                    write_crlfs(out, self.pending_crlf);
                    out.write(b"\r");
                }
                out.write(b"\r\n");
            }
            Canonicalization::Relaxed => {
                if self.pending_cr {
                    self.content(b"\r", out);
                }
                // §3.4.4: trailing white space and empty lines go; a
                // non-empty body ends with a CRLF, an empty one stays empty
                // (erratum 1384).
                if self.any {
                    out.write(b"\r\n");
                }
            }
        }
        self.pending_crlf = 0;
        self.pending_cr = false;
        self.pending_wsp = false;
    }

    /// `simple`: everything passes but a trailing run of CRLFs (and a CR
    /// that may start one), held until content follows.
    fn simple(&mut self, mut chunk: &[u8], out: &mut impl Sink) {
        if chunk.is_empty() {
            return;
        }
        if self.pending_cr {
            self.pending_cr = false;
            if chunk[0] == b'\n' {
                self.pending_crlf += 1;
                chunk = &chunk[1..];
            } else {
                write_crlfs(out, self.pending_crlf);
                self.pending_crlf = 0;
                out.write(b"\r");
            }
        }
        // The longest suffix of the form (CRLF)* [CR]: CRLF pairs cannot
        // overlap, so reading them from the end finds the same pairs as
        // reading from the start.
        let mut end = chunk.len();
        let cr = end > 0 && chunk[end - 1] == b'\r';
        if cr {
            end -= 1;
        }
        let mut crlfs = 0;
        while end >= 2 && chunk[end - 2] == b'\r' && chunk[end - 1] == b'\n' {
            end -= 2;
            crlfs += 1;
        }
        if end > 0 {
            write_crlfs(out, self.pending_crlf);
            self.pending_crlf = 0;
            out.write(&chunk[..end]);
        }
        self.pending_crlf += crlfs;
        self.pending_cr = cr;
    }

    /// Writes content: first the line ends and the white space it proves
    /// to be inside the body.
    fn content(&mut self, bytes: &[u8], out: &mut impl Sink) {
        write_crlfs(out, self.pending_crlf);
        self.pending_crlf = 0;
        if self.pending_wsp {
            out.write(b" ");
            self.pending_wsp = false;
        }
        out.write(bytes);
        self.any = true;
    }

    /// A line end: white space before it goes.
    fn line_end(&mut self) {
        self.pending_wsp = false;
        self.pending_crlf += 1;
    }

    /// `relaxed`: runs of bytes other than SP, HTAB and CR pass unchanged,
    /// and so does a single SP between two of them (the common case in
    /// text: a line of words is one run). Everything else is decided at
    /// the positions [`next_special`] finds.
    fn relaxed(&mut self, mut chunk: &[u8], out: &mut impl Sink) {
        if chunk.is_empty() {
            return;
        }
        if self.pending_cr {
            self.pending_cr = false;
            if chunk[0] == b'\n' {
                self.line_end();
                chunk = &chunk[1..];
            } else {
                // A lone CR is content.
                self.content(b"\r", out);
            }
        }
        let n = chunk.len();
        // Start of the content run not yet written.
        let mut run = 0;
        if self.pending_wsp {
            // A white-space run held from the previous chunk goes on.
            while run < n && matches!(chunk[run], b' ' | b'\t') {
                run += 1;
            }
        }
        let mut from = run;
        while let Some(pos) = next_special(chunk, from) {
            if pos > run {
                self.content(&chunk[run..pos], out);
            }
            if chunk[pos] == b'\r' {
                match chunk.get(pos + 1) {
                    Some(b'\n') => {
                        self.line_end();
                        run = pos + 2;
                    }
                    Some(_) => {
                        // A lone CR: content, the start of the next run.
                        run = pos;
                        from = pos + 1;
                        continue;
                    }
                    None => {
                        self.pending_cr = true;
                        run = n;
                    }
                }
            } else {
                // A white-space run: one SP if content follows on the line.
                let mut end = pos + 1;
                while end < n && matches!(chunk[end], b' ' | b'\t') {
                    end += 1;
                }
                self.pending_wsp = true;
                run = end;
            }
            from = run;
        }
        if run < n {
            self.content(&chunk[run..], out);
        }
    }
}

/// The first position at or after `from` where relaxed body
/// canonicalization has something to do: an HTAB, a CR, or an SP followed
/// by SP, HTAB, CR or the end of the chunk (a single SP between two other
/// bytes passes unchanged). Eight bytes at a time, SWAR: an SP every few
/// bytes of text costs nothing, only line ends and white-space runs stop
/// the scan.
fn next_special(s: &[u8], from: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    /// The high bit of each byte of `w` equal to `b` (exact, no carries
    /// between bytes).
    fn eq(w: u64, b: u8) -> u64 {
        let x = w ^ (LO * u64::from(b));
        !(((x & !HI).wrapping_add(!HI)) | x) & HI
    }
    let load = |at: usize| {
        // In bounds: callers keep at + 8 <= len.
        u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"))
    };
    // Per word: HTAB or CR (`tc`), SP (`sp`). An SP counts when the byte
    // after it is SP, HTAB or CR: the next word's classes, shifted in, tell
    // that for the last byte. Each word is classified once.
    let class = |w: u64| (eq(w, b'\t') | eq(w, b'\r'), eq(w, b' '));
    let mut i = from;
    if i + 16 <= s.len() {
        let (mut tc, mut sp) = class(load(i));
        while i + 16 <= s.len() {
            let (tc_next, sp_next) = class(load(i + 8));
            let after = ((tc | sp) >> 8) | ((tc_next | sp_next) << 56);
            let hits = tc | (sp & after);
            if hits != 0 {
                return Some(i + (hits.trailing_zeros() / 8) as usize);
            }
            (tc, sp) = (tc_next, sp_next);
            i += 8;
        }
    }
    while i < s.len() {
        match s[i] {
            b'\t' | b'\r' => return Some(i),
            b' ' if s.get(i + 1).is_none_or(|&next| is_special(next)) => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The bytes after an SP that make it more than a lone SP.
fn is_special(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

/// Canonicalizes a whole body (RFC 6376 §3.4.3, §3.4.4) into a new buffer:
/// the bytes whose SHA-256 is `bh=`. For tests and diagnostics; signing and
/// verification stream the body instead
/// ([`BodyHasher`](super::BodyHasher)).
pub fn canonicalize_body(canonicalization: Canonicalization, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut canon = BodyCanonicalizer::new(canonicalization);
    canon.update(body, &mut out);
    canon.finish(&mut out);
    out
}

/// Canonicalizes one header field (RFC 6376 §3.4.1, §3.4.2): `field` is
/// the whole field as it appears in the message, name, colon, value and
/// folding, normally with its final CRLF.
///
/// `simple` returns it unchanged. `relaxed` returns the name in lower case
/// without the white space before the colon, `:`, the value unfolded (every
/// CRLF removed, and every bare LF) with white-space runs reduced to one SP
/// and white space at both ends removed, then CRLF.
pub fn canonicalize_header(canonicalization: Canonicalization, field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len() + 2);
    write_header(canonicalization, field, &mut out);
    out
}

/// [`canonicalize_header`] into `out`.
pub(crate) fn write_header(canonicalization: Canonicalization, field: &[u8], out: &mut Vec<u8>) {
    match canonicalization {
        Canonicalization::Simple => out.extend_from_slice(field),
        Canonicalization::Relaxed => {
            let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
            let mut name = &field[..colon];
            while let [rest @ .., b' ' | b'\t'] = name {
                name = rest;
            }
            out.extend(name.iter().map(u8::to_ascii_lowercase));
            out.push(b':');
            let value = field.get(colon + 1..).unwrap_or_default();
            let mut pending_wsp = false;
            let mut started = false;
            let mut i = 0;
            while i < value.len() {
                // A run of bytes that pass unchanged, copied at once.
                let run = value[i..]
                    .iter()
                    .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                    .map_or(value.len(), |p| i + p);
                if run > i {
                    if pending_wsp && started {
                        out.push(b' ');
                    }
                    pending_wsp = false;
                    started = true;
                    out.extend_from_slice(&value[i..run]);
                    i = run;
                    continue;
                }
                match value[i] {
                    // Unfolding: the CRLF goes; the white space after it
                    // (if any) is a run like any other. A bare LF goes too
                    // (dkimpy's `\r?\n`), so that no line end can be left
                    // in, or put together by, the canonical value.
                    b'\r' if value.get(i + 1) == Some(&b'\n') => i += 2,
                    b'\n' => i += 1,
                    b' ' | b'\t' => {
                        pending_wsp = true;
                        i += 1;
                    }
                    _ => {
                        // A bare CR: content.
                        if pending_wsp && started {
                            out.push(b' ');
                        }
                        pending_wsp = false;
                        started = true;
                        out.push(b'\r');
                        i += 1;
                    }
                }
            }
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obviously correct reading of RFC 6376 §3.4.3 and §3.4.4 on a
    /// whole body, for the streaming canonicalizers to agree with.
    pub(crate) fn reference(canonicalization: Canonicalization, body: &[u8]) -> Vec<u8> {
        // Lines end at CRLF; the part after the last CRLF is a last line
        // without its line end.
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut rest = body;
        while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
            lines.push(rest[..p].to_vec());
            rest = &rest[p + 2..];
        }
        let tail = rest.to_vec();
        match canonicalization {
            Canonicalization::Simple => {
                let mut all = lines;
                if !tail.is_empty() {
                    all.push(tail);
                }
                while all.last().is_some_and(Vec::is_empty) {
                    all.pop();
                }
                let mut out = Vec::new();
                for line in all {
                    out.extend_from_slice(&line);
                    out.extend_from_slice(b"\r\n");
                }
                if out.is_empty() {
                    out.extend_from_slice(b"\r\n");
                }
                out
            }
            Canonicalization::Relaxed => {
                let mut all = lines;
                if !tail.is_empty() {
                    all.push(tail);
                }
                let mut all: Vec<Vec<u8>> = all
                    .into_iter()
                    .map(|line| {
                        let mut out = Vec::new();
                        let mut wsp = false;
                        for b in line {
                            if b == b' ' || b == b'\t' {
                                wsp = true;
                            } else {
                                if wsp {
                                    out.push(b' ');
                                }
                                wsp = false;
                                out.push(b);
                            }
                        }
                        out
                    })
                    .collect();
                while all.last().is_some_and(Vec::is_empty) {
                    all.pop();
                }
                let mut out = Vec::new();
                for line in all {
                    out.extend_from_slice(&line);
                    out.extend_from_slice(b"\r\n");
                }
                out
            }
        }
    }

    fn streamed(canonicalization: Canonicalization, body: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut canon = BodyCanonicalizer::new(canonicalization);
        let mut start = 0;
        for &cut in cuts {
            let cut = cut.clamp(start, body.len());
            canon.update(&body[start..cut], &mut out);
            start = cut;
        }
        canon.update(&body[start..], &mut out);
        canon.finish(&mut out);
        out
    }

    /// RFC 6376 §3.4.5, the body of both examples.
    const EXAMPLE_BODY: &[u8] = b" C \r\nD \t E\r\n\r\n\r\n";

    #[test]
    fn rfc6376_section_3_4_5_bodies() {
        assert_eq!(
            canonicalize_body(Canonicalization::Relaxed, EXAMPLE_BODY),
            b" C\r\nD E\r\n"
        );
        assert_eq!(
            canonicalize_body(Canonicalization::Simple, EXAMPLE_BODY),
            b" C \r\nD \t E\r\n"
        );
    }

    #[test]
    fn rfc6376_section_3_4_5_headers() {
        let a = b"A: X\r\n";
        let b = b"B : Y\t\r\n\tZ  \r\n";
        assert_eq!(
            canonicalize_header(Canonicalization::Relaxed, a),
            b"a:X\r\n"
        );
        assert_eq!(
            canonicalize_header(Canonicalization::Relaxed, b),
            b"b:Y Z\r\n"
        );
        assert_eq!(canonicalize_header(Canonicalization::Simple, a), a);
        assert_eq!(canonicalize_header(Canonicalization::Simple, b), b);
    }

    #[test]
    fn empty_and_unterminated_bodies() {
        use Canonicalization::*;
        assert_eq!(canonicalize_body(Simple, b""), b"\r\n");
        assert_eq!(canonicalize_body(Relaxed, b""), b"");
        assert_eq!(canonicalize_body(Simple, b"\r\n\r\n"), b"\r\n");
        assert_eq!(canonicalize_body(Relaxed, b" \r\n\t\r\n"), b"");
        assert_eq!(canonicalize_body(Simple, b"abc"), b"abc\r\n");
        assert_eq!(canonicalize_body(Relaxed, b"abc"), b"abc\r\n");
        // The last line's trailing white space goes even without its CRLF
        // (as Mail::DKIM and Stalwart's mail-auth read §3.4.4; dkimpy keeps
        // one SP there).
        assert_eq!(canonicalize_body(Relaxed, b"abc \t"), b"abc\r\n");
        // A lone CR is content.
        assert_eq!(canonicalize_body(Simple, b"a\r"), b"a\r\r\n");
        assert_eq!(canonicalize_body(Relaxed, b"a \rb \r"), b"a \rb \r\r\n");
        assert_eq!(canonicalize_body(Relaxed, b"a\r\n\r"), b"a\r\n\r\r\n");
    }

    #[test]
    fn streaming_agrees_with_the_reference_at_every_cut() {
        let bodies: &[&[u8]] = &[
            EXAMPLE_BODY,
            b"",
            b"\r\n",
            b"\r",
            b"\r\r\n\r",
            b"a  b\t\tc \r\n \r\n\r\nd\r\n\r\n",
            b"  lead\r\ntrail  \r\n\r\n \t \r\nx",
            b"a \rb\r\r\n\r\n \n x\n\r\n",
            b"8-bit \xc3\xa9t\xc3\xa9  \r\n",
        ];
        for &body in bodies {
            for c in [Canonicalization::Simple, Canonicalization::Relaxed] {
                let want = reference(c, body);
                assert_eq!(canonicalize_body(c, body), want, "{c} {body:?}");
                for i in 0..=body.len() {
                    for j in i..=body.len() {
                        assert_eq!(streamed(c, body, &[i, j]), want, "{c} {body:?} cut {i} {j}");
                    }
                }
                // Byte by byte.
                let cuts: Vec<usize> = (0..body.len()).collect();
                assert_eq!(streamed(c, body, &cuts), want, "{c} {body:?} bytewise");
            }
        }
    }

    proptest::proptest! {
        /// Bodies from the bytes that matter (white space, CR, LF) and a
        /// letter, cut at random places: the stream agrees with the
        /// reference.
        #[test]
        fn streaming_agrees_with_the_reference_on_random_bodies(
            body in proptest::collection::vec(proptest::sample::select(vec![b'a', b' ', b'\t', b'\r', b'\n']), 0..160),
            cuts in proptest::collection::vec(0usize..64, 0..6),
        ) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            for c in [Canonicalization::Simple, Canonicalization::Relaxed] {
                proptest::prop_assert_eq!(streamed(c, &body, &cuts), reference(c, &body));
            }
        }
    }

    #[test]
    fn relaxed_headers_trim_both_ends_and_unfold() {
        assert_eq!(
            canonicalize_header(
                Canonicalization::Relaxed,
                b"SUBJECT:\r\n \t hello   world \r\n"
            ),
            b"subject:hello world\r\n"
        );
        assert_eq!(
            canonicalize_header(Canonicalization::Relaxed, b"X-Empty:\r\n"),
            b"x-empty:\r\n"
        );
        // Bare CR stays, bare LF goes: no line end is formed by unfolding.
        assert_eq!(
            canonicalize_header(Canonicalization::Relaxed, b"X: a\r\r\r\n\n\r\n\nb\r\n"),
            b"x:a\r\rb\r\n"
        );
        // Without a final CRLF (the DKIM-Signature field being hashed).
        assert_eq!(
            canonicalize_header(Canonicalization::Relaxed, b"DKIM-Signature: a=1;\r\n b="),
            b"dkim-signature:a=1; b=\r\n"
        );
    }
}
