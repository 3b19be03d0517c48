//! Reactor configuration.

use std::net::SocketAddr;

use starling_core::node::NodeConfig;
use starling_core::session::{NodeKeys, SessionConfig};

/// Everything a reactor needs to run a node.
#[derive(Clone, Debug)]
pub struct ReactorConfig {
    /// Address to listen on (port 0 for an ephemeral port).
    pub listen: SocketAddr,
    /// Peers to dial at start and keep connected.
    pub bootstrap: Vec<SocketAddr>,
    /// The node's keys.
    pub keys: NodeKeys,
    /// Session policy (network, limits, keep-alive, rate limits).
    pub session: SessionConfig,
    /// Peer management policy.
    pub node: NodeConfig,
    /// Bytes queued for one connection above which the node stops reading from that peer and is
    /// told (backpressure). Default 1 MiB.
    pub high_water: usize,
    /// Queued bytes below which reading resumes. Default 256 KiB.
    pub low_water: usize,
    /// Size of each pooled receive buffer. Default 64 KiB.
    pub chunk_size: usize,
    /// Receive buffers kept in the pool. Default 16.
    pub pool_chunks: usize,
    /// Commands the handle queues before `Handle::command` waits. Default 1024.
    pub command_queue: usize,
}

impl ReactorConfig {
    /// Defaults for a node with `keys` listening on `listen`, on network `network`.
    pub fn new(listen: SocketAddr, keys: NodeKeys, network: &str) -> Self {
        ReactorConfig {
            listen,
            bootstrap: Vec::new(),
            keys,
            session: SessionConfig::new(network),
            node: NodeConfig::default(),
            high_water: 1 << 20,
            low_water: 256 << 10,
            chunk_size: 64 << 10,
            pool_chunks: 16,
            command_queue: 1024,
        }
    }
}
