//! The opaque values the store keeps: [`EntryRecord`] and [`SnapshotRecord`].

use bytes::Bytes;

/// One log entry. The store never looks inside `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord {
    /// Position in the log (Raft indexes start at 1).
    pub index: u64,
    /// The term the entry was created in.
    pub term: u64,
    /// The encoded entry, opaque to the store.
    pub data: Bytes,
}

/// A snapshot of the state machine covering every entry up to and including `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// The last index the snapshot covers.
    pub index: u64,
    /// The term of the entry at `index`.
    pub term: u64,
    /// The encoded snapshot, opaque to the store.
    pub data: Bytes,
}
