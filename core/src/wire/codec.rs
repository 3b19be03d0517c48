//! Bounded field readers and writers shared by every message codec.
//!
//! Readers never panic: each checks how many bytes remain before touching the buffer (the
//! `bytes::Buf::get_*` methods panic on short input, so they are only called after that check),
//! and length-prefixed fields are checked against [`Limits`] and against the bytes actually
//! present before anything is sliced or allocated.
//!
//! Field encodings:
//!
//! | field | encoding |
//! |---|---|
//! | `u8` | one byte |
//! | `u16`, `u32`, `u64` | 2, 4, 8 bytes, little-endian |
//! | `[u8; N]` (keys, hashes, signatures) | `N` bytes, no prefix |
//! | byte string | varint length, then the bytes; length ≤ `max_bytes_len` |
//! | UTF-8 string | as a byte string, and must be valid UTF-8 |
//! | list | varint item count ≤ `max_list_len`, then the items back to back |
//!
//! A message codec typically reads a list like this, which is safe to run on hostile input
//! because [`get_list_len`] has already checked that `count` items of at least 4 bytes each fit in
//! what remains:
//!
//! ```
//! use bytes::Bytes;
//! use starling_core::wire::{codec, DecodeError, Limits};
//!
//! fn read_ports(body: &mut Bytes, limits: &Limits) -> Result<Vec<u32>, DecodeError> {
//!     let count = codec::get_list_len(body, limits, 4)?;
//!     let mut ports = Vec::with_capacity(count);
//!     for _ in 0..count {
//!         ports.push(codec::get_u32_le(body)?);
//!     }
//!     Ok(ports)
//! }
//!
//! let mut body = Bytes::from_static(&[2, 80, 0, 0, 0, 187, 1, 0, 0]);
//! assert_eq!(read_ports(&mut body, &Limits::default()), Ok(vec![80, 443]));
//! ```

use bytes::{Buf, BufMut, Bytes};

use super::error::DecodeError;
use super::limits::Limits;
use super::varint::{get_varint, put_varint, varint_len};

/// Fails with [`DecodeError::UnexpectedEnd`] unless at least `needed` bytes remain.
pub fn ensure_remaining<B: Buf>(buf: &B, needed: usize) -> Result<(), DecodeError> {
    let remaining = buf.remaining();
    if remaining < needed {
        return Err(DecodeError::UnexpectedEnd { needed, remaining });
    }
    Ok(())
}

/// Reads one byte.
pub fn get_u8<B: Buf>(buf: &mut B) -> Result<u8, DecodeError> {
    ensure_remaining(buf, 1)?;
    Ok(buf.get_u8())
}

/// Reads a little-endian `u16`.
pub fn get_u16_le<B: Buf>(buf: &mut B) -> Result<u16, DecodeError> {
    ensure_remaining(buf, 2)?;
    Ok(buf.get_u16_le())
}

/// Reads a little-endian `u32`.
pub fn get_u32_le<B: Buf>(buf: &mut B) -> Result<u32, DecodeError> {
    ensure_remaining(buf, 4)?;
    Ok(buf.get_u32_le())
}

/// Reads a little-endian `u64`.
pub fn get_u64_le<B: Buf>(buf: &mut B) -> Result<u64, DecodeError> {
    ensure_remaining(buf, 8)?;
    Ok(buf.get_u64_le())
}

/// Reads exactly `N` bytes into an array (for fixed-size keys, hashes and signatures).
pub fn get_array<const N: usize, B: Buf>(buf: &mut B) -> Result<[u8; N], DecodeError> {
    ensure_remaining(buf, N)?;
    let mut out = [0u8; N];
    buf.copy_to_slice(&mut out);
    Ok(out)
}

/// Appends a byte string: its length as a varint, then the bytes.
///
/// The writer does not check [`Limits`]; a string longer than the receiver's `max_bytes_len` is
/// rejected on the other side.
pub fn put_bytes<B: BufMut>(buf: &mut B, bytes: &[u8]) {
    put_varint(buf, bytes.len() as u64);
    buf.put_slice(bytes);
}

/// Appends a UTF-8 string, encoded as a byte string.
pub fn put_string<B: BufMut>(buf: &mut B, s: &str) {
    put_bytes(buf, s.as_bytes());
}

/// Encoded size of a byte string of `len` bytes (prefix included), for
/// [`crate::wire::WireMessage::body_len`].
pub const fn bytes_encoded_len(len: usize) -> usize {
    varint_len(len as u64) + len
}

/// Reads a byte string as a zero-copy slice of `buf`.
///
/// The length is checked against `limits.max_bytes_len` and against the bytes remaining before
/// anything is sliced.
pub fn get_bytes(buf: &mut Bytes, limits: &Limits) -> Result<Bytes, DecodeError> {
    let len = get_varint(buf)?;
    if len > u64::from(limits.max_bytes_len) {
        return Err(DecodeError::BytesTooLong {
            len,
            max: limits.max_bytes_len,
        });
    }
    // Only fails on targets whose usize is narrower than the limit; report it as the limit.
    let len = usize::try_from(len).map_err(|_| DecodeError::BytesTooLong {
        len,
        max: limits.max_bytes_len,
    })?;
    ensure_remaining(buf, len)?;
    Ok(buf.split_to(len))
}

/// Reads a UTF-8 string, with the same checks as [`get_bytes`]. Only a valid string is copied.
pub fn get_string(buf: &mut Bytes, limits: &Limits) -> Result<String, DecodeError> {
    let bytes = get_bytes(buf, limits)?;
    let s = core::str::from_utf8(&bytes).map_err(|_| DecodeError::InvalidUtf8)?;
    Ok(s.to_owned())
}

/// Appends a list's item count; the caller then writes the items.
pub fn put_list_len<B: BufMut>(buf: &mut B, count: usize) {
    put_varint(buf, count as u64);
}

/// Reads a list's item count, safe to pass to `Vec::with_capacity`.
///
/// `min_item_len` is the fewest bytes one item can take on the wire (4 for a `u32`, 1 for a byte
/// string, which is at least its length prefix). A count above `limits.max_list_len` is
/// [`DecodeError::ListTooLong`]; a count whose items could not fit in the bytes remaining is
/// [`DecodeError::UnexpectedEnd`]. Together these bound the allocation by both the limit and
/// the input actually received. With `min_item_len == 0` only the list limit applies.
pub fn get_list_len<B: Buf>(
    buf: &mut B,
    limits: &Limits,
    min_item_len: usize,
) -> Result<usize, DecodeError> {
    let count = get_varint(buf)?;
    if count > u64::from(limits.max_list_len) {
        return Err(DecodeError::ListTooLong {
            len: count,
            max: limits.max_list_len,
        });
    }
    // Only fails on targets whose usize is narrower than the limit; report it as the limit.
    let count = usize::try_from(count).map_err(|_| DecodeError::ListTooLong {
        len: count,
        max: limits.max_list_len,
    })?;
    // Saturate rather than overflow: a product that does not fit is certainly more than remains.
    let needed = count.saturating_mul(min_item_len);
    ensure_remaining(buf, needed)?;
    Ok(count)
}

/// As [`get_list_len`], for a list the protocol bounds more tightly than `limits.max_list_len`:
/// the count must also be at most `cap`.
///
/// The tighter bound is folded into the limit rather than checked afterwards, so an excess count
/// is refused as [`DecodeError::ListTooLong`] naming the bound actually in force, before anything
/// is allocated.
pub fn get_capped_list_len<B: Buf>(
    buf: &mut B,
    limits: &Limits,
    cap: usize,
    min_item_len: usize,
) -> Result<usize, DecodeError> {
    let capped = Limits {
        max_list_len: limits
            .max_list_len
            .min(u32::try_from(cap).unwrap_or(u32::MAX)),
        ..*limits
    };
    get_list_len(buf, &capped, min_item_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_bytes_len: u32, max_list_len: u32) -> Limits {
        Limits {
            max_frame_len: 1 << 20,
            max_list_len,
            max_bytes_len,
        }
    }

    #[test]
    fn fixed_width_integers_are_little_endian() {
        let mut buf = Bytes::from_static(&[7, 1, 2, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(get_u8(&mut buf), Ok(7));
        assert_eq!(get_u16_le(&mut buf), Ok(0x0201));
        assert_eq!(get_u32_le(&mut buf), Ok(0x0403_0201));
        assert_eq!(get_u64_le(&mut buf), Ok(0x0807_0605_0403_0201));
        assert!(buf.is_empty());
    }

    #[test]
    fn short_input_is_an_error_not_a_panic() {
        let end = |needed, remaining| DecodeError::UnexpectedEnd { needed, remaining };
        assert_eq!(get_u8(&mut Bytes::new()), Err(end(1, 0)));
        assert_eq!(get_u16_le(&mut Bytes::from_static(&[1])), Err(end(2, 1)));
        assert_eq!(
            get_u32_le(&mut Bytes::from_static(&[1, 2, 3])),
            Err(end(4, 3))
        );
        assert_eq!(get_u64_le(&mut Bytes::from_static(&[0; 7])), Err(end(8, 7)));
        assert_eq!(
            get_array::<32, _>(&mut Bytes::from_static(&[0; 31])),
            Err(DecodeError::UnexpectedEnd {
                needed: 32,
                remaining: 31
            })
        );
    }

    #[test]
    fn get_array_reads_exactly_n_bytes() {
        let mut buf = Bytes::from_static(&[1, 2, 3, 4, 5]);
        assert_eq!(get_array::<3, _>(&mut buf), Ok([1, 2, 3]));
        assert_eq!(buf, Bytes::from_static(&[4, 5]));
        assert_eq!(get_array::<0, _>(&mut buf), Ok([]));
    }

    #[test]
    fn bytes_round_trip_and_share_the_input_buffer() {
        let mut out = Vec::new();
        put_bytes(&mut out, b"hello");
        put_string(&mut out, "wörld");
        assert_eq!(
            out.len(),
            bytes_encoded_len(5) + bytes_encoded_len("wörld".len())
        );
        let mut buf = Bytes::from(out);
        let base = buf.as_ptr() as usize;
        let hello = get_bytes(&mut buf, &Limits::default());
        assert_eq!(hello.as_deref(), Ok(b"hello".as_slice()));
        // Zero-copy: the slice points into the original allocation, just past the prefix.
        assert_eq!(hello.map(|b| b.as_ptr() as usize), Ok(base + 1));
        assert_eq!(
            get_string(&mut buf, &Limits::default()).as_deref(),
            Ok("wörld")
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn bytes_over_the_limit_are_rejected_before_slicing() {
        let mut out = Vec::new();
        put_bytes(&mut out, &[0; 5]);
        let mut buf = Bytes::from(out);
        assert_eq!(
            get_bytes(&mut buf, &limits(4, 10)),
            Err(DecodeError::BytesTooLong { len: 5, max: 4 })
        );
        // A huge announced length with no body behind it fails on the limit, not on allocation.
        let mut huge = Vec::new();
        put_varint(&mut huge, u64::MAX);
        assert_eq!(
            get_bytes(&mut Bytes::from(huge), &Limits::default()),
            Err(DecodeError::BytesTooLong {
                len: u64::MAX,
                max: 256 << 10
            })
        );
    }

    #[test]
    fn bytes_longer_than_the_input_are_unexpected_end() {
        let mut buf = Bytes::from_static(&[10, 1, 2, 3]);
        assert_eq!(
            get_bytes(&mut buf, &Limits::default()),
            Err(DecodeError::UnexpectedEnd {
                needed: 10,
                remaining: 3
            })
        );
        let mut prefix = Bytes::from_static(&[0x80]);
        assert_eq!(
            get_bytes(&mut prefix, &Limits::default()),
            Err(DecodeError::UnexpectedEnd {
                needed: 2,
                remaining: 1
            })
        );
        let mut non_canonical = Bytes::from_static(&[0x80, 0x00]);
        assert_eq!(
            get_bytes(&mut non_canonical, &Limits::default()),
            Err(DecodeError::VarintNonCanonical)
        );
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        let mut buf = Bytes::from_static(&[2, 0xc3, 0x28]);
        assert_eq!(
            get_string(&mut buf, &Limits::default()),
            Err(DecodeError::InvalidUtf8)
        );
        let mut long = Bytes::from_static(&[3, b'a', b'b', b'c']);
        assert_eq!(
            get_string(&mut long, &limits(2, 1)),
            Err(DecodeError::BytesTooLong { len: 3, max: 2 })
        );
    }

    #[test]
    fn list_len_round_trips() {
        let mut out = Vec::new();
        put_list_len(&mut out, 3);
        out.extend_from_slice(&[0; 12]);
        let mut buf = Bytes::from(out);
        assert_eq!(get_list_len(&mut buf, &Limits::default(), 4), Ok(3));
        assert_eq!(buf.len(), 12);
    }

    #[test]
    fn list_len_over_the_limit_is_rejected() {
        let mut buf = Bytes::from_static(&[5, 0, 0, 0, 0, 0]);
        assert_eq!(
            get_list_len(&mut buf, &limits(10, 4), 1),
            Err(DecodeError::ListTooLong { len: 5, max: 4 })
        );
    }

    #[test]
    fn capped_list_len_takes_the_tighter_bound() {
        let mut five = Bytes::from_static(&[5, 0, 0, 0, 0, 0]);
        assert_eq!(
            get_capped_list_len(&mut five.clone(), &Limits::default(), 4, 1),
            Err(DecodeError::ListTooLong { len: 5, max: 4 })
        );
        assert_eq!(
            get_capped_list_len(&mut five.clone(), &limits(10, 3), 4, 1),
            Err(DecodeError::ListTooLong { len: 5, max: 3 })
        );
        assert_eq!(
            get_capped_list_len(&mut five, &Limits::default(), usize::MAX, 1),
            Ok(5)
        );
    }

    #[test]
    fn list_len_that_cannot_fit_in_the_input_is_rejected() {
        // Three items of at least 4 bytes need 12 bytes; only 11 follow.
        let mut buf = Bytes::from_static(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            get_list_len(&mut buf, &Limits::default(), 4),
            Err(DecodeError::UnexpectedEnd {
                needed: 12,
                remaining: 11
            })
        );
        // With no minimum item size only the list limit applies.
        let mut empty_items = Bytes::from_static(&[3]);
        assert_eq!(get_list_len(&mut empty_items, &Limits::default(), 0), Ok(3));
        // A saturating product still fails cleanly.
        let mut big = Bytes::from_static(&[1]);
        assert_eq!(
            get_list_len(&mut big, &Limits::default(), usize::MAX),
            Err(DecodeError::UnexpectedEnd {
                needed: usize::MAX,
                remaining: 0
            })
        );
    }
}
