//! The connection table: every connection and requested dial the node holds, the slots they
//! take against the limits, which connection serves each peer, and their deadlines.
//!
//! Each inbound connection, outbound connection and requested dial (no connection yet) holds one
//! slot: it counts against `max_inbound` or `max_outbound`, and against `max_per_ip` for its IP
//! address, from the moment it is admitted until it is removed. Each also has exactly one entry in
//! the timer set, at its deadline: the handshake deadline while not established, then (at the
//! latest) the idle deadline. Frames move the idle deadline later without touching the set; the
//! entry is re-armed when it fires early. So the set holds one entry per live object, and a timer
//! can only fire early, never late.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use super::output::{ConnId, Direction};
use crate::id::PeerId;
use crate::time::Instant;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// Accepted or connected; the session handshake is under way.
    Handshaking,
    /// The session is established with `peer`.
    Established {
        /// Who.
        peer: PeerId,
        /// When the peer was first connected.
        since: Instant,
        /// The last frame in or out.
        last_activity: Instant,
    },
}

/// One connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Conn {
    /// The remote address.
    pub addr: SocketAddr,
    /// Who dialled.
    pub direction: Direction,
    /// The adapter's write queue is above its high-water mark.
    pub paused: bool,
    /// Handshaking or established.
    pub state: ConnState,
    /// Where the peer accepts connections: the dialled address for outbound connections, the
    /// connection's IP with the port announced in the handshake for inbound ones.
    pub listen: Option<SocketAddr>,
    /// The instant of this connection's entry in the timer set.
    timer: Instant,
}

impl Conn {
    /// The peer, once established.
    pub fn peer(&self) -> Option<PeerId> {
        match self.state {
            ConnState::Established { peer, .. } => Some(peer),
            ConnState::Handshaking => None,
        }
    }
}

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A requested dial of this address has not produced a connection in time.
    Dial(SocketAddr),
    /// This connection's handshake or idle deadline.
    Conn(ConnId),
}

/// Connections, requested dials, slots and deadlines.
#[derive(Clone, Debug, Default)]
pub(crate) struct Connections {
    conns: BTreeMap<ConnId, Conn>,
    /// Requested dials without a connection yet, with their deadlines.
    pending: BTreeMap<SocketAddr, Instant>,
    /// The established connection of each connected peer.
    peers: BTreeMap<PeerId, ConnId>,
    /// Slots held per IP address; addresses holding none are absent.
    per_ip: BTreeMap<IpAddr, usize>,
    inbound: usize,
    outbound: usize,
    timers: BTreeSet<(Instant, Timer)>,
}

impl Connections {
    /// Inbound slots held.
    pub fn inbound(&self) -> usize {
        self.inbound
    }

    /// Outbound slots held (requested dials included).
    pub fn outbound(&self) -> usize {
        self.outbound
    }

    /// Slots held by `ip`.
    pub fn per_ip(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Connected peers.
    pub fn established(&self) -> usize {
        self.peers.len()
    }

    /// The connection `conn`.
    pub fn get(&self, conn: ConnId) -> Option<&Conn> {
        self.conns.get(&conn)
    }

    /// The connection `conn`, to update.
    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut Conn> {
        self.conns.get_mut(&conn)
    }

    /// The established connection serving `peer`.
    pub fn active(&self, peer: PeerId) -> Option<ConnId> {
        self.peers.get(&peer).copied()
    }

    /// Every connected peer with its connection, in peer order.
    pub fn peers(&self) -> impl Iterator<Item = (PeerId, ConnId, &Conn)> + '_ {
        self.peers
            .iter()
            .filter_map(|(p, c)| self.conns.get(c).map(|conn| (*p, *c, conn)))
    }

    /// Admits the inbound connection `conn` from `addr`, to be established by `deadline`.
    pub fn add_inbound(&mut self, conn: ConnId, addr: SocketAddr, deadline: Instant) {
        self.acquire(Direction::Inbound, addr.ip());
        self.insert_conn(conn, addr, Direction::Inbound, deadline);
    }

    /// Holds an outbound slot for a dial of `addr`, to produce a connection by `deadline`.
    pub fn add_pending(&mut self, addr: SocketAddr, deadline: Instant) {
        if self.pending.insert(addr, deadline).is_none() {
            self.acquire(Direction::Outbound, addr.ip());
        }
        self.timers.insert((deadline, Timer::Dial(addr)));
    }

    /// Drops the requested dial of `addr`, releasing its slot. Returns whether there was one.
    pub fn take_pending(&mut self, addr: SocketAddr) -> bool {
        match self.pending.remove(&addr) {
            Some(deadline) => {
                self.timers.remove(&(deadline, Timer::Dial(addr)));
                self.release(Direction::Outbound, addr.ip());
                true
            }
            None => false,
        }
    }

    /// The requested dial of `addr` became connection `conn`, which keeps the dial's slot and
    /// deadline. Returns false, changing nothing, if there was no such dial or `conn` is taken.
    pub fn pending_to_conn(&mut self, addr: SocketAddr, conn: ConnId) -> bool {
        if self.conns.contains_key(&conn) {
            return false;
        }
        let Some(deadline) = self.pending.remove(&addr) else {
            return false;
        };
        self.timers.remove(&(deadline, Timer::Dial(addr)));
        self.insert_conn(conn, addr, Direction::Outbound, deadline);
        true
    }

    /// Marks `conn` established with `peer`, serving it from now on, with its timer at
    /// `deadline`. `since` is when the peer was first connected.
    pub fn establish(
        &mut self,
        conn: ConnId,
        peer: PeerId,
        since: Instant,
        now: Instant,
        deadline: Instant,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.state = ConnState::Established {
            peer,
            since,
            last_activity: now,
        };
        self.peers.insert(peer, conn);
        self.schedule(conn, deadline);
    }

    /// Forgets `conn`, releasing its slot and timer (and its peer, if it served one).
    pub fn remove(&mut self, conn: ConnId) -> Option<Conn> {
        let c = self.conns.remove(&conn)?;
        self.timers.remove(&(c.timer, Timer::Conn(conn)));
        self.release(c.direction, c.addr.ip());
        if let Some(peer) = c.peer() {
            if self.peers.get(&peer) == Some(&conn) {
                self.peers.remove(&peer);
            }
        }
        Some(c)
    }

    /// Moves the timer of `conn` to `at`.
    pub fn schedule(&mut self, conn: ConnId, at: Instant) {
        if let Some(c) = self.conns.get_mut(&conn) {
            self.timers.remove(&(c.timer, Timer::Conn(conn)));
            c.timer = at;
            self.timers.insert((at, Timer::Conn(conn)));
        }
    }

    /// The earliest deadline.
    pub fn next_timer(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Takes the earliest timer due at `now`. The caller re-arms it if it fired early.
    pub fn pop_timer(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        match self.timers.first() {
            Some((at, _)) if *at <= now => self.timers.pop_first(),
            _ => None,
        }
    }

    /// The deadline of the requested dial of `addr`.
    pub fn pending_deadline(&self, addr: SocketAddr) -> Option<Instant> {
        self.pending.get(&addr).copied()
    }

    fn insert_conn(&mut self, conn: ConnId, addr: SocketAddr, direction: Direction, at: Instant) {
        let c = Conn {
            listen: None,
            addr,
            direction,
            paused: false,
            state: ConnState::Handshaking,
            timer: at,
        };
        self.conns.insert(conn, c);
        self.timers.insert((at, Timer::Conn(conn)));
    }

    fn acquire(&mut self, direction: Direction, ip: IpAddr) {
        match direction {
            Direction::Inbound => self.inbound += 1,
            Direction::Outbound => self.outbound += 1,
        }
        *self.per_ip.entry(ip).or_insert(0) += 1;
    }

    fn release(&mut self, direction: Direction, ip: IpAddr) {
        match direction {
            Direction::Inbound => self.inbound = self.inbound.saturating_sub(1),
            Direction::Outbound => self.outbound = self.outbound.saturating_sub(1),
        }
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    #[test]
    fn slots_are_released_exactly_once() {
        let mut t = Connections::default();
        let a = SocketAddr::from(([10, 0, 0, 1], 1));
        let b = SocketAddr::from(([10, 0, 0, 1], 2));
        let at = Instant::ZERO + Duration::from_secs(1);
        t.add_inbound(1, a, at);
        t.add_pending(b, at);
        assert_eq!((t.inbound(), t.outbound(), t.per_ip(a.ip())), (1, 1, 2));
        assert!(t.pending_to_conn(b, 2));
        assert!(!t.pending_to_conn(b, 3), "the dial was consumed");
        assert_eq!((t.inbound(), t.outbound(), t.per_ip(a.ip())), (1, 1, 2));
        assert!(t.remove(1).is_some());
        assert!(t.remove(1).is_none());
        assert!(t.remove(2).is_some());
        assert_eq!((t.inbound(), t.outbound(), t.per_ip(a.ip())), (0, 0, 0));
        assert_eq!(t.next_timer(), None);
    }

    #[test]
    fn one_timer_per_connection() {
        let mut t = Connections::default();
        let a = SocketAddr::from(([10, 0, 0, 1], 1));
        let peer = PeerId::from_bytes([1; 32]);
        t.add_inbound(1, a, Instant::from_nanos(5));
        t.establish(
            1,
            peer,
            Instant::ZERO,
            Instant::ZERO,
            Instant::from_nanos(9),
        );
        t.schedule(1, Instant::from_nanos(7));
        assert_eq!(t.timers.len(), 1);
        assert_eq!(t.pop_timer(Instant::from_nanos(6)), None);
        assert_eq!(
            t.pop_timer(Instant::from_nanos(7)),
            Some((Instant::from_nanos(7), Timer::Conn(1)))
        );
        assert_eq!(t.active(peer), Some(1));
    }
}
