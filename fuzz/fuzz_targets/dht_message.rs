//! Decodes arbitrary bytes as DHT message bodies of every type; whatever decodes must re-encode
//! to the same frame (the encoding is canonical) and stay within the contact bound.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use starling_core::dht::message::MAX_WIRE_CONTACTS;
use starling_core::dht::{DhtMessage, NodeContact};
use starling_core::wire::{decode_message, message_to_frame, Frame, Limits, ProtocolId};

fuzz_target!(|data: &[u8]| {
    let Some((&msg_type, body)) = data.split_first() else {
        return;
    };
    let limits = Limits::default();
    let frame = Frame::new(ProtocolId::DHT, msg_type, Bytes::copy_from_slice(body));
    let original = frame.clone();
    if let Ok(msg) = decode_message::<DhtMessage<NodeContact>>(frame, &limits) {
        if let DhtMessage::Nodes { contacts, .. } | DhtMessage::Value { contacts, .. } = &msg {
            assert!(contacts.len() <= MAX_WIRE_CONTACTS);
        }
        assert_eq!(message_to_frame(&msg), original);
    }
});
