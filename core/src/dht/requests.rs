//! The requests a DHT node has sent and not yet settled, by id and by deadline.
//!
//! Ids are handed out consecutively and every request gets the same timeout, so sending order,
//! id order and deadline order agree: one deque indexed by `id - first id` serves both as the
//! map from id to request (O(1), where a `BTreeMap` was a third of the cost of handling an
//! answer) and as the deadline queue (the front is the next to time out). Settled requests
//! leave a hole that is trimmed once it reaches the front, so the deque spans from the oldest
//! outstanding request to the newest: at most the requests sent within one timeout.

use std::collections::VecDeque;

use super::message::RequestId;
use crate::time::Instant;

/// Outstanding requests in the order sent (see the [module docs](self)).
#[derive(Clone, Debug)]
pub(crate) struct Requests<R> {
    /// The id of `slots[0]`.
    base: RequestId,
    /// `None` for a settled request. Never starts with `None`: holes at the front are popped,
    /// advancing `base`, so `base + len` is always the next id and no id is reused.
    slots: VecDeque<Option<(Instant, R)>>,
    /// Outstanding requests: the `Some` slots.
    live: usize,
    /// The latest deadline handed out, so deadlines never decrease even if the caller's clock
    /// does (with a monotonic clock it is just the last one).
    last_deadline: Instant,
}

/// Capacity beyond which an emptied deque gives its memory back: a million simulated nodes
/// mostly sit idle, and should not each keep a burst's worth of slots.
const KEEP_WHEN_EMPTY: usize = 8;

impl<R> Requests<R> {
    /// An empty table whose first request will get id `first`.
    pub fn new(first: RequestId) -> Self {
        Requests {
            base: first,
            slots: VecDeque::new(),
            live: 0,
            last_deadline: Instant::ZERO,
        }
    }

    /// Requests outstanding.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Books a request due by `deadline` (raised to the latest deadline so far, if earlier) and
    /// returns its id: one more than the previous request's, wrapping.
    pub fn push(&mut self, deadline: Instant, request: R) -> RequestId {
        let deadline = deadline.max(self.last_deadline);
        self.last_deadline = deadline;
        let id = self.next_id();
        self.slots.push_back(Some((deadline, request)));
        self.live += 1;
        id
    }

    /// The id the next request will get.
    fn next_id(&self) -> RequestId {
        self.base.wrapping_add(self.slots.len() as u64)
    }

    fn index(&self, id: RequestId) -> Option<usize> {
        let i = usize::try_from(id.wrapping_sub(self.base)).ok()?;
        (i < self.slots.len()).then_some(i)
    }

    /// The outstanding request `id`.
    pub fn get(&self, id: RequestId) -> Option<&R> {
        let i = self.index(id)?;
        self.slots[i].as_ref().map(|(_, r)| r)
    }

    /// Settles request `id`, returning it if it was outstanding.
    pub fn remove(&mut self, id: RequestId) -> Option<R> {
        let i = self.index(id)?;
        let (_, request) = self.slots[i].take()?;
        self.live -= 1;
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.base = self.base.wrapping_add(1);
        }
        if self.slots.is_empty() && self.slots.capacity() > KEEP_WHEN_EMPTY {
            self.slots = VecDeque::new();
        }
        Some(request)
    }

    /// The outstanding request with the earliest deadline (the lowest id among equal ones).
    pub fn first(&self) -> Option<(Instant, RequestId)> {
        match self.slots.front()? {
            Some((deadline, _)) => Some((*deadline, self.base)),
            None => unreachable!("holes are trimmed from the front"),
        }
    }

    /// Outstanding requests in id order.
    pub fn iter(&self) -> impl Iterator<Item = (RequestId, &R)> {
        let base = self.base;
        self.slots
            .iter()
            .enumerate()
            .filter_map(move |(i, s)| Some((base.wrapping_add(i as u64), &s.as_ref()?.1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Against a map by id and a set by (deadline, id), as the machine kept them before.
    #[test]
    fn matches_ordered_maps() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(9);
        let first = 1_000;
        let mut table = Requests::new(first);
        let mut by_id = BTreeMap::new();
        let mut now = 0u64;
        for step in 0..5_000u32 {
            now += rng.random_range(0..3);
            match rng.random_range(0..3) {
                0 | 1 => {
                    let deadline = Instant::from_nanos(now + 10);
                    let id = table.push(deadline, step);
                    by_id.insert(id, (deadline, step));
                }
                _ => {
                    // Settle a random outstanding one, or an unknown id.
                    let id = match by_id.keys().nth(rng.random_range(0..by_id.len().max(1))) {
                        Some(&id) if rng.random_bool(0.9) => id,
                        _ => rng.random(),
                    };
                    assert_eq!(table.remove(id), by_id.remove(&id).map(|(_, r)| r));
                    assert_eq!(table.remove(id), None, "settled twice");
                }
            }
            assert_eq!(table.len(), by_id.len());
            let earliest = by_id.iter().map(|(id, (d, _))| (*d, *id)).min();
            assert_eq!(table.first(), earliest);
            assert!(table
                .iter()
                .map(|(id, r)| (id, *r))
                .eq(by_id.iter().map(|(id, (_, r))| (*id, *r))));
            for (id, (_, r)) in &by_id {
                assert_eq!(table.get(*id), Some(r));
            }
        }
    }

    #[test]
    fn ids_are_consecutive_and_deadlines_never_decrease() {
        let mut table = Requests::new(7);
        let t = Instant::from_nanos;
        assert_eq!(table.push(t(100), 'a'), 7);
        assert_eq!(table.push(t(50), 'b'), 8);
        assert_eq!(table.first(), Some((t(100), 7)));
        assert_eq!(table.remove(7), Some('a'));
        assert_eq!(
            table.first(),
            Some((t(100), 8)),
            "raised to the earlier deadline"
        );
        assert_eq!(table.remove(8), Some('b'));
        assert_eq!(table.first(), None);
        assert_eq!(table.push(t(200), 'c'), 9);
    }
}
