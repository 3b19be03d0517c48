//! Property tests for the failure detector: its codec and its behaviour under arbitrary inputs.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use starling_core::detector::{
    DetectorConfig, DetectorEvent, FailureDetector, HeartbeatMessage, PeerStatus,
};
use starling_core::machine::{Machine, Output};
use starling_core::time::{Duration, Instant};
use starling_core::wire::{decode_message, message_to_frame, Frame, Limits, ProtocolId};

fn message() -> impl Strategy<Value = HeartbeatMessage> {
    prop_oneof![
        any::<u64>().prop_map(|seq| HeartbeatMessage::Ping { seq }),
        any::<u64>().prop_map(|seq| HeartbeatMessage::Pong { seq }),
    ]
}

#[derive(Clone, Debug)]
enum Input {
    Message(u8, HeartbeatMessage),
    Heard(u8),
    Timeout,
    Advance(u32),
    Monitor(u8),
    Unmonitor(u8),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (0u8..6, message()).prop_map(|(p, m)| Input::Message(p, m)),
        (0u8..6).prop_map(Input::Heard),
        Just(Input::Timeout),
        (0u32..5_000).prop_map(Input::Advance),
        (0u8..6).prop_map(Input::Monitor),
        (0u8..6).prop_map(Input::Unmonitor),
    ]
}

proptest! {
    #[test]
    fn heartbeat_round_trips(msg in message()) {
        let frame = message_to_frame(&msg);
        prop_assert_eq!(decode_message::<HeartbeatMessage>(frame, &Limits::default()), Ok(msg));
    }

    #[test]
    fn heartbeat_decoding_arbitrary_bodies_never_panics(msg_type: u8, body in proptest::collection::vec(any::<u8>(), 0..24)) {
        let frame = Frame { protocol: ProtocolId::HEARTBEAT, msg_type, body: Bytes::from(body) };
        let _ = decode_message::<HeartbeatMessage>(frame, &Limits::default());
    }

    /// Under any sequence of inputs: no panic, a peer's reported status follows
    /// Alive → Suspect → (Dead) → Alive, reported events agree with `status()`, and every ping
    /// is answered while the output queue has room.
    #[test]
    fn detector_events_follow_the_status_lifecycle(inputs in proptest::collection::vec(input(), 0..200)) {
        let config = DetectorConfig { max_peers: 4, ..DetectorConfig::default() };
        let mut d = FailureDetector::<u8>::new(config, 1, Instant::ZERO);
        let mut now = Instant::ZERO;
        let mut seen: BTreeMap<u8, PeerStatus> = BTreeMap::new();
        for input in inputs {
            let mut pings_in = 0;
            match input {
                Input::Message(p, m) => {
                    pings_in += u32::from(matches!(m, HeartbeatMessage::Ping { .. }));
                    d.handle_message(now, p, m);
                }
                Input::Heard(p) => d.heard_from(now, p),
                Input::Timeout => {
                    now = d.poll_timeout().unwrap_or(now).max(now);
                    d.handle_timeout(now);
                }
                Input::Advance(ms) => now += Duration::from_millis(u64::from(ms)),
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
            let mut pongs_out = 0;
            while let Some(out) = d.poll_output() {
                match out {
                    Output::Send { msg: HeartbeatMessage::Pong { .. }, .. } => pongs_out += 1,
                    Output::Send { .. } => {}
                    Output::Event(e) => {
                        let (peer, next, allowed) = match e {
                            DetectorEvent::Suspect(p) => (p, PeerStatus::Suspect, vec![PeerStatus::Alive]),
                            DetectorEvent::Dead(p) => (p, PeerStatus::Dead, vec![PeerStatus::Suspect]),
                            DetectorEvent::Alive(p) => (p, PeerStatus::Alive, vec![PeerStatus::Suspect, PeerStatus::Dead]),
                        };
                        let prev = seen.get(&peer).copied();
                        prop_assert!(prev.is_some_and(|s| allowed.contains(&s)), "{:?} after {:?}", e, prev);
                        seen.insert(peer, next);
                    }
                }
            }
            prop_assert_eq!(pongs_out, pings_in);
            for (p, s) in &seen {
                prop_assert_eq!(d.status(*p), Some(*s));
            }
            prop_assert!(d.poll_timeout().is_some(), "a detector always has its next round");
        }
    }
}
