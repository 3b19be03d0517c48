//! Tests of `membership.rs` and its child modules.

use rand::Rng;

use super::*;
use crate::rng::derive_seed;
use crate::time::Duration;

/// Checks every invariant of one node's views.
fn check_views(m: &Membership<u32>) {
    let c = m.config();
    assert!(m.active().len() <= c.active_size, "active view too large");
    assert!(
        m.passive().len() <= c.passive_size,
        "passive view too large"
    );
    assert!(
        !m.active().contains(&m.local()),
        "local node in its active view"
    );
    assert!(
        !m.passive().contains(&m.local()),
        "local node in its passive view"
    );
    for (i, p) in m.active().iter().enumerate() {
        assert!(
            !m.active()[i + 1..].contains(p),
            "duplicate active peer {p}"
        );
        assert!(!m.passive().contains(p), "peer {p} both active and passive");
    }
    for (i, p) in m.passive().iter().enumerate() {
        assert!(
            !m.passive()[i + 1..].contains(p),
            "duplicate passive peer {p}"
        );
    }
}

/// A test network: nodes indexed by their `u32` contact, a FIFO of messages delivered at
/// once, and a virtual clock that jumps to the next deadline.
struct Net {
    nodes: Vec<Membership<u32>>,
    alive: Vec<bool>,
    queue: VecDeque<(u32, u32, GossipMessage<u32>)>,
    now: Instant,
    /// Per node, the peers announced up and not down since, from the events alone.
    announced: Vec<Vec<u32>>,
    /// Every output of every node, in order (for the determinism test).
    log: Vec<(u32, MembershipOutput<u32>)>,
    rng: MachineRng,
    /// Deliver messages in random order across links (still FIFO on each link), as a real
    /// network with varying latencies would.
    reorder: bool,
}

impl Net {
    fn new(n: u32, seed: u64, config: MembershipConfig) -> Net {
        let nodes = (0..n)
            .map(|i| {
                Membership::new(config, i, derive_seed(seed, u64::from(i)), Instant::ZERO).unwrap()
            })
            .collect();
        Net {
            nodes,
            alive: vec![true; n as usize],
            queue: VecDeque::new(),
            now: Instant::ZERO,
            announced: vec![Vec::new(); n as usize],
            log: Vec::new(),
            rng: seeded(seed),
            reorder: false,
        }
    }

    fn node(&self, i: u32) -> &Membership<u32> {
        &self.nodes[i as usize]
    }

    /// Takes node `i`'s outputs, checking the up/down pairing as they come.
    fn drain(&mut self, i: u32) {
        while let Some(out) = self.nodes[i as usize].poll_output() {
            self.log.push((i, out.clone()));
            let announced = &mut self.announced[i as usize];
            match out {
                MembershipOutput::Send { to, msg } => {
                    assert_ne!(to, i, "node {i} sent to itself");
                    self.queue.push_back((i, to, msg));
                }
                MembershipOutput::NeighborUp(p) => {
                    assert_ne!(p, i, "NeighborUp for the local node");
                    assert!(!announced.contains(&p), "{i}: NeighborUp({p}) twice");
                    announced.push(p);
                }
                MembershipOutput::NeighborDown(p) => {
                    assert_ne!(p, i, "NeighborDown for the local node");
                    let at = announced.iter().position(|q| *q == p);
                    let at = at.unwrap_or_else(|| panic!("{i}: NeighborDown({p}) not up"));
                    announced.swap_remove(at);
                }
            }
        }
        check_views(self.node(i));
    }

    /// Delivers queued messages until none is left. A message to a crashed node makes the
    /// sender's transport report the failure (as a refused connection would).
    fn deliver(&mut self) {
        let mut steps = 0;
        while let Some((from, to, msg)) = self.next_message() {
            steps += 1;
            assert!(steps < 1_000_000, "messages never stop");
            if self.alive[to as usize] {
                self.nodes[to as usize].handle_message(self.now, from, msg);
                self.drain(to);
            } else if self.alive[from as usize] {
                self.nodes[from as usize].peer_failed(self.now, to);
                self.drain(from);
            }
        }
    }

    /// The next message: the oldest, or with `reorder` the oldest on a random link.
    fn next_message(&mut self) -> Option<(u32, u32, GossipMessage<u32>)> {
        if !self.reorder || self.queue.is_empty() {
            return self.queue.pop_front();
        }
        let (from, to, _) = self.queue[self.rng.random_range(0..self.queue.len())];
        let first = self.queue.iter().position(|m| m.0 == from && m.1 == to)?;
        self.queue.remove(first)
    }

    fn join(&mut self, i: u32, contact: u32) {
        self.nodes[i as usize].join(self.now, contact);
        self.drain(i);
        self.deliver();
    }

    /// Runs every timer due up to `until`, delivering messages after each.
    fn run_until(&mut self, until: Instant) {
        loop {
            let next = (0..self.nodes.len())
                .filter(|&i| self.alive[i])
                .filter_map(|i| self.nodes[i].poll_timeout())
                .min();
            let Some(next) = next.filter(|t| *t <= until) else {
                break;
            };
            self.now = next;
            for i in 0..self.nodes.len() as u32 {
                let due = self.node(i).poll_timeout().is_some_and(|t| t <= next);
                if self.alive[i as usize] && due {
                    self.nodes[i as usize].handle_timeout(next);
                    self.drain(i);
                    self.deliver();
                }
            }
        }
        self.now = until;
    }

    fn alive_nodes(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.nodes.len() as u32).filter(|&i| self.alive[i as usize])
    }

    /// Every active link of a live node is to a live node that holds it back.
    fn assert_symmetric(&self) {
        for a in self.alive_nodes() {
            for &b in self.node(a).active() {
                assert!(self.alive[b as usize], "{a} holds crashed {b} active");
                assert!(self.node(b).is_active(&a), "{a} holds {b} active, not back");
            }
        }
    }

    /// The live nodes form one component over active links.
    fn assert_connected(&self) {
        let start = self.alive_nodes().next().unwrap();
        let mut seen = vec![false; self.nodes.len()];
        seen[start as usize] = true;
        let mut stack = vec![start];
        let mut count = 1;
        while let Some(a) = stack.pop() {
            for &b in self.node(a).active() {
                if self.alive[b as usize] && !seen[b as usize] {
                    seen[b as usize] = true;
                    count += 1;
                    stack.push(b);
                }
            }
        }
        assert_eq!(count, self.alive_nodes().count(), "overlay not connected");
    }

    /// The events each node emitted add up to its active view.
    fn assert_events_match_views(&self) {
        for a in self.alive_nodes() {
            let mut announced = self.announced[a as usize].clone();
            let mut active = self.node(a).active().to_vec();
            announced.sort_unstable();
            active.sort_unstable();
            assert_eq!(announced, active, "events of {a} disagree with its view");
        }
    }

    /// Nodes `0..n` join one by one through a random earlier node.
    fn grow(&mut self, n: u32) {
        for i in 1..n {
            let contact = self.rng.random_range(0..i);
            self.join(i, contact);
            self.assert_symmetric();
        }
    }

    fn mean(&self, f: impl Fn(&Membership<u32>) -> usize) -> f64 {
        let (sum, n) = self
            .alive_nodes()
            .fold((0, 0), |(s, n), i| (s + f(self.node(i)), n + 1));
        sum as f64 / f64::from(n)
    }
}

fn node(local: u32) -> Membership<u32> {
    Membership::new(MembershipConfig::default(), local, 7, Instant::ZERO).unwrap()
}

fn drain(m: &mut Membership<u32>) -> Vec<MembershipOutput<u32>> {
    core::iter::from_fn(|| m.poll_output()).collect()
}

#[test]
fn default_config_is_valid_and_bad_ones_are_named() {
    let ok = MembershipConfig::default();
    assert_eq!(ok.validate(), Ok(()));
    let bad = [
        (
            MembershipConfig {
                active_size: 0,
                ..ok
            },
            MembershipConfigError::ZeroViewSize,
        ),
        (
            MembershipConfig {
                passive_size: 0,
                ..ok
            },
            MembershipConfigError::ZeroViewSize,
        ),
        (
            MembershipConfig {
                passive_walk: 7,
                ..ok
            },
            MembershipConfigError::BadWalk,
        ),
        (
            MembershipConfig {
                active_walk: 0,
                passive_walk: 0,
                ..ok
            },
            MembershipConfigError::BadWalk,
        ),
        (
            MembershipConfig {
                shuffle_active: 7,
                ..ok
            },
            MembershipConfigError::ShuffleSample,
        ),
        (
            MembershipConfig {
                passive_size: 100,
                shuffle_passive: 29,
                ..ok
            },
            MembershipConfigError::ShuffleSample,
        ),
        (
            MembershipConfig {
                neighbor_timeout: Duration::ZERO,
                ..ok
            },
            MembershipConfigError::ZeroInterval,
        ),
    ];
    for (config, error) in bad {
        assert_eq!(config.validate(), Err(error));
        assert!(Membership::new(config, 0u32, 0, Instant::ZERO).is_err());
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn join_links_both_sides_and_announces_them() {
    let mut net = Net::new(2, 1, MembershipConfig::default());
    net.join(1, 0);
    assert_eq!(net.node(0).active(), &[1]);
    assert_eq!(net.node(1).active(), &[0]);
    assert!(net.log.contains(&(0, MembershipOutput::NeighborUp(1))));
    assert!(net.log.contains(&(1, MembershipOutput::NeighborUp(0))));
    assert_eq!(net.node(0).stats().joins_handled, 1);
    net.assert_events_match_views();
}

#[test]
fn forward_join_walk_end_links_the_joiner() {
    // 0 - 1 linked; 2 joins through 0: the walk forwarded to 1 ends there (1 has no other
    // peer), and 1 links to 2 with a high-priority Neighbor.
    let mut net = Net::new(3, 2, MembershipConfig::default());
    net.join(1, 0);
    net.join(2, 0);
    net.assert_symmetric();
    let mut two = net.node(2).active().to_vec();
    two.sort_unstable();
    assert_eq!(two, [0, 1]);
    assert!(net.node(1).is_active(&2));
    assert_eq!(net.node(1).stats().forward_joins, 1);
    net.assert_events_match_views();
}

#[test]
fn two_hundred_joins_form_a_connected_symmetric_overlay() {
    let config = MembershipConfig::default();
    let mut net = Net::new(200, 3, config);
    net.grow(200);
    net.assert_symmetric();
    net.assert_connected();
    net.assert_events_match_views();
    for i in net.alive_nodes() {
        let m = net.node(i);
        assert!(!m.active().is_empty(), "{i} isolated");
        assert!(m.active().len() <= config.active_size);
    }
    let mean_active = net.mean(|m| m.active().len());
    assert!(mean_active > 5.0, "mean active view {mean_active}");
}

#[test]
fn shuffles_fill_the_passive_views() {
    let config = MembershipConfig::default();
    let mut net = Net::new(200, 4, config);
    net.grow(200);
    let before = net.mean(|m| m.passive().len());
    net.run_until(net.now + Duration::from_secs(300));
    let after = net.mean(|m| m.passive().len());
    assert!(
        after > 0.9 * config.passive_size as f64 && after > before,
        "passive views {before} -> {after}"
    );
    let shuffles: u32 = net
        .alive_nodes()
        .map(|i| net.node(i).stats().shuffles_sent)
        .sum();
    let answered: u32 = net
        .alive_nodes()
        .map(|i| net.node(i).stats().shuffles_answered)
        .sum();
    assert!(shuffles > 200 * 20 && answered > shuffles / 2);
    net.assert_symmetric();
    net.assert_connected();
    net.assert_events_match_views();
}

#[test]
fn overlay_heals_after_a_fifth_of_the_nodes_crash() {
    let config = MembershipConfig::default();
    let mut net = Net::new(200, 5, config);
    net.grow(200);
    net.run_until(net.now + Duration::from_secs(120));
    // Crash 40 random nodes at once.
    let mut crashed = Vec::new();
    while crashed.len() < 40 {
        let i = net.rng.random_range(0..200u32);
        if !crashed.contains(&i) {
            crashed.push(i);
            net.alive[i as usize] = false;
        }
    }
    // Their neighbors' failure detectors fire.
    for a in net.alive_nodes().collect::<Vec<_>>() {
        let dead: Vec<u32> = net
            .node(a)
            .active()
            .iter()
            .copied()
            .filter(|b| crashed.contains(b))
            .collect();
        for b in dead {
            net.nodes[a as usize].peer_failed(net.now, b);
            net.drain(a);
        }
    }
    net.deliver();
    net.assert_symmetric();
    net.assert_connected();
    let right_after = net.mean(|m| m.active().len());
    net.run_until(net.now + Duration::from_secs(60));
    net.assert_symmetric();
    net.assert_connected();
    net.assert_events_match_views();
    let later = net.mean(|m| m.active().len());
    let repairs: u32 = net.alive_nodes().map(|i| net.node(i).stats().repairs).sum();
    assert!(repairs > 0);
    assert!(later > 5.0, "active views {right_after} -> {later}");
    for i in net.alive_nodes() {
        assert!(!net.node(i).active().is_empty(), "{i} isolated");
        for p in net.node(i).passive() {
            // Dead passive entries may linger until asked or shuffled out, but none is
            // active.
            assert!(!net.node(i).is_active(p));
        }
    }
}

#[test]
fn links_stay_symmetric_when_messages_race_across_links() {
    let config = MembershipConfig::default();
    for seed in 0..4 {
        let mut net = Net::new(150, 100 + seed, config);
        net.reorder = true;
        // Joins overlap: ten nodes start joining before any message is delivered.
        for batch in 0..15u32 {
            for i in batch * 10..batch * 10 + 10 {
                if i > 0 {
                    let contact = net.rng.random_range(0..batch * 10 + 1).min(i - 1);
                    net.nodes[i as usize].join(net.now, contact);
                    net.drain(i);
                }
            }
            net.deliver();
            net.assert_symmetric();
        }
        net.run_until(net.now + Duration::from_secs(60));
        for i in 0..30 {
            net.alive[i * 5] = false;
        }
        for a in net.alive_nodes().collect::<Vec<_>>() {
            let dead: Vec<u32> = net
                .node(a)
                .active()
                .iter()
                .copied()
                .filter(|b| !net.alive[*b as usize])
                .collect();
            for b in dead {
                net.nodes[a as usize].peer_failed(net.now, b);
                net.drain(a);
            }
        }
        net.deliver();
        net.run_until(net.now + Duration::from_secs(60));
        net.assert_symmetric();
        net.assert_connected();
        net.assert_events_match_views();
    }
}

#[test]
fn unanswered_neighbor_request_times_out_and_the_next_peer_is_asked() {
    let config = MembershipConfig::default();
    let mut m = node(0);
    m.passive = vec![1, 2];
    m.join(Instant::ZERO, 3);
    drain(&mut m);
    m.peer_failed(Instant::ZERO, 3);
    let out = drain(&mut m);
    assert_eq!(out[0], MembershipOutput::NeighborDown(3));
    let MembershipOutput::Send {
        to: first,
        msg: GossipMessage::Neighbor { high_priority },
    } = out[1]
    else {
        panic!("expected a neighbor request, got {out:?}");
    };
    assert!(high_priority, "the active view is empty");
    let deadline = Instant::ZERO + config.neighbor_timeout;
    assert_eq!(m.poll_timeout(), Some(deadline.min(m.next_shuffle)));
    m.handle_timeout(deadline);
    assert!(!m.passive().contains(&first), "timed-out peer kept");
    let out = drain(&mut m);
    let second = if first == 1 { 2 } else { 1 };
    assert!(out.contains(&MembershipOutput::Send {
        to: second,
        msg: GossipMessage::Neighbor {
            high_priority: true
        }
    }));
    // It accepts: linked, counted as a repair.
    m.handle_message(
        deadline,
        second,
        GossipMessage::NeighborReply { accepted: true },
    );
    assert_eq!(drain(&mut m), [MembershipOutput::NeighborUp(second)]);
    assert_eq!(m.active(), &[second]);
    // The first answers late: we undo its side of the link.
    m.handle_message(
        deadline,
        first,
        GossipMessage::NeighborReply { accepted: true },
    );
    let late = drain(&mut m);
    assert_eq!(
        late,
        [MembershipOutput::Send {
            to: first,
            msg: GossipMessage::Disconnect
        }]
    );
    let s = m.stats();
    assert_eq!(
        (s.neighbor_requests, s.neighbor_refused, s.repairs),
        (2, 1, 1)
    );
    check_views(&m);
}

#[test]
fn low_priority_requests_are_refused_when_full_high_priority_evicts() {
    let config = MembershipConfig {
        active_size: 2,
        shuffle_active: 1,
        ..MembershipConfig::default()
    };
    let mut m = Membership::new(config, 0u32, 1, Instant::ZERO).unwrap();
    for p in [1, 2] {
        m.handle_message(
            Instant::ZERO,
            p,
            GossipMessage::Neighbor {
                high_priority: false,
            },
        );
    }
    drain(&mut m);
    m.handle_message(
        Instant::ZERO,
        3,
        GossipMessage::Neighbor {
            high_priority: false,
        },
    );
    assert_eq!(
        drain(&mut m),
        [MembershipOutput::Send {
            to: 3,
            msg: GossipMessage::NeighborReply { accepted: false }
        }]
    );
    m.handle_message(
        Instant::ZERO,
        3,
        GossipMessage::Neighbor {
            high_priority: true,
        },
    );
    let out = drain(&mut m);
    assert!(out.contains(&MembershipOutput::NeighborUp(3)));
    let evicted: Vec<u32> = out
        .iter()
        .filter_map(|o| match o {
            MembershipOutput::NeighborDown(p) => Some(*p),
            _ => None,
        })
        .collect();
    assert_eq!(evicted.len(), 1);
    assert!(out.contains(&MembershipOutput::Send {
        to: evicted[0],
        msg: GossipMessage::Disconnect
    }));
    assert!(m.passive().contains(&evicted[0]));
    assert_eq!(m.stats().evictions, 1);
    check_views(&m);
}

#[test]
fn hostile_shuffle_cannot_overgrow_the_passive_view() {
    let config = MembershipConfig::default();
    let mut m = node(0);
    m.handle_message(Instant::ZERO, 1, GossipMessage::Join);
    drain(&mut m);
    // ttl far above the walk length, 1000 peers including ourselves and our neighbor.
    let peers: Vec<u32> = (0..1000).collect();
    m.handle_message(
        Instant::ZERO,
        1,
        GossipMessage::Shuffle {
            origin: 5000,
            ttl: 255,
            peers,
        },
    );
    check_views(&m);
    assert!(m.passive().len() <= config.passive_size);
    assert!(m.passive().iter().all(|p| *p < MAX_PEER_LIST as u32));
    let out = drain(&mut m);
    let [MembershipOutput::Send {
        to: 5000,
        msg: GossipMessage::ShuffleReply { peers },
    }] = &out[..]
    else {
        panic!("expected a shuffle reply, got {out:?}");
    };
    assert!(peers.len() <= MAX_PEER_LIST);
    // An unsolicited reply is ignored; a solicited one is capped.
    let before = m.passive().to_vec();
    let flood = GossipMessage::ShuffleReply {
        peers: (10_000..11_000).collect(),
    };
    m.handle_message(Instant::ZERO, 1, flood.clone());
    assert_eq!(m.passive(), &before[..]);
    m.handle_timeout(m.next_shuffle);
    drain(&mut m);
    m.handle_message(Instant::ZERO, 1, flood);
    check_views(&m);
    let fresh = m.passive().iter().filter(|p| **p >= 10_000).count();
    assert!(fresh > 0 && fresh <= MAX_PEER_LIST);
    // A forward-join walk with a huge ttl is clamped and forwarded, not amplified.
    m.handle_message(
        Instant::ZERO,
        1,
        GossipMessage::ForwardJoin {
            joiner: 7000,
            ttl: 255,
        },
    );
    check_views(&m);
    assert!(drain(&mut m).len() <= 4);
}

#[test]
fn a_flooded_output_queue_stays_bounded() {
    let config = MembershipConfig::default();
    let mut m = node(0);
    for p in 1..=6 {
        m.handle_message(Instant::ZERO, p, GossipMessage::Join);
    }
    for i in 0..10_000 {
        m.handle_message(Instant::ZERO, 100 + i, GossipMessage::Join);
        check_views(&m);
    }
    let bound = OUTPUT_QUEUE_BASE + 2 * config.active_size;
    assert!(m.outputs.len() <= bound, "{} queued", m.outputs.len());
    assert!(m.stats().dropped_inputs > 9_000);
    // Up and down events still pair up once drained.
    let mut up: Vec<u32> = Vec::new();
    for out in drain(&mut m) {
        match out {
            MembershipOutput::NeighborUp(p) => up.push(p),
            MembershipOutput::NeighborDown(p) => up.retain(|q| *q != p),
            MembershipOutput::Send { .. } => {}
        }
    }
    up.sort_unstable();
    let mut active = m.active().to_vec();
    active.sort_unstable();
    assert_eq!(up, active);
    assert_eq!(m.outputs.capacity(), 0, "drained queue kept its allocation");
}

#[test]
fn messages_from_ourselves_and_other_variants_are_ignored() {
    let mut m = node(0);
    m.handle_message(Instant::ZERO, 0, GossipMessage::Join);
    m.handle_message(
        Instant::ZERO,
        1,
        GossipMessage::Prune {
            topic: super::super::message::TopicId(1),
        },
    );
    m.handle_message(
        Instant::ZERO,
        1,
        GossipMessage::ForwardJoin { joiner: 0, ttl: 0 },
    );
    m.join(Instant::ZERO, 0);
    m.peer_failed(Instant::ZERO, 0);
    assert!(m.poll_output().is_none());
    assert!(m.active().is_empty() && m.passive().is_empty());
}

#[test]
fn isolated_node_rejoins_through_its_contact() {
    let mut m = node(0);
    m.join(Instant::ZERO, 1);
    drain(&mut m);
    m.peer_failed(Instant::ZERO, 1);
    assert_eq!(drain(&mut m), [MembershipOutput::NeighborDown(1)]);
    let tick = m.next_shuffle;
    m.handle_timeout(tick);
    let out = drain(&mut m);
    assert_eq!(
        out,
        [
            MembershipOutput::NeighborUp(1),
            MembershipOutput::Send {
                to: 1,
                msg: GossipMessage::Join
            }
        ]
    );
    assert!(m.poll_timeout().unwrap() > tick);
}

#[test]
fn same_seed_replays_the_same_run() {
    let run = |seed: u64| {
        let mut net = Net::new(60, seed, MembershipConfig::default());
        net.grow(60);
        net.run_until(net.now + Duration::from_secs(60));
        for i in [3, 17, 42] {
            net.alive[i] = false;
            let neighbors: Vec<u32> = net
                .node(i as u32)
                .active()
                .iter()
                .copied()
                .filter(|a| net.alive[*a as usize])
                .collect();
            for a in neighbors {
                net.nodes[a as usize].peer_failed(net.now, i as u32);
                net.drain(a);
            }
        }
        net.deliver();
        net.run_until(net.now + Duration::from_secs(30));
        net.log
    };
    let a = run(9);
    assert!(a.len() > 1000);
    assert_eq!(a, run(9));
    assert_ne!(a, run(10));
}
