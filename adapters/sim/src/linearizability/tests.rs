use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::*;

mod props;

type KvOp = Operation<KvInput, KvOutput>;

const BUDGET: u64 = 10_000_000;

fn done(client: u64, input: KvInput, call: u64, ret: u64, output: KvOutput) -> KvOp {
    Operation::completed(client, input, call, ret, output)
}

fn get(client: u64, key: u64, call: u64, ret: u64, value: Option<u64>) -> KvOp {
    done(client, KvInput::Get(key), call, ret, KvOutput::Value(value))
}

fn put(client: u64, key: u64, value: u64, call: u64, ret: u64) -> KvOp {
    done(client, KvInput::Put(key, value), call, ret, KvOutput::Ok)
}

fn cas(
    client: u64,
    key: u64,
    expect: Option<u64>,
    new: u64,
    call: u64,
    ret: u64,
    ok: bool,
) -> KvOp {
    let input = KvInput::Cas { key, expect, new };
    done(client, input, call, ret, KvOutput::CasResult(ok))
}

fn verdict(history: &[KvOp]) -> Verdict {
    check(&KvModel, history, BUDGET).expect("valid history")
}

fn assert_linearizable(history: &[KvOp]) {
    let v = verdict(history);
    assert_eq!(v, Verdict::Linearizable, "history: {history:#?}");
}

fn assert_not_linearizable(history: &[KvOp]) -> String {
    match verdict(history) {
        Verdict::NotLinearizable { detail, .. } => detail,
        other => panic!("expected NotLinearizable, got {other:?} for {history:#?}"),
    }
}

/// Shape of a generated history.
#[derive(Clone, Copy, Debug)]
pub(super) struct GenConfig {
    pub ops: usize,
    pub keys: u64,
    pub clients: usize,
    /// Values are drawn from `0..values`: small ranges repeat values and states.
    pub values: u64,
    /// Longest distance from an op's call (and return) to its linearization point, in ns.
    pub spread: u64,
    /// Chance that an op which took effect gets no response.
    pub lost_reply: f64,
    /// Chance that an op is a write that never took effect and got no response.
    pub phantom: f64,
}

impl GenConfig {
    pub const BIG: GenConfig = GenConfig {
        ops: 20_000,
        keys: 50,
        clients: 8,
        values: 32,
        spread: 40,
        lost_reply: 0.005,
        phantom: 0.005,
    };
}

/// Generates a linearizable history: runs operations one after another on a sequential store at
/// increasing linearization points, and gives each an interval around its point on a client that
/// is idle by then, so the points are a valid linearization.
pub(super) fn generate(seed: u64, cfg: GenConfig) -> Vec<KvOp> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut store = vec![None; cfg.keys as usize];
    let mut free_at = vec![0u64; cfg.clients];
    let mut history = Vec::with_capacity(cfg.ops);
    let mut point = cfg.spread;
    let mut idle = Vec::with_capacity(cfg.clients);
    while history.len() < cfg.ops {
        point += rng.random_range(1..=4);
        idle.clear();
        idle.extend((0..cfg.clients).filter(|&c| free_at[c] <= point));
        if idle.is_empty() {
            point = free_at.iter().copied().min().unwrap_or(point);
            continue;
        }
        let client = idle[rng.random_range(0..idle.len())];
        let call = free_at[client].max(point - rng.random_range(0..=cfg.spread));
        let key = rng.random_range(0..cfg.keys);
        let value = rng.random_range(0..cfg.values);
        if rng.random_bool(cfg.phantom) {
            history.push(Operation::pending(
                client as u64,
                KvInput::Put(key, value),
                call,
            ));
            free_at[client] = point + 2 * cfg.spread;
            continue;
        }
        let current: Option<u64> = store[key as usize];
        let input = match rng.random_range(0..10) {
            0..5 => KvInput::Get(key),
            5..8 => KvInput::Put(key, value),
            8 => KvInput::Cas {
                key,
                expect: current,
                new: value,
            },
            _ => KvInput::Cas {
                key,
                expect: rng.random_bool(0.2).then_some(value),
                new: value,
            },
        };
        let (next, output) = KvModel.step(&current, &input);
        store[key as usize] = next;
        if rng.random_bool(cfg.lost_reply) {
            history.push(Operation::pending(client as u64, input, call));
            free_at[client] = point + 2 * cfg.spread;
        } else {
            let ret = point + rng.random_range(0..=cfg.spread);
            history.push(done(client as u64, input, call, ret, output));
            free_at[client] = ret + 1;
        }
    }
    history
}

#[test]
fn empty_and_sequential_histories_are_linearizable() {
    assert_linearizable(&[]);
    assert_linearizable(&[
        get(1, 0, 0, 1, None),
        put(1, 0, 5, 2, 3),
        get(2, 0, 4, 5, Some(5)),
        cas(1, 0, Some(5), 6, 6, 7, true),
        cas(2, 0, Some(5), 7, 8, 9, false),
        get(1, 0, 10, 11, Some(6)),
    ]);
}

#[test]
fn generated_20k_ops_over_50_keys_is_linearizable() {
    let history = generate(7, GenConfig::BIG);
    let pending = history.iter().filter(|op| op.ret.is_none()).count();
    assert!(
        pending > 50,
        "the history should have pending ops ({pending})"
    );
    let (v, stats) = check_with_stats(&KvModel, &history, BUDGET).unwrap();
    assert_eq!(v, Verdict::Linearizable);
    assert_eq!(stats.partitions, 50);
    assert_eq!(stats.partitions_checked, 50);
}

#[test]
fn generated_single_key_under_high_concurrency_is_linearizable() {
    for seed in 0..4 {
        let cfg = GenConfig {
            ops: 3_000,
            keys: 1,
            clients: 10,
            values: 4,
            ..GenConfig::BIG
        };
        assert_linearizable(&generate(seed, cfg));
    }
}

#[test]
fn stale_read_after_completed_write_is_not_linearizable() {
    let detail = assert_not_linearizable(&[
        put(1, 0, 1, 0, 10),
        put(1, 0, 2, 20, 30),
        get(2, 0, 40, 50, Some(1)),
    ]);
    assert!(detail.contains("#2"), "{detail}");
    // The same read concurrent with the second write is fine.
    assert_linearizable(&[
        put(1, 0, 1, 0, 10),
        put(1, 0, 2, 20, 30),
        get(2, 0, 25, 50, Some(1)),
    ]);
}

#[test]
fn reads_observing_writes_in_opposite_orders_are_not_linearizable() {
    // Two concurrent writes; one reader sees 1 then 2, the other 2 then 1.
    assert_not_linearizable(&[
        put(1, 0, 1, 0, 100),
        put(2, 0, 2, 0, 100),
        get(3, 0, 10, 20, Some(1)),
        get(3, 0, 30, 40, Some(2)),
        get(4, 0, 10, 20, Some(2)),
        get(4, 0, 30, 40, Some(1)),
    ]);
    // One reader alone is fine.
    assert_linearizable(&[
        put(1, 0, 1, 0, 100),
        put(2, 0, 2, 0, 100),
        get(3, 0, 10, 20, Some(1)),
        get(3, 0, 30, 40, Some(2)),
    ]);
}

#[test]
fn lost_acknowledged_write_is_not_linearizable() {
    // The put of 2 was acknowledged, yet a later read sees the value before it.
    let detail = assert_not_linearizable(&[
        put(1, 0, 1, 0, 10),
        put(2, 0, 2, 20, 30),
        get(3, 0, 40, 50, Some(2)),
        get(3, 0, 60, 70, Some(1)),
    ]);
    assert!(detail.contains("#3"), "{detail}");
    // Lost altogether: the key still reads as never written.
    assert_not_linearizable(&[put(1, 0, 1, 0, 10), get(2, 0, 20, 30, None)]);
    // Had the put of 2 timed out instead, losing it would be allowed.
    assert_linearizable(&[
        put(1, 0, 1, 0, 10),
        Operation::pending(2, KvInput::Put(0, 2), 20),
        get(3, 0, 40, 50, Some(1)),
        get(3, 0, 60, 70, Some(1)),
    ]);
}

#[test]
fn cas_succeeding_twice_on_the_same_expected_value_is_not_linearizable() {
    assert_not_linearizable(&[
        put(1, 0, 0, 0, 1),
        cas(2, 0, Some(0), 1, 10, 20, true),
        cas(3, 0, Some(0), 2, 10, 20, true),
    ]);
    assert_linearizable(&[
        put(1, 0, 0, 0, 1),
        cas(2, 0, Some(0), 1, 10, 20, true),
        cas(3, 0, Some(0), 2, 10, 20, false),
        get(1, 0, 30, 40, Some(1)),
    ]);
}

#[test]
fn read_of_a_value_never_written_is_not_linearizable() {
    let detail = assert_not_linearizable(&[
        put(1, 0, 1, 0, 10),
        put(2, 1, 7, 0, 10),
        get(3, 0, 5, 20, Some(7)),
    ]);
    assert!(
        detail.contains("Get(0)") && detail.contains("Value(Some(7))"),
        "{detail}"
    );
    assert_not_linearizable(&[get(1, 3, 0, 1, Some(0))]);
}

#[test]
fn violation_names_its_partition() {
    let history = [
        put(1, 1, 1, 0, 10),
        get(1, 1, 20, 30, Some(1)),
        put(1, 2, 1, 0, 10),
        get(1, 2, 20, 30, None),
    ];
    match verdict(&history) {
        Verdict::NotLinearizable { partition, detail } => {
            assert_eq!(partition, 1, "parts are in key order; key 2 is the second");
            assert!(detail.contains("#3"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pending_write_may_be_observed_or_not() {
    let observed = [
        Operation::pending(1, KvInput::Put(0, 9), 0),
        get(2, 0, 10, 20, Some(9)),
        get(2, 0, 30, 40, Some(9)),
    ];
    assert_linearizable(&observed);
    let not_observed = [
        Operation::pending(1, KvInput::Put(0, 9), 0),
        get(2, 0, 10, 20, None),
        get(2, 0, 30, 40, None),
    ];
    assert_linearizable(&not_observed);
    let late = [
        Operation::pending(1, KvInput::Put(0, 9), 0),
        get(2, 0, 10, 20, None),
        get(2, 0, 30, 40, Some(9)),
    ];
    assert_linearizable(&late);
}

#[test]
fn pending_write_cannot_take_effect_before_its_call_nor_be_undone() {
    // Observed before it was called.
    assert_not_linearizable(&[
        get(2, 0, 0, 5, Some(9)),
        Operation::pending(1, KvInput::Put(0, 9), 10),
    ]);
    // Observed, then gone, with no other write.
    assert_not_linearizable(&[
        Operation::pending(1, KvInput::Put(0, 9), 0),
        get(2, 0, 10, 20, Some(9)),
        get(2, 0, 30, 40, None),
    ]);
    // It can only take effect once: a pending CAS cannot explain two flips.
    assert_not_linearizable(&[
        put(1, 0, 0, 0, 1),
        Operation::pending(
            2,
            KvInput::Cas {
                key: 0,
                expect: Some(0),
                new: 1,
            },
            2,
        ),
        get(3, 0, 10, 20, Some(1)),
        put(1, 0, 0, 30, 40),
        get(3, 0, 50, 60, Some(1)),
    ]);
}

#[test]
fn op_pending_forever_does_not_break_a_history() {
    let mut history = generate(
        3,
        GenConfig {
            ops: 2_000,
            keys: 3,
            ..GenConfig::BIG
        },
    );
    for key in 0..3 {
        history.insert(0, Operation::pending(99, KvInput::Put(key, 12345), 0));
        history.push(Operation::pending(99, KvInput::Get(key), 1));
        history.push(Operation::pending(98, KvInput::Put(key, 54321), u64::MAX));
    }
    assert_linearizable(&history);
    // Only pending ops: nothing to explain.
    assert_linearizable(&[Operation::pending(1, KvInput::Put(0, 1), 0)]);
}

#[test]
fn equal_timestamps_count_as_concurrent() {
    // The write returned at 10 and the read was called at 10: either order is allowed.
    assert_linearizable(&[put(1, 0, 1, 0, 10), get(2, 0, 10, 20, None)]);
    assert_not_linearizable(&[put(1, 0, 1, 0, 10), get(2, 0, 11, 20, None)]);
    // Zero-length intervals.
    assert_linearizable(&[put(1, 0, 1, 5, 5), get(2, 0, 5, 5, Some(1))]);
}

#[test]
fn invalid_histories_are_rejected() {
    let backwards = [get(1, 0, 10, 5, None)];
    let err = check(&KvModel, &backwards, BUDGET).unwrap_err();
    assert_eq!(
        err,
        HistoryError::ReturnBeforeCall {
            index: 0,
            call: 10,
            ret: 5
        }
    );
    assert!(err.to_string().contains("before its call"));

    let mut no_output = get(1, 0, 0, 5, None);
    no_output.output = None;
    let err = check(&KvModel, &[no_output], BUDGET).unwrap_err();
    assert_eq!(err, HistoryError::OutputMismatch { index: 0 });

    let mut output_without_ret = Operation::pending(1, KvInput::Get(0), 0);
    output_without_ret.output = Some(KvOutput::Value(None));
    let err = check(&KvModel, &[output_without_ret], BUDGET).unwrap_err();
    assert_eq!(err, HistoryError::OutputMismatch { index: 0 });
}

/// [`KvModel`] with a chosen, possibly broken, partition.
struct BadParts(Vec<Vec<usize>>);

impl Model for BadParts {
    type State = Option<u64>;
    type Input = KvInput;
    type Output = KvOutput;
    fn init(&self) -> Option<u64> {
        None
    }
    fn step(&self, state: &Option<u64>, input: &KvInput) -> (Option<u64>, KvOutput) {
        KvModel.step(state, input)
    }
    fn partition(&self, _: &[KvOp]) -> Vec<Vec<usize>> {
        self.0.clone()
    }
}

#[test]
fn broken_partitions_are_rejected() {
    let history = [put(1, 0, 1, 0, 1), get(1, 0, 2, 3, Some(1))];
    let cases = [
        (
            vec![vec![0, 2]],
            HistoryError::PartitionOutOfRange { index: 2 },
        ),
        (
            vec![vec![0], vec![1, 0]],
            HistoryError::PartitionDuplicate { index: 0 },
        ),
        (vec![vec![1]], HistoryError::PartitionMissing { index: 0 }),
    ];
    for (parts, expected) in cases {
        assert_eq!(check(&BadParts(parts), &history, BUDGET), Err(expected));
    }
    let fine = check(&BadParts(vec![vec![], vec![1, 0]]), &history, BUDGET);
    assert_eq!(fine, Ok(Verdict::Linearizable));
}

#[test]
fn exhausted_budget_gives_unknown() {
    let history = generate(
        1,
        GenConfig {
            ops: 500,
            keys: 2,
            ..GenConfig::BIG
        },
    );
    match check(&KvModel, &history, 10).unwrap() {
        Verdict::Unknown { reason } => assert!(reason.contains("budget of 10 steps"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let (v, stats) = check_with_stats(&KvModel, &history, BUDGET).unwrap();
    assert_eq!(v, Verdict::Linearizable);
    // Exactly the steps taken is enough; one fewer is not.
    assert_eq!(
        check(&KvModel, &history, stats.steps).unwrap(),
        Verdict::Linearizable
    );
    let short = check(&KvModel, &history, stats.steps - 1).unwrap();
    assert!(matches!(short, Verdict::Unknown { .. }), "{short:?}");
}

#[test]
fn checking_is_deterministic() {
    let mut history = generate(
        11,
        GenConfig {
            ops: 3_000,
            keys: 5,
            ..GenConfig::BIG
        },
    );
    let first = check_with_stats(&KvModel, &history, BUDGET).unwrap();
    assert_eq!(first, check_with_stats(&KvModel, &history, BUDGET).unwrap());
    // Corrupt the last completed read.
    let read = history
        .iter()
        .rposition(|op| matches!(op.input, KvInput::Get(_)) && op.ret.is_some())
        .unwrap();
    history[read].output = Some(KvOutput::Value(Some(1_000_000)));
    let broken = check_with_stats(&KvModel, &history, BUDGET).unwrap();
    assert!(
        matches!(broken.0, Verdict::NotLinearizable { .. }),
        "{broken:?}"
    );
    assert_eq!(
        broken,
        check_with_stats(&KvModel, &history, BUDGET).unwrap()
    );
}

#[test]
fn violations_in_large_histories_with_many_pending_ops_are_found() {
    // Many pending ops (10%) with few distinct values: without the pending-op reductions the
    // search would try every subset of them before reporting the planted violation.
    for seed in 0..3 {
        let cfg = GenConfig {
            ops: 3_000,
            keys: 10,
            clients: 8,
            values: 4,
            lost_reply: 0.05,
            phantom: 0.05,
            ..GenConfig::BIG
        };
        let mut history = generate(seed, cfg);
        assert_linearizable(&history);
        let read = history
            .iter()
            .rposition(|op| matches!(op.input, KvInput::Get(_)) && op.ret.is_some())
            .unwrap();
        history[read].output = Some(KvOutput::Value(Some(u64::MAX)));
        assert_not_linearizable(&history);
    }
}

/// Timing of a 5,000-op history over 20 keys and 8 clients: `cargo test --release -p
/// starling-sim --lib linearizability::tests::time_5k -- --ignored --nocapture`.
#[test]
#[ignore = "timing, run in release mode by hand"]
fn time_5k_history() {
    let cfg = GenConfig {
        ops: 5_000,
        keys: 20,
        clients: 8,
        ..GenConfig::BIG
    };
    let history = generate(5, cfg);
    let start = std::time::Instant::now();
    let (v, stats) = check_with_stats(&KvModel, &history, BUDGET).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(v, Verdict::Linearizable);
    println!(
        "{} ops ({} pending) over {} keys, {} clients: {elapsed:?}; {stats:?}",
        history.len(),
        history.iter().filter(|op| op.ret.is_none()).count(),
        cfg.keys,
        cfg.clients
    );
}

/// Timing of the 20,000-op history: `cargo test --release -p starling-sim
/// linearizability::tests::time_big -- --ignored --nocapture`.
#[test]
#[ignore = "timing, run in release mode by hand"]
fn time_big_history() {
    let history = generate(7, GenConfig::BIG);
    let mut times = Vec::new();
    let mut stats = CheckStats::default();
    for _ in 0..7 {
        let start = std::time::Instant::now();
        let (v, s) = check_with_stats(&KvModel, &history, BUDGET).unwrap();
        times.push(start.elapsed());
        assert_eq!(v, Verdict::Linearizable);
        stats = s;
    }
    times.sort();
    println!(
        "{} ops ({} pending): median {:?}, min {:?}, max {:?}; {stats:?}",
        history.len(),
        history.iter().filter(|op| op.ret.is_none()).count(),
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
}
