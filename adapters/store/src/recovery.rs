//! Recovery: reads the snapshot and replays the segments into a [`Recovered`] state, cutting off a
//! torn tail of the last segment and refusing anything else that is damaged.

use std::fs::{self, File, OpenOptions};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::dir::{list_segments, sync_dir};
use crate::error::{io_err, StoreError};
use crate::record::{read_frame, Frame, Record};
use crate::snapshot::{read_snapshot, SNAPSHOT_TMP};
use crate::tail::valid_record_after;
use crate::{EntryRecord, SnapshotRecord, StoreConfig, SyncMode};

/// What [`LogStore::open`](crate::LogStore::open) found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recovered {
    /// The last hard state written, if any.
    pub hard_state: Option<Bytes>,
    /// The saved snapshot, if any.
    pub snapshot: Option<SnapshotRecord>,
    /// The log entries after the snapshot, contiguous and in index order.
    pub entries: Vec<EntryRecord>,
    /// Bytes of a torn or corrupt tail cut off the last segment (0 after a clean shutdown).
    pub truncated_tail_bytes: u64,
}

/// A segment that survived recovery.
#[derive(Debug, Clone)]
pub(crate) struct SegmentMeta {
    pub(crate) seq: u64,
    pub(crate) path: PathBuf,
    pub(crate) first_index: u64,
}

/// Recovery's result: what the caller gets, plus what the store needs to carry on writing.
pub(crate) struct RecoveredState {
    pub(crate) recovered: Recovered,
    /// The index of the last entry (or of the snapshot, if the log after it is empty).
    pub(crate) last_index: u64,
    /// Where the replayed segments leave the log. Below the snapshot index when the snapshot was
    /// saved past the end of the log and the process died before the segments recorded it: the
    /// store must then start a segment at the snapshot before appending.
    pub(crate) log_end: u64,
    /// Surviving segments in order; the last one is where appends continue.
    pub(crate) segments: Vec<SegmentMeta>,
    /// Records after the header in the last segment.
    pub(crate) records_in_last: u64,
    /// The sequence number for the next new segment.
    pub(crate) next_seq: u64,
}

fn corrupt(segment: &Path, offset: u64, reason: &'static str) -> StoreError {
    StoreError::Corrupt {
        segment: segment.to_path_buf(),
        offset,
        reason,
    }
}

/// Reads the header of a segment: `(None, file length)` if it is missing or not a valid frame
/// (a torn header), an error if it is checksummed but wrong.
fn read_header(seq: u64, path: &Path) -> Result<(Option<u64>, u64), StoreError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    let mut reader = BufReader::with_capacity(64, file);
    match read_frame(&mut reader, len).map_err(io_err("read", path))? {
        Frame::Valid { ty, payload, .. } => match Record::decode(ty, payload) {
            Ok(Record::SegmentHeader {
                seq: header_seq,
                first_index,
            }) => {
                if header_seq != seq {
                    return Err(corrupt(
                        path,
                        0,
                        "header sequence does not match the file name",
                    ));
                }
                if first_index == 0 {
                    return Err(corrupt(path, 0, "segment header names index 0"));
                }
                Ok((Some(first_index), len))
            }
            Ok(_) => Err(corrupt(path, 0, "segment does not start with a header")),
            Err(reason) => Err(corrupt(path, 0, reason)),
        },
        Frame::End | Frame::Invalid(_) => Ok((None, len)),
    }
}

/// The log as replay rebuilds it.
struct Replay {
    snapshot_index: u64,
    last: u64,
    entries: Vec<EntryRecord>,
    hard_state: Option<Bytes>,
}

impl Replay {
    fn apply(&mut self, record: Record) -> Result<(), &'static str> {
        match record {
            Record::SegmentHeader { .. } => {
                return Err("segment header in the middle of a segment")
            }
            Record::Entry { index, term, data } => {
                if Some(index) != self.last.checked_add(1) {
                    return Err("entry index does not follow the previous entry");
                }
                if index == u64::MAX {
                    // Reserved so that the index after the log always exists.
                    return Err("entry index out of range");
                }
                self.last = index;
                if index > self.snapshot_index {
                    self.entries.push(EntryRecord { index, term, data });
                }
            }
            Record::Truncate { from } => {
                if from == 0 || from > self.last.saturating_add(1) {
                    return Err("truncation point past the end of the log");
                }
                self.last = from - 1;
                let keep = self.entries.partition_point(|e| e.index < from);
                self.entries.truncate(keep);
            }
            Record::HardState(state) => self.hard_state = Some(state),
            Record::Compact { index, .. } => {
                if index > self.snapshot_index {
                    return Err("log records a snapshot newer than the snapshot file");
                }
                self.last = self.last.max(index);
            }
        }
        Ok(())
    }
}

/// Replays one segment. When `tail_may_be_torn` (the newest segment, which may hold writes
/// that were never synced), an invalid frame with no valid record after it is a torn tail: the
/// file is cut there and the number of bytes removed returned. Any other bad frame is corruption.
/// Returns the bytes cut and the number of records after the header.
fn replay_segment(
    replay: &mut Replay,
    meta: &SegmentMeta,
    tail_may_be_torn: bool,
    sync: bool,
) -> Result<(u64, u64), StoreError> {
    let path = &meta.path;
    let file = File::open(path).map_err(io_err("open", path))?;
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    let mut reader = BufReader::with_capacity(256 << 10, file);
    let mut offset = 0u64;
    let mut records = 0u64;
    loop {
        let frame = read_frame(&mut reader, len - offset).map_err(io_err("read", path))?;
        match frame {
            Frame::End => return Ok((0, records)),
            Frame::Invalid(reason) => {
                if !tail_may_be_torn {
                    return Err(corrupt(path, offset, reason));
                }
                if valid_record_after(path, offset, len, replay.last)
                    .map_err(io_err("read", path))?
                    .is_some()
                {
                    return Err(corrupt(
                        path,
                        offset,
                        "damaged record followed by valid records (not a torn tail)",
                    ));
                }
                cut_tail(path, offset, sync)?;
                return Ok((len - offset, records));
            }
            Frame::Valid { ty, payload, size } => {
                let record = Record::decode(ty, payload).map_err(|r| corrupt(path, offset, r))?;
                if offset == 0 {
                    // Validated by `read_header`; it only fixes where this segment starts.
                    if replay.last.checked_add(1) != Some(meta.first_index) {
                        return Err(corrupt(
                            path,
                            0,
                            "segment does not continue the previous one",
                        ));
                    }
                } else {
                    replay.apply(record).map_err(|r| corrupt(path, offset, r))?;
                    records += 1;
                }
                offset += size;
            }
        }
    }
}

/// Truncates `path` to `len` bytes (and fsyncs it when `sync`): the end of a torn tail.
fn cut_tail(path: &Path, len: u64, sync: bool) -> Result<(), StoreError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    file.set_len(len).map_err(io_err("truncate", path))?;
    if sync {
        file.sync_all().map_err(io_err("fsync", path))?;
    }
    Ok(())
}

/// Recovers the store in `dir` (creating it if needed). See the crate docs for the rules.
pub(crate) fn recover(dir: &Path, config: &StoreConfig) -> Result<RecoveredState, StoreError> {
    let sync = config.sync == SyncMode::Always;
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let mut dir_dirty = false;
    let tmp = dir.join(SNAPSHOT_TMP);
    if tmp.exists() {
        fs::remove_file(&tmp).map_err(io_err("remove", &tmp))?;
        dir_dirty = true;
    }
    let snapshot = read_snapshot(dir, config.max_snapshot_bytes)?;
    let snapshot_index = snapshot.as_ref().map_or(0, |s| s.index);

    let listed = list_segments(dir)?;
    let next_seq = match listed.last() {
        None => 1,
        Some((seq, path)) => seq
            .checked_add(1)
            .ok_or_else(|| corrupt(path, 0, "segment number out of range"))?,
    };
    let mut truncated_tail_bytes = 0;
    let mut metas = Vec::with_capacity(listed.len());
    let count = listed.len();
    // Whether the newest segment on disk survived: if it did not, the one before it was sealed
    // (synced before its successor was created), so its tail cannot be torn.
    let mut newest_kept = true;
    // An upper bound on the last index written so far: a segment holds fewer entries than bytes.
    let mut index_bound = snapshot_index;
    for (i, (seq, path)) in listed.into_iter().enumerate() {
        match read_header(seq, &path)? {
            (Some(first_index), len) => {
                index_bound = index_bound.max(first_index.saturating_add(len));
                metas.push(SegmentMeta {
                    seq,
                    path,
                    first_index,
                });
            }
            (None, len) if i + 1 == count => {
                // The newest segment was being created when the process died — unless records
                // follow the damaged header, which makes it damage to acknowledged data.
                if valid_record_after(&path, 0, len, index_bound)
                    .map_err(io_err("read", &path))?
                    .is_some()
                {
                    return Err(corrupt(
                        &path,
                        0,
                        "damaged segment header followed by valid records",
                    ));
                }
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                truncated_tail_bytes += len;
                dir_dirty = true;
                newest_kept = false;
            }
            (None, _) => return Err(corrupt(&path, 0, "missing or damaged segment header")),
        }
    }

    // Replay starts at the newest segment that began at or before the first entry after the
    // snapshot; older segments hold nothing the snapshot does not cover.
    let start = match metas
        .iter()
        .rposition(|m| m.first_index <= snapshot_index.saturating_add(1))
    {
        Some(start) => start,
        None if metas.is_empty() => 0,
        None => {
            return Err(corrupt(
                &metas[0].path,
                0,
                "log starts after the snapshot: segments are missing",
            ))
        }
    };
    for pair in metas[start..].windows(2) {
        if pair[0].seq.checked_add(1) != Some(pair[1].seq) {
            return Err(corrupt(&pair[1].path, 0, "segment missing before this one"));
        }
    }

    let mut replay = Replay {
        snapshot_index,
        last: metas
            .get(start)
            .map_or(snapshot_index, |m| m.first_index - 1),
        entries: Vec::new(),
        hard_state: None,
    };
    let mut records_in_last = 0;
    let live = &metas[start..];
    for (i, meta) in live.iter().enumerate() {
        // Under `SyncMode::Never` nothing was synced, so after an OS crash the tail of the last
        // surviving segment may be torn even if it was sealed.
        let tail_may_be_torn = i + 1 == live.len() && (newest_kept || !sync);
        let (cut, records) = replay_segment(&mut replay, meta, tail_may_be_torn, sync)?;
        truncated_tail_bytes += cut;
        records_in_last = records;
    }
    // A snapshot past the end of the log (installed from a leader) leaves the log empty after it.
    let last_index = replay.last.max(snapshot_index);

    for meta in &metas[..start] {
        fs::remove_file(&meta.path).map_err(io_err("remove", &meta.path))?;
        dir_dirty = true;
    }
    if dir_dirty && sync {
        sync_dir(dir)?;
    }
    let segments = metas.split_off(start);

    Ok(RecoveredState {
        recovered: Recovered {
            hard_state: replay.hard_state,
            snapshot,
            entries: replay.entries,
            truncated_tail_bytes,
        },
        last_index,
        log_end: replay.last,
        segments,
        records_in_last,
        next_seq,
    })
}
