//! Node configuration: connection limits, timeouts, dial backoff, the address-book bound and the
//! protocols delivered to the application.

use core::fmt;
use core::num::NonZeroU32;

use crate::time::Duration;
use crate::wire::ProtocolId;

/// How many connections a node keeps, how long it waits, and how it redials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// Most inbound connections, handshaking and established together. Checked when a TCP
    /// connection is accepted, before any handshake work. Default 64.
    pub max_inbound: usize,
    /// Most outbound connections: dials requested, handshaking and established together. Checked
    /// before a dial is requested. Default 32.
    pub max_outbound: usize,
    /// Most connections (inbound, outbound and dials under way) to or from one IP address, so a
    /// single host cannot take every slot. Default 4.
    pub max_per_ip: usize,
    /// An established connection on which no frame went either way for this long is closed.
    /// Session heartbeats do not count: the node never sees them. Default 5 min.
    pub idle_timeout: Duration,
    /// A connection (or a dial) that is not established this long after it was accepted (or
    /// requested) is given up. A backstop behind the session's own handshake timeout (10 s by
    /// default), so it must cover a TCP connect as well. Default 20 s.
    pub handshake_timeout: Duration,
    /// The wait before the first redial of an address. Doubles with each failed attempt.
    /// Default 1 s.
    pub dial_backoff_initial: Duration,
    /// The longest wait between two dials of one address (before jitter). Default 60 s.
    pub dial_backoff_max: Duration,
    /// Each backoff is moved by a random amount of up to this percentage either way, drawn from
    /// the node's seeded PRNG, so nodes restarted together do not redial in lockstep. Below 100.
    /// Default 20.
    pub dial_jitter_percent: u8,
    /// A non-persistent address is dropped from the address book after this many failed dials in
    /// a row. Persistent addresses are retried for ever. Default 5.
    pub max_dial_attempts: NonZeroU32,
    /// Most addresses in the address book. When it is full a new non-persistent address is
    /// refused; a new persistent one evicts a non-persistent address that is not being dialled,
    /// or is refused if there is none. Default 4096.
    pub max_known_addresses: usize,
    /// Protocol ids whose frames are delivered to the application as
    /// [`super::NodeEvent::Frame`]; frames of other ids are dropped and counted. Default: the
    /// Starling protocols above the session (DHT, gossip, Raft, PBFT).
    pub protocols: Vec<ProtocolId>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            max_inbound: 64,
            max_outbound: 32,
            max_per_ip: 4,
            idle_timeout: Duration::from_secs(300),
            handshake_timeout: Duration::from_secs(20),
            dial_backoff_initial: Duration::from_secs(1),
            dial_backoff_max: Duration::from_secs(60),
            dial_jitter_percent: 20,
            max_dial_attempts: NonZeroU32::new(5).expect("5 is not zero"),
            max_known_addresses: 4096,
            protocols: vec![
                ProtocolId::DHT,
                ProtocolId::GOSSIP,
                ProtocolId::RAFT,
                ProtocolId::PBFT,
            ],
        }
    }
}

/// A configuration the node cannot run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeConfigError {
    /// `max_inbound` and `max_outbound` are both zero: no connection could ever exist.
    NoConnections,
    /// `max_per_ip` is zero: every connection would be refused.
    ZeroPerIp,
    /// `idle_timeout` is zero: every connection would be closed at once.
    ZeroIdleTimeout,
    /// `handshake_timeout` is zero: every dial and handshake would time out at once.
    ZeroHandshakeTimeout,
    /// `dial_backoff_initial` is zero: failed dials would be retried in a busy loop.
    ZeroBackoff,
    /// `dial_backoff_max` is below `dial_backoff_initial`.
    BackoffMaxBelowInitial,
    /// `dial_jitter_percent` is 100 or more: a backoff could shrink to nothing.
    JitterTooLarge(u8),
    /// `max_known_addresses` is zero: no address could be dialled.
    NoAddresses,
}

impl fmt::Display for NodeConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeConfigError::NoConnections => {
                f.write_str("max_inbound and max_outbound cannot both be zero")
            }
            NodeConfigError::ZeroPerIp => f.write_str("max_per_ip must be at least 1"),
            NodeConfigError::ZeroIdleTimeout => f.write_str("idle_timeout must be positive"),
            NodeConfigError::ZeroHandshakeTimeout => {
                f.write_str("handshake_timeout must be positive")
            }
            NodeConfigError::ZeroBackoff => f.write_str("dial_backoff_initial must be positive"),
            NodeConfigError::BackoffMaxBelowInitial => {
                f.write_str("dial_backoff_max must be at least dial_backoff_initial")
            }
            NodeConfigError::JitterTooLarge(p) => {
                write!(f, "dial_jitter_percent must be below 100, got {p}")
            }
            NodeConfigError::NoAddresses => f.write_str("max_known_addresses must be at least 1"),
        }
    }
}

impl std::error::Error for NodeConfigError {}

impl NodeConfig {
    /// Checks the configuration; [`super::Node::new`] calls it.
    pub fn validate(&self) -> Result<(), NodeConfigError> {
        if self.max_inbound == 0 && self.max_outbound == 0 {
            return Err(NodeConfigError::NoConnections);
        }
        if self.max_per_ip == 0 {
            return Err(NodeConfigError::ZeroPerIp);
        }
        if self.idle_timeout == Duration::ZERO {
            return Err(NodeConfigError::ZeroIdleTimeout);
        }
        if self.handshake_timeout == Duration::ZERO {
            return Err(NodeConfigError::ZeroHandshakeTimeout);
        }
        if self.dial_backoff_initial == Duration::ZERO {
            return Err(NodeConfigError::ZeroBackoff);
        }
        if self.dial_backoff_max < self.dial_backoff_initial {
            return Err(NodeConfigError::BackoffMaxBelowInitial);
        }
        if self.dial_jitter_percent >= 100 {
            return Err(NodeConfigError::JitterTooLarge(self.dial_jitter_percent));
        }
        if self.max_known_addresses == 0 {
            return Err(NodeConfigError::NoAddresses);
        }
        Ok(())
    }

    /// Whether frames of `protocol` are delivered to the application.
    pub fn delivers(&self, protocol: ProtocolId) -> bool {
        self.protocols.contains(&protocol)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_configs_are_named() {
        assert_eq!(NodeConfig::default().validate(), Ok(()));
        let cases: [(NodeConfig, NodeConfigError); 8] = [
            (
                NodeConfig {
                    max_inbound: 0,
                    max_outbound: 0,
                    ..Default::default()
                },
                NodeConfigError::NoConnections,
            ),
            (
                NodeConfig {
                    max_per_ip: 0,
                    ..Default::default()
                },
                NodeConfigError::ZeroPerIp,
            ),
            (
                NodeConfig {
                    idle_timeout: Duration::ZERO,
                    ..Default::default()
                },
                NodeConfigError::ZeroIdleTimeout,
            ),
            (
                NodeConfig {
                    handshake_timeout: Duration::ZERO,
                    ..Default::default()
                },
                NodeConfigError::ZeroHandshakeTimeout,
            ),
            (
                NodeConfig {
                    dial_backoff_initial: Duration::ZERO,
                    ..Default::default()
                },
                NodeConfigError::ZeroBackoff,
            ),
            (
                NodeConfig {
                    dial_backoff_max: Duration::from_millis(500),
                    ..Default::default()
                },
                NodeConfigError::BackoffMaxBelowInitial,
            ),
            (
                NodeConfig {
                    dial_jitter_percent: 100,
                    ..Default::default()
                },
                NodeConfigError::JitterTooLarge(100),
            ),
            (
                NodeConfig {
                    max_known_addresses: 0,
                    ..Default::default()
                },
                NodeConfigError::NoAddresses,
            ),
        ];
        for (config, err) in cases {
            assert_eq!(config.validate(), Err(err));
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn a_node_may_only_dial_or_only_accept() {
        let dial_only = NodeConfig {
            max_inbound: 0,
            ..Default::default()
        };
        assert_eq!(dial_only.validate(), Ok(()));
        let accept_only = NodeConfig {
            max_outbound: 0,
            ..Default::default()
        };
        assert_eq!(accept_only.validate(), Ok(()));
    }
}
