//! [`Raft`]: one server of a Raft group as a sans-IO state machine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;

use bytes::Bytes;

use super::config::{RaftConfig, RaftConfigError};
use super::event::{CompactError, PersistBatch, ProposeError, RaftEvent, RaftStats, ReadId, Role};
use super::log::RaftLog;
use super::membership::{ConfChange, Membership};
use super::message::{Entry, EntryKind, HardState, RaftMessage, Snapshot};
use super::progress::Progress;
use crate::machine::{Machine, Output};
use crate::rng::{seeded, MachineRng};
use crate::time::Instant;

/// How Raft names servers: a small id in a simulation or an application's own member ids, a
/// `PeerId` in a node. Anything cheap to copy, ordered and hashable.
pub trait RaftPeer: Copy + Ord + Hash + Debug {}
impl<T: Copy + Ord + Hash + Debug> RaftPeer for T {}

/// What [`Raft`] hands its driver.
pub type RaftOutput<P> = Output<P, RaftMessage<P>, RaftEvent<P>>;

/// State recovered from stable storage after a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered<P: Ord> {
    /// The last hard state written.
    pub hard_state: HardState<P>,
    /// The last snapshot written, if any.
    pub snapshot: Option<Snapshot<P>>,
    /// The entries after the snapshot, in order.
    pub entries: Vec<Entry<P>>,
}

/// A leader's view of one follower, for applications deciding when a learner may be promoted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerProgress {
    /// Highest index known to match the leader's log.
    pub match_index: u64,
}

/// Apply at most this many entries per `Apply` event, so one event stays a bounded size.
const APPLY_BATCH: usize = 1024;

/// A read waiting for its round of heartbeats.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingRead {
    pub id: ReadId,
    pub index: u64,
    /// Heartbeat round that confirms it; 0 until the leader has committed an entry of its term.
    pub seq: u64,
}

/// One server of a Raft group. See the [module docs](super) for the protocol and the contract
/// with the driver.
pub struct Raft<P: RaftPeer> {
    pub(crate) id: P,
    pub(crate) config: RaftConfig,
    pub(crate) rng: MachineRng,
    pub(crate) role: Role,
    pub(crate) term: u64,
    pub(crate) vote: Option<P>,
    pub(crate) leader: Option<P>,
    pub(crate) log: RaftLog<P>,
    pub(crate) membership: Membership<P>,
    /// Index of the entry that set `membership` (the snapshot's index if none since).
    pub(crate) membership_index: u64,
    /// Membership as of the snapshot: where recomputation starts after a truncation.
    pub(crate) snapshot_membership: Membership<P>,
    /// The latest snapshot, sent to followers that need compacted entries.
    pub(crate) snapshot: Option<Snapshot<P>>,
    /// A snapshot being received in chunks.
    pub(crate) incoming: Option<Incoming<P>>,
    /// Votes received in the current (pre-)election: voter → granted.
    pub(crate) votes: BTreeMap<P, bool>,
    pub(crate) progress: BTreeMap<P, Progress>,
    pub(crate) election_deadline: Instant,
    pub(crate) heartbeat_deadline: Instant,
    pub(crate) quorum_deadline: Instant,
    /// Last time we heard from the leader (the lease that lets followers ignore vote requests).
    pub(crate) leader_contact: Option<Instant>,
    /// Leadership transfer in progress: the target, the deadline, whether TimeoutNow was sent.
    pub(crate) transfer: Option<(P, Instant, bool)>,
    pub(crate) reads: VecDeque<PendingRead>,
    pub(crate) read_seq: u64,
    pub(crate) next_read: ReadId,
    pub(crate) read_round_pending: bool,
    /// Entries appended by the leader not yet sent: flushed in one batch on the next poll.
    pub(crate) replicate_pending: bool,
    /// Term or vote changed since the last persist batch.
    pub(crate) hard_dirty: bool,
    /// Commit index changed since the last persist batch.
    pub(crate) commit_dirty: bool,
    pub(crate) snapshot_to_persist: Option<Snapshot<P>>,
    pub(crate) next_batch: u64,
    pub(crate) acked_batch: u64,
    /// The latest batch that a non-leader message must wait for.
    pub(crate) gate: u64,
    /// For each batch with entries: its id and its last (index, term).
    pub(crate) batch_ends: VecDeque<(u64, u64, u64)>,
    pub(crate) outputs: VecDeque<RaftOutput<P>>,
    pub(crate) gated: VecDeque<(u64, P, RaftMessage<P>)>,
    pub(crate) last_role: (Role, u64, Option<P>),
    pub(crate) stats: RaftStats,
}

#[derive(Clone, Debug)]
pub(crate) struct Incoming<P: Ord> {
    pub index: u64,
    pub term: u64,
    pub membership: Membership<P>,
    pub total_len: u64,
    pub data: Vec<u8>,
}

impl<P: RaftPeer> Raft<P> {
    /// A new server `id` in a group whose initial voters are `bootstrap` (the same set on every
    /// founding member). A server joining an existing group passes an empty membership and is
    /// added by the leader as a learner: it never campaigns until it is a voter.
    pub fn new(
        config: RaftConfig,
        id: P,
        bootstrap: Membership<P>,
        seed: u64,
        now: Instant,
    ) -> Result<Self, RaftConfigError> {
        Self::restore(
            config,
            id,
            bootstrap,
            Recovered {
                hard_state: HardState::default(),
                snapshot: None,
                entries: Vec::new(),
            },
            seed,
            now,
        )
    }

    /// A server restarted from what its storage held. `bootstrap` is the initial membership, as
    /// given to [`Raft::new`]; a snapshot's membership replaces it.
    pub fn restore(
        config: RaftConfig,
        id: P,
        bootstrap: Membership<P>,
        recovered: Recovered<P>,
        seed: u64,
        now: Instant,
    ) -> Result<Self, RaftConfigError> {
        config.validate()?;
        let (snap_index, snap_term, snap_membership) = match &recovered.snapshot {
            Some(s) => (s.index, s.term, s.membership.clone()),
            None => (0, 0, bootstrap),
        };
        let mut log = RaftLog::restored(snap_index, snap_term, recovered.entries);
        log.commit = recovered
            .hard_state
            .commit
            .clamp(snap_index, log.last_index());
        let mut raft = Raft {
            id,
            config,
            rng: seeded(seed),
            role: Role::Follower,
            term: recovered.hard_state.term,
            vote: recovered.hard_state.vote,
            leader: None,
            log,
            membership: snap_membership.clone(),
            membership_index: snap_index,
            snapshot_membership: snap_membership,
            snapshot: recovered.snapshot,
            incoming: None,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            election_deadline: Instant::MAX,
            heartbeat_deadline: Instant::MAX,
            quorum_deadline: Instant::MAX,
            leader_contact: None,
            transfer: None,
            reads: VecDeque::new(),
            read_seq: 0,
            next_read: 1,
            read_round_pending: false,
            replicate_pending: false,
            hard_dirty: false,
            commit_dirty: false,
            snapshot_to_persist: None,
            next_batch: 1,
            acked_batch: 0,
            gate: 0,
            batch_ends: VecDeque::new(),
            outputs: VecDeque::new(),
            gated: VecDeque::new(),
            last_role: (Role::Follower, 0, None),
            stats: RaftStats::default(),
        };
        raft.last_role = (Role::Follower, raft.term, None);
        raft.recompute_membership();
        raft.reset_election_timer(now);
        Ok(raft)
    }

    /// This server's id.
    pub fn id(&self) -> P {
        self.id
    }
    /// Its role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Its current term.
    pub fn term(&self) -> u64 {
        self.term
    }
    /// The leader it knows of.
    pub fn leader(&self) -> Option<P> {
        self.leader
    }
    /// Highest index known committed.
    pub fn commit_index(&self) -> u64 {
        self.log.commit
    }
    /// Highest index handed out in `Apply` (or covered by a snapshot).
    pub fn applied_index(&self) -> u64 {
        self.log.applied
    }
    /// Last index in its log.
    pub fn last_index(&self) -> u64 {
        self.log.last_index()
    }
    /// First index still in the log (after the snapshot).
    pub fn first_index(&self) -> u64 {
        self.log.first_index()
    }
    /// The membership in force here (the latest in the log, committed or not).
    pub fn membership(&self) -> &Membership<P> {
        &self.membership
    }
    /// The entry at `index`, if still in the log.
    pub fn entry(&self, index: u64) -> Option<&Entry<P>> {
        self.log.entry(index)
    }
    /// Counters.
    pub fn stats(&self) -> RaftStats {
        self.stats
    }
    /// On a leader, what it knows of `peer`'s log.
    pub fn progress(&self, peer: &P) -> Option<FollowerProgress> {
        self.progress.get(peer).map(|p| FollowerProgress {
            match_index: p.match_index,
        })
    }

    /// Appends an application command. Returns its (index, term): it is committed when an
    /// `Apply` carries that index with that term; if another term shows up there, it was lost.
    pub fn propose(&mut self, now: Instant, command: Bytes) -> Result<(u64, u64), ProposeError<P>> {
        if command.len() > self.config.max_command_len {
            return Err(ProposeError::TooLarge);
        }
        self.check_can_propose()?;
        let _ = now;
        Ok(self.append_entry(EntryKind::Command(command)))
    }

    /// Proposes a membership change (see [`super::membership`]).
    pub fn propose_change(
        &mut self,
        now: Instant,
        change: ConfChange<P>,
    ) -> Result<(u64, u64), ProposeError<P>> {
        self.check_can_propose()?;
        if self.membership_index > self.log.commit || !self.committed_in_term() {
            return Err(ProposeError::ChangePending);
        }
        let next = self
            .membership
            .apply(&change)
            .map_err(ProposeError::Membership)?;
        if let ConfChange::Promote(p) = &change {
            let caught_up = self
                .progress
                .get(p)
                .is_some_and(|pr| pr.match_index >= self.log.commit);
            if !caught_up {
                return Err(ProposeError::NotCaughtUp);
            }
        }
        let _ = now;
        let at = self.append_entry(EntryKind::Config {
            change,
            membership: next,
        });
        self.recompute_membership();
        Ok(at)
    }

    /// Asks to hand leadership to `to` (thesis §3.10): proposals stop, `to` is brought up to
    /// date and told to campaign at once. Abandoned after an election timeout.
    pub fn transfer_leadership(&mut self, now: Instant, to: P) -> Result<(), ProposeError<P>> {
        self.check_can_propose()?;
        if to == self.id || !self.membership.is_voter(&to) {
            return Err(ProposeError::BadTransferTarget);
        }
        self.transfer = Some((to, now + self.config.election_timeout, false));
        self.maybe_send_timeout_now();
        if self.transfer.is_some_and(|t| !t.2) {
            self.send_appends(to);
        }
        Ok(())
    }

    /// Compacts the log up to `index` (already applied), replacing it with `data`, the
    /// application's state as of `index`. Emits a `Persist` with the snapshot.
    pub fn compact(&mut self, now: Instant, index: u64, data: Bytes) -> Result<(), CompactError> {
        let _ = now;
        if index <= self.log.snapshot_index() {
            return Err(CompactError::AlreadyCompacted);
        }
        if index > self.log.applied {
            return Err(CompactError::NotApplied);
        }
        let term = self.log.term(index).ok_or(CompactError::NotApplied)?;
        let membership = self.membership_at(index);
        let snapshot = Snapshot {
            index,
            term,
            membership: membership.clone(),
            data,
        };
        self.log.compact(index, term);
        self.snapshot_membership = membership;
        self.membership_index = self.membership_index.max(index);
        self.snapshot = Some(snapshot.clone());
        self.snapshot_to_persist = Some(snapshot);
        Ok(())
    }

    /// The driver has durably written every persist batch up to `id`.
    pub fn persisted(&mut self, now: Instant, id: u64) {
        if id <= self.acked_batch || id >= self.next_batch {
            return;
        }
        self.acked_batch = id;
        while let Some(&(batch, index, term)) = self.batch_ends.front() {
            if batch > id {
                break;
            }
            self.batch_ends.pop_front();
            self.log.persisted_to(index, term);
        }
        if self.role == Role::Leader {
            self.maybe_commit(now);
        }
        self.release_gated();
    }

    fn check_can_propose(&self) -> Result<(), ProposeError<P>> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.transfer.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        if self.log.last_index() - self.log.commit >= self.config.max_uncommitted_entries as u64 {
            return Err(ProposeError::TooManyUncommitted);
        }
        Ok(())
    }

    /// Whether the commit index is in the current term: until then a new leader does not know
    /// what is committed (§5.4.2, §6.4).
    pub(crate) fn committed_in_term(&self) -> bool {
        self.log.term(self.log.commit) == Some(self.term)
    }

    /// A leader appends to its own log; sending waits for the next poll, so proposals made
    /// together travel together.
    pub(crate) fn append_entry(&mut self, kind: EntryKind<P>) -> (u64, u64) {
        let index = self.log.last_index() + 1;
        self.log.push(Entry {
            index,
            term: self.term,
            kind,
        });
        self.replicate_pending = true;
        (index, self.term)
    }

    /// The membership as of `index`: that of the last change in the log up to it, else the
    /// snapshot's.
    pub(crate) fn membership_at(&self, index: u64) -> Membership<P> {
        self.log
            .entries()
            .take_while(|e| e.index <= index)
            .filter_map(|e| match &e.kind {
                EntryKind::Config { membership, .. } => Some(membership),
                _ => None,
            })
            .last()
            .unwrap_or(&self.snapshot_membership)
            .clone()
    }

    /// Recomputes the membership from the log (after appends or truncations of config entries)
    /// and keeps the leader's per-follower state in step with it.
    pub(crate) fn recompute_membership(&mut self) {
        let latest = self.log.entries().rev().find_map(|e| match &e.kind {
            EntryKind::Config { membership, .. } => Some((membership.clone(), e.index)),
            _ => None,
        });
        let (m, at) =
            latest.unwrap_or_else(|| (self.snapshot_membership.clone(), self.log.snapshot_index()));
        self.membership = m;
        self.membership_index = at;
        if self.role == Role::Leader {
            let next = self.log.last_index() + 1;
            let members: BTreeSet<P> = self
                .membership
                .members()
                .copied()
                .filter(|p| *p != self.id)
                .collect();
            self.progress.retain(|p, _| members.contains(p));
            for p in members {
                self.progress
                    .entry(p)
                    .or_insert_with(|| Progress::new(next));
            }
        }
    }

    /// Queues a message from a non-leader role: it leaves only once every persist batch issued
    /// before it is durable (votes after the vote is stored, acknowledgements after the entries).
    pub(crate) fn send_gated(&mut self, to: P, msg: RaftMessage<P>) {
        self.issue_batch();
        if self.gate <= self.acked_batch && self.gated.is_empty() {
            self.outputs.push_back(Output::Send { to, msg });
        } else {
            self.gated.push_back((self.gate, to, msg));
        }
    }

    /// Queues a leader's message: leaders write their own log in parallel with sending it
    /// (thesis §10.2.1); their own entries count toward commitment only once durable.
    pub(crate) fn send_now(&mut self, to: P, msg: RaftMessage<P>) {
        self.outputs.push_back(Output::Send { to, msg });
    }

    fn release_gated(&mut self) {
        while let Some((gate, ..)) = self.gated.front() {
            if *gate > self.acked_batch {
                break;
            }
            let (_, to, msg) = self.gated.pop_front().expect("front exists");
            self.outputs.push_back(Output::Send { to, msg });
        }
    }

    /// Hands everything not yet persisted to the driver as one batch.
    pub(crate) fn issue_batch(&mut self) {
        let entries_dirty = self.log.has_unstable();
        if !(self.hard_dirty
            || self.commit_dirty
            || entries_dirty
            || self.snapshot_to_persist.is_some())
        {
            return;
        }
        let id = self.next_batch;
        self.next_batch += 1;
        self.stats.persist_batches += 1;
        let (truncate_from, entries) = self.log.take_unstable();
        if let Some(last) = entries.last() {
            self.batch_ends.push_back((id, last.index, last.term));
        }
        let hard_state = (self.hard_dirty || self.commit_dirty).then_some(HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.commit,
        });
        let snapshot = self.snapshot_to_persist.take();
        if self.hard_dirty || entries_dirty || snapshot.is_some() {
            self.gate = id;
        }
        self.hard_dirty = false;
        self.commit_dirty = false;
        self.outputs
            .push_back(Output::Event(RaftEvent::Persist(PersistBatch {
                id,
                snapshot,
                truncate_from,
                entries,
                hard_state,
            })));
    }

    /// Emits committed, durable entries for the application.
    fn apply(&mut self) {
        loop {
            let entries = self.log.take_applicable(APPLY_BATCH);
            if entries.is_empty() {
                break;
            }
            self.outputs
                .push_back(Output::Event(RaftEvent::Apply(entries)));
        }
    }

    pub(crate) fn set_commit(&mut self, commit: u64) {
        if commit > self.log.commit {
            self.log.commit = commit;
            self.commit_dirty = true;
        }
    }

    pub(crate) fn emit(&mut self, event: RaftEvent<P>) {
        self.outputs.push_back(Output::Event(event));
    }

    fn report_role(&mut self) {
        let now = (self.role, self.term, self.leader);
        if now != self.last_role {
            self.last_role = now;
            self.emit(RaftEvent::RoleChanged {
                role: now.0,
                term: now.1,
                leader: now.2,
            });
        }
    }

    /// Sends what a leader's new entries and read rounds need, persists, releases and applies.
    fn flush(&mut self) {
        if self.role == Role::Leader {
            if self.replicate_pending {
                self.replicate_pending = false;
                let peers: Vec<P> = self.progress.keys().copied().collect();
                for p in peers {
                    self.send_appends(p);
                }
            }
            if self.read_round_pending {
                self.read_round_pending = false;
                self.broadcast_heartbeats();
            }
        }
        self.issue_batch();
        self.release_gated();
        self.apply();
        self.report_role();
    }
}

impl<P: RaftPeer> Machine for Raft<P> {
    type Peer = P;
    type Message = RaftMessage<P>;
    type Event = RaftEvent<P>;

    fn handle_message(&mut self, now: Instant, from: P, msg: RaftMessage<P>) {
        if from == self.id {
            return;
        }
        self.step(now, from, msg);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
    }

    fn poll_output(&mut self) -> Option<RaftOutput<P>> {
        if self.outputs.is_empty() {
            self.flush();
        }
        self.outputs.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.election_deadline;
        if self.role == Role::Leader {
            t = t.min(self.heartbeat_deadline).min(self.quorum_deadline);
            if let Some((_, deadline, _)) = self.transfer {
                t = t.min(deadline);
            }
        }
        (t != Instant::MAX).then_some(t)
    }
}
