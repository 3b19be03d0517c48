//! The QUIC adapter's configuration.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use starling_core::session::NodeKeys;
use starling_runtime::RuntimeConfig;

/// Everything a [`QuicNode`](crate::QuicNode) needs: the [`RuntimeConfig`] every runtime takes
/// (its fields read and write through this value: `config.node`, `config.protocols`) plus
/// QUIC's own settings.
///
/// Of the runtime's settings, the session's network, version, frame limits and inbound rate
/// limits are negotiated and enforced as over Noise; its keep-alive, compression and
/// output-queue settings do not apply (QUIC keeps connections alive itself, see `keep_alive`,
/// frames go uncompressed, and queues are bounded by `high_water`); of the keys only the
/// identity is used (its certificate is made from it).
#[derive(Clone, Debug)]
pub struct QuicConfig {
    /// Addresses, keys, session and node policy, hosted protocols, queue bounds.
    pub runtime: RuntimeConfig,
    /// A connection with no packets for this long is closed by QUIC. Default 30 s.
    pub idle_timeout: Duration,
    /// Interval of QUIC keep-alive pings, so that a healthy but quiet connection never reaches
    /// `idle_timeout`. Default 5 s.
    pub keep_alive: Duration,
    /// A connection whose sends stay paused this long (the peer's application stopped
    /// reading, while its QUIC stack still answers keep-alives) is closed. Default 30 s.
    pub stall_timeout: Duration,
    /// Send gossip announcements (`IHave`) as QUIC datagrams when the peer accepts datagrams
    /// and the frame fits; otherwise they go on the gossip stream. Default true.
    pub gossip_datagrams: bool,
}

impl QuicConfig {
    /// Defaults for a node with `keys` listening on UDP `listen`, on network `network`; queues
    /// hold 4 MiB per connection before backpressure (1 MiB to resume).
    pub fn new(listen: SocketAddr, keys: NodeKeys, network: &str) -> Self {
        let mut runtime = RuntimeConfig::new(listen, keys, network);
        runtime.high_water = 4 << 20;
        runtime.low_water = 1 << 20;
        QuicConfig::from(runtime)
    }
}

impl From<RuntimeConfig> for QuicConfig {
    /// The same node over QUIC: QUIC's own settings take their defaults. A high-water mark
    /// below the low-water mark is raised to it.
    fn from(mut runtime: RuntimeConfig) -> Self {
        runtime.high_water = runtime.high_water.max(runtime.low_water);
        QuicConfig {
            runtime,
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(30),
            gossip_datagrams: true,
        }
    }
}

impl Deref for QuicConfig {
    type Target = RuntimeConfig;
    fn deref(&self) -> &RuntimeConfig {
        &self.runtime
    }
}

impl DerefMut for QuicConfig {
    fn deref_mut(&mut self) -> &mut RuntimeConfig {
        &mut self.runtime
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
