//! Property tests for the DHT's wire messages and record store: every message round-trips
//! through the codec (whole and streamed), decoding arbitrary or corrupted bodies never panics
//! and whatever decodes is canonical, and the record store behaves like a simple model while
//! holding its bounds under any sequence of operations.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use starling_core::dht::message::MAX_WIRE_CONTACTS;
use starling_core::dht::store::{PutOutcome, StoreError};
use starling_core::dht::{DhtMessage, NodeContact, Record, RecordStore, StoreConfig, StoreResult};
use starling_core::id::{Key, PeerId};
use starling_core::time::{Duration, Instant};
use starling_core::wire::{
    decode_message, encode_message, message_to_frame, Frame, FrameDecoder, Limits, ProtocolId,
    WireMessage,
};

type Msg = DhtMessage<NodeContact>;

fn key() -> impl Strategy<Value = Key> {
    any::<[u8; 32]>().prop_map(Key::from_bytes)
}

fn peer() -> impl Strategy<Value = PeerId> {
    any::<[u8; 32]>().prop_map(PeerId::from_bytes)
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    let ip = prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ];
    (ip, any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

fn contact() -> impl Strategy<Value = NodeContact> {
    (peer(), socket_addr()).prop_map(|(peer, addr)| NodeContact { peer, addr })
}

fn contacts() -> impl Strategy<Value = Vec<NodeContact>> {
    prop::collection::vec(contact(), 0..=20)
}

fn record() -> impl Strategy<Value = Box<Record>> {
    (
        key(),
        prop::collection::vec(any::<u8>(), 0..=1024),
        peer(),
        any::<u32>(),
    )
        .prop_map(|(key, value, publisher, ttl_secs)| {
            Box::new(Record {
                key,
                value: Bytes::from(value),
                publisher,
                ttl_secs,
            })
        })
}

fn store_result() -> impl Strategy<Value = StoreResult> {
    prop_oneof![
        Just(StoreResult::Accepted),
        Just(StoreResult::Rejected),
        Just(StoreResult::Full),
    ]
}

fn message() -> impl Strategy<Value = Msg> {
    let id = any::<u64>;
    prop_oneof![
        id().prop_map(|id| DhtMessage::Ping { id }),
        id().prop_map(|id| DhtMessage::Pong { id }),
        (id(), key()).prop_map(|(id, target)| DhtMessage::FindNode { id, target }),
        (id(), contacts()).prop_map(|(id, contacts)| DhtMessage::Nodes { id, contacts }),
        (id(), key()).prop_map(|(id, key)| DhtMessage::FindValue { id, key }),
        (id(), record(), contacts()).prop_map(|(id, record, contacts)| DhtMessage::Value {
            id,
            record,
            contacts
        }),
        (id(), record()).prop_map(|(id, record)| DhtMessage::Store { id, record }),
        (id(), store_result()).prop_map(|(id, result)| DhtMessage::Stored { id, result }),
    ]
}

/// Decodes `frame` as a DHT message; if it decodes, checks that it re-encodes to the same frame
/// and respects the contact bound.
fn check_canonical(frame: Frame) -> Result<(), TestCaseError> {
    let original = frame.clone();
    if let Ok(msg) = decode_message::<Msg>(frame, &Limits::DEFAULT) {
        if let DhtMessage::Nodes { contacts, .. } | DhtMessage::Value { contacts, .. } = &msg {
            prop_assert!(contacts.len() <= MAX_WIRE_CONTACTS);
        }
        prop_assert_eq!(msg.body_len(), original.body.len());
        prop_assert_eq!(message_to_frame(&msg), original);
    }
    Ok(())
}

proptest! {
    #[test]
    fn messages_round_trip(msg in message()) {
        let frame = message_to_frame(&msg);
        prop_assert_eq!(frame.protocol, ProtocolId::DHT);
        prop_assert_eq!(frame.body.len(), msg.body_len());
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

    /// Arbitrary bodies, under every type byte (weighted towards the defined ones), never panic
    /// the decoder; whatever decodes is canonical.
    #[test]
    fn arbitrary_bodies_decode_or_fail_cleanly(
        msg_type in prop_oneof![3 => 0u8..8, 1 => any::<u8>()],
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        check_canonical(Frame::new(ProtocolId::DHT, msg_type, body))?;
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
        check_canonical(Frame::new(ProtocolId::DHT, frame.msg_type, body))?;
    }
}

/// One operation on the store under test.
#[derive(Clone, Debug)]
enum Op {
    Put { key: u8, len: usize, ttl: u32 },
    Get { key: u8 },
    Remove { key: u8 },
    Expire,
    Advance { secs: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    // Few keys, so replacements are common; lengths straddle `max_value_len`; TTLs straddle
    // `max_ttl` and include zero.
    prop_oneof![
        4 => (0u8..12, 0usize..300, 0u32..80).prop_map(|(key, len, ttl)| Op::Put { key, len, ttl }),
        2 => (0u8..12).prop_map(|key| Op::Get { key }),
        1 => (0u8..12).prop_map(|key| Op::Remove { key }),
        1 => Just(Op::Expire),
        2 => (0u32..40).prop_map(|secs| Op::Advance { secs }),
    ]
}

/// What the store should hold: key → (value length, expiry).
#[derive(Default)]
struct Model {
    records: HashMap<u8, (usize, Instant)>,
}

impl Model {
    fn bytes(&self, overhead: usize) -> usize {
        self.records.values().map(|(len, _)| len + overhead).sum()
    }

    fn fits(&self, config: &StoreConfig, key: u8, len: usize, overhead: usize) -> bool {
        let old = self.records.get(&key).map(|(l, _)| l + overhead);
        let count = self.records.len() + usize::from(old.is_none());
        let bytes = self.bytes(overhead) - old.unwrap_or(0) + len + overhead;
        count <= config.max_records && bytes <= config.max_bytes
    }

    fn expire(&mut self, now: Instant) -> usize {
        let before = self.records.len();
        self.records.retain(|_, (_, expires)| *expires > now);
        before - self.records.len()
    }
}

fn model_record(key: u8, len: usize, ttl_secs: u32) -> Record {
    Record {
        key: Key::from_bytes([key; 32]),
        value: Bytes::from(vec![key; len]),
        publisher: PeerId::from_bytes([1; 32]),
        ttl_secs,
    }
}

proptest! {
    /// Under any sequence of operations the store agrees with the model, never holds more than
    /// `max_records` records or `max_bytes` bytes, `bytes()` is the sum of the records' sizes,
    /// and `next_expiry` is the earliest expiry held.
    #[test]
    fn record_store_matches_the_model_and_holds_its_bounds(
        ops in prop::collection::vec(op(), 1..300),
    ) {
        let config = StoreConfig {
            max_records: 5,
            max_bytes: 1000,
            max_value_len: 250,
            max_ttl: Duration::from_secs(50),
        };
        let overhead = model_record(0, 0, 1).size();
        let mut store = RecordStore::new(config);
        let mut model = Model::default();
        let mut now = Instant::ZERO;
        for op in ops {
            match op {
                Op::Put { key, len, ttl } => {
                    let result = store.put(now, model_record(key, len, ttl));
                    if len > config.max_value_len {
                        prop_assert_eq!(
                            result,
                            Err(StoreError::ValueTooLarge { len, max: config.max_value_len })
                        );
                    } else if ttl == 0 {
                        prop_assert_eq!(result, Err(StoreError::ZeroTtl));
                    } else {
                        // The store drops expired records only when that could make room.
                        if !model.fits(&config, key, len, overhead) {
                            model.expire(now);
                        }
                        if model.fits(&config, key, len, overhead) {
                            let expires = now + Duration::from_secs(u64::from(ttl)).min(config.max_ttl);
                            let replaced = model.records.insert(key, (len, expires)).is_some();
                            let expected =
                                if replaced { PutOutcome::Replaced } else { PutOutcome::Inserted };
                            prop_assert_eq!(result, Ok(expected));
                            prop_assert_eq!(store.stored_at(&Key::from_bytes([key; 32])), Some(now));
                        } else {
                            prop_assert!(matches!(result, Err(StoreError::Full { .. })), "{:?}", result);
                        }
                    }
                }
                Op::Get { key } => {
                    let got = store.get(now, &Key::from_bytes([key; 32])).map(|r| r.value.len());
                    let want = model
                        .records
                        .get(&key)
                        .filter(|(_, expires)| *expires > now)
                        .map(|(len, _)| *len);
                    prop_assert_eq!(got, want);
                }
                Op::Remove { key } => {
                    let got = store.remove(&Key::from_bytes([key; 32])).map(|r| r.value.len());
                    prop_assert_eq!(got, model.records.remove(&key).map(|(len, _)| len));
                }
                Op::Expire => prop_assert_eq!(store.expire(now), model.expire(now)),
                Op::Advance { secs } => now += Duration::from_secs(u64::from(secs)),
            }
            prop_assert!(store.len() <= config.max_records);
            prop_assert!(store.bytes() <= config.max_bytes);
            prop_assert_eq!(store.len(), model.records.len());
            prop_assert_eq!(store.bytes(), model.bytes(overhead));
            let sum: usize = store.iter().map(|(r, _)| r.size()).sum();
            prop_assert_eq!(store.bytes(), sum);
            let earliest = model.records.values().map(|(_, expires)| *expires).min();
            prop_assert_eq!(store.next_expiry(), earliest);
        }
    }
}
