//! What a protocol needs to be hosted by a [`Node`](super::Node): the [`Protocol`] trait.
//!
//! A hosted protocol is any [`Machine`] whose peers the node can name ([`HostedPeer`]), whose
//! messages travel in frames ([`HostedMessage`]) and whose events are plain values. The node
//! keeps every hosted machine in one table keyed by protocol id and does the same work for all
//! of them: it decodes their frames, sends their messages on the peer's connection (dialling the
//! peer first if it is not connected, with the message waiting in a bounded queue), tells them
//! when a peer connects, disconnects or cannot be reached, runs their timers, and hands their
//! events to the application as [`NodeEvent::Protocol`](super::NodeEvent::Protocol).
//!
//! Adding a protocol therefore means writing a machine and implementing this trait for it; no
//! line of the node, of an adapter or of the simulator changes. The DHT, gossip and the failure
//! detector implement it in their own modules (`dht/hosted.rs`, …); the echo protocol of the
//! integration tests implements it outside this crate.

use core::fmt::Debug;
use std::net::SocketAddr;

use super::output::Direction;
use crate::contact::NodeContact;
use crate::id::PeerId;
use crate::machine::Machine;
use crate::time::Instant;
use crate::wire::WireMessage;
use crate::wire::{decode_message, message_to_frame, DecodeError, Frame, Limits, ProtocolId};

/// How a hosted protocol names peers, and what the node can learn of one from a connection.
pub trait HostedPeer: Copy + Eq + Debug + Send + 'static {
    /// The peer on an established connection: its proven identity and, if known, the address it
    /// accepts connections on (the dialled address, or the announced listen port at the
    /// connection's IP). `None` if the protocol cannot name the peer without that address: its
    /// frames are then dropped and counted.
    fn on_connection(peer: PeerId, listen: Option<SocketAddr>) -> Option<Self>;
    /// The peer's identity, which picks the connection.
    fn peer_id(&self) -> PeerId;
    /// Where to dial the peer when it is not connected; `None` if the protocol only talks to
    /// connected peers (a message to an unconnected peer is then reported unreachable at once).
    fn dial_addr(&self) -> Option<SocketAddr>;
}

impl HostedPeer for PeerId {
    fn on_connection(peer: PeerId, _listen: Option<SocketAddr>) -> Option<Self> {
        Some(peer)
    }
    fn peer_id(&self) -> PeerId {
        *self
    }
    fn dial_addr(&self) -> Option<SocketAddr> {
        None
    }
}

impl HostedPeer for NodeContact {
    fn on_connection(peer: PeerId, listen: Option<SocketAddr>) -> Option<Self> {
        Some(NodeContact {
            peer,
            addr: listen?,
        })
    }
    fn peer_id(&self) -> PeerId {
        self.peer
    }
    fn dial_addr(&self) -> Option<SocketAddr> {
        Some(self.addr)
    }
}

/// A hosted protocol's message codec: the protocol ids its frames use, and the way to and from
/// a frame. Every [`WireMessage`] is one (with its single protocol id); a protocol whose
/// messages span several ids (a service with a peer protocol and a client protocol)
/// implements it by hand.
pub trait HostedMessage: Sized {
    /// The protocol ids whose frames this codec decodes. The node routes them all to the one
    /// machine; two hosted protocols may not share an id.
    const PROTOCOLS: &'static [ProtocolId];
    /// Encodes a message as a frame.
    fn to_frame(&self) -> Frame;
    /// Decodes a frame of one of [`HostedMessage::PROTOCOLS`]; never panics.
    fn from_frame(frame: Frame, limits: &Limits) -> Result<Self, DecodeError>;
}

impl<M: WireMessage> HostedMessage for M {
    const PROTOCOLS: &'static [ProtocolId] = &[M::PROTOCOL];

    fn to_frame(&self) -> Frame {
        message_to_frame(self)
    }

    fn from_frame(frame: Frame, limits: &Limits) -> Result<Self, DecodeError> {
        decode_message(frame, limits)
    }
}

/// A machine the node can host (see the [module docs](self)).
///
/// Every hook has a default that does nothing, so the smallest protocol implements only
/// [`Protocol::NAME`].
pub trait Protocol:
    Machine<
        Peer: HostedPeer,
        Message: HostedMessage,
        Event: Clone + Debug + PartialEq + Send + 'static,
    > + Send
    + 'static
{
    /// A short name for logs and statistics.
    const NAME: &'static str;
    /// Whether the machine runs on wall-clock time (the node's clock plus the offset set by
    /// [`Node::set_wall_clock`](super::Node::set_wall_clock)) rather than the node's own.
    /// Gossip does: its publish times must mean the same on every node.
    const WALL_CLOCK: bool = false;
    /// How many messages may wait for peers that are being dialled; past it the oldest is
    /// dropped and its addressee reported unreachable.
    const MAX_WAITING: usize = 64;

    /// A connection to `peer` was established (`direction` says who dialled).
    fn peer_connected(&mut self, now: Instant, peer: Self::Peer, direction: Direction) {
        let _ = (now, peer, direction);
    }

    /// The connection to `peer` closed. Given as an identity: a protocol that names peers by
    /// address finds every name it has for it.
    fn peer_disconnected(&mut self, now: Instant, peer: PeerId) {
        let _ = (now, peer);
    }

    /// A message to `peer` could not be delivered: the peer is not connected and could not be
    /// dialled, its dial failed, its write queue is full, or the waiting queue overflowed.
    fn peer_unreachable(&mut self, now: Instant, peer: Self::Peer) {
        let _ = (now, peer);
    }

    /// Looks at a message received straight from `from` before it is handled: may rewrite it
    /// (gossip vouches for the sender's address) or refuse it (`None`: dropped and counted).
    /// `local` is this node's identity.
    fn admit(&self, local: PeerId, from: Self::Peer, msg: Self::Message) -> Option<Self::Message> {
        let _ = (local, from);
        Some(msg)
    }
}
