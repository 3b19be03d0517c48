//! Shuffles (HyParView §4, passive view management): a sample of both views walks the active
//! links, the node where it stops answers with a passive sample, and both sides integrate what
//! they received.

use super::sampling::{pick, sample_into};
use super::{bump, Membership, MAX_PEER_LIST};
use crate::gossip::message::GossipMessage;

impl<C: Copy + Eq + core::hash::Hash + core::fmt::Debug> Membership<C> {
    pub(super) fn on_shuffle(&mut self, from: C, origin: C, ttl: u8, mut peers: Vec<C>) {
        if origin == self.local {
            return;
        }
        let ttl = ttl.min(self.config.active_walk);
        if peers.len() > MAX_PEER_LIST {
            peers.truncate(MAX_PEER_LIST);
            peers.shrink_to_fit();
        }
        if ttl > 0 && self.active.len() > 1 {
            if let Some(next) = pick(&mut self.rng, &self.active, |p| *p != from && *p != origin) {
                let ttl = ttl - 1;
                self.send(next, GossipMessage::Shuffle { origin, ttl, peers });
                return;
            }
        }
        let mut reply = Vec::new();
        sample_into(
            &mut self.rng,
            &self.passive,
            peers.len(),
            |p| *p != origin,
            &mut reply,
        );
        self.integrate(&peers, &reply);
        bump(&mut self.stats.shuffles_answered);
        self.send(origin, GossipMessage::ShuffleReply { peers: reply });
    }

    pub(super) fn on_shuffle_reply(&mut self, peers: &[C]) {
        if self.shuffle_sent.is_empty() {
            return;
        }
        let sent = core::mem::take(&mut self.shuffle_sent);
        self.integrate(&peers[..peers.len().min(MAX_PEER_LIST)], &sent);
    }

    pub(super) fn shuffle(&mut self) {
        let Some(target) = pick(&mut self.rng, &self.active, |_| true) else {
            return;
        };
        let mut sample =
            Vec::with_capacity(1 + self.config.shuffle_active + self.config.shuffle_passive);
        sample.push(self.local);
        let ka = self.config.shuffle_active;
        sample_into(
            &mut self.rng,
            &self.active,
            ka,
            |p| *p != target,
            &mut sample,
        );
        let kp = self.config.shuffle_passive;
        sample_into(&mut self.rng, &self.passive, kp, |_| true, &mut sample);
        self.shuffle_sent = sample.clone();
        bump(&mut self.stats.shuffles_sent);
        let msg = GossipMessage::Shuffle {
            origin: self.local,
            ttl: self.config.active_walk,
            peers: sample,
        };
        self.send(target, msg);
    }
}
