//! Log replication (§5.3), commitment (§5.4.2) and snapshots (§7), on both ends.

use bytes::Bytes;

use super::event::{RaftEvent, Role};
use super::log::AppendOutcome;
use super::machine::{Incoming, Raft, RaftPeer};
use super::membership::Membership;
use super::message::{ConflictHint, Entry, EntryKind, RaftMessage, Snapshot};
use super::progress::Mode;
use crate::time::Instant;

impl<P: RaftPeer> Raft<P> {
    /// Sends `to` what it is missing, as far as its mode and window allow.
    pub(crate) fn send_appends(&mut self, to: P) {
        let last = self.log.last_index();
        loop {
            let Some(pr) = self.progress.get(&to) else {
                return;
            };
            if pr.next_index <= self.log.snapshot_index() {
                return self.send_snapshot_chunk(to);
            }
            let room = match pr.mode {
                Mode::Snapshot { .. } => false,
                Mode::Probe => !pr.waiting,
                Mode::Replicate => {
                    pr.inflight.len() < self.config.max_inflight_appends && pr.next_index <= last
                }
            };
            if !room {
                return;
            }
            let prev_index = pr.next_index - 1;
            let Some(prev_term) = self.log.term(prev_index) else {
                return;
            };
            let entries = self.log.slice(
                pr.next_index,
                self.config.max_entries_per_append,
                self.config.max_bytes_per_append,
            );
            let sent_to = prev_index + entries.len() as u64;
            let pr = self.progress.get_mut(&to).expect("checked above");
            let probing = pr.mode == Mode::Probe;
            if probing {
                pr.waiting = true;
            } else {
                pr.inflight.push_back(sent_to);
                pr.next_index = sent_to + 1;
            }
            let msg = RaftMessage::Append {
                term: self.term,
                prev_index,
                prev_term,
                entries,
                commit: self.log.commit,
            };
            self.stats.appends_sent += 1;
            self.send_now(to, msg);
            if probing {
                return;
            }
        }
    }

    fn send_snapshot_chunk(&mut self, to: P) {
        let Some(snapshot) = &self.snapshot else {
            return;
        };
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        let offset = match pr.mode {
            Mode::Snapshot { index, offset } if index == snapshot.index => {
                if pr.waiting {
                    return;
                }
                offset
            }
            _ => 0,
        };
        pr.mode = Mode::Snapshot {
            index: snapshot.index,
            offset,
        };
        pr.inflight.clear();
        pr.waiting = true;
        let total = snapshot.data.len() as u64;
        let start = offset.min(total) as usize;
        let end = (start + self.config.snapshot_chunk_len).min(snapshot.data.len());
        let msg = RaftMessage::Snapshot {
            term: self.term,
            index: snapshot.index,
            snapshot_term: snapshot.term,
            membership: snapshot.membership.clone(),
            total_len: total,
            offset: start as u64,
            data: snapshot.data.slice(start..end),
        };
        self.stats.snapshot_chunks_sent += 1;
        self.send_now(to, msg);
    }

    /// Every heartbeat interval: assert leadership, retry lost probes and chunks, and fall back
    /// to probing where a pipeline stopped moving (its appends or their answers were lost).
    pub(crate) fn heartbeat_tick(&mut self) {
        let peers: Vec<P> = self.progress.keys().copied().collect();
        for p in &peers {
            let pr = self.progress.get_mut(p).expect("listed");
            let stalled = !pr.acked_since_tick;
            pr.acked_since_tick = false;
            match pr.mode {
                Mode::Probe | Mode::Snapshot { .. } => pr.waiting = false,
                Mode::Replicate if stalled && !pr.inflight.is_empty() => {
                    let next = pr.match_index + 1;
                    pr.probe(next);
                }
                Mode::Replicate => {}
            }
        }
        self.broadcast_heartbeats();
        for p in peers {
            self.send_appends(p);
        }
    }

    pub(crate) fn broadcast_heartbeats(&mut self) {
        let peers: Vec<(P, u64)> = self
            .progress
            .iter()
            .map(|(p, pr)| (*p, pr.match_index))
            .collect();
        for (p, matched) in peers {
            let msg = RaftMessage::Heartbeat {
                term: self.term,
                commit: self.log.commit.min(matched),
                read_seq: self.read_seq,
            };
            self.send_now(p, msg);
        }
    }

    /// Advances the commit index to the highest entry of this term stored on a majority.
    pub(crate) fn maybe_commit(&mut self, now: Instant) {
        let (id, persisted) = (self.id, self.log.persisted);
        let progress = &self.progress;
        let quorum = self.membership.quorum_value(|p| {
            if *p == id {
                persisted
            } else {
                progress.get(p).map_or(0, |pr| pr.match_index)
            }
        });
        // Only entries of the current term are committed by counting (§5.4.2).
        if quorum > self.log.commit && self.log.term(quorum) == Some(self.term) {
            self.set_commit(quorum);
            self.replicate_pending = true;
            self.on_commit_advanced(now);
        }
    }

    fn on_commit_advanced(&mut self, now: Instant) {
        self.start_waiting_reads();
        // A leader removed from the voters leads until that change commits, then steps down
        // (thesis §4.2.2).
        if !self.membership.is_voter(&self.id) && self.membership_index <= self.log.commit {
            self.become_follower(now, self.term, None);
        }
    }

    pub(crate) fn on_append_response(
        &mut self,
        now: Instant,
        from: P,
        success: bool,
        match_index: u64,
        hint: Option<ConflictHint>,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        if success {
            if match_index > last {
                return; // claims entries we never sent
            }
            if pr.matched(match_index) {
                self.maybe_commit(now);
                self.maybe_send_timeout_now();
            }
        } else {
            // `match_index` carries the rejected probe's prev_index.
            if match_index <= pr.match_index {
                return; // stale: the logs were found to meet past it since
            }
            let next = match hint {
                Some(h) if h.term > 0 => self
                    .log
                    .last_index_of_term(h.term)
                    .map_or(h.index, |i| i + 1),
                Some(h) => h.index,
                None => match_index,
            };
            pr.probe(next.min(match_index).min(last + 1));
        }
        self.send_appends(from);
    }

    pub(crate) fn maybe_send_timeout_now(&mut self) {
        let Some((to, deadline, false)) = self.transfer else {
            return;
        };
        if self
            .progress
            .get(&to)
            .is_some_and(|pr| pr.match_index == self.log.last_index())
        {
            self.transfer = Some((to, deadline, true));
            self.send_now(to, RaftMessage::TimeoutNow { term: self.term });
        }
    }

    /// Contact from the current leader.
    fn heard_from_leader(&mut self, now: Instant, from: P) {
        if self.role != Role::Follower || self.leader != Some(from) {
            self.role = Role::Follower;
            self.leader = Some(from);
            self.votes.clear();
        }
        self.leader_contact = Some(now);
        self.reset_election_timer(now);
    }

    pub(crate) fn on_append(
        &mut self,
        now: Instant,
        from: P,
        prev_index: u64,
        prev_term: u64,
        mut entries: Vec<Entry<P>>,
        commit: u64,
    ) {
        if self.role == Role::Leader {
            return; // two leaders in one term cannot happen; ignore rather than corrupt
        }
        self.heard_from_leader(now, from);
        // The entries must continue from prev, and terms never go down along a log.
        // (Checked: a hostile `prev_index` near u64::MAX must not overflow.)
        let well_formed = entries.iter().enumerate().all(|(i, e)| {
            prev_index.checked_add(1 + i as u64) == Some(e.index)
                && e.term <= self.term
                && e.term
                    >= if i == 0 {
                        prev_term
                    } else {
                        entries[i - 1].term
                    }
        });
        if !well_formed {
            return;
        }
        let (mut prev_index, mut prev_term) = (prev_index, prev_term);
        let snapshot_index = self.log.snapshot_index();
        if prev_index < snapshot_index {
            // The part inside our snapshot is committed and so matches; keep the rest.
            let skip = (snapshot_index - prev_index) as usize;
            if skip >= entries.len() {
                return self.answer_append(from, true, snapshot_index, None);
            }
            entries.drain(..skip);
            prev_index = snapshot_index;
            prev_term = self.log.snapshot_term();
        }
        let config_touched = entries
            .iter()
            .any(|e| matches!(e.kind, EntryKind::Config { .. }))
            || self.membership_index > prev_index;
        match self.log.try_append(prev_index, prev_term, &entries) {
            AppendOutcome::Matched(matched) => {
                if config_touched {
                    self.recompute_membership();
                }
                self.set_commit(commit.min(matched));
                self.answer_append(from, true, matched, None);
            }
            AppendOutcome::Conflict { index, term } => {
                self.answer_append(from, false, prev_index, Some(ConflictHint { index, term }));
            }
            AppendOutcome::Stale => self.answer_append(from, true, snapshot_index, None),
        }
    }

    fn answer_append(
        &mut self,
        to: P,
        success: bool,
        match_index: u64,
        hint: Option<ConflictHint>,
    ) {
        let msg = RaftMessage::AppendResponse {
            term: self.term,
            success,
            match_index,
            hint,
        };
        self.send_gated(to, msg);
    }

    pub(crate) fn on_heartbeat(&mut self, now: Instant, from: P, commit: u64, read_seq: u64) {
        if self.role == Role::Leader {
            return;
        }
        self.heard_from_leader(now, from);
        // The leader sends at most what we are known to match, so it is in our log.
        self.set_commit(commit.min(self.log.last_index()));
        let msg = RaftMessage::HeartbeatResponse {
            term: self.term,
            read_seq,
        };
        self.send_gated(from, msg);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_snapshot_chunk(
        &mut self,
        now: Instant,
        from: P,
        index: u64,
        term: u64,
        membership: Membership<P>,
        total_len: u64,
        offset: u64,
        data: Bytes,
    ) {
        if self.role == Role::Leader {
            return;
        }
        self.heard_from_leader(now, from);
        if index <= self.log.commit {
            // Already have it all; say where we are so the leader resumes from there.
            let at = self.log.commit;
            return self.answer_append(from, true, at, None);
        }
        if total_len > self.config.max_snapshot_len || index == u64::MAX {
            // (No log reaches index u64::MAX: such a snapshot is a peer's fabrication, and the
            // log after it would start past the end of the index space.)
            return;
        }
        let fresh = self
            .incoming
            .as_ref()
            .is_none_or(|i| (i.index, i.term, i.total_len) != (index, term, total_len));
        if fresh {
            if offset != 0 {
                // A transfer we know nothing of (we restarted mid-way, or its start was lost):
                // ask for it from the beginning.
                let msg = RaftMessage::SnapshotResponse {
                    term: self.term,
                    index,
                    received: 0,
                };
                return self.send_gated(from, msg);
            }
            self.incoming = Some(Incoming {
                index,
                term,
                membership,
                total_len,
                data: Vec::new(),
            });
        }
        let incoming = self.incoming.as_mut().expect("set above");
        let have = incoming.data.len() as u64;
        if offset == have && have + data.len() as u64 <= total_len {
            incoming.data.extend_from_slice(&data);
        }
        let received = incoming.data.len() as u64;
        if received < total_len {
            let msg = RaftMessage::SnapshotResponse {
                term: self.term,
                index,
                received,
            };
            return self.send_gated(from, msg);
        }
        let done = self.incoming.take().expect("set above");
        self.install_snapshot(Snapshot {
            index: done.index,
            term: done.term,
            membership: done.membership,
            data: Bytes::from(done.data),
        });
        self.answer_append(from, true, index, None);
    }

    fn install_snapshot(&mut self, snapshot: Snapshot<P>) {
        self.log.compact(snapshot.index, snapshot.term);
        self.snapshot_membership = snapshot.membership.clone();
        self.recompute_membership();
        self.commit_dirty = true;
        self.snapshot = Some(snapshot.clone());
        self.snapshot_to_persist = Some(snapshot.clone());
        self.emit(RaftEvent::InstallSnapshot(snapshot));
    }

    pub(crate) fn on_snapshot_response(&mut self, from: P, index: u64, received: u64) {
        if self.role != Role::Leader {
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.acked_since_tick = true;
        if let Mode::Snapshot {
            index: sending,
            offset,
        } = pr.mode
        {
            // Behind our offset means the follower lost what it had (it restarted): resume
            // from what it holds.
            if sending == index && received != offset {
                pr.mode = Mode::Snapshot {
                    index,
                    offset: received,
                };
                pr.waiting = false;
                self.send_appends(from);
            }
        }
    }
}
