//! The node: the per-process peer manager between sessions and protocols (DESIGN.md §3).
//!
//! An adapter keeps one [`Session`](crate::session::Session) per connection on its I/O thread
//! and hands the [`Node`] only what matters above the session: a connection was accepted or
//! dialled, established with a proven [`PeerId`](crate::id::PeerId), carried a plaintext
//! [`Frame`](crate::wire::Frame), filled its write queue, closed. The node never sees bytes or
//! sockets, only adapter-assigned [`ConnId`]s and `SocketAddr`s. In return it decides which
//! connections to accept, which addresses to dial and when, which connection serves each peer,
//! when an idle connection is closed, and which protocol a frame belongs to.
//!
//! It has the shape of every Starling machine (DESIGN.md §2): feed it with `handle_*` calls and
//! commands, then drain [`Node::poll_output`] and arm a timer at [`Node::poll_timeout`]:
//!
//! ```
//! use std::net::SocketAddr;
//! use starling_core::node::{Node, NodeConfig, NodeEvent, NodeOutput};
//! use starling_core::time::Instant;
//! use starling_core::wire::{Frame, ProtocolId};
//! use starling_core::PeerId;
//!
//! let (me, bootstrap) = (PeerId::from_bytes([1; 32]), PeerId::from_bytes([2; 32]));
//! let addr: SocketAddr = "192.0.2.7:4000".parse().unwrap();
//! let mut node = Node::new(NodeConfig::default(), me, 42, Instant::ZERO);
//! let now = Instant::ZERO;
//! node.add_address(now, addr, Some(bootstrap), true).unwrap();
//! // The adapter dials, runs the handshake, and reports back.
//! assert_eq!(node.poll_output(), Some(NodeOutput::Dial { addr, expected: Some(bootstrap) }));
//! node.handle_dialed(now, addr, 1);
//! node.handle_established(now, 1, bootstrap, None);
//! assert!(matches!(
//!     node.poll_output(),
//!     Some(NodeOutput::Event(NodeEvent::PeerConnected { peer, .. })) if peer == bootstrap
//! ));
//! // Frames of hosted protocols reach the application; sends become outputs for the adapter.
//! node.handle_frame(now, 1, Frame::new(ProtocolId::GOSSIP, 0, &b"hi"[..]));
//! assert!(matches!(node.poll_output(), Some(NodeOutput::Event(NodeEvent::Frame { .. }))));
//! node.send(now, bootstrap, Frame::new(ProtocolId::DHT, 1, &b"ping"[..])).unwrap();
//! assert!(matches!(node.poll_output(), Some(NodeOutput::Send { conn: 1, .. })));
//! // Nothing left to do until the idle deadline.
//! assert_eq!(node.poll_output(), None);
//! assert_eq!(node.poll_timeout(), Some(now + NodeConfig::default().idle_timeout));
//! ```
//!
//! ## One connection per peer
//! Two nodes that dial each other at the same moment end up with two sessions. When
//! [`Node::handle_established`] reports a peer that already has an established connection, the
//! node keeps exactly one, by a rule both ends compute alike: **keep the connection dialled by
//! the node with the smaller `PeerId`**, close the other with `CloseCode::Normal`. The swap is
//! silent: no second `PeerConnected`, no `PeerDisconnected` (only a `Backpressure` event if the
//! paused state changes), and it is counted in [`NodeStats::duplicates_closed`]. When both
//! connections were dialled by the same node (it knew two addresses of the peer) the older one
//! is kept; the two ends may then disagree and close both, and the persistent side redials.
//! Because the loser's close travels on another connection than the winner's handshake, the
//! larger peer may briefly report the peer disconnected and connected again. A connection that
//! turns out to lead to this node itself is closed, and an outbound address that did so is
//! dropped from the address book.
//!
//! ## Limits
//! - `max_inbound` and `max_per_ip` are checked by [`Node::handle_incoming`], before the
//!   handshake, so a flood of connections costs no cryptography.
//! - `max_outbound` (dials requested, handshaking and established) and `max_per_ip` are checked
//!   before a [`NodeOutput::Dial`] is emitted; a due dial that does not fit waits for a free slot
//!   (outbound limit) or is postponed by about `dial_backoff_initial` (per-IP limit).
//! - A connection or dial not established within `handshake_timeout` is given up, and an
//!   established connection with no frame either way for `idle_timeout` is closed.
//! - The address book holds at most `max_known_addresses`; the output queue holds at most one
//!   input's work when drained after every input, and data outputs (sends, deliveries) are
//!   refused past a fixed bound when it is not.
//!
//! ## Dial backoff
//! Addresses wait in a dial queue ordered by due time. A new address is due at once. After a
//! failed dial, or when the peer of a persistent address disconnects, the address is due again
//! after `min(dial_backoff_initial × 2^(attempts−1), dial_backoff_max)`, moved by up to
//! `dial_jitter_percent` either way with the node's seeded PRNG. A successful connection resets
//! the count. A persistent address whose peer is connected (through this address or any other
//! connection) waits outside the queue until the peer disconnects; a non-persistent address is
//! dropped once it connects, or after `max_dial_attempts` failures.
//!
//! ## Guarantees
//! No input sequence makes the node panic: unknown connection ids, duplicate events and events
//! after a close are ignored and counted in [`NodeStats::stale_events`]. Every
//! `PeerDisconnected` follows a `PeerConnected` for the same peer, and a peer has at most one
//! established connection. Timers are values: each connection and dial has one deadline in an
//! ordered set, idle deadlines are re-armed lazily when they fire early, so nothing needs
//! cancelling and nothing fires late.
//!
//! ## Hosted protocols
//! Frames are dispatched by protocol id. A protocol hosted with [`Node::host`] (any machine
//! implementing [`Protocol`]: the DHT, gossip, the failure detector, a replicated service, an
//! application's own) gets the frames of its ids, and the node sends its messages, dials the
//! peers it names, tells it about connections, and hands its events out as
//! [`NodeEvent::Protocol`] (`hosting.rs`). Frames of other ids listed in
//! [`NodeConfig::protocols`] reach the application as [`NodeEvent::Frame`]; the rest are dropped
//! and counted.
//!
//! ## Departures and gaps
//! - No peer scoring or banning yet: failures are counted, not held against an address.

mod address_book;
mod commands;
mod config;
mod connections;
mod hosting;
mod machine;
mod output;
mod protocol;
mod protocol_event;
mod table;
#[cfg(test)]
mod tests;

pub use config::{NodeConfig, NodeConfigError};
pub use hosting::{HostError, HostedStats};
pub use machine::Node;
pub use output::{ConnId, Direction, NodeError, NodeEvent, NodeOutput, NodeStats, PeerInfo};
pub use protocol::{HostedMessage, HostedPeer, Protocol};
pub use protocol_event::ProtocolEvent;
