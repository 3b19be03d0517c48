//! [`LogStore`]: the writer side of the segmented write-ahead log.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::dir::{segment_path, sync_dir};
use crate::error::{io_err, StoreError};
use crate::record::{self, ENTRY_OVERHEAD};
use crate::recovery::{recover, Recovered, SegmentMeta};
use crate::snapshot::write_snapshot;
use crate::{EntryRecord, SnapshotRecord, StoreConfig, SyncMode};

/// Counters describing what a [`LogStore`] has done since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Bytes written to segment files (records, headers, preambles).
    pub bytes_written: u64,
    /// Entries appended.
    pub entries_appended: u64,
    /// Calls to [`LogStore::sync`].
    pub sync_calls: u64,
    /// `fdatasync`/`fsync` calls issued on files and on the directory (0 in [`SyncMode::Never`]).
    pub fsyncs: u64,
    /// Segment files on disk now, the active one included.
    pub segments: u64,
    /// Segment files created since open.
    pub segments_created: u64,
    /// Segment files deleted by compaction since open.
    pub segments_deleted: u64,
    /// Snapshots saved since open.
    pub snapshots_saved: u64,
}

/// The segment appends go to.
struct ActiveSegment {
    meta: SegmentMeta,
    file: File,
    /// Bytes written to the file so far.
    len: u64,
    /// Records after the header preamble: a segment rolls over only once it holds some.
    records: u64,
}

/// A durable log store for one Raft node: a segmented write-ahead log plus a snapshot file.
///
/// See the [crate docs](crate) for the on-disk format, recovery rules and durability guarantees.
/// Every mutating call hands its bytes to the kernel before returning; [`LogStore::sync`] makes
/// them durable. One process owns a directory at a time.
pub struct LogStore {
    dir: PathBuf,
    config: StoreConfig,
    active: ActiveSegment,
    /// Sealed segments, oldest first (all synced when sealed under [`SyncMode::Always`]).
    sealed: VecDeque<SegmentMeta>,
    next_seq: u64,
    last_index: u64,
    snapshot_index: u64,
    hard_state: Option<Bytes>,
    /// Encoded records not yet written.
    buf: Vec<u8>,
    /// The active segment has writes not yet fdatasynced.
    dirty: bool,
    /// Files were created or removed since the last directory fsync.
    dir_dirty: bool,
    poisoned: bool,
    stats: StoreStats,
}

impl LogStore {
    /// Opens (or creates) the store in `dir` and recovers its contents.
    ///
    /// A torn tail of the last segment is cut off and reported in
    /// [`Recovered::truncated_tail_bytes`]; any other damage is an error. All recovered entries
    /// are returned in memory.
    pub fn open(dir: &Path, config: StoreConfig) -> Result<(LogStore, Recovered), StoreError> {
        let state = recover(dir, &config)?;
        let snapshot_index = state.recovered.snapshot.as_ref().map_or(0, |s| s.index);
        let mut segments: VecDeque<SegmentMeta> = state.segments.into();
        let mut stats = StoreStats::default();
        let active = match segments.pop_back() {
            Some(meta) => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(&meta.path)
                    .map_err(io_err("open", &meta.path))?;
                let len = file.metadata().map_err(io_err("stat", &meta.path))?.len();
                if config.sync == SyncMode::Always {
                    // A crashed writer may have left records in the page cache only. Raft will
                    // treat what we return as durable, so make it so before returning it.
                    file.sync_data().map_err(io_err("fdatasync", &meta.path))?;
                    sync_dir(dir)?;
                    stats.fsyncs += 2;
                }
                ActiveSegment {
                    meta,
                    file,
                    len,
                    records: state.records_in_last,
                }
            }
            None => {
                let mut buf = Vec::new();
                let active = create_segment(
                    dir,
                    state.next_seq,
                    state.last_index + 1,
                    state.recovered.hard_state.as_deref(),
                    &mut buf,
                )?;
                stats.bytes_written += buf.len() as u64;
                stats.segments_created += 1;
                if config.sync == SyncMode::Always {
                    let path = &active.meta.path;
                    active.file.sync_data().map_err(io_err("fdatasync", path))?;
                    sync_dir(dir)?;
                    stats.fsyncs += 2;
                }
                active
            }
        };
        stats.segments = segments.len() as u64 + 1;
        let mut store = LogStore {
            dir: dir.to_path_buf(),
            next_seq: active.meta.seq + 1,
            active,
            sealed: segments,
            last_index: state.last_index,
            snapshot_index,
            hard_state: state.recovered.hard_state.clone(),
            buf: Vec::with_capacity(64 << 10),
            dirty: false,
            dir_dirty: false,
            poisoned: false,
            stats,
            config,
        };
        if state.log_end < snapshot_index {
            // The snapshot was saved past the end of the log, but the process died before the
            // segments recorded it: the next entry must not follow the old end in the same file.
            store.discard_covered_segments()?;
        }
        Ok((store, state.recovered))
    }

    /// Appends `entries`, which must be contiguous and start right after
    /// [`last_index`](Self::last_index) (after any truncation or snapshot). Nothing is written if
    /// they are not. Durable after the next [`sync`](Self::sync).
    pub fn append(&mut self, entries: &[EntryRecord]) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let max = record::max_data_len(ENTRY_OVERHEAD);
        let mut expected = self.last_index.saturating_add(1);
        for e in entries {
            // u64::MAX is never an entry index, so the index after the log always exists.
            if e.index == u64::MAX {
                return Err(StoreError::IndexOutOfRange { index: e.index });
            }
            if e.index != expected {
                return Err(StoreError::NonContiguous {
                    expected,
                    got: e.index,
                });
            }
            if e.data.len() as u64 > max {
                return Err(StoreError::TooLarge {
                    len: e.data.len() as u64,
                    max,
                });
            }
            expected = e.index + 1;
        }
        let result = (|| {
            for e in entries {
                self.before_record()?;
                record::encode_entry(&mut self.buf, e.index, e.term, &e.data);
                self.active.records += 1;
                self.last_index = e.index;
            }
            self.flush()
        })();
        self.stats.entries_appended += entries.len() as u64;
        self.poison_on_err(result)
    }

    /// Removes every entry with index >= `from` (a follower's conflicting suffix). A no-op when
    /// `from` is past the last entry; an error when it would cut into the snapshot.
    ///
    /// Writes a truncation record, so once the next [`sync`](Self::sync) returns the removed
    /// entries never reappear, although their bytes may remain in older segments.
    pub fn truncate_suffix(&mut self, from: u64) -> Result<(), StoreError> {
        self.check_poisoned()?;
        if from <= self.snapshot_index || from == 0 {
            return Err(StoreError::BelowSnapshot {
                from,
                snapshot_index: self.snapshot_index,
            });
        }
        if from > self.last_index {
            return Ok(());
        }
        let result = (|| {
            self.before_record()?;
            record::encode_truncate(&mut self.buf, from);
            self.active.records += 1;
            self.last_index = from - 1;
            self.flush()
        })();
        self.poison_on_err(result)
    }

    /// Records the hard state (Raft's term, vote and commit index, opaque here); the last one
    /// written wins. Durable after the next [`sync`](Self::sync).
    pub fn set_hard_state(&mut self, state: &[u8]) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let max = record::max_data_len(0);
        if state.len() as u64 > max {
            return Err(StoreError::TooLarge {
                len: state.len() as u64,
                max,
            });
        }
        let result = (|| {
            self.before_record()?;
            record::encode_hard_state(&mut self.buf, state);
            self.active.records += 1;
            self.flush()
        })();
        self.hard_state = Some(Bytes::copy_from_slice(state));
        self.poison_on_err(result)
    }

    /// Saves `snapshot` (covering every entry up to `snapshot.index`) and drops the entries it
    /// covers. If the log ends at or before `snapshot.index`, the whole log is discarded (a new
    /// segment starts at `snapshot.index + 1`, which the next append must be); entries after
    /// `snapshot.index` are kept (call [`truncate_suffix`](Self::truncate_suffix) to discard
    /// them). `snapshot.index` must be below `u64::MAX`.
    ///
    /// The snapshot file is durable when this returns (temp file, fsync, rename, directory
    /// fsync, under [`SyncMode::Always`]). Sealed segments holding only covered entries are then
    /// deleted, after the segments that replace them (and the hard state they carry) are synced;
    /// a crash before the deletions reach the disk only leaves files the next open deletes.
    pub fn save_snapshot(&mut self, snapshot: &SnapshotRecord) -> Result<(), StoreError> {
        self.check_poisoned()?;
        if snapshot.index == u64::MAX {
            return Err(StoreError::IndexOutOfRange {
                index: snapshot.index,
            });
        }
        if snapshot.index < self.snapshot_index {
            return Err(StoreError::StaleSnapshot {
                index: snapshot.index,
                current: self.snapshot_index,
            });
        }
        if snapshot.data.len() as u64 > self.config.max_snapshot_bytes {
            return Err(StoreError::TooLarge {
                len: snapshot.data.len() as u64,
                max: self.config.max_snapshot_bytes,
            });
        }
        let result = self.save_snapshot_inner(snapshot);
        self.poison_on_err(result)
    }

    fn save_snapshot_inner(&mut self, snapshot: &SnapshotRecord) -> Result<(), StoreError> {
        let sync = self.config.sync == SyncMode::Always;
        write_snapshot(&self.dir, snapshot, sync)?;
        if sync {
            self.stats.fsyncs += 2;
        }
        self.stats.snapshots_saved += 1;
        self.snapshot_index = snapshot.index;
        self.last_index = self.last_index.max(snapshot.index);

        // Recorded in the log too, so a segment ending before a snapshot past its end is
        // self-explanatory when replayed.
        self.before_record()?;
        record::encode_compact(&mut self.buf, snapshot.index, snapshot.term);
        self.active.records += 1;
        self.flush()?;
        self.discard_covered_segments()
    }

    /// Deletes the segments holding only entries the snapshot covers. When nothing follows the
    /// snapshot, that is every segment: a new one is started at `snapshot_index + 1` first.
    fn discard_covered_segments(&mut self) -> Result<(), StoreError> {
        let bound = self.snapshot_index.saturating_add(1);
        if self.last_index == self.snapshot_index && self.active.meta.first_index < bound {
            self.roll()?;
        }
        // Delete every sealed segment older than the newest segment that starts at or before
        // the first entry after the snapshot (recovery starts replaying there, by the same rule).
        let keep_from = if self.active.meta.first_index <= bound {
            self.sealed.len()
        } else {
            self.sealed
                .iter()
                .rposition(|m| m.first_index <= bound)
                .unwrap_or(0)
        };
        if keep_from == 0 {
            return Ok(());
        }
        // The surviving segments repeat the hard state of the ones going away, and the newest may
        // not be durable (nor even its directory entry): sync them before deleting anything, or a
        // crash could lose an acknowledged vote.
        self.sync_inner()?;
        for meta in self.sealed.drain(..keep_from) {
            fs::remove_file(&meta.path).map_err(io_err("remove", &meta.path))?;
            self.stats.segments_deleted += 1;
            self.dir_dirty = true;
        }
        self.stats.segments = self.sealed.len() as u64 + 1;
        Ok(())
    }

    /// Makes everything written so far durable: `fdatasync` on the active segment, and `fsync`
    /// on the directory when files were created or removed since the last sync. Returns once
    /// the data is on stable storage (under [`SyncMode::Always`]).
    ///
    /// If it fails the store is poisoned: a failed fsync may have dropped the dirty pages, so
    /// retrying could report success for lost data. Reopen instead.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let result = self.sync_inner();
        self.stats.sync_calls += 1;
        self.poison_on_err(result)
    }

    fn sync_inner(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        if self.config.sync == SyncMode::Always {
            if self.dirty {
                let path = &self.active.meta.path;
                self.active
                    .file
                    .sync_data()
                    .map_err(io_err("fdatasync", path))?;
                self.stats.fsyncs += 1;
            }
            if self.dir_dirty {
                sync_dir(&self.dir)?;
                self.stats.fsyncs += 1;
            }
        }
        self.dirty = false;
        self.dir_dirty = false;
        Ok(())
    }

    /// The index of the last entry, or of the snapshot when no entry follows it (0 when empty).
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// The index covered by the saved snapshot (0 when there is none).
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counters since open.
    pub fn stats(&self) -> StoreStats {
        self.stats
    }

    fn check_poisoned(&self) -> Result<(), StoreError> {
        if self.poisoned {
            Err(StoreError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn poison_on_err(&mut self, result: Result<(), StoreError>) -> Result<(), StoreError> {
        if result.is_err() {
            self.poisoned = true;
            self.buf.clear();
        }
        result
    }

    /// Writes the encoded records to the active segment.
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = &self.active.meta.path;
        self.active
            .file
            .write_all(&self.buf)
            .map_err(io_err("write", path))?;
        self.active.len += self.buf.len() as u64;
        self.stats.bytes_written += self.buf.len() as u64;
        self.buf.clear();
        self.dirty = true;
        Ok(())
    }

    /// Rolls over to a new segment if the active one is full. Called before encoding a record.
    fn before_record(&mut self) -> Result<(), StoreError> {
        let size = self.active.len + self.buf.len() as u64;
        if size < self.config.segment_bytes || self.active.records == 0 {
            return Ok(());
        }
        self.roll()
    }

    /// Seals the active segment and starts a new one at `last_index + 1`.
    fn roll(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        // Seal: the old segment is durable before the new one can exist on disk, so only the
        // last segment can ever have a torn tail.
        if self.config.sync == SyncMode::Always && self.dirty {
            let path = &self.active.meta.path;
            self.active
                .file
                .sync_data()
                .map_err(io_err("fdatasync", path))?;
            self.stats.fsyncs += 1;
        }
        let Some(after) = self.next_seq.checked_add(1) else {
            return Err(StoreError::Corrupt {
                segment: self.active.meta.path.clone(),
                offset: 0,
                reason: "segment numbers exhausted",
            });
        };
        let next = create_segment(
            &self.dir,
            self.next_seq,
            self.last_index + 1,
            self.hard_state.as_deref(),
            &mut self.buf,
        )?;
        self.stats.bytes_written += self.buf.len() as u64;
        self.buf.clear();
        self.next_seq = after;
        let old = std::mem::replace(&mut self.active, next);
        self.sealed.push_back(old.meta);
        self.dirty = true;
        self.dir_dirty = true;
        self.stats.segments_created += 1;
        self.stats.segments = self.sealed.len() as u64 + 1;
        Ok(())
    }
}

/// Creates segment `seq` starting at `first_index`, writing its header and (if any) the current
/// hard state, so compaction never deletes the only copy of the hard state. Uses `buf` as
/// scratch space and leaves the written bytes in it.
fn create_segment(
    dir: &Path,
    seq: u64,
    first_index: u64,
    hard_state: Option<&[u8]>,
    buf: &mut Vec<u8>,
) -> Result<ActiveSegment, StoreError> {
    let path = segment_path(dir, seq);
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err("create", &path))?;
    buf.clear();
    record::encode_header(buf, seq, first_index);
    if let Some(state) = hard_state {
        record::encode_hard_state(buf, state);
    }
    file.write_all(buf).map_err(io_err("write", &path))?;
    Ok(ActiveSegment {
        meta: SegmentMeta {
            seq,
            path,
            first_index,
        },
        file,
        len: buf.len() as u64,
        records: 0,
    })
}
