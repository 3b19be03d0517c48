//! Handshake: full secure sessions between N nodes, some of them misfits.
//!
//! Each node dials about 4 random others (so each has about 8 sessions), over ordered virtual
//! links carrying real Noise bytes. `foreign` nodes belong to another network and `old` nodes
//! speak an older protocol version; honest nodes must refuse every one of them with the right
//! cause, and connect with every honest neighbour.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::seq::index::sample;
use rand::Rng;
use starling_core::rng::{derive_seed, seeded};
use starling_core::session::{NodeKeys, SessionConfig, PROTOCOL_VERSION};
use starling_core::time::{Duration, Instant};

use crate::session_host::SessionHost;
use crate::{peak_rss_bytes, NetworkConfig, NodeId, SimConfig, Simulation, Violation};

/// What to run.
#[derive(Clone, Debug)]
pub struct HandshakeParams {
    /// Number of nodes.
    pub nodes: u32,
    /// Nodes on another network.
    pub foreign: u32,
    /// Nodes speaking an older protocol version.
    pub old_version: u32,
    /// Peers each node dials (each also accepts about as many).
    pub dials: u32,
    /// The seed.
    pub seed: u64,
    /// Virtual time to run (handshakes take a few round trips).
    pub duration: Duration,
    /// The network model; links are made ordered whatever this says.
    pub network: NetworkConfig,
}

impl HandshakeParams {
    /// Defaults: 4 dials per node, 5 s of virtual time, a fault-free WAN.
    pub fn new(nodes: u32, seed: u64) -> Self {
        HandshakeParams {
            nodes,
            foreign: 0,
            old_version: 0,
            dials: 4,
            seed,
            duration: Duration::from_secs(5),
            network: NetworkConfig::default(),
        }
    }
}

/// Why the scenario could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// More misfits than nodes, or too few nodes to dial.
    BadCounts(String),
    /// The network configuration is invalid.
    Network(crate::NetworkConfigError),
    /// An observer check failed.
    Violation(Violation),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::BadCounts(why) => f.write_str(why),
            HandshakeError::Network(e) => write!(f, "network: {e}"),
            HandshakeError::Violation(v) => v.fmt(f),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// The outcome, with the fields of `starling sim handshake --json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HandshakeReport {
    /// Number of nodes.
    pub nodes: u32,
    /// The seed.
    pub seed: u64,
    /// Nodes on another network.
    pub foreign: u32,
    /// Nodes on an older version.
    pub old_version: u32,
    /// Connections dialled.
    pub connections: u64,
    /// Connections established on both ends.
    pub handshakes_ok: u64,
    /// Connections between two honest nodes.
    pub honest_pairs: u64,
    /// Of those, established on both ends.
    pub honest_pairs_connected: u64,
    /// Connections between an honest node and a misfit.
    pub misfit_pairs: u64,
    /// Of those, refused by the honest end with the right cause (wrong network for foreign
    /// nodes, version mismatch for old ones).
    pub misfit_pairs_refused_correctly: u64,
    /// Sessions closed by honest nodes, by cause.
    pub refused: BTreeMap<String, u64>,
    /// Honest nodes with no established session.
    pub honest_isolated: u64,
    /// Mean bytes of a successful handshake (three messages, both directions).
    pub bytes_per_handshake: f64,
    /// Virtual time simulated.
    pub virtual_ms: u64,
    /// Events processed.
    pub events: u64,
    /// Wall-clock time of the run.
    pub wall_ms: u64,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: u64,
    /// Fingerprint of the whole event trace, ciphertext included.
    pub digest: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Honest,
    Foreign,
    Old,
}

/// Which nodes are misfits, and who dials whom (each unordered pair at most once).
fn plan(params: &HandshakeParams) -> (Vec<Kind>, Vec<Vec<NodeId>>) {
    let n = params.nodes;
    let mut rng = seeded(derive_seed(params.seed, 0x706c_616e));
    let mut kinds = vec![Kind::Honest; n as usize];
    let misfits = sample(
        &mut rng,
        n as usize,
        (params.foreign + params.old_version) as usize,
    );
    for (i, node) in misfits.iter().enumerate() {
        kinds[node] = if (i as u32) < params.foreign {
            Kind::Foreign
        } else {
            Kind::Old
        };
    }
    let mut edges = BTreeSet::new();
    let mut dial = vec![Vec::new(); n as usize];
    for i in 0..n {
        for _ in 0..params.dials {
            let j = rng.random_range(0..n);
            if j != i && edges.insert((i.min(j), i.max(j))) {
                dial[i as usize].push(j);
            }
        }
    }
    (kinds, dial)
}

/// Runs the scenario. `progress(now, end)` is called every 100 ms of virtual time.
pub fn run(
    params: &HandshakeParams,
    progress: &mut dyn FnMut(Instant, Instant),
) -> Result<HandshakeReport, HandshakeError> {
    if params.nodes < 2 {
        return Err(HandshakeError::BadCounts(format!(
            "need at least 2 nodes, got {}",
            params.nodes
        )));
    }
    if u64::from(params.foreign) + u64::from(params.old_version) > u64::from(params.nodes) {
        return Err(HandshakeError::BadCounts(
            "more foreign and old nodes than nodes".into(),
        ));
    }
    let wall = std::time::Instant::now();
    let (kinds, dial) = plan(params);
    let honest = Arc::new(SessionConfig::new("starling-sim"));
    let foreign = Arc::new(SessionConfig::new("starling-sim-foreign"));
    let mut old = SessionConfig::new("starling-sim");
    old.version = PROTOCOL_VERSION - 1;
    let old = Arc::new(old);
    let seed = params.seed;
    let factory_kinds = kinds.clone();
    let factory = move |id: NodeId, node_seed: u64, now: Instant| {
        let config = match factory_kinds[id as usize] {
            Kind::Honest => honest.clone(),
            Kind::Foreign => foreign.clone(),
            Kind::Old => old.clone(),
        };
        // Keys are a pure function of the run's seed and the node, so a run replays.
        let keys = Arc::new(NodeKeys::from_test_seed(derive_seed(seed, u64::from(id))));
        SessionHost::new(config, keys, node_seed, &dial[id as usize], now)
    };
    let network = NetworkConfig {
        ordered: true,
        ..params.network
    };
    let config = SimConfig {
        seed: params.seed,
        network,
    };
    let mut sim =
        Simulation::new(config, params.nodes, factory, ()).map_err(HandshakeError::Network)?;
    let end = Instant::ZERO + params.duration;
    while sim.now() < end {
        let next = (sim.now() + Duration::from_millis(100)).min(end);
        sim.run_until(next).map_err(HandshakeError::Violation)?;
        progress(sim.now(), end);
    }

    let mut report = HandshakeReport {
        nodes: params.nodes,
        seed: params.seed,
        foreign: params.foreign,
        old_version: params.old_version,
        connections: 0,
        handshakes_ok: 0,
        honest_pairs: 0,
        honest_pairs_connected: 0,
        misfit_pairs: 0,
        misfit_pairs_refused_correctly: 0,
        refused: BTreeMap::new(),
        honest_isolated: 0,
        bytes_per_handshake: 0.0,
        virtual_ms: (sim.now() - Instant::ZERO).as_millis(),
        events: sim.stats().events,
        wall_ms: 0,
        peak_rss_bytes: 0,
        digest: sim.digest(),
    };
    let mut handshake_bytes = 0u64;
    for (id, host) in sim.view().running() {
        let kind = kinds[id as usize];
        let mut established = 0;
        for (peer, session) in host.sessions() {
            established += u64::from(session.is_established());
            if kind == Kind::Honest {
                if let Some(cause) = session.close_cause().filter(|c| c.is_failure()) {
                    *report.refused.entry(cause.name().to_string()).or_default() += 1;
                }
            }
            // Judge each connection once, from the end that dialled it.
            if session.role() != starling_core::session::Role::Initiator {
                continue;
            }
            report.connections += 1;
            let other = sim
                .node(peer)
                .and_then(|h| h.sessions().find(|(p, _)| *p == id).map(|(_, s)| s));
            let both = session.is_established() && other.is_some_and(|s| s.is_established());
            if both {
                report.handshakes_ok += 1;
                handshake_bytes += session.stats().handshake_bytes;
            }
            let peer_kind = kinds[peer as usize];
            match (kind, peer_kind) {
                (Kind::Honest, Kind::Honest) => {
                    report.honest_pairs += 1;
                    report.honest_pairs_connected += u64::from(both);
                }
                (Kind::Honest, misfit) | (misfit, Kind::Honest) => {
                    report.misfit_pairs += 1;
                    let honest_end = if kind == Kind::Honest {
                        Some(session)
                    } else {
                        other
                    };
                    let right = honest_end.and_then(|s| s.close_cause()).is_some_and(|c| {
                        c.name()
                            == if misfit == Kind::Foreign {
                                "wrong_network"
                            } else {
                                "version_mismatch"
                            }
                    });
                    report.misfit_pairs_refused_correctly += u64::from(right);
                }
                _ => {}
            }
        }
        if kind == Kind::Honest && established == 0 {
            report.honest_isolated += 1;
        }
    }
    report.bytes_per_handshake = if report.handshakes_ok == 0 {
        0.0
    } else {
        handshake_bytes as f64 / report.handshakes_ok as f64
    };
    report.wall_ms = wall.elapsed().as_millis() as u64;
    report.peak_rss_bytes = peak_rss_bytes().unwrap_or(0);
    Ok(report)
}
