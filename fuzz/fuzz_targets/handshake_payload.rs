//! Decodes arbitrary bytes as a handshake payload.
//!
//! Checks: no panics; a decoded payload re-encodes to `encoded_len` bytes that decode to the same
//! value; those bytes are exactly the input's known fields (varints are canonical, the optional
//! listen port included), except that reserved flag bits are dropped and any trailing extension bytes are not reproduced;
//! `peek_version` agrees with `decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_core::session::payload::{HandshakePayload, MAX_PROTOCOLS};

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = HandshakePayload::decode(data) else {
        return;
    };
    assert!(payload.capabilities.protocols.len() <= MAX_PROTOCOLS);
    assert_eq!(HandshakePayload::peek_version(data), Some(payload.version));

    let mut encoded = Vec::new();
    payload.encode(&mut encoded);
    assert_eq!(encoded.len(), payload.encoded_len());
    assert_eq!(HandshakePayload::decode(&encoded).as_ref(), Ok(&payload));

    // The known fields were read from the front of the input; only the flags byte may differ,
    // in its reserved bits. The listen port, if flagged, follows it.
    let port_len = if payload.capabilities.listen_port.is_some() { 2 } else { 0 };
    let flags_at = encoded.len() - 1 - port_len;
    assert_eq!(&data[..flags_at], &encoded[..flags_at]);
    assert_eq!(data[flags_at] & 0x03, encoded[flags_at]);
    assert_eq!(&data[flags_at + 1..encoded.len()], &encoded[flags_at + 1..]);
});
