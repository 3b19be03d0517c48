//! The Kademlia routing table (Maymounkov & Mazières 2002, §2.2 and §2.4): at most k contacts
//! per distance range, ordered by when they were last heard from, with ping-before-evict, a
//! replacement cache per bucket, and IP-diversity limits against eclipse attacks.
//!
//! ## Policy
//! - A contact we hear from (a request from it, an answer to ours) moves to the
//!   most-recently-seen (MRS) end of its bucket, and its failure count is forgotten.
//! - A newcomer to a full bucket is not let in. It waits in the bucket's replacement cache
//!   (bounded, newest kept), and the least-recently-seen (LRS) entry is handed to the caller to
//!   ping, at most one such ping per bucket at a time. If the entry answers, the caller observes
//!   it and it stays; if not, the caller reports the failure and the entry is evicted at once,
//!   the newest replacement taking its place. Long-lived contacts are thus kept over newcomers:
//!   the paper's observation is that a node up for long is likely to stay up, and a table that
//!   cannot be flushed by a burst of strangers resists flooding.
//! - The head is not pinged if it was heard from within `fresh_for` (BitTorrent's "good node"
//!   rule, BEP 5): in a busy network the paper's rule pings on nearly every message from a
//!   stranger to a full bucket (measured in `starling sim dht`: +38% requests at 5,000 nodes,
//!   for the same lookups). The newcomer still waits in the replacement cache.
//! - After `max_failures` failed requests in a row a contact is dropped the same way.
//! - Diversity (S/Kademlia): at most `max_per_subnet_bucket` contacts of one [`Subnet`] in a
//!   bucket and `max_per_subnet_table` in the table. Contacts without a subnet are exempt.
//!   Replacements are checked again when promoted, since the table may have changed meanwhile.
//!
//! ## Layout
//! The simulator holds a million tables of 4-byte contact handles, so memory per table counts.
//! A contact at distance d goes to bucket `255 - leading_zeros(d)`: half the keyspace lands in
//! bucket 255, a quarter in 254, and so on, so a node in a network of N only ever fills the
//! ~log2(N / k) + a few farthest buckets. Buckets are therefore kept in a vector indexed by
//! leading zeros and grown only as deep as the deepest one in use, not as 256 fixed slots.
//!
//! The contacts themselves are not in the buckets but in one array of `k` slots per bucket in
//! use, with the failure count and the second each was last heard from (8 bytes) in a second
//! array in step with it. A bucket is only its length, its replacement cache and two stamps.
//! In a simulated network of 10^6 nodes every message reaches a table that is cold in cache,
//! and answering a `FIND_NODE` reads the contacts of two or three buckets: from one array,
//! at `4 k` bytes a bucket, that is fewer cache lines and one pointer fewer to chase than a
//! vector of entries per bucket. Only the deepest bucket or two are ever partly full (the
//! others hold k as soon as the network has more than 2k nodes), so the fixed slots waste
//! little. Keys are recomputed from the contact when needed, never stored. Replacement caches
//! are allocated only for buckets that filled up.
//!
//! The table-wide subnet limit is checked against 64 hashed counters (allocated on the first
//! contact that has a subnet): a counter is the sum over the subnets hashed to it, so it can only
//! overcount, and the table is scanned for the exact count only when the counter says the limit
//! may be reached. That costs 128 bytes per table however many subnets it holds, where an exact
//! map would cost ~16 bytes per contact, doubling a simulator table.

use super::contact::{Contact, Subnet};
use crate::id::Key;
use crate::time::Instant;

mod bucket;
mod closest;
mod config;
mod refresh;
mod subnets;

use bucket::{secs, Bucket, Meta};
use subnets::SubnetCounts;

pub use config::{RoutingConfig, RoutingConfigError};

/// What [`RoutingTable::observe`] did with a contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed<C> {
    /// The contact is this node; tables do not hold themselves.
    IsSelf,
    /// Already held: moved to the most-recently-seen end, its failures forgotten.
    Refreshed,
    /// Added to its bucket.
    Inserted,
    /// Refused: its subnet already has as many contacts as allowed in the bucket or the table.
    SubnetLimit,
    /// Its bucket is full: it waits in the replacement cache.
    BucketFull {
        /// The least-recently-seen entry of the bucket, for the caller to ping now and report
        /// on (`observe` if it answers, `failed` if not). `None` while an earlier ping of this
        /// bucket is still outstanding.
        ping: Option<C>,
    },
}

/// What [`RoutingTable::failed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure<C> {
    /// The failure was counted; the contact stays.
    Counted,
    /// The contact was dropped.
    Removed {
        /// The replacement promoted into its place, if one fitted the subnet limits.
        replaced_by: Option<C>,
    },
    /// The contact is not in the table.
    Unknown,
}

/// The contacts a node keeps, by XOR distance from its own key (see the
/// [module docs](self)).
#[derive(Clone, Debug)]
pub struct RoutingTable<C> {
    local: Key,
    config: RoutingConfig,
    /// Indexed by the leading zeros of the distance (0 = bucket 255, the farthest half of the
    /// keyspace), as deep as the deepest bucket in use.
    buckets: Vec<Bucket<C>>,
    /// `k` slots per bucket: the contacts of depth `d`, least recently seen first, are
    /// `contacts[d * k..][..buckets[d].len]`; the slots past them hold leftovers, never read.
    contacts: Vec<C>,
    /// In step with `contacts`.
    meta: Vec<Meta>,
    /// Contacts in all buckets (replacements not counted).
    len: usize,
    /// `None` until a contact with a subnet is held.
    subnets: Option<Box<SubnetCounts>>,
}

/// The bucket depth (leading zeros of the distance) of `contact` seen from `local`; `None` for
/// `local` itself.
fn depth<C: Contact>(local: &Key, contact: &C) -> Option<usize> {
    let lz = contact.distance_to(local).leading_zeros() as usize;
    (lz < Key::BITS).then_some(lz)
}

/// The depth of bucket `index` (255 = farthest, depth 0).
fn index_depth(index: u8) -> usize {
    255 - usize::from(index)
}

impl<C: Contact> RoutingTable<C> {
    /// An empty table for the node whose key is `local`. The configuration is not checked
    /// here; see [`RoutingConfig::validate`].
    pub fn new(local: Key, config: RoutingConfig) -> Self {
        RoutingTable {
            local,
            config,
            buckets: Vec::new(),
            contacts: Vec::new(),
            meta: Vec::new(),
            len: 0,
            subnets: None,
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

    /// Whether `contact` is held (in a bucket, not merely in a replacement cache).
    pub fn contains(&self, contact: &C) -> bool {
        depth(&self.local, contact)
            .filter(|&d| d < self.buckets.len())
            .is_some_and(|d| self.position(d, contact).is_some())
    }

    /// Every contact held, farthest bucket first, least recently seen first within a bucket.
    pub fn iter(&self) -> impl Iterator<Item = &C> {
        (0..self.buckets.len()).flat_map(move |d| self.held(d))
    }

    /// Contacts in bucket `index` (255 = the farthest half of the keyspace).
    pub fn bucket_len(&self, index: u8) -> usize {
        self.buckets
            .get(index_depth(index))
            .map_or(0, |b| b.len as usize)
    }

    /// Where the slots of bucket depth `d` start.
    fn base(&self, d: usize) -> usize {
        d * self.config.k
    }

    /// The contacts held at depth `d` (which must exist), least recently seen first.
    fn held(&self, d: usize) -> &[C] {
        let base = self.base(d);
        &self.contacts[base..base + self.buckets[d].len as usize]
    }

    fn position(&self, d: usize, contact: &C) -> Option<usize> {
        self.held(d).iter().position(|c| c == contact)
    }

    fn count_subnet(&self, d: usize, subnet: Subnet, up_to: usize) -> usize {
        self.held(d)
            .iter()
            .filter(|c| c.subnet() == Some(subnet))
            .take(up_to)
            .count()
    }

    /// Takes entry `pos` of depth `d` out, shifting the later ones down a slot, and returns it.
    /// The bucket's length is the caller's to update.
    fn take_out(&mut self, d: usize, pos: usize) -> (C, Meta) {
        let base = self.base(d);
        let end = base + self.buckets[d].len as usize;
        let taken = (self.contacts[base + pos], self.meta[base + pos]);
        self.contacts[base + pos..end].rotate_left(1);
        self.meta[base + pos..end].rotate_left(1);
        taken
    }

    /// Appends at the MRS end of depth `d`, which must have room.
    fn push_entry(&mut self, d: usize, contact: C, seen: u32) {
        let at = self.base(d) + self.buckets[d].len as usize;
        self.contacts[at] = contact;
        self.meta[at] = Meta { failures: 0, seen };
        self.buckets[d].len += 1;
    }

    /// We heard from `contact`: a request from it, or its answer to ours. See [`Observed`].
    pub fn observe(&mut self, now: Instant, contact: C) -> Observed<C> {
        let Some(d) = depth(&self.local, &contact) else {
            return Observed::IsSelf;
        };
        if d < self.buckets.len() {
            if let Some(pos) = self.position(d, &contact) {
                self.take_out(d, pos);
                let last = self.base(d) + self.buckets[d].len as usize - 1;
                self.contacts[last] = contact;
                self.meta[last] = Meta {
                    failures: 0,
                    seen: secs(now),
                };
                let bucket = &mut self.buckets[d];
                bucket.last_touched = now;
                if pos == 0 {
                    // The head answered (or spoke up): any ping of it is settled.
                    bucket.pinging = false;
                }
                return Observed::Refreshed;
            }
        }
        let subnet = contact.subnet();
        if !self.fits_subnet_limits(subnet, d) {
            return Observed::SubnetLimit;
        }
        let (k, cap) = (self.config.k, self.config.replacements);
        if self.buckets.len() <= d {
            let missing = d + 1 - self.buckets.len();
            self.buckets.reserve_exact(missing);
            self.buckets.resize_with(d + 1, || Bucket::new(now));
            // Any contact fills the new slots: they are past every bucket's length.
            let slots = (d + 1) * k;
            self.contacts.reserve_exact(slots - self.contacts.len());
            self.contacts.resize(slots, contact);
            self.meta.reserve_exact(slots - self.meta.len());
            self.meta.resize(slots, Meta::default());
        }
        let fresh_for = self.config.fresh_for.as_nanos();
        if self.buckets[d].len as usize >= k {
            let head = self.base(d);
            let (head, meta) = (self.contacts[head], self.meta[head]);
            let bucket = &mut self.buckets[d];
            bucket.remember(contact, cap);
            let quiet = u64::from(secs(now).saturating_sub(meta.seen)) * 1_000_000_000;
            let ping = if bucket.pinging || (meta.failures == 0 && quiet < fresh_for) {
                None
            } else {
                bucket.pinging = true;
                Some(head)
            };
            return Observed::BucketFull { ping };
        }
        self.push_entry(d, contact, secs(now));
        let bucket = &mut self.buckets[d];
        bucket.forget(&contact);
        bucket.last_touched = now;
        self.counted(subnet);
        Observed::Inserted
    }

    /// A request to `contact` failed: it timed out, could not be sent, or was answered badly.
    /// See [`Failure`]. A contact that only waits in a replacement cache is dropped from it
    /// (it would be a poor replacement), and the answer is [`Failure::Unknown`].
    pub fn failed(&mut self, contact: &C) -> Failure<C> {
        let Some(d) = depth(&self.local, contact) else {
            return Failure::Unknown;
        };
        let max = self.config.max_failures;
        if d >= self.buckets.len() {
            return Failure::Unknown;
        }
        let Some(pos) = self.position(d, contact) else {
            self.buckets[d].forget(contact);
            self.trim();
            return Failure::Unknown;
        };
        let at = self.base(d) + pos;
        let meta = &mut self.meta[at];
        meta.failures = meta.failures.saturating_add(1);
        // A failed ping-before-evict evicts at once: a newcomer is waiting for the slot.
        let was_pinged = pos == 0 && self.buckets[d].pinging;
        if meta.failures < max && !was_pinged {
            return Failure::Counted;
        }
        let replaced_by = self.evict(d, pos);
        Failure::Removed { replaced_by }
    }

    /// Drops `contact` (from its bucket, promoting a replacement, and from the replacement
    /// cache). Returns whether it was in the bucket.
    pub fn remove(&mut self, contact: &C) -> bool {
        let Some(d) = depth(&self.local, contact) else {
            return false;
        };
        let Some(bucket) = self.buckets.get_mut(d) else {
            return false;
        };
        bucket.forget(contact);
        match self.position(d, contact) {
            Some(pos) => {
                self.evict(d, pos);
                true
            }
            None => {
                self.trim();
                false
            }
        }
    }

    /// Bytes this table occupies, inline plus heap, counted by capacity (allocator overhead
    /// not included). For reports of routing state per node.
    pub fn memory_bytes(&self) -> usize {
        use core::mem::size_of;
        let replacements: usize = self
            .buckets
            .iter()
            .map(|b| b.replacements.capacity() * size_of::<C>())
            .sum();
        size_of::<Self>()
            + self.buckets.capacity() * size_of::<Bucket<C>>()
            + self.contacts.capacity() * size_of::<C>()
            + self.meta.capacity() * size_of::<Meta>()
            + replacements
            + self
                .subnets
                .as_ref()
                .map_or(0, |_| size_of::<SubnetCounts>())
    }

    /// Removes entry `pos` of bucket depth `d`, promotes the newest replacement that fits the
    /// subnet limits to the MRS end, and returns it.
    fn evict(&mut self, d: usize, pos: usize) -> Option<C> {
        let (gone, _) = self.take_out(d, pos);
        let bucket = &mut self.buckets[d];
        bucket.len -= 1;
        if pos == 0 {
            bucket.pinging = false;
        }
        self.len -= 1;
        if let (Some(subnet), Some(counts)) = (gone.subnet(), self.subnets.as_mut()) {
            counts.remove(subnet);
        }
        let mut promoted = None;
        for i in (0..self.buckets[d].replacements.len()).rev() {
            let candidate = self.buckets[d].replacements[i];
            let subnet = candidate.subnet();
            if self.fits_subnet_limits(subnet, d) {
                self.buckets[d].replacements.remove(i);
                self.push_entry(d, candidate, 0);
                self.counted(subnet);
                promoted = Some(candidate);
                break;
            }
        }
        self.trim();
        promoted
    }

    /// Drops empty buckets at the deep end, so the vector stays as deep as the deepest bucket
    /// in use.
    fn trim(&mut self) {
        while self
            .buckets
            .last()
            .is_some_and(|b| b.len == 0 && b.replacements.is_empty())
        {
            self.buckets.pop();
        }
        let slots = self.base(self.buckets.len());
        self.contacts.truncate(slots);
        self.meta.truncate(slots);
    }
}

#[cfg(test)]
impl<C: Contact> RoutingTable<C> {
    /// The contacts of depth `d` with their failure counts, least recently seen first.
    fn entries(&self, d: usize) -> Vec<(C, u8)> {
        let base = self.base(d);
        self.held(d)
            .iter()
            .zip(&self.meta[base..])
            .map(|(c, m)| (*c, m.failures))
            .collect()
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
