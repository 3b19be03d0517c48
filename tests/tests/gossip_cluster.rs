//! Gossip over real sockets: 32 nodes on loopback join the overlay through one bootstrap node;
//! messages published by several of them reach every node exactly once; over TCP and over
//! QUIC.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use bytes::Bytes;
use starling_core::dht::NodeContact;
use starling_core::gossip::Gossip;
use starling_core::gossip::{GossipConfig, GossipEvent, TopicId};
use starling_core::identity::Identity;
use starling_core::node::NodeEvent;
use starling_core::session::NodeKeys;
use starling_mio::ReactorConfig;
use support::{Running, Transport};

const NODES: usize = 32;
const WAIT: Duration = Duration::from_secs(60);

fn topic() -> TopicId {
    TopicId::named("cluster-test")
}

/// The node's gossip event, if `e` is one.
fn gossip_event(e: &NodeEvent) -> Option<&GossipEvent<NodeContact>> {
    match e {
        NodeEvent::Protocol(e) => e.downcast_ref(),
        _ => None,
    }
}

/// Starts node `index`; its gossip events go to `events`.
fn start(
    index: usize,
    bootstrap: Vec<SocketAddr>,
    events: &Sender<(usize, GossipEvent<NodeContact>)>,
    transport: Transport,
) -> (Running, SocketAddr) {
    let seed = index as u64 + 1;
    let keys = NodeKeys::new(Identity::from_test_seed(seed), [seed as u8; 32]);
    let mut config = ReactorConfig::new("127.0.0.1:0".parse().unwrap(), keys, "gossip-tests");
    config.bootstrap = bootstrap;
    // Every node shares 127.0.0.1.
    config.node.max_per_ip = 4 * NODES;
    config.node.max_inbound = 2 * NODES;
    config.node.max_outbound = 2 * NODES;
    config.protocols.gossip(GossipConfig::default());
    let tx = events.clone();
    let node = Running::start(config, transport, move |e| {
        if let Some(e) = gossip_event(e) {
            let _ = tx.send((index, e.clone()));
        }
    });
    node.handle
        .query_protocol::<Gossip<NodeContact>, _>(|gossip, _| gossip.subscribe(topic()))
        .expect("the node hosts gossip")
        .expect("subscribed");
    let addr = node.addr;
    (node, addr)
}

/// Active-view sizes per node, kept up to date from the events.
fn track_view(views: &mut [i32], i: usize, e: &GossipEvent<NodeContact>) {
    match e {
        GossipEvent::NeighborUp(_) => views[i] += 1,
        GossipEvent::NeighborDown(_) => views[i] -= 1,
        _ => {}
    }
}

/// Feeds events to `on` until it says it is done, failing after WAIT.
fn wait_for(
    events: &Receiver<(usize, GossipEvent<NodeContact>)>,
    what: &str,
    mut on: impl FnMut(usize, GossipEvent<NodeContact>) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        // Checked on every event too: a steady flow of events must not hide a missed deadline.
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            panic!("timed out waiting for {what}");
        };
        match events.recv_timeout(left) {
            Ok((i, e)) => {
                if on(i, e) {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => panic!("timed out waiting for {what}"),
            Err(RecvTimeoutError::Disconnected) => panic!("event channel closed"),
        }
    }
}

#[test]
fn thirty_two_nodes_deliver_every_message_exactly_once_over_tcp() {
    thirty_two_nodes_deliver_every_message_exactly_once(Transport::Tcp);
}

#[test]
fn thirty_two_nodes_deliver_every_message_exactly_once_over_quic() {
    thirty_two_nodes_deliver_every_message_exactly_once(Transport::Quic);
}

fn thirty_two_nodes_deliver_every_message_exactly_once(transport: Transport) {
    // A reactor that never finishes shutting down would hang the test run: fail it instead.
    std::thread::spawn(|| {
        std::thread::sleep(3 * WAIT);
        eprintln!(
            "gossip_cluster: still running after {:?}; aborting",
            3 * WAIT
        );
        std::process::abort();
    });
    let (tx, events) = channel();
    let (first, bootstrap) = start(0, vec![], &tx, transport);
    let mut nodes = vec![first];
    for i in 1..NODES {
        nodes.push(start(i, vec![bootstrap], &tx, transport).0);
    }
    // The overlay forms: every node has at least two neighbours.
    let mut views = vec![0i32; NODES];
    wait_for(&events, "the overlay", |i, e| {
        track_view(&mut views, i, &e);
        views.iter().all(|&v| v >= 2)
    });
    assert!(views.iter().all(|&v| v <= 6), "active views {views:?}");

    // Four publishers, two messages each.
    let publishers = [0, 7, 19, 31];
    let mut expected: HashMap<Bytes, usize> = HashMap::new();
    for round in 0..2 {
        for &p in &publishers {
            let data = Bytes::from(format!("message {round} from node {p}"));
            expected.insert(data.clone(), p);
            nodes[p]
                .handle
                .query_protocol::<Gossip<NodeContact>, _>(move |gossip, now| {
                    gossip.publish(now, topic(), data).map(|_| ())
                })
                .expect("the node hosts gossip")
                .expect("published");
        }
    }
    // Every node but the publisher delivers each message once.
    let want = expected.len() * (NODES - 1);
    let mut delivered: HashMap<(usize, Bytes), u32> = HashMap::new();
    wait_for(&events, "deliveries", |i, e| {
        if let GossipEvent::Message { data, topic: t, .. } = e {
            assert_eq!(t, topic());
            assert_ne!(
                expected.get(&data),
                Some(&i),
                "a publisher got its own message"
            );
            *delivered.entry((i, data)).or_default() += 1;
        }
        delivered.len() >= want
    });
    // A little longer: no duplicate shows up late.
    let settle = Instant::now() + Duration::from_secs(2);
    while let Some(left) = settle.checked_duration_since(Instant::now()) {
        if let Ok((i, GossipEvent::Message { data, .. })) = events.recv_timeout(left) {
            *delivered.entry((i, data)).or_default() += 1;
        }
    }
    assert_eq!(delivered.len(), want);
    assert!(
        delivered.values().all(|&n| n == 1),
        "duplicate deliveries: {:?}",
        delivered.iter().filter(|(_, &n)| n > 1).collect::<Vec<_>>()
    );

    for node in &nodes {
        node.handle.shutdown().unwrap();
    }
    for node in nodes {
        node.thread.join().unwrap().unwrap();
    }
}
