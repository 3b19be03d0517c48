//! The discrete-event loop.

use std::hash::Hash;

use starling_core::machine::{Machine, Output};
use starling_core::rng::derive_seed;
use starling_core::time::{Duration, Instant};

use crate::network::{Drop, Network, NetworkConfig, NetworkConfigError, Route};
use crate::observer::{Observer, View, Violation};
use crate::queue::{EventQueue, Pending};
use crate::trace::TraceHasher;
use crate::NodeId;

/// Builds the machine of a node, at start and after each restart: `(node, seed, now)`.
pub type Factory<M> = Box<dyn FnMut(NodeId, u64, Instant) -> M>;

/// Per-node bookkeeping. Small on purpose: there may be a million of these.
///
/// Timers are queued lazily. A machine's deadline moves at almost every input (a DHT node's
/// earliest request deadline moves on with each answer), and a queue entry cannot be taken
/// back, so queueing one per move filled the queue with stale entries, each costing a push, a
/// pop and a cache miss on its node. Instead a new deadline is queued only if it is earlier than
/// the node's pending wake-up entry; when a wake-up finds the deadline moved later, it queues the
/// deadline then. The deadline is queued under the insertion number reserved when it was set, so
/// the order of the events that fire, and with it the trace, is exactly that of queueing every
/// deadline at once.
pub(crate) struct NodeSlot<M> {
    /// `None` while crashed.
    pub(crate) machine: Option<M>,
    /// The machine's current deadline; `Instant::MAX` when none.
    timer: Instant,
    /// The queue insertion number reserved for `timer` when it was set.
    timer_seq: u64,
    /// The time of the node's earliest timer entry known to be queued (`Instant::MAX` when
    /// none): it fires no later than `timer`, and re-queues `timer` if it finds it later.
    wake: Instant,
    /// Bumped at each crash, so a restarted node draws fresh randomness.
    incarnation: u32,
}

/// Counters over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Events processed (deliveries and timers that fired).
    pub events: u64,
    /// Messages handed to a machine.
    pub delivered: u64,
    /// Timers that fired.
    pub timers: u64,
    /// Messages machines asked to send.
    pub sent: u64,
    /// Messages lost at random.
    pub lost: u64,
    /// Messages dropped because a partition separated sender and receiver when sent.
    pub partitioned: u64,
    /// Messages dropped on arrival because a partition began while they were in flight.
    pub partitioned_in_flight: u64,
    /// Messages that arrived at a crashed node.
    pub to_crashed: u64,
    /// Messages addressed to a node that does not exist.
    pub misaddressed: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Messages held back to be reordered.
    pub reordered: u64,
    /// Events the machines reported.
    pub protocol_events: u64,
    /// Crashes.
    pub crashes: u64,
    /// Restarts.
    pub restarts: u64,
}

/// How to build a simulation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimConfig {
    /// The one seed every random choice derives from.
    pub seed: u64,
    /// The network model.
    pub network: NetworkConfig,
}

/// Trace tags, so a timer and a delivery with equal fields hash apart.
mod tag {
    pub const DELIVER: u64 = 1;
    pub const TIMER: u64 = 2;
    pub const EVENT: u64 = 3;
    pub const CRASH: u64 = 4;
    pub const RESTART: u64 = 5;
    pub const PARTITION: u64 = 6;
    pub const HEAL: u64 = 7;
    pub const DROP: u64 = 8;
    pub const LOSS: u64 = 9;
}

/// N instances of a machine on a virtual network, in virtual time.
///
/// Nodes are named `0..N` ([`NodeId`]); the machine's `Peer` type is that id. Everything random
/// is drawn from generators derived from [`SimConfig::seed`], in a fixed order, so the same seed
/// gives the same run, event for event, and the same [`Simulation::digest`].
pub struct Simulation<M: Machine<Peer = NodeId>, O = ()> {
    seed: u64,
    now: Instant,
    queue: EventQueue<M::Message>,
    nodes: Vec<NodeSlot<M>>,
    factory: Factory<M>,
    network: Network,
    observer: O,
    trace: TraceHasher,
    stats: SimStats,
    /// Whether the machines built in `new` have been drained.
    started: bool,
    /// Reused buffer for a machine's outputs, so draining allocates nothing in steady state.
    scratch: Vec<Output<NodeId, M::Message, M::Event>>,
}

impl<M, O> Simulation<M, O>
where
    M: Machine<Peer = NodeId>,
    M::Message: Clone + Hash,
    M::Event: Hash,
    O: Observer<M>,
{
    /// Builds `nodes` machines with `factory` at time zero and queues their first timers.
    pub fn new(
        config: SimConfig,
        nodes: u32,
        factory: impl FnMut(NodeId, u64, Instant) -> M + 'static,
        observer: O,
    ) -> Result<Self, NetworkConfigError> {
        config.network.validate()?;
        let mut sim = Simulation {
            seed: config.seed,
            now: Instant::ZERO,
            queue: EventQueue::new(),
            nodes: Vec::with_capacity(nodes as usize),
            factory: Box::new(factory),
            network: Network::new(config.network, config.seed),
            observer,
            trace: TraceHasher::default(),
            stats: SimStats::default(),
            started: false,
            scratch: Vec::new(),
        };
        for id in 0..nodes {
            let seed = sim.node_seed(id, 0);
            let machine = (sim.factory)(id, seed, Instant::ZERO);
            sim.nodes.push(NodeSlot {
                machine: Some(machine),
                timer: Instant::MAX,
                timer_seq: 0,
                wake: Instant::MAX,
                incarnation: 0,
            });
        }
        Ok(sim)
    }

    /// Drains what the machines produced when built and arms their first timers. Runs once,
    /// before the first command or event, so that observers see construction-time events too.
    fn start(&mut self) -> Result<(), Violation> {
        if !self.started {
            self.started = true;
            for id in 0..self.len() {
                self.after_input(id)?;
            }
        }
        Ok(())
    }

    fn node_seed(&self, id: NodeId, incarnation: u32) -> u64 {
        derive_seed(self.seed, (u64::from(incarnation) << 32) | u64::from(id))
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }
    /// Number of nodes, up or down.
    pub fn len(&self) -> u32 {
        self.nodes.len() as u32
    }
    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// Counters so far.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }
    /// Events waiting in the queue.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
    /// The fingerprint of everything that happened so far.
    pub fn digest(&self) -> String {
        self.trace.hex()
    }
    /// The network model and partition state.
    pub fn network(&self) -> &Network {
        &self.network
    }
    /// The attached observer.
    pub fn observer(&self) -> &O {
        &self.observer
    }
    /// The attached observer, mutably (to reset counters between phases, say).
    pub fn observer_mut(&mut self) -> &mut O {
        &mut self.observer
    }
    /// The machine of `node`, unless it is crashed.
    pub fn node(&self, node: NodeId) -> Option<&M> {
        self.nodes.get(node as usize)?.machine.as_ref()
    }
    /// Whether `node` is running.
    pub fn is_up(&self, node: NodeId) -> bool {
        self.node(node).is_some()
    }
    /// A read-only view, as observers get.
    pub fn view(&self) -> View<'_, M> {
        View {
            now: self.now,
            network: &self.network,
            nodes: &self.nodes,
        }
    }

    /// Runs an application command on `node` now (`None` if it is crashed), then routes whatever
    /// the machine produced.
    pub fn command<R>(
        &mut self,
        node: NodeId,
        f: impl FnOnce(&mut M, Instant) -> R,
    ) -> Result<Option<R>, Violation> {
        self.start()?;
        let now = self.now;
        let Some(machine) = self
            .nodes
            .get_mut(node as usize)
            .and_then(|s| s.machine.as_mut())
        else {
            return Ok(None);
        };
        let r = f(machine, now);
        self.after_input(node)?;
        Ok(Some(r))
    }

    /// Processes every event due up to `until`, then leaves the clock at `until` and runs the
    /// observer's [`Observer::check`].
    pub fn run_until(&mut self, until: Instant) -> Result<(), Violation> {
        self.start()?;
        while let Some(entry) = self.queue.pop_until(until) {
            self.now = entry.at;
            match entry.what {
                Pending::Deliver { to, from, msg } => self.deliver(to, from, msg)?,
                Pending::Timer { node } => self.fire_timer(node, entry.at, entry.seq)?,
            }
        }
        self.now = self.now.max(until);
        let view = View {
            now: self.now,
            network: &self.network,
            nodes: &self.nodes,
        };
        self.observer
            .check(&view)
            .map_err(|detail| self.violation(None, detail))
    }

    /// [`Simulation::run_until`] `now + span`.
    pub fn run_for(&mut self, span: Duration) -> Result<(), Violation> {
        self.run_until(self.now + span)
    }

    /// Splits the network: nodes talk only within their group. Messages in flight across the
    /// cut are dropped on arrival.
    pub fn partition(&mut self, group_of: impl Fn(NodeId) -> u16) {
        self.network.partition(self.len(), group_of);
        self.trace.word(tag::PARTITION);
    }

    /// Changes the probability that a message is lost, from now on (a scenario can form an
    /// overlay on a clean network, then measure under loss).
    pub fn set_loss(&mut self, loss: f64) -> Result<(), crate::NetworkConfigError> {
        self.network.set_loss(loss)?;
        self.trace.word(tag::LOSS);
        self.trace.word(loss.to_bits());
        Ok(())
    }

    /// Makes the network whole again.
    pub fn heal(&mut self) {
        self.network.heal();
        self.trace.word(tag::HEAL);
    }

    /// Stops `node` without warning: its state is dropped, its timers and incoming messages are
    /// discarded until [`Simulation::restart`].
    pub fn crash(&mut self, node: NodeId) {
        if let Some(slot) = self.nodes.get_mut(node as usize) {
            if slot.machine.take().is_some() {
                slot.timer = Instant::MAX;
                slot.incarnation += 1;
                self.stats.crashes += 1;
                self.trace.word(tag::CRASH);
                self.trace.word(u64::from(node));
            }
        }
    }

    /// Starts a crashed `node` again with a fresh machine from the factory (no state survives a
    /// crash unless the factory restores it). A running node is left alone.
    pub fn restart(&mut self, node: NodeId) -> Result<(), Violation> {
        let Some(slot) = self.nodes.get(node as usize) else {
            return Ok(());
        };
        if slot.machine.is_some() {
            return Ok(());
        }
        let seed = self.node_seed(node, slot.incarnation);
        let machine = (self.factory)(node, seed, self.now);
        self.nodes[node as usize].machine = Some(machine);
        self.stats.restarts += 1;
        self.start()?;
        self.trace.word(tag::RESTART);
        self.trace.word(u64::from(node));
        self.after_input(node)
    }

    fn violation(&self, node: Option<NodeId>, detail: String) -> Violation {
        Violation {
            seed: self.seed,
            at: self.now,
            node,
            detail,
        }
    }

    fn deliver(&mut self, to: NodeId, from: NodeId, msg: M::Message) -> Result<(), Violation> {
        if !self.network.can_talk(from, to) {
            // The partition began while the message was in flight.
            self.stats.partitioned_in_flight += 1;
            self.trace.word(tag::DROP);
            return Ok(());
        }
        let now = self.now;
        let Some(machine) = self.nodes[to as usize].machine.as_mut() else {
            self.stats.to_crashed += 1;
            return Ok(());
        };
        self.stats.events += 1;
        self.stats.delivered += 1;
        self.trace.word(now.as_nanos());
        self.trace.word(tag::DELIVER | u64::from(to) << 8);
        self.trace.word(u64::from(from));
        msg.hash(&mut self.trace);
        machine.handle_message(now, from, msg);
        self.after_input(to)
    }

    fn fire_timer(&mut self, node: NodeId, at: Instant, seq: u64) -> Result<(), Violation> {
        let slot = &mut self.nodes[node as usize];
        if at == slot.wake {
            // The wake-up entry (or one at the same instant, which does as well). Cleared even
            // for a crashed node, or after a restart its timers would wait behind a wake-up that
            // already fired.
            slot.wake = Instant::MAX;
        }
        let Some(machine) = slot.machine.as_mut() else {
            return Ok(());
        };
        if slot.timer != at {
            // Re-armed since this entry was queued. If it was the wake-up for a later deadline,
            // queue that deadline now, where it was reserved (see `NodeSlot`).
            if slot.wake == Instant::MAX && slot.timer != Instant::MAX {
                debug_assert!(slot.timer > at && slot.timer_seq != seq);
                slot.wake = slot.timer;
                self.queue
                    .push_reserved(slot.timer, slot.timer_seq, Pending::Timer { node });
            }
            return Ok(());
        }
        slot.timer = Instant::MAX;
        self.stats.events += 1;
        self.stats.timers += 1;
        self.trace.word(at.as_nanos());
        self.trace.word(tag::TIMER | u64::from(node) << 8);
        machine.handle_timeout(at);
        self.after_input(node)
    }

    /// Drains `node`'s outputs, re-arms its timer, and routes what it sent.
    fn after_input(&mut self, node: NodeId) -> Result<(), Violation> {
        let now = self.now;
        let mut outputs = std::mem::take(&mut self.scratch);
        let slot = &mut self.nodes[node as usize];
        let Some(machine) = slot.machine.as_mut() else {
            return Ok(());
        };
        while let Some(out) = machine.poll_output() {
            outputs.push(out);
        }
        match machine.poll_timeout() {
            // A deadline at or before now means "as soon as possible": the next nanosecond, so
            // that a machine which keeps asking cannot stall virtual time.
            Some(deadline) => {
                let deadline = deadline.max(now + Duration::from_nanos(1));
                if deadline != slot.timer {
                    slot.timer = deadline;
                    slot.timer_seq = self.queue.reserve();
                    // A queued wake-up at or before the deadline will queue it when it fires.
                    if deadline < slot.wake {
                        slot.wake = deadline;
                        self.queue
                            .push_reserved(deadline, slot.timer_seq, Pending::Timer { node });
                    }
                }
            }
            None => slot.timer = Instant::MAX,
        }
        let mut result = Ok(());
        for out in outputs.drain(..) {
            match out {
                Output::Send { to, msg } => self.send(node, to, msg),
                Output::Event(event) if result.is_ok() => {
                    self.stats.protocol_events += 1;
                    self.trace.word(tag::EVENT | u64::from(node) << 8);
                    event.hash(&mut self.trace);
                    let view = View {
                        now,
                        network: &self.network,
                        nodes: &self.nodes,
                    };
                    if let Err(detail) = self.observer.on_event(&view, node, &event) {
                        result = Err(self.violation(Some(node), detail));
                    }
                }
                Output::Event(_) => {}
            }
        }
        self.scratch = outputs;
        result
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: M::Message) {
        self.stats.sent += 1;
        if to as usize >= self.nodes.len() {
            self.stats.misaddressed += 1;
            return;
        }
        match self.network.route(self.now, from, to) {
            Route::Dropped(Drop::Loss) => self.stats.lost += 1,
            Route::Dropped(Drop::Partition) => self.stats.partitioned += 1,
            Route::Deliver(at, dup, reordered) => {
                self.stats.reordered += u64::from(reordered);
                if let Some(dup_at) = dup {
                    self.stats.duplicated += 1;
                    self.queue.push(
                        dup_at,
                        Pending::Deliver {
                            to,
                            from,
                            msg: msg.clone(),
                        },
                    );
                }
                self.queue.push(at, Pending::Deliver { to, from, msg });
            }
        }
    }
}
