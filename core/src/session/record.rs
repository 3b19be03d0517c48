//! The record layer: what travels inside each Noise transport message.
//!
//! ```text
//! record = kind:u8 body
//! kind & 0x7f = 0  FRAME_PART  body = the next bytes of a frame; more records follow
//!             = 1  FRAME_END   body = the last bytes of a frame (often the whole frame)
//!             = 2  CLOSE       body = code:u8 detail:bytes (varint length, at most 256)
//!             = 3  BATCH       body = one or more whole frames back to back (each carries its
//!                               own length), so small frames share one AEAD operation
//! kind & 0x80      COMPRESSED  on FRAME_END: the reassembled bytes are an LZ4 block
//!                               (`compress` module format), not the frame itself
//! ```
//!
//! A frame's bytes are its [wire encoding](crate::wire) (length, protocol, type, body). One Noise
//! message carries at most 65,535 bytes including its 16-byte tag, so larger frames are split
//! across FRAME_PART records and reassembled, within the receiver's frame limit.

use bytes::{Buf, Bytes, BytesMut};

use super::error::CloseCode;
use super::noise::{MAX_NOISE_MESSAGE, TAG_LEN};
use crate::wire::codec::{get_u8, put_bytes};
use crate::wire::varint::get_varint;
use crate::wire::DecodeError;

/// Largest record plaintext that fits one Noise message.
pub(crate) const MAX_RECORD: usize = MAX_NOISE_MESSAGE - TAG_LEN;
/// Largest chunk of frame bytes per record.
pub(crate) const MAX_CHUNK: usize = MAX_RECORD - 1;
/// Longest close explanation sent or accepted.
pub(crate) const MAX_CLOSE_DETAIL: usize = 256;

const FRAME_PART: u8 = 0;
const FRAME_END: u8 = 1;
const CLOSE: u8 = 2;
/// Header byte of a batch record.
pub(crate) const BATCH: u8 = 3;
const COMPRESSED: u8 = 0x80;

/// A parsed record, borrowing from the decrypted message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    /// Part of a frame; `last` on the final part.
    Frame {
        data: &'a [u8],
        last: bool,
        compressed: bool,
    },
    /// Whole frames back to back.
    Batch { data: &'a [u8] },
    /// The peer is closing.
    Close { code: CloseCode, detail: String },
}

/// The header byte of a frame record.
pub(crate) fn frame_header(last: bool, compressed: bool) -> u8 {
    let kind = if last { FRAME_END } else { FRAME_PART };
    if compressed {
        kind | COMPRESSED
    } else {
        kind
    }
}

/// Writes a close record's plaintext.
pub(crate) fn close_record(code: CloseCode, detail: &str, out: &mut Vec<u8>) {
    out.clear();
    out.push(CLOSE);
    out.push(code.to_byte());
    // Cut at a character boundary so the peer receives valid UTF-8.
    let mut end = detail.len().min(MAX_CLOSE_DETAIL);
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    put_bytes(out, &detail.as_bytes()[..end]);
}

/// Parses a decrypted record.
pub(crate) fn parse(plaintext: &[u8]) -> Result<Record<'_>, DecodeError> {
    let mut buf = plaintext;
    let header = get_u8(&mut buf)?;
    match header & !COMPRESSED {
        FRAME_PART | FRAME_END => Ok(Record::Frame {
            data: buf,
            last: header & !COMPRESSED == FRAME_END,
            compressed: header & COMPRESSED != 0,
        }),
        BATCH if header == BATCH => Ok(Record::Batch { data: buf }),
        CLOSE if header == CLOSE => {
            let code = CloseCode::from_byte(get_u8(&mut buf)?);
            let len = get_varint(&mut buf)?;
            if len > MAX_CLOSE_DETAIL as u64 {
                return Err(DecodeError::BytesTooLong {
                    len,
                    max: MAX_CLOSE_DETAIL as u32,
                });
            }
            // len <= 256, so the cast is lossless.
            let len = len as usize;
            if buf.remaining() != len {
                return Err(DecodeError::InvalidValue {
                    field: "close detail length",
                });
            }
            Ok(Record::Close {
                code,
                detail: String::from_utf8_lossy(buf).into_owned(),
            })
        }
        _ => Err(DecodeError::InvalidValue {
            field: "record kind",
        }),
    }
}

/// Reassembles a frame from its records, refusing to grow past `max` bytes.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    buf: BytesMut,
}

/// The reassembled bytes would exceed the limit; carries the size they reached.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge(pub(crate) usize);

impl Reassembly {
    /// Whether no frame is half assembled.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Adds a record's data; returns the whole message once the last part arrives.
    pub(crate) fn push(
        &mut self,
        data: &[u8],
        last: bool,
        max: usize,
    ) -> Result<Option<Bytes>, TooLarge> {
        let total = self.buf.len() + data.len();
        if total > max {
            self.buf = BytesMut::new();
            return Err(TooLarge(total));
        }
        if last && self.buf.is_empty() {
            // The common case, a frame in one record: one copy out of the decrypt buffer.
            return Ok(Some(Bytes::copy_from_slice(data)));
        }
        self.buf.extend_from_slice(data);
        Ok(last.then(|| self.buf.split().freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_records_parse_with_their_flags() {
        let rec = [frame_header(true, true), 9, 8];
        assert_eq!(
            parse(&rec),
            Ok(Record::Frame {
                data: &[9, 8],
                last: true,
                compressed: true
            })
        );
        let rec = [frame_header(false, false)];
        assert_eq!(
            parse(&rec),
            Ok(Record::Frame {
                data: &[],
                last: false,
                compressed: false
            })
        );
    }

    #[test]
    fn close_records_round_trip_and_truncate_long_details() {
        let mut out = Vec::new();
        close_record(CloseCode::VersionMismatch, "we speak 1", &mut out);
        assert_eq!(
            parse(&out),
            Ok(Record::Close {
                code: CloseCode::VersionMismatch,
                detail: "we speak 1".into()
            })
        );
        let long = "é".repeat(300); // 600 bytes, two per character
        close_record(CloseCode::Normal, &long, &mut out);
        match parse(&out) {
            Ok(Record::Close { detail, .. }) => assert_eq!(detail.len(), 256),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_records_are_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[7]).is_err());
        assert!(parse(&[BATCH | COMPRESSED, 1]).is_err());
        assert_eq!(parse(&[BATCH, 1, 2]), Ok(Record::Batch { data: &[1, 2] }));
        assert!(parse(&[CLOSE]).is_err());
        assert!(parse(&[CLOSE | COMPRESSED, 0, 0]).is_err());
        assert!(
            parse(&[CLOSE, 0, 3, b'a']).is_err(),
            "detail shorter than declared"
        );
        assert!(
            parse(&[CLOSE, 0, 0x81, 0x02]).is_err(),
            "detail longer than allowed"
        );
    }

    #[test]
    fn reassembly_joins_parts_and_enforces_the_limit() {
        let mut r = Reassembly::default();
        assert_eq!(r.push(b"ab", false, 5), Ok(None));
        assert_eq!(
            r.push(b"cd", true, 5),
            Ok(Some(Bytes::from_static(b"abcd")))
        );
        assert_eq!(r.push(b"xyz", false, 5), Ok(None));
        assert_eq!(r.push(b"xyz", true, 5), Err(TooLarge(6)));
        assert_eq!(r.push(b"ok", true, 5), Ok(Some(Bytes::from_static(b"ok"))));
    }
}
