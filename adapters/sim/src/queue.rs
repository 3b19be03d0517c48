//! The simulator's event queue, ordered by virtual time with ties broken by insertion order, so
//! that a run is a pure function of its seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use starling_core::time::Instant;

use crate::NodeId;

/// Something that happens at a point in virtual time.
#[derive(Debug)]
pub(crate) enum Pending<M> {
    /// A message reaches `to`.
    Deliver { to: NodeId, from: NodeId, msg: M },
    /// `node`'s timer, armed for the entry's time, fires (ignored if re-armed since).
    Timer { node: NodeId },
}

/// One queued event. Kept small: a million nodes keep ~10^7 of these in flight.
#[derive(Debug)]
pub(crate) struct Entry<M> {
    pub(crate) at: Instant,
    pub(crate) seq: u64,
    pub(crate) what: Pending<M>,
}

impl<M> PartialEq for Entry<M> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<M> Eq for Entry<M> {}
impl<M> PartialOrd for Entry<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for Entry<M> {
    /// Reversed, so the max-heap pops the earliest entry first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Width of one calendar bucket: events within it are ordered by a small heap.
const BUCKET_NANOS: u64 = 1_000_000;
/// Buckets in the ring; with 1 ms buckets the ring spans about 4 s of virtual time, enough for
/// timers and latencies of the protocols simulated. Later events wait in an overflow heap.
const BUCKETS: u64 = 4096;

/// Min-queue of pending events: a calendar queue (Brown 1988).
///
/// A single binary heap of 10^7 entries spends most of its time in cache misses. Here entries
/// go into 1 ms buckets (an O(1) push); only the current bucket is a heap, small enough to stay
/// in cache. The order is exactly that of one heap on (time, insertion order), so the structure
/// is invisible in the trace.
pub(crate) struct EventQueue<M> {
    /// Entries of bucket `current_bucket` (and of any earlier time pushed since).
    current: BinaryHeap<Entry<M>>,
    current_bucket: u64,
    /// Ring of later buckets: slot `b % BUCKETS` holds bucket `b` for
    /// `current_bucket < b < current_bucket + BUCKETS`.
    ring: Vec<Vec<Entry<M>>>,
    ring_len: usize,
    /// Entries beyond the ring's horizon.
    overflow: BinaryHeap<Entry<M>>,
    next_seq: u64,
}

impl<M> EventQueue<M> {
    pub(crate) fn new() -> Self {
        EventQueue {
            current: BinaryHeap::new(),
            current_bucket: 0,
            ring: (0..BUCKETS).map(|_| Vec::new()).collect(),
            ring_len: 0,
            overflow: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    pub(crate) fn push(&mut self, at: Instant, what: Pending<M>) {
        let seq = self.reserve();
        self.place(Entry { at, seq, what });
    }

    /// Takes the next insertion number without queueing anything, for an entry that may be
    /// queued later with [`push_reserved`](Self::push_reserved) (or never): it then sorts
    /// exactly where it would have, had it been pushed now.
    pub(crate) fn reserve(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Queues an entry under an insertion number taken earlier by [`reserve`](Self::reserve).
    pub(crate) fn push_reserved(&mut self, at: Instant, seq: u64, what: Pending<M>) {
        debug_assert!(seq < self.next_seq, "not reserved");
        self.place(Entry { at, seq, what });
    }

    fn place(&mut self, entry: Entry<M>) {
        let bucket = entry.at.as_nanos() / BUCKET_NANOS;
        if bucket <= self.current_bucket {
            // Earlier than anything in the ring, so ordering within `current` is enough.
            self.current.push(entry);
        } else if bucket < self.current_bucket + BUCKETS {
            self.ring[(bucket % BUCKETS) as usize].push(entry);
            self.ring_len += 1;
        } else {
            self.overflow.push(entry);
        }
    }

    /// Pops the earliest entry if it is due at or before `until`.
    pub(crate) fn pop_until(&mut self, until: Instant) -> Option<Entry<M>> {
        let limit = until.as_nanos() / BUCKET_NANOS;
        while self.current.is_empty() {
            if !self.advance(limit) {
                return None;
            }
        }
        if self.current.peek()?.at > until {
            return None;
        }
        self.current.pop()
    }

    /// Moves the next bucket into `current`, never past bucket `limit` (the caller's horizon).
    /// False when nothing is due by then.
    ///
    /// Not moving past the horizon matters: a current bucket ahead of the clock would send
    /// every later push into `current`, turning the calendar into one large heap.
    fn advance(&mut self, limit: u64) -> bool {
        if self.current_bucket >= limit {
            return false;
        }
        if self.ring_len == 0 {
            // Nothing in the ring: jump straight to the overflow's earliest bucket, if due.
            let Some(first) = self.overflow.peek() else {
                return false;
            };
            let bucket = first.at.as_nanos() / BUCKET_NANOS;
            if bucket > limit {
                return false;
            }
            self.current_bucket = bucket - 1;
        }
        self.current_bucket += 1;
        let slot = (self.current_bucket % BUCKETS) as usize;
        let entries = std::mem::take(&mut self.ring[slot]);
        self.ring_len -= entries.len();
        // Reuse the drained heap's allocation for the slot just vacated.
        let mut spare = std::mem::replace(&mut self.current, BinaryHeap::from(entries)).into_vec();
        spare.clear();
        self.ring[slot] = spare;
        // The horizon moved one bucket: pull in overflow entries that now fit.
        while self
            .overflow
            .peek()
            .is_some_and(|e| e.at.as_nanos() / BUCKET_NANOS < self.current_bucket + BUCKETS)
        {
            if let Some(e) = self.overflow.pop() {
                self.place(e);
            }
        }
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.current.len() + self.ring_len + self.overflow.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_then_insertion_order() {
        let mut q = EventQueue::<u8>::new();
        let t = Instant::from_nanos;
        q.push(t(5), Pending::Timer { node: 1 });
        q.push(t(3), Pending::Timer { node: 2 });
        q.push(t(5), Pending::Timer { node: 3 });
        q.push(t(9), Pending::Timer { node: 4 });
        let order: Vec<_> = std::iter::from_fn(|| q.pop_until(t(5)))
            .map(|e| match e.what {
                Pending::Timer { node } => node,
                Pending::Deliver { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(order, vec![2, 1, 3]);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn matches_a_plain_heap_across_buckets_and_overflow() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let mut q = EventQueue::<u32>::new();
        let mut reference = BinaryHeap::new();
        let mut now = 0u64;
        let mut popped = 0;
        for i in 0..20_000u32 {
            // Mix same-instant, near (in-ring) and far (overflow) deadlines.
            let delay = match rng.random_range(0..4) {
                0 => 0,
                1 => rng.random_range(0..BUCKET_NANOS),
                2 => rng.random_range(0..BUCKET_NANOS * BUCKETS),
                _ => rng.random_range(0..BUCKET_NANOS * BUCKETS * 3),
            };
            let at = Instant::from_nanos(now + delay);
            q.push(at, Pending::Timer { node: i });
            reference.push(std::cmp::Reverse((at, i)));
            if rng.random_bool(0.5) {
                let until = Instant::from_nanos(now + rng.random_range(0..BUCKET_NANOS * 10));
                while let Some(e) = q.pop_until(until) {
                    let std::cmp::Reverse((at, node)) = reference.pop().unwrap();
                    assert_eq!(e.at, at);
                    assert!(matches!(e.what, Pending::Timer { node: n } if n == node));
                    now = at.as_nanos();
                    popped += 1;
                }
                assert!(reference.peek().is_none_or(|r| r.0 .0 > until));
            }
            assert_eq!(q.len(), reference.len());
        }
        while let Some(e) = q.pop_until(Instant::MAX) {
            assert_eq!(e.at, reference.pop().unwrap().0 .0);
            popped += 1;
        }
        assert_eq!(popped, 20_000);
    }
}
