//! A simulated node that speaks full secure sessions over the virtual links: real handshakes,
//! real ciphertext, one [`Session`] per neighbour.
//!
//! The links must be ordered ([`crate::NetworkConfig::ordered`]): a session reads a byte
//! stream. Each virtual message is one `poll_transmit` chunk.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use starling_core::machine::{Machine, Output};
use starling_core::session::{CloseCause, NodeKeys, Session, SessionConfig, SessionEvent};
use starling_core::time::Instant;

use crate::NodeId;

/// What a host reports about its sessions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostEvent {
    /// A session with `peer` finished its handshake.
    Established {
        /// The neighbour.
        peer: NodeId,
    },
    /// A session with `peer` ended; `cause` is [`CloseCause::name`].
    Closed {
        /// The neighbour.
        peer: NodeId,
        /// Why, as a snake_case name.
        cause: &'static str,
    },
}

/// One node's sessions, keyed by neighbour.
pub struct SessionHost {
    config: Arc<SessionConfig>,
    keys: Arc<NodeKeys>,
    seed: u64,
    sessions_made: u64,
    sessions: BTreeMap<NodeId, Session>,
    outputs: VecDeque<Output<NodeId, Bytes, HostEvent>>,
}

impl SessionHost {
    /// A host that dials each of `dial` at `now`. `seed` feeds every session's CSPRNG, so the
    /// whole transcript replays.
    pub fn new(
        config: Arc<SessionConfig>,
        keys: Arc<NodeKeys>,
        seed: u64,
        dial: &[NodeId],
        now: Instant,
    ) -> Self {
        let mut host = SessionHost {
            config,
            keys,
            seed,
            sessions_made: 0,
            sessions: BTreeMap::new(),
            outputs: VecDeque::new(),
        };
        for &peer in dial {
            let session = Session::initiator(
                host.config.clone(),
                host.keys.clone(),
                None,
                host.next_seed(),
                now,
            );
            host.sessions.insert(peer, session);
            host.drain(peer);
        }
        host
    }

    /// Sessions by neighbour, open or closed.
    pub fn sessions(&self) -> impl Iterator<Item = (NodeId, &Session)> {
        self.sessions.iter().map(|(p, s)| (*p, s))
    }

    /// A seed for the next session's CSPRNG, derived from the host's seed.
    fn next_seed(&mut self) -> [u8; 32] {
        self.sessions_made += 1;
        let mut h = blake3::Hasher::new_derive_key("starling sim session seed v1");
        h.update(&self.seed.to_le_bytes());
        h.update(&self.sessions_made.to_le_bytes());
        *h.finalize().as_bytes()
    }

    fn drain(&mut self, peer: NodeId) {
        let Some(session) = self.sessions.get_mut(&peer) else {
            return;
        };
        while let Some(bytes) = session.poll_transmit() {
            self.outputs.push_back(Output::Send {
                to: peer,
                msg: bytes,
            });
        }
        while let Some(event) = session.poll_event() {
            let report = match event {
                SessionEvent::Established { .. } => HostEvent::Established { peer },
                SessionEvent::Closed(cause) => HostEvent::Closed {
                    peer,
                    cause: cause_name(&cause),
                },
                _ => continue,
            };
            self.outputs.push_back(Output::Event(report));
        }
    }
}

fn cause_name(cause: &CloseCause) -> &'static str {
    match cause {
        CloseCause::Peer { code, .. } => code.name(),
        other => other.name(),
    }
}

impl Machine for SessionHost {
    type Peer = NodeId;
    type Message = Bytes;
    type Event = HostEvent;

    fn handle_message(&mut self, now: Instant, from: NodeId, bytes: Bytes) {
        if !self.sessions.contains_key(&from) {
            let session = Session::responder(
                self.config.clone(),
                self.keys.clone(),
                self.next_seed(),
                now,
            );
            self.sessions.insert(from, session);
        }
        if let Some(session) = self.sessions.get_mut(&from) {
            session.handle_bytes(now, &bytes);
        }
        self.drain(from);
    }

    fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<NodeId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.poll_timeout().is_some_and(|t| t <= now))
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            if let Some(session) = self.sessions.get_mut(&peer) {
                session.handle_timeout(now);
            }
            self.drain(peer);
        }
    }

    fn poll_output(&mut self) -> Option<Output<NodeId, Bytes, HostEvent>> {
        self.outputs.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(Session::poll_timeout)
            .min()
    }
}
