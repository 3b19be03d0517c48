//! Tests of the DHT scenario: the closest-nodes oracle against brute force, and a small run.

use super::*;

#[test]
fn oracle_matches_brute_force() {
    let oracle = Oracle::new(0..5000, 20);
    let mut rng = seeded(3);
    for _ in 0..50 {
        let mut b = [0u8; 32];
        rng.fill(&mut b);
        let target = Key::from_bytes(b);
        let mut all: Vec<NodeId> = (0..5000).collect();
        all.sort_by_key(|id| sim_key(*id).distance(&target));
        let asker = all[3];
        all.retain(|&id| id != asker);
        all.truncate(20);
        assert_eq!(oracle.closest(&target, asker), all);
    }
}

#[test]
fn small_network_finds_everything() {
    let report = run(&DhtParams::new(500, 200, 1), &mut |_, _, _| {}).unwrap();
    assert_eq!(report.lookups, 200);
    assert_eq!(report.success, 1.0, "{report:?}");
    assert_eq!(report.get_success, 1.0, "{report:?}");
    let again = run(&DhtParams::new(500, 200, 1), &mut |_, _, _| {}).unwrap();
    assert_eq!(report.digest, again.digest);
}
