//! Body and header canonicalization (RFC 6376 §3.4): the streaming body
//! hash is the same however the body is cut, and the canonical body is the
//! one a direct, line-by-line reading of the RFC gives; relaxed header
//! fields are in their canonical shape.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smtp_proto::dkim::{
    BodyHasher, Canonicalization, canonicalize_body, canonicalize_header,
};

#[derive(Debug, Arbitrary)]
struct Input {
    relaxed: bool,
    cuts: Vec<u16>,
    body: Vec<u8>,
    field: Vec<u8>,
}

/// RFC 6376 §3.4.3 and §3.4.4 on a whole body, line by line: the reference
/// the streaming canonicalizer must agree with.
fn reference(c: Canonicalization, body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut rest = body;
    while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
        lines.push(rest[..p].to_vec());
        rest = &rest[p + 2..];
    }
    if !rest.is_empty() {
        lines.push(rest.to_vec());
    }
    if c == Canonicalization::Relaxed {
        for line in &mut lines {
            let mut out = Vec::new();
            let mut wsp = false;
            for &b in line.iter() {
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
            *line = out;
        }
    }
    while lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    if out.is_empty() && c == Canonicalization::Simple {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fuzz_target!(|input: Input| {
    let c = if input.relaxed {
        Canonicalization::Relaxed
    } else {
        Canonicalization::Simple
    };
    let canonical = canonicalize_body(c, &input.body);
    assert_eq!(canonical, reference(c, &input.body));

    let mut whole = BodyHasher::new(c);
    whole.update(&input.body);
    let whole = whole.finish();
    assert_eq!(whole.canonical_length(), canonical.len() as u64);

    let mut pieces = BodyHasher::new(c);
    let mut rest = &input.body[..];
    for &cut in &input.cuts {
        let (head, tail) = rest.split_at(usize::from(cut).min(rest.len()));
        pieces.update(head);
        rest = tail;
    }
    pieces.update(rest);
    assert_eq!(pieces.finish(), whole);

    let simple = canonicalize_header(Canonicalization::Simple, &input.field);
    assert_eq!(simple, input.field);
    let relaxed = canonicalize_header(Canonicalization::Relaxed, &input.field);
    assert!(relaxed.ends_with(b"\r\n"));
    let colon = relaxed.iter().position(|&b| b == b':').expect("a colon");
    let (name, value) = (&relaxed[..colon], &relaxed[colon + 1..relaxed.len() - 2]);
    assert!(!name.iter().any(u8::is_ascii_uppercase));
    assert!(!value.starts_with(b" ") && !value.ends_with(b" "));
    assert!(!value.windows(2).any(|w| w == b"  "));
    assert!(!value.contains(&b'\t'));
    assert!(!value.windows(2).any(|w| w == b"\r\n"));
});
