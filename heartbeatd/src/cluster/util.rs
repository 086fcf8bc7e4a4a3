//! Small helpers of the core: a seeded random generator.

/// A small deterministic random generator (SplitMix64): the core's random
/// choices (ack trigger, retransmit-request delays) are reproducible in tests
/// from the seed the daemon draws at start.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_stays_in_bounds_and_varies() {
        let mut r = Rng::new(7);
        let v: Vec<u64> = (0..1000).map(|_| r.range(50, 250)).collect();
        assert!(v.iter().all(|x| (50..=250).contains(x)));
        assert!(v.iter().any(|x| *x < 100) && v.iter().any(|x| *x > 200));
        assert_eq!(Rng::new(3).range(5, 5), 5);
    }
}
