//! [`NodeHost`]: a real [`Node`], with whatever protocols it hosts, as a simulated machine.
//!
//! The simulator runs machines that talk in typed messages between [`NodeId`]s; a node talks in
//! frames on connections it dials and accepts. `NodeHost` is the adapter between the two, the
//! simulator's counterpart of the mio and QUIC adapters: a dial becomes a `Hello` to the node at
//! that address, frames and closes cross the virtual link tagged with the receiver's connection
//! id, and the node's outputs and timers are the machine's. So a simulation drives the shipped
//! node, its peer manager and its protocol table, and any protocol hosted by it, with the
//! simulator's latency, partitions and crashes, in replayable virtual time.
//!
//! Sessions are left out (no handshake cryptography, no framing): a connection is established
//! one link latency after its dial, with the identity the dialled node claims. Run the
//! simulation with [`NetworkConfig::ordered`](crate::NetworkConfig::ordered) links, as a
//! connection is a byte stream that neither loses nor reorders frames.
//!
//! Node `i` listens at [`NodeHost::addr_of`]`(i)`, one IPv6 /48 per node so that the DHT's
//! per-subnet limits treat nodes as strangers, and proves the identity
//! `Identity::from_test_seed(i)`.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use starling_core::id::PeerId;
use starling_core::identity::Identity;
use starling_core::machine::{Machine, Output};
use starling_core::node::{ConnId, Node, NodeEvent, NodeOutput};
use starling_core::session::{CloseCause, CloseCode};
use starling_core::time::Instant;
use starling_core::wire::Frame;

use crate::NodeId;

/// The port every simulated node listens on.
const PORT: u16 = 7000;
/// Node events kept for the test to take; past it the oldest go (counted).
const MAX_EVENTS: usize = 4096;

/// What crosses a virtual link between two node hosts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LinkMessage {
    /// Opens a connection: the dialler's connection id, identity and listen port.
    Hello {
        /// The dialler's id for the connection.
        conn: ConnId,
        /// Who dials.
        peer: PeerId,
    },
    /// Accepts a `Hello`: the dialler's id for the connection, and the acceptor's.
    Accept {
        /// The dialler's id.
        conn: ConnId,
        /// The acceptor's id.
        back: ConnId,
        /// Who accepted.
        peer: PeerId,
    },
    /// A frame for the receiver's connection `conn`.
    Frame {
        /// The receiver's id for the connection.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
    /// The sender closed the receiver's connection `conn` (or refused its `Hello`).
    Close {
        /// The receiver's id for the connection.
        conn: ConnId,
        /// Why.
        code: CloseCode,
    },
}

/// One end of a connection: the node at the other end and its id for the connection (unknown
/// until a dial is accepted).
#[derive(Clone, Copy, Debug)]
struct Link {
    remote: NodeId,
    remote_conn: Option<ConnId>,
    /// The address the dial went to (outbound only), for a refusal.
    dialled: Option<SocketAddr>,
}

/// A [`Node`] as a machine of the simulator (see the [module docs](self)).
pub struct NodeHost {
    id: NodeId,
    node: Node,
    links: HashMap<ConnId, Link>,
    next_conn: ConnId,
    out: VecDeque<Output<NodeId, LinkMessage, core::convert::Infallible>>,
    events: VecDeque<NodeEvent>,
    events_dropped: u64,
    /// The time of the last input, for outputs the node queued outside an input (when built).
    now: Instant,
}

impl NodeHost {
    /// Hosts `node` as simulated node `id`; the node's identity should be
    /// [`NodeHost::identity_of`]`(id)` so that dialled nodes prove who they are expected to be.
    pub fn new(id: NodeId, node: Node) -> Self {
        NodeHost {
            id,
            node,
            links: HashMap::new(),
            next_conn: 1,
            out: VecDeque::new(),
            events: VecDeque::new(),
            events_dropped: 0,
            now: Instant::ZERO,
        }
    }

    /// The identity simulated node `id` proves.
    pub fn identity_of(id: NodeId) -> Identity {
        Identity::from_test_seed(u64::from(id))
    }

    /// The address simulated node `id` listens at.
    pub fn addr_of(id: NodeId) -> SocketAddr {
        let ip = Ipv6Addr::new(0xfd00, (id >> 16) as u16, id as u16, 0, 0, 0, 0, 1);
        SocketAddr::new(IpAddr::V6(ip), PORT)
    }

    /// The simulated node at `addr`, if it is one's listen address.
    pub fn node_at(addr: SocketAddr) -> Option<NodeId> {
        let IpAddr::V6(ip) = addr.ip() else {
            return None;
        };
        let s = ip.segments();
        let id = (u32::from(s[1]) << 16) | u32::from(s[2]);
        (Self::addr_of(id) == addr).then_some(id)
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Runs `f` on the node (a command such as `add_address`, or a hosted protocol's through
    /// [`Node::with_protocol`]); the simulator routes what it produced when `f` returns.
    pub fn with_node<R>(&mut self, now: Instant, f: impl FnOnce(&mut Node, Instant) -> R) -> R {
        let r = f(&mut self.node, now);
        self.drain(now);
        r
    }

    /// Takes the node events since the last call (at most the last 4096; see
    /// [`NodeHost::events_dropped`]).
    pub fn take_events(&mut self) -> Vec<NodeEvent> {
        self.events.drain(..).collect()
    }

    /// Node events dropped because nobody took them.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    fn send(&mut self, to: NodeId, msg: LinkMessage) {
        self.out.push_back(Output::Send { to, msg });
    }

    /// Carries out the node's outputs: dials, sends, closes; keeps its events.
    fn drain(&mut self, now: Instant) {
        self.now = now;
        while let Some(output) = self.node.poll_output() {
            match output {
                NodeOutput::Dial { addr, .. } => self.dial(now, addr),
                NodeOutput::Send { conn, frame } => {
                    if let Some(Link {
                        remote,
                        remote_conn: Some(rc),
                        ..
                    }) = self.links.get(&conn).copied()
                    {
                        self.send(remote, LinkMessage::Frame { conn: rc, frame });
                    }
                }
                NodeOutput::Close { conn, code } => {
                    if let Some(link) = self.links.remove(&conn) {
                        if let Some(rc) = link.remote_conn {
                            self.send(link.remote, LinkMessage::Close { conn: rc, code });
                        }
                    }
                }
                NodeOutput::Event(event) => {
                    if self.events.len() >= MAX_EVENTS {
                        self.events.pop_front();
                        self.events_dropped += 1;
                    }
                    self.events.push_back(event);
                }
            }
        }
    }

    fn dial(&mut self, now: Instant, addr: SocketAddr) {
        let Some(remote) = Self::node_at(addr).filter(|&r| r != self.id) else {
            self.node
                .handle_dial_failed(now, addr, "no simulated node listens there");
            return;
        };
        let conn = self.take_conn();
        self.links.insert(
            conn,
            Link {
                remote,
                remote_conn: None,
                dialled: Some(addr),
            },
        );
        self.node.handle_dialed(now, addr, conn);
        let peer = self.node.local();
        self.send(remote, LinkMessage::Hello { conn, peer });
    }

    fn take_conn(&mut self) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        conn
    }
}

impl Machine for NodeHost {
    type Peer = NodeId;
    type Message = LinkMessage;
    type Event = core::convert::Infallible;

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: LinkMessage) {
        match msg {
            LinkMessage::Hello { conn: theirs, peer } => {
                let conn = self.take_conn();
                // The dialler's ephemeral port: its address, another port.
                let addr = SocketAddr::new(Self::addr_of(from).ip(), 40_000);
                if !self.node.handle_incoming(now, conn, addr) {
                    let code = CloseCode::Normal;
                    self.send(from, LinkMessage::Close { conn: theirs, code });
                } else {
                    let link = Link {
                        remote: from,
                        remote_conn: Some(theirs),
                        dialled: None,
                    };
                    self.links.insert(conn, link);
                    let local = self.node.local();
                    let accept = LinkMessage::Accept {
                        conn: theirs,
                        back: conn,
                        peer: local,
                    };
                    self.send(from, accept);
                    self.node.handle_established(now, conn, peer, Some(PORT));
                }
            }
            LinkMessage::Accept { conn, back, peer } => match self.links.get_mut(&conn) {
                Some(link) if link.remote == from && link.remote_conn.is_none() => {
                    link.remote_conn = Some(back);
                    self.node.handle_established(now, conn, peer, None);
                }
                // We gave up on the dial meanwhile: close their end.
                _ => {
                    let code = CloseCode::Normal;
                    self.send(from, LinkMessage::Close { conn: back, code });
                }
            },
            LinkMessage::Frame { conn, frame } => {
                if self.links.get(&conn).is_some_and(|l| l.remote == from) {
                    self.node.handle_frame(now, conn, frame);
                }
            }
            LinkMessage::Close { conn, code } => {
                if let Some(link) = self.links.remove(&conn).filter(|l| l.remote == from) {
                    match (link.remote_conn, link.dialled) {
                        // Refused before it was accepted.
                        (None, Some(addr)) => {
                            self.node
                                .handle_dial_failed(now, addr, "refused by the node");
                        }
                        _ => {
                            let cause = CloseCause::Peer {
                                code,
                                detail: String::new(),
                            };
                            self.node.handle_closed(now, conn, cause);
                        }
                    }
                }
            }
        }
        self.drain(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.node.handle_timeout(now);
        self.drain(now);
    }

    fn poll_output(&mut self) -> Option<Output<NodeId, LinkMessage, core::convert::Infallible>> {
        if self.out.is_empty() {
            // What the node queued before the simulation first asked (its bootstrap dials).
            self.drain(self.now);
        }
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.node.poll_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_nodes_and_nothing_else() {
        for id in [0, 1, 255, 65_535, 65_536, 1_000_000, u32::MAX] {
            assert_eq!(NodeHost::node_at(NodeHost::addr_of(id)), Some(id));
        }
        let other_port = SocketAddr::new(NodeHost::addr_of(3).ip(), 1);
        assert_eq!(NodeHost::node_at(other_port), None);
        assert_eq!(NodeHost::node_at("127.0.0.1:7000".parse().unwrap()), None);
    }
}
