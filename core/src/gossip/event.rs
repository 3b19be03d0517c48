//! What gossip reports to the application, and why it refuses a command.

use core::fmt;

use bytes::Bytes;

use super::message::{MessageId, TopicId};

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GossipEvent<C> {
    /// A message new to this node passed validation: deliver it. Each message is delivered at
    /// most once (while its id is remembered; see `GossipConfig::history`).
    Message {
        /// Its id.
        id: MessageId,
        /// Its topic.
        topic: TopicId,
        /// Its bytes.
        data: Bytes,
        /// The neighbour it came from.
        from: C,
        /// Tree hops from the publisher to this node.
        hops: u16,
    },
    /// A peer entered the active view.
    NeighborUp(C),
    /// A peer left the active view.
    NeighborDown(C),
    /// A peer broke the rules; it is charged, and dropped after `reject_limit` charges.
    Misbehaved {
        /// The peer.
        peer: C,
        /// What it did.
        reason: Misbehaviour,
    },
}

/// What a peer did wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Misbehaviour {
    /// It sent a message the validator rejected.
    Rejected,
    /// It sent a message larger than `max_data_len`.
    TooLarge,
    /// It sent payloads faster than `peer_rate`.
    Flooding,
    /// It sent a message on a topic it knows we do not subscribe to, or outside the history
    /// window, or a payload nobody asked it for.
    Unsolicited,
}

/// The application's verdict on a message, given before it is delivered or forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Validation {
    /// Deliver and forward it.
    Accept,
    /// Drop it and charge the sender (invalid content).
    Reject,
    /// Drop it without charging the sender (valid but unwanted, e.g. stale).
    Ignore,
}

/// Checks messages before they are delivered or forwarded.
pub trait MessageValidator {
    /// The verdict on `data`, published on `topic`.
    fn validate(&mut self, topic: TopicId, data: &Bytes) -> Validation;
}

/// The validator that accepts everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptAll;

impl MessageValidator for AcceptAll {
    fn validate(&mut self, _: TopicId, _: &Bytes) -> Validation {
        Validation::Accept
    }
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GossipError {
    /// This node does not subscribe to the topic: subscribe first.
    NotSubscribed(TopicId),
    /// The message is larger than `max_data_len`.
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Publishing faster than `publish_rate`: retry later.
    RateLimited,
    /// The same message (same topic, time and bytes) was already published or received.
    Duplicate(MessageId),
    /// Already subscribed to `max_topics` topics.
    TooManyTopics {
        /// The limit.
        max: usize,
    },
    /// The validator refused the message.
    Invalid,
}

impl fmt::Display for GossipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GossipError::NotSubscribed(t) => write!(f, "not subscribed to topic {:016x}", t.0),
            GossipError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the {max}-byte limit")
            }
            GossipError::RateLimited => write!(f, "publish rate exceeded; retry later"),
            GossipError::Duplicate(_) => write!(f, "this message was already seen"),
            GossipError::TooManyTopics { max } => {
                write!(f, "already subscribed to the maximum of {max} topics")
            }
            GossipError::Invalid => write!(f, "the validator rejected the message"),
        }
    }
}

impl std::error::Error for GossipError {}
