//! The DHT state machine: the [`Dht`] struct, its commands and its [`Machine`] impl. The work
//! behind them is in the child modules: lookups (and the store round of a put), the requests
//! this node sends, the requests it serves, the answers it checks, and upkeep (ping-before-evict,
//! refresh, republish).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::config::{DhtConfig, DhtConfigError};
use super::contact::Contact;
use super::event::{DhtError, DhtEvent, LookupId};
use super::lookup::LookupStats;
use super::message::{DhtMessage, Record, RequestId};
use super::requests::Requests;
use super::routing::RoutingTable;
use super::store::{AcceptAll, RecordStore, RecordValidator, Validation};
use crate::id::{Distance, Key};
use crate::machine::{Machine, Output};
use crate::rng::{seeded, MachineRng};
use crate::time::{Duration, Instant};

mod answers;
mod lookups;
mod outgoing;
mod serve;
mod upkeep;

use lookups::{Goal, Lookup, StoreRound};
use outgoing::Request;
use upkeep::Published;

/// What the DHT asks its driver to do.
pub type DhtOutput<C> = Output<C, DhtMessage<C>, DhtEvent<C>>;

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

    fn emit(&mut self, event: DhtEvent<C>) {
        self.outputs.push_back(Output::Event(event));
    }
}

/// `d` in whole seconds, saturating.
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
