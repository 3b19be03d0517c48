//! Recovery from damaged files: a torn tail of the last segment is cut off and reported, damage
//! anywhere else is an error, and no file content makes `open` panic.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::*;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use starling_store::{LogStore, SnapshotRecord, StoreConfig, StoreError, SyncMode};

/// Writes entries 1..=n one append at a time and returns, for each entry, the byte range of its
/// record in the segment it landed in.
fn write_log(dir: &Path, cfg: &StoreConfig, n: u64) -> Vec<(PathBuf, u64, u64)> {
    let (mut store, _) = LogStore::open(dir, cfg.clone()).unwrap();
    store.set_hard_state(b"hs").unwrap();
    store.sync().unwrap();
    let mut spans = Vec::new();
    for i in 1..=n {
        store.append(&entries(i..=i, 1)).unwrap();
        store.sync().unwrap();
        // `append` writes through, so the newest segment now ends with entry i.
        let last = segment_files(dir).pop().unwrap();
        let end = fs::metadata(&last).unwrap().len();
        let len = 8 + 1 + 16 + data_for(i, 1).len() as u64;
        spans.push((last, end - len, end));
    }
    spans
}

fn assert_corrupt_at(result: Result<(LogStore, starling_store::Recovered), StoreError>, at: u64) {
    match result {
        Err(StoreError::Corrupt { offset, .. }) => assert_eq!(offset, at),
        Err(e) => panic!("expected Corrupt at {at}, got {e}"),
        Ok((_, rec)) => panic!(
            "expected Corrupt at {at}, recovered {} entries, cut {}",
            rec.entries.len(),
            rec.truncated_tail_bytes
        ),
    }
}

#[test]
fn every_cut_and_every_flip_in_the_last_record_is_a_torn_tail() {
    let dir = TempDir::new("torn-tail");
    let cfg = config(1 << 20, SyncMode::Always);
    let spans = write_log(dir.path(), &cfg, 8);
    let (seg, start, end) = spans.last().cloned().unwrap();
    let good = fs::read(&seg).unwrap();
    assert_eq!(good.len() as u64, end);

    let mut damaged = Vec::new();
    for cut in start..end {
        damaged.push((
            good[..cut as usize].to_vec(),
            cut - start,
            format!("cut at {cut}"),
        ));
    }
    for at in start..end {
        let mut bad = good.clone();
        bad[at as usize] ^= 0x5A;
        damaged.push((bad, end - start, format!("flip at {at}")));
    }
    for (bytes, torn, what) in damaged {
        fs::write(&seg, &bytes).unwrap();
        let (mut store, rec) = LogStore::open(dir.path(), cfg.clone()).expect(&what);
        assert_eq!(rec.truncated_tail_bytes, torn, "{what}");
        assert_eq!(
            index_terms(&rec.entries),
            (1..=7).map(|i| (i, 1)).collect::<Vec<_>>(),
            "{what}"
        );
        assert_eq!(rec.hard_state.as_deref(), Some(&b"hs"[..]), "{what}");
        assert_eq!(fs::metadata(&seg).unwrap().len(), start, "{what}: not cut");
        // The log continues from the cut, and the cut is final.
        store.append(&entries(8..=8, 2)).unwrap();
        store.sync().unwrap();
        drop(store);
        let (_, rec) = reopen(dir.path(), cfg.clone());
        assert_eq!(rec.truncated_tail_bytes, 0, "{what}");
        assert_eq!(rec.entries.last().map(|e| (e.index, e.term)), Some((8, 2)));
    }
}

#[test]
fn damage_before_the_last_record_is_an_error_not_a_truncation() {
    let dir = TempDir::new("mid-segment");
    let cfg = config(1 << 20, SyncMode::Always);
    let spans = write_log(dir.path(), &cfg, 8);
    let (seg, _, _) = spans.last().cloned().unwrap();
    let good = fs::read(&seg).unwrap();
    // A flip in the payload, in the length, in the checksum; and a zeroed stretch.
    for (i, (_, start, end)) in spans[..7].iter().enumerate() {
        for at in [*start + 1, *start + 5, *start + 20, *end - 1] {
            let mut bad = good.clone();
            bad[at as usize] ^= 0x10;
            fs::write(&seg, &bad).unwrap();
            assert_corrupt_at(LogStore::open(dir.path(), cfg.clone()), *start);
            assert_eq!(
                fs::read(&seg).unwrap(),
                bad,
                "entry {}: file was modified",
                i + 1
            );
        }
    }
    let (_, start, end) = spans[3];
    let mut bad = good.clone();
    bad[start as usize..end as usize].fill(0);
    fs::write(&seg, &bad).unwrap();
    assert_corrupt_at(LogStore::open(dir.path(), cfg.clone()), start);

    // A damaged header with records after it is not a segment torn while being created.
    let mut bad = good.clone();
    bad[12] ^= 1;
    fs::write(&seg, &bad).unwrap();
    assert_corrupt_at(LogStore::open(dir.path(), cfg.clone()), 0);

    fs::write(&seg, &good).unwrap();
    let (_, rec) = reopen(dir.path(), cfg);
    assert_eq!(rec.entries.len(), 8);
}

#[test]
fn damage_in_a_sealed_segment_is_an_error() {
    let dir = TempDir::new("sealed");
    let cfg = config(300, SyncMode::Always);
    let spans = write_log(dir.path(), &cfg, 20);
    let segments = segment_files(dir.path());
    assert!(segments.len() > 3);
    // The last record of a sealed segment: cut or flipped, it is not a torn tail.
    let sealed = &segments[1];
    let &(_, start, end) = spans.iter().rev().find(|s| &s.0 == sealed).unwrap();
    let good = fs::read(sealed).unwrap();
    assert_eq!(end, good.len() as u64);
    fs::write(sealed, &good[..good.len() - 3]).unwrap();
    assert_corrupt_at(LogStore::open(dir.path(), cfg.clone()), start);
    let mut bad = good.clone();
    bad[start as usize + 12] ^= 0x01;
    fs::write(sealed, &bad).unwrap();
    assert_corrupt_at(LogStore::open(dir.path(), cfg.clone()), start);
    // A missing segment in the middle.
    fs::remove_file(sealed).unwrap();
    assert!(matches!(
        LogStore::open(dir.path(), cfg.clone()),
        Err(StoreError::Corrupt { .. })
    ));
    fs::write(sealed, &good).unwrap();
    let (_, rec) = reopen(dir.path(), cfg);
    assert_eq!(rec.entries.len(), 20);
}

#[test]
fn a_segment_torn_while_being_created_is_removed() {
    let dir = TempDir::new("torn-header");
    let cfg = config(1 << 20, SyncMode::Always);
    write_log(dir.path(), &cfg, 5);
    let last = segment_files(dir.path()).pop().unwrap();
    let name = last.file_name().unwrap().to_str().unwrap();
    let seq: u64 = name[4..24].parse().unwrap();
    let next = dir.path().join(format!("wal-{:020}.log", seq + 1));
    let mut header_start = fs::read(segment_files(dir.path())[0].clone()).unwrap();
    header_start.truncate(20);
    for torn in [Vec::new(), header_start.clone(), vec![0; 4096]] {
        fs::write(&next, &torn).unwrap();
        let (mut store, rec) = reopen(dir.path(), cfg.clone());
        assert_eq!(rec.truncated_tail_bytes, torn.len() as u64);
        assert_eq!(rec.entries.len(), 5);
        assert!(!next.exists());
        assert_eq!(store.last_index(), 5);
        // The segment before it was sealed: appends continue there.
        store.append(&entries(6..=6, 1)).unwrap();
        store.truncate_suffix(6).unwrap();
        store.sync().unwrap();
    }
}

#[test]
fn snapshot_saved_past_the_log_but_not_recorded_in_it() {
    // The crash window inside `save_snapshot`: the snapshot file is in place, the log still ends
    // at 3 with no compaction record. The log must continue at 51 without a gap in one file.
    let dir = TempDir::new("snap-unrecorded");
    let other = TempDir::new("snap-unrecorded-src");
    let cfg = config(1 << 20, SyncMode::Always);
    let (mut store, _) = LogStore::open(dir.path(), cfg.clone()).unwrap();
    store.set_hard_state(b"vote").unwrap();
    store.append(&entries(1..=3, 1)).unwrap();
    store.sync().unwrap();
    drop(store);
    let snap = SnapshotRecord {
        index: 50,
        term: 2,
        data: Bytes::from_static(b"state"),
    };
    let (mut src, _) = LogStore::open(other.path(), cfg.clone()).unwrap();
    src.save_snapshot(&snap).unwrap();
    drop(src);
    fs::copy(other.path().join("snapshot"), dir.path().join("snapshot")).unwrap();

    let (mut store, rec) = reopen(dir.path(), cfg.clone());
    assert!(rec.entries.is_empty());
    assert_eq!(store.last_index(), 50);
    store.append(&entries(51..=52, 2)).unwrap();
    store.sync().unwrap();
    drop(store);
    let (_, rec) = reopen(dir.path(), cfg);
    assert_eq!(index_terms(&rec.entries), vec![(51, 2), (52, 2)]);
    assert_eq!(rec.snapshot, Some(snap));
    assert_eq!(rec.hard_state.as_deref(), Some(&b"vote"[..]));
}

#[test]
fn hostile_files_never_panic() {
    let dir = TempDir::new("hostile");
    let cfg = config(400, SyncMode::Never);
    {
        let (mut store, _) = LogStore::open(dir.path(), cfg.clone()).unwrap();
        store.append(&entries(1..=30, 1)).unwrap();
        store.set_hard_state(b"hs").unwrap();
        store
            .save_snapshot(&SnapshotRecord {
                index: 10,
                term: 1,
                data: Bytes::from_static(b"snap"),
            })
            .unwrap();
        store.append(&entries(31..=40, 2)).unwrap();
        store.sync().unwrap();
    }
    let mut files: Vec<PathBuf> = segment_files(dir.path());
    files.push(dir.path().join("snapshot"));
    let originals: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    let mut outcomes = [0u32; 2];
    for seed in 0..400u64 {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        for (f, bytes) in files.iter().zip(&originals) {
            fs::write(f, bytes).unwrap();
        }
        for _ in 0..rng.random_range(1..4) {
            let which = rng.random_range(0..files.len());
            let mut bytes = originals[which].clone();
            match rng.random_range(0..5) {
                0 if !bytes.is_empty() => {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] ^= 1 << rng.random_range(0..8);
                }
                1 => bytes.truncate(rng.random_range(0..=bytes.len())),
                2 => bytes.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>())),
                3 if bytes.len() >= 4 => {
                    // A huge or odd length field at a random offset.
                    let at = rng.random_range(0..bytes.len() - 3);
                    let v: u32 = [u32::MAX, 0, 64 << 20, (64 << 20) + 1, rng.random()]
                        [rng.random_range(0..5)];
                    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                _ => bytes = (0..bytes.len()).map(|_| rng.random()).collect(),
            }
            fs::write(&files[which], &bytes).unwrap();
        }
        // Must return, one way or the other.
        match LogStore::open(dir.path(), cfg.clone()) {
            Ok(_) => outcomes[0] += 1,
            Err(_) => outcomes[1] += 1,
        }
        // Recovery may have cut or removed files: start the next round from the originals.
        for f in segment_files(dir.path()) {
            fs::remove_file(f).unwrap();
        }
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}
