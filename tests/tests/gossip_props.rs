//! Property tests for the gossip wire messages: every message round-trips through the codec
//! (whole and streamed), lists are refused exactly when they exceed their caps, and decoding
//! arbitrary or corrupted bodies never panics while whatever decodes is canonical.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use starling_core::gossip::{
    Announcement, BucketDigest, GossipMessage, MessageId, Payload, TopicId,
};
use starling_core::id::PeerId;
use starling_core::wire::{
    decode_message, encode_message, message_to_frame, DecodeError, Frame, FrameDecoder, Limits,
    ProtocolId, WireMessage, MAX_WIRE_CONTACTS,
};
use starling_core::NodeContact;

type Msg = GossipMessage<NodeContact>;

use starling_core::gossip::{MAX_DIGEST_BUCKETS, MAX_IDS_PER_MESSAGE, MAX_TOPICS};

/// The highest gossip message type byte.
const LAST_TYPE: u8 = 14;

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    let ip = prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ];
    (ip, any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

fn contact() -> impl Strategy<Value = NodeContact> {
    (any::<[u8; 32]>(), socket_addr()).prop_map(|(peer, addr)| NodeContact {
        peer: PeerId::from_bytes(peer),
        addr,
    })
}

fn contacts() -> impl Strategy<Value = Vec<NodeContact>> {
    prop::collection::vec(contact(), 0..=MAX_WIRE_CONTACTS)
}

fn topic() -> impl Strategy<Value = TopicId> {
    any::<u64>().prop_map(TopicId)
}

fn message_id() -> impl Strategy<Value = MessageId> {
    any::<[u8; 16]>().prop_map(MessageId)
}

/// A list of up to `cap` items, usually short (so cases stay quick) but sometimes up to the cap.
fn list<S: Strategy>(item: impl Fn() -> S, cap: usize) -> impl Strategy<Value = Vec<S::Value>> {
    prop_oneof![
        4 => prop::collection::vec(item(), 0..=16),
        1 => prop::collection::vec(item(), 0..=cap),
    ]
}

fn ids() -> impl Strategy<Value = Vec<MessageId>> {
    list(message_id, MAX_IDS_PER_MESSAGE)
}

/// Sorted and without duplicates, as the codec requires.
fn topics() -> impl Strategy<Value = Vec<TopicId>> {
    prop_oneof![
        4 => prop::collection::btree_set(any::<u64>(), 0..=16),
        1 => prop::collection::btree_set(any::<u64>(), 0..=MAX_TOPICS),
    ]
    .prop_map(|set: BTreeSet<u64>| set.into_iter().map(TopicId).collect())
}

fn announcements() -> impl Strategy<Value = Vec<Announcement>> {
    let entry = || (message_id(), any::<u16>()).prop_map(|(id, hops)| Announcement { id, hops });
    list(entry, MAX_IDS_PER_MESSAGE)
}

fn digests() -> impl Strategy<Value = Vec<BucketDigest>> {
    let digest =
        || (any::<u32>(), message_id()).prop_map(|(count, xor)| BucketDigest { count, xor });
    list(digest, MAX_DIGEST_BUCKETS)
}

fn payload() -> impl Strategy<Value = Box<Payload>> {
    (
        topic(),
        any::<u64>(),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..=1024),
    )
        .prop_map(|(topic, published_ms, hops, data)| {
            Box::new(Payload {
                topic,
                published_ms,
                hops,
                data: Bytes::from(data),
            })
        })
}

fn message() -> impl Strategy<Value = Msg> {
    prop_oneof![
        Just(GossipMessage::Join),
        (contact(), any::<u8>())
            .prop_map(|(joiner, ttl)| GossipMessage::ForwardJoin { joiner, ttl }),
        any::<bool>().prop_map(|high_priority| GossipMessage::Neighbor { high_priority }),
        any::<bool>().prop_map(|accepted| GossipMessage::NeighborReply { accepted }),
        Just(GossipMessage::Disconnect),
        (contact(), any::<u8>(), contacts())
            .prop_map(|(origin, ttl, peers)| GossipMessage::Shuffle { origin, ttl, peers }),
        contacts().prop_map(|peers| GossipMessage::ShuffleReply { peers }),
        topics().prop_map(|topics| GossipMessage::Topics { topics }),
        payload().prop_map(GossipMessage::Gossip),
        (topic(), announcements())
            .prop_map(|(topic, entries)| GossipMessage::IHave { topic, entries }),
        (topic(), ids()).prop_map(|(topic, ids)| GossipMessage::Graft { topic, ids }),
        topic().prop_map(|topic| GossipMessage::Prune { topic }),
        (topic(), any::<u64>(), digests()).prop_map(|(topic, first_bucket, buckets)| {
            GossipMessage::Digest {
                topic,
                first_bucket,
                buckets,
            }
        }),
        (topic(), any::<u64>(), ids(), any::<bool>()).prop_map(
            |(topic, bucket, ids, want_reply)| GossipMessage::BucketIds {
                topic,
                bucket,
                ids,
                want_reply,
            }
        ),
        (topic(), ids()).prop_map(|(topic, ids)| GossipMessage::Pull { topic, ids }),
    ]
}

/// Decodes `frame` as a gossip message; if it decodes, checks that it holds to the codec's
/// bounds and ordering and re-encodes to the same frame.
fn check_canonical(frame: Frame) -> Result<(), TestCaseError> {
    let original = frame.clone();
    if let Ok(msg) = decode_message::<Msg>(frame, &Limits::DEFAULT) {
        match &msg {
            GossipMessage::Shuffle { peers, .. } | GossipMessage::ShuffleReply { peers } => {
                prop_assert!(peers.len() <= MAX_WIRE_CONTACTS);
            }
            GossipMessage::Topics { topics } => {
                prop_assert!(topics.len() <= MAX_TOPICS);
                prop_assert!(topics.windows(2).all(|w| w[0] < w[1]));
            }
            GossipMessage::IHave { entries, .. } => {
                prop_assert!(entries.len() <= MAX_IDS_PER_MESSAGE);
            }
            GossipMessage::Graft { ids, .. }
            | GossipMessage::Pull { ids, .. }
            | GossipMessage::BucketIds { ids, .. } => {
                prop_assert!(ids.len() <= MAX_IDS_PER_MESSAGE);
            }
            GossipMessage::Digest { buckets, .. } => {
                prop_assert!(buckets.len() <= MAX_DIGEST_BUCKETS);
            }
            _ => {}
        }
        prop_assert!(original.msg_type <= LAST_TYPE);
        prop_assert_eq!(msg.msg_type(), original.msg_type);
        prop_assert_eq!(msg.body_len(), original.body.len());
        prop_assert_eq!(message_to_frame(&msg), original);
    }
    Ok(())
}

/// A message whose list (of the kind `which` picks) holds `n` items.
fn list_message(which: u8, n: usize) -> Msg {
    let id = |i: usize| {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
        MessageId(bytes)
    };
    let topic = TopicId(7);
    match which {
        0 => GossipMessage::Topics {
            topics: (0..n as u64).map(TopicId).collect(),
        },
        1 => GossipMessage::IHave {
            topic,
            entries: (0..n)
                .map(|i| Announcement { id: id(i), hops: 1 })
                .collect(),
        },
        2 => GossipMessage::Graft {
            topic,
            ids: (0..n).map(id).collect(),
        },
        3 => GossipMessage::Pull {
            topic,
            ids: (0..n).map(id).collect(),
        },
        4 => GossipMessage::BucketIds {
            topic,
            bucket: 3,
            ids: (0..n).map(id).collect(),
            want_reply: true,
        },
        5 => GossipMessage::Digest {
            topic,
            first_bucket: 3,
            buckets: vec![BucketDigest::default(); n],
        },
        _ => GossipMessage::ShuffleReply {
            peers: (0..n)
                .map(|i| NodeContact {
                    peer: PeerId::from_bytes([i as u8; 32]),
                    addr: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 9),
                })
                .collect(),
        },
    }
}

fn list_cap(which: u8) -> usize {
    match which {
        0 => MAX_TOPICS,
        1..=4 => MAX_IDS_PER_MESSAGE,
        5 => MAX_DIGEST_BUCKETS,
        _ => MAX_WIRE_CONTACTS,
    }
}

proptest! {
    #[test]
    fn messages_round_trip(msg in message()) {
        let frame = message_to_frame(&msg);
        prop_assert_eq!(frame.protocol, ProtocolId::GOSSIP);
        prop_assert_eq!(frame.body.len(), msg.body_len());
        prop_assert_eq!(decode_message(frame, &Limits::DEFAULT), Ok(msg.clone()));
        // And through a whole encoded frame.
        let mut out = BytesMut::new();
        encode_message(&msg, &mut out);
        let mut wire = out.freeze();
        let frame = Frame::decode(&mut wire, &Limits::DEFAULT).unwrap();
        prop_assert!(wire.is_empty());
        prop_assert_eq!(decode_message(frame, &Limits::DEFAULT), Ok(msg));
    }

    /// Messages written back to back with `encode_message` and read in arbitrary chunks by the
    /// streaming decoder come out whole and in order.
    #[test]
    fn messages_round_trip_through_a_stream(
        msgs in prop::collection::vec(message(), 1..6),
        chunk in 1usize..700,
    ) {
        let mut wire = BytesMut::new();
        for msg in &msgs {
            encode_message(msg, &mut wire);
        }
        let mut decoder = FrameDecoder::new(Limits::DEFAULT);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                out.push(decode_message::<Msg>(frame, &Limits::DEFAULT).unwrap());
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(out, msgs);
    }

    /// Near each cap, a list decodes exactly when it holds at most the cap (which also pins
    /// this file's copies of the caps to the codec's).
    #[test]
    fn lists_are_refused_exactly_over_their_caps(which in 0u8..7, extra in 0usize..4, over in any::<bool>()) {
        let cap = list_cap(which);
        let n = if over { cap + 1 + extra } else { cap - extra };
        let result = decode_message::<Msg>(message_to_frame(&list_message(which, n)), &Limits::DEFAULT);
        if over {
            prop_assert_eq!(
                result,
                Err(DecodeError::ListTooLong { len: n as u64, max: cap as u32 })
            );
        } else {
            prop_assert_eq!(result, Ok(list_message(which, n)));
        }
    }

    /// Arbitrary bodies, under every type byte (weighted towards the defined ones), never panic
    /// the decoder; whatever decodes is canonical.
    #[test]
    fn arbitrary_bodies_decode_or_fail_cleanly(
        msg_type in prop_oneof![3 => 0u8..=LAST_TYPE, 1 => any::<u8>()],
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        check_canonical(Frame::new(ProtocolId::GOSSIP, msg_type, body))?;
    }

    /// Valid bodies with bytes overwritten, cut or inserted reach deeper into the decoder than
    /// random bytes do (past the counts and lengths); the same rules hold.
    #[test]
    fn corrupted_bodies_decode_or_fail_cleanly(
        msg in message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let frame = message_to_frame(&msg);
        let mut body = frame.body.to_vec();
        for (at, byte, how) in edits {
            let i = at.index(body.len() + 1);
            match how {
                0 if i < body.len() => body[i] = byte,
                1 => body.truncate(i),
                _ => body.insert(i, byte),
            }
        }
        check_canonical(Frame::new(ProtocolId::GOSSIP, frame.msg_type, body))?;
    }
}
