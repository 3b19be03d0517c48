//! The QUIC adapter's configuration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use starling_core::identity::Identity;
use starling_core::node::NodeConfig;
use starling_core::session::SessionConfig;

/// Everything a [`QuicNode`](crate::QuicNode) needs.
#[derive(Clone, Debug)]
pub struct QuicConfig {
    /// UDP address to listen on (port 0 for an ephemeral port).
    pub listen: SocketAddr,
    /// Peers to dial at start and keep connected.
    pub bootstrap: Vec<SocketAddr>,
    /// The node's identity; its certificate is made from it.
    pub identity: Identity,
    /// Network, version, frame limits and inbound rate limits, negotiated and enforced as over
    /// Noise. Its keep-alive, compression and output-queue settings do not apply: QUIC keeps
    /// connections alive itself (see `keep_alive`), frames go uncompressed, and queues are
    /// bounded by `high_water`.
    pub session: SessionConfig,
    /// Peer management policy.
    pub node: NodeConfig,
    /// A connection with no packets for this long is closed by QUIC. Default 30 s.
    pub idle_timeout: Duration,
    /// Interval of QUIC keep-alive pings, so that a healthy but quiet connection never reaches
    /// `idle_timeout`. Default 5 s.
    pub keep_alive: Duration,
    /// Bytes queued for one connection above which sends to that peer are refused and the node
    /// told (backpressure). Default 4 MiB.
    pub high_water: usize,
    /// Queued bytes below which sends resume. Default 1 MiB.
    pub low_water: usize,
    /// A connection whose sends stay paused this long (the peer's application stopped
    /// reading, while its QUIC stack still answers keep-alives) is closed. Default 30 s.
    pub stall_timeout: Duration,
    /// Send gossip announcements (`IHave`) as QUIC datagrams when the peer accepts datagrams
    /// and the frame fits; otherwise they go on the gossip stream. Default true.
    pub gossip_datagrams: bool,
    /// Commands the handle queues before `Handle::command` waits. Default 1024.
    pub command_queue: usize,
}

impl QuicConfig {
    /// Defaults for `identity` listening on `listen`, on network `network`.
    pub fn new(listen: SocketAddr, identity: Identity, network: &str) -> Self {
        QuicConfig {
            listen,
            bootstrap: Vec::new(),
            identity,
            session: SessionConfig::new(network),
            node: NodeConfig::default(),
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
            high_water: 4 << 20,
            low_water: 1 << 20,
            stall_timeout: Duration::from_secs(30),
            gossip_datagrams: true,
            command_queue: 1024,
        }
    }
}

impl From<starling_mio::ReactorConfig> for QuicConfig {
    /// The same node over QUIC: its identity, session and node policy, addresses, high-water
    /// mark and command queue carry over; the rest are QUIC's defaults.
    fn from(config: starling_mio::ReactorConfig) -> Self {
        let mut quic = QuicConfig::new(config.listen, config.keys.identity().clone(), "");
        quic.session = config.session;
        quic.node = config.node;
        quic.bootstrap = config.bootstrap;
        quic.high_water = config.high_water.max(quic.low_water);
        quic.command_queue = config.command_queue;
        quic
    }
}

/// The QUIC transport parameters both ends of a Starling connection use. Public so that a
/// baseline (the transport benchmark's raw quinn path) can run with exactly the same ones.
pub fn transport_config(
    idle_timeout: Duration,
    keep_alive: Duration,
) -> Arc<quinn::TransportConfig> {
    let mut transport = quinn::TransportConfig::default();
    // An idle timeout above QUIC's maximum is a configuration error; clamp it rather than fail.
    let idle = quinn::IdleTimeout::try_from(idle_timeout)
        .unwrap_or_else(|_| quinn::IdleTimeout::from(quinn::VarInt::from_u32(u32::MAX)));
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(keep_alive))
        // The hello stream plus one stream per protocol in each direction: a peer cannot make
        // a node hold more than this many streams.
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(MAX_STREAMS))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    Arc::new(transport)
}

/// Most bidirectional streams a peer may have open at once.
pub(crate) const MAX_STREAMS: u32 = 32;
