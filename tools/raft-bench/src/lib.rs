//! In-memory Raft benchmark: Starling's Raft ([`starling_core::raft`]) against tikv's raft-rs
//! ([`raft::RawNode`]), each driven by the same kind of harness.
//!
//! # Workload (identical for both)
//! One process holds `N` servers. Links have zero latency and storage is in memory:
//! - a leader is elected first (not timed);
//! - a *batch* of `B` commands (16-byte payloads) is proposed to the leader, then messages are
//!   pumped between servers — one global FIFO queue; each message is handed to its target's
//!   `handle_message` / `step` and the target's output is drained at once, appending what it
//!   sends to the back of the queue — until the batch is applied on the leader;
//! - persistence is instant: each persist batch / `Ready` is written to in-memory storage
//!   (entries appended, hard state set) and acknowledged before anything else happens;
//! - the loop is **closed** with one batch in flight: the next batch is proposed only once the
//!   previous one is applied on the leader. Messages still queued then (acknowledgements that
//!   were not needed for the majority, commit notices) stay queued and are delivered, in order,
//!   while the next batch is pumped.
//!
//! Latency is from the first proposal of a batch to the batch being applied on the leader;
//! every command of a batch gets that latency. Throughput is commands / wall time of the loop.
//!
//! # Time
//! Both sides share one [`Clock`]: a virtual offset (advanced in 10 ms steps during the untimed
//! election) plus the real time elapsed since the harness was built. Before each batch, due
//! timers fire: Starling's `handle_timeout` on servers whose `poll_timeout` has passed, raft-rs's
//! `tick` on every server once per elapsed 10 ms. Both use a 300 ms election timeout and 50 ms
//! heartbeats, pre-vote and check-quorum on, so timers rarely fire while measuring.
//!
//! Neither side encodes messages: both hand typed messages over, as an in-process transport
//! would.

use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;

mod measure;
pub mod raftrs;
pub mod starling;

pub use measure::{median, run, thread_cpu_time, RunStats};

/// Tick length for raft-rs and the virtual-time step of the election phase.
pub const TICK: Duration = Duration::from_millis(10);
/// Election timeout (both): 30 ticks.
pub const ELECTION_TICKS: usize = 30;
/// Heartbeat interval (both): 5 ticks.
pub const HEARTBEAT_TICKS: usize = 5;
/// Payload size of each command.
pub const PAYLOAD_LEN: usize = 16;
/// Largest append message, in bytes (both).
pub const MAX_MSG_BYTES: usize = 1 << 20;
/// Appends in flight per follower (both).
pub const MAX_INFLIGHT: usize = 256;

/// The command with sequence number `seq`: `seq` then `!seq`, little-endian.
pub fn payload(seq: u64) -> [u8; PAYLOAD_LEN] {
    let mut p = [0u8; PAYLOAD_LEN];
    p[..8].copy_from_slice(&seq.to_le_bytes());
    p[8..].copy_from_slice(&(!seq).to_le_bytes());
    p
}

/// Virtual offset plus real elapsed time, in nanoseconds.
#[derive(Debug)]
pub struct Clock {
    base: StdInstant,
    offset: Duration,
}

impl Clock {
    fn new() -> Self {
        Clock {
            base: StdInstant::now(),
            offset: Duration::ZERO,
        }
    }
    /// The harness time at the real instant `at`.
    fn at(&self, at: StdInstant) -> Duration {
        self.offset + at.saturating_duration_since(self.base)
    }
    fn advance(&mut self, d: Duration) {
        self.offset += d;
    }
}

/// What the application did with committed entries on one server.
#[derive(Debug, Default)]
pub struct Applied {
    /// Index of the last entry applied (commands and no-ops alike).
    pub index: u64,
    /// Commands applied.
    pub commands: u64,
    /// The commands, in order, when recording (tests).
    pub log: Vec<Bytes>,
    record: bool,
}

impl Applied {
    fn new(record: bool) -> Self {
        Applied {
            record,
            ..Applied::default()
        }
    }
    #[inline]
    fn command(&mut self, data: &Bytes) {
        self.commands += 1;
        if self.record {
            self.log.push(data.clone());
        }
    }
}

/// A cluster driven by one of the harnesses.
pub trait Harness: Sized {
    /// Short name for reports.
    const NAME: &'static str;
    /// `nodes` fresh servers (ids 1..=nodes). With `record`, applied commands are kept.
    fn new(nodes: usize, record: bool) -> Self;
    /// Elects a leader and waits until it has applied the entry of its term (untimed).
    fn elect(&mut self);
    /// The current leader's id (1-based).
    fn leader(&self) -> u64;
    /// Fires due timers, proposes `batch` commands numbered from `*seq` to the leader and pumps
    /// until the leader has applied them. Returns the batch's latency.
    fn run_batch(&mut self, batch: usize, seq: &mut u64) -> Duration;
    /// Advances time by `d` (in ticks) and delivers everything, so that followers learn the
    /// final commit index (tests).
    fn settle(&mut self, d: Duration);
    /// What server `id` (1-based) applied.
    fn applied(&self, id: u64) -> &Applied;
}
