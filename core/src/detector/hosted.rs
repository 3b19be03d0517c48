//! The failure detector as a protocol hosted by a [`Node`](crate::node::Node): every connected
//! peer is monitored while its connection lasts, and the detector's status changes
//! ([`DetectorEvent`](super::DetectorEvent)) reach the application as protocol events.
//!
//! A TCP session keeps its own keep-alive (a detector inside the session, on the same protocol
//! id), so a node hosts this one only where sessions do not: over QUIC, or in a simulation of
//! nodes without sessions.

use super::FailureDetector;
use crate::id::PeerId;
use crate::node::{Direction, Protocol};
use crate::time::Instant;

impl Protocol for FailureDetector<PeerId> {
    const NAME: &'static str = "heartbeat";

    fn peer_connected(&mut self, now: Instant, peer: PeerId, _direction: Direction) {
        // Full: the peer goes unmonitored (the bound is the detector's configuration).
        let _ = self.monitor(now, peer);
    }

    fn peer_disconnected(&mut self, _now: Instant, peer: PeerId) {
        self.unmonitor(peer);
    }
}
