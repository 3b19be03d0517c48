//! Failure-detector tests on a small in-memory harness: machines exchange messages instantly
//! unless the link between them is cut.

use std::collections::BTreeSet;
use std::num::NonZeroU32;

use super::*;
use crate::machine::{Machine, Output};
use crate::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

/// N detectors named 0..N, a set of cut (directed) links, and every event seen.
struct Harness {
    nodes: Vec<FailureDetector<u32>>,
    cut: BTreeSet<(u32, u32)>,
    now: Instant,
    events: Vec<(u32, DetectorEvent<u32>)>,
    delay: Duration,
}

impl Harness {
    fn new(n: u32, config: DetectorConfig) -> Self {
        let nodes = (0..n)
            .map(|i| FailureDetector::new(config, u64::from(i), Instant::ZERO))
            .collect();
        Harness {
            nodes,
            cut: BTreeSet::new(),
            now: Instant::ZERO,
            events: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    fn monitor(&mut self, who: u32, peer: u32) {
        self.nodes[who as usize].monitor(self.now, peer).unwrap();
    }

    fn cut_both(&mut self, a: u32, b: u32) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Advances time to `until`, firing timers in order and delivering messages after `delay`.
    fn run_until(&mut self, until: Instant) {
        let mut in_flight: Vec<(Instant, u32, u32, HeartbeatMessage)> = Vec::new();
        loop {
            let next_timer = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.poll_timeout().map(|t| (t, i)))
                .min();
            let next_msg = in_flight
                .iter()
                .enumerate()
                .min_by_key(|(_, m)| m.0)
                .map(|(i, m)| (m.0, i));
            let (at, is_msg, idx) = match (next_timer, next_msg) {
                (Some((t, _)), Some((m, j))) if m <= t => (m, true, j),
                (Some((t, i)), _) => (t, false, i),
                (None, Some((m, j))) => (m, true, j),
                (None, None) => break,
            };
            if at > until {
                break;
            }
            self.now = at;
            let node = if is_msg {
                let (_, from, to, msg) = in_flight.swap_remove(idx);
                self.nodes[to as usize].handle_message(at, from, msg);
                to
            } else {
                self.nodes[idx].handle_timeout(at);
                idx as u32
            };
            while let Some(out) = self.nodes[node as usize].poll_output() {
                match out {
                    Output::Send { to, msg } if !self.cut.contains(&(node, to)) => {
                        in_flight.push((at + self.delay, node, to, msg))
                    }
                    Output::Send { .. } => {}
                    Output::Event(e) => self.events.push((node, e)),
                }
            }
        }
        self.now = until;
    }

    fn events_of(&self, who: u32) -> Vec<DetectorEvent<u32>> {
        self.events
            .iter()
            .filter(|(n, _)| *n == who)
            .map(|(_, e)| *e)
            .collect()
    }
}

#[test]
fn answered_heartbeats_never_raise_suspicion() {
    let mut h = Harness::new(3, DetectorConfig::default());
    h.delay = Duration::from_millis(50);
    for (a, b) in [(0, 1), (1, 2), (2, 0), (0, 2)] {
        h.monitor(a, b);
    }
    h.run_until(Instant::ZERO + SECOND.saturating_mul(60));
    assert!(h.events.is_empty(), "unexpected events: {:?}", h.events);
    assert_eq!(h.nodes[0].status(1), Some(PeerStatus::Alive));
}

#[test]
fn peer_missing_three_heartbeats_is_suspect_then_dead() {
    let mut h = Harness::new(2, DetectorConfig::default());
    h.monitor(0, 1);
    h.cut_both(0, 1);
    // The first round (jittered, < 2 s) sends the first ping; misses are counted at rounds 2, 3, 4.
    h.run_until(Instant::ZERO + SECOND.saturating_mul(5));
    assert!(
        h.events_of(0).is_empty(),
        "suspected too early: {:?}",
        h.events
    );
    h.run_until(Instant::ZERO + SECOND.saturating_mul(8));
    assert_eq!(h.events_of(0), vec![DetectorEvent::Suspect(1)]);
    assert_eq!(h.nodes[0].health(1).unwrap().misses, 3);
    // dead_after = 6 misses: rounds 5, 6 and 7 follow within 6 more seconds.
    h.run_until(Instant::ZERO + SECOND.saturating_mul(14));
    assert_eq!(
        h.events_of(0),
        vec![DetectorEvent::Suspect(1), DetectorEvent::Dead(1)]
    );
    assert_eq!(h.nodes[0].status(1), Some(PeerStatus::Dead));
}

#[test]
fn miss_threshold_is_configurable() {
    let config = DetectorConfig {
        interval: Duration::from_millis(100),
        suspect_after: NonZeroU32::new(5).unwrap(),
        dead_after: NonZeroU32::new(5).unwrap(),
        ..Default::default()
    };
    let mut h = Harness::new(2, config);
    h.monitor(0, 1);
    h.cut_both(0, 1);
    // First ping before 100 ms, misses at rounds 2..=6: not yet by 500 ms, certainly by 700 ms.
    h.run_until(Instant::ZERO + Duration::from_millis(500));
    assert!(h.events_of(0).is_empty());
    h.run_until(Instant::ZERO + Duration::from_millis(700));
    // Suspect and dead thresholds coincide: both are reported, in that order.
    assert_eq!(
        h.events_of(0),
        vec![DetectorEvent::Suspect(1), DetectorEvent::Dead(1)]
    );
}

#[test]
fn dead_peer_is_alive_again_once_heard_from() {
    let mut h = Harness::new(2, DetectorConfig::default());
    h.monitor(0, 1);
    h.cut_both(0, 1);
    h.run_until(Instant::ZERO + SECOND.saturating_mul(20));
    assert_eq!(h.nodes[0].status(1), Some(PeerStatus::Dead));
    h.cut.clear();
    // Dead peers are still pinged: the next round's pong brings it back.
    h.run_until(Instant::ZERO + SECOND.saturating_mul(23));
    assert_eq!(h.events_of(0).last(), Some(&DetectorEvent::Alive(1)));
    assert_eq!(h.nodes[0].status(1), Some(PeerStatus::Alive));
    assert_eq!(h.nodes[0].health(1).unwrap().misses, 0);
}

#[test]
fn one_way_cut_is_detected_by_the_side_that_hears_nothing() {
    let mut h = Harness::new(2, DetectorConfig::default());
    h.monitor(0, 1);
    // Pings from 0 reach 1, but 1's pongs never come back.
    h.cut.insert((1, 0));
    h.run_until(Instant::ZERO + SECOND.saturating_mul(10));
    assert_eq!(h.events_of(0), vec![DetectorEvent::Suspect(1)]);
}

#[test]
fn pongs_give_a_smoothed_rtt() {
    let mut h = Harness::new(2, DetectorConfig::default());
    h.delay = Duration::from_millis(40);
    h.monitor(0, 1);
    h.run_until(Instant::ZERO + SECOND.saturating_mul(10));
    let health = h.nodes[0].health(1).unwrap();
    // Every sample is exactly 80 ms, so the estimate converges on it and the variation decays.
    assert_eq!(health.srtt, Some(Duration::from_millis(80)));
    assert!(
        health.rttvar < Duration::from_millis(40),
        "rttvar {:?}",
        health.rttvar
    );
}

#[test]
fn other_traffic_counts_as_a_heartbeat() {
    let mut d = FailureDetector::<u32>::new(DetectorConfig::default(), 0, Instant::ZERO);
    d.monitor(Instant::ZERO, 7).unwrap();
    let mut now = Instant::ZERO;
    for _ in 0..10 {
        now = d.poll_timeout().unwrap();
        d.handle_timeout(now);
        d.heard_from(now + Duration::from_millis(1), 7);
        while d.poll_output().is_some() {}
    }
    assert_eq!(d.status(7), Some(PeerStatus::Alive));
    assert!(now > Instant::ZERO + SECOND.saturating_mul(18));
}

#[test]
fn first_round_is_jittered_within_one_interval() {
    let firsts: BTreeSet<Instant> = (0..20)
        .map(|seed| FailureDetector::<u32>::new(DetectorConfig::default(), seed, Instant::ZERO))
        .map(|d| d.poll_timeout().unwrap())
        .collect();
    assert!(firsts.len() > 15, "seeds should spread the first round");
    assert!(firsts
        .iter()
        .all(|t| *t < Instant::ZERO + SECOND.saturating_mul(2)));
}

#[test]
fn monitoring_is_bounded_and_idempotent() {
    let config = DetectorConfig {
        max_peers: 2,
        ..Default::default()
    };
    let mut d = FailureDetector::<u32>::new(config, 0, Instant::ZERO);
    assert_eq!(d.monitor(Instant::ZERO, 1), Ok(()));
    assert_eq!(d.monitor(Instant::ZERO, 1), Ok(()));
    assert_eq!(d.monitor(Instant::ZERO, 2), Ok(()));
    assert_eq!(
        d.monitor(Instant::ZERO, 3),
        Err(DetectorError::TooManyPeers { max: 2 })
    );
    assert_eq!(d.len(), 2);
    assert!(d.unmonitor(1));
    assert!(!d.unmonitor(1));
    assert_eq!(d.monitor(Instant::ZERO, 3), Ok(()));
    assert_eq!(d.statuses().map(|(p, _)| p).collect::<Vec<_>>(), vec![2, 3]);
}

#[test]
fn ping_flood_cannot_grow_the_output_queue() {
    let config = DetectorConfig {
        max_peers: 4,
        ..Default::default()
    };
    let mut d = FailureDetector::<u32>::new(config, 0, Instant::ZERO);
    for seq in 0..10_000 {
        d.handle_message(Instant::ZERO, 9, HeartbeatMessage::Ping { seq });
    }
    let mut queued = 0;
    while d.poll_output().is_some() {
        queued += 1;
    }
    assert_eq!(queued, 2 * 4 + 64);
    assert_eq!(d.dropped_pongs(), 10_000 - queued as u64);
}

#[test]
fn unmonitored_peers_are_answered_but_not_tracked() {
    let mut d = FailureDetector::<u32>::new(DetectorConfig::default(), 0, Instant::ZERO);
    d.handle_message(Instant::ZERO, 5, HeartbeatMessage::Ping { seq: 42 });
    assert_eq!(
        d.poll_output(),
        Some(Output::Send {
            to: 5,
            msg: HeartbeatMessage::Pong { seq: 42 }
        })
    );
    d.handle_message(Instant::ZERO, 5, HeartbeatMessage::Pong { seq: 1 });
    assert_eq!(d.poll_output(), None);
    assert_eq!(d.status(5), None);
}
