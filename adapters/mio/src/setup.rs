//! Building a runtime from its [`ReactorConfig`]: the node it hosts and the settings its
//! connections share.

use std::io;
use std::sync::Arc;

use starling_core::node::Node;
use starling_runtime::{announced_protocols, build_node};

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
    let node = build_node(&config)?;
    let keys = Arc::new(config.runtime.keys);
    let mut session = config.runtime.session;
    session.listen_port.get_or_insert(listen_port);
    session.protocols = announced_protocols(&node, true);
    let setup = ConnSetup {
        session: Arc::new(session),
        keys,
        high_water: config.runtime.high_water,
        low_water: config.runtime.low_water,
        chunk_size: config.chunk_size,
        pool_chunks: config.pool_chunks,
        clock,
    };
    Ok((node, setup))
}
