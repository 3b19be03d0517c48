//! Building a runtime from its [`ReactorConfig`]: the node it hosts and the settings its
//! connections share.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use starling_core::id::PeerId;
use starling_core::node::{Node, NodeConfig};
use starling_core::time::Instant;

use crate::clock::Clock;
use crate::conn_set::ConnSetup;
use crate::ReactorConfig;

/// Splits `config` into the node and the connections' settings, for a runtime listening on
/// `listen_port` (told to peers in the handshake unless the configuration says otherwise).
pub(crate) fn split(
    config: ReactorConfig,
    listen_port: u16,
    clock: Clock,
) -> io::Result<(Node, ConnSetup)> {
    let keys = Arc::new(config.keys);
    let node = new_node(config.node, keys.identity().peer_id(), config.bootstrap)?;
    let mut session = config.session;
    session.listen_port.get_or_insert(listen_port);
    let setup = ConnSetup {
        session: Arc::new(session),
        keys,
        high_water: config.high_water,
        low_water: config.low_water,
        chunk_size: config.chunk_size,
        pool_chunks: config.pool_chunks,
        clock,
    };
    Ok((node, setup))
}

/// The node a runtime hosts: seeded from the OS, its wall clock set (gossip stamps messages
/// with it), its bootstrap addresses in the book. Shared by the mio reactors and the QUIC
/// adapter.
pub fn new_node(config: NodeConfig, local: PeerId, bootstrap: Vec<SocketAddr>) -> io::Result<Node> {
    let mut node = Node::new(config, local, os_seed_u64()?, Instant::ZERO);
    // Gossip stamps messages with wall-clock time (the reactor's clock starts at zero now).
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    node.set_wall_clock(
        Instant::ZERO,
        starling_core::time::Duration::from_nanos(u64::try_from(unix.as_nanos()).unwrap_or(0)),
    );
    for addr in bootstrap {
        // A bootstrap address that does not fit the address book is a configuration error.
        node.add_address(Instant::ZERO, addr, None, true)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    }
    Ok(node)
}

fn os_seed_u64() -> io::Result<u64> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(u64::from_le_bytes(b))
}
