//! Raft's log entries, snapshots and messages (the typed values; the wire codec is in `codec`,
//! the encoding for stable storage in `durable`).

use bytes::Bytes;

use super::membership::{ConfChange, Membership};

/// Persistent state every server keeps across restarts (Raft §5.1, Figure 2), plus the commit
/// index so a restarted node can apply what it knows to be committed without waiting for a leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HardState<P> {
    /// Latest term this server has seen.
    pub term: u64,
    /// Who it voted for in `term`, if anyone.
    pub vote: Option<P>,
    /// Highest index known to be committed.
    pub commit: u64,
}

impl<P> Default for HardState<P> {
    fn default() -> Self {
        HardState {
            term: 0,
            vote: None,
            commit: 0,
        }
    }
}

/// What an entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind<P: Ord> {
    /// Appended by a new leader so that it can commit entries of earlier terms (§5.4.2) and
    /// serve reads (§6.4).
    Noop,
    /// An application command.
    Command(Bytes),
    /// A membership change; takes effect as soon as it is in the log (thesis §4.1). It carries
    /// the membership it results in, so a server that joins with an empty configuration learns
    /// the whole group from the first change it receives rather than replaying deltas onto
    /// nothing.
    Config {
        /// What changed.
        change: ConfChange<P>,
        /// The membership once `change` is applied.
        membership: Membership<P>,
    },
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry<P: Ord> {
    /// Position in the log, from 1.
    pub index: u64,
    /// Term of the leader that created it.
    pub term: u64,
    /// The payload.
    pub kind: EntryKind<P>,
}

impl<P: Ord> Entry<P> {
    /// Bytes this entry counts for in batching limits (payload plus a fixed header).
    pub fn weight(&self) -> usize {
        const HEADER: usize = 24;
        HEADER
            + match &self.kind {
                EntryKind::Command(data) => data.len(),
                _ => 0,
            }
    }
}

/// A compacted prefix of the log: the application's state after applying entries up to
/// `index`, and the membership in force there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot<P: Ord> {
    /// Last index the snapshot covers.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
    /// Membership as of `index`.
    pub membership: Membership<P>,
    /// The application's serialized state.
    pub data: Bytes,
}

/// Where a follower's log stops matching the leader's (the fast backtracking of §5.3's
/// closing paragraphs): the leader skips a whole term per round trip instead of one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConflictHint {
    /// The first index of `term` in the follower's log, or its last index + 1 if its log is
    /// shorter than the leader's probe.
    pub index: u64,
    /// The term of the follower's entry at the probed index (0 if it has none there).
    pub term: u64,
}

/// Everything Raft servers say to each other. The sender is known to the receiver from the
/// transport (`handle_message`'s `from`), so it is not repeated here.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RaftMessage<P: Ord> {
    /// RequestVote (§5.2), or a pre-vote (thesis §9.6) when `pre` is set: a pre-vote asks
    /// whether the receiver *would* vote in `term`, and changes nothing there.
    Vote {
        /// The term the candidate is (or would be) standing in.
        term: u64,
        /// Index of its last entry.
        last_index: u64,
        /// Term of its last entry.
        last_term: u64,
        /// A pre-vote.
        pre: bool,
        /// Sent on a leader's `TimeoutNow`: voters set aside their leader lease (thesis §3.10).
        transfer: bool,
    },
    /// The answer to `Vote`.
    VoteResponse {
        /// The voter's term, or the pre-vote's term when granting one.
        term: u64,
        /// Answers a pre-vote.
        pre: bool,
        /// Whether the vote was granted.
        granted: bool,
    },
    /// AppendEntries (§5.3).
    Append {
        /// The leader's term.
        term: u64,
        /// Index of the entry before `entries`.
        prev_index: u64,
        /// Its term.
        prev_term: u64,
        /// Entries to append, contiguous from `prev_index + 1`.
        entries: Vec<Entry<P>>,
        /// The leader's commit index.
        commit: u64,
    },
    /// The answer to `Append` or to a completed snapshot.
    AppendResponse {
        /// The follower's term.
        term: u64,
        /// Whether the entries now match the leader's up to `match_index`.
        success: bool,
        /// On success, the last index known to match: `prev_index + entries.len()`.
        match_index: u64,
        /// On failure, where the logs diverge.
        hint: Option<ConflictHint>,
    },
    /// A heartbeat: asserts leadership, carries the commit index the follower may use (at most
    /// what it is known to match), and a read sequence number for ReadIndex (§6.4).
    Heartbeat {
        /// The leader's term.
        term: u64,
        /// `min(leader commit, follower match)`.
        commit: u64,
        /// The latest read round.
        read_seq: u64,
    },
    /// The answer to `Heartbeat`.
    HeartbeatResponse {
        /// The follower's term.
        term: u64,
        /// Echo of the heartbeat's read round.
        read_seq: u64,
    },
    /// One chunk of InstallSnapshot (§7).
    Snapshot {
        /// The leader's term.
        term: u64,
        /// The snapshot's last index.
        index: u64,
        /// The snapshot's last term.
        snapshot_term: u64,
        /// Membership at `index`.
        membership: Membership<P>,
        /// Total length of the snapshot data.
        total_len: u64,
        /// Offset of `data` in the snapshot.
        offset: u64,
        /// The chunk.
        data: Bytes,
    },
    /// The answer to a snapshot chunk.
    SnapshotResponse {
        /// The follower's term.
        term: u64,
        /// Which snapshot.
        index: u64,
        /// Bytes received in order so far (the next chunk's offset); `total_len` when done.
        received: u64,
    },
    /// Leadership transfer (thesis §3.10): start an election now.
    TimeoutNow {
        /// The leader's term.
        term: u64,
    },
}

impl<P: Ord> RaftMessage<P> {
    /// The sender's term.
    pub fn term(&self) -> u64 {
        match self {
            RaftMessage::Vote { term, .. }
            | RaftMessage::VoteResponse { term, .. }
            | RaftMessage::Append { term, .. }
            | RaftMessage::AppendResponse { term, .. }
            | RaftMessage::Heartbeat { term, .. }
            | RaftMessage::HeartbeatResponse { term, .. }
            | RaftMessage::Snapshot { term, .. }
            | RaftMessage::SnapshotResponse { term, .. }
            | RaftMessage::TimeoutNow { term } => *term,
        }
    }
}
