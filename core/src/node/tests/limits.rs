//! Connection limits: inbound, outbound, per IP.

use super::*;

#[test]
fn inbound_limit_refuses_before_handshake() {
    let config = NodeConfig {
        max_inbound: 2,
        ..Default::default()
    };
    let mut h = Harness::new(config);
    // Still handshaking: the slots are taken at accept time, before any crypto.
    assert!(h.node.handle_incoming(h.now, 1, addr(1, 1)));
    assert!(h.node.handle_incoming(h.now, 2, addr(2, 1)));
    assert!(!h.node.handle_incoming(h.now, 3, addr(3, 1)));
    assert_eq!(h.node.stats().refused_inbound, 1);
    assert_eq!(h.drain(), vec![], "a refusal costs no output");
    h.node.handle_closed(h.now, 1, CloseCause::HandshakeTimeout);
    assert!(h.node.handle_incoming(h.now, 3, addr(3, 1)));
    assert_eq!(h.node.stats().inbound, 2);
}

#[test]
fn per_ip_limit_holds() {
    let config = NodeConfig {
        max_per_ip: 2,
        ..Default::default()
    };
    let mut h = Harness::new(config);
    assert!(h.node.handle_incoming(h.now, 1, addr(7, 1)));
    assert!(h.node.handle_incoming(h.now, 2, addr(7, 2)));
    assert!(!h.node.handle_incoming(h.now, 3, addr(7, 3)));
    assert!(
        h.node.handle_incoming(h.now, 4, addr(8, 1)),
        "other hosts are unaffected"
    );
    assert_eq!(h.node.stats().refused_per_ip, 1);
    // Outbound dials to the same IP count too: postponed, not emitted.
    h.node
        .add_address(h.now, addr(7, 4000), None, true)
        .unwrap();
    assert_eq!(h.dials(), vec![]);
    assert_eq!(h.node.stats().dials_deferred, 1);
    h.node
        .handle_closed(h.now, 1, CloseCause::Local(CloseCode::Normal));
    h.next_deadline();
    assert_eq!(h.dials(), vec![addr(7, 4000)]);
    assert!(
        !h.node.handle_incoming(h.now, 5, addr(7, 5)),
        "the dial holds a slot"
    );
}

#[test]
fn outbound_limit_holds_dials_until_a_slot_frees() {
    let config = NodeConfig {
        max_outbound: 2,
        ..Default::default()
    };
    let mut h = Harness::new(config);
    for host in 1..=3 {
        h.node
            .add_address(h.now, addr(host, 4000), None, true)
            .unwrap();
    }
    assert_eq!(h.dials(), vec![addr(1, 4000), addr(2, 4000)]);
    assert_eq!(h.node.stats().outbound, 2);
    // The waiting dial does not make the node spin: only the dials' deadlines are armed.
    assert_eq!(
        h.node.poll_timeout(),
        Some(h.now + h.node.config().handshake_timeout)
    );
    h.node.handle_dial_failed(h.now, addr(1, 4000), "refused");
    assert_eq!(h.dials(), vec![addr(3, 4000)]);
}
