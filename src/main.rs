//! `starling`: run Starling simulations, real nodes, and local clusters.

use clap::{Parser, Subcommand};

mod bench;
mod kv_cmd;
mod node_cmd;
mod progress;
mod runtime;
mod sim_cmd;
mod sim_gossip;
mod sim_raft;

/// Counts allocations per thread, so `starling bench` can show the hot path allocates nothing.
#[global_allocator]
static ALLOC: starling_counting_alloc::CountingAlloc =
    starling_counting_alloc::CountingAlloc::new();

/// Starling: a sans-IO peer-to-peer protocol toolkit.
#[derive(Parser)]
#[command(name = "starling", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a deterministic simulation of the protocols.
    Sim {
        #[command(subcommand)]
        scenario: sim_cmd::Scenario,
    },
    /// Run a real node on TCP (logs with RUST_LOG, e.g. RUST_LOG=info).
    Node(node_cmd::NodeArgs),
    /// Start N real nodes on 127.0.0.1 with ephemeral ports and show them connecting.
    Cluster(node_cmd::ClusterArgs),
    /// Start a 3-server replicated KV cluster in-process (durable, fsync on) and measure
    /// throughput and latency at several concurrency levels (`starling kv --json`).
    Kv(kv_cmd::KvArgs),
    /// Measure the system: throughput, allocations (`starling bench transport --json`).
    Bench {
        #[command(subcommand)]
        what: bench::Bench,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Sim { scenario } => sim_cmd::run(scenario),
        Command::Node(args) => node_cmd::run_node(args),
        Command::Cluster(args) => node_cmd::run_cluster(args),
        Command::Bench { what } => bench::run(what),
        Command::Kv(args) => kv_cmd::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
