//! tikv's raft-rs under the harness: `RawNode<MemStorage>` with the standard Ready loop.

use std::collections::VecDeque;

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
                    let store =
                        MemStorage::new_with_conf_state(ConfState::from((voters.clone(), vec![])));
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
