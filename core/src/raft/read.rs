//! Linearizable reads without writing to the log: ReadIndex (§6.4 of the Raft thesis).
//!
//! The leader notes its commit index, confirms it is still the leader by a round of heartbeats
//! answered by a majority, and then lets the read proceed once the state machine has applied up
//! to that index. Reads arriving together share one round. A new leader first commits its
//! no-op entry, since until then it does not know the latest commit index.
//!
//! Lease reads (skipping the heartbeat round while a lease holds) are not offered: they rely on
//! bounded clock drift between servers, which the simulator and this crate do not assume.

use super::event::{ProposeError, RaftEvent, ReadId, Role};
use super::machine::{PendingRead, Raft, RaftPeer};
use crate::time::Instant;

impl<P: RaftPeer> Raft<P> {
    /// Starts a linearizable read. When [`RaftEvent::ReadReady`] names this id, serve the read
    /// from the state machine once it has applied the index given there; on
    /// [`RaftEvent::ReadFailed`], retry at the new leader.
    pub fn read_index(&mut self, now: Instant) -> Result<ReadId, ProposeError<P>> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.transfer.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        if self.reads.len() >= self.config.max_pending_reads {
            return Err(ProposeError::TooManyReads);
        }
        let id = self.next_read;
        self.next_read += 1;
        self.reads.push_back(PendingRead {
            id,
            index: 0,
            seq: 0,
        });
        if self.committed_in_term() {
            self.start_waiting_reads();
        }
        self.confirm_reads(now);
        Ok(id)
    }

    /// Gives reads that were waiting for the first commit of the term their index and round.
    pub(crate) fn start_waiting_reads(&mut self) {
        if !self.committed_in_term() || self.reads.iter().all(|r| r.seq != 0) {
            return;
        }
        self.read_seq += 1;
        let (seq, index) = (self.read_seq, self.log.commit);
        for read in self.reads.iter_mut().filter(|r| r.seq == 0) {
            read.seq = seq;
            read.index = index;
        }
        self.read_round_pending = true;
    }

    pub(crate) fn on_heartbeat_response(&mut self, now: Instant, from: P, read_seq: u64) {
        if self.role != Role::Leader {
            return;
        }
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.read_seq = pr.read_seq.max(read_seq.min(self.read_seq));
        let lagging = pr.mode != super::progress::Mode::Probe && pr.match_index < last;
        if lagging && pr.inflight.is_empty() {
            self.send_appends(from);
        }
        self.confirm_reads(now);
    }

    /// Releases the reads whose round a majority has answered.
    fn confirm_reads(&mut self, _now: Instant) {
        if self.reads.is_empty() {
            return;
        }
        let (id, own) = (self.id, self.read_seq);
        let progress = &self.progress;
        let confirmed = self.membership.quorum_value(|p| {
            if *p == id {
                own
            } else {
                progress.get(p).map_or(0, |pr| pr.read_seq)
            }
        });
        while let Some(read) = self.reads.front() {
            if read.seq == 0 || read.seq > confirmed {
                break;
            }
            let read = self.reads.pop_front().expect("front exists");
            self.emit(RaftEvent::ReadReady {
                id: read.id,
                index: read.index,
            });
        }
    }
}
