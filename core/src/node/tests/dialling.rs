//! The dial queue: backoff, retries, timeouts, persistent addresses.

use super::*;

#[test]
fn persistent_peer_is_redialled_with_exponential_backoff() {
    let mut h = Harness::new(NodeConfig::default());
    let to = addr(1, 4000);
    h.node.add_address(h.now, to, Some(peer(1)), true).unwrap();
    assert_eq!(h.dials(), vec![to]);
    let mut failed_at = h.now;
    for attempt in 1..=9u32 {
        h.node.handle_dial_failed(h.now, to, "connection refused");
        let retry_at = match h.events().as_slice() {
            [NodeEvent::DialFailed {
                addr,
                attempts,
                retry_at: Some(at),
            }] => {
                assert_eq!((*addr, *attempts), (to, attempt));
                *at
            }
            other => panic!("attempt {attempt}: {other:?}"),
        };
        let base = SECOND
            .saturating_mul(1 << (attempt - 1).min(6))
            .min(SECOND.saturating_mul(60));
        let wait = retry_at - failed_at;
        let (lo, hi) = (base.as_nanos() / 100 * 80, base.as_nanos() / 100 * 120);
        assert!(
            (lo..=hi).contains(&wait.as_nanos()),
            "attempt {attempt}: waited {wait}"
        );
        // Not before its time, then exactly at it.
        h.at(Instant::from_nanos(retry_at.as_nanos() - 1));
        assert_eq!(h.dials(), vec![]);
        assert_eq!(h.next_deadline(), retry_at);
        assert_eq!(h.dials(), vec![to]);
        failed_at = h.now;
    }
    // Success resets the count: a later disconnect waits only the initial backoff.
    h.connect(to, 1, peer(1));
    h.node.handle_closed(h.now, 1, CloseCause::KeepaliveTimeout);
    h.drain();
    let due = h.node.poll_timeout().unwrap() - h.now;
    assert!(
        due >= Duration::from_millis(800) && due <= Duration::from_millis(1200),
        "{due}"
    );
}

#[test]
fn non_persistent_address_is_dropped_after_max_attempts() {
    let mut h = Harness::new(NodeConfig::default());
    let to = addr(1, 4000);
    h.node.add_address(h.now, to, None, false).unwrap();
    for attempt in 1..=5 {
        assert_eq!(h.dials(), vec![to], "attempt {attempt}");
        h.node.handle_dial_failed(h.now, to, "timeout");
        if attempt < 5 {
            h.next_deadline();
        }
    }
    assert_eq!(h.node.stats().known_addresses, 0);
    assert_eq!(h.node.poll_timeout(), None);
    assert_eq!(h.node.stats().dial_failures, 5);
}

#[test]
fn dial_that_never_completes_times_out() {
    let mut h = Harness::new(NodeConfig::default());
    let to = addr(1, 4000);
    h.node.add_address(h.now, to, None, true).unwrap();
    assert_eq!(h.dials(), vec![to]);
    // The adapter never answers; the node gives up and frees the slot.
    assert_eq!(
        h.next_deadline(),
        Instant::ZERO + h.node.config().handshake_timeout
    );
    assert!(matches!(
        h.events().as_slice(),
        [NodeEvent::DialFailed { attempts: 1, .. }]
    ));
    assert_eq!(h.node.stats().outbound, 0);
    // A connection reported after that is not wanted.
    h.node.handle_dialed(h.now, to, 7);
    assert_eq!(
        h.drain(),
        vec![NodeOutput::Close {
            conn: 7,
            code: CloseCode::Normal
        }]
    );
}

#[test]
fn silent_handshake_is_closed_at_the_deadline() {
    let mut h = Harness::new(NodeConfig::default());
    assert!(h.node.handle_incoming(h.now, 1, addr(1, 1)));
    h.next_deadline();
    assert_eq!(
        h.drain(),
        vec![NodeOutput::Close {
            conn: 1,
            code: CloseCode::Unresponsive
        }]
    );
    assert_eq!(h.node.stats().inbound, 0);
    assert_eq!(h.node.stats().handshake_timeouts, 1);
}

#[test]
fn dialled_peer_with_another_identity_is_closed_and_retried() {
    let mut h = Harness::new(NodeConfig::default());
    let to = addr(1, 4000);
    h.node.add_address(h.now, to, Some(peer(1)), true).unwrap();
    h.dials();
    h.connect(to, 1, peer(66));
    let out = h.drain();
    assert_eq!(
        out[0],
        NodeOutput::Close {
            conn: 1,
            code: CloseCode::IdentityMismatch
        }
    );
    assert!(matches!(
        out[1],
        NodeOutput::Event(NodeEvent::DialFailed {
            retry_at: Some(_),
            ..
        })
    ));
    assert_eq!(h.node.peers().count(), 0);
}

#[test]
fn persistent_address_of_a_peer_connected_inbound_waits_for_its_disconnect() {
    let mut h = Harness::new(NodeConfig::default());
    let to = addr(1, 4000);
    h.accept(1, addr(1, 50000), peer(1));
    h.drain();
    h.node.add_address(h.now, to, Some(peer(1)), true).unwrap();
    assert_eq!(h.dials(), vec![], "already connected");
    assert_eq!(
        h.node.poll_timeout(),
        Some(h.now + h.node.config().idle_timeout)
    );
    h.node.handle_closed(h.now, 1, CloseCause::KeepaliveTimeout);
    h.drain();
    h.next_deadline();
    assert_eq!(h.dials(), vec![to]);
}

#[test]
fn disconnect_reports_the_peer_and_redials_a_persistent_one() {
    let mut h = Harness::new(NodeConfig::default());
    let to = addr(1, 4000);
    h.node.add_address(h.now, to, None, true).unwrap();
    h.dials();
    h.connect(to, 1, peer(1));
    h.drain();
    h.node.disconnect(h.now, peer(1));
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
    h.node
        .handle_closed(h.now, 1, CloseCause::Local(CloseCode::Normal));
    assert_eq!(
        h.drain(),
        vec![],
        "the adapter's echo of our close is ignored"
    );
    h.next_deadline();
    assert_eq!(h.dials(), vec![to]);
    // Removing the address abandons the dial under way.
    h.node.handle_dialed(h.now, to, 2);
    assert!(h.node.remove_address(h.now, to));
    assert_eq!(
        h.drain(),
        vec![NodeOutput::Close {
            conn: 2,
            code: CloseCode::Normal
        }]
    );
    assert_eq!(h.node.stats().outbound, 0);
}

#[test]
fn same_seed_same_dial_schedule() {
    let schedule = |seed| {
        let mut node = Node::new(NodeConfig::default(), peer(50), seed, Instant::ZERO);
        let mut deadlines = Vec::new();
        for host in 1..=5 {
            node.add_address(Instant::ZERO, addr(host, 1), None, true)
                .unwrap();
            node.handle_dial_failed(Instant::ZERO, addr(host, 1), "refused");
        }
        while let Some(out) = node.poll_output() {
            if let NodeOutput::Event(NodeEvent::DialFailed { retry_at, .. }) = out {
                deadlines.push(retry_at);
            }
        }
        deadlines
    };
    assert_eq!(schedule(3), schedule(3));
    assert_ne!(schedule(3), schedule(4));
}
