//! Keeping the active view full and symmetric (HyParView §4, neighbor requests): `Neighbor`
//! requests to passive peers one at a time, their answers, and `Disconnect`.

use super::sampling::pick;
use super::{bump, Membership};
use crate::gossip::message::GossipMessage;
use crate::time::Instant;

impl<C: Copy + Eq + core::hash::Hash + core::fmt::Debug> Membership<C> {
    pub(super) fn on_neighbor(&mut self, from: C, high_priority: bool) {
        let accepted = self.active.contains(&from)
            || ((high_priority || self.active.len() < self.config.active_size)
                && self.add_active(from));
        self.send(from, GossipMessage::NeighborReply { accepted });
    }

    pub(super) fn on_neighbor_reply(&mut self, now: Instant, from: C, accepted: bool) {
        let solicited = matches!(self.pending, Some((p, _)) if p == from);
        if solicited {
            self.pending = None;
        }
        let is_active = self.active.contains(&from);
        if accepted {
            if !is_active {
                if solicited && self.active.len() < self.config.active_size {
                    self.add_active(from);
                    bump(&mut self.stats.repairs);
                } else {
                    // Late (after the timeout), unsolicited, or no room any more: the peer took
                    // us in, so undo its side of the link.
                    self.send(from, GossipMessage::Disconnect);
                }
            }
        } else {
            if solicited {
                bump(&mut self.stats.neighbor_refused);
            }
            if is_active {
                // The peer says it does not hold us: drop our half of the link.
                self.remove_active(from);
                self.add_passive(from);
                self.send(from, GossipMessage::Disconnect);
            }
        }
        self.repair(now);
    }

    pub(super) fn on_disconnect(&mut self, now: Instant, from: C) {
        if self.remove_active(from) {
            self.add_passive(from);
            self.repair(now);
        }
    }

    /// Asks the next untried passive peer to become a neighbor, unless a request is in flight
    /// or the active view is full.
    pub(super) fn repair(&mut self, now: Instant) {
        if self.active.len() >= self.config.active_size {
            if !self.tried.is_empty() {
                self.tried = Vec::new();
            }
            return;
        }
        if self.pending.is_some() || !self.has_room(1) {
            return;
        }
        let tried = &self.tried;
        let Some(peer) = pick(&mut self.rng, &self.passive, |p| !tried.contains(p)) else {
            return; // exhausted: the next shuffle tick starts a new round
        };
        let passive = &self.passive;
        self.tried.retain(|t| passive.contains(t));
        self.tried.push(peer);
        let high_priority = self.active.is_empty();
        self.pending = Some((peer, now + self.config.neighbor_timeout));
        bump(&mut self.stats.neighbor_requests);
        self.send(peer, GossipMessage::Neighbor { high_priority });
    }
}
