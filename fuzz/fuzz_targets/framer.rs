//! The line framer with an arbitrary limit and arbitrary chunking yields the
//! same frames as when fed the whole input, and never needs more buffer than
//! the limit plus one read.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smtp_proto::framing::{Frame, LineFramer};

#[derive(Debug, Arbitrary)]
struct Input {
    limit: u16,
    cuts: Vec<u16>,
    data: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Line(Vec<u8>, bool, bool),
    TooLong,
}

/// Feeds `chunks` in order; returns the frames and the largest buffer held.
fn run(limit: usize, chunks: &[&[u8]]) -> (Vec<Seen>, usize) {
    let mut framer = LineFramer::new(limit);
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    let mut peak = 0;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        peak = peak.max(buf.len());
        loop {
            let frame = framer.next(&buf);
            let n = frame.consumed();
            match frame {
                Frame::Line(l) => seen.push(Seen::Line(
                    l.content().to_vec(),
                    l.has_bare_cr(),
                    l.has_bare_lf(),
                )),
                Frame::TooLong { .. } => seen.push(Seen::TooLong),
                Frame::Discard { .. } => {}
                Frame::NeedMore => {
                    buf.drain(..n);
                    break;
                }
            }
            buf.drain(..n);
        }
    }
    (seen, peak)
}

fuzz_target!(|input: Input| {
    let limit = usize::from(input.limit % 2048).max(2);
    let whole = run(limit, &[&input.data]).0;
    let mut chunks = Vec::new();
    let mut rest = &input.data[..];
    let mut max_chunk = 0;
    for cut in &input.cuts {
        if rest.is_empty() {
            break;
        }
        let n = (usize::from(*cut) % rest.len()).max(1);
        let (a, b) = rest.split_at(n);
        max_chunk = max_chunk.max(a.len());
        chunks.push(a);
        rest = b;
    }
    max_chunk = max_chunk.max(rest.len());
    chunks.push(rest);
    let (chunked, peak) = run(limit, &chunks);
    assert_eq!(whole, chunked);
    assert!(
        peak <= limit + max_chunk,
        "buffer {peak} > limit {limit} + read {max_chunk}"
    );
});
