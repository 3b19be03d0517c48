//! The Kademlia routing table (Maymounkov & Mazières §2.2, §2.4): up to k contacts per distance
//! range, least recently seen first, with ping-before-evict, a replacement cache per bucket, and
//! IP-diversity limits.
//!
//! ## Layout
//! A contact at XOR distance d from us goes to bucket `255 - leading_zeros(d)`. Half the
//! keyspace falls in bucket 255, a quarter in 254, and so on, so a table of n contacts in a
//! network of N nodes uses only the ~log2(N/k) + a few highest buckets. Buckets are therefore
//! stored by leading-zero count in a vector grown to the deepest bucket in use, not as 256
//! fixed slots, and each entry is just the contact and a failure count: with 4-byte simulator
//! handles, a full table costs a few KiB.
//!
//! ## Policy
//! - A contact heard from moves to the most-recently-seen end of its bucket.
//! - A newcomer to a full bucket waits in the bucket's replacement cache (newest kept). If the
//!   least recently seen entry has not been heard from for `fresh_for`, it is pinged; the caller
//!   reports the outcome (`observe` on an answer, `failed` on silence, which evicts it and
//!   promotes the newest replacement). Long-lived contacts are kept over newcomers: the paper's
//!   observation that nodes up for long stay up. Not pinging contacts heard from recently is
//!   BitTorrent's rule (BEP 5, "good" nodes): in a busy network the paper's rule would ping on
//!   nearly every message from a stranger.
//! - After `max_failures` failed requests in a row a contact is dropped the same way.
//! - Diversity: at most `max_per_subnet_bucket` contacts of one subnet ([`Subnet`]) in a bucket
//!   and `max_per_subnet_table` in the table. The bucket is scanned; the table-wide count is
//!   first read from a 64-slot counting sketch (subnets hashed to slots), which can only
//!   overcount, so a scan of the whole table (cold memory, one cache miss per bucket) is needed
//!   only when the sketch says the limit may be reached.

use core::fmt;

use rand::Rng;

use super::contact::{Contact, Subnet};
use crate::id::{Distance, Key};
use crate::time::{Duration, Instant};

/// Bucket size, caches and limits of a [`RoutingTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutingConfig {
    /// Contacts per bucket (the paper's k), also the size of lookup results. Default 20.
    pub k: usize,
    /// Newcomers remembered per full bucket, promoted when an entry is evicted. Default 8.
    pub replacements: usize,
    /// Contacts of one subnet in one bucket. Default 2.
    pub max_per_subnet_bucket: usize,
    /// Contacts of one subnet in the whole table. Default 10.
    pub max_per_subnet_table: usize,
    /// Failed requests in a row after which a contact is dropped. Default 3.
    pub max_failures: u8,
    /// A contact heard from within this long is not pinged before a newcomer may evict it.
    /// Default 15 min.
    pub fresh_for: Duration,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            k: 20,
            replacements: 8,
            max_per_subnet_bucket: 2,
            max_per_subnet_table: 10,
            max_failures: 3,
            fresh_for: Duration::from_secs(15 * 60),
        }
    }
}

/// A routing configuration that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoutingConfigError {
    /// `k` is zero: no contact could be kept.
    ZeroK,
    /// A subnet limit is zero: every contact with an address would be refused.
    ZeroSubnetLimit,
    /// `max_failures` is zero: contacts would be dropped before any request failed.
    ZeroFailures,
}

impl fmt::Display for RoutingConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoutingConfigError::ZeroK => "k must be at least 1",
            RoutingConfigError::ZeroSubnetLimit => "subnet limits must be at least 1",
            RoutingConfigError::ZeroFailures => "max_failures must be at least 1",
        })
    }
}

impl std::error::Error for RoutingConfigError {}

impl RoutingConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), RoutingConfigError> {
        if self.k == 0 {
            return Err(RoutingConfigError::ZeroK);
        }
        if self.max_per_subnet_bucket == 0 || self.max_per_subnet_table == 0 {
            return Err(RoutingConfigError::ZeroSubnetLimit);
        }
        if self.max_failures == 0 {
            return Err(RoutingConfigError::ZeroFailures);
        }
        Ok(())
    }
}

/// What [`RoutingTable::observe`] did with a contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed<C> {
    /// The contact is this node.
    IsSelf,
    /// Already known: moved to the most-recently-seen end, failures forgotten.
    Refreshed,
    /// Added to its bucket.
    Inserted,
    /// Refused: its subnet already has the most contacts allowed.
    SubnetLimit,
    /// Its bucket is full: it waits in the replacement cache. `ping` is the least recently seen
    /// entry, to be pinged now (`None` while an earlier ping of this bucket is outstanding).
    BucketFull {
        /// The contact to ping before evicting it.
        ping: Option<C>,
    },
}

/// What [`RoutingTable::failed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure<C> {
    /// The failure was counted; the contact stays.
    Counted,
    /// The contact was dropped, and the newest fitting replacement (if any) took its place.
    Removed {
        /// The promoted replacement.
        replaced_by: Option<C>,
    },
    /// The contact is not in the table.
    Unknown,
}

#[derive(Clone, Copy, Debug)]
struct Entry<C> {
    contact: C,
    failures: u8,
    /// When last heard from, in whole seconds of the caller's clock (4 bytes, not 8).
    seen: u32,
}

fn secs(t: Instant) -> u32 {
    u32::try_from(t.as_nanos() / 1_000_000_000).unwrap_or(u32::MAX)
}

#[derive(Clone, Debug)]
struct Bucket<C> {
    /// Least recently seen first.
    entries: Vec<Entry<C>>,
    /// Newest last.
    replacements: Vec<C>,
    last_touched: Instant,
    /// The entry pinged before evicting it, while the ping is outstanding.
    pinging: Option<C>,
}

impl<C> Bucket<C> {
    fn new(now: Instant) -> Self {
        Bucket {
            entries: Vec::new(),
            replacements: Vec::new(),
            last_touched: now,
            pinging: None,
        }
    }
}

/// The contacts a node keeps, by distance (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct RoutingTable<C> {
    local: Key,
    config: RoutingConfig,
    /// Indexed by leading zeros of the distance (0 = the farthest half of the keyspace).
    buckets: Vec<Bucket<C>>,
    len: usize,
    /// Contacts per subnet hash slot: an upper bound on any one subnet's count.
    sketch: [u16; SKETCH_SLOTS],
}

const SKETCH_SLOTS: usize = 64;

fn slot(subnet: Subnet) -> usize {
    (subnet.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
}

fn depth(local: &Key, key: &Key) -> Option<usize> {
    let lz = local.distance(key).leading_zeros() as usize;
    (lz < Key::BITS).then_some(lz)
}

impl<C: Contact> RoutingTable<C> {
    /// An empty table for the node at `local`.
    pub fn new(local: Key, config: RoutingConfig) -> Self {
        RoutingTable {
            local,
            config,
            buckets: Vec::new(),
            len: 0,
            sketch: [0; SKETCH_SLOTS],
        }
    }

    /// Our own key.
    pub fn local(&self) -> &Key {
        &self.local
    }

    /// The configuration.
    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    /// Contacts held (replacement caches not counted).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table holds no contact.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `contact` is held.
    pub fn contains(&self, contact: &C) -> bool {
        depth(&self.local, &contact.key())
            .and_then(|d| self.buckets.get(d))
            .is_some_and(|b| b.entries.iter().any(|e| &e.contact == contact))
    }

    /// Every contact held, farthest buckets first.
    pub fn iter(&self) -> impl Iterator<Item = &C> {
        self.buckets
            .iter()
            .flat_map(|b| b.entries.iter().map(|e| &e.contact))
    }

    /// Contacts in bucket `index` (255 = the farthest half).
    pub fn bucket_len(&self, index: u8) -> usize {
        self.buckets
            .get(255 - usize::from(index))
            .map_or(0, |b| b.entries.len())
    }

    fn fits_subnet_limits(&self, contact: &C, bucket: usize) -> bool {
        let Some(subnet) = contact.subnet() else {
            return true;
        };
        let same = |c: &C| c.subnet() == Some(subnet);
        let in_bucket = self.buckets[bucket]
            .entries
            .iter()
            .filter(|e| same(&e.contact))
            .count();
        if in_bucket >= self.config.max_per_subnet_bucket {
            return false;
        }
        if usize::from(self.sketch[slot(subnet)]) < self.config.max_per_subnet_table {
            return true;
        }
        self.iter().filter(|c| same(c)).count() < self.config.max_per_subnet_table
    }

    fn count_subnet(&mut self, contact: &C, added: bool) {
        if let Some(subnet) = contact.subnet() {
            let n = &mut self.sketch[slot(subnet)];
            *n = if added {
                n.saturating_add(1)
            } else {
                n.saturating_sub(1)
            };
        }
    }

    /// We heard from `contact` (a request from it, or its answer to ours). See [`Observed`].
    pub fn observe(&mut self, now: Instant, contact: C) -> Observed<C> {
        let Some(d) = depth(&self.local, &contact.key()) else {
            return Observed::IsSelf;
        };
        while self.buckets.len() <= d {
            self.buckets.push(Bucket::new(now));
        }
        let k = self.config.k;
        let bucket = &mut self.buckets[d];
        if let Some(pos) = bucket.entries.iter().position(|e| e.contact == contact) {
            let mut entry = bucket.entries.remove(pos);
            entry.failures = 0;
            entry.seen = secs(now);
            bucket.entries.push(entry);
            bucket.last_touched = now;
            if bucket.pinging == Some(contact) {
                bucket.pinging = None;
            }
            return Observed::Refreshed;
        }
        let replacements = self.config.replacements;
        if self.buckets[d].entries.len() >= k {
            // Full: the newcomer waits in the cache (subnet limits are checked on promotion).
            let bucket = &mut self.buckets[d];
            if replacements > 0 {
                bucket.replacements.retain(|c| c != &contact);
                if bucket.replacements.len() >= replacements {
                    bucket.replacements.remove(0);
                }
                bucket.replacements.push(contact);
            }
            let head = bucket.entries[0];
            let fresh = head.failures == 0
                && u64::from(secs(now).saturating_sub(head.seen)) * 1_000_000_000
                    < self.config.fresh_for.as_nanos();
            let ping = match bucket.pinging {
                Some(_) => None,
                None if fresh => None,
                None => {
                    bucket.pinging = Some(head.contact);
                    Some(head.contact)
                }
            };
            return Observed::BucketFull { ping };
        }
        if !self.fits_subnet_limits(&contact, d) {
            return Observed::SubnetLimit;
        }
        let bucket = &mut self.buckets[d];
        if bucket.entries.len() == bucket.entries.capacity() {
            // Grow by doubling but never past k: most buckets stay small or stop at k.
            let more = bucket.entries.len().max(2).min(k - bucket.entries.len());
            bucket.entries.reserve_exact(more);
        }
        bucket.entries.push(Entry {
            contact,
            failures: 0,
            seen: secs(now),
        });
        bucket.replacements.retain(|c| c != &contact);
        bucket.last_touched = now;
        self.len += 1;
        self.count_subnet(&contact, true);
        Observed::Inserted
    }

    /// A request to `contact` failed (timed out, undeliverable, answered badly). See
    /// [`Failure`].
    pub fn failed(&mut self, contact: &C) -> Failure<C> {
        let Some(d) = depth(&self.local, &contact.key()) else {
            return Failure::Unknown;
        };
        let max = self.config.max_failures;
        let Some(bucket) = self.buckets.get_mut(d) else {
            return Failure::Unknown;
        };
        let Some(pos) = bucket.entries.iter().position(|e| &e.contact == contact) else {
            return Failure::Unknown;
        };
        let entry = &mut bucket.entries[pos];
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures < max && bucket.pinging.as_ref() != Some(contact) {
            return Failure::Counted;
        }
        let replaced_by = self.evict(d, pos);
        Failure::Removed { replaced_by }
    }

    /// Drops `contact`, promoting a replacement. Returns whether it was held.
    pub fn remove(&mut self, contact: &C) -> bool {
        let Some(d) = depth(&self.local, &contact.key()) else {
            return false;
        };
        let Some(pos) = self
            .buckets
            .get(d)
            .and_then(|b| b.entries.iter().position(|e| &e.contact == contact))
        else {
            return false;
        };
        self.evict(d, pos);
        true
    }

    /// Removes entry `pos` of bucket `d` and promotes the newest replacement that fits the
    /// subnet limits.
    fn evict(&mut self, d: usize, pos: usize) -> Option<C> {
        // When a replacement was last heard from is not recorded: it counts as never, so it is
        // pinged before a newcomer may take its place.
        let seen = 0;
        let bucket = &mut self.buckets[d];
        let gone = bucket.entries.remove(pos).contact;
        if bucket.pinging == Some(gone) {
            bucket.pinging = None;
        }
        self.len -= 1;
        self.count_subnet(&gone, false);
        let mut i = self.buckets[d].replacements.len();
        while i > 0 {
            i -= 1;
            let candidate = self.buckets[d].replacements[i];
            if self.fits_subnet_limits(&candidate, d) {
                let bucket = &mut self.buckets[d];
                bucket.replacements.remove(i);
                bucket.entries.push(Entry {
                    contact: candidate,
                    failures: 0,
                    seen,
                });
                self.len += 1;
                self.count_subnet(&candidate, true);
                return Some(candidate);
            }
        }
        None
    }

    /// Fills `out` with up to `count` contacts nearest to `target`, nearest first. Contacts with
    /// recent failures are included: they are dropped after `max_failures`, and a lookup copes
    /// with a few silent ones anyway.
    ///
    /// Buckets are visited in distance order, so only those needed are touched (and only their
    /// contacts' keys computed). Let `x = local ^ target` and `t` its leading zeros. Contacts of
    /// bucket depth `t` agree with the target on bit `t`: they are the nearest. A contact at
    /// depth `i < t` differs from the target first at bit `i`, so shallower is farther. A contact
    /// at depth `i > t` differs first at bit `t`, like every other such contact; between two of
    /// them, at depths `i < j`, the one at `i` flips bit `i` of `x` and the other keeps it, so it
    /// is nearer exactly when bit `i` of `x` is set. Hence the order: depth `t`; then depths
    /// `i > t` with bit `i` of `x` set, shallow to deep; then those with the bit clear, deep to
    /// shallow; then depths `t - 1` down to 0.
    pub fn closest(&self, target: &Key, count: usize, out: &mut Vec<C>) {
        out.clear();
        if count == 0 {
            return;
        }
        let x = self.local.distance(target);
        let x = x.as_bytes();
        let bit = |i: usize| x[i / 8] & (0x80 >> (i % 8)) != 0;
        let t = self.local.distance(target).leading_zeros() as usize;
        let n = self.buckets.len();
        let deeper = (t + 1).min(n)..n;
        let order = (t < n)
            .then_some(t)
            .into_iter()
            .chain(deeper.clone().filter(|&i| bit(i)))
            .chain(deeper.rev().filter(|&i| !bit(i)))
            .chain((0..t.min(n)).rev());
        let mut scratch: Vec<(Distance, C)> = Vec::with_capacity(self.config.k);
        for d in order {
            if out.len() >= count {
                break;
            }
            let entries = &self.buckets[d].entries;
            scratch.clear();
            scratch.extend(
                entries
                    .iter()
                    .map(|e| (e.contact.key().distance(target), e.contact)),
            );
            scratch.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let room = count - out.len();
            out.extend(scratch.iter().take(room).map(|(_, c)| *c));
        }
    }

    /// Marks bucket `index` as used now (a lookup for a key in it ran), so it is not refreshed.
    pub fn touch_bucket(&mut self, now: Instant, index: u8) {
        if let Some(b) = self.buckets.get_mut(255 - usize::from(index)) {
            b.last_touched = now;
        }
    }

    /// Buckets idle for longer than `idle`, from the farthest down to the one holding our
    /// nearest contact (nearer buckets are empty in any network and need no refresh).
    pub fn stale_buckets(&self, now: Instant, idle: Duration) -> impl Iterator<Item = u8> + '_ {
        let deepest = self.buckets.iter().rposition(|b| !b.entries.is_empty());
        self.buckets
            .iter()
            .enumerate()
            .take(deepest.map_or(0, |d| d + 1))
            .filter(move |(_, b)| b.last_touched + idle <= now)
            .map(|(d, _)| (255 - d) as u8)
    }

    /// A uniformly random key in bucket `index`: its distance to us has its highest set bit at
    /// `index`.
    pub fn random_key_in_bucket(&self, index: u8, rng: &mut impl Rng) -> Key {
        let lz = 255 - usize::from(index);
        let mut bytes: [u8; 32] = rng.random();
        let local = self.local.as_bytes();
        for (i, byte) in bytes.iter_mut().enumerate() {
            for bit in 0..8 {
                let p = i * 8 + bit;
                let mask = 0x80u8 >> bit;
                let want = if p < lz {
                    Some(local[i] & mask)
                } else if p == lz {
                    Some(!local[i] & mask)
                } else {
                    None
                };
                if let Some(v) = want {
                    *byte = (*byte & !mask) | v;
                }
            }
        }
        Key::from_bytes(bytes)
    }

    /// Bytes this table occupies, inline and on the heap, by capacity.
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of::<Self>()
            + self.buckets.capacity() * core::mem::size_of::<Bucket<C>>()
            + self
                .buckets
                .iter()
                .map(|b| {
                    b.entries.capacity() * core::mem::size_of::<Entry<C>>()
                        + b.replacements.capacity() * core::mem::size_of::<C>()
                })
                .sum::<usize>()
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
