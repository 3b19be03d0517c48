//! Lookups on random small networks: nodes join one by one through a random earlier node (the
//! paper's join), then a lookup from any node for any key returns exactly the k nodes closest to
//! it other than the asker. Messages are delivered at once, in order, until the network is quiet.

use proptest::prelude::*;
use starling_core::dht::{Contact, Dht, DhtConfig, DhtEvent, DhtMessage, Subnet};
use starling_core::id::Key;
use starling_core::machine::{Machine, Output};
use starling_core::time::Instant;

/// A contact of the in-memory network below: its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct N(u16);

impl Contact for N {
    fn key(&self) -> Key {
        Key::hash_of(&self.0.to_le_bytes())
    }
    fn subnet(&self) -> Option<Subnet> {
        None
    }
}

/// Delivers every message at once (zero latency, in order) until the network is quiet.
fn settle(nodes: &mut [Dht<N>], now: Instant, events: &mut Vec<(u16, DhtEvent<N>)>) {
    let mut queue: std::collections::VecDeque<(N, N, DhtMessage<N>)> = Default::default();
    loop {
        for (i, node) in nodes.iter_mut().enumerate() {
            while let Some(out) = node.poll_output() {
                match out {
                    Output::Send { to, msg } => queue.push_back((N(i as u16), to, msg)),
                    Output::Event(e) => events.push((i as u16, e)),
                }
            }
        }
        let Some((from, to, msg)) = queue.pop_front() else {
            return;
        };
        nodes[usize::from(to.0)].handle_message(now, from, msg);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Nodes join one by one through a random earlier node; afterwards a lookup from any node
    /// for any key returns exactly the k nodes closest to it (other than the asker).
    #[test]
    fn lookups_on_random_networks_find_the_true_closest(
        n in 30usize..120,
        seed in any::<u64>(),
        targets in prop::collection::vec((any::<prop::sample::Index>(), any::<[u8; 32]>()), 1..8),
    ) {
        let config = DhtConfig {
            routing: starling_core::dht::RoutingConfig { k: 8, ..Default::default() },
            ..DhtConfig::default()
        };
        let now = Instant::ZERO;
        let mut nodes: Vec<Dht<N>> = (0..n)
            .map(|i| Dht::new(config, N(i as u16).key(), seed ^ i as u64, now).unwrap())
            .collect();
        let mut events = Vec::new();
        for i in 1..n {
            let via = N((seed.wrapping_mul(i as u64 + 7) % i as u64) as u16);
            nodes[i].bootstrap(now, &[via]).unwrap();
            settle(&mut nodes, now, &mut events);
        }
        for (from, target) in targets {
            let from = from.index(n);
            let target = Key::from_bytes(target);
            events.clear();
            nodes[from].find_node(now, target).unwrap();
            settle(&mut nodes, now, &mut events);
            let closest = events.iter().find_map(|(_, e)| match e {
                DhtEvent::LookupDone { closest, .. } => Some(closest.clone()),
                _ => None,
            });
            let mut truth: Vec<N> = (0..n).filter(|&i| i != from).map(|i| N(i as u16)).collect();
            truth.sort_by_key(|c| c.key().distance(&target));
            truth.truncate(8);
            prop_assert_eq!(closest, Some(truth));
        }
    }
}
