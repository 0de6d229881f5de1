//! `unstuff(stuff(x)) == x` for any chunking on either side; the stuffed
//! output never holds an end of data before its terminator; and the unstuffer
//! never ends arbitrary (unstuffed) input anywhere but at a real CRLF.CRLF.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smtp_proto::data::{BareLineEnding, DotStuffer, DotUnstuffer};

#[derive(Debug, Arbitrary)]
struct Input {
    body: Vec<u8>,
    stuff_cuts: Vec<u8>,
    unstuff_cuts: Vec<u8>,
}

fn chunks<'a>(data: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    for c in cuts {
        if rest.is_empty() {
            break;
        }
        let n = (usize::from(*c) % rest.len()).max(1);
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fuzz_target!(|input: Input| {
    // Normalize accepts any bytes and must produce a clean stuffed stream.
    let mut stuffer = DotStuffer::new(BareLineEnding::Normalize);
    let mut wire = Vec::new();
    for c in chunks(&input.body, &input.stuff_cuts) {
        stuffer.stuff(c, &mut wire).expect("normalize never fails");
    }
    stuffer.finish(&mut wire).expect("normalize never fails");

    // The only end of data is the terminator (the body start counts as a
    // line start, so an empty body is just ".\r\n").
    let first_end = if wire.starts_with(b".\r\n") {
        Some(0)
    } else {
        memchr::memmem::find(&wire, b"\r\n.\r\n").map(|i| i + 2)
    };
    assert_eq!(
        first_end,
        Some(wire.len() - 3),
        "end of data before the terminator"
    );

    // Unstuffing gives back the body with line endings normalized to CRLF.
    let mut unstuffer = DotUnstuffer::new(BareLineEnding::Reject);
    let mut body = Vec::new();
    let mut ended = false;
    for c in chunks(&wire, &input.unstuff_cuts) {
        assert!(!ended, "bytes after the end");
        let r = unstuffer.unstuff(c, &mut body);
        assert_eq!(r.consumed, c.len());
        ended = r.end;
    }
    assert!(ended);
    assert!(!unstuffer.stats().has_bare_line_ending());
    assert!(!unstuffer.stats().has_nul(), "a NUL on the wire");
    let mut expected = normalize(&input.body);
    if !expected.is_empty() && !expected.ends_with(b"\r\n") {
        expected.extend_from_slice(b"\r\n");
    }
    assert_eq!(body, expected);

    // Raw input straight into the unstuffer: it may end only at a real
    // CRLF "." CRLF (or "." CRLF at the very start).
    let mut raw = DotUnstuffer::new(BareLineEnding::Reject);
    let mut out = Vec::new();
    let mut pos = 0;
    for c in chunks(&input.body, &input.unstuff_cuts) {
        let r = raw.unstuff(c, &mut out);
        pos += r.consumed;
        if r.end {
            let seen = &input.body[..pos];
            assert!(
                seen == b".\r\n" || seen.ends_with(b"\r\n.\r\n"),
                "ended without CRLF.CRLF"
            );
            break;
        }
    }
});

/// Bare CR and bare LF become CRLF and NULs go, as the Normalize policy
/// promises.
fn normalize(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
            }
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            // A sender never sends a NUL: Normalize drops it.
            0 => i += 1,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}
