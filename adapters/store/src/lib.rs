//! # starling-store
//!
//! A durable log store for Raft nodes: a **segmented write-ahead log** with a CRC32C on every
//! record and explicit fsync, plus an atomically replaced snapshot file. Entries, hard state and
//! snapshots are opaque bytes: the store knows indexes and terms, nothing about Raft's types.
//!
//! ```no_run
//! use bytes::Bytes;
//! use starling_store::{EntryRecord, LogStore, StoreConfig};
//!
//! # fn main() -> Result<(), starling_store::StoreError> {
//! let (mut store, recovered) = LogStore::open("/var/lib/node/raft".as_ref(), StoreConfig::default())?;
//! let next = store.last_index() + 1;
//! store.append(&[EntryRecord { index: next, term: 1, data: Bytes::from_static(b"op") }])?;
//! store.set_hard_state(b"term=1 vote=a commit=0")?;
//! store.sync()?; // durable from here: now answer the leader / count the vote
//! # let _ = recovered; Ok(()) }
//! ```
//!
//! ## Why a write-ahead log (and not redb or fjall)
//!
//! A Raft log is append-mostly: entries are added at the tail, a follower occasionally cuts a
//! conflicting suffix, and compaction drops a prefix once a snapshot covers it. Entries are read
//! back only at startup (the Raft machine keeps its log in memory between snapshots). A WAL does
//! exactly this with sequential writes and one `fdatasync` per batch: a suffix cut is one small
//! record, a prefix drop is deleting whole files. A B-tree (redb) or an LSM tree (fjall) would
//! add write amplification (page copies, compactions), random I/O, and — for the LSM — a WAL of
//! its own underneath, to provide ordered random access the Raft log never needs.
//!
//! ## Files
//!
//! | file | contents |
//! |------|----------|
//! | `wal-<seq, 20 digits>.log` | a segment: a header record, then records; `seq` increases by 1 per new segment |
//! | `snapshot` | the latest snapshot (see below) |
//! | `snapshot.tmp` | a snapshot being written; deleted by `open` |
//!
//! A segment that has grown past [`StoreConfig::segment_bytes`] is *sealed* before the next
//! record: it is fdatasynced (under [`SyncMode::Always`]) and a new segment is created whose
//! header names the index the log expects next and which repeats the current hard state.
//!
//! ## Record format
//!
//! Every record in a segment is framed the same way (integers little-endian):
//!
//! | field | size | meaning |
//! |-------|------|---------|
//! | `len` | u32 | bytes of `type` + `payload`; 1 ..= 64 MiB, checked before allocating |
//! | `crc` | u32 | CRC32C (Castagnoli) of `type` + `payload` |
//! | `type` | u8 | record type, below |
//! | `payload` | `len - 1` | per type |
//!
//! | type | name | payload |
//! |------|------|---------|
//! | 1 | segment header | magic `"STRLWAL\0"` (8), version u32 = 1, seq u64, first index u64 |
//! | 2 | entry | index u64, term u64, data (rest) |
//! | 3 | truncate | from u64: every entry with index >= from is removed |
//! | 4 | hard state | opaque bytes (rest); the last one wins |
//! | 5 | compact | index u64, term u64: a snapshot covering entries <= index was saved |
//!
//! The snapshot file is `[magic "STRLSNAP"][version u32][index u64][term u64][data_len u64]
//! [data][crc32c u32 of everything before it]`; its size must match `data_len` exactly and
//! `data_len` must be within [`StoreConfig::max_snapshot_bytes`].
//!
//! ## Recovery rules ([`LogStore::open`])
//!
//! 1. The snapshot file, if any, is read and verified; a damaged one is
//!    [`StoreError::CorruptSnapshot`] (it is only ever replaced by an atomic rename, so it is
//!    never torn). A leftover `snapshot.tmp` is deleted.
//! 2. Segment headers are read. If the **newest** segment has no valid header and no valid
//!    record after it, it was being created when the process died: it is deleted (its size
//!    counts as truncated tail bytes). A bad header on any other segment is
//!    [`StoreError::Corrupt`].
//! 3. Replay starts at the newest segment whose first index is at or before `snapshot.index + 1`;
//!    older segments hold only what the snapshot covers (left over from a compaction interrupted
//!    by a crash) and are deleted after a successful replay. From there, segment numbers must be
//!    consecutive and each header must continue the log where the previous segment left it.
//! 4. Records are applied in order: entries must be contiguous; truncate records cut the log;
//!    the last hard state wins; entries <= the snapshot index are dropped.
//! 5. In the **last** segment, a frame that is short, has an impossible length, or fails its
//!    checksum, *with no valid record anywhere after it*, is a torn tail: the file is truncated
//!    there (and fsynced), the bytes removed are reported in
//!    [`Recovered::truncated_tail_bytes`], and recovery succeeds. Such a tail can only hold
//!    records that were never synced (a write cut short leaves nothing valid behind it).
//! 6. Everywhere else — a bad frame followed by valid records (a bit flip or lost sector in
//!    acknowledged data), a bad frame in a sealed segment (they are fsynced before the next
//!    segment exists), a record with a valid checksum that makes no sense (unknown type, wrong
//!    length, non-contiguous index), a missing segment — recovery stops with
//!    [`StoreError::Corrupt`]` { segment, offset, .. }` instead of guessing, and modifies nothing.
//!
//! Damage to the *last* record of the last segment cannot be told apart from a torn write, so
//! it is cut; `truncated_tail_bytes` says how much. Conversely, an OS crash that persisted a
//! later page of an unsynced write but not an earlier one looks like damage followed by valid
//! records, and is reported as corruption rather than guessed at. Recovery never panics on
//! hostile files and never allocates more than one record (at most 64 MiB) or the configured
//! snapshot limit at a time. It does return **every live entry in memory** (what the Raft
//! machine holds between snapshots), so memory at startup is the size of the log since the last
//! snapshot: snapshot often enough to bound it.
//!
//! Under [`SyncMode::Always`], `open` fdatasyncs the last segment and fsyncs the directory
//! before returning, so what it reports is durable even if the previous process died before
//! syncing it (Raft treats a recovered log as persisted). If the snapshot is past the end of
//! the replayed log (the process died inside [`LogStore::save_snapshot`]), `open` starts a new
//! segment at the snapshot and deletes the covered ones, as `save_snapshot` would have.
//!
//! ## Durability
//!
//! - `append`, `truncate_suffix`, `set_hard_state` write to the active segment before returning
//!   (surviving a process crash), and are durable against power loss once the next
//!   [`LogStore::sync`] returns: it fdatasyncs the active segment, and fsyncs the directory when
//!   segment files were created or deleted since the last sync. Sealed segments were fdatasynced
//!   when sealed.
//! - A truncation is a record: once synced, truncated entries never reappear, even though their
//!   bytes may remain in older segments.
//! - [`LogStore::save_snapshot`] is durable when it returns: the snapshot is written to
//!   `snapshot.tmp`, fsynced, renamed over `snapshot`, and the directory fsynced. A snapshot at
//!   or past the end of the log discards all of it: a new segment starts at `index + 1`. Covered
//!   sealed segments are then deleted, after the surviving segments (which repeat the hard
//!   state) are synced; a crash before the deletions are durable may bring some back, and the
//!   next `open` deletes them again.
//! - Index `u64::MAX` is reserved ([`StoreError::IndexOutOfRange`]) so the index after the log
//!   always exists.
//! - After an I/O error in a write or a sync the store is [poisoned](StoreError::Poisoned): the
//!   caller must reopen (a failed fsync is never retried, as the kernel may have dropped the
//!   pages).
//! - [`SyncMode::Never`] skips every fsync: a process crash loses nothing, an OS crash or power
//!   loss may lose anything not yet written back. Tests and benchmarks only.
//! - One process owns a directory at a time; the store takes no lock.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod dir;
mod entry;
mod error;
mod record;
mod recovery;
mod snapshot;
mod store;
mod tail;

pub use config::{StoreConfig, SyncMode};
pub use entry::{EntryRecord, SnapshotRecord};
pub use error::StoreError;
pub use recovery::Recovered;
pub use store::{LogStore, StoreStats};

/// The largest entry data accepted by [`LogStore::append`] (the 64 MiB record limit minus the
/// record's type, index and term).
pub const MAX_ENTRY_BYTES: u64 = record::MAX_RECORD_BYTES as u64 - 1 - record::ENTRY_OVERHEAD;
