//! Kademlia at scale: a network built by real joins, then lookups, puts and gets checked against
//! a brute-force oracle.
//!
//! Node 0 starts alone; nodes 1..N join one after another, each bootstrapping through one
//! random node that joined before it (a self-lookup, as any node joins). After a settling
//! period, `churn` of the nodes crash without warning. Then `lookups` lookups for random keys
//! start from random live nodes, and `lookups / 10` records are put and later fetched by other
//! random live nodes. A lookup succeeds when its result is exactly the k live nodes closest to
//! the target; the oracle finds those in a sorted array of the live keys.

use std::collections::HashMap;

use bytes::Bytes;
use rand::Rng;
use starling_core::dht::{Contact, Dht, DhtConfig, DhtEvent, DhtMessage, Record, Subnet};
use starling_core::id::{Distance, Key, PeerId};
use starling_core::machine::{Machine, Output};
use starling_core::rng::{derive_seed, seeded};
use starling_core::time::{Duration, Instant};

use crate::{peak_rss_bytes, NetworkConfig, NodeId, Observer, SimConfig, Simulation, View};

/// A simulated node as a DHT contact: its 4-byte handle. The key is derived from the handle by
/// a fixed mixing function, as a real node's id is derived from its public key; storing only the
/// handle keeps a million routing tables in memory.
///
/// Only the key's first 64 bits are random; the rest are zero. That changes nothing the DHT
/// can observe: with at most a few million nodes, no two share their first 40 bits (the
/// chance is about n² / 2^41), so every XOR comparison between nodes, or between nodes and a
/// random target, is decided within the first 64 bits, exactly as with 256 random bits. It
/// makes deriving a key (done a hundred times per message) one hash instead of four.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SimContact(pub NodeId);

impl Contact for SimContact {
    fn key(&self) -> Key {
        sim_key(self.0)
    }
    /// Straight from the key's one random word, without building the key: this runs for every
    /// contact of every message.
    #[inline]
    fn distance_to(&self, target: &Key) -> Distance {
        let t = target.words();
        Distance::from_words([sim_key_word(self.0) ^ t[0], t[1], t[2], t[3]])
    }
    fn subnet(&self) -> Option<Subnet> {
        // Spread nodes over 2^24 /24-blocks, so diversity limits apply as on the internet.
        Some(Subnet(
            derive_seed(0x0005_abe7, u64::from(self.0)) & 0xff_ffff,
        ))
    }
}

/// The key of simulated node `id` (see [`SimContact`]).
pub fn sim_key(id: NodeId) -> Key {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&sim_key_word(id).to_be_bytes());
    Key::from_bytes(bytes)
}

/// The first (and only random) 64 bits of [`sim_key`].
#[inline]
fn sim_key_word(id: NodeId) -> u64 {
    derive_seed(u64::from(id), 0x006b_6579)
}

/// A [`Dht`] addressed by [`NodeId`], as the simulator runs it.
pub struct DhtHost {
    /// The node's DHT.
    pub dht: Dht<SimContact>,
}

impl Machine for DhtHost {
    type Peer = NodeId;
    type Message = DhtMessage<SimContact>;
    type Event = DhtEvent<SimContact>;

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: Self::Message) {
        self.dht.handle_message(now, SimContact(from), msg);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.dht.handle_timeout(now);
    }
    fn poll_output(&mut self) -> Option<Output<NodeId, Self::Message, Self::Event>> {
        Some(match self.dht.poll_output()? {
            Output::Send { to, msg } => Output::Send { to: to.0, msg },
            Output::Event(e) => Output::Event(e),
        })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.dht.poll_timeout()
    }
}

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct DhtParams {
    /// Number of nodes.
    pub nodes: u32,
    /// Lookups for random keys; a tenth as many put/get pairs follow.
    pub lookups: u32,
    /// Fraction of nodes crashed after the network formed, before the lookups.
    pub churn: f64,
    /// The seed of the run.
    pub seed: u64,
    /// Virtual time between two joins.
    pub join_gap: Duration,
    /// Virtual time between two lookups (and between two puts, two gets).
    pub op_gap: Duration,
    /// The network model.
    pub network: NetworkConfig,
    /// The DHT configuration of every node.
    pub dht: DhtConfig,
}

impl DhtParams {
    /// Defaults: joins 2 ms apart, operations 1 ms apart, a fault-free WAN, default DHT.
    pub fn new(nodes: u32, lookups: u32, seed: u64) -> Self {
        DhtParams {
            nodes,
            lookups,
            churn: 0.0,
            seed,
            join_gap: Duration::from_millis(2),
            op_gap: Duration::from_millis(1),
            network: NetworkConfig::default(),
            dht: DhtConfig::default(),
        }
    }
}

/// The outcome, with the fields of `starling sim dht --json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DhtReport {
    /// Number of nodes.
    pub nodes: u32,
    /// Nodes alive during the lookups.
    pub live_nodes: u32,
    /// The seed.
    pub seed: u64,
    /// Lookups started and finished.
    pub lookups: u64,
    /// Fraction of lookups whose result is exactly the k live nodes closest to the target.
    pub success: f64,
    /// Gets started and finished.
    pub gets: u64,
    /// Fraction of gets that returned the value put.
    pub get_success: f64,
    /// Median over lookups of the discovery depth of the closest node found.
    pub hops_median: u32,
    /// 99th percentile of the same.
    pub hops_p99: u32,
    /// Median over lookups of the longest chain of dependent queries.
    pub rounds_median: u32,
    /// Requests sent per lookup, on average.
    pub msgs_per_lookup: f64,
    /// Average nodes that accepted each put.
    pub stored_per_put: f64,
    /// Average routing-table bytes per live node.
    pub bytes_per_node: u64,
    /// Average routing-table contacts per live node.
    pub contacts_per_node: f64,
    /// Requests sent per live node over the whole run (joins, refreshes, lookups, stores, pings).
    pub requests_per_node: f64,
    /// Of those, ping-before-evict pings.
    pub eviction_pings_per_node: f64,
    /// Disjoint paths per lookup.
    pub disjoint: usize,
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

/// The k live nodes closest to any key, from the sorted live keys.
struct Oracle {
    sorted: Vec<(Key, NodeId)>,
    k: usize,
}

impl Oracle {
    fn new(live: impl Iterator<Item = NodeId>, k: usize) -> Self {
        let mut sorted: Vec<(Key, NodeId)> = live.map(|id| (sim_key(id), id)).collect();
        sorted.sort_unstable();
        Oracle { sorted, k }
    }

    /// The k live nodes closest to `target` other than `asker` (a lookup never returns the node
    /// that runs it).
    ///
    /// Keys sharing a prefix with the target form a contiguous range of the sorted array, and
    /// every key in the range of a longer shared prefix is closer than any key outside it. So
    /// the k + 1 closest lie in the narrowest prefix range holding at least k + 1 keys.
    fn closest(&self, target: &Key, asker: NodeId) -> Vec<NodeId> {
        let want = self.k + 1;
        let t = target.as_bytes();
        let range = |bits: usize| {
            let (mut lo, mut hi) = (*t, *t);
            for i in bits..256 {
                let (byte, bit) = (i / 8, 7 - (i % 8));
                lo[byte] &= !(1 << bit);
                hi[byte] |= 1 << bit;
            }
            let (lo, hi) = (Key::from_bytes(lo), Key::from_bytes(hi));
            let start = self.sorted.partition_point(|(key, _)| *key < lo);
            let end = self.sorted.partition_point(|(key, _)| *key <= hi);
            start..end
        };
        let (mut short, mut long) = (0usize, 256usize);
        // Invariant: range(short) holds >= k keys (or everything); find the longest such prefix.
        while long - short > 1 {
            let mid = (short + long) / 2;
            if range(mid).len() >= want {
                short = mid;
            } else {
                long = mid;
            }
        }
        let mut candidates: Vec<(starling_core::id::Distance, NodeId)> = self.sorted[range(short)]
            .iter()
            .map(|(key, id)| (key.distance(target), *id))
            .collect();
        candidates.sort_unstable();
        candidates
            .into_iter()
            .map(|(_, id)| id)
            .filter(|&id| id != asker)
            .take(self.k)
            .collect()
    }
}

/// Tallies results as the nodes report them.
#[derive(Default)]
struct Tally {
    oracle: Option<Oracle>,
    expected: HashMap<Key, Bytes>,
    lookups: u64,
    correct: u64,
    hops: Vec<u8>,
    rounds: Vec<u8>,
    messages: u64,
    puts: u64,
    stored: u64,
    gets: u64,
    got: u64,
    bootstrapped: u64,
}

impl Observer<DhtHost> for Tally {
    fn on_event(
        &mut self,
        _view: &View<'_, DhtHost>,
        node: NodeId,
        event: &DhtEvent<SimContact>,
    ) -> Result<(), String> {
        match event {
            DhtEvent::LookupDone {
                target,
                closest,
                stats,
                ..
            } => {
                let Some(oracle) = &self.oracle else {
                    return Ok(());
                };
                self.lookups += 1;
                let truth = oracle.closest(target, node);
                if closest.iter().map(|c| c.0).eq(truth.iter().copied()) {
                    self.correct += 1;
                }
                self.hops.push(stats.hops);
                self.rounds.push(stats.rounds);
                self.messages += u64::from(stats.messages);
            }
            DhtEvent::PutDone { stored, .. } => {
                self.puts += 1;
                self.stored += *stored as u64;
            }
            DhtEvent::GetDone { key, record, .. } => {
                self.gets += 1;
                let want = self.expected.get(key);
                if want.is_some() && record.as_ref().map(|r| &r.value) == want {
                    self.got += 1;
                }
            }
            DhtEvent::Bootstrapped { .. } => self.bootstrapped += 1,
            DhtEvent::Misbehaved { peer, reason } => {
                return Err(format!(
                    "honest node {peer:?} reported as misbehaving: {reason}"
                ));
            }
        }
        Ok(())
    }
}

/// Why the scenario could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum DhtScenarioError {
    /// Fewer than 2 nodes, or churn outside [0, 1).
    BadParams(String),
    /// The DHT configuration is invalid.
    Config(starling_core::dht::DhtConfigError),
    /// The network configuration is invalid.
    Network(crate::NetworkConfigError),
    /// An observer check failed.
    Violation(crate::Violation),
}

impl std::fmt::Display for DhtScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DhtScenarioError::BadParams(s) => f.write_str(s),
            DhtScenarioError::Config(e) => write!(f, "dht config: {e}"),
            DhtScenarioError::Network(e) => write!(f, "network: {e}"),
            DhtScenarioError::Violation(v) => v.fmt(f),
        }
    }
}

impl std::error::Error for DhtScenarioError {}

impl From<crate::Violation> for DhtScenarioError {
    fn from(v: crate::Violation) -> Self {
        DhtScenarioError::Violation(v)
    }
}

fn percentile(sorted: &[u8], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    u32::from(sorted[i])
}

/// Runs the scenario. `progress(phase, done, total)` reports each phase's advance.
pub fn run(
    params: &DhtParams,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<DhtReport, DhtScenarioError> {
    if params.nodes < 2 {
        return Err(DhtScenarioError::BadParams(format!(
            "need at least 2 nodes, got {}",
            params.nodes
        )));
    }
    if !(0.0..1.0).contains(&params.churn) {
        return Err(DhtScenarioError::BadParams(format!(
            "churn must be in [0, 1), got {}",
            params.churn
        )));
    }
    params.dht.validate().map_err(DhtScenarioError::Config)?;
    let wall = std::time::Instant::now();
    let config = params.dht;
    let factory = move |id: NodeId, seed: u64, now: Instant| DhtHost {
        dht: Dht::new(config, sim_key(id), seed, now).expect("validated above"),
    };
    let sim_config = SimConfig {
        seed: params.seed,
        network: params.network,
    };
    let mut sim = Simulation::new(sim_config, params.nodes, factory, Tally::default())
        .map_err(DhtScenarioError::Network)?;
    let mut rng = seeded(derive_seed(params.seed, 0xd47));
    let n = params.nodes;

    // Joins: node i bootstraps through a random node joined before it.
    for i in 1..n {
        let at = Instant::ZERO + params.join_gap.saturating_mul(u64::from(i));
        sim.run_until(at)?;
        let seed = SimContact(rng.random_range(0..i));
        sim.command(i, |h, now| h.dht.bootstrap(now, &[seed]).ok())?;
        if i % 4096 == 0 {
            progress("join", u64::from(i), u64::from(n));
        }
    }
    sim.run_for(Duration::from_secs(10))?;

    // Churn: crash a random fraction at once.
    let crashes = (f64::from(n) * params.churn).round() as u32;
    let mut order: Vec<NodeId> = (0..n).collect();
    for i in 0..crashes as usize {
        let j = rng.random_range(i..order.len());
        order.swap(i, j);
    }
    for &id in &order[..crashes as usize] {
        sim.crash(id);
    }
    let live: Vec<NodeId> = (0..n).filter(|&id| sim.is_up(id)).collect();
    sim.observer_mut().oracle = Some(Oracle::new(live.iter().copied(), config.routing.k));

    // Lookups for random keys from random live nodes.
    let random_key = |rng: &mut starling_core::rng::MachineRng| {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes);
        Key::from_bytes(bytes)
    };
    for i in 0..params.lookups {
        let from = live[rng.random_range(0..live.len())];
        let target = random_key(&mut rng);
        sim.command(from, |h, now| h.dht.find_node(now, target).ok())?;
        sim.run_for(params.op_gap)?;
        if i % 1024 == 0 {
            progress("lookup", u64::from(i), u64::from(params.lookups));
        }
    }
    sim.run_for(Duration::from_secs(30))?;

    // Puts, then gets of the same keys from other nodes.
    let pairs = (params.lookups / 10).max(1);
    let mut keys = Vec::with_capacity(pairs as usize);
    for _ in 0..pairs {
        let from = live[rng.random_range(0..live.len())];
        let key = random_key(&mut rng);
        let value = Bytes::copy_from_slice(&random_key(&mut rng).as_bytes()[..]);
        sim.observer_mut().expected.insert(key, value.clone());
        let record = Record {
            key,
            value,
            publisher: PeerId::from_bytes(*sim_key(from).as_bytes()),
            ttl_secs: 3600,
        };
        sim.command(from, |h, now| h.dht.put(now, record).ok())?;
        keys.push(key);
        sim.run_for(params.op_gap)?;
    }
    sim.run_for(Duration::from_secs(30))?;
    for (i, key) in keys.iter().enumerate() {
        let from = live[rng.random_range(0..live.len())];
        sim.command(from, |h, now| h.dht.get(now, *key).ok())?;
        sim.run_for(params.op_gap)?;
        if i % 1024 == 0 {
            progress("get", i as u64, u64::from(pairs));
        }
    }
    sim.run_for(Duration::from_secs(30))?;

    let (mut bytes, mut contacts, mut requests, mut pings) = (0u64, 0u64, 0u64, 0u64);
    for &id in &live {
        if let Some(h) = sim.node(id) {
            bytes += h.dht.routing_bytes() as u64;
            contacts += h.dht.table().len() as u64;
            requests += h.dht.stats().requests_sent;
            pings += h.dht.stats().eviction_pings;
        }
    }
    let stats = *sim.stats();
    let t = sim.observer();
    let mut hops = t.hops.clone();
    hops.sort_unstable();
    let mut rounds = t.rounds.clone();
    rounds.sort_unstable();
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let wall_s = wall.elapsed().as_secs_f64();
    Ok(DhtReport {
        nodes: n,
        live_nodes: live.len() as u32,
        seed: params.seed,
        lookups: t.lookups,
        success: ratio(t.correct, u64::from(params.lookups)),
        gets: t.gets,
        get_success: ratio(t.got, u64::from(pairs)),
        hops_median: percentile(&hops, 0.5),
        hops_p99: percentile(&hops, 0.99),
        rounds_median: percentile(&rounds, 0.5),
        msgs_per_lookup: ratio(t.messages, t.lookups),
        stored_per_put: ratio(t.stored, t.puts),
        bytes_per_node: bytes / live.len().max(1) as u64,
        contacts_per_node: ratio(contacts, live.len() as u64),
        requests_per_node: ratio(requests, live.len() as u64),
        eviction_pings_per_node: ratio(pings, live.len() as u64),
        disjoint: config.disjoint_paths,
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
