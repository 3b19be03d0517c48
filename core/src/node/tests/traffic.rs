//! Established connections: idle timeout, dispatch, backpressure, stale events.

use super::*;

#[test]
fn idle_connection_is_closed() {
    let mut h = Harness::new(NodeConfig::default());
    let idle = h.node.config().idle_timeout;
    h.accept(1, addr(1, 1), peer(1));
    h.drain();
    // Traffic either way keeps it open: a frame in at 4 min, a frame out at 8 min.
    h.at(Instant::ZERO + SECOND.saturating_mul(240));
    h.node.handle_frame(h.now, 1, frame(ProtocolId::DHT));
    h.at(Instant::ZERO + SECOND.saturating_mul(480));
    h.node.send(h.now, peer(1), frame(ProtocolId::DHT)).unwrap();
    h.drain();
    // The first deadline (5 min) fired early and was re-armed at 4 + 5 min; that one fires
    // early too and is re-armed at 8 + 5 min, when the connection is closed.
    assert_eq!(
        h.node.poll_timeout(),
        Some(Instant::ZERO + SECOND.saturating_mul(540))
    );
    h.next_deadline();
    assert_eq!(h.drain(), vec![]);
    assert_eq!(
        h.node.poll_timeout(),
        Some(Instant::ZERO + SECOND.saturating_mul(480) + idle)
    );
    h.next_deadline();
    assert_eq!(
        h.drain(),
        vec![
            NodeOutput::Close {
                conn: 1,
                code: CloseCode::Normal
            },
            NodeOutput::Event(NodeEvent::PeerDisconnected {
                peer: peer(1),
                cause: CloseCause::Local(CloseCode::Normal)
            }),
        ]
    );
    assert_eq!(h.node.stats().idle_closed, 1);
    assert_eq!(h.node.poll_timeout(), None);
}

#[test]
fn frames_of_unknown_protocols_are_dropped() {
    let config = NodeConfig {
        protocols: vec![ProtocolId::GOSSIP],
        ..Default::default()
    };
    let mut h = Harness::new(config);
    h.accept(1, addr(1, 1), peer(1));
    h.drain();
    h.node.handle_frame(h.now, 1, frame(ProtocolId::GOSSIP));
    h.node.handle_frame(h.now, 1, frame(ProtocolId::RAFT));
    h.node.handle_frame(h.now, 1, frame(ProtocolId(999)));
    assert_eq!(
        h.events(),
        vec![NodeEvent::Frame {
            peer: peer(1),
            frame: frame(ProtocolId::GOSSIP)
        }]
    );
    let stats = h.node.stats();
    assert_eq!(
        (stats.frames_in, stats.frames_dropped_unknown_protocol),
        (3, 2)
    );
    // Frames before the handshake completes, or on unknown connections, are ignored.
    assert!(h.node.handle_incoming(h.now, 2, addr(2, 1)));
    h.node.handle_frame(h.now, 2, frame(ProtocolId::GOSSIP));
    h.node.handle_frame(h.now, 99, frame(ProtocolId::GOSSIP));
    assert_eq!(h.events(), vec![]);
    assert_eq!(h.node.stats().frames_ignored, 2);
}

#[test]
fn backpressure_pauses_sends_to_that_peer() {
    let mut h = Harness::new(NodeConfig::default());
    h.accept(1, addr(1, 1), peer(1));
    h.accept(2, addr(2, 1), peer(2));
    h.drain();
    h.node.handle_backpressure(h.now, 1, true);
    assert_eq!(
        h.events(),
        vec![NodeEvent::Backpressure {
            peer: peer(1),
            paused: true
        }]
    );
    assert_eq!(
        h.node.send(h.now, peer(1), frame(ProtocolId::DHT)),
        Err(NodeError::Paused)
    );
    assert_eq!(h.node.broadcast(h.now, &frame(ProtocolId::DHT)), 1);
    assert_eq!(
        h.drain(),
        vec![NodeOutput::Send {
            conn: 2,
            frame: frame(ProtocolId::DHT)
        }]
    );
    h.node.handle_backpressure(h.now, 1, true);
    assert_eq!(h.drain(), vec![], "no change, no event");
    h.node.handle_backpressure(h.now, 1, false);
    assert_eq!(
        h.events(),
        vec![NodeEvent::Backpressure {
            peer: peer(1),
            paused: false
        }]
    );
    assert_eq!(h.node.send(h.now, peer(1), frame(ProtocolId::DHT)), Ok(()));
    assert_eq!(
        h.node.send(h.now, peer(3), frame(ProtocolId::DHT)),
        Err(NodeError::NotConnected)
    );
    assert!(h.node.peers().all(|p| !p.paused));
}

#[test]
fn events_about_unknown_or_closed_connections_are_ignored() {
    let mut h = Harness::new(NodeConfig::default());
    h.node.handle_closed(h.now, 5, CloseCause::BadMac);
    h.node.handle_backpressure(h.now, 5, true);
    h.node.handle_dial_failed(h.now, addr(1, 1), "?");
    h.accept(1, addr(1, 1), peer(1));
    h.node.handle_established(h.now, 1, peer(2), None);
    assert!(
        !h.node.handle_incoming(h.now, 1, addr(3, 3)),
        "conn id in use"
    );
    h.node.handle_closed(h.now, 1, CloseCause::KeepaliveTimeout);
    h.node.handle_closed(h.now, 1, CloseCause::KeepaliveTimeout);
    h.node.handle_frame(h.now, 1, frame(ProtocolId::DHT));
    let events = h.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(h.node.stats().stale_events, 6);
    assert_eq!(h.node.stats().inbound, 0);
    // An establishment nobody announced is closed rather than left dangling.
    h.node.handle_established(h.now, 77, peer(3), None);
    assert_eq!(
        h.drain(),
        vec![NodeOutput::Close {
            conn: 77,
            code: CloseCode::Normal
        }]
    );
}

#[test]
fn undrained_outputs_refuse_frames_instead_of_growing() {
    let mut h = Harness::new(NodeConfig::default());
    h.accept(1, addr(1, 1), peer(1));
    // The adapter forgets to drain: sends are refused past a fixed bound, and so are deliveries.
    let sent = (0..1000)
        .take_while(|_| h.node.send(h.now, peer(1), frame(ProtocolId::DHT)).is_ok())
        .count();
    assert!(sent < 1000);
    assert_eq!(
        h.node.send(h.now, peer(1), frame(ProtocolId::DHT)),
        Err(NodeError::QueueFull)
    );
    assert_eq!(h.node.broadcast(h.now, &frame(ProtocolId::DHT)), 0);
    h.node.handle_frame(h.now, 1, frame(ProtocolId::DHT));
    assert_eq!(h.node.stats().frames_dropped_queue_full, 1);
    assert_eq!(h.drain().len(), sent + 1);
    assert_eq!(h.node.send(h.now, peer(1), frame(ProtocolId::DHT)), Ok(()));
}

#[test]
fn full_address_book_refuses_new_addresses() {
    let config = NodeConfig {
        max_known_addresses: 1,
        ..Default::default()
    };
    let mut h = Harness::new(config);
    h.node.add_address(h.now, addr(1, 1), None, true).unwrap();
    assert_eq!(
        h.node.add_address(h.now, addr(2, 1), None, false),
        Err(NodeError::AddressBookFull { max: 1 })
    );
    assert_eq!(
        h.node.add_address(h.now, addr(2, 1), None, true),
        Err(NodeError::AddressBookFull { max: 1 }),
        "the only address is persistent and cannot be evicted"
    );
    assert_eq!(h.node.stats().addresses_refused, 2);
}
