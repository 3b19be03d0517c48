//! The configuration of [`Membership`](super::Membership): view sizes, walk lengths, shuffle
//! sample and timers, with the paper's defaults, and the check that they can work.

use core::fmt;

use super::MAX_PEER_LIST;
use crate::time::Duration;

/// Sizes, walk lengths and timers of [`Membership`](super::Membership). The defaults follow the paper (see the
/// [module docs](super)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MembershipConfig {
    /// Most peers in the active view. Default 6 (log10(n) + 1 for 10^5 nodes).
    pub active_size: usize,
    /// Most peers in the passive view. Default 30.
    pub passive_size: usize,
    /// Active random walk length (ARWL): hops of a ForwardJoin or Shuffle walk. Default 6.
    pub active_walk: u8,
    /// Passive random walk length (PRWL): the ForwardJoin ttl at which the joiner is put in the
    /// passive view. At most `active_walk`. Default 3.
    pub passive_walk: u8,
    /// Time between two shuffles, jittered by ±25%. Default 10 s.
    pub shuffle_interval: Duration,
    /// Active peers in a shuffle sample (ka). Default 3.
    pub shuffle_active: usize,
    /// Passive peers in a shuffle sample (kp). Default 4.
    pub shuffle_passive: usize,
    /// A Neighbor request unanswered this long counts as refused (and the peer asked is
    /// dropped from the passive view). Default 2 s.
    pub neighbor_timeout: Duration,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            active_size: 6,
            passive_size: 30,
            active_walk: 6,
            passive_walk: 3,
            shuffle_interval: Duration::from_secs(10),
            shuffle_active: 3,
            shuffle_passive: 4,
            neighbor_timeout: Duration::from_secs(2),
        }
    }
}

/// A configuration [`Membership`](super::Membership) cannot run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MembershipConfigError {
    /// `active_size` or `passive_size` is zero: no peer could be kept.
    ZeroViewSize,
    /// `active_walk` or `passive_walk` is zero, or `passive_walk` exceeds `active_walk` (the
    /// joiner would never be put in a passive view).
    BadWalk,
    /// The shuffle sample does not fit: `shuffle_active` exceeds `active_size`,
    /// `shuffle_passive` exceeds `passive_size`, or `1 + shuffle_active + shuffle_passive`
    /// exceeds [`MAX_PEER_LIST`] (receivers would ignore the rest).
    ShuffleSample,
    /// `shuffle_interval` or `neighbor_timeout` is zero.
    ZeroInterval,
}

impl fmt::Display for MembershipConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipConfigError::ZeroViewSize => {
                f.write_str("active_size and passive_size must be at least 1")
            }
            MembershipConfigError::BadWalk => f.write_str(
                "active_walk and passive_walk must be at least 1, and passive_walk at most \
                 active_walk",
            ),
            MembershipConfigError::ShuffleSample => write!(
                f,
                "shuffle_active must be at most active_size, shuffle_passive at most \
                 passive_size, and 1 + shuffle_active + shuffle_passive at most {MAX_PEER_LIST}"
            ),
            MembershipConfigError::ZeroInterval => {
                f.write_str("shuffle_interval and neighbor_timeout must be greater than zero")
            }
        }
    }
}

impl std::error::Error for MembershipConfigError {}

impl MembershipConfig {
    /// Checks the configuration; [`Membership::new`](super::Membership::new) calls it.
    pub fn validate(&self) -> Result<(), MembershipConfigError> {
        if self.active_size == 0 || self.passive_size == 0 {
            return Err(MembershipConfigError::ZeroViewSize);
        }
        if self.active_walk == 0 || self.passive_walk == 0 || self.passive_walk > self.active_walk {
            return Err(MembershipConfigError::BadWalk);
        }
        if self.shuffle_active > self.active_size
            || self.shuffle_passive > self.passive_size
            || self
                .shuffle_active
                .saturating_add(self.shuffle_passive)
                .saturating_add(1)
                > MAX_PEER_LIST
        {
            return Err(MembershipConfigError::ShuffleSample);
        }
        if self.shuffle_interval == Duration::ZERO || self.neighbor_timeout == Duration::ZERO {
            return Err(MembershipConfigError::ZeroInterval);
        }
        Ok(())
    }
}
