//! Gossip broadcast: peer sampling (HyParView), epidemic broadcast trees (Plumtree) per topic,
//! and anti-entropy repair.
//!
//! ## The protocol
//! - **Membership** (`membership.rs`; Leitão, Pereira, Rodrigues, "HyParView", DSN 2007): each
//!   node keeps a small symmetric *active view* (default 6, about log₁₀ N + 1 for a million
//!   nodes), the peers it gossips with over live connections, and a larger *passive view* of
//!   backups learned by random walks (join, forward-join, shuffle). When the failure detector or
//!   the transport reports an active peer dead ([`Gossip::peer_failed`]), a passive peer is
//!   promoted.
//! - **Broadcast** (`plumtree.rs`; Leitão, Pereira, Rodrigues, "Epidemic Broadcast Trees", SRDS
//!   2007): one tree per topic over the active view, built by pruning links that deliver
//!   duplicates and repaired by grafting links that announce (IHAVE) what the tree lost. In a
//!   settled tree each node receives each message about once.
//! - **Anti-entropy** (`anti_entropy.rs`): periodic pairwise comparison of per-topic, per-time-
//!   bucket digests of the ids delivered, pulling what differs. Its cost grows with the
//!   difference between the two sets, not with the history; the module explains how.
//! - **Topics**: a node tells its active neighbours which topics it subscribes to
//!   ([`GossipMessage::Topics`]); a topic's messages are pushed, announced and repaired only
//!   between neighbours that both subscribe to it.
//! - **Protection**: message ids are content hashes computed by the receiver ([`MessageId`]);
//!   the seen cache remembers ids for `history` and refuses messages published earlier, so
//!   replays are not delivered twice; an application validator ([`MessageValidator`]) rules on
//!   every new message before it is delivered or forwarded (accept, reject, ignore), and a
//!   rejected message charges its sender; per-neighbour inbound payload rates, a publish rate
//!   and a message-size limit; a peer charged `reject_limit` times is dropped from the active
//!   view.
//!
//! ## The shape
//! [`Gossip`] is a [`Machine`](crate::machine::Machine) generic over how peers are named (a
//! real node: [`NodeContact`](crate::contact::NodeContact), whose messages have a wire codec; the
//! simulator: 4-byte handles). [`BroadcastMode::Push`] turns the tree off and pushes every new
//! message to a random fanout, as a baseline.
//!
//! ## Departures from the papers
//! - Plumtree sends one IHAVE per message per lazy neighbour at once, rather than batching
//!   announcements on a timer: simpler, and the control cost is reported (`tree_control_sent`).
//! - Plumtree's optional tree optimisation (swapping an eager link for a lazy one that announces
//!   a shorter path) is not implemented.
//! - The trees are per topic over one shared overlay, so a topic with few subscribers may find
//!   them disconnected in the active view; Starling's blockchain topics (blocks, transactions)
//!   are subscribed by nearly every node.
//! - Anti-entropy is not in either paper; it replaces Plumtree's reliance on the lazy links
//!   alone after losses, crashes and partitions.

mod anti_entropy;
mod codec;
mod config;
mod event;
mod history;
mod hosted;
mod machine;
pub mod membership;
pub mod message;
mod plumtree;

pub use codec::{is_loss_tolerant, MAX_DIGEST_BUCKETS, MAX_IDS_PER_MESSAGE, MAX_TOPICS};
pub use config::{GossipConfig, GossipConfigError, Rate};
pub use event::{AcceptAll, GossipError, GossipEvent, MessageValidator, Misbehaviour, Validation};
pub use machine::{BroadcastMode, Gossip, GossipOutput, GossipStats};
pub use membership::{Membership, MembershipConfig, MembershipOutput};
pub use message::{Announcement, BucketDigest, GossipMessage, MessageId, Payload, TopicId};
