//! Drives a failure detector with an arbitrary sequence of inputs and checks what it promises:
//! no panic, bounded output, events consistent with `status()`.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use starling_core::detector::{
    DetectorConfig, DetectorEvent, FailureDetector, HeartbeatMessage, PeerStatus,
};
use starling_core::machine::{Machine, Output};
use starling_core::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
enum Input {
    Message { from: u8, msg: HeartbeatMessage },
    Heard(u8),
    Timeout,
    Advance(u32),
    Monitor(u8),
    Unmonitor(u8),
}

#[derive(Arbitrary, Debug)]
struct Run {
    seed: u64,
    max_peers: u8,
    inputs: Vec<Input>,
}

fuzz_target!(|run: Run| {
    let config = DetectorConfig {
        max_peers: usize::from(run.max_peers.max(1)),
        ..DetectorConfig::default()
    };
    let mut d = FailureDetector::<u8>::new(config, run.seed, Instant::ZERO);
    let mut now = Instant::ZERO;
    // Status as last reported by events, per monitored peer.
    let mut seen: BTreeMap<u8, PeerStatus> = BTreeMap::new();
    for input in run.inputs {
        match input {
            Input::Message { from, msg } => d.handle_message(now, from, msg),
            Input::Heard(p) => d.heard_from(now, p),
            Input::Timeout => {
                now = now.max(d.poll_timeout().unwrap_or(now));
                d.handle_timeout(now);
            }
            Input::Advance(ns) => now += Duration::from_nanos(u64::from(ns) << 8),
            Input::Monitor(p) => {
                if d.monitor(now, p).is_ok() {
                    seen.entry(p).or_insert(PeerStatus::Alive);
                }
            }
            Input::Unmonitor(p) => {
                d.unmonitor(p);
                seen.remove(&p);
            }
        }
        assert!(d.len() <= config.max_peers);
        let mut drained = 0;
        while let Some(out) = d.poll_output() {
            drained += 1;
            if let Output::Event(e) = out {
                let (peer, next, from_ok): (u8, PeerStatus, &[PeerStatus]) = match e {
                    DetectorEvent::Suspect(p) => (p, PeerStatus::Suspect, &[PeerStatus::Alive]),
                    DetectorEvent::Dead(p) => (p, PeerStatus::Dead, &[PeerStatus::Suspect]),
                    DetectorEvent::Alive(p) => (
                        p,
                        PeerStatus::Alive,
                        &[PeerStatus::Suspect, PeerStatus::Dead],
                    ),
                };
                let prev = seen.insert(peer, next);
                assert!(
                    prev.is_some_and(|s| from_ok.contains(&s)),
                    "{e:?} after {prev:?}"
                );
            }
        }
        for (peer, status) in &seen {
            assert_eq!(d.status(*peer), Some(*status));
        }
        // One input yields at most a round (a ping and two events per peer) or a pong and an event.
        assert!(
            drained <= (3 * config.max_peers).max(2),
            "{drained} outputs from one input"
        );
    }
});
