//! The client protocol: requests and responses carried in Starling frames of
//! [`KV_PROTOCOL`].
//!
//! | frame `msg_type` | body |
//! |------------------|------|
//! | [`MSG_REQUEST`] | `id: u64`, `ack: u64`, `op: u8`, then `Get`: `key`; `Put`: `key`, `value` |
//! | [`MSG_RESPONSE`] | `id: u64`, `result: u8`, then `Value(Some)`: `value`; `NotLeader(Some)`: 32-byte peer id |
//!
//! Integers are little-endian; `key` is a `u16` length then the bytes (at most [`MAX_KEY_LEN`]),
//! `value` a `u32` length then the bytes (at most [`MAX_VALUE_LEN`]). Result tags: 0
//! `Value(None)`, 1 `Value(Some)`, 2 `Done`, 3 `NotLeader(None)`, 4 `NotLeader(Some)`, 5
//! `Unavailable`. Decoders check every length before slicing and refuse trailing bytes, so
//! hostile input yields a [`ProtoError`], never a panic or a large allocation.

use core::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use starling_core::id::PeerId;
use starling_core::wire::{Frame, ProtocolId};

/// The protocol id of client frames. Ids 0–5 are Starling's own; 16 is the first left to
/// applications, so the node delivers it once listed in `NodeConfig::protocols`.
pub const KV_PROTOCOL: ProtocolId = ProtocolId(16);
/// Frame type of a [`Request`].
pub const MSG_REQUEST: u8 = 1;
/// Frame type of a [`Response`].
pub const MSG_RESPONSE: u8 = 2;
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 1024;
/// Longest value accepted (well under the 1 MiB frame and Raft command limits).
pub const MAX_VALUE_LEN: usize = 256 << 10;

const OP_GET: u8 = 0;
const OP_PUT: u8 = 1;

const R_NONE: u8 = 0;
const R_SOME: u8 = 1;
const R_DONE: u8 = 2;
const R_NOT_LEADER: u8 = 3;
const R_NOT_LEADER_HINT: u8 = 4;
const R_UNAVAILABLE: u8 = 5;

/// An operation on the map.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Read a key (linearizable, served by the leader after a ReadIndex round).
    Get {
        /// The key.
        key: Bytes,
    },
    /// Write a key (through the log, applied exactly once).
    Put {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
    },
}

/// A client request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    /// The client's request number: unique per client, increasing, reused on retries.
    pub id: u64,
    /// Every request of this client numbered below `ack` has been answered or abandoned: the
    /// servers may forget them (the exactly-once sessions are trimmed to it).
    pub ack: u64,
    /// What to do.
    pub op: Op,
}

/// The outcome of a request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvResult {
    /// A `Get`'s value.
    Value(Option<Bytes>),
    /// A `Put` was applied (once).
    Done,
    /// This server does not lead; the leader, if known. Nothing was done.
    NotLeader(Option<PeerId>),
    /// The request may or may not have taken effect (leadership changed under it, or the
    /// leader is overloaded); retrying with the same id is safe.
    Unavailable,
}

/// A server's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Response {
    /// The request answered.
    pub id: u64,
    /// What happened.
    pub result: KvResult,
}

/// Why bytes are not a valid request or response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtoError {
    /// The input ended early.
    Truncated,
    /// An unknown op, result tag or frame type.
    UnknownTag(u8),
    /// A key longer than [`MAX_KEY_LEN`].
    KeyTooLong(usize),
    /// A value longer than [`MAX_VALUE_LEN`].
    ValueTooLong(usize),
    /// Bytes left after the message.
    TrailingBytes(usize),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Truncated => f.write_str("message truncated"),
            ProtoError::UnknownTag(t) => write!(f, "unknown tag {t}"),
            ProtoError::KeyTooLong(n) => write!(f, "key of {n} bytes exceeds {MAX_KEY_LEN}"),
            ProtoError::ValueTooLong(n) => {
                write!(f, "value of {n} bytes exceeds {MAX_VALUE_LEN}")
            }
            ProtoError::TrailingBytes(n) => write!(f, "{n} trailing bytes"),
        }
    }
}

impl std::error::Error for ProtoError {}

// --- field helpers, shared with the log command encoding in `state` ---

pub(crate) fn get_u8(buf: &mut Bytes) -> Result<u8, ProtoError> {
    if buf.remaining() < 1 {
        return Err(ProtoError::Truncated);
    }
    Ok(buf.get_u8())
}

pub(crate) fn get_u64(buf: &mut Bytes) -> Result<u64, ProtoError> {
    if buf.remaining() < 8 {
        return Err(ProtoError::Truncated);
    }
    Ok(buf.get_u64_le())
}

pub(crate) fn get_peer(buf: &mut Bytes) -> Result<PeerId, ProtoError> {
    if buf.remaining() < 32 {
        return Err(ProtoError::Truncated);
    }
    let mut id = [0u8; 32];
    buf.copy_to_slice(&mut id);
    Ok(PeerId::from_bytes(id))
}

pub(crate) fn get_key(buf: &mut Bytes) -> Result<Bytes, ProtoError> {
    if buf.remaining() < 2 {
        return Err(ProtoError::Truncated);
    }
    let len = usize::from(buf.get_u16_le());
    if len > MAX_KEY_LEN {
        return Err(ProtoError::KeyTooLong(len));
    }
    if buf.remaining() < len {
        return Err(ProtoError::Truncated);
    }
    Ok(buf.split_to(len))
}

pub(crate) fn get_value(buf: &mut Bytes) -> Result<Bytes, ProtoError> {
    if buf.remaining() < 4 {
        return Err(ProtoError::Truncated);
    }
    let len = buf.get_u32_le() as usize;
    if len > MAX_VALUE_LEN {
        return Err(ProtoError::ValueTooLong(len));
    }
    if buf.remaining() < len {
        return Err(ProtoError::Truncated);
    }
    Ok(buf.split_to(len))
}

pub(crate) fn put_key(out: &mut BytesMut, key: &[u8]) {
    // Callers check lengths (`Op::check`); a longer key would be refused by the peer anyway.
    out.put_u16_le(key.len().min(usize::from(u16::MAX)) as u16);
    out.put_slice(key);
}

pub(crate) fn put_value(out: &mut BytesMut, value: &[u8]) {
    out.put_u32_le(value.len().min(u32::MAX as usize) as u32);
    out.put_slice(value);
}

pub(crate) fn finish<T>(buf: &Bytes, value: T) -> Result<T, ProtoError> {
    if buf.is_empty() {
        Ok(value)
    } else {
        Err(ProtoError::TrailingBytes(buf.len()))
    }
}

impl Op {
    /// Checks the key and value against the protocol's limits (what a server would refuse).
    pub fn check(&self) -> Result<(), ProtoError> {
        let (key, value) = match self {
            Op::Get { key } => (key, None),
            Op::Put { key, value } => (key, Some(value)),
        };
        if key.len() > MAX_KEY_LEN {
            return Err(ProtoError::KeyTooLong(key.len()));
        }
        match value {
            Some(v) if v.len() > MAX_VALUE_LEN => Err(ProtoError::ValueTooLong(v.len())),
            _ => Ok(()),
        }
    }
}

impl Request {
    /// The encoded body.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(32);
        out.put_u64_le(self.id);
        out.put_u64_le(self.ack);
        match &self.op {
            Op::Get { key } => {
                out.put_u8(OP_GET);
                put_key(&mut out, key);
            }
            Op::Put { key, value } => {
                out.reserve(key.len() + value.len() + 6);
                out.put_u8(OP_PUT);
                put_key(&mut out, key);
                put_value(&mut out, value);
            }
        }
        out.freeze()
    }

    /// As a frame.
    pub fn to_frame(&self) -> Frame {
        Frame::new(KV_PROTOCOL, MSG_REQUEST, self.encode())
    }

    /// Decodes a body; key and value are slices of `buf`.
    pub fn decode(mut buf: Bytes) -> Result<Request, ProtoError> {
        let id = get_u64(&mut buf)?;
        let ack = get_u64(&mut buf)?;
        let op = match get_u8(&mut buf)? {
            OP_GET => Op::Get {
                key: get_key(&mut buf)?,
            },
            OP_PUT => Op::Put {
                key: get_key(&mut buf)?,
                value: get_value(&mut buf)?,
            },
            t => return Err(ProtoError::UnknownTag(t)),
        };
        finish(&buf, Request { id, ack, op })
    }
}

impl Response {
    /// The encoded body.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(48);
        out.put_u64_le(self.id);
        match &self.result {
            KvResult::Value(None) => out.put_u8(R_NONE),
            KvResult::Value(Some(v)) => {
                out.reserve(v.len() + 5);
                out.put_u8(R_SOME);
                put_value(&mut out, v);
            }
            KvResult::Done => out.put_u8(R_DONE),
            KvResult::NotLeader(None) => out.put_u8(R_NOT_LEADER),
            KvResult::NotLeader(Some(p)) => {
                out.put_u8(R_NOT_LEADER_HINT);
                out.put_slice(p.as_bytes());
            }
            KvResult::Unavailable => out.put_u8(R_UNAVAILABLE),
        }
        out.freeze()
    }

    /// As a frame.
    pub fn to_frame(&self) -> Frame {
        Frame::new(KV_PROTOCOL, MSG_RESPONSE, self.encode())
    }

    /// Decodes a body; a value is a slice of `buf`.
    pub fn decode(mut buf: Bytes) -> Result<Response, ProtoError> {
        let id = get_u64(&mut buf)?;
        let result = match get_u8(&mut buf)? {
            R_NONE => KvResult::Value(None),
            R_SOME => KvResult::Value(Some(get_value(&mut buf)?)),
            R_DONE => KvResult::Done,
            R_NOT_LEADER => KvResult::NotLeader(None),
            R_NOT_LEADER_HINT => KvResult::NotLeader(Some(get_peer(&mut buf)?)),
            R_UNAVAILABLE => KvResult::Unavailable,
            t => return Err(ProtoError::UnknownTag(t)),
        };
        finish(&buf, Response { id, result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn get(key: &'static [u8]) -> Op {
        Op::Get {
            key: Bytes::from_static(key),
        }
    }

    #[test]
    fn request_round_trips() {
        for op in [
            get(b""),
            get(b"k"),
            Op::Put {
                key: Bytes::from_static(b"key"),
                value: Bytes::from_static(b"value"),
            },
        ] {
            let r = Request { id: 7, ack: 3, op };
            assert_eq!(Request::decode(r.encode()), Ok(r));
        }
    }

    #[test]
    fn response_round_trips() {
        let peer = PeerId::from_bytes([9; 32]);
        for result in [
            KvResult::Value(None),
            KvResult::Value(Some(Bytes::from_static(b"v"))),
            KvResult::Done,
            KvResult::NotLeader(None),
            KvResult::NotLeader(Some(peer)),
            KvResult::Unavailable,
        ] {
            let r = Response {
                id: u64::MAX,
                result,
            };
            assert_eq!(Response::decode(r.encode()), Ok(r));
        }
    }

    #[test]
    fn hostile_input_is_refused() {
        let ok = Request {
            id: 1,
            ack: 0,
            op: get(b"abc"),
        }
        .encode();
        // Every strict prefix is truncated.
        for n in 0..ok.len() {
            assert_eq!(
                Request::decode(ok.slice(..n)),
                Err(ProtoError::Truncated),
                "{n}"
            );
        }
        let mut long = ok.to_vec();
        long.push(0);
        assert_eq!(
            Request::decode(long.into()),
            Err(ProtoError::TrailingBytes(1))
        );
        let mut bad = ok.to_vec();
        bad[16] = 9;
        assert_eq!(Request::decode(bad.into()), Err(ProtoError::UnknownTag(9)));
        // A huge announced key length is refused before anything is sliced.
        let mut huge = vec![0u8; 17];
        huge.extend_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(
            Request::decode(huge.into()),
            Err(ProtoError::KeyTooLong(u16::MAX as usize))
        );
        let mut huge = vec![0u8; 16];
        huge.push(OP_PUT);
        huge.extend_from_slice(&0u16.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Request::decode(huge.into()),
            Err(ProtoError::ValueTooLong(u32::MAX as usize))
        );
        assert_eq!(
            Response::decode(Bytes::from_static(&[0; 9][..])),
            Ok(Response {
                id: 0,
                result: KvResult::Value(None)
            })
        );
        assert_eq!(
            Response::decode(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 4, 1])),
            Err(ProtoError::Truncated)
        );
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from);
        let value = proptest::collection::vec(any::<u8>(), 0..256).prop_map(Bytes::from);
        prop_oneof![
            key.clone().prop_map(|key| Op::Get { key }),
            (key, value).prop_map(|(key, value)| Op::Put { key, value }),
        ]
    }

    fn result() -> impl Strategy<Value = KvResult> {
        prop_oneof![
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..256))
                .prop_map(|v| KvResult::Value(v.map(Bytes::from))),
            Just(KvResult::Done),
            proptest::option::of(any::<[u8; 32]>())
                .prop_map(|p| KvResult::NotLeader(p.map(PeerId::from_bytes))),
            Just(KvResult::Unavailable),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(id: u64, ack: u64, op in op()) {
            let r = Request { id, ack, op };
            prop_assert_eq!(Request::decode(r.encode()), Ok(r));
        }

        #[test]
        fn responses_round_trip(id: u64, result in result()) {
            let r = Response { id, result };
            prop_assert_eq!(Response::decode(r.encode()), Ok(r));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = Request::decode(Bytes::from(bytes.clone()));
            let _ = Response::decode(Bytes::from(bytes));
        }
    }
}
