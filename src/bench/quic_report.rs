//! `starling bench transport --transport quic`: bulk and 1 KiB-message throughput through the
//! QUIC adapter (node + streams), and in the same run the same frames over one raw quinn
//! stream; the report gives each and their ratio.

use super::quic_raw::run_raw_quinn;
use super::*;

/// Frames of the bulk phase: large enough that per-frame costs vanish, small enough to stay
/// far below the default 1 MiB frame limit.
const BULK_FRAME: usize = 256 << 10;
/// Payload in flight on both paths. QUIC on loopback needs more than TCP's window to keep
/// both runtimes busy: with 4 MiB raw quinn's bulk rate was about 10% above that with 1 MiB.
const QUIC_WINDOW: usize = 4 << 20;
/// The adapter's high-water mark, above the window, so the sender is never paused.
const QUIC_HIGH_WATER: usize = 16 << 20;

pub(super) fn transport_quic(args: &TransportArgs) -> Result<(), String> {
    if args.bulk_mib == 0 {
        return Err("--bulk-mib must be at least 1".into());
    }
    let phases = [
        Phase {
            size: BULK_FRAME,
            count: args.bulk_mib * ((1 << 20) / BULK_FRAME as u64),
        },
        Phase {
            size: 1024,
            count: args.messages / 4,
        },
    ];
    let setup = Setup {
        transport: Transport::Quic,
        io_threads: 0,
        high_water: QUIC_HIGH_WATER,
        window_bytes: QUIC_WINDOW,
    };
    let (mut adapter, mut raw) = (Vec::new(), Vec::new());
    for rep in 1..=args.reps {
        let a = match args.only {
            Some(Path::Tokio) => RunResult::default(),
            _ => {
                run_starling(phases, setup).map_err(|e| format!("QUIC adapter, rep {rep}: {e}"))?
            }
        };
        let r = match args.only {
            Some(Path::Starling) => RunResult::default(),
            _ => run_raw_quinn(phases, QUIC_WINDOW)
                .map_err(|e| format!("raw quinn, rep {rep}: {e}"))?,
        };
        if !args.json {
            println!(
                "rep {rep}: adapter {:>7.1} MiB/s bulk {:>8.0} msg/s (1 KiB) | \
                 raw quinn {:>7.1} MiB/s bulk {:>8.0} msg/s (1 KiB)",
                mib(a.msgs_per_sec(&phases, 0), BULK_FRAME),
                a.msgs_per_sec(&phases, 1),
                mib(r.msgs_per_sec(&phases, 0), BULK_FRAME),
                r.msgs_per_sec(&phases, 1),
            );
        }
        adapter.push(a);
        raw.push(r);
    }
    let rate =
        |runs: &[RunResult], i| median(runs.iter().map(|r| r.msgs_per_sec(&phases, i)).collect());
    let (a_bulk, r_bulk) = (
        mib(rate(&adapter, 0), BULK_FRAME),
        mib(rate(&raw, 0), BULK_FRAME),
    );
    let (a1k, r1k) = (rate(&adapter, 1), rate(&raw, 1));
    let allocs =
        |runs: &[RunResult]| median(runs.iter().map(|r| r.allocs_per_msg(Some(1))).collect());
    let cpu = |runs: &[RunResult], t: usize| {
        median(runs.iter().map(|r| r.cpu_per_msg(&phases, 1)[t]).collect())
    };
    if args.json {
        let report = serde_json::json!({
            "bench": "transport",
            "transport": "quic",
            "reps": args.reps,
            "bulk_mib": args.bulk_mib,
            "bulk_frame_bytes": BULK_FRAME,
            "messages_1k": phases[1].count,
            "bulk_mib_per_sec": round(a_bulk, 1),
            "raw_bulk_mib_per_sec": round(r_bulk, 1),
            "ratio_bulk": round(a_bulk / r_bulk, 3),
            "msgs_per_sec_1k": round(a1k, 0),
            "raw_msgs_per_sec_1k": round(r1k, 0),
            "ratio_1k": round(a1k / r1k, 3),
            "allocs_per_msg_1k": round(allocs(&adapter), 4),
            "raw_allocs_per_msg_1k": round(allocs(&raw), 4),
            "cpu_ns_per_msg_1k": {
                "receiver": round(cpu(&adapter, 0), 1),
                "sender": round(cpu(&adapter, 1), 1),
                "sender_app": round(cpu(&adapter, 2), 1),
            },
            "raw_cpu_ns_per_msg_1k": {
                "receiver": round(cpu(&raw, 0), 1),
                "sender": round(cpu(&raw, 1), 1),
            },
            "window_bytes": QUIC_WINDOW,
            "baseline": "raw quinn: one bidirectional stream, same frames, TLS and transport parameters; no node",
        });
        println!("{report}");
        return Ok(());
    }
    println!(
        "\ntransport over QUIC: {} MiB in {} KiB frames, then {} x 1 KiB, one way over 127.0.0.1; \
         medians of {} reps",
        args.bulk_mib,
        BULK_FRAME >> 10,
        phases[1].count,
        args.reps
    );
    println!(
        "  adapter (node, stream per protocol): {a_bulk:>7.1} MiB/s bulk | {a1k:>8.0} msg/s 1 KiB"
    );
    println!(
        "  raw quinn (one stream, no node):     {r_bulk:>7.1} MiB/s bulk | {r1k:>8.0} msg/s 1 KiB"
    );
    println!(
        "  adapter / raw: {:.3} (bulk), {:.3} (1 KiB)",
        a_bulk / r_bulk,
        a1k / r1k
    );
    Ok(())
}
