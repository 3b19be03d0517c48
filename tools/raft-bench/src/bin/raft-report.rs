//! Runs both harnesses side by side and prints one JSON line per implementation and
//! configuration, then one line with the ratios starling / raft-rs.
//!
//! Usage: `raft-report [COMMANDS [REPS]]` (defaults 200000 and 5). Each configuration runs
//! `REPS` repetitions interleaved (starling, raft-rs, starling, ...), each on a fresh cluster
//! with 2000 warm-up commands; the medians over repetitions are reported.

use serde_json::json;
use starling_raft_bench::{median, raftrs, run, starling, RunStats};

const WARMUP: usize = 2_000;

fn summary(runs: &[RunStats]) -> (f64, f64, f64, f64) {
    let mut t: Vec<f64> = runs.iter().map(|r| r.commits_per_sec).collect();
    let mut c: Vec<f64> = runs.iter().map(|r| r.cpu_commits_per_sec).collect();
    let mut p50: Vec<f64> = runs.iter().map(|r| r.p50_us).collect();
    let mut p99: Vec<f64> = runs.iter().map(|r| r.p99_us).collect();
    (
        median(&mut t),
        median(&mut c),
        median(&mut p50),
        median(&mut p99),
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let commands: usize = args
        .next()
        .map_or(200_000, |a| a.parse().expect("COMMANDS"));
    let reps: usize = args.next().map_or(5, |a| a.parse().expect("REPS"));
    for nodes in [3usize, 5] {
        for batch in [1usize, 64] {
            let mut s = Vec::new();
            let mut r = Vec::new();
            for _ in 0..reps {
                s.push(run::<starling::Cluster>(nodes, batch, commands, WARMUP));
                r.push(run::<raftrs::Cluster>(nodes, batch, commands, WARMUP));
            }
            let (st, sc, s50, s99) = summary(&s);
            let (rt, rc, r50, r99) = summary(&r);
            for (name, t, c, p50, p99) in [
                ("starling", st, sc, s50, s99),
                ("raft-rs", rt, rc, r50, r99),
            ] {
                println!(
                    "{}",
                    json!({
                        "impl": name, "nodes": nodes, "batch": batch, "commands": commands,
                        "reps": reps, "commits_per_sec": t.round(), "cpu_commits_per_sec": c.round(),
                        "p50_us": p50, "p99_us": p99,
                    })
                );
            }
            println!(
                "{}",
                json!({
                    "impl": "starling/raft-rs", "nodes": nodes, "batch": batch,
                    "commits_per_sec_ratio": st / rt, "cpu_commits_per_sec_ratio": sc / rc,
                    "p50_ratio": s50 / r50, "p99_ratio": s99 / r99,
                })
            );
        }
    }
}
