//! An established session whose peer misbehaves: it sends arbitrary records through the real
//! encryption (malformed kinds, oversize or endless frame parts, bogus compression, closes),
//! arbitrary frames, or raw bytes, with time passing. The receiver must never panic, must never
//! deliver a frame above its limit, and must deliver every frame sent through `send` in order
//! while no malformed input has closed it.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use starling_core::session::{NodeKeys, Session, SessionConfig, SessionEvent};
use starling_core::time::{Duration, Instant};
use starling_core::wire::{Frame, ProtocolId};

#[derive(Arbitrary, Debug)]
enum Op {
    Record(Vec<u8>),
    Frame {
        protocol: u16,
        msg_type: u8,
        body: Vec<u8>,
    },
    Raw(Vec<u8>),
    Advance(u16),
}

fuzz_target!(|ops: Vec<Op>| {
    let mut config = SessionConfig::new("fuzz");
    config.limits.max_frame_len = 4096;
    config.limits.max_bytes_len = 4096;
    config.compress_threshold = 64;
    let config = Arc::new(config);
    let mut now = Instant::ZERO;
    let mut a = Session::initiator(
        config.clone(),
        Arc::new(NodeKeys::from_test_seed(1)),
        None,
        [1; 32],
        now,
    );
    let mut b = Session::responder(config, Arc::new(NodeKeys::from_test_seed(2)), [2; 32], now);
    for _ in 0..3 {
        if let Some(x) = a.poll_transmit() {
            b.handle_bytes(now, &x);
        }
        if let Some(x) = b.poll_transmit() {
            a.handle_bytes(now, &x);
        }
    }
    assert!(a.is_established() && b.is_established());
    // Frames sent properly since the last raw record (raw records may forge frames of their own).
    let mut sent = std::collections::VecDeque::new();
    let mut clean = true;
    for op in ops {
        match op {
            Op::Record(plain) => {
                a.send_raw_record(&plain);
                clean = false;
            }
            Op::Frame {
                protocol,
                msg_type,
                body,
            } => {
                // The heartbeat protocol is the session's own; keep fuzzed frames out of it.
                let frame = Frame::new(ProtocolId(protocol.max(2)), msg_type, body);
                if a.send(&frame).is_ok() {
                    sent.push_back(frame);
                }
            }
            Op::Raw(bytes) => {
                b.handle_bytes(now, &bytes);
                clean = false;
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms));
                a.handle_timeout(now);
                b.handle_timeout(now);
            }
        }
        if let Some(x) = a.poll_transmit() {
            b.handle_bytes(now, &x);
        }
        if let Some(x) = b.poll_transmit() {
            a.handle_bytes(now, &x);
        }
        while a.poll_event().is_some() {}
        while let Some(e) = b.poll_event() {
            if let SessionEvent::Frame(f) = e {
                assert!(f.encoded_len() <= 4096, "frame above the limit delivered");
                if clean {
                    assert_eq!(
                        sent.pop_front().as_ref(),
                        Some(&f),
                        "frames must arrive as sent"
                    );
                }
            }
        }
    }
});
