//! The record framing shared by every segment: `[len u32][crc32c u32][type u8][payload]`.
//!
//! `len` counts the type byte and the payload; the CRC32C covers the same bytes. Integers are
//! little-endian. See the crate docs for the table of record types.

use std::io::{self, Read};

use bytes::Bytes;

/// Bytes before the type byte: `len` and `crc`.
pub(crate) const FRAME_HEADER: u64 = 8;
/// Largest `len` accepted (type byte + payload), checked before allocating.
pub(crate) const MAX_RECORD_BYTES: u32 = 64 << 20;
/// Payload bytes of an entry record before its data: index and term.
pub(crate) const ENTRY_OVERHEAD: u64 = 16;
/// The magic at the start of every segment header.
pub(crate) const MAGIC: [u8; 8] = *b"STRLWAL\0";
/// The segment format version written by this crate.
pub(crate) const VERSION: u32 = 1;

pub(crate) const TYPE_HEADER: u8 = 1;
pub(crate) const TYPE_ENTRY: u8 = 2;
pub(crate) const TYPE_TRUNCATE: u8 = 3;
pub(crate) const TYPE_HARD_STATE: u8 = 4;
pub(crate) const TYPE_COMPACT: u8 = 5;
/// Payload bytes of a segment header: magic, version, seq, first index.
const HEADER_PAYLOAD: usize = 8 + 4 + 8 + 8;

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// First record of every segment.
    SegmentHeader {
        /// The segment's sequence number (also in its file name).
        seq: u64,
        /// The index the log expected next when the segment was created.
        first_index: u64,
    },
    /// A log entry.
    Entry { index: u64, term: u64, data: Bytes },
    /// Every entry with index >= `from` is removed.
    Truncate { from: u64 },
    /// The latest hard state (opaque bytes); the last one wins.
    HardState(Bytes),
    /// A snapshot covering entries <= `index` was saved; they are gone from the log.
    Compact { index: u64, term: u64 },
}

/// Starts a record of type `ty` at the end of `buf`; returns where it starts.
fn begin(buf: &mut Vec<u8>, ty: u8) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEADER as usize]);
    buf.push(ty);
    start
}

/// Fills in `len` and `crc` of the record started at `start`.
fn finish(buf: &mut [u8], start: usize) {
    let body = &buf[start + FRAME_HEADER as usize..];
    let len = u32::try_from(body.len()).expect("record length checked by the caller");
    let crc = crc32c::crc32c(body);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends an encoded segment header.
pub(crate) fn encode_header(buf: &mut Vec<u8>, seq: u64, first_index: u64) {
    let start = begin(buf, TYPE_HEADER);
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&VERSION.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&first_index.to_le_bytes());
    finish(buf, start);
}

/// Appends an encoded entry. The caller checks `data` against [`MAX_RECORD_BYTES`].
pub(crate) fn encode_entry(buf: &mut Vec<u8>, index: u64, term: u64, data: &[u8]) {
    let start = begin(buf, TYPE_ENTRY);
    buf.extend_from_slice(&index.to_le_bytes());
    buf.extend_from_slice(&term.to_le_bytes());
    buf.extend_from_slice(data);
    finish(buf, start);
}

/// Appends an encoded truncation record.
pub(crate) fn encode_truncate(buf: &mut Vec<u8>, from: u64) {
    let start = begin(buf, TYPE_TRUNCATE);
    buf.extend_from_slice(&from.to_le_bytes());
    finish(buf, start);
}

/// Appends an encoded hard state. The caller checks `state` against [`MAX_RECORD_BYTES`].
pub(crate) fn encode_hard_state(buf: &mut Vec<u8>, state: &[u8]) {
    let start = begin(buf, TYPE_HARD_STATE);
    buf.extend_from_slice(state);
    finish(buf, start);
}

/// Appends an encoded compaction record.
pub(crate) fn encode_compact(buf: &mut Vec<u8>, index: u64, term: u64) {
    let start = begin(buf, TYPE_COMPACT);
    buf.extend_from_slice(&index.to_le_bytes());
    buf.extend_from_slice(&term.to_le_bytes());
    finish(buf, start);
}

/// The largest data (entry payload or hard state) a record can carry.
pub(crate) fn max_data_len(overhead: u64) -> u64 {
    u64::from(MAX_RECORD_BYTES) - 1 - overhead
}

/// What reading the next frame found.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A frame whose checksum matches: its type byte and payload, and its total size on disk.
    Valid { ty: u8, payload: Bytes, size: u64 },
    /// The file ends exactly here.
    End,
    /// The bytes here are not a valid frame (short, bad length, bad checksum).
    Invalid(&'static str),
}

/// Reads the next frame from `r`, which has `remaining` bytes left. Never allocates more than
/// [`MAX_RECORD_BYTES`] or `remaining`, whichever is smaller.
pub(crate) fn read_frame(r: &mut impl Read, remaining: u64) -> io::Result<Frame> {
    if remaining == 0 {
        return Ok(Frame::End);
    }
    if remaining < FRAME_HEADER + 1 {
        return Ok(Frame::Invalid("truncated frame header"));
    }
    let mut len = [0u8; 4];
    let mut crc = [0u8; 4];
    r.read_exact(&mut len)?;
    r.read_exact(&mut crc)?;
    let (len, crc) = (u32::from_le_bytes(len), u32::from_le_bytes(crc));
    if len == 0 {
        return Ok(Frame::Invalid("zero length"));
    }
    if len > MAX_RECORD_BYTES {
        return Ok(Frame::Invalid("length over the record limit"));
    }
    if u64::from(len) > remaining - FRAME_HEADER {
        return Ok(Frame::Invalid("length past the end of the file"));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body)?;
    if crc32c::crc32c(&body) != crc {
        return Ok(Frame::Invalid("checksum mismatch"));
    }
    let body = Bytes::from(body);
    // `len >= 1` was checked above, so the type byte exists; `get` keeps this panic-free anyway.
    let Some(&ty) = body.first() else {
        return Ok(Frame::Invalid("zero length"));
    };
    Ok(Frame::Valid {
        ty,
        payload: body.slice(1..),
        size: FRAME_HEADER + u64::from(len),
    })
}

/// The little-endian `u64` at `at`, or `None` when `p` is too short.
pub(crate) fn u64_at(p: &[u8], at: usize) -> Option<u64> {
    let bytes = p.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// The little-endian `u32` at `at`, or `None` when `p` is too short.
pub(crate) fn u32_at(p: &[u8], at: usize) -> Option<u32> {
    let bytes = p.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

impl Record {
    /// Decodes a checksummed frame. An error here is not a torn write (the checksum matched): it
    /// is an unknown type or a malformed payload.
    pub(crate) fn decode(ty: u8, payload: Bytes) -> Result<Record, &'static str> {
        let p = &payload[..];
        match ty {
            TYPE_HEADER => {
                if p.len() != HEADER_PAYLOAD {
                    return Err("bad segment header length");
                }
                if p.get(0..8) != Some(&MAGIC[..]) {
                    return Err("bad segment magic");
                }
                if u32_at(p, 8) != Some(VERSION) {
                    return Err("unsupported segment version");
                }
                match (u64_at(p, 12), u64_at(p, 20)) {
                    (Some(seq), Some(first_index)) => {
                        Ok(Record::SegmentHeader { seq, first_index })
                    }
                    _ => Err("bad segment header length"),
                }
            }
            TYPE_ENTRY => match (u64_at(p, 0), u64_at(p, 8)) {
                (Some(index), Some(term)) => Ok(Record::Entry {
                    index,
                    term,
                    data: payload.slice(ENTRY_OVERHEAD as usize..),
                }),
                _ => Err("entry record too short"),
            },
            TYPE_TRUNCATE => match u64_at(p, 0) {
                Some(from) if p.len() == 8 => Ok(Record::Truncate { from }),
                _ => Err("bad truncate record length"),
            },
            TYPE_HARD_STATE => Ok(Record::HardState(payload)),
            TYPE_COMPACT => match (u64_at(p, 0), u64_at(p, 8)) {
                (Some(index), Some(term)) if p.len() == 16 => Ok(Record::Compact { index, term }),
                _ => Err("bad compact record length"),
            },
            _ => Err("unknown record type"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(mut buf: &[u8]) -> Vec<Record> {
        let mut out = Vec::new();
        loop {
            let remaining = buf.len() as u64;
            match read_frame(&mut buf, remaining).unwrap() {
                Frame::Valid { ty, payload, .. } => out.push(Record::decode(ty, payload).unwrap()),
                Frame::End => return out,
                Frame::Invalid(why) => panic!("invalid frame: {why}"),
            }
        }
    }

    #[test]
    fn round_trip_every_type() {
        let mut buf = Vec::new();
        encode_header(&mut buf, 7, 100);
        encode_entry(&mut buf, 100, 3, b"hello");
        encode_entry(&mut buf, 101, 3, b"");
        encode_truncate(&mut buf, 101);
        encode_hard_state(&mut buf, b"term=3");
        encode_compact(&mut buf, 90, 2);
        assert_eq!(
            decode_all(&buf),
            vec![
                Record::SegmentHeader {
                    seq: 7,
                    first_index: 100
                },
                Record::Entry {
                    index: 100,
                    term: 3,
                    data: Bytes::from_static(b"hello")
                },
                Record::Entry {
                    index: 101,
                    term: 3,
                    data: Bytes::new()
                },
                Record::Truncate { from: 101 },
                Record::HardState(Bytes::from_static(b"term=3")),
                Record::Compact { index: 90, term: 2 },
            ]
        );
    }

    #[test]
    fn every_prefix_and_every_bit_flip_is_invalid() {
        let mut buf = Vec::new();
        encode_entry(&mut buf, 5, 1, b"some entry data");
        for cut in 1..buf.len() {
            let mut r = &buf[..cut];
            assert!(matches!(
                read_frame(&mut r, cut as u64).unwrap(),
                Frame::Invalid(_)
            ));
        }
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[byte] ^= 1 << bit;
                let mut r = &bad[..];
                assert!(
                    matches!(
                        read_frame(&mut r, bad.len() as u64).unwrap(),
                        Frame::Invalid(_)
                    ),
                    "flip at {byte}.{bit} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn huge_length_is_refused_before_allocating() {
        let mut head = Vec::new();
        head.extend_from_slice(&u32::MAX.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        head.push(TYPE_ENTRY);
        let mut r = &head[..];
        // Claims a huge file: the record cap must still refuse it.
        assert!(matches!(
            read_frame(&mut r, u64::MAX).unwrap(),
            Frame::Invalid("length over the record limit")
        ));
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert!(Record::decode(TYPE_ENTRY, Bytes::from_static(&[0; 15])).is_err());
        assert!(Record::decode(TYPE_TRUNCATE, Bytes::from_static(&[0; 9])).is_err());
        assert!(Record::decode(TYPE_HEADER, Bytes::from_static(&[0; 28])).is_err());
        assert!(Record::decode(99, Bytes::new()).is_err());
    }
}
