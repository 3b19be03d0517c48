//! Node tests, on a one-node harness (the test plays the adapter) and, for the duplicate rule, a
//! two-node pair whose connections are wired to each other in memory.

use std::net::SocketAddr;

use bytes::Bytes;

mod dht_join;
mod dialling;
mod duplicates;
mod hosting;
mod limits;
mod traffic;

use super::*;
use crate::id::PeerId;
use crate::session::{CloseCause, CloseCode};
use crate::time::{Duration, Instant};
use crate::wire::{Frame, ProtocolId};

const SECOND: Duration = Duration::from_secs(1);

fn peer(n: u8) -> PeerId {
    PeerId::from_bytes([n; 32])
}

fn addr(host: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, host], port))
}

fn frame(protocol: ProtocolId) -> Frame {
    Frame::new(protocol, 1, Bytes::from_static(b"x"))
}

/// One node; the test is its adapter.
struct Harness {
    node: Node,
    now: Instant,
}

impl Harness {
    fn new(config: NodeConfig) -> Self {
        Harness {
            node: Node::new(config, peer(50), 1, Instant::ZERO),
            now: Instant::ZERO,
        }
    }

    fn drain(&mut self) -> Vec<NodeOutput> {
        std::iter::from_fn(|| self.node.poll_output()).collect()
    }

    fn events(&mut self) -> Vec<NodeEvent> {
        self.drain()
            .into_iter()
            .filter_map(|o| match o {
                NodeOutput::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn dials(&mut self) -> Vec<SocketAddr> {
        self.drain()
            .into_iter()
            .filter_map(|o| match o {
                NodeOutput::Dial { addr, .. } => Some(addr),
                _ => None,
            })
            .collect()
    }

    /// Moves time to `at` and fires the node's timers.
    fn at(&mut self, at: Instant) {
        self.now = at;
        self.node.handle_timeout(at);
    }

    /// Runs to the next deadline.
    fn next_deadline(&mut self) -> Instant {
        let at = self.node.poll_timeout().expect("a deadline");
        self.at(at);
        at
    }

    /// An inbound connection `conn` from `from`, established with `who`.
    fn accept(&mut self, conn: ConnId, from: SocketAddr, who: PeerId) {
        assert!(self.node.handle_incoming(self.now, conn, from));
        self.node.handle_established(self.now, conn, who, None);
    }

    /// The requested dial of `to` connects as `conn` and is established with `who`.
    fn connect(&mut self, to: SocketAddr, conn: ConnId, who: PeerId) {
        self.node.handle_dialed(self.now, to, conn);
        self.node.handle_established(self.now, conn, who, None);
    }
}
