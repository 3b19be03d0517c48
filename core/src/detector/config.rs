//! Failure-detector configuration.

use core::fmt;
use core::num::NonZeroU32;

use crate::time::Duration;

/// How often peers are pinged and how many silent rounds make them suspect, then dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectorConfig {
    /// Time between two pings to the same peer. Must exceed the worst round-trip time, or a slow
    /// answer counts as a miss. Default 2 s.
    pub interval: Duration,
    /// Consecutive silent rounds after which a peer is reported `Suspect`. Default 3.
    pub suspect_after: NonZeroU32,
    /// Consecutive silent rounds after which a suspect peer is reported `Dead`. Default 6,
    /// so a peer is given up after 12 s of silence with the default interval.
    pub dead_after: NonZeroU32,
    /// Most peers one detector monitors; [`super::FailureDetector::monitor`] refuses more.
    /// Bounds memory and the pings sent per round. Default 1024.
    pub max_peers: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            interval: Duration::from_secs(2),
            suspect_after: NonZeroU32::new(3).expect("3 is not zero"),
            dead_after: NonZeroU32::new(6).expect("6 is not zero"),
            max_peers: 1024,
        }
    }
}

/// A configuration the detector cannot run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `interval` is zero: the detector would ping in a busy loop.
    ZeroInterval,
    /// `dead_after` is below `suspect_after`: a peer must be suspected before it is declared dead.
    DeadBeforeSuspect,
    /// `max_peers` is zero: nothing could be monitored.
    NoPeers,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::ZeroInterval => "heartbeat interval must be greater than zero",
            ConfigError::DeadBeforeSuspect => "dead_after must be at least suspect_after",
            ConfigError::NoPeers => "max_peers must be at least 1",
        })
    }
}

impl std::error::Error for ConfigError {}

impl DetectorConfig {
    /// Checks the configuration; [`super::FailureDetector::new`] calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval == Duration::ZERO {
            return Err(ConfigError::ZeroInterval);
        }
        if self.dead_after < self.suspect_after {
            return Err(ConfigError::DeadBeforeSuspect);
        }
        if self.max_peers == 0 {
            return Err(ConfigError::NoPeers);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_configs_are_named() {
        assert_eq!(DetectorConfig::default().validate(), Ok(()));
        let zero = DetectorConfig {
            interval: Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(zero.validate(), Err(ConfigError::ZeroInterval));
        let inverted = DetectorConfig {
            dead_after: NonZeroU32::new(2).unwrap(),
            ..Default::default()
        };
        assert_eq!(inverted.validate(), Err(ConfigError::DeadBeforeSuspect));
        let empty = DetectorConfig {
            max_peers: 0,
            ..Default::default()
        };
        assert_eq!(empty.validate(), Err(ConfigError::NoPeers));
    }
}
