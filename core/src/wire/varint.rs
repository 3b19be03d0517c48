//! Unsigned LEB128 varints, canonical form only.
//!
//! A value is written seven bits at a time, least significant group first; every byte but the
//! last has its high bit (`0x80`) set. `0` is `00`, `127` is `7f`, `128` is `80 01`, `u64::MAX`
//! is nine `ff` bytes then `01`.
//!
//! Decoding accepts only the shortest encoding of each value: a final byte of `00` after other
//! bytes (as in `80 00`) is [`DecodeError::VarintNonCanonical`]. With one encoding per value, a
//! decoded message re-encodes to exactly the bytes it came from, which keeps signatures and
//! content hashes over encoded messages unambiguous. A varint may be at most as long as its field
//! needs: 10 bytes for `u64`, 5 for `u32`, 3 for `u16`; anything longer or wider is
//! [`DecodeError::VarintOverflow`].

use bytes::{Buf, BufMut};

use super::error::DecodeError;

/// Longest encoding of a `u64` (ceil(64 / 7) bytes).
pub const MAX_VARINT_LEN: usize = max_len(64);
/// Longest encoding of a `u32` (ceil(32 / 7) bytes).
pub const MAX_VARINT_LEN_U32: usize = max_len(32);
/// Longest encoding of a `u16` (ceil(16 / 7) bytes).
pub const MAX_VARINT_LEN_U16: usize = max_len(16);

/// Bytes needed to encode a value of `bits` bits.
const fn max_len(bits: u32) -> usize {
    bits.div_ceil(7) as usize
}

/// Appends `v` as a varint.
pub fn put_varint<B: BufMut>(buf: &mut B, v: u64) {
    let mut rest = v;
    while rest >= 0x80 {
        // Truncation to the low seven bits is the point.
        buf.put_u8((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    buf.put_u8(rest as u8);
}

/// Length in bytes of the encoding of `v` (1 to 10).
pub const fn varint_len(v: u64) -> usize {
    // `| 1` makes zero count as one significant bit, so it takes one byte like every value < 128.
    let bits = u64::BITS - (v | 1).leading_zeros();
    max_len(bits)
}

/// Reads a varint of up to 64 bits.
///
/// Errors: [`DecodeError::UnexpectedEnd`] if the input stops mid-varint,
/// [`DecodeError::VarintOverflow`] for a value above `u64::MAX` (or more than 10 bytes),
/// [`DecodeError::VarintNonCanonical`] for an over-long encoding. On error the position of `buf`
/// is unspecified.
pub fn get_varint<B: Buf>(buf: &mut B) -> Result<u64, DecodeError> {
    get_bounded(buf, u64::BITS)
}

/// Reads a varint that must fit in a `u32` (at most 5 bytes); otherwise as [`get_varint`].
pub fn get_varint_u32<B: Buf>(buf: &mut B) -> Result<u32, DecodeError> {
    let v = get_bounded(buf, u32::BITS)?;
    u32::try_from(v).map_err(|_| DecodeError::VarintOverflow)
}

/// Reads a varint that must fit in a `u16` (at most 3 bytes); otherwise as [`get_varint`].
pub fn get_varint_u16<B: Buf>(buf: &mut B) -> Result<u16, DecodeError> {
    let v = get_bounded(buf, u16::BITS)?;
    u16::try_from(v).map_err(|_| DecodeError::VarintOverflow)
}

/// Decodes a varint at the start of `bytes` without consuming anything.
///
/// Returns `Ok(Some((value, encoded_len)))`, or `Ok(None)` if `bytes` ends before the varint does
/// and it could still become valid with more input. A streaming decoder uses this to wait for the
/// rest of a length prefix.
pub fn peek_varint(bytes: &[u8]) -> Result<Option<(u64, usize)>, DecodeError> {
    peek_bounded(bytes, u64::BITS)
}

/// As [`peek_varint`], for a value that must fit in a `u32`: five bytes without a terminator are
/// already [`DecodeError::VarintOverflow`], so a peer cannot stall a stream on an endless prefix.
pub(crate) fn peek_varint_u32(bytes: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    match peek_bounded(bytes, u32::BITS)? {
        Some((v, len)) => {
            let v = u32::try_from(v).map_err(|_| DecodeError::VarintOverflow)?;
            Ok(Some((v, len)))
        }
        None => Ok(None),
    }
}

/// Outcome of feeding one byte to the varint reader.
enum Step {
    /// The varint ended with this byte; the decoded value.
    Done(u64),
    /// More bytes follow; the value accumulated so far.
    More(u64),
}

/// Folds byte number `index` (from 0) of a varint of at most `bits` bits into `acc`.
///
/// Shared by the `Buf` reader and the slice peeker so both accept exactly the same encodings.
fn step(acc: u64, index: usize, byte: u8, bits: u32) -> Result<Step, DecodeError> {
    let last = max_len(bits) - 1;
    if index == last {
        // The final byte may carry only the bits the value has left, and no continuation bit:
        // 1 bit for u64 (9 * 7 = 63 already used), 4 for u32, 2 for u16.
        let spare = bits - 7 * last as u32;
        if u32::from(byte) >> spare != 0 {
            return Err(DecodeError::VarintOverflow);
        }
    }
    // index <= last <= 9, so the shift is at most 63 and cannot overflow.
    let acc = acc | (u64::from(byte & 0x7f) << (7 * index as u32));
    if byte & 0x80 != 0 {
        return Ok(Step::More(acc));
    }
    // A zero final byte adds nothing: the encoding one byte shorter has the same value.
    if byte == 0 && index > 0 {
        return Err(DecodeError::VarintNonCanonical);
    }
    Ok(Step::Done(acc))
}

fn get_bounded<B: Buf>(buf: &mut B, bits: u32) -> Result<u64, DecodeError> {
    let start = buf.remaining();
    let mut acc = 0;
    for index in 0..max_len(bits) {
        if !buf.has_remaining() {
            return Err(DecodeError::UnexpectedEnd {
                needed: index + 1,
                remaining: start,
            });
        }
        // Cannot panic: one byte is known to remain.
        let byte = buf.get_u8();
        match step(acc, index, byte, bits)? {
            Step::Done(v) => return Ok(v),
            Step::More(a) => acc = a,
        }
    }
    // `step` rejects a continuation bit on the last allowed byte, so the loop always returns;
    // this line only keeps the function total.
    Err(DecodeError::VarintOverflow)
}

fn peek_bounded(bytes: &[u8], bits: u32) -> Result<Option<(u64, usize)>, DecodeError> {
    let mut acc = 0;
    for (index, &byte) in bytes.iter().take(max_len(bits)).enumerate() {
        match step(acc, index, byte, bits)? {
            Step::Done(v) => return Ok(Some((v, index + 1))),
            Step::More(a) => acc = a,
        }
    }
    // Ran out of input before the last allowed byte (which `step` would have accepted or
    // rejected), so more bytes may still complete the varint.
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn boundary_values_have_the_expected_bytes() {
        assert_eq!(encode(0), [0x00]);
        assert_eq!(encode(1), [0x01]);
        assert_eq!(encode(127), [0x7f]);
        assert_eq!(encode(128), [0x80, 0x01]);
        assert_eq!(encode(300), [0xac, 0x02]);
        assert_eq!(encode(16_383), [0xff, 0x7f]);
        assert_eq!(encode(16_384), [0x80, 0x80, 0x01]);
        let mut top = vec![0x80; 9];
        top.push(0x01);
        assert_eq!(encode(1 << 63), top);
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(encode(u64::MAX), max);
    }

    #[test]
    fn boundary_values_round_trip_with_matching_len() {
        let values = [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            (1 << 63) - 1,
            1 << 63,
            u64::MAX,
        ];
        for v in values {
            let bytes = encode(v);
            assert_eq!(bytes.len(), varint_len(v), "len of {v}");
            let mut slice = bytes.as_slice();
            assert_eq!(get_varint(&mut slice), Ok(v));
            assert!(slice.is_empty());
            assert_eq!(peek_varint(&bytes), Ok(Some((v, bytes.len()))));
        }
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(u64::MAX), MAX_VARINT_LEN);
    }

    #[test]
    fn over_long_encodings_are_non_canonical() {
        let mut zero = [0x80u8, 0x00].as_slice();
        assert_eq!(get_varint(&mut zero), Err(DecodeError::VarintNonCanonical));
        let mut one = [0x81u8, 0x80, 0x00].as_slice();
        assert_eq!(get_varint(&mut one), Err(DecodeError::VarintNonCanonical));
        // Nine continuation bytes, then a zero that adds nothing.
        let ten = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
        assert_eq!(
            get_varint(&mut ten.as_slice()),
            Err(DecodeError::VarintNonCanonical)
        );
        assert_eq!(
            peek_varint(&[0x80, 0x00]),
            Err(DecodeError::VarintNonCanonical)
        );
    }

    #[test]
    fn values_past_64_bits_overflow() {
        // Nine full groups use 63 bits; a final 0x02 would set bit 64.
        let two = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            get_varint(&mut two.as_slice()),
            Err(DecodeError::VarintOverflow)
        );
        let eleven = [0xff; 11];
        assert_eq!(
            get_varint(&mut eleven.as_slice()),
            Err(DecodeError::VarintOverflow)
        );
        assert_eq!(peek_varint(&eleven), Err(DecodeError::VarintOverflow));
    }

    #[test]
    fn short_input_is_unexpected_end() {
        assert_eq!(
            get_varint(&mut [0u8; 0].as_slice()),
            Err(DecodeError::UnexpectedEnd {
                needed: 1,
                remaining: 0
            })
        );
        assert_eq!(
            get_varint(&mut [0x80u8, 0x80].as_slice()),
            Err(DecodeError::UnexpectedEnd {
                needed: 3,
                remaining: 2
            })
        );
        assert_eq!(peek_varint(&[]), Ok(None));
        assert_eq!(peek_varint(&[0xff; 9]), Ok(None));
    }

    #[test]
    fn narrow_readers_reject_wide_values() {
        let u32_max = encode(u64::from(u32::MAX));
        assert_eq!(get_varint_u32(&mut u32_max.as_slice()), Ok(u32::MAX));
        let above = encode(u64::from(u32::MAX) + 1);
        assert_eq!(
            get_varint_u32(&mut above.as_slice()),
            Err(DecodeError::VarintOverflow)
        );
        // Five continuation bytes are already too long for a u32.
        assert_eq!(
            get_varint_u32(&mut [0x80u8, 0x80, 0x80, 0x80, 0x80, 0x00].as_slice()),
            Err(DecodeError::VarintOverflow)
        );
        assert_eq!(peek_varint_u32(&[0x80; 4]), Ok(None));
        assert_eq!(
            peek_varint_u32(&[0x80; 5]),
            Err(DecodeError::VarintOverflow)
        );
        assert_eq!(peek_varint_u32(&u32_max), Ok(Some((u32::MAX, 5))));

        let u16_max = encode(u64::from(u16::MAX));
        assert_eq!(get_varint_u16(&mut u16_max.as_slice()), Ok(u16::MAX));
        let above = encode(u64::from(u16::MAX) + 1);
        assert_eq!(
            get_varint_u16(&mut above.as_slice()),
            Err(DecodeError::VarintOverflow)
        );
        assert_eq!(get_varint_u16(&mut [0x05u8].as_slice()), Ok(5));
    }

    #[test]
    fn every_two_byte_input_decodes_to_its_only_encoding() {
        // Exhaustive over all 65536 two-byte inputs: whatever decodes re-encodes to the same
        // bytes, which is what canonical means.
        for a in 0..=u8::MAX {
            for b in 0..=u8::MAX {
                let input = [a, b];
                let mut slice = input.as_slice();
                if let Ok(v) = get_varint(&mut slice) {
                    let used = input.len() - slice.len();
                    assert_eq!(input.get(..used), Some(encode(v).as_slice()));
                }
            }
        }
    }
}
