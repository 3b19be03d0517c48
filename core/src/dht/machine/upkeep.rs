//! A [`Dht`]'s upkeep: the routing table told of every contact heard from (pinging the stale
//! head of a full bucket), idle buckets refreshed, and this node's records republished until
//! they expire.

use super::lookups::Goal;
use super::outgoing::{Expect, Purpose};
use super::{secs_u32, Dht};
use crate::dht::message::{DhtMessage, Record};
use crate::dht::routing::Observed;
use crate::dht::Contact;
use crate::time::Instant;

/// A record this node published, kept to be stored again every `republish_interval`.
#[derive(Clone, Debug)]
pub(super) struct Published {
    pub(super) record: Record,
    pub(super) expires: Instant,
}

impl<C: Contact> Dht<C> {
    /// We heard from `contact`: update the table, and ping the stale head of a full bucket.
    pub(super) fn observe(&mut self, now: Instant, contact: C) {
        if let Observed::BucketFull { ping: Some(stale) } = self.table.observe(now, contact) {
            // Sent even past max_in_flight: at most one per bucket is outstanding, and an
            // unsent ping would leave the bucket waiting for an answer that never comes.
            self.stats.eviction_pings += 1;
            self.send_request(now, stale, Expect::Pong, Purpose::EvictionCheck, |id| {
                DhtMessage::Ping { id }
            });
        }
    }

    pub(super) fn refresh(&mut self, now: Instant) {
        let idle = self.config.refresh_interval;
        let stale: Vec<u8> = self.table.stale_buckets(now, idle).collect();
        // Refreshes use at most half the lookup slots, so commands still find room.
        let budget = (self.config.max_lookups / 2).saturating_sub(self.lookups.len());
        for index in stale.into_iter().take(budget) {
            let target = self.table.random_key_in_bucket(index, &mut self.rng);
            // An empty table fails here; bootstrap fixes that, not the timer.
            let _ = self.start_lookup(now, target, Goal::Refresh);
        }
    }

    pub(super) fn republish(&mut self, now: Instant) {
        self.published.retain(|_, p| p.expires > now);
        let budget = (self.config.max_lookups / 2).saturating_sub(self.lookups.len());
        let due: Vec<Record> = self
            .published
            .values()
            .take(budget)
            .map(|p| {
                let mut record = p.record.clone();
                record.ttl_secs = secs_u32(p.expires.saturating_since(now)).max(1);
                record
            })
            .collect();
        for record in due {
            let _ = self.start_lookup(now, record.key, Goal::Put(record));
        }
    }
}
