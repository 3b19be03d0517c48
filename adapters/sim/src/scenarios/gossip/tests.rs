//! Tests of the gossip scenario: small runs in each mode and under faults.

use super::*;

fn quiet(_: &str, _: u64, _: u64) {}

#[test]
fn small_overlay_delivers_everything_once_with_little_redundancy() {
    let params = GossipParams::new(300, 20, 1);
    let r = run(&params, &mut quiet).unwrap();
    assert_eq!(r.reliability, 1.0, "{r:?}");
    assert!(r.converged);
    assert!(r.rmr < 0.2, "{r:?}");
    let again = run(&params, &mut quiet).unwrap();
    assert_eq!(r.digest, again.digest);
}

#[test]
fn push_mode_is_redundant() {
    let mut params = GossipParams::new(300, 10, 2);
    params.mode = BroadcastMode::Push { fanout: 6 };
    let r = run(&params, &mut quiet).unwrap();
    assert_eq!(r.reliability, 1.0, "{r:?}");
    assert!(r.rmr > 2.0, "{r:?}");
}

#[test]
fn repairs_loss_crashes_and_partitions() {
    let mut lossy = GossipParams::new(300, 20, 3);
    lossy.loss = 0.05;
    let r = run(&lossy, &mut quiet).unwrap();
    assert_eq!(r.reliability, 1.0, "loss: {r:?}");

    let mut crashy = GossipParams::new(300, 20, 4);
    crashy.crash = 0.2;
    let r = run(&crashy, &mut quiet).unwrap();
    assert_eq!(r.reliability, 1.0, "crash: {r:?}");

    let mut split = GossipParams::new(300, 20, 5);
    split.partition = Duration::from_secs(10);
    let r = run(&split, &mut quiet).unwrap();
    assert!(r.converged && r.reliability == 1.0, "partition: {r:?}");
}
