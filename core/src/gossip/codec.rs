//! The wire encoding of gossip messages.
//!
//! Protocol id [`ProtocolId::GOSSIP`]. Only [`GossipMessage<NodeContact>`](GossipMessage) has a
//! codec; the simulator passes messages with other contact types without encoding them.
//!
//! | type | message | body |
//! |------|---------|------|
//! | 0 | `Join` | — |
//! | 1 | `ForwardJoin` | `joiner: contact`, `ttl: u8` |
//! | 2 | `Neighbor` | `high_priority: bool` |
//! | 3 | `NeighborReply` | `accepted: bool` |
//! | 4 | `Disconnect` | — |
//! | 5 | `Shuffle` | `origin: contact`, `ttl: u8`, `peers: contacts` |
//! | 6 | `ShuffleReply` | `peers: contacts` |
//! | 7 | `Topics` | `topics: list of topic`, strictly increasing |
//! | 8 | `Gossip` | `topic`, `published_ms: varint`, `hops`, `data: bytes` |
//! | 9 | `IHave` | `topic`, `entries: list of (id, hops)` |
//! | 10 | `Graft` | `topic`, `ids: list of id` |
//! | 11 | `Prune` | `topic` |
//! | 12 | `Digest` | `topic`, `first_bucket: varint`, `buckets: list of digest` |
//! | 13 | `BucketIds` | `topic`, `bucket: varint`, `ids: list of id`, `want_reply: bool` |
//! | 14 | `Pull` | `topic`, `ids: list of id` |
//!
//! - `topic` = a [`TopicId`] as 8 bytes big-endian (so topic order is byte order);
//!   `id` = a [`MessageId`]'s 16 raw bytes; `digest` = `count: varint (u32)`, `xor: id`.
//! - `bool` = one byte, 0 or 1; any other byte is refused.
//! - `hops` = a varint whose value must fit in a `u16`. It is read as 64 bits, and a larger
//!   value is [`DecodeError::InvalidValue`]: a well-formed number out of the field's range.
//! - `contact` and `contacts` are the DHT's encodings (see [`crate::dht::message`]): peer id,
//!   family, IP, port; a `contacts` list holds at most
//!   [`MAX_WIRE_CONTACTS`](crate::dht::message::MAX_WIRE_CONTACTS).
//! - `data` = varint length then the bytes, at most `max_bytes_len`. It comes last and is
//!   decoded as a slice of the received frame, not copied.
//! - Every list = a varint count, then the items back to back. Each list has its own bound:
//!   [`MAX_TOPICS`] topics, [`MAX_IDS_PER_MESSAGE`] ids (`Graft`, `BucketIds`, `Pull`) or
//!   announcements (`IHave`), [`MAX_DIGEST_BUCKETS`] digests. The count is checked against the
//!   smaller of that bound and `max_list_len`, and against the bytes left (at the item's
//!   smallest encoding), before anything is allocated.
//!
//! The encoding is canonical: varints must be shortest, bools and type bytes must be known
//! values, [`crate::wire::decode_message`] refuses trailing bytes, and the topics of a `Topics`
//! message must be strictly increasing (sorted, no duplicates), so a set of topics has exactly
//! one encoding. A decoded message therefore re-encodes to the bytes it came from. The encoder
//! does not sort or cap anything: a sender that breaks these rules produces a message its peers
//! refuse.

use bytes::{BufMut, Bytes};

use super::message::{Announcement, BucketDigest, GossipMessage, MessageId, Payload, TopicId};
use crate::dht::message::{
    contact_len, contacts_len, get_contact, get_contacts, put_contact, put_contacts,
};
use crate::dht::NodeContact;
use crate::wire::codec::{
    bytes_encoded_len, get_array, get_bytes, get_list_len, get_u8, put_bytes, put_list_len,
};
use crate::wire::varint::{get_varint, get_varint_u32, put_varint, varint_len};
use crate::wire::{DecodeError, Limits, ProtocolId, WireMessage};

/// Most message ids a decoded `Graft`, `Pull` or `BucketIds` may hold, and most announcements
/// a decoded `IHave` may hold.
///
/// An honest node batches far fewer per message; 1024 keeps one hostile message's cost (about
/// 16–20 KiB of ids to allocate and look up) small, independently of the generic
/// `max_list_len`.
pub const MAX_IDS_PER_MESSAGE: usize = 1024;

/// Most topics a decoded `Topics` message may hold: a node subscribes to a handful, and each
/// topic a peer announces costs the receiver a table entry.
pub const MAX_TOPICS: usize = 256;

/// Most bucket digests a decoded `Digest` may hold: enough for a long retention window at fine
/// buckets, while bounding the comparison work one message can ask for.
pub const MAX_DIGEST_BUCKETS: usize = 1024;

const JOIN: u8 = 0;
const FORWARD_JOIN: u8 = 1;
const NEIGHBOR: u8 = 2;
const NEIGHBOR_REPLY: u8 = 3;
const DISCONNECT: u8 = 4;
const SHUFFLE: u8 = 5;
const SHUFFLE_REPLY: u8 = 6;
const TOPICS: u8 = 7;
const GOSSIP: u8 = 8;
const IHAVE: u8 = 9;
const GRAFT: u8 = 10;
const PRUNE: u8 = 11;
const DIGEST: u8 = 12;
const BUCKET_IDS: u8 = 13;
const PULL: u8 = 14;

/// Encoded length of a topic.
const TOPIC_LEN: usize = 8;
/// Encoded length of a message id.
const ID_LEN: usize = 16;
/// The fewest bytes an announcement or a bucket digest takes (an id and a one-byte varint), so
/// a list count can be checked against the bytes left before allocating.
const MIN_ID_AND_VARINT_LEN: usize = ID_LEN + 1;

fn put_topic<B: BufMut>(buf: &mut B, topic: TopicId) {
    buf.put_u64(topic.0);
}

fn get_topic(buf: &mut Bytes) -> Result<TopicId, DecodeError> {
    Ok(TopicId(u64::from_be_bytes(get_array(buf)?)))
}

fn get_id(buf: &mut Bytes) -> Result<MessageId, DecodeError> {
    Ok(MessageId(get_array(buf)?))
}

fn put_bool<B: BufMut>(buf: &mut B, value: bool) {
    buf.put_u8(u8::from(value));
}

fn get_bool(buf: &mut Bytes, field: &'static str) -> Result<bool, DecodeError> {
    match get_u8(buf)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::InvalidValue { field }),
    }
}

fn get_hops(buf: &mut Bytes) -> Result<u16, DecodeError> {
    // Read as 64 bits so that a wide hop count is reported as an out-of-range field rather than
    // as a malformed varint (it is well-formed, just not a value a node can send).
    let hops = get_varint(buf)?;
    u16::try_from(hops).map_err(|_| DecodeError::InvalidValue { field: "hops" })
}

/// Reads a list count bounded by `cap` as well as by `limits.max_list_len` and the bytes left.
fn get_capped_len(
    buf: &mut Bytes,
    limits: &Limits,
    cap: usize,
    min_item_len: usize,
) -> Result<usize, DecodeError> {
    // Tighten the limit rather than check afterwards, so the count is refused (as
    // `ListTooLong`, naming the bound in force) before anything is allocated.
    let capped = Limits {
        max_list_len: limits
            .max_list_len
            .min(u32::try_from(cap).unwrap_or(u32::MAX)),
        ..*limits
    };
    get_list_len(buf, &capped, min_item_len)
}

/// Encoded length of a list of `count` items of `item_len` bytes each.
fn fixed_list_len(count: usize, item_len: usize) -> usize {
    varint_len(count as u64) + count * item_len
}

fn put_ids<B: BufMut>(buf: &mut B, ids: &[MessageId]) {
    put_list_len(buf, ids.len());
    for id in ids {
        buf.put_slice(&id.0);
    }
}

fn get_ids(buf: &mut Bytes, limits: &Limits) -> Result<Vec<MessageId>, DecodeError> {
    let count = get_capped_len(buf, limits, MAX_IDS_PER_MESSAGE, ID_LEN)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(get_id(buf)?);
    }
    Ok(out)
}

fn put_topics<B: BufMut>(buf: &mut B, topics: &[TopicId]) {
    put_list_len(buf, topics.len());
    for topic in topics {
        put_topic(buf, *topic);
    }
}

fn get_topics(buf: &mut Bytes, limits: &Limits) -> Result<Vec<TopicId>, DecodeError> {
    let count = get_capped_len(buf, limits, MAX_TOPICS, TOPIC_LEN)?;
    let mut out: Vec<TopicId> = Vec::with_capacity(count);
    for _ in 0..count {
        let topic = get_topic(buf)?;
        // Strictly increasing: a set has one encoding, and duplicates cannot inflate the list.
        if out.last().is_some_and(|last| *last >= topic) {
            return Err(DecodeError::InvalidValue { field: "topics" });
        }
        out.push(topic);
    }
    Ok(out)
}

fn announcements_len(entries: &[Announcement]) -> usize {
    varint_len(entries.len() as u64)
        + entries
            .iter()
            .map(|a| ID_LEN + varint_len(u64::from(a.hops)))
            .sum::<usize>()
}

fn put_announcements<B: BufMut>(buf: &mut B, entries: &[Announcement]) {
    put_list_len(buf, entries.len());
    for a in entries {
        buf.put_slice(&a.id.0);
        put_varint(buf, u64::from(a.hops));
    }
}

fn get_announcements(buf: &mut Bytes, limits: &Limits) -> Result<Vec<Announcement>, DecodeError> {
    let count = get_capped_len(buf, limits, MAX_IDS_PER_MESSAGE, MIN_ID_AND_VARINT_LEN)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(Announcement {
            id: get_id(buf)?,
            hops: get_hops(buf)?,
        });
    }
    Ok(out)
}

fn digests_len(buckets: &[BucketDigest]) -> usize {
    varint_len(buckets.len() as u64)
        + buckets
            .iter()
            .map(|d| varint_len(u64::from(d.count)) + ID_LEN)
            .sum::<usize>()
}

fn put_digests<B: BufMut>(buf: &mut B, buckets: &[BucketDigest]) {
    put_list_len(buf, buckets.len());
    for d in buckets {
        put_varint(buf, u64::from(d.count));
        buf.put_slice(&d.xor.0);
    }
}

fn get_digests(buf: &mut Bytes, limits: &Limits) -> Result<Vec<BucketDigest>, DecodeError> {
    let count = get_capped_len(buf, limits, MAX_DIGEST_BUCKETS, MIN_ID_AND_VARINT_LEN)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(BucketDigest {
            count: get_varint_u32(buf)?,
            xor: get_id(buf)?,
        });
    }
    Ok(out)
}

fn payload_len(p: &Payload) -> usize {
    TOPIC_LEN
        + varint_len(p.published_ms)
        + varint_len(u64::from(p.hops))
        + bytes_encoded_len(p.data.len())
}

fn put_payload<B: BufMut>(buf: &mut B, p: &Payload) {
    put_topic(buf, p.topic);
    put_varint(buf, p.published_ms);
    put_varint(buf, u64::from(p.hops));
    put_bytes(buf, &p.data);
}

fn get_payload(buf: &mut Bytes, limits: &Limits) -> Result<Box<Payload>, DecodeError> {
    let topic = get_topic(buf)?;
    let published_ms = get_varint(buf)?;
    let hops = get_hops(buf)?;
    // Last, so it can be a slice of the frame rather than a copy.
    let data = get_bytes(buf, limits)?;
    Ok(Box::new(Payload {
        topic,
        published_ms,
        hops,
        data,
    }))
}

impl WireMessage for GossipMessage<NodeContact> {
    const PROTOCOL: ProtocolId = ProtocolId::GOSSIP;

    fn msg_type(&self) -> u8 {
        match self {
            GossipMessage::Join => JOIN,
            GossipMessage::ForwardJoin { .. } => FORWARD_JOIN,
            GossipMessage::Neighbor { .. } => NEIGHBOR,
            GossipMessage::NeighborReply { .. } => NEIGHBOR_REPLY,
            GossipMessage::Disconnect => DISCONNECT,
            GossipMessage::Shuffle { .. } => SHUFFLE,
            GossipMessage::ShuffleReply { .. } => SHUFFLE_REPLY,
            GossipMessage::Topics { .. } => TOPICS,
            GossipMessage::Gossip(_) => GOSSIP,
            GossipMessage::IHave { .. } => IHAVE,
            GossipMessage::Graft { .. } => GRAFT,
            GossipMessage::Prune { .. } => PRUNE,
            GossipMessage::Digest { .. } => DIGEST,
            GossipMessage::BucketIds { .. } => BUCKET_IDS,
            GossipMessage::Pull { .. } => PULL,
        }
    }

    fn body_len(&self) -> usize {
        match self {
            GossipMessage::Join | GossipMessage::Disconnect => 0,
            GossipMessage::ForwardJoin { joiner, .. } => contact_len(joiner) + 1,
            GossipMessage::Neighbor { .. } | GossipMessage::NeighborReply { .. } => 1,
            GossipMessage::Shuffle { origin, peers, .. } => {
                contact_len(origin) + 1 + contacts_len(peers)
            }
            GossipMessage::ShuffleReply { peers } => contacts_len(peers),
            GossipMessage::Topics { topics } => fixed_list_len(topics.len(), TOPIC_LEN),
            GossipMessage::Gossip(payload) => payload_len(payload),
            GossipMessage::IHave { entries, .. } => TOPIC_LEN + announcements_len(entries),
            GossipMessage::Graft { ids, .. } | GossipMessage::Pull { ids, .. } => {
                TOPIC_LEN + fixed_list_len(ids.len(), ID_LEN)
            }
            GossipMessage::Prune { .. } => TOPIC_LEN,
            GossipMessage::Digest {
                first_bucket,
                buckets,
                ..
            } => TOPIC_LEN + varint_len(*first_bucket) + digests_len(buckets),
            GossipMessage::BucketIds { bucket, ids, .. } => {
                TOPIC_LEN + varint_len(*bucket) + fixed_list_len(ids.len(), ID_LEN) + 1
            }
        }
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B) {
        match self {
            GossipMessage::Join | GossipMessage::Disconnect => {}
            GossipMessage::ForwardJoin { joiner, ttl } => {
                put_contact(buf, joiner);
                buf.put_u8(*ttl);
            }
            GossipMessage::Neighbor { high_priority } => put_bool(buf, *high_priority),
            GossipMessage::NeighborReply { accepted } => put_bool(buf, *accepted),
            GossipMessage::Shuffle { origin, ttl, peers } => {
                put_contact(buf, origin);
                buf.put_u8(*ttl);
                put_contacts(buf, peers);
            }
            GossipMessage::ShuffleReply { peers } => put_contacts(buf, peers),
            GossipMessage::Topics { topics } => put_topics(buf, topics),
            GossipMessage::Gossip(payload) => put_payload(buf, payload),
            GossipMessage::IHave { topic, entries } => {
                put_topic(buf, *topic);
                put_announcements(buf, entries);
            }
            GossipMessage::Graft { topic, ids } | GossipMessage::Pull { topic, ids } => {
                put_topic(buf, *topic);
                put_ids(buf, ids);
            }
            GossipMessage::Prune { topic } => put_topic(buf, *topic),
            GossipMessage::Digest {
                topic,
                first_bucket,
                buckets,
            } => {
                put_topic(buf, *topic);
                put_varint(buf, *first_bucket);
                put_digests(buf, buckets);
            }
            GossipMessage::BucketIds {
                topic,
                bucket,
                ids,
                want_reply,
            } => {
                put_topic(buf, *topic);
                put_varint(buf, *bucket);
                put_ids(buf, ids);
                put_bool(buf, *want_reply);
            }
        }
    }

    fn decode_body(msg_type: u8, body: &mut Bytes, limits: &Limits) -> Result<Self, DecodeError> {
        // Struct fields are evaluated in the order written, which is the wire order.
        let msg = match msg_type {
            JOIN => GossipMessage::Join,
            FORWARD_JOIN => GossipMessage::ForwardJoin {
                joiner: get_contact(body)?,
                ttl: get_u8(body)?,
            },
            NEIGHBOR => GossipMessage::Neighbor {
                high_priority: get_bool(body, "high_priority")?,
            },
            NEIGHBOR_REPLY => GossipMessage::NeighborReply {
                accepted: get_bool(body, "accepted")?,
            },
            DISCONNECT => GossipMessage::Disconnect,
            SHUFFLE => GossipMessage::Shuffle {
                origin: get_contact(body)?,
                ttl: get_u8(body)?,
                peers: get_contacts(body, limits)?,
            },
            SHUFFLE_REPLY => GossipMessage::ShuffleReply {
                peers: get_contacts(body, limits)?,
            },
            TOPICS => GossipMessage::Topics {
                topics: get_topics(body, limits)?,
            },
            GOSSIP => GossipMessage::Gossip(get_payload(body, limits)?),
            IHAVE => GossipMessage::IHave {
                topic: get_topic(body)?,
                entries: get_announcements(body, limits)?,
            },
            GRAFT => GossipMessage::Graft {
                topic: get_topic(body)?,
                ids: get_ids(body, limits)?,
            },
            PRUNE => GossipMessage::Prune {
                topic: get_topic(body)?,
            },
            DIGEST => GossipMessage::Digest {
                topic: get_topic(body)?,
                first_bucket: get_varint(body)?,
                buckets: get_digests(body, limits)?,
            },
            BUCKET_IDS => GossipMessage::BucketIds {
                topic: get_topic(body)?,
                bucket: get_varint(body)?,
                ids: get_ids(body, limits)?,
                want_reply: get_bool(body, "want_reply")?,
            },
            PULL => GossipMessage::Pull {
                topic: get_topic(body)?,
                ids: get_ids(body, limits)?,
            },
            other => {
                return Err(DecodeError::UnknownMessageType {
                    protocol: Self::PROTOCOL,
                    msg_type: other,
                })
            }
        };
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv6Addr, SocketAddr};

    use super::*;
    use crate::dht::message::MAX_WIRE_CONTACTS;
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
        put_contact(&mut shuffle, &contact(1, false));
        shuffle.push(2);
        // (type, bytes before the count, cap, smallest item)
        vec![
            (TOPICS, vec![], MAX_TOPICS, TOPIC_LEN),
            (IHAVE, T_BYTES.to_vec(), MAX_IDS_PER_MESSAGE, ID_LEN + 1),
            (GRAFT, T_BYTES.to_vec(), MAX_IDS_PER_MESSAGE, ID_LEN),
            (PULL, T_BYTES.to_vec(), MAX_IDS_PER_MESSAGE, ID_LEN),
            (BUCKET_IDS, with_topic(&[3]), MAX_IDS_PER_MESSAGE, ID_LEN),
            (DIGEST, with_topic(&[3]), MAX_DIGEST_BUCKETS, ID_LEN + 1),
            (SHUFFLE_REPLY, vec![], MAX_WIRE_CONTACTS, 32 + 1 + 4 + 2),
            (SHUFFLE, shuffle, MAX_WIRE_CONTACTS, 32 + 1 + 4 + 2),
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
                message_to_frame(&GossipMessage::Gossip(payload(5, 0, 0))),
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
        let Ok(GossipMessage::Gossip(payload)) = decode_message::<Msg>(frame, &Limits::DEFAULT)
        else {
            panic!("gossip did not decode");
        };
        assert_eq!(payload.data.len(), 100);
        assert!(body_range.contains(&payload.data.as_ptr()));
    }
}
