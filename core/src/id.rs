//! 256-bit identifiers and the XOR metric of Kademlia (Maymounkov & Mazières 2002, §2.1).
//!
//! A [`Key`] names anything in the keyspace (a record, a lookup target); a [`PeerId`] is the key
//! of a node, derived from its public key (see [`crate::identity`]). The distance between two keys
//! is their bitwise XOR read as a big-endian integer, and a key's bucket relative to ours is the
//! index of the highest differing bit.

use core::fmt;

/// A point in the 256-bit keyspace.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Key([u8; 32]);

/// XOR distance between two keys, ordered as a big-endian 256-bit integer.
///
/// Held as four 64-bit words, most significant first, so that comparing two distances (the
/// inner loop of every lookup and routing-table scan) is a few integer compares.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct Distance([u64; 4]);

/// Word by word, most significant first. Written out because the derived order goes through
/// the generic slice comparison, a loop the compiler does not unroll; this one is a few
/// compares and usually decided by the first word.
impl Ord for Distance {
    #[inline]
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        let (a, b) = (&self.0, &other.0);
        a[0].cmp(&b[0])
            .then_with(|| a[1].cmp(&b[1]))
            .then_with(|| a[2].cmp(&b[2]))
            .then_with(|| a[3].cmp(&b[3]))
    }
}

impl PartialOrd for Distance {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The identity of a node: the BLAKE3 hash of its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct PeerId(Key);

impl Key {
    /// Number of bits in a key, and so the number of k-buckets.
    pub const BITS: usize = 256;

    /// A key from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Key(bytes)
    }
    /// The key of arbitrary content: its BLAKE3 hash.
    pub fn hash_of(content: &[u8]) -> Self {
        Key(*blake3::hash(content).as_bytes())
    }
    /// The 32 bytes of the key.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// XOR distance to `other`.
    #[inline]
    pub fn distance(&self, other: &Key) -> Distance {
        let (a, b) = (self.words(), other.words());
        Distance([a[0] ^ b[0], a[1] ^ b[1], a[2] ^ b[2], a[3] ^ b[3]])
    }
    /// The key as four big-endian 64-bit words, most significant first.
    #[inline]
    pub fn words(&self) -> [u64; 4] {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&self.0[i * 8..i * 8 + 8]);
            u64::from_be_bytes(w)
        };
        [word(0), word(1), word(2), word(3)]
    }
    /// The k-bucket `other` falls into as seen from `self`: the index of the highest bit in which
    /// they differ, 255 for the far half of the keyspace down to 0 for the nearest neighbour.
    /// `None` when the keys are equal (a node does not store itself).
    pub fn bucket_index(&self, other: &Key) -> Option<u8> {
        self.distance(other).bucket_index()
    }
}

impl Distance {
    /// The zero distance (a key to itself).
    pub const ZERO: Distance = Distance([0; 4]);

    /// Number of leading zero bits.
    pub fn leading_zeros(&self) -> u32 {
        let mut zeros = 0;
        for word in self.0 {
            if word != 0 {
                return zeros + word.leading_zeros();
            }
            zeros += 64;
        }
        zeros
    }
    /// The distance whose four 64-bit words, most significant first, are `words`.
    #[inline]
    pub const fn from_words(words: [u64; 4]) -> Distance {
        Distance(words)
    }
    /// The four 64-bit words, most significant first.
    #[inline]
    pub const fn words(&self) -> [u64; 4] {
        self.0
    }
    /// The most significant 64 bits. Comparing these first decides almost every comparison of
    /// two distances (ties need equal 64-bit prefixes), so they serve as a compact sort key.
    #[inline]
    pub fn high_word(&self) -> u64 {
        self.0[0]
    }
    /// Index of the highest set bit (`255 - leading_zeros`), `None` for zero.
    pub fn bucket_index(&self) -> Option<u8> {
        let lz = self.leading_zeros();
        // lz <= 255 here, so the subtraction fits a u8.
        (lz < 256).then(|| (255 - lz) as u8)
    }
    /// Bit `i`, counted from the most significant (bit 0 is the top bit of the first byte).
    pub fn bit(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (63 - i % 64)) != 0
    }
    /// The 32 big-endian bytes of the distance.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        bytes
    }
}

impl PeerId {
    /// A peer id from its 32 bytes (as received on the wire).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PeerId(Key(bytes))
    }
    /// The peer id of an ed25519 public key: `BLAKE3(public_key)`.
    pub fn from_public_key(public_key: &[u8; 32]) -> Self {
        PeerId(Key::hash_of(public_key))
    }
    /// The peer's position in the keyspace.
    pub const fn key(&self) -> &Key {
        &self.0
    }
    /// The 32 bytes of the id.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
    /// XOR distance to a key.
    pub fn distance(&self, key: &Key) -> Distance {
        self.0.distance(key)
    }
}

impl From<PeerId> for Key {
    fn from(p: PeerId) -> Key {
        p.0
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl fmt::Display for Key {
    /// Full lowercase hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for Key {
    /// The first 8 bytes, enough to tell keys apart in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(")?;
        write_hex(f, &self.0[..8])?;
        f.write_str("…)")
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerId(")?;
        write_hex(f, &self.0 .0[..8])?;
        f.write_str("…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_with_bit(bit: usize) -> Key {
        let mut b = [0u8; 32];
        b[31 - bit / 8] = 1 << (bit % 8);
        Key::from_bytes(b)
    }

    #[test]
    fn distance_is_xor_and_symmetric() {
        let a = Key::hash_of(b"a");
        let b = Key::hash_of(b"b");
        assert_eq!(a.distance(&b), b.distance(&a));
        assert_eq!(a.distance(&a), Distance::ZERO);
        for i in 0..32 {
            assert_eq!(
                a.distance(&b).to_bytes()[i],
                a.as_bytes()[i] ^ b.as_bytes()[i]
            );
        }
    }

    #[test]
    fn bucket_index_is_highest_differing_bit() {
        let zero = Key::default();
        assert_eq!(zero.bucket_index(&zero), None);
        for bit in [0usize, 1, 7, 8, 100, 254, 255] {
            assert_eq!(
                zero.bucket_index(&key_with_bit(bit)),
                Some(bit as u8),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn distance_order_is_byte_order() {
        // Distances that differ first at every byte, inside a word and at its edges: their
        // order, leading zeros and bits must be those of the big-endian bytes.
        let zero = Key::default();
        for i in 0..32 {
            for (a, b) in [(0x00u8, 0x01u8), (0x7f, 0x80), (0xfe, 0xff)] {
                let (mut x, mut y) = ([0x5au8; 32], [0x5au8; 32]);
                x[..i].fill(0);
                y[..i].fill(0);
                (x[i], y[i]) = (a, b);
                let dx = zero.distance(&Key::from_bytes(x));
                let dy = zero.distance(&Key::from_bytes(y));
                assert_eq!(dx.to_bytes(), x);
                assert_eq!(dx.cmp(&dy), x.cmp(&y));
                assert_eq!(dy.cmp(&dx), y.cmp(&x));
                let bits: Vec<bool> = (0..256)
                    .map(|j| x[j / 8] & (0x80 >> (j % 8)) != 0)
                    .collect();
                assert_eq!((0..256).map(|j| dx.bit(j)).collect::<Vec<_>>(), bits);
                let lz = bits.iter().take_while(|&&bit| !bit).count() as u32;
                assert_eq!(dx.leading_zeros(), lz);
            }
        }
        assert_eq!(Distance::ZERO.leading_zeros(), 256);
    }

    #[test]
    fn distance_orders_as_big_endian_integer() {
        let zero = Key::default();
        assert!(zero.distance(&key_with_bit(3)) < zero.distance(&key_with_bit(4)));
        assert!(zero.distance(&key_with_bit(255)) > zero.distance(&key_with_bit(254)));
    }
}
