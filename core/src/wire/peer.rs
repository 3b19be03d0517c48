//! How a protocol writes the peers its messages name.
//!
//! Protocols are generic over the type that names a peer (DESIGN.md §3): a real node uses a
//! [`PeerId`] or a [`NodeContact`], the simulator and tests a small integer. [`WirePeer`] is the
//! one encoding every protocol uses for whichever type it is given, so Raft's members, the DHT's
//! contacts and gossip's views are written the same way:
//!
//! | type | encoding | fewest bytes |
//! |------|----------|--------------|
//! | `u64`, `u32` | varint (a `u32` is refused above 32 bits) | 1 |
//! | [`PeerId`] | its 32 raw bytes | 32 |
//! | [`NodeContact`] | see [`crate::wire::contact`] | 39 |
//!
//! A list of peers is a varint count, then the peers back to back ([`put_peer_list`],
//! [`get_peer_list`]); the count is checked against a bound and against the bytes left (at
//! [`WirePeer::MIN_ENCODED_LEN`] per peer) before anything is allocated.
//!
//! [`NodeContact`]: crate::contact::NodeContact

use bytes::{BufMut, Bytes};

use super::codec::{get_array, get_capped_list_len, put_list_len};
use super::error::DecodeError;
use super::limits::Limits;
use super::varint::{get_varint, get_varint_u32, put_varint, varint_len};
use crate::id::PeerId;

/// A peer name with a wire encoding. Implemented for `u64` and `u32` (varints), [`PeerId`] (32
/// raw bytes) and [`NodeContact`](crate::contact::NodeContact); an application naming peers
/// otherwise implements it for its own type.
pub trait WirePeer: Sized {
    /// The fewest bytes one encoded peer takes (at least 1), so a list count can be checked
    /// against the bytes left before allocating.
    const MIN_ENCODED_LEN: usize;
    /// Exact encoded length of `self`.
    fn encoded_len(&self) -> usize;
    /// Appends `self`.
    fn encode<B: BufMut>(&self, buf: &mut B);
    /// Reads a peer. Must never panic, and must accept only what [`WirePeer::encode`] writes,
    /// so that every message keeps exactly one encoding.
    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError>;
}

impl WirePeer for u64 {
    const MIN_ENCODED_LEN: usize = 1;
    fn encoded_len(&self) -> usize {
        varint_len(*self)
    }
    fn encode<B: BufMut>(&self, buf: &mut B) {
        put_varint(buf, *self);
    }
    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        get_varint(buf)
    }
}

impl WirePeer for u32 {
    const MIN_ENCODED_LEN: usize = 1;
    fn encoded_len(&self) -> usize {
        varint_len(u64::from(*self))
    }
    fn encode<B: BufMut>(&self, buf: &mut B) {
        put_varint(buf, u64::from(*self));
    }
    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        get_varint_u32(buf)
    }
}

impl WirePeer for PeerId {
    const MIN_ENCODED_LEN: usize = 32;
    fn encoded_len(&self) -> usize {
        32
    }
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_slice(self.as_bytes());
    }
    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        Ok(PeerId::from_bytes(get_array(buf)?))
    }
}

/// Encoded length of a list of `peers` (count included).
pub fn peer_list_len<'a, P: WirePeer + 'a>(peers: impl ExactSizeIterator<Item = &'a P>) -> usize {
    varint_len(peers.len() as u64) + peers.map(WirePeer::encoded_len).sum::<usize>()
}

/// Appends a list of peers: a varint count, then each peer.
pub fn put_peer_list<'a, P: WirePeer + 'a, B: BufMut>(
    buf: &mut B,
    peers: impl ExactSizeIterator<Item = &'a P>,
) {
    put_list_len(buf, peers.len());
    for p in peers {
        p.encode(buf);
    }
}

/// Reads a list of at most `cap` peers (and at most `limits.max_list_len`), refusing the count
/// before allocating: [`DecodeError::ListTooLong`] above the bound, [`DecodeError::UnexpectedEnd`]
/// if that many peers could not fit in the bytes left.
pub fn get_peer_list<P: WirePeer>(
    buf: &mut Bytes,
    limits: &Limits,
    cap: usize,
) -> Result<Vec<P>, DecodeError> {
    let count = get_capped_list_len(buf, limits, cap, P::MIN_ENCODED_LEN)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(P::decode(buf)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<P: WirePeer + PartialEq + core::fmt::Debug>(p: P, expected: &[u8]) {
        let mut out = Vec::new();
        p.encode(&mut out);
        assert_eq!(out, expected);
        assert_eq!(p.encoded_len(), expected.len());
        assert!(expected.len() >= P::MIN_ENCODED_LEN);
        let mut buf = Bytes::from(out);
        assert_eq!(P::decode(&mut buf), Ok(p));
        assert!(buf.is_empty());
    }

    #[test]
    fn integers_are_varints_and_ids_raw_bytes() {
        round_trip(0u64, &[0]);
        round_trip(300u64, &[0xac, 0x02]);
        round_trip(u32::MAX, &[0xff, 0xff, 0xff, 0xff, 0x0f]);
        round_trip(PeerId::from_bytes([9; 32]), &[9; 32]);
    }

    #[test]
    fn bad_peers_are_errors() {
        // A u32 wider than 32 bits, a varint written long, an id cut short.
        let mut wide = Vec::new();
        put_varint(&mut wide, 1 << 32);
        assert_eq!(
            u32::decode(&mut Bytes::from(wide)),
            Err(DecodeError::VarintOverflow)
        );
        assert_eq!(
            u64::decode(&mut Bytes::from_static(&[0x80, 0x00])),
            Err(DecodeError::VarintNonCanonical)
        );
        assert_eq!(
            PeerId::decode(&mut Bytes::from_static(&[1; 31])),
            Err(DecodeError::UnexpectedEnd {
                needed: 32,
                remaining: 31
            })
        );
    }

    #[test]
    fn lists_round_trip_and_are_bounded_before_allocating() {
        let peers = [1u64, 300, u64::MAX];
        let mut out = Vec::new();
        put_peer_list(&mut out, peers.iter());
        assert_eq!(out.len(), peer_list_len(peers.iter()));
        let mut buf = Bytes::from(out.clone());
        assert_eq!(
            get_peer_list::<u64>(&mut buf, &Limits::default(), 3),
            Ok(peers.to_vec())
        );
        assert!(buf.is_empty());
        assert_eq!(
            get_peer_list::<u64>(&mut Bytes::from(out), &Limits::default(), 2),
            Err(DecodeError::ListTooLong { len: 3, max: 2 })
        );
        // Two ids announced, one id's worth of bytes behind the count.
        let mut short = vec![2u8];
        short.extend_from_slice(&[0; 32]);
        assert_eq!(
            get_peer_list::<PeerId>(&mut Bytes::from(short), &Limits::default(), 8),
            Err(DecodeError::UnexpectedEnd {
                needed: 64,
                remaining: 32
            })
        );
    }
}
