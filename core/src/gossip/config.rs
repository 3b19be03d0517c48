//! Gossip configuration.

use core::fmt;

use super::membership::{MembershipConfig, MembershipConfigError};
use crate::time::Duration;

/// A rate: `per_sec` on average, bursts of up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Sustained rate per second.
    pub per_sec: u64,
    /// Largest burst.
    pub burst: u64,
}

/// Everything a [`super::Gossip`] node can be tuned by. [`Default`] suits a blockchain's block
/// and transaction topics on networks of up to a few million nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GossipConfig {
    /// Peer sampling (view sizes, walks, shuffles).
    pub membership: MembershipConfig,
    /// Largest message the application may publish or a peer may send. Default 256 KiB.
    pub max_data_len: usize,
    /// Most topics this node may subscribe to (at most 64). Default 64.
    pub max_topics: usize,
    /// How long a message's id (and its payload, for repair) is remembered: the seen-cache TTL
    /// and the anti-entropy window. A message published longer ago than this is refused, so a
    /// replay cannot slip past an expired seen-cache entry. Default 120 s.
    pub history: Duration,
    /// Most messages remembered at once. Default 65,536.
    pub max_history: usize,
    /// Most payload bytes kept for repair; past it the oldest payloads are dropped (their ids
    /// stay). Default 64 MiB.
    pub max_history_bytes: usize,
    /// How far ahead of our clock a publish time may be. Default 10 s.
    pub max_skew: Duration,
    /// How long an announced message may stay missing before it is grafted from its announcer
    /// (Plumtree's first timer). Default 400 ms: longer than a tree path's extra latency, so a
    /// pushed copy usually arrives first.
    pub ihave_timeout: Duration,
    /// How long to wait for a graft before trying the next announcer. Default 200 ms.
    pub graft_timeout: Duration,
    /// Most missing messages tracked at once (announcements beyond it wait for anti-entropy).
    /// Default 4096.
    pub max_missing: usize,
    /// Mean interval between anti-entropy exchanges (jittered ±25%). Default 5 s.
    pub anti_entropy_interval: Duration,
    /// Width of an anti-entropy time bucket. Default 1 s.
    pub bucket: Duration,
    /// Age below which messages are left to the tree: anti-entropy compares only buckets that
    /// ended at least this long ago, so it does not race the tree for messages still on their
    /// way. Default 5 s.
    pub settle: Duration,
    /// Most ids pulled from one peer in one exchange. Default 1024.
    pub max_pull: usize,
    /// Publishes allowed from the application. Default 1000/s, bursts of 1000.
    pub publish_rate: Rate,
    /// Payloads accepted from one peer (pushed or pulled). Default 2000/s, bursts of 4000.
    pub peer_rate: Rate,
    /// Payloads sent on request (grafts and pulls), all peers together: bounds what requests
    /// can make this node send. Default 4000/s, bursts of 8000.
    pub serve_rate: Rate,
    /// Rejected messages (by the validator, or malformed) after which a peer is dropped from the
    /// active view. Default 8.
    pub reject_limit: u16,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            membership: MembershipConfig::default(),
            max_data_len: 256 << 10,
            max_topics: 64,
            history: Duration::from_secs(120),
            max_history: 65_536,
            max_history_bytes: 64 << 20,
            max_skew: Duration::from_secs(10),
            ihave_timeout: Duration::from_millis(400),
            graft_timeout: Duration::from_millis(200),
            max_missing: 4096,
            anti_entropy_interval: Duration::from_secs(5),
            bucket: Duration::from_secs(1),
            settle: Duration::from_secs(5),
            max_pull: 1024,
            publish_rate: Rate {
                per_sec: 1000,
                burst: 1000,
            },
            peer_rate: Rate {
                per_sec: 2000,
                burst: 4000,
            },
            serve_rate: Rate {
                per_sec: 4000,
                burst: 8000,
            },
            reject_limit: 8,
        }
    }
}

/// Why a [`GossipConfig`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GossipConfigError {
    /// The membership settings are invalid.
    Membership(MembershipConfigError),
    /// A setting is out of range.
    OutOfRange {
        /// The setting.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
}

impl fmt::Display for GossipConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GossipConfigError::Membership(e) => write!(f, "membership: {e}"),
            GossipConfigError::OutOfRange { field, expected } => {
                write!(f, "gossip setting `{field}` must be {expected}")
            }
        }
    }
}

impl std::error::Error for GossipConfigError {}

impl GossipConfig {
    /// Checks every setting.
    pub fn validate(&self) -> Result<(), GossipConfigError> {
        self.membership
            .validate()
            .map_err(GossipConfigError::Membership)?;
        let check = |ok: bool, field, expected| match ok {
            true => Ok(()),
            false => Err(GossipConfigError::OutOfRange { field, expected }),
        };
        check(self.max_data_len > 0, "max_data_len", "at least 1")?;
        check(
            (1..=64).contains(&self.max_topics),
            "max_topics",
            "between 1 and 64",
        )?;
        check(
            self.bucket > Duration::ZERO && self.history >= self.bucket.saturating_mul(2),
            "history",
            "at least two buckets long (and bucket nonzero)",
        )?;
        check(
            self.history.as_nanos() / self.bucket.as_nanos() <= 4096,
            "bucket",
            "at least history / 4096",
        )?;
        check(
            self.settle.saturating_add(self.bucket.saturating_mul(4)) <= self.history,
            "settle",
            "at most history minus four buckets",
        )?;
        check(self.max_history > 0, "max_history", "at least 1")?;
        check(
            self.ihave_timeout > Duration::ZERO && self.graft_timeout > Duration::ZERO,
            "ihave_timeout",
            "nonzero (and graft_timeout too)",
        )?;
        check(self.max_missing > 0, "max_missing", "at least 1")?;
        check(
            self.anti_entropy_interval > Duration::ZERO,
            "anti_entropy_interval",
            "nonzero",
        )?;
        check(self.max_pull > 0, "max_pull", "at least 1")?;
        check(
            self.publish_rate.per_sec > 0 && self.publish_rate.burst > 0,
            "publish_rate",
            "nonzero",
        )?;
        check(
            self.peer_rate.per_sec > 0 && self.peer_rate.burst > 0,
            "peer_rate",
            "nonzero",
        )?;
        check(
            self.serve_rate.per_sec > 0 && self.serve_rate.burst > 0,
            "serve_rate",
            "nonzero",
        )?;
        check(self.reject_limit > 0, "reject_limit", "at least 1")
    }
}
