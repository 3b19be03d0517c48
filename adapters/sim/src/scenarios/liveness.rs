//! Liveness: failure detectors through a two-way partition and a heal.
//!
//! Each node monitors its two ring neighbours and a few random chords (so the monitoring graph is
//! connected and many links cross any cut). At `partition_at` the network splits into the lower
//! and the upper half of the node ids; at `heal_at` it is whole again; the run ends `settle`
//! later. The report counts suspicions raised across the cut while it could explain them
//! (`detected`), suspicions between peers that could talk (`false_suspicions`), and whether every
//! node sees every monitored peer alive at the end (`healed`).

use rand::Rng;
use starling_core::detector::{DetectorConfig, DetectorEvent, FailureDetector, PeerStatus};
use starling_core::rng::{derive_seed, seeded};
use starling_core::time::{Duration, Instant};

use crate::{
    peak_rss_bytes, NetworkConfig, NodeId, Observer, SimConfig, Simulation, View, Violation,
};

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct LivenessParams {
    /// Number of nodes.
    pub nodes: u32,
    /// The seed of the run.
    pub seed: u64,
    /// Random peers each node monitors besides its two ring neighbours.
    pub chords: u32,
    /// When the network splits in two.
    pub partition_at: Duration,
    /// When it heals.
    pub heal_at: Duration,
    /// How long to run after the heal.
    pub settle: Duration,
    /// The network model.
    pub network: NetworkConfig,
    /// The detectors' configuration.
    pub detector: DetectorConfig,
}

impl LivenessParams {
    /// Defaults: 4 chords, partition at 10 s, heal at 30 s, settle 10 s, a fault-free WAN.
    pub fn new(nodes: u32, seed: u64) -> Self {
        LivenessParams {
            nodes,
            seed,
            chords: 4,
            partition_at: Duration::from_secs(10),
            heal_at: Duration::from_secs(30),
            settle: Duration::from_secs(10),
            network: NetworkConfig::default(),
            detector: DetectorConfig::default(),
        }
    }
}

/// Why the scenario could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum LivenessError {
    /// Fewer than 3 nodes: a ring needs three.
    TooFewNodes(u32),
    /// The heal is scheduled before the partition.
    HealBeforePartition,
    /// The network configuration is invalid.
    Network(crate::NetworkConfigError),
    /// An observer check failed.
    Violation(Violation),
}

impl std::fmt::Display for LivenessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LivenessError::TooFewNodes(n) => write!(f, "need at least 3 nodes, got {n}"),
            LivenessError::HealBeforePartition => {
                f.write_str("heal time must not precede the partition")
            }
            LivenessError::Network(e) => write!(f, "network: {e}"),
            LivenessError::Violation(v) => v.fmt(f),
        }
    }
}

impl std::error::Error for LivenessError {}

impl From<Violation> for LivenessError {
    fn from(v: Violation) -> Self {
        LivenessError::Violation(v)
    }
}

/// The outcome, with the fields of `starling sim liveness --json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LivenessReport {
    /// Number of nodes.
    pub nodes: u32,
    /// The seed.
    pub seed: u64,
    /// Virtual time simulated.
    pub virtual_ms: u64,
    /// Events processed (deliveries and timers).
    pub events: u64,
    /// Wall-clock time of the run.
    pub wall_ms: u64,
    /// `events` per wall-clock second.
    pub events_per_sec: f64,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: u64,
    /// Monitored (observer, peer) pairs.
    pub monitored_links: u64,
    /// Monitored pairs whose ends are on opposite sides of the cut.
    pub cross_links: u64,
    /// Suspicions raised across the cut while the partition explains them.
    pub detected: u64,
    /// Suspicions raised between peers that could talk.
    pub false_suspicions: u64,
    /// Peers declared dead.
    pub dead: u64,
    /// Peers seen alive again after suspicion.
    pub recovered: u64,
    /// Every node sees every monitored peer alive at the end.
    pub healed: bool,
    /// Messages sent by all detectors.
    pub messages_sent: u64,
    /// Messages dropped by the partition.
    pub messages_partitioned: u64,
    /// Fingerprint of the whole event trace.
    pub digest: String,
}

/// Counts status changes and classifies suspicions against the partition schedule.
struct Counters {
    half: u32,
    /// Suspicions of cross-cut peers are explained from the partition until one interval after
    /// the heal (the round that notices the last ping lost before the heal).
    window: (Instant, Instant),
    detected: u64,
    false_suspicions: u64,
    dead: u64,
    recovered: u64,
}

impl Observer<FailureDetector<NodeId>> for Counters {
    fn on_event(
        &mut self,
        view: &View<'_, FailureDetector<NodeId>>,
        node: NodeId,
        event: &DetectorEvent<NodeId>,
    ) -> Result<(), String> {
        match *event {
            DetectorEvent::Suspect(peer) => {
                let cross = (node < self.half) != (peer < self.half);
                let now = view.now();
                if cross && now >= self.window.0 && now <= self.window.1 {
                    self.detected += 1;
                } else {
                    self.false_suspicions += 1;
                }
            }
            DetectorEvent::Dead(_) => self.dead += 1,
            DetectorEvent::Alive(_) => self.recovered += 1,
        }
        Ok(())
    }
}

/// The peers node `id` monitors: ring neighbours and `chords` distinct random others.
fn monitored_peers(id: NodeId, params: &LivenessParams) -> Vec<NodeId> {
    let n = params.nodes;
    let mut peers = vec![(id + 1) % n, (id + n - 1) % n];
    let mut rng = seeded(derive_seed(
        params.seed,
        0x6368_6f72_6400_0000 | u64::from(id),
    ));
    let wanted = (params.chords as usize + 2).min(n as usize - 1);
    // Bounded retries: with n ≥ 3 and few chords, collisions are rare.
    for _ in 0..wanted * 8 {
        if peers.len() >= wanted {
            break;
        }
        let p = rng.random_range(0..n);
        if p != id && !peers.contains(&p) {
            peers.push(p);
        }
    }
    peers
}

/// Runs the scenario. `progress(now, end)` is called every half second of virtual time.
pub fn run(
    params: &LivenessParams,
    progress: &mut dyn FnMut(Instant, Instant),
) -> Result<LivenessReport, LivenessError> {
    if params.nodes < 3 {
        return Err(LivenessError::TooFewNodes(params.nodes));
    }
    if params.heal_at < params.partition_at {
        return Err(LivenessError::HealBeforePartition);
    }
    let wall = std::time::Instant::now();
    let start = Instant::ZERO;
    let partition_at = start + params.partition_at;
    let heal_at = start + params.heal_at;
    let end = heal_at + params.settle;
    let half = params.nodes / 2;
    let counters = Counters {
        half,
        window: (partition_at, heal_at + params.detector.interval),
        detected: 0,
        false_suspicions: 0,
        dead: 0,
        recovered: 0,
    };
    let p = *params;
    let factory = move |id: NodeId, seed: u64, now: Instant| {
        let mut d = FailureDetector::new(p.detector, seed, now);
        for peer in monitored_peers(id, &p) {
            // Within max_peers by construction (chords + 2 ≤ the default 1024).
            let _ = d.monitor(now, peer);
        }
        d
    };
    let config = SimConfig {
        seed: params.seed,
        network: params.network,
    };
    let mut sim =
        Simulation::new(config, params.nodes, factory, counters).map_err(LivenessError::Network)?;

    let (mut monitored_links, mut cross_links) = (0, 0);
    for (id, d) in sim.view().running() {
        for (peer, _) in d.statuses() {
            monitored_links += 1;
            cross_links += u64::from((id < half) != (peer < half));
        }
    }

    let step = Duration::from_millis(500);
    let mut phase_runs =
        |sim: &mut Simulation<_, Counters>, until: Instant| -> Result<(), Violation> {
            while sim.now() < until {
                sim.run_until((sim.now() + step).min(until))?;
                progress(sim.now(), end);
            }
            Ok(())
        };
    phase_runs(&mut sim, partition_at)?;
    sim.partition(|id| u16::from(id >= half));
    phase_runs(&mut sim, heal_at)?;
    sim.heal();
    phase_runs(&mut sim, end)?;

    let healed = sim
        .view()
        .running()
        .all(|(_, d)| d.statuses().all(|(_, s)| s == PeerStatus::Alive));
    let stats = *sim.stats();
    let c = sim.observer();
    let wall_ms = wall.elapsed().as_millis() as u64;
    Ok(LivenessReport {
        nodes: params.nodes,
        seed: params.seed,
        virtual_ms: (sim.now() - start).as_millis(),
        events: stats.events,
        wall_ms,
        events_per_sec: stats.events as f64 / (wall.elapsed().as_secs_f64()).max(1e-9),
        peak_rss_bytes: peak_rss_bytes().unwrap_or(0),
        monitored_links,
        cross_links,
        detected: c.detected,
        false_suspicions: c.false_suspicions,
        dead: c.dead,
        recovered: c.recovered,
        healed,
        messages_sent: stats.sent,
        messages_partitioned: stats.partitioned + stats.partitioned_in_flight,
        digest: sim.digest(),
    })
}
