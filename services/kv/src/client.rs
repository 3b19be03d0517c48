//! [`KvClient`]: a Starling node of its own, connected to every server, that sends requests to
//! the leader, follows `NotLeader` hints, and retries elsewhere until a deadline.
//!
//! Requests are numbered by the client; a retry reuses the number, so a write logged twice is
//! applied once (see [`crate::state`]). Many requests may be in flight at once: each carries
//! the lowest number still unanswered (`ack`), which lets the servers trim the session.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use starling_core::id::PeerId;
use starling_core::node::NodeEvent;
use starling_core::session::NodeKeys;
use starling_core::wire::Frame;
use starling_mio::{Handle, Reactor, ReactorStats};

use crate::proto::{KvResult, Op, ProtoError, Request, Response, KV_PROTOCOL, MSG_RESPONSE};
use crate::reactor_config;

/// Wait before retrying after `NotLeader` without a usable hint or `Unavailable`: long enough
/// not to spin while an election runs, short next to an election timeout.
const RETRY_DELAY: Duration = Duration::from_millis(20);

/// How a client behaves.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The client node's keys; its `PeerId` names its session on the servers.
    pub keys: NodeKeys,
    /// Every server: id and address.
    pub servers: Vec<(PeerId, SocketAddr)>,
    /// Network name (must match the servers').
    pub network: String,
    /// A request not answered within this is reported as [`ClientError::Timeout`].
    pub timeout: Duration,
    /// A request unanswered this long is sent again (to the leader, or the next server).
    pub resend_after: Duration,
}

impl ClientConfig {
    /// Defaults: 5 s timeout, resend after 500 ms.
    pub fn new(keys: NodeKeys, servers: Vec<(PeerId, SocketAddr)>) -> Self {
        ClientConfig {
            keys,
            servers,
            network: crate::DEFAULT_NETWORK.to_string(),
            timeout: Duration::from_secs(5),
            resend_after: Duration::from_millis(500),
        }
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A get's value.
    Value(Option<Bytes>),
    /// A put was applied.
    Done,
}

/// Why a request failed. A failed put may or may not have been applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// No answer before the deadline.
    Timeout,
    /// The client was shut down.
    Stopped,
    /// The key or value breaks the protocol's limits.
    Invalid(ProtoError),
    /// Starting the client's node failed.
    Io(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Timeout => f.write_str("request timed out"),
            ClientError::Stopped => f.write_str("client stopped"),
            ClientError::Invalid(e) => write!(f, "invalid request: {e}"),
            ClientError::Io(e) => write!(f, "i/o: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A finished request.
#[derive(Clone, Debug)]
pub struct Completion {
    /// The id [`KvClient::submit`] returned.
    pub id: u64,
    /// The outcome.
    pub result: Result<Reply, ClientError>,
    /// From submission to completion.
    pub latency: Duration,
}

enum Input {
    Node(NodeEvent),
    Submit {
        id: u64,
        op: Op,
        reply: Sender<Completion>,
        at: Instant,
    },
    Stop,
}

/// Numbers requests and hands them to the driver in that order, so `ack` never passes a
/// request the driver has not seen yet.
struct Submitter {
    next_id: u64,
    tx: Sender<Input>,
}

/// A client of a KV cluster. Dropping it shuts it down.
pub struct KvClient {
    submitter: Mutex<Submitter>,
    handle: Handle,
    timeout: Duration,
    leader: Arc<Mutex<Option<PeerId>>>,
    reactor: Option<JoinHandle<io::Result<ReactorStats>>>,
    driver: Option<JoinHandle<()>>,
}

impl KvClient {
    /// Starts the client's node and dials every server.
    pub fn start(config: ClientConfig) -> Result<KvClient, ClientError> {
        let io = |e: &dyn std::fmt::Display| ClientError::Io(e.to_string());
        let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
        let (reactor, handle) =
            Reactor::bind(reactor_config(config.keys.clone(), listen, &config.network))
                .map_err(|e| io(&e))?;
        for (peer, addr) in &config.servers {
            handle.connect(*addr, Some(*peer)).map_err(|e| io(&e))?;
        }
        let (tx, rx) = channel();
        let forward = tx.clone();
        let reactor = std::thread::Builder::new()
            .name("kv-client-reactor".into())
            .spawn(move || {
                reactor.run(move |event| {
                    let wanted = match event {
                        NodeEvent::Frame { frame, .. } => frame.protocol == KV_PROTOCOL,
                        NodeEvent::PeerConnected { .. } | NodeEvent::PeerDisconnected { .. } => {
                            true
                        }
                        _ => false,
                    };
                    if wanted {
                        let _ = forward.send(Input::Node(event.clone()));
                    }
                })
            })
            .map_err(|e| io(&e))?;
        let leader = Arc::new(Mutex::new(None));
        let mut driver = ClientDriver {
            handle: handle.clone(),
            servers: config.servers.iter().map(|(p, _)| *p).collect(),
            connected: HashSet::new(),
            leader: None,
            shared_leader: leader.clone(),
            rr: 0,
            pending: BTreeMap::new(),
            timers: BinaryHeap::new(),
            outbox: HashMap::new(),
            timeout: config.timeout,
            resend_after: config.resend_after,
        };
        let driver = std::thread::Builder::new()
            .name("kv-client-driver".into())
            .spawn(move || driver.run(rx));
        let driver = match driver {
            Ok(d) => d,
            Err(e) => {
                let _ = handle.shutdown();
                return Err(io(&e));
            }
        };
        // Numbers start from the wall clock, so a client restarted with the same keys does not
        // reuse numbers its session on the servers has already seen.
        let next_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(1))
            .max(1);
        Ok(KvClient {
            submitter: Mutex::new(Submitter { next_id, tx }),
            handle,
            timeout: config.timeout,
            leader,
            reactor: Some(reactor),
            driver: Some(driver),
        })
    }

    /// Starts `op`; its [`Completion`] is sent to `reply`. Returns the request's id.
    pub fn submit(&self, op: Op, reply: Sender<Completion>) -> u64 {
        let at = Instant::now();
        let mut s = self.submitter.lock().unwrap_or_else(|p| p.into_inner());
        let id = s.next_id;
        s.next_id += 1;
        if let Err(e) = op.check() {
            let _ = reply.send(Completion {
                id,
                result: Err(ClientError::Invalid(e)),
                latency: Duration::ZERO,
            });
            return id;
        }
        if let Err(std::sync::mpsc::SendError(Input::Submit { reply, .. })) =
            s.tx.send(Input::Submit { id, op, reply, at })
        {
            let _ = reply.send(Completion {
                id,
                result: Err(ClientError::Stopped),
                latency: Duration::ZERO,
            });
        }
        id
    }

    fn call(&self, op: Op) -> Result<Reply, ClientError> {
        let (tx, rx) = channel();
        self.submit(op, tx);
        // The driver answers by the request's deadline; the margin only covers a stalled thread.
        match rx.recv_timeout(self.timeout + Duration::from_secs(1)) {
            Ok(c) => c.result,
            Err(RecvTimeoutError::Timeout) => Err(ClientError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(ClientError::Stopped),
        }
    }

    /// Writes `key` = `value`, blocking until applied or failed.
    pub fn put(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<(), ClientError> {
        self.call(Op::Put {
            key: key.into(),
            value: value.into(),
        })
        .map(|_| ())
    }

    /// Reads `key` (linearizably), blocking until answered or failed.
    pub fn get(&self, key: impl Into<Bytes>) -> Result<Option<Bytes>, ClientError> {
        match self.call(Op::Get { key: key.into() })? {
            Reply::Value(v) => Ok(v),
            Reply::Done => Ok(None),
        }
    }

    /// The leader this client last heard of.
    pub fn leader(&self) -> Option<PeerId> {
        *self.leader.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the client's threads; requests in flight complete with [`ClientError::Stopped`].
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        {
            let s = self.submitter.lock().unwrap_or_else(|p| p.into_inner());
            let _ = s.tx.send(Input::Stop);
        }
        if let Some(d) = self.driver.take() {
            let _ = d.join();
        }
        let _ = self.handle.shutdown();
        if let Some(r) = self.reactor.take() {
            let _ = r.join();
        }
    }
}

impl Drop for KvClient {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Pending {
    op: Op,
    reply: Sender<Completion>,
    started: Instant,
    deadline: Instant,
    /// Where the latest attempt went.
    target: Option<PeerId>,
    /// Attempt number; timers of earlier attempts are ignored.
    attempt: u32,
}

struct ClientDriver {
    handle: Handle,
    servers: Vec<PeerId>,
    connected: HashSet<PeerId>,
    leader: Option<PeerId>,
    shared_leader: Arc<Mutex<Option<PeerId>>>,
    /// Round-robin position for when no leader is known.
    rr: usize,
    /// Ordered by id, so the first key is the `ack`.
    pending: BTreeMap<u64, Pending>,
    timers: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    outbox: HashMap<PeerId, Vec<Frame>>,
    timeout: Duration,
    resend_after: Duration,
}

impl ClientDriver {
    fn run(&mut self, inputs: Receiver<Input>) {
        loop {
            let wait = self
                .timers
                .peek()
                .map_or(Duration::from_secs(1), |Reverse((t, ..))| {
                    t.saturating_duration_since(Instant::now())
                });
            match inputs.recv_timeout(wait) {
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(input) => {
                    self.on_input(input);
                    let mut stop = false;
                    while let Ok(input) = inputs.try_recv() {
                        if matches!(input, Input::Stop) {
                            stop = true;
                            break;
                        }
                        self.on_input(input);
                    }
                    if stop {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.on_timers();
            self.flush();
        }
        for (id, p) in std::mem::take(&mut self.pending) {
            let _ = p.reply.send(Completion {
                id,
                result: Err(ClientError::Stopped),
                latency: p.started.elapsed(),
            });
        }
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Submit { id, op, reply, at } => {
                self.pending.insert(
                    id,
                    Pending {
                        op,
                        reply,
                        started: at,
                        deadline: at + self.timeout,
                        target: None,
                        attempt: 0,
                    },
                );
                self.send(id);
            }
            Input::Node(NodeEvent::PeerConnected { peer, .. }) => {
                if self.servers.contains(&peer) {
                    self.connected.insert(peer);
                }
            }
            Input::Node(NodeEvent::PeerDisconnected { peer, .. }) => {
                self.connected.remove(&peer);
                if self.leader == Some(peer) {
                    self.set_leader(None);
                }
                // Whatever went there is lost with the connection: send it elsewhere now.
                let lost: Vec<u64> = self
                    .pending
                    .iter()
                    .filter(|(_, p)| p.target == Some(peer))
                    .map(|(id, _)| *id)
                    .collect();
                for id in lost {
                    self.send(id);
                }
            }
            Input::Node(NodeEvent::Frame { peer, frame }) => {
                if frame.msg_type != MSG_RESPONSE {
                    return;
                }
                match Response::decode(frame.body) {
                    Ok(r) => self.on_response(peer, r),
                    Err(e) => tracing::debug!(error = %e, "bad response"),
                }
            }
            Input::Node(_) | Input::Stop => {}
        }
    }

    fn on_response(&mut self, from: PeerId, r: Response) {
        let Some(p) = self.pending.get(&r.id) else {
            return; // answered already (a duplicate of a retried request)
        };
        let current = p.target == Some(from);
        match r.result {
            KvResult::Value(v) => {
                self.remember_leader(from);
                self.complete(r.id, Ok(Reply::Value(v)));
            }
            KvResult::Done => {
                self.remember_leader(from);
                self.complete(r.id, Ok(Reply::Done));
            }
            // Answers to earlier attempts say nothing about the current one.
            _ if !current => {}
            KvResult::NotLeader(hint) => {
                let hint = hint.filter(|l| *l != from && self.servers.contains(l));
                self.set_leader(hint);
                if hint.is_some_and(|l| self.connected.contains(&l)) {
                    self.send(r.id);
                } else {
                    self.retry_later(r.id);
                }
            }
            KvResult::Unavailable => self.retry_later(r.id),
        }
    }

    fn remember_leader(&mut self, from: PeerId) {
        if self.leader != Some(from) {
            self.set_leader(Some(from));
        }
    }

    fn set_leader(&mut self, leader: Option<PeerId>) {
        self.leader = leader;
        *self.shared_leader.lock().unwrap_or_else(|p| p.into_inner()) = leader;
    }

    fn complete(&mut self, id: u64, result: Result<Reply, ClientError>) {
        if let Some(p) = self.pending.remove(&id) {
            let _ = p.reply.send(Completion {
                id,
                result,
                latency: p.started.elapsed(),
            });
        }
    }

    /// Where to send next: the leader if connected, else the next connected server.
    fn pick(&mut self) -> Option<PeerId> {
        if let Some(l) = self.leader.filter(|l| self.connected.contains(l)) {
            return Some(l);
        }
        for _ in 0..self.servers.len() {
            self.rr = (self.rr + 1) % self.servers.len().max(1);
            let s = self.servers[self.rr];
            if self.connected.contains(&s) {
                return Some(s);
            }
        }
        None
    }

    /// Sends (or re-sends) request `id` now, and arms its resend timer.
    fn send(&mut self, id: u64) {
        let now = Instant::now();
        let target = self.pick();
        let ack = self.pending.keys().next().copied().unwrap_or(id);
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        if now >= p.deadline {
            return self.complete(id, Err(ClientError::Timeout));
        }
        p.attempt += 1;
        p.target = target;
        let frame = match target {
            Some(peer) => Some((
                peer,
                Request {
                    id,
                    ack,
                    op: p.op.clone(),
                }
                .to_frame(),
            )),
            None => None,
        };
        // Not connected anywhere yet: look again shortly.
        let after = if target.is_some() {
            self.resend_after
        } else {
            RETRY_DELAY
        };
        let at = (now + after).min(p.deadline);
        self.timers.push(Reverse((at, id, p.attempt)));
        if let Some((peer, frame)) = frame {
            self.outbox.entry(peer).or_default().push(frame);
        }
    }

    fn retry_later(&mut self, id: u64) {
        if let Some(p) = self.pending.get_mut(&id) {
            p.attempt += 1;
            p.target = None;
            let at = (Instant::now() + RETRY_DELAY).min(p.deadline);
            self.timers.push(Reverse((at, id, p.attempt)));
        }
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, id, attempt))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(p) = self.pending.get(&id) else {
                continue;
            };
            if p.attempt != attempt {
                continue;
            }
            if now >= p.deadline {
                self.complete(id, Err(ClientError::Timeout));
            } else {
                self.send(id);
            }
        }
    }

    fn flush(&mut self) {
        for (peer, mut frames) in self.outbox.drain() {
            // Refused sends (queue full, peer gone) are covered by the resend timer.
            let _ = if frames.len() == 1 {
                let frame = frames.pop().expect("one frame");
                self.handle.send(peer, frame)
            } else {
                self.handle.send_batch(peer, frames)
            };
        }
    }
}
