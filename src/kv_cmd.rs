//! `starling kv`: starts a three-server replicated KV cluster in-process on loopback (durable
//! stores under a fresh temp dir, fsync on) and measures a closed-loop workload at several
//! concurrency levels.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::{Duration, Instant};

use clap::Args;
use starling_core::id::PeerId;
use starling_core::identity::Identity;
use starling_core::raft::Role;
use starling_core::session::NodeKeys;
use starling_kv::{Bytes, ClientConfig, KvClient, KvServer, Op, ServerConfig, SyncMode};

#[derive(Args)]
pub struct KvArgs {
    /// Print one JSON line instead of a table.
    #[arg(long)]
    json: bool,
    /// Seconds of measurement per concurrency level.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Requests kept in flight, one run each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    concurrency: Vec<usize>,
    /// Distinct keys the workload touches.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Bytes per value written.
    #[arg(long, default_value_t = 64)]
    value_size: usize,
    /// Percentage of operations that are puts (the rest are gets).
    #[arg(long, default_value_t = 50)]
    put_percent: u64,
}

const SERVERS: usize = 3;
const NETWORK: &str = "starling-kv-bench";

/// A scratch directory removed on drop (also on error paths).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn node_keys() -> Result<NodeKeys, String> {
    let mut secret = [0u8; 32];
    let mut noise = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| format!("getrandom: {e}"))?;
    getrandom::fill(&mut noise).map_err(|e| format!("getrandom: {e}"))?;
    Ok(NodeKeys::new(Identity::from_secret(secret), noise))
}

/// splitmix64: enough randomness for choosing keys, with no dependency.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

struct RunResult {
    concurrency: usize,
    ops: u64,
    errors: u64,
    secs: f64,
    p50_us: u64,
    p99_us: u64,
}

impl RunResult {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

pub fn run(args: KvArgs) -> Result<(), String> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        return Err("--concurrency needs positive levels".into());
    }
    if args.keys == 0 || args.put_percent > 100 || !args.secs.is_finite() || args.secs <= 0.0 {
        return Err("--keys must be positive, --put-percent at most 100, --secs positive".into());
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let scratch =
        Scratch(std::env::temp_dir().join(format!("starling-kv-{}-{nanos}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)
        .map_err(|e| format!("cannot create {}: {e}", scratch.0.display()))?;

    let keys: Vec<NodeKeys> = (0..SERVERS)
        .map(|_| node_keys())
        .collect::<Result<_, _>>()?;
    let ids: Vec<PeerId> = keys.iter().map(|k| k.identity().peer_id()).collect();
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut servers = Vec::with_capacity(SERVERS);
    for (i, k) in keys.into_iter().enumerate() {
        let mut c = ServerConfig::new(k, any, scratch.0.join(format!("server-{i}")), ids.clone());
        c.network = NETWORK.into();
        c.sync = SyncMode::Always;
        servers.push(KvServer::start(c).map_err(|e| format!("server {i}: {e}"))?);
    }
    let addrs: Vec<SocketAddr> = servers.iter().map(KvServer::local_addr).collect();
    for (i, s) in servers.iter().enumerate() {
        for j in (0..SERVERS).filter(|&j| j != i) {
            s.connect(ids[j], addrs[j]);
        }
    }
    let mut cc = ClientConfig::new(node_keys()?, ids.iter().copied().zip(addrs).collect());
    cc.network = NETWORK.into();
    let client = KvClient::start(cc).map_err(|e| format!("client: {e}"))?;

    // A leader, and a first write through it (which also tells the client who leads).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !servers.iter().any(|s| s.status().role == Role::Leader) {
        if Instant::now() > deadline {
            return Err("no leader elected within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    client
        .put("warmup", "1")
        .map_err(|e| format!("first write failed: {e}"))?;
    if !args.json {
        println!(
            "3 servers on 127.0.0.1 (fsync on, data in {}); {}% puts of {} B values on {} keys, \
             {} s per level",
            scratch.0.display(),
            args.put_percent,
            args.value_size,
            args.keys,
            args.secs
        );
    }

    let value = Bytes::from(vec![0x5a; args.value_size]);
    let mut rng = Mix(nanos as u64);
    let mut runs = Vec::new();
    for &concurrency in &args.concurrency {
        let r = measure(&client, &args, concurrency, &value, &mut rng)?;
        if !args.json {
            println!(
                "concurrency {:>4}: {:>9.0} ops/s  p50 {:>7} us  p99 {:>7} us  ({} ops, {} errors)",
                r.concurrency,
                r.ops_per_sec(),
                r.p50_us,
                r.p99_us,
                r.ops,
                r.errors
            );
        }
        runs.push(r);
    }
    client.shutdown();
    for s in servers {
        s.shutdown();
    }
    if args.json {
        // Written by hand to keep the documented key order (serde_json's map sorts keys).
        let runs: Vec<String> = runs
            .iter()
            .map(|r| {
                format!(
                    "{{\"concurrency\":{},\"ops_per_sec\":{:.1},\"p50_us\":{},\"p99_us\":{},\
                     \"ops\":{},\"errors\":{}}}",
                    r.concurrency,
                    r.ops_per_sec(),
                    r.p50_us,
                    r.p99_us,
                    r.ops,
                    r.errors
                )
            })
            .collect();
        println!(
            "{{\"nodes\":{SERVERS},\"durable\":true,\"runs\":[{}],\"put_percent\":{},\
             \"value_bytes\":{},\"keys\":{},\"secs\":{}}}",
            runs.join(","),
            args.put_percent,
            args.value_size,
            args.keys,
            serde_json::json!(args.secs)
        );
    }
    Ok(())
}

/// Keeps `concurrency` requests in flight for `args.secs`, then waits for the stragglers.
fn measure(
    client: &KvClient,
    args: &KvArgs,
    concurrency: usize,
    value: &Bytes,
    rng: &mut Mix,
) -> Result<RunResult, String> {
    let (tx, rx) = channel();
    let mut next_op = || {
        let key = Bytes::from(format!("key-{:06}", rng.next() % args.keys));
        if rng.next() % 100 < args.put_percent {
            Op::Put {
                key,
                value: value.clone(),
            }
        } else {
            Op::Get { key }
        }
    };
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.secs);
    for _ in 0..concurrency {
        client.submit(next_op(), tx.clone());
    }
    let mut in_flight = concurrency;
    let mut latencies = Vec::new();
    let (mut ops, mut errors) = (0u64, 0u64);
    let mut finished = start;
    // Requests time out after 5 s in the client; this only guards against a stuck client.
    let drain_deadline = end + Duration::from_secs(10);
    while in_flight > 0 {
        let left = drain_deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{in_flight} requests never completed"));
        }
        let c = match rx.recv_timeout(left) {
            Ok(c) => c,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Err("client stopped".into()),
        };
        in_flight -= 1;
        let now = Instant::now();
        if now <= end {
            // Only requests completed inside the window count, so ops/s is what the window saw.
            finished = now;
            match c.result {
                Ok(_) => {
                    ops += 1;
                    latencies.push(c.latency);
                }
                Err(_) => errors += 1,
            }
            client.submit(next_op(), tx.clone());
            in_flight += 1;
        }
    }
    latencies.sort_unstable();
    let pct = |p: f64| -> u64 {
        if latencies.is_empty() {
            return 0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_micros() as u64
    };
    let secs = finished.duration_since(start).as_secs_f64().max(1e-9);
    Ok(RunResult {
        concurrency,
        ops,
        errors,
        secs,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    })
}
