//! Decodes arbitrary bytes as a DHT message body: the first input byte is the message type (so
//! every type, defined or not, is reached), the rest the body. Decoding must not panic; whatever
//! decodes must respect the contact bound and re-encode to exactly the frame it came from (the
//! encoding is canonical), with `body_len` agreeing.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use starling_core::dht::message::MAX_WIRE_CONTACTS;
use starling_core::dht::{DhtMessage, NodeContact};
use starling_core::wire::{
    decode_message, message_to_frame, Frame, Limits, ProtocolId, WireMessage,
};

fuzz_target!(|data: &[u8]| {
    let Some((&msg_type, body)) = data.split_first() else {
        return;
    };
    let limits = Limits::default();
    let frame = Frame::new(ProtocolId::DHT, msg_type, Bytes::copy_from_slice(body));
    let original = frame.clone();
    let Ok(msg) = decode_message::<DhtMessage<NodeContact>>(frame, &limits) else {
        return;
    };
    if let DhtMessage::Nodes { contacts, .. } | DhtMessage::Value { contacts, .. } = &msg {
        assert!(contacts.len() <= MAX_WIRE_CONTACTS);
    }
    assert_eq!(msg.body_len(), original.body.len());
    let again = message_to_frame(&msg);
    assert_eq!(again, original);
    // And the re-encoding decodes to the same value.
    assert_eq!(decode_message(again, &limits).as_ref(), Ok(&msg));
});
