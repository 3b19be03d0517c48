//! Tests in the order of the Raft paper's sections, on a small in-memory cluster: messages are
//! queued and delivered explicitly, every persist batch is written to a per-server "disk" at
//! once (or held back, where a test says so), and crashes restart a server from its disk.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::*;
use crate::machine::{Machine, Output};
use crate::time::{Duration, Instant};

struct Cluster {
    nodes: BTreeMap<u32, Raft<u32>>,
    disks: BTreeMap<u32, MemStorage<u32>>,
    applied: BTreeMap<u32, Vec<Entry<u32>>>,
    net: VecDeque<(u32, u32, RaftMessage<u32>)>,
    cut: BTreeSet<u32>,
    /// Servers whose persist batches are not acknowledged (their disk is slow).
    slow_disk: BTreeSet<u32>,
    now: Instant,
    config: RaftConfig,
    bootstrap: Membership<u32>,
    reads: Vec<(u32, ReadId, u64)>,
    failed_reads: Vec<ReadId>,
    sent: usize,
}

impl Cluster {
    fn new(n: u32) -> Self {
        Self::with_config(n, RaftConfig::default())
    }

    fn with_config(n: u32, config: RaftConfig) -> Self {
        let bootstrap = Membership::new(1..=n);
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            applied: BTreeMap::new(),
            net: VecDeque::new(),
            cut: BTreeSet::new(),
            slow_disk: BTreeSet::new(),
            now: Instant::ZERO,
            config,
            bootstrap: bootstrap.clone(),
            reads: Vec::new(),
            failed_reads: Vec::new(),
            sent: 0,
        };
        for id in 1..=n {
            c.add(id, bootstrap.clone());
        }
        c
    }

    fn add(&mut self, id: u32, bootstrap: Membership<u32>) {
        let raft = Raft::new(self.config, id, bootstrap, u64::from(id), self.now).unwrap();
        self.nodes.insert(id, raft);
        self.disks.insert(id, MemStorage::default());
        self.applied.insert(id, Vec::new());
    }

    fn restart(&mut self, id: u32) {
        let recovered = self.disks[&id].recovered();
        let raft = Raft::restore(
            self.config,
            id,
            self.bootstrap.clone(),
            recovered,
            u64::from(id) + 1000,
            self.now,
        )
        .unwrap();
        self.nodes.insert(id, raft);
        self.applied.insert(id, Vec::new());
    }

    fn drain(&mut self, id: u32) {
        let node = self.nodes.get_mut(&id).unwrap();
        while let Some(out) = node.poll_output() {
            match out {
                Output::Send { to, msg } => {
                    self.sent += 1;
                    self.net.push_back((id, to, msg));
                }
                Output::Event(RaftEvent::Persist(batch)) => {
                    let bid = batch.id;
                    self.disks.get_mut(&id).unwrap().write(batch);
                    if !self.slow_disk.contains(&id) {
                        node.persisted(self.now, bid);
                    }
                }
                Output::Event(RaftEvent::Apply(entries)) => {
                    self.applied.get_mut(&id).unwrap().extend(entries);
                }
                Output::Event(RaftEvent::ReadReady { id: read, index }) => {
                    self.reads.push((id, read, index));
                }
                Output::Event(RaftEvent::ReadFailed { id: read }) => self.failed_reads.push(read),
                Output::Event(_) => {}
            }
        }
    }

    /// Delivers messages until none are left (or `limit` deliveries).
    fn settle(&mut self) {
        let ids: Vec<u32> = self.nodes.keys().copied().collect();
        for id in ids {
            self.drain(id);
        }
        let mut steps = 0;
        while let Some((from, to, msg)) = self.net.pop_front() {
            steps += 1;
            assert!(steps < 1_000_000, "messages never settle");
            if self.cut.contains(&from) || self.cut.contains(&to) {
                continue;
            }
            if let Some(node) = self.nodes.get_mut(&to) {
                node.handle_message(self.now, from, msg);
                self.drain(to);
            }
        }
    }

    /// Advances time by `step` at a time for `total`, firing due timers and settling.
    fn run_for(&mut self, total: Duration, step: Duration) {
        let end = self.now + total;
        while self.now < end {
            self.now += step;
            let ids: Vec<u32> = self.nodes.keys().copied().collect();
            for id in ids {
                let node = self.nodes.get_mut(&id).unwrap();
                if node.poll_timeout().is_some_and(|t| t <= self.now) {
                    node.handle_timeout(self.now);
                }
                self.drain(id);
            }
            self.settle();
        }
    }

    fn run(&mut self, ms: u64) {
        self.run_for(Duration::from_millis(ms), Duration::from_millis(5));
    }

    fn leaders(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter(|(id, n)| n.role() == Role::Leader && !self.cut.contains(id))
            .map(|(id, _)| *id)
            .collect()
    }

    fn leader(&self) -> u32 {
        let leaders = self.leaders();
        assert_eq!(leaders.len(), 1, "expected one leader, got {leaders:?}");
        leaders[0]
    }

    fn propose(&mut self, id: u32, data: &'static [u8]) -> (u64, u64) {
        let now = self.now;
        let at = self
            .nodes
            .get_mut(&id)
            .unwrap()
            .propose(now, Bytes::from_static(data))
            .unwrap();
        self.drain(id);
        at
    }

    fn commands(&self, id: u32) -> Vec<Bytes> {
        self.applied[&id]
            .iter()
            .filter_map(|e| match &e.kind {
                EntryKind::Command(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }
}

// §5.2: leader election.

#[test]
fn one_leader_is_elected_and_everyone_knows_it() {
    for n in [1, 3, 5] {
        let mut c = Cluster::new(n);
        c.run(1500);
        let leader = c.leader();
        let term = c.nodes[&leader].term();
        for node in c.nodes.values() {
            assert_eq!(node.term(), term);
            assert_eq!(node.leader(), Some(leader));
        }
    }
}

#[test]
fn a_new_leader_is_elected_after_the_leader_is_cut_off() {
    let mut c = Cluster::new(5);
    c.run(1500);
    let old = c.leader();
    let old_term = c.nodes[&old].term();
    c.cut.insert(old);
    c.run(2000);
    let new = c.leader();
    assert_ne!(new, old);
    assert!(c.nodes[&new].term() > old_term);
    // Check-quorum: the old leader heard from no majority and stepped down on its own.
    assert_ne!(c.nodes[&old].role(), Role::Leader);
}

#[test]
fn pre_vote_keeps_a_returning_server_from_raising_the_term() {
    let mut c = Cluster::new(3);
    c.run(1500);
    let leader = c.leader();
    let term = c.nodes[&leader].term();
    let loner = *c.nodes.keys().find(|id| **id != leader).unwrap();
    c.cut.insert(loner);
    c.run(5000);
    assert_eq!(
        c.nodes[&loner].term(),
        term,
        "pre-votes do not raise the term"
    );
    c.cut.clear();
    c.run(1000);
    assert_eq!(c.leader(), leader, "the healthy leader was not deposed");
    assert_eq!(c.nodes[&leader].term(), term);
}

#[test]
fn without_pre_vote_a_returning_server_does_raise_the_term() {
    let config = RaftConfig {
        pre_vote: false,
        check_quorum: false,
        ..RaftConfig::default()
    };
    let mut c = Cluster::with_config(3, config);
    c.run(1500);
    let leader = c.leader();
    let term = c.nodes[&leader].term();
    let loner = *c.nodes.keys().find(|id| **id != leader).unwrap();
    c.cut.insert(loner);
    c.run(5000);
    assert!(
        c.nodes[&loner].term() > term,
        "the contrast the pre-vote test relies on"
    );
}

#[test]
fn votes_wait_for_the_vote_to_be_durable() {
    let mut c = Cluster::new(3);
    c.slow_disk.insert(2);
    c.slow_disk.insert(3);
    c.run(1500);
    assert!(c.leaders().is_empty() || c.leaders() == vec![1]);
    if c.leaders() == vec![1] {
        panic!("node 1 cannot win: its voters never made their votes durable");
    }
    // Servers 2 and 3 campaign too, but their own votes (and grants) are never acknowledged.
    assert!(c.nodes.values().all(|n| n.role() != Role::Leader));
    c.slow_disk.clear();
    for id in [2, 3] {
        let last = c.nodes[&id].next_batch - 1;
        let now = c.now;
        c.nodes.get_mut(&id).unwrap().persisted(now, last);
    }
    c.run(1500);
    c.leader();
}

// §5.3: log replication.

#[test]
fn proposals_commit_and_apply_in_order_everywhere() {
    let mut c = Cluster::new(5);
    c.run(1500);
    let leader = c.leader();
    for data in [&b"a"[..], b"b", b"c"] {
        c.propose(leader, data);
    }
    c.run(200);
    for id in 1..=5 {
        assert_eq!(c.commands(id), vec![&b"a"[..], b"b", b"c"], "server {id}");
    }
    assert!(c.nodes.values().all(|n| n.commit_index() == n.last_index()));
}

#[test]
fn proposals_made_together_travel_in_one_append() {
    let mut c = Cluster::new(3);
    c.run(1500);
    let leader = c.leader();
    c.settle();
    let before = c.nodes[&leader].stats().appends_sent;
    let now = c.now;
    for _ in 0..64 {
        c.nodes
            .get_mut(&leader)
            .unwrap()
            .propose(now, Bytes::from_static(b"x"))
            .unwrap();
    }
    c.drain(leader);
    let after = c.nodes[&leader].stats().appends_sent;
    assert_eq!(
        after - before,
        2,
        "one append per follower for 64 proposals"
    );
}

#[test]
fn a_divergent_follower_is_repaired_by_whole_terms() {
    let mut c = Cluster::new(3);
    c.run(1500);
    let leader = c.leader();
    // The leader appends entries only it has, then is cut off.
    c.cut.insert(leader);
    for _ in 0..50 {
        let now = c.now;
        let _ = c
            .nodes
            .get_mut(&leader)
            .unwrap()
            .propose(now, Bytes::from_static(b"lost"));
    }
    c.drain(leader);
    c.net.clear();
    c.run(2000);
    let new = c.leader();
    assert_ne!(new, leader);
    c.propose(new, b"kept");
    c.run(100);
    c.cut.clear();
    let sent = c.sent;
    c.run(1000);
    // The old leader's 50 uncommitted entries are replaced; the backtracking needs a few round
    // trips, not 50.
    assert_eq!(c.commands(leader), vec![Bytes::from_static(b"kept")]);
    assert!(c.sent - sent < 200, "sent {}", c.sent - sent);
}

// §5.4: safety.

#[test]
fn a_stale_log_cannot_win_an_election() {
    let mut c = Cluster::new(3);
    c.run(1500);
    let leader = c.leader();
    let stale = *c.nodes.keys().find(|id| **id != leader).unwrap();
    c.cut.insert(stale);
    c.propose(leader, b"x");
    c.run(200);
    c.cut.clear();
    c.cut.insert(leader);
    c.run(3000);
    let new = c.leader();
    assert_ne!(
        new, stale,
        "the server missing a committed entry was elected"
    );
    assert_eq!(c.commands(new), vec![Bytes::from_static(b"x")]);
}

#[test]
fn a_restarted_server_recovers_from_its_disk() {
    let mut c = Cluster::new(3);
    c.run(1500);
    let leader = c.leader();
    c.propose(leader, b"1");
    c.propose(leader, b"2");
    c.run(200);
    let other = *c.nodes.keys().find(|id| **id != leader).unwrap();
    let term = c.nodes[&other].term();
    c.restart(other);
    assert_eq!(c.nodes[&other].term(), term);
    assert_eq!(c.nodes[&other].last_index(), c.nodes[&leader].last_index());
    c.run(100);
    assert_eq!(c.commands(other), vec![&b"1"[..], b"2"]);
}

// §7: log compaction.

/// Three servers sending snapshots in 3-byte chunks; one follower is cut off while ten
/// commands commit and the leader compacts them away. Returns the cluster (still cut), the
/// leader and the follower, which can now only catch up by snapshot.
fn leader_compacted_past_a_cut_follower() -> (Cluster, u32, u32) {
    let config = RaftConfig {
        snapshot_chunk_len: 3,
        ..RaftConfig::default()
    };
    let mut c = Cluster::with_config(3, config);
    c.run(1500);
    let leader = c.leader();
    let lagging = *c.nodes.keys().find(|id| **id != leader).unwrap();
    c.cut.insert(lagging);
    for _ in 0..10 {
        c.propose(leader, b"v");
    }
    c.run(200);
    let (now, applied) = (c.now, c.nodes[&leader].applied_index());
    let node = c.nodes.get_mut(&leader).unwrap();
    node.compact(now, applied, Bytes::from_static(b"state-of-ten"))
        .unwrap();
    assert_eq!(node.first_index(), applied + 1);
    (c, leader, lagging)
}

#[test]
fn a_far_behind_follower_catches_up_from_a_chunked_snapshot() {
    let (mut c, leader, lagging) = leader_compacted_past_a_cut_follower();
    c.drain(leader);
    c.cut.clear();
    c.run(500);
    let n = &c.nodes[&lagging];
    assert_eq!(n.commit_index(), c.nodes[&leader].commit_index());
    let snap = c.disks[&lagging].snapshot().expect("snapshot installed");
    assert_eq!(snap.data, Bytes::from_static(b"state-of-ten"));
    assert!(
        c.nodes[&leader].stats().snapshot_chunks_sent >= 4,
        "sent in 3-byte chunks"
    );
    c.propose(leader, b"after");
    c.run(100);
    assert_eq!(c.commands(lagging), vec![Bytes::from_static(b"after")]);
}

#[test]
fn a_follower_restarted_mid_snapshot_is_sent_it_again_from_the_start() {
    let (mut c, leader, lagging) = leader_compacted_past_a_cut_follower();
    c.cut.clear();
    c.drain(leader);
    // Deliver one message at a time until the follower holds two chunks, then restart it: its
    // partial snapshot is gone while the leader would go on from the third chunk.
    c.now += Duration::from_millis(60); // a heartbeat round: the leader starts the transfer
    let now = c.now;
    c.nodes.get_mut(&leader).unwrap().handle_timeout(now);
    c.drain(leader);
    let mut chunks = 0;
    while chunks < 2 {
        let (from, to, msg) = c.net.pop_front().expect("the transfer never started");
        chunks += usize::from(to == lagging && matches!(msg, RaftMessage::Snapshot { .. }));
        c.nodes
            .get_mut(&to)
            .unwrap()
            .handle_message(c.now, from, msg);
        c.drain(to);
    }
    c.net.clear();
    c.restart(lagging);
    c.run(500);
    assert_eq!(
        c.nodes[&lagging].commit_index(),
        c.nodes[&leader].commit_index()
    );
    let snap = c.disks[&lagging].snapshot().expect("installed");
    assert_eq!(snap.data, Bytes::from_static(b"state-of-ten"));
}

#[test]
fn compaction_refuses_unapplied_or_already_compacted_indexes() {
    let mut c = Cluster::new(1);
    c.run(1000);
    c.propose(1, b"a");
    c.run(10);
    let now = c.now;
    let node = c.nodes.get_mut(&1).unwrap();
    let applied = node.applied_index();
    assert_eq!(
        node.compact(now, applied + 1, Bytes::new()),
        Err(CompactError::NotApplied)
    );
    node.compact(now, applied, Bytes::new()).unwrap();
    assert_eq!(
        node.compact(now, applied, Bytes::new()),
        Err(CompactError::AlreadyCompacted)
    );
}

// Thesis §4: membership changes.

#[test]
fn a_learner_joins_catches_up_and_is_promoted_then_a_voter_is_removed() {
    let mut c = Cluster::new(3);
    c.run(1500);
    let leader = c.leader();
    c.propose(leader, b"before");
    c.run(100);
    c.add(4, Membership::default());
    let now = c.now;
    let node = c.nodes.get_mut(&leader).unwrap();
    assert_eq!(
        node.propose_change(now, ConfChange::Promote(4)),
        Err(ProposeError::Membership(ConfChangeError::NotApplicable))
    );
    node.propose_change(now, ConfChange::AddLearner(4)).unwrap();
    c.run(300);
    assert_eq!(c.commands(4), vec![Bytes::from_static(b"before")]);
    assert_eq!(c.nodes[&4].role(), Role::Follower);
    let now = c.now;
    c.nodes
        .get_mut(&leader)
        .unwrap()
        .propose_change(now, ConfChange::Promote(4))
        .unwrap();
    c.run(300);
    for (id, n) in &c.nodes {
        assert_eq!(
            n.membership().voters.len(),
            4,
            "server {id}: {:?}",
            n.membership()
        );
    }
    let victim = *c
        .nodes
        .keys()
        .find(|id| **id != leader && **id != 4)
        .unwrap();
    let now = c.now;
    c.nodes
        .get_mut(&leader)
        .unwrap()
        .propose_change(now, ConfChange::Remove(victim))
        .unwrap();
    c.run(300);
    assert!(!c.nodes[&leader].membership().contains(&victim));
    c.propose(leader, b"after");
    c.run(300);
    assert_eq!(c.commands(4).last(), Some(&Bytes::from_static(b"after")));
}

#[test]
fn one_membership_change_at_a_time() {
    let mut c = Cluster::new(3);
    c.run(1500);
    let leader = c.leader();
    let now = c.now;
    let node = c.nodes.get_mut(&leader).unwrap();
    node.propose_change(now, ConfChange::AddLearner(9)).unwrap();
    assert_eq!(
        node.propose_change(now, ConfChange::AddLearner(8)),
        Err(ProposeError::ChangePending)
    );
}

#[test]
fn a_leader_that_removes_itself_steps_down_once_committed() {
    let mut c = Cluster::new(3);
    c.run(1500);
    let leader = c.leader();
    let now = c.now;
    c.nodes
        .get_mut(&leader)
        .unwrap()
        .propose_change(now, ConfChange::Remove(leader))
        .unwrap();
    c.run(2000);
    assert_ne!(c.nodes[&leader].role(), Role::Leader);
    c.cut.insert(leader);
    let new = c.leader();
    assert_ne!(new, leader);
    assert_eq!(c.nodes[&new].membership().voters.len(), 2);
}

// Thesis §3.10: leadership transfer.

#[test]
fn leadership_moves_to_the_named_server() {
    let mut c = Cluster::new(5);
    c.run(1500);
    let leader = c.leader();
    let target = *c.nodes.keys().find(|id| **id != leader).unwrap();
    let now = c.now;
    c.nodes
        .get_mut(&leader)
        .unwrap()
        .transfer_leadership(now, target)
        .unwrap();
    assert_eq!(
        c.nodes.get_mut(&leader).unwrap().propose(now, Bytes::new()),
        Err(ProposeError::TransferInProgress)
    );
    c.run(200);
    assert_eq!(c.leader(), target);
}

// Thesis §6.4: ReadIndex.

#[test]
fn reads_are_confirmed_by_a_majority_and_fail_when_leadership_is_lost() {
    let mut c = Cluster::new(3);
    c.run(1500);
    let leader = c.leader();
    c.propose(leader, b"w");
    c.run(100);
    let now = c.now;
    let id = c.nodes.get_mut(&leader).unwrap().read_index(now).unwrap();
    c.drain(leader);
    assert!(c.reads.is_empty(), "not before a heartbeat round");
    c.settle();
    let commit = c.nodes[&leader].commit_index();
    assert_eq!(c.reads, vec![(leader, id, commit)]);
    // Cut off from the majority, the read never confirms, and fails when the leader steps down.
    let others: Vec<u32> = c.nodes.keys().copied().filter(|i| *i != leader).collect();
    c.cut.extend(others);
    let now = c.now;
    let id = c.nodes.get_mut(&leader).unwrap().read_index(now).unwrap();
    c.run(1500);
    assert_eq!(c.reads.len(), 1);
    assert_eq!(c.failed_reads, vec![id]);
    assert_eq!(
        c.nodes.get_mut(&leader).unwrap().read_index(now),
        Err(ProposeError::NotLeader { leader: None })
    );
}

#[test]
fn a_term_at_u64_max_from_a_peer_cannot_make_a_server_wrap_its_term() {
    // Found by the raft_machine fuzzer: a TimeoutNow carrying the largest term made the
    // server adopt it, then campaign for the term after it.
    let mut c = Cluster::new(3);
    c.run(3_000);
    let leader = c.leader();
    let other = (1..=3).find(|&id| id != leader).unwrap();
    let now = c.now;
    let node = c.nodes.get_mut(&other).unwrap();
    node.handle_message(now, leader, RaftMessage::TimeoutNow { term: u64::MAX });
    node.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(node.term(), u64::MAX);
    assert_eq!(node.stats().campaigns_refused, 2);
    while let Some(out) = node.poll_output() {
        if let Output::Send { msg, .. } = out {
            assert!(
                !matches!(msg, RaftMessage::Vote { .. }),
                "campaigned: {msg:?}"
            );
        }
    }
}

#[test]
fn appends_and_snapshots_at_the_end_of_the_index_space_are_refused_without_overflow() {
    let mut c = Cluster::new(3);
    c.run(3_000);
    let leader = c.leader();
    let other = (1..=3).find(|&id| id != leader).unwrap();
    let (now, term) = (c.now, c.nodes[&leader].term());
    let node = c.nodes.get_mut(&other).unwrap();
    let last = node.last_index();
    let entry = |index| Entry {
        index,
        term,
        kind: EntryKind::Command(Bytes::from_static(b"x")),
    };
    let append = RaftMessage::Append {
        term,
        prev_index: u64::MAX,
        prev_term: term,
        entries: vec![entry(0)],
        commit: 0,
    };
    node.handle_message(now, leader, append);
    let snapshot = RaftMessage::Snapshot {
        term,
        index: u64::MAX,
        snapshot_term: term,
        membership: Membership::new(1..=3),
        total_len: 1,
        offset: 0,
        data: Bytes::from_static(b"s"),
    };
    node.handle_message(now, leader, snapshot);
    assert_eq!(node.last_index(), last);
}

#[test]
fn messages_beyond_the_configured_sizes_are_dropped_on_arrival() {
    // The codec bounds only the generic wire limits; the group's own batch, command and chunk
    // sizes are the machine's to enforce, before the message can touch the term or the log.
    let config = RaftConfig {
        max_entries_per_append: 2,
        max_command_len: 4,
        snapshot_chunk_len: 8,
        ..RaftConfig::default()
    };
    let mut c = Cluster::with_config(3, config);
    c.run(3_000);
    let leader = c.leader();
    let other = (1..=3).find(|&id| id != leader).unwrap();
    let (now, term) = (c.now, c.nodes[&leader].term());
    let node = c.nodes.get_mut(&other).unwrap();
    let last = node.last_index();
    let last_term = node.entry(last).map_or(0, |e| e.term);
    let append = |term, lens: &[usize]| RaftMessage::Append {
        term,
        prev_index: last,
        prev_term: last_term,
        entries: lens
            .iter()
            .zip(last + 1..)
            .map(|(len, index)| Entry {
                index,
                term: last_term,
                kind: EntryKind::Command(Bytes::from(vec![b'x'; *len])),
            })
            .collect(),
        commit: 0,
    };
    // Each carries a higher term, which the server would otherwise adopt.
    node.handle_message(now, leader, append(term + 1, &[1, 1, 1]));
    node.handle_message(now, leader, append(term + 1, &[5]));
    let chunk = RaftMessage::Snapshot {
        term: term + 1,
        index: last + 10,
        snapshot_term: term,
        membership: Membership::new(1..=3),
        total_len: 9,
        offset: 0,
        data: Bytes::from(vec![b's'; 9]),
    };
    node.handle_message(now, leader, chunk);
    assert_eq!(node.stats().oversized_dropped, 3);
    assert_eq!((node.term(), node.last_index()), (term, last));
    // At the limits exactly, an append is taken.
    node.handle_message(now, leader, append(term, &[4, 4]));
    assert_eq!(node.stats().oversized_dropped, 3);
    assert_eq!(node.last_index(), last + 2);
}
