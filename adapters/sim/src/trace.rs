//! The run's fingerprint: a 128-bit hash folded over every event in order.
//!
//! It is not cryptographic; it exists so that two runs with the same seed can be compared in one
//! line, and a change in any delivery, timer or protocol event changes it. Two independent 64-bit
//! multiply-rotate lanes keep accidental collisions out of reach while costing a few cycles per
//! word, which matters at 10^8 events.

use std::hash::Hasher;

/// Folds a sequence of words into a 128-bit digest.
#[derive(Clone, Debug)]
pub struct TraceHasher {
    a: u64,
    b: u64,
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

impl Default for TraceHasher {
    fn default() -> Self {
        TraceHasher {
            a: 0x243F_6A88_85A3_08D3,
            b: 0x1319_8A2E_0370_7344,
        }
    }
}

impl TraceHasher {
    /// Mixes one word into both lanes.
    pub fn word(&mut self, w: u64) {
        self.a = (self.a ^ w).wrapping_mul(K1).rotate_left(29);
        self.b = (self.b.rotate_left(17) ^ w).wrapping_mul(K2);
    }

    /// The digest so far, as 32 hex digits.
    pub fn hex(&self) -> String {
        // Final avalanche so nearby states print far apart.
        let fin = |x: u64| {
            let x = (x ^ (x >> 33)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
            x ^ (x >> 33)
        };
        format!(
            "{:016x}{:016x}",
            fin(self.a ^ self.b.rotate_left(7)),
            fin(self.b)
        )
    }
}

impl Hasher for TraceHasher {
    fn finish(&self) -> u64 {
        self.a ^ self.b
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(w) ^ chunk.len() as u64);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.word(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.word(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.word(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }
    fn write_isize(&mut self, i: isize) {
        self.word(i as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_content_change_the_digest() {
        let digest = |words: &[u64]| {
            let mut h = TraceHasher::default();
            words.iter().for_each(|w| h.word(*w));
            h.hex()
        };
        assert_eq!(digest(&[1, 2, 3]), digest(&[1, 2, 3]));
        assert_ne!(digest(&[1, 2, 3]), digest(&[1, 3, 2]));
        assert_ne!(digest(&[1, 2, 3]), digest(&[1, 2, 4]));
        assert_ne!(digest(&[]), digest(&[0]));
        assert_eq!(digest(&[]).len(), 32);
    }
}
