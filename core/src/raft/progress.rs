//! What a leader knows about each follower's log (the "progress" of etcd's raft, in our words).
//!
//! - **Probe**: the follower's match point is unknown; one `Append` at a time walks `next` back
//!   (by whole terms, using the follower's hint) until the logs meet.
//! - **Replicate**: the logs meet at `match_index`; appends are pipelined, up to a window of
//!   `max_inflight_appends`, each optimistically advancing `next`.
//! - **Snapshot**: the entries the follower needs were compacted away; a snapshot is streamed in
//!   chunks, one in flight at a time.

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Probe,
    Replicate,
    /// Sending the snapshot at `index`; `offset` bytes have been acknowledged.
    Snapshot {
        index: u64,
        offset: u64,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    pub match_index: u64,
    pub next_index: u64,
    pub mode: Mode,
    /// Last index carried by each append in flight (Replicate).
    pub inflight: VecDeque<u64>,
    /// A probe (or snapshot chunk) is outstanding; cleared by an answer or the next heartbeat.
    pub waiting: bool,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
    /// Acknowledged something since the last heartbeat tick (stall detection).
    pub acked_since_tick: bool,
    /// Highest read round this follower has echoed.
    pub read_seq: u64,
}

impl Progress {
    pub fn new(next_index: u64) -> Self {
        Progress {
            match_index: 0,
            next_index,
            mode: Mode::Probe,
            inflight: VecDeque::new(),
            waiting: false,
            recent_active: true,
            acked_since_tick: false,
            read_seq: 0,
        }
    }

    /// Back to probing from `next`.
    pub fn probe(&mut self, next: u64) {
        self.mode = Mode::Probe;
        self.next_index = next.max(self.match_index + 1);
        self.inflight.clear();
        self.waiting = false;
    }

    /// The follower matches up to `index`. Returns whether that is news.
    pub fn matched(&mut self, index: u64) -> bool {
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        self.acked_since_tick = true;
        if index <= self.match_index {
            return false;
        }
        self.match_index = index;
        self.next_index = self.next_index.max(index + 1);
        self.waiting = false;
        if matches!(self.mode, Mode::Probe | Mode::Snapshot { .. }) {
            self.mode = Mode::Replicate;
            self.inflight.clear();
            self.next_index = index + 1;
        }
        true
    }
}
