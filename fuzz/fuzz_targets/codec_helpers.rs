//! The bounded field readers, and the peer readers every protocol shares ([`WirePeer`] for
//! `u64`, `u32`, `PeerId` and `NodeContact`, and peer lists), driven in an arbitrary order over
//! arbitrary bytes with small limits.
//!
//! Checks: no panics; every string and list count respects its limit; a list count never
//! promises more items than the bytes left can hold; readers consume exactly what they return,
//! and a peer re-encodes to exactly the bytes it was read from.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use starling_core::wire::codec::{
    get_array, get_bytes, get_list_len, get_string, get_u16_le, get_u32_le, get_u64_le, get_u8,
};
use starling_core::wire::peer::get_peer_list;
use starling_core::wire::varint::get_varint;
use starling_core::wire::{DecodeError, Limits, WirePeer};
use starling_core::{NodeContact, PeerId};

#[derive(Arbitrary, Debug)]
enum Op {
    Bytes,
    String,
    ListLen { min_item_len: u8 },
    Array4,
    Array32,
    U8,
    U16,
    U32,
    U64,
    Varint,
    PeerU64,
    PeerU32,
    PeerId,
    Contact,
    ContactList { cap: u8 },
}

/// Reads one `P` and checks it re-encodes to exactly the bytes it consumed.
fn peer<P: WirePeer>(buf: &mut Bytes) -> Result<bool, DecodeError> {
    let before = buf.clone();
    let p = P::decode(buf)?;
    let consumed = before.len() - buf.len();
    let mut again = Vec::new();
    p.encode(&mut again);
    Ok(consumed >= P::MIN_ENCODED_LEN
        && p.encoded_len() == consumed
        && again[..] == before[..consumed])
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_list_len: u8,
    max_bytes_len: u8,
    ops: Vec<Op>,
    data: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let limits = Limits {
        max_frame_len: 1 << 10,
        max_list_len: u32::from(input.max_list_len) + 1,
        max_bytes_len: u32::from(input.max_bytes_len) + 1,
    };
    let mut buf = Bytes::from(input.data);
    for op in input.ops {
        let before = buf.len();
        // Stop at the first error, as a message decoder would.
        let consumed_ok = match op {
            Op::Bytes => get_bytes(&mut buf, &limits).map(|b| {
                assert!(b.len() <= limits.max_bytes_len as usize);
                true
            }),
            Op::String => get_string(&mut buf, &limits).map(|s| {
                assert!(s.len() <= limits.max_bytes_len as usize);
                true
            }),
            Op::ListLen { min_item_len } => {
                get_list_len(&mut buf, &limits, usize::from(min_item_len)).map(|count| {
                    assert!(count <= limits.max_list_len as usize);
                    assert!(count * usize::from(min_item_len) <= buf.len());
                    true
                })
            }
            Op::Array4 => get_array::<4, _>(&mut buf).map(|_| before - buf.len() == 4),
            Op::Array32 => get_array::<32, _>(&mut buf).map(|_| before - buf.len() == 32),
            Op::U8 => get_u8(&mut buf).map(|_| before - buf.len() == 1),
            Op::U16 => get_u16_le(&mut buf).map(|_| before - buf.len() == 2),
            Op::U32 => get_u32_le(&mut buf).map(|_| before - buf.len() == 4),
            Op::U64 => get_u64_le(&mut buf).map(|_| before - buf.len() == 8),
            Op::Varint => get_varint(&mut buf).map(|_| before > buf.len()),
            Op::PeerU64 => peer::<u64>(&mut buf),
            Op::PeerU32 => peer::<u32>(&mut buf),
            Op::PeerId => peer::<PeerId>(&mut buf),
            Op::Contact => peer::<NodeContact>(&mut buf),
            Op::ContactList { cap } => {
                get_peer_list::<NodeContact>(&mut buf, &limits, usize::from(cap)).map(|list| {
                    list.len() <= usize::from(cap) && list.len() <= limits.max_list_len as usize
                })
            }
        };
        match consumed_ok {
            Ok(ok) => assert!(ok, "{op:?} consumed the wrong number of bytes"),
            Err(_) => break,
        }
    }
});
