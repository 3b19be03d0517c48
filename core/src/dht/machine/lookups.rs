//! The lookups a [`Dht`] runs (the algorithm itself is `lookup.rs`): starting one, sending what
//! it may send within the request limits, waking stalled ones, finishing each by its goal, and
//! the store round that ends a put.

use std::collections::{BTreeMap, BTreeSet};

use smallvec::SmallVec;

use super::outgoing::{in_flight_to, Expect, Purpose};
use super::Dht;
use crate::dht::event::{DhtError, DhtEvent, LookupId};
use crate::dht::lookup::{LookupState, LookupStats};
use crate::dht::message::{DhtMessage, Record};
use crate::dht::Contact;
use crate::id::Key;
use crate::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub(super) enum Goal {
    FindNode,
    Bootstrap,
    Refresh,
    Get,
    Put(Record),
}

#[derive(Clone, Debug)]
pub(super) struct Lookup<C> {
    pub(super) state: LookupState<C>,
    pub(super) goal: Goal,
}

/// The store phase of a put: the closest nodes were found and asked to store the record.
#[derive(Clone, Copy, Debug)]
pub(super) struct StoreRound {
    pub(super) key: Key,
    pub(super) waiting: usize,
    pub(super) stored: usize,
    pub(super) refused: usize,
    pub(super) stats: LookupStats,
}

impl<C: Contact> Dht<C> {
    pub(super) fn take_lookup_id(&mut self) -> LookupId {
        let id = self.next_lookup;
        self.next_lookup += 1;
        id
    }

    /// Removes a lookup, freeing the map's memory when it was the last: a million mostly idle
    /// simulated nodes should not each keep a node of a B-tree that once held lookups.
    pub(super) fn remove_lookup(&mut self, id: LookupId) -> Option<Lookup<C>> {
        let lookup = self.lookups.remove(&id)?;
        if self.lookups.is_empty() {
            self.lookups = BTreeMap::new();
        }
        Some(lookup)
    }

    pub(super) fn start_lookup(
        &mut self,
        now: Instant,
        target: Key,
        goal: Goal,
    ) -> Result<LookupId, DhtError> {
        if self.lookups.len() >= self.config.max_lookups {
            return Err(DhtError::TooManyLookups {
                max: self.config.max_lookups,
            });
        }
        let k = self.config.routing.k;
        self.table.closest(&target, k, &mut self.scratch);
        if self.scratch.is_empty() {
            return Err(DhtError::NoContacts);
        }
        if let Some(index) = self.local.bucket_index(&target) {
            self.table.touch_bucket(now, index);
        }
        let state = LookupState::new(
            target,
            &self.scratch,
            k,
            self.config.alpha,
            self.config.disjoint_paths,
        );
        let id = self.take_lookup_id();
        self.lookups.insert(id, Lookup { state, goal });
        self.step_lookup(now, id);
        Ok(id)
    }

    /// Sends what the lookup may send, and finishes it if it is done.
    pub(super) fn step_lookup(&mut self, now: Instant, id: LookupId) {
        let Some(lookup) = self.lookups.get_mut(&id) else {
            return;
        };
        let max_peer = self.config.max_in_flight_per_peer;
        let room = self
            .config
            .max_in_flight
            .saturating_sub(self.requests.len());
        // A step picks at most alpha per path: inline for a single path (the default).
        let mut picked: SmallVec<[C; 8]> = SmallVec::new();
        let per_peer = &self.per_peer;
        while picked.len() < room {
            let next = lookup.state.next_query(|c| {
                usize::from(in_flight_to(per_peer, c)) < max_peer && !picked.contains(c)
            });
            match next {
                Some(c) => picked.push(c),
                None => break,
            }
        }
        let target = *lookup.state.target();
        let expect = match lookup.goal {
            Goal::Get => Expect::NodesOrValue,
            _ => Expect::Nodes,
        };
        for to in picked {
            let msg = |id| match expect {
                Expect::NodesOrValue => DhtMessage::FindValue { id, key: target },
                _ => DhtMessage::FindNode { id, target },
            };
            self.send_request(now, to, expect, Purpose::Lookup(id), msg);
        }
        let lookup = &self.lookups[&id];
        if lookup.state.is_done() {
            self.unstall(id);
            self.finish_lookup(now, id);
        } else if lookup.state.in_flight() == 0 {
            // Every candidate it could ask is busy with other requests: wait for one to end.
            self.stalled.insert(id);
        } else {
            self.unstall(id);
        }
    }

    pub(super) fn unstall(&mut self, id: LookupId) {
        if self.stalled.remove(&id) && self.stalled.is_empty() {
            self.stalled = BTreeSet::new();
        }
    }

    pub(super) fn step_stalled(&mut self, now: Instant) {
        if self.stalled.is_empty() {
            return;
        }
        let stalled: Vec<LookupId> = self.stalled.iter().copied().collect();
        for id in stalled {
            self.step_lookup(now, id);
        }
    }

    fn finish_lookup(&mut self, now: Instant, id: LookupId) {
        let Some(lookup) = self.remove_lookup(id) else {
            return;
        };
        let (closest, stats) = lookup.state.finish();
        let target = *lookup.state.target();
        match lookup.goal {
            Goal::FindNode => self.emit(DhtEvent::LookupDone {
                id,
                target,
                closest,
                stats,
            }),
            Goal::Bootstrap => {
                if self.config.join_refresh {
                    // Every bucket in range is "stale" to an idle time of zero.
                    let buckets: Vec<u8> = self.table.stale_buckets(now, Duration::ZERO).collect();
                    for index in buckets {
                        let target = self.table.random_key_in_bucket(index, &mut self.rng);
                        // Past max_lookups the rest wait for the periodic refresh.
                        let _ = self.start_lookup(now, target, Goal::Refresh);
                    }
                }
                let contacts = self.table.len();
                self.emit(DhtEvent::Bootstrapped { contacts });
            }
            Goal::Refresh => {}
            Goal::Get => self.emit(DhtEvent::GetDone {
                id,
                key: target,
                record: None,
                stats,
            }),
            Goal::Put(record) => {
                let round = StoreRound {
                    key: record.key,
                    waiting: closest.len(),
                    stored: 0,
                    refused: 0,
                    stats,
                };
                self.stores.insert(id, round);
                for to in closest {
                    let record = Box::new(record.clone());
                    let msg = move |id| DhtMessage::Store { id, record };
                    self.send_request(now, to, Expect::Stored, Purpose::Store(id), msg);
                }
                self.maybe_finish_store(id);
            }
        }
    }

    pub(super) fn maybe_finish_store(&mut self, id: LookupId) {
        if let Some(round) = self.stores.get(&id) {
            if round.waiting == 0 {
                let round = self.stores.remove(&id).expect("just seen");
                if self.stores.is_empty() {
                    // An emptied B-tree keeps its root node allocated: free it.
                    self.stores = BTreeMap::new();
                }
                self.emit(DhtEvent::PutDone {
                    id,
                    key: round.key,
                    stored: round.stored,
                    refused: round.refused,
                    stats: round.stats,
                });
            }
        }
    }
}
