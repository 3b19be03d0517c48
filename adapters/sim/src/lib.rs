//! # starling-sim
//!
//! A deterministic discrete-event simulator for Starling's state machines. It runs any number of
//! instances of a [`Machine`](starling_core::machine::Machine) on a virtual network, in virtual
//! time, and replays a run exactly from one `u64` seed.
//!
//! - **Loop**: a binary heap of pending deliveries and timers ordered by (time, insertion order).
//!   Each step feeds one input to one machine, drains its outputs, re-arms its timer from
//!   `poll_timeout` and routes what it sent.
//! - **Network** ([`NetworkConfig`]): per-link base latency from a distribution, per-message
//!   jitter, loss, duplication, reordering, and partitions into groups that can be healed.
//! - **Faults**: [`Simulation::crash`] drops a node's state without warning,
//!   [`Simulation::restart`] builds it anew from the factory.
//! - **Checks**: an [`Observer`] sees every protocol event and can check invariants over all
//!   nodes; a failure is a [`Violation`] that prints the seed to replay.
//! - **Fingerprint**: [`Simulation::digest`] hashes the whole trace (every delivery, timer,
//!   protocol event and fault) so two runs compare in one line.
//!
//! ## Scale
//! Designed for 10^6 nodes in 24 GiB: per node the simulator keeps the machine plus 32 bytes
//! (timer, incarnation), and 2 bytes while partitioned; per message in flight, one queue entry of
//! a few dozen bytes. Link latencies are computed from a hash, not stored. Machines are named by
//! `u32` handles ([`NodeId`]) so their own tables stay compact.
//!
//! ## Not modelled (yet)
//! Bandwidth and queueing delay, ordered byte streams (TCP), and Byzantine behaviours: those
//! arrive with the protocols that need them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod linearizability;
mod network;
mod node_host;
mod observer;
mod queue;
pub mod scenarios;
pub mod session_host;
mod simulation;
mod trace;

pub use network::{Drop, Latency, Network, NetworkConfig, NetworkConfigError};
pub use node_host::{LinkMessage, NodeHost};
pub use observer::{Observer, View, Violation};
pub use simulation::{Factory, SimConfig, SimStats, Simulation};
pub use trace::TraceHasher;

/// How the simulator names a node: its index, `0..N`.
pub type NodeId = u32;

/// Peak resident memory of this process (`VmHWM` from `/proc/self/status`), in bytes, where the
/// platform reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
