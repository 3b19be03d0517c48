//! Arbitrary bytes through the varint readers.
//!
//! Checks: no panics; a decoded value re-encodes to exactly the bytes consumed (one encoding per
//! value); the slice peeker and the narrow readers agree with `get_varint`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_core::wire::varint::{
    get_varint, get_varint_u16, get_varint_u32, peek_varint, put_varint, varint_len,
};
use starling_core::wire::DecodeError;

fuzz_target!(|data: &[u8]| {
    let mut slice = data;
    let result = get_varint(&mut slice);
    let peeked = peek_varint(data);
    match result {
        Ok(v) => {
            let used = data.len() - slice.len();
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(
                out.as_slice(),
                &data[..used],
                "non-canonical encoding accepted"
            );
            assert_eq!(varint_len(v), used);
            assert_eq!(peeked, Ok(Some((v, used))));

            // A canonical encoding of a value that fits is short enough for the narrow readers.
            let narrow32 = get_varint_u32(&mut &data[..]);
            assert_eq!(narrow32.is_ok(), u32::try_from(v).is_ok());
            if let Ok(n) = narrow32 {
                assert_eq!(u64::from(n), v);
            }
            let narrow16 = get_varint_u16(&mut &data[..]);
            assert_eq!(narrow16.is_ok(), u16::try_from(v).is_ok());
            if let Ok(n) = narrow16 {
                assert_eq!(u64::from(n), v);
            }
        }
        Err(DecodeError::UnexpectedEnd { .. }) => assert_eq!(peeked, Ok(None)),
        Err(err) => assert_eq!(peeked, Err(err)),
    }
});
