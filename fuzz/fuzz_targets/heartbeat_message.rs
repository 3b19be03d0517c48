//! Decodes arbitrary bytes as heartbeat frames; whatever decodes must re-encode to the same frame.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use starling_core::detector::HeartbeatMessage;
use starling_core::wire::{decode_message, message_to_frame, Frame, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut buf = Bytes::copy_from_slice(data);
    while let Ok(frame) = Frame::decode(&mut buf, &limits) {
        let original = frame.clone();
        if let Ok(msg) = decode_message::<HeartbeatMessage>(frame, &limits) {
            // Varints are canonical, so a decoded message has exactly one encoding.
            assert_eq!(message_to_frame(&msg), original);
        }
    }
});
