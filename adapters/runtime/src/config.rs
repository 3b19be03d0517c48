//! [`RuntimeConfig`]: the settings every runtime takes, and [`build_node`], which turns them
//! into a node the same way for every transport.

use std::io;
use std::net::SocketAddr;

use starling_core::node::{Node, NodeConfig};
use starling_core::session::payload::MAX_PROTOCOLS;
use starling_core::session::{NodeKeys, SessionConfig};
use starling_core::time::{Duration, Instant};
use starling_core::wire::ProtocolId;

use crate::hosting::Hosting;

/// What any runtime needs to run a node. The TCP reactor's and the QUIC node's configurations
/// each hold one and add their transport's own settings.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Address to listen on (port 0 for an ephemeral port).
    pub listen: SocketAddr,
    /// Peers to dial at start and keep connected.
    pub bootstrap: Vec<SocketAddr>,
    /// The node's keys: its identity (and, for Noise sessions, its static key).
    pub keys: NodeKeys,
    /// Session policy (network, version, limits, keep-alive, rate limits).
    pub session: SessionConfig,
    /// Peer management policy.
    pub node: NodeConfig,
    /// The protocols the node hosts.
    pub protocols: Hosting,
    /// Bytes queued for one connection above which sends to that peer are refused and the node
    /// told (backpressure). Default 1 MiB.
    pub high_water: usize,
    /// Queued bytes below which sends resume. Default 256 KiB.
    pub low_water: usize,
    /// Commands the handle queues before `Handle::command` waits. Default 1024.
    pub command_queue: usize,
}

impl RuntimeConfig {
    /// Defaults for a node with `keys` listening on `listen`, on network `network`, hosting no
    /// protocol.
    pub fn new(listen: SocketAddr, keys: NodeKeys, network: &str) -> Self {
        RuntimeConfig {
            listen,
            bootstrap: Vec::new(),
            keys,
            session: SessionConfig::new(network),
            node: NodeConfig::default(),
            protocols: Hosting::default(),
            high_water: 1 << 20,
            low_water: 256 << 10,
            command_queue: 1024,
        }
    }
}

/// Builds the node a runtime drives: seeded from the operating system, on a clock that starts
/// at zero now with the wall clock set (for wall-clock protocols), hosting `config.protocols`,
/// with the bootstrap addresses to dial. Errors name the protocol or address at fault.
pub fn build_node(config: &RuntimeConfig) -> io::Result<Node> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    config
        .node
        .validate()
        .map_err(|e| invalid(format!("node configuration: {e}")))?;
    let local = config.keys.identity().peer_id();
    let mut node = Node::new(config.node.clone(), local, os_seed()?, Instant::ZERO);
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    node.set_wall_clock(
        Instant::ZERO,
        Duration::from_nanos(u64::try_from(unix.as_nanos()).unwrap_or(0)),
    );
    config
        .protocols
        .apply(&mut node, Instant::ZERO)
        .map_err(|e| invalid(e.to_string()))?;
    for &addr in &config.bootstrap {
        node.add_address(Instant::ZERO, addr, None, true)
            .map_err(|e| invalid(format!("bootstrap address {addr}: {e}")))?;
    }
    Ok(node)
}

/// The protocols a handshake announces for `node`: those it hosts, those it delivers to the
/// application, and the session's own keep-alive if the transport runs one (`keepalive`).
/// Sorted, without duplicates, at most what a handshake carries.
pub fn announced_protocols(node: &Node, keepalive: bool) -> Vec<ProtocolId> {
    let mut protocols = node.hosted_protocols();
    protocols.extend(node.config().protocols.iter().copied());
    if keepalive {
        protocols.push(ProtocolId::HEARTBEAT);
    }
    protocols.sort_unstable();
    protocols.dedup();
    protocols.truncate(MAX_PROTOCOLS);
    protocols
}

fn os_seed() -> io::Result<u64> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(u64::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HostingError;
    use starling_core::dht::DhtConfig;
    use starling_core::gossip::GossipConfig;
    use starling_core::id::PeerId;
    use starling_core::node::HostError;

    fn config() -> RuntimeConfig {
        let mut c = RuntimeConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            NodeKeys::from_test_seed(1),
            "t",
        );
        c.node.protocols.clear();
        c
    }

    #[test]
    fn a_node_announces_what_it_hosts_and_delivers() {
        let mut c = config();
        c.protocols
            .gossip(GossipConfig::default())
            .dht(DhtConfig::default());
        c.node.protocols.push(ProtocolId(16));
        let node = build_node(&c).unwrap();
        assert_eq!(
            announced_protocols(&node, true),
            [
                ProtocolId::HEARTBEAT,
                ProtocolId::DHT,
                ProtocolId::GOSSIP,
                ProtocolId(16)
            ]
        );
        assert_eq!(
            announced_protocols(&node, false),
            [ProtocolId::DHT, ProtocolId::GOSSIP, ProtocolId(16)]
        );
    }

    #[test]
    fn a_bad_protocol_configuration_or_a_second_dht_is_refused_with_its_name() {
        let mut c = config();
        let bad = DhtConfig {
            alpha: 0,
            ..DhtConfig::default()
        };
        c.protocols.dht(bad);
        let e = build_node(&c).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(
            e.to_string().starts_with("invalid dht configuration"),
            "{e}"
        );

        let mut twice = crate::Hosting::default();
        twice.dht(DhtConfig::default()).dht(DhtConfig::default());
        let mut node = Node::new(
            NodeConfig::default(),
            PeerId::from_bytes([1; 32]),
            1,
            Instant::ZERO,
        );
        assert_eq!(
            twice.apply(&mut node, Instant::ZERO),
            Err(HostingError::Host(HostError::ProtocolTaken(
                ProtocolId::DHT
            )))
        );
    }
}
