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
//!   checked against both bounds and the bytes left before anything is allocated; then the
//!   contacts, each as its [`WirePeer`] encoding. For a [`NodeContact`](crate::contact::NodeContact) that is `peer: 32 B`,
//!   `family: u8` (4 or 6), the IP (4 or 16 B), `port: u16` big-endian; see
//!   [`crate::wire::contact`], which gossip shares.
//!
//! The encoding is canonical: varints must be shortest, enum bytes must be known values, and
//! [`crate::wire::decode_message`] refuses trailing bytes, so a decoded message re-encodes to the
//! bytes it came from (but for an IPv6 contact's flow label and scope id, which are not sent).

use bytes::{BufMut, Bytes};

use crate::id::{Key, PeerId};
use crate::wire::codec::{bytes_encoded_len, get_array, get_bytes, get_u8, put_bytes};
use crate::wire::peer::{get_peer_list, peer_list_len, put_peer_list};
use crate::wire::varint::{get_varint, get_varint_u32, put_varint, varint_len};
use crate::wire::{DecodeError, Limits, ProtocolId, WireMessage, WirePeer};

/// Re-exported from [`crate::wire::contact`], where the contact codec the DHT and gossip share
/// lives.
pub use crate::wire::contact::MAX_WIRE_CONTACTS;

/// Matches an answer to its request. Chosen by the requester, echoed by the answer.
pub type RequestId = u64;

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
/// `C` is the contact type: [`NodeContact`](crate::contact::NodeContact) on a real node, a compact handle in the simulator,
/// which passes messages without encoding them. Any `C` with a [`WirePeer`] encoding has a
/// [`WireMessage`] codec.
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

/// Encoded length of a contact list.
fn contacts_len<C: WirePeer>(list: &[C]) -> usize {
    peer_list_len(list.iter())
}

/// Writes a contact list: a varint count, then each contact.
fn put_contacts<C: WirePeer, B: BufMut>(buf: &mut B, list: &[C]) {
    put_peer_list(buf, list.iter());
}

/// Reads a contact list of at most [`MAX_WIRE_CONTACTS`], refusing the count before allocating.
fn get_contacts<C: WirePeer>(buf: &mut Bytes, limits: &Limits) -> Result<Vec<C>, DecodeError> {
    get_peer_list(buf, limits, MAX_WIRE_CONTACTS)
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

impl<C: WirePeer> WireMessage for DhtMessage<C> {
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
#[path = "message_tests.rs"]
mod tests;
