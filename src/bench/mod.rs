//! `starling bench transport`: one-way throughput of encrypted frames over loopback TCP,
//! through the mio reactor (session + node) and, side by side in the same run, through a plain
//! tokio loop driving the same `Session` code with no node: the baseline.
//!
//! Workload per path and repetition: N frames of 64 B, then N/4 frames of 1 KiB, streamed one
//! way in batches of 64 KiB of payload, made before the clock starts. Each phase is timed from
//! its first send to its last receive. Every frame carries its sequence number, checked on
//! arrival (loss, order, length), and a sample is checked byte for byte. Compression is off
//! (crypto is measured, not LZ4) and the inbound rate limits are lifted. Allocations are counted
//! on the receiving thread over the last 90% of each phase (the counting global allocator).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use starling_core::id::PeerId;
use starling_core::identity::Identity;
use starling_core::node::NodeEvent;
use starling_core::session::{
    CloseCode, NodeKeys, RateLimits, Session, SessionConfig, SessionEvent,
};
use starling_core::time::Instant as SInstant;
use starling_core::wire::{Frame, ProtocolId};
use starling_counting_alloc::thread_allocations;
use starling_mio::{Handle, ReactorConfig, ReactorStats};

use crate::runtime::{AnyReactor, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Benchmarks.
mod quic_raw;
mod quic_report;
mod starling_path;
mod tokio_path;
mod workload;

use starling_path::*;
use tokio_path::*;
use workload::*;

#[derive(Subcommand)]
pub enum Bench {
    /// One-way encrypted throughput over 127.0.0.1: the mio reactor (session + node) against a
    /// plain tokio loop driving the same sessions (no node).
    Transport(TransportArgs),
}

#[derive(Args)]
pub struct TransportArgs {
    /// Frames of 64 B per repetition (then a quarter as many of 1 KiB).
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Repetitions of each path, alternating; medians are reported.
    #[arg(long, default_value_t = 3)]
    reps: u32,
    /// Print one JSON line (the last line of stdout).
    #[arg(long)]
    json: bool,
    /// Run each starling node on the multi-reactor with this many I/O threads (0: one reactor
    /// thread per node).
    #[arg(long, default_value_t = 0)]
    io_threads: usize,
    /// Run one path only (for profiling); the other's figures are then meaningless.
    #[arg(long, value_enum, hide = true)]
    only: Option<Path>,
    /// `quic`: bulk and 1 KiB throughput through the QUIC adapter against raw quinn streams
    /// (`--messages` / 4 messages of 1 KiB, after `--bulk-mib` of bulk).
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    transport: Transport,
    /// With `--transport quic`: MiB sent in the bulk phase.
    #[arg(long, default_value_t = 256)]
    bulk_mib: u64,
}

/// With `--transport quic`, `starling` is the adapter and `tokio` the raw quinn baseline.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Path {
    Starling,
    Tokio,
}

pub fn run(what: Bench) -> Result<(), String> {
    match what {
        Bench::Transport(args) => transport(args),
    }
}

pub(super) const NETWORK: &str = "starling-bench";
pub(super) const MSG_TYPE: u8 = 7;
/// Payload per batch: 1024 frames of 64 B, 64 of 1 KiB.
pub(super) const BATCH_BYTES: usize = 64 << 10;
/// The reactor's high-water mark (its default). The node drops sends to a paused peer, and
/// batches already queued when the pause is announced would be lost; so besides honouring
/// `Backpressure`, the sender keeps at most `WINDOW_BYTES` of payload sent but not yet received,
/// which keeps the reactor's queue below the mark. (A window of 3 MiB under a 4 MiB mark was
/// measured no faster.)
pub(super) const HIGH_WATER: usize = 1 << 20;
pub(super) const WINDOW_BYTES: usize = 768 << 10;
/// Every frame's sequence number is checked; every this many, its whole body too.
pub(super) const SAMPLE_EVERY: u64 = 997;
/// A run that makes no progress for this long has lost frames or hung.
pub(super) const STALL: Duration = Duration::from_secs(30);

/// One phase of the workload.
#[derive(Clone, Copy, Debug)]
pub(super) struct Phase {
    pub(super) size: usize,
    pub(super) count: u64,
}

impl Phase {
    fn batch(self) -> u64 {
        (BATCH_BYTES / self.size).max(1) as u64
    }
    /// Frames before the allocation window opens (the first 10%: warm-up).
    fn window_start(self) -> u64 {
        self.count / 10
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn mib(msgs_per_sec: f64, size: usize) -> f64 {
    msgs_per_sec * size as f64 / f64::from(1u32 << 20)
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

fn transport(args: TransportArgs) -> Result<(), String> {
    if args.messages < 1000 {
        return Err("--messages must be at least 1000".into());
    }
    if args.reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    if args.transport == Transport::Quic {
        return quic_report::transport_quic(&args);
    }
    let phases = phases(args.messages);
    let (mut starling, mut tokio) = (Vec::new(), Vec::new());
    for rep in 1..=args.reps {
        let s = match args.only {
            Some(Path::Tokio) => RunResult::default(),
            _ => run_starling(
                phases,
                Setup {
                    transport: Transport::Tcp,
                    io_threads: args.io_threads,
                    high_water: HIGH_WATER,
                    window_bytes: WINDOW_BYTES,
                },
            )
            .map_err(|e| format!("starling path, rep {rep}: {e}"))?,
        };
        let t = match args.only {
            Some(Path::Starling) => RunResult::default(),
            _ => run_tokio(phases).map_err(|e| format!("tokio path, rep {rep}: {e}"))?,
        };
        if !args.json {
            println!(
                "rep {rep}: starling {:>9.0} msg/s (64 B) {:>8.0} msg/s (1 KiB) | \
                 tokio {:>9.0} msg/s (64 B) {:>8.0} msg/s (1 KiB)",
                s.msgs_per_sec(&phases, 0),
                s.msgs_per_sec(&phases, 1),
                t.msgs_per_sec(&phases, 0),
                t.msgs_per_sec(&phases, 1),
            );
        }
        starling.push(s);
        tokio.push(t);
    }
    let rate =
        |runs: &[RunResult], i| median(runs.iter().map(|r| r.msgs_per_sec(&phases, i)).collect());
    let allocs = |runs: &[RunResult], i| median(runs.iter().map(|r| r.allocs_per_msg(i)).collect());
    let (s64, s1k) = (rate(&starling, 0), rate(&starling, 1));
    let (t64, t1k) = (rate(&tokio, 0), rate(&tokio, 1));
    let pool_misses = starling.iter().map(|r| r.pool_misses).max().unwrap_or(0);
    let (a_all, a64, a1k) = (
        allocs(&starling, None),
        allocs(&starling, Some(0)),
        allocs(&starling, Some(1)),
    );
    let a_tokio = allocs(&tokio, None);
    // CPU ns per message, [phase][receiving, sending, application thread].
    let cpu = |runs: &[RunResult]| {
        [0, 1].map(|i| {
            [0, 1, 2].map(|t| median(runs.iter().map(|r| r.cpu_per_msg(&phases, i)[t]).collect()))
        })
    };
    let (cpu_s, cpu_t) = (cpu(&starling), cpu(&tokio));
    if args.json {
        let report = serde_json::json!({
            "bench": "transport",
            "messages": args.messages,
            "messages_1k": phases[1].count,
            "reps": args.reps,
            "io_threads": args.io_threads,
            "msgs_per_sec_64": round(s64, 0),
            "mib_per_sec_64": round(mib(s64, 64), 1),
            "msgs_per_sec_1k": round(s1k, 0),
            "mib_per_sec_1k": round(mib(s1k, 1024), 1),
            "tokio_msgs_per_sec_64": round(t64, 0),
            "tokio_mib_per_sec_64": round(mib(t64, 64), 1),
            "tokio_msgs_per_sec_1k": round(t1k, 0),
            "tokio_mib_per_sec_1k": round(mib(t1k, 1024), 1),
            "ratio_vs_tokio_64": round(s64 / t64, 3),
            "ratio_vs_tokio_1k": round(s1k / t1k, 3),
            "allocs_per_msg": round(a_all, 5),
            "allocs_per_msg_64": round(a64, 5),
            "allocs_per_msg_1k": round(a1k, 5),
            "tokio_allocs_per_msg": round(a_tokio, 5),
            "pool_misses": pool_misses,
            "cpu_ns_per_msg_64": {
                "receiver": round(cpu_s[0][0], 1),
                "sender_reactor": round(cpu_s[0][1], 1),
                "sender_app": round(cpu_s[0][2], 1),
            },
            "cpu_ns_per_msg_1k": {
                "receiver": round(cpu_s[1][0], 1),
                "sender_reactor": round(cpu_s[1][1], 1),
                "sender_app": round(cpu_s[1][2], 1),
            },
            "tokio_cpu_ns_per_msg_64": {
                "receiver": round(cpu_t[0][0], 1),
                "sender": round(cpu_t[0][1], 1),
            },
            "tokio_cpu_ns_per_msg_1k": {
                "receiver": round(cpu_t[1][0], 1),
                "sender": round(cpu_t[1][1], 1),
            },
            "batch_frames_64": phases[0].batch(),
            "batch_frames_1k": phases[1].batch(),
            "window_bytes": WINDOW_BYTES,
            "compression": false,
            "baseline": "tokio current-thread runtimes driving the same Session; no Node",
        });
        println!("{report}");
        return Ok(());
    }
    println!(
        "\ntransport: {} x 64 B then {} x 1 KiB, one way over 127.0.0.1, encrypted \
         (Noise, ChaCha20-Poly1305), uncompressed; medians of {} reps",
        args.messages, phases[1].count, args.reps
    );
    for (name, r64, r1k) in [
        ("starling (mio reactor, session + node)", s64, s1k),
        ("tokio baseline (session only, no node)", t64, t1k),
    ] {
        println!(
            "  {name}: {r64:>9.0} msg/s {:>6.1} MiB/s (64 B) | {r1k:>8.0} msg/s {:>6.1} MiB/s (1 KiB)",
            mib(r64, 64),
            mib(r1k, 1024)
        );
    }
    println!(
        "  starling / tokio: {:.3} (64 B), {:.3} (1 KiB)",
        s64 / t64,
        s1k / t1k
    );
    println!(
        "  receiver allocations per message (last 90% of each phase): starling {a_all:.5} \
         (64 B {a64:.5}, 1 KiB {a1k:.5}), tokio {a_tokio:.5}; receive-pool misses: {pool_misses}"
    );
    println!(
        "  CPU per message (ns)       64 B: receiver sender [app] | 1 KiB: receiver sender [app]"
    );
    let [s64c, s1kc] = cpu_s;
    let [t64c, t1kc] = cpu_t;
    println!(
        "    starling (reactors, app)       {:>8.0} {:>6.0} {:>5.0} |        {:>8.0} {:>6.0} {:>5.0}",
        s64c[0], s64c[1], s64c[2], s1kc[0], s1kc[1], s1kc[2]
    );
    println!(
        "    tokio                          {:>8.0} {:>6.0}       |        {:>8.0} {:>6.0}",
        t64c[0], t64c[1], t1kc[0], t1kc[1]
    );
    Ok(())
}
