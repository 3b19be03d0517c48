//! One iterative lookup: the candidate set, which contact to ask next, and when it is done
//! (Kademlia §2.3; disjoint paths from S/Kademlia §4.4).
//!
//! Candidates are kept sorted by XOR distance to the target. A candidate holds only the top 64
//! bits of its distance: they decide every comparison but between keys sharing their first 64
//! bits, and then the full distance is recomputed from the contact's key. That keeps a candidate
//! at 16 bytes for a 4-byte simulator contact instead of 40: the list is searched for every
//! contact of every answer, and by the time an answer arrives it is usually out of cache, so its
//! size in cache lines is most of the cost of handling the answer. Each path keeps at most `alpha`
//! queries in flight, always asking the closest candidate it has not asked yet among its `k`
//! closest that have not failed. A path is finished when those `k` closest have all answered (or
//! there are no more candidates to ask) and nothing is in flight; the lookup is finished when
//! every path is. With `d` disjoint paths the seeds are dealt round-robin and a contact belongs to
//! the path that discovered it first, so no node serves two paths.
//!
//! Depth records how a contact was found: seeds from the local table are at depth 1, a contact
//! first returned by a depth-`d` contact is at depth `d + 1`. The depth of the closest contact
//! in the result is the lookup's hop count.

use core::cmp::Ordering;

use crate::id::{Distance, Key};

use super::contact::Contact;

/// Candidates kept per path beyond `k`: backups for contacts that fail under churn. Bounds the
/// memory of a lookup whatever peers answer.
const SPARE_PER_PATH: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Waiting,
    InFlight,
    Answered,
    Failed,
}

#[derive(Clone, Copy, Debug)]
struct Candidate<C> {
    /// [`Distance::high_word`] of the distance to the target (see the module docs).
    high: u64,
    contact: C,
    status: Status,
    depth: u8,
    path: u8,
}

/// What a finished lookup cost and how deep it went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LookupStats {
    /// Discovery depth of the closest contact in the result (0 if the result is empty).
    pub hops: u8,
    /// Longest chain of queries that each depended on the previous answer: the deepest contact
    /// that was queried.
    pub rounds: u8,
    /// Requests sent.
    pub messages: u32,
    /// Requests that timed out, could not be delivered, or were answered badly.
    pub failures: u32,
}

/// The state of one lookup, independent of what it is for (find node, get, put).
#[derive(Clone, Debug)]
pub(crate) struct LookupState<C> {
    target: Key,
    candidates: Vec<Candidate<C>>,
    in_flight: Vec<u16>,
    k: usize,
    alpha: usize,
    stats: LookupStats,
}

impl<C: Contact> LookupState<C> {
    /// A lookup for `target` starting from `seeds` (any order; the local node must not be among
    /// them).
    pub fn new(target: Key, seeds: &[C], k: usize, alpha: usize, paths: usize) -> Self {
        let paths = paths.clamp(1, usize::from(u8::MAX));
        let mut lookup = LookupState {
            target,
            candidates: Vec::with_capacity(seeds.len().min(k * paths)),
            in_flight: vec![0; paths],
            k,
            alpha,
            stats: LookupStats::default(),
        };
        let mut sorted: Vec<(Distance, C)> =
            seeds.iter().map(|c| (c.distance_to(&target), *c)).collect();
        sorted.sort_unstable_by_key(|a| a.0);
        sorted.dedup_by(|a, b| a.1 == b.1);
        for (i, (distance, contact)) in sorted.into_iter().enumerate() {
            lookup.insert(contact, distance, 1, (i % paths) as u8);
        }
        lookup
    }

    /// The key being looked up.
    pub fn target(&self) -> &Key {
        &self.target
    }

    /// Picks the next contact to query, if any path may send another query now. `may_send` lets
    /// the caller veto a contact (for example one with too many requests in flight); a vetoed
    /// contact is skipped this time, not dropped.
    pub fn next_query(&mut self, mut may_send: impl FnMut(&C) -> bool) -> Option<C> {
        for path in 0..self.in_flight.len() {
            if usize::from(self.in_flight[path]) >= self.alpha {
                continue;
            }
            let mut live = 0;
            for cand in self
                .candidates
                .iter_mut()
                .filter(|c| usize::from(c.path) == path)
            {
                if cand.status == Status::Failed {
                    continue;
                }
                live += 1;
                if live > self.k {
                    break;
                }
                if cand.status == Status::Waiting && may_send(&cand.contact) {
                    cand.status = Status::InFlight;
                    self.in_flight[path] += 1;
                    self.stats.messages += 1;
                    self.stats.rounds = self.stats.rounds.max(cand.depth);
                    return Some(cand.contact);
                }
            }
        }
        None
    }

    /// `from` answered with `contacts` (already validated by the caller). Contacts equal to
    /// `local` are ignored. Returns false if `from` was not being queried by this lookup.
    pub fn on_response(&mut self, from: &C, contacts: &[C], local: &Key) -> bool {
        let Some(i) = self.position(from) else {
            return false;
        };
        if self.candidates[i].status != Status::InFlight {
            return false;
        }
        let (depth, path) = (self.candidates[i].depth, self.candidates[i].path);
        self.candidates[i].status = Status::Answered;
        self.in_flight[usize::from(path)] -= 1;
        let child = depth.saturating_add(1);
        // An honest answer lists its contacts nearest to the target first, so each goes at or
        // after where the previous one went: one forward scan places them all, where a binary
        // search per contact was a third of the cost of an answer (mispredicted branches over
        // a list just back from memory). Out of order contacts scan from the start.
        let mut previous: Option<(Distance, usize)> = None;
        // A contact is `local` exactly when it is at `local`'s distance from the target.
        let local = local.distance(&self.target);
        for contact in contacts {
            let distance = contact.distance_to(&self.target);
            if distance == local {
                continue;
            }
            let start = match previous {
                Some((d, at)) if d <= distance => at,
                _ => 0,
            };
            let at = self.nearer_than_from(start, &distance);
            previous = Some((distance, at));
            match self.find_at(at, contact, &distance) {
                // Depth is the shortest discovery chain, whatever order answers arrive in.
                Ok(j) => self.candidates[j].depth = self.candidates[j].depth.min(child),
                Err(at) => self.insert_at(at, *contact, distance, child, path),
            }
        }
        true
    }

    /// The query to `from` failed. Returns false if `from` was not being queried.
    pub fn on_failure(&mut self, from: &C) -> bool {
        let Some(i) = self.position(from) else {
            return false;
        };
        if self.candidates[i].status != Status::InFlight {
            return false;
        }
        self.candidates[i].status = Status::Failed;
        self.in_flight[usize::from(self.candidates[i].path)] -= 1;
        self.stats.failures += 1;
        true
    }

    /// Queries in flight on all paths.
    pub fn in_flight(&self) -> usize {
        self.in_flight.iter().map(|&n| usize::from(n)).sum()
    }

    /// Whether every path has heard from (or given up on) its `k` closest candidates and has
    /// nothing in flight. A caller whose `may_send` vetoed a candidate should treat "not done,
    /// nothing in flight, no query possible" as stuck and retry later.
    pub fn is_done(&self) -> bool {
        if self.in_flight() > 0 {
            return false;
        }
        (0..self.in_flight.len()).all(|path| {
            self.candidates
                .iter()
                .filter(|c| usize::from(c.path) == path && c.status != Status::Failed)
                .take(self.k)
                .all(|c| c.status == Status::Answered)
        })
    }

    /// The `k` closest contacts that answered, nearest first, and the lookup's statistics (with
    /// `hops` set from the nearest one).
    pub fn finish(&self) -> (Vec<C>, LookupStats) {
        let answered = self
            .candidates
            .iter()
            .filter(|c| c.status == Status::Answered)
            .take(self.k);
        let mut stats = self.stats;
        let mut result = Vec::with_capacity(self.k);
        for (i, c) in answered.enumerate() {
            if i == 0 {
                stats.hops = c.depth;
            }
            result.push(c.contact);
        }
        (result, stats)
    }

    fn position(&self, contact: &C) -> Option<usize> {
        self.locate(contact, &contact.distance_to(&self.target))
            .ok()
    }

    /// How candidate `c`'s distance compares with `distance`: by the top words, and only if
    /// those tie by the full distances.
    fn compare(target: &Key, c: &Candidate<C>, distance: &Distance) -> Ordering {
        c.high
            .cmp(&distance.high_word())
            .then_with(|| c.contact.distance_to(target).cmp(distance))
    }

    /// Where the candidates nearer than `distance` end.
    fn nearer_than(&self, distance: &Distance) -> usize {
        let target = &self.target;
        self.candidates
            .partition_point(|c| Self::compare(target, c, distance) == Ordering::Less)
    }

    /// [`nearer_than`](Self::nearer_than), knowing that the first `start` candidates are
    /// nearer: a linear scan from there.
    fn nearer_than_from(&self, start: usize, distance: &Distance) -> usize {
        let target = &self.target;
        start
            + self.candidates[start..]
                .iter()
                .take_while(|c| Self::compare(target, c, distance) == Ordering::Less)
                .count()
    }

    /// Where `contact`, at `distance` from the target, is in the sorted candidates (`Ok`), or
    /// where it would go (`Err`). Binary search, then a scan of the (almost always empty) run of
    /// equal distances.
    fn locate(&self, contact: &C, distance: &Distance) -> Result<usize, usize> {
        self.find_at(self.nearer_than(distance), contact, distance)
    }

    /// [`locate`](Self::locate) given `at`, where the candidates nearer than `distance` end.
    fn find_at(&self, at: usize, contact: &C, distance: &Distance) -> Result<usize, usize> {
        let target = &self.target;
        self.candidates[at..]
            .iter()
            .take_while(|c| Self::compare(target, c, distance) == Ordering::Equal)
            .position(|c| c.contact == *contact)
            .map(|i| at + i)
            .ok_or(at)
    }

    fn insert(&mut self, contact: C, distance: Distance, depth: u8, path: u8) {
        let at = self.nearer_than(&distance);
        self.insert_at(at, contact, distance, depth, path);
    }

    fn insert_at(&mut self, at: usize, contact: C, distance: Distance, depth: u8, path: u8) {
        let cap = (self.k + SPARE_PER_PATH * self.k / 2) * self.in_flight.len();
        if at >= cap {
            return;
        }
        self.candidates.insert(
            at,
            Candidate {
                high: distance.high_word(),
                contact,
                status: Status::Waiting,
                depth,
                path,
            },
        );
        if self.candidates.len() > cap {
            // Drop the farthest; a query in flight to it is forgotten (its answer is ignored).
            if let Some(dropped) = self.candidates.pop() {
                if dropped.status == Status::InFlight {
                    self.in_flight[usize::from(dropped.path)] -= 1;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "lookup_tests.rs"]
mod tests;
