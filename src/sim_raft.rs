//! `starling sim raft`: seeded fault schedules on a Raft-replicated key-value service.

use clap::Args;
use starling_sim::scenarios::raft::{self, RaftParams, RaftReport};

#[derive(Args)]
pub struct RaftArgs {
    /// Seeds to run, from `--seed` on; each is an independent schedule.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed; `--seeds 1 --seed S` replays seed S.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Servers in the group.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=64))]
    nodes: u32,
    /// Clients issuing operations.
    #[arg(long, default_value_t = 4)]
    clients: u32,
    /// Seconds of client operations per seed (virtual time; faults run meanwhile).
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Run without faults (no loss, crashes, partitions or clock skew).
    #[arg(long)]
    no_faults: bool,
    /// Worker threads (seeds are independent; results do not depend on this).
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    threads: usize,
    /// Print one JSON object as the last line of stdout instead of a summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: RaftArgs) -> Result<(), String> {
    let params = RaftParams {
        servers: args.nodes,
        clients: args.clients,
        duration: crate::sim_cmd::secs(args.secs, "secs")?,
        faults: !args.no_faults,
        ..RaftParams::default()
    };
    let started = std::time::Instant::now();
    let outcomes = raft::run_seeds(params, args.seed, args.seeds, args.threads);
    let report = raft::report(params, &outcomes, started.elapsed().as_millis() as u64);
    for o in outcomes.iter().filter(|o| raft::failed(o)) {
        eprintln!(
            "seed {} failed (replay: starling sim raft --nodes {} --seeds 1 --seed {}): violation {:?}, verdict {:?}, converged {}",
            o.seed, args.nodes, o.seed, o.violation, o.verdict, o.converged
        );
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        print(&report);
    }
    if report.failing_seeds.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} seed(s) failed: {:?}",
            report.failing_seeds.len(),
            report.failing_seeds
        ))
    }
}

fn print(r: &RaftReport) {
    println!(
        "raft: {} seeds × {} servers: {} violations, linearizable {} ({} not, {} undecided), {} not converged",
        r.seeds, r.nodes, r.violations, r.linearizable, r.not_linearizable, r.undecided, r.not_converged
    );
    println!(
        "  {} ops committed, {} unknown; {} elections (median {:.1} ms, p99 {:.1} ms); {} crashes",
        r.ops_committed,
        r.ops_unknown,
        r.elections,
        r.median_election_ms,
        r.p99_election_ms,
        r.crashes
    );
    println!(
        "  {} events in {:.2} s ({:.2} M/s); first seed's digest {}",
        r.events,
        r.wall_ms as f64 / 1e3,
        r.events_per_sec / 1e6,
        r.digest
    );
}
