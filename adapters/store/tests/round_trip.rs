//! Round trips: what was written (and synced) is exactly what `open` recovers, across truncation,
//! hard state, snapshots and compaction over many small segments.

mod common;

use bytes::Bytes;
use common::*;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use starling_store::{LogStore, SnapshotRecord, StoreError, SyncMode};

fn snapshot(index: u64, term: u64) -> SnapshotRecord {
    SnapshotRecord {
        index,
        term,
        data: Bytes::from(format!("state machine at {index}")),
    }
}

#[test]
fn append_truncate_hard_state_snapshot_compaction_reopen() {
    let dir = TempDir::new("round-trip");
    let cfg = config(256, SyncMode::Always);
    let (mut store, rec) = LogStore::open(dir.path(), cfg.clone()).unwrap();
    assert_eq!(rec.entries, vec![]);
    assert_eq!(rec.hard_state, None);
    assert_eq!(rec.snapshot, None);
    assert_eq!(rec.truncated_tail_bytes, 0);

    for start in (1..=30).step_by(5) {
        store.append(&entries(start..=start + 4, 1)).unwrap();
    }
    store.truncate_suffix(25).unwrap();
    assert_eq!(store.last_index(), 24);
    store.append(&entries(25..=40, 2)).unwrap();
    store.set_hard_state(b"hs1").unwrap();
    store.set_hard_state(b"hs2").unwrap();
    store.sync().unwrap();
    let segments_before = segment_files(dir.path()).len();
    assert!(
        segments_before > 3,
        "tiny segments should roll: {segments_before}"
    );
    assert_eq!(store.stats().segments as usize, segments_before);

    store.save_snapshot(&snapshot(20, 1)).unwrap();
    store.append(&entries(41..=45, 3)).unwrap();
    store.truncate_suffix(44).unwrap();
    store.sync().unwrap();
    let stats = store.stats();
    assert!(
        stats.segments_deleted > 0,
        "compaction deleted no segment: {stats:?}"
    );
    assert!(stats.fsyncs > 0 && stats.sync_calls == 2);
    drop(store);
    assert!(segment_files(dir.path()).len() < segments_before + 2);

    let expected: Vec<(u64, u64)> = (21..=24)
        .map(|i| (i, 1))
        .chain((25..=40).map(|i| (i, 2)))
        .chain((41..=43).map(|i| (i, 3)))
        .collect();
    let (mut store, rec) = reopen(dir.path(), cfg.clone());
    assert_eq!(index_terms(&rec.entries), expected);
    assert_eq!(rec.hard_state.as_deref(), Some(&b"hs2"[..]));
    assert_eq!(rec.snapshot, Some(snapshot(20, 1)));
    assert_eq!(rec.truncated_tail_bytes, 0);
    assert_eq!(store.last_index(), 43);
    assert_eq!(store.snapshot_index(), 20);

    // Writing after recovery continues the same log.
    store.append(&entries(44..=44, 4)).unwrap();
    store.sync().unwrap();
    drop(store);
    let (_, rec) = reopen(dir.path(), cfg);
    assert_eq!(rec.entries.last().map(|e| (e.index, e.term)), Some((44, 4)));
    assert_eq!(rec.entries.len(), expected.len() + 1);
}

#[test]
fn invalid_calls_are_refused_without_writing() {
    let dir = TempDir::new("invalid");
    let cfg = config(1 << 20, SyncMode::Never);
    let (mut store, _) = LogStore::open(dir.path(), cfg.clone()).unwrap();
    assert!(matches!(
        store.append(&entries(2..=3, 1)),
        Err(StoreError::NonContiguous {
            expected: 1,
            got: 2
        })
    ));
    let mut gap = entries(1..=3, 1);
    gap.remove(1);
    assert!(matches!(
        store.append(&gap),
        Err(StoreError::NonContiguous {
            expected: 2,
            got: 3
        })
    ));
    store.append(&entries(1..=10, 1)).unwrap();
    store.save_snapshot(&snapshot(5, 1)).unwrap();
    assert!(matches!(
        store.truncate_suffix(5),
        Err(StoreError::BelowSnapshot { .. })
    ));
    assert!(matches!(
        store.save_snapshot(&snapshot(4, 1)),
        Err(StoreError::StaleSnapshot { .. })
    ));
    store.truncate_suffix(11).unwrap(); // past the end: nothing to do
    assert_eq!(store.last_index(), 10);
    store.sync().unwrap();
    drop(store);
    let (_, rec) = reopen(dir.path(), cfg);
    assert_eq!(
        index_terms(&rec.entries),
        (6..=10).map(|i| (i, 1)).collect::<Vec<_>>()
    );
}

#[test]
fn snapshot_past_the_end_of_the_log_empties_it() {
    let dir = TempDir::new("snap-past-end");
    let cfg = config(200, SyncMode::Always);
    let (mut store, _) = LogStore::open(dir.path(), cfg.clone()).unwrap();
    store.set_hard_state(b"early").unwrap();
    store.append(&entries(1..=20, 1)).unwrap();
    let before = segment_files(dir.path());
    store.save_snapshot(&snapshot(100, 5)).unwrap();
    assert_eq!(store.last_index(), 100);
    assert!(store.append(&entries(21..=21, 1)).is_err());
    store.append(&entries(101..=103, 5)).unwrap();
    store.sync().unwrap();
    drop(store);
    // The whole log was discarded: no segment from before the snapshot survives (entries
    // 101..=103 may span more than one new 200-byte segment), and the new ones still carry the
    // hard state.
    let after = segment_files(dir.path());
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} -> {after:?}"
    );
    let (store, rec) = reopen(dir.path(), cfg);
    assert_eq!(
        index_terms(&rec.entries),
        vec![(101, 5), (102, 5), (103, 5)]
    );
    assert_eq!(rec.hard_state.as_deref(), Some(&b"early"[..]));
    assert_eq!(store.last_index(), 103);

    // The same without any entry after the snapshot.
    let dir = TempDir::new("snap-past-end-empty");
    let cfg = config(1 << 20, SyncMode::Always);
    let (mut store, _) = LogStore::open(dir.path(), cfg.clone()).unwrap();
    store.append(&entries(1..=3, 1)).unwrap();
    store.save_snapshot(&snapshot(50, 2)).unwrap();
    store.sync().unwrap();
    drop(store);
    let (mut store, rec) = reopen(dir.path(), cfg.clone());
    assert!(rec.entries.is_empty());
    assert_eq!(store.last_index(), 50);
    store.append(&entries(51..=51, 2)).unwrap();
    store.sync().unwrap();
    drop(store);
    let (_, rec) = reopen(dir.path(), cfg);
    assert_eq!(index_terms(&rec.entries), vec![(51, 2)]);
}

/// A reference model of the log, for the randomized test.
#[derive(Default, Clone, PartialEq, Debug)]
struct Model {
    entries: Vec<(u64, u64)>,
    last: u64,
    snapshot: Option<(u64, u64)>,
    hard_state: Option<Vec<u8>>,
}

#[test]
fn random_operations_match_a_model_across_reopens() {
    for seed in 0..12u64 {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let dir = TempDir::new("model");
        let cfg = config(rng.random_range(64..2048), SyncMode::Never);
        let (mut store, _) = LogStore::open(dir.path(), cfg.clone()).unwrap();
        let mut model = Model::default();
        let mut term = 1;
        for step in 0..300 {
            match rng.random_range(0..100) {
                0..=59 => {
                    let n = rng.random_range(1..8);
                    let batch = entries(model.last + 1..=model.last + n, term);
                    store.append(&batch).unwrap();
                    model
                        .entries
                        .extend(batch.iter().map(|e| (e.index, e.term)));
                    model.last += n;
                }
                60..=71 => {
                    let floor = model.snapshot.map_or(0, |s| s.0) + 1;
                    if model.last >= floor {
                        let from =
                            rng.random_range(floor.max(model.last.saturating_sub(10))..=model.last);
                        store.truncate_suffix(from).unwrap();
                        model.entries.retain(|&(i, _)| i < from);
                        model.last = from - 1;
                        term += 1;
                    }
                }
                72..=81 => {
                    let hs = format!("hs {seed} {step}").into_bytes();
                    store.set_hard_state(&hs).unwrap();
                    model.hard_state = Some(hs);
                }
                82..=89 => {
                    let floor = model.snapshot.map_or(0, |s| s.0);
                    let index = rng.random_range(floor..=model.last + 3);
                    let t = model
                        .entries
                        .iter()
                        .find(|e| e.0 == index)
                        .map_or(term, |e| e.1);
                    store.save_snapshot(&snapshot(index, t)).unwrap();
                    model.entries.retain(|&(i, _)| i > index);
                    model.last = model.last.max(index);
                    model.snapshot = Some((index, t));
                }
                90..=95 => store.sync().unwrap(),
                _ => {
                    store.sync().unwrap();
                    drop(store);
                    let (s, rec) = reopen(dir.path(), cfg.clone());
                    store = s;
                    check(&model, &rec, seed, step);
                    assert_eq!(store.last_index(), model.last, "seed {seed} step {step}");
                }
            }
        }
        store.sync().unwrap();
        drop(store);
        let (_, rec) = reopen(dir.path(), cfg);
        check(&model, &rec, seed, 300);
    }
}

fn check(model: &Model, rec: &starling_store::Recovered, seed: u64, step: usize) {
    assert_eq!(
        index_terms(&rec.entries),
        model.entries,
        "seed {seed} step {step}"
    );
    assert_eq!(
        rec.snapshot.as_ref().map(|s| (s.index, s.term)),
        model.snapshot,
        "seed {seed} step {step}"
    );
    assert_eq!(
        rec.hard_state.as_deref(),
        model.hard_state.as_deref(),
        "seed {seed} step {step}"
    );
    assert_eq!(rec.truncated_tail_bytes, 0);
}
