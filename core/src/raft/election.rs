//! Timers, terms and elections (§5.2, with pre-vote and check-quorum from thesis §9.6 and §6.2,
//! and leadership transfer from §3.10).

use rand::Rng;

use super::event::{RaftEvent, Role};
use super::machine::{Raft, RaftPeer};
use super::message::{EntryKind, RaftMessage};
use super::progress::Progress;
use crate::time::{Duration, Instant};

impl<P: RaftPeer> Raft<P> {
    /// Whether `msg` is within this server's configured sizes. The wire decoder bounds only
    /// what any Raft group could send (the generic wire limits); these bounds are per group,
    /// and a leader with the same configuration stays within them.
    fn fits_config(&self, msg: &RaftMessage<P>) -> bool {
        match msg {
            RaftMessage::Append { entries, .. } => {
                entries.len() <= self.config.max_entries_per_append
                    && entries.iter().all(|e| match &e.kind {
                        EntryKind::Command(data) => data.len() <= self.config.max_command_len,
                        _ => true,
                    })
            }
            RaftMessage::Snapshot { data, .. } => data.len() <= self.config.snapshot_chunk_len,
            _ => true,
        }
    }

    /// Dispatches one message.
    pub(crate) fn step(&mut self, now: Instant, from: P, msg: RaftMessage<P>) {
        if !self.fits_config(&msg) {
            // Before anything else, a term included: a message we refuse changes nothing here.
            self.stats.oversized_dropped += 1;
            return;
        }
        let term = msg.term();
        if let RaftMessage::Vote { pre, transfer, .. } = msg {
            if term > self.term && !transfer && self.in_lease(now) {
                // Check-quorum's other half: a follower that hears from a live leader, and the
                // leader itself, ignore a server that is campaigning anyway (thesis §4.2.3).
                return;
            }
            if pre {
                return self.on_pre_vote(from, msg);
            }
        }
        let pre_vote_grant = matches!(
            msg,
            RaftMessage::VoteResponse {
                pre: true,
                granted: true,
                ..
            }
        );
        if term > self.term && !pre_vote_grant {
            let leader = match msg {
                RaftMessage::Append { .. }
                | RaftMessage::Heartbeat { .. }
                | RaftMessage::Snapshot { .. }
                | RaftMessage::TimeoutNow { .. } => Some(from),
                _ => None,
            };
            self.become_follower(now, term, leader);
        } else if term < self.term {
            if matches!(
                msg,
                RaftMessage::Append { .. }
                    | RaftMessage::Heartbeat { .. }
                    | RaftMessage::Snapshot { .. }
            ) {
                // A deposed leader: tell it the term so it steps down.
                let reply = RaftMessage::AppendResponse {
                    term: self.term,
                    success: false,
                    match_index: 0,
                    hint: None,
                };
                self.send_gated(from, reply);
            } else if let RaftMessage::Vote { .. } = msg {
                let reply = RaftMessage::VoteResponse {
                    term: self.term,
                    pre: false,
                    granted: false,
                };
                self.send_gated(from, reply);
            }
            return;
        }
        match msg {
            RaftMessage::Vote {
                last_index,
                last_term,
                ..
            } => self.on_vote(now, from, last_index, last_term),
            RaftMessage::VoteResponse { pre, granted, .. } => {
                self.on_vote_response(now, from, pre, granted)
            }
            RaftMessage::Append {
                prev_index,
                prev_term,
                entries,
                commit,
                ..
            } => self.on_append(now, from, prev_index, prev_term, entries, commit),
            RaftMessage::AppendResponse {
                success,
                match_index,
                hint,
                ..
            } => self.on_append_response(now, from, success, match_index, hint),
            RaftMessage::Heartbeat {
                commit, read_seq, ..
            } => self.on_heartbeat(now, from, commit, read_seq),
            RaftMessage::HeartbeatResponse { read_seq, .. } => {
                self.on_heartbeat_response(now, from, read_seq)
            }
            RaftMessage::Snapshot {
                index,
                snapshot_term,
                membership,
                total_len,
                offset,
                data,
                ..
            } => self.on_snapshot_chunk(
                now,
                from,
                index,
                snapshot_term,
                membership,
                total_len,
                offset,
                data,
            ),
            RaftMessage::SnapshotResponse {
                index, received, ..
            } => self.on_snapshot_response(from, index, received),
            RaftMessage::TimeoutNow { .. } => {
                if self.role != Role::Leader && self.membership.is_voter(&self.id) {
                    self.campaign(now, false, true);
                }
            }
        }
    }

    /// Whether a leader is known to be alive: we are it, or heard from it within an election
    /// timeout.
    fn in_lease(&self, now: Instant) -> bool {
        if !self.config.check_quorum {
            return false;
        }
        if self.role == Role::Leader {
            return true;
        }
        self.leader.is_some()
            && self
                .leader_contact
                .is_some_and(|t| now.saturating_since(t) < self.config.election_timeout)
    }

    pub(crate) fn tick(&mut self, now: Instant) {
        if self.role == Role::Leader {
            if let Some((_, deadline, _)) = self.transfer {
                if now >= deadline {
                    self.transfer = None;
                }
            }
            if now >= self.quorum_deadline {
                self.quorum_deadline = now + self.config.election_timeout;
                if self.config.check_quorum && !self.quorum_active() {
                    self.become_follower(now, self.term, None);
                    return;
                }
            }
            if now >= self.heartbeat_deadline {
                self.heartbeat_deadline = now + self.config.heartbeat_interval;
                self.heartbeat_tick();
            }
        } else if now >= self.election_deadline {
            if self.membership.is_voter(&self.id) {
                self.campaign(now, self.config.pre_vote, false);
            } else {
                self.election_deadline = Instant::MAX;
            }
        }
    }

    /// Whether a majority was heard from since the last check; resets the marks.
    fn quorum_active(&mut self) -> bool {
        let id = self.id;
        let active = {
            let progress = &self.progress;
            self.membership
                .has_quorum(|p| *p == id || progress.get(p).is_some_and(|pr| pr.recent_active))
        };
        for pr in self.progress.values_mut() {
            pr.recent_active = false;
        }
        active
    }

    pub(crate) fn reset_election_timer(&mut self, now: Instant) {
        if !self.membership.is_voter(&self.id) {
            self.election_deadline = Instant::MAX;
            return;
        }
        let base = self.config.election_timeout.as_nanos();
        let jitter = self.rng.random_range(0..base.max(1));
        self.election_deadline = now + Duration::from_nanos(base + jitter);
    }

    pub(crate) fn become_follower(&mut self, now: Instant, term: u64, leader: Option<P>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.hard_dirty = true;
        }
        let was_leader = self.role == Role::Leader;
        self.role = Role::Follower;
        self.leader = leader;
        if leader.is_some() {
            self.leader_contact = Some(now);
        }
        self.votes.clear();
        if was_leader {
            self.progress.clear();
            self.transfer = None;
            self.replicate_pending = false;
            self.read_round_pending = false;
            while let Some(read) = self.reads.pop_front() {
                self.emit(RaftEvent::ReadFailed { id: read.id });
            }
        }
        self.reset_election_timer(now);
    }

    /// Starts a pre-vote or an election.
    pub(crate) fn campaign(&mut self, now: Instant, pre: bool, transfer: bool) {
        self.reset_election_timer(now);
        if self.term == u64::MAX {
            // No cluster runs 2^64 elections: only a broken or hostile peer's message can have
            // raised the term this far. There is no next term to campaign in, so stay put
            // rather than wrap around to a term every server has already passed.
            self.stats.campaigns_refused += 1;
            return;
        }
        self.votes.clear();
        self.votes.insert(self.id, true);
        let term = if pre {
            self.role = Role::PreCandidate;
            self.term + 1
        } else {
            self.role = Role::Candidate;
            self.term += 1;
            self.vote = Some(self.id);
            self.hard_dirty = true;
            self.leader = None;
            self.stats.elections += 1;
            self.term
        };
        if self
            .membership
            .has_quorum(|p| self.votes.get(p) == Some(&true))
        {
            return self.won(now, pre);
        }
        let msg = RaftMessage::Vote {
            term,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            pre,
            transfer,
        };
        let voters: Vec<P> = self
            .membership
            .voters
            .iter()
            .copied()
            .filter(|p| *p != self.id)
            .collect();
        for p in voters {
            self.send_gated(p, msg.clone());
        }
    }

    fn won(&mut self, now: Instant, pre: bool) {
        if pre {
            self.campaign(now, false, false);
        } else {
            self.become_leader(now);
        }
    }

    fn on_pre_vote(&mut self, from: P, msg: RaftMessage<P>) {
        let RaftMessage::Vote {
            term,
            last_index,
            last_term,
            ..
        } = msg
        else {
            return;
        };
        // Granted without changing anything here: the asker would win the same vote.
        let granted = term > self.term && self.log.is_up_to_date(last_index, last_term);
        let reply = RaftMessage::VoteResponse {
            term: if granted { term } else { self.term },
            pre: true,
            granted,
        };
        self.send_gated(from, reply);
    }

    fn on_vote(&mut self, now: Instant, from: P, last_index: u64, last_term: u64) {
        let granted = self.vote.is_none_or(|v| v == from)
            && self.role != Role::Leader
            && self.log.is_up_to_date(last_index, last_term);
        if granted {
            if self.vote != Some(from) {
                self.vote = Some(from);
                self.hard_dirty = true;
            }
            self.reset_election_timer(now);
        }
        let reply = RaftMessage::VoteResponse {
            term: self.term,
            pre: false,
            granted,
        };
        self.send_gated(from, reply);
    }

    fn on_vote_response(&mut self, now: Instant, from: P, pre: bool, granted: bool) {
        let expected = if pre {
            Role::PreCandidate
        } else {
            Role::Candidate
        };
        if self.role != expected || !self.membership.is_voter(&from) {
            return;
        }
        self.votes.insert(from, granted);
        if self
            .membership
            .has_quorum(|p| self.votes.get(p) == Some(&true))
        {
            self.won(now, pre);
        } else if self
            .membership
            .has_quorum(|p| self.votes.get(p) == Some(&false))
        {
            self.become_follower(now, self.term, None);
        }
    }

    fn become_leader(&mut self, now: Instant) {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.votes.clear();
        self.stats.became_leader += 1;
        self.election_deadline = Instant::MAX;
        self.heartbeat_deadline = now + self.config.heartbeat_interval;
        self.quorum_deadline = now + self.config.election_timeout;
        let next = self.log.last_index() + 1;
        self.progress = self
            .membership
            .members()
            .copied()
            .filter(|p| *p != self.id)
            .map(|p| (p, Progress::new(next)))
            .collect();
        // Commits everything before it once committed, and lets reads begin (§5.4.2, §8).
        self.append_entry(EntryKind::Noop);
    }
}
