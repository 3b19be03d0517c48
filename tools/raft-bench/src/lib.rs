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

use std::collections::VecDeque;
use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;

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

// ---------------------------------------------------------------------------------------------
// Starling
// ---------------------------------------------------------------------------------------------

/// Starling's Raft under the harness.
pub mod starling {
    use super::*;
    use starling_core::raft::{
        EntryKind, MemStorage, Membership, Raft, RaftConfig, RaftEvent, RaftMessage, Role,
    };
    use starling_core::time::{Duration as SDuration, Instant};
    use starling_core::{Machine, Output};

    /// The configuration used: defaults (300 ms election timeout, 50 ms heartbeats, pre-vote,
    /// check-quorum) with the append limits matched to raft-rs's.
    pub fn config() -> RaftConfig {
        RaftConfig {
            election_timeout: SDuration::from(TICK * ELECTION_TICKS as u32),
            heartbeat_interval: SDuration::from(TICK * HEARTBEAT_TICKS as u32),
            pre_vote: true,
            check_quorum: true,
            max_entries_per_append: 1 << 16,
            max_bytes_per_append: MAX_MSG_BYTES,
            max_inflight_appends: MAX_INFLIGHT,
            ..RaftConfig::default()
        }
    }

    /// `N` Starling servers, their disks and state machines, and the network queue.
    pub struct Cluster {
        nodes: Vec<Raft<u64>>,
        disks: Vec<MemStorage<u64>>,
        apps: Vec<Applied>,
        net: VecDeque<(u64, u64, RaftMessage<u64>)>,
        clock: Clock,
        now: Instant,
        leader: u64,
        /// Messages delivered (for reports).
        pub delivered: u64,
    }

    /// Drains server `id`'s output: sends go to the back of the queue, persist batches are
    /// written and acknowledged at once, applied entries go to the state machine.
    fn drain(
        node: &mut Raft<u64>,
        disk: &mut MemStorage<u64>,
        app: &mut Applied,
        net: &mut VecDeque<(u64, u64, RaftMessage<u64>)>,
        id: u64,
        now: Instant,
    ) {
        while let Some(out) = node.poll_output() {
            match out {
                Output::Send { to, msg } => net.push_back((id, to, msg)),
                Output::Event(RaftEvent::Persist(batch)) => {
                    let bid = batch.id;
                    disk.write(batch);
                    node.persisted(now, bid);
                }
                Output::Event(RaftEvent::Apply(entries)) => {
                    for e in &entries {
                        if let EntryKind::Command(data) = &e.kind {
                            app.command(data);
                        }
                    }
                    if let Some(e) = entries.last() {
                        app.index = e.index;
                    }
                }
                Output::Event(_) => {}
            }
        }
    }

    impl Cluster {
        fn drain(&mut self, i: usize) {
            drain(
                &mut self.nodes[i],
                &mut self.disks[i],
                &mut self.apps[i],
                &mut self.net,
                i as u64 + 1,
                self.now,
            );
        }

        fn fire_timers(&mut self) {
            for i in 0..self.nodes.len() {
                if self.nodes[i].poll_timeout().is_some_and(|t| t <= self.now) {
                    self.nodes[i].handle_timeout(self.now);
                    self.drain(i);
                }
            }
        }

        fn deliver_one(&mut self) -> bool {
            let Some((from, to, msg)) = self.net.pop_front() else {
                return false;
            };
            self.delivered += 1;
            let i = (to - 1) as usize;
            self.nodes[i].handle_message(self.now, from, msg);
            self.drain(i);
            true
        }

        fn pump_all(&mut self) {
            for i in 0..self.nodes.len() {
                self.drain(i);
            }
            while self.deliver_one() {}
        }

        fn set_now(&mut self, d: Duration) {
            self.now = Instant::from_nanos(d.as_nanos() as u64);
        }
    }

    impl Harness for Cluster {
        const NAME: &'static str = "starling";

        fn new(nodes: usize, record: bool) -> Self {
            let ids = 1..=nodes as u64;
            let membership = Membership::new(ids.clone());
            Cluster {
                nodes: ids
                    .map(|id| {
                        Raft::new(config(), id, membership.clone(), id, Instant::ZERO)
                            .expect("valid config")
                    })
                    .collect(),
                disks: (0..nodes).map(|_| MemStorage::default()).collect(),
                apps: (0..nodes).map(|_| Applied::new(record)).collect(),
                net: VecDeque::new(),
                clock: Clock::new(),
                now: Instant::ZERO,
                leader: 0,
                delivered: 0,
            }
        }

        fn elect(&mut self) {
            for _ in 0..10_000 {
                self.clock.advance(TICK);
                self.set_now(self.clock.at(StdInstant::now()));
                self.fire_timers();
                self.pump_all();
                let leaders: Vec<usize> = (0..self.nodes.len())
                    .filter(|&i| self.nodes[i].role() == Role::Leader)
                    .collect();
                if let [l] = leaders[..] {
                    let n = &self.nodes[l];
                    if n.term() > 0 && self.apps[l].index == n.last_index() {
                        self.leader = l as u64 + 1;
                        return;
                    }
                }
            }
            panic!("starling: no leader elected");
        }

        fn leader(&self) -> u64 {
            self.leader
        }

        fn run_batch(&mut self, batch: usize, seq: &mut u64) -> Duration {
            let start = StdInstant::now();
            self.set_now(self.clock.at(start));
            self.fire_timers();
            let l = (self.leader - 1) as usize;
            let mut target = 0;
            for _ in 0..batch {
                let p = payload(*seq);
                *seq += 1;
                let (index, _term) = self.nodes[l]
                    .propose(self.now, Bytes::copy_from_slice(&p))
                    .expect("leader accepts proposals");
                target = index;
            }
            self.drain(l);
            while self.apps[l].index < target {
                assert!(self.deliver_one(), "starling: stalled before commit");
            }
            start.elapsed()
        }

        fn settle(&mut self, d: Duration) {
            let end = self.clock.offset + d;
            while self.clock.offset < end {
                self.clock.advance(TICK);
                self.set_now(self.clock.at(StdInstant::now()));
                self.fire_timers();
                self.pump_all();
            }
        }

        fn applied(&self, id: u64) -> &Applied {
            &self.apps[(id - 1) as usize]
        }
    }
}

// ---------------------------------------------------------------------------------------------
// raft-rs
// ---------------------------------------------------------------------------------------------

/// tikv's raft-rs under the harness: `RawNode<MemStorage>` with the standard Ready loop.
pub mod raftrs {
    use super::*;
    use raft::eraftpb::{ConfState, EntryType, Message};
    use raft::storage::MemStorage;
    use raft::{Config, RawNode, StateRole};

    /// The configuration used: matched to Starling's (see [`super::starling::config`]).
    /// `batch_append` is on: appends to a follower still queued in the same ready are merged,
    /// as Starling sends all proposals made before a poll in one `Append`. (Off, raft-rs
    /// broadcasts one `Append` per proposal and a 64-command batch costs 64 follower round
    /// trips.) `skip_bcast_commit` stays off, raft-rs's default: a new commit index is
    /// broadcast at once, which Starling leaves to the next append or heartbeat.
    pub fn config(id: u64) -> Config {
        Config {
            id,
            election_tick: ELECTION_TICKS,
            heartbeat_tick: HEARTBEAT_TICKS,
            max_size_per_msg: MAX_MSG_BYTES as u64,
            max_inflight_msgs: MAX_INFLIGHT,
            check_quorum: true,
            pre_vote: true,
            batch_append: true,
            ..Config::default()
        }
    }

    /// `N` raft-rs servers, their state machines, and the network queue.
    pub struct Cluster {
        nodes: Vec<RawNode<MemStorage>>,
        apps: Vec<Applied>,
        net: VecDeque<Message>,
        clock: Clock,
        ticks: u64,
        leader: u64,
        /// Messages delivered (for reports).
        pub delivered: u64,
    }

    fn apply(app: &mut Applied, entries: Vec<raft::eraftpb::Entry>) {
        for e in &entries {
            if e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty() {
                app.command(&e.data);
            }
        }
        if let Some(e) = entries.last() {
            app.index = e.index;
        }
    }

    /// The standard Ready loop (as raft-rs's examples): send, apply, persist entries and hard
    /// state, send persisted messages, advance, then the light ready; repeated while there is
    /// a ready.
    fn on_ready(node: &mut RawNode<MemStorage>, app: &mut Applied, net: &mut VecDeque<Message>) {
        while node.has_ready() {
            let mut rd = node.ready();
            if !rd.messages().is_empty() {
                net.extend(rd.take_messages());
            }
            if !rd.snapshot().is_empty() {
                node.store()
                    .wl()
                    .apply_snapshot(rd.snapshot().clone())
                    .expect("apply snapshot");
            }
            apply(app, rd.take_committed_entries());
            if !rd.entries().is_empty() {
                node.store()
                    .wl()
                    .append(rd.entries())
                    .expect("append entries");
            }
            if let Some(hs) = rd.hs() {
                node.store().wl().set_hardstate(hs.clone());
            }
            if !rd.persisted_messages().is_empty() {
                net.extend(rd.take_persisted_messages());
            }
            let mut light = node.advance(rd);
            if let Some(commit) = light.commit_index() {
                node.store().wl().mut_hard_state().set_commit(commit);
            }
            net.extend(light.take_messages());
            apply(app, light.take_committed_entries());
            node.advance_apply();
        }
    }

    impl Cluster {
        fn ready(&mut self, i: usize) {
            on_ready(&mut self.nodes[i], &mut self.apps[i], &mut self.net);
        }

        fn fire_timers(&mut self, now: Duration) {
            let due = (now.as_nanos() / TICK.as_nanos()) as u64;
            while self.ticks < due {
                self.ticks += 1;
                for i in 0..self.nodes.len() {
                    self.nodes[i].tick();
                    self.ready(i);
                }
            }
        }

        fn deliver_one(&mut self) -> bool {
            let Some(msg) = self.net.pop_front() else {
                return false;
            };
            self.delivered += 1;
            let i = (msg.to - 1) as usize;
            // Errors here are stale messages (e.g. from an old term), ignored as a transport would.
            let _ = self.nodes[i].step(msg);
            self.ready(i);
            true
        }

        fn pump_all(&mut self) {
            for i in 0..self.nodes.len() {
                self.ready(i);
            }
            while self.deliver_one() {}
        }
    }

    impl Harness for Cluster {
        const NAME: &'static str = "raft-rs";

        fn new(nodes: usize, record: bool) -> Self {
            let logger = slog::Logger::root(slog::Discard, slog::o!());
            let voters: Vec<u64> = (1..=nodes as u64).collect();
            Cluster {
                nodes: voters
                    .iter()
                    .map(|&id| {
                        let store = MemStorage::new_with_conf_state(ConfState::from((
                            voters.clone(),
                            vec![],
                        )));
                        RawNode::new(&config(id), store, &logger).expect("valid config")
                    })
                    .collect(),
                apps: (0..nodes).map(|_| Applied::new(record)).collect(),
                net: VecDeque::new(),
                clock: Clock::new(),
                ticks: 0,
                leader: 0,
                delivered: 0,
            }
        }

        fn elect(&mut self) {
            for _ in 0..10_000 {
                self.clock.advance(TICK);
                self.fire_timers(self.clock.at(StdInstant::now()));
                self.pump_all();
                let leaders: Vec<usize> = (0..self.nodes.len())
                    .filter(|&i| self.nodes[i].raft.state == StateRole::Leader)
                    .collect();
                if let [l] = leaders[..] {
                    let n = &self.nodes[l].raft;
                    if n.term > 0 && self.apps[l].index == n.raft_log.last_index() {
                        self.leader = l as u64 + 1;
                        return;
                    }
                }
            }
            panic!("raft-rs: no leader elected");
        }

        fn leader(&self) -> u64 {
            self.leader
        }

        fn run_batch(&mut self, batch: usize, seq: &mut u64) -> Duration {
            let start = StdInstant::now();
            self.fire_timers(self.clock.at(start));
            let l = (self.leader - 1) as usize;
            for _ in 0..batch {
                let p = payload(*seq);
                *seq += 1;
                self.nodes[l]
                    .propose(vec![], p.to_vec())
                    .expect("leader accepts proposals");
            }
            let target = self.nodes[l].raft.raft_log.last_index();
            self.ready(l);
            while self.apps[l].index < target {
                assert!(self.deliver_one(), "raft-rs: stalled before commit");
            }
            start.elapsed()
        }

        fn settle(&mut self, d: Duration) {
            let end = self.clock.offset + d;
            while self.clock.offset < end {
                self.clock.advance(TICK);
                self.fire_timers(self.clock.at(StdInstant::now()));
                self.pump_all();
            }
        }

        fn applied(&self, id: u64) -> &Applied {
            &self.apps[(id - 1) as usize]
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

/// One measured run.
#[derive(Clone, Copy, Debug)]
pub struct RunStats {
    /// Commands committed and applied on the leader per second of wall time.
    pub commits_per_sec: f64,
    /// Commands per second of this thread's CPU time: insensitive to the thread being
    /// descheduled on a loaded machine (a 4 ms time slice lost is a p99 outlier, not work).
    pub cpu_commits_per_sec: f64,
    /// Median batch latency, µs.
    pub p50_us: f64,
    /// 99th-percentile batch latency, µs.
    pub p99_us: f64,
}

/// Builds a fresh `nodes`-server cluster, elects a leader, runs `warmup` commands untimed, then
/// `commands` commands in batches of `batch` (closed loop, one batch in flight).
pub fn run<H: Harness>(nodes: usize, batch: usize, commands: usize, warmup: usize) -> RunStats {
    let mut h = H::new(nodes, false);
    h.elect();
    let mut seq = 0u64;
    for _ in 0..warmup.div_ceil(batch) {
        h.run_batch(batch, &mut seq);
    }
    let batches = commands.div_ceil(batch);
    let mut lat = Vec::with_capacity(batches);
    let cpu_start = thread_cpu_time();
    let start = StdInstant::now();
    for _ in 0..batches {
        lat.push(h.run_batch(batch, &mut seq));
    }
    let total = start.elapsed();
    let cpu = thread_cpu_time().saturating_sub(cpu_start);
    let leader = h.leader();
    assert_eq!(
        h.applied(leader).commands,
        seq,
        "{}: leader applied every command",
        H::NAME
    );
    lat.sort_unstable();
    RunStats {
        commits_per_sec: (batches * batch) as f64 / total.as_secs_f64(),
        cpu_commits_per_sec: (batches * batch) as f64 / cpu.as_secs_f64(),
        p50_us: percentile(&lat, 0.50),
        p99_us: percentile(&lat, 0.99),
    }
}

/// CPU time consumed by the calling thread.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The `q` quantile of sorted latencies, in µs (nearest rank).
fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e6
}

/// The median of `xs` (mean of the middle two for an even count).
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}
