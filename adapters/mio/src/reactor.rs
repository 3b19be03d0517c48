//! The event loop: one thread owns the listener, every connection and the `Node`.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use starling_core::id::PeerId;
use starling_core::node::{ConnId, Node, NodeEvent, NodeOutput};
use starling_core::session::{
    CloseCause, CloseCode, NodeKeys, Session, SessionConfig, SessionEvent,
};
use starling_core::time::Instant;

use crate::conn::{self, Conn, ReadOutcome, Side, Water};
use crate::pool::{BufferPool, PoolStats};
use crate::ReactorConfig;
use starling_runtime::{announced_protocols, build_node, Command, Handle, RuntimeCommand};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Connection ids start here so they never collide with the reserved tokens.
const FIRST_CONN: u64 = 16;
/// How long a closed session's last bytes (its close record) may take to flush before the
/// socket is dropped anyway.
pub(crate) const CLOSE_LINGER: starling_core::time::Duration =
    starling_core::time::Duration::from_secs(2);

/// Counters a reactor keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReactorStats {
    /// Connections accepted and admitted by the node.
    pub accepted: u64,
    /// Connections refused by the node's limits before any handshake.
    pub refused: u64,
    /// Frames a full session queue refused (the peer is not reading).
    pub send_refused: u64,
    /// Times a peer was paused by backpressure.
    pub paused: u64,
    /// Receive buffer pool counters.
    pub pool: PoolStats,
}

/// A node on mio: edge-triggered readiness, pooled receive buffers, vectored writes, bounded
/// per-connection queues with backpressure, timers from `poll_timeout`.
pub struct Reactor {
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    commands: Receiver<Command>,
    node: Node,
    keys: Arc<NodeKeys>,
    session_config: Arc<SessionConfig>,
    conns: HashMap<ConnId, Conn>,
    next_conn: ConnId,
    pool: BufferPool,
    high_water: usize,
    low_water: usize,
    origin: std::time::Instant,
    stats: ReactorStats,
    /// Connections with new ciphertext to flush after this turn's inputs.
    dirty: Vec<ConnId>,
    shutting_down: bool,
}

impl Reactor {
    /// Binds the listener and builds the node; nothing runs until [`Reactor::run`].
    pub fn bind(config: ReactorConfig) -> io::Result<(Reactor, Handle)> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.listen)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let (handle, commands) = Handle::new(config.command_queue, move || waker.wake());
        let origin = std::time::Instant::now();
        let node = build_node(&config)?;
        let keys = Arc::new(config.keys.clone());
        let local_addr = listener.local_addr()?;
        let mut session = config.session.clone();
        session.listen_port.get_or_insert(local_addr.port());
        session.protocols = announced_protocols(&node, true);
        let reactor = Reactor {
            local_addr,
            poll,
            listener,
            commands,
            node,
            keys,
            session_config: Arc::new(session),
            conns: HashMap::new(),
            next_conn: FIRST_CONN,
            pool: BufferPool::new(config.chunk_size, config.pool_chunks),
            high_water: config.high_water,
            low_water: config.low_water,
            origin,
            stats: ReactorStats::default(),
            dirty: Vec::new(),
            shutting_down: false,
        };
        Ok((reactor, handle))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Counters so far.
    pub fn stats(&self) -> ReactorStats {
        ReactorStats {
            pool: self.pool.stats(),
            ..self.stats
        }
    }

    /// The node, for inspection.
    pub fn node(&self) -> &Node {
        &self.node
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Runs until [`Handle::shutdown`], calling `on_event` for every node event.
    pub fn run(mut self, mut on_event: impl FnMut(&NodeEvent)) -> io::Result<ReactorStats> {
        let mut events = Events::with_capacity(1024);
        while self.turn(&mut events, &mut on_event)? {}
        Ok(self.stats())
    }

    /// One pass of the loop: wait for readiness or the next deadline, feed what happened, drain
    /// the outputs. Returns false once shut down.
    pub fn turn(
        &mut self,
        events: &mut Events,
        on_event: &mut impl FnMut(&NodeEvent),
    ) -> io::Result<bool> {
        self.drain_node(on_event);
        self.flush_dirty(on_event);
        let timeout = self.next_deadline().map(|deadline| {
            let now = self.now();
            StdDuration::from_nanos(deadline.as_nanos().saturating_sub(now.as_nanos()))
        });
        match self.poll.poll(events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(e),
        }
        let now = self.now();
        for event in events.iter() {
            match event.token() {
                LISTENER => self.accept(now),
                WAKER => self.commands(now, on_event),
                Token(t) => {
                    let id = t as ConnId;
                    if event.is_writable() {
                        self.on_writable(now, id);
                    }
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        self.on_readable(now, id, on_event);
                    }
                }
            }
        }
        self.timers(now, on_event);
        self.drain_node(on_event);
        self.flush_dirty(on_event);
        Ok(!(self.shutting_down && self.conns.is_empty()))
    }

    fn next_deadline(&self) -> Option<Instant> {
        conn::next_deadline(&self.conns)
            .into_iter()
            .chain(self.node.poll_timeout())
            .min()
    }

    fn accept(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, addr)) => {
                    let id = self.next_id();
                    if self.shutting_down || !self.node.handle_incoming(now, id, addr) {
                        self.stats.refused += 1;
                        continue; // dropping the stream closes it
                    }
                    if let Err(e) = self.register(&mut stream, id) {
                        tracing::warn!(%addr, error = %e, "cannot register accepted connection");
                        self.node.handle_closed(now, id, CloseCause::ConnectionLost);
                        continue;
                    }
                    self.stats.accepted += 1;
                    let session = Session::responder(
                        self.session_config.clone(),
                        self.keys.clone(),
                        os_seed(),
                        now,
                    );
                    self.conns
                        .insert(id, Conn::new(stream, addr, Side::Accepted, session));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors and the like: keep serving existing peers.
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            }
        }
    }

    fn next_id(&mut self) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        id
    }

    fn register(&self, stream: &mut TcpStream, id: ConnId) -> io::Result<()> {
        stream.set_nodelay(true)?;
        self.poll.registry().register(
            stream,
            Token(id as usize),
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    fn commands(&mut self, now: Instant, on_event: &mut impl FnMut(&NodeEvent)) {
        loop {
            // Route each command's outputs before taking the next, so the node's output queue
            // holds one command's work at a time however many are waiting.
            self.drain_node(on_event);
            let command = match self.commands.try_recv() {
                Ok(command) => command,
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => return self.shutdown(now),
            };
            match command.apply(&mut self.node, now) {
                None => {}
                Some(RuntimeCommand::SendBatch { conn, frames }) => {
                    // Straight into the session: it packs the frames into shared records.
                    if let Some(c) = self.conns.get_mut(&conn) {
                        for frame in &frames {
                            if c.session.send(frame).is_err() {
                                self.stats.send_refused += 1;
                            }
                        }
                        self.dirty.push(conn);
                    }
                }
                Some(RuntimeCommand::Shutdown) => self.shutdown(now),
            }
        }
    }

    fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        for (id, conn) in self.conns.iter_mut() {
            conn.session.close(CloseCode::Shutdown);
            conn.closing.get_or_insert(now + CLOSE_LINGER);
            self.dirty.push(*id);
        }
    }

    fn on_writable(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        match conn.finish_connect() {
            Ok(true) => self.dirty.push(id),
            Ok(false) => {}
            Err(_) => self.drop_conn(now, id, CloseCause::ConnectionLost),
        }
    }

    fn on_readable(&mut self, now: Instant, id: ConnId, on_event: &mut impl FnMut(&NodeEvent)) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            let outcome = conn.read(&mut self.pool, now);
            self.session_events(now, id, on_event);
            match outcome {
                ReadOutcome::More => {}
                ReadOutcome::Drained => return,
                ReadOutcome::Eof => return self.drop_conn(now, id, CloseCause::ConnectionLost),
                ReadOutcome::Failed(kind) => {
                    tracing::debug!(id, ?kind, "read failed");
                    return self.drop_conn(now, id, CloseCause::ConnectionLost);
                }
            }
        }
    }

    /// Hands the session's events to the node, and marks the connection for flushing.
    fn session_events(&mut self, now: Instant, id: ConnId, on_event: &mut impl FnMut(&NodeEvent)) {
        let mut more = true;
        while more {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            // A read can hold a thousand small frames. Route the node's outputs after every
            // 128 events: often enough that its bounded queue (at least 256) cannot overflow,
            // rarely enough to keep lookups off the per-frame path.
            for _ in 0..128 {
                let Some(event) = conn.session.poll_event() else {
                    more = false;
                    break;
                };
                match event {
                    SessionEvent::Established {
                        peer, capabilities, ..
                    } => {
                        conn.established_reported = true;
                        self.node
                            .handle_established(now, id, peer, capabilities.listen_port);
                    }
                    SessionEvent::Frame(frame) => {
                        if let Some(event) = self.node.deliver_frame(now, id, frame) {
                            on_event(&event);
                        }
                    }
                    SessionEvent::RateExceeded { peer, dropped } => {
                        tracing::warn!(?peer, dropped, "peer exceeded its rate limit");
                    }
                    SessionEvent::PeerSuspect { peer } => {
                        tracing::debug!(?peer, "peer missed heartbeats")
                    }
                    SessionEvent::PeerAlive { peer } => {
                        tracing::debug!(?peer, "peer answers again")
                    }
                    SessionEvent::Closed(cause) => {
                        tracing::debug!(id, addr = %conn.addr, %cause, "session closed");
                        conn.closing = Some(now + CLOSE_LINGER);
                        let dial_failed =
                            matches!(conn.side, Side::Dialled { .. }) && !conn.established_reported;
                        let addr = conn.addr;
                        if dial_failed {
                            self.node.handle_dial_failed(now, addr, cause.name());
                        } else {
                            self.node.handle_closed(now, id, cause);
                        }
                    }
                    _ => {}
                }
            }
            self.drain_node(on_event);
        }
        self.dirty.push(id);
    }

    fn timers(&mut self, now: Instant, on_event: &mut impl FnMut(&NodeEvent)) {
        if self.node.poll_timeout().is_some_and(|t| t <= now) {
            self.node.handle_timeout(now);
        }
        let (due, lingering) = conn::due(&self.conns, now);
        for id in lingering {
            self.retire(id);
        }
        for id in due {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.session.handle_timeout(now);
            }
            self.session_events(now, id, on_event);
        }
    }

    /// Routes the node's outputs: dials, frames to sessions, closes, events to the application.
    fn drain_node(&mut self, on_event: &mut impl FnMut(&NodeEvent)) {
        // The clock is read only by the outputs that need it: this runs once per frame.
        while let Some(out) = self.node.poll_output() {
            match out {
                // Shutting down waits for every connection to close; a protocol repairing its
                // view as peers leave (gossip) would otherwise keep dialling new ones.
                NodeOutput::Dial { .. } if self.shutting_down => {}
                NodeOutput::Dial { addr, expected } => {
                    let now = self.now();
                    self.dial(now, addr, expected)
                }
                NodeOutput::Send { conn, frame } => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        if c.session.send(&frame).is_err() {
                            self.stats.send_refused += 1;
                        }
                        self.dirty.push(conn);
                    }
                }
                NodeOutput::Close { conn, code } => {
                    let now = self.now();
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.session.close(code);
                        c.closing = Some(now + CLOSE_LINGER);
                        while c.session.poll_event().is_some() {}
                        self.dirty.push(conn);
                    }
                }
                NodeOutput::Event(event) => on_event(&event),
            }
        }
    }

    fn dial(&mut self, now: Instant, addr: SocketAddr, expected: Option<PeerId>) {
        let id = self.next_id();
        let stream =
            TcpStream::connect(addr).and_then(|mut s| self.register(&mut s, id).map(|()| s));
        match stream {
            Ok(stream) => {
                let session = Session::initiator(
                    self.session_config.clone(),
                    self.keys.clone(),
                    expected,
                    os_seed(),
                    now,
                );
                self.conns.insert(
                    id,
                    Conn::new(stream, addr, Side::Dialled { connected: false }, session),
                );
                self.node.handle_dialed(now, addr, id);
                self.dirty.push(id);
            }
            Err(e) => self.node.handle_dial_failed(now, addr, &e.to_string()),
        }
    }

    /// Writes what sessions produced, applies backpressure, and retires closed connections.
    fn flush_dirty(&mut self, on_event: &mut impl FnMut(&NodeEvent)) {
        let now = self.now();
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for id in dirty.drain(..) {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            match conn.flush(self.high_water, self.low_water) {
                Err(e) => {
                    tracing::debug!(id, error = %e, "write failed");
                    self.drop_conn(now, id, CloseCause::ConnectionLost);
                    continue;
                }
                Ok(Water::Steady) => {}
                Ok(Water::Paused) => {
                    self.stats.paused += 1;
                    self.node.handle_backpressure(now, id, true);
                }
                Ok(Water::Resumed) => {
                    self.node.handle_backpressure(now, id, false);
                    self.on_readable(now, id, on_event);
                }
            }
            if self.conns.get(&id).is_some_and(Conn::is_done) {
                self.retire(id);
            }
        }
        self.dirty = dirty;
    }

    /// The connection is gone without an orderly close: tell the node, forget it.
    fn drop_conn(&mut self, now: Instant, id: ConnId, cause: CloseCause) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        if conn.closing.is_none() {
            if conn.is_failed_dial() {
                self.node.handle_dial_failed(now, conn.addr, cause.name());
            } else {
                self.node.handle_closed(now, id, cause);
            }
        }
        self.retire(id);
    }

    fn retire(&mut self, id: ConnId) {
        if let Some(mut conn) = self.conns.remove(&id) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }
}

/// 32 bytes from the operating system's CSPRNG, for a session's ephemeral keys.
pub(crate) fn os_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    // Without OS randomness no key can be made safely: stopping is the only sound choice.
    getrandom::fill(&mut seed).expect("the operating system's random number generator failed");
    seed
}
