//! Gossip as a protocol hosted by a [`Node`](crate::node::Node).
//!
//! Peers are [`NodeContact`]s (identity plus listen address), learned from connections. The
//! first outbound connection joins the overlay when the active view is empty, so `starling node
//! --bootstrap ADDR` joins gossip as it joins the DHT. A peer whose dial fails, or an active
//! neighbour whose connection closes, is reported failed and the views repair around it.
//!
//! A node does not know the address others reach it at, so it names itself with its peer id
//! and an unspecified address ([`Gossip::hosted`]). Whoever receives a message straight from a
//! peer vouches for that peer's address: contacts in the message naming the sender are replaced
//! by the contact the connection proves, and contacts naming ourselves are dropped.
//!
//! Gossip runs on wall-clock time ([`Protocol::WALL_CLOCK`]) so that publish times, and
//! anti-entropy's buckets, mean the same on every node.

use std::net::SocketAddr;

use super::{BroadcastMode, Gossip, GossipConfig, GossipConfigError, GossipMessage};
use crate::contact::NodeContact;
use crate::id::PeerId;
use crate::node::{Direction, Protocol};
use crate::time::Instant;

impl Gossip<NodeContact> {
    /// Plumtree gossip for a node with identity `local`, to be hosted by its
    /// [`Node`](crate::node::Node) (see the [module docs](self)).
    pub fn hosted(
        config: GossipConfig,
        local: PeerId,
        seed: u64,
        now: Instant,
    ) -> Result<Self, GossipConfigError> {
        // Our own address is whatever our neighbours see: the host vouches for it.
        let me = NodeContact {
            peer: local,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        Gossip::new(config, BroadcastMode::Plumtree, me, seed, now)
    }
}

impl Protocol for Gossip<NodeContact> {
    const NAME: &'static str = "gossip";
    const WALL_CLOCK: bool = true;
    /// Membership sends to unconnected peers only a few at a time (a neighbour request, a
    /// shuffle reply).
    const MAX_WAITING: usize = 64;

    fn peer_connected(&mut self, now: Instant, peer: NodeContact, direction: Direction) {
        if direction == Direction::Outbound && self.active().is_empty() {
            self.join(now, peer);
        }
    }

    fn peer_disconnected(&mut self, now: Instant, peer: PeerId) {
        let gone: Vec<NodeContact> = self
            .active()
            .iter()
            .filter(|c| c.peer == peer)
            .copied()
            .collect();
        for contact in gone {
            self.peer_failed(now, contact);
        }
    }

    fn peer_unreachable(&mut self, now: Instant, peer: NodeContact) {
        self.peer_failed(now, peer);
    }

    fn admit(
        &self,
        local: PeerId,
        from: NodeContact,
        msg: GossipMessage<NodeContact>,
    ) -> Option<GossipMessage<NodeContact>> {
        vouch(msg, from, local)
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
