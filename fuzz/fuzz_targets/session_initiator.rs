//! An initiator session fed arbitrary bytes after its first message: the responder's answer is
//! forged. It must never panic, never report an established session without a valid proof, and
//! close at most once.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use starling_core::session::{NodeKeys, Session, SessionConfig, SessionEvent};
use starling_core::time::{Duration, Instant};

fuzz_target!(|input: (Vec<u16>, Vec<u8>)| {
    let (cuts, bytes) = input;
    let config = Arc::new(SessionConfig::new("fuzz"));
    let mut s = Session::initiator(
        config,
        Arc::new(NodeKeys::from_test_seed(1)),
        None,
        [8; 32],
        Instant::ZERO,
    );
    let _ = s.poll_transmit();
    let mut rest = &bytes[..];
    let mut now = Instant::ZERO;
    let mut closes = 0;
    for cut in cuts.iter().copied().chain(std::iter::once(u16::MAX)) {
        let (chunk, tail) = rest.split_at(usize::from(cut).min(rest.len()));
        s.handle_bytes(now, chunk);
        now += Duration::from_millis(u64::from(cut % 4096));
        s.handle_timeout(now);
        rest = tail;
        while let Some(e) = s.poll_event() {
            match e {
                SessionEvent::Closed(_) => closes += 1,
                // Forging message 2 needs the responder's keys and a signature: out of reach.
                SessionEvent::Established { .. } => panic!("established against forged bytes"),
                _ => {}
            }
        }
        let _ = s.poll_transmit();
        assert!(closes <= 1);
    }
});
