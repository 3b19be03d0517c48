//! Criterion: Raft commits per second (throughput in commands) for Starling and raft-rs,
//! 3 and 5 servers, batches of 1 and 64, closed loop with one batch in flight. Each sample
//! builds a fresh cluster and elects a leader (untimed), then times `iters` batches.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use starling_raft_bench::{raftrs, starling, Harness};

fn timed<H: Harness>(nodes: usize, batch: usize, iters: u64) -> Duration {
    let mut h = H::new(nodes, false);
    h.elect();
    let mut seq = 0;
    for _ in 0..16 {
        h.run_batch(batch, &mut seq);
    }
    let start = Instant::now();
    for _ in 0..iters {
        h.run_batch(batch, &mut seq);
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    for nodes in [3usize, 5] {
        for batch in [1usize, 64] {
            let mut g = c.benchmark_group(format!("raft/{nodes}n/batch{batch}"));
            g.throughput(Throughput::Elements(batch as u64))
                .sample_size(20)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3));
            g.bench_function(BenchmarkId::from_parameter("starling"), |b| {
                b.iter_custom(|iters| timed::<starling::Cluster>(nodes, batch, iters))
            });
            g.bench_function(BenchmarkId::from_parameter("raft-rs"), |b| {
                b.iter_custom(|iters| timed::<raftrs::Cluster>(nodes, batch, iters))
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
