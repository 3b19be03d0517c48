//! DHT configuration.

use core::fmt;

use super::message::MAX_WIRE_CONTACTS;
use super::routing::{RoutingConfig, RoutingConfigError};
use super::store::StoreConfig;
use crate::time::Duration;

/// Everything a [`super::Dht`] can be tuned with. The defaults follow the Kademlia paper where it
/// gives a number (k = 20, α = 3, hourly refresh and republish) and pick conservative bounds
/// elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DhtConfig {
    /// Bucket size, diversity limits, failures before a contact is dropped.
    pub routing: RoutingConfig,
    /// Bounds of the local record store.
    pub store: StoreConfig,
    /// Contacts in an answer to `FIND_NODE` (and to `FIND_VALUE` without the value), and the
    /// most accepted in an answer. Default 30, one and a half times k: a node's nearest entries
    /// include nodes that died since it last heard from them, and answering with exactly k
    /// would hide the live nodes just beyond them from every lookup (with a fifth of the nodes
    /// crashed at once, exact-k answers found the true k closest live nodes in 30% of lookups;
    /// 1.5k answers, in all of them). At most 32 (the wire limit).
    pub answer_size: usize,
    /// Queries a lookup keeps in flight at once (per path). Default 3.
    pub alpha: usize,
    /// Disjoint lookup paths (S/Kademlia, Baumgart & Mies 2007): each path queries only nodes no
    /// other path has seen, so one honest path suffices. 1 is plain Kademlia. Default 1.
    pub disjoint_paths: usize,
    /// How long a request may go unanswered before it counts as a failure. Default 2 s.
    pub request_timeout: Duration,
    /// Requests in flight to one peer; a lookup skips a peer at the bound. Default 8.
    pub max_in_flight_per_peer: usize,
    /// Requests in flight in total (lookups, stores, pings). Default 1024.
    pub max_in_flight: usize,
    /// Lookups (including puts and gets) running at once; more are refused. Default 64.
    pub max_lookups: usize,
    /// A bucket with no lookup or new contact for this long is refreshed with a lookup for a
    /// random key in it. Default 1 h.
    pub refresh_interval: Duration,
    /// Records this node published are stored again at the k closest nodes this often (and so
    /// survive churn among them). Default 1 h.
    pub republish_interval: Duration,
    /// TTL given to records put without one. Default 24 h.
    pub default_ttl: Duration,
    /// Records published by this node that are kept for republishing. Default 1024.
    pub max_published: usize,
    /// After the join lookup, refresh every bucket from the farthest down to the one holding
    /// the nearest contact (Kademlia §2.3): a lookup for a random key in each fills it with
    /// contacts that answered, and tells those nodes about us. Costs about log2(n / k) lookups
    /// per join; without it, far buckets fill only from the traffic the node sees and lookups
    /// take more hops. Default true.
    pub join_refresh: bool,
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig {
            routing: RoutingConfig::default(),
            store: StoreConfig::default(),
            answer_size: 30,
            alpha: 3,
            disjoint_paths: 1,
            request_timeout: Duration::from_secs(2),
            max_in_flight_per_peer: 8,
            max_in_flight: 1024,
            max_lookups: 64,
            refresh_interval: Duration::from_secs(3600),
            republish_interval: Duration::from_secs(3600),
            default_ttl: Duration::from_secs(24 * 3600),
            max_published: 1024,
            join_refresh: true,
        }
    }
}

/// A configuration the DHT cannot run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DhtConfigError {
    /// The routing table configuration is invalid.
    Routing(RoutingConfigError),
    /// `alpha`, `disjoint_paths`, `max_in_flight_per_peer`, `max_in_flight` or `max_lookups` is
    /// zero: no lookup could make progress.
    ZeroParallelism,
    /// More disjoint paths than `k`: paths could not each start from a distinct contact.
    TooManyPaths,
    /// `answer_size` is below `k` (lookups could not learn k contacts from one answer) or above
    /// the wire limit of 32.
    AnswerSize,
    /// `request_timeout`, `refresh_interval`, `republish_interval` or `default_ttl` is zero.
    ZeroInterval,
}

impl fmt::Display for DhtConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DhtConfigError::Routing(e) => write!(f, "routing table: {e}"),
            DhtConfigError::ZeroParallelism => f.write_str(
                "alpha, disjoint_paths, max_in_flight_per_peer, max_in_flight and max_lookups \
                 must all be at least 1",
            ),
            DhtConfigError::TooManyPaths => f.write_str("disjoint_paths must not exceed k"),
            DhtConfigError::AnswerSize => {
                f.write_str("answer_size must be at least k and at most 32")
            }
            DhtConfigError::ZeroInterval => f.write_str(
                "request_timeout, refresh_interval, republish_interval and default_ttl must be \
                 greater than zero",
            ),
        }
    }
}

impl std::error::Error for DhtConfigError {}

impl DhtConfig {
    /// Checks the configuration; [`super::Dht::new`] calls it.
    pub fn validate(&self) -> Result<(), DhtConfigError> {
        self.routing.validate().map_err(DhtConfigError::Routing)?;
        if [
            self.alpha,
            self.disjoint_paths,
            self.max_in_flight_per_peer,
            self.max_in_flight,
            self.max_lookups,
        ]
        .contains(&0)
        {
            return Err(DhtConfigError::ZeroParallelism);
        }
        if self.disjoint_paths > self.routing.k {
            return Err(DhtConfigError::TooManyPaths);
        }
        if self.answer_size < self.routing.k || self.answer_size > MAX_WIRE_CONTACTS {
            return Err(DhtConfigError::AnswerSize);
        }
        if [
            self.request_timeout,
            self.refresh_interval,
            self.republish_interval,
            self.default_ttl,
        ]
        .contains(&Duration::ZERO)
        {
            return Err(DhtConfigError::ZeroInterval);
        }
        Ok(())
    }
}
