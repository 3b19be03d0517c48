//! Per-frame LZ4 decompression on arbitrary bytes, and the compress/decompress round trip.
//!
//! The first byte chooses the mode:
//! - even: the rest is decompressed with a small limit (`first_byte * 16`, at most 4080 bytes);
//!   checks: no panics, and the output never exceeds the limit;
//! - odd: the rest is compressed with `compress_into`; checks: it decompresses to exactly the
//!   rest under a limit of its own length, and is refused under a limit one byte smaller.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use starling_core::session::{compress_into, decompress, CompressError};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let max_len = usize::from(mode) * 16;
        if let Ok(out) = decompress(rest, max_len) {
            assert!(out.len() <= max_len, "{} > {max_len}", out.len());
        }
    } else {
        let mut compressed = BytesMut::new();
        compress_into(rest, &mut compressed);
        let back = decompress(&compressed, rest.len());
        assert_eq!(back.as_deref(), Ok(rest));
        if let Some(smaller) = rest.len().checked_sub(1) {
            assert!(matches!(
                decompress(&compressed, smaller),
                Err(CompressError::TooLarge { .. })
            ));
        }
    }
});
