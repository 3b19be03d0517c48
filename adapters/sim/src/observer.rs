//! Observers and invariant checks attached to a simulation.

use core::fmt;

use starling_core::machine::Machine;
use starling_core::time::Instant;

use crate::network::Network;
use crate::simulation::NodeSlot;
use crate::NodeId;

/// A read-only look at the simulation, handed to observers.
pub struct View<'a, M> {
    pub(crate) now: Instant,
    pub(crate) network: &'a Network,
    pub(crate) nodes: &'a [NodeSlot<M>],
}

impl<M> View<'_, M> {
    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }
    /// The network, for partition and latency queries.
    pub fn network(&self) -> &Network {
        self.network
    }
    /// Number of nodes, up or down.
    pub fn len(&self) -> u32 {
        self.nodes.len() as u32
    }
    /// Whether the simulation has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// The machine of `node`, unless it is crashed.
    pub fn node(&self, node: NodeId) -> Option<&M> {
        self.nodes.get(node as usize)?.machine.as_ref()
    }
    /// Every running machine with its id.
    pub fn running(&self) -> impl Iterator<Item = (NodeId, &M)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i as NodeId, s.machine.as_ref()?)))
    }
}

/// Watches a run: counts what a scenario reports and checks invariants. Returning `Err` from a
/// hook fails the run with a [`Violation`] that names the seed.
pub trait Observer<M: Machine> {
    /// A node emitted `event`.
    fn on_event(
        &mut self,
        view: &View<'_, M>,
        node: NodeId,
        event: &M::Event,
    ) -> Result<(), String> {
        let _ = (view, node, event);
        Ok(())
    }
    /// Called at the end of every [`crate::Simulation::run_until`], with every node in view.
    fn check(&mut self, view: &View<'_, M>) -> Result<(), String> {
        let _ = view;
        Ok(())
    }
}

/// The observer that watches nothing.
impl<M: Machine> Observer<M> for () {}

/// Two observers side by side: a scenario's counters and an invariant, say.
impl<M: Machine, A: Observer<M>, B: Observer<M>> Observer<M> for (A, B) {
    fn on_event(
        &mut self,
        view: &View<'_, M>,
        node: NodeId,
        event: &M::Event,
    ) -> Result<(), String> {
        self.0.on_event(view, node, event)?;
        self.1.on_event(view, node, event)
    }
    fn check(&mut self, view: &View<'_, M>) -> Result<(), String> {
        self.0.check(view)?;
        self.1.check(view)
    }
}

/// An invariant failed. Carries the seed so the run can be replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The seed of the failing run.
    pub seed: u64,
    /// Virtual time of the failure.
    pub at: Instant,
    /// The node whose event tripped the check, if one did.
    pub node: Option<NodeId>,
    /// What the observer said.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant violated at {}", self.at)?;
        if let Some(n) = self.node {
            write!(f, " on node {n}")?;
        }
        write!(f, ": {} (replay with --seed {})", self.detail, self.seed)
    }
}

impl std::error::Error for Violation {}
