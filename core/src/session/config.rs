//! Session configuration.

use core::fmt;

use super::payload::{Capabilities, NetworkId};
use crate::detector::DetectorConfig;
use crate::time::Duration;
use crate::wire::{Limits, ProtocolId};

/// The protocol version this build speaks. Sessions require both sides to speak the same one;
/// negotiating a range waits until there is a second version to negotiate.
pub const PROTOCOL_VERSION: u16 = 1;

/// Inbound limits per session, as token buckets: a steady rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Frames per second accepted from the peer, steady state.
    pub frames_per_sec: u64,
    /// Frames accepted in a burst.
    pub frame_burst: u64,
    /// Frame bytes per second accepted from the peer, steady state.
    pub bytes_per_sec: u64,
    /// Frame bytes accepted in a burst.
    pub byte_burst: u64,
}

impl Default for RateLimits {
    /// 10,000 frames and 16 MiB per second, with bursts of 20,000 frames and 32 MiB: above what
    /// one peer of a blockchain node layer sends in steady state (transactions, votes, blocks),
    /// below what would let one peer starve the others. Bulk transfers should raise them.
    fn default() -> Self {
        RateLimits {
            frames_per_sec: 10_000,
            frame_burst: 20_000,
            bytes_per_sec: 16 << 20,
            byte_burst: 32 << 20,
        }
    }
}

/// How sessions behave: what a node offers and what it tolerates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The network this node belongs to; peers of another network are refused.
    pub network_id: NetworkId,
    /// The protocol version spoken (default [`PROTOCOL_VERSION`]).
    pub version: u16,
    /// Protocols this node speaks, announced to the peer.
    pub protocols: Vec<ProtocolId>,
    /// Wire limits; `max_frame_len` is also the largest frame this node accepts, and is
    /// announced so the peer never sends a larger one.
    pub limits: Limits,
    /// Offer LZ4 compression; used only when both sides offer it.
    pub compression: bool,
    /// Frames whose encoding is at least this long are compressed (when negotiated). Small
    /// frames rarely shrink enough to pay for the work.
    pub compress_threshold: usize,
    /// A handshake not finished after this long fails. Default 10 s.
    pub handshake_timeout: Duration,
    /// Keep-alive: heartbeat interval and miss thresholds. A peer declared dead closes the
    /// session.
    pub keepalive: DetectorConfig,
    /// Inbound rate limits.
    pub rate: RateLimits,
    /// Most bytes waiting in the transmit buffer; `send` refuses beyond it (backpressure).
    pub max_queued_bytes: usize,
    /// The port this node accepts connections on, announced in the handshake so peers can hand
    /// out its address. `None` for a node that only dials.
    pub listen_port: Option<u16>,
}

impl SessionConfig {
    /// Defaults for a network called `network_name`.
    pub fn new(network_name: &str) -> Self {
        SessionConfig {
            network_id: NetworkId::from_name(network_name),
            version: PROTOCOL_VERSION,
            protocols: vec![ProtocolId::HEARTBEAT],
            limits: Limits::default(),
            compression: true,
            compress_threshold: 512,
            handshake_timeout: Duration::from_secs(10),
            keepalive: DetectorConfig::default(),
            rate: RateLimits::default(),
            max_queued_bytes: 4 << 20,
            listen_port: None,
        }
    }

    /// What this configuration announces to peers.
    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            protocols: self.protocols.clone(),
            max_frame_len: self.limits.max_frame_len,
            compression: self.compression,
            listen_port: self.listen_port,
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), SessionConfigError> {
        self.limits
            .validate()
            .map_err(|_| SessionConfigError::Limits)?;
        self.keepalive
            .validate()
            .map_err(SessionConfigError::Keepalive)?;
        if self.handshake_timeout == Duration::ZERO {
            return Err(SessionConfigError::ZeroHandshakeTimeout);
        }
        if self.protocols.len() > super::payload::MAX_PROTOCOLS {
            return Err(SessionConfigError::TooManyProtocols(self.protocols.len()));
        }
        let r = &self.rate;
        if r.frame_burst == 0 || r.byte_burst < u64::from(self.limits.max_frame_len) {
            return Err(SessionConfigError::BurstTooSmall);
        }
        Ok(())
    }
}

/// A session configuration that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionConfigError {
    /// The wire limits are inconsistent (see [`Limits::validate`]).
    Limits,
    /// The keep-alive detector's configuration is invalid.
    Keepalive(crate::detector::ConfigError),
    /// A zero handshake timeout would fail every handshake.
    ZeroHandshakeTimeout,
    /// More protocols than a handshake payload can carry.
    TooManyProtocols(usize),
    /// A burst of zero frames, or fewer bytes than one maximal frame, would refuse legal traffic.
    BurstTooSmall,
}

impl fmt::Display for SessionConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionConfigError::Limits => f.write_str("inconsistent wire limits"),
            SessionConfigError::Keepalive(e) => write!(f, "keep-alive: {e}"),
            SessionConfigError::ZeroHandshakeTimeout => {
                f.write_str("handshake timeout must be positive")
            }
            SessionConfigError::TooManyProtocols(n) => {
                write!(
                    f,
                    "{n} protocols announced, at most {}",
                    super::payload::MAX_PROTOCOLS
                )
            }
            SessionConfigError::BurstTooSmall => {
                f.write_str("rate bursts must allow one frame and one maximal frame's bytes")
            }
        }
    }
}

impl std::error::Error for SessionConfigError {}
