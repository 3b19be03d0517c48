//! Raft consensus (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm",
//! 2014; section numbers below refer to it, "thesis" to Ongaro's 2014 dissertation).
//!
//! A group of servers agrees on one ordered log under crash faults: any minority may crash,
//! restart, or be cut off, and every server applies the same commands in the same order.
//!
//! ## What is here
//! - **Elections** (§5.2) with randomised timeouts, **pre-vote** (thesis §9.6) so a returning
//!   server cannot raise the term and depose a healthy leader, and **check-quorum** (thesis §6.2):
//!   a leader that has not heard from a majority within an election timeout steps down, and
//!   followers ignore vote requests while their leader is alive.
//! - **Replication** (§5.3) with batching (proposals made before the next poll travel in one
//!   `Append`), pipelining (a window of appends in flight per follower), and fast conflict
//!   backtracking (a rejected append says where the follower's conflicting term begins).
//!   Only entries of the current term are committed by counting replicas (§5.4.2).
//! - **Snapshots** (§7): the application compacts the log up to an applied index; followers too
//!   far behind receive the snapshot in chunks.
//! - **Membership changes** one server at a time, new servers joining as learners and promoted
//!   once caught up (thesis §4, see [`membership`]).
//! - **Leadership transfer** (thesis §3.10) and **linearizable reads** by ReadIndex (see [`read`]).
//!
//! ## The contract with the driver
//! The machine never writes to disk; it says what must be written. A
//! [`RaftEvent::Persist`] batch carries the new hard state, entries, truncation and snapshot.
//! The driver writes them in order, syncs, and calls [`Raft::persisted`]. Until then:
//! - every message a follower or candidate would send (a vote, an acknowledgement) is held back,
//!   so nothing is promised that a crash could take back;
//! - a leader's own entries do not count toward a majority.
//!
//! A leader's appends go out at once, in parallel with its own write (thesis §10.2.1). Batches
//! may be written asynchronously; the machine keeps working and releases what each
//! acknowledgement allows. Committed entries are handed out in [`RaftEvent::Apply`] once they are
//! durable locally.
//!
//! ## Departures
//! - The commit index is persisted with the term and vote, so a restarted server can apply what
//!   it already knew was committed.
//! - Heartbeats are their own message (as in etcd's raft) rather than empty `Append`s: they
//!   carry the read round for ReadIndex and a commit index capped at what the follower matches.
//! - Reads are served only by the leader; followers answer `NotLeader` with a hint.
//!
//! ## Encodings
//! [`RaftMessage`] is a [`WireMessage`](crate::wire::WireMessage) like every protocol's messages
//! ([`codec`] documents the layout); [`durable`] holds the encoding of entries and the hard
//! state for stable storage. A message exceeding this server's configured batch, command or
//! chunk size is dropped on arrival and counted in [`RaftStats::oversized_dropped`].

pub mod codec;
mod config;
pub mod durable;
mod election;
mod event;
mod fields;
mod log;
mod machine;
mod mem_storage;
pub mod membership;
mod message;
mod progress;
pub mod read;
mod replication;

#[cfg(test)]
mod tests;

pub use config::{RaftConfig, RaftConfigError};
pub use event::{CompactError, PersistBatch, ProposeError, RaftEvent, RaftStats, ReadId, Role};
pub use machine::{FollowerProgress, Raft, RaftOutput, RaftPeer, Recovered};
pub use mem_storage::MemStorage;
pub use membership::{ConfChange, ConfChangeError, Membership};
pub use message::{ConflictHint, Entry, EntryKind, HardState, RaftMessage, Snapshot};
