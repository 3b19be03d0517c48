//! The address book: addresses to dial, their dial queue and backoff.
//!
//! Every address is in exactly one state:
//! - `Waiting`: in the dial queue, due at an instant (now for a new address, later after a
//!   failure or a disconnect);
//! - `Dialling`: a dial was requested and has not yet succeeded or failed;
//! - `Satisfied`: its peer is connected (persistent addresses only); it waits, outside the queue,
//!   until that peer disconnects and is then queued again with backoff.
//!
//! The queue is a set ordered by due instant, so the next due dial is its first element and
//! rescheduling an address removes its old entry: the queue never holds more than one entry per
//! address.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use rand::Rng;
use smallvec::SmallVec;

use super::config::NodeConfig;
use super::output::{ConnId, NodeError};
use crate::id::PeerId;
use crate::rng::{seeded, MachineRng};
use crate::time::{Duration, Instant};

/// Where an address is in its dial cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryState {
    /// In the dial queue, due at `at`.
    Waiting { at: Instant },
    /// A dial was requested (`conn: None`) or its connection is handshaking on `conn`.
    Dialling { conn: Option<ConnId> },
    /// Its peer is connected; the address waits for that peer to disconnect.
    Satisfied { peer: PeerId },
}

/// One known address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AddrEntry {
    /// The identity the application says lives here, passed on with each dial.
    pub expected: Option<PeerId>,
    /// The identity last found here.
    pub learned: Option<PeerId>,
    /// Redialled whenever its peer is not connected, and never dropped for failing.
    pub persistent: bool,
    /// Failed dials (and disconnects) since the last success.
    pub attempts: u32,
    /// Where it is in its dial cycle.
    pub state: EntryState,
}

impl AddrEntry {
    /// The peer this address leads to, as far as the node knows.
    pub fn peer(&self) -> Option<PeerId> {
        self.expected.or(self.learned)
    }
}

/// The outcome of a failed dial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DialFailure {
    /// Failed attempts in a row, this one included.
    pub attempts: u32,
    /// When the address is due again; `None` if it was dropped.
    pub retry_at: Option<Instant>,
}

/// Known addresses, the dial queue and the backoff schedule.
#[derive(Clone, Debug)]
pub(crate) struct AddressBook {
    entries: BTreeMap<SocketAddr, AddrEntry>,
    /// `(due, addr)` for every `Waiting` entry, and nothing else.
    queue: BTreeSet<(Instant, SocketAddr)>,
    /// The addresses parked on each connected peer.
    satisfied: BTreeMap<PeerId, SmallVec<[SocketAddr; 2]>>,
    rng: MachineRng,
    backoff_initial: Duration,
    backoff_max: Duration,
    jitter_percent: u8,
    max_attempts: u32,
    capacity: usize,
}

impl AddressBook {
    /// An empty book with the limits and backoff of `config`, jittered by a PRNG from `seed`.
    pub fn new(config: &NodeConfig, seed: u64) -> Self {
        AddressBook {
            entries: BTreeMap::new(),
            queue: BTreeSet::new(),
            satisfied: BTreeMap::new(),
            rng: seeded(seed),
            backoff_initial: config.dial_backoff_initial,
            backoff_max: config.dial_backoff_max,
            jitter_percent: config.dial_jitter_percent,
            max_attempts: config.max_dial_attempts.get(),
            capacity: config.max_known_addresses,
        }
    }

    /// Number of known addresses.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry for `addr`.
    pub fn get(&self, addr: &SocketAddr) -> Option<&AddrEntry> {
        self.entries.get(addr)
    }

    /// Adds `addr`, due now. A known address keeps its place in its cycle; it becomes persistent
    /// if asked to, and takes `expected` if given. See [`NodeConfig::max_known_addresses`] for
    /// what happens when the book is full.
    pub fn insert(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        expected: Option<PeerId>,
        persistent: bool,
    ) -> Result<(), NodeError> {
        if let Some(entry) = self.entries.get_mut(&addr) {
            entry.persistent |= persistent;
            if expected.is_some() {
                entry.expected = expected;
            }
            return Ok(());
        }
        if self.entries.len() >= self.capacity {
            let full = NodeError::AddressBookFull { max: self.capacity };
            if !persistent {
                return Err(full);
            }
            // Make room by evicting the non-persistent address due last. Only waiting addresses
            // are in the queue, so nothing under way is disturbed.
            let victim = self
                .queue
                .iter()
                .rev()
                .map(|(_, a)| *a)
                .find(|a| self.entries.get(a).is_some_and(|e| !e.persistent));
            match victim {
                Some(victim) => {
                    self.remove(&victim);
                }
                None => return Err(full),
            }
        }
        let entry = AddrEntry {
            expected,
            learned: None,
            persistent,
            attempts: 0,
            state: EntryState::Waiting { at: now },
        };
        self.entries.insert(addr, entry);
        self.queue.insert((now, addr));
        Ok(())
    }

    /// Forgets `addr`, whatever its state, and returns what was known of it.
    pub fn remove(&mut self, addr: &SocketAddr) -> Option<AddrEntry> {
        let entry = self.entries.remove(addr)?;
        match entry.state {
            EntryState::Waiting { at } => {
                self.queue.remove(&(at, *addr));
            }
            EntryState::Satisfied { peer } => self.unindex(peer, addr),
            EntryState::Dialling { .. } => {}
        }
        Some(entry)
    }

    /// When the next waiting address is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// The first waiting address due at `now`, left in the queue until the caller moves it on
    /// with [`start_dial`](Self::start_dial), [`park`](Self::park), [`defer`](Self::defer) or
    /// [`remove`](Self::remove).
    pub fn due(&self, now: Instant) -> Option<SocketAddr> {
        self.queue
            .first()
            .filter(|(at, _)| *at <= now)
            .map(|(_, addr)| *addr)
    }

    /// A dial of the waiting `addr` was requested.
    pub fn start_dial(&mut self, addr: SocketAddr) {
        if let Some(entry) = self.entries.get_mut(&addr) {
            if let EntryState::Waiting { at } = entry.state {
                self.queue.remove(&(at, addr));
                entry.state = EntryState::Dialling { conn: None };
            }
        }
    }

    /// The requested dial of `addr` produced connection `conn`. Returns whether a dial of `addr`
    /// was awaiting its connection.
    pub fn dialed(&mut self, addr: SocketAddr, conn: ConnId) -> bool {
        match self.entries.get_mut(&addr) {
            Some(entry) if entry.state == (EntryState::Dialling { conn: None }) => {
                entry.state = EntryState::Dialling { conn: Some(conn) };
                true
            }
            _ => false,
        }
    }

    /// The dial of `addr` failed: schedule the next attempt with backoff, or drop a
    /// non-persistent address out of attempts. `None` if `addr` was not being dialled.
    pub fn dial_failed(&mut self, now: Instant, addr: SocketAddr) -> Option<DialFailure> {
        let entry = self.entries.get_mut(&addr)?;
        if !matches!(entry.state, EntryState::Dialling { .. }) {
            return None;
        }
        entry.attempts = entry.attempts.saturating_add(1);
        let attempts = entry.attempts;
        if !entry.persistent && attempts >= self.max_attempts {
            self.entries.remove(&addr);
            return Some(DialFailure {
                attempts,
                retry_at: None,
            });
        }
        let at = now + self.backoff(attempts);
        self.wait(addr, at);
        Some(DialFailure {
            attempts,
            retry_at: Some(at),
        })
    }

    /// The dial of `addr` reached `peer`: attempts start over; a persistent address waits for
    /// the peer to disconnect, a non-persistent one has done its job and is dropped.
    pub fn connected(&mut self, addr: SocketAddr, peer: PeerId) {
        let Some(entry) = self.entries.get_mut(&addr) else {
            return;
        };
        if !matches!(entry.state, EntryState::Dialling { .. }) {
            return;
        }
        entry.attempts = 0;
        entry.learned = Some(peer);
        if entry.persistent {
            entry.state = EntryState::Satisfied { peer };
            self.satisfied.entry(peer).or_default().push(addr);
        } else {
            self.entries.remove(&addr);
        }
    }

    /// The waiting, persistent `addr` is due but its `peer` is connected already: take it out of
    /// the queue until the peer disconnects.
    pub fn park(&mut self, addr: SocketAddr, peer: PeerId) {
        if let Some(entry) = self.entries.get_mut(&addr) {
            if let EntryState::Waiting { at } = entry.state {
                self.queue.remove(&(at, addr));
                entry.state = EntryState::Satisfied { peer };
                self.satisfied.entry(peer).or_default().push(addr);
            }
        }
    }

    /// Moves the waiting `addr` to `until` without counting an attempt.
    pub fn defer(&mut self, addr: SocketAddr, until: Instant) {
        if matches!(
            self.entries.get(&addr).map(|e| e.state),
            Some(EntryState::Waiting { .. })
        ) {
            self.wait(addr, until);
        }
    }

    /// `peer` disconnected: every address parked on it is queued again, with backoff.
    pub fn peer_disconnected(&mut self, now: Instant, peer: PeerId) {
        let Some(addrs) = self.satisfied.remove(&peer) else {
            return;
        };
        for addr in addrs {
            let Some(entry) = self.entries.get_mut(&addr) else {
                continue;
            };
            entry.attempts = entry.attempts.saturating_add(1);
            let attempts = entry.attempts;
            let at = now + self.backoff(attempts);
            self.wait(addr, at);
        }
    }

    /// The wait before attempt `attempts + 1`: `min(initial × 2^(attempts−1), max)`, moved by up
    /// to `jitter_percent` either way.
    pub fn backoff(&mut self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1);
        let factor = 1u64.checked_shl(doublings).unwrap_or(u64::MAX);
        let base = self
            .backoff_initial
            .saturating_mul(factor)
            .min(self.backoff_max)
            .as_nanos();
        let j = u128::from(self.jitter_percent);
        let scale =
            |percent: u128| u64::try_from(u128::from(base) * percent / 100).unwrap_or(u64::MAX);
        let (lo, hi) = (scale(100 - j), scale(100 + j));
        // At least a nanosecond, so a rescheduled address is never due at the same instant.
        Duration::from_nanos(self.rng.random_range(lo..=hi).max(1))
    }

    /// Puts `addr` in the `Waiting` state at `at`, leaving whatever state it was in.
    fn wait(&mut self, addr: SocketAddr, at: Instant) {
        let Some(entry) = self.entries.get_mut(&addr) else {
            return;
        };
        let old = core::mem::replace(&mut entry.state, EntryState::Waiting { at });
        match old {
            EntryState::Waiting { at: old } => {
                self.queue.remove(&(old, addr));
            }
            EntryState::Satisfied { peer } => self.unindex(peer, &addr),
            EntryState::Dialling { .. } => {}
        }
        self.queue.insert((at, addr));
    }

    /// Removes `addr` from the addresses parked on `peer`.
    fn unindex(&mut self, peer: PeerId, addr: &SocketAddr) {
        if let Some(addrs) = self.satisfied.get_mut(&peer) {
            addrs.retain(|a| a != addr);
            if addrs.is_empty() {
                self.satisfied.remove(&peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn book(config: NodeConfig) -> AddressBook {
        AddressBook::new(&config, 7)
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_within_the_jitter() {
        let mut b = book(NodeConfig::default());
        for attempts in 1..=12u32 {
            let base = Duration::from_secs(1u64 << (attempts - 1).min(6))
                .min(Duration::from_secs(60))
                .as_nanos();
            for _ in 0..50 {
                let d = b.backoff(attempts).as_nanos();
                assert!(
                    d >= base / 100 * 80 && d <= base / 100 * 120,
                    "{attempts}: {d}"
                );
            }
        }
        // No overflow however many attempts.
        assert!(b.backoff(u32::MAX) <= Duration::from_secs(72));
    }

    #[test]
    fn non_persistent_address_is_dropped_after_max_attempts() {
        let mut b = book(NodeConfig::default());
        b.insert(Instant::ZERO, addr(1), None, false).unwrap();
        let mut now = Instant::ZERO;
        for attempt in 1..=5 {
            assert_eq!(b.due(now), Some(addr(1)));
            b.start_dial(addr(1));
            let failure = b.dial_failed(now, addr(1)).unwrap();
            assert_eq!(failure.attempts, attempt);
            match failure.retry_at {
                Some(at) => now = at,
                None => assert_eq!(attempt, 5),
            }
        }
        assert_eq!(b.len(), 0);
        assert_eq!(b.next_due(), None);
    }

    #[test]
    fn full_book_evicts_a_waiting_non_persistent_address_for_a_persistent_one() {
        let config = NodeConfig {
            max_known_addresses: 2,
            ..Default::default()
        };
        let mut b = book(config);
        let now = Instant::ZERO;
        b.insert(now, addr(1), None, true).unwrap();
        b.insert(now, addr(2), None, false).unwrap();
        assert_eq!(
            b.insert(now, addr(3), None, false),
            Err(NodeError::AddressBookFull { max: 2 })
        );
        assert_eq!(b.insert(now, addr(3), None, true), Ok(()));
        assert!(b.get(&addr(2)).is_none());
        assert_eq!(
            b.insert(now, addr(4), None, true),
            Err(NodeError::AddressBookFull { max: 2 })
        );
        // Re-adding a known address is not a new one.
        assert_eq!(b.insert(now, addr(1), None, false), Ok(()));
        assert!(b.get(&addr(1)).unwrap().persistent);
    }

    #[test]
    fn parked_address_is_requeued_when_its_peer_disconnects() {
        let mut b = book(NodeConfig::default());
        let peer = PeerId::from_bytes([9; 32]);
        b.insert(Instant::ZERO, addr(1), Some(peer), true).unwrap();
        b.park(addr(1), peer);
        assert_eq!(b.next_due(), None);
        let now = Instant::ZERO + Duration::from_secs(10);
        b.peer_disconnected(now, peer);
        let due = b.next_due().unwrap();
        assert!(
            due >= now + Duration::from_millis(800) && due <= now + Duration::from_millis(1200)
        );
        assert_eq!(b.get(&addr(1)).unwrap().attempts, 1);
        b.peer_disconnected(now, peer);
        assert_eq!(
            b.next_due(),
            Some(due),
            "a second disconnect changes nothing"
        );
    }
}
