//! The gossip state machine: membership below, topics and neighbours, commands, dispatch and
//! timers. The broadcast tree is in `plumtree.rs`, repair in `anti_entropy.rs`.

use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::Bytes;
use rand::Rng;
use smallvec::SmallVec;

use super::config::{GossipConfig, GossipConfigError};
use super::event::{AcceptAll, GossipError, GossipEvent, MessageValidator, Misbehaviour};
use super::history::History;
use super::membership::{Membership, MembershipOutput};
use super::message::{GossipMessage, MessageId, Payload, TopicId};
use crate::machine::{Machine, Output};
use crate::rate::TokenBucket;
use crate::rng::{derive_seed, seeded, MachineRng};
use crate::time::{Duration, Instant};

/// What gossip asks its driver to do.
pub type GossipOutput<C> = Output<C, GossipMessage<C>, GossipEvent<C>>;

/// How new messages are spread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BroadcastMode {
    /// Plumtree: push along a tree, announce to the other neighbours, repair by graft.
    Plumtree,
    /// Plain push gossip: every new message goes to `fanout` random active neighbours (the
    /// baseline Plumtree is measured against).
    Push {
        /// Neighbours each new message is pushed to.
        fanout: usize,
    },
}

/// Counters for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// Payload copies received (first and duplicate).
    pub payloads_received: u64,
    /// Of those, copies of messages already seen.
    pub duplicates: u64,
    /// Payload copies sent.
    pub payloads_sent: u64,
    /// Announcement, graft and prune messages sent.
    pub tree_control_sent: u64,
    /// Anti-entropy messages sent (digests, id lists, pulls).
    pub repair_control_sent: u64,
    /// Messages delivered to the application.
    pub delivered: u64,
    /// Messages delivered that anti-entropy fetched.
    pub repaired: u64,
    /// Grafts sent because an announced message did not arrive in time.
    pub grafts: u64,
    /// Inputs dropped: over a rate limit, from a non-neighbour, or malformed.
    pub dropped: u64,
}

/// An active neighbour, as the broadcast layer sees it.
#[derive(Debug)]
pub(crate) struct Neighbor<C> {
    pub peer: C,
    /// Its subscriptions (sorted), as it last told us.
    pub topics: SmallVec<[TopicId; 4]>,
    /// Local topic slots where it is a lazy (announce-only) peer; the others shared with it are
    /// eager.
    pub lazy: u64,
    pub rate: TokenBucket,
    pub charges: u16,
}

/// A message announced to us that we have not received.
#[derive(Debug)]
pub(crate) struct Missing<C> {
    pub topic: TopicId,
    /// Announcers not grafted from yet, first come first.
    pub announcers: SmallVec<[C; 4]>,
    pub deadline: Instant,
}

/// A gossip node: HyParView membership, Plumtree broadcast per topic, and anti-entropy. See
/// the [module docs](super).
pub struct Gossip<C> {
    pub(crate) config: GossipConfig,
    pub(crate) mode: BroadcastMode,
    pub(crate) membership: Membership<C>,
    /// Subscribed topics by slot (a slot's bit in the neighbours' masks).
    pub(crate) slots: Vec<Option<TopicId>>,
    pub(crate) neighbors: Vec<Neighbor<C>>,
    pub(crate) history: History,
    pub(crate) missing: HashMap<MessageId, Missing<C>>,
    /// Subscriptions announced by peers not (yet) in the active view: a new neighbour's
    /// `Topics` can overtake the membership message that makes it a neighbour here.
    pub(crate) early_topics: SmallVec<[(C, SmallVec<[TopicId; 4]>); 2]>,
    pub(crate) missing_timers: BTreeSet<(Instant, MessageId)>,
    /// Peers we pulled from, with how many payloads each may still send and until when.
    pub(crate) pulls: SmallVec<[(C, u32, Instant); 2]>,
    pub(crate) validator: Box<dyn MessageValidator + Send>,
    pub(crate) publish_rate: TokenBucket,
    pub(crate) serve_rate: TokenBucket,
    pub(crate) rng: MachineRng,
    pub(crate) next_anti_entropy: Instant,
    pub(crate) outputs: VecDeque<GossipOutput<C>>,
    pub(crate) stats: GossipStats,
}

impl<C: Copy + Eq + core::hash::Hash + core::fmt::Debug> Gossip<C> {
    /// A gossip node known to others as `local`. `seed` drives every random choice.
    pub fn new(
        config: GossipConfig,
        mode: BroadcastMode,
        local: C,
        seed: u64,
        now: Instant,
    ) -> Result<Self, GossipConfigError> {
        config.validate()?;
        let membership = Membership::new(config.membership, local, derive_seed(seed, 1), now)
            .map_err(GossipConfigError::Membership)?;
        let mut rng = seeded(derive_seed(seed, 2));
        let first_exchange = jitter(&mut rng, config.anti_entropy_interval);
        Ok(Gossip {
            mode,
            membership,
            slots: Vec::new(),
            neighbors: Vec::new(),
            history: History::new(
                config.history,
                config.bucket,
                config.settle,
                config.max_history,
                config.max_history_bytes,
            ),
            missing: HashMap::new(),
            early_topics: SmallVec::new(),
            missing_timers: BTreeSet::new(),
            pulls: SmallVec::new(),
            validator: Box::new(AcceptAll),
            publish_rate: TokenBucket::new(
                config.publish_rate.per_sec,
                config.publish_rate.burst,
                now,
            ),
            serve_rate: TokenBucket::new(config.serve_rate.per_sec, config.serve_rate.burst, now),
            rng,
            next_anti_entropy: now + first_exchange,
            outputs: VecDeque::new(),
            stats: GossipStats::default(),
            config,
        })
    }

    /// Replaces the message validator (the default accepts everything).
    pub fn set_validator(&mut self, validator: Box<dyn MessageValidator + Send>) {
        self.validator = validator;
    }

    /// Enters the overlay through `contact`.
    pub fn join(&mut self, now: Instant, contact: C) {
        self.membership.join(now, contact);
        self.pump_membership(now);
    }

    /// The driver or failure detector says `peer` is gone (connection lost, keep-alive timed
    /// out): the overlay repairs around it.
    pub fn peer_failed(&mut self, now: Instant, peer: C) {
        self.membership.peer_failed(now, peer);
        self.pump_membership(now);
    }

    /// Subscribes to `topic`: its messages are delivered here and relayed through here.
    pub fn subscribe(&mut self, topic: TopicId) -> Result<(), GossipError> {
        if self.slot(topic).is_some() {
            return Ok(());
        }
        let free = self.slots.iter().position(Option::is_none);
        let slot = match free {
            Some(i) => i,
            None if self.slots.len() < self.config.max_topics => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => {
                return Err(GossipError::TooManyTopics {
                    max: self.config.max_topics,
                })
            }
        };
        self.slots[slot] = Some(topic);
        // Neighbours sharing it start eager, as Plumtree's initial tree is the whole overlay.
        for n in &mut self.neighbors {
            n.lazy &= !(1 << slot);
        }
        self.announce_topics();
        Ok(())
    }

    /// Unsubscribes from `topic`.
    pub fn unsubscribe(&mut self, topic: TopicId) {
        if let Some(slot) = self.slot(topic) {
            self.slots[slot] = None;
            self.announce_topics();
        }
    }

    /// The topics subscribed to.
    pub fn topics(&self) -> impl Iterator<Item = TopicId> + '_ {
        self.slots.iter().flatten().copied()
    }

    /// Publishes `data` on `topic` at `now`; returns its id. The publisher does not receive its
    /// own message as an event.
    pub fn publish(
        &mut self,
        now: Instant,
        topic: TopicId,
        data: Bytes,
    ) -> Result<MessageId, GossipError> {
        if self.slot(topic).is_none() {
            return Err(GossipError::NotSubscribed(topic));
        }
        if data.len() > self.config.max_data_len {
            return Err(GossipError::TooLarge {
                len: data.len(),
                max: self.config.max_data_len,
            });
        }
        let payload = Payload {
            topic,
            published_ms: now.as_nanos() / 1_000_000,
            hops: 0,
            data,
        };
        let id = payload.id();
        if self.history.contains(&id) {
            return Err(GossipError::Duplicate(id));
        }
        if self.validator.validate(topic, &payload.data) != super::Validation::Accept {
            return Err(GossipError::Invalid);
        }
        if !self.publish_rate.try_take(now, 1) {
            return Err(GossipError::RateLimited);
        }
        self.history
            .insert(id, &payload, super::history::Fate::Delivered);
        self.spread(id, &payload, None);
        Ok(id)
    }

    /// The active view.
    pub fn active(&self) -> &[C] {
        self.membership.active()
    }

    /// The passive view.
    pub fn passive(&self) -> &[C] {
        self.membership.passive()
    }

    /// The membership layer (views and its counters).
    pub fn membership(&self) -> &Membership<C> {
        &self.membership
    }

    /// Counters since construction.
    pub fn stats(&self) -> GossipStats {
        self.stats
    }

    /// Whether this node remembers message `id` (delivered, published or dropped).
    pub fn has_seen(&self, id: &MessageId) -> bool {
        self.history.contains(id)
    }

    /// Messages remembered.
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    /// Whether `peer` is an eager (tree) neighbour for `topic`.
    pub fn is_eager(&self, peer: &C, topic: TopicId) -> bool {
        let Some(slot) = self.slot(topic) else {
            return false;
        };
        self.neighbors
            .iter()
            .find(|n| n.peer == *peer)
            .is_some_and(|n| n.topics.contains(&topic) && n.lazy & (1 << slot) == 0)
    }

    /// Approximate bytes of state: views, neighbours, history and repair bookkeeping.
    pub fn memory_bytes(&self) -> usize {
        use core::mem::size_of;
        size_of::<Self>()
            + (self.membership.active().len() + self.membership.passive().len()) * size_of::<C>()
            + self.neighbors.capacity() * size_of::<Neighbor<C>>()
            + self.history.len() * (size_of::<super::history::Entry>() + 3 * 40)
            + self.history.payload_bytes()
            + self.missing.len() * (size_of::<Missing<C>>() + 40)
    }

    pub(crate) fn slot(&self, topic: TopicId) -> Option<usize> {
        self.slots.iter().position(|s| *s == Some(topic))
    }

    pub(crate) fn neighbor_mut(&mut self, peer: &C) -> Option<&mut Neighbor<C>> {
        self.neighbors.iter_mut().find(|n| n.peer == *peer)
    }

    pub(crate) fn send(&mut self, to: C, msg: GossipMessage<C>) {
        self.outputs.push_back(Output::Send { to, msg });
    }

    pub(crate) fn emit(&mut self, event: GossipEvent<C>) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Charges `peer` for misbehaving; drops it from the overlay at `reject_limit`.
    pub(crate) fn charge(&mut self, now: Instant, peer: C, reason: Misbehaviour) {
        self.emit(GossipEvent::Misbehaved { peer, reason });
        let limit = self.config.reject_limit;
        let Some(n) = self.neighbor_mut(&peer) else {
            return;
        };
        n.charges = n.charges.saturating_add(1);
        if n.charges >= limit {
            self.membership.peer_failed(now, peer);
            self.pump_membership(now);
        }
    }

    fn announce_topics(&mut self) {
        let mut topics: Vec<TopicId> = self.topics().collect();
        topics.sort_unstable();
        let peers: SmallVec<[C; 8]> = self.neighbors.iter().map(|n| n.peer).collect();
        for peer in peers {
            let topics = topics.clone();
            self.send(peer, GossipMessage::Topics { topics });
        }
    }

    /// Moves membership outputs into ours, keeping the neighbour list in step with the active
    /// view.
    pub(crate) fn pump_membership(&mut self, now: Instant) {
        while let Some(out) = self.membership.poll_output() {
            match out {
                MembershipOutput::Send { to, msg } => self.send(to, msg),
                MembershipOutput::NeighborUp(peer) => {
                    if self.neighbors.iter().all(|n| n.peer != peer) {
                        let rate = self.config.peer_rate;
                        let early = self.early_topics.iter().position(|(p, _)| *p == peer);
                        let topics = early
                            .map(|i| self.early_topics.remove(i).1)
                            .unwrap_or_default();
                        self.neighbors.push(Neighbor {
                            peer,
                            topics,
                            lazy: 0,
                            rate: TokenBucket::new(rate.per_sec, rate.burst, now),
                            charges: 0,
                        });
                    }
                    let mut topics: Vec<TopicId> = self.topics().collect();
                    topics.sort_unstable();
                    self.send(peer, GossipMessage::Topics { topics });
                    self.emit(GossipEvent::NeighborUp(peer));
                }
                MembershipOutput::NeighborDown(peer) => {
                    self.neighbors.retain(|n| n.peer != peer);
                    for m in self.missing.values_mut() {
                        m.announcers.retain(|a| *a != peer);
                    }
                    self.emit(GossipEvent::NeighborDown(peer));
                }
            }
        }
    }

    fn on_topics(&mut self, from: C, mut topics: Vec<TopicId>) {
        topics.sort_unstable();
        topics.dedup();
        topics.truncate(super::MAX_TOPICS);
        let topics: SmallVec<[TopicId; 4]> = topics.into_iter().collect();
        match self.neighbor_mut(&from) {
            Some(n) => n.topics = topics,
            None => {
                // Kept for a little while: the few peers whose membership answer is on its way.
                self.early_topics.retain(|(p, _)| *p != from);
                if self.early_topics.len() >= EARLY_TOPICS {
                    self.early_topics.remove(0);
                }
                self.early_topics.push((from, topics));
            }
        }
    }
}

/// Peers whose early `Topics` are kept (see `Gossip::early_topics`).
const EARLY_TOPICS: usize = 4;

/// `mean` jittered by ±25%.
pub(crate) fn jitter(rng: &mut MachineRng, mean: Duration) -> Duration {
    let quarter = mean.as_nanos() / 4;
    Duration::from_nanos(mean.as_nanos() - quarter + rng.random_range(0..=2 * quarter))
}

impl<C: Copy + Eq + core::hash::Hash + core::fmt::Debug> Machine for Gossip<C> {
    type Peer = C;
    type Message = GossipMessage<C>;
    type Event = GossipEvent<C>;

    fn handle_message(&mut self, now: Instant, from: C, msg: GossipMessage<C>) {
        if from == self.membership.local() {
            // Only a confused driver or a forged sender produces this; answering would loop.
            self.stats.dropped += 1;
            return;
        }
        if msg.is_membership() {
            self.membership.handle_message(now, from, msg);
            self.pump_membership(now);
            return;
        }
        match msg {
            GossipMessage::Topics { topics } => self.on_topics(from, topics),
            GossipMessage::Gossip(payload) => self.on_payload(now, from, *payload),
            GossipMessage::IHave { topic, entries } => self.on_ihave(now, from, topic, &entries),
            GossipMessage::Graft { topic, ids } => self.on_graft(now, from, topic, &ids),
            GossipMessage::Prune { topic } => self.on_prune(from, topic),
            GossipMessage::Digest {
                topic,
                first_bucket,
                buckets,
            } => self.on_digest(now, from, topic, first_bucket, &buckets),
            GossipMessage::BucketIds {
                topic,
                bucket,
                ids,
                want_reply,
            } => self.on_bucket_ids(now, from, topic, bucket, &ids, want_reply),
            GossipMessage::Pull { topic, ids } => self.on_pull(now, from, topic, &ids),
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.membership.handle_timeout(now);
        self.pump_membership(now);
        self.history.expire(now);
        self.missing_timeouts(now);
        self.pulls
            .retain(|(_, left, until)| *left > 0 && *until > now);
        if now >= self.next_anti_entropy {
            self.next_anti_entropy = now + jitter(&mut self.rng, self.config.anti_entropy_interval);
            self.start_exchange(now);
        }
    }

    fn poll_output(&mut self) -> Option<GossipOutput<C>> {
        let out = self.outputs.pop_front();
        if self.outputs.is_empty() && self.outputs.capacity() > 64 {
            self.outputs.shrink_to(16);
        }
        out
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [
            self.membership.poll_timeout(),
            self.missing_timers.iter().next().map(|&(at, _)| at),
            self.history.next_expiry(),
            Some(self.next_anti_entropy),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
