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

use super::message::GossipMessage;
use crate::rng::{seeded, MachineRng};
use crate::time::Instant;

mod config;
mod join;
mod repair;
mod sampling;
mod shuffle;
mod views;

use sampling::jittered;

pub use config::{MembershipConfig, MembershipConfigError};

/// Most peers read from any received list (shuffle samples and replies); the rest is ignored.
/// Equal to the wire limit of a contact list.
pub const MAX_PEER_LIST: usize = crate::dht::message::MAX_WIRE_CONTACTS;

/// The output queue's bound beyond `2 · active_size`.
const OUTPUT_QUEUE_BASE: usize = 64;

/// A drained output queue with more capacity than this is freed.
const KEEP_QUEUE_CAPACITY: usize = 4;

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

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
