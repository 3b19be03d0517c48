//! The two views' invariants, kept in one place: the active view holds at most `active_size`
//! peers (a newcomer evicts a random one), the passive view is disjoint from it and holds at
//! most `passive_size`, and neither holds the local node or duplicates.

use rand::Rng;

use super::{bump, Membership, MembershipOutput};
use crate::gossip::message::GossipMessage;

impl<C: Copy + Eq + core::hash::Hash + core::fmt::Debug> Membership<C> {
    /// Takes `peer` into the active view (out of the passive one), evicting a random active
    /// peer with `Disconnect` if full. Returns whether it was added.
    pub(super) fn add_active(&mut self, peer: C) -> bool {
        if peer == self.local || self.active.contains(&peer) {
            return false;
        }
        self.remove_passive(peer);
        if matches!(self.pending, Some((p, _)) if p == peer) {
            // Linked by another route: the request's answer is stale once it arrives (we may
            // have dropped the link again by then), so it will be treated as unsolicited.
            self.pending = None;
        }
        if self.active.len() >= self.config.active_size {
            let victim = self
                .active
                .remove(self.rng.random_range(0..self.active.len()));
            self.outputs
                .push_back(MembershipOutput::NeighborDown(victim));
            self.send(victim, GossipMessage::Disconnect);
            self.add_passive(victim);
            bump(&mut self.stats.evictions);
        }
        if self.active.capacity() == 0 {
            self.active.reserve_exact(self.config.active_size);
        }
        self.active.push(peer);
        self.outputs.push_back(MembershipOutput::NeighborUp(peer));
        true
    }

    /// Drops `peer` from the active view. Returns whether it was there.
    pub(super) fn remove_active(&mut self, peer: C) -> bool {
        match self.active.iter().position(|p| *p == peer) {
            Some(i) => {
                self.active.remove(i);
                self.outputs.push_back(MembershipOutput::NeighborDown(peer));
                true
            }
            None => false,
        }
    }

    pub(super) fn add_passive(&mut self, peer: C) {
        self.integrate(&[peer], &[]);
    }

    pub(super) fn remove_passive(&mut self, peer: C) {
        if let Some(i) = self.passive.iter().position(|p| *p == peer) {
            self.passive.swap_remove(i);
        }
    }

    /// Adds `peers` to the passive view, skipping the local node, active peers and entries
    /// already held. When full, evicts first an entry of `sent`, then a random one.
    pub(super) fn integrate(&mut self, peers: &[C], sent: &[C]) {
        for &peer in peers {
            if peer == self.local || self.active.contains(&peer) || self.passive.contains(&peer) {
                continue;
            }
            if self.passive.len() >= self.config.passive_size {
                let victim = match self.passive.iter().position(|p| sent.contains(p)) {
                    Some(i) => i,
                    None => self.rng.random_range(0..self.passive.len()),
                };
                self.passive.swap_remove(victim);
            }
            if self.passive.capacity() == 0 {
                self.passive.reserve_exact(self.config.passive_size);
            }
            self.passive.push(peer);
        }
    }
}
