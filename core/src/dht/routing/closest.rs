//! The contacts nearest a key, as `FIND_NODE` answers and lookups need them: buckets visited
//! nearest first, stopping once enough are found, each sorted only as far as needed.

use smallvec::SmallVec;

use super::RoutingTable;
use crate::dht::Contact;
use crate::id::Key;

impl<C: Contact> RoutingTable<C> {
    /// Fills `out` (cleared first) with up to `count` held contacts nearest to `target`,
    /// nearest first.
    ///
    /// Contacts with failures are included, in their place by distance: the table drops them
    /// after `max_failures`, a lookup copes with a few silent contacts anyway, and skipping them
    /// would make the answer depend on transient state the asker cannot see.
    ///
    /// Buckets are visited nearest first and the visit stops once `count` contacts are found,
    /// so only the contacts of the buckets needed have their keys computed and sorted. Why the
    /// order below is by distance (bits counted from the most significant, as depths are): let
    /// `x = local ^ target` and `t` its leading zeros. A contact at depth `i` is `local ^ y`
    /// with `y`'s highest set bit at `i`, at distance `x ^ y` from the target.
    /// - `i == t`: the top bits cancel, so the distance is below `2^(255 - t)`: nearest of all.
    /// - `i > t`: the distance keeps `x`'s top bit at `t`, so it lies in
    ///   `[2^(255 - t), 2^(256 - t))`. Between depths `i < j`, the contacts at `i` flip bit `i`
    ///   of `x` and those at `j` keep it, so `i` is nearer exactly when that bit of `x` is set.
    ///   Hence depths whose bit is set, shallow to deep, then those whose bit is clear, deep to
    ///   shallow.
    /// - `i < t`: the top bit of the distance is `y`'s, at `i`, so deeper is nearer: `t - 1`
    ///   down to 0.
    pub fn closest(&self, target: &Key, count: usize, out: &mut Vec<C>) {
        out.clear();
        let x = self.local.distance(target);
        let t = x.leading_zeros() as usize; // 256 when the target is our own key
        let n = self.buckets.len();
        let bit = |i: usize| x.bit(i);
        let deeper = (t + 1).min(n)..n;
        let order = (t < n)
            .then_some(t)
            .into_iter()
            .chain(deeper.clone().filter(|&i| bit(i)))
            .chain(deeper.rev().filter(|&i| !bit(i)))
            .chain((0..t.min(n)).rev());
        // One bucket at a time, with distances computed once each: a bucket holds at most k.
        // Sorted by the top 64 bits of the distance, the full distance breaking ties (keys
        // sharing 64 bits): 16-byte items for a 4-byte contact instead of 40 to move around.
        let by_distance = |a: &(u64, C), b: &(u64, C)| {
            a.0.cmp(&b.0)
                .then_with(|| a.1.distance_to(target).cmp(&b.1.distance_to(target)))
        };
        let mut scratch: SmallVec<[(u64, C); 20]> = SmallVec::new();
        for d in order {
            let room = count - out.len();
            if room == 0 {
                break;
            }
            scratch.clear();
            scratch.extend(
                self.held(d)
                    .iter()
                    .map(|c| (c.distance_to(target).high_word(), *c)),
            );
            if scratch.len() > room {
                // Only the nearest `room` are wanted: select them, and sort only those.
                scratch.select_nth_unstable_by(room - 1, by_distance);
                scratch.truncate(room);
            }
            scratch.sort_unstable_by(by_distance);
            out.extend(scratch.iter().map(|&(_, c)| c));
        }
    }
}
