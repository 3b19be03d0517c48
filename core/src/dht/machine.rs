//! The DHT state machine: requests and their timers, lookups, puts and gets, refresh and
//! republish.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use smallvec::SmallVec;

use super::config::{DhtConfig, DhtConfigError};
use super::contact::Contact;
use super::event::{DhtError, DhtEvent, LookupId, Misbehaviour};
use super::lookup::{LookupState, LookupStats};
use super::message::{DhtMessage, Record, RequestId, StoreResult};
use super::requests::Requests;
use super::routing::{Failure, Observed, RoutingTable};
use super::store::{AcceptAll, RecordStore, RecordValidator, StoreError, Validation};
use crate::id::{Distance, Key};
use crate::machine::{Machine, Output};
use crate::rng::{seeded, MachineRng};
use crate::time::{Duration, Instant};

/// What the DHT asks its driver to do.
pub type DhtOutput<C> = Output<C, DhtMessage<C>, DhtEvent<C>>;

/// The answer a request waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Pong,
    Nodes,
    NodesOrValue,
    Stored,
}

/// Why a request was sent, so its answer (or silence) reaches the right place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Lookup(LookupId),
    Store(LookupId),
    /// Ping-before-evict: the least recently seen contact of a full bucket.
    EvictionCheck,
}

#[derive(Clone, Copy, Debug)]
struct Request<C> {
    to: C,
    expect: Expect,
    purpose: Purpose,
}

#[derive(Clone, Debug)]
enum Goal {
    FindNode,
    Bootstrap,
    Refresh,
    Get,
    Put(Record),
}

#[derive(Clone, Debug)]
struct Lookup<C> {
    state: LookupState<C>,
    goal: Goal,
}

/// The store phase of a put: the closest nodes were found and asked to store the record.
#[derive(Clone, Copy, Debug)]
struct StoreRound {
    key: Key,
    waiting: usize,
    stored: usize,
    refused: usize,
    stats: LookupStats,
}

/// A record this node published, kept to be stored again every `republish_interval`.
#[derive(Clone, Debug)]
struct Published {
    record: Record,
    expires: Instant,
}

/// Counters for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DhtStats {
    /// Requests sent.
    pub requests_sent: u64,
    /// Requests received and answered.
    pub requests_answered: u64,
    /// Requests that timed out or could not be delivered.
    pub timeouts: u64,
    /// Answers that broke the protocol (counted against the peer).
    pub misbehaviours: u64,
    /// Answers that named no outstanding request (late, or not from the peer asked).
    pub stray_answers: u64,
    /// Pings sent to the stale head of a full bucket (ping-before-evict).
    pub eviction_pings: u64,
}

/// A Kademlia node: routing table, record store, and the lookups it runs. See the
/// [module docs](super) for the protocol.
pub struct Dht<C: Contact> {
    config: DhtConfig,
    local: Key,
    table: RoutingTable<C>,
    store: RecordStore,
    validator: Box<dyn RecordValidator + Send>,
    rng: MachineRng,
    next_lookup: LookupId,
    /// Outstanding requests, by id and by deadline (ids are handed out here).
    requests: Requests<Request<C>>,
    /// Requests in flight per peer, for peers with any. A few dozen at most (alpha per running
    /// lookup), so a list beats a hash map, and it is freed when empty.
    per_peer: Vec<(C, u16)>,
    lookups: BTreeMap<LookupId, Lookup<C>>,
    stalled: BTreeSet<LookupId>,
    stores: BTreeMap<LookupId, StoreRound>,
    published: BTreeMap<Key, Published>,
    outputs: VecDeque<DhtOutput<C>>,
    next_refresh: Instant,
    next_republish: Instant,
    stats: DhtStats,
    scratch: Vec<C>,
    /// Whether a join ([`Dht::bootstrap`]) has been started.
    bootstrapped: bool,
}

impl<C: Contact> Dht<C> {
    /// A DHT node at `local` (its own key: a real node passes its `PeerId`'s key).
    ///
    /// Fails if the configuration is invalid. `seed` drives the only randomness (refresh
    /// targets, request ids), so a run replays exactly.
    pub fn new(
        config: DhtConfig,
        local: Key,
        seed: u64,
        now: Instant,
    ) -> Result<Self, DhtConfigError> {
        config.validate()?;
        let mut rng = seeded(seed);
        let next_request = u64::from(rand::Rng::random::<u32>(&mut rng));
        Ok(Dht {
            table: RoutingTable::new(local, config.routing),
            store: RecordStore::new(config.store),
            validator: Box::new(AcceptAll),
            rng,
            next_lookup: 1,
            requests: Requests::new(next_request),
            per_peer: Vec::new(),
            lookups: BTreeMap::new(),
            stalled: BTreeSet::new(),
            stores: BTreeMap::new(),
            published: BTreeMap::new(),
            outputs: VecDeque::new(),
            next_refresh: now + config.refresh_interval,
            next_republish: now + config.republish_interval,
            stats: DhtStats::default(),
            scratch: Vec::new(),
            bootstrapped: false,
            local,
            config,
        })
    }

    /// Replaces the record validator (the default accepts every record). It is asked about
    /// records this node is asked to store, records it puts, and records a get receives.
    pub fn set_validator(&mut self, validator: Box<dyn RecordValidator + Send>) {
        self.validator = validator;
    }

    /// The routing table.
    pub fn table(&self) -> &RoutingTable<C> {
        &self.table
    }

    /// The local record store.
    pub fn store(&self) -> &RecordStore {
        &self.store
    }

    /// Counters since construction.
    pub fn stats(&self) -> DhtStats {
        self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &DhtConfig {
        &self.config
    }

    /// Bytes of routing state: the table plus this machine's own bookkeeping.
    pub fn routing_bytes(&self) -> usize {
        self.table.memory_bytes()
    }

    /// Joins the network through `seeds`: they enter the routing table, then a lookup for our
    /// own key fills it with our neighbourhood and tells our neighbours about us. Reports
    /// [`DhtEvent::Bootstrapped`]. Buckets farther out fill as other nodes contact us and are
    /// refreshed when idle.
    pub fn bootstrap(&mut self, now: Instant, seeds: &[C]) -> Result<LookupId, DhtError> {
        for seed in seeds {
            self.observe(now, *seed);
        }
        let local = self.local;
        let id = self.start_lookup(now, local, Goal::Bootstrap)?;
        self.bootstrapped = true;
        Ok(id)
    }

    /// Whether a join has been started with [`Dht::bootstrap`]. A host joins through the first
    /// peer it dials unless one was (a table filled by peers that contacted us first is not a
    /// join: we have not looked ourselves up).
    pub fn has_bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    /// Finds the k nodes closest to `target`; reports [`DhtEvent::LookupDone`].
    pub fn find_node(&mut self, now: Instant, target: Key) -> Result<LookupId, DhtError> {
        self.start_lookup(now, target, Goal::FindNode)
    }

    /// Fetches the record stored under `key`; reports [`DhtEvent::GetDone`]. A record in the
    /// local store is returned without a lookup.
    pub fn get(&mut self, now: Instant, key: Key) -> Result<LookupId, DhtError> {
        if let Some(record) = self.store.get(now, &key) {
            let record = Box::new(record.clone());
            let id = self.take_lookup_id();
            self.emit(DhtEvent::GetDone {
                id,
                key,
                record: Some(record),
                stats: LookupStats::default(),
            });
            return Ok(id);
        }
        self.start_lookup(now, key, Goal::Get)
    }

    /// Stores `record` at the k nodes closest to its key, and keeps republishing it every
    /// `republish_interval` until its TTL runs out; reports [`DhtEvent::PutDone`]. A TTL of 0
    /// means the configured default.
    pub fn put(&mut self, now: Instant, mut record: Record) -> Result<LookupId, DhtError> {
        let max = self.config.store.max_value_len;
        if record.value.len() > max {
            return Err(DhtError::ValueTooLarge {
                len: record.value.len(),
                max,
            });
        }
        if self.validator.validate(&record) == Validation::Reject {
            return Err(DhtError::Invalid);
        }
        if record.ttl_secs == 0 {
            record.ttl_secs = secs_u32(self.config.default_ttl);
        }
        let ttl = Duration::from_secs(u64::from(record.ttl_secs)).min(self.config.store.max_ttl);
        let id = self.start_lookup(now, record.key, Goal::Put(record.clone()))?;
        if self.published.len() < self.config.max_published
            || self.published.contains_key(&record.key)
        {
            let expires = now + ttl;
            self.published
                .insert(record.key, Published { record, expires });
        }
        Ok(id)
    }

    /// The driver could not deliver to `contact` (no route, dial failed, connection lost):
    /// every request waiting on it fails now instead of at its timeout.
    pub fn handle_unreachable(&mut self, now: Instant, contact: C) {
        if self.in_flight_to(&contact) == 0 {
            return;
        }
        let ids: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.to == contact)
            .map(|(id, _)| id)
            .collect();
        for id in ids {
            if let Some(request) = self.complete(id) {
                self.request_failed(now, request);
            }
        }
        self.step_stalled(now);
    }

    /// Requests in flight to `contact`.
    fn in_flight_to(&self, contact: &C) -> u16 {
        in_flight_to(&self.per_peer, contact)
    }

    fn take_lookup_id(&mut self) -> LookupId {
        let id = self.next_lookup;
        self.next_lookup += 1;
        id
    }

    /// Removes a lookup, freeing the map's memory when it was the last: a million mostly idle
    /// simulated nodes should not each keep a node of a B-tree that once held lookups.
    fn remove_lookup(&mut self, id: LookupId) -> Option<Lookup<C>> {
        let lookup = self.lookups.remove(&id)?;
        if self.lookups.is_empty() {
            self.lookups = BTreeMap::new();
        }
        Some(lookup)
    }

    fn emit(&mut self, event: DhtEvent<C>) {
        self.outputs.push_back(Output::Event(event));
    }

    fn start_lookup(
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
    fn step_lookup(&mut self, now: Instant, id: LookupId) {
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

    fn unstall(&mut self, id: LookupId) {
        if self.stalled.remove(&id) && self.stalled.is_empty() {
            self.stalled = BTreeSet::new();
        }
    }

    fn step_stalled(&mut self, now: Instant) {
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

    fn maybe_finish_store(&mut self, id: LookupId) {
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

    fn send_request(
        &mut self,
        now: Instant,
        to: C,
        expect: Expect,
        purpose: Purpose,
        msg: impl FnOnce(RequestId) -> DhtMessage<C>,
    ) {
        let deadline = now + self.config.request_timeout;
        let id = self.requests.push(
            deadline,
            Request {
                to,
                expect,
                purpose,
            },
        );
        match self.per_peer.iter_mut().find(|(c, _)| *c == to) {
            Some((_, n)) => *n += 1,
            None => self.per_peer.push((to, 1)),
        }
        self.stats.requests_sent += 1;
        self.outputs.push_back(Output::Send { to, msg: msg(id) });
    }

    /// Removes a finished request from every index.
    fn complete(&mut self, id: RequestId) -> Option<Request<C>> {
        let request = self.requests.remove(id)?;
        if let Some(i) = self.per_peer.iter().position(|(c, _)| *c == request.to) {
            self.per_peer[i].1 -= 1;
            if self.per_peer[i].1 == 0 {
                self.per_peer.swap_remove(i);
                if self.per_peer.is_empty() {
                    // Most nodes are idle most of the time: give the memory back.
                    self.per_peer = Vec::new();
                }
            }
        }
        Some(request)
    }

    /// A request timed out, could not be delivered, or was answered badly.
    fn request_failed(&mut self, now: Instant, request: Request<C>) {
        self.stats.timeouts += 1;
        if let Failure::Removed { .. } = self.table.failed(&request.to) {
            // Nothing else to do: the table promoted a replacement if it had one.
        }
        match request.purpose {
            Purpose::Lookup(id) => {
                if let Some(lookup) = self.lookups.get_mut(&id) {
                    lookup.state.on_failure(&request.to);
                    self.step_lookup(now, id);
                }
            }
            Purpose::Store(id) => {
                if let Some(round) = self.stores.get_mut(&id) {
                    round.waiting -= 1;
                    round.refused += 1;
                }
                self.maybe_finish_store(id);
            }
            Purpose::EvictionCheck => {}
        }
    }

    /// We heard from `contact`: update the table, and ping the stale head of a full bucket.
    fn observe(&mut self, now: Instant, contact: C) {
        if let Observed::BucketFull { ping: Some(stale) } = self.table.observe(now, contact) {
            // Sent even past max_in_flight: at most one per bucket is outstanding, and an
            // unsent ping would leave the bucket waiting for an answer that never comes.
            self.stats.eviction_pings += 1;
            self.send_request(now, stale, Expect::Pong, Purpose::EvictionCheck, |id| {
                DhtMessage::Ping { id }
            });
        }
    }

    fn misbehaved(&mut self, now: Instant, request: Request<C>, reason: Misbehaviour) {
        self.stats.misbehaviours += 1;
        self.emit(DhtEvent::Misbehaved {
            peer: request.to,
            reason,
        });
        self.request_failed(now, request);
    }

    fn answer(&mut self, to: C, msg: DhtMessage<C>) {
        self.stats.requests_answered += 1;
        self.outputs.push_back(Output::Send { to, msg });
    }

    fn handle_request(&mut self, now: Instant, from: C, msg: DhtMessage<C>) {
        self.observe(now, from);
        let k = self.config.answer_size;
        match msg {
            DhtMessage::Ping { id } => self.answer(from, DhtMessage::Pong { id }),
            DhtMessage::FindNode { id, target } => {
                let contacts = self.closest_for(&target, k, &from);
                self.answer(from, DhtMessage::Nodes { id, contacts });
            }
            DhtMessage::FindValue { id, key } => match self.store.get(now, &key) {
                Some(record) => {
                    let record = Box::new(record.clone());
                    let msg = DhtMessage::Value {
                        id,
                        record,
                        contacts: Vec::new(),
                    };
                    self.answer(from, msg);
                }
                None => {
                    let contacts = self.closest_for(&key, k, &from);
                    self.answer(from, DhtMessage::Nodes { id, contacts });
                }
            },
            DhtMessage::Store { id, record } => {
                let result = if self.validator.validate(&record) == Validation::Reject {
                    StoreResult::Rejected
                } else {
                    match self.store.put(now, *record) {
                        Ok(_) => StoreResult::Accepted,
                        Err(StoreError::Full { .. }) => StoreResult::Full,
                        // Too large, or a TTL of zero: the record itself is unacceptable.
                        Err(_) => StoreResult::Rejected,
                    }
                };
                self.answer(from, DhtMessage::Stored { id, result });
            }
            _ => {}
        }
    }

    /// The `count` contacts closest to `target`, leaving out the asker (it knows itself).
    fn closest_for(&mut self, target: &Key, count: usize, asker: &C) -> Vec<C> {
        self.table.closest(target, count + 1, &mut self.scratch);
        let mut out = Vec::with_capacity(count.min(self.scratch.len()));
        out.extend(
            self.scratch
                .iter()
                .filter(|c| *c != asker)
                .take(count)
                .copied(),
        );
        out
    }

    fn contacts_valid(&self, contacts: &[C]) -> bool {
        if contacts.len() > self.config.answer_size {
            return false;
        }
        // Duplicates have equal keys, so a 256-bit filter on a byte of the key (here of its
        // distance from ours, which is as good) sends only the (few) contacts whose byte was
        // seen before to the exact check against earlier ones. The byte folds in the low end of
        // the key: contacts answered for one target share a long prefix.
        let mut seen = [0u64; 4];
        for (i, c) in contacts.iter().enumerate() {
            // Distances from our key stand in for keys: equal exactly when the keys are.
            let d = c.distance_to(&self.local);
            if d == Distance::ZERO {
                return false;
            }
            let w = d.words();
            let byte = usize::from((w[0] ^ w[1] ^ w[2] ^ w[3]) as u8);
            let (word, bit) = (byte / 64, 1u64 << (byte % 64));
            if seen[word] & bit != 0 && contacts[..i].contains(c) {
                return false;
            }
            seen[word] |= bit;
        }
        true
    }

    fn handle_answer(&mut self, now: Instant, from: C, msg: DhtMessage<C>) {
        let id = msg.request_id();
        match self.requests.get(id) {
            Some(request) if request.to == from => {}
            _ => {
                // Late (after its timeout) or naming someone else's request: not evidence of
                // malice, so ignored without penalty.
                self.stats.stray_answers += 1;
                return;
            }
        }
        let request = self.complete(id).expect("just looked up");
        let fits = matches!(
            (&msg, request.expect),
            (DhtMessage::Pong { .. }, Expect::Pong)
                | (
                    DhtMessage::Nodes { .. },
                    Expect::Nodes | Expect::NodesOrValue
                )
                | (DhtMessage::Value { .. }, Expect::NodesOrValue)
                | (DhtMessage::Stored { .. }, Expect::Stored)
        );
        if !fits {
            self.misbehaved(now, request, Misbehaviour::WrongAnswer);
            self.step_stalled(now);
            return;
        }
        match msg {
            DhtMessage::Nodes { contacts, .. } => {
                if !self.contacts_valid(&contacts) {
                    self.misbehaved(now, request, Misbehaviour::BadContacts);
                } else {
                    self.observe(now, from);
                    if let Purpose::Lookup(lookup_id) = request.purpose {
                        let local = self.local;
                        if let Some(lookup) = self.lookups.get_mut(&lookup_id) {
                            lookup.state.on_response(&from, &contacts, &local);
                            self.step_lookup(now, lookup_id);
                        }
                    }
                }
            }
            DhtMessage::Value { record, .. } => {
                let Purpose::Lookup(lookup_id) = request.purpose else {
                    unreachable!("Value is only expected by lookups");
                };
                let wanted = self.lookups.get(&lookup_id).map(|l| *l.state.target());
                if wanted.is_some_and(|key| key != record.key)
                    || self.validator.validate(&record) == Validation::Reject
                {
                    self.misbehaved(now, request, Misbehaviour::BadRecord);
                } else {
                    self.observe(now, from);
                    if let Some(mut lookup) = self.remove_lookup(lookup_id) {
                        self.unstall(lookup_id);
                        lookup.state.on_response(&from, &[], &self.local);
                        let (_, stats) = lookup.state.finish();
                        self.emit(DhtEvent::GetDone {
                            id: lookup_id,
                            key: record.key,
                            record: Some(record),
                            stats,
                        });
                    }
                }
            }
            DhtMessage::Stored { result, .. } => {
                self.observe(now, from);
                if let Purpose::Store(store_id) = request.purpose {
                    if let Some(round) = self.stores.get_mut(&store_id) {
                        round.waiting -= 1;
                        if result == StoreResult::Accepted {
                            round.stored += 1;
                        } else {
                            round.refused += 1;
                        }
                    }
                    self.maybe_finish_store(store_id);
                }
            }
            DhtMessage::Pong { .. } => self.observe(now, from),
            _ => {}
        }
        self.step_stalled(now);
    }

    fn refresh(&mut self, now: Instant) {
        let idle = self.config.refresh_interval;
        let stale: Vec<u8> = self.table.stale_buckets(now, idle).collect();
        // Refreshes use at most half the lookup slots, so commands still find room.
        let budget = (self.config.max_lookups / 2).saturating_sub(self.lookups.len());
        for index in stale.into_iter().take(budget) {
            let target = self.table.random_key_in_bucket(index, &mut self.rng);
            // An empty table fails here; bootstrap fixes that, not the timer.
            let _ = self.start_lookup(now, target, Goal::Refresh);
        }
    }

    fn republish(&mut self, now: Instant) {
        self.published.retain(|_, p| p.expires > now);
        let budget = (self.config.max_lookups / 2).saturating_sub(self.lookups.len());
        let due: Vec<Record> = self
            .published
            .values()
            .take(budget)
            .map(|p| {
                let mut record = p.record.clone();
                record.ttl_secs = secs_u32(p.expires.saturating_since(now)).max(1);
                record
            })
            .collect();
        for record in due {
            let _ = self.start_lookup(now, record.key, Goal::Put(record));
        }
    }
}

/// Requests in flight to `contact`, from the per-peer counts.
fn in_flight_to<C: Contact>(per_peer: &[(C, u16)], contact: &C) -> u16 {
    per_peer
        .iter()
        .find(|(c, _)| c == contact)
        .map_or(0, |&(_, n)| n)
}

fn secs_u32(d: Duration) -> u32 {
    u32::try_from(d.as_nanos() / 1_000_000_000).unwrap_or(u32::MAX)
}

impl<C: Contact> Machine for Dht<C> {
    type Peer = C;
    type Message = DhtMessage<C>;
    type Event = DhtEvent<C>;

    fn handle_message(&mut self, now: Instant, from: C, msg: DhtMessage<C>) {
        if from.distance_to(&self.local) == Distance::ZERO {
            return;
        }
        if msg.is_request() {
            self.handle_request(now, from, msg);
        } else {
            self.handle_answer(now, from, msg);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some((deadline, id)) = self.requests.first() {
            if deadline > now {
                break;
            }
            if let Some(request) = self.complete(id) {
                self.request_failed(now, request);
            }
        }
        self.store.expire(now);
        if now >= self.next_refresh {
            self.next_refresh = now + self.config.refresh_interval;
            self.refresh(now);
        }
        if now >= self.next_republish {
            self.next_republish = now + self.config.republish_interval;
            self.republish(now);
        }
        self.step_stalled(now);
    }

    fn poll_output(&mut self) -> Option<DhtOutput<C>> {
        let out = self.outputs.pop_front();
        if self.outputs.is_empty() && self.outputs.capacity() > 4 {
            // Drained after a burst (a join sends dozens at once): free the room, as most
            // nodes stay idle long after.
            self.outputs = VecDeque::new();
        }
        out
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.next_refresh;
        if !self.published.is_empty() {
            next = next.min(self.next_republish);
        }
        if let Some((deadline, _)) = self.requests.first() {
            next = next.min(deadline);
        }
        if let Some(expiry) = self.store.next_expiry() {
            next = next.min(expiry);
        }
        Some(next)
    }
}
