//! What the node hands out: outputs for the adapter, events for the application, peer
//! information, statistics and command errors.

use core::fmt;
use std::net::SocketAddr;

use super::protocol_event::ProtocolEvent;
use crate::id::PeerId;
use crate::session::{CloseCause, CloseCode};
use crate::time::Instant;
use crate::wire::Frame;

/// The adapter's handle for one connection. The adapter assigns them and never reuses one while
/// the node may still refer to it (a counter is enough).
pub type ConnId = u64;

/// Which side opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// The peer dialled us.
    Inbound,
    /// We dialled the peer.
    Outbound,
}

/// What the node asks its adapter to do, or tells the application. Drain with
/// [`super::Node::poll_output`] after every input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeOutput {
    /// Open a connection to `addr` and start a session as initiator. Report the outcome with
    /// [`super::Node::handle_dialed`] then [`super::Node::handle_established`], or
    /// [`super::Node::handle_dial_failed`].
    Dial {
        /// Where to connect.
        addr: SocketAddr,
        /// The identity the session must prove, if known; any other aborts the handshake.
        expected: Option<PeerId>,
    },
    /// Send `frame` on the session of `conn`.
    Send {
        /// The connection.
        conn: ConnId,
        /// The frame, already encoded by its protocol.
        frame: Frame,
    },
    /// Close the session of `conn` with `code`. The node has already forgotten `conn`: a later
    /// [`super::Node::handle_closed`] for it is ignored.
    Close {
        /// The connection.
        conn: ConnId,
        /// The reason sent to the peer.
        code: CloseCode,
    },
    /// Something the application should know.
    Event(NodeEvent),
}

/// What happened, for the application (and the protocols above the node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// A session with `peer` is established; it is now reachable with
    /// [`super::Node::send`]. Reported once per peer until the matching `PeerDisconnected`, even
    /// when the node swaps the peer's connection for a duplicate.
    PeerConnected {
        /// Who.
        peer: PeerId,
        /// The address of the connection (the peer's ephemeral port when inbound).
        addr: SocketAddr,
        /// Who dialled.
        direction: Direction,
    },
    /// The peer's connection closed; follows a `PeerConnected` for the same peer.
    PeerDisconnected {
        /// Who.
        peer: PeerId,
        /// Why. The node's own closes (idle timeout, [`super::Node::disconnect`]) are
        /// `CloseCause::Local(CloseCode::Normal)`.
        cause: CloseCause,
    },
    /// A frame of a protocol listed in [`super::NodeConfig::protocols`] arrived from `peer`.
    Frame {
        /// The sender.
        peer: PeerId,
        /// The frame, body still encoded.
        frame: Frame,
    },
    /// The adapter's write queue to `peer` filled (`paused`: sends are refused) or drained.
    Backpressure {
        /// Whose queue.
        peer: PeerId,
        /// Whether sends to the peer are now refused.
        paused: bool,
    },
    /// A dial to `addr` failed.
    DialFailed {
        /// The address dialled.
        addr: SocketAddr,
        /// Failed attempts in a row, this one included.
        attempts: u32,
        /// When the address will be dialled again; `None` when it was dropped from the address
        /// book (a non-persistent address out of attempts, or our own address).
        retry_at: Option<Instant>,
    },
    /// A hosted protocol (see [`super::Node::host`]) reports something: read it with
    /// [`ProtocolEvent::downcast_ref`] for the protocol's event type.
    Protocol(ProtocolEvent),
}

/// One established peer, as listed by [`super::Node::peers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Who.
    pub peer: PeerId,
    /// The address of the connection in use.
    pub addr: SocketAddr,
    /// Who dialled the connection in use.
    pub direction: Direction,
    /// The connection in use.
    pub conn: ConnId,
    /// Whether sends are refused because the adapter's write queue is full.
    pub paused: bool,
    /// When the peer was first connected (kept when a duplicate connection replaces the first).
    pub connected_since: Instant,
}

/// Counters and gauges, for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Inbound connections now held, handshaking or established.
    pub inbound: usize,
    /// Outbound connections now held, dials requested, handshaking or established.
    pub outbound: usize,
    /// Peers with an established connection.
    pub established: usize,
    /// Addresses in the address book.
    pub known_addresses: usize,
    /// Inbound connections refused because `max_inbound` was reached.
    pub refused_inbound: u64,
    /// Inbound connections refused because their IP address had `max_per_ip` connections.
    pub refused_per_ip: u64,
    /// Dials requested.
    pub dials: u64,
    /// Dials that failed (refused, timed out, handshake failed, wrong identity).
    pub dial_failures: u64,
    /// Due dials postponed because their IP address had `max_per_ip` connections.
    pub dials_deferred: u64,
    /// Connections closed because they were not established within `handshake_timeout`.
    pub handshake_timeouts: u64,
    /// Connections closed by the idle timeout.
    pub idle_closed: u64,
    /// Second connections to an already connected peer, closed by the duplicate rule.
    pub duplicates_closed: u64,
    /// Connections closed because the peer was this node itself.
    pub self_dials: u64,
    /// Frames received on established connections.
    pub frames_in: u64,
    /// Frames handed to the adapter to send.
    pub frames_out: u64,
    /// Frames received whose protocol is not in `protocols`.
    pub frames_dropped_unknown_protocol: u64,
    /// Frames not delivered because the output queue was full (the adapter is not draining).
    pub frames_dropped_queue_full: u64,
    /// Frames on an unknown or not yet established connection.
    pub frames_ignored: u64,
    /// Adapter events that named an unknown connection or address, or repeated an earlier one.
    pub stale_events: u64,
    /// Addresses refused because the address book was full.
    pub addresses_refused: u64,
    /// Frames of hosted protocols dropped: undecodable, refused by the protocol, or from a peer
    /// the protocol cannot name (its listen address is unknown). Per protocol in
    /// [`super::Node::hosted`].
    pub protocol_frames_dropped: u64,
}

/// Why a command was refused. The node's state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeError {
    /// No established connection to the peer; wait for `PeerConnected` or add its address.
    NotConnected,
    /// The adapter's write queue to the peer is full; wait for `Backpressure { paused: false }`.
    Paused,
    /// The output queue is full because the adapter has not drained it; drain `poll_output`.
    QueueFull,
    /// The address book holds `max` addresses and none could make room; remove one first.
    AddressBookFull {
        /// The configured bound.
        max: usize,
    },
    /// The address was given this node's own identity; a node does not dial itself.
    SelfAddress,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::NotConnected => f.write_str("peer is not connected"),
            NodeError::Paused => f.write_str("peer's write queue is full (backpressure)"),
            NodeError::QueueFull => f.write_str("output queue full; drain poll_output"),
            NodeError::AddressBookFull { max } => {
                write!(
                    f,
                    "address book already holds the maximum of {max} addresses"
                )
            }
            NodeError::SelfAddress => f.write_str("address names this node's own identity"),
        }
    }
}

impl std::error::Error for NodeError {}
