//! The Kademlia DHT over real sockets: 50 nodes on loopback join through one bootstrap node,
//! then find each other and each other's records; over TCP and over QUIC.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use starling_core::dht::Dht;
use starling_core::dht::{DhtConfig, DhtEvent, NodeContact, Record};
use starling_core::id::{Key, PeerId};
use starling_core::identity::Identity;
use starling_core::node::NodeEvent;
use starling_core::session::NodeKeys;
use starling_mio::ReactorConfig;
use support::{Running, Transport};

const NODES: usize = 50;
const WAIT: Duration = Duration::from_secs(60);

struct DhtNode {
    peer: PeerId,
    node: Running,
}

fn config(seed: u64, bootstrap: Vec<SocketAddr>) -> ReactorConfig {
    let keys = NodeKeys::new(Identity::from_test_seed(seed), [seed as u8; 32]);
    let mut config = ReactorConfig::new("127.0.0.1:0".parse().unwrap(), keys, "dht-tests");
    config.bootstrap = bootstrap;
    // Every node shares 127.0.0.1, and a DHT node may talk to every other one.
    config.node.max_per_ip = 4 * NODES;
    config.node.max_inbound = 2 * NODES;
    config.node.max_outbound = 2 * NODES;
    config.protocols.dht(DhtConfig::default());
    config
}

/// The node's DHT event, if `e` is one.
fn dht_event(e: &NodeEvent) -> Option<&DhtEvent<NodeContact>> {
    match e {
        NodeEvent::Protocol(e) => e.downcast_ref(),
        _ => None,
    }
}

/// Runs a command on the node's DHT; it must be accepted (its result comes as an event).
fn dht<T: std::fmt::Debug, E: std::fmt::Debug + Send + 'static>(
    node: &Running,
    command: impl FnOnce(&mut Dht<NodeContact>, starling_core::time::Instant) -> Result<T, E>
        + Send
        + 'static,
) {
    node.handle
        .query_protocol::<Dht<NodeContact>, _>(move |dht, now| command(dht, now).map(|_| ()))
        .expect("the node hosts a DHT")
        .expect("the DHT accepted the command");
}

/// Starts a node whose DHT events go to `events`, tagged with its index.
fn start(
    index: usize,
    bootstrap: Vec<SocketAddr>,
    events: &std::sync::mpsc::Sender<(usize, DhtEvent<NodeContact>)>,
    transport: Transport,
) -> (DhtNode, SocketAddr) {
    let config = config(index as u64 + 1, bootstrap);
    let peer = config.keys.identity().peer_id();
    let tx = events.clone();
    let node = Running::start(config, transport, move |e| {
        if let Some(e) = dht_event(e) {
            let _ = tx.send((index, e.clone()));
        }
    });
    let addr = node.addr;
    (DhtNode { peer, node }, addr)
}

/// Collects `count` events accepted by `pick`, failing after WAIT.
fn collect<T>(
    events: &Receiver<(usize, DhtEvent<NodeContact>)>,
    count: usize,
    what: &str,
    mut pick: impl FnMut(usize, DhtEvent<NodeContact>) -> Option<T>,
) -> Vec<T> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok((i, e)) => out.extend(pick(i, e)),
            Err(RecvTimeoutError::Timeout) => {
                panic!("timed out waiting for {what}: {} of {count}", out.len())
            }
            Err(RecvTimeoutError::Disconnected) => panic!("event channel closed"),
        }
    }
    out
}

#[test]
fn fifty_nodes_join_find_each_other_and_share_records_over_tcp() {
    fifty_nodes_join_find_each_other_and_share_records(Transport::Tcp);
}

#[test]
fn fifty_nodes_join_find_each_other_and_share_records_over_quic() {
    fifty_nodes_join_find_each_other_and_share_records(Transport::Quic);
}

fn fifty_nodes_join_find_each_other_and_share_records(transport: Transport) {
    let (tx, events) = channel();
    let (first, bootstrap) = start(0, vec![], &tx, transport);
    let mut nodes = vec![first];
    for i in 1..NODES {
        nodes.push(start(i, vec![bootstrap], &tx, transport).0);
    }
    // Every node but the bootstrap node joins by itself once connected to it.
    collect(&events, NODES - 1, "joins", |_, e| {
        matches!(e, DhtEvent::Bootstrapped { .. }).then_some(())
    });

    // Each node puts a record under its own name.
    let key_of = |i: usize| Key::hash_of(format!("record-{i}").as_bytes());
    for (i, node) in nodes.iter().enumerate() {
        let record = Record {
            key: key_of(i),
            value: Bytes::from(format!("value of node {i}")),
            publisher: node.peer,
            ttl_secs: 600,
        };
        dht(&node.node, move |dht, now| dht.put(now, record));
    }
    let stored = collect(&events, NODES, "puts", |_, e| match e {
        DhtEvent::PutDone { stored, .. } => Some(stored),
        _ => None,
    });
    // k = 20 of 50 nodes take each record (some may refuse nothing: all accept).
    assert!(stored.iter().all(|&s| s >= 15), "stored counts {stored:?}");

    // Node i looks up node i+1's id, and fetches node i+7's record.
    for (i, node) in nodes.iter().enumerate() {
        let target = *nodes[(i + 1) % NODES].peer.key();
        dht(&node.node, move |dht, now| dht.find_node(now, target));
        let key = key_of((i + 7) % NODES);
        dht(&node.node, move |dht, now| dht.get(now, key));
    }
    let peers: HashMap<Key, PeerId> = nodes.iter().map(|n| (*n.peer.key(), n.peer)).collect();
    let mut found = 0;
    let mut got = 0;
    collect(&events, 2 * NODES, "lookups and gets", |i, e| match e {
        DhtEvent::LookupDone {
            target, closest, ..
        } => {
            // The closest node to a node's id is that node: it must come first.
            assert_eq!(
                closest.first().map(|c| c.peer),
                peers.get(&target).copied(),
                "node {i}'s lookup"
            );
            assert_eq!(closest.len(), 20);
            found += 1;
            Some(())
        }
        DhtEvent::GetDone { key, record, .. } => {
            let want = (i + 7) % NODES;
            assert_eq!(key, key_of(want));
            let record = record.unwrap_or_else(|| panic!("node {i} found no record"));
            assert_eq!(record.value, Bytes::from(format!("value of node {want}")));
            got += 1;
            Some(())
        }
        _ => None,
    });
    assert_eq!((found, got), (NODES, NODES));
    for node in &nodes {
        node.node.handle.shutdown().unwrap();
    }
    for node in nodes {
        node.node.thread.join().unwrap().unwrap();
    }
}
