//! The hosted DHT joins through the first peer the node dials, even when peers that dialled it
//! first have already put contacts in its table.

use super::*;
use crate::dht::message::DhtMessage;
use crate::dht::{Dht, DhtConfig, NodeContact};
use crate::id::Key;
use crate::wire::message_to_frame;

fn dht_sends_on(outputs: &[NodeOutput], on: ConnId) -> usize {
    outputs
        .iter()
        .filter(|o| {
            matches!(o, NodeOutput::Send { conn, frame } if *conn == on && frame.protocol == ProtocolId::DHT)
        })
        .count()
}

#[test]
fn joins_through_its_first_dial_after_inbound_peers_filled_the_table() {
    let mut h = Harness::new(NodeConfig::default());
    let dht = Dht::new(DhtConfig::default(), *peer(50).key(), 1, h.now).unwrap();
    h.node.host(h.now, dht).unwrap();
    // A later node dials us first and looks itself up through us: it enters our table.
    assert!(h.node.handle_incoming(h.now, 1, addr(7, 50_000)));
    h.node.handle_established(h.now, 1, peer(7), Some(4000));
    let query = DhtMessage::<NodeContact>::FindNode {
        id: 1,
        target: Key::from_bytes([7; 32]),
    };
    h.node.handle_frame(h.now, 1, message_to_frame(&query));
    h.drain();
    assert!(h
        .node
        .protocol::<Dht<NodeContact>>()
        .is_some_and(|d| !d.table().is_empty()));
    // Then our own dial of the bootstrap node connects: we must join through it.
    h.node
        .add_address(h.now, addr(2, 4000), Some(peer(2)), true)
        .unwrap();
    assert_eq!(h.dials(), vec![addr(2, 4000)]);
    h.node.handle_dialed(h.now, addr(2, 4000), 2);
    h.node.handle_established(h.now, 2, peer(2), Some(4000));
    let out = h.drain();
    assert!(
        dht_sends_on(&out, 2) > 0,
        "no lookup went to the bootstrap node: {out:?}"
    );
}
