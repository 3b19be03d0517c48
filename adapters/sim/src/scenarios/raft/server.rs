//! A Raft server as the simulator runs it: the [`Raft`] machine, a disk whose writes take time,
//! the key-value state machine, and a clock that may run fast or slow.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use starling_core::machine::{Machine, Output};
use starling_core::raft::{
    EntryKind, MemStorage, Membership, PersistBatch, ProposeError, Raft, RaftConfig, RaftEvent,
    ReadId,
};
use starling_core::time::{Duration, Instant};

use super::kv::{self, Kv};
use super::member::{Reply, SimEvent, SimMsg, SimOutput};
use crate::linearizability::KvInput;
use crate::NodeId;

/// A server's clock: `local = sim · num / den`. A skewed server's timers fire early or late by
/// that ratio, as with a drifting oscillator; the protocol must stay safe regardless.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub num: u64,
    pub den: u64,
}

impl Clock {
    pub const TRUE: Clock = Clock { num: 1, den: 1 };

    fn local(self, sim: Instant) -> Instant {
        let t = u128::from(sim.as_nanos()) * u128::from(self.num) / u128::from(self.den);
        Instant::from_nanos(u64::try_from(t).unwrap_or(u64::MAX))
    }

    /// The first simulated instant at which the local clock reads at least `local`.
    fn sim(self, local: Instant) -> Instant {
        if local == Instant::MAX {
            return local;
        }
        let t =
            (u128::from(local.as_nanos()) * u128::from(self.den)).div_ceil(u128::from(self.num));
        Instant::from_nanos(u64::try_from(t).unwrap_or(u64::MAX))
    }
}

/// How a server behaves, besides its Raft configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServerParams {
    pub raft: RaftConfig,
    /// Time from a persist batch to its acknowledgement.
    pub disk_latency: Duration,
    /// Take a snapshot once this many applied entries sit in the log.
    pub compact_after: u64,
    /// Answer reads from the local state at once, without a ReadIndex round: a deliberate bug
    /// (a deposed leader or a lagging follower serves stale values), so tests can show that the
    /// linearizability checker catches it.
    pub stale_reads: bool,
}

pub(crate) struct Server {
    raft: Raft<NodeId>,
    disk: Rc<RefCell<MemStorage<NodeId>>>,
    /// Writes issued and not yet on the disk, with when each completes (in order).
    writes: VecDeque<(Instant, PersistBatch<NodeId>)>,
    kv: Kv,
    applied: u64,
    clock: Clock,
    params: ServerParams,
    /// Proposals made here: index → (term, client, request).
    proposals: BTreeMap<u64, (u64, NodeId, u64)>,
    /// Reads waiting for their ReadIndex round: id → (client, request, key).
    reads: BTreeMap<ReadId, (NodeId, u64, u64)>,
    /// Reads confirmed at an index not yet applied here.
    ready_reads: Vec<(u64, NodeId, u64, u64)>,
    out: VecDeque<SimOutput>,
}

impl Server {
    /// Starts `id` from what its disk holds (nothing, the first time).
    pub fn start(
        id: NodeId,
        voters: &Membership<NodeId>,
        disk: Rc<RefCell<MemStorage<NodeId>>>,
        clock: Clock,
        params: ServerParams,
        seed: u64,
        now: Instant,
    ) -> Server {
        let (recovered, kv) = {
            let d = disk.borrow();
            let kv = d
                .snapshot()
                .and_then(|s| Kv::restore(&s.data))
                .unwrap_or_default();
            (d.recovered(), kv)
        };
        let applied = recovered.snapshot.as_ref().map_or(0, |s| s.index);
        let raft = Raft::restore(
            params.raft,
            id,
            voters.clone(),
            recovered,
            seed,
            clock.local(now),
        )
        .expect("the scenario's Raft configuration is valid");
        let mut server = Server {
            raft,
            disk,
            writes: VecDeque::new(),
            kv,
            applied,
            clock,
            params,
            proposals: BTreeMap::new(),
            reads: BTreeMap::new(),
            ready_reads: Vec::new(),
            out: VecDeque::new(),
        };
        server.pump(now);
        server
    }

    pub fn raft(&self) -> &Raft<NodeId> {
        &self.raft
    }

    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    pub fn on_message(&mut self, now: Instant, from: NodeId, msg: SimMsg) {
        match msg {
            SimMsg::Raft(m) => self.raft.handle_message(self.clock.local(now), from, m),
            SimMsg::Request { req, op } => self.on_request(now, from, req, op),
            SimMsg::Reply { .. } => {}
        }
        self.pump(now);
    }

    fn on_request(&mut self, now: Instant, client: NodeId, req: u64, op: KvInput) {
        let local = self.clock.local(now);
        if self.params.stale_reads && matches!(op, KvInput::Get(_)) {
            let value = self.kv.apply(op);
            return self.reply(client, req, Reply::Done(value));
        }
        let refused = match kv::encode(client, req, op) {
            Some(command) => match self.raft.propose(local, command) {
                Ok((index, term)) => {
                    self.proposals.insert(index, (term, client, req));
                    return;
                }
                Err(e) => e,
            },
            None => match self.raft.read_index(local) {
                Ok(id) => {
                    self.reads.insert(id, (client, req, op.key()));
                    return;
                }
                Err(e) => e,
            },
        };
        // Refused before anything was logged: the operation certainly did not happen.
        let reply = match refused {
            ProposeError::NotLeader { leader } => Reply::NotLeader(leader),
            _ => Reply::NotLeader(None),
        };
        self.reply(client, req, reply);
    }

    pub fn on_timeout(&mut self, now: Instant) {
        let local = self.clock.local(now);
        while self.writes.front().is_some_and(|(at, _)| *at <= now) {
            let (_, batch) = self.writes.pop_front().expect("checked above");
            let id = batch.id;
            self.disk.borrow_mut().write(batch);
            self.raft.persisted(local, id);
        }
        if self.raft.poll_timeout().is_some_and(|t| t <= local) {
            self.raft.handle_timeout(local);
        }
        self.pump(now);
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        let raft = self.raft.poll_timeout().map(|t| self.clock.sim(t));
        let disk = self.writes.front().map(|(at, _)| *at);
        match (raft, disk) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_output(&mut self) -> Option<SimOutput> {
        self.out.pop_front()
    }

    fn reply(&mut self, client: NodeId, req: u64, reply: Reply) {
        self.out.push_back(Output::Send {
            to: client,
            msg: SimMsg::Reply { req, reply },
        });
    }

    /// Drains the Raft machine, carrying out what it asks.
    fn pump(&mut self, now: Instant) {
        while let Some(out) = self.raft.poll_output() {
            match out {
                Output::Send { to, msg } => self.out.push_back(Output::Send {
                    to,
                    msg: SimMsg::Raft(msg),
                }),
                Output::Event(event) => self.on_event(now, event),
            }
        }
        self.serve_reads();
        self.maybe_compact(now);
    }

    fn on_event(&mut self, now: Instant, event: RaftEvent<NodeId>) {
        match event {
            RaftEvent::Persist(batch) => {
                // Writes complete in order: one disk, one queue.
                let after = self.writes.back().map_or(now, |(at, _)| (*at).max(now));
                self.writes
                    .push_back((after + self.params.disk_latency, batch));
            }
            RaftEvent::Apply(entries) => {
                for entry in entries {
                    let output = match &entry.kind {
                        EntryKind::Command(c) => kv::decode(c)
                            .and_then(|(client, req, op)| self.kv.apply_command(client, req, op)),
                        _ => None,
                    };
                    self.applied = entry.index;
                    if let Some((term, client, req)) = self.proposals.remove(&entry.index) {
                        // Another entry in our slot means ours was overwritten: it never
                        // committed and never will (its index is taken), but the client cannot
                        // tell that from silence, so it hears "unknown".
                        let reply = match output {
                            Some(out) if term == entry.term => Reply::Done(out),
                            _ => Reply::Unknown,
                        };
                        self.reply(client, req, reply);
                    }
                    self.out.push_back(Output::Event(SimEvent::Applied(entry)));
                }
            }
            RaftEvent::InstallSnapshot(snapshot) => {
                self.kv = Kv::restore(&snapshot.data).unwrap_or_default();
                self.applied = snapshot.index;
                let stale: Vec<u64> = self
                    .proposals
                    .range(..=snapshot.index)
                    .map(|(i, _)| *i)
                    .collect();
                for index in stale {
                    let (_, client, req) = self.proposals.remove(&index).expect("listed above");
                    self.reply(client, req, Reply::Unknown);
                }
                self.out.push_back(Output::Event(SimEvent::Installed {
                    index: snapshot.index,
                    term: snapshot.term,
                }));
            }
            RaftEvent::RoleChanged { role, term, .. } => {
                self.out
                    .push_back(Output::Event(SimEvent::Role { role, term }));
            }
            RaftEvent::ReadReady { id, index } => {
                if let Some((client, req, key)) = self.reads.remove(&id) {
                    self.ready_reads.push((index, client, req, key));
                }
            }
            RaftEvent::ReadFailed { id } => {
                if let Some((client, req, _)) = self.reads.remove(&id) {
                    self.reply(client, req, Reply::NotLeader(None));
                }
            }
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.applied;
        let mut i = 0;
        while i < self.ready_reads.len() {
            if self.ready_reads[i].0 <= applied {
                let (_, client, req, key) = self.ready_reads.swap_remove(i);
                let value = self.kv.apply(KvInput::Get(key));
                self.reply(client, req, Reply::Done(value));
            } else {
                i += 1;
            }
        }
    }

    fn maybe_compact(&mut self, now: Instant) {
        let first = self.raft.first_index();
        if self.applied >= first + self.params.compact_after {
            let data = self.kv.snapshot();
            // Refusals (a snapshot already being sent or written) just mean "later".
            let _ = self.raft.compact(self.clock.local(now), self.applied, data);
            while let Some(out) = self.raft.poll_output() {
                match out {
                    Output::Send { to, msg } => self.out.push_back(Output::Send {
                        to,
                        msg: SimMsg::Raft(msg),
                    }),
                    Output::Event(event) => self.on_event(now, event),
                }
            }
        }
    }
}
