//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use starling_store::{EntryRecord, LogStore, Recovered, StoreConfig, SyncMode};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "starling-store-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Deterministic entry contents for (index, term): a tag plus a length that varies.
pub fn data_for(index: u64, term: u64) -> Bytes {
    let mut v = format!("entry {index} term {term};").into_bytes();
    let extra = (index.wrapping_mul(2654435761) ^ term) % 97;
    v.extend((0..extra).map(|i| (index as u8) ^ (term as u8) ^ (i as u8)));
    Bytes::from(v)
}

pub fn entry(index: u64, term: u64) -> EntryRecord {
    EntryRecord {
        index,
        term,
        data: data_for(index, term),
    }
}

pub fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<EntryRecord> {
    range.map(|i| entry(i, term)).collect()
}

pub fn config(segment_bytes: u64, sync: SyncMode) -> StoreConfig {
    StoreConfig {
        segment_bytes,
        sync,
        ..StoreConfig::default()
    }
}

pub fn reopen(dir: &Path, config: StoreConfig) -> (LogStore, Recovered) {
    LogStore::open(dir, config).expect("reopen")
}

/// Segment files in `dir`, sorted by name.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("wal-") && n.ends_with(".log"))
        })
        .collect();
    v.sort();
    v
}

/// (index, term) pairs of recovered entries, checking their contents on the way.
pub fn index_terms(entries: &[EntryRecord]) -> Vec<(u64, u64)> {
    entries
        .iter()
        .map(|e| {
            assert_eq!(
                e.data,
                data_for(e.index, e.term),
                "contents of entry {}",
                e.index
            );
            (e.index, e.term)
        })
        .collect()
}
