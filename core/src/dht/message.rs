//! DHT messages and their wire encoding.
//!
//! Protocol id [`ProtocolId::DHT`]. Every message starts with the request id (a varint) that the
//! answer echoes. Keys and peer ids are 32 raw bytes; a contact is a peer id then an address.
//!
//! | type | message | body after `id: varint` |
//! |------|---------|------|
//! | 0 | `Ping` | — |
//! | 1 | `Pong` | — |
//! | 2 | `FindNode` | `target: 32 B` |
//! | 3 | `Nodes` | `contacts: list` |
//! | 4 | `FindValue` | `key: 32 B` |
//! | 5 | `Value` | `record`, `contacts: list` |
//! | 6 | `Store` | `record` |
//! | 7 | `Stored` | `result: u8` (0 accepted, 1 rejected, 2 full) |
//!
//! - `record` = `key: 32 B`, `publisher: 32 B`, `ttl_secs: varint (u32)`, `value: bytes`
//!   (varint length, then the bytes; decoding slices the frame, no copy).
//! - `contacts: list` = varint count (at most [`MAX_WIRE_CONTACTS`], checked before
//!   allocating), then per contact: `peer: 32 B`, `family: u8` (4 or 6), the IP (4 or 16 B),
//!   `port: u16` big-endian.
//!
//! Decoding is canonical: each message has one encoding (shortest varints, no trailing bytes
//! once the frame envelope is checked by [`crate::wire::decode_message`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes};

use super::contact::NodeContact;
use crate::id::{Key, PeerId};
use crate::wire::codec::{
    bytes_encoded_len, get_array, get_bytes, get_list_len, get_u8, put_bytes,
};
use crate::wire::varint::{get_varint, get_varint_u32, put_varint, varint_len};
use crate::wire::{DecodeError, Limits, ProtocolId, WireMessage};

/// Matches an answer to its request; chosen by the requester.
pub type RequestId = u64;

/// Most contacts a decoded list may hold. An honest answer holds at most k (20 by default); 32
/// leaves room for a larger configured k while bounding what a hostile answer can allocate.
pub const MAX_WIRE_CONTACTS: usize = 32;

/// A value stored in the DHT under a key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// Where it lives in the keyspace.
    pub key: Key,
    /// The application's bytes.
    pub value: Bytes,
    /// The node that published it (the application's validator may check signatures by it).
    pub publisher: PeerId,
    /// Seconds it should live from when it is stored.
    pub ttl_secs: u32,
}

impl Record {
    /// The bytes it costs in a [`super::RecordStore`]: the value plus a fixed 96 for key,
    /// publisher and bookkeeping.
    pub fn size(&self) -> usize {
        self.value.len() + 96
    }
}

/// How a node answered a `Store`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum StoreResult {
    /// Stored.
    Accepted,
    /// The node's validator refused the record.
    Rejected,
    /// The node's store is full.
    Full,
}

/// A DHT request or answer. `C` is the contact type: [`NodeContact`] on the wire, a compact
/// handle in the simulator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DhtMessage<C> {
    /// Are you there? Answered by `Pong`.
    Ping {
        /// Request id.
        id: RequestId,
    },
    /// Answer to `Ping`.
    Pong {
        /// The request's id.
        id: RequestId,
    },
    /// Which contacts do you know closest to `target`? Answered by `Nodes`.
    FindNode {
        /// Request id.
        id: RequestId,
        /// The key looked up.
        target: Key,
    },
    /// Answer to `FindNode` (and to `FindValue` when the value is not held): up to k contacts.
    Nodes {
        /// The request's id.
        id: RequestId,
        /// The closest contacts the node knows, the requester left out.
        contacts: Vec<C>,
    },
    /// Do you hold the record under `key`? Answered by `Value` or `Nodes`.
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
        /// The record (boxed: it is large and rare, and every message pays for the largest
        /// variant).
        record: Box<Record>,
        /// Closer contacts, if the node wants to share them (may be empty).
        contacts: Vec<C>,
    },
    /// Please hold `record`. Answered by `Stored`.
    Store {
        /// Request id.
        id: RequestId,
        /// The record (boxed, as in `Value`).
        record: Box<Record>,
    },
    /// Answer to `Store`.
    Stored {
        /// The request's id.
        id: RequestId,
        /// What the node did.
        result: StoreResult,
    },
}

impl<C> DhtMessage<C> {
    /// The request id it carries (a request's own, or the one an answer echoes).
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

    /// Whether it is a request (as opposed to an answer).
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            DhtMessage::Ping { .. }
                | DhtMessage::FindNode { .. }
                | DhtMessage::FindValue { .. }
                | DhtMessage::Store { .. }
        )
    }

    /// The message's name, for logs.
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

/// The fewest bytes a contact takes (peer id, family, IPv4, port).
const MIN_CONTACT_LEN: usize = 32 + 1 + 4 + 2;

fn contact_len(c: &NodeContact) -> usize {
    32 + 1
        + match c.addr.ip() {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 16,
        }
        + 2
}

fn contacts_len(list: &[NodeContact]) -> usize {
    varint_len(list.len() as u64) + list.iter().map(contact_len).sum::<usize>()
}

fn put_contacts<B: BufMut>(buf: &mut B, list: &[NodeContact]) {
    put_varint(buf, list.len() as u64);
    for c in list {
        buf.put_slice(c.peer.as_bytes());
        match c.addr.ip() {
            IpAddr::V4(ip) => {
                buf.put_u8(4);
                buf.put_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                buf.put_u8(6);
                buf.put_slice(&ip.octets());
            }
        }
        buf.put_u16(c.addr.port());
    }
}

fn get_contacts(buf: &mut Bytes, limits: &Limits) -> Result<Vec<NodeContact>, DecodeError> {
    let list_limits = Limits {
        max_list_len: limits.max_list_len.min(MAX_WIRE_CONTACTS as u32),
        ..*limits
    };
    let count = get_list_len(buf, &list_limits, MIN_CONTACT_LEN)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let peer = PeerId::from_bytes(get_array(buf)?);
        let ip = match get_u8(buf)? {
            4 => IpAddr::V4(Ipv4Addr::from(get_array::<4, _>(buf)?)),
            6 => IpAddr::V6(Ipv6Addr::from(get_array::<16, _>(buf)?)),
            _ => return Err(DecodeError::InvalidValue { field: "family" }),
        };
        let port = u16::from_be_bytes(get_array(buf)?);
        out.push(NodeContact {
            peer,
            addr: SocketAddr::new(ip, port),
        });
    }
    Ok(out)
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

fn get_record(buf: &mut Bytes, limits: &Limits) -> Result<Record, DecodeError> {
    let key = Key::from_bytes(get_array(buf)?);
    let publisher = PeerId::from_bytes(get_array(buf)?);
    let ttl_secs = get_varint_u32(buf)?;
    let value = get_bytes(buf, limits)?;
    Ok(Record {
        key,
        value,
        publisher,
        ttl_secs,
    })
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
        varint_len(self.request_id())
            + match self {
                DhtMessage::Ping { .. } | DhtMessage::Pong { .. } => 0,
                DhtMessage::FindNode { .. } | DhtMessage::FindValue { .. } => 32,
                DhtMessage::Nodes { contacts, .. } => contacts_len(contacts),
                DhtMessage::Value {
                    record, contacts, ..
                } => record_len(record) + contacts_len(contacts),
                DhtMessage::Store { record, .. } => record_len(record),
                DhtMessage::Stored { .. } => 1,
            }
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B) {
        put_varint(buf, self.request_id());
        match self {
            DhtMessage::Ping { .. } | DhtMessage::Pong { .. } => {}
            DhtMessage::FindNode { target: key, .. } | DhtMessage::FindValue { key, .. } => {
                buf.put_slice(key.as_bytes())
            }
            DhtMessage::Nodes { contacts, .. } => put_contacts(buf, contacts),
            DhtMessage::Value {
                record, contacts, ..
            } => {
                put_record(buf, record);
                put_contacts(buf, contacts);
            }
            DhtMessage::Store { record, .. } => put_record(buf, record),
            DhtMessage::Stored { result, .. } => buf.put_u8(match result {
                StoreResult::Accepted => 0,
                StoreResult::Rejected => 1,
                StoreResult::Full => 2,
            }),
        }
    }

    fn decode_body(msg_type: u8, body: &mut Bytes, limits: &Limits) -> Result<Self, DecodeError> {
        if msg_type > STORED {
            return Err(DecodeError::UnknownMessageType {
                protocol: ProtocolId::DHT,
                msg_type,
            });
        }
        let id = get_varint(body)?;
        Ok(match msg_type {
            PING => DhtMessage::Ping { id },
            PONG => DhtMessage::Pong { id },
            FIND_NODE => DhtMessage::FindNode {
                id,
                target: Key::from_bytes(get_array(body)?),
            },
            NODES => DhtMessage::Nodes {
                id,
                contacts: get_contacts(body, limits)?,
            },
            FIND_VALUE => DhtMessage::FindValue {
                id,
                key: Key::from_bytes(get_array(body)?),
            },
            VALUE => DhtMessage::Value {
                id,
                record: Box::new(get_record(body, limits)?),
                contacts: get_contacts(body, limits)?,
            },
            STORE => DhtMessage::Store {
                id,
                record: Box::new(get_record(body, limits)?),
            },
            _ => DhtMessage::Stored {
                id,
                result: match get_u8(body)? {
                    0 => StoreResult::Accepted,
                    1 => StoreResult::Rejected,
                    2 => StoreResult::Full,
                    _ => return Err(DecodeError::InvalidValue { field: "result" }),
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_message, encode_message, message_to_frame, Frame};
    use bytes::BytesMut;

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

    fn record() -> Record {
        Record {
            key: Key::from_bytes([7; 32]),
            value: Bytes::from_static(b"hello"),
            publisher: PeerId::from_bytes([8; 32]),
            ttl_secs: 3600,
        }
    }

    fn samples() -> Vec<DhtMessage<NodeContact>> {
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
                record: Box::new(record()),
                contacts,
            },
            DhtMessage::Store {
                id: 4,
                record: Box::new(record()),
            },
            DhtMessage::Stored {
                id: 5,
                result: StoreResult::Full,
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for msg in samples() {
            let mut out = BytesMut::new();
            encode_message(&msg, &mut out);
            let frame = message_to_frame(&msg);
            assert_eq!(frame.body.len(), msg.body_len());
            assert_eq!(decode_message(frame, &Limits::DEFAULT), Ok(msg));
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for msg in samples() {
            let frame = message_to_frame(&msg);
            for cut in 0..frame.body.len() {
                let short = Frame::new(ProtocolId::DHT, frame.msg_type, frame.body.slice(..cut));
                assert!(
                    decode_message::<DhtMessage<NodeContact>>(short, &Limits::DEFAULT).is_err()
                );
            }
        }
    }

    #[test]
    fn rejects_long_lists_bad_tags_and_trailing_bytes() {
        let many: Vec<NodeContact> = (0..=MAX_WIRE_CONTACTS as u8)
            .map(|i| contact(i, false))
            .collect();
        let msg = DhtMessage::Nodes {
            id: 1,
            contacts: many,
        };
        assert!(matches!(
            decode_message::<DhtMessage<NodeContact>>(message_to_frame(&msg), &Limits::DEFAULT),
            Err(DecodeError::ListTooLong { .. })
        ));
        let frame = message_to_frame(&DhtMessage::<NodeContact>::Nodes {
            id: 1,
            contacts: vec![contact(1, false)],
        });
        let mut body = frame.body.to_vec();
        body[1 + 1 + 32] = 5; // family byte
        let bad = Frame::new(ProtocolId::DHT, NODES, body);
        assert_eq!(
            decode_message::<DhtMessage<NodeContact>>(bad, &Limits::DEFAULT),
            Err(DecodeError::InvalidValue { field: "family" })
        );
        let mut body = message_to_frame(&DhtMessage::<NodeContact>::Ping { id: 1 })
            .body
            .to_vec();
        body.push(0);
        assert!(matches!(
            decode_message::<DhtMessage<NodeContact>>(
                Frame::new(ProtocolId::DHT, PING, body),
                &Limits::DEFAULT
            ),
            Err(DecodeError::TrailingBytes { count: 1 })
        ));
        assert!(matches!(
            decode_message::<DhtMessage<NodeContact>>(
                Frame::new(ProtocolId::DHT, 8, &b"\x01"[..]),
                &Limits::DEFAULT
            ),
            Err(DecodeError::UnknownMessageType { .. })
        ));
    }
}
