//! Sixteen nodes over QUIC on loopback: each dials the first and its predecessor; every node
//! ends up with an established connection, and frames cross the cluster.

mod support;

use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use starling_core::identity::Identity;
use starling_core::node::NodeEvent;
use starling_core::session::NodeKeys;
use starling_core::wire::{Frame, ProtocolId};
use starling_core::PeerId;
use starling_mio::ReactorConfig;
use support::{Running, Transport};

const NODES: usize = 16;
const WAIT: Duration = Duration::from_secs(30);

fn config(seed: u64, bootstrap: Vec<SocketAddr>) -> ReactorConfig {
    let keys = NodeKeys::new(Identity::from_test_seed(seed), [seed as u8; 32]);
    let mut config = ReactorConfig::new("127.0.0.1:0".parse().unwrap(), keys, "quic-cluster");
    config.bootstrap = bootstrap;
    config.node.max_per_ip = config.node.max_inbound;
    config.node.protocols = vec![ProtocolId::GOSSIP];
    config
}

/// Waits until `pick` accepts an event of node `index`, failing after WAIT.
fn wait_for(
    events: &Receiver<(usize, NodeEvent)>,
    what: &str,
    mut pick: impl FnMut(usize, &NodeEvent) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok((i, e)) if pick(i, &e) => return,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

#[test]
fn sixteen_nodes_connect_over_quic_and_frames_cross_the_cluster() {
    let (tx, events) = channel();
    let mut nodes: Vec<(PeerId, Running)> = Vec::new();
    for i in 0..NODES {
        let seed = 200 + i as u64;
        let bootstrap: Vec<SocketAddr> = match nodes.as_slice() {
            [] => vec![],
            [only] => vec![only.1.addr],
            [first, .., prev] => vec![first.1.addr, prev.1.addr],
        };
        let tx = tx.clone();
        let node = Running::start(config(seed, bootstrap), Transport::Quic, move |e| {
            if matches!(e, NodeEvent::PeerConnected { .. } | NodeEvent::Frame { .. }) {
                let _ = tx.send((i, e.clone()));
            }
        });
        nodes.push((Identity::from_test_seed(seed).peer_id(), node));
    }
    let mut connected = [false; NODES];
    wait_for(&events, "every node to connect", |i, e| {
        connected[i] |= matches!(e, NodeEvent::PeerConnected { .. });
        connected.iter().all(|c| *c)
    });
    // Node i (i ≥ 1) sends to the first node, which dialled no one: every frame crosses an
    // inbound QUIC connection.
    let (first_peer, _) = &nodes[0];
    for (i, (_, node)) in nodes.iter().enumerate().skip(1) {
        // The dialer learns of the connection last; retry until its send is accepted.
        let frame = Frame::new(ProtocolId::GOSSIP, 1, format!("from {i}").into_bytes());
        let deadline = Instant::now() + WAIT;
        while !node
            .handle
            .peers()
            .unwrap()
            .iter()
            .any(|(p, _)| p == first_peer)
        {
            assert!(
                Instant::now() < deadline,
                "node {i} never connected to the first"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        node.handle.send(*first_peer, frame).unwrap();
    }
    let mut from = [false; NODES];
    from[0] = true;
    wait_for(&events, "frames from every node", |i, e| {
        if let (0, NodeEvent::Frame { frame, .. }) = (i, e) {
            let text = String::from_utf8_lossy(&frame.body).into_owned();
            let sender: usize = text.trim_start_matches("from ").parse().unwrap();
            from[sender] = true;
        }
        from.iter().all(|f| *f)
    });
    for (_, node) in &nodes {
        node.handle.shutdown().unwrap();
    }
    for (_, node) in nodes {
        node.thread.join().unwrap().unwrap();
    }
}
