//! The virtual network: latency, loss, duplication, reordering and partitions.
//!
//! Links are datagram-like: each message is routed independently, so jitter alone can reorder
//! messages on a link, and `reorder` delays a chosen fraction further. Every decision is drawn
//! from the simulation's seeded PRNG, in the order messages are sent, so a run replays exactly.
//! A link's base latency is a pure function of the seed and the (unordered) pair of nodes: links
//! differ from one another yet cost no memory, which is what lets 10^6 nodes fit.

use core::fmt;
use std::collections::HashMap;

use rand::RngCore;
use starling_core::rng::{derive_seed, seeded, MachineRng};
use starling_core::time::{Duration, Instant};

use crate::NodeId;

/// A distribution of delays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Latency {
    /// Always the same delay.
    Constant(Duration),
    /// Uniform between `min` and `max`, inclusive.
    Uniform {
        /// Smallest delay.
        min: Duration,
        /// Largest delay.
        max: Duration,
    },
    /// Exponential with mean `mean`, cut at `max` (a long tail, as on real paths).
    Exponential {
        /// Mean delay.
        mean: Duration,
        /// Cap, so one message cannot be delayed without bound.
        max: Duration,
    },
}

impl Latency {
    /// Maps a uniform random word to a delay from this distribution.
    pub fn sample(&self, word: u64) -> Duration {
        match *self {
            Latency::Constant(d) => d,
            Latency::Uniform { min, max } => {
                let span = max
                    .as_nanos()
                    .saturating_sub(min.as_nanos())
                    .saturating_add(1);
                Duration::from_nanos(min.as_nanos() + word % span)
            }
            Latency::Exponential { mean, max } => {
                // Inverse CDF on (0, 1]; the top 53 bits give a uniform double.
                let u = ((word >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
                let d = -u.ln() * mean.as_nanos() as f64;
                Duration::from_nanos((d as u64).min(max.as_nanos()))
            }
        }
    }

    fn validate(&self, what: &'static str) -> Result<(), NetworkConfigError> {
        match *self {
            Latency::Uniform { min, max } if min > max => {
                Err(NetworkConfigError::InvertedRange(what))
            }
            _ => Ok(()),
        }
    }
}

/// How the virtual network behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Base one-way latency of each link, drawn once per pair of nodes.
    pub link_latency: Latency,
    /// Extra delay drawn per message, on top of the link's base latency.
    pub jitter: Latency,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice (the copy takes its own delay).
    pub duplicate: f64,
    /// Probability that a message is held back by `reorder_delay`, letting later ones pass it.
    pub reorder: f64,
    /// Extra delay of a reordered message.
    pub reorder_delay: Duration,
    /// Deliver each directed link's messages in the order sent, like a TCP connection: a message
    /// never overtakes an earlier one on its link. Byte streams (sessions) need this; it excludes
    /// loss, duplication and reordering, which a stream transport hides.
    pub ordered: bool,
}

impl Default for NetworkConfig {
    /// A wide-area network without faults: 10–100 ms per link plus up to 5 ms of jitter.
    fn default() -> Self {
        NetworkConfig {
            link_latency: Latency::Uniform {
                min: Duration::from_millis(10),
                max: Duration::from_millis(100),
            },
            jitter: Latency::Uniform {
                min: Duration::ZERO,
                max: Duration::from_millis(5),
            },
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(50),
            ordered: false,
        }
    }
}

/// A network configuration the simulator refuses.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum NetworkConfigError {
    /// A probability outside [0, 1] (or NaN).
    BadProbability(&'static str, f64),
    /// A uniform range whose `min` exceeds its `max`.
    InvertedRange(&'static str),
    /// Ordered (stream) links cannot also lose, duplicate or reorder messages.
    OrderedWithFaults,
}

impl fmt::Display for NetworkConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkConfigError::BadProbability(what, p) => {
                write!(f, "{what} must be in [0, 1], got {p}")
            }
            NetworkConfigError::InvertedRange(what) => write!(f, "{what}: min exceeds max"),
            NetworkConfigError::OrderedWithFaults => {
                f.write_str("ordered links cannot also lose, duplicate or reorder messages")
            }
        }
    }
}

impl std::error::Error for NetworkConfigError {}

impl NetworkConfig {
    /// Checks probabilities and ranges.
    pub fn validate(&self) -> Result<(), NetworkConfigError> {
        for (what, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(NetworkConfigError::BadProbability(what, p));
            }
        }
        if self.ordered && (self.loss > 0.0 || self.duplicate > 0.0 || self.reorder > 0.0) {
            return Err(NetworkConfigError::OrderedWithFaults);
        }
        self.link_latency.validate("link_latency")?;
        self.jitter.validate("jitter")
    }
}

/// Why a message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// Lost at random.
    Loss,
    /// Sender and receiver are on different sides of a partition.
    Partition,
}

/// What the network does with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Dropped(Drop),
    /// Delivered at the first instant, and a duplicate at the second if any.
    Deliver(Instant, Option<Instant>, bool),
}

/// A probability as a threshold on a uniform `u64`, so each decision is one integer compare.
#[derive(Clone, Copy, Debug)]
struct Chance(u64);

impl Chance {
    fn new(p: f64) -> Self {
        // p = 1.0 maps to u64::MAX, off by 2^-64 from certainty; `hits` special-cases it.
        Chance((p * u64::MAX as f64) as u64)
    }
    fn hits(self, rng: &mut MachineRng) -> bool {
        match self.0 {
            0 => false,
            u64::MAX => true,
            t => rng.next_u64() < t,
        }
    }
}

/// The network's state: its configuration, its PRNG and the current partition.
pub struct Network {
    config: NetworkConfig,
    link_seed: u64,
    rng: MachineRng,
    loss: Chance,
    duplicate: Chance,
    reorder: Chance,
    /// Partition group of each node; empty when the network is whole.
    groups: Vec<u16>,
    /// Latest arrival scheduled on each directed link, in ordered mode only (so datagram runs
    /// of 10^6 nodes pay nothing for it).
    last_arrival: HashMap<(NodeId, NodeId), Instant>,
}

impl Network {
    pub(crate) fn new(config: NetworkConfig, seed: u64) -> Self {
        Network {
            config,
            link_seed: derive_seed(seed, 0x6c69_6e6b),
            rng: seeded(derive_seed(seed, 0x6e65_7477)),
            loss: Chance::new(config.loss),
            duplicate: Chance::new(config.duplicate),
            reorder: Chance::new(config.reorder),
            groups: Vec::new(),
            last_arrival: HashMap::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Whether `a` and `b` are on the same side of the current partition (always, when whole).
    pub fn can_talk(&self, a: NodeId, b: NodeId) -> bool {
        self.groups.is_empty() || self.groups.get(a as usize) == self.groups.get(b as usize)
    }

    /// Whether a partition is in force.
    pub fn is_partitioned(&self) -> bool {
        !self.groups.is_empty()
    }

    /// The partition group of `node` (0 when whole).
    pub fn group_of(&self, node: NodeId) -> u16 {
        self.groups.get(node as usize).copied().unwrap_or(0)
    }

    pub(crate) fn partition(&mut self, nodes: u32, group_of: impl Fn(NodeId) -> u16) {
        self.groups = (0..nodes).map(group_of).collect();
    }

    pub(crate) fn heal(&mut self) {
        self.groups = Vec::new();
    }

    pub(crate) fn set_loss(&mut self, loss: f64) -> Result<(), NetworkConfigError> {
        let config = NetworkConfig {
            loss,
            ..self.config
        };
        config.validate()?;
        self.config = config;
        self.loss = Chance::new(loss);
        Ok(())
    }

    /// The fixed base latency of the link between `a` and `b`.
    pub fn link_latency(&self, a: NodeId, b: NodeId) -> Duration {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let word = derive_seed(self.link_seed, (u64::from(lo) << 32) | u64::from(hi));
        self.config.link_latency.sample(word)
    }

    /// Decides the fate of a message sent now from `from` to `to`.
    pub(crate) fn route(&mut self, now: Instant, from: NodeId, to: NodeId) -> Route {
        if !self.can_talk(from, to) {
            return Route::Dropped(Drop::Partition);
        }
        if self.loss.hits(&mut self.rng) {
            return Route::Dropped(Drop::Loss);
        }
        let base = self.link_latency(from, to);
        let mut first = now + base + self.config.jitter.sample(self.rng.next_u64());
        let reordered = self.reorder.hits(&mut self.rng);
        if reordered {
            first += self.config.reorder_delay;
        }
        if self.config.ordered {
            let last = self.last_arrival.entry((from, to)).or_insert(Instant::ZERO);
            // Equal times keep send order: the queue breaks ties by insertion.
            first = first.max(*last);
            *last = first;
        }
        let dup = self
            .duplicate
            .hits(&mut self.rng)
            .then(|| now + base + self.config.jitter.sample(self.rng.next_u64()));
        Route::Deliver(first, dup, reordered)
    }
}

#[cfg(test)]
mod tests;
