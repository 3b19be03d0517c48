//! A simulated disk: what survives a crash. A persist batch reaches it only when its write
//! completes (see [`Server`](super::server::Server)); a crash loses every write still in flight,
//! as a real crash loses what was not yet synced.

use starling_core::raft::{Entry, HardState, PersistBatch, Recovered, Snapshot};

use crate::NodeId;

#[derive(Clone, Debug, Default)]
pub(crate) struct Disk {
    hard: HardState<NodeId>,
    snapshot: Option<Snapshot<NodeId>>,
    entries: Vec<Entry<NodeId>>,
}

impl Disk {
    /// Applies one batch in the order the contract gives: snapshot, truncation, entries, hard
    /// state.
    pub fn write(&mut self, batch: &PersistBatch<NodeId>) {
        if let Some(s) = &batch.snapshot {
            self.entries.retain(|e| e.index > s.index);
            if self.entries.first().is_some_and(|e| e.index != s.index + 1) {
                self.entries.clear();
            }
            self.snapshot = Some(s.clone());
        }
        if let Some(from) = batch.truncate_from {
            self.entries.retain(|e| e.index < from);
        }
        self.entries.extend(batch.entries.iter().cloned());
        if let Some(h) = batch.hard_state {
            self.hard = h;
        }
    }

    pub fn recovered(&self) -> Recovered<NodeId> {
        Recovered {
            hard_state: self.hard,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
    }

    pub fn snapshot(&self) -> Option<&Snapshot<NodeId>> {
        self.snapshot.as_ref()
    }
}
