//! Tests of `lookup.rs`: lookups driven by hand against scripted peers (closest found, failures,
//! depth, disjoint paths, vetoes).

use super::*;
use crate::dht::Subnet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct T(u32);
impl Contact for T {
    fn key(&self) -> Key {
        Key::hash_of(&self.0.to_le_bytes())
    }
    fn subnet(&self) -> Option<Subnet> {
        None
    }
}

fn brute_closest(target: &Key, all: &[T], k: usize) -> Vec<T> {
    let mut v = all.to_vec();
    v.sort_by_key(|c| c.key().distance(target));
    v.truncate(k);
    v
}

/// A network where every node knows everyone: a lookup must return the true k closest after
/// asking them, with at most alpha queries in flight.
#[test]
fn finds_true_closest_with_omniscient_peers() {
    let all: Vec<T> = (1..=300).map(T).collect();
    let target = Key::hash_of(b"target");
    let (k, alpha) = (20, 3);
    let seeds: Vec<T> = all.iter().copied().step_by(37).collect();
    let mut lookup = LookupState::new(target, &seeds, k, alpha, 1);
    let local = Key::hash_of(b"local");
    let mut pending = Vec::new();
    loop {
        while let Some(c) = lookup.next_query(|_| true) {
            pending.push(c);
            assert!(lookup.in_flight() <= alpha);
        }
        let Some(c) = pending.pop() else { break };
        let answer = brute_closest(&target, &all, k);
        assert!(lookup.on_response(&c, &answer, &local));
    }
    assert!(lookup.is_done());
    let (result, stats) = lookup.finish();
    assert_eq!(result, brute_closest(&target, &all, k));
    assert!(stats.hops >= 1 && stats.hops <= 2, "{stats:?}");
    assert!(stats.messages as usize >= k);
}

#[test]
fn failures_fall_back_to_spares_and_are_counted() {
    let all: Vec<T> = (1..=100).map(T).collect();
    let target = Key::hash_of(b"t");
    let closest = brute_closest(&target, &all, 25);
    let dead: Vec<T> = closest[..5].to_vec();
    let mut lookup = LookupState::new(target, &all, 20, 3, 1);
    let local = Key::hash_of(b"local");
    let mut pending = Vec::new();
    loop {
        while let Some(c) = lookup.next_query(|_| true) {
            pending.push(c);
        }
        let Some(c) = pending.pop() else { break };
        if dead.contains(&c) {
            assert!(lookup.on_failure(&c));
        } else {
            assert!(lookup.on_response(&c, &[], &local));
        }
    }
    assert!(lookup.is_done());
    let (result, stats) = lookup.finish();
    assert_eq!(result, closest[5..].to_vec());
    assert_eq!(stats.failures, 5);
}

#[test]
fn depth_counts_discovery_chain_and_ignores_strangers() {
    let target = Key::hash_of(b"x");
    let local = Key::hash_of(b"me");
    let mut lookup = LookupState::new(target, &[T(1)], 20, 3, 1);
    let first = lookup.next_query(|_| true).unwrap();
    assert_eq!(first, T(1));
    assert!(!lookup.on_response(&T(99), &[T(5)], &local), "not asked");
    assert!(lookup.on_response(&T(1), &[T(2)], &local));
    let second = lookup.next_query(|_| true).unwrap();
    assert!(!lookup.on_response(&T(1), &[], &local), "answered twice");
    assert!(lookup.on_response(&second, &[T(3)], &local));
    let third = lookup.next_query(|_| true).unwrap();
    assert!(lookup.on_response(&third, &[], &local));
    assert!(lookup.is_done());
    let (result, stats) = lookup.finish();
    assert_eq!(result.len(), 3);
    assert_eq!(stats.rounds, 3);
    let nearest = brute_closest(&target, &[T(1), T(2), T(3)], 1)[0];
    let expected_depth = [T(1), T(2), T(3)]
        .iter()
        .position(|c| *c == nearest)
        .unwrap()
        + 1;
    assert_eq!(usize::from(stats.hops), expected_depth);
}

#[test]
fn disjoint_paths_never_share_a_contact() {
    let all: Vec<T> = (1..=200).map(T).collect();
    let target = Key::hash_of(b"d");
    let local = Key::hash_of(b"local");
    let seeds: Vec<T> = all[..12].to_vec();
    let mut lookup = LookupState::new(target, &seeds, 8, 2, 3);
    let mut asked = std::collections::HashSet::new();
    let mut pending = Vec::new();
    loop {
        while let Some(c) = lookup.next_query(|_| true) {
            assert!(asked.insert(c), "{c:?} queried twice");
            pending.push(c);
        }
        let Some(c) = pending.pop() else { break };
        lookup.on_response(&c, &brute_closest(&c.key(), &all, 8), &local);
    }
    assert!(lookup.is_done());
    let paths: Vec<u8> = lookup.candidates.iter().map(|c| c.path).collect();
    assert!(paths.contains(&0) && paths.contains(&1) && paths.contains(&2));
}

#[test]
fn vetoed_contacts_wait_and_the_lookup_stays_open() {
    let target = Key::hash_of(b"v");
    let mut lookup = LookupState::new(target, &[T(1), T(2)], 20, 3, 1);
    assert_eq!(lookup.next_query(|_| false), None);
    assert!(!lookup.is_done());
    assert!(lookup.next_query(|_| true).is_some());
}
