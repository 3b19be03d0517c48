//! One bucket of the routing table (its length, replacement cache and stamps) and what the
//! table keeps beside each contact. The contacts themselves live in the table's slots; the
//! [module docs](super) explain the layout.

use crate::dht::Contact;
use crate::time::Instant;

/// What the table keeps about a held contact besides the contact itself.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Meta {
    /// Failed requests since it was last heard from.
    pub(super) failures: u8,
    /// When it was last heard from, in whole seconds of the caller's clock; 0 if unknown
    /// (a promoted replacement).
    pub(super) seen: u32,
}

pub(super) fn secs(t: Instant) -> u32 {
    u32::try_from(t.as_nanos() / 1_000_000_000).unwrap_or(u32::MAX)
}

#[derive(Clone, Debug)]
pub(super) struct Bucket<C> {
    /// Contacts held, in the table's slots for this bucket (see
    /// [`RoutingTable`](super::RoutingTable)).
    pub(super) len: u32,
    /// Newest last. Empty (and unallocated) until the bucket first fills.
    pub(super) replacements: Vec<C>,
    /// Last insertion, refresh or lookup in this bucket's range.
    pub(super) last_touched: Instant,
    /// The head (least recently seen) has been handed out for a ping-before-evict that has not been reported yet.
    /// Only the head is ever pinged, and the head changes only by leaving or being refreshed,
    /// both of which clear this, so a flag is enough.
    pub(super) pinging: bool,
}

impl<C: Contact> Bucket<C> {
    pub(super) fn new(now: Instant) -> Self {
        Bucket {
            len: 0,
            replacements: Vec::new(),
            last_touched: now,
            pinging: false,
        }
    }

    /// Puts `contact` at the newest end of the replacement cache, dropping the oldest if full.
    pub(super) fn remember(&mut self, contact: C, cap: usize) {
        if cap == 0 {
            return;
        }
        self.forget(&contact);
        if self.replacements.len() >= cap {
            self.replacements.remove(0);
        }
        reserve_capped(&mut self.replacements, cap);
        self.replacements.push(contact);
    }

    /// Drops `contact` from the replacement cache, if there.
    pub(super) fn forget(&mut self, contact: &C) {
        if let Some(i) = self.replacements.iter().position(|c| c == contact) {
            self.replacements.remove(i);
        }
    }
}

/// Makes room for one more element, doubling the capacity but never past `cap`.
fn reserve_capped<T>(v: &mut Vec<T>, cap: usize) {
    if v.len() == v.capacity() {
        let more = v.len().max(2).min(cap.saturating_sub(v.len())).max(1);
        v.reserve_exact(more);
    }
}
