//! [`StoreError`]: everything that can go wrong opening or writing a [`LogStore`](crate::LogStore).

use std::fmt;
use std::io;
use std::path::PathBuf;

/// An error from the log store.
///
/// I/O and corruption errors name the file involved. After an I/O error during a write or a sync
/// the store is poisoned (see [`StoreError::Poisoned`]): the caller should drop it and reopen the
/// directory, which recovers whatever reached the disk.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// An operating-system call failed.
    Io {
        /// What the store was doing (`"open"`, `"write"`, `"fdatasync"`, …).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A record that cannot be a torn write is damaged: a bad record in a sealed (not last)
    /// segment, a checksummed record that makes no sense, or a missing segment. Recovery refuses
    /// to guess; the directory needs repair (or the node must be rebuilt from its peers).
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset of the bad record in that file.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The snapshot file is damaged or does not match the log (it was written atomically, so this
    /// is not a torn write). The directory needs repair.
    CorruptSnapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `append` was given an entry whose index does not follow the previous one.
    NonContiguous {
        /// The index the store expected next.
        expected: u64,
        /// The index it was given.
        got: u64,
    },
    /// `truncate_suffix` would remove entries already covered by the snapshot.
    BelowSnapshot {
        /// The requested truncation point.
        from: u64,
        /// The index covered by the current snapshot.
        snapshot_index: u64,
    },
    /// `save_snapshot` was given a snapshot older than the one already saved.
    StaleSnapshot {
        /// The index of the snapshot given.
        index: u64,
        /// The index of the snapshot already saved.
        current: u64,
    },
    /// An entry or snapshot index of `u64::MAX`, which is reserved so that the index after the
    /// log always exists; nothing was written.
    IndexOutOfRange {
        /// The index given.
        index: u64,
    },
    /// A record or snapshot exceeds the configured limit; nothing was written.
    TooLarge {
        /// Its size in bytes.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// An earlier write or sync failed, so what is on disk is unknown (a failed fsync must not be
    /// retried: the kernel may have dropped the dirty pages). Reopen the store.
    Poisoned,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { op, path, source } => {
                write!(f, "log store: {op} {} failed: {source}", path.display())
            }
            StoreError::Corrupt {
                segment,
                offset,
                reason,
            } => write!(
                f,
                "log store: corrupt segment {} at offset {offset}: {reason}; repair the directory \
                 or rebuild this node from its peers",
                segment.display()
            ),
            StoreError::CorruptSnapshot { path, reason } => write!(
                f,
                "log store: corrupt snapshot {}: {reason}; repair the directory or rebuild this \
                 node from its peers",
                path.display()
            ),
            StoreError::NonContiguous { expected, got } => write!(
                f,
                "log store: entry index {got} does not follow the log (expected {expected})"
            ),
            StoreError::BelowSnapshot {
                from,
                snapshot_index,
            } => write!(
                f,
                "log store: cannot truncate from {from}: entries up to {snapshot_index} are \
                 compacted into a snapshot"
            ),
            StoreError::StaleSnapshot { index, current } => write!(
                f,
                "log store: snapshot at {index} is older than the saved one at {current}"
            ),
            StoreError::IndexOutOfRange { index } => {
                write!(f, "log store: index {index} is out of range")
            }
            StoreError::TooLarge { len, max } => {
                write!(
                    f,
                    "log store: record of {len} bytes exceeds the limit of {max}"
                )
            }
            StoreError::Poisoned => write!(
                f,
                "log store: an earlier write or sync failed; reopen the store to recover"
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Builds a closure mapping an `io::Error` to [`StoreError::Io`] for `op` on `path`.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { op, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_path_and_offset() {
        let e = StoreError::Corrupt {
            segment: PathBuf::from("/x/wal-1.log"),
            offset: 42,
            reason: "checksum mismatch",
        };
        let s = e.to_string();
        assert!(s.contains("/x/wal-1.log") && s.contains("42") && s.contains("checksum"));
        let e = io_err("open", "/y/z")(io::Error::other("boom"));
        assert!(e.to_string().contains("/y/z"));
        assert!(std::error::Error::source(&e).is_some());
    }
}
