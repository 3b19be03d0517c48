//! The duplicate-connection rule and self-dials.

use super::*;

/// Two nodes whose connections are wired to each other: `links` pairs A's id for a connection
/// with B's id for the same connection.
struct Pair {
    a: Harness,
    b: Harness,
    links: Vec<(ConnId, ConnId)>,
}

impl Pair {
    fn new(a: PeerId, b: PeerId) -> Self {
        let make = |id| Harness {
            node: Node::new(NodeConfig::default(), id, 9, Instant::ZERO),
            now: Instant::ZERO,
        };
        Pair {
            a: make(a),
            b: make(b),
            links: Vec::new(),
        }
    }

    /// Delivers every `Close` either node emitted to the other end of the link, and returns the
    /// events each node reported.
    fn settle(&mut self) -> (Vec<NodeEvent>, Vec<NodeEvent>) {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        for _ in 0..4 {
            for (from_a, outputs) in [(true, self.a.drain()), (false, self.b.drain())] {
                for out in outputs {
                    match out {
                        NodeOutput::Close { conn, code } => {
                            let cause = CloseCause::Peer {
                                code,
                                detail: String::new(),
                            };
                            let link = self.links.iter().find(|l| {
                                if from_a {
                                    l.0 == conn
                                } else {
                                    l.1 == conn
                                }
                            });
                            match (link, from_a) {
                                (Some(l), true) => {
                                    self.b.node.handle_closed(Instant::ZERO, l.1, cause)
                                }
                                (Some(l), false) => {
                                    self.a.node.handle_closed(Instant::ZERO, l.0, cause)
                                }
                                (None, _) => {}
                            }
                        }
                        NodeOutput::Event(e) if from_a => ea.push(e),
                        NodeOutput::Event(e) => eb.push(e),
                        _ => {}
                    }
                }
            }
        }
        (ea, eb)
    }
}

// Both dial at once; `a_first`/`b_first` say which of its two connections each side sees
// established first. Whatever the order, both keep the connection the smaller id dialled.
#[test]
fn simultaneous_dials_keep_the_connection_dialled_by_the_smaller_peer_id() {
    let (small, large) = (peer(1), peer(2));
    let (addr_small, addr_large) = (addr(1, 4000), addr(2, 4000));
    for (a_first_own, b_first_own) in [(true, true), (true, false), (false, true), (false, false)] {
        let mut p = Pair::new(small, large);
        p.a.node
            .add_address(Instant::ZERO, addr_large, None, true)
            .unwrap();
        p.b.node
            .add_address(Instant::ZERO, addr_small, None, true)
            .unwrap();
        assert_eq!(p.a.dials(), vec![addr_large]);
        assert_eq!(p.b.dials(), vec![addr_small]);
        // Link 1: small dialled large (A's conn 10, B's conn 20). Link 2: the reverse.
        p.links = vec![(10, 20), (11, 21)];
        p.a.node.handle_dialed(Instant::ZERO, addr_large, 10);
        assert!(p.b.node.handle_incoming(Instant::ZERO, 20, addr(1, 50000)));
        p.b.node.handle_dialed(Instant::ZERO, addr_small, 21);
        assert!(p.a.node.handle_incoming(Instant::ZERO, 11, addr(2, 50001)));
        let a_order = if a_first_own { [10, 11] } else { [11, 10] };
        let b_order = if b_first_own { [21, 20] } else { [20, 21] };
        for (ca, cb) in a_order.into_iter().zip(b_order) {
            p.a.node.handle_established(Instant::ZERO, ca, large, None);
            p.b.node.handle_established(Instant::ZERO, cb, small, None);
        }
        let (ea, eb) = p.settle();
        assert_eq!(
            p.a.node.peers().map(|i| i.conn).collect::<Vec<_>>(),
            vec![10]
        );
        assert_eq!(
            p.b.node.peers().map(|i| i.conn).collect::<Vec<_>>(),
            vec![20]
        );
        for events in [&ea, &eb] {
            let connected = events
                .iter()
                .filter(|e| matches!(e, NodeEvent::PeerConnected { .. }))
                .count();
            assert_eq!(connected, 1, "{events:?}");
            assert!(!events
                .iter()
                .any(|e| matches!(e, NodeEvent::PeerDisconnected { .. })));
        }
        assert_eq!(p.a.node.stats().duplicates_closed, 1);
        assert_eq!(p.b.node.stats().duplicates_closed, 1);
        // Both ends closed the loser, so each ignores the other's close of it.
        assert_eq!(p.a.node.stats().stale_events, 1);
        assert_eq!(p.b.node.stats().stale_events, 1);
        assert_eq!(
            p.a.node.peers().next().unwrap().direction,
            Direction::Outbound
        );
        assert_eq!(
            p.b.node.peers().next().unwrap().direction,
            Direction::Inbound
        );
    }
}

#[test]
fn self_dial_is_closed() {
    let mut h = Harness::new(NodeConfig::default());
    let me = h.node.local();
    let own = addr(9, 4000);
    h.node.add_address(h.now, own, None, true).unwrap();
    assert_eq!(h.dials(), vec![own]);
    h.node.handle_dialed(h.now, own, 1);
    assert!(h.node.handle_incoming(h.now, 2, addr(9, 50000)));
    h.node.handle_established(h.now, 1, me, None);
    h.node.handle_established(h.now, 2, me, None);
    let out = h.drain();
    assert!(out.contains(&NodeOutput::Close {
        conn: 1,
        code: CloseCode::Normal
    }));
    assert!(out.contains(&NodeOutput::Close {
        conn: 2,
        code: CloseCode::Normal
    }));
    assert!(out.contains(&NodeOutput::Event(NodeEvent::DialFailed {
        addr: own,
        attempts: 1,
        retry_at: None
    })));
    let stats = h.node.stats();
    assert_eq!(
        (stats.self_dials, stats.established, stats.known_addresses),
        (2, 0, 0)
    );
    assert_eq!((stats.inbound, stats.outbound), (0, 0));
    // Our own identity cannot be added as an address.
    assert_eq!(
        h.node.add_address(h.now, own, Some(me), false),
        Err(NodeError::SelfAddress)
    );
}

#[test]
fn swapping_to_the_kept_connection_is_silent_but_for_backpressure() {
    // We (peer 50) are the smaller id. The larger peer's dial lands first and its write queue
    // fills; then our own dial to it is established, and wins.
    let mut h = Harness::new(NodeConfig::default());
    let larger = peer(60);
    h.accept(1, addr(6, 50000), larger);
    h.node.handle_backpressure(h.now, 1, true);
    h.drain();
    h.now = Instant::ZERO + SECOND;
    h.node
        .add_address(h.now, addr(6, 4000), None, true)
        .unwrap();
    assert_eq!(h.dials(), vec![addr(6, 4000)]);
    h.connect(addr(6, 4000), 2, larger);
    assert_eq!(
        h.drain(),
        vec![
            NodeOutput::Close {
                conn: 1,
                code: CloseCode::Normal
            },
            NodeOutput::Event(NodeEvent::Backpressure {
                peer: larger,
                paused: false
            }),
        ]
    );
    let info = h.node.peers().next().unwrap();
    assert_eq!(
        (info.conn, info.direction, info.paused),
        (2, Direction::Outbound, false)
    );
    assert_eq!(info.connected_since, Instant::ZERO, "the peer never left");
    assert_eq!(h.node.send(h.now, larger, frame(ProtocolId::DHT)), Ok(()));
}

#[test]
fn two_dials_by_the_same_side_keep_the_older_connection() {
    let mut h = Harness::new(NodeConfig::default());
    let other = peer(7);
    h.node.add_address(h.now, addr(7, 1), None, true).unwrap();
    h.node.add_address(h.now, addr(8, 1), None, true).unwrap();
    assert_eq!(h.dials().len(), 2);
    h.connect(addr(7, 1), 1, other);
    h.connect(addr(8, 1), 2, other);
    let out = h.drain();
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, NodeOutput::Event(NodeEvent::PeerConnected { .. })))
            .count(),
        1
    );
    assert!(out.contains(&NodeOutput::Close {
        conn: 2,
        code: CloseCode::Normal
    }));
    assert_eq!(h.node.peers().map(|i| i.conn).collect::<Vec<_>>(), vec![1]);
    // Both addresses now wait for the peer to disconnect; then both are redialled.
    assert_eq!(
        h.node.poll_timeout(),
        Some(h.now + h.node.config().idle_timeout)
    );
    h.node.handle_closed(h.now, 1, CloseCause::KeepaliveTimeout);
    h.drain();
    h.at(h.now + Duration::from_secs(2));
    assert_eq!(h.dials().len(), 2);
}
