//! Raft configuration.

use core::fmt;

use crate::time::Duration;

/// Everything a [`super::Raft`] server can be tuned by. [`Default`] suits a LAN or one data
/// centre (round trips well under 10 ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftConfig {
    /// Base election timeout; each wait is drawn uniformly from `[base, 2 × base)` (§5.2).
    /// Default 300 ms.
    pub election_timeout: Duration,
    /// Interval between a leader's heartbeats; well below the election timeout. Default 50 ms.
    pub heartbeat_interval: Duration,
    /// Run a pre-vote before each election, so a server that was cut off does not disrupt the
    /// cluster with a higher term when it returns (thesis §9.6). Default on.
    pub pre_vote: bool,
    /// A leader that has not heard from a majority within an election timeout steps down, and
    /// followers that have heard from a leader within one ignore vote requests (thesis §6.2,
    /// §4.2.3). Default on.
    pub check_quorum: bool,
    /// Most entries in one `Append`. Default 256.
    pub max_entries_per_append: usize,
    /// Most entry bytes in one `Append` (at least one entry is always sent). Default 1 MiB.
    pub max_bytes_per_append: usize,
    /// `Append`s in flight to one follower before waiting for acknowledgements (pipelining).
    /// Default 16.
    pub max_inflight_appends: usize,
    /// Entries a leader may hold uncommitted before refusing proposals: bounds memory when a
    /// majority is unreachable. Default 65,536.
    pub max_uncommitted_entries: usize,
    /// Largest command accepted by `propose`. Default 1 MiB.
    pub max_command_len: usize,
    /// Bytes per snapshot chunk. Default 512 KiB.
    pub snapshot_chunk_len: usize,
    /// Largest snapshot a follower accepts. Default 1 GiB.
    pub max_snapshot_len: u64,
    /// Reads waiting for a ReadIndex round. Default 4096.
    pub max_pending_reads: usize,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            election_timeout: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            pre_vote: true,
            check_quorum: true,
            max_entries_per_append: 256,
            max_bytes_per_append: 1 << 20,
            max_inflight_appends: 16,
            max_uncommitted_entries: 65_536,
            max_command_len: 1 << 20,
            snapshot_chunk_len: 512 << 10,
            max_snapshot_len: 1 << 30,
            max_pending_reads: 4096,
        }
    }
}

/// A [`RaftConfig`] that cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RaftConfigError {
    /// The heartbeat interval must be non-zero and below the election timeout, or followers
    /// would time out between heartbeats.
    HeartbeatNotBelowElectionTimeout,
    /// A limit that must be at least 1 is 0.
    ZeroLimit(&'static str),
}

impl fmt::Display for RaftConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaftConfigError::HeartbeatNotBelowElectionTimeout => {
                f.write_str("heartbeat_interval must be non-zero and below election_timeout")
            }
            RaftConfigError::ZeroLimit(name) => write!(f, "{name} must be at least 1"),
        }
    }
}

impl std::error::Error for RaftConfigError {}

impl RaftConfig {
    /// Checks that the configuration can work.
    pub fn validate(&self) -> Result<(), RaftConfigError> {
        if self.heartbeat_interval == Duration::ZERO
            || self.heartbeat_interval >= self.election_timeout
        {
            return Err(RaftConfigError::HeartbeatNotBelowElectionTimeout);
        }
        for (name, value) in [
            ("max_entries_per_append", self.max_entries_per_append),
            ("max_bytes_per_append", self.max_bytes_per_append),
            ("max_inflight_appends", self.max_inflight_appends),
            ("max_uncommitted_entries", self.max_uncommitted_entries),
            ("snapshot_chunk_len", self.snapshot_chunk_len),
            ("max_pending_reads", self.max_pending_reads),
        ] {
            if value == 0 {
                return Err(RaftConfigError::ZeroLimit(name));
            }
        }
        Ok(())
    }
}
