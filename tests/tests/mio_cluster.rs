//! Real nodes on loopback through the mio reactor: connecting, exchanging frames, and staying
//! up for honest peers while hostile or broken ones misbehave.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use starling_core::id::PeerId;
use starling_core::identity::Identity;
use starling_core::node::NodeEvent;
use starling_core::session::{NodeKeys, Session, SessionConfig};
use starling_core::time::{Duration as VDuration, Instant as VInstant};
use starling_core::wire::{Frame, ProtocolId};
use starling_mio::{Handle, MultiReactor, Reactor, ReactorConfig, ReactorStats};

const NETWORK: &str = "mio-tests";
const WAIT: Duration = Duration::from_secs(20);

/// A reactor on its own thread, its events on a channel.
struct TestNode {
    addr: SocketAddr,
    peer: PeerId,
    handle: Handle,
    events: Receiver<NodeEvent>,
    thread: Option<JoinHandle<std::io::Result<ReactorStats>>>,
}

fn keys(seed: u64) -> NodeKeys {
    NodeKeys::new(Identity::from_test_seed(seed), [seed as u8; 32])
}

fn test_config(seed: u64, bootstrap: Vec<SocketAddr>) -> ReactorConfig {
    let mut config = ReactorConfig::new("127.0.0.1:0".parse().unwrap(), keys(seed), NETWORK);
    config.bootstrap = bootstrap;
    config.node.max_per_ip = 64;
    config.node.protocols = vec![ProtocolId::GOSSIP];
    config
}

impl TestNode {
    fn start(config: ReactorConfig) -> TestNode {
        Self::spawn(config, 0)
    }

    /// The same node on the multi-reactor: `io_threads` I/O threads plus the node thread.
    fn start_multi(config: ReactorConfig, io_threads: usize) -> TestNode {
        Self::spawn(config, io_threads)
    }

    fn spawn(config: ReactorConfig, io_threads: usize) -> TestNode {
        let peer = config.keys.identity().peer_id();
        let (tx, events) = channel();
        let on_event = move |e: &NodeEvent| {
            let _ = tx.send(e.clone());
        };
        let (addr, handle, thread) = if io_threads == 0 {
            let (reactor, handle) = Reactor::bind(config).unwrap();
            (
                reactor.local_addr(),
                handle,
                std::thread::spawn(move || reactor.run(on_event)),
            )
        } else {
            let (reactor, handle) = MultiReactor::bind(config, io_threads).unwrap();
            (
                reactor.local_addr(),
                handle,
                std::thread::spawn(move || reactor.run(on_event)),
            )
        };
        TestNode {
            addr,
            peer,
            handle,
            events,
            thread: Some(thread),
        }
    }

    /// Waits for an event matching `want`, failing after WAIT.
    fn wait_for(&self, what: &str, mut want: impl FnMut(&NodeEvent) -> bool) -> NodeEvent {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if want(&e) => return e,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    fn stop(mut self) -> ReactorStats {
        self.handle.shutdown().unwrap();
        self.thread.take().unwrap().join().unwrap().unwrap()
    }
}

fn frame(i: u32, len: usize) -> Frame {
    let mut body = vec![(i % 251) as u8; len];
    body[..4].copy_from_slice(&i.to_le_bytes());
    Frame::new(ProtocolId::GOSSIP, 1, body)
}

/// A frame of `len` pseudo-random bytes: incompressible, so it costs its full size on the wire.
fn noise_frame(i: u32, len: usize) -> Frame {
    let mut x = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let body: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    Frame::new(ProtocolId::GOSSIP, 1, body)
}

/// Connects `b` to `a` and waits until both see each other.
fn connected_pair() -> (TestNode, TestNode) {
    let a = TestNode::start(test_config(1, vec![]));
    let b = TestNode::start(test_config(2, vec![a.addr]));
    a.wait_for("a sees b", |e| matches!(e, NodeEvent::PeerConnected { .. }));
    b.wait_for("b sees a", |e| matches!(e, NodeEvent::PeerConnected { .. }));
    (a, b)
}

/// Sends `count` frames from `from` to `to` and checks every one arrives, in order.
fn exchange(from: &TestNode, to: &TestNode, count: u32) {
    for i in 0..count {
        from.handle.send(to.peer, frame(i, 100)).unwrap();
    }
    for i in 0..count {
        match to.wait_for("a frame", |e| matches!(e, NodeEvent::Frame { .. })) {
            NodeEvent::Frame { peer, frame: f } => {
                assert_eq!(peer, from.peer);
                assert_eq!(f, frame(i, 100), "frame {i} lost or reordered");
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn two_nodes_handshake_and_exchange_frames() {
    let (a, b) = connected_pair();
    exchange(&b, &a, 50);
    exchange(&a, &b, 50);
    assert_eq!(a.handle.peers().unwrap().len(), 1);
    a.stop();
    b.stop();
}

#[test]
fn sixteen_node_cluster_connects() {
    let first = TestNode::start(test_config(100, vec![]));
    let mut nodes = vec![];
    for i in 1..16u64 {
        let prev = nodes
            .last()
            .map(|n: &TestNode| n.addr)
            .unwrap_or(first.addr);
        nodes.push(TestNode::start(test_config(
            100 + i,
            vec![first.addr, prev],
        )));
    }
    for n in &nodes {
        n.wait_for("connected", |e| {
            matches!(e, NodeEvent::PeerConnected { .. })
        });
    }
    first.wait_for("first connected", |e| {
        matches!(e, NodeEvent::PeerConnected { .. })
    });
    for n in nodes {
        assert!(!n.handle.peers().unwrap().is_empty());
        n.stop();
    }
    first.stop();
}

/// A peer speaking the protocol by hand over a blocking socket.
struct RawPeer {
    stream: TcpStream,
    session: Session,
}

impl RawPeer {
    /// Dials `addr` and completes the handshake.
    fn handshake(addr: SocketAddr, seed: u64) -> RawPeer {
        Self::handshake_on(TcpStream::connect(addr).unwrap(), seed)
    }

    /// Dials `addr` with a receive buffer fixed at a few kilobytes (no autotuning).
    fn handshake_small_window(addr: SocketAddr, seed: u64) -> RawPeer {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&addr.into()).unwrap();
        Self::handshake_on(socket.into(), seed)
    }

    fn handshake_on(stream: TcpStream, seed: u64) -> RawPeer {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let config = Arc::new(SessionConfig::new(NETWORK));
        let session = Session::initiator(
            config,
            Arc::new(keys(seed)),
            None,
            [seed as u8; 32],
            VInstant::ZERO,
        );
        let mut peer = RawPeer { stream, session };
        while !peer.session.is_established() {
            peer.flush();
            let mut buf = [0u8; 4096];
            let n = peer.stream.read(&mut buf).unwrap();
            assert!(n > 0, "reactor closed during handshake");
            peer.session.handle_bytes(VInstant::ZERO, &buf[..n]);
        }
        while peer.session.poll_event().is_some() {}
        peer.flush();
        peer
    }

    fn flush(&mut self) {
        while let Some(bytes) = self.session.poll_transmit() {
            self.stream.write_all(&bytes).unwrap();
        }
    }

    /// Reads until the reactor closes the connection or `limit` passes; true if it closed.
    fn closed_within(&mut self, limit: Duration) -> bool {
        self.stream.set_read_timeout(Some(limit)).unwrap();
        let mut buf = [0u8; 65536];
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
        false
    }
}

#[test]
fn random_bytes_peer_is_dropped_while_honest_peers_are_served() {
    let (a, b) = connected_pair();
    let mut hostile = TcpStream::connect(a.addr).unwrap();
    let mut x = 0x1234_5678_u32;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let _ = hostile.write_all(&garbage);
    exchange(&b, &a, 200);
    hostile
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1024];
    let closed = matches!(hostile.read(&mut buf), Ok(0) | Err(_));
    assert!(closed, "the reactor should drop a peer that sends garbage");
    a.stop();
    b.stop();
}

#[test]
fn peer_stalling_mid_handshake_times_out_while_honest_peers_are_served() {
    let mut config = test_config(1, vec![]);
    config.session.handshake_timeout = VDuration::from_millis(500);
    let a = TestNode::start(config);
    let b = TestNode::start(test_config(2, vec![a.addr]));
    a.wait_for("b", |e| matches!(e, NodeEvent::PeerConnected { .. }));
    // Half of a plausible first message, then silence.
    let mut stalled = TcpStream::connect(a.addr).unwrap();
    stalled.write_all(&[0, 32, 1, 2, 3]).unwrap();
    exchange(&b, &a, 20);
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        matches!(stalled.read(&mut buf), Ok(0) | Err(_)),
        "stalled handshake must be dropped"
    );
    a.stop();
    b.stop();
}

#[test]
fn peer_that_never_reads_hits_backpressure_and_is_dropped() {
    let mut config = test_config(1, vec![]);
    config.high_water = 64 << 10;
    config.low_water = 16 << 10;
    config.session.keepalive.interval = VDuration::from_millis(200);
    let a = TestNode::start(config);
    let b = TestNode::start(test_config(2, vec![a.addr]));
    a.wait_for("b", |e| matches!(e, NodeEvent::PeerConnected { .. }));
    let sloth = RawPeer::handshake_small_window(a.addr, 77);
    let sloth_id = Identity::from_test_seed(77).peer_id();
    a.wait_for(
        "sloth",
        |e| matches!(e, NodeEvent::PeerConnected { peer, .. } if *peer == sloth_id),
    );
    // Flood the sloth, which never reads: once the kernel's socket buffers are full, its queue
    // passes the high-water mark.
    for i in 0..12_000 {
        let _ = a.handle.send(sloth_id, noise_frame(i, 1000));
    }
    a.wait_for(
        "backpressure",
        |e| matches!(e, NodeEvent::Backpressure { peer, paused: true } if *peer == sloth_id),
    );
    // Honest traffic still flows both ways.
    exchange(&b, &a, 50);
    exchange(&a, &b, 50);
    // Unanswered heartbeats (6 × 200 ms) end the sloth's session.
    a.wait_for(
        "sloth dropped",
        |e| matches!(e, NodeEvent::PeerDisconnected { peer, .. } if *peer == sloth_id),
    );
    let stats = a.stop();
    assert!(stats.paused >= 1);
    assert!(
        stats.send_refused > 0,
        "the bounded session queue refused frames beyond it"
    );
    drop(sloth);
    b.stop();
}

#[test]
fn connection_flood_is_held_to_the_inbound_limit() {
    let mut config = test_config(1, vec![]);
    config.node.max_inbound = 8;
    config.node.max_per_ip = 8;
    let a = TestNode::start(config);
    let b = TestNode::start(test_config(2, vec![a.addr]));
    a.wait_for("b", |e| matches!(e, NodeEvent::PeerConnected { .. }));
    let flood: Vec<TcpStream> = (0..100)
        .filter_map(|_| TcpStream::connect(a.addr).ok())
        .collect();
    exchange(&b, &a, 20);
    // Refused connections are closed at once; admitted ones idle in the handshake.
    let mut open = 0;
    for mut s in flood {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 16];
        if let Err(e) = s.read(&mut buf) {
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut
            {
                open += 1;
            }
        }
    }
    assert!(
        open <= 7,
        "{open} flood connections held open with a limit of 8 (one used by b)"
    );
    let stats = a.stop();
    assert!(stats.refused >= 90, "{stats:?}");
    b.stop();
}

#[test]
fn peer_closing_mid_frame_is_cleaned_up() {
    let (a, b) = connected_pair();
    let mut rude = RawPeer::handshake(a.addr, 55);
    let rude_id = Identity::from_test_seed(55).peer_id();
    a.wait_for(
        "rude",
        |e| matches!(e, NodeEvent::PeerConnected { peer, .. } if *peer == rude_id),
    );
    rude.session.send(&frame(1, 5000)).unwrap();
    let bytes = rude.session.poll_transmit().unwrap();
    rude.stream.write_all(&bytes[..bytes.len() / 2]).unwrap();
    drop(rude);
    a.wait_for(
        "rude gone",
        |e| matches!(e, NodeEvent::PeerDisconnected { peer, .. } if *peer == rude_id),
    );
    exchange(&b, &a, 20);
    a.stop();
    b.stop();
}

#[test]
fn raw_peer_frames_are_delivered() {
    let a = TestNode::start(test_config(1, vec![]));
    let mut raw = RawPeer::handshake(a.addr, 9);
    for i in 0..10 {
        raw.session.send(&frame(i, 10)).unwrap();
    }
    raw.flush();
    for i in 0..10 {
        match a.wait_for("frame", |e| matches!(e, NodeEvent::Frame { .. })) {
            NodeEvent::Frame { frame: f, .. } => assert_eq!(f, frame(i, 10)),
            _ => unreachable!(),
        }
    }
    raw.session.close(starling_core::session::CloseCode::Normal);
    raw.flush();
    assert!(raw.closed_within(Duration::from_secs(5)));
    a.stop();
}

#[test]
fn a_burst_of_small_frames_arrives_complete_and_in_order() {
    let (a, b) = connected_pair();
    // Thousands of 64-byte frames share records, so one read delivers hundreds at once.
    let frames: Vec<Frame> = (0..10_000).map(|i| frame(i, 64)).collect();
    for chunk in frames.chunks(1000) {
        b.handle.send_batch(a.peer, chunk.to_vec()).unwrap();
    }
    for (i, want) in frames.iter().enumerate() {
        match a.wait_for("a frame", |e| matches!(e, NodeEvent::Frame { .. })) {
            NodeEvent::Frame { frame: got, .. } => assert_eq!(&got, want, "frame {i}"),
            _ => unreachable!(),
        }
    }
    a.stop();
    b.stop();
}

#[test]
fn multi_reactor_nodes_connect_and_exchange_frames_with_single_reactor_nodes() {
    let a = TestNode::start_multi(test_config(1, vec![]), 2);
    let b = TestNode::start(test_config(2, vec![a.addr]));
    let c = TestNode::start_multi(test_config(3, vec![a.addr]), 1);
    for n in [&b, &c] {
        n.wait_for("connected", |e| {
            matches!(e, NodeEvent::PeerConnected { .. })
        });
    }
    // The responder establishes last (it reads the final handshake message): wait for a to see
    // both before it sends.
    for _ in 0..2 {
        a.wait_for("a sees b and c", |e| {
            matches!(e, NodeEvent::PeerConnected { .. })
        });
    }
    exchange(&b, &a, 100);
    exchange(&a, &c, 100);
    exchange(&c, &a, 100);
    // A burst of small frames through the I/O threads, in order and complete.
    let frames: Vec<Frame> = (0..10_000).map(|i| frame(i, 64)).collect();
    for chunk in frames.chunks(1000) {
        c.handle.send_batch(a.peer, chunk.to_vec()).unwrap();
    }
    for (i, want) in frames.iter().enumerate() {
        let deadline = Instant::now() + WAIT;
        let got = loop {
            match a
                .events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(NodeEvent::Frame { frame, .. }) => break frame,
                Ok(_) => {}
                Err(_) => panic!("frame {i} never came"),
            }
        };
        assert_eq!(&got, want, "frame {i}");
    }
    for n in [a, b, c] {
        n.stop();
    }
}

#[test]
fn multi_reactor_drops_garbage_peers_and_keeps_serving() {
    let a = TestNode::start_multi(test_config(1, vec![]), 2);
    let b = TestNode::start(test_config(2, vec![a.addr]));
    a.wait_for("b", |e| matches!(e, NodeEvent::PeerConnected { .. }));
    let mut hostile = TcpStream::connect(a.addr).unwrap();
    let _ = hostile.write_all(&[0xff; 3000]);
    exchange(&b, &a, 50);
    hostile
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(matches!(hostile.read(&mut buf), Ok(0) | Err(_)));
    a.stop();
    b.stop();
}
