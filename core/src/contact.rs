//! [`NodeContact`]: how to reach a node — its proven identity and the address it listens on.
//!
//! It sits beside [`crate::id`] rather than in a protocol because several protocols name peers
//! this way (the DHT's routing table, gossip's views) and the wire format writes it once for all
//! of them ([`crate::wire::contact`]). What a protocol derives from it (the DHT's key and
//! address group, for instance) stays with that protocol.

use std::net::SocketAddr;

use crate::id::PeerId;

/// A real node: its identity and the address it accepts connections on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct NodeContact {
    /// The node's identity; its key is the DHT position.
    pub peer: PeerId,
    /// Where it listens.
    pub addr: SocketAddr,
}
