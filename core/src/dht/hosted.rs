//! The DHT as a protocol hosted by a [`Node`](crate::node::Node).
//!
//! Peers are [`NodeContact`]s: the node names a sender by its identity and listen address, and
//! dials a contact that is not connected. On the first outbound connection the DHT joins through
//! that peer (again, should its table ever empty), so `starling node --bootstrap ADDR` joins the
//! DHT with no more than the address. A request the node cannot deliver fails at once
//! ([`Dht::handle_unreachable`]) and the lookup moves on.

use super::{Dht, NodeContact};
use crate::node::{Direction, Protocol};
use crate::time::Instant;

impl Protocol for Dht<NodeContact> {
    const NAME: &'static str = "dht";
    /// A lookup asks at most α × paths contacts at once; this fills only when many lookups run
    /// against unreachable contacts.
    const MAX_WAITING: usize = 256;

    fn peer_connected(&mut self, now: Instant, peer: NodeContact, direction: Direction) {
        if direction == Direction::Outbound && (!self.has_bootstrapped() || self.table().is_empty())
        {
            // A refusal (too many lookups running) only delays the join to the next connection.
            let _ = self.bootstrap(now, &[peer]);
        }
    }

    fn peer_unreachable(&mut self, now: Instant, peer: NodeContact) {
        self.handle_unreachable(now, peer);
    }
}
