//! Tests of `codec.rs`.
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::*;
use crate::contact::NodeContact;
use crate::id::PeerId;
use crate::wire::{decode_message, encode_message, message_to_frame, Frame};
use bytes::BytesMut;

type Msg = GossipMessage<NodeContact>;

const T: TopicId = TopicId(0x0102_0304_0506_0708);
const T_BYTES: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

fn contact(i: u8, v6: bool) -> NodeContact {
    let ip: IpAddr = if v6 {
        format!("2001:db8::{i}").parse().unwrap()
    } else {
        format!("192.0.2.{i}").parse().unwrap()
    };
    NodeContact {
        peer: PeerId::from_bytes([i; 32]),
        addr: SocketAddr::new(ip, 4000 + u16::from(i)),
    }
}

fn contacts(n: usize) -> Vec<NodeContact> {
    (0..n).map(|i| contact(i as u8, i % 2 == 1)).collect()
}

fn id(i: usize) -> MessageId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
    bytes[8] = 0xee;
    MessageId(bytes)
}

fn ids(n: usize) -> Vec<MessageId> {
    (0..n).map(id).collect()
}

fn payload(len: usize, hops: u16, published_ms: u64) -> Box<Payload> {
    Box::new(Payload {
        topic: T,
        published_ms,
        hops,
        data: Bytes::from(vec![b'd'; len]),
    })
}

/// Every variant, with empty, small and maximum-size lists, both address families, both
/// bool values, and varints of one and several bytes.
fn samples() -> Vec<Msg> {
    vec![
        GossipMessage::Join,
        GossipMessage::ForwardJoin {
            joiner: contact(1, false),
            ttl: 0,
        },
        GossipMessage::ForwardJoin {
            joiner: contact(2, true),
            ttl: u8::MAX,
        },
        GossipMessage::Neighbor {
            high_priority: false,
        },
        GossipMessage::Neighbor {
            high_priority: true,
        },
        GossipMessage::NeighborReply { accepted: false },
        GossipMessage::NeighborReply { accepted: true },
        GossipMessage::Disconnect,
        GossipMessage::Shuffle {
            origin: contact(3, true),
            ttl: 6,
            peers: contacts(5),
        },
        GossipMessage::Shuffle {
            origin: contact(4, false),
            ttl: 1,
            peers: vec![],
        },
        GossipMessage::Shuffle {
            origin: contact(5, false),
            ttl: 2,
            peers: contacts(MAX_WIRE_CONTACTS),
        },
        GossipMessage::ShuffleReply { peers: vec![] },
        GossipMessage::ShuffleReply { peers: contacts(3) },
        GossipMessage::ShuffleReply {
            peers: contacts(MAX_WIRE_CONTACTS),
        },
        GossipMessage::Topics { topics: vec![] },
        GossipMessage::Topics {
            topics: vec![TopicId(0), T, TopicId(u64::MAX)],
        },
        GossipMessage::Topics {
            topics: (0..MAX_TOPICS as u64).map(|t| TopicId(t * 1000)).collect(),
        },
        GossipMessage::Gossip(payload(0, 0, 0)),
        GossipMessage::Gossip(payload(5, 300, 1_700_000_000_000)),
        GossipMessage::Gossip(payload(200, u16::MAX, u64::MAX)),
        GossipMessage::IHave {
            topic: T,
            entries: vec![],
        },
        GossipMessage::IHave {
            topic: T,
            entries: vec![
                Announcement { id: id(1), hops: 0 },
                Announcement {
                    id: id(2),
                    hops: u16::MAX,
                },
            ],
        },
        GossipMessage::IHave {
            topic: TopicId(u64::MAX),
            entries: (0..MAX_IDS_PER_MESSAGE)
                .map(|i| Announcement {
                    id: id(i),
                    hops: i as u16,
                })
                .collect(),
        },
        GossipMessage::Graft {
            topic: T,
            ids: vec![],
        },
        GossipMessage::Graft {
            topic: T,
            ids: ids(3),
        },
        GossipMessage::Graft {
            topic: T,
            ids: ids(MAX_IDS_PER_MESSAGE),
        },
        GossipMessage::Prune { topic: TopicId(0) },
        GossipMessage::Digest {
            topic: T,
            first_bucket: 0,
            buckets: vec![],
        },
        GossipMessage::Digest {
            topic: T,
            first_bucket: u64::MAX,
            buckets: vec![
                BucketDigest::default(),
                BucketDigest {
                    count: u32::MAX,
                    xor: id(9),
                },
            ],
        },
        GossipMessage::Digest {
            topic: T,
            first_bucket: 12_345,
            buckets: (0..MAX_DIGEST_BUCKETS)
                .map(|i| BucketDigest {
                    count: (i * 1000) as u32,
                    xor: id(i),
                })
                .collect(),
        },
        GossipMessage::BucketIds {
            topic: T,
            bucket: 7,
            ids: vec![],
            want_reply: true,
        },
        GossipMessage::BucketIds {
            topic: T,
            bucket: u64::MAX,
            ids: ids(4),
            want_reply: false,
        },
        GossipMessage::BucketIds {
            topic: T,
            bucket: 128,
            ids: ids(MAX_IDS_PER_MESSAGE),
            want_reply: true,
        },
        GossipMessage::Pull {
            topic: T,
            ids: vec![],
        },
        GossipMessage::Pull {
            topic: T,
            ids: ids(2),
        },
        GossipMessage::Pull {
            topic: T,
            ids: ids(MAX_IDS_PER_MESSAGE),
        },
    ]
}

fn decode(msg_type: u8, body: impl Into<Bytes>) -> Result<Msg, DecodeError> {
    decode_message(
        Frame::new(ProtocolId::GOSSIP, msg_type, body.into()),
        &Limits::DEFAULT,
    )
}

/// A body: the topic's bytes, then `rest`.
fn with_topic(rest: &[u8]) -> Vec<u8> {
    let mut body = T_BYTES.to_vec();
    body.extend_from_slice(rest);
    body
}

#[test]
fn every_message_round_trips() {
    for msg in samples() {
        // Through a whole encoded frame, as a stream carries it...
        let mut out = BytesMut::new();
        encode_message(&msg, &mut out);
        let mut wire = out.freeze();
        let frame = Frame::decode(&mut wire, &Limits::DEFAULT).unwrap();
        assert!(wire.is_empty());
        assert_eq!(frame.protocol, ProtocolId::GOSSIP);
        assert_eq!(frame.body.len(), msg.body_len(), "{}", msg.kind());
        assert_eq!(decode_message(frame, &Limits::DEFAULT), Ok(msg.clone()));
        // ...and through a frame value.
        let frame = message_to_frame(&msg);
        assert_eq!(decode_message(frame, &Limits::DEFAULT), Ok(msg));
    }
}

#[test]
fn type_bytes_follow_the_enum_order() {
    let order = [
        "join",
        "forward_join",
        "neighbor",
        "neighbor_reply",
        "disconnect",
        "shuffle",
        "shuffle_reply",
        "topics",
        "gossip",
        "ihave",
        "graft",
        "prune",
        "digest",
        "bucket_ids",
        "pull",
    ];
    let mut seen = [false; 15];
    for msg in samples() {
        let t = msg.msg_type();
        assert_eq!(order.get(usize::from(t)), Some(&msg.kind()));
        seen[usize::from(t)] = true;
    }
    assert!(seen.iter().all(|s| *s), "samples miss a variant");
}

#[test]
fn the_format_is_as_documented() {
    let frame = message_to_frame::<Msg>(&GossipMessage::Join);
    assert_eq!((frame.msg_type, frame.body.as_ref()), (0, &[][..]));

    let frame = message_to_frame::<Msg>(&GossipMessage::Neighbor {
        high_priority: true,
    });
    assert_eq!((frame.msg_type, frame.body.as_ref()), (2, &[1][..]));

    let frame = message_to_frame::<Msg>(&GossipMessage::ForwardJoin {
        joiner: contact(1, false),
        ttl: 6,
    });
    let mut expected = vec![1; 32];
    expected.extend_from_slice(&[4, 192, 0, 2, 1, 0x0f, 0xa1]); // 192.0.2.1:4001
    expected.push(6);
    assert_eq!((frame.msg_type, frame.body.as_ref()), (1, &expected[..]));

    let frame = message_to_frame::<Msg>(&GossipMessage::Shuffle {
        origin: contact(1, false),
        ttl: 3,
        peers: vec![contact(2, true)],
    });
    let mut expected = vec![1; 32];
    expected.extend_from_slice(&[4, 192, 0, 2, 1, 0x0f, 0xa1, 3, 1]);
    expected.extend_from_slice(&[2; 32]);
    expected.push(6);
    expected.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    expected.extend_from_slice(&[0x0f, 0xa2]); // port 4002
    assert_eq!((frame.msg_type, frame.body.as_ref()), (5, &expected[..]));

    let frame = message_to_frame::<Msg>(&GossipMessage::Topics {
        topics: vec![TopicId(1), T],
    });
    let mut expected = vec![2, 0, 0, 0, 0, 0, 0, 0, 1];
    expected.extend_from_slice(&T_BYTES);
    assert_eq!((frame.msg_type, frame.body.as_ref()), (7, &expected[..]));

    let frame = message_to_frame::<Msg>(&GossipMessage::Gossip(Box::new(Payload {
        topic: T,
        published_ms: 300,
        hops: 2,
        data: Bytes::from_static(b"abc"),
    })));
    let expected = with_topic(&[0xac, 0x02, 2, 3, b'a', b'b', b'c']);
    assert_eq!((frame.msg_type, frame.body.as_ref()), (8, &expected[..]));

    let frame = message_to_frame::<Msg>(&GossipMessage::IHave {
        topic: T,
        entries: vec![Announcement {
            id: MessageId([0xaa; 16]),
            hops: 300,
        }],
    });
    let mut expected = with_topic(&[1]);
    expected.extend_from_slice(&[0xaa; 16]);
    expected.extend_from_slice(&[0xac, 0x02]);
    assert_eq!((frame.msg_type, frame.body.as_ref()), (9, &expected[..]));

    let frame = message_to_frame::<Msg>(&GossipMessage::Prune { topic: T });
    assert_eq!((frame.msg_type, frame.body.as_ref()), (11, &T_BYTES[..]));

    let frame = message_to_frame::<Msg>(&GossipMessage::Digest {
        topic: T,
        first_bucket: 1,
        buckets: vec![BucketDigest {
            count: 128,
            xor: MessageId([0xbb; 16]),
        }],
    });
    let mut expected = with_topic(&[1, 1, 0x80, 0x01]);
    expected.extend_from_slice(&[0xbb; 16]);
    assert_eq!((frame.msg_type, frame.body.as_ref()), (12, &expected[..]));

    let frame = message_to_frame::<Msg>(&GossipMessage::BucketIds {
        topic: T,
        bucket: 5,
        ids: vec![MessageId([0xcc; 16])],
        want_reply: true,
    });
    let mut expected = with_topic(&[5, 1]);
    expected.extend_from_slice(&[0xcc; 16]);
    expected.push(1);
    assert_eq!((frame.msg_type, frame.body.as_ref()), (13, &expected[..]));

    let frame = message_to_frame::<Msg>(&GossipMessage::Pull {
        topic: T,
        ids: vec![],
    });
    assert_eq!(
        (frame.msg_type, frame.body.as_ref()),
        (14, &with_topic(&[0])[..])
    );
}

#[test]
fn every_truncation_is_an_error() {
    for msg in samples() {
        let frame = message_to_frame(&msg);
        for cut in 0..frame.body.len() {
            let result = decode(frame.msg_type, frame.body.slice(..cut));
            assert!(result.is_err(), "{} cut at {cut}: {result:?}", msg.kind());
        }
    }
}

#[test]
fn trailing_bytes_are_refused() {
    for msg in samples() {
        let frame = message_to_frame(&msg);
        let mut body = frame.body.to_vec();
        body.push(0);
        assert_eq!(
            decode(frame.msg_type, body),
            Err(DecodeError::TrailingBytes { count: 1 }),
            "{}",
            msg.kind()
        );
    }
}

#[test]
fn lists_are_bounded_by_their_caps() {
    let too_long = |len: usize, max: usize| DecodeError::ListTooLong {
        len: len as u64,
        max: max as u32,
    };
    let over: Vec<(Msg, usize)> = vec![
        (
            GossipMessage::Topics {
                topics: (0..=MAX_TOPICS as u64).map(TopicId).collect(),
            },
            MAX_TOPICS,
        ),
        (
            GossipMessage::IHave {
                topic: T,
                entries: (0..=MAX_IDS_PER_MESSAGE)
                    .map(|i| Announcement { id: id(i), hops: 1 })
                    .collect(),
            },
            MAX_IDS_PER_MESSAGE,
        ),
        (
            GossipMessage::Graft {
                topic: T,
                ids: ids(MAX_IDS_PER_MESSAGE + 1),
            },
            MAX_IDS_PER_MESSAGE,
        ),
        (
            GossipMessage::Pull {
                topic: T,
                ids: ids(MAX_IDS_PER_MESSAGE + 1),
            },
            MAX_IDS_PER_MESSAGE,
        ),
        (
            GossipMessage::BucketIds {
                topic: T,
                bucket: 1,
                ids: ids(MAX_IDS_PER_MESSAGE + 1),
                want_reply: false,
            },
            MAX_IDS_PER_MESSAGE,
        ),
        (
            GossipMessage::Digest {
                topic: T,
                first_bucket: 1,
                buckets: vec![BucketDigest::default(); MAX_DIGEST_BUCKETS + 1],
            },
            MAX_DIGEST_BUCKETS,
        ),
        (
            GossipMessage::ShuffleReply {
                peers: contacts(MAX_WIRE_CONTACTS + 1),
            },
            MAX_WIRE_CONTACTS,
        ),
        (
            GossipMessage::Shuffle {
                origin: contact(1, true),
                ttl: 1,
                peers: contacts(MAX_WIRE_CONTACTS + 1),
            },
            MAX_WIRE_CONTACTS,
        ),
    ];
    for (msg, cap) in over {
        assert_eq!(
            decode_message::<Msg>(message_to_frame(&msg), &Limits::DEFAULT),
            Err(too_long(cap + 1, cap)),
            "{}",
            msg.kind()
        );
        // A tighter configured limit wins.
        let tight = Limits {
            max_list_len: 3,
            ..Limits::DEFAULT
        };
        assert_eq!(
            decode_message::<Msg>(message_to_frame(&msg), &tight),
            Err(too_long(cap + 1, 3)),
            "{}",
            msg.kind()
        );
    }
}

/// Each list's count and what precedes it, for the tests that forge counts.
fn list_prefixes() -> Vec<(u8, Vec<u8>, usize, usize)> {
    let mut shuffle = Vec::new();
    contact(1, false).encode(&mut shuffle);
    shuffle.push(2);
    // (type, bytes before the count, cap, smallest item)
    vec![
        (TOPICS, vec![], MAX_TOPICS, TOPIC_LEN),
        (IHAVE, T_BYTES.to_vec(), MAX_IDS_PER_MESSAGE, ID_LEN + 1),
        (GRAFT, T_BYTES.to_vec(), MAX_IDS_PER_MESSAGE, ID_LEN),
        (PULL, T_BYTES.to_vec(), MAX_IDS_PER_MESSAGE, ID_LEN),
        (BUCKET_IDS, with_topic(&[3]), MAX_IDS_PER_MESSAGE, ID_LEN),
        (DIGEST, with_topic(&[3]), MAX_DIGEST_BUCKETS, ID_LEN + 1),
        (
            SHUFFLE_REPLY,
            vec![],
            MAX_WIRE_CONTACTS,
            NodeContact::MIN_ENCODED_LEN,
        ),
        (
            SHUFFLE,
            shuffle,
            MAX_WIRE_CONTACTS,
            NodeContact::MIN_ENCODED_LEN,
        ),
    ]
}

#[test]
fn huge_counts_fail_before_allocating() {
    let unlimited = Limits {
        max_list_len: u32::MAX,
        ..Limits::DEFAULT
    };
    for (msg_type, prefix, cap, min_item) in list_prefixes() {
        // A count of 2^30 (and of u64::MAX) with a few bytes behind it fails on the count,
        // naming the list's own cap even when the configured limit is larger.
        for count in [1u64 << 30, u64::MAX] {
            let mut body = prefix.clone();
            put_varint(&mut body, count);
            body.extend_from_slice(&[0; 40]);
            let frame = Frame::new(ProtocolId::GOSSIP, msg_type, body);
            assert_eq!(
                decode_message::<Msg>(frame, &unlimited),
                Err(DecodeError::ListTooLong {
                    len: count,
                    max: cap as u32
                }),
                "type {msg_type}"
            );
        }
        // A count within the cap that the bytes left cannot hold fails before the first
        // item is read.
        let mut body = prefix.clone();
        put_varint(&mut body, cap as u64);
        body.extend_from_slice(&vec![0; min_item]);
        assert_eq!(
            decode(msg_type, body),
            Err(DecodeError::UnexpectedEnd {
                needed: cap * min_item,
                remaining: min_item
            }),
            "type {msg_type}"
        );
    }
}

#[test]
fn bad_bools_are_refused() {
    for bad in [2u8, 0x80, u8::MAX] {
        assert_eq!(
            decode(NEIGHBOR, vec![bad]),
            Err(DecodeError::InvalidValue {
                field: "high_priority"
            })
        );
        assert_eq!(
            decode(NEIGHBOR_REPLY, vec![bad]),
            Err(DecodeError::InvalidValue { field: "accepted" })
        );
        assert_eq!(
            decode(BUCKET_IDS, with_topic(&[1, 0, bad])),
            Err(DecodeError::InvalidValue {
                field: "want_reply"
            })
        );
    }
}

#[test]
fn bad_hops_are_refused() {
    let mut wide = Vec::new();
    put_varint(&mut wide, u64::from(u16::MAX) + 1);
    let mut widest = Vec::new();
    put_varint(&mut widest, u64::MAX);
    for (hops, error) in [
        (wide, DecodeError::InvalidValue { field: "hops" }),
        (widest, DecodeError::InvalidValue { field: "hops" }),
        (vec![0x80, 0x00], DecodeError::VarintNonCanonical),
        (vec![0xff; 11], DecodeError::VarintOverflow),
    ] {
        // In a payload (published_ms 1, then the hops, then empty data)...
        let mut body = with_topic(&[1]);
        body.extend_from_slice(&hops);
        body.push(0);
        assert_eq!(decode(GOSSIP, body), Err(error.clone()));
        // ...and in an announcement.
        let mut body = with_topic(&[1]);
        body.extend_from_slice(&[0; 16]);
        body.extend_from_slice(&hops);
        assert_eq!(decode(IHAVE, body), Err(error));
    }
}

#[test]
fn bad_fields_are_refused() {
    // Unsorted and duplicate topics.
    for topics in [[2u64, 1], [1, 1], [u64::MAX, 0]] {
        let mut body = vec![2];
        for t in topics {
            body.extend_from_slice(&t.to_be_bytes());
        }
        assert_eq!(
            decode(TOPICS, body),
            Err(DecodeError::InvalidValue { field: "topics" }),
            "{topics:?}"
        );
    }
    // ...also when only a later pair is out of order.
    let mut body = vec![3];
    for t in [1u64, 5, 3] {
        body.extend_from_slice(&t.to_be_bytes());
    }
    assert_eq!(
        decode(TOPICS, body),
        Err(DecodeError::InvalidValue { field: "topics" })
    );
    // Unknown address family in a contact.
    let mut body = message_to_frame::<Msg>(&GossipMessage::ForwardJoin {
        joiner: contact(1, false),
        ttl: 1,
    })
    .body
    .to_vec();
    body[32] = 5;
    assert_eq!(
        decode(FORWARD_JOIN, body),
        Err(DecodeError::InvalidValue { field: "family" })
    );
    // A bucket count wider than 32 bits.
    let mut body = with_topic(&[0, 1]);
    put_varint(&mut body, 1 << 32);
    body.extend_from_slice(&[0; 16]);
    assert_eq!(decode(DIGEST, body), Err(DecodeError::VarintOverflow));
    // Over-long varints for the publish time and the bucket number.
    assert_eq!(
        decode(GOSSIP, with_topic(&[0x81, 0x00, 0, 0])),
        Err(DecodeError::VarintNonCanonical)
    );
    assert_eq!(
        decode(PULL, with_topic(&[0x80, 0x00])),
        Err(DecodeError::VarintNonCanonical)
    );
    // Data above the byte-string limit.
    let small = Limits {
        max_bytes_len: 4,
        ..Limits::DEFAULT
    };
    assert_eq!(
        decode_message::<Msg>(
            message_to_frame::<Msg>(&GossipMessage::Gossip(payload(5, 0, 0))),
            &small
        ),
        Err(DecodeError::BytesTooLong { len: 5, max: 4 })
    );
    // Unknown types, whatever the body.
    for msg_type in [15u8, 0x80, u8::MAX] {
        for body in [&[][..], &[1][..], &[0; 40][..]] {
            assert_eq!(
                decode(msg_type, body),
                Err(DecodeError::UnknownMessageType {
                    protocol: ProtocolId::GOSSIP,
                    msg_type
                })
            );
        }
    }
    // Another protocol's frame.
    assert_eq!(
        decode_message::<Msg>(Frame::new(ProtocolId::DHT, JOIN, Bytes::new()), &small),
        Err(DecodeError::WrongProtocol {
            expected: ProtocolId::GOSSIP,
            found: ProtocolId::DHT
        })
    );
}

#[test]
fn gossip_data_is_a_slice_of_the_frame() {
    let frame = message_to_frame::<Msg>(&GossipMessage::Gossip(payload(100, 3, 42)));
    let body_range = frame.body.as_ptr_range();
    let Ok(GossipMessage::Gossip(payload)) = decode_message::<Msg>(frame, &Limits::DEFAULT) else {
        panic!("gossip did not decode");
    };
    assert_eq!(payload.data.len(), 100);
    assert!(body_range.contains(&payload.data.as_ptr()));
}
