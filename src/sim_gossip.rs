//! `starling sim gossip`: broadcast over an overlay formed by real joins.

use clap::{Args, ValueEnum};
use starling_core::gossip::BroadcastMode;
use starling_sim::scenarios::gossip::{self, GossipParams, GossipReport};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Epidemic broadcast trees (Plumtree) over HyParView.
    Plumtree,
    /// Plain push gossip to a fanout of 6 (the baseline).
    Push,
    /// Both, one after the other on the same seed; the JSON holds the Plumtree report with the
    /// push report under `push`.
    Both,
}

#[derive(Args)]
pub struct GossipArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 10_000)]
    nodes: u32,
    /// Measured broadcasts (after 5 that settle the trees).
    #[arg(long, default_value_t = 100)]
    messages: u32,
    /// Probability that any message is lost, during the measured phase.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Fraction of nodes crashed at once after the overlay formed.
    #[arg(long, default_value_t = 0.0)]
    crash: f64,
    /// Seconds of a two-way partition, starting with the measured broadcasts.
    #[arg(long, default_value_t = 0.0)]
    partition_secs: f64,
    /// How messages spread.
    #[arg(long, value_enum, default_value_t = Mode::Plumtree)]
    mode: Mode,
    /// Seconds of virtual time after the last broadcast, for anti-entropy.
    #[arg(long, default_value_t = 60.0)]
    tail_secs: f64,
    /// Milliseconds an announced message may stay missing before it is grafted (Plumtree's
    /// timer).
    #[arg(long)]
    ihave_timeout_ms: Option<u64>,
    /// Milliseconds of virtual time between two joins.
    #[arg(long, default_value_t = 1.0)]
    join_gap_ms: f64,
    /// Milliseconds of virtual time between two broadcasts.
    #[arg(long, default_value_t = 1000.0)]
    gap_ms: f64,
    /// Seed; the same seed replays the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object as the last line of stdout instead of a summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: GossipArgs) -> Result<(), String> {
    let mut params = GossipParams::new(args.nodes, args.messages, args.seed);
    params.loss = args.loss;
    params.crash = args.crash;
    params.partition = crate::sim_cmd::secs(args.partition_secs, "partition-secs")?;
    params.tail = crate::sim_cmd::secs(args.tail_secs, "tail-secs")?;
    params.join_gap = crate::sim_cmd::secs(args.join_gap_ms / 1e3, "join-gap-ms")?;
    params.gap = crate::sim_cmd::secs(args.gap_ms / 1e3, "gap-ms")?;
    if let Some(ms) = args.ihave_timeout_ms {
        params.gossip.ihave_timeout = starling_core::time::Duration::from_millis(ms);
    }
    let show = !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut one = |mode| {
        params.mode = mode;
        let report = gossip::run(&params, &mut |phase, done, total| {
            if show {
                eprint!("\r{phase}: {done}/{total}        ");
            }
        });
        if show {
            eprintln!();
        }
        report.map_err(|e| e.to_string())
    };
    let push = BroadcastMode::Push { fanout: 6 };
    let (main, baseline) = match args.mode {
        Mode::Plumtree => (one(BroadcastMode::Plumtree)?, None),
        Mode::Push => (one(push)?, None),
        Mode::Both => (one(BroadcastMode::Plumtree)?, Some(one(push)?)),
    };
    if args.json {
        let mut json = serde_json::to_value(&main).map_err(|e| e.to_string())?;
        if let Some(b) = &baseline {
            json["push"] = serde_json::to_value(b).map_err(|e| e.to_string())?;
        }
        println!("{json}");
    } else {
        print(&main);
        if let Some(b) = &baseline {
            print(b);
        }
    }
    Ok(())
}

fn print(r: &GossipReport) {
    println!(
        "gossip ({}): {} nodes ({} live), seed {}, {} messages",
        r.mode, r.nodes, r.live_nodes, r.seed, r.messages
    );
    println!(
        "  reliability {:.6} ({:.6} before the tail), converged {}, rmr {:.3}",
        r.reliability, r.reliability_before_tail, r.converged, r.rmr
    );
    println!(
        "  control {:.1} msgs/node ({:.1} tree), grafts {:.2}/node, repaired {:.2}/node; hops median {} max {}, p99 {} ms",
        r.control_msgs_per_node,
        r.tree_control_per_node,
        r.grafts_per_node,
        r.repaired_per_node,
        r.latency_hops_median,
        r.latency_hops_max,
        r.latency_ms_p99
    );
    println!(
        "  active view median {}, state {} B/node; {:.1} s simulated in {:.2} s wall, {} events \
         ({:.2} M/s), peak RSS {:.1} MiB, digest {}",
        r.active_view_median,
        r.bytes_per_node,
        r.virtual_ms as f64 / 1e3,
        r.wall_ms as f64 / 1e3,
        r.events,
        r.events_per_sec / 1e6,
        r.peak_rss_bytes as f64 / (1024.0 * 1024.0),
        r.digest
    );
}
