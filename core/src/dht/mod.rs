//! Kademlia DHT (Maymounkov & Mazières, "Kademlia: A Peer-to-peer Information System Based on
//! the XOR Metric", IPTPS 2002), with the S/Kademlia hardening that matters most in open
//! networks (Baumgart & Mies 2007): disjoint lookup paths, and contacts held to IP-diversity
//! limits.
//!
//! ## The protocol
//! Every node and record has a 256-bit [`Key`](crate::id::Key); distance is XOR. A node keeps
//! up to k contacts per distance range (the [`RoutingTable`]), preferring contacts it has known
//! longest: a full bucket pings its least recently seen contact before letting a newcomer in,
//! and keeps newcomers in a small replacement cache. Four requests, each answered by one
//! message ([`DhtMessage`]): `PING`, `FIND_NODE` (the k closest contacts to a key),
//! `FIND_VALUE` (the record, or contacts as for `FIND_NODE`), `STORE`. Every request and answer
//! received puts its sender in the table.
//!
//! A lookup asks α contacts at a time, always the closest it has not asked, and ends when the
//! k closest it has seen have all answered or failed (`lookup.rs` explains the details).
//! `put` runs a lookup and stores the record at the k closest; `get` runs a lookup that stops at
//! the first valid record. `bootstrap` joins through seed nodes with a lookup for the node's own
//! key.
//!
//! ## The shape
//! [`Dht`] is a [`Machine`](crate::machine::Machine) generic over the [`Contact`] type: a real
//! node uses [`NodeContact`] (peer id and address) and the wire codec of [`DhtMessage`]; the
//! simulator uses 4-byte handles and passes messages without encoding. Commands (`bootstrap`,
//! `find_node`, `get`, `put`) return a [`LookupId`] that the result event carries.
//!
//! ## Bounds
//! Requests in flight (total and per peer), lookups running, candidates per lookup (3k per
//! path), records stored (count and bytes) and records republished are all bounded by
//! [`DhtConfig`]; answers are checked (at most `answer_size` contacts, distinct, not the
//! asker; records must match the key asked and pass the validator) and a bad answer counts as a
//! failure of the peer in the routing table, which drops it after `max_failures`.
//!
//! ## Departures from the paper
//! - Only the publisher republishes its records (hourly); nodes do not re-replicate every
//!   record they hold each hour, and do not cache values along the lookup path. Records expire
//!   at their TTL. This is what most deployed Kademlias (libp2p, BitTorrent's BEP 44) do: it
//!   bounds the traffic a node generates by what it published, not by what it stores.
//! - Joining is the paper's: a self-lookup, then a refresh of every bucket beyond the nearest
//!   neighbour (`join_refresh`, which can be turned off to trade hops for join cost).
//! - Answers carry up to `answer_size` contacts (default 1.5k) instead of k, so lookups still
//!   find the k closest live nodes when the nearest entries of every table include nodes that
//!   died unnoticed (see [`DhtConfig::answer_size`]).
//! - A node dropped for failures is not banned: it re-enters when it is heard from again.

mod config;
mod contact;
mod event;
mod hosted;
mod lookup;
mod machine;
pub mod message;
mod requests;
pub mod routing;
pub mod store;

pub use config::{DhtConfig, DhtConfigError};
pub use contact::{Contact, NodeContact, Subnet};
pub use event::{DhtError, DhtEvent, LookupId, Misbehaviour};
pub use lookup::LookupStats;
pub use machine::{Dht, DhtOutput, DhtStats};
pub use message::{DhtMessage, Record, RequestId, StoreResult};
pub use routing::{RoutingConfig, RoutingTable};
pub use store::{AcceptAll, RecordStore, RecordValidator, StoreConfig, Validation};
