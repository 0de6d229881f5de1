//! Byte-stream generators and the chunking of a stream at arbitrary cuts,
//! shared by the framing and DATA tests (included by `#[path]`, like the
//! other files of `support/`).

use std::ops::Range;

use proptest::prelude::*;
use proptest::strategy::Union;

/// Byte strings of a length in `len` whose bytes are drawn from
/// `favoured` (weight, byte) and, with weight `others`, from any byte.
pub(crate) fn biased_bytes(
    favoured: &[(u32, u8)],
    others: u32,
    len: Range<usize>,
) -> impl Strategy<Value = Vec<u8>> {
    let mut choices: Vec<(u32, BoxedStrategy<u8>)> = favoured
        .iter()
        .map(|&(weight, byte)| (weight, Just(byte).boxed()))
        .collect();
    if others > 0 {
        choices.push((others, any::<u8>().boxed()));
    }
    proptest::collection::vec(Union::new_weighted(choices), len)
}

/// `input` cut at `cuts` (each taken modulo the length plus one, then
/// sorted), so that every cut position, and empty pieces, can occur.
pub(crate) fn cut(input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut prev = 0;
    for c in cuts {
        out.push(input[prev..c].to_vec());
        prev = c;
    }
    out.push(input[prev..].to_vec());
    out
}
