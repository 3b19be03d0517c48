//! Joining the overlay (HyParView §4, join): `Join` to a contact, which starts `ForwardJoin`
//! random walks through the active views; where a walk ends, the joiner is taken in.

use super::sampling::pick;
use super::{bump, Membership};
use crate::gossip::message::GossipMessage;

impl<C: Copy + Eq + core::hash::Hash + core::fmt::Debug> Membership<C> {
    pub(super) fn on_join(&mut self, joiner: C) {
        bump(&mut self.stats.joins_handled);
        self.add_active(joiner);
        let ttl = self.config.active_walk;
        for i in 0..self.active.len() {
            let peer = self.active[i];
            if peer != joiner {
                self.send(peer, GossipMessage::ForwardJoin { joiner, ttl });
            }
        }
    }

    pub(super) fn on_forward_join(&mut self, from: C, joiner: C, ttl: u8) {
        bump(&mut self.stats.forward_joins);
        if joiner == self.local {
            return;
        }
        let ttl = ttl.min(self.config.active_walk);
        let next = if ttl == 0 {
            None
        } else {
            pick(&mut self.rng, &self.active, |p| *p != from && *p != joiner)
        };
        match next {
            None => {
                if self.add_active(joiner) {
                    self.send(
                        joiner,
                        GossipMessage::Neighbor {
                            high_priority: true,
                        },
                    );
                }
            }
            Some(next) => {
                if ttl == self.config.passive_walk {
                    self.add_passive(joiner);
                }
                self.send(
                    next,
                    GossipMessage::ForwardJoin {
                        joiner,
                        ttl: ttl - 1,
                    },
                );
            }
        }
    }

    pub(super) fn send_join(&mut self, contact: C) {
        self.add_active(contact);
        self.send(contact, GossipMessage::Join);
    }
}
