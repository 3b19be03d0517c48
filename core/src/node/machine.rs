//! The node state machine: its state, the adapter's inputs, the outputs and the dial pump.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::address_book::{AddressBook, EntryState};
use super::config::NodeConfig;
use super::connections::{ConnState, Connections, Timer};
use super::hosting::Table;
use super::output::{ConnId, Direction, NodeEvent, NodeOutput, NodeStats};
use crate::id::PeerId;
use crate::rng::derive_seed;
use crate::session::{CloseCause, CloseCode};
use crate::time::Instant;
use crate::wire::{Frame, ProtocolId};

/// The stream of the node's seed that jitters dial backoff.
const BACKOFF_STREAM: u64 = 1;
/// Streams of the node's seed from here on are handed to hosted protocols, one per protocol id
/// ([`Node::protocol_seed`]).
const PROTOCOL_STREAMS: u64 = 1 << 16;

/// The per-process peer manager (see the [module docs](super)).
#[derive(Debug)]
pub struct Node {
    pub(super) config: NodeConfig,
    pub(super) local: PeerId,
    pub(super) book: AddressBook,
    pub(super) conns: Connections,
    pub(super) outputs: VecDeque<NodeOutput>,
    /// Counters; the gauges are filled in by [`Node::stats`].
    pub(super) stats: NodeStats,
    /// The hosted protocols.
    pub(super) table: Table,
    seed: u64,
}

impl Node {
    /// A node with identity `local`, no connections and an empty address book. `seed` drives the
    /// dial jitter, so a run replays exactly.
    ///
    /// # Panics
    /// If `config` fails [`NodeConfig::validate`]: a configuration is the programmer's input, not
    /// the network's, so a bad one is a bug to surface at start-up.
    pub fn new(config: NodeConfig, local: PeerId, seed: u64, now: Instant) -> Self {
        if let Err(e) = config.validate() {
            panic!("invalid NodeConfig: {e}");
        }
        let _ = now;
        let book = AddressBook::new(&config, derive_seed(seed, BACKOFF_STREAM));
        Node {
            table: Table::default(),
            seed,
            config,
            local,
            book,
            conns: Connections::default(),
            outputs: VecDeque::new(),
            stats: NodeStats::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// This node's identity.
    pub fn local(&self) -> PeerId {
        self.local
    }

    /// A seed for the hosted protocol `protocol`, derived from the node's: a node built from one
    /// seed replays exactly, hosted protocols included, and no two protocols share a stream.
    pub fn protocol_seed(&self, protocol: ProtocolId) -> u64 {
        derive_seed(self.seed, PROTOCOL_STREAMS + u64::from(protocol.0))
    }

    // ---- adapter → node ----------------------------------------------------------------------

    /// A TCP connection `conn` was accepted from `addr`: may it proceed to the handshake?
    ///
    /// Refuses (`false`) when `max_inbound` inbound connections are held, when `addr`'s IP
    /// address holds `max_per_ip`, or when `conn` is already in use; the adapter then drops the
    /// socket without any handshake work. On `true` the connection holds an inbound slot until
    /// it closes or fails to establish within `handshake_timeout`.
    pub fn handle_incoming(&mut self, now: Instant, conn: ConnId, addr: SocketAddr) -> bool {
        if self.conns.get(conn).is_some() {
            self.stats.stale_events += 1;
            return false;
        }
        if self.conns.inbound() >= self.config.max_inbound {
            self.stats.refused_inbound += 1;
            return false;
        }
        if self.conns.per_ip(addr.ip()) >= self.config.max_per_ip {
            self.stats.refused_per_ip += 1;
            return false;
        }
        let deadline = now + self.config.handshake_timeout;
        self.conns.add_inbound(conn, addr, deadline);
        true
    }

    /// The dial of `addr` requested by [`NodeOutput::Dial`] produced connection `conn` (TCP
    /// connected, handshake under way). A connection the node is not waiting for (the dial timed
    /// out, the address was removed) is closed.
    pub fn handle_dialed(&mut self, now: Instant, addr: SocketAddr, conn: ConnId) {
        let _ = now; // the handshake deadline runs from the dial request
        if self.conns.get(conn).is_some() {
            // The id is taken: nothing about this event can be trusted. The dial, if any, times
            // out.
            self.stats.stale_events += 1;
        } else if self.conns.pending_to_conn(addr, conn) {
            self.book.dialed(addr, conn);
        } else {
            self.stats.stale_events += 1;
            self.close(conn, CloseCode::Normal);
        }
    }

    /// The dial of `addr` failed before a session was established (refused, timed out, the
    /// handshake failed). `reason` is for the adapter's logs; the node does not interpret it.
    /// If the dial had produced a connection, the node forgets it: the adapter has closed it.
    pub fn handle_dial_failed(&mut self, now: Instant, addr: SocketAddr, reason: &str) {
        let _ = reason;
        if self.conns.take_pending(addr) {
            self.dial_failed(now, addr);
        } else if let Some(EntryState::Dialling { conn: Some(conn) }) =
            self.book.get(&addr).map(|e| e.state)
        {
            self.conns.remove(conn);
            self.dial_failed(now, addr);
        } else {
            self.stats.stale_events += 1;
        }
        self.pump(now);
    }

    /// The session on `conn` is established with `peer`, who announced `listen_port` in its
    /// handshake (the port it accepts connections on, if any).
    ///
    /// Reports [`NodeEvent::PeerConnected`] unless the connection is closed instead: a
    /// connection to this node itself, an outbound connection that reached another identity than
    /// the one expected, the losing side of a duplicate (see the [module docs](super)), or a
    /// connection the node does not know.
    pub fn handle_established(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: PeerId,
        listen_port: Option<u16>,
    ) {
        let Some(c) = self.conns.get(conn).copied() else {
            self.stats.stale_events += 1;
            self.close(conn, CloseCode::Normal);
            return;
        };
        if c.state != ConnState::Handshaking {
            self.stats.stale_events += 1;
            return;
        }
        if peer == self.local {
            self.stats.self_dials += 1;
            self.conns.remove(conn);
            self.close(conn, CloseCode::Normal);
            if c.direction == Direction::Outbound {
                // The address is our own: never dial it again.
                if let Some(entry) = self.book.remove(&c.addr) {
                    self.event(NodeEvent::DialFailed {
                        addr: c.addr,
                        attempts: entry.attempts.saturating_add(1),
                        retry_at: None,
                    });
                }
            }
            self.pump(now);
            return;
        }
        if c.direction == Direction::Outbound {
            let expected = self.book.get(&c.addr).and_then(|e| e.expected);
            if expected.is_some_and(|e| e != peer) {
                self.conns.remove(conn);
                self.close(conn, CloseCode::IdentityMismatch);
                self.dial_failed(now, c.addr);
                self.pump(now);
                return;
            }
            self.book.connected(c.addr, peer);
        }
        let listen = match c.direction {
            Direction::Outbound => Some(c.addr),
            Direction::Inbound => listen_port.map(|port| SocketAddr::new(c.addr.ip(), port)),
        };
        if let Some(conn) = self.conns.get_mut(conn) {
            conn.listen = listen;
        }
        let idle_deadline = now + self.config.idle_timeout;
        match self
            .conns
            .active(peer)
            .and_then(|old| Some((old, *self.conns.get(old)?)))
        {
            None => {
                self.conns.establish(conn, peer, now, now, idle_deadline);
                self.event(NodeEvent::PeerConnected {
                    peer,
                    addr: c.addr,
                    direction: c.direction,
                });
                if c.paused {
                    self.event(NodeEvent::Backpressure { peer, paused: true });
                }
                self.hosted_connected(now, peer, conn);
            }
            Some((old, old_c)) => {
                self.stats.duplicates_closed += 1;
                if self.keeps_new(peer, old_c.direction, c.direction) {
                    let since = match old_c.state {
                        ConnState::Established { since, .. } => since,
                        ConnState::Handshaking => now,
                    };
                    self.conns.remove(old);
                    self.close(old, CloseCode::Normal);
                    self.conns.establish(conn, peer, since, now, idle_deadline);
                    if old_c.paused != c.paused {
                        self.event(NodeEvent::Backpressure {
                            peer,
                            paused: c.paused,
                        });
                    }
                } else {
                    self.conns.remove(conn);
                    self.close(conn, CloseCode::Normal);
                }
            }
        }
        self.pump(now);
    }

    /// [`Node::handle_frame`] without the output queue: returns the `Frame` event (if the frame
    /// is delivered) for the caller to hand on at once. Adapters use it on the receive path,
    /// where every frame would otherwise be pushed to and popped from the queue.
    pub fn deliver_frame(&mut self, now: Instant, conn: ConnId, frame: Frame) -> Option<NodeEvent> {
        let Some(ConnState::Established {
            peer,
            last_activity,
            ..
        }) = self.conns.get_mut(conn).map(|c| &mut c.state)
        else {
            self.stats.frames_ignored += 1;
            return None;
        };
        *last_activity = now.max(*last_activity);
        let peer = *peer;
        self.stats.frames_in += 1;
        if let Some(slot) = self.table.route(frame.protocol) {
            self.hosted_frame(now, slot, conn, frame);
            return None;
        }
        if !self.config.delivers(frame.protocol) {
            self.stats.frames_dropped_unknown_protocol += 1;
            return None;
        }
        Some(NodeEvent::Frame { peer, frame })
    }

    /// A frame arrived on `conn`. Frames of the configured protocols become
    /// [`NodeEvent::Frame`]; others are dropped and counted. Frames on an unknown or not yet
    /// established connection are ignored and counted.
    pub fn handle_frame(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        if let Some(event) = self.deliver_frame(now, conn, frame) {
            if self.outputs.len() >= self.data_cap() {
                self.stats.frames_dropped_queue_full += 1;
            } else {
                self.event(event);
            }
        }
    }

    /// `conn` closed, by either side, with `cause`. An established peer is reported
    /// disconnected (and its persistent addresses queued for a redial with backoff); a
    /// handshaking outbound connection counts as a failed dial. Unknown connections (including
    /// those the node closed itself) are ignored.
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId, cause: CloseCause) {
        let Some(c) = self.conns.remove(conn) else {
            self.stats.stale_events += 1;
            return;
        };
        match c.state {
            ConnState::Handshaking if c.direction == Direction::Outbound => {
                self.dial_failed(now, c.addr);
            }
            ConnState::Handshaking => {}
            ConnState::Established { peer, .. } => self.peer_gone(now, peer, cause),
        }
        self.pump(now);
    }

    /// The adapter's write queue for `conn` crossed its high-water mark (`paused`) or drained
    /// below its low-water mark. While paused, [`Node::send`] to the peer is refused and
    /// [`Node::broadcast`] skips it. Changes are reported as [`NodeEvent::Backpressure`].
    pub fn handle_backpressure(&mut self, now: Instant, conn: ConnId, paused: bool) {
        let _ = now;
        let Some(c) = self.conns.get_mut(conn) else {
            self.stats.stale_events += 1;
            return;
        };
        if c.paused == paused {
            return;
        }
        c.paused = paused;
        if let Some(peer) = c.peer() {
            self.event(NodeEvent::Backpressure { peer, paused });
        }
    }

    /// Time has reached (at least) the deadline from [`Node::poll_timeout`]: closes idle
    /// connections, gives up on slow handshakes and dials, and requests the dials now due.
    /// Calling it early or late is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, timer)) = self.conns.pop_timer(now) {
            match timer {
                Timer::Dial(addr) => {
                    if self.conns.pending_deadline(addr) == Some(at) {
                        self.conns.take_pending(addr);
                        self.stats.handshake_timeouts += 1;
                        self.dial_failed(now, addr);
                    }
                }
                Timer::Conn(id) => self.conn_timer(now, id),
            }
        }
        self.hosted_timeouts(now);
        self.pump(now);
    }

    // ---- outputs -----------------------------------------------------------------------------

    /// The next output, or `None` once drained. Drain after every input: the queue then never
    /// holds more than one input's work.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<NodeOutput> {
        self.outputs.pop_front()
    }

    /// The next deadline at which [`Node::handle_timeout`] must be called: the earliest of the
    /// next due dial (while an outbound slot is free), handshake deadline and idle deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let dial = if self.conns.outbound() < self.config.max_outbound {
            self.book.next_due()
        } else {
            None
        };
        [dial, self.conns.next_timer(), self.table.next_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    // ---- internals ---------------------------------------------------------------------------

    /// Requests every due dial that fits in the outbound and per-IP limits. Each address is
    /// looked at once per call, so the loop is bounded by the address book.
    pub(super) fn pump(&mut self, now: Instant) {
        let mut budget = self.book.len();
        while budget > 0 && self.conns.outbound() < self.config.max_outbound {
            budget -= 1;
            let Some(addr) = self.book.due(now) else {
                break;
            };
            let Some(entry) = self.book.get(&addr).cloned() else {
                break;
            };
            if let Some(peer) = entry.peer().filter(|p| self.conns.active(*p).is_some()) {
                // Its peer is connected (it dialled us, or through another address).
                if entry.persistent {
                    self.book.park(addr, peer);
                } else {
                    self.book.remove(&addr);
                }
                continue;
            }
            if self.conns.per_ip(addr.ip()) >= self.config.max_per_ip {
                self.stats.dials_deferred += 1;
                let wait = self.book.backoff(1);
                self.book.defer(addr, now + wait);
                continue;
            }
            self.book.start_dial(addr);
            self.conns
                .add_pending(addr, now + self.config.handshake_timeout);
            self.stats.dials += 1;
            self.outputs.push_back(NodeOutput::Dial {
                addr,
                expected: entry.expected,
            });
        }
    }

    /// A connection's deadline came: fail its handshake, close it for idleness, or re-arm it.
    fn conn_timer(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get(conn).copied() else {
            return;
        };
        match c.state {
            ConnState::Handshaking => {
                self.stats.handshake_timeouts += 1;
                self.conns.remove(conn);
                self.close(conn, CloseCode::Unresponsive);
                if c.direction == Direction::Outbound {
                    self.dial_failed(now, c.addr);
                }
            }
            ConnState::Established {
                peer,
                last_activity,
                ..
            } => {
                let deadline = last_activity + self.config.idle_timeout;
                if deadline > now {
                    self.conns.schedule(conn, deadline);
                } else {
                    self.stats.idle_closed += 1;
                    self.conns.remove(conn);
                    self.close(conn, CloseCode::Normal);
                    self.peer_gone(now, peer, CloseCause::Local(CloseCode::Normal));
                }
            }
        }
    }

    /// Records a failed dial of `addr` and reports it.
    pub(super) fn dial_failed(&mut self, now: Instant, addr: SocketAddr) {
        self.hosted_dial_failed(now, addr);
        if let Some(failure) = self.book.dial_failed(now, addr) {
            self.stats.dial_failures += 1;
            self.event(NodeEvent::DialFailed {
                addr,
                attempts: failure.attempts,
                retry_at: failure.retry_at,
            });
        }
    }

    /// `peer`'s connection is gone (already removed from the table).
    pub(super) fn peer_gone(&mut self, now: Instant, peer: PeerId, cause: CloseCause) {
        self.event(NodeEvent::PeerDisconnected { peer, cause });
        self.book.peer_disconnected(now, peer);
        self.hosted_disconnected(now, peer);
    }

    /// The duplicate rule: keep the connection dialled by the node with the smaller id. Both
    /// ends compute the same answer when each dialled once; when one node dialled both, the
    /// older connection is kept.
    fn keeps_new(&self, peer: PeerId, old: Direction, new: Direction) -> bool {
        let smaller = self.local.min(peer);
        let dialer = |d: Direction| match d {
            Direction::Outbound => self.local,
            Direction::Inbound => peer,
        };
        dialer(new) == smaller && dialer(old) != smaller
    }

    pub(super) fn close(&mut self, conn: ConnId, code: CloseCode) {
        self.outputs.push_back(NodeOutput::Close { conn, code });
    }

    pub(super) fn event(&mut self, event: NodeEvent) {
        self.outputs.push_back(NodeOutput::Event(event));
    }

    /// Most outputs queued before frames (sends and deliveries) are refused: one broadcast's
    /// worth with room to spare. Only reached if the adapter does not drain after each input.
    pub(super) fn data_cap(&self) -> usize {
        2 * (self.config.max_inbound + self.config.max_outbound) + 64
    }
}

/// Records traffic on an established connection, for the idle timeout.
pub(super) fn touch(state: &mut ConnState, now: Instant) {
    if let ConnState::Established { last_activity, .. } = state {
        *last_activity = now.max(*last_activity);
    }
}
