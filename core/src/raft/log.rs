//! The in-memory log: entries after the latest snapshot, what is durable, what is committed and
//! what has been applied.
//!
//! Indexes: `snapshot_index < persisted ≤ last_index` does not hold in general; the invariants are
//! `applied ≤ commit`, `applied ≤ persisted ≤ last_index`, `snapshot_index ≤ applied` once the
//! snapshot is installed, and entries are contiguous from `snapshot_index + 1`.
//!
//! Durability is tracked by (index, term): when the driver acknowledges a persist batch that
//! ended at (i, t), everything up to `i` is durable if the log still holds term `t` at `i`. By the
//! Log Matching Property (§5.3) equal terms at equal indexes mean equal prefixes, so a batch
//! acknowledged after a later truncation cannot vouch for entries it never wrote.

use std::collections::VecDeque;

use super::message::Entry;

#[derive(Clone, Debug)]
pub(crate) struct RaftLog<P: Ord> {
    snapshot_index: u64,
    snapshot_term: u64,
    entries: VecDeque<Entry<P>>,
    /// Last index known durable.
    pub persisted: u64,
    /// First index not yet handed to a persist batch.
    pub unstable_from: u64,
    /// Truncation not yet handed to a persist batch: entries from here were dropped.
    pub pending_truncate: Option<u64>,
    pub commit: u64,
    pub applied: u64,
}

/// Why an `Append` did not match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AppendOutcome {
    /// The entries match up to this index.
    Matched(u64),
    /// `prev` did not match; the hint's index and term.
    Conflict { index: u64, term: u64 },
    /// `prev` lies inside the compacted prefix: everything there is committed, so it matches;
    /// the caller answers with what it has.
    Stale,
}

impl<P: Clone + Ord> RaftLog<P> {
    pub fn new(snapshot_index: u64, snapshot_term: u64) -> Self {
        RaftLog {
            snapshot_index,
            snapshot_term,
            entries: VecDeque::new(),
            persisted: snapshot_index,
            unstable_from: snapshot_index + 1,
            pending_truncate: None,
            commit: snapshot_index,
            applied: snapshot_index,
        }
    }

    /// A log recovered from storage: all of it durable.
    pub fn restored(snapshot_index: u64, snapshot_term: u64, entries: Vec<Entry<P>>) -> Self {
        let mut log = RaftLog::new(snapshot_index, snapshot_term);
        for (next, e) in (snapshot_index + 1..).zip(entries) {
            if e.index != next {
                break; // a gap: the store handed back something we did not write; keep the prefix
            }
            log.entries.push_back(e);
        }
        log.persisted = log.last_index();
        log.unstable_from = log.last_index() + 1;
        log
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    pub fn snapshot_term(&self) -> u64 {
        self.snapshot_term
    }

    pub fn first_index(&self) -> u64 {
        self.snapshot_index + 1
    }

    pub fn last_index(&self) -> u64 {
        self.snapshot_index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> u64 {
        self.entries.back().map_or(self.snapshot_term, |e| e.term)
    }

    /// Term of the entry at `index`, if known (the snapshot's last entry included).
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub fn entry(&self, index: u64) -> Option<&Entry<P>> {
        let offset = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Whether a candidate's log ending at (`index`, `term`) is at least as up to date as ours
    /// (§5.4.1).
    pub fn is_up_to_date(&self, index: u64, term: u64) -> bool {
        (term, index) >= (self.last_term(), self.last_index())
    }

    /// Entries from `from`, at most `max_count` and about `max_bytes` (at least one).
    pub fn slice(&self, from: u64, max_count: usize, max_bytes: usize) -> Vec<Entry<P>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut index = from;
        while let Some(e) = self.entry(index) {
            bytes += e.weight();
            if out.len() >= max_count || (!out.is_empty() && bytes > max_bytes) {
                break;
            }
            out.push(e.clone());
            index += 1;
        }
        out
    }

    /// Appends one entry at the end (a leader's own proposal).
    pub fn push(&mut self, entry: Entry<P>) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.entries.push_back(entry);
    }

    /// A follower's AppendEntries consistency check and append (§5.3): entries already present
    /// with the same term are kept (a duplicate or reordered message must not truncate), the
    /// first conflicting entry and all after it are dropped, and the rest appended.
    pub fn try_append(
        &mut self,
        prev_index: u64,
        prev_term: u64,
        entries: &[Entry<P>],
    ) -> AppendOutcome {
        if prev_index < self.snapshot_index {
            return AppendOutcome::Stale;
        }
        match self.term(prev_index) {
            None => {
                return AppendOutcome::Conflict {
                    index: self.last_index() + 1,
                    term: 0,
                }
            }
            Some(t) if t != prev_term => {
                let mut first = prev_index;
                while first > self.first_index() && self.term(first - 1) == Some(t) {
                    first -= 1;
                }
                return AppendOutcome::Conflict {
                    index: first,
                    term: t,
                };
            }
            Some(_) => {}
        }
        for entry in entries {
            match self.term(entry.index) {
                Some(t) if t == entry.term => continue,
                Some(_) => {
                    if entry.index <= self.commit {
                        // A leader never contradicts a committed entry (Leader Completeness);
                        // refuse rather than lose it.
                        return AppendOutcome::Conflict {
                            index: self.commit + 1,
                            term: 0,
                        };
                    }
                    self.truncate_from(entry.index);
                    self.entries.push_back(entry.clone());
                }
                None => self.entries.push_back(entry.clone()),
            }
        }
        AppendOutcome::Matched(prev_index + entries.len() as u64)
    }

    /// Drops entries from `index` on.
    fn truncate_from(&mut self, index: u64) {
        let keep = (index - self.first_index()) as usize;
        self.entries.truncate(keep);
        self.persisted = self.persisted.min(index - 1);
        if index < self.unstable_from {
            self.unstable_from = index;
            self.pending_truncate = Some(self.pending_truncate.map_or(index, |t| t.min(index)));
        }
    }

    /// The entries to hand to the next persist batch, and the truncation before them.
    pub fn take_unstable(&mut self) -> (Option<u64>, Vec<Entry<P>>) {
        let truncate = self.pending_truncate.take();
        let entries: Vec<Entry<P>> = (self.unstable_from..=self.last_index())
            .filter_map(|i| self.entry(i).cloned())
            .collect();
        self.unstable_from = self.last_index() + 1;
        (truncate, entries)
    }

    pub fn has_unstable(&self) -> bool {
        self.pending_truncate.is_some() || self.unstable_from <= self.last_index()
    }

    /// A persist batch that ended at (`index`, `term`) is durable.
    pub fn persisted_to(&mut self, index: u64, term: u64) {
        if index > self.persisted && self.term(index) == Some(term) {
            self.persisted = index.min(
                self.unstable_from
                    .saturating_sub(1)
                    .max(self.snapshot_index),
            );
        }
    }

    /// Discards entries up to `index` (now covered by a snapshot of term `term`).
    pub fn compact(&mut self, index: u64, term: u64) {
        if index <= self.snapshot_index {
            return;
        }
        if index >= self.last_index() || self.term(index) != Some(term) {
            // The snapshot is ahead of (or disagrees with) our log: it replaces all of it, on
            // disk too — stored entries past it may be of a stale term, so they are cut.
            self.entries.clear();
            self.unstable_from = index + 1;
            self.pending_truncate = Some(index + 1);
            self.persisted = index;
        } else {
            let drop = (index - self.snapshot_index) as usize;
            self.entries.drain(..drop);
            self.unstable_from = self.unstable_from.max(index + 1);
            self.persisted = self.persisted.max(index);
        }
        self.snapshot_index = index;
        self.snapshot_term = term;
        self.commit = self.commit.max(index);
        self.applied = self.applied.max(index);
    }

    /// Entries ready to apply: committed, durable here, not yet applied.
    pub fn take_applicable(&mut self, max: usize) -> Vec<Entry<P>> {
        let upto = self.commit.min(self.persisted);
        let mut out = Vec::new();
        while self.applied < upto && out.len() < max {
            match self.entry(self.applied + 1) {
                Some(e) => out.push(e.clone()),
                None => break,
            }
            self.applied += 1;
        }
        out
    }

    /// The last index of `term` in the log, if the log holds any entry of that term.
    pub fn last_index_of_term(&self, term: u64) -> Option<u64> {
        if self.last_term() < term {
            return None;
        }
        let mut i = self.last_index();
        while i > self.snapshot_index {
            match self.term(i) {
                Some(t) if t == term => return Some(i),
                Some(t) if t < term => return None,
                _ => i -= 1,
            }
        }
        None
    }

    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &Entry<P>> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::message::EntryKind;

    fn e(index: u64, term: u64) -> Entry<u32> {
        Entry {
            index,
            term,
            kind: EntryKind::Noop,
        }
    }

    #[test]
    fn duplicate_and_stale_appends_never_truncate() {
        let mut log = RaftLog::new(0, 0);
        assert_eq!(
            log.try_append(0, 0, &[e(1, 1), e(2, 1), e(3, 1)]),
            AppendOutcome::Matched(3)
        );
        // A reordered, shorter copy of an earlier append.
        assert_eq!(log.try_append(0, 0, &[e(1, 1)]), AppendOutcome::Matched(1));
        assert_eq!(log.last_index(), 3);
    }

    #[test]
    fn conflicts_truncate_and_hint_the_first_index_of_the_term() {
        let mut log = RaftLog::new(0, 0);
        log.try_append(0, 0, &[e(1, 1), e(2, 2), e(3, 2), e(4, 2)]);
        assert_eq!(
            log.try_append(4, 3, &[]),
            AppendOutcome::Conflict { index: 2, term: 2 }
        );
        assert_eq!(
            log.try_append(9, 3, &[]),
            AppendOutcome::Conflict { index: 5, term: 0 }
        );
        assert_eq!(log.try_append(1, 1, &[e(2, 3)]), AppendOutcome::Matched(2));
        assert_eq!(log.last_index(), 2);
        assert_eq!(log.term(2), Some(3));
        let (truncate, entries) = log.take_unstable();
        assert_eq!(truncate, None, "nothing had been handed out yet");
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn durability_follows_terms_across_truncation() {
        let mut log = RaftLog::new(0, 0);
        log.try_append(0, 0, &[e(1, 1), e(2, 1), e(3, 1)]);
        let _ = log.take_unstable();
        log.try_append(1, 1, &[e(2, 2)]);
        let (truncate, entries) = log.take_unstable();
        assert_eq!(truncate, Some(2));
        assert_eq!(entries, vec![e(2, 2)]);
        log.persisted_to(3, 1); // the first batch: index 3 is gone
        assert_eq!(log.persisted, 0);
        log.persisted_to(2, 2);
        assert_eq!(log.persisted, 2);
    }

    #[test]
    fn compaction_keeps_the_suffix_or_replaces_the_log() {
        let mut log = RaftLog::new(0, 0);
        log.try_append(0, 0, &[e(1, 1), e(2, 1), e(3, 2)]);
        log.compact(2, 1);
        assert_eq!((log.first_index(), log.last_index()), (3, 3));
        assert_eq!(log.term(2), Some(1));
        log.compact(10, 4);
        assert_eq!((log.last_index(), log.last_term()), (10, 4));
    }

    #[test]
    fn a_snapshot_that_disagrees_with_the_log_cuts_it_on_disk_too() {
        let mut log = RaftLog::new(0, 0);
        log.try_append(0, 0, &[e(1, 1), e(2, 1), e(3, 1)]);
        let _ = log.take_unstable();
        // A leader's snapshot at 2 of term 2: our entries 2 and 3 (term 1) are stale, and the
        // disk must drop 3 as well, or a restart would bring it back.
        log.compact(2, 2);
        let (truncate, entries) = log.take_unstable();
        assert_eq!(truncate, Some(3));
        assert!(entries.is_empty());
        assert_eq!((log.last_index(), log.last_term()), (2, 2));
    }
}
