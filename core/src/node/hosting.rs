//! The node as host of protocols: registering them, routing their frames in and their messages
//! out, and telling them about peers. One code path serves every hosted protocol.
//!
//! - **In**: a frame of a hosted protocol id goes to its machine, which names the sender by its
//!   identity and, for protocols that need it, its listen address (known for connections the
//!   node dialled, and for accepted ones whose peer announced a listen port). A frame the
//!   protocol cannot attribute, decode or admit is dropped and counted.
//! - **Out**: a message to a connected peer is sent on its connection. A message to a peer that
//!   is not connected, if the protocol gave an address, waits in a bounded queue while the node
//!   dials it; it is sent when the peer connects, and the protocol is told the peer is
//!   unreachable if the dial fails. Otherwise (paused peer, no address, a full queue) the
//!   protocol is told at once, so a lookup or a repair moves on without waiting for a timeout.
//! - **Peers**: every hosted protocol hears of each connected peer, each disconnected peer and
//!   each unreachable one, through the hooks of [`Protocol`].
//! - **Clock**: a wall-clock protocol runs on the node's clock plus the offset given to
//!   [`Node::set_wall_clock`].

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::machine::{touch, Node};
use super::output::{ConnId, NodeEvent, NodeOutput};
use super::protocol::{HostedMessage, Protocol};
use super::table::{Hosted, Slot, SlotOutput};
use crate::id::PeerId;
use crate::time::{Duration, Instant};
use crate::wire::{Frame, ProtocolId};

/// Rounds of "report unreachable, drain again" per routing: reporting a peer unreachable can
/// make a protocol send elsewhere, which may fail again; the bound keeps one input's work finite.
const ROUTE_ROUNDS: usize = 4;

/// The hosted protocols, their routes and the messages waiting for a connection.
#[derive(Default)]
pub(super) struct Table {
    slots: Vec<Box<dyn Slot>>,
    stats: Vec<HostedStats>,
    /// Protocol id to slot; a handful of entries, so a scan beats hashing.
    routes: Vec<(ProtocolId, usize)>,
    waiting: VecDeque<Waiting>,
    /// The wall-clock offset, kept for protocols hosted after it was set.
    wall_offset: Duration,
}

impl core::fmt::Debug for Table {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Table")
            .field("hosted", &self.stats)
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

/// A message for a peer being dialled.
struct Waiting {
    slot: usize,
    peer: PeerId,
    addr: SocketAddr,
    frame: Frame,
}

/// One hosted protocol's counters, as [`Node::hosted`] lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostedStats {
    /// [`Protocol::NAME`].
    pub name: &'static str,
    /// The first of its protocol ids.
    pub protocol: ProtocolId,
    /// Frames handed to the machine.
    pub frames_in: u64,
    /// Frames dropped: the sender could not be named (no listen address), the frame did not
    /// decode, or the protocol refused it.
    pub frames_dropped: u64,
    /// Messages sent to peers (at once or after a dial).
    pub messages_out: u64,
    /// Times the protocol was told a peer is unreachable.
    pub unreachable: u64,
    /// Messages now waiting for a peer being dialled.
    pub waiting: usize,
}

/// Why a protocol could not be hosted. The node is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostError {
    /// Another hosted protocol already takes frames of this id.
    ProtocolTaken(ProtocolId),
    /// The session layer's own id cannot be hosted.
    Reserved(ProtocolId),
}

impl core::fmt::Display for HostError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HostError::ProtocolTaken(id) => {
                write!(f, "protocol id {} is already hosted", id.0)
            }
            HostError::Reserved(id) => write!(f, "protocol id {} is reserved", id.0),
        }
    }
}

impl std::error::Error for HostError {}

impl Table {
    pub(super) fn route(&self, protocol: ProtocolId) -> Option<usize> {
        self.routes
            .iter()
            .find(|(id, _)| *id == protocol)
            .map(|&(_, slot)| slot)
    }

    pub(super) fn next_timeout(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.poll_timeout()).min()
    }

    fn hosted<P: Protocol>(&self) -> Option<&Hosted<P>> {
        self.slots
            .iter()
            .find_map(|s| s.as_any().downcast_ref::<Hosted<P>>())
    }

    fn slot_of<P: Protocol>(&self) -> Option<usize> {
        self.slots.iter().position(|s| s.as_any().is::<Hosted<P>>())
    }
}

impl Node {
    /// Hosts `machine`: frames of its protocol ids go to it, and its messages and events come
    /// out through the node (see the [module docs](super)). Peers already connected are reported
    /// to it at once. Refused if another hosted protocol takes one of its ids.
    pub fn host<P: Protocol>(&mut self, now: Instant, machine: P) -> Result<(), HostError> {
        let ids = <P::Message as HostedMessage>::PROTOCOLS;
        for &id in ids {
            if id == ProtocolId::SESSION {
                return Err(HostError::Reserved(id));
            }
            if self.table.route(id).is_some() {
                return Err(HostError::ProtocolTaken(id));
            }
        }
        let slot = self.table.slots.len();
        let mut hosted = Hosted::new(machine);
        hosted.set_wall_offset(self.table.wall_offset);
        self.table.slots.push(Box::new(hosted));
        self.table.stats.push(HostedStats {
            name: P::NAME,
            protocol: ids.first().copied().unwrap_or(ProtocolId::SESSION),
            frames_in: 0,
            frames_dropped: 0,
            messages_out: 0,
            unreachable: 0,
            waiting: 0,
        });
        self.table.routes.extend(ids.iter().map(|&id| (id, slot)));
        let peers: Vec<_> = self
            .conns
            .peers()
            .map(|(peer, _, c)| (peer, c.listen, c.direction))
            .collect();
        for (peer, listen, direction) in peers {
            self.table.slots[slot].connected(now, peer, listen, direction);
        }
        self.route_slot(now, slot);
        Ok(())
    }

    /// The hosted machine of type `P`, if the node hosts one.
    pub fn protocol<P: Protocol>(&self) -> Option<&P> {
        self.table.hosted::<P>().map(|h| &h.machine)
    }

    /// Runs `f` on the hosted machine of type `P` (a command: `publish`, `find_node`, …) with the
    /// machine's clock, then routes what it sends. `None` if the node hosts no `P`.
    pub fn with_protocol<P: Protocol, R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut P, Instant) -> R,
    ) -> Option<R> {
        let slot = self.table.slot_of::<P>()?;
        let hosted = self.table.slots[slot]
            .as_any_mut()
            .downcast_mut::<Hosted<P>>()?;
        let clock = hosted.clock(now);
        let r = f(&mut hosted.machine, clock);
        self.route_slot(now, slot);
        Some(r)
    }

    /// The protocol ids of every hosted protocol, in the order they were hosted: what a
    /// handshake should announce.
    pub fn hosted_protocols(&self) -> Vec<ProtocolId> {
        self.table.routes.iter().map(|&(id, _)| id).collect()
    }

    /// Each hosted protocol's counters.
    pub fn hosted(&self) -> Vec<HostedStats> {
        self.table.stats.clone()
    }

    /// Tells the node what the wall clock reads at `now`, as time since the UNIX epoch.
    /// Wall-clock protocols ([`Protocol::WALL_CLOCK`], such as gossip, which stamps publish
    /// times) then run on it, so nodes whose clocks agree to within the protocols' tolerated
    /// skew agree on times. Without it they run on the node's own clock (fine when all nodes
    /// share one, as in tests and simulations).
    pub fn set_wall_clock(&mut self, now: Instant, unix: Duration) {
        let offset = Duration::from_nanos(unix.as_nanos().saturating_sub(now.as_nanos()));
        self.table.wall_offset = offset;
        for slot in &mut self.table.slots {
            slot.set_wall_offset(offset);
        }
    }

    // ---- node → hosted machines ----------------------------------------------------------------

    /// A frame of hosted slot `slot` arrived from `peer` on `conn`.
    pub(super) fn hosted_frame(&mut self, now: Instant, slot: usize, conn: ConnId, frame: Frame) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let (Some(peer), listen) = (c.peer(), c.listen) else {
            return;
        };
        let local = self.local;
        let stats = &mut self.table.stats[slot];
        if self.table.slots[slot].handle_frame(now, local, peer, listen, frame) {
            stats.frames_in += 1;
        } else {
            stats.frames_dropped += 1;
            self.stats.protocol_frames_dropped += 1;
        }
        self.route_slot(now, slot);
    }

    /// Runs the hosted machines' due timers.
    pub(super) fn hosted_timeouts(&mut self, now: Instant) {
        for slot in 0..self.table.slots.len() {
            if self.table.slots[slot]
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                self.table.slots[slot].handle_timeout(now);
                self.route_slot(now, slot);
            }
        }
    }

    /// `peer` is established on `conn`: what waited for it is sent, and every hosted protocol is
    /// told.
    pub(super) fn hosted_connected(&mut self, now: Instant, peer: PeerId, conn: ConnId) {
        let Some(c) = self.conns.get(conn).copied() else {
            return;
        };
        let mut kept = VecDeque::with_capacity(self.table.waiting.len());
        for w in std::mem::take(&mut self.table.waiting) {
            if w.peer == peer {
                self.table.stats[w.slot].waiting -= 1;
                self.table.stats[w.slot].messages_out += 1;
                self.stats.frames_out += 1;
                self.outputs.push_back(NodeOutput::Send {
                    conn,
                    frame: w.frame,
                });
            } else {
                kept.push_back(w);
            }
        }
        self.table.waiting = kept;
        for slot in 0..self.table.slots.len() {
            self.table.slots[slot].connected(now, peer, c.listen, c.direction);
            self.route_slot(now, slot);
        }
    }

    /// `peer`'s connection is gone.
    pub(super) fn hosted_disconnected(&mut self, now: Instant, peer: PeerId) {
        for slot in 0..self.table.slots.len() {
            self.table.slots[slot].disconnected(now, peer);
            self.route_slot(now, slot);
        }
    }

    /// A dial of `addr` failed: messages waiting for a peer there will not be sent.
    pub(super) fn hosted_dial_failed(&mut self, now: Instant, addr: SocketAddr) {
        let mut failed: Vec<(usize, PeerId)> = Vec::new();
        let mut kept = VecDeque::with_capacity(self.table.waiting.len());
        for w in std::mem::take(&mut self.table.waiting) {
            if w.addr == addr {
                self.table.stats[w.slot].waiting -= 1;
                if !failed.contains(&(w.slot, w.peer)) {
                    failed.push((w.slot, w.peer));
                }
            } else {
                kept.push_back(w);
            }
        }
        self.table.waiting = kept;
        for (slot, peer) in failed {
            self.table.stats[slot].unreachable += 1;
            self.table.slots[slot].unreachable(now, peer, Some(addr));
            self.route_slot(now, slot);
        }
    }

    // ---- hosted machines → node ----------------------------------------------------------------

    /// Moves slot `slot`'s outputs to the node's: sends on connections, dials, events.
    fn route_slot(&mut self, now: Instant, slot: usize) {
        for _ in 0..ROUTE_ROUNDS {
            let mut unreachable: Vec<(PeerId, Option<SocketAddr>)> = Vec::new();
            while let Some(out) = self.table.slots[slot].poll_output() {
                match out {
                    SlotOutput::Event(e) => self.event(NodeEvent::Protocol(e)),
                    SlotOutput::Send { peer, dial, frame } => {
                        if !self.send_hosted(now, slot, peer, dial, frame) {
                            unreachable.push((peer, dial));
                        }
                    }
                }
            }
            if unreachable.is_empty() {
                return;
            }
            for (peer, dial) in unreachable {
                self.table.stats[slot].unreachable += 1;
                self.table.slots[slot].unreachable(now, peer, dial);
            }
        }
    }

    /// Sends `frame` to `peer` now, or queues it and dials `dial`. False if it cannot be sent.
    fn send_hosted(
        &mut self,
        now: Instant,
        slot: usize,
        peer: PeerId,
        dial: Option<SocketAddr>,
        frame: Frame,
    ) -> bool {
        if let Some(conn) = self.conns.active(peer) {
            let Some(c) = self.conns.get_mut(conn) else {
                return false;
            };
            if c.paused {
                return false;
            }
            touch(&mut c.state, now);
            self.stats.frames_out += 1;
            self.table.stats[slot].messages_out += 1;
            self.outputs.push_back(NodeOutput::Send { conn, frame });
            return true;
        }
        let Some(addr) = dial else {
            return false;
        };
        if peer == self.local || self.add_address(now, addr, Some(peer), false).is_err() {
            return false;
        }
        if self.table.stats[slot].waiting >= self.table.slots[slot].max_waiting() {
            let oldest = self.table.waiting.iter().position(|w| w.slot == slot);
            if let Some(w) = oldest.and_then(|i| self.table.waiting.remove(i)) {
                self.table.stats[slot].waiting -= 1;
                self.table.stats[slot].unreachable += 1;
                self.table.slots[slot].unreachable(now, w.peer, Some(w.addr));
            }
        }
        self.table.stats[slot].waiting += 1;
        self.table.waiting.push_back(Waiting {
            slot,
            peer,
            addr,
            frame,
        });
        true
    }
}
