//! Anti-entropy: periodic pairwise repair of what the broadcast tree missed.
//!
//! Every `anti_entropy_interval` (jittered) a node picks a partner — a random active neighbour,
//! or half the time a random passive peer, so that two halves of an overlay split by a
//! partition meet again after it heals — and sends, per topic, one digest per settled time
//! bucket: the count and XOR of the ids of the messages it delivered that were published in
//! that bucket. The partner compares with its own digests; for each bucket that differs it sends
//! the bucket's ids (asking for the initiator's in return), and each side pulls the ids it
//! lacks. Pulled messages are delivered and forwarded like any other.
//!
//! ## Cost
//! A digest covers the history window in fixed-width buckets, so it is a constant size
//! (`history / bucket` entries of 20 bytes per topic) whatever the traffic. Ids are exchanged
//! only for the buckets that differ, and payloads only for the ids missing, so the cost beyond
//! the digest grows with the difference between the two sets — times the number of messages
//! in a differing bucket — and not with the history. Choose `bucket` so that a bucket holds a
//! few dozen messages at the expected rate. (A set-reconciliation sketch such as an IBLT would
//! remove that last factor; buckets were chosen for their simplicity and exactness.)
//!
//! ## Time
//! Buckets are numbered by publish time, so all nodes agree on a message's bucket. This assumes
//! the gossip clocks of the nodes agree to within `max_skew` (hosts pass a wall-clock-based
//! `Instant`); messages published outside `[now - history, now + max_skew]` are refused. Only
//! settled buckets are compared: those wholly inside the window, ending at least a bucket ago,
//! so that messages still travelling through the tree are not pulled twice.

use rand::seq::IndexedRandom;
use rand::Rng;

use super::machine::Gossip;
use super::message::{BucketDigest, GossipMessage, MessageId, TopicId};
use super::{MAX_DIGEST_BUCKETS, MAX_IDS_PER_MESSAGE};
use crate::time::{Duration, Instant};

/// Most differing buckets answered per digest: bounds the work one digest can cause.
const MAX_BUCKETS_PER_EXCHANGE: usize = 16;

/// How long a peer we pulled from may take to send the payloads.
const PULL_GRANT: Duration = Duration::from_secs(10);

impl<C: Copy + Eq + core::hash::Hash + core::fmt::Debug> Gossip<C> {
    /// Starts one exchange: digests of every topic to a random partner.
    pub(crate) fn start_exchange(&mut self, now: Instant) {
        let active = self.membership.active();
        let passive = self.membership.passive();
        let use_passive = !passive.is_empty() && (active.is_empty() || self.rng.random_bool(0.5));
        let pool = if use_passive { passive } else { active };
        let Some(&partner) = pool.choose(&mut self.rng) else {
            return;
        };
        let range = self.history.settled_buckets(now);
        if range.is_empty() {
            return;
        }
        let first = range
            .end
            .saturating_sub(MAX_DIGEST_BUCKETS as u64)
            .max(range.start);
        let topics: Vec<TopicId> = self.topics().collect();
        for topic in topics {
            let buckets = self.history.digests(topic, first..range.end);
            self.stats.repair_control_sent += 1;
            self.send(
                partner,
                GossipMessage::Digest {
                    topic,
                    first_bucket: first,
                    buckets,
                },
            );
        }
    }

    /// A partner's digests: send our ids for every settled bucket that differs.
    pub(crate) fn on_digest(
        &mut self,
        now: Instant,
        from: C,
        topic: TopicId,
        first_bucket: u64,
        buckets: &[BucketDigest],
    ) {
        if self.slot(topic).is_none() {
            return;
        }
        let settled = self.history.settled_buckets(now);
        let theirs_end = first_bucket.saturating_add(buckets.len().min(MAX_DIGEST_BUCKETS) as u64);
        let start = settled.start.max(first_bucket);
        let end = settled.end.min(theirs_end);
        if start >= end {
            return;
        }
        let ours = self.history.digests(topic, start..end);
        let mut differing = 0;
        for (i, mine) in ours.iter().enumerate() {
            let bucket = start + i as u64;
            let theirs = &buckets[(bucket - first_bucket) as usize];
            if mine == theirs {
                continue;
            }
            differing += 1;
            if differing > MAX_BUCKETS_PER_EXCHANGE {
                break;
            }
            let ids: Vec<MessageId> = self
                .history
                .ids_in(topic, bucket)
                .take(MAX_IDS_PER_MESSAGE)
                .collect();
            self.stats.repair_control_sent += 1;
            self.send(
                from,
                GossipMessage::BucketIds {
                    topic,
                    bucket,
                    ids,
                    want_reply: true,
                },
            );
        }
    }

    /// A partner's ids for a bucket that differs: pull what we lack, and answer with ours if
    /// asked.
    pub(crate) fn on_bucket_ids(
        &mut self,
        now: Instant,
        from: C,
        topic: TopicId,
        bucket: u64,
        ids: &[MessageId],
        want_reply: bool,
    ) {
        if self.slot(topic).is_none() || !self.history.settled_buckets(now).contains(&bucket) {
            return;
        }
        let missing: Vec<MessageId> = ids
            .iter()
            .take(MAX_IDS_PER_MESSAGE)
            .filter(|id| !self.history.contains(id))
            .take(self.config.max_pull)
            .copied()
            .collect();
        if want_reply {
            let ours: Vec<MessageId> = self
                .history
                .ids_in(topic, bucket)
                .take(MAX_IDS_PER_MESSAGE)
                .collect();
            self.stats.repair_control_sent += 1;
            self.send(
                from,
                GossipMessage::BucketIds {
                    topic,
                    bucket,
                    ids: ours,
                    want_reply: false,
                },
            );
        }
        if missing.is_empty() {
            return;
        }
        self.grant_pull(now, from, missing.len() as u32);
        self.stats.repair_control_sent += 1;
        self.send(
            from,
            GossipMessage::Pull {
                topic,
                ids: missing,
            },
        );
    }

    /// A partner asks for payloads.
    pub(crate) fn on_pull(&mut self, now: Instant, from: C, topic: TopicId, ids: &[MessageId]) {
        if self.slot(topic).is_some() {
            self.send_payloads(now, from, topic, ids);
        }
    }

    fn grant_pull(&mut self, now: Instant, from: C, count: u32) {
        let until = now + PULL_GRANT;
        match self.pulls.iter_mut().find(|(p, _, _)| *p == from) {
            Some(grant) => {
                grant.1 = grant.1.saturating_add(count);
                grant.2 = until;
            }
            None => self.pulls.push((from, count, until)),
        }
    }

    /// Whether a payload from `from` was asked for (and uses up one of its grant).
    pub(crate) fn take_pull_grant(&mut self, from: &C) -> bool {
        match self
            .pulls
            .iter_mut()
            .find(|(p, left, _)| p == from && *left > 0)
        {
            Some(grant) => {
                grant.1 -= 1;
                true
            }
            None => false,
        }
    }
}
