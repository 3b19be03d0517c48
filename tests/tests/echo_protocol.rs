//! A protocol defined outside core and the adapters (the echo protocol of `echo/`) hosted by
//! the node through its protocol table, run over TCP, over QUIC and in the simulator with no
//! line of it anywhere else.

mod echo;
mod support;

use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use bytes::Bytes;
use starling_core::id::PeerId;
use starling_core::identity::Identity;
use starling_core::node::{Node, NodeConfig, NodeEvent};
use starling_core::session::NodeKeys;
use starling_core::time::Duration as SimDuration;
use starling_mio::ReactorConfig;
use starling_sim::{Latency, NetworkConfig, NodeHost, SimConfig, Simulation};

use echo::{Echo, EchoEvent, ECHO};
use support::{Running, Transport};

const WAIT: Duration = Duration::from_secs(20);

/// Starts a node hosting echo; its echo events go to the returned receiver.
fn start(
    seed: u64,
    bootstrap: Vec<std::net::SocketAddr>,
    transport: Transport,
) -> (Running, Receiver<EchoEvent>, PeerId) {
    let keys = NodeKeys::from_test_seed(seed);
    let peer = keys.identity().peer_id();
    let mut config = ReactorConfig::new("127.0.0.1:0".parse().unwrap(), keys, "echo-tests");
    config.bootstrap = bootstrap;
    config.protocols.with(|_, _, _| Echo::default());
    let (tx, rx) = channel();
    let node = Running::start(config, transport, move |e| {
        if let NodeEvent::Protocol(e) = e {
            assert_eq!((e.protocol(), e.name()), (ECHO, "echo"));
            let _ = tx.send(
                e.downcast_ref::<EchoEvent>()
                    .expect("an echo event")
                    .clone(),
            );
        }
    });
    (node, rx, peer)
}

fn wait(events: &Receiver<EchoEvent>, what: &str, mut done: impl FnMut(&EchoEvent) -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(left) {
            Ok(e) if done(&e) => return,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

fn echo_over(transport: Transport) {
    let (a, _a_events, a_peer) = start(1, Vec::new(), transport);
    let (b, b_events, _) = start(2, vec![a.addr], transport);
    wait(&b_events, "the peer to connect", |e| {
        *e == EchoEvent::PeerUp(a_peer)
    });
    let data = Bytes::from_static(b"hello, echo");
    let asked = data.clone();
    let id = b
        .handle
        .query_protocol::<Echo, _>(move |echo, _| echo.ask(a_peer, asked))
        .unwrap();
    wait(&b_events, "the echo", |e| {
        *e == EchoEvent::Echoed {
            from: a_peer,
            id,
            data: data.clone(),
        }
    });
    let answered = a
        .handle
        .query_protocol::<Echo, _>(|echo, _| echo.answered)
        .unwrap();
    assert_eq!(answered, 1);
    // The node hosts echo and nothing else (its handshake announces what it hosts).
    let hosted = a.handle.query(|node, _| node.hosted_protocols()).unwrap();
    assert_eq!(hosted, vec![ECHO]);
    for node in [a, b] {
        node.handle.shutdown().unwrap();
        node.thread.join().unwrap().unwrap();
    }
}

#[test]
fn echo_over_tcp() {
    echo_over(Transport::Tcp);
}

#[test]
fn echo_over_quic() {
    echo_over(Transport::Quic);
}

/// Three simulated nodes (the shipped `Node` in the simulator's `NodeHost`) join through node
/// 0; node 2 asks node 0 for an echo. Returns node 2's echo events and the run's digest.
fn echo_in_simulation(seed: u64) -> (Vec<EchoEvent>, String) {
    let network = NetworkConfig {
        link_latency: Latency::Uniform {
            min: SimDuration::from_millis(5),
            max: SimDuration::from_millis(50),
        },
        ordered: true,
        ..NetworkConfig::default()
    };
    let first = NodeHost::identity_of(0).peer_id();
    let mut sim = Simulation::new(
        SimConfig { seed, network },
        3,
        move |id, seed, now| {
            let local = NodeHost::identity_of(id).peer_id();
            let mut node = Node::new(NodeConfig::default(), local, seed, now);
            node.host(now, Echo::default()).unwrap();
            if id > 0 {
                node.add_address(now, NodeHost::addr_of(0), Some(first), true)
                    .unwrap();
            }
            NodeHost::new(id, node)
        },
        (),
    )
    .unwrap();
    sim.run_for(SimDuration::from_secs(1)).unwrap();
    let data = Bytes::from_static(b"simulated echo");
    sim.command(2, |host, now| {
        host.with_node(now, |node, now| {
            node.with_protocol::<Echo, _>(now, |echo, _| echo.ask(first, data))
        })
    })
    .unwrap()
    .expect("node 2 is up")
    .expect("node 2 hosts echo");
    sim.run_for(SimDuration::from_secs(1)).unwrap();
    let events = sim
        .command(2, |host, _| host.take_events())
        .unwrap()
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            NodeEvent::Protocol(e) => e.downcast::<EchoEvent>().ok(),
            _ => None,
        })
        .collect();
    (events, sim.digest())
}

#[test]
fn echo_in_the_simulator_replays() {
    let (events, digest) = echo_in_simulation(7);
    let first = Identity::from_test_seed(0).peer_id();
    assert!(events.contains(&EchoEvent::PeerUp(first)), "{events:?}");
    assert!(
        events.contains(&EchoEvent::Echoed {
            from: first,
            id: 1,
            data: Bytes::from_static(b"simulated echo"),
        }),
        "{events:?}"
    );
    assert_eq!(echo_in_simulation(7).1, digest, "seed 7 did not replay");
    assert_ne!(echo_in_simulation(8).1, digest, "seeds 7 and 8 ran alike");
}
