//! The configuration of a [`RoutingTable`](super::RoutingTable): bucket size, replacement
//! caches, subnet limits, failures tolerated, and how long a bucket's head counts as fresh.

use core::fmt;

use crate::time::Duration;

/// Bucket size, caches and limits of a [`RoutingTable`](super::RoutingTable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutingConfig {
    /// Contacts per bucket (the paper's k). Default 20.
    pub k: usize,
    /// Newcomers remembered per full bucket, promoted when an entry leaves. 0 disables the
    /// cache. Default 8.
    pub replacements: usize,
    /// Contacts of one subnet in one bucket. Default 2.
    pub max_per_subnet_bucket: usize,
    /// Contacts of one subnet in the whole table. Default 10.
    pub max_per_subnet_table: usize,
    /// Failed requests in a row after which a contact is dropped. Default 3.
    pub max_failures: u8,
    /// A bucket's head heard from within this long is not pinged when a newcomer finds the
    /// bucket full. Default 15 min.
    pub fresh_for: Duration,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            k: 20,
            replacements: 8,
            max_per_subnet_bucket: 2,
            max_per_subnet_table: 10,
            max_failures: 3,
            fresh_for: Duration::from_secs(15 * 60),
        }
    }
}

/// Why a [`RoutingConfig`] cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoutingConfigError {
    /// `k` is zero: no contact could be kept.
    ZeroK,
    /// A subnet limit is zero: every contact with an address would be refused.
    ZeroSubnetLimit,
    /// `max_failures` is zero: a contact would be dropped before any request to it failed.
    ZeroFailures,
}

impl fmt::Display for RoutingConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoutingConfigError::ZeroK => "k must be at least 1",
            RoutingConfigError::ZeroSubnetLimit => "subnet limits must be at least 1",
            RoutingConfigError::ZeroFailures => "max_failures must be at least 1",
        })
    }
}

impl std::error::Error for RoutingConfigError {}

impl RoutingConfig {
    /// Checks that the configuration can work.
    pub fn validate(&self) -> Result<(), RoutingConfigError> {
        if self.k == 0 {
            return Err(RoutingConfigError::ZeroK);
        }
        if self.max_per_subnet_bucket == 0 || self.max_per_subnet_table == 0 {
            return Err(RoutingConfigError::ZeroSubnetLimit);
        }
        if self.max_failures == 0 {
            return Err(RoutingConfigError::ZeroFailures);
        }
        Ok(())
    }
}
