//! Stable storage held in memory, for tests, simulators and benchmarks: it applies
//! [`PersistBatch`]es exactly as the driver contract orders them and hands back what a restart
//! would recover. A real server writes the same batches to disk (see `starling-store`).

use super::event::PersistBatch;
use super::machine::Recovered;
use super::message::{Entry, HardState, Snapshot};

/// What a server has made durable (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemStorage<P: Ord> {
    hard_state: HardState<P>,
    snapshot: Option<Snapshot<P>>,
    /// Contiguous entries after the snapshot.
    entries: Vec<Entry<P>>,
}

impl<P: Ord> Default for MemStorage<P> {
    fn default() -> Self {
        MemStorage {
            hard_state: HardState::default(),
            snapshot: None,
            entries: Vec::new(),
        }
    }
}

impl<P: Ord + Clone> MemStorage<P> {
    /// Writes one batch: snapshot, truncation, entries, hard state, in that order.
    pub fn write(&mut self, batch: PersistBatch<P>) {
        if let Some(s) = batch.snapshot {
            // Keep only a suffix that continues right after the snapshot.
            let keep_from = self.entries.partition_point(|e| e.index <= s.index);
            self.entries.drain(..keep_from);
            if self.entries.first().is_some_and(|e| e.index != s.index + 1) {
                self.entries.clear();
            }
            self.snapshot = Some(s);
        }
        if let Some(from) = batch.truncate_from {
            let keep = self.entries.partition_point(|e| e.index < from);
            self.entries.truncate(keep);
        }
        self.entries.extend(batch.entries);
        if let Some(h) = batch.hard_state {
            self.hard_state = h;
        }
    }

    /// What a server restarted from this storage gets.
    pub fn recovered(&self) -> Recovered<P> {
        Recovered {
            hard_state: self.hard_state.clone(),
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
    }

    /// The last hard state written.
    pub fn hard_state(&self) -> &HardState<P> {
        &self.hard_state
    }

    /// The last snapshot written.
    pub fn snapshot(&self) -> Option<&Snapshot<P>> {
        self.snapshot.as_ref()
    }

    /// The entries after the snapshot.
    pub fn entries(&self) -> &[Entry<P>] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::raft::{EntryKind, Membership};

    fn e(index: u64, term: u64) -> Entry<u32> {
        Entry {
            index,
            term,
            kind: EntryKind::Noop,
        }
    }

    fn batch(entries: Vec<Entry<u32>>) -> PersistBatch<u32> {
        PersistBatch {
            id: 1,
            snapshot: None,
            truncate_from: None,
            entries,
            hard_state: None,
        }
    }

    #[test]
    fn batches_apply_in_contract_order() {
        let mut s = MemStorage::default();
        s.write(batch(vec![e(1, 1), e(2, 1), e(3, 1)]));
        s.write(PersistBatch {
            truncate_from: Some(3),
            hard_state: Some(HardState {
                term: 2,
                vote: Some(7),
                commit: 2,
            }),
            ..batch(vec![e(3, 2)])
        });
        let terms: Vec<_> = s.entries().iter().map(|e| (e.index, e.term)).collect();
        assert_eq!(terms, [(1, 1), (2, 1), (3, 2)]);
        assert_eq!(s.hard_state().vote, Some(7));
        // A snapshot keeps the suffix after it; a truncation in the same batch cuts it.
        let snapshot = Snapshot {
            index: 2,
            term: 1,
            membership: Membership::new([1, 2, 3]),
            data: Bytes::from_static(b"state"),
        };
        s.write(PersistBatch {
            snapshot: Some(snapshot.clone()),
            ..batch(vec![])
        });
        assert_eq!(s.entries(), &[e(3, 2)]);
        s.write(PersistBatch {
            snapshot: Some(Snapshot {
                index: 5,
                ..snapshot
            }),
            truncate_from: Some(6),
            ..batch(vec![e(6, 3)])
        });
        assert_eq!(s.entries(), &[e(6, 3)]);
        assert_eq!(s.recovered().snapshot.map(|s| s.index), Some(5));
    }
}
