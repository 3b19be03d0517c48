//! `starling sim …`: simulation scenarios.

use clap::{Args, Subcommand};
use starling_core::time::Duration;
use starling_sim::scenarios::dht::{self, DhtParams, DhtReport};
use starling_sim::scenarios::handshake::{self, HandshakeParams};
use starling_sim::scenarios::liveness::{self, LivenessParams, LivenessReport};

use crate::progress::VirtualTimeProgress;

#[derive(Subcommand)]
pub enum Scenario {
    /// Failure detectors through a two-way partition and a heal.
    Liveness(LivenessArgs),
    /// Full secure sessions (real Noise bytes) between nodes, some foreign or outdated.
    Handshake(HandshakeArgs),
    /// Kademlia: a network built by real joins, then lookups, puts and gets checked against a
    /// brute-force oracle.
    Dht(DhtArgs),
    /// Gossip: Plumtree broadcast over a HyParView overlay formed by real joins, with anti-
    /// entropy, under loss, crashes or a partition; or plain push gossip as a baseline.
    Gossip(crate::sim_gossip::GossipArgs),
    /// Raft: a replicated key-value service under loss, duplication, reordering, partitions,
    /// crashes and a skewed clock; safety checked continuously, histories for linearizability.
    Raft(crate::sim_raft::RaftArgs),
}

#[derive(Args)]
pub struct DhtArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 10_000)]
    nodes: u32,
    /// Lookups for random keys; a tenth as many put/get pairs follow.
    #[arg(long, default_value_t = 1000)]
    lookups: u32,
    /// Fraction of nodes crashed without warning after the network forms, before the lookups.
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// Disjoint lookup paths (S/Kademlia); 1 is plain Kademlia.
    #[arg(long, default_value_t = 1)]
    disjoint: usize,
    /// Bucket size k.
    #[arg(long, default_value_t = 20)]
    k: usize,
    /// Join with a self-lookup only, skipping the refresh of farther buckets.
    #[arg(long)]
    no_join_refresh: bool,
    /// Milliseconds of virtual time between two joins.
    #[arg(long, default_value_t = 2.0)]
    join_gap_ms: f64,
    /// Seed; the same seed replays the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object as the last line of stdout instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct HandshakeArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 1000)]
    nodes: u32,
    /// Nodes on another network: honest nodes must refuse them (wrong network).
    #[arg(long, default_value_t = 0)]
    foreign: u32,
    /// Nodes on an older protocol version: honest nodes must refuse them (version mismatch).
    #[arg(long, default_value_t = 0)]
    old_version: u32,
    /// Peers each node dials; each accepts about as many.
    #[arg(long, default_value_t = 4)]
    dials: u32,
    /// Seconds of virtual time to run.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seed; the same seed replays the same run, ciphertext included.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object as the last line of stdout instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct LivenessArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 1000)]
    nodes: u32,
    /// Seed; the same seed replays the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds of virtual time at which the network splits in two.
    #[arg(long, default_value_t = 10.0)]
    partition_at: f64,
    /// Seconds of virtual time at which the partition heals.
    #[arg(long, default_value_t = 30.0)]
    heal_at: f64,
    /// Seconds to run after the heal.
    #[arg(long, default_value_t = 10.0)]
    settle: f64,
    /// Random peers each node monitors besides its ring neighbours.
    #[arg(long, default_value_t = 4)]
    chords: u32,
    /// Probability that a message is lost (suspicions then include honest false ones).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Print one JSON object as the last line of stdout instead of a summary.
    #[arg(long)]
    json: bool,
}

pub(crate) fn secs(s: f64, what: &str) -> Result<Duration, String> {
    if s.is_finite() && s >= 0.0 {
        Ok(Duration::from_nanos((s * 1e9) as u64))
    } else {
        Err(format!(
            "--{what} must be a non-negative number of seconds, got {s}"
        ))
    }
}

pub fn run(scenario: Scenario) -> Result<(), String> {
    match scenario {
        Scenario::Liveness(args) => run_liveness(args),
        Scenario::Handshake(args) => run_handshake(args),
        Scenario::Dht(args) => run_dht(args),
        Scenario::Gossip(args) => crate::sim_gossip::run(args),
        Scenario::Raft(args) => crate::sim_raft::run(args),
    }
}

fn run_dht(args: DhtArgs) -> Result<(), String> {
    let mut params = DhtParams::new(args.nodes, args.lookups, args.seed);
    params.churn = args.churn;
    params.dht.disjoint_paths = args.disjoint;
    params.dht.routing.k = args.k;
    params.dht.join_refresh = !args.no_join_refresh;
    params.join_gap = secs(args.join_gap_ms / 1e3, "join-gap-ms")?;
    let show = !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Without a terminal (a long run in the background, its JSON to a file), progress goes to
    // stderr as a line every 30 s, so a run of an hour can be followed.
    let mut last_line = std::time::Instant::now();
    let report = dht::run(&params, &mut |phase, done, total| {
        if show {
            eprint!("\r{phase}: {done}/{total}        ");
        } else if last_line.elapsed() >= std::time::Duration::from_secs(30) {
            last_line = std::time::Instant::now();
            eprintln!("{phase}: {done}/{total}");
        }
    });
    if show {
        eprintln!();
    }
    let r = report.map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
    } else {
        print_dht(&r);
    }
    Ok(())
}

fn print_dht(r: &DhtReport) {
    println!(
        "dht: {} nodes ({} live during lookups), seed {}, {} disjoint path(s)",
        r.nodes, r.live_nodes, r.seed, r.disjoint
    );
    println!(
        "  lookups {}: success {:.4}, hops median {} p99 {}, rounds median {}, {:.1} msgs/lookup",
        r.lookups, r.success, r.hops_median, r.hops_p99, r.rounds_median, r.msgs_per_lookup
    );
    println!(
        "  gets {}: success {:.4}; {:.1} nodes stored each put",
        r.gets, r.get_success, r.stored_per_put
    );
    println!(
        "  routing state {} B/node ({:.1} contacts); {:.0} requests/node sent, {:.0} of them eviction pings",
        r.bytes_per_node, r.contacts_per_node, r.requests_per_node, r.eviction_pings_per_node
    );
    println!(
        "  simulated {:.1} s in {:.2} s wall: {} events ({:.2} M/s), peak RSS {:.1} MiB, digest {}",
        r.virtual_ms as f64 / 1e3,
        r.wall_ms as f64 / 1e3,
        r.events,
        r.events_per_sec / 1e6,
        r.peak_rss_bytes as f64 / (1024.0 * 1024.0),
        r.digest
    );
}

fn run_handshake(args: HandshakeArgs) -> Result<(), String> {
    let mut params = HandshakeParams::new(args.nodes, args.seed);
    params.foreign = args.foreign;
    params.old_version = args.old_version;
    params.dials = args.dials;
    params.duration = secs(args.duration, "duration")?;
    let mut bar = VirtualTimeProgress::new(args.json);
    let report = handshake::run(&params, &mut |now, end| {
        bar.update(now.as_nanos() / 1_000_000, end.as_nanos() / 1_000_000)
    });
    bar.finish();
    let r = report.map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
        return Ok(());
    }
    println!(
        "handshake: {} nodes ({} foreign, {} old version), seed {}",
        r.nodes, r.foreign, r.old_version, r.seed
    );
    println!(
        "  {} connections, {} handshakes ok, {:.0} bytes per handshake",
        r.connections, r.handshakes_ok, r.bytes_per_handshake
    );
    println!(
        "  honest pairs connected: {}/{}   misfits refused with the right cause: {}/{}",
        r.honest_pairs_connected, r.honest_pairs, r.misfit_pairs_refused_correctly, r.misfit_pairs
    );
    println!(
        "  refused by honest nodes: {:?}   honest nodes isolated: {}",
        r.refused, r.honest_isolated
    );
    println!(
        "  {} events in {:.2} s wall, digest {}",
        r.events,
        r.wall_ms as f64 / 1e3,
        r.digest
    );
    Ok(())
}

fn run_liveness(args: LivenessArgs) -> Result<(), String> {
    let mut params = LivenessParams::new(args.nodes, args.seed);
    params.partition_at = secs(args.partition_at, "partition-at")?;
    params.heal_at = secs(args.heal_at, "heal-at")?;
    params.settle = secs(args.settle, "settle")?;
    params.chords = args.chords;
    params.network.loss = args.loss;
    let mut bar = VirtualTimeProgress::new(args.json);
    let report = liveness::run(&params, &mut |now, end| {
        bar.update(now.as_nanos() / 1_000_000, end.as_nanos() / 1_000_000)
    });
    bar.finish();
    let report = report.map_err(|e| e.to_string())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        print_summary(&report);
    }
    Ok(())
}

fn print_summary(r: &LivenessReport) {
    println!("liveness: {} nodes, seed {}", r.nodes, r.seed);
    println!(
        "  simulated {:.1} s in {:.2} s wall: {} events ({:.2} M/s), peak RSS {:.1} MiB",
        r.virtual_ms as f64 / 1e3,
        r.wall_ms as f64 / 1e3,
        r.events,
        r.events_per_sec / 1e6,
        r.peak_rss_bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  monitored links {}, of which {} cross the cut",
        r.monitored_links, r.cross_links
    );
    println!("  suspicions across the cut: {}   false suspicions: {}   declared dead: {}   recovered: {}",
        r.detected, r.false_suspicions, r.dead, r.recovered);
    println!(
        "  healed: {}   digest: {}",
        if r.healed { "yes" } else { "NO" },
        r.digest
    );
}
