//! Reactor configuration.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};

use starling_core::session::NodeKeys;
use starling_runtime::RuntimeConfig;

/// Everything a reactor needs to run a node: the [`RuntimeConfig`] every runtime takes (its
/// fields read and write through this value: `config.node.max_inbound`, `config.protocols`)
/// plus the reactor's receive buffers.
#[derive(Clone, Debug)]
pub struct ReactorConfig {
    /// Addresses, keys, session and node policy, hosted protocols, queue bounds.
    pub runtime: RuntimeConfig,
    /// Size of each pooled receive buffer. Default 64 KiB.
    pub chunk_size: usize,
    /// Receive buffers kept in the pool. Default 16.
    pub pool_chunks: usize,
}

impl ReactorConfig {
    /// Defaults for a node with `keys` listening on `listen`, on network `network`.
    pub fn new(listen: SocketAddr, keys: NodeKeys, network: &str) -> Self {
        ReactorConfig::from(RuntimeConfig::new(listen, keys, network))
    }
}

impl From<RuntimeConfig> for ReactorConfig {
    /// The reactor with its default buffers.
    fn from(runtime: RuntimeConfig) -> Self {
        ReactorConfig {
            runtime,
            chunk_size: 64 << 10,
            pool_chunks: 16,
        }
    }
}

impl Deref for ReactorConfig {
    type Target = RuntimeConfig;
    fn deref(&self) -> &RuntimeConfig {
        &self.runtime
    }
}

impl DerefMut for ReactorConfig {
    fn deref_mut(&mut self) -> &mut RuntimeConfig {
        &mut self.runtime
    }
}
