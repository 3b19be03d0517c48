//! Starling's Raft under the harness: `N` servers, in-memory storage, one FIFO network queue.

use std::collections::VecDeque;

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
