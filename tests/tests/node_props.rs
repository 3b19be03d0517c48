//! Property tests for the node: random sequences of adapter events and application commands.
//!
//! The test plays a sloppy adapter: it reports events for random connection ids and addresses
//! (known or not, repeated, after close) as well as for the connections and dials the node
//! actually holds. It keeps its own model of the slots the node should hold (inbound and
//! outbound connections, dials requested) from nothing but the inputs it gave and the outputs it
//! drained, and checks after every input that:
//! - nothing panics;
//! - the model agrees with the node's counts, and no limit (inbound, outbound, per IP) is
//!   exceeded;
//! - a peer has at most one established connection;
//! - `PeerConnected`/`PeerDisconnected` alternate per peer, starting with `PeerConnected`, and
//!   the connected set they describe is exactly `Node::peers`;
//! - frames are only delivered from connected peers and for hosted protocols;
//! - after `handle_timeout(now)` the next deadline is in the future (no busy loop).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use bytes::Bytes;
use proptest::prelude::*;
use starling_core::node::{Direction, Node, NodeConfig, NodeEvent, NodeOutput};
use starling_core::session::{CloseCause, CloseCode};
use starling_core::time::{Duration, Instant};
use starling_core::wire::{Frame, ProtocolId};
use starling_core::PeerId;

type ConnId = u64;

/// Peer 0 is the node itself, so self-dials happen.
fn peer(n: u8) -> PeerId {
    PeerId::from_bytes([n; 32])
}

/// Nine addresses on three hosts: more than the address book holds.
fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n % 3], 4000 + u16::from(n / 3)))
}

fn config() -> NodeConfig {
    NodeConfig {
        max_inbound: 3,
        max_outbound: 2,
        max_per_ip: 2,
        idle_timeout: Duration::from_secs(30),
        handshake_timeout: Duration::from_secs(5),
        max_dial_attempts: NonZeroU32::new(2).unwrap(),
        max_known_addresses: 6,
        protocols: vec![ProtocolId::GOSSIP],
        ..NodeConfig::default()
    }
}

#[derive(Clone, Debug)]
enum Input {
    // Adapter events on random ids and addresses.
    Incoming(u8, u8),
    Dialed(u8, u8),
    DialFailed(u8),
    Established(u8, u8),
    Frame(u8, u16),
    Closed(u8),
    Backpressure(u8, bool),
    // Adapter events on what the node holds: the i-th live connection or requested dial.
    DialedPending(u8, u8),
    FailPending(u8),
    EstablishLive(u8, u8),
    FrameLive(u8, u16),
    CloseLive(u8),
    // Time.
    Advance(u32),
    Timeout,
    // Application commands.
    AddAddress(u8, Option<u8>, bool),
    RemoveAddress(u8),
    Send(u8),
    Broadcast,
    Disconnect(u8),
}

fn input() -> impl Strategy<Value = Input> {
    let conn = 0u8..12;
    let a = 0u8..9;
    let p = 0u8..5;
    prop_oneof![
        1 => (conn.clone(), a.clone()).prop_map(|(c, a)| Input::Incoming(c, a)),
        1 => (a.clone(), conn.clone()).prop_map(|(a, c)| Input::Dialed(a, c)),
        1 => a.clone().prop_map(Input::DialFailed),
        1 => (conn.clone(), p.clone()).prop_map(|(c, p)| Input::Established(c, p)),
        1 => (conn.clone(), 0u16..5).prop_map(|(c, pr)| Input::Frame(c, pr)),
        1 => conn.clone().prop_map(Input::Closed),
        1 => (conn.clone(), any::<bool>()).prop_map(|(c, b)| Input::Backpressure(c, b)),
        2 => (any::<u8>(), conn.clone()).prop_map(|(i, c)| Input::DialedPending(i, c)),
        1 => any::<u8>().prop_map(Input::FailPending),
        3 => (any::<u8>(), p.clone()).prop_map(|(i, p)| Input::EstablishLive(i, p)),
        1 => (any::<u8>(), 0u16..5).prop_map(|(i, pr)| Input::FrameLive(i, pr)),
        1 => any::<u8>().prop_map(Input::CloseLive),
        1 => (0u32..40_000).prop_map(Input::Advance),
        2 => Just(Input::Timeout),
        2 => (a.clone(), proptest::option::of(p.clone()), any::<bool>())
            .prop_map(|(a, e, ps)| Input::AddAddress(a, e, ps)),
        1 => a.prop_map(Input::RemoveAddress),
        1 => p.clone().prop_map(Input::Send),
        1 => Just(Input::Broadcast),
        1 => p.prop_map(Input::Disconnect),
    ]
}

/// What the node should hold, reconstructed from inputs and outputs only.
#[derive(Default)]
struct Model {
    /// Connections the node holds, with their address and direction.
    live: BTreeMap<ConnId, (SocketAddr, Direction)>,
    /// Dials requested and not yet turned into a connection or failed.
    pending: BTreeSet<SocketAddr>,
    /// Peers reported connected and not since disconnected.
    connected: BTreeSet<PeerId>,
}

impl Model {
    fn nth_live(&self, i: u8) -> Option<ConnId> {
        let n = self.live.len();
        (n > 0).then(|| *self.live.keys().nth(usize::from(i) % n).unwrap())
    }

    fn nth_pending(&self, i: u8) -> Option<SocketAddr> {
        let n = self.pending.len();
        (n > 0).then(|| *self.pending.iter().nth(usize::from(i) % n).unwrap())
    }

    fn per_ip(&self) -> BTreeMap<IpAddr, usize> {
        let mut counts = BTreeMap::new();
        let ips = self.live.values().map(|(a, _)| a.ip());
        for ip in ips.chain(self.pending.iter().map(|a| a.ip())) {
            *counts.entry(ip).or_insert(0) += 1;
        }
        counts
    }

    fn count(&self, d: Direction) -> usize {
        self.live.values().filter(|(_, dir)| *dir == d).count()
    }
}

fn frame(protocol: u16) -> Frame {
    Frame::new(ProtocolId(protocol), 0, Bytes::from_static(b"p"))
}

/// The adapter's handling of a dial failure: the node forgets the requested dial of `addr`, or
/// its connection if it is still handshaking.
fn forget_failed_dial(node: &Node, model: &mut Model, addr: SocketAddr) {
    if !model.pending.remove(&addr) {
        let established: BTreeSet<ConnId> = node.peers().map(|p| p.conn).collect();
        model.live.retain(|c, (a, d)| {
            !(*a == addr && *d == Direction::Outbound && !established.contains(c))
        });
    }
}

fn apply(node: &mut Node, model: &mut Model, now: &mut Instant, input: Input) {
    let t = *now;
    match input {
        Input::Incoming(c, a) => {
            if node.handle_incoming(t, u64::from(c), addr(a)) {
                model
                    .live
                    .insert(u64::from(c), (addr(a), Direction::Inbound));
            }
        }
        Input::Dialed(a, c) => dialed(node, model, t, addr(a), u64::from(c)),
        Input::DialedPending(i, c) => {
            if let Some(a) = model.nth_pending(i) {
                dialed(node, model, t, a, u64::from(c));
            }
        }
        Input::DialFailed(a) => {
            forget_failed_dial(node, model, addr(a));
            node.handle_dial_failed(t, addr(a), "refused");
        }
        Input::FailPending(i) => {
            if let Some(a) = model.nth_pending(i) {
                forget_failed_dial(node, model, a);
                node.handle_dial_failed(t, a, "refused");
            }
        }
        Input::Established(c, p) => node.handle_established(t, u64::from(c), peer(p), None),
        Input::EstablishLive(i, p) => {
            if let Some(c) = model.nth_live(i) {
                node.handle_established(t, c, peer(p), None);
            }
        }
        Input::Frame(c, pr) => node.handle_frame(t, u64::from(c), frame(pr)),
        Input::FrameLive(i, pr) => {
            if let Some(c) = model.nth_live(i) {
                node.handle_frame(t, c, frame(pr));
            }
        }
        Input::Closed(c) => closed(node, model, t, u64::from(c)),
        Input::CloseLive(i) => {
            if let Some(c) = model.nth_live(i) {
                closed(node, model, t, c);
            }
        }
        Input::Backpressure(c, paused) => node.handle_backpressure(t, u64::from(c), paused),
        Input::Advance(ms) => *now += Duration::from_millis(u64::from(ms)),
        Input::Timeout => {
            *now = node.poll_timeout().unwrap_or(t).max(t);
            node.handle_timeout(*now);
        }
        Input::AddAddress(a, expected, persistent) => {
            let _ = node.add_address(t, addr(a), expected.map(peer), persistent);
        }
        Input::RemoveAddress(a) => {
            // A requested dial is dropped silently; a handshaking one is closed (an output).
            if node.remove_address(t, addr(a)) {
                model.pending.remove(&addr(a));
            }
        }
        Input::Send(p) => {
            let _ = node.send(t, peer(p), frame(3));
        }
        Input::Broadcast => {
            node.broadcast(t, &frame(3));
        }
        Input::Disconnect(p) => node.disconnect(t, peer(p)),
    }
}

fn dialed(node: &mut Node, model: &mut Model, t: Instant, a: SocketAddr, c: ConnId) {
    // The node takes the connection if it awaits a dial of `a` and the id is free; otherwise it
    // closes it (an output) or, if the id is taken, ignores the event.
    if !model.live.contains_key(&c) && model.pending.remove(&a) {
        model.live.insert(c, (a, Direction::Outbound));
    }
    node.handle_dialed(t, a, c);
}

fn closed(node: &mut Node, model: &mut Model, t: Instant, c: ConnId) {
    model.live.remove(&c);
    let cause = CloseCause::Peer {
        code: CloseCode::Normal,
        detail: String::new(),
    };
    node.handle_closed(t, c, cause);
}

/// Drains the node's outputs into the model, checking each.
fn drain(node: &mut Node, model: &mut Model) -> Result<(), TestCaseError> {
    while let Some(out) = node.poll_output() {
        match out {
            NodeOutput::Dial { addr, .. } => {
                prop_assert!(model.pending.insert(addr), "second dial of {}", addr);
            }
            NodeOutput::Close { conn, .. } => {
                model.live.remove(&conn);
            }
            NodeOutput::Send { conn, .. } => {
                prop_assert!(model.live.contains_key(&conn), "send on unknown {}", conn);
            }
            NodeOutput::Event(NodeEvent::PeerConnected { peer, .. }) => {
                prop_assert!(model.connected.insert(peer), "connected twice: {:?}", peer);
            }
            NodeOutput::Event(NodeEvent::PeerDisconnected { peer, .. }) => {
                prop_assert!(model.connected.remove(&peer), "never connected: {:?}", peer);
            }
            NodeOutput::Event(NodeEvent::Frame { peer, frame }) => {
                prop_assert!(model.connected.contains(&peer));
                prop_assert_eq!(frame.protocol, ProtocolId::GOSSIP);
            }
            NodeOutput::Event(NodeEvent::Backpressure { peer, .. }) => {
                prop_assert!(model.connected.contains(&peer));
            }
            NodeOutput::Event(NodeEvent::DialFailed { addr, .. }) => {
                // A requested dial that timed out; other failures were already accounted for.
                model.pending.remove(&addr);
            }
            NodeOutput::Event(NodeEvent::Protocol(e)) => {
                prop_assert!(false, "no protocol is hosted, yet one reported {:?}", e);
            }
        }
    }
    Ok(())
}

fn check(node: &Node, model: &Model, config: &NodeConfig) -> Result<(), TestCaseError> {
    let stats = node.stats();
    let outbound = model.count(Direction::Outbound) + model.pending.len();
    prop_assert_eq!(stats.inbound, model.count(Direction::Inbound));
    prop_assert_eq!(stats.outbound, outbound);
    prop_assert!(stats.inbound <= config.max_inbound);
    prop_assert!(stats.outbound <= config.max_outbound);
    for (ip, n) in model.per_ip() {
        prop_assert!(n <= config.max_per_ip, "{} holds {} slots", ip, n);
    }
    prop_assert!(stats.known_addresses <= config.max_known_addresses);

    let mut seen = BTreeSet::new();
    let mut conns = BTreeSet::new();
    for info in node.peers() {
        prop_assert!(seen.insert(info.peer), "two connections to {:?}", info.peer);
        prop_assert!(conns.insert(info.conn));
        prop_assert!(model.live.get(&info.conn) == Some(&(info.addr, info.direction)));
        prop_assert!(info.peer != node.local(), "connected to itself");
    }
    prop_assert_eq!(&seen, &model.connected);
    prop_assert_eq!(stats.established, seen.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn node_holds_its_invariants_under_any_event_sequence(
        inputs in proptest::collection::vec(input(), 0..200),
        seed: u64,
    ) {
        let config = config();
        let mut node = Node::new(config.clone(), peer(0), seed, Instant::ZERO);
        let mut model = Model::default();
        let mut now = Instant::ZERO;
        for input in inputs {
            let is_timeout = matches!(input, Input::Timeout);
            apply(&mut node, &mut model, &mut now, input);
            drain(&mut node, &mut model)?;
            check(&node, &model, &config)?;
            if is_timeout {
                let next = node.poll_timeout();
                prop_assert!(next.is_none_or(|t| t > now), "busy loop: {:?} at {:?}", next, now);
            }
        }
    }
}
