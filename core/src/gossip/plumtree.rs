//! Epidemic broadcast trees (Leitão, Pereira, Rodrigues, "Epidemic Broadcast Trees", SRDS
//! 2007), one tree per topic over the HyParView active view.
//!
//! A new message is pushed to the eager neighbours of its topic and announced (IHAVE) to the
//! lazy ones. A duplicate pushed by an eager neighbour makes it lazy (PRUNE back), so the eager
//! links settle into a spanning tree. When an announced message has not arrived within
//! `ihave_timeout`, it is grafted from the first announcer, whose link becomes eager again;
//! `graft_timeout` later the next announcer is tried. In push mode none of this happens: every
//! new message goes to `fanout` random neighbours.

use rand::seq::SliceRandom;
use smallvec::SmallVec;

use super::event::{GossipEvent, Misbehaviour, Validation};
use super::history::Fate;
use super::machine::{BroadcastMode, Gossip, Missing};
use super::message::{Announcement, GossipMessage, MessageId, Payload, TopicId};
use super::MAX_IDS_PER_MESSAGE;
use crate::time::Instant;

impl<C: Copy + Eq + core::hash::Hash + core::fmt::Debug> Gossip<C> {
    /// A payload arrived from `from` (pushed, grafted or pulled).
    pub(crate) fn on_payload(&mut self, now: Instant, from: C, payload: Payload) {
        self.stats.payloads_received += 1;
        let pulled = self.take_pull_grant(&from);
        let Some(slot) = self.slot(payload.topic) else {
            // Not charged: it may have crossed our unsubscribe.
            self.stats.dropped += 1;
            return;
        };
        let within_rate = self
            .neighbors
            .iter_mut()
            .find(|n| n.peer == from)
            .map(|n| n.rate.try_take(now, 1));
        match within_rate {
            Some(false) => return self.drop_input(now, from, Misbehaviour::Flooding, true),
            Some(true) => {}
            None if pulled => {}
            // Not a neighbour and not asked: ignore without charge (it may have just dropped us).
            None => {
                self.stats.dropped += 1;
                return;
            }
        }
        if payload.data.len() > self.config.max_data_len {
            return self.drop_input(now, from, Misbehaviour::TooLarge, false);
        }
        let skew_ms = self.config.max_skew.as_millis();
        let now_ms = now.as_nanos() / 1_000_000;
        if !self.history.in_window(now, payload.published_ms)
            || payload.published_ms > now_ms.saturating_add(skew_ms)
        {
            // Too old to be deduplicated reliably, or from the future.
            return self.drop_input(now, from, Misbehaviour::Unsolicited, true);
        }
        let id = payload.id();
        if self.history.contains(&id) {
            self.stats.duplicates += 1;
            // A second copy through the tree: this link is redundant for the topic (unless the
            // copy was one we asked for).
            if self.mode == BroadcastMode::Plumtree && !pulled {
                if let Some(n) = self.neighbors.iter_mut().find(|n| n.peer == from) {
                    if n.lazy & (1 << slot) == 0 {
                        n.lazy |= 1 << slot;
                        self.stats.tree_control_sent += 1;
                        self.send(
                            from,
                            GossipMessage::Prune {
                                topic: payload.topic,
                            },
                        );
                    }
                }
            }
            return;
        }
        self.clear_missing(&id);
        match self.validator.validate(payload.topic, &payload.data) {
            Validation::Accept => {}
            verdict => {
                self.history.insert(id, &payload, Fate::Dropped);
                if verdict == Validation::Reject {
                    self.charge(now, from, Misbehaviour::Rejected);
                }
                return;
            }
        }
        // The sender is on the tree path for this message: make sure it is eager.
        if let Some(n) = self.neighbors.iter_mut().find(|n| n.peer == from) {
            n.lazy &= !(1 << slot);
        }
        let hops = payload.hops.saturating_add(1);
        let forwarded = Payload { hops, ..payload };
        self.history.insert(id, &forwarded, Fate::Delivered);
        self.stats.delivered += 1;
        if pulled {
            self.stats.repaired += 1;
        }
        self.emit(GossipEvent::Message {
            id,
            topic: forwarded.topic,
            data: forwarded.data.clone(),
            from,
            hops,
        });
        self.spread(id, &forwarded, Some(from));
    }

    /// Sends a new message on: eager push and lazy announcements (Plumtree), or push to a
    /// random fanout.
    pub(crate) fn spread(&mut self, id: MessageId, payload: &Payload, from: Option<C>) {
        let Some(slot) = self.slot(payload.topic) else {
            return;
        };
        let topic = payload.topic;
        let mut eager: SmallVec<[C; 8]> = SmallVec::new();
        let mut lazy: SmallVec<[C; 8]> = SmallVec::new();
        for n in &self.neighbors {
            if Some(n.peer) == from || !n.topics.contains(&topic) {
                continue;
            }
            if n.lazy & (1 << slot) == 0 {
                eager.push(n.peer);
            } else {
                lazy.push(n.peer);
            }
        }
        if let BroadcastMode::Push { fanout } = self.mode {
            eager.extend(lazy.drain(..));
            eager.shuffle(&mut self.rng);
            eager.truncate(fanout);
        }
        for peer in eager {
            self.stats.payloads_sent += 1;
            self.send(peer, GossipMessage::Gossip(Box::new(payload.clone())));
        }
        let entries = vec![Announcement {
            id,
            hops: payload.hops,
        }];
        for peer in lazy {
            self.stats.tree_control_sent += 1;
            let entries = entries.clone();
            self.send(peer, GossipMessage::IHave { topic, entries });
        }
    }

    /// Announcements from a lazy neighbour: start the timer for each message we lack.
    pub(crate) fn on_ihave(
        &mut self,
        now: Instant,
        from: C,
        topic: TopicId,
        entries: &[Announcement],
    ) {
        if self.slot(topic).is_none() || self.neighbors.iter().all(|n| n.peer != from) {
            self.stats.dropped += 1;
            return;
        }
        for a in entries.iter().take(MAX_IDS_PER_MESSAGE) {
            if self.history.contains(&a.id) {
                continue;
            }
            if let Some(m) = self.missing.get_mut(&a.id) {
                if !m.announcers.contains(&from) && m.announcers.len() < 8 {
                    m.announcers.push(from);
                }
                continue;
            }
            if self.missing.len() >= self.config.max_missing {
                // Anti-entropy will fetch it if the tree does not deliver it.
                continue;
            }
            let deadline = now + self.config.ihave_timeout;
            let mut announcers = SmallVec::new();
            announcers.push(from);
            self.missing.insert(
                a.id,
                Missing {
                    topic,
                    announcers,
                    deadline,
                },
            );
            self.missing_timers.insert((deadline, a.id));
        }
    }

    /// Grafts the messages whose announcement timers ran out.
    pub(crate) fn missing_timeouts(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.missing_timers.iter().next() {
            if at > now {
                break;
            }
            self.missing_timers.remove(&(at, id));
            let Some(m) = self.missing.get_mut(&id) else {
                continue;
            };
            if m.announcers.is_empty() {
                self.missing.remove(&id);
                continue;
            }
            let peer = m.announcers.remove(0);
            let topic = m.topic;
            m.deadline = now + self.config.graft_timeout;
            let deadline = m.deadline;
            self.missing_timers.insert((deadline, id));
            if let Some(slot) = self.slot(topic) {
                if let Some(n) = self.neighbor_mut(&peer) {
                    n.lazy &= !(1 << slot);
                }
            }
            self.stats.grafts += 1;
            self.stats.tree_control_sent += 1;
            self.send(
                peer,
                GossipMessage::Graft {
                    topic,
                    ids: vec![id],
                },
            );
        }
    }

    /// A neighbour wants `ids` and our pushes on `topic`.
    pub(crate) fn on_graft(&mut self, now: Instant, from: C, topic: TopicId, ids: &[MessageId]) {
        let Some(slot) = self.slot(topic) else {
            return;
        };
        let Some(n) = self.neighbor_mut(&from) else {
            self.stats.dropped += 1;
            return;
        };
        n.lazy &= !(1 << slot);
        self.send_payloads(now, from, topic, ids);
    }

    /// A neighbour wants announcements only on `topic`.
    pub(crate) fn on_prune(&mut self, from: C, topic: TopicId) {
        let Some(slot) = self.slot(topic) else {
            return;
        };
        if let Some(n) = self.neighbor_mut(&from) {
            n.lazy |= 1 << slot;
        }
    }

    /// Sends the payloads we hold among `ids` (of `topic`) to `to`, within `serve_rate`.
    pub(crate) fn send_payloads(&mut self, now: Instant, to: C, topic: TopicId, ids: &[MessageId]) {
        for id in ids.iter().take(MAX_IDS_PER_MESSAGE) {
            if let Some(p) = self.history.payload(id) {
                if p.topic == topic {
                    if !self.serve_rate.try_take(now, 1) {
                        self.stats.dropped += 1;
                        return;
                    }
                    self.stats.payloads_sent += 1;
                    self.send(to, GossipMessage::Gossip(Box::new(p)));
                }
            }
        }
    }

    fn clear_missing(&mut self, id: &MessageId) {
        if let Some(m) = self.missing.remove(id) {
            self.missing_timers.remove(&(m.deadline, *id));
        }
    }

    /// Counts a bad input; charges the sender if it is a neighbour and `charge` is set.
    fn drop_input(&mut self, now: Instant, from: C, reason: Misbehaviour, charge: bool) {
        self.stats.dropped += 1;
        if charge {
            self.charge(now, from, reason);
        }
    }
}
