//! Each harness really commits: every server applies exactly the proposed commands, in order.

use std::time::Duration;

use starling_raft_bench::{payload, raftrs, starling, Harness};

fn check<H: Harness>(nodes: usize) {
    let mut h = H::new(nodes, true);
    h.elect();
    let leader = h.leader();
    let mut seq = 0u64;
    for batch in [1usize, 7, 64, 3, 1, 64, 10] {
        let before = seq;
        h.run_batch(batch, &mut seq);
        assert_eq!(seq, before + batch as u64);
        assert_eq!(
            h.applied(leader).commands,
            seq,
            "{} n={nodes}: the leader applied the batch when run_batch returned",
            H::NAME
        );
    }
    // Let heartbeats carry the final commit index to the followers.
    h.settle(Duration::from_millis(200));
    let expected: Vec<[u8; 16]> = (0..seq).map(payload).collect();
    for id in 1..=nodes as u64 {
        let got: Vec<&[u8]> = h.applied(id).log.iter().map(|b| &b[..]).collect();
        let want: Vec<&[u8]> = expected.iter().map(|p| &p[..]).collect();
        assert_eq!(got, want, "{} n={nodes}: server {id} applied log", H::NAME);
        assert_eq!(h.applied(id).commands, seq);
    }
    assert_eq!(h.leader(), leader);
}

#[test]
fn starling_commits_in_order() {
    check::<starling::Cluster>(3);
    check::<starling::Cluster>(5);
}

#[test]
fn raftrs_commits_in_order() {
    check::<raftrs::Cluster>(3);
    check::<raftrs::Cluster>(5);
}

#[test]
fn runs_report_sane_numbers() {
    let s = starling_raft_bench::run::<starling::Cluster>(3, 64, 2_000, 100);
    let r = starling_raft_bench::run::<raftrs::Cluster>(3, 64, 2_000, 100);
    for st in [s, r] {
        assert!(st.commits_per_sec > 0.0 && st.p50_us > 0.0 && st.p99_us >= st.p50_us);
    }
}
