//! Raft under faults: a replicated key-value service on 3 or 5 simulated servers, checked for
//! safety continuously and for linearizability at the end.
//!
//! One seed is one schedule. Servers run [`Raft`](starling_core::raft::Raft) with a disk whose
//! writes take time and are lost if the server crashes first; clients issue gets, puts and
//! compare-and-sets on a few keys, one at a time, to whichever server they think leads. The
//! network loses, duplicates and reorders messages throughout; every 200 ms the schedule may
//! crash a server (restarted from its disk later), or split all nodes into two random groups
//! (healed later); one server's clock runs fast or slow for the whole run. After the client
//! phase everything heals and the cluster settles.
//!
//! Checked: the four safety properties of the Raft paper's Figure 3, continuously (see
//! [`invariants`]); linearizability of the clients' history with
//! [`linearizability::check`](crate::linearizability::check) (operations that got no answer may
//! or may not have happened); and, after settling, that every server applied the same log to the
//! same state (`converged`).

mod client;
mod invariants;
mod kv;
mod member;
mod server;

use std::cell::RefCell;
use std::rc::Rc;

use rand::Rng;
use starling_core::raft::{MemStorage, Membership, RaftConfig};
use starling_core::rng::{derive_seed, seeded};
use starling_core::time::{Duration, Instant};

use self::member::Member;

use self::client::{Client, ClientParams, History};
use self::invariants::Invariants;
use self::server::{Clock, Server, ServerParams};
use crate::linearizability::{self, KvModel, Verdict};
use crate::{Latency, NetworkConfig, SimConfig, Simulation};

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct RaftParams {
    /// Servers in the group (3 or 5 make sense; any count works).
    pub servers: u32,
    /// Clients.
    pub clients: u32,
    /// Keys the clients use.
    pub keys: u64,
    /// How long clients issue operations (virtual time).
    pub duration: Duration,
    /// Whether to inject faults (loss, duplication, reordering, crashes, partitions, a skewed
    /// clock); without, the run measures the protocol undisturbed.
    pub faults: bool,
    /// Search steps the linearizability checker may take per seed.
    pub check_budget: u64,
    /// Serve reads locally without ReadIndex: a deliberate bug, to show the checker finds it.
    pub stale_reads: bool,
}

impl Default for RaftParams {
    fn default() -> Self {
        RaftParams {
            servers: 5,
            clients: 4,
            keys: 4,
            duration: Duration::from_secs(10),
            faults: true,
            check_budget: 20_000_000,
            stale_reads: false,
        }
    }
}

/// What one seed gave.
#[derive(Clone, Debug)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// The first safety violation, if any (the run stops there).
    pub violation: Option<String>,
    /// The checker's verdict on the client history.
    pub verdict: Verdict,
    /// Operations that completed with an answer (writes committed, reads served).
    pub ops_committed: u64,
    /// Operations whose outcome the client never learnt.
    pub ops_unknown: u64,
    /// Leaders elected.
    pub elections: u64,
    /// Durations of the elections (see [`invariants::Invariants`]).
    pub election_ms: Vec<f64>,
    /// Whether every server ended with the same applied log and state.
    pub converged: bool,
    /// Simulator events processed.
    pub events: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// The run's trace fingerprint.
    pub digest: String,
}

/// The Raft configuration the scenario runs: the defaults, with a small log bound so that
/// snapshots and chunked installs happen often.
fn raft_config() -> RaftConfig {
    RaftConfig {
        snapshot_chunk_len: 64,
        ..RaftConfig::default()
    }
}

/// Runs one seed.
pub fn run_seed(params: RaftParams, seed: u64) -> SeedOutcome {
    let servers = params.servers;
    let mut rng = seeded(derive_seed(seed, 0x5261_6674)); // the schedule's own stream
    let network = if params.faults {
        NetworkConfig {
            link_latency: Latency::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(10),
            },
            jitter: Latency::Uniform {
                min: Duration::ZERO,
                max: Duration::from_millis(3),
            },
            loss: 0.03,
            duplicate: 0.03,
            reorder: 0.05,
            reorder_delay: Duration::from_millis(30),
            ordered: false,
        }
    } else {
        NetworkConfig {
            link_latency: Latency::Constant(Duration::from_millis(1)),
            jitter: Latency::Constant(Duration::ZERO),
            ..NetworkConfig::default()
        }
    };
    // One server's clock runs fast or slow by up to 2x.
    let skewed = rng.random_range(0..servers);
    let skew = [(1, 2), (2, 3), (3, 2), (2, 1)][rng.random_range(0..4)];
    let clock_of = move |id: u32| {
        if params.faults && id == skewed {
            Clock {
                num: skew.0,
                den: skew.1,
            }
        } else {
            Clock::TRUE
        }
    };
    let server_params = ServerParams {
        raft: raft_config(),
        disk_latency: Duration::from_millis(2),
        compact_after: 64,
        stale_reads: params.stale_reads,
    };
    let client_params = ClientParams {
        servers,
        keys: params.keys,
        give_up: Duration::from_millis(1500),
        resend: Duration::from_millis(100),
        retry: Duration::from_millis(20),
        think: Duration::from_millis(20),
        stop_at: Instant::ZERO + params.duration,
    };
    let voters = Membership::new(0..servers);
    let disks: Vec<Rc<RefCell<MemStorage<u32>>>> = (0..servers).map(|_| Rc::default()).collect();
    let history: History = Rc::default();
    let factory = {
        let (disks, history) = (disks.clone(), history.clone());
        move |id: u32, node_seed: u64, now: Instant| {
            if id < servers {
                Member::Server(Box::new(Server::start(
                    id,
                    &voters,
                    disks[id as usize].clone(),
                    clock_of(id),
                    server_params,
                    node_seed,
                    now,
                )))
            } else {
                Member::Client(Box::new(Client::new(
                    id,
                    client_params,
                    node_seed,
                    history.clone(),
                )))
            }
        }
    };
    let config = SimConfig { seed, network };
    let mut sim = Simulation::new(
        config,
        servers + params.clients,
        factory,
        Invariants::new(servers),
    )
    .expect("the scenario's network configuration is valid");

    let result = drive(&mut sim, &mut rng, params);
    let violation = result.err().map(|v| v.to_string());
    let converged = violation.is_none() && converged(&sim, servers);

    let ops = history.borrow();
    let ops_committed = ops.iter().filter(|o| o.ret.is_some()).count() as u64;
    let verdict = match linearizability::check(&KvModel, &ops, params.check_budget) {
        Ok(v) => v,
        Err(e) => Verdict::NotLinearizable {
            partition: 0,
            detail: format!("malformed history: {e}"),
        },
    };
    let invariants = sim.observer();
    SeedOutcome {
        seed,
        violation,
        verdict,
        ops_committed,
        ops_unknown: ops.len() as u64 - ops_committed,
        elections: invariants.elections,
        election_ms: invariants.election_ms.clone(),
        converged,
        events: sim.stats().events,
        crashes: sim.stats().crashes,
        digest: sim.digest(),
    }
}

type RaftSim = Simulation<Member, Invariants>;

/// The schedule: faults every 200 ms during the client phase, then heal and settle.
fn drive(
    sim: &mut RaftSim,
    rng: &mut starling_core::rng::MachineRng,
    params: RaftParams,
) -> Result<(), crate::Violation> {
    let step = Duration::from_millis(200);
    let end = Instant::ZERO + params.duration;
    let nodes = params.servers + params.clients;
    // When each crashed server comes back, and when the partition heals.
    let mut restarts: Vec<(Instant, u32)> = Vec::new();
    let mut heal_at: Option<Instant> = None;
    let millis = |rng: &mut starling_core::rng::MachineRng, lo: u64, hi: u64| {
        Duration::from_millis(rng.random_range(lo..=hi))
    };
    while sim.now() < end {
        let now = sim.now();
        if params.faults {
            let mut i = 0;
            while i < restarts.len() {
                if restarts[i].0 <= now {
                    let (_, id) = restarts.swap_remove(i);
                    sim.restart(id)?;
                } else {
                    i += 1;
                }
            }
            if heal_at.is_some_and(|t| t <= now) {
                heal_at = None;
                sim.heal();
            }
            let roll: f64 = rng.random();
            if roll < 0.12 {
                let id = rng.random_range(0..params.servers);
                if sim.is_up(id) {
                    sim.crash(id);
                    sim.observer_mut().crashed(id, now);
                    restarts.push((now + millis(rng, 100, 2000), id));
                }
            } else if roll < 0.20 && heal_at.is_none() {
                let groups: Vec<u16> = (0..nodes).map(|_| rng.random_range(0..2)).collect();
                sim.partition(move |id| groups[id as usize]);
                heal_at = Some(now + millis(rng, 200, 2000));
            }
        }
        sim.run_for(step)?;
    }
    sim.heal();
    for id in 0..params.servers {
        sim.restart(id)?;
    }
    // Long enough for a give-up, an election and catching up by snapshot.
    sim.run_for(Duration::from_secs(5))
}

fn converged(sim: &RaftSim, servers: u32) -> bool {
    let states: Vec<_> = (0..servers)
        .filter_map(|id| {
            sim.node(id)?
                .server()
                .map(|s| (s.raft().applied_index(), s.kv().clone()))
        })
        .collect();
    states.len() == servers as usize && states.windows(2).all(|w| w[0] == w[1])
}

/// Totals over many seeds.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RaftReport {
    /// Seeds run.
    pub seeds: u64,
    /// Servers per group.
    pub nodes: u32,
    /// Seeds with a safety violation.
    pub violations: u64,
    /// Whether every seed's history was found linearizable.
    pub linearizable: bool,
    /// Seeds whose history was not linearizable.
    pub not_linearizable: u64,
    /// Seeds the checker could not decide within its budget.
    pub undecided: u64,
    /// Seeds where the servers did not converge after the faults stopped.
    pub not_converged: u64,
    /// Operations that completed, over all seeds.
    pub ops_committed: u64,
    /// Operations whose outcome the client never learnt.
    pub ops_unknown: u64,
    /// Leaders elected, over all seeds.
    pub elections: u64,
    /// Median election duration (from the winner's first campaign step to its victory).
    pub median_election_ms: f64,
    /// 99th percentile of the same.
    pub p99_election_ms: f64,
    /// Crashes injected.
    pub crashes: u64,
    /// Seeds that failed any check, to replay with `--seed`.
    pub failing_seeds: Vec<u64>,
    /// Simulator events over all seeds.
    pub events: u64,
    /// Wall-clock time.
    pub wall_ms: u64,
    /// Events per wall-clock second.
    pub events_per_sec: f64,
    /// The first seed's trace fingerprint (a replay must reproduce it).
    pub digest: String,
}

/// Whether a seed failed any check.
pub fn failed(o: &SeedOutcome) -> bool {
    o.violation.is_some() || !o.verdict.is_linearizable() || !o.converged
}

/// Sums per-seed outcomes (in seed order) into a report.
pub fn report(params: RaftParams, outcomes: &[SeedOutcome], wall_ms: u64) -> RaftReport {
    let mut election_ms: Vec<f64> = outcomes
        .iter()
        .flat_map(|o| o.election_ms.iter().copied())
        .collect();
    election_ms.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        if election_ms.is_empty() {
            0.0
        } else {
            election_ms[((election_ms.len() - 1) as f64 * q).round() as usize]
        }
    };
    let count = |f: &dyn Fn(&SeedOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as u64;
    let events: u64 = outcomes.iter().map(|o| o.events).sum();
    RaftReport {
        seeds: outcomes.len() as u64,
        nodes: params.servers,
        violations: count(&|o| o.violation.is_some()),
        linearizable: outcomes.iter().all(|o| o.verdict.is_linearizable()),
        not_linearizable: count(&|o| matches!(o.verdict, Verdict::NotLinearizable { .. })),
        undecided: count(&|o| matches!(o.verdict, Verdict::Unknown { .. })),
        not_converged: count(&|o| !o.converged),
        ops_committed: outcomes.iter().map(|o| o.ops_committed).sum(),
        ops_unknown: outcomes.iter().map(|o| o.ops_unknown).sum(),
        elections: outcomes.iter().map(|o| o.elections).sum(),
        median_election_ms: quantile(0.5),
        p99_election_ms: quantile(0.99),
        crashes: outcomes.iter().map(|o| o.crashes).sum(),
        failing_seeds: outcomes
            .iter()
            .filter(|o| failed(o))
            .map(|o| o.seed)
            .collect(),
        events,
        wall_ms,
        events_per_sec: events as f64 / (wall_ms.max(1) as f64 / 1000.0),
        digest: outcomes
            .first()
            .map(|o| o.digest.clone())
            .unwrap_or_default(),
    }
}

/// Runs seeds `first..first + seeds` on `threads` threads (each seed is independent and
/// deterministic, so the split does not change any result) and returns the outcomes in seed
/// order.
pub fn run_seeds(params: RaftParams, first: u64, seeds: u64, threads: usize) -> Vec<SeedOutcome> {
    let threads = threads.max(1) as u64;
    let mut outcomes: Vec<SeedOutcome> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (first + t..first + seeds)
                        .step_by(threads as usize)
                        .map(|seed| run_seed(params, seed))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a seed panicked"))
            .collect()
    });
    outcomes.sort_by_key(|o| o.seed);
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_cluster_commits_and_is_linearizable() {
        let params = RaftParams {
            servers: 3,
            faults: false,
            duration: Duration::from_secs(3),
            ..RaftParams::default()
        };
        let o = run_seed(params, 1);
        assert_eq!(o.violation, None);
        assert!(o.verdict.is_linearizable(), "{:?}", o.verdict);
        assert!(o.converged);
        assert!(o.ops_committed > 100, "{o:?}");
        assert_eq!(o.ops_unknown, 0);
        assert_eq!(o.elections, 1);
    }

    #[test]
    fn the_checker_catches_stale_reads() {
        let params = RaftParams {
            duration: Duration::from_secs(4),
            stale_reads: true,
            ..RaftParams::default()
        };
        let caught = (1..=10)
            .map(|seed| run_seed(params, seed))
            .filter(|o| matches!(o.verdict, Verdict::NotLinearizable { .. }))
            .count();
        assert!(
            caught > 0,
            "10 schedules with stale reads all passed the checker"
        );
    }

    #[test]
    fn faulty_seeds_stay_safe_and_replay() {
        let params = RaftParams {
            duration: Duration::from_secs(4),
            ..RaftParams::default()
        };
        for seed in 1..=3 {
            let o = run_seed(params, seed);
            assert!(!failed(&o), "seed {seed}: {o:?}");
            assert!(o.ops_committed > 0);
            assert_eq!(run_seed(params, seed).digest, o.digest);
        }
    }
}
