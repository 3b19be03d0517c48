//! Drives a `Node` with an arbitrary sequence of adapter events and application commands, on
//! random connection ids and addresses (known or not, repeated, after close), and checks what it
//! promises: no panic, limits held, at most one connection per peer, connect/disconnect events
//! alternating per peer, outputs bounded by the work of one input. The node hosts the DHT, gossip
//! and a failure detector, so arbitrary frames of their ids go through the protocol table.
#![no_main]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use starling_core::detector::{DetectorConfig, FailureDetector};
use starling_core::dht::{Dht, DhtConfig};
use starling_core::gossip::{Gossip, GossipConfig};
use starling_core::node::{Node, NodeConfig, NodeEvent, NodeOutput};
use starling_core::session::{CloseCause, CloseCode};
use starling_core::time::{Duration, Instant};
use starling_core::wire::{Frame, ProtocolId};
use starling_core::PeerId;

#[derive(Arbitrary, Debug)]
enum Input {
    Incoming {
        conn: u8,
        addr: u8,
    },
    Dialed {
        addr: u8,
        conn: u8,
    },
    DialFailed {
        addr: u8,
    },
    Established {
        conn: u8,
        peer: u8,
    },
    Frame {
        conn: u8,
        protocol: u8,
        msg_type: u8,
        body: Vec<u8>,
    },
    Closed {
        conn: u8,
        local: bool,
    },
    Backpressure {
        conn: u8,
        paused: bool,
    },
    Advance {
        millis: u16,
    },
    AddAddress {
        addr: u8,
        peer: Option<u8>,
        persistent: bool,
    },
    Send {
        peer: u8,
    },
    Broadcast,
    Disconnect {
        peer: u8,
    },
}

fn peer(n: u8) -> PeerId {
    PeerId::from_bytes([n % 8; 32])
}

fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n % 4], 4000 + u16::from(n % 5)))
}

fuzz_target!(|inputs: Vec<Input>| {
    let config = NodeConfig {
        max_inbound: 3,
        max_outbound: 2,
        max_per_ip: 2,
        idle_timeout: Duration::from_secs(30),
        handshake_timeout: Duration::from_secs(5),
        max_dial_attempts: NonZeroU32::new(2).unwrap(),
        max_known_addresses: 6,
        protocols: vec![ProtocolId::RAFT],
        ..NodeConfig::default()
    };
    let mut node = Node::new(config.clone(), peer(0), 7, Instant::ZERO);
    let dht = Dht::new(DhtConfig::default(), *peer(0).key(), 1, Instant::ZERO).unwrap();
    node.host(Instant::ZERO, dht).unwrap();
    let gossip = Gossip::hosted(GossipConfig::default(), peer(0), 2, Instant::ZERO).unwrap();
    node.host(Instant::ZERO, gossip).unwrap();
    let detector = FailureDetector::new(DetectorConfig::default(), 3, Instant::ZERO);
    node.host(Instant::ZERO, detector).unwrap();
    let mut now = Instant::ZERO;
    let mut connected: BTreeMap<PeerId, bool> = BTreeMap::new();
    for input in inputs {
        match input {
            Input::Incoming { conn, addr: a } => {
                let _ = node.handle_incoming(now, u64::from(conn), addr(a));
            }
            Input::Dialed { addr: a, conn } => node.handle_dialed(now, addr(a), u64::from(conn)),
            Input::DialFailed { addr: a } => node.handle_dial_failed(now, addr(a), "fuzz"),
            Input::Established { conn, peer: p } => {
                node.handle_established(now, u64::from(conn), peer(p), None)
            }
            Input::Frame {
                conn,
                protocol,
                msg_type,
                body,
            } => node.handle_frame(
                now,
                u64::from(conn),
                Frame::new(ProtocolId(u16::from(protocol % 6)), msg_type, body),
            ),
            Input::Closed { conn, local } => {
                let cause = if local {
                    CloseCause::Local(CloseCode::Normal)
                } else {
                    CloseCause::ConnectionLost
                };
                node.handle_closed(now, u64::from(conn), cause)
            }
            Input::Backpressure { conn, paused } => {
                node.handle_backpressure(now, u64::from(conn), paused)
            }
            Input::Advance { millis } => {
                now += Duration::from_millis(u64::from(millis) * 8);
                node.handle_timeout(now);
            }
            Input::AddAddress {
                addr: a,
                peer: p,
                persistent,
            } => {
                let _ = node.add_address(now, addr(a), p.map(peer), persistent);
            }
            Input::Send { peer: p } => {
                let _ = node.send(now, peer(p), Frame::new(ProtocolId::RAFT, 0, vec![3]));
            }
            Input::Broadcast => {
                node.broadcast(now, &Frame::new(ProtocolId::RAFT, 0, vec![4]));
            }
            Input::Disconnect { peer: p } => node.disconnect(now, peer(p)),
        }
        let mut outputs = 0;
        while let Some(out) = node.poll_output() {
            outputs += 1;
            match out {
                NodeOutput::Event(NodeEvent::PeerConnected { peer, .. }) => {
                    assert_ne!(
                        connected.insert(peer, true),
                        Some(true),
                        "connected twice: {peer:?}"
                    );
                }
                NodeOutput::Event(NodeEvent::PeerDisconnected { peer, .. }) => {
                    assert_eq!(
                        connected.insert(peer, false),
                        Some(true),
                        "disconnected while not connected"
                    );
                }
                NodeOutput::Event(NodeEvent::Frame { peer, .. }) => {
                    assert_eq!(
                        connected.get(&peer),
                        Some(&true),
                        "frame from a peer not connected"
                    );
                }
                _ => {}
            }
        }
        // One input's work: a broadcast to every peer, or a timeout's closes and dials.
        assert!(
            outputs <= 4 * (config.max_inbound + config.max_outbound) + 64,
            "{outputs} outputs"
        );
        let peers: Vec<PeerId> = node.peers().map(|p| p.peer).collect();
        let mut unique = peers.clone();
        unique.dedup();
        assert_eq!(peers.len(), unique.len(), "a peer with two connections");
        assert!(peers.len() <= config.max_inbound + config.max_outbound);
        assert!(!peers.contains(&peer(0)), "connected to itself");
        for p in &peers {
            assert_eq!(
                connected.get(p),
                Some(&true),
                "peers() and the events disagree"
            );
        }
    }
});
