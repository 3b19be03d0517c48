//! Gossip messages: membership (HyParView), broadcast (Plumtree), anti-entropy.
//!
//! The wire encoding of [`GossipMessage<NodeContact>`](GossipMessage) is in `codec.rs`, with its
//! layout table. The simulator passes these values without encoding.

use bytes::Bytes;

/// A topic: the first 8 bytes (big-endian) of BLAKE3 of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct TopicId(pub u64);

impl TopicId {
    /// The id of the topic called `name`.
    pub fn named(name: &str) -> TopicId {
        let hash = blake3::hash(name.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        TopicId(u64::from_be_bytes(first))
    }
}

/// A broadcast message's id: BLAKE3 over its topic, publish time and data, cut to 16 bytes.
///
/// Receivers compute it from the content rather than trusting a field, so a peer cannot send
/// one message under another's id and make the network ignore the real one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// The id of `data` published on `topic` at `published_ms`.
    pub fn of(topic: TopicId, published_ms: u64, data: &[u8]) -> MessageId {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&topic.0.to_be_bytes());
        hasher.update(&published_ms.to_be_bytes());
        hasher.update(data);
        let mut id = [0u8; 16];
        id.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        MessageId(id)
    }

    /// The XOR of two ids (the anti-entropy digest combines a bucket's ids this way).
    pub fn xor(self, other: MessageId) -> MessageId {
        MessageId(core::array::from_fn(|i| self.0[i] ^ other.0[i]))
    }
}

/// One broadcast message as it travels.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Payload {
    /// Its topic.
    pub topic: TopicId,
    /// When it was published, in milliseconds of the gossip clock (shared by all nodes to within
    /// the configured skew; see the module docs).
    pub published_ms: u64,
    /// Tree hops from the publisher to the sender of this copy (the publisher sends 0).
    pub hops: u16,
    /// The application's bytes (a slice of the received frame).
    pub data: Bytes,
}

impl Payload {
    /// The message's id (computed from its content).
    pub fn id(&self) -> MessageId {
        MessageId::of(self.topic, self.published_ms, &self.data)
    }
}

/// An announcement: "I have this message" (Plumtree's IHAVE), with the hops of the copy held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Announcement {
    /// The message.
    pub id: MessageId,
    /// Hops from the publisher to the announcer.
    pub hops: u16,
}

/// The anti-entropy summary of one time bucket of one topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct BucketDigest {
    /// Messages held in the bucket.
    pub count: u32,
    /// The XOR of their ids.
    pub xor: MessageId,
}

/// Every gossip message. `C` names peers inside messages (a real node sends
/// [`NodeContact`](crate::contact::NodeContact)s; the simulator sends handles).
///
/// Payloads are boxed: they are the largest variant, and every queued message pays for the
/// largest variant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GossipMessage<C> {
    /// HyParView JOIN: the sender asks to enter the overlay through us.
    Join,
    /// HyParView FORWARDJOIN: `joiner` is entering; take it in when `ttl` runs out (or our active
    /// view is empty), put it in the passive view at the passive-walk ttl.
    ForwardJoin {
        /// The node joining.
        joiner: C,
        /// Remaining hops of the random walk.
        ttl: u8,
    },
    /// HyParView NEIGHBOR: the sender wants us in its active view. High priority when its
    /// active view is empty (then we must accept).
    Neighbor {
        /// The sender has no active peer left.
        high_priority: bool,
    },
    /// Answer to `Neighbor`.
    NeighborReply {
        /// Whether we took the sender into our active view.
        accepted: bool,
    },
    /// HyParView DISCONNECT: the sender dropped us from its active view (we keep it as passive).
    Disconnect,
    /// HyParView SHUFFLE: a random walk carrying a sample of `origin`'s views.
    Shuffle {
        /// The node that started the shuffle (the reply goes to it).
        origin: C,
        /// Remaining hops of the walk.
        ttl: u8,
        /// The sample: `origin` first, then some active and passive peers.
        peers: Vec<C>,
    },
    /// Answer to `Shuffle`: a sample of the receiver's passive view, sent to the origin.
    ShuffleReply {
        /// The sample.
        peers: Vec<C>,
    },
    /// The sender's whole set of subscribed topics (replaces what it said before).
    Topics {
        /// Sorted, without duplicates.
        topics: Vec<TopicId>,
    },
    /// Plumtree GOSSIP: a message pushed along the tree (or sent on request).
    Gossip(Box<Payload>),
    /// Plumtree IHAVE: messages the sender holds and did not push to us.
    IHave {
        /// Their topic.
        topic: TopicId,
        /// The messages.
        entries: Vec<Announcement>,
    },
    /// Plumtree GRAFT: send these messages, and push `topic` to me from now on.
    Graft {
        /// The topic.
        topic: TopicId,
        /// Messages to send (may be empty: a graft to repair the tree only).
        ids: Vec<MessageId>,
    },
    /// Plumtree PRUNE: stop pushing `topic` to me (announce it instead).
    Prune {
        /// The topic.
        topic: TopicId,
    },
    /// Anti-entropy: the sender's digests of consecutive time buckets of `topic`.
    Digest {
        /// The topic.
        topic: TopicId,
        /// The first bucket's number (published_ms / bucket length).
        first_bucket: u64,
        /// One digest per bucket, from `first_bucket` on.
        buckets: Vec<BucketDigest>,
    },
    /// Anti-entropy: every id the sender holds in one bucket whose digest differed.
    BucketIds {
        /// The topic.
        topic: TopicId,
        /// The bucket.
        bucket: u64,
        /// The ids.
        ids: Vec<MessageId>,
        /// Set on the first list of an exchange: the receiver answers with its own list.
        want_reply: bool,
    },
    /// Anti-entropy: send me these messages (answered with `Gossip`).
    Pull {
        /// The topic.
        topic: TopicId,
        /// The ids.
        ids: Vec<MessageId>,
    },
}

impl<C> GossipMessage<C> {
    /// The message's name, for logs and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            GossipMessage::Join => "join",
            GossipMessage::ForwardJoin { .. } => "forward_join",
            GossipMessage::Neighbor { .. } => "neighbor",
            GossipMessage::NeighborReply { .. } => "neighbor_reply",
            GossipMessage::Disconnect => "disconnect",
            GossipMessage::Shuffle { .. } => "shuffle",
            GossipMessage::ShuffleReply { .. } => "shuffle_reply",
            GossipMessage::Topics { .. } => "topics",
            GossipMessage::Gossip(_) => "gossip",
            GossipMessage::IHave { .. } => "ihave",
            GossipMessage::Graft { .. } => "graft",
            GossipMessage::Prune { .. } => "prune",
            GossipMessage::Digest { .. } => "digest",
            GossipMessage::BucketIds { .. } => "bucket_ids",
            GossipMessage::Pull { .. } => "pull",
        }
    }

    /// Whether it is a membership message (HyParView).
    pub fn is_membership(&self) -> bool {
        matches!(
            self,
            GossipMessage::Join
                | GossipMessage::ForwardJoin { .. }
                | GossipMessage::Neighbor { .. }
                | GossipMessage::NeighborReply { .. }
                | GossipMessage::Disconnect
                | GossipMessage::Shuffle { .. }
                | GossipMessage::ShuffleReply { .. }
        )
    }
}
