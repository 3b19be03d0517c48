//! Raft's persist batches on a [`LogStore`], and what the store recovers back into Raft's
//! terms.
//!
//! Entries are stored as [`durable::encode_entry`] bytes, the hard state as
//! [`durable::encode_hard_state`] bytes. A snapshot's bytes are its membership (`voters: u16`,
//! 32-byte ids, `learners: u16`, 32-byte ids) followed by the state machine's snapshot.

use std::path::Path;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use starling_core::id::PeerId;
use starling_core::raft::durable;
use starling_core::raft::{HardState, Membership, PersistBatch, RaftConfig, Recovered, Snapshot};
use starling_core::wire::Limits;
use starling_store::{EntryRecord, LogStore, SnapshotRecord, StoreConfig, StoreError};

/// Why storage failed.
#[derive(Debug)]
pub enum StorageError {
    /// The store refused or failed.
    Store(StoreError),
    /// Stored bytes do not decode.
    Corrupt(String),
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageError::Store(e) => write!(f, "store: {e}"),
            StorageError::Corrupt(what) => write!(f, "corrupt store: {what}"),
        }
    }
}

impl std::error::Error for StorageError {}

impl From<StoreError> for StorageError {
    fn from(e: StoreError) -> Self {
        StorageError::Store(e)
    }
}

/// A [`LogStore`] speaking Raft's types.
pub struct RaftStorage {
    store: LogStore,
    /// Term and vote last written: a batch that changes only the commit index needs no fsync.
    last_term_vote: (u64, Option<PeerId>),
}

/// What [`RaftStorage::open`] found: Raft's recovered state, and the state machine's snapshot
/// bytes (to rebuild the map from).
pub struct Opened {
    /// For [`starling_core::raft::Raft::restore`].
    pub recovered: Recovered<PeerId>,
    /// The application part of the snapshot, if any.
    pub snapshot_data: Option<Bytes>,
}

fn encode_snapshot(s: &Snapshot<PeerId>) -> Bytes {
    let m = &s.membership;
    let mut out =
        BytesMut::with_capacity(4 + 32 * (m.voters.len() + m.learners.len()) + s.data.len());
    for set in [&m.voters, &m.learners] {
        // MAX_MEMBERS (64) bounds both sets, so u16 is ample.
        out.put_u16_le(set.len() as u16);
        for p in set {
            out.put_slice(p.as_bytes());
        }
    }
    out.put_slice(&s.data);
    out.freeze()
}

fn decode_snapshot(record: SnapshotRecord) -> Result<Snapshot<PeerId>, StorageError> {
    let corrupt = || StorageError::Corrupt("snapshot membership".into());
    let mut buf = record.data;
    let mut membership = Membership::default();
    for set in [&mut membership.voters, &mut membership.learners] {
        if buf.remaining() < 2 {
            return Err(corrupt());
        }
        let n = usize::from(buf.get_u16_le());
        if buf.remaining() < n * 32 {
            return Err(corrupt());
        }
        for _ in 0..n {
            let mut id = [0u8; 32];
            buf.copy_to_slice(&mut id);
            set.insert(PeerId::from_bytes(id));
        }
    }
    Ok(Snapshot {
        index: record.index,
        term: record.term,
        membership,
        data: buf,
    })
}

impl RaftStorage {
    /// Opens (or creates) the store in `dir` and decodes what it holds.
    pub fn open(
        dir: &Path,
        config: StoreConfig,
        raft: &RaftConfig,
    ) -> Result<(RaftStorage, Opened), StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Corrupt(format!("cannot create {}: {e}", dir.display())))?;
        let (store, rec) = LogStore::open(dir, config)?;
        // Any command this server accepted fits in `max_command_len`.
        let limits = Limits {
            max_bytes_len: u32::try_from(raft.max_command_len).unwrap_or(u32::MAX),
            ..Limits::DEFAULT
        };
        let hard_state = match rec.hard_state {
            Some(b) => durable::decode_hard_state::<PeerId>(b)
                .map_err(|e| StorageError::Corrupt(format!("hard state: {e}")))?,
            None => HardState::default(),
        };
        let snapshot = rec.snapshot.map(decode_snapshot).transpose()?;
        let mut entries = Vec::with_capacity(rec.entries.len());
        for r in rec.entries {
            let e = durable::decode_entry::<PeerId>(r.data, &limits)
                .map_err(|e| StorageError::Corrupt(format!("entry {}: {e}", r.index)))?;
            if e.index != r.index || e.term != r.term {
                return Err(StorageError::Corrupt(format!(
                    "entry {} mislabelled",
                    r.index
                )));
            }
            entries.push(e);
        }
        let snapshot_data = snapshot.as_ref().map(|s| s.data.clone());
        let storage = RaftStorage {
            store,
            last_term_vote: (hard_state.term, hard_state.vote),
        };
        Ok((
            storage,
            Opened {
                recovered: Recovered {
                    hard_state,
                    snapshot,
                    entries,
                },
                snapshot_data,
            },
        ))
    }

    /// Writes one batch in the contract's order (snapshot, truncation, entries, hard state),
    /// without syncing. Returns whether it needs an fsync before being acknowledged: anything
    /// but a commit-index-only update does. (A lost commit index is harmless: Raft learns it
    /// again from the leader, and the machine never waits on it.)
    pub fn write(&mut self, batch: &PersistBatch<PeerId>) -> Result<bool, StorageError> {
        let mut needs_sync = false;
        if let Some(s) = &batch.snapshot {
            self.store.save_snapshot(&SnapshotRecord {
                index: s.index,
                term: s.term,
                data: encode_snapshot(s),
            })?;
            needs_sync = true;
        }
        if let Some(from) = batch.truncate_from {
            // A truncation merged with a later snapshot may point inside it; the snapshot
            // already dropped those entries.
            let from = from.max(self.store.snapshot_index() + 1);
            self.store.truncate_suffix(from)?;
            needs_sync = true;
        }
        if !batch.entries.is_empty() {
            let mut records = Vec::with_capacity(batch.entries.len());
            for e in &batch.entries {
                let mut data = BytesMut::with_capacity(durable::entry_encoded_len(e));
                durable::encode_entry(e, &mut data);
                records.push(EntryRecord {
                    index: e.index,
                    term: e.term,
                    data: data.freeze(),
                });
            }
            self.store.append(&records)?;
            needs_sync = true;
        }
        if let Some(hs) = &batch.hard_state {
            let mut data = BytesMut::with_capacity(durable::hard_state_encoded_len(hs));
            durable::encode_hard_state(hs, &mut data);
            self.store.set_hard_state(&data)?;
            if (hs.term, hs.vote) != self.last_term_vote {
                self.last_term_vote = (hs.term, hs.vote);
                needs_sync = true;
            }
        }
        Ok(needs_sync)
    }

    /// Makes everything written durable.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        Ok(self.store.sync()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_core::raft::{Entry, EntryKind};
    use starling_store::SyncMode;

    fn dir(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("starling-kv-storage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn entry(index: u64, term: u64) -> Entry<PeerId> {
        Entry {
            index,
            term,
            kind: EntryKind::Command(Bytes::from(format!("c{index}"))),
        }
    }

    #[test]
    fn batches_survive_reopening() {
        let d = dir("reopen");
        let config = StoreConfig {
            sync: SyncMode::Never,
            ..StoreConfig::default()
        };
        let raft = RaftConfig::default();
        let a = PeerId::from_bytes([1; 32]);
        let hs = HardState {
            term: 2,
            vote: Some(a),
            commit: 3,
        };
        {
            let (mut s, opened) = RaftStorage::open(&d, config.clone(), &raft).unwrap();
            assert!(opened.recovered.entries.is_empty());
            let batch = PersistBatch {
                id: 1,
                snapshot: None,
                truncate_from: None,
                entries: (1..=5).map(|i| entry(i, 1)).collect(),
                hard_state: Some(hs),
            };
            assert!(s.write(&batch).unwrap());
            let batch = PersistBatch {
                id: 2,
                snapshot: Some(Snapshot {
                    index: 2,
                    term: 1,
                    membership: Membership::new([a]),
                    data: Bytes::from_static(b"state"),
                }),
                truncate_from: Some(1),
                entries: vec![entry(3, 2)],
                hard_state: None,
            };
            assert!(s.write(&batch).unwrap());
            s.sync().unwrap();
        }
        let (_, opened) = RaftStorage::open(&d, config, &raft).unwrap();
        assert_eq!(opened.recovered.hard_state, hs);
        let snap = opened.recovered.snapshot.unwrap();
        assert_eq!((snap.index, snap.term), (2, 1));
        assert_eq!(snap.membership, Membership::new([a]));
        assert_eq!(opened.snapshot_data.as_deref(), Some(&b"state"[..]));
        assert_eq!(opened.recovered.entries, vec![entry(3, 2)]);
        let _ = std::fs::remove_dir_all(&d);
    }
}
