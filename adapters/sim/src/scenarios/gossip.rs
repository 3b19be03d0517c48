//! Gossip at scale: an overlay formed by real joins, then broadcasts from random live nodes,
//! under loss, crashes or a partition, counted per (node, message).
//!
//! Node 0 starts alone; nodes 1..N join one after another through one random earlier node, all
//! subscribed to one topic. After the overlay settles, `warmup` messages are broadcast to let the
//! Plumtree trees form (pruning happens on the first duplicates); they are not measured. Then
//! the faults, if any, and `messages` measured broadcasts, one every `gap`, each from a random
//! live node. After the last one the run goes on for `tail` of virtual time, in which anti-
//! entropy repairs what the tree lost.
//!
//! - `loss`: from the first measured message on, every message (payloads, announcements,
//!   grafts, digests) is lost with this probability.
//! - `crash`: that fraction of nodes crashes at once before the measured messages; each crashed
//!   node's active neighbours are told (`peer_failed`) after `detect`, as a keep-alive would.
//! - `partition`: the nodes split into two halves (by id parity) for that long, starting with
//!   the measured messages; no failure is reported across the cut (connections outlive a short
//!   partition), so the overlay is whole again when it heals.

use std::collections::HashMap;

use bytes::Bytes;
use rand::Rng;
use starling_core::gossip::{
    BroadcastMode, Gossip, GossipConfig, GossipEvent, GossipMessage, MessageId, TopicId,
};
use starling_core::machine::{Machine, Output};
use starling_core::rng::{derive_seed, seeded};
use starling_core::time::{Duration, Instant};

use crate::{peak_rss_bytes, NetworkConfig, NodeId, Observer, SimConfig, Simulation, View};

/// A simulated gossip node.
pub struct GossipHost {
    /// The node's gossip machine.
    pub gossip: Gossip<NodeId>,
}

impl Machine for GossipHost {
    type Peer = NodeId;
    type Message = GossipMessage<NodeId>;
    type Event = GossipEvent<NodeId>;

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Self::Message) {
        self.gossip.handle_message(now, from, msg);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.gossip.handle_timeout(now);
    }
    fn poll_output(&mut self) -> Option<Output<NodeId, Self::Message, Self::Event>> {
        self.gossip.poll_output()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.gossip.poll_timeout()
    }
}

/// The topic every simulated node subscribes to.
pub fn sim_topic() -> TopicId {
    TopicId::named("starling/sim")
}

/// What to run.
#[derive(Clone, Debug)]
pub struct GossipParams {
    /// Number of nodes.
    pub nodes: u32,
    /// Measured broadcasts.
    pub messages: u32,
    /// Broadcasts before the measured ones, to settle the trees.
    pub warmup: u32,
    /// Message loss during the measured phase.
    pub loss: f64,
    /// Fraction of nodes crashed before the measured phase.
    pub crash: f64,
    /// Length of a partition into two halves, starting with the measured phase (zero: none).
    pub partition: Duration,
    /// How long after a crash its neighbours are told.
    pub detect: Duration,
    /// Plumtree or push.
    pub mode: BroadcastMode,
    /// The seed of the run.
    pub seed: u64,
    /// Virtual time between two joins.
    pub join_gap: Duration,
    /// Virtual time between two broadcasts.
    pub gap: Duration,
    /// Virtual time after the last broadcast (anti-entropy repairs in it).
    pub tail: Duration,
    /// Payload bytes per message.
    pub size: usize,
    /// The network model.
    pub network: NetworkConfig,
    /// Every node's gossip configuration.
    pub gossip: GossipConfig,
}

impl GossipParams {
    /// Defaults: joins 1 ms apart, 5 warm-up messages, broadcasts 1 s apart, 60 s of tail,
    /// 128-byte messages, a fault-free WAN, default gossip.
    pub fn new(nodes: u32, messages: u32, seed: u64) -> Self {
        GossipParams {
            nodes,
            messages,
            warmup: 5,
            loss: 0.0,
            crash: 0.0,
            partition: Duration::ZERO,
            detect: Duration::from_secs(3),
            mode: BroadcastMode::Plumtree,
            seed,
            join_gap: Duration::from_millis(1),
            gap: Duration::from_secs(1),
            tail: Duration::from_secs(60),
            size: 128,
            network: NetworkConfig::default(),
            gossip: GossipConfig::default(),
        }
    }
}

/// The outcome, with the fields of `starling sim gossip --json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GossipReport {
    /// "plumtree" or "push".
    pub mode: &'static str,
    /// Number of nodes.
    pub nodes: u32,
    /// Nodes alive at the end.
    pub live_nodes: u32,
    /// The seed.
    pub seed: u64,
    /// Measured messages.
    pub messages: u32,
    /// Fraction of (live node, measured message) pairs delivered by the end.
    pub reliability: f64,
    /// Fraction of those pairs delivered before the tail began (by the tree alone, mostly).
    pub reliability_before_tail: f64,
    /// Whether every live node holds the same set of measured messages at the end.
    pub converged: bool,
    /// Relative message redundancy over the measured messages: payload copies received ÷
    /// (deliveries) − 1, so 0 is one copy per delivery. Warm-up messages (tree settling) are
    /// not counted; repair copies in the tail are.
    pub rmr: f64,
    /// Announcements, grafts, prunes and anti-entropy messages sent per live node during the
    /// measured phase and tail.
    pub control_msgs_per_node: f64,
    /// Of those, the broadcast tree's (IHAVE, GRAFT, PRUNE).
    pub tree_control_per_node: f64,
    /// Messages repaired by anti-entropy, per live node.
    pub repaired_per_node: f64,
    /// Grafts (an announced message late through the tree), per live node.
    pub grafts_per_node: f64,
    /// Median tree hops from publisher to receiver.
    pub latency_hops_median: u32,
    /// Largest of the same.
    pub latency_hops_max: u32,
    /// 99th percentile of publish-to-delivery time.
    pub latency_ms_p99: u64,
    /// Median active-view size at the end.
    pub active_view_median: u32,
    /// Average gossip state per live node (views, neighbours, history).
    pub bytes_per_node: u64,
    /// Virtual time simulated.
    pub virtual_ms: u64,
    /// Events processed.
    pub events: u64,
    /// Wall-clock time of the run.
    pub wall_ms: u64,
    /// `events` per wall-clock second.
    pub events_per_sec: f64,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: u64,
    /// Fingerprint of the whole event trace.
    pub digest: String,
}

/// Per measured message: who has it, and when it was published.
struct Tracked {
    published: Instant,
    /// One bit per node.
    have: Vec<u64>,
}

/// Counts deliveries of the measured messages.
#[derive(Default)]
struct Tally {
    index: HashMap<MessageId, u32>,
    tracked: Vec<Tracked>,
    hops: Vec<u16>,
    latency_ms: Vec<u64>,
    duplicate_deliveries: u64,
}

impl Tally {
    fn track(&mut self, id: MessageId, publisher: NodeId, now: Instant, nodes: u32) {
        let mut have = vec![0u64; (nodes as usize).div_ceil(64)];
        have[publisher as usize / 64] |= 1 << (publisher % 64);
        self.index.insert(id, self.tracked.len() as u32);
        self.tracked.push(Tracked {
            published: now,
            have,
        });
    }

    fn has(&self, m: usize, node: NodeId) -> bool {
        self.tracked[m].have[node as usize / 64] & (1 << (node % 64)) != 0
    }
}

impl Observer<GossipHost> for Tally {
    fn on_event(
        &mut self,
        view: &View<'_, GossipHost>,
        node: NodeId,
        event: &GossipEvent<NodeId>,
    ) -> Result<(), String> {
        match event {
            GossipEvent::Message { id, hops, .. } => {
                let Some(&m) = self.index.get(id) else {
                    return Ok(());
                };
                let t = &mut self.tracked[m as usize];
                let (word, bit) = (node as usize / 64, 1u64 << (node % 64));
                if t.have[word] & bit != 0 {
                    self.duplicate_deliveries += 1;
                    return Err(format!("node {node} delivered message {m} twice"));
                }
                t.have[word] |= bit;
                self.hops.push(*hops);
                let ms = view.now().saturating_since(t.published).as_millis();
                self.latency_ms.push(ms);
            }
            GossipEvent::Misbehaved { peer, reason } => {
                return Err(format!("honest node {peer} charged with {reason:?}"));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Why the scenario could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum GossipScenarioError {
    /// Out-of-range parameters.
    BadParams(String),
    /// The gossip configuration is invalid.
    Config(starling_core::gossip::GossipConfigError),
    /// The network configuration is invalid.
    Network(crate::NetworkConfigError),
    /// An observer check failed.
    Violation(crate::Violation),
}

impl std::fmt::Display for GossipScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GossipScenarioError::BadParams(s) => f.write_str(s),
            GossipScenarioError::Config(e) => write!(f, "gossip config: {e}"),
            GossipScenarioError::Network(e) => write!(f, "network: {e}"),
            GossipScenarioError::Violation(v) => v.fmt(f),
        }
    }
}

impl std::error::Error for GossipScenarioError {}

impl From<crate::Violation> for GossipScenarioError {
    fn from(v: crate::Violation) -> Self {
        GossipScenarioError::Violation(v)
    }
}

/// Sums a counter over the live nodes.
fn total(sim: &Simulation<GossipHost, Tally>, f: impl Fn(&Gossip<NodeId>) -> u64) -> u64 {
    sim.view().running().map(|(_, h)| f(&h.gossip)).sum()
}

fn percentile<T: Copy + Ord + Default>(values: &mut [T], p: f64) -> T {
    if values.is_empty() {
        return T::default();
    }
    values.sort_unstable();
    values[((values.len() - 1) as f64 * p).round() as usize]
}

/// Runs the scenario. `progress(phase, done, total)` reports each phase's advance.
pub fn run(
    params: &GossipParams,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<GossipReport, GossipScenarioError> {
    let bad = |s: String| Err(GossipScenarioError::BadParams(s));
    if params.nodes < 2 || params.messages == 0 {
        return bad(format!(
            "need at least 2 nodes and 1 message, got {} and {}",
            params.nodes, params.messages
        ));
    }
    if !(0.0..1.0).contains(&params.crash) || !(0.0..1.0).contains(&params.loss) {
        return bad("crash and loss must be in [0, 1)".into());
    }
    params
        .gossip
        .validate()
        .map_err(GossipScenarioError::Config)?;
    let wall = std::time::Instant::now();
    let (config, mode) = (params.gossip, params.mode);
    let factory = move |id: NodeId, seed: u64, now: Instant| {
        let mut gossip = Gossip::new(config, mode, id, seed, now).expect("validated above");
        gossip.subscribe(sim_topic()).expect("one topic fits");
        GossipHost { gossip }
    };
    let sim_config = SimConfig {
        seed: params.seed,
        network: params.network,
    };
    let mut sim = Simulation::new(sim_config, params.nodes, factory, Tally::default())
        .map_err(GossipScenarioError::Network)?;
    let mut rng = seeded(derive_seed(params.seed, 0x9055));
    let n = params.nodes;

    for i in 1..n {
        sim.run_until(Instant::ZERO + params.join_gap.saturating_mul(u64::from(i)))?;
        let contact = rng.random_range(0..i);
        sim.command(i, |h, now| h.gossip.join(now, contact))?;
        if i % 4096 == 0 {
            progress("join", u64::from(i), u64::from(n));
        }
    }
    sim.run_for(Duration::from_secs(20))?;

    let mut payload = vec![0u8; params.size.max(8)];
    let mut publish = |sim: &mut Simulation<GossipHost, Tally>, rng: &mut _, track: bool| {
        let from = loop {
            let candidate = rand::Rng::random_range(rng, 0..n);
            if sim.is_up(candidate) {
                break candidate;
            }
        };
        rand::Rng::fill(rng, &mut payload[..]);
        let data = Bytes::copy_from_slice(&payload);
        let published = sim.now();
        let id = sim
            .command(from, |h, now| h.gossip.publish(now, sim_topic(), data).ok())?
            .flatten();
        if let (true, Some(id)) = (track, id) {
            sim.observer_mut().track(id, from, published, n);
        }
        Ok::<_, crate::Violation>(id.is_some())
    };
    for _ in 0..params.warmup {
        publish(&mut sim, &mut rng, false)?;
        sim.run_for(Duration::from_secs(2))?;
    }
    sim.run_for(Duration::from_secs(5))?;

    // Faults.
    if params.crash > 0.0 {
        let crashes = (f64::from(n) * params.crash).round() as usize;
        let mut order: Vec<NodeId> = (0..n).collect();
        for i in 0..crashes {
            let j = rng.random_range(i..order.len());
            order.swap(i, j);
        }
        let crashed = &order[..crashes];
        let mut told: Vec<(NodeId, NodeId)> = Vec::new();
        for &dead in crashed {
            if let Some(h) = sim.node(dead) {
                told.extend(h.gossip.active().iter().map(|&peer| (peer, dead)));
            }
        }
        for &dead in crashed {
            sim.crash(dead);
        }
        sim.run_for(params.detect)?;
        for (peer, dead) in told {
            if sim.is_up(peer) {
                sim.command(peer, |h, now| h.gossip.peer_failed(now, dead))?;
            }
        }
        sim.run_for(Duration::from_secs(10))?;
    }
    let before = (
        total(&sim, |g| g.stats().payloads_received),
        total(&sim, |g| g.stats().tree_control_sent),
        total(&sim, |g| g.stats().repair_control_sent),
        total(&sim, |g| g.stats().repaired),
        total(&sim, |g| g.stats().grafts),
    );
    sim.set_loss(params.loss)
        .map_err(GossipScenarioError::Network)?;
    let partition_end = sim.now() + params.partition;
    if params.partition > Duration::ZERO {
        sim.partition(|id| (id % 2) as u16);
    }
    let mut published = 0u32;
    while published < params.messages {
        if publish(&mut sim, &mut rng, true)? {
            published += 1;
        }
        sim.run_for(params.gap)?;
        if sim.network().is_partitioned() && sim.now() >= partition_end {
            sim.heal();
        }
        if published % 64 == 0 {
            progress(
                "broadcast",
                u64::from(published),
                u64::from(params.messages),
            );
        }
    }
    if sim.network().is_partitioned() {
        sim.run_until(partition_end)?;
        sim.heal();
    }
    // Deliveries a few seconds on: the tree's work (and early repairs).
    sim.run_for(Duration::from_secs(3))?;
    let live: Vec<NodeId> = (0..n).filter(|&id| sim.is_up(id)).collect();
    let count_delivered = |t: &Tally| -> u64 {
        (0..t.tracked.len())
            .map(|m| live.iter().filter(|&&id| t.has(m, id)).count() as u64)
            .sum()
    };
    let delivered_before_tail = count_delivered(sim.observer());
    sim.run_for(params.tail)?;

    let t = sim.observer();
    let pairs = (live.len() * t.tracked.len()) as u64;
    let delivered = count_delivered(t);
    let converged = (0..t.tracked.len()).all(|m| {
        let first = t.has(m, live[0]);
        live.iter().all(|&id| t.has(m, id) == first)
    });
    let copies = total(&sim, |g| g.stats().payloads_received) - before.0;
    let tree = total(&sim, |g| g.stats().tree_control_sent) - before.1;
    let repair = total(&sim, |g| g.stats().repair_control_sent) - before.2;
    let repaired = total(&sim, |g| g.stats().repaired) - before.3;
    let grafts = total(&sim, |g| g.stats().grafts) - before.4;
    // Deliveries that needed a received copy (the publisher's own does not).
    let received_deliveries = delivered.saturating_sub(t.tracked.len() as u64);
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let live_n = live.len() as u64;
    let mut hops = t.hops.clone();
    let mut latency = t.latency_ms.clone();
    let mut views: Vec<u32> = sim
        .view()
        .running()
        .map(|(_, h)| h.gossip.active().len() as u32)
        .collect();
    let bytes = total(&sim, |g| g.memory_bytes() as u64);
    let stats = *sim.stats();
    let wall_s = wall.elapsed().as_secs_f64();
    Ok(GossipReport {
        mode: match params.mode {
            BroadcastMode::Plumtree => "plumtree",
            BroadcastMode::Push { .. } => "push",
        },
        nodes: n,
        live_nodes: live_n as u32,
        seed: params.seed,
        messages: params.messages,
        reliability: ratio(delivered, pairs),
        reliability_before_tail: ratio(delivered_before_tail, pairs),
        converged,
        rmr: ratio(copies, received_deliveries) - 1.0,
        control_msgs_per_node: ratio(tree + repair, live_n),
        tree_control_per_node: ratio(tree, live_n),
        repaired_per_node: ratio(repaired, live_n),
        grafts_per_node: ratio(grafts, live_n),
        latency_hops_median: u32::from(percentile(&mut hops, 0.5)),
        latency_hops_max: u32::from(hops.iter().copied().max().unwrap_or(0)),
        latency_ms_p99: percentile(&mut latency, 0.99),
        active_view_median: percentile(&mut views, 0.5),
        bytes_per_node: bytes / live_n.max(1),
        virtual_ms: sim.now().as_nanos() / 1_000_000,
        events: stats.events,
        wall_ms: (wall_s * 1000.0) as u64,
        events_per_sec: stats.events as f64 / wall_s.max(1e-9),
        peak_rss_bytes: peak_rss_bytes().unwrap_or(0),
        digest: sim.digest(),
    })
}

#[cfg(test)]
mod tests;
