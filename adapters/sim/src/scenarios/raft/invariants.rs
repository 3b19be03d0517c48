//! The Raft paper's safety properties (Figure 3), checked while the simulation runs.
//!
//! - **Election safety**: at most one leader per term — checked on every leadership event and on
//!   every periodic check.
//! - **Log matching**: if two logs hold an entry with the same index and term, they are identical
//!   up to it — checked over every pair of running servers at every periodic check.
//! - **Leader completeness**: a leader holds every entry committed in earlier terms — checked when
//!   a server becomes leader and at every periodic check. An entry counts as committed once some
//!   server applied it; a server of term `t` applying it means a leader of term at most `t`
//!   committed it, so every leader of a later term must hold it.
//! - **State-machine safety**: no two servers apply different entries at one index — checked on
//!   every apply (also after restarts, when a server applies its log again).

use std::collections::BTreeMap;

use starling_core::raft::{Entry, Raft, Role};
use starling_core::time::Instant;

use super::member::{Member, SimEvent};
use crate::{NodeId, Observer, View};

pub(crate) struct Invariants {
    servers: u32,
    /// The leader of each term seen so far.
    leaders: BTreeMap<u64, NodeId>,
    /// Entries known committed (applied somewhere), with the lowest term of a server that
    /// applied them.
    committed: BTreeMap<u64, (Entry<NodeId>, u64)>,
    /// Per server, when its current campaign began (cleared when it follows or anyone wins).
    campaigns: Vec<Option<Instant>>,
    /// The leader of the highest term so far.
    reigning: Option<NodeId>,
    /// Since when the group has had no reigning leader (it crashed or stepped down).
    leaderless_since: Option<Instant>,
    /// Leaders elected.
    pub elections: u64,
    /// Per election, the failover time: from the moment the reigning leader crashed or stepped
    /// down (time zero for the first) to the new leader's victory; when the old leader was
    /// merely cut off and still believed itself leader, from the winner's first campaign step.
    pub election_ms: Vec<f64>,
}

impl Invariants {
    pub fn new(servers: u32) -> Invariants {
        Invariants {
            servers,
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            campaigns: vec![None; servers as usize],
            reigning: None,
            leaderless_since: Some(Instant::ZERO),
            elections: 0,
            election_ms: Vec::new(),
        }
    }

    /// The scenario crashed `node`.
    pub fn crashed(&mut self, node: NodeId, now: Instant) {
        if self.reigning == Some(node) {
            self.leaderless_since.get_or_insert(now);
        }
        if let Some(c) = self.campaigns.get_mut(node as usize) {
            *c = None;
        }
    }

    fn leader_complete(&self, id: NodeId, raft: &Raft<NodeId>) -> Result<(), String> {
        let term = raft.term();
        for (index, (entry, seen_in)) in self.committed.range(raft.first_index()..) {
            if *seen_in >= term {
                continue;
            }
            if raft.entry(*index) != Some(entry) {
                return Err(format!(
                    "leader completeness: leader {id} of term {term} lacks entry {index} (term {}) committed by term {seen_in}; it holds {:?}",
                    entry.term,
                    raft.entry(*index).map(|e| e.term)
                ));
            }
        }
        Ok(())
    }
}

fn servers<'a>(
    view: &'a View<'_, Member>,
    n: u32,
) -> impl Iterator<Item = (NodeId, &'a Raft<NodeId>)> {
    (0..n).filter_map(move |id| Some((id, view.node(id)?.server()?.raft())))
}

/// Log matching between two logs: below the highest common index where their terms agree, every
/// entry both still hold must be identical.
fn logs_match(a: &Raft<NodeId>, b: &Raft<NodeId>) -> Result<(), u64> {
    let lo = a.first_index().max(b.first_index());
    let hi = a.last_index().min(b.last_index());
    let Some(top) = (lo..=hi)
        .rev()
        .find(|&i| a.entry(i).map(|e| e.term) == b.entry(i).map(|e| e.term))
    else {
        return Ok(());
    };
    match (lo..=top).find(|&i| a.entry(i) != b.entry(i)) {
        Some(i) => Err(i),
        None => Ok(()),
    }
}

impl Observer<Member> for Invariants {
    fn on_event(
        &mut self,
        view: &View<'_, Member>,
        node: NodeId,
        event: &SimEvent,
    ) -> Result<(), String> {
        let Some(raft) = view.node(node).and_then(Member::server).map(|s| s.raft()) else {
            return Ok(());
        };
        match event {
            SimEvent::Role {
                role: Role::Leader,
                term,
            } => {
                match self.leaders.insert(*term, node) {
                    Some(other) if other != node => {
                        return Err(format!(
                            "election safety: servers {other} and {node} both lead term {term}"
                        ));
                    }
                    Some(_) => return Ok(()), // the same leader, reported again
                    None => self.elections += 1,
                }
                if let Some(start) = self.campaigns[node as usize] {
                    let ms = view.now().saturating_since(start).as_nanos() as f64 / 1e6;
                    self.election_ms.push(ms);
                }
                self.campaigns.iter_mut().for_each(|c| *c = None);
                self.leader_complete(node, raft)?;
            }
            SimEvent::Role { role, .. } => {
                if self.reigning == Some(node) {
                    self.reigning = None;
                    self.leaderless_since.get_or_insert(view.now());
                }
                let campaign = &mut self.campaigns[node as usize];
                if *role == Role::Follower {
                    *campaign = None;
                } else {
                    campaign.get_or_insert(view.now());
                }
            }
            SimEvent::Applied(entry) => {
                let term = raft.term();
                match self.committed.get_mut(&entry.index) {
                    Some((known, _)) if known != entry => {
                        return Err(format!(
                            "state-machine safety: server {node} applied {entry:?} at {} where {known:?} was applied",
                            entry.index
                        ));
                    }
                    Some((_, seen_in)) => *seen_in = (*seen_in).min(term),
                    None => {
                        self.committed.insert(entry.index, (entry.clone(), term));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn check(&mut self, view: &View<'_, Member>) -> Result<(), String> {
        let running: Vec<(NodeId, &Raft<NodeId>)> = servers(view, self.servers).collect();
        for (i, (a, ra)) in running.iter().enumerate() {
            if ra.role() == Role::Leader {
                match self.leaders.get(&ra.term()) {
                    Some(l) if l != a => {
                        return Err(format!(
                            "election safety: servers {l} and {a} both lead term {}",
                            ra.term()
                        ))
                    }
                    _ => {}
                }
                self.leader_complete(*a, ra)?;
            }
            for (b, rb) in &running[i + 1..] {
                logs_match(ra, rb).map_err(|index| {
                    format!(
                        "log matching: servers {a} and {b} differ at {index}: {:?} vs {:?}",
                        ra.entry(index),
                        rb.entry(index)
                    )
                })?;
            }
        }
        Ok(())
    }
}
