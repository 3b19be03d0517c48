//! What the DHT reports to the application, and why it refuses a command.

use core::fmt;

use super::lookup::LookupStats;
use super::message::Record;
use crate::id::Key;

/// Names a lookup, get or put started by a command; its result event carries the same id.
pub type LookupId = u64;

/// What happened in the DHT.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DhtEvent<C> {
    /// A [`super::Dht::find_node`] lookup finished.
    LookupDone {
        /// The id `find_node` returned.
        id: LookupId,
        /// The key looked up.
        target: Key,
        /// Up to k contacts that answered, nearest to `target` first.
        closest: Vec<C>,
        /// Depth, rounds and messages of the lookup.
        stats: LookupStats,
    },
    /// A [`super::Dht::get`] finished.
    GetDone {
        /// The id `get` returned.
        id: LookupId,
        /// The key asked for.
        key: Key,
        /// The record, if a node (or the local store) held a valid one.
        record: Option<Box<Record>>,
        /// What the lookup cost.
        stats: LookupStats,
    },
    /// A [`super::Dht::put`] finished: the record was offered to the k closest nodes found.
    PutDone {
        /// The id `put` returned.
        id: LookupId,
        /// The record's key.
        key: Key,
        /// Nodes that accepted the record.
        stored: usize,
        /// Nodes that refused it or did not answer.
        refused: usize,
        /// What the lookup (before the stores) cost.
        stats: LookupStats,
    },
    /// The join lookup started by [`super::Dht::bootstrap`] finished.
    Bootstrapped {
        /// Contacts in the routing table afterwards.
        contacts: usize,
    },
    /// A peer sent a record the validator rejected, or an answer that broke the protocol; it
    /// was counted against the peer in the routing table.
    Misbehaved {
        /// The peer.
        peer: C,
        /// What it did.
        reason: Misbehaviour,
    },
}

/// How a peer broke the DHT protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Misbehaviour {
    /// An answer of the wrong kind for the request it names.
    WrongAnswer,
    /// More than `answer_size` contacts, duplicates, or the asking node itself among them.
    BadContacts,
    /// A record for another key than the one asked, or one the validator rejected.
    BadRecord,
}

impl fmt::Display for Misbehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Misbehaviour::WrongAnswer => "answered with the wrong message kind",
            Misbehaviour::BadContacts => "returned too many, duplicate or self contacts",
            Misbehaviour::BadRecord => "returned a record for another key or an invalid record",
        })
    }
}

/// Why the DHT refused a command. Nothing was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DhtError {
    /// `max_lookups` lookups are running; wait for one to finish.
    TooManyLookups {
        /// The configured bound.
        max: usize,
    },
    /// The routing table is empty: bootstrap first.
    NoContacts,
    /// The record's value is larger than the store accepts.
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The local validator rejected the record.
    Invalid,
}

impl fmt::Display for DhtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DhtError::TooManyLookups { max } => {
                write!(f, "{max} lookups already running; retry when one finishes")
            }
            DhtError::NoContacts => f.write_str("routing table is empty; bootstrap first"),
            DhtError::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the limit of {max}")
            }
            DhtError::Invalid => f.write_str("the record validator rejected the record"),
        }
    }
}

impl std::error::Error for DhtError {}
