//! [`Hosting`]: the protocols a runtime's node hosts, as a list of recipes.

use std::sync::Arc;

use starling_core::detector::{DetectorConfig, FailureDetector};
use starling_core::dht::{Dht, DhtConfig};
use starling_core::gossip::{Gossip, GossipConfig};
use starling_core::id::PeerId;
use starling_core::node::{HostError, HostedMessage, Node, Protocol};
use starling_core::time::Instant;
use starling_core::wire::ProtocolId;

/// Builds one protocol for a node (its identity and seed come from the node) and hosts it.
type Recipe = Arc<dyn Fn(&mut Node, Instant) -> Result<(), HostingError> + Send + Sync>;

/// Why a node could not host its protocols.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostingError {
    /// A protocol's configuration is invalid.
    Config {
        /// The protocol.
        protocol: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The node refused the protocol (its id is taken or reserved).
    Host(HostError),
}

impl std::fmt::Display for HostingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostingError::Config { protocol, reason } => {
                write!(f, "invalid {protocol} configuration: {reason}")
            }
            HostingError::Host(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for HostingError {}

/// The protocols a node hosts, in the order they are hosted. Each entry is a recipe run on the
/// new node, so the protocol gets the node's identity and a seed derived from the node's; a
/// configuration stays `Clone` and can start many nodes.
///
/// ```
/// use starling_core::dht::DhtConfig;
/// use starling_core::gossip::GossipConfig;
/// use starling_runtime::Hosting;
///
/// let mut hosting = Hosting::default();
/// hosting.dht(DhtConfig::default()).gossip(GossipConfig::default());
/// assert_eq!(hosting.names(), ["dht", "gossip"]);
/// ```
#[derive(Clone, Default)]
pub struct Hosting {
    recipes: Vec<(&'static str, Recipe)>,
}

impl std::fmt::Debug for Hosting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Hosting {
    /// Adds a protocol built by `make` from the node's identity, a seed for it and the time.
    /// This is how an application hosts a protocol of its own.
    pub fn with<P: Protocol>(
        &mut self,
        make: impl Fn(PeerId, u64, Instant) -> P + Send + Sync + 'static,
    ) -> &mut Self {
        self.try_with(move |local, seed, now| Ok::<P, String>(make(local, seed, now)))
    }

    /// [`Hosting::with`] for a protocol whose construction can fail (an invalid configuration):
    /// the error stops the node from being built, with the protocol's name and the reason.
    pub fn try_with<P: Protocol, E: std::fmt::Display>(
        &mut self,
        make: impl Fn(PeerId, u64, Instant) -> Result<P, E> + Send + Sync + 'static,
    ) -> &mut Self {
        let recipe: Recipe = Arc::new(move |node: &mut Node, now| {
            let protocol = <P::Message as HostedMessage>::PROTOCOLS
                .first()
                .copied()
                .unwrap_or(ProtocolId::SESSION);
            let machine = make(node.local(), node.protocol_seed(protocol), now).map_err(|e| {
                HostingError::Config {
                    protocol: P::NAME,
                    reason: e.to_string(),
                }
            })?;
            node.host(now, machine).map_err(HostingError::Host)
        });
        self.recipes.push((P::NAME, recipe));
        self
    }

    /// Adds the Kademlia DHT.
    pub fn dht(&mut self, config: DhtConfig) -> &mut Self {
        self.try_with(move |local, seed, now| Dht::new(config, *local.key(), seed, now))
    }

    /// Adds gossip (HyParView, Plumtree, anti-entropy).
    pub fn gossip(&mut self, config: GossipConfig) -> &mut Self {
        self.try_with(move |local, seed, now| Gossip::hosted(config, local, seed, now))
    }

    /// Adds a failure detector monitoring every connected peer (for transports without a
    /// session keep-alive; see `starling_core::detector`).
    pub fn detector(&mut self, config: DetectorConfig) -> &mut Self {
        self.try_with(move |_, seed, now| {
            config
                .validate()
                .map(|()| FailureDetector::new(config, seed, now))
        })
    }

    /// The names of the protocols, in hosting order.
    pub fn names(&self) -> Vec<&'static str> {
        self.recipes.iter().map(|(name, _)| *name).collect()
    }

    /// Whether a protocol named `name` is in the list.
    pub fn contains(&self, name: &str) -> bool {
        self.recipes.iter().any(|(n, _)| *n == name)
    }

    /// Hosts every protocol on `node`.
    pub fn apply(&self, node: &mut Node, now: Instant) -> Result<(), HostingError> {
        self.recipes
            .iter()
            .try_for_each(|(_, make)| make(node, now))
    }
}
