//! Two sessions connected in memory: the handshake, frames, and one test per failure mode.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::id::PeerId;
use crate::time::{Duration, Instant};
use crate::wire::{Frame, ProtocolId};

/// An initiator `a` and a responder `b` whose transmit buffers are delivered to each other.
struct Pair {
    a: Session,
    b: Session,
    now: Instant,
    a_events: Vec<SessionEvent>,
    b_events: Vec<SessionEvent>,
    /// While false, bytes are dropped instead of delivered (a dead link).
    connected: bool,
}

fn config(network: &str) -> Arc<SessionConfig> {
    Arc::new(SessionConfig::new(network))
}

fn keys(seed: u64) -> Arc<NodeKeys> {
    Arc::new(NodeKeys::from_test_seed(seed))
}

impl Pair {
    fn with(
        a_cfg: Arc<SessionConfig>,
        a_keys: Arc<NodeKeys>,
        expected: Option<PeerId>,
        b_cfg: Arc<SessionConfig>,
        b_keys: Arc<NodeKeys>,
    ) -> Self {
        let now = Instant::ZERO;
        Pair {
            a: Session::initiator(a_cfg, a_keys, expected, [1; 32], now),
            b: Session::responder(b_cfg, b_keys, [2; 32], now),
            now,
            a_events: Vec::new(),
            b_events: Vec::new(),
            connected: true,
        }
    }

    fn new() -> Self {
        Pair::with(config("test"), keys(1), None, config("test"), keys(2))
    }

    /// Moves bytes back and forth until both sides are quiet.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            if let Some(bytes) = self.a.poll_transmit() {
                moved = true;
                if self.connected {
                    self.b.handle_bytes(self.now, &bytes);
                }
            }
            if let Some(bytes) = self.b.poll_transmit() {
                moved = true;
                if self.connected {
                    self.a.handle_bytes(self.now, &bytes);
                }
            }
            self.a_events
                .extend(std::iter::from_fn(|| self.a.poll_event()));
            self.b_events
                .extend(std::iter::from_fn(|| self.b.poll_event()));
            if !moved {
                break;
            }
        }
    }

    /// Advances time to `until`, firing both sessions' timers on the way.
    fn advance(&mut self, until: Instant) {
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn frames_at_b(&self) -> Vec<Frame> {
        self.b_events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Frame(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }
}

fn closed(events: &[SessionEvent]) -> Option<&CloseCause> {
    events.iter().find_map(|e| match e {
        SessionEvent::Closed(c) => Some(c),
        _ => None,
    })
}

fn frame(len: usize) -> Frame {
    let body: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    Frame::new(ProtocolId::GOSSIP, 3, body)
}

#[test]
fn handshake_proves_both_identities() {
    let mut p = Pair::new();
    p.pump();
    assert!(p.a.is_established() && p.b.is_established());
    assert_eq!(p.a.peer(), Some(keys(2).identity().peer_id()));
    assert_eq!(p.b.peer(), Some(keys(1).identity().peer_id()));
    assert!(matches!(
        &p.a_events[..],
        [SessionEvent::Established {
            compression: true,
            ..
        }]
    ));
    assert!(matches!(
        &p.b_events[..],
        [SessionEvent::Established { .. }]
    ));
    // Three messages: 32 (e) + 2 prefixes... both sides count the same handshake bytes.
    assert_eq!(p.a.stats().handshake_bytes, p.b.stats().handshake_bytes);
    assert!(p.a.stats().handshake_bytes < 600, "{:?}", p.a.stats());
}

#[test]
fn dialer_naming_the_right_peer_connects() {
    let mut p = Pair::with(
        config("test"),
        keys(1),
        Some(keys(2).identity().peer_id()),
        config("test"),
        keys(2),
    );
    p.pump();
    assert!(p.a.is_established() && p.b.is_established());
}

#[test]
fn frames_flow_both_ways_including_large_and_compressed_ones() {
    let mut p = Pair::new();
    p.pump();
    let sent = [frame(0), frame(100), frame(200_000), frame(65_530)];
    for f in &sent {
        p.a.send(f).unwrap();
    }
    p.pump();
    assert_eq!(p.frames_at_b(), sent.to_vec());
    // The compressible 200 kB frame crossed in far fewer bytes.
    assert!(p.a.stats().bytes_sent < 150_000, "{:?}", p.a.stats());
    p.b.send(&frame(10)).unwrap();
    p.pump();
    assert!(p
        .a_events
        .iter()
        .any(|e| *e == SessionEvent::Frame(frame(10))));
}

#[test]
fn incompressible_frames_larger_than_a_noise_message_are_split_and_rejoined() {
    let mut p = Pair::new();
    p.pump();
    // Pseudo-random bytes do not compress, so this is sent as three or more records.
    let mut x = 1u64;
    let body: Vec<u8> = (0..150_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let f = Frame::new(ProtocolId::RAFT, 1, body);
    p.a.send(&f).unwrap();
    p.pump();
    assert_eq!(p.frames_at_b(), vec![f]);
    assert!(p.a.stats().bytes_sent > 150_000);
}

#[test]
fn send_before_established_and_after_close_is_refused() {
    let mut p = Pair::new();
    assert_eq!(p.a.send(&frame(1)), Err(SendError::NotEstablished));
    p.pump();
    p.a.close(CloseCode::Normal);
    assert_eq!(p.a.send(&frame(1)), Err(SendError::Closed));
    p.pump();
    assert_eq!(
        closed(&p.a_events),
        Some(&CloseCause::Local(CloseCode::Normal))
    );
    assert_eq!(
        closed(&p.b_events),
        Some(&CloseCause::Peer {
            code: CloseCode::Normal,
            detail: String::new()
        })
    );
    assert!(!closed(&p.b_events).unwrap().is_failure());
}

#[test]
fn foreign_network_is_refused_by_both_sides() {
    let mut p = Pair::with(config("main"), keys(1), None, config("other"), keys(2));
    p.pump();
    assert!(matches!(
        closed(&p.a_events),
        Some(CloseCause::WrongNetwork { .. })
    ));
    assert!(matches!(
        closed(&p.b_events),
        Some(CloseCause::WrongNetwork { .. })
    ));
    assert!(!p
        .a_events
        .iter()
        .any(|e| matches!(e, SessionEvent::Established { .. })));
}

#[test]
fn version_mismatch_names_both_versions() {
    let mut old = SessionConfig::new("test");
    old.version = PROTOCOL_VERSION - 1;
    let mut p = Pair::with(Arc::new(old), keys(1), None, config("test"), keys(2));
    p.pump();
    let ours = PROTOCOL_VERSION;
    assert_eq!(
        closed(&p.a_events),
        Some(&CloseCause::VersionMismatch {
            ours: ours - 1,
            theirs: ours
        })
    );
    assert_eq!(
        closed(&p.b_events),
        Some(&CloseCause::VersionMismatch {
            ours,
            theirs: ours - 1
        })
    );
}

#[test]
fn identity_mismatch_aborts_and_the_responder_reads_why() {
    let wanted = keys(3).identity().peer_id();
    let mut p = Pair::with(
        config("test"),
        keys(1),
        Some(wanted),
        config("test"),
        keys(2),
    );
    p.pump();
    let found = keys(2).identity().peer_id();
    assert_eq!(
        closed(&p.a_events),
        Some(&CloseCause::IdentityMismatch {
            expected: wanted,
            found
        })
    );
    // The responder had nothing against the dialer, so it learns the reason from the close record.
    match closed(&p.b_events) {
        Some(CloseCause::Peer {
            code: CloseCode::IdentityMismatch,
            detail,
        }) => assert!(detail.contains("dialled")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn forged_identity_signature_is_refused() {
    let forged = Arc::new(NodeKeys::from_test_seed(2).with_signature([7; 64]));
    let mut p = Pair::with(config("test"), keys(1), None, config("test"), forged);
    p.pump();
    assert_eq!(closed(&p.a_events), Some(&CloseCause::BadIdentity));
    assert!(closed(&p.b_events).is_some());
}

#[test]
fn flipped_byte_fails_authentication() {
    let mut p = Pair::new();
    p.pump();
    p.a.send(&frame(50)).unwrap();
    let mut bytes = p.a.poll_transmit().unwrap().to_vec();
    bytes[10] ^= 1;
    p.b.handle_bytes(p.now, &bytes);
    assert_eq!(
        p.b.poll_event(),
        Some(SessionEvent::Closed(CloseCause::BadMac))
    );
    // Closed for good: later valid-looking input is ignored.
    p.b.handle_bytes(p.now, &bytes);
    assert_eq!(p.b.poll_event(), None);
    assert!(p.b.poll_timeout().is_none());
}

#[test]
fn oversize_frame_from_a_lying_peer_closes_the_session() {
    let mut small = SessionConfig::new("test");
    small.limits.max_frame_len = 2_000;
    small.limits.max_bytes_len = 2_000;
    let mut p = Pair::with(config("test"), keys(1), None, Arc::new(small), keys(2));
    p.pump();
    // An honest sender respects the announced limit.
    assert!(matches!(
        p.a.send(&frame(5_000)),
        Err(SendError::FrameTooLarge { max: 2_000, .. })
    ));
    p.a.override_peer_max_frame(1 << 20);
    p.a.send(&frame(5_000)).unwrap();
    p.pump();
    assert!(matches!(
        closed(&p.b_events),
        Some(CloseCause::OversizeFrame { max: 2_000, .. })
    ));
    assert!(matches!(
        closed(&p.a_events),
        Some(CloseCause::Peer {
            code: CloseCode::ProtocolViolation,
            ..
        })
    ));
}

#[test]
fn rate_limit_drops_excess_frames_and_names_the_peer() {
    let mut limited = SessionConfig::new("test");
    limited.rate = RateLimits {
        frames_per_sec: 10,
        frame_burst: 5,
        bytes_per_sec: 1 << 20,
        byte_burst: 1 << 20,
    };
    let mut p = Pair::with(config("test"), keys(1), None, Arc::new(limited), keys(2));
    p.pump();
    for _ in 0..20 {
        p.a.send(&frame(10)).unwrap();
    }
    p.pump();
    assert_eq!(p.frames_at_b().len(), 5);
    let peer = keys(1).identity().peer_id();
    let reports: Vec<_> = p
        .b_events
        .iter()
        .filter(|e| matches!(e, SessionEvent::RateExceeded { .. }))
        .collect();
    assert_eq!(
        reports,
        vec![&SessionEvent::RateExceeded { peer, dropped: 1 }],
        "one report a second"
    );
    assert_eq!(p.b.stats().frames_dropped, 15);
    // A second later the bucket is full again (capped at the burst of 5), and the next report
    // carries the 14 drops not yet reported plus the new one.
    p.now += Duration::from_secs(1);
    for _ in 0..20 {
        p.a.send(&frame(10)).unwrap();
    }
    p.pump();
    assert_eq!(p.frames_at_b().len(), 10);
    assert!(p
        .b_events
        .contains(&SessionEvent::RateExceeded { peer, dropped: 15 }));
    assert!(
        p.b.is_established(),
        "rate limits drop frames, they do not close"
    );
}

#[test]
fn silent_dialer_times_out_the_handshake() {
    let mut p = Pair::new();
    p.connected = false;
    p.pump();
    p.advance(Instant::ZERO + Duration::from_secs(9));
    assert!(closed(&p.b_events).is_none());
    p.advance(Instant::ZERO + Duration::from_secs(10));
    assert_eq!(closed(&p.b_events), Some(&CloseCause::HandshakeTimeout));
    assert_eq!(closed(&p.a_events), Some(&CloseCause::HandshakeTimeout));
}

#[test]
fn keepalive_measures_rtt_then_closes_a_dead_link() {
    let mut p = Pair::new();
    p.pump();
    p.advance(Instant::ZERO + Duration::from_secs(7));
    assert!(
        p.a.rtt().is_some() && p.b.rtt().is_some(),
        "heartbeats were answered"
    );
    assert!(p.a.is_established());
    p.connected = false;
    p.advance(Instant::ZERO + Duration::from_secs(40));
    let peer_b = keys(2).identity().peer_id();
    assert!(p
        .a_events
        .contains(&SessionEvent::PeerSuspect { peer: peer_b }));
    assert_eq!(closed(&p.a_events), Some(&CloseCause::KeepaliveTimeout));
    assert!(p.a.is_closed() && p.b.is_closed());
    // Heartbeats are the session's business, never delivered as frames.
    assert!(p.frames_at_b().is_empty());
}

#[test]
fn garbage_to_a_responder_fails_cleanly() {
    let mut b = Session::responder(config("test"), keys(2), [0; 32], Instant::ZERO);
    b.handle_bytes(Instant::ZERO, &[0, 5, 1, 2, 3, 4, 5]);
    assert!(matches!(
        b.poll_event(),
        Some(SessionEvent::Closed(CloseCause::Handshake(_)))
    ));
    assert!(b.is_closed());
    let mut b = Session::responder(config("test"), keys(2), [0; 32], Instant::ZERO);
    // A length prefix promising more than arrives: the session waits, holding one message at most.
    b.handle_bytes(Instant::ZERO, &[0xff, 0xff, 1, 2, 3]);
    assert_eq!(b.poll_event(), None);
    let _ = Bytes::new();
}

#[test]
fn same_seeds_give_the_same_transcript() {
    let run = || {
        let mut p = Pair::new();
        p.pump();
        p.a.send(&frame(100)).unwrap();
        p.a.poll_transmit().unwrap()
    };
    assert_eq!(run(), run());
}

#[test]
fn compression_needs_both_sides_to_offer_it() {
    let mut plain = SessionConfig::new("test");
    plain.compression = false;
    let mut p = Pair::with(config("test"), keys(1), None, Arc::new(plain), keys(2));
    p.pump();
    assert!(matches!(
        &p.a_events[..],
        [SessionEvent::Established {
            compression: false,
            ..
        }]
    ));
    let before = p.a.stats().bytes_sent;
    let f = Frame::new(ProtocolId::GOSSIP, 0, vec![0u8; 10_000]);
    p.a.send(&f).unwrap();
    p.pump();
    assert!(
        p.a.stats().bytes_sent - before > 10_000,
        "sent uncompressed"
    );
    assert_eq!(p.frames_at_b(), vec![f]);
}

#[test]
fn peer_announcing_a_tiny_frame_limit_is_refused() {
    let mut tiny = SessionConfig::new("test");
    tiny.limits.max_frame_len = 100;
    tiny.limits.max_bytes_len = 100;
    let mut p = Pair::with(config("test"), keys(1), None, Arc::new(tiny), keys(2));
    p.pump();
    assert!(matches!(
        closed(&p.a_events),
        Some(CloseCause::Malformed(_))
    ));
}

#[test]
fn small_frames_are_batched_into_shared_records() {
    let mut p = Pair::new();
    p.pump();
    let before = p.a.stats().bytes_sent;
    let sent: Vec<Frame> = (0..1000)
        .map(|i| Frame::new(ProtocolId::GOSSIP, 1, vec![i as u8; 64]))
        .collect();
    for f in &sent {
        p.a.send(f).unwrap();
    }
    p.pump();
    assert_eq!(p.frames_at_b(), sent);
    // 64 + 3 bytes of frame header each; two records (65 kB each) add 2 × 19 bytes of framing.
    let per_frame = (p.a.stats().bytes_sent - before) as f64 / 1000.0;
    assert!(per_frame < 68.0, "{per_frame} bytes per 64-byte frame");
}
