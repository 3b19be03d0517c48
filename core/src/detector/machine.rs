//! The failure-detector state machine.

use core::fmt;
use std::collections::VecDeque;

use rand::Rng;
use smallvec::SmallVec;

use super::{DetectorConfig, HeartbeatMessage};
use crate::machine::{Machine, Output};
use crate::rng::{seeded, MachineRng};
use crate::time::{Duration, Instant};

/// Peers stored inline before spilling to the heap.
const INLINE_PEERS: usize = 8;

/// What the detector believes about a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerStatus {
    /// Heard from within the last `suspect_after` rounds.
    Alive,
    /// Silent for `suspect_after` rounds or more.
    Suspect,
    /// Silent for `dead_after` rounds or more.
    Dead,
}

/// A change of a peer's status, reported to the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DetectorEvent<P> {
    /// The peer missed `suspect_after` heartbeats in a row.
    Suspect(P),
    /// The peer missed `dead_after` heartbeats in a row.
    Dead(P),
    /// A suspect or dead peer was heard from again.
    Alive(P),
}

/// Why a command was refused. The detector's state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DetectorError {
    /// `max_peers` peers are monitored already; unmonitor one first.
    TooManyPeers {
        /// The configured limit.
        max: usize,
    },
}

impl fmt::Display for DetectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DetectorError::TooManyPeers { max } => {
                write!(f, "already monitoring the maximum of {max} peers")
            }
        }
    }
}

impl std::error::Error for DetectorError {}

/// What the detector knows of one monitored peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerHealth {
    /// Current status.
    pub status: PeerStatus,
    /// Consecutive rounds without hearing from the peer.
    pub misses: u32,
    /// Smoothed round-trip time (RFC 6298 `SRTT`), once a pong has been timed.
    pub srtt: Option<Duration>,
    /// Round-trip variation (RFC 6298 `RTTVAR`).
    pub rttvar: Duration,
}

#[derive(Clone, Debug)]
struct PeerState<P> {
    peer: P,
    health: PeerHealth,
    /// Heard from since the last ping was sent (or since monitoring began).
    heard: bool,
    /// Sequence number and send time of the last ping while unanswered, for RTT samples.
    last_ping: Option<(u64, Instant)>,
}

/// The heartbeat failure detector (see the [module docs](super)).
#[derive(Clone, Debug)]
pub struct FailureDetector<P = crate::id::PeerId> {
    config: DetectorConfig,
    /// Sorted by peer, so lookups are a binary search over a compact array. Inline up to
    /// `INLINE_PEERS`: a session monitors one peer and a simulated node a handful, and keeping
    /// them beside the rest of the state saves a cache miss per message (the simulator's hot
    /// path at 10^6 nodes).
    peers: SmallVec<[PeerState<P>; INLINE_PEERS]>,
    next_round: Instant,
    next_seq: u64,
    outputs: VecDeque<Output<P, HeartbeatMessage, DetectorEvent<P>>>,
    /// Pongs not queued because the output queue was full (a peer flooding pings).
    dropped_pongs: u64,
}

impl<P: Copy + Ord> FailureDetector<P> {
    /// A detector monitoring nobody yet. `seed` jitters the first round.
    ///
    /// # Panics
    /// If `config` fails [`DetectorConfig::validate`]: a configuration is the programmer's input,
    /// not the network's, so a bad one is a bug to surface at start-up.
    pub fn new(config: DetectorConfig, seed: u64, now: Instant) -> Self {
        if let Err(e) = config.validate() {
            panic!("invalid DetectorConfig: {e}");
        }
        let mut rng: MachineRng = seeded(seed);
        let jitter = Duration::from_nanos(rng.random_range(0..config.interval.as_nanos()));
        FailureDetector {
            config,
            peers: SmallVec::new(),
            next_round: now + jitter,
            next_seq: 0,
            outputs: VecDeque::new(),
            dropped_pongs: 0,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Starts monitoring `peer`, assumed alive. Monitoring a peer twice is a no-op.
    pub fn monitor(&mut self, _now: Instant, peer: P) -> Result<(), DetectorError> {
        match self.find(peer) {
            Ok(_) => Ok(()),
            Err(_) if self.peers.len() >= self.config.max_peers => {
                Err(DetectorError::TooManyPeers {
                    max: self.config.max_peers,
                })
            }
            Err(at) => {
                let health = PeerHealth {
                    status: PeerStatus::Alive,
                    misses: 0,
                    srtt: None,
                    rttvar: Duration::ZERO,
                };
                // `heard` starts true: the round before the first ping is not a miss.
                let state = PeerState {
                    peer,
                    health,
                    heard: true,
                    last_ping: None,
                };
                self.peers.insert(at, state);
                Ok(())
            }
        }
    }

    /// Stops monitoring `peer`. Returns whether it was monitored.
    pub fn unmonitor(&mut self, peer: P) -> bool {
        match self.find(peer) {
            Ok(i) => {
                self.peers.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// What the detector knows of `peer`, if monitored.
    pub fn health(&self, peer: P) -> Option<PeerHealth> {
        self.find(peer).ok().map(|i| self.peers[i].health)
    }

    /// The status of `peer`, if monitored.
    pub fn status(&self, peer: P) -> Option<PeerStatus> {
        self.health(peer).map(|h| h.status)
    }

    /// Every monitored peer with its status, in peer order.
    pub fn statuses(&self) -> impl Iterator<Item = (P, PeerStatus)> + '_ {
        self.peers.iter().map(|s| (s.peer, s.health.status))
    }

    /// Number of monitored peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is monitored.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Pongs not sent because the output queue was full; non-zero means a peer flooded pings
    /// faster than the driver drained outputs.
    pub fn dropped_pongs(&self) -> u64 {
        self.dropped_pongs
    }

    /// Records that `peer` was heard from by other means (any frame on its session): traffic
    /// proves liveness as well as a pong does. Unmonitored peers are ignored.
    pub fn heard_from(&mut self, _now: Instant, peer: P) {
        if let Ok(i) = self.find(peer) {
            self.mark_heard(i);
        }
    }

    fn find(&self, peer: P) -> Result<usize, usize> {
        self.peers.binary_search_by(|s| s.peer.cmp(&peer))
    }

    fn mark_heard(&mut self, i: usize) {
        let state = &mut self.peers[i];
        state.heard = true;
        state.health.misses = 0;
        if state.health.status != PeerStatus::Alive {
            state.health.status = PeerStatus::Alive;
            self.outputs
                .push_back(Output::Event(DetectorEvent::Alive(state.peer)));
        }
    }

    /// Folds a round-trip sample into the estimate (RFC 6298 §2, α = 1/8, β = 1/4).
    fn sample_rtt(health: &mut PeerHealth, rtt: Duration) {
        let r = rtt.as_nanos();
        match health.srtt {
            None => {
                health.srtt = Some(rtt);
                health.rttvar = Duration::from_nanos(r / 2);
            }
            Some(srtt) => {
                let s = srtt.as_nanos();
                let var = health.rttvar.as_nanos();
                health.rttvar = Duration::from_nanos(var - var / 4 + s.abs_diff(r) / 4);
                health.srtt = Some(Duration::from_nanos(s - s / 8 + r / 8));
            }
        }
    }

    /// Most outputs the queue holds: a full round of pings plus answers to as many pings again.
    /// Beyond it pongs are dropped, so a ping flood cannot grow memory.
    fn output_cap(&self) -> usize {
        2 * self.config.max_peers + 64
    }

    fn run_round(&mut self, now: Instant) {
        let suspect_after = self.config.suspect_after.get();
        let dead_after = self.config.dead_after.get();
        for state in &mut self.peers {
            if !state.heard {
                let h = &mut state.health;
                h.misses = h.misses.saturating_add(1);
                if h.misses >= suspect_after && h.status == PeerStatus::Alive {
                    h.status = PeerStatus::Suspect;
                    self.outputs
                        .push_back(Output::Event(DetectorEvent::Suspect(state.peer)));
                }
                if h.misses >= dead_after && h.status == PeerStatus::Suspect {
                    h.status = PeerStatus::Dead;
                    self.outputs
                        .push_back(Output::Event(DetectorEvent::Dead(state.peer)));
                }
            }
            let seq = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            state.heard = false;
            state.last_ping = Some((seq, now));
            self.outputs.push_back(Output::Send {
                to: state.peer,
                msg: HeartbeatMessage::Ping { seq },
            });
        }
        // Keep the schedule on its grid; if the driver was late by more than a round, restart it.
        self.next_round += self.config.interval;
        if self.next_round <= now {
            self.next_round = now + self.config.interval;
        }
    }
}

impl<P: Copy + Ord> Machine for FailureDetector<P> {
    type Peer = P;
    type Message = HeartbeatMessage;
    type Event = DetectorEvent<P>;

    fn handle_message(&mut self, now: Instant, from: P, msg: HeartbeatMessage) {
        match msg {
            HeartbeatMessage::Ping { seq } => {
                if self.outputs.len() < self.output_cap() {
                    self.outputs.push_back(Output::Send {
                        to: from,
                        msg: HeartbeatMessage::Pong { seq },
                    });
                } else {
                    self.dropped_pongs += 1;
                }
            }
            HeartbeatMessage::Pong { seq } => {
                if let Ok(i) = self.find(from) {
                    let state = &mut self.peers[i];
                    // Only the answer to the latest ping is timed, once; older pongs still prove
                    // life but would overstate the RTT.
                    if let Some((ping_seq, sent)) = state.last_ping {
                        if ping_seq == seq {
                            Self::sample_rtt(&mut state.health, now - sent);
                            state.last_ping = None;
                        }
                    }
                }
            }
        }
        if let Ok(i) = self.find(from) {
            self.mark_heard(i);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_round {
            self.run_round(now);
        }
    }

    fn poll_output(&mut self) -> Option<Output<P, HeartbeatMessage, DetectorEvent<P>>> {
        self.outputs.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_round)
    }
}
