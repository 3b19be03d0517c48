//! Ready-made scenarios: a topology, a fault schedule, counters, and a report.

pub mod dht;
pub mod gossip;
pub mod handshake;
pub mod liveness;
pub mod raft;
