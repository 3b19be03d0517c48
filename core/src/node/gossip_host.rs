//! The node as host of gossip: gossip frames in, gossip messages out over the node's
//! connections, dialling peers the overlay names that are not connected yet.
//!
//! Gossip names peers by [`NodeContact`] (identity plus listen address), learned as for the DHT
//! (`dht_host.rs`). A message to a peer without a connection waits (bounded) while the node
//! dials; if the dial fails, or an active neighbour's connection closes, gossip is told the peer
//! failed and repairs its view. The first outbound connection joins the overlay when the active
//! view is empty, so `starling node --bootstrap ADDR` joins gossip as it joins the DHT.
//!
//! A node does not know the address others reach it at, so it names itself with its peer id and
//! an unspecified address. Whoever receives a message straight from a peer vouches for that
//! peer's address: contacts in the message naming the sender are replaced by the contact the
//! connection proves (peer id and announced listen port at the connection's IP), and contacts
//! naming ourselves are dropped.
//!
//! Gossip's clock is the node's clock plus an offset ([`Node::set_wall_clock`]), so that
//! publish times (and anti-entropy's buckets) mean the same on every node.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::machine::Node;
use super::output::{ConnId, Direction, NodeEvent, NodeOutput};
use crate::dht::NodeContact;
use crate::gossip::{Gossip, GossipMessage};
use crate::id::PeerId;
use crate::machine::{Machine, Output};
use crate::time::{Duration, Instant};
use crate::wire::{decode_message, message_to_frame, Frame, Limits};

/// Messages waiting for a connection; past it the oldest is dropped and its addressee reported
/// failed. Membership sends to unconnected peers only a few at a time (a neighbour request, a
/// shuffle reply).
const MAX_WAITING: usize = 64;

/// Gossip, its clock offset, and the messages waiting for a connection.
pub(super) struct HostedGossip {
    pub(super) gossip: Gossip<NodeContact>,
    offset: Duration,
    waiting: VecDeque<(NodeContact, Frame)>,
}

impl HostedGossip {
    pub(super) fn new(gossip: Gossip<NodeContact>) -> Self {
        HostedGossip {
            gossip,
            offset: Duration::ZERO,
            waiting: VecDeque::new(),
        }
    }

    /// The node's time on gossip's clock.
    fn clock(&self, now: Instant) -> Instant {
        now + self.offset
    }
}

impl core::fmt::Debug for HostedGossip {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HostedGossip")
            .field("active", &self.gossip.active().len())
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl Node {
    /// The hosted gossip, if [`super::NodeConfig::gossip`] enabled it.
    pub fn gossip(&self) -> Option<&Gossip<NodeContact>> {
        self.gossip.as_ref().map(|h| &h.gossip)
    }

    /// Tells the node what the wall clock reads at `now`, as time since the UNIX epoch. Gossip
    /// stamps publish times with it; nodes whose clocks agree to within the configured skew
    /// then agree on which messages are recent. Without it gossip runs on the node's own clock
    /// (fine when all nodes share one, as in tests).
    pub fn set_wall_clock(&mut self, now: Instant, unix: Duration) {
        if let Some(h) = self.gossip.as_mut() {
            h.offset = Duration::from_nanos(unix.as_nanos().saturating_sub(now.as_nanos()));
        }
    }

    /// Runs a command on the hosted gossip (`subscribe`, `publish`…) with gossip's clock, and
    /// routes what it sends. `None` if the node hosts no gossip. Deliveries arrive as
    /// [`NodeEvent::Gossip`].
    pub fn with_gossip<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut Gossip<NodeContact>, Instant) -> R,
    ) -> Option<R> {
        let hosted = self.gossip.as_mut()?;
        let clock = hosted.clock(now);
        let r = f(&mut hosted.gossip, clock);
        self.route_gossip(now);
        Some(r)
    }

    /// The gossip contact of the peer on `conn`.
    fn gossip_contact(&self, conn: ConnId) -> Option<NodeContact> {
        let c = self.conns.get(conn)?;
        Some(NodeContact {
            peer: c.peer()?,
            addr: c.listen?,
        })
    }

    /// A gossip frame arrived on `conn` (established).
    pub(super) fn gossip_frame(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        let Some(from) = self.gossip_contact(conn) else {
            self.stats.gossip_frames_dropped += 1;
            return;
        };
        let Some(hosted) = self.gossip.as_mut() else {
            return;
        };
        let decoded = decode_message::<GossipMessage<NodeContact>>(frame, &Limits::DEFAULT);
        match decoded.ok().and_then(|msg| vouch(msg, from, self.local)) {
            Some(msg) => {
                let clock = hosted.clock(now);
                hosted.gossip.handle_message(clock, from, msg);
            }
            None => {
                self.stats.gossip_frames_dropped += 1;
                return;
            }
        }
        self.route_gossip(now);
    }

    /// Gossip's timers, on the node's clock.
    pub(super) fn gossip_timeout(&self) -> Option<Instant> {
        let h = self.gossip.as_ref()?;
        let t = h.gossip.poll_timeout()?;
        Some(Instant::from_nanos(
            t.as_nanos().saturating_sub(h.offset.as_nanos()),
        ))
    }

    /// Runs gossip's due timers.
    pub(super) fn gossip_tick(&mut self, now: Instant) {
        if self.gossip_timeout().is_some_and(|t| t <= now) {
            if let Some(h) = self.gossip.as_mut() {
                let clock = h.clock(now);
                h.gossip.handle_timeout(clock);
            }
            self.route_gossip(now);
        }
    }

    /// Moves gossip's outputs to the node's.
    pub(super) fn route_gossip(&mut self, now: Instant) {
        // Reporting a peer failed can make gossip send elsewhere; bound the rounds.
        for _ in 0..4 {
            let mut failed: Vec<NodeContact> = Vec::new();
            while let Some(out) = self.gossip.as_mut().and_then(|h| h.gossip.poll_output()) {
                match out {
                    Output::Event(e) => self.event(NodeEvent::Gossip(e)),
                    Output::Send { to, msg } => {
                        let frame = message_to_frame(&msg);
                        if !self.send_gossip(now, to, frame) {
                            failed.push(to);
                        }
                    }
                }
            }
            if failed.is_empty() {
                return;
            }
            let Some(h) = self.gossip.as_mut() else {
                return;
            };
            let clock = h.clock(now);
            for contact in failed {
                h.gossip.peer_failed(clock, contact);
            }
        }
    }

    /// Sends `frame` to `to` now, or queues it and dials. False if it cannot be sent at all.
    fn send_gossip(&mut self, now: Instant, to: NodeContact, frame: Frame) -> bool {
        if let Some(conn) = self.conns.active(to.peer) {
            if self.conns.get(conn).is_some_and(|c| c.paused) {
                return false;
            }
            if let Some(c) = self.conns.get_mut(conn) {
                super::machine::touch(&mut c.state, now);
            }
            self.stats.frames_out += 1;
            self.outputs.push_back(NodeOutput::Send { conn, frame });
            return true;
        }
        if to.peer == self.local
            || self
                .add_address(now, to.addr, Some(to.peer), false)
                .is_err()
        {
            return false;
        }
        let Some(h) = self.gossip.as_mut() else {
            return false;
        };
        if h.waiting.len() >= MAX_WAITING {
            if let Some((dropped, _)) = h.waiting.pop_front() {
                let clock = h.clock(now);
                h.gossip.peer_failed(clock, dropped);
            }
        }
        h.waiting.push_back((to, frame));
        true
    }

    /// `peer` is connected on `conn`: send what waited for it; join the overlay through the
    /// first peer we dialled if we have no neighbour yet.
    pub(super) fn gossip_connected(&mut self, now: Instant, peer: PeerId, conn: ConnId) {
        let Some(h) = self.gossip.as_mut() else {
            return;
        };
        let mut ready = Vec::new();
        h.waiting.retain(|(to, frame)| {
            if to.peer == peer {
                ready.push(frame.clone());
                false
            } else {
                true
            }
        });
        for frame in ready {
            self.stats.frames_out += 1;
            self.outputs.push_back(NodeOutput::Send { conn, frame });
        }
        let outbound = self
            .conns
            .get(conn)
            .is_some_and(|c| c.direction == Direction::Outbound);
        let lonely = self
            .gossip
            .as_ref()
            .is_some_and(|h| h.gossip.active().is_empty());
        if outbound && lonely {
            if let Some(contact) = self.gossip_contact(conn) {
                if let Some(h) = self.gossip.as_mut() {
                    let clock = h.clock(now);
                    h.gossip.join(clock, contact);
                }
            }
        }
        self.route_gossip(now);
    }

    /// `peer`'s connection closed: if it was a neighbour, gossip repairs around it.
    pub(super) fn gossip_peer_gone(&mut self, now: Instant, peer: PeerId) {
        let Some(h) = self.gossip.as_mut() else {
            return;
        };
        let gone: Vec<NodeContact> = h
            .gossip
            .active()
            .iter()
            .filter(|c| c.peer == peer)
            .copied()
            .collect();
        let clock = h.clock(now);
        for contact in gone {
            h.gossip.peer_failed(clock, contact);
        }
        self.route_gossip(now);
    }

    /// A dial of `addr` failed: messages waiting for a peer there will not be sent.
    pub(super) fn gossip_dial_failed(&mut self, now: Instant, addr: SocketAddr) {
        let Some(h) = self.gossip.as_mut() else {
            return;
        };
        let mut failed: Vec<NodeContact> = Vec::new();
        h.waiting.retain(|(to, _)| {
            if to.addr == addr {
                if !failed.contains(to) {
                    failed.push(*to);
                }
                false
            } else {
                true
            }
        });
        if failed.is_empty() {
            return;
        }
        let clock = h.clock(now);
        for contact in failed {
            h.gossip.peer_failed(clock, contact);
        }
        self.route_gossip(now);
    }
}

/// Fixes the contacts in a message received straight from `from`: the sender's own entries take
/// the address its connection proves; entries naming us (`local`) go. `None` if the message is
/// about us joining ourselves.
fn vouch(
    msg: GossipMessage<NodeContact>,
    from: NodeContact,
    local: PeerId,
) -> Option<GossipMessage<NodeContact>> {
    let fix = |c: NodeContact| if c.peer == from.peer { from } else { c };
    let fix_all = |peers: Vec<NodeContact>| -> Vec<NodeContact> {
        peers
            .into_iter()
            .filter(|c| c.peer != local)
            .map(fix)
            .collect()
    };
    Some(match msg {
        GossipMessage::ForwardJoin { joiner, ttl } => {
            if joiner.peer == local {
                return None;
            }
            GossipMessage::ForwardJoin {
                joiner: fix(joiner),
                ttl,
            }
        }
        GossipMessage::Shuffle { origin, ttl, peers } => {
            if origin.peer == local {
                return None;
            }
            GossipMessage::Shuffle {
                origin: fix(origin),
                ttl,
                peers: fix_all(peers),
            }
        }
        GossipMessage::ShuffleReply { peers } => GossipMessage::ShuffleReply {
            peers: fix_all(peers),
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(i: u8, port: u16) -> NodeContact {
        NodeContact {
            peer: PeerId::from_bytes([i; 32]),
            addr: SocketAddr::from(([10, 0, 0, i], port)),
        }
    }

    #[test]
    fn the_connection_vouches_for_the_sender_and_we_are_left_out() {
        let from = contact(1, 4000);
        let local = PeerId::from_bytes([9; 32]);
        let unvouched = NodeContact {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            ..from
        };
        let me = contact(9, 1);
        let other = contact(2, 5000);
        let msg = GossipMessage::Shuffle {
            origin: unvouched,
            ttl: 3,
            peers: vec![unvouched, me, other],
        };
        let fixed = vouch(msg, from, local).unwrap();
        assert_eq!(
            fixed,
            GossipMessage::Shuffle {
                origin: from,
                ttl: 3,
                peers: vec![from, other],
            }
        );
        let join_me = GossipMessage::ForwardJoin { joiner: me, ttl: 2 };
        assert_eq!(vouch(join_me, from, local), None);
        let relayed = GossipMessage::Shuffle {
            origin: other,
            ttl: 1,
            peers: vec![other],
        };
        assert_eq!(vouch(relayed.clone(), from, local), Some(relayed));
    }
}
