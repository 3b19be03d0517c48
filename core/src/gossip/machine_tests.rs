//! Tests of the gossip machine: a handful of nodes wired by a FIFO, no simulator.

use std::collections::VecDeque;

use bytes::Bytes;

use super::*;
use crate::gossip::{Payload, Rate, Validation};
use crate::machine::{Machine, Output};
use crate::time::{Duration, Instant};

const T0: Instant = Instant::from_nanos(1_000_000_000_000);

fn topic() -> TopicId {
    TopicId::named("t")
}

/// Nodes `0..n`, all subscribed to `topic()`, and the messages between them.
struct Net {
    nodes: Vec<Gossip<u8>>,
    queue: VecDeque<(u8, u8, GossipMessage<u8>)>,
    events: Vec<(u8, GossipEvent<u8>)>,
    now: Instant,
}

impl Net {
    fn new(n: u8, config: GossipConfig) -> Net {
        let nodes = (0..n)
            .map(|i| {
                let mut g = Gossip::new(config, BroadcastMode::Plumtree, i, u64::from(i), T0)
                    .expect("valid config");
                g.subscribe(topic()).unwrap();
                g
            })
            .collect();
        Net {
            nodes,
            queue: VecDeque::new(),
            events: Vec::new(),
            now: T0,
        }
    }

    fn drain(&mut self, i: u8) {
        while let Some(out) = self.nodes[usize::from(i)].poll_output() {
            match out {
                Output::Send { to, msg } => self.queue.push_back((i, to, msg)),
                Output::Event(e) => self.events.push((i, e)),
            }
        }
    }

    /// Delivers every queued message (and what it causes), draining after each input.
    fn run(&mut self) {
        for i in 0..self.nodes.len() as u8 {
            self.drain(i);
        }
        while let Some((from, to, msg)) = self.queue.pop_front() {
            self.nodes[usize::from(to)].handle_message(self.now, from, msg);
            self.drain(to);
        }
    }

    /// Advances the clock by `d`, firing due timers.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self.nodes.iter().filter_map(|g| g.poll_timeout()).min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    for i in 0..self.nodes.len() as u8 {
                        if self.nodes[usize::from(i)]
                            .poll_timeout()
                            .is_some_and(|t| t <= self.now)
                        {
                            self.nodes[usize::from(i)].handle_timeout(self.now);
                        }
                    }
                    self.run();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn delivered(&self, node: u8) -> usize {
        self.events
            .iter()
            .filter(|(i, e)| *i == node && matches!(e, GossipEvent::Message { .. }))
            .count()
    }

    /// A line 0 - 1 - 2 - … joined one by one through the previous node.
    fn joined(n: u8, config: GossipConfig) -> Net {
        let mut net = Net::new(n, config);
        for i in 1..n {
            let now = net.now;
            net.nodes[usize::from(i)].join(now, i - 1);
            net.run();
        }
        net
    }
}

#[test]
fn a_message_reaches_every_node_once_and_the_tree_prunes_duplicates() {
    let mut net = Net::joined(8, GossipConfig::default());
    for round in 0..3u8 {
        let now = net.now;
        net.nodes[usize::from(round)]
            .publish(now, topic(), Bytes::from(vec![round; 10]))
            .unwrap();
        net.run();
        net.advance(Duration::from_secs(1));
    }
    for i in 0..8u8 {
        let own = u8::from(i < 3);
        assert_eq!(net.delivered(i), 3 - usize::from(own), "node {i}");
    }
    // With 8 nodes in views of up to 6, the overlay has cycles: duplicates made prunes.
    let duplicates: u64 = net.nodes.iter().map(|g| g.stats().duplicates).sum();
    let prunes_applied = net
        .nodes
        .iter()
        .enumerate()
        .flat_map(|(i, g)| g.active().iter().map(move |p| (i, *p)))
        .filter(|&(i, p)| !net.nodes[i].is_eager(&p, topic()))
        .count();
    assert!(duplicates > 0 && prunes_applied > 0);
    // A later message crosses the settled tree with few or no duplicates.
    let before: u64 = net.nodes.iter().map(|g| g.stats().duplicates).sum();
    let now = net.now;
    net.nodes[7]
        .publish(now, topic(), Bytes::from_static(b"late"))
        .unwrap();
    net.run();
    let after: u64 = net.nodes.iter().map(|g| g.stats().duplicates).sum();
    assert!(after - before <= 2, "{} duplicates", after - before);
}

#[test]
fn publish_refusals_are_named() {
    let config = GossipConfig {
        max_data_len: 4,
        publish_rate: Rate {
            per_sec: 1,
            burst: 1,
        },
        ..GossipConfig::default()
    };
    let mut g = Gossip::new(config, BroadcastMode::Plumtree, 0u8, 1, T0).unwrap();
    let other = TopicId::named("other");
    assert_eq!(
        g.publish(T0, other, Bytes::new()),
        Err(GossipError::NotSubscribed(other))
    );
    g.subscribe(topic()).unwrap();
    assert_eq!(
        g.publish(T0, topic(), Bytes::from_static(b"12345")),
        Err(GossipError::TooLarge { len: 5, max: 4 })
    );
    let id = g.publish(T0, topic(), Bytes::from_static(b"1")).unwrap();
    assert_eq!(
        g.publish(T0, topic(), Bytes::from_static(b"1")),
        Err(GossipError::Duplicate(id))
    );
    assert_eq!(
        g.publish(T0, topic(), Bytes::from_static(b"2")),
        Err(GossipError::RateLimited)
    );
}

struct RejectOdd;
impl MessageValidator for RejectOdd {
    fn validate(&mut self, _: TopicId, data: &Bytes) -> Validation {
        match data.first() {
            Some(b) if b % 2 == 1 => Validation::Reject,
            Some(0) => Validation::Ignore,
            _ => Validation::Accept,
        }
    }
}

#[test]
fn rejected_messages_stop_and_charge_the_sender_until_it_is_dropped() {
    let config = GossipConfig {
        reject_limit: 2,
        ..GossipConfig::default()
    };
    let mut net = Net::joined(2, config);
    net.nodes[1].set_validator(Box::new(RejectOdd));
    assert_eq!(net.nodes[1].active(), &[0]);
    for (i, b) in [0u8, 2, 1, 3].into_iter().enumerate() {
        let now = net.now + Duration::from_millis(i as u64);
        net.nodes[0]
            .publish(now, topic(), Bytes::from(vec![b]))
            .unwrap();
        net.run();
    }
    // 2 delivered; 0 ignored without charge; 1 and 3 rejected, charged, and the second
    // charge drops node 0 from node 1's view.
    assert_eq!(net.delivered(1), 1);
    let charges = net
        .events
        .iter()
        .filter(|(i, e)| *i == 1 && matches!(e, GossipEvent::Misbehaved { peer: 0, .. }))
        .count();
    assert_eq!(charges, 2);
    assert!(net.nodes[1].active().is_empty());
}

#[test]
fn a_flooding_neighbour_is_limited_and_requests_are_served_within_the_serve_rate() {
    let config = GossipConfig {
        peer_rate: Rate {
            per_sec: 1,
            burst: 3,
        },
        serve_rate: Rate {
            per_sec: 1,
            burst: 2,
        },
        reject_limit: 100,
        ..GossipConfig::default()
    };
    let mut net = Net::joined(2, config);
    let mut ids = Vec::new();
    for i in 0..6u8 {
        let now = net.now;
        ids.push(
            net.nodes[0]
                .publish(now, topic(), Bytes::from(vec![i]))
                .unwrap(),
        );
    }
    net.run();
    // Node 0 pushed six; node 1 took three and counted the rest as flooding.
    assert_eq!(net.delivered(1), 3);
    assert_eq!(net.nodes[1].stats().dropped, 3);
    // Node 1 asks node 0 for all six at once: node 0 serves two.
    let sent = net.nodes[0].stats().payloads_sent;
    let now = net.now;
    net.nodes[0].handle_message(
        now,
        1,
        GossipMessage::Pull {
            topic: topic(),
            ids,
        },
    );
    net.drain(0);
    assert_eq!(net.nodes[0].stats().payloads_sent - sent, 2);
}

#[test]
fn anti_entropy_repairs_what_a_lost_push_missed() {
    let mut net = Net::joined(2, GossipConfig::default());
    // Node 0 publishes while the link drops everything.
    let now = net.now;
    net.nodes[0]
        .publish(now, topic(), Bytes::from_static(b"lost"))
        .unwrap();
    net.drain(0);
    net.queue.clear();
    assert_eq!(net.delivered(1), 0);
    // Within settle + two exchange intervals, the digests differ and node 1 pulls it.
    net.advance(Duration::from_secs(20));
    assert_eq!(net.delivered(1), 1);
    assert_eq!(net.nodes[1].stats().repaired, 1);
}

#[test]
fn messages_outside_the_history_window_are_refused() {
    let mut net = Net::joined(2, GossipConfig::default());
    let now = net.now;
    let old = Payload {
        topic: topic(),
        published_ms: (now.as_nanos() / 1_000_000) - 121_000,
        hops: 0,
        data: Bytes::from_static(b"replayed"),
    };
    let future = Payload {
        published_ms: (now.as_nanos() / 1_000_000) + 60_000,
        ..old.clone()
    };
    for p in [old, future] {
        net.nodes[1].handle_message(now, 0, GossipMessage::Gossip(Box::new(p)));
        net.drain(1);
    }
    assert_eq!(net.delivered(1), 0);
}
