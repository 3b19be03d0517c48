//! [`StoreConfig`] and [`SyncMode`].

/// When [`LogStore::sync`](crate::LogStore::sync) reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// `sync()` calls `fdatasync` on the segments written since the last sync (and `fsync` on the
    /// directory when files were created or removed), and segment roll-over syncs the sealed
    /// segment. The only mode that survives power loss.
    #[default]
    Always,
    /// `sync()` only hands the bytes to the kernel. Survives a process crash, not an OS crash or
    /// power loss. For tests and benchmarks only.
    Never,
}

/// Tuning for a [`LogStore`](crate::LogStore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// A segment that has grown past this many bytes is sealed and a new one started before the
    /// next record. Default 64 MiB.
    pub segment_bytes: u64,
    /// Whether `sync()` calls fsync. Default [`SyncMode::Always`].
    pub sync: SyncMode,
    /// The largest snapshot accepted by `save_snapshot` and read back by `open`; checked before
    /// allocating. Default 1 GiB.
    pub max_snapshot_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            segment_bytes: 64 << 20,
            sync: SyncMode::Always,
            max_snapshot_bytes: 1 << 30,
        }
    }
}
