//! The wire encoding of gossip messages.
//!
//! Protocol id [`ProtocolId::GOSSIP`]. A [`GossipMessage<C>`](GossipMessage) has a codec for any
//! contact type `C` with a [`WirePeer`] encoding: a real node's
//! [`NodeContact`](crate::contact::NodeContact); the simulator passes messages with its compact
//! handles without encoding them.
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
//! - `contact` is the contact's [`WirePeer`] encoding, shared with the DHT (for a
//!   [`NodeContact`](crate::contact::NodeContact): peer id, family, IP, port; see
//!   [`crate::wire::contact`]); `contacts` = a varint count, at most [`MAX_WIRE_CONTACTS`], then
//!   the contacts.
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
use crate::wire::codec::{
    bytes_encoded_len, get_array, get_bytes, get_capped_list_len, get_u8, put_bytes, put_list_len,
};
use crate::wire::peer::{get_peer_list, peer_list_len, put_peer_list};
use crate::wire::varint::{get_varint, get_varint_u32, put_varint, varint_len};
use crate::wire::{DecodeError, Limits, ProtocolId, WireMessage, WirePeer, MAX_WIRE_CONTACTS};

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

/// Whether a gossip frame of type `msg_type` is loss-tolerant: an `IHave` announcement. A lost
/// announcement only delays repair (the peer hears of the message again from another neighbour,
/// or from anti-entropy), so a transport may send these unreliably and out of order, as the QUIC
/// adapter does with datagrams; every other gossip message needs a reliable, ordered channel.
pub fn is_loss_tolerant(msg_type: u8) -> bool {
    msg_type == IHAVE
}

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

fn contacts_len<C: WirePeer>(list: &[C]) -> usize {
    peer_list_len(list.iter())
}

fn put_contacts<C: WirePeer, B: BufMut>(buf: &mut B, list: &[C]) {
    put_peer_list(buf, list.iter());
}

fn get_contacts<C: WirePeer>(buf: &mut Bytes, limits: &Limits) -> Result<Vec<C>, DecodeError> {
    get_peer_list(buf, limits, MAX_WIRE_CONTACTS)
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
    let count = get_capped_list_len(buf, limits, MAX_IDS_PER_MESSAGE, ID_LEN)?;
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
    let count = get_capped_list_len(buf, limits, MAX_TOPICS, TOPIC_LEN)?;
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
    let count = get_capped_list_len(buf, limits, MAX_IDS_PER_MESSAGE, MIN_ID_AND_VARINT_LEN)?;
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
    let count = get_capped_list_len(buf, limits, MAX_DIGEST_BUCKETS, MIN_ID_AND_VARINT_LEN)?;
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

impl<C: WirePeer> WireMessage for GossipMessage<C> {
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
            GossipMessage::ForwardJoin { joiner, .. } => joiner.encoded_len() + 1,
            GossipMessage::Neighbor { .. } | GossipMessage::NeighborReply { .. } => 1,
            GossipMessage::Shuffle { origin, peers, .. } => {
                origin.encoded_len() + 1 + contacts_len(peers)
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
                joiner.encode(buf);
                buf.put_u8(*ttl);
            }
            GossipMessage::Neighbor { high_priority } => put_bool(buf, *high_priority),
            GossipMessage::NeighborReply { accepted } => put_bool(buf, *accepted),
            GossipMessage::Shuffle { origin, ttl, peers } => {
                origin.encode(buf);
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
                joiner: C::decode(body)?,
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
                origin: C::decode(body)?,
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
#[path = "codec_tests.rs"]
mod tests;
