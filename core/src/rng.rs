//! The seeded PRNG every machine owns.
//!
//! Xoshiro256++ (from `rand_xoshiro`): fast, 32 bytes of state, and its output is fixed by its
//! specification, so a seed replays the same run on any platform and any future build. It is not
//! cryptographic: it picks jitter, peers and timeouts, never keys.

use rand::SeedableRng;

/// The PRNG type machines use.
pub type MachineRng = rand_xoshiro::Xoshiro256PlusPlus;

/// A machine's PRNG from its caller-provided seed.
pub fn seeded(seed: u64) -> MachineRng {
    MachineRng::seed_from_u64(seed)
}

/// Derives an independent seed for a sub-component (`stream`) from a parent seed, so that adding a
/// consumer of randomness in one place does not shift the numbers drawn elsewhere.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    // SplitMix64 finaliser over the pair: a bijective mix with good avalanche.
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn same_seed_same_stream() {
        assert_eq!(seeded(5).next_u64(), seeded(5).next_u64());
        assert_ne!(seeded(5).next_u64(), seeded(6).next_u64());
    }

    #[test]
    fn derived_seeds_differ_per_stream() {
        assert_ne!(derive_seed(1, 0), derive_seed(1, 1));
        assert_ne!(derive_seed(1, 0), derive_seed(2, 0));
        assert_eq!(derive_seed(7, 3), derive_seed(7, 3));
    }
}
