//! Measured runs: a closed loop of batches over a [`Harness`], reported as throughput (per
//! second of wall time and of thread CPU time) and batch-latency percentiles.

use std::time::{Duration, Instant as StdInstant};

use crate::Harness;

/// One measured run.
#[derive(Clone, Copy, Debug)]
pub struct RunStats {
    /// Commands committed and applied on the leader per second of wall time.
    pub commits_per_sec: f64,
    /// Commands per second of this thread's CPU time: insensitive to the thread being
    /// descheduled on a loaded machine (a 4 ms time slice lost is a p99 outlier, not work).
    pub cpu_commits_per_sec: f64,
    /// Median batch latency, µs.
    pub p50_us: f64,
    /// 99th-percentile batch latency, µs.
    pub p99_us: f64,
}

/// Builds a fresh `nodes`-server cluster, elects a leader, runs `warmup` commands untimed, then
/// `commands` commands in batches of `batch` (closed loop, one batch in flight).
pub fn run<H: Harness>(nodes: usize, batch: usize, commands: usize, warmup: usize) -> RunStats {
    let mut h = H::new(nodes, false);
    h.elect();
    let mut seq = 0u64;
    for _ in 0..warmup.div_ceil(batch) {
        h.run_batch(batch, &mut seq);
    }
    let batches = commands.div_ceil(batch);
    let mut lat = Vec::with_capacity(batches);
    let cpu_start = thread_cpu_time();
    let start = StdInstant::now();
    for _ in 0..batches {
        lat.push(h.run_batch(batch, &mut seq));
    }
    let total = start.elapsed();
    let cpu = thread_cpu_time().saturating_sub(cpu_start);
    let leader = h.leader();
    assert_eq!(
        h.applied(leader).commands,
        seq,
        "{}: leader applied every command",
        H::NAME
    );
    lat.sort_unstable();
    RunStats {
        commits_per_sec: (batches * batch) as f64 / total.as_secs_f64(),
        cpu_commits_per_sec: (batches * batch) as f64 / cpu.as_secs_f64(),
        p50_us: percentile(&lat, 0.50),
        p99_us: percentile(&lat, 0.99),
    }
}

/// CPU time consumed by the calling thread.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The `q` quantile of sorted latencies, in µs (nearest rank).
fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e6
}

/// The median of `xs` (mean of the middle two for an even count).
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}
