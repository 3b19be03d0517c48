//! The snapshot file: written to a temporary name, fsynced, renamed over `snapshot`, and the
//! directory fsynced, so the file on disk is always either the old snapshot or the new one.
//!
//! Layout: `[magic "STRLSNAP"][version u32][index u64][term u64][data_len u64][data]
//! [crc32c u32 over everything before it]`, integers little-endian.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::dir::sync_dir;
use crate::error::{io_err, StoreError};
use crate::record::{u32_at, u64_at};
use crate::SnapshotRecord;

/// File name of the current snapshot.
pub(crate) const SNAPSHOT_FILE: &str = "snapshot";
/// File name a new snapshot is written under before the rename.
pub(crate) const SNAPSHOT_TMP: &str = "snapshot.tmp";

const MAGIC: [u8; 8] = *b"STRLSNAP";
const VERSION: u32 = 1;
const HEADER: u64 = 8 + 4 + 8 + 8 + 8;
const TRAILER: u64 = 4;

/// Writes `snap` durably as the directory's snapshot (temp file, fsync, rename, directory fsync).
/// When `sync` is false the fsyncs are skipped (for [`SyncMode::Never`](crate::SyncMode::Never)).
pub(crate) fn write_snapshot(
    dir: &Path,
    snap: &SnapshotRecord,
    sync: bool,
) -> Result<(), StoreError> {
    let tmp = dir.join(SNAPSHOT_TMP);
    let path = dir.join(SNAPSHOT_FILE);
    let mut header = Vec::with_capacity(HEADER as usize);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&snap.index.to_le_bytes());
    header.extend_from_slice(&snap.term.to_le_bytes());
    header.extend_from_slice(&(snap.data.len() as u64).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header), &snap.data);

    let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
    file.write_all(&header)
        .and_then(|()| file.write_all(&snap.data))
        .and_then(|()| file.write_all(&crc.to_le_bytes()))
        .map_err(io_err("write", &tmp))?;
    if sync {
        file.sync_all().map_err(io_err("fsync", &tmp))?;
    }
    drop(file);
    fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

fn corrupt(path: &Path, reason: &'static str) -> StoreError {
    StoreError::CorruptSnapshot {
        path: path.to_path_buf(),
        reason,
    }
}

/// Reads the directory's snapshot, if there is one. Allocates at most `max_bytes` for its data.
pub(crate) fn read_snapshot(
    dir: &Path,
    max_bytes: u64,
) -> Result<Option<SnapshotRecord>, StoreError> {
    let path: PathBuf = dir.join(SNAPSHOT_FILE);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", &path)(e)),
    };
    let len = file.metadata().map_err(io_err("stat", &path))?.len();
    if len < HEADER + TRAILER {
        return Err(corrupt(&path, "shorter than its header"));
    }
    let mut header = [0u8; HEADER as usize];
    file.read_exact(&mut header)
        .map_err(io_err("read", &path))?;
    if header[0..8] != MAGIC {
        return Err(corrupt(&path, "bad magic"));
    }
    if u32_at(&header, 8) != Some(VERSION) {
        return Err(corrupt(&path, "unsupported version"));
    }
    let (Some(index), Some(term), Some(data_len)) = (
        u64_at(&header, 12),
        u64_at(&header, 20),
        u64_at(&header, 28),
    ) else {
        return Err(corrupt(&path, "shorter than its header"));
    };
    if index == u64::MAX {
        // The log after the snapshot must be able to name its next index.
        return Err(corrupt(&path, "index out of range"));
    }
    if data_len > max_bytes {
        return Err(corrupt(&path, "larger than max_snapshot_bytes"));
    }
    if data_len.checked_add(HEADER + TRAILER) != Some(len) {
        return Err(corrupt(&path, "length does not match the file size"));
    }
    let Ok(data_len) = usize::try_from(data_len) else {
        return Err(corrupt(&path, "larger than this platform can hold"));
    };
    let mut data = vec![0u8; data_len];
    file.read_exact(&mut data).map_err(io_err("read", &path))?;
    let mut crc = [0u8; 4];
    file.read_exact(&mut crc).map_err(io_err("read", &path))?;
    if crc32c::crc32c_append(crc32c::crc32c(&header), &data) != u32::from_le_bytes(crc) {
        return Err(corrupt(&path, "checksum mismatch"));
    }
    Ok(Some(SnapshotRecord {
        index,
        term,
        data: Bytes::from(data),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dir::tests::TempDir;

    #[test]
    fn round_trip_and_corruption() {
        let dir = TempDir::new("snapshot");
        assert_eq!(read_snapshot(dir.path(), 1 << 20).unwrap(), None);
        let snap = SnapshotRecord {
            index: 9,
            term: 2,
            data: Bytes::from_static(b"state machine"),
        };
        write_snapshot(dir.path(), &snap, true).unwrap();
        assert_eq!(read_snapshot(dir.path(), 1 << 20).unwrap(), Some(snap));
        assert!(!dir.path().join(SNAPSHOT_TMP).exists());
        assert!(matches!(
            read_snapshot(dir.path(), 4),
            Err(StoreError::CorruptSnapshot { .. })
        ));

        let path = dir.path().join(SNAPSHOT_FILE);
        let good = fs::read(&path).unwrap();
        for at in [0, 13, 30, HEADER as usize + 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            fs::write(&path, &bad).unwrap();
            assert!(
                matches!(
                    read_snapshot(dir.path(), 1 << 20),
                    Err(StoreError::CorruptSnapshot { .. })
                ),
                "flip at {at}"
            );
        }
        fs::write(&path, &good[..good.len() - 3]).unwrap();
        assert!(read_snapshot(dir.path(), 1 << 20).is_err());
    }
}
