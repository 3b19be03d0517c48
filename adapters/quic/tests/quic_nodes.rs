//! Nodes over QUIC on loopback: two nodes exchange frames; peers with a bad certificate, the
//! wrong identity, garbage on a stream or an oversize frame are refused or dropped while the
//! others keep being served.

use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use starling_core::identity::Identity;
use starling_core::node::NodeEvent;
use starling_core::session::{CloseCause, CloseCode, NodeKeys, SessionConfig};
use starling_core::wire::{Frame, ProtocolId};
use starling_core::PeerId;
use starling_quic::hello::{self, Side};
use starling_quic::{client_crypto, Handle, NodeCertificate, QuicConfig, QuicNode, QuicStats};

const NETWORK: &str = "quic-tests";
const WAIT: Duration = Duration::from_secs(20);

struct TestNode {
    peer: PeerId,
    addr: SocketAddr,
    handle: Handle,
    events: Receiver<NodeEvent>,
    thread: Option<JoinHandle<std::io::Result<QuicStats>>>,
}

impl TestNode {
    fn start(seed: u64, bootstrap: Vec<SocketAddr>) -> TestNode {
        Self::start_with(seed, bootstrap, |_| {})
    }

    fn start_with(
        seed: u64,
        bootstrap: Vec<SocketAddr>,
        tune: impl FnOnce(&mut QuicConfig),
    ) -> TestNode {
        let keys = NodeKeys::from_test_seed(seed);
        let peer = keys.identity().peer_id();
        let mut config = QuicConfig::new("127.0.0.1:0".parse().unwrap(), keys, NETWORK);
        config.bootstrap = bootstrap;
        tune(&mut config);
        config.node.protocols = vec![ProtocolId::GOSSIP, ProtocolId::RAFT];
        let (node, handle) = QuicNode::bind(config).unwrap();
        let addr = node.local_addr();
        let (tx, events) = channel();
        let thread = std::thread::spawn(move || {
            node.run(move |e| {
                let _ = tx.send(e.clone());
            })
        });
        TestNode {
            peer,
            addr,
            handle,
            events,
            thread: Some(thread),
        }
    }

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

    fn stop(mut self) -> QuicStats {
        self.handle.shutdown().unwrap();
        self.thread.take().unwrap().join().unwrap().unwrap()
    }
}

fn frame(protocol: ProtocolId, i: u32, len: usize) -> Frame {
    let mut body = vec![(i % 251) as u8; len.max(4)];
    body[..4].copy_from_slice(&i.to_le_bytes());
    Frame::new(protocol, 1, body)
}

/// Sends `count` frames of `protocol` from `from` to `to` and checks they arrive in order.
fn exchange(from: &TestNode, to: &TestNode, protocol: ProtocolId, count: u32) {
    for i in 0..count {
        from.handle
            .send(to.peer, frame(protocol, i, 16 + (i as usize * 37) % 3000))
            .unwrap();
    }
    for i in 0..count {
        let NodeEvent::Frame { peer, frame: got } =
            to.wait_for("a frame", |e| matches!(e, NodeEvent::Frame { .. }))
        else {
            unreachable!()
        };
        assert_eq!(peer, from.peer);
        assert_eq!(got, frame(protocol, i, 16 + (i as usize * 37) % 3000));
    }
}

fn connected(node: &TestNode, peer: PeerId) {
    node.wait_for(
        "the peer to connect",
        |e| matches!(e, NodeEvent::PeerConnected { peer: p, .. } if *p == peer),
    );
}

#[test]
fn two_nodes_connect_and_exchange_frames_both_ways_on_several_streams() {
    let a = TestNode::start(1, vec![]);
    let b = TestNode::start(2, vec![a.addr]);
    connected(&a, b.peer);
    connected(&b, a.peer);
    exchange(&b, &a, ProtocolId::GOSSIP, 200);
    exchange(&a, &b, ProtocolId::GOSSIP, 200);
    exchange(&a, &b, ProtocolId::RAFT, 50);
    exchange(&b, &a, ProtocolId::RAFT, 50);
    // A frame larger than one QUIC packet, and larger than a stream read.
    a.handle
        .send(b.peer, frame(ProtocolId::RAFT, 7, 200_000))
        .unwrap();
    let NodeEvent::Frame { frame: got, .. } =
        b.wait_for("a large frame", |e| matches!(e, NodeEvent::Frame { .. }))
    else {
        unreachable!()
    };
    assert_eq!(got, frame(ProtocolId::RAFT, 7, 200_000));
    let peers = b.handle.peers().unwrap();
    assert_eq!(peers, vec![(a.peer, a.addr)]);
    let (sa, sb) = (a.stop(), b.stop());
    // Each side opened its own stream for a protocol only if it sent first on it: together
    // exactly one per protocol, unless both opened at once.
    assert!(sa.streams_opened + sb.streams_opened >= 2, "{sa:?} {sb:?}");
    assert_eq!(sa.protocol_violations + sb.protocol_violations, 0);
}

/// A client endpoint on its own runtime, for peers that are not nodes.
fn client() -> (tokio::runtime::Runtime, quinn::Endpoint) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let endpoint = {
        let _context = rt.enter();
        quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap()
    };
    (rt, endpoint)
}

fn connect_with(
    rt: &tokio::runtime::Runtime,
    endpoint: &quinn::Endpoint,
    cert: &NodeCertificate,
    expected: Option<PeerId>,
    addr: SocketAddr,
) -> quinn::Connecting {
    let crypto = client_crypto(cert, expected).unwrap();
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(starling_quic::transport_config(
        Duration::from_secs(10),
        Duration::from_secs(2),
    ));
    let _context = rt.enter();
    endpoint.connect_with(config, addr, "starling").unwrap()
}

#[test]
fn a_peer_without_a_starling_certificate_is_refused_and_others_are_served() {
    let node = TestNode::start(1, vec![]);
    let (rt, endpoint) = client();
    // An ordinary certificate: ECDSA P-256, not an ed25519 identity.
    let key = rcgen::KeyPair::generate().unwrap();
    let web = rcgen::CertificateParams::new(vec!["example.org".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let bad = NodeCertificate::from_parts(web.der().clone(), key.serialize_der().into());
    let connecting = connect_with(&rt, &endpoint, &bad, Some(node.peer), node.addr);
    // In TLS 1.3 the client's side of the handshake ends before the server has judged the
    // client's certificate, so the refusal may arrive as the connection's close.
    let err = rt.block_on(async {
        match connecting.await {
            Err(e) => e,
            Ok(connection) => tokio::time::timeout(WAIT, connection.closed())
                .await
                .expect("a node kept a peer whose certificate proves no identity"),
        }
    });
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "unexpected error: {err}"
    );
    // The node still serves honest peers.
    let honest = TestNode::start(2, vec![node.addr]);
    connected(&node, honest.peer);
    connected(&honest, node.peer);
    exchange(&honest, &node, ProtocolId::GOSSIP, 10);
    honest.stop();
    let stats = node.stop();
    assert!(stats.handshakes_failed >= 1, "{stats:?}");
}

#[test]
fn a_dialer_refuses_a_node_with_another_identity() {
    let target = TestNode::start(1, vec![]);
    let dialer = TestNode::start(2, vec![]);
    let someone_else = Identity::from_test_seed(99).peer_id();
    dialer
        .handle
        .connect(target.addr, Some(someone_else))
        .unwrap();
    dialer.wait_for(
        "the dial to fail",
        |e| matches!(e, NodeEvent::DialFailed { addr, .. } if *addr == target.addr),
    );
    // Named correctly, the same address connects.
    dialer
        .handle
        .connect(target.addr, Some(target.peer))
        .unwrap();
    connected(&dialer, target.peer);
    let stats = dialer.stop();
    assert!(stats.handshakes_failed >= 1, "{stats:?}");
    target.stop();
}

/// A raw connection that completed TLS and the hello as peer `seed`, and the stream it writes.
fn raw_peer(
    rt: &tokio::runtime::Runtime,
    endpoint: &quinn::Endpoint,
    seed: u64,
    addr: SocketAddr,
) -> quinn::Connection {
    let identity = Identity::from_test_seed(seed);
    let cert = NodeCertificate::new(&identity).unwrap();
    let connecting = connect_with(rt, endpoint, &cert, None, addr);
    rt.block_on(async {
        let connection = connecting.await.unwrap();
        let session = SessionConfig::new(NETWORK);
        hello::exchange(&connection, Side::Dialer, &session, &identity)
            .await
            .unwrap();
        connection
    })
}

/// Writes `bytes` on a new stream and returns how the node closed the connection.
fn send_and_await_close(
    rt: &tokio::runtime::Runtime,
    connection: &quinn::Connection,
    bytes: Bytes,
) -> CloseCause {
    rt.block_on(async {
        let (mut send, _recv) = connection.open_bi().await.unwrap();
        send.write_all(&bytes).await.unwrap();
        let closed = tokio::time::timeout(WAIT, connection.closed()).await;
        hello::lost(closed.expect("the node kept a connection that sent garbage"))
    })
}

#[test]
fn garbage_and_oversize_frames_close_that_connection_only() {
    let node = TestNode::start(1, vec![]);
    let honest = TestNode::start(2, vec![node.addr]);
    connected(&node, honest.peer);
    connected(&honest, node.peer);
    let (rt, endpoint) = client();

    // A frame whose length prefix is not a valid varint.
    let garbage = raw_peer(&rt, &endpoint, 10, node.addr);
    let cause = send_and_await_close(&rt, &garbage, Bytes::from_static(&[0xff; 16]));
    assert!(
        matches!(&cause, CloseCause::Peer { code: CloseCode::ProtocolViolation, detail } if !detail.is_empty()),
        "{cause:?}"
    );

    // A frame announcing 16 MiB against the default 1 MiB limit: refused on its prefix.
    let oversize = raw_peer(&rt, &endpoint, 11, node.addr);
    let mut bytes = BytesMut::new();
    Frame::new(ProtocolId::GOSSIP, 1, vec![0u8; 64]).encode(&mut bytes);
    let mut header = vec![0x80, 0x80, 0x80, 0x08]; // varint 16 MiB
    header.extend_from_slice(&bytes[1..]);
    let cause = send_and_await_close(&rt, &oversize, Bytes::from(header));
    assert!(
        matches!(&cause, CloseCause::Peer { code: CloseCode::ProtocolViolation, detail } if detail.contains("frame")),
        "{cause:?}"
    );

    // Frames of two protocols on one stream.
    let mixed = raw_peer(&rt, &endpoint, 12, node.addr);
    let mut bytes = BytesMut::new();
    frame(ProtocolId::GOSSIP, 1, 8).encode(&mut bytes);
    frame(ProtocolId::RAFT, 2, 8).encode(&mut bytes);
    let cause = send_and_await_close(&rt, &mixed, bytes.freeze());
    assert!(
        matches!(
            &cause,
            CloseCause::Peer {
                code: CloseCode::ProtocolViolation,
                ..
            }
        ),
        "{cause:?}"
    );

    // The honest peer was served throughout.
    exchange(&honest, &node, ProtocolId::GOSSIP, 20);
    exchange(&node, &honest, ProtocolId::RAFT, 20);
    honest.stop();
    let stats = node.stop();
    assert_eq!(stats.protocol_violations, 3, "{stats:?}");
}

#[test]
fn a_peer_of_another_network_is_refused_with_a_reason() {
    let node = TestNode::start(1, vec![]);
    let (rt, endpoint) = client();
    let identity = Identity::from_test_seed(5);
    let cert = NodeCertificate::new(&identity).unwrap();
    let connecting = connect_with(&rt, &endpoint, &cert, Some(node.peer), node.addr);
    let cause = rt.block_on(async {
        let connection = connecting.await.unwrap();
        let foreign = SessionConfig::new("another-network");
        hello::exchange(&connection, Side::Dialer, &foreign, &identity)
            .await
            .expect_err("a node accepted a peer of another network")
    });
    // Each side refuses the other for its own reasons; the dialer sees the mismatch itself.
    assert!(
        matches!(
            &cause,
            CloseCause::WrongNetwork { .. }
                | CloseCause::Peer {
                    code: CloseCode::WrongNetwork,
                    ..
                }
        ),
        "{cause:?}"
    );
    node.stop();
}

#[test]
fn a_peer_that_stops_reading_is_paused_then_dropped() {
    let node = TestNode::start_with(1, vec![], |c| {
        c.high_water = 2 << 20;
        c.low_water = 1 << 20;
        c.stall_timeout = Duration::from_secs(1);
    });
    let (rt, endpoint) = client();
    let reader = Identity::from_test_seed(30).peer_id();
    // Completes the hello, then never accepts the node's stream: QUIC flow control stops the
    // node's writer after the stream window, and the rest queues up in the node.
    let _connection = raw_peer(&rt, &endpoint, 30, node.addr);
    connected(&node, reader);
    let big = |i| frame(ProtocolId::RAFT, i, 256 << 10);
    let mut sent = 0;
    loop {
        node.handle.send(reader, big(sent)).unwrap();
        sent += 1;
        let paused = node.events.recv_timeout(Duration::from_millis(20));
        if matches!(paused, Ok(NodeEvent::Backpressure { paused: true, .. })) {
            break;
        }
        assert!(sent < 100, "never paused after {sent} frames of 256 KiB");
    }
    let NodeEvent::PeerDisconnected { cause, .. } = node
        .wait_for("the stalled peer's close", |e| {
            matches!(e, NodeEvent::PeerDisconnected { .. })
        })
    else {
        unreachable!()
    };
    assert_eq!(cause, CloseCause::Local(CloseCode::Unresponsive));
    node.stop();
}

#[test]
fn gossip_announcements_travel_as_datagrams() {
    let a = TestNode::start(1, vec![]);
    let b = TestNode::start(2, vec![a.addr]);
    connected(&a, b.peer);
    connected(&b, a.peer);
    // Neither node hosts gossip, so a gossip frame reaches the application as it is; message
    // type 9 is gossip's IHave, which the adapter sends as a datagram.
    let announcement = |i: u32| Frame::new(ProtocolId::GOSSIP, 9, i.to_le_bytes().to_vec());
    for i in 0..20 {
        b.handle.send(a.peer, announcement(i)).unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 20 {
        let NodeEvent::Frame { frame, .. } =
            a.wait_for("an announcement", |e| matches!(e, NodeEvent::Frame { .. }))
        else {
            unreachable!()
        };
        got.push(frame);
    }
    // Datagrams may be reordered (not on loopback in practice, but nothing promises it).
    got.sort_by_key(|f| f.body.clone());
    let mut want: Vec<Frame> = (0..20).map(announcement).collect();
    want.sort_by_key(|f| f.body.clone());
    assert_eq!(got, want);
    a.stop();
    let stats = b.stop();
    assert_eq!(stats.datagrams_sent, 20, "{stats:?}");
    assert_eq!(
        stats.streams_opened, 0,
        "announcements went on a stream: {stats:?}"
    );
}
