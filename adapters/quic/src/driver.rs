//! The node task: owns the `Node`, the endpoint and the table of connections; turns node
//! outputs into dials, stream writes, datagrams and closes, and connection tasks' reports into
//! node inputs.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use quinn::{Connection, Endpoint};
use starling_core::gossip::is_loss_tolerant;
use starling_core::id::PeerId;
use starling_core::identity::Identity;
use starling_core::node::{ConnId, Node, NodeEvent, NodeOutput};
use starling_core::rate::TokenBucket;
use starling_core::session::hello::Verified;
use starling_core::session::{CloseCause, CloseCode, SessionConfig};
use starling_core::time::Instant;
use starling_core::wire::{Frame, ProtocolId};
use starling_runtime::{Command, RuntimeCommand};
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;

use crate::hello::{self, Side};
use crate::outbox::Outbox;
use crate::streams::{self, Inbound, Queue, ReaderContext, WriterContext};
use crate::tls::{client_crypto, NodeCertificate, SERVER_NAME};
use crate::QuicStats;

/// How long a connection the node closes may take to deliver what was sent on it.
const CLOSE_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);
/// How long shutdown waits for close packets to leave.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_millis(200);
/// Reports queued from connection tasks before their senders wait.
pub(crate) const INBOUND_QUEUE: usize = 256;
/// Frame header bytes besides the body that count toward a peer's `max_frame_len`: a protocol
/// id of up to three varint bytes and the message type.
const HEADER_ALLOWANCE: usize = 4;

/// One connection, from the dial or accept to its close.
struct Conn {
    addr: SocketAddr,
    dialled: bool,
    state: ConnState,
}

enum ConnState {
    /// TLS and the hello are running in this task.
    Handshaking(AbortHandle),
    Open(Box<Open>),
}

struct Open {
    connection: Connection,
    /// The writer of each protocol's stream: its queue and its task.
    writers: Vec<Writer>,
    /// Frames encoded this turn, per protocol, written when the turn ends.
    pending: Vec<(ProtocolId, Outbox)>,
    queue: Arc<Queue>,
    peer_max_frame: usize,
    frame_bucket: TokenBucket,
    byte_bucket: TokenBucket,
    /// Since when sends to the peer are paused (its writers cannot drain).
    paused_since: Option<Instant>,
}

/// What the node task works with that is fixed at bind time.
pub(crate) struct Settings {
    pub(crate) cert: NodeCertificate,
    pub(crate) identity: Identity,
    pub(crate) session: Arc<SessionConfig>,
    pub(crate) transport: Arc<quinn::TransportConfig>,
    pub(crate) high_water: usize,
    pub(crate) low_water: usize,
    pub(crate) gossip_datagrams: bool,
    pub(crate) stall_timeout: starling_core::time::Duration,
}

/// One stream's writer, as the node task sees it.
struct Writer {
    protocol: ProtocolId,
    queue: mpsc::UnboundedSender<Vec<Bytes>>,
    task: tokio::task::JoinHandle<()>,
}

/// The node task's state.
pub(crate) struct Driver {
    endpoint: Endpoint,
    commands: Receiver<Command>,
    notify: Arc<Notify>,
    pub(crate) node: Node,
    settings: Settings,
    origin: std::time::Instant,
    inbound_tx: mpsc::Sender<Inbound>,
    inbound_rx: mpsc::Receiver<Inbound>,
    conns: HashMap<ConnId, Conn>,
    next_conn: ConnId,
    /// Connections with frames in `pending`.
    dirty: Vec<ConnId>,
    /// When to look for stalled connections: no later than the first paused connection would
    /// stall (a resumed or closed one only makes the look early). Kept here so that the loop
    /// does not scan every connection each turn.
    stall_check: Option<Instant>,
    shutting_down: bool,
    stats: QuicStats,
}

impl Driver {
    pub(crate) fn new(
        endpoint: Endpoint,
        commands: Receiver<Command>,
        notify: Arc<Notify>,
        node: Node,
        settings: Settings,
    ) -> Driver {
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        Driver {
            endpoint,
            commands,
            notify,
            node,
            settings,
            origin: std::time::Instant::now(),
            inbound_tx,
            inbound_rx,
            conns: HashMap::new(),
            next_conn: 1,
            dirty: Vec::new(),
            stall_check: None,
            shutting_down: false,
            stats: QuicStats::default(),
        }
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn instant_of(&self, at: Instant) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.origin + std::time::Duration::from_nanos(at.as_nanos()))
    }

    /// Runs until shut down, calling `on_event` for every node event.
    pub(crate) async fn run(
        mut self,
        mut on_event: impl FnMut(&NodeEvent),
    ) -> io::Result<QuicStats> {
        let far = || tokio::time::Instant::now() + std::time::Duration::from_secs(86_400);
        let sleep = tokio::time::sleep_until(far());
        tokio::pin!(sleep);
        let mut armed = None;
        loop {
            self.drain_node(&mut on_event);
            self.flush();
            if self.shutting_down && self.conns.is_empty() {
                break;
            }
            let deadline = self
                .node
                .poll_timeout()
                .into_iter()
                .chain(self.stall_check)
                .min();
            if deadline != armed {
                armed = deadline;
                let at = deadline.map_or_else(far, |d| self.instant_of(d));
                sleep.as_mut().reset(at);
            }
            // Unbiased: a flood of reports must not starve commands or timers.
            tokio::select! {
                Some(report) = self.inbound_rx.recv() => {
                    self.on_inbound(report, &mut on_event);
                    // Take what else is waiting, one report's outputs at a time.
                    for _ in 0..64 {
                        self.drain_node(&mut on_event);
                        match self.inbound_rx.try_recv() {
                            Ok(report) => self.on_inbound(report, &mut on_event),
                            Err(_) => break,
                        }
                    }
                }
                () = self.notify.notified() => self.commands(&mut on_event),
                Some(incoming) = self.endpoint.accept(), if !self.shutting_down => {
                    self.on_incoming(incoming);
                }
                () = &mut sleep, if armed.is_some() => {
                    let now = self.now();
                    self.node.handle_timeout(now);
                    if self.stall_check.is_some_and(|at| at <= now) {
                        self.close_stalled(now);
                    }
                    armed = None;
                }
            }
        }
        self.endpoint.close(
            quinn::VarInt::from(CloseCode::Shutdown.to_byte()),
            b"shutdown",
        );
        // Give the endpoint a moment to send the CONNECTION_CLOSE packets, so peers learn of
        // the close at once instead of at their idle timeout. Not the whole draining period
        // (three probe timeouts): nothing more is sent or received in it.
        let _ = tokio::time::timeout(CLOSE_LINGER, self.endpoint.wait_idle()).await;
        Ok(self.stats)
    }

    // ---- connections -------------------------------------------------------------------------

    fn next_id(&mut self) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        id
    }

    fn on_incoming(&mut self, incoming: quinn::Incoming) {
        let now = self.now();
        let id = self.next_id();
        let addr = incoming.remote_address();
        if !self.node.handle_incoming(now, id, addr) {
            // Refused before any cryptography: the peer gets a CONNECTION_REFUSED.
            self.stats.refused += 1;
            incoming.refuse();
            return;
        }
        self.stats.accepted += 1;
        let (session, identity, inbound) = self.handshake_parts();
        let task = tokio::spawn(async move {
            let connecting = incoming
                .accept()
                .map_err(|e| (hello::lost(e.clone()), e.to_string()));
            let result = match connecting {
                Ok(connecting) => handshake(connecting, Side::Acceptor, &session, &identity).await,
                Err(e) => Err(e),
            };
            let _ = inbound.send(report(id, result)).await;
        });
        self.conns.insert(
            id,
            Conn {
                addr,
                dialled: false,
                state: ConnState::Handshaking(task.abort_handle()),
            },
        );
    }

    fn dial(&mut self, addr: SocketAddr, expected: Option<PeerId>) {
        let now = self.now();
        let connecting = client_crypto(&self.settings.cert, expected)
            .map_err(|e| e.to_string())
            .and_then(|crypto| {
                let mut client = quinn::ClientConfig::new(Arc::new(crypto));
                client.transport_config(self.settings.transport.clone());
                self.endpoint
                    .connect_with(client, addr, SERVER_NAME)
                    .map_err(|e| e.to_string())
            });
        let connecting = match connecting {
            Ok(connecting) => connecting,
            Err(reason) => return self.node.handle_dial_failed(now, addr, &reason),
        };
        let id = self.next_id();
        let (session, identity, inbound) = self.handshake_parts();
        let task = tokio::spawn(async move {
            let result = handshake(connecting, Side::Dialer, &session, &identity).await;
            let _ = inbound.send(report(id, result)).await;
        });
        self.conns.insert(
            id,
            Conn {
                addr,
                dialled: true,
                state: ConnState::Handshaking(task.abort_handle()),
            },
        );
        self.node.handle_dialed(now, addr, id);
    }

    fn handshake_parts(&self) -> (Arc<SessionConfig>, Identity, mpsc::Sender<Inbound>) {
        (
            self.settings.session.clone(),
            self.settings.identity.clone(),
            self.inbound_tx.clone(),
        )
    }

    fn reader(&self, conn: ConnId) -> ReaderContext {
        ReaderContext {
            conn,
            inbound: self.inbound_tx.clone(),
            limits: self.settings.session.limits,
        }
    }

    fn on_inbound(&mut self, report: Inbound, on_event: &mut impl FnMut(&NodeEvent)) {
        let now = self.now();
        match report {
            Inbound::Frames { conn, frames } => self.on_frames(now, conn, frames, on_event),
            Inbound::Established {
                conn,
                connection,
                peer,
                listen_port,
                max_frame_len,
            } => {
                let reader = self.reader(conn);
                let Some(c) = self.conns.get_mut(&conn) else {
                    // The node gave up on it meanwhile.
                    hello::close(&connection, CloseCode::Normal, "");
                    return;
                };
                tokio::spawn(streams::accept_streams(connection.clone(), reader.clone()));
                tokio::spawn(streams::read_datagrams(connection.clone(), reader.clone()));
                tokio::spawn(streams::watch_close(connection.clone(), reader));
                let rate = self.settings.session.rate;
                c.state = ConnState::Open(Box::new(Open {
                    connection,
                    writers: Vec::new(),
                    pending: Vec::new(),
                    queue: Arc::default(),
                    peer_max_frame: usize::try_from(max_frame_len).unwrap_or(usize::MAX),
                    frame_bucket: TokenBucket::new(rate.frames_per_sec, rate.frame_burst, now),
                    byte_bucket: TokenBucket::new(rate.bytes_per_sec, rate.byte_burst, now),
                    paused_since: None,
                }));
                self.node.handle_established(now, conn, peer, listen_port);
            }
            Inbound::HandshakeFailed {
                conn,
                cause,
                reason,
            } => {
                let Some(c) = self.conns.remove(&conn) else {
                    return;
                };
                self.stats.handshakes_failed += 1;
                tracing::debug!(conn, addr = %c.addr, %reason, "QUIC handshake failed");
                if c.dialled {
                    self.node.handle_dial_failed(now, c.addr, &reason);
                } else {
                    self.node.handle_closed(now, conn, cause);
                }
            }
            Inbound::PeerStream {
                conn,
                protocol,
                send,
            } => {
                if let Some(open) = self.open(conn) {
                    if !open.writers.iter().any(|w| w.protocol == protocol) {
                        self.spawn_writer(conn, protocol, Some(send));
                    }
                }
            }
            Inbound::Violation { conn, cause } => {
                let Some(c) = self.conns.remove(&conn) else {
                    return;
                };
                self.stats.protocol_violations += 1;
                tracing::warn!(conn, addr = %c.addr, %cause, "peer broke the frame format; closing");
                if let ConnState::Open(open) = &c.state {
                    hello::close(&open.connection, cause.code(), &cause.to_string());
                }
                self.node.handle_closed(now, conn, cause);
            }
            Inbound::Closed { conn, cause } => {
                if self.conns.remove(&conn).is_some() {
                    tracing::debug!(conn, %cause, "QUIC connection closed");
                    self.node.handle_closed(now, conn, cause);
                }
            }
            Inbound::Resumed { conn } => {
                if let Some(open) = self.open(conn) {
                    open.paused_since = None;
                }
                self.node.handle_backpressure(now, conn, false);
            }
        }
    }

    fn on_frames(
        &mut self,
        now: Instant,
        conn: ConnId,
        frames: Vec<Frame>,
        on_event: &mut impl FnMut(&NodeEvent),
    ) {
        let Some(open) = self.open(conn) else {
            return;
        };
        let mut frames = frames;
        let before = frames.len();
        let bytes: u64 = frames.iter().map(|f| f.body.len() as u64).sum();
        // The whole report at once when the buckets allow it (the common case), else frame by
        // frame. Take bytes only if the frame bucket allows, so a refusal costs nothing.
        let whole = open.frame_bucket.available(now) >= before as u64
            && open.byte_bucket.available(now) >= bytes
            && open.frame_bucket.try_take(now, before as u64)
            && open.byte_bucket.try_take(now, bytes);
        if !whole {
            frames.retain(|frame| {
                let len = frame.body.len() as u64;
                open.frame_bucket.try_take(now, 1) && open.byte_bucket.try_take(now, len)
            });
        }
        let dropped = (before - frames.len()) as u64;
        if dropped > 0 {
            self.stats.frames_rate_dropped += dropped;
            tracing::debug!(conn, dropped, "peer exceeded its rate limit");
        }
        for (i, frame) in frames.into_iter().enumerate() {
            if let Some(event) = self.node.deliver_frame(now, conn, frame) {
                on_event(&event);
            }
            // Route the hosted protocols' answers often enough that the node's bounded output
            // queue never fills.
            if i % 128 == 127 {
                self.drain_node(on_event);
            }
        }
    }

    fn open(&mut self, conn: ConnId) -> Option<&mut Open> {
        match &mut self.conns.get_mut(&conn)?.state {
            ConnState::Open(open) => Some(open),
            ConnState::Handshaking(_) => None,
        }
    }

    fn spawn_writer(
        &mut self,
        conn: ConnId,
        protocol: ProtocolId,
        send: Option<quinn::SendStream>,
    ) {
        let reader = self.reader(conn);
        let low_water = self.settings.low_water;
        let Some(open) = self.open(conn) else {
            return;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let cx = WriterContext {
            connection: open.connection.clone(),
            queue: open.queue.clone(),
            low_water,
            reader,
        };
        let opens = send.is_none();
        let task = tokio::spawn(streams::write_stream(protocol, send, rx, cx));
        open.writers.push(Writer {
            protocol,
            queue: tx,
            task,
        });
        if opens {
            self.stats.streams_opened += 1;
        }
    }

    // ---- node outputs ------------------------------------------------------------------------

    fn drain_node(&mut self, on_event: &mut impl FnMut(&NodeEvent)) {
        while let Some(out) = self.node.poll_output() {
            match out {
                NodeOutput::Dial { .. } if self.shutting_down => {}
                NodeOutput::Dial { addr, expected } => self.dial(addr, expected),
                NodeOutput::Send { conn, frame } => self.send(conn, &frame),
                NodeOutput::Close { conn, code } => self.close(conn, code),
                NodeOutput::Event(event) => on_event(&event),
            }
        }
    }

    /// Closes `conn` for the node: after its writers have delivered what the node sent.
    fn close(&mut self, conn: ConnId, code: CloseCode) {
        match self.conns.remove(&conn).map(|c| c.state) {
            Some(ConnState::Open(open)) => {
                // Dropping the queues tells each writer to finish its stream.
                let tasks = open.writers.into_iter().map(|w| w.task).collect();
                let (connection, linger) = (open.connection, CLOSE_FLUSH);
                let close =
                    streams::close_when_flushed(connection, tasks, linger, code, code.name());
                tokio::spawn(close);
            }
            Some(ConnState::Handshaking(task)) => task.abort(),
            None => {}
        }
    }

    /// Queues `frame` for `conn` (see [`Driver::send_all`]).
    fn send(&mut self, conn: ConnId, frame: &Frame) {
        self.send_all(conn, std::slice::from_ref(frame));
    }

    /// Queues `frames` for `conn`: each as a datagram if it is a gossip announcement that fits,
    /// else on its protocol's stream when this turn ends.
    fn send_all(&mut self, conn: ConnId, frames: &[Frame]) {
        let datagrams = self.settings.gossip_datagrams;
        let Some(open) = self.open(conn) else {
            return;
        };
        let was_clean = open.pending.iter().all(|(_, b)| b.is_empty());
        let (mut refused, mut datagrams_sent) = (0, 0);
        for frame in frames {
            if frame.body.len() + HEADER_ALLOWANCE > open.peer_max_frame {
                refused += 1;
            } else if datagrams && open.send_datagram(frame) {
                datagrams_sent += 1;
            } else {
                open.encode(frame);
            }
        }
        let dirty = was_clean && open.pending.iter().any(|(_, b)| !b.is_empty());
        self.stats.send_refused += refused;
        self.stats.datagrams_sent += datagrams_sent;
        if dirty {
            self.dirty.push(conn);
        }
    }
}

impl Open {
    fn last_pending(&mut self) -> &mut (ProtocolId, Outbox) {
        let last = self.pending.len() - 1;
        &mut self.pending[last]
    }

    /// Sends a gossip announcement that fits as a datagram; false if `frame` is something else
    /// or the datagram could not be sent.
    fn send_datagram(&mut self, frame: &Frame) -> bool {
        if frame.protocol != ProtocolId::GOSSIP
            || !is_loss_tolerant(frame.msg_type)
            || self
                .connection
                .max_datagram_size()
                .is_none_or(|max| frame.encoded_len() > max)
        {
            return false;
        }
        let mut datagram = BytesMut::with_capacity(frame.encoded_len());
        frame.encode(&mut datagram);
        self.connection.send_datagram(datagram.freeze()).is_ok()
    }

    /// Appends `frame` to its protocol's outbox for this turn.
    fn encode(&mut self, frame: &Frame) {
        match self.pending.iter().position(|(p, _)| *p == frame.protocol) {
            Some(i) => self.pending[i].1.push(frame),
            None => {
                self.pending.push((frame.protocol, Outbox::default()));
                self.last_pending().1.push(frame);
            }
        }
    }
}

impl Driver {
    /// Hands this turn's encoded frames to the writers, and pauses peers above the high-water
    /// mark.
    fn flush(&mut self) {
        let now = self.now();
        let high_water = self.settings.high_water;
        for conn in std::mem::take(&mut self.dirty) {
            // Protocols without a stream yet get a writer (which opens one) first.
            let missing: Vec<ProtocolId> = match self.open(conn) {
                Some(open) => open
                    .pending
                    .iter()
                    .filter(|(p, o)| {
                        !o.is_empty() && !open.writers.iter().any(|w| w.protocol == *p)
                    })
                    .map(|(p, _)| *p)
                    .collect(),
                None => continue,
            };
            for protocol in missing {
                self.spawn_writer(conn, protocol, None);
            }
            let Some(open) = self.open(conn) else {
                continue;
            };
            let mut queued = 0;
            for (protocol, outbox) in &mut open.pending {
                if outbox.is_empty() {
                    continue;
                }
                let (chunks, len) = outbox.take();
                if let Some(writer) = open.writers.iter().find(|w| w.protocol == *protocol) {
                    queued += len;
                    // A writer that stopped belongs to a failing connection: its close is on
                    // the way.
                    let _ = writer.queue.send(chunks);
                }
            }
            let total = open.queue.bytes.fetch_add(queued, Ordering::AcqRel) + queued;
            if total > high_water && !open.queue.paused.swap(true, Ordering::AcqRel) {
                open.paused_since = Some(now);
                let at = now + self.settings.stall_timeout;
                self.stall_check = Some(self.stall_check.map_or(at, |c| c.min(at)));
                self.stats.paused += 1;
                self.node.handle_backpressure(now, conn, true);
            }
        }
    }

    /// When the longest-paused connection counts as stalled.
    /// Closes connections paused for `stall_timeout`: QUIC's keep-alive is answered by the peer's
    /// stack even when its application never reads, so without this a peer that stops reading
    /// would hold its queue forever.
    fn close_stalled(&mut self, now: Instant) {
        let limit = self.settings.stall_timeout;
        let stalled: Vec<ConnId> = self
            .conns
            .iter()
            .filter_map(|(id, c)| match &c.state {
                ConnState::Open(open) if open.paused_since.is_some_and(|t| t + limit <= now) => {
                    Some(*id)
                }
                _ => None,
            })
            .collect();
        for conn in stalled {
            tracing::warn!(conn, "peer stopped reading; closing");
            self.close(conn, CloseCode::Unresponsive);
            let cause = CloseCause::Local(CloseCode::Unresponsive);
            self.node.handle_closed(now, conn, cause);
        }
        // The next check: when the longest-paused connection still open would stall.
        self.stall_check = self
            .conns
            .values()
            .filter_map(|c| match &c.state {
                ConnState::Open(open) => open.paused_since,
                ConnState::Handshaking(_) => None,
            })
            .min()
            .map(|since| since + limit);
    }

    // ---- commands ----------------------------------------------------------------------------

    fn commands(&mut self, on_event: &mut impl FnMut(&NodeEvent)) {
        let now = self.now();
        loop {
            self.drain_node(on_event);
            let command = match self.commands.try_recv() {
                Ok(command) => command,
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => return self.shutdown(),
            };
            match command.apply(&mut self.node, now) {
                None => {}
                Some(RuntimeCommand::SendBatch { conn, frames }) => self.send_all(conn, &frames),
                Some(RuntimeCommand::Shutdown) => self.shutdown(),
            }
        }
    }

    fn shutdown(&mut self) {
        self.shutting_down = true;
        for (_, conn) in self.conns.drain() {
            match conn.state {
                ConnState::Open(open) => {
                    hello::close(&open.connection, CloseCode::Shutdown, "shutting down");
                }
                ConnState::Handshaking(task) => task.abort(),
            }
        }
    }
}

/// TLS, then the hello; on success the connection and what the peer proved.
async fn handshake(
    connecting: quinn::Connecting,
    side: Side,
    session: &SessionConfig,
    identity: &Identity,
) -> Result<(Connection, Verified), (CloseCause, String)> {
    let connection = connecting
        .await
        .map_err(|e| (hello::lost(e.clone()), e.to_string()))?;
    match hello::exchange(&connection, side, session, identity).await {
        Ok(verified) => Ok((connection, verified)),
        Err(cause) => {
            let reason = cause.to_string();
            Err((cause, reason))
        }
    }
}

fn report(conn: ConnId, result: Result<(Connection, Verified), (CloseCause, String)>) -> Inbound {
    match result {
        Ok((connection, verified)) => Inbound::Established {
            conn,
            connection,
            peer: verified.peer,
            listen_port: verified.capabilities.listen_port,
            max_frame_len: verified.capabilities.max_frame_len,
        },
        Err((cause, reason)) => Inbound::HandshakeFailed {
            conn,
            cause,
            reason,
        },
    }
}
