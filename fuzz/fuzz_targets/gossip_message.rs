//! Decodes arbitrary bytes as a gossip message body: the first input byte is the message type
//! (so every type, defined or not, is reached), the rest the body. Decoding must not panic;
//! whatever decodes must hold to the codec's list bounds and topic order and re-encode to
//! exactly the frame it came from (the encoding is canonical), with `body_len` agreeing.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use starling_core::dht::message::MAX_WIRE_CONTACTS;
use starling_core::dht::NodeContact;
use starling_core::gossip::GossipMessage;
use starling_core::wire::{
    decode_message, message_to_frame, Frame, Limits, ProtocolId, WireMessage,
};

use starling_core::gossip::{MAX_DIGEST_BUCKETS, MAX_IDS_PER_MESSAGE, MAX_TOPICS};

fuzz_target!(|data: &[u8]| {
    let Some((&msg_type, body)) = data.split_first() else {
        return;
    };
    let limits = Limits::default();
    let frame = Frame::new(ProtocolId::GOSSIP, msg_type, Bytes::copy_from_slice(body));
    let original = frame.clone();
    let Ok(msg) = decode_message::<GossipMessage<NodeContact>>(frame, &limits) else {
        return;
    };
    match &msg {
        GossipMessage::Shuffle { peers, .. } | GossipMessage::ShuffleReply { peers } => {
            assert!(peers.len() <= MAX_WIRE_CONTACTS);
        }
        GossipMessage::Topics { topics } => {
            assert!(topics.len() <= MAX_TOPICS);
            assert!(topics.windows(2).all(|w| w[0] < w[1]));
        }
        GossipMessage::IHave { entries, .. } => assert!(entries.len() <= MAX_IDS_PER_MESSAGE),
        GossipMessage::Graft { ids, .. }
        | GossipMessage::Pull { ids, .. }
        | GossipMessage::BucketIds { ids, .. } => assert!(ids.len() <= MAX_IDS_PER_MESSAGE),
        GossipMessage::Digest { buckets, .. } => assert!(buckets.len() <= MAX_DIGEST_BUCKETS),
        _ => {}
    }
    assert_eq!(msg.msg_type(), msg_type);
    assert_eq!(msg.body_len(), original.body.len());
    let again = message_to_frame(&msg);
    assert_eq!(again, original);
    // And the re-encoding decodes to the same value.
    assert_eq!(decode_message(again, &limits).as_ref(), Ok(&msg));
});
