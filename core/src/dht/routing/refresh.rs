//! Bucket refresh (Kademlia §2.3): which buckets went idle, and a random key in a bucket's
//! range to look up.

use rand::Rng;

use super::{index_depth, RoutingTable};
use crate::dht::Contact;
use crate::id::Key;
use crate::time::{Duration, Instant};

impl<C: Contact> RoutingTable<C> {
    /// Marks bucket `index` as used at `now` (a lookup for a key in its range ran), so that
    /// [`stale_buckets`](Self::stale_buckets) leaves it alone. Buckets deeper than the nearest
    /// contact are not tracked, and touching them does nothing.
    pub fn touch_bucket(&mut self, now: Instant, index: u8) {
        if let Some(b) = self.buckets.get_mut(index_depth(index)) {
            b.last_touched = now;
        }
    }

    /// Buckets to refresh (Kademlia §2.3): those not touched for `idle` or longer, from the
    /// farthest (255) down to the one holding our nearest contact. Nearer buckets are empty in
    /// any network (if a node were there, it would be our nearest), so looking them up is
    /// pointless. An idle time of zero yields every bucket in that range, as a join wants.
    pub fn stale_buckets(&self, now: Instant, idle: Duration) -> impl Iterator<Item = u8> + '_ {
        let in_range = self
            .buckets
            .iter()
            .rposition(|b| b.len != 0)
            .map_or(0, |d| d + 1);
        self.buckets[..in_range]
            .iter()
            .enumerate()
            .filter(move |(_, b)| now.saturating_since(b.last_touched) >= idle)
            .map(|(d, _)| (255 - d) as u8)
    }

    /// A uniformly random key in bucket `index`: its distance to our key has its highest set
    /// bit at `index` (255 = the farthest half).
    pub fn random_key_in_bucket(&self, index: u8, rng: &mut impl Rng) -> Key {
        let lz = index_depth(index);
        // The distance: zeros above the bit, a one at it, random below.
        let mut distance: [u8; 32] = rng.random();
        let byte = lz / 8;
        let top = 0x80u8 >> (lz % 8);
        distance[..byte].fill(0);
        distance[byte] = (distance[byte] & (top - 1)) | top;
        let mut key = *self.local.as_bytes();
        for (k, d) in key.iter_mut().zip(distance) {
            *k ^= d;
        }
        Key::from_bytes(key)
    }
}
