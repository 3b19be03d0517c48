//! A responder session fed arbitrary bytes, in arbitrary reads: it must never panic, must close
//! at most once, and must accept nothing after closing.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use starling_core::session::{NodeKeys, Session, SessionConfig, SessionEvent};
use starling_core::time::{Duration, Instant};

fuzz_target!(|input: (Vec<u16>, Vec<u8>)| {
    let (cuts, bytes) = input;
    let config = Arc::new(SessionConfig::new("fuzz"));
    let mut s = Session::responder(
        config,
        Arc::new(NodeKeys::from_test_seed(2)),
        [9; 32],
        Instant::ZERO,
    );
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
            if matches!(e, SessionEvent::Closed(_)) {
                closes += 1;
            }
        }
        let _ = s.poll_transmit();
        assert!(closes <= 1);
        if s.is_closed() {
            s.handle_bytes(now, &bytes);
            assert!(s.poll_event().is_none(), "input accepted after close");
        }
    }
});
