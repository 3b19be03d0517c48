//! HyParView peer sampling (Leitão, Pereira & Rodrigues, "HyParView: a membership protocol for
//! reliable gossip-based broadcast", DSN 2007).
//!
//! ## What it does
//! Every node keeps two partial views of the overlay:
//! - the **active view**, a handful of peers linked symmetrically (if `a` holds `b`, `b` holds
//!   `a`). Broadcast runs over these links only: Plumtree keeps its eager and lazy sets from the
//!   [`MembershipOutput::NeighborUp`] and [`MembershipOutput::NeighborDown`] events. A link
//!   whose transport fails is reported with [`Membership::peer_failed`] and replaced at once.
//! - the **passive view**, a larger list of backup peers that are not connected. It is kept
//!   fresh by periodic shuffles (random walks that swap samples of both views) and is where the
//!   active view is repaired from.
//!
//! Because the active view is small, symmetric and repaired reactively, the overlay stays
//! connected under heavy failure (the paper keeps reliability near 100% with 80% of the nodes
//! failing at once) while each node maintains only a few connections.
//!
//! ## Protocol (paper §4)
//! - **Join**: the joiner takes its contact into its active view and sends it `Join`. The
//!   contact takes the joiner in (evicting a random active peer with `Disconnect` if full) and
//!   sends `ForwardJoin(joiner, ARWL)` to every other active peer.
//! - **ForwardJoin**: a receiver takes the joiner into its active view when the ttl is 0 or it
//!   has no active peer to forward to other than the sender (and the joiner); at ttl = PRWL it
//!   puts the joiner in its passive view; otherwise it forwards with ttl − 1 to a random active
//!   peer other than the sender.
//! - **Neighbor**: a high-priority request is always accepted (evicting a random active peer if
//!   full); a low-priority one only if the active view has room. It is answered with
//!   `NeighborReply`.
//! - **Repair**: when an active peer fails or disconnects us, passive peers are asked one at a
//!   time with `Neighbor` (high priority iff the active view is empty) until the active view is
//!   full or every passive peer has been asked once. A new round starts at every shuffle tick
//!   while the active view is not full.
//! - **Shuffle**: every `shuffle_interval` (±25%), a `Shuffle(local, ARWL, local + ka active +
//!   kp passive)` walks the active links; the node where it stops answers the origin directly
//!   with a passive sample of the same size, and both integrate what they received into their
//!   passive views, evicting first the entries they just sent, then random ones.
//!
//! ## Defaults and why
//! The paper's values (§5): passive view 30, active random walk length (ARWL) 6, passive random
//! walk length (PRWL) 3, shuffles of ka = 3 active and kp = 4 passive peers. The active view is
//! sized log10(n) + c; the paper uses 5 for its 10^4-node runs. The default here is 6, which is
//! log10(n) + 1 for 10^5 nodes and leaves slack up to 10^6: a degree below the connectivity
//! threshold would make the broadcast tree fragile, a larger one costs connections and
//! duplicate traffic. Shuffles run every 10 s (the paper counts rounds, not seconds); the
//! ±25% jitter keeps nodes started together from shuffling in lockstep. A `Neighbor` request
//! left unanswered for 2 s is given up (see below).
//!
//! ## Departures from the paper
//! - **Neighbor on ForwardJoin acceptance.** In the paper the joiner learns that a walk ended
//!   at node `x` because `x` opens a connection to it. Here there are no connections, so `x`
//!   sends the joiner `Neighbor { high_priority: true }`, which the joiner always accepts.
//! - **Timeout as refusal.** A `Neighbor` request not answered within `neighbor_timeout` counts
//!   as refused, and the passive peer asked is dropped (it is most likely dead). Only one
//!   request is in flight at a time.
//! - **Unsolicited or late acceptances.** An accepting `NeighborReply` that does not answer our
//!   current request (it arrived after the timeout, or the active view filled meanwhile) is
//!   answered with `Disconnect`, and a refusal from a peer we hold as active drops it, so both
//!   sides of every link agree once messages stop flowing. A request whose peer becomes active
//!   by another route (it asked us, or a join walk linked it) is considered answered, so its
//!   reply, which may arrive after the link was dropped again, is treated as unsolicited. (A
//!   test delivers messages in random order across links, FIFO on each, and checks that every
//!   link is symmetric once the queue drains.)
//! - **Symmetric join walk ends.** A ForwardJoin walk is not sent back to its sender nor to the
//!   joiner; a node with no other active peer takes the joiner in (the paper's
//!   `#activeView == 1`).
//! - **Shuffle replies** are only integrated while one of our shuffles is outstanding, once per
//!   shuffle, so a peer cannot push entries into our passive view with unsolicited replies.
//!   A shuffle whose origin is this node is dropped rather than answered to ourselves.
//! - **Bounded input.** At most [`MAX_PEER_LIST`] peers are read from any received list (the
//!   rest is ignored), and ttls above `active_walk` are clamped to it.
//! - **Rejoin.** A node whose views are both empty sends `Join` again to the contact it last
//!   joined through, at each shuffle tick.
//!
//! ## Output queue
//! Outputs wait in a queue until [`Membership::poll_output`] drains it. A network message is
//! refused (dropped, as if lost, and counted in [`MembershipStats::dropped_inputs`]) when the
//! queue could not take the most outputs one message can cause (`active_size + 4`) within its
//! bound of `64 + 2·active_size`; a shuffle tick is skipped the same way. Failure reports
//! ([`Membership::peer_failed`]) are always applied, since views must not hold dead peers, so
//! the queue can exceed its bound by at most `active_size + 1` entries. A drained queue gives
//! its allocation back once it grew beyond a few entries.

use core::fmt;
use std::collections::VecDeque;

use rand::Rng;

use super::message::GossipMessage;
use crate::rng::{seeded, MachineRng};
use crate::time::{Duration, Instant};

/// Most peers read from any received list (shuffle samples and replies); the rest is ignored.
/// Equal to the wire limit of a contact list.
pub const MAX_PEER_LIST: usize = crate::dht::message::MAX_WIRE_CONTACTS;

/// The output queue's bound beyond `2 · active_size`.
const OUTPUT_QUEUE_BASE: usize = 64;

/// A drained output queue with more capacity than this is freed.
const KEEP_QUEUE_CAPACITY: usize = 4;

/// Sizes, walk lengths and timers of [`Membership`]. The defaults follow the paper (see the
/// [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MembershipConfig {
    /// Most peers in the active view. Default 6 (log10(n) + 1 for 10^5 nodes).
    pub active_size: usize,
    /// Most peers in the passive view. Default 30.
    pub passive_size: usize,
    /// Active random walk length (ARWL): hops of a ForwardJoin or Shuffle walk. Default 6.
    pub active_walk: u8,
    /// Passive random walk length (PRWL): the ForwardJoin ttl at which the joiner is put in the
    /// passive view. At most `active_walk`. Default 3.
    pub passive_walk: u8,
    /// Time between two shuffles, jittered by ±25%. Default 10 s.
    pub shuffle_interval: Duration,
    /// Active peers in a shuffle sample (ka). Default 3.
    pub shuffle_active: usize,
    /// Passive peers in a shuffle sample (kp). Default 4.
    pub shuffle_passive: usize,
    /// A Neighbor request unanswered this long counts as refused (and the peer asked is
    /// dropped from the passive view). Default 2 s.
    pub neighbor_timeout: Duration,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            active_size: 6,
            passive_size: 30,
            active_walk: 6,
            passive_walk: 3,
            shuffle_interval: Duration::from_secs(10),
            shuffle_active: 3,
            shuffle_passive: 4,
            neighbor_timeout: Duration::from_secs(2),
        }
    }
}

/// A configuration [`Membership`] cannot run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MembershipConfigError {
    /// `active_size` or `passive_size` is zero: no peer could be kept.
    ZeroViewSize,
    /// `active_walk` or `passive_walk` is zero, or `passive_walk` exceeds `active_walk` (the
    /// joiner would never be put in a passive view).
    BadWalk,
    /// The shuffle sample does not fit: `shuffle_active` exceeds `active_size`,
    /// `shuffle_passive` exceeds `passive_size`, or `1 + shuffle_active + shuffle_passive`
    /// exceeds [`MAX_PEER_LIST`] (receivers would ignore the rest).
    ShuffleSample,
    /// `shuffle_interval` or `neighbor_timeout` is zero.
    ZeroInterval,
}

impl fmt::Display for MembershipConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipConfigError::ZeroViewSize => {
                f.write_str("active_size and passive_size must be at least 1")
            }
            MembershipConfigError::BadWalk => f.write_str(
                "active_walk and passive_walk must be at least 1, and passive_walk at most \
                 active_walk",
            ),
            MembershipConfigError::ShuffleSample => write!(
                f,
                "shuffle_active must be at most active_size, shuffle_passive at most \
                 passive_size, and 1 + shuffle_active + shuffle_passive at most {MAX_PEER_LIST}"
            ),
            MembershipConfigError::ZeroInterval => {
                f.write_str("shuffle_interval and neighbor_timeout must be greater than zero")
            }
        }
    }
}

impl std::error::Error for MembershipConfigError {}

impl MembershipConfig {
    /// Checks the configuration; [`Membership::new`] calls it.
    pub fn validate(&self) -> Result<(), MembershipConfigError> {
        if self.active_size == 0 || self.passive_size == 0 {
            return Err(MembershipConfigError::ZeroViewSize);
        }
        if self.active_walk == 0 || self.passive_walk == 0 || self.passive_walk > self.active_walk {
            return Err(MembershipConfigError::BadWalk);
        }
        if self.shuffle_active > self.active_size
            || self.shuffle_passive > self.passive_size
            || self
                .shuffle_active
                .saturating_add(self.shuffle_passive)
                .saturating_add(1)
                > MAX_PEER_LIST
        {
            return Err(MembershipConfigError::ShuffleSample);
        }
        if self.shuffle_interval == Duration::ZERO || self.neighbor_timeout == Duration::ZERO {
            return Err(MembershipConfigError::ZeroInterval);
        }
        Ok(())
    }
}

/// What [`Membership`] asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipOutput<C> {
    /// Deliver `msg` to `to` (connecting to it if need be: shuffle replies and neighbor
    /// requests go to peers outside the active view).
    Send {
        /// The addressee.
        to: C,
        /// A membership message.
        msg: GossipMessage<C>,
    },
    /// `C` entered the active view. Emitted once per entry, never for the local node.
    NeighborUp(C),
    /// `C` left the active view (failed, disconnected us, or evicted). Emitted once per exit,
    /// always after the matching [`MembershipOutput::NeighborUp`].
    NeighborDown(C),
}

/// Counters of what a [`Membership`] did. They saturate at `u32::MAX`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MembershipStats {
    /// `Join` messages handled as a contact.
    pub joins_handled: u32,
    /// `ForwardJoin` messages received.
    pub forward_joins: u32,
    /// `Neighbor` requests sent to repair the active view.
    pub neighbor_requests: u32,
    /// Of those, refused or unanswered (timed out or the peer failed).
    pub neighbor_refused: u32,
    /// Shuffles started.
    pub shuffles_sent: u32,
    /// Shuffles that stopped here and were answered with a `ShuffleReply`.
    pub shuffles_answered: u32,
    /// Peers taken into the active view through an accepted `Neighbor` request of ours.
    pub repairs: u32,
    /// Active peers dropped (with `Disconnect`) to make room for another.
    pub evictions: u32,
    /// Messages and shuffle ticks refused because the output queue was full (see the
    /// [module docs](self)). Not in the requested API: added so a saturated queue is visible.
    pub dropped_inputs: u32,
}

fn bump(counter: &mut u32) {
    *counter = counter.saturating_add(1);
}

/// One node's HyParView membership (see the [module docs](self)).
///
/// `C` names peers: a contact in a real node, a small handle in the simulator. The struct holds
/// four small vectors, the output queue and fixed-size state, so a simulator can keep a
/// million of them.
#[derive(Clone, Debug)]
pub struct Membership<C> {
    config: MembershipConfig,
    local: C,
    rng: MachineRng,
    /// Never holds `local` or duplicates; at most `active_size`.
    active: Vec<C>,
    /// Never holds `local`, an active peer or duplicates; at most `passive_size`.
    passive: Vec<C>,
    /// Passive peers asked (and refused) in the current repair round, so each is asked at most
    /// once per round. Only entries still passive are kept; empty (unallocated) outside a
    /// repair.
    tried: Vec<C>,
    /// The sample of our outstanding shuffle (its reply is integrated evicting these first);
    /// empty when no shuffle is outstanding.
    shuffle_sent: Vec<C>,
    /// The passive peer asked with `Neighbor`, and when the request times out.
    pending: Option<(C, Instant)>,
    /// The contact of the last [`Membership::join`], for rejoining when isolated.
    contact: Option<C>,
    next_shuffle: Instant,
    outputs: VecDeque<MembershipOutput<C>>,
    stats: MembershipStats,
}

impl<C: Copy + Eq + core::hash::Hash + fmt::Debug> Membership<C> {
    /// A node `local` outside any overlay (call [`Membership::join`], or wait to be joined).
    /// `seed` drives every random choice, so the same inputs replay the same outputs.
    pub fn new(
        config: MembershipConfig,
        local: C,
        seed: u64,
        now: Instant,
    ) -> Result<Self, MembershipConfigError> {
        config.validate()?;
        let mut rng = seeded(seed);
        let first = jittered(&mut rng, config.shuffle_interval);
        Ok(Membership {
            config,
            local,
            rng,
            active: Vec::new(),
            passive: Vec::new(),
            tried: Vec::new(),
            shuffle_sent: Vec::new(),
            pending: None,
            contact: None,
            next_shuffle: now + first,
            outputs: VecDeque::new(),
            stats: MembershipStats::default(),
        })
    }

    /// Enters the overlay through `contact`: takes it into the active view (evicting a random
    /// active peer if full) and sends it `Join`. The contact is remembered: a node whose views
    /// both empty later joins through it again. Joining through `local` is ignored; with the
    /// output queue full the join is dropped (and counted).
    pub fn join(&mut self, _now: Instant, contact: C) {
        if contact == self.local {
            return;
        }
        self.contact = Some(contact);
        if !self.has_room(4) {
            bump(&mut self.stats.dropped_inputs);
            return;
        }
        self.send_join(contact);
    }

    /// A membership message from `from`. Other variants, and messages claiming to come from
    /// the local node, are ignored.
    pub fn handle_message(&mut self, now: Instant, from: C, msg: GossipMessage<C>) {
        if from == self.local || !msg.is_membership() {
            return;
        }
        if !self.has_room(self.config.active_size.saturating_add(4)) {
            bump(&mut self.stats.dropped_inputs);
            return;
        }
        let was_pending = self.pending.is_some();
        match msg {
            GossipMessage::Join => self.on_join(from),
            GossipMessage::ForwardJoin { joiner, ttl } => self.on_forward_join(from, joiner, ttl),
            GossipMessage::Neighbor { high_priority } => self.on_neighbor(from, high_priority),
            GossipMessage::NeighborReply { accepted } => {
                self.on_neighbor_reply(now, from, accepted)
            }
            GossipMessage::Disconnect => self.on_disconnect(now, from),
            GossipMessage::Shuffle { origin, ttl, peers } => {
                self.on_shuffle(from, origin, ttl, peers)
            }
            GossipMessage::ShuffleReply { peers } => self.on_shuffle_reply(&peers),
            _ => {}
        }
        if was_pending && self.pending.is_none() {
            // The request was answered (or made moot): ask the next passive peer if need be.
            self.repair(now);
        }
    }

    /// The transport or failure detector says `peer` is dead: it leaves both views (with
    /// [`MembershipOutput::NeighborDown`] if it was active), an outstanding request to it counts
    /// as refused, and the active view is repaired from the passive view.
    pub fn peer_failed(&mut self, now: Instant, peer: C) {
        if peer == self.local {
            return;
        }
        self.remove_passive(peer);
        let mut changed = false;
        if matches!(self.pending, Some((p, _)) if p == peer) {
            self.pending = None;
            bump(&mut self.stats.neighbor_refused);
            changed = true;
        }
        if self.remove_active(peer) {
            changed = true;
        }
        if changed {
            self.repair(now);
        }
    }

    /// Time has reached (at least) [`Membership::poll_timeout`]: gives up a Neighbor request
    /// past its timeout (dropping the peer and asking the next one), and at each shuffle tick
    /// starts a shuffle, a new repair round if the active view is not full, and a rejoin if
    /// both views are empty. Calling it early or late is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((peer, deadline)) = self.pending {
            if now >= deadline {
                self.pending = None;
                bump(&mut self.stats.neighbor_refused);
                self.remove_passive(peer);
                self.repair(now);
            }
        }
        if now >= self.next_shuffle {
            self.next_shuffle = now + jittered(&mut self.rng, self.config.shuffle_interval);
            self.tried = Vec::new();
            if !self.has_room(4) {
                bump(&mut self.stats.dropped_inputs);
                return;
            }
            self.shuffle();
            if self.active.is_empty() && self.passive.is_empty() && self.pending.is_none() {
                if let Some(contact) = self.contact {
                    self.send_join(contact);
                }
            }
            self.repair(now);
        }
    }

    /// The next instant [`Membership::handle_timeout`] must be called at. Always `Some`: the
    /// shuffle timer runs from creation.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(match self.pending {
            Some((_, deadline)) => deadline.min(self.next_shuffle),
            None => self.next_shuffle,
        })
    }

    /// The next queued output, or `None` once drained. Drain after every input.
    pub fn poll_output(&mut self) -> Option<MembershipOutput<C>> {
        let out = self.outputs.pop_front();
        if self.outputs.is_empty() && self.outputs.capacity() > KEEP_QUEUE_CAPACITY {
            self.outputs = VecDeque::new();
        }
        out
    }

    /// The active view: the peers broadcast runs over.
    pub fn active(&self) -> &[C] {
        &self.active
    }

    /// The passive view: backup peers, disjoint from the active view.
    pub fn passive(&self) -> &[C] {
        &self.passive
    }

    /// Whether `peer` is in the active view.
    pub fn is_active(&self, peer: &C) -> bool {
        self.active.contains(peer)
    }

    /// Counters of what this node did.
    pub fn stats(&self) -> MembershipStats {
        self.stats
    }

    /// The configuration in force.
    pub fn config(&self) -> &MembershipConfig {
        &self.config
    }

    /// The local node.
    pub fn local(&self) -> C {
        self.local
    }

    // --- message handlers -------------------------------------------------------------------

    fn on_join(&mut self, joiner: C) {
        bump(&mut self.stats.joins_handled);
        self.add_active(joiner);
        let ttl = self.config.active_walk;
        for i in 0..self.active.len() {
            let peer = self.active[i];
            if peer != joiner {
                self.send(peer, GossipMessage::ForwardJoin { joiner, ttl });
            }
        }
    }

    fn on_forward_join(&mut self, from: C, joiner: C, ttl: u8) {
        bump(&mut self.stats.forward_joins);
        if joiner == self.local {
            return;
        }
        let ttl = ttl.min(self.config.active_walk);
        let next = if ttl == 0 {
            None
        } else {
            pick(&mut self.rng, &self.active, |p| *p != from && *p != joiner)
        };
        match next {
            None => {
                if self.add_active(joiner) {
                    self.send(
                        joiner,
                        GossipMessage::Neighbor {
                            high_priority: true,
                        },
                    );
                }
            }
            Some(next) => {
                if ttl == self.config.passive_walk {
                    self.add_passive(joiner);
                }
                self.send(
                    next,
                    GossipMessage::ForwardJoin {
                        joiner,
                        ttl: ttl - 1,
                    },
                );
            }
        }
    }

    fn on_neighbor(&mut self, from: C, high_priority: bool) {
        let accepted = self.active.contains(&from)
            || ((high_priority || self.active.len() < self.config.active_size)
                && self.add_active(from));
        self.send(from, GossipMessage::NeighborReply { accepted });
    }

    fn on_neighbor_reply(&mut self, now: Instant, from: C, accepted: bool) {
        let solicited = matches!(self.pending, Some((p, _)) if p == from);
        if solicited {
            self.pending = None;
        }
        let is_active = self.active.contains(&from);
        if accepted {
            if !is_active {
                if solicited && self.active.len() < self.config.active_size {
                    self.add_active(from);
                    bump(&mut self.stats.repairs);
                } else {
                    // Late (after the timeout), unsolicited, or no room any more: the peer took
                    // us in, so undo its side of the link.
                    self.send(from, GossipMessage::Disconnect);
                }
            }
        } else {
            if solicited {
                bump(&mut self.stats.neighbor_refused);
            }
            if is_active {
                // The peer says it does not hold us: drop our half of the link.
                self.remove_active(from);
                self.add_passive(from);
                self.send(from, GossipMessage::Disconnect);
            }
        }
        self.repair(now);
    }

    fn on_disconnect(&mut self, now: Instant, from: C) {
        if self.remove_active(from) {
            self.add_passive(from);
            self.repair(now);
        }
    }

    fn on_shuffle(&mut self, from: C, origin: C, ttl: u8, mut peers: Vec<C>) {
        if origin == self.local {
            return;
        }
        let ttl = ttl.min(self.config.active_walk);
        if peers.len() > MAX_PEER_LIST {
            peers.truncate(MAX_PEER_LIST);
            peers.shrink_to_fit();
        }
        if ttl > 0 && self.active.len() > 1 {
            if let Some(next) = pick(&mut self.rng, &self.active, |p| *p != from && *p != origin) {
                let ttl = ttl - 1;
                self.send(next, GossipMessage::Shuffle { origin, ttl, peers });
                return;
            }
        }
        let mut reply = Vec::new();
        sample_into(
            &mut self.rng,
            &self.passive,
            peers.len(),
            |p| *p != origin,
            &mut reply,
        );
        self.integrate(&peers, &reply);
        bump(&mut self.stats.shuffles_answered);
        self.send(origin, GossipMessage::ShuffleReply { peers: reply });
    }

    fn on_shuffle_reply(&mut self, peers: &[C]) {
        if self.shuffle_sent.is_empty() {
            return;
        }
        let sent = core::mem::take(&mut self.shuffle_sent);
        self.integrate(&peers[..peers.len().min(MAX_PEER_LIST)], &sent);
    }

    // --- actions ------------------------------------------------------------------------------

    fn send_join(&mut self, contact: C) {
        self.add_active(contact);
        self.send(contact, GossipMessage::Join);
    }

    fn shuffle(&mut self) {
        let Some(target) = pick(&mut self.rng, &self.active, |_| true) else {
            return;
        };
        let mut sample =
            Vec::with_capacity(1 + self.config.shuffle_active + self.config.shuffle_passive);
        sample.push(self.local);
        let ka = self.config.shuffle_active;
        sample_into(
            &mut self.rng,
            &self.active,
            ka,
            |p| *p != target,
            &mut sample,
        );
        let kp = self.config.shuffle_passive;
        sample_into(&mut self.rng, &self.passive, kp, |_| true, &mut sample);
        self.shuffle_sent = sample.clone();
        bump(&mut self.stats.shuffles_sent);
        let msg = GossipMessage::Shuffle {
            origin: self.local,
            ttl: self.config.active_walk,
            peers: sample,
        };
        self.send(target, msg);
    }

    /// Asks the next untried passive peer to become a neighbor, unless a request is in flight
    /// or the active view is full.
    fn repair(&mut self, now: Instant) {
        if self.active.len() >= self.config.active_size {
            if !self.tried.is_empty() {
                self.tried = Vec::new();
            }
            return;
        }
        if self.pending.is_some() || !self.has_room(1) {
            return;
        }
        let tried = &self.tried;
        let Some(peer) = pick(&mut self.rng, &self.passive, |p| !tried.contains(p)) else {
            return; // exhausted: the next shuffle tick starts a new round
        };
        let passive = &self.passive;
        self.tried.retain(|t| passive.contains(t));
        self.tried.push(peer);
        let high_priority = self.active.is_empty();
        self.pending = Some((peer, now + self.config.neighbor_timeout));
        bump(&mut self.stats.neighbor_requests);
        self.send(peer, GossipMessage::Neighbor { high_priority });
    }

    // --- views --------------------------------------------------------------------------------

    /// Takes `peer` into the active view (out of the passive one), evicting a random active
    /// peer with `Disconnect` if full. Returns whether it was added.
    fn add_active(&mut self, peer: C) -> bool {
        if peer == self.local || self.active.contains(&peer) {
            return false;
        }
        self.remove_passive(peer);
        if matches!(self.pending, Some((p, _)) if p == peer) {
            // Linked by another route: the request's answer is stale once it arrives (we may
            // have dropped the link again by then), so it will be treated as unsolicited.
            self.pending = None;
        }
        if self.active.len() >= self.config.active_size {
            let victim = self
                .active
                .remove(self.rng.random_range(0..self.active.len()));
            self.outputs
                .push_back(MembershipOutput::NeighborDown(victim));
            self.send(victim, GossipMessage::Disconnect);
            self.add_passive(victim);
            bump(&mut self.stats.evictions);
        }
        if self.active.capacity() == 0 {
            self.active.reserve_exact(self.config.active_size);
        }
        self.active.push(peer);
        self.outputs.push_back(MembershipOutput::NeighborUp(peer));
        true
    }

    /// Drops `peer` from the active view. Returns whether it was there.
    fn remove_active(&mut self, peer: C) -> bool {
        match self.active.iter().position(|p| *p == peer) {
            Some(i) => {
                self.active.remove(i);
                self.outputs.push_back(MembershipOutput::NeighborDown(peer));
                true
            }
            None => false,
        }
    }

    fn add_passive(&mut self, peer: C) {
        self.integrate(&[peer], &[]);
    }

    fn remove_passive(&mut self, peer: C) {
        if let Some(i) = self.passive.iter().position(|p| *p == peer) {
            self.passive.swap_remove(i);
        }
    }

    /// Adds `peers` to the passive view, skipping the local node, active peers and entries
    /// already held. When full, evicts first an entry of `sent`, then a random one.
    fn integrate(&mut self, peers: &[C], sent: &[C]) {
        for &peer in peers {
            if peer == self.local || self.active.contains(&peer) || self.passive.contains(&peer) {
                continue;
            }
            if self.passive.len() >= self.config.passive_size {
                let victim = match self.passive.iter().position(|p| sent.contains(p)) {
                    Some(i) => i,
                    None => self.rng.random_range(0..self.passive.len()),
                };
                self.passive.swap_remove(victim);
            }
            if self.passive.capacity() == 0 {
                self.passive.reserve_exact(self.config.passive_size);
            }
            self.passive.push(peer);
        }
    }

    // --- output queue -------------------------------------------------------------------------

    fn send(&mut self, to: C, msg: GossipMessage<C>) {
        self.outputs.push_back(MembershipOutput::Send { to, msg });
    }

    /// Whether `n` more outputs fit under the queue's bound.
    fn has_room(&self, n: usize) -> bool {
        let bound = OUTPUT_QUEUE_BASE.saturating_add(self.config.active_size.saturating_mul(2));
        self.outputs.len().saturating_add(n) <= bound
    }
}

/// `interval` ±25%, at least 1 ns.
fn jittered(rng: &mut MachineRng, interval: Duration) -> Duration {
    let nanos = interval.as_nanos();
    let quarter = nanos / 4;
    let nanos = rng.random_range(nanos - quarter..=nanos.saturating_add(quarter));
    Duration::from_nanos(nanos.max(1))
}

/// A uniformly random element of `from` satisfying `keep`.
fn pick<C: Copy>(rng: &mut MachineRng, from: &[C], mut keep: impl FnMut(&C) -> bool) -> Option<C> {
    let eligible = from.iter().filter(|p| keep(p)).count();
    if eligible == 0 {
        return None;
    }
    let k = rng.random_range(0..eligible);
    from.iter().filter(|p| keep(p)).nth(k).copied()
}

/// Appends to `out` a uniformly random subset of `k` elements of `from` satisfying `keep` (all
/// of them if fewer), in their order in `from` (selection sampling, Knuth's algorithm S).
fn sample_into<C: Copy>(
    rng: &mut MachineRng,
    from: &[C],
    k: usize,
    mut keep: impl FnMut(&C) -> bool,
    out: &mut Vec<C>,
) {
    let mut remaining = from.iter().filter(|p| keep(p)).count();
    let mut needed = k.min(remaining);
    for p in from {
        if needed == 0 {
            break;
        }
        if !keep(p) {
            continue;
        }
        if rng.random_range(0..remaining) < needed {
            out.push(*p);
            needed -= 1;
        }
        remaining -= 1;
    }
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
