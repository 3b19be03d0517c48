//! The node as host of the Kademlia DHT: DHT frames in, DHT requests out over the node's
//! connections, dialling contacts that are not connected yet.
//!
//! The DHT names peers by [`NodeContact`]: identity plus the address the peer listens on. The
//! node knows that address for connections it dialled (the dialled address) and for accepted
//! connections whose peer announced a listen port in the handshake (the connection's IP with
//! that port). DHT frames from a peer with no known listen address are dropped: answering is
//! possible, but the DHT would then hand out an address nobody can dial.
//!
//! A request to a contact without a connection waits (bounded) while the node dials the
//! contact's address; it is sent when the peer connects, and reported unreachable to the DHT if
//! the dial fails, so the lookup moves on without waiting for the request timeout. When the
//! first outbound connection is established and the routing table is empty, the DHT
//! bootstraps through that peer: `starling node --bootstrap ADDR` joins the DHT with no more
//! than the address.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::machine::Node;
use super::output::{ConnId, Direction, NodeEvent, NodeOutput};
use crate::dht::{Dht, DhtMessage, NodeContact};
use crate::id::PeerId;
use crate::machine::{Machine, Output};
use crate::time::Instant;
use crate::wire::{decode_message, message_to_frame, Frame, Limits};

/// Requests waiting for a connection. Past it the oldest is dropped and its addressee reported
/// unreachable: a lookup asks at most α·paths contacts at once, so this only fills when many
/// lookups run against unreachable contacts.
const MAX_WAITING: usize = 256;

/// The DHT and the requests it sent to contacts that are not connected yet.
pub(super) struct HostedDht {
    pub(super) dht: Dht<NodeContact>,
    waiting: VecDeque<(NodeContact, Frame)>,
    /// Whether a join (bootstrap lookup) has been started. Not "is the table empty": peers that
    /// dial us and query us fill the table before our own first dial connects, and a node that
    /// waited for an empty table would then never join (it was a 1-in-6 failure of the 16-node
    /// loopback cluster).
    joined: bool,
}

impl HostedDht {
    pub(super) fn new(dht: Dht<NodeContact>) -> Self {
        HostedDht {
            dht,
            waiting: VecDeque::new(),
            joined: false,
        }
    }
}

impl core::fmt::Debug for HostedDht {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HostedDht")
            .field("contacts", &self.dht.table().len())
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl Node {
    /// The hosted DHT, if [`super::NodeConfig::dht`] enabled one.
    pub fn dht(&self) -> Option<&Dht<NodeContact>> {
        self.dht.as_ref().map(|h| &h.dht)
    }

    /// Runs a command on the hosted DHT (`find_node`, `get`, `put`, `bootstrap`…) and routes
    /// what it sends. `None` if the node hosts no DHT. Results arrive as [`NodeEvent::Dht`].
    pub fn with_dht<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut Dht<NodeContact>, Instant) -> R,
    ) -> Option<R> {
        let r = f(&mut self.dht.as_mut()?.dht, now);
        self.route_dht(now);
        Some(r)
    }

    /// The DHT contact of the peer on `conn`: its identity and listen address.
    fn contact_of(&self, conn: ConnId) -> Option<NodeContact> {
        let c = self.conns.get(conn)?;
        Some(NodeContact {
            peer: c.peer()?,
            addr: c.listen?,
        })
    }

    /// A DHT frame arrived on `conn` (established).
    pub(super) fn dht_frame(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        let Some(from) = self.contact_of(conn) else {
            self.stats.dht_frames_dropped += 1;
            return;
        };
        let Some(hosted) = self.dht.as_mut() else {
            return;
        };
        match decode_message::<DhtMessage<NodeContact>>(frame, &Limits::DEFAULT) {
            Ok(msg) => hosted.dht.handle_message(now, from, msg),
            Err(_) => {
                self.stats.dht_frames_dropped += 1;
                return;
            }
        }
        self.route_dht(now);
    }

    /// Moves the DHT's outputs to the node's: sends on connections, dials for contacts not
    /// connected, events for the application.
    pub(super) fn route_dht(&mut self, now: Instant) {
        // Reporting a contact unreachable can make the DHT send elsewhere; bound the rounds.
        for _ in 0..4 {
            let mut unreachable: Vec<NodeContact> = Vec::new();
            while let Some(out) = self.dht.as_mut().and_then(|h| h.dht.poll_output()) {
                match out {
                    Output::Event(e) => self.event(NodeEvent::Dht(e)),
                    Output::Send { to, msg } => {
                        let frame = message_to_frame(&msg);
                        if !self.send_dht(now, to, frame) {
                            unreachable.push(to);
                        }
                    }
                }
            }
            if unreachable.is_empty() {
                return;
            }
            let Some(hosted) = self.dht.as_mut() else {
                return;
            };
            for contact in unreachable {
                hosted.dht.handle_unreachable(now, contact);
            }
        }
    }

    /// Sends `frame` to `to` now, or queues it and dials. False if it cannot be sent at all.
    fn send_dht(&mut self, now: Instant, to: NodeContact, frame: Frame) -> bool {
        if let Some(conn) = self.conns.active(to.peer) {
            let paused = self.conns.get(conn).is_some_and(|c| c.paused);
            if paused {
                return false;
            }
            if let Some(c) = self.conns.get_mut(conn) {
                super::machine::touch(&mut c.state, now);
            }
            self.stats.frames_out += 1;
            self.outputs.push_back(NodeOutput::Send { conn, frame });
            return true;
        }
        if self
            .add_address(now, to.addr, Some(to.peer), false)
            .is_err()
        {
            return false;
        }
        let Some(hosted) = self.dht.as_mut() else {
            return false;
        };
        if hosted.waiting.len() >= MAX_WAITING {
            if let Some((dropped, _)) = hosted.waiting.pop_front() {
                hosted.dht.handle_unreachable(now, dropped);
            }
        }
        hosted.waiting.push_back((to, frame));
        true
    }

    /// `peer` is connected (on `conn`): send what waited for it, and bootstrap the DHT through
    /// the first peer we dialled (again, if the table has emptied since).
    pub(super) fn dht_connected(&mut self, now: Instant, peer: PeerId, conn: ConnId) {
        let Some(hosted) = self.dht.as_mut() else {
            return;
        };
        let mut ready = Vec::new();
        hosted.waiting.retain(|(to, frame)| {
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
        let join = |h: &HostedDht| !h.joined || h.dht.table().is_empty();
        if outbound && self.dht.as_deref().is_some_and(join) {
            if let Some(contact) = self.contact_of(conn) {
                if let Some(hosted) = self.dht.as_mut() {
                    // Cannot fail for lack of contacts: the seed goes in first. A refusal for
                    // too many lookups only delays the join to the next connection.
                    hosted.joined |= hosted.dht.bootstrap(now, &[contact]).is_ok();
                }
            }
        }
        self.route_dht(now);
    }

    /// A dial of `addr` failed: requests waiting for a peer there will not be sent.
    pub(super) fn dht_dial_failed(&mut self, now: Instant, addr: SocketAddr) {
        let Some(hosted) = self.dht.as_mut() else {
            return;
        };
        let mut failed: Vec<NodeContact> = Vec::new();
        hosted.waiting.retain(|(to, _)| {
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
        for contact in failed {
            hosted.dht.handle_unreachable(now, contact);
        }
        self.route_dht(now);
    }
}
