//! Gossip broadcast: peer sampling (HyParView), epidemic broadcast trees (Plumtree) and
//! anti-entropy repair.
//!
//! Work in progress: the full protocol description lands with the state machine.

mod codec;
pub mod membership;
pub mod message;

pub use membership::{Membership, MembershipConfig, MembershipOutput};
pub use message::{Announcement, BucketDigest, GossipMessage, MessageId, Payload, TopicId};
