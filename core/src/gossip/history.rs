//! The messages a node remembers: the seen cache, the payloads kept for repair, and the
//! per-topic time buckets anti-entropy compares.
//!
//! An entry lives from when the message is first seen until its publish time is `history` old,
//! so two nodes forget a message at the same moment (to within clock skew), and their digests of
//! old buckets stay comparable. Entries are queued in arrival order, which is publish order up
//! to propagation delays; expiry pops from the front, so an entry stuck behind a younger one is
//! forgotten a little late, never early. Digests only cover buckets far from either edge. Count and payload bytes are bounded: past `max_history` the
//! oldest entry goes; past `max_history_bytes` the oldest payloads go (their ids stay, so the
//! message is still recognised).

use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::Bytes;

use super::message::{BucketDigest, MessageId, Payload, TopicId};
use crate::time::{Duration, Instant};

/// What became of a remembered message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Delivered (or published here) and forwarded.
    Delivered,
    /// Refused by the validator, or ignored: never forwarded.
    Dropped,
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub topic: TopicId,
    pub published_ms: u64,
    pub hops: u16,
    /// Kept for grafts and pulls while the byte budget allows.
    pub data: Option<Bytes>,
}

/// Bounded memory of recent messages.
#[derive(Debug)]
pub(crate) struct History {
    entries: HashMap<MessageId, Entry>,
    /// Arrival order: (publish time, id). Ids already removed are skipped when reached.
    by_time: VecDeque<(u64, MessageId)>,
    /// Anti-entropy index of delivered messages: (topic, bucket, id).
    by_bucket: BTreeSet<(TopicId, u64, MessageId)>,
    /// Messages whose payload is held, oldest first (insertion order), for the byte budget.
    payloads: VecDeque<MessageId>,
    payload_bytes: usize,
    history_ms: u64,
    bucket_ms: u64,
    settle_ms: u64,
    max_entries: usize,
    max_bytes: usize,
}

impl History {
    pub fn new(
        history: Duration,
        bucket: Duration,
        settle: Duration,
        max_entries: usize,
        max_bytes: usize,
    ) -> Self {
        History {
            entries: HashMap::new(),
            by_time: VecDeque::new(),
            by_bucket: BTreeSet::new(),
            payloads: VecDeque::new(),
            payload_bytes: 0,
            history_ms: history.as_millis().max(1),
            bucket_ms: bucket.as_millis().max(1),
            settle_ms: settle.as_millis(),
            max_entries,
            max_bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn contains(&self, id: &MessageId) -> bool {
        self.entries.contains_key(id)
    }

    pub fn bucket_of(&self, published_ms: u64) -> u64 {
        published_ms / self.bucket_ms
    }

    /// Whether a message published at `published_ms` is young enough to be remembered at
    /// `now`: older ones may already be forgotten elsewhere, so accepting them could deliver a
    /// replay twice.
    pub fn in_window(&self, now: Instant, published_ms: u64) -> bool {
        published_ms.saturating_add(self.history_ms) > now.as_nanos() / 1_000_000
    }

    /// Remembers a message (a new id only). Returns false if it was already known.
    pub fn insert(&mut self, id: MessageId, payload: &Payload, fate: Fate) -> bool {
        if self.entries.contains_key(&id) {
            return false;
        }
        while self.entries.len() >= self.max_entries {
            match self.by_time.pop_front() {
                Some((_, oldest)) => self.remove(&oldest),
                None => break,
            }
        }
        let data = (fate == Fate::Delivered).then(|| payload.data.clone());
        if let Some(d) = &data {
            self.payload_bytes += d.len();
            self.payloads.push_back(id);
        }
        self.entries.insert(
            id,
            Entry {
                topic: payload.topic,
                published_ms: payload.published_ms,
                hops: payload.hops,
                data,
            },
        );
        self.by_time.push_back((payload.published_ms, id));
        if fate == Fate::Delivered {
            let bucket = self.bucket_of(payload.published_ms);
            self.by_bucket.insert((payload.topic, bucket, id));
        }
        self.trim_payloads();
        true
    }

    fn trim_payloads(&mut self) {
        while self.payload_bytes > self.max_bytes {
            let Some(id) = self.payloads.pop_front() else {
                break;
            };
            if let Some(data) = self.entries.get_mut(&id).and_then(|e| e.data.take()) {
                self.payload_bytes -= data.len();
            }
        }
    }

    fn remove(&mut self, id: &MessageId) {
        if let Some(e) = self.entries.remove(id) {
            let bucket = self.bucket_of(e.published_ms);
            self.by_bucket.remove(&(e.topic, bucket, *id));
            if let Some(d) = e.data {
                self.payload_bytes -= d.len();
                // Its place in `payloads` is skipped when reached.
            }
        }
    }

    /// Forgets every message published `history` or longer ago.
    pub fn expire(&mut self, now: Instant) {
        let now_ms = now.as_nanos() / 1_000_000;
        while let Some(&(published, id)) = self.by_time.front() {
            let live = self.entries.get(&id).map(|e| e.published_ms) == Some(published);
            if live && published.saturating_add(self.history_ms) > now_ms {
                break;
            }
            self.by_time.pop_front();
            if live {
                self.remove(&id);
            }
        }
        // Drop stale ids from the front of the payload queue so it stays bounded by entries.
        while let Some(id) = self.payloads.front() {
            match self.entries.get(id) {
                Some(e) if e.data.is_some() => break,
                _ => {
                    self.payloads.pop_front();
                }
            }
        }
    }

    /// When the oldest entry expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        let &(published, _) = self.by_time.front()?;
        let at_ms = published.saturating_add(self.history_ms);
        Some(Instant::from_nanos(at_ms.saturating_mul(1_000_000)))
    }

    /// The payload of a delivered message, rebuilt for sending on.
    pub fn payload(&self, id: &MessageId) -> Option<Payload> {
        let e = self.entries.get(id)?;
        Some(Payload {
            topic: e.topic,
            published_ms: e.published_ms,
            hops: e.hops,
            data: e.data.clone()?,
        })
    }

    /// The buckets anti-entropy compares at `now`: those wholly inside the history window,
    /// with a bucket of margin for clock skew, that ended at least `settle` ago (younger
    /// messages may still be on their way through the tree).
    pub fn settled_buckets(&self, now: Instant) -> core::ops::Range<u64> {
        let now_ms = now.as_nanos() / 1_000_000;
        let oldest_ms = now_ms.saturating_sub(self.history_ms);
        let first = oldest_ms / self.bucket_ms + 2;
        let end = now_ms.saturating_sub(self.settle_ms) / self.bucket_ms;
        first..end.max(first)
    }

    /// The digests of the buckets in `range` of `topic`, in one pass over the index.
    pub fn digests(&self, topic: TopicId, range: core::ops::Range<u64>) -> Vec<BucketDigest> {
        let mut out =
            vec![BucketDigest::default(); (range.end.saturating_sub(range.start)) as usize];
        if out.is_empty() {
            return out;
        }
        let lo = (topic, range.start, MessageId([0; 16]));
        let hi = (topic, range.end - 1, MessageId([0xff; 16]));
        for &(_, bucket, id) in self.by_bucket.range(lo..=hi) {
            let d = &mut out[(bucket - range.start) as usize];
            d.count = d.count.saturating_add(1);
            d.xor = d.xor.xor(id);
        }
        out
    }

    /// The digest of one bucket of `topic`.
    #[cfg(test)]
    pub fn digest(&self, topic: TopicId, bucket: u64) -> BucketDigest {
        self.ids_in(topic, bucket)
            .fold(BucketDigest::default(), |d, id| BucketDigest {
                count: d.count.saturating_add(1),
                xor: d.xor.xor(id),
            })
    }

    /// The delivered ids in one bucket of `topic`, in order.
    pub fn ids_in(&self, topic: TopicId, bucket: u64) -> impl Iterator<Item = MessageId> + '_ {
        let lo = (topic, bucket, MessageId([0; 16]));
        let hi = (topic, bucket, MessageId([0xff; 16]));
        self.by_bucket.range(lo..=hi).map(|&(_, _, id)| id)
    }

    /// Bytes of payload held.
    pub fn payload_bytes(&self) -> usize {
        self.payload_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(topic: u64, published_ms: u64, data: &'static [u8]) -> Payload {
        Payload {
            topic: TopicId(topic),
            published_ms,
            hops: 0,
            data: Bytes::from_static(data),
        }
    }

    fn history() -> History {
        History::new(
            Duration::from_secs(10),
            Duration::from_secs(1),
            Duration::from_secs(1),
            4,
            10,
        )
    }

    #[test]
    fn remembers_once_and_expires_by_publish_time() {
        let mut h = history();
        let p = payload(1, 1_000, b"abc");
        assert!(h.insert(p.id(), &p, Fate::Delivered));
        assert!(!h.insert(p.id(), &p, Fate::Delivered));
        assert_eq!(h.next_expiry(), Some(Instant::from_nanos(11_000_000_000)));
        h.expire(Instant::from_nanos(10_999_000_000));
        assert!(h.contains(&p.id()));
        h.expire(Instant::from_nanos(11_000_000_000));
        assert!(!h.contains(&p.id()));
        assert_eq!(h.digest(TopicId(1), 1), BucketDigest::default());
        assert_eq!(h.payload_bytes(), 0);
    }

    #[test]
    fn bounded_in_count_and_bytes() {
        let mut h = history();
        let ps: Vec<Payload> = (0..6).map(|i| payload(1, 1_000 + i, b"abcd")).collect();
        for p in &ps {
            h.insert(p.id(), p, Fate::Delivered);
            assert!(h.len() <= 4);
            assert!(h.payload_bytes() <= 10);
        }
        // The two oldest are forgotten; of the rest only the newest two keep their payloads.
        assert!(!h.contains(&ps[0].id()) && !h.contains(&ps[1].id()));
        assert!(h.payload(&ps[3].id()).is_none());
        assert_eq!(h.payload(&ps[5].id()), Some(ps[5].clone()));
    }

    #[test]
    fn digests_cover_delivered_messages_per_bucket() {
        let mut h = History::new(
            Duration::from_secs(10),
            Duration::from_secs(1),
            Duration::from_secs(1),
            16,
            1000,
        );
        let a = payload(1, 2_100, b"a");
        let b = payload(1, 2_900, b"b");
        let c = payload(1, 3_100, b"c");
        let other_topic = payload(2, 2_500, b"d");
        let dropped = payload(1, 2_200, b"e");
        for p in [&a, &b, &c, &other_topic] {
            h.insert(p.id(), p, Fate::Delivered);
        }
        h.insert(dropped.id(), &dropped, Fate::Dropped);
        let d = h.digest(TopicId(1), 2);
        assert_eq!(d.count, 2);
        assert_eq!(d.xor, a.id().xor(b.id()));
        let ids: Vec<MessageId> = h.ids_in(TopicId(1), 2).collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&a.id()) && ids.contains(&b.id()));
        assert_eq!(h.digest(TopicId(1), 3).count, 1);
        let all = h.digests(TopicId(1), 1..5);
        let one_by_one: Vec<BucketDigest> = (1..5).map(|b| h.digest(TopicId(1), b)).collect();
        assert_eq!(all, one_by_one);
        assert!(h.digests(TopicId(1), 3..3).is_empty());
        assert!(h.payload(&dropped.id()).is_none());
    }

    #[test]
    fn settled_buckets_stay_inside_the_window() {
        let h = history();
        let now = Instant::from_nanos(60_500_000_000);
        let r = h.settled_buckets(now);
        // Window 50.5 s .. 60.5 s: buckets 52..59 are wholly inside with margin.
        assert_eq!(r, 52..59);
        assert!(h.in_window(now, 50_600));
        assert!(!h.in_window(now, 50_500));
    }
}
