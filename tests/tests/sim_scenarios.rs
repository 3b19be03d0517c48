//! Simulator scenarios: determinism, every fault the network model offers, crash and restart,
//! and invariant failures that name their seed.

use starling_core::detector::{DetectorConfig, DetectorEvent, FailureDetector, PeerStatus};
use starling_core::time::{Duration, Instant};
use starling_sim::scenarios::liveness::{self, LivenessParams};
use starling_sim::{Latency, NetworkConfig, NodeId, Observer, SimConfig, Simulation, View};

type Detector = FailureDetector<NodeId>;

fn liveness(nodes: u32, seed: u64) -> liveness::LivenessReport {
    liveness::run(&LivenessParams::new(nodes, seed), &mut |_, _| {}).expect("scenario runs")
}

#[test]
fn same_seed_replays_bit_for_bit_and_another_seed_differs() {
    let a = liveness(300, 7);
    let b = liveness(300, 7);
    let c = liveness(300, 8);
    assert_eq!(a.digest, b.digest);
    assert_eq!(
        (a.events, a.detected, a.messages_sent),
        (b.events, b.detected, b.messages_sent)
    );
    assert_ne!(a.digest, c.digest);
}

#[test]
fn partition_is_detected_on_every_cut_link_and_heals_without_false_suspicion() {
    let r = liveness(500, 3);
    assert!(r.cross_links > 0);
    // Every monitored link across the cut is suspected once, and nothing else is.
    assert_eq!(r.detected, r.cross_links);
    assert_eq!(r.false_suspicions, 0);
    // The 20 s partition outlasts dead_after (6 × 2 s), so every suspect is also declared dead.
    assert_eq!(r.dead, r.cross_links);
    assert_eq!(r.recovered, r.cross_links);
    assert!(r.healed);
}

#[test]
fn short_partition_is_suspected_but_not_declared_dead() {
    let mut p = LivenessParams::new(200, 5);
    p.partition_at = Duration::from_secs(4);
    p.heal_at = Duration::from_secs(12); // 8 s: 3 misses (6 s) fit, 6 misses (12 s) do not
    let r = liveness::run(&p, &mut |_, _| {}).unwrap();
    assert_eq!(r.detected, r.cross_links);
    assert_eq!(r.dead, 0);
    assert!(r.healed);
}

#[test]
fn lossy_network_raises_honest_false_suspicions_yet_heals() {
    let mut p = LivenessParams::new(200, 11);
    p.network.loss = 0.5;
    p.settle = Duration::from_secs(20);
    let r = liveness::run(&p, &mut |_, _| {}).unwrap();
    // With half the messages lost, a ping-pong round trip fails 75% of the time, so three misses
    // in a row (42%) happen between peers that could talk.
    assert!(r.false_suspicions > 0, "{r:?}");
    assert!(r.detected > 0);
    let again = liveness::run(&p, &mut |_, _| {}).unwrap();
    assert_eq!(r.digest, again.digest);
}

#[test]
fn progress_reports_virtual_time_up_to_the_end() {
    let mut last = (Instant::ZERO, Instant::ZERO);
    let mut calls = 0;
    liveness::run(&LivenessParams::new(10, 1), &mut |now, end| {
        assert!(now >= last.0);
        last = (now, end);
        calls += 1;
    })
    .unwrap();
    assert_eq!(last.0, last.1);
    assert_eq!(calls, 80); // 40 s in half-second steps
}

#[test]
fn scenario_rejects_impossible_parameters() {
    assert!(liveness::run(&LivenessParams::new(2, 1), &mut |_, _| {}).is_err());
    let mut p = LivenessParams::new(10, 1);
    p.heal_at = Duration::from_secs(1);
    assert!(liveness::run(&p, &mut |_, _| {}).is_err());
    p = LivenessParams::new(10, 1);
    p.network.duplicate = -0.1;
    assert!(liveness::run(&p, &mut |_, _| {}).is_err());
}

/// Records every event with its time.
#[derive(Default)]
struct Log(Vec<(Instant, NodeId, DetectorEvent<NodeId>)>);

impl Observer<Detector> for Log {
    fn on_event(
        &mut self,
        view: &View<'_, Detector>,
        node: NodeId,
        e: &DetectorEvent<NodeId>,
    ) -> Result<(), String> {
        self.0.push((view.now(), node, *e));
        Ok(())
    }
}

/// Three nodes that all monitor each other.
fn triangle(seed: u64, network: NetworkConfig) -> Simulation<Detector, Log> {
    let factory = |id: NodeId, seed, now| {
        let mut d = FailureDetector::new(DetectorConfig::default(), seed, now);
        for peer in (0..3).filter(|p| *p != id) {
            d.monitor(now, peer).unwrap();
        }
        d
    };
    Simulation::new(SimConfig { seed, network }, 3, factory, Log::default()).unwrap()
}

#[test]
fn crashed_node_is_declared_dead_and_alive_after_restart() {
    let mut sim = triangle(1, NetworkConfig::default());
    sim.run_until(Instant::ZERO + Duration::from_secs(5))
        .unwrap();
    sim.crash(2);
    assert!(!sim.is_up(2));
    sim.run_for(Duration::from_secs(20)).unwrap();
    for watcher in [0, 1] {
        assert_eq!(sim.node(watcher).unwrap().status(2), Some(PeerStatus::Dead));
        assert_eq!(
            sim.node(watcher).unwrap().status(1 - watcher),
            Some(PeerStatus::Alive)
        );
    }
    assert!(
        sim.stats().to_crashed > 0,
        "pings to the crashed node are dropped"
    );
    sim.restart(2).unwrap();
    sim.run_for(Duration::from_secs(5)).unwrap();
    for watcher in [0, 1] {
        assert_eq!(
            sim.node(watcher).unwrap().status(2),
            Some(PeerStatus::Alive)
        );
    }
    // The restarted node starts fresh: it never saw the others as anything but alive.
    assert!(sim
        .node(2)
        .unwrap()
        .statuses()
        .all(|(_, s)| s == PeerStatus::Alive));
    let events: Vec<_> = sim
        .observer()
        .0
        .iter()
        .filter(|(_, n, _)| *n == 0)
        .map(|e| e.2)
        .collect();
    assert_eq!(
        events,
        vec![
            DetectorEvent::Suspect(2),
            DetectorEvent::Dead(2),
            DetectorEvent::Alive(2)
        ]
    );
    assert_eq!((sim.stats().crashes, sim.stats().restarts), (1, 1));
}

#[test]
fn duplication_and_reordering_are_applied_and_harmless_to_the_detector() {
    let network = NetworkConfig {
        duplicate: 0.3,
        reorder: 0.3,
        reorder_delay: Duration::from_millis(300),
        jitter: Latency::Exponential {
            mean: Duration::from_millis(20),
            max: Duration::from_millis(400),
        },
        ..NetworkConfig::default()
    };
    let mut sim = triangle(4, network);
    sim.run_until(Instant::ZERO + Duration::from_secs(60))
        .unwrap();
    let s = *sim.stats();
    assert!(
        s.duplicated > s.sent / 5 && s.duplicated < s.sent * 2 / 5,
        "{s:?}"
    );
    assert!(s.reordered > s.sent / 5, "{s:?}");
    // No loss: every copy was delivered or is still in flight (the queue also holds one timer
    // per node).
    let in_flight = sim.pending() as u64 - 3;
    assert_eq!(s.delivered + in_flight, s.sent + s.duplicated, "{s:?}");
    assert!(
        sim.observer().0.is_empty(),
        "late or doubled pongs must not raise suspicion"
    );
}

#[test]
fn messages_in_flight_when_a_partition_starts_are_dropped() {
    let network = NetworkConfig {
        link_latency: Latency::Constant(Duration::from_millis(500)),
        ..NetworkConfig::default()
    };
    let mut sim = triangle(2, network);
    // Run until messages are certainly in flight (first pings go out within 2 s).
    sim.run_until(Instant::ZERO + Duration::from_secs(2))
        .unwrap();
    let sent = sim.stats().sent;
    assert!(
        sim.pending() > 3,
        "pings in flight besides the three timers"
    );
    sim.partition(|id| id as u16);
    sim.run_for(Duration::from_millis(600)).unwrap();
    assert!(sim.stats().partitioned_in_flight > 0);
    assert!(sim.stats().sent >= sent);
}

/// Fails the run on the first suspicion.
struct NoSuspicion;

impl Observer<Detector> for NoSuspicion {
    fn on_event(
        &mut self,
        _: &View<'_, Detector>,
        node: NodeId,
        e: &DetectorEvent<NodeId>,
    ) -> Result<(), String> {
        match e {
            DetectorEvent::Suspect(p) => Err(format!("node {node} suspects {p}")),
            _ => Ok(()),
        }
    }
}

/// Fails the periodic check once any node has been crashed.
struct AllUp;

impl Observer<Detector> for AllUp {
    fn check(&mut self, view: &View<'_, Detector>) -> Result<(), String> {
        match view.running().count() as u32 {
            n if n == view.len() => Ok(()),
            n => Err(format!("{} of {} nodes down", view.len() - n, view.len())),
        }
    }
}

#[test]
fn a_failed_invariant_stops_the_run_and_names_the_seed() {
    let factory = |id: NodeId, seed, now| {
        let mut d = FailureDetector::new(DetectorConfig::default(), seed, now);
        d.monitor(now, (id + 1) % 4).unwrap();
        d
    };
    let mut sim = Simulation::new(
        SimConfig {
            seed: 42,
            network: NetworkConfig::default(),
        },
        4,
        factory,
        NoSuspicion,
    )
    .unwrap();
    sim.run_until(Instant::ZERO + Duration::from_secs(10))
        .unwrap();
    sim.partition(|id| u16::from(id >= 2));
    let err = sim.run_for(Duration::from_secs(30)).unwrap_err();
    assert_eq!(err.seed, 42);
    assert!(err.node.is_some());
    let text = err.to_string();
    assert!(
        text.contains("suspects") && text.contains("--seed 42"),
        "{text}"
    );

    let factory =
        |_: NodeId, seed, now| FailureDetector::<NodeId>::new(DetectorConfig::default(), seed, now);
    let mut sim = Simulation::new(
        SimConfig {
            seed: 9,
            network: NetworkConfig::default(),
        },
        3,
        factory,
        AllUp,
    )
    .unwrap();
    sim.run_for(Duration::from_secs(1)).unwrap();
    sim.crash(1);
    let err = sim.run_for(Duration::from_secs(1)).unwrap_err();
    assert_eq!((err.seed, err.node), (9, None));
    assert!(err.detail.contains("1 of 3 nodes down"));
}
