//! What a Raft server tells its driver and application.

use core::fmt;

use super::membership::ConfChangeError;
use super::message::{Entry, HardState, Snapshot};

/// A server's role (§5.1), with the pre-vote stage of thesis §9.6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking whether it could win an election, without raising its term.
    PreCandidate,
    /// Standing for election.
    Candidate,
    /// Leads its term.
    Leader,
}

/// Names a ReadIndex request.
pub type ReadId = u64;

/// State to write to stable storage, in this order, before calling
/// [`super::Raft::persisted`] with `id`: the snapshot (dropping the entries it covers), the
/// truncation (dropping entries from that index on), the entries, then the hard state; then
/// sync. Messages that depend on this state are held by the machine until it is acknowledged,
/// so a driver may write asynchronously and keep polling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PersistBatch<P: Ord> {
    /// Acknowledge with this id; batches are numbered in order, and acknowledging one
    /// acknowledges every earlier one.
    pub id: u64,
    /// A snapshot that replaces the log up to its index.
    pub snapshot: Option<Snapshot<P>>,
    /// Drop stored entries with index ≥ this.
    pub truncate_from: Option<u64>,
    /// Append these (contiguous, after the truncation).
    pub entries: Vec<Entry<P>>,
    /// The new hard state, if it changed.
    pub hard_state: Option<HardState<P>>,
}

/// What a Raft server reports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RaftEvent<P: Ord> {
    /// Write this to stable storage, then acknowledge it.
    Persist(PersistBatch<P>),
    /// Committed entries to apply to the state machine, in order.
    Apply(Vec<Entry<P>>),
    /// Replace the state machine with this snapshot (received from the leader).
    InstallSnapshot(Snapshot<P>),
    /// The role, term or known leader changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The current term.
        term: u64,
        /// The leader, if known.
        leader: Option<P>,
    },
    /// A read may be served once the state machine has applied `index` (ReadIndex, §6.4).
    ReadReady {
        /// The request.
        id: ReadId,
        /// The commit index when leadership was confirmed.
        index: u64,
    },
    /// A read could not be confirmed: leadership was lost. Retry at the new leader.
    ReadFailed {
        /// The request.
        id: ReadId,
    },
}

/// Why a proposal, read, membership change or transfer was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposeError<P> {
    /// Only the leader accepts these; here is who it is, if known.
    NotLeader {
        /// The leader, if known.
        leader: Option<P>,
    },
    /// Leadership is being handed over; retry at the new leader.
    TransferInProgress,
    /// Too many entries are uncommitted (a majority may be unreachable); retry later.
    TooManyUncommitted,
    /// The command is larger than `max_command_len`.
    TooLarge,
    /// Too many reads are waiting.
    TooManyReads,
    /// A membership change is still uncommitted, or the leader has not yet committed an entry
    /// of its term; retry later.
    ChangePending,
    /// The learner has not caught up with the commit index yet; retry later.
    NotCaughtUp,
    /// The change does not apply to the current membership.
    Membership(ConfChangeError),
    /// The transfer target is not a voter other than the leader.
    BadTransferTarget,
}

impl<P: fmt::Debug> fmt::Display for ProposeError<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::NotLeader { leader: Some(l) } => write!(f, "not the leader; {l:?} is"),
            ProposeError::NotLeader { leader: None } => f.write_str("not the leader; none known"),
            ProposeError::TransferInProgress => f.write_str("leadership transfer in progress"),
            ProposeError::TooManyUncommitted => f.write_str("too many uncommitted entries"),
            ProposeError::TooLarge => f.write_str("command larger than max_command_len"),
            ProposeError::TooManyReads => f.write_str("too many reads waiting"),
            ProposeError::ChangePending => f.write_str("a membership change is still pending"),
            ProposeError::NotCaughtUp => f.write_str("the learner has not caught up"),
            ProposeError::Membership(e) => write!(f, "membership change not applicable: {e:?}"),
            ProposeError::BadTransferTarget => f.write_str("transfer target is not another voter"),
        }
    }
}

impl<P: fmt::Debug> std::error::Error for ProposeError<P> {}

/// Why [`super::Raft::compact`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompactError {
    /// The index has not been applied yet (or is beyond the log).
    NotApplied,
    /// The log is already compacted past this index.
    AlreadyCompacted,
}

impl fmt::Display for CompactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompactError::NotApplied => f.write_str("index not applied yet"),
            CompactError::AlreadyCompacted => f.write_str("log already compacted past index"),
        }
    }
}

impl std::error::Error for CompactError {}

/// Counters for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftStats {
    /// Elections this server started (real ones, not pre-votes).
    pub elections: u64,
    /// Elections not started because the term had reached `u64::MAX` (a peer sent it).
    pub campaigns_refused: u64,
    /// Times it became leader.
    pub became_leader: u64,
    /// `Append` messages sent.
    pub appends_sent: u64,
    /// Snapshot chunks sent.
    pub snapshot_chunks_sent: u64,
    /// Persist batches issued.
    pub persist_batches: u64,
    /// Messages dropped on arrival because they exceed this server's configuration: an
    /// `Append` of more than `max_entries_per_append` entries or holding a command longer than
    /// `max_command_len`, or a snapshot chunk longer than `snapshot_chunk_len`. An honest
    /// leader with the same configuration never sends one.
    pub oversized_dropped: u64,
}
