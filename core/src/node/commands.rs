//! The application's commands to the node, and its queries.

use std::net::SocketAddr;

use smallvec::SmallVec;

use super::address_book::EntryState;
use super::connections::ConnState;
use super::machine::{touch, Node};
use super::output::{ConnId, NodeError, NodeOutput, NodeStats, PeerInfo};
use crate::id::PeerId;
use crate::session::{CloseCause, CloseCode};
use crate::time::Instant;
use crate::wire::Frame;

impl Node {
    /// Adds an address to dial, due at once. `expected` is the identity that lives there, if
    /// known: the dial passes it to the session, so any other identity aborts the handshake.
    /// A `persistent` address (a bootstrap peer) is redialled with backoff whenever its peer is
    /// not connected; a non-persistent one is dialled until it connects once or fails
    /// `max_dial_attempts` times. Adding a known address only upgrades it (persistent, expected).
    pub fn add_address(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        expected: Option<PeerId>,
        persistent: bool,
    ) -> Result<(), NodeError> {
        if expected == Some(self.local) {
            return Err(NodeError::SelfAddress);
        }
        if let Err(e) = self.book.insert(now, addr, expected, persistent) {
            self.stats.addresses_refused += 1;
            return Err(e);
        }
        self.pump(now);
        Ok(())
    }

    /// Forgets `addr`: it is no longer dialled, and a dial of it under way is abandoned (its
    /// connection closed). A peer already connected through it stays connected. Returns whether
    /// the address was known.
    pub fn remove_address(&mut self, now: Instant, addr: SocketAddr) -> bool {
        let Some(entry) = self.book.remove(&addr) else {
            return false;
        };
        match entry.state {
            EntryState::Dialling { conn: None } => {
                self.conns.take_pending(addr);
            }
            EntryState::Dialling { conn: Some(conn) } => {
                self.conns.remove(conn);
                self.close(conn, CloseCode::Normal);
            }
            EntryState::Waiting { .. } | EntryState::Satisfied { .. } => {}
        }
        self.pump(now);
        true
    }

    /// Routes `count` frames to `peer` at once: the checks of [`Node::send`], done once, and the
    /// connection the adapter should write them on (no output is queued).
    pub fn route_batch(
        &mut self,
        now: Instant,
        peer: PeerId,
        count: u64,
    ) -> Result<ConnId, NodeError> {
        let conn = self.conns.active(peer).ok_or(NodeError::NotConnected)?;
        let c = self.conns.get_mut(conn).ok_or(NodeError::NotConnected)?;
        if c.paused {
            return Err(NodeError::Paused);
        }
        touch(&mut c.state, now);
        self.stats.frames_out += count;
        Ok(conn)
    }

    /// Sends `frame` to `peer` on its established connection.
    pub fn send(&mut self, now: Instant, peer: PeerId, frame: Frame) -> Result<(), NodeError> {
        let cap = self.data_cap();
        let queued = self.outputs.len();
        let conn = self.conns.active(peer).ok_or(NodeError::NotConnected)?;
        let c = self.conns.get_mut(conn).ok_or(NodeError::NotConnected)?;
        if c.paused {
            return Err(NodeError::Paused);
        }
        if queued >= cap {
            return Err(NodeError::QueueFull);
        }
        touch(&mut c.state, now);
        self.stats.frames_out += 1;
        self.outputs.push_back(NodeOutput::Send { conn, frame });
        Ok(())
    }

    /// Sends `frame` to every established peer whose write queue is not paused; returns to how
    /// many.
    pub fn broadcast(&mut self, now: Instant, frame: &Frame) -> usize {
        let targets: SmallVec<[ConnId; 16]> = self
            .conns
            .peers()
            .filter(|(_, _, c)| !c.paused)
            .map(|(_, conn, _)| conn)
            .collect();
        let mut sent = 0;
        for conn in targets {
            if self.outputs.len() >= self.data_cap() {
                break;
            }
            if let Some(c) = self.conns.get_mut(conn) {
                touch(&mut c.state, now);
            }
            self.stats.frames_out += 1;
            self.outputs.push_back(NodeOutput::Send {
                conn,
                frame: frame.clone(),
            });
            sent += 1;
        }
        sent
    }

    /// Closes the connection to `peer` (reported as disconnected with
    /// `CloseCause::Local(CloseCode::Normal)`). Its persistent addresses are redialled after
    /// backoff; remove them first to keep it away. Does nothing if `peer` is not connected.
    pub fn disconnect(&mut self, now: Instant, peer: PeerId) {
        let Some(conn) = self.conns.active(peer) else {
            return;
        };
        self.conns.remove(conn);
        self.close(conn, CloseCode::Normal);
        self.peer_gone(now, peer, CloseCause::Local(CloseCode::Normal));
        self.pump(now);
    }

    /// Every established peer, in peer order.
    pub fn peers(&self) -> impl Iterator<Item = PeerInfo> + '_ {
        self.conns
            .peers()
            .filter_map(|(peer, conn, c)| match c.state {
                ConnState::Established { since, .. } => Some(PeerInfo {
                    peer,
                    addr: c.addr,
                    direction: c.direction,
                    conn,
                    paused: c.paused,
                    connected_since: since,
                }),
                ConnState::Handshaking => None,
            })
    }

    /// Whether `peer` has an established connection.
    pub fn is_connected(&self, peer: PeerId) -> bool {
        self.conns.active(peer).is_some()
    }

    /// Counters since start-up and the current number of connections and addresses.
    pub fn stats(&self) -> NodeStats {
        NodeStats {
            inbound: self.conns.inbound(),
            outbound: self.conns.outbound(),
            established: self.conns.established(),
            known_addresses: self.book.len(),
            ..self.stats
        }
    }
}
