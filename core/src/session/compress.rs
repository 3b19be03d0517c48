//! Per-frame LZ4 compression, for sessions where both sides announced it in their
//! [`Capabilities`](super::payload::Capabilities).
//!
//! Each frame body is compressed on its own (the LZ4 *block* format, via `lz4_flex`), with no
//! dictionary or state carried between frames, so frames can be dropped, reordered or decoded on
//! another thread. Layout:
//!
//! ```text
//! compressed = declared_len:varint(u64) lz4_block
//! ```
//!
//! `declared_len` is the exact length of the decompressed data. The receiver checks it before
//! allocating anything:
//!
//! 1. against the caller's `max_len` (normally the session's frame limit), and
//! 2. against what the block could possibly produce: an LZ4 block expands at most
//!    [`MAX_EXPANSION`] times, so a 10-byte block claiming a megabyte is refused without the
//!    megabyte ever being allocated. A hostile peer can thus make us allocate at most
//!    `min(max_len, 255 × its own bytes)`.
//!
//! The block must then decompress to exactly `declared_len` bytes: not fewer, not more.
//!
//! Compression departs from nothing in LZ4 itself; the length prefix is a varint rather than
//! `lz4_flex`'s fixed 4-byte prefix, like every other length on Starling's wire.

use core::fmt;

use bytes::{Bytes, BytesMut};

use crate::wire::varint::{get_varint, put_varint};
use crate::wire::DecodeError;

/// The most bytes one byte of an LZ4 block can decompress to.
///
/// A sequence of `k` bytes yields at most its literals (one output byte each) plus a match of
/// `4 + 15 + 255 × e` bytes, where `e` is the number of match-length extension bytes; since a
/// match also costs a token and a 2-byte offset, no sequence yields more than 255 bytes per input
/// byte. Used to refuse impossible declared lengths before allocating.
const MAX_EXPANSION: usize = 255;

/// Appends `varint(input.len())` then the LZ4 block of `input` to `out`.
///
/// The output can be longer than the input (by up to 10% plus a few bytes for incompressible
/// data, by lz4_flex's worst-case bound), so a caller compares lengths after compressing and sends
/// the raw body if compression did not pay.
pub fn compress_into(input: &[u8], out: &mut BytesMut) {
    put_varint(out, input.len() as u64);
    let start = out.len();
    out.resize(
        start + lz4_flex::block::get_maximum_output_size(input.len()),
        0,
    );
    let written = lz4_flex::block::compress_into(input, &mut out[start..])
        // Cannot fail: the only error is a too-small output, and the output was sized with
        // lz4_flex's own worst-case bound for this input length.
        .expect("output sized with get_maximum_output_size");
    out.truncate(start + written);
}

/// Decompresses what [`compress_into`] wrote, refusing anything that would decompress to more
/// than `max_len` bytes.
///
/// The declared length is checked against `max_len` and against 255 times the block length (the
/// most an LZ4 block can expand) *before* the output buffer is allocated; the block must then produce exactly the
/// declared length. Never panics, whatever `data`.
pub fn decompress(data: &[u8], max_len: usize) -> Result<Bytes, CompressError> {
    let mut block = data;
    let declared = get_varint(&mut block).map_err(CompressError::Header)?;
    let declared_len = match usize::try_from(declared) {
        Ok(len) if len <= max_len => len,
        // A length that does not even fit in a usize is certainly above any usize limit.
        _ => {
            return Err(CompressError::TooLarge {
                declared,
                max: max_len,
            })
        }
    };
    if declared_len > block.len().saturating_mul(MAX_EXPANSION) {
        return Err(CompressError::Unreachable {
            declared: declared_len,
            compressed: block.len(),
        });
    }
    let mut out = vec![0u8; declared_len];
    let actual = lz4_flex::block::decompress_into(block, &mut out).map_err(|e| match e {
        lz4_flex::block::DecompressError::OutputTooSmall { .. } => CompressError::Overrun {
            declared: declared_len,
        },
        _ => CompressError::Malformed,
    })?;
    if actual != declared_len {
        return Err(CompressError::LengthMismatch {
            declared: declared_len,
            actual,
        });
    }
    Ok(Bytes::from(out))
}

/// Why a compressed frame body was refused by [`decompress`].
///
/// Nothing is decompressed or kept on error. Every cause means the peer sent a body a correct
/// Starling node never sends: drop the frame, close the session and lower the peer's score.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompressError {
    /// The length prefix is missing, truncated or not a canonical varint.
    Header(DecodeError),
    /// The declared length is above the caller's limit. Detected before allocating.
    TooLarge {
        /// The declared decompressed length.
        declared: u64,
        /// The limit in force.
        max: usize,
    },
    /// The declared length is more than 255 times the block length, which no LZ4 block can
    /// decompress to. Detected before allocating.
    Unreachable {
        /// The declared decompressed length.
        declared: usize,
        /// The length of the LZ4 block.
        compressed: usize,
    },
    /// The LZ4 block is invalid (a literal or match offset out of bounds, or input that ends
    /// mid-sequence).
    Malformed,
    /// The block decompresses to more bytes than declared.
    Overrun {
        /// The declared decompressed length.
        declared: usize,
    },
    /// The block decompresses to fewer bytes than declared.
    LengthMismatch {
        /// The declared decompressed length.
        declared: usize,
        /// The length the block actually decompressed to.
        actual: usize,
    },
}

impl fmt::Display for CompressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompressError::Header(e) => write!(f, "bad compressed length prefix: {e}"),
            CompressError::TooLarge { declared, max } => write!(
                f,
                "declared decompressed length {declared} exceeds the limit of {max}"
            ),
            CompressError::Unreachable {
                declared,
                compressed,
            } => write!(
                f,
                "declared decompressed length {declared} is more than a {compressed}-byte LZ4 \
                 block can hold"
            ),
            CompressError::Malformed => f.write_str("malformed LZ4 block"),
            CompressError::Overrun { declared } => write!(
                f,
                "LZ4 block decompresses to more than the declared {declared} bytes"
            ),
            CompressError::LengthMismatch { declared, actual } => write!(
                f,
                "LZ4 block decompresses to {actual} bytes, {declared} declared"
            ),
        }
    }
}

impl std::error::Error for CompressError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CompressError::Header(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::varint::varint_len;

    fn compress(input: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        compress_into(input, &mut out);
        out
    }

    /// Deterministic bytes with no repeats for LZ4 to find.
    fn noise(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn round_trips_including_empty_and_incompressible_input() {
        let repetitive = b"starling ".repeat(500);
        for input in [
            Vec::new(),
            b"x".to_vec(),
            repetitive,
            noise(10_000),
            vec![0; 1 << 20],
        ] {
            let out = compress(&input);
            assert!(
                out.len()
                    <= varint_len(input.len() as u64)
                        + lz4_flex::block::get_maximum_output_size(input.len())
            );
            assert_eq!(
                decompress(&out, input.len()).as_deref(),
                Ok(input.as_slice())
            );
        }
    }

    #[test]
    fn compress_appends_after_existing_bytes() {
        let mut out = BytesMut::from(&b"head"[..]);
        compress_into(b"body body body body body", &mut out);
        assert_eq!(&out[..4], b"head");
        assert_eq!(
            decompress(&out[4..], 100).as_deref(),
            Ok(&b"body body body body body"[..])
        );
    }

    #[test]
    fn repetitive_input_shrinks() {
        let input = vec![7u8; 100_000];
        let out = compress(&input);
        assert!(out.len() < 1_000, "{} bytes", out.len());
    }

    #[test]
    fn the_expansion_bound_holds_for_the_most_compressible_input() {
        // A long run of one byte is LZ4's best case: it must stay within MAX_EXPANSION, or valid
        // frames would be refused as Unreachable.
        for len in [1usize << 16, 1 << 20, 4 << 20] {
            let out = compress(&vec![0u8; len]);
            let block_len = out.len() - varint_len(len as u64);
            assert!(len <= block_len * MAX_EXPANSION, "{len} from {block_len}");
        }
    }

    #[test]
    fn declared_length_above_the_limit_is_refused_before_allocating() {
        let out = compress(&[1u8; 101]);
        assert_eq!(
            decompress(&out, 100),
            Err(CompressError::TooLarge {
                declared: 101,
                max: 100
            })
        );
        // u64::MAX with no block behind it: refused on the prefix alone (an allocation of that
        // size would abort the test).
        let mut huge = BytesMut::new();
        put_varint(&mut huge, u64::MAX);
        assert_eq!(
            decompress(&huge, 1 << 20),
            Err(CompressError::TooLarge {
                declared: u64::MAX,
                max: 1 << 20
            })
        );
        // Even with no limit at all, an empty block cannot hold it.
        assert!(matches!(
            decompress(&huge, usize::MAX),
            Err(CompressError::TooLarge { .. } | CompressError::Unreachable { .. })
        ));
    }

    #[test]
    fn declared_length_beyond_what_the_block_can_hold_is_refused() {
        // Three block bytes can produce at most 765 bytes; claim a gigabyte under a huge limit.
        let mut data = BytesMut::new();
        put_varint(&mut data, 1 << 30);
        data.extend_from_slice(&[0x1f, 0x01, 0x00]);
        assert_eq!(
            decompress(&data, usize::MAX),
            Err(CompressError::Unreachable {
                declared: 1 << 30,
                compressed: 3
            })
        );
    }

    #[test]
    fn length_mismatches_are_refused() {
        let input = b"hello, hello, hello, hello".to_vec();
        let out = compress(&input);
        let block = &out[varint_len(input.len() as u64)..];

        let mut short = BytesMut::new();
        put_varint(&mut short, input.len() as u64 + 1);
        short.extend_from_slice(block);
        assert_eq!(
            decompress(&short, 1000),
            Err(CompressError::LengthMismatch {
                declared: input.len() + 1,
                actual: input.len()
            })
        );

        let mut long = BytesMut::new();
        put_varint(&mut long, input.len() as u64 - 1);
        long.extend_from_slice(block);
        assert_eq!(
            decompress(&long, 1000),
            Err(CompressError::Overrun {
                declared: input.len() - 1
            })
        );
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error_not_a_panic() {
        assert!(matches!(
            decompress(&[], 100),
            Err(CompressError::Header(DecodeError::UnexpectedEnd { .. }))
        ));
        assert!(matches!(
            decompress(&[0x80, 0x00], 100),
            Err(CompressError::Header(DecodeError::VarintNonCanonical))
        ));
        let input = b"a fairly long sentence, a fairly long sentence, with some repeats".repeat(4);
        let out = compress(&input);
        for cut in 0..out.len() {
            assert!(decompress(&out[..cut], input.len()).is_err(), "cut {cut}");
        }
        // Every single-byte corruption either fails or yields exactly the declared length.
        for i in 0..out.len() {
            let mut bad = out.to_vec();
            bad[i] ^= 0xa5;
            if let Ok(data) = decompress(&bad, 10_000) {
                assert!(data.len() <= 10_000);
            }
        }
        let garbage = noise(4096);
        for start in 0..64 {
            let _ = decompress(&garbage[start..], 1 << 16);
        }
    }

    #[test]
    fn errors_display_their_cause() {
        let e = CompressError::TooLarge {
            declared: 9,
            max: 4,
        };
        assert_eq!(
            e.to_string(),
            "declared decompressed length 9 exceeds the limit of 4"
        );
        let e = CompressError::Header(DecodeError::VarintOverflow);
        assert!(std::error::Error::source(&e).is_some());
    }
}
