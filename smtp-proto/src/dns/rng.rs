//! A tiny deterministic generator, seeded by the caller.
//!
//! The core draws no randomness of its own; the transport passes a seed (from
//! its CSPRNG, or a fixed value in tests) and what needs chance follows from
//! it: the order of MX records of equal preference (RFC 5321 §5.1 asks for a
//! random order so that load spreads), and the message ids of a lookup's
//! tries (RFC 5452 §9.2 asks that they be unpredictable — which they are as
//! long as the 64-bit seed is: an off-path attacker sees no output). Beyond
//! that, determinism and no dependency matter more than statistical quality.

/// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit state, full period.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Sixteen bits (a DNS message id).
    pub(crate) fn next_u16(&mut self) -> u16 {
        // The top bits of SplitMix64's output are as good as any.
        (self.next_u64() >> 48) as u16
    }

    /// A value in `0..bound`; `bound` must be non-zero.
    fn below(&mut self, bound: usize) -> usize {
        // usize fits in u64 on every supported target; the modulo bias is at
        // most bound / 2^64, irrelevant for ordering a handful of hosts.
        let bound64 = bound as u64;
        (self.next_u64() % bound64) as usize
    }

    /// Fisher–Yates shuffle.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // Reference outputs of SplitMix64 seeded with 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn shuffle_is_a_permutation_and_deterministic() {
        let mut a: Vec<u32> = (0..20).collect();
        let mut b = a.clone();
        SplitMix64::new(7).shuffle(&mut a);
        SplitMix64::new(7).shuffle(&mut b);
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
        assert_ne!(a, sorted, "a 20-element shuffle left everything in place");
    }
}
