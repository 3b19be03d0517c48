//! [`KvServer`]: one replica. A reactor thread runs the Starling node (sessions, sockets); a
//! driver thread owns the Raft machine, the store and the state machine, and is fed the node's
//! frames through a channel.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

use bytes::Bytes;
use starling_core::id::PeerId;
use starling_core::machine::{Machine, Output};
use starling_core::node::NodeEvent;
use starling_core::raft::{
    EntryKind, Membership, PersistBatch, ProposeError, Raft, RaftConfig, RaftEvent, ReadId, Role,
};
use starling_core::session::NodeKeys;
use starling_core::time::Instant;
use starling_core::wire::{decode_message, message_to_frame, Frame, Limits, ProtocolId};
use starling_mio::{Handle, Reactor, ReactorStats};
use starling_store::{StoreConfig, SyncMode};

use crate::proto::{KvResult, Op, Request, Response, KV_PROTOCOL, MSG_REQUEST};
use crate::state::{Command, KvState};
use crate::storage::{RaftStorage, StorageError};
use crate::{reactor_config, MonoClock};

/// Inputs the driver takes from its channel per turn before it pumps Raft, so a flood of
/// frames cannot starve timers and the disk.
const MAX_INPUTS_PER_TURN: usize = 4096;

/// How to run one server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The node's keys; its `PeerId` is its Raft id.
    pub keys: NodeKeys,
    /// Where to listen (the same address on every restart, so peers can redial it).
    pub listen: SocketAddr,
    /// The Raft log and snapshots live here.
    pub data_dir: PathBuf,
    /// The founding voters, this server included (the same list on every server).
    pub voters: Vec<PeerId>,
    /// The other servers to dial and keep connected.
    pub peers: Vec<(PeerId, SocketAddr)>,
    /// Network name (sessions of other networks are refused).
    pub network: String,
    /// Raft tuning. [`ServerConfig::new`] keeps Append frames under the session's 1 MiB limit.
    pub raft: RaftConfig,
    /// `Always` for durability; `Never` only for tests that do not care about power loss.
    pub sync: SyncMode,
    /// Compact the log once this many applied entries sit in it.
    pub compact_every: u64,
}

impl ServerConfig {
    /// Defaults: fsync on, compaction every 10,000 entries.
    pub fn new(keys: NodeKeys, listen: SocketAddr, data_dir: PathBuf, voters: Vec<PeerId>) -> Self {
        // An Append holds at most this plus one entry, and a command at most a key and value:
        // both well under the session's 1 MiB frame limit.
        let raft = RaftConfig {
            max_bytes_per_append: 256 << 10,
            snapshot_chunk_len: 256 << 10,
            max_command_len: crate::proto::MAX_KEY_LEN + crate::proto::MAX_VALUE_LEN + 64,
            ..RaftConfig::default()
        };
        ServerConfig {
            keys,
            listen,
            data_dir,
            voters,
            peers: Vec::new(),
            network: crate::DEFAULT_NETWORK.to_string(),
            raft,
            sync: SyncMode::Always,
            compact_every: 10_000,
        }
    }
}

/// Why a server could not start.
#[derive(Debug)]
pub enum ServerError {
    /// Binding the listener or starting a thread failed.
    Io(io::Error),
    /// The data directory could not be opened or decoded.
    Storage(StorageError),
    /// The configuration cannot work.
    Config(String),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Io(e) => write!(f, "i/o: {e}"),
            ServerError::Storage(e) => e.fmt(f),
            ServerError::Config(e) => write!(f, "configuration: {e}"),
        }
    }
}

impl std::error::Error for ServerError {}

/// A snapshot of a server's state, for tests and monitoring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStatus {
    /// Raft role.
    pub role: Role,
    /// Current term.
    pub term: u64,
    /// Known leader.
    pub leader: Option<PeerId>,
    /// Commit index.
    pub commit: u64,
    /// Highest index applied to the map.
    pub applied: u64,
    /// Keys in the map.
    pub keys: usize,
    /// Set when the driver stopped on an error (a failed write or sync).
    pub failed: Option<String>,
}

enum Input {
    Frame(PeerId, Frame),
    Stop,
}

/// A running replica. Dropping it shuts it down.
pub struct KvServer {
    id: PeerId,
    addr: SocketAddr,
    handle: Handle,
    inputs: Sender<Input>,
    status: Arc<Mutex<ServerStatus>>,
    reactor: Option<JoinHandle<io::Result<ReactorStats>>>,
    driver: Option<JoinHandle<()>>,
}

fn lock(status: &Mutex<ServerStatus>) -> MutexGuard<'_, ServerStatus> {
    // A panicking driver must not take the observers down with it.
    status.lock().unwrap_or_else(|p| p.into_inner())
}

impl KvServer {
    /// Opens the data directory, binds the listener, and starts the reactor and driver threads.
    pub fn start(config: ServerConfig) -> Result<KvServer, ServerError> {
        let id = config.keys.identity().peer_id();
        if !config.voters.contains(&id) {
            return Err(ServerError::Config(
                "voters must include this server".into(),
            ));
        }
        let (storage, opened) = RaftStorage::open(
            &config.data_dir,
            StoreConfig {
                sync: config.sync,
                ..StoreConfig::default()
            },
            &config.raft,
        )
        .map_err(ServerError::Storage)?;
        let state = match opened.snapshot_data {
            Some(data) => KvState::restore(data).map_err(|e| {
                ServerError::Storage(StorageError::Corrupt(format!("snapshot state: {e}")))
            })?,
            None => KvState::new(),
        };
        let applied = opened.recovered.snapshot.as_ref().map_or(0, |s| s.index);
        let clock = MonoClock::new();
        let seed = crate::seed_from(id.as_bytes());
        let raft = Raft::restore(
            config.raft,
            id,
            Membership::new(config.voters.iter().copied()),
            opened.recovered,
            seed,
            clock.now(),
        )
        .map_err(|e| ServerError::Config(e.to_string()))?;

        let (reactor, handle) = Reactor::bind(reactor_config(
            config.keys.clone(),
            config.listen,
            &config.network,
        ))
        .map_err(ServerError::Io)?;
        let addr = reactor.local_addr();
        for (peer, peer_addr) in &config.peers {
            handle
                .connect(*peer_addr, Some(*peer))
                .map_err(|e| ServerError::Io(io::Error::other(e.to_string())))?;
        }
        let (tx, rx) = channel();
        let forward = tx.clone();
        let reactor = std::thread::Builder::new()
            .name(format!("kv-reactor-{}", short(&id)))
            .spawn(move || {
                reactor.run(move |event| {
                    if let NodeEvent::Frame { peer, frame } = event {
                        let _ = forward.send(Input::Frame(*peer, frame.clone()));
                    }
                })
            })
            .map_err(ServerError::Io)?;
        let status = Arc::new(Mutex::new(ServerStatus {
            role: Role::Follower,
            term: raft.term(),
            leader: None,
            commit: raft.commit_index(),
            applied,
            keys: state.len(),
            failed: None,
        }));
        let mut driver = Driver {
            // Raft checks its own chunk and command sizes on arrival; a frame bounds the rest.
            limits: Limits {
                max_bytes_len: Limits::DEFAULT.max_frame_len,
                ..Limits::DEFAULT
            },
            voters: config.voters.clone(),
            raft,
            storage,
            state,
            applied,
            clock,
            handle: handle.clone(),
            compact_every: config.compact_every.max(1),
            proposals: BTreeMap::new(),
            reads: HashMap::new(),
            ready_reads: Vec::new(),
            outbox: HashMap::new(),
            status: status.clone(),
        };
        let driver = std::thread::Builder::new()
            .name(format!("kv-driver-{}", short(&id)))
            .spawn(move || driver.run(rx));
        let driver = match driver {
            Ok(d) => d,
            Err(e) => {
                let _ = handle.shutdown();
                return Err(ServerError::Io(e));
            }
        };
        Ok(KvServer {
            id,
            addr,
            handle,
            inputs: tx,
            status,
            reactor: Some(reactor),
            driver: Some(driver),
        })
    }

    /// This server's id (its node's `PeerId`).
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Dials `addr` (expecting `peer`) and keeps it connected.
    pub fn connect(&self, peer: PeerId, addr: SocketAddr) {
        let _ = self.handle.connect(addr, Some(peer));
    }

    /// The server's state now.
    pub fn status(&self) -> ServerStatus {
        lock(&self.status).clone()
    }

    /// Stops the driver and the reactor (closing every session) and waits for both threads.
    /// Everything acknowledged to a client is already on disk.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.inputs.send(Input::Stop);
        if let Some(d) = self.driver.take() {
            let _ = d.join();
        }
        let _ = self.handle.shutdown();
        if let Some(r) = self.reactor.take() {
            let _ = r.join();
        }
    }
}

impl Drop for KvServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn short(id: &PeerId) -> String {
    id.as_bytes()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The thread that owns Raft, the store and the map.
struct Driver {
    limits: Limits,
    voters: Vec<PeerId>,
    raft: Raft<PeerId>,
    storage: RaftStorage,
    state: KvState,
    applied: u64,
    clock: MonoClock,
    handle: Handle,
    compact_every: u64,
    /// Writes proposed here: index → (term, client, request id).
    proposals: BTreeMap<u64, (u64, PeerId, u64)>,
    /// Reads waiting for their ReadIndex round.
    reads: HashMap<ReadId, (PeerId, u64, Bytes)>,
    /// Reads confirmed at an index not yet applied: (index, client, request id, key).
    ready_reads: Vec<(u64, PeerId, u64, Bytes)>,
    /// Frames to send at the end of the turn, per peer (one handle command per peer).
    outbox: HashMap<PeerId, Vec<Frame>>,
    status: Arc<Mutex<ServerStatus>>,
}

impl Driver {
    fn run(&mut self, inputs: Receiver<Input>) {
        self.pump();
        loop {
            let now = self.clock.now();
            let wait = match self.raft.poll_timeout() {
                Some(t) => StdDuration::from_nanos(t.as_nanos().saturating_sub(now.as_nanos())),
                None => StdDuration::from_millis(100),
            };
            match inputs.recv_timeout(wait) {
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Input::Frame(peer, frame)) => {
                    self.on_frame(peer, frame);
                    let mut stop = false;
                    for _ in 0..MAX_INPUTS_PER_TURN {
                        match inputs.try_recv() {
                            Ok(Input::Frame(peer, frame)) => self.on_frame(peer, frame),
                            Ok(Input::Stop) => {
                                stop = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if stop {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = self.clock.now();
            if self.raft.poll_timeout().is_some_and(|t| t <= now) {
                self.raft.handle_timeout(now);
            }
            if let Err(e) = self.try_pump() {
                tracing::error!(error = %e, "storage failed; stopping this server");
                lock(&self.status).failed = Some(e.to_string());
                let _ = self.handle.shutdown();
                return;
            }
        }
        // Let the last answers leave before the reactor is shut down.
        self.flush_outbox();
    }

    fn pump(&mut self) {
        if let Err(e) = self.try_pump() {
            tracing::error!(error = %e, "storage failed");
            lock(&self.status).failed = Some(e.to_string());
        }
    }

    fn on_frame(&mut self, peer: PeerId, frame: Frame) {
        let now = self.clock.now();
        if frame.protocol == ProtocolId::RAFT {
            // Only the configured servers take part; anyone else's Raft frames are dropped.
            if !self.voters.contains(&peer) {
                return;
            }
            match decode_message(frame, &self.limits) {
                Ok(msg) => self.raft.handle_message(now, peer, msg),
                Err(e) => tracing::debug!(error = %e, "bad raft frame"),
            }
        } else if frame.protocol == KV_PROTOCOL && frame.msg_type == MSG_REQUEST {
            match Request::decode(frame.body) {
                Ok(req) => self.on_request(now, peer, req),
                Err(e) => tracing::debug!(error = %e, "bad client request"),
            }
        }
    }

    fn on_request(&mut self, now: Instant, client: PeerId, req: Request) {
        let refused = match req.op {
            Op::Put { key, value } => {
                let cmd = Command {
                    client,
                    id: req.id,
                    ack: req.ack,
                    key,
                    value,
                };
                match self.raft.propose(now, cmd.encode()) {
                    Ok((index, term)) => {
                        self.proposals.insert(index, (term, client, req.id));
                        return;
                    }
                    Err(e) => e,
                }
            }
            Op::Get { key } => match self.raft.read_index(now) {
                Ok(read) => {
                    self.reads.insert(read, (client, req.id, key));
                    return;
                }
                Err(e) => e,
            },
        };
        // Refused before anything was logged: nothing happened.
        let result = match refused {
            ProposeError::NotLeader { leader } => KvResult::NotLeader(leader),
            _ => KvResult::Unavailable,
        };
        self.reply(client, req.id, result);
    }

    fn reply(&mut self, client: PeerId, id: u64, result: KvResult) {
        let frame = Response { id, result }.to_frame();
        self.outbox.entry(client).or_default().push(frame);
    }

    /// Drains Raft, sends, persists, serves reads and compacts until nothing is left to do.
    fn try_pump(&mut self) -> Result<(), StorageError> {
        loop {
            let mut persists = Vec::new();
            while let Some(out) = self.raft.poll_output() {
                match out {
                    Output::Send { to, msg } => {
                        let frame = message_to_frame(&msg);
                        self.outbox.entry(to).or_default().push(frame);
                    }
                    Output::Event(RaftEvent::Persist(batch)) => persists.push(batch),
                    Output::Event(event) => self.on_event(event),
                }
            }
            // A leader's appends leave before its own write (they run in parallel).
            self.flush_outbox();
            if !persists.is_empty() {
                self.persist(&persists)?;
                continue;
            }
            self.serve_reads();
            if self.maybe_compact() {
                continue;
            }
            break;
        }
        self.flush_outbox();
        self.publish_status();
        Ok(())
    }

    /// Writes every batch of the turn in order, then one fsync for all: group commit.
    fn persist(&mut self, batches: &[PersistBatch<PeerId>]) -> Result<(), StorageError> {
        let mut needs_sync = false;
        for b in batches {
            needs_sync |= self.storage.write(b)?;
        }
        if needs_sync {
            self.storage.sync()?;
        }
        if let Some(last) = batches.last() {
            // Acknowledging the last batch acknowledges every earlier one.
            self.raft.persisted(self.clock.now(), last.id);
        }
        Ok(())
    }

    fn on_event(&mut self, event: RaftEvent<PeerId>) {
        match event {
            RaftEvent::Persist(_) => unreachable!("persist batches are collected by the pump"),
            RaftEvent::Apply(entries) => {
                for entry in entries {
                    if let EntryKind::Command(data) = &entry.kind {
                        match Command::decode(data.clone()) {
                            Ok(cmd) => {
                                self.state.apply(cmd);
                            }
                            // Only servers propose, and they encode well-formed commands.
                            Err(e) => {
                                tracing::error!(index = entry.index, error = %e, "bad command")
                            }
                        }
                    }
                    self.applied = entry.index;
                    if let Some((term, client, id)) = self.proposals.remove(&entry.index) {
                        // Another term in our slot: ours was overwritten and never applied;
                        // the client retries with the same id.
                        let result = if term == entry.term {
                            KvResult::Done
                        } else {
                            KvResult::Unavailable
                        };
                        self.reply(client, id, result);
                    }
                }
            }
            RaftEvent::InstallSnapshot(snapshot) => {
                match KvState::restore(snapshot.data.clone()) {
                    Ok(state) => self.state = state,
                    Err(e) => tracing::error!(error = %e, "leader sent an undecodable snapshot"),
                }
                self.applied = snapshot.index;
                let stale: Vec<u64> = self
                    .proposals
                    .range(..=snapshot.index)
                    .map(|(i, _)| *i)
                    .collect();
                for index in stale {
                    if let Some((_, client, id)) = self.proposals.remove(&index) {
                        self.reply(client, id, KvResult::Unavailable);
                    }
                }
            }
            RaftEvent::RoleChanged { role, term, leader } => {
                if role != Role::Leader {
                    // Deposed: our pending writes may or may not commit. Tell the clients now
                    // (they retry with the same id, which is safe) rather than let them time
                    // out.
                    for (_, (_, client, id)) in std::mem::take(&mut self.proposals) {
                        self.reply(client, id, KvResult::Unavailable);
                    }
                }
                let mut s = lock(&self.status);
                s.role = role;
                s.term = term;
                s.leader = leader;
            }
            RaftEvent::ReadReady { id, index } => {
                if let Some((client, req, key)) = self.reads.remove(&id) {
                    self.ready_reads.push((index, client, req, key));
                }
            }
            RaftEvent::ReadFailed { id } => {
                if let Some((client, req, _)) = self.reads.remove(&id) {
                    let leader = self.raft.leader();
                    self.reply(client, req, KvResult::NotLeader(leader));
                }
            }
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.applied;
        let mut i = 0;
        while i < self.ready_reads.len() {
            if self.ready_reads[i].0 <= applied {
                let (_, client, id, key) = self.ready_reads.swap_remove(i);
                let value = self.state.get(&key);
                self.reply(client, id, KvResult::Value(value));
            } else {
                i += 1;
            }
        }
    }

    /// Snapshots the map once enough applied entries sit in the log. Returns whether Raft has
    /// output to drain.
    fn maybe_compact(&mut self) -> bool {
        let first = self.raft.first_index();
        if self.applied < first + self.compact_every {
            return false;
        }
        let data = self.state.snapshot();
        // A refusal (already compacted past it) just means later.
        self.raft
            .compact(self.clock.now(), self.applied, data)
            .is_ok()
    }

    fn flush_outbox(&mut self) {
        for (peer, mut frames) in self.outbox.drain() {
            // A stopped reactor means we are shutting down; the frame is lost, as on a crash.
            let _ = if frames.len() == 1 {
                let frame = frames.pop().expect("one frame");
                self.handle.send(peer, frame)
            } else {
                self.handle.send_batch(peer, frames)
            };
        }
    }

    fn publish_status(&self) {
        let mut s = lock(&self.status);
        s.commit = self.raft.commit_index();
        s.applied = self.applied;
        s.keys = self.state.len();
        s.role = self.raft.role();
        s.term = self.raft.term();
        s.leader = self.raft.leader();
    }
}
