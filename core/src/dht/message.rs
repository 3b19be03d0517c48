//! DHT messages and their wire encoding.
//!
//! Protocol id [`ProtocolId::DHT`]. Every body starts with the request id (a varint), which an
//! answer echoes so the requester can match it. Keys and peer ids are their 32 raw bytes.
//!
//! | type | message | body after `id: varint` | answers |
//! |------|---------|-------------------------|---------|
//! | 0 | `Ping` | — | |
//! | 1 | `Pong` | — | `Ping` |
//! | 2 | `FindNode` | `target: 32 B` | |
//! | 3 | `Nodes` | `contacts` | `FindNode`, `FindValue` (not held) |
//! | 4 | `FindValue` | `key: 32 B` | |
//! | 5 | `Value` | `record`, `contacts` | `FindValue` (held) |
//! | 6 | `Store` | `record` | |
//! | 7 | `Stored` | `result: u8` (0 accepted, 1 rejected, 2 full) | `Store` |
//!
//! - `record` = `key: 32 B`, `publisher: 32 B`, `ttl_secs: varint (u32)`, `value: bytes` (varint
//!   length, then the bytes). The value comes last and is decoded as a slice of the received
//!   frame, not copied.
//! - `contacts` = varint count, at most [`MAX_WIRE_CONTACTS`] (and the `max_list_len` limit),
//!   checked against both bounds and the bytes left before anything is allocated; then per
//!   contact `peer: 32 B`, `family: u8` (4 or 6), the IP (4 or 16 B), `port: u16` big-endian
//!   (network order, as addresses are written everywhere else).
//!
//! The encoding is canonical: varints must be shortest, enum bytes must be known values, and
//! [`crate::wire::decode_message`] refuses trailing bytes, so a decoded message re-encodes to the
//! bytes it came from. An IPv6 address travels without its flow label and scope id (they mean
//! nothing to the receiver), so those decode as zero.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes};

use super::contact::NodeContact;
use crate::id::{Key, PeerId};
use crate::wire::codec::{
    bytes_encoded_len, get_array, get_bytes, get_list_len, get_u8, put_bytes, put_list_len,
};
use crate::wire::varint::{get_varint, get_varint_u32, put_varint, varint_len};
use crate::wire::{DecodeError, Limits, ProtocolId, WireMessage};

/// Matches an answer to its request. Chosen by the requester, echoed by the answer.
pub type RequestId = u64;

/// Most contacts a decoded `Nodes` or `Value` may hold.
///
/// An honest answer never holds more than k contacts (20 by default); 32 leaves room for a
/// somewhat larger configured k while capping what one hostile answer can make a node allocate
/// and then check, independently of the (much larger) generic `max_list_len`.
pub const MAX_WIRE_CONTACTS: usize = 32;

/// Bytes a [`Record`] is charged in the store on top of its value: key and publisher (64), TTL,
/// and an estimate of the store's per-record bookkeeping (map entry, expiry index entry, the
/// value's `Bytes` handle). Without it, many empty values would cost nothing against
/// `max_bytes`.
const RECORD_OVERHEAD: usize = 96;

/// A value stored in the DHT under a key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// Where it lives in the keyspace.
    pub key: Key,
    /// The application's bytes.
    pub value: Bytes,
    /// The node that published it; an application validator may check a signature against it.
    pub publisher: PeerId,
    /// How long it should live, in seconds, from when it is stored.
    pub ttl_secs: u32,
}

impl Record {
    /// The bytes it is charged in a [`super::RecordStore`]: its value's length plus a fixed
    /// overhead of 96 for the key, the publisher and the store's bookkeeping.
    pub fn size(&self) -> usize {
        self.value.len() + RECORD_OVERHEAD
    }
}

/// How a node answered a `Store`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum StoreResult {
    /// The record is stored.
    Accepted,
    /// The record failed validation (the application's validator, or a value too large).
    Rejected,
    /// The node's store is at its record count or byte limit.
    Full,
}

/// A DHT request or answer.
///
/// `C` is the contact type: [`NodeContact`] on the wire (the only `C` with a [`WireMessage`]
/// codec), a compact handle in the simulator, which passes messages without encoding them.
/// Records are boxed: they are the largest field by far and travel in few messages, while every
/// message in a queue pays for the largest variant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DhtMessage<C> {
    /// Is the node alive? Answered by `Pong`.
    Ping {
        /// Request id.
        id: RequestId,
    },
    /// Answer to `Ping`.
    Pong {
        /// The request's id.
        id: RequestId,
    },
    /// Which contacts does the node know closest to `target`? Answered by `Nodes`.
    FindNode {
        /// Request id.
        id: RequestId,
        /// The key looked up.
        target: Key,
    },
    /// Answer to `FindNode`, and to `FindValue` when the record is not held.
    Nodes {
        /// The request's id.
        id: RequestId,
        /// Up to k contacts closest to the key asked, the requester left out.
        contacts: Vec<C>,
    },
    /// Does the node hold the record under `key`? Answered by `Value` or `Nodes`.
    FindValue {
        /// Request id.
        id: RequestId,
        /// The record's key.
        key: Key,
    },
    /// Answer to `FindValue` when the record is held.
    Value {
        /// The request's id.
        id: RequestId,
        /// The record.
        record: Box<Record>,
        /// Contacts close to the key, if the node shares them (may be empty).
        contacts: Vec<C>,
    },
    /// Asks the node to hold `record`. Answered by `Stored`.
    Store {
        /// Request id.
        id: RequestId,
        /// The record.
        record: Box<Record>,
    },
    /// Answer to `Store`.
    Stored {
        /// The request's id.
        id: RequestId,
        /// What the node did with the record.
        result: StoreResult,
    },
}

impl<C> DhtMessage<C> {
    /// The request id it carries: a request's own, or the one an answer echoes.
    pub fn request_id(&self) -> RequestId {
        match self {
            DhtMessage::Ping { id }
            | DhtMessage::Pong { id }
            | DhtMessage::FindNode { id, .. }
            | DhtMessage::Nodes { id, .. }
            | DhtMessage::FindValue { id, .. }
            | DhtMessage::Value { id, .. }
            | DhtMessage::Store { id, .. }
            | DhtMessage::Stored { id, .. } => *id,
        }
    }

    /// Whether it is a request (`Ping`, `FindNode`, `FindValue`, `Store`) rather than an answer.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            DhtMessage::Ping { .. }
                | DhtMessage::FindNode { .. }
                | DhtMessage::FindValue { .. }
                | DhtMessage::Store { .. }
        )
    }

    /// The message's protocol name (`"PING"`, `"FIND_NODE"`, …), for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            DhtMessage::Ping { .. } => "PING",
            DhtMessage::Pong { .. } => "PONG",
            DhtMessage::FindNode { .. } => "FIND_NODE",
            DhtMessage::Nodes { .. } => "NODES",
            DhtMessage::FindValue { .. } => "FIND_VALUE",
            DhtMessage::Value { .. } => "VALUE",
            DhtMessage::Store { .. } => "STORE",
            DhtMessage::Stored { .. } => "STORED",
        }
    }
}

const PING: u8 = 0;
const PONG: u8 = 1;
const FIND_NODE: u8 = 2;
const NODES: u8 = 3;
const FIND_VALUE: u8 = 4;
const VALUE: u8 = 5;
const STORE: u8 = 6;
const STORED: u8 = 7;

const FAMILY_V4: u8 = 4;
const FAMILY_V6: u8 = 6;

/// The fewest bytes a contact takes (peer id, family, IPv4 address, port), so a list count can
/// be checked against the bytes left before allocating.
const MIN_CONTACT_LEN: usize = 32 + 1 + 4 + 2;

/// Encoded length of one contact.
pub(crate) fn contact_len(c: &NodeContact) -> usize {
    let ip_len = match c.addr {
        SocketAddr::V4(_) => 4,
        SocketAddr::V6(_) => 16,
    };
    32 + 1 + ip_len + 2
}

/// Encoded length of a contact list (shared with the gossip codec).
pub(crate) fn contacts_len(list: &[NodeContact]) -> usize {
    varint_len(list.len() as u64) + list.iter().map(contact_len).sum::<usize>()
}

/// Writes a contact list: a varint count, then each contact.
pub(crate) fn put_contacts<B: BufMut>(buf: &mut B, list: &[NodeContact]) {
    put_list_len(buf, list.len());
    for c in list {
        put_contact(buf, c);
    }
}

/// Writes one contact: peer id, address family, IP, port (big-endian).
pub(crate) fn put_contact<B: BufMut>(buf: &mut B, c: &NodeContact) {
    buf.put_slice(c.peer.as_bytes());
    match c.addr.ip() {
        IpAddr::V4(ip) => {
            buf.put_u8(FAMILY_V4);
            buf.put_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            buf.put_u8(FAMILY_V6);
            buf.put_slice(&ip.octets());
        }
    }
    buf.put_u16(c.addr.port());
}

/// Reads a contact list of at most [`MAX_WIRE_CONTACTS`], refusing the count before allocating.
pub(crate) fn get_contacts(
    buf: &mut Bytes,
    limits: &Limits,
) -> Result<Vec<NodeContact>, DecodeError> {
    // Tighten the list limit rather than check afterwards, so the count is refused (as
    // `ListTooLong`, naming the bound in force) before anything is allocated.
    let contact_limits = Limits {
        max_list_len: limits.max_list_len.min(MAX_WIRE_CONTACTS as u32),
        ..*limits
    };
    let count = get_list_len(buf, &contact_limits, MIN_CONTACT_LEN)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(get_contact(buf)?);
    }
    Ok(out)
}

/// Reads one contact written by [`put_contact`].
pub(crate) fn get_contact(buf: &mut Bytes) -> Result<NodeContact, DecodeError> {
    let peer = PeerId::from_bytes(get_array(buf)?);
    let ip = match get_u8(buf)? {
        FAMILY_V4 => IpAddr::V4(Ipv4Addr::from(get_array::<4, _>(buf)?)),
        FAMILY_V6 => IpAddr::V6(Ipv6Addr::from(get_array::<16, _>(buf)?)),
        _ => return Err(DecodeError::InvalidValue { field: "family" }),
    };
    let port = u16::from_be_bytes(get_array(buf)?);
    Ok(NodeContact {
        peer,
        addr: SocketAddr::new(ip, port),
    })
}

fn record_len(r: &Record) -> usize {
    32 + 32 + varint_len(u64::from(r.ttl_secs)) + bytes_encoded_len(r.value.len())
}

fn put_record<B: BufMut>(buf: &mut B, r: &Record) {
    buf.put_slice(r.key.as_bytes());
    buf.put_slice(r.publisher.as_bytes());
    put_varint(buf, u64::from(r.ttl_secs));
    put_bytes(buf, &r.value);
}

fn get_record(buf: &mut Bytes, limits: &Limits) -> Result<Box<Record>, DecodeError> {
    let key = Key::from_bytes(get_array(buf)?);
    let publisher = PeerId::from_bytes(get_array(buf)?);
    let ttl_secs = get_varint_u32(buf)?;
    let value = get_bytes(buf, limits)?;
    Ok(Box::new(Record {
        key,
        value,
        publisher,
        ttl_secs,
    }))
}

fn store_result_byte(result: StoreResult) -> u8 {
    match result {
        StoreResult::Accepted => 0,
        StoreResult::Rejected => 1,
        StoreResult::Full => 2,
    }
}

fn get_store_result(buf: &mut Bytes) -> Result<StoreResult, DecodeError> {
    match get_u8(buf)? {
        0 => Ok(StoreResult::Accepted),
        1 => Ok(StoreResult::Rejected),
        2 => Ok(StoreResult::Full),
        _ => Err(DecodeError::InvalidValue { field: "result" }),
    }
}

impl WireMessage for DhtMessage<NodeContact> {
    const PROTOCOL: ProtocolId = ProtocolId::DHT;

    fn msg_type(&self) -> u8 {
        match self {
            DhtMessage::Ping { .. } => PING,
            DhtMessage::Pong { .. } => PONG,
            DhtMessage::FindNode { .. } => FIND_NODE,
            DhtMessage::Nodes { .. } => NODES,
            DhtMessage::FindValue { .. } => FIND_VALUE,
            DhtMessage::Value { .. } => VALUE,
            DhtMessage::Store { .. } => STORE,
            DhtMessage::Stored { .. } => STORED,
        }
    }

    fn body_len(&self) -> usize {
        let fields = match self {
            DhtMessage::Ping { .. } | DhtMessage::Pong { .. } => 0,
            DhtMessage::FindNode { .. } | DhtMessage::FindValue { .. } => 32,
            DhtMessage::Nodes { contacts, .. } => contacts_len(contacts),
            DhtMessage::Value {
                record, contacts, ..
            } => record_len(record) + contacts_len(contacts),
            DhtMessage::Store { record, .. } => record_len(record),
            DhtMessage::Stored { .. } => 1,
        };
        varint_len(self.request_id()) + fields
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B) {
        put_varint(buf, self.request_id());
        match self {
            DhtMessage::Ping { .. } | DhtMessage::Pong { .. } => {}
            DhtMessage::FindNode { target: key, .. } | DhtMessage::FindValue { key, .. } => {
                buf.put_slice(key.as_bytes());
            }
            DhtMessage::Nodes { contacts, .. } => put_contacts(buf, contacts),
            DhtMessage::Value {
                record, contacts, ..
            } => {
                put_record(buf, record);
                put_contacts(buf, contacts);
            }
            DhtMessage::Store { record, .. } => put_record(buf, record),
            DhtMessage::Stored { result, .. } => buf.put_u8(store_result_byte(*result)),
        }
    }

    fn decode_body(msg_type: u8, body: &mut Bytes, limits: &Limits) -> Result<Self, DecodeError> {
        // The type is checked before the id is read, so an unknown type is reported as such
        // whatever its body holds.
        let msg = match msg_type {
            PING => DhtMessage::Ping {
                id: get_varint(body)?,
            },
            PONG => DhtMessage::Pong {
                id: get_varint(body)?,
            },
            FIND_NODE => DhtMessage::FindNode {
                id: get_varint(body)?,
                target: Key::from_bytes(get_array(body)?),
            },
            NODES => DhtMessage::Nodes {
                id: get_varint(body)?,
                contacts: get_contacts(body, limits)?,
            },
            FIND_VALUE => DhtMessage::FindValue {
                id: get_varint(body)?,
                key: Key::from_bytes(get_array(body)?),
            },
            VALUE => DhtMessage::Value {
                id: get_varint(body)?,
                record: get_record(body, limits)?,
                contacts: get_contacts(body, limits)?,
            },
            STORE => DhtMessage::Store {
                id: get_varint(body)?,
                record: get_record(body, limits)?,
            },
            STORED => DhtMessage::Stored {
                id: get_varint(body)?,
                result: get_store_result(body)?,
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
    use super::*;
    use crate::wire::{decode_message, encode_message, message_to_frame, Frame};
    use bytes::BytesMut;

    type Msg = DhtMessage<NodeContact>;

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

    fn record(len: usize) -> Box<Record> {
        Box::new(Record {
            key: Key::from_bytes([7; 32]),
            value: Bytes::from(vec![b'v'; len]),
            publisher: PeerId::from_bytes([8; 32]),
            ttl_secs: 3600,
        })
    }

    /// Every variant, with empty and non-empty lists, both address families, and varints of
    /// one and several bytes.
    fn samples() -> Vec<Msg> {
        let contacts = vec![contact(1, false), contact(2, true), contact(3, false)];
        vec![
            DhtMessage::Ping { id: 0 },
            DhtMessage::Pong { id: u64::MAX },
            DhtMessage::FindNode {
                id: 300,
                target: Key::from_bytes([5; 32]),
            },
            DhtMessage::Nodes {
                id: 1,
                contacts: contacts.clone(),
            },
            DhtMessage::Nodes {
                id: 1,
                contacts: vec![],
            },
            DhtMessage::FindValue {
                id: 2,
                key: Key::from_bytes([6; 32]),
            },
            DhtMessage::Value {
                id: 3,
                record: record(5),
                contacts: contacts.clone(),
            },
            DhtMessage::Value {
                id: 3,
                record: Box::new(Record {
                    ttl_secs: u32::MAX,
                    ..*record(0)
                }),
                contacts: vec![],
            },
            DhtMessage::Store {
                id: 4,
                record: record(200),
            },
            DhtMessage::Stored {
                id: 5,
                result: StoreResult::Accepted,
            },
            DhtMessage::Stored {
                id: 6,
                result: StoreResult::Rejected,
            },
            DhtMessage::Stored {
                id: 7,
                result: StoreResult::Full,
            },
        ]
    }

    fn decode(msg_type: u8, body: impl Into<Bytes>) -> Result<Msg, DecodeError> {
        decode_message(
            Frame::new(ProtocolId::DHT, msg_type, body.into()),
            &Limits::DEFAULT,
        )
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
            assert_eq!(frame.body.len(), msg.body_len(), "{}", msg.kind());
            assert_eq!(decode_message(frame, &Limits::DEFAULT), Ok(msg.clone()));
            // ...and through a frame value.
            let frame = message_to_frame(&msg);
            assert_eq!(decode_message(frame, &Limits::DEFAULT), Ok(msg));
        }
    }

    #[test]
    fn the_format_is_as_documented() {
        let ping: Msg = DhtMessage::Ping { id: 300 };
        let frame = message_to_frame(&ping);
        assert_eq!(
            (frame.msg_type, frame.body.as_ref()),
            (0, &[0xac, 0x02][..])
        );

        let stored: Msg = DhtMessage::Stored {
            id: 9,
            result: StoreResult::Full,
        };
        assert_eq!(message_to_frame(&stored).body.as_ref(), &[9, 2]);

        let nodes: Msg = DhtMessage::Nodes {
            id: 1,
            contacts: vec![contact(1, false), contact(2, true)],
        };
        let frame = message_to_frame(&nodes);
        let mut expected = vec![1, 2];
        expected.extend_from_slice(&[1; 32]);
        expected.extend_from_slice(&[4, 192, 0, 2, 1, 0x0f, 0xa1]); // 192.0.2.1:4001
        expected.extend_from_slice(&[2; 32]);
        expected.push(6);
        expected.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        expected.extend_from_slice(&[0x0f, 0xa2]); // port 4002
        assert_eq!((frame.msg_type, frame.body.as_ref()), (3, &expected[..]));

        let store: Msg = DhtMessage::Store {
            id: 2,
            record: record(3),
        };
        let frame = message_to_frame(&store);
        let mut expected = vec![2];
        expected.extend_from_slice(&[7; 32]);
        expected.extend_from_slice(&[8; 32]);
        expected.extend_from_slice(&[0x90, 0x1c]); // ttl 3600
        expected.extend_from_slice(&[3, b'v', b'v', b'v']);
        assert_eq!((frame.msg_type, frame.body.as_ref()), (6, &expected[..]));
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
    fn contact_lists_are_bounded_before_allocating() {
        let list = |n: usize| -> Msg {
            DhtMessage::Nodes {
                id: 1,
                contacts: (0..n).map(|i| contact(i as u8, false)).collect(),
            }
        };
        let at_bound = message_to_frame(&list(MAX_WIRE_CONTACTS));
        assert!(decode_message::<Msg>(at_bound, &Limits::DEFAULT).is_ok());
        let over = message_to_frame(&list(MAX_WIRE_CONTACTS + 1));
        assert_eq!(
            decode_message::<Msg>(over, &Limits::DEFAULT),
            Err(DecodeError::ListTooLong {
                len: MAX_WIRE_CONTACTS as u64 + 1,
                max: MAX_WIRE_CONTACTS as u32
            })
        );
        // A tighter configured limit wins.
        let tight = Limits {
            max_list_len: 2,
            ..Limits::DEFAULT
        };
        assert_eq!(
            decode_message::<Msg>(message_to_frame(&list(3)), &tight),
            Err(DecodeError::ListTooLong { len: 3, max: 2 })
        );
        // A huge count with no items behind it fails on the count, not on an allocation.
        let mut body = vec![1];
        put_varint(&mut body, u64::MAX);
        assert!(matches!(
            decode(NODES, body),
            Err(DecodeError::ListTooLong { .. })
        ));
        // A count the bytes left cannot hold fails before the first item is read.
        assert_eq!(
            decode(VALUE, {
                let mut b = message_to_frame(&DhtMessage::<NodeContact>::Store {
                    id: 1,
                    record: record(0),
                })
                .body
                .to_vec();
                b.push(2);
                b.extend_from_slice(&[0; MIN_CONTACT_LEN]);
                b
            }),
            Err(DecodeError::UnexpectedEnd {
                needed: 2 * MIN_CONTACT_LEN,
                remaining: MIN_CONTACT_LEN
            })
        );
    }

    #[test]
    fn bad_fields_are_refused() {
        // Unknown address family.
        let frame = message_to_frame(&DhtMessage::Nodes {
            id: 1,
            contacts: vec![contact(1, false)],
        });
        let mut body = frame.body.to_vec();
        body[1 + 1 + 32] = 5;
        assert_eq!(
            decode(NODES, body),
            Err(DecodeError::InvalidValue { field: "family" })
        );
        // Unknown store result.
        assert_eq!(
            decode(STORED, &[1u8, 3][..]),
            Err(DecodeError::InvalidValue { field: "result" })
        );
        // Over-long request id (zero in two bytes).
        assert_eq!(
            decode(PING, &[0x80u8, 0x00][..]),
            Err(DecodeError::VarintNonCanonical)
        );
        // A TTL wider than 32 bits.
        let mut body = vec![1];
        body.extend_from_slice(&[0; 64]);
        put_varint(&mut body, 1 << 32);
        body.push(0);
        assert_eq!(decode(STORE, body), Err(DecodeError::VarintOverflow));
        // A value above the byte-string limit.
        let small = Limits {
            max_bytes_len: 4,
            ..Limits::DEFAULT
        };
        assert_eq!(
            decode_message::<Msg>(
                message_to_frame(&DhtMessage::<NodeContact>::Store {
                    id: 1,
                    record: record(5)
                }),
                &small
            ),
            Err(DecodeError::BytesTooLong { len: 5, max: 4 })
        );
        // Unknown types, whatever the body.
        for msg_type in [8u8, 0x80, u8::MAX] {
            for body in [&[][..], &[1][..]] {
                assert_eq!(
                    decode(msg_type, body),
                    Err(DecodeError::UnknownMessageType {
                        protocol: ProtocolId::DHT,
                        msg_type
                    })
                );
            }
        }
    }

    #[test]
    fn values_are_slices_of_the_frame() {
        let frame = message_to_frame(&DhtMessage::<NodeContact>::Store {
            id: 1,
            record: record(100),
        });
        let body_range = frame.body.as_ptr_range();
        let Ok(DhtMessage::Store { record, .. }) = decode_message::<Msg>(frame, &Limits::DEFAULT)
        else {
            panic!("store did not decode");
        };
        assert!(body_range.contains(&record.value.as_ptr()));
    }

    #[test]
    fn ipv6_scope_and_flow_label_are_not_sent() {
        let scoped = NodeContact {
            peer: PeerId::from_bytes([1; 32]),
            addr: "[fe80::1%7]:9".parse().unwrap(),
        };
        let msg: Msg = DhtMessage::Nodes {
            id: 1,
            contacts: vec![scoped],
        };
        let Ok(DhtMessage::Nodes { contacts, .. }) =
            decode_message::<Msg>(message_to_frame(&msg), &Limits::DEFAULT)
        else {
            panic!("nodes did not decode");
        };
        assert_eq!(contacts[0].addr, "[fe80::1]:9".parse().unwrap());
    }

    #[test]
    fn accessors_name_each_variant() {
        let kinds: Vec<(&str, bool, RequestId)> = samples()
            .iter()
            .map(|m| (m.kind(), m.is_request(), m.request_id()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("PING", true, 0),
                ("PONG", false, u64::MAX),
                ("FIND_NODE", true, 300),
                ("NODES", false, 1),
                ("NODES", false, 1),
                ("FIND_VALUE", true, 2),
                ("VALUE", false, 3),
                ("VALUE", false, 3),
                ("STORE", true, 4),
                ("STORED", false, 5),
                ("STORED", false, 6),
                ("STORED", false, 7),
            ]
        );
        assert_eq!(record(10).size(), 10 + RECORD_OVERHEAD);
    }
}
