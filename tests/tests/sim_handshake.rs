//! Full sessions in the simulator: real Noise bytes over ordered virtual links.

use starling_core::time::Duration;
use starling_sim::scenarios::handshake::{self, HandshakeParams};

fn run(nodes: u32, foreign: u32, old: u32, seed: u64) -> handshake::HandshakeReport {
    let mut p = HandshakeParams::new(nodes, seed);
    p.foreign = foreign;
    p.old_version = old;
    p.duration = Duration::from_secs(3);
    handshake::run(&p, &mut |_, _| {}).expect("scenario runs")
}

#[test]
fn honest_nodes_all_connect() {
    let r = run(60, 0, 0, 1);
    assert!(r.connections >= 60 * 3, "{r:?}");
    assert_eq!(r.handshakes_ok, r.connections);
    assert_eq!(r.honest_pairs_connected, r.honest_pairs);
    assert_eq!(r.honest_isolated, 0);
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    // Three XX messages with identity payloads: a few hundred bytes.
    assert!(
        (300.0..700.0).contains(&r.bytes_per_handshake),
        "{}",
        r.bytes_per_handshake
    );
}

#[test]
fn foreign_and_outdated_nodes_are_refused_with_the_right_cause() {
    let r = run(80, 6, 6, 2);
    assert!(r.misfit_pairs > 0);
    assert_eq!(r.misfit_pairs_refused_correctly, r.misfit_pairs, "{r:?}");
    assert_eq!(r.honest_pairs_connected, r.honest_pairs);
    assert_eq!(r.honest_isolated, 0);
    let wrong = r.refused.get("wrong_network").copied().unwrap_or(0);
    let old = r.refused.get("version_mismatch").copied().unwrap_or(0);
    assert_eq!(
        wrong + old,
        r.misfit_pairs,
        "honest nodes refuse exactly the misfits: {:?}",
        r.refused
    );
    assert!(wrong > 0 && old > 0);
}

#[test]
fn same_seed_gives_the_same_transcript() {
    let a = run(40, 3, 3, 9);
    let b = run(40, 3, 3, 9);
    let c = run(40, 3, 3, 10);
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.events, b.events);
    assert_ne!(a.digest, c.digest);
}

#[test]
fn impossible_counts_are_refused() {
    let mut p = HandshakeParams::new(10, 1);
    p.foreign = 6;
    p.old_version = 6;
    assert!(handshake::run(&p, &mut |_, _| {}).is_err());
}
