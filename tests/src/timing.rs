//! Timing for the `harness = false` benchmarks in `tests/benches/`: our
//! code and a peer's run in alternating rounds in one process, and each
//! workload ends in one ratio line,
//!
//! `ratio <workload> ours=<ns per op> peer=<ns per op> speedup=<peer/ours>`
//!
//! the format `benches/codec.rs` prints. Alternating rounds within one
//! process keep the comparison fair on a shared, noisy machine: absolute
//! figures drift between minutes, a ratio taken seconds apart is stable.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long one timed round lasts.
pub const ROUND: Duration = Duration::from_millis(150);

/// Whether a quick smoke run was asked for (`--quick` or `BENCH_QUICK`).
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick") || std::env::var_os("BENCH_QUICK").is_some()
}

/// Rounds per side: 15, or 3 in quick mode.
pub fn rounds() -> usize {
    if quick() { 3 } else { 15 }
}

/// One workload's medians: ns per op of ours and of the peer.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The workload's name in the ratio line.
    pub name: String,
    /// Our median, ns per op.
    pub ours: f64,
    /// The peer's median, ns per op.
    pub peer: f64,
}

impl Comparison {
    /// The ratio line.
    pub fn ratio_line(&self) -> String {
        format!(
            "ratio {} ours={:.1} peer={:.1} speedup={:.2}",
            self.name,
            self.ours,
            self.peer,
            self.peer / self.ours
        )
    }
}

/// Alternates `rounds` rounds of `ours` and `peer` (each call doing
/// `ops_per_call` operations); prints and returns the medians.
pub fn compare(
    name: &str,
    rounds: usize,
    ops_per_call: u64,
    mut ours: impl FnMut() -> usize,
    mut peer: impl FnMut() -> usize,
) -> Comparison {
    let mut o = Vec::with_capacity(rounds);
    let mut p = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        o.push(time_per_op(ops_per_call, &mut ours));
        p.push(time_per_op(ops_per_call, &mut peer));
    }
    let (om, pm) = (median(&mut o), median(&mut p));
    println!("{name}: ours {om:.1} ns/op, peer {pm:.1} ns/op over {rounds} alternating rounds");
    Comparison {
        name: name.to_owned(),
        ours: om,
        peer: pm,
    }
}

/// Runs `f` repeatedly for about one [`ROUND`]; returns ns per op.
pub fn time_per_op(ops_per_call: u64, mut f: impl FnMut() -> usize) -> f64 {
    // Warm up and size the batch.
    let start = Instant::now();
    black_box(f());
    let one = start.elapsed().max(Duration::from_nanos(50));
    let calls = (ROUND.as_nanos() / one.as_nanos()).max(1) as u64;
    let start = Instant::now();
    for _ in 0..calls {
        black_box(f());
    }
    start.elapsed().as_nanos() as f64 / (calls * ops_per_call) as f64
}

/// The median (sorts `v`).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
