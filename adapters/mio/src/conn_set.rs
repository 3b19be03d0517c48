//! The connections one thread owns, and the one loop that serves them.
//!
//! Both runtimes run it: the single [`Reactor`](crate::Reactor) hands what its sessions produce
//! straight to its node, and each I/O thread of the [`MultiReactor`](crate::MultiReactor)
//! forwards it over a channel to the node thread. That difference is the [`Upstream`] the caller
//! passes in; the rest is written once, here: reading edge-triggered sockets into pooled buffers,
//! feeding the sessions and taking their events, flushing ciphertext with vectored writes under
//! the high/low water marks (backpressure), session timers, and the linger of a closing
//! connection.
//!
//! A turn of either runtime is: wait for readiness or [`ConnSet::next_deadline`], hand each
//! event of a connection to [`ConnSet::ready`], then [`ConnSet::end_turn`], and
//! [`ConnSet::flush`] what the sessions produced.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use starling_core::id::PeerId;
use starling_core::node::ConnId;
use starling_core::session::{
    CloseCause, CloseCode, NodeKeys, Session, SessionConfig, SessionEvent,
};
use starling_core::time::{Duration, Instant};
use starling_core::wire::Frame;

use crate::clock::Clock;
use crate::conn::{Conn, ReadOutcome, Side, Water};
use crate::pool::{BufferPool, PoolStats};

/// How long a closed session's last bytes (its close record) may take to flush before the
/// socket is dropped anyway.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Session events taken from one connection between two [`Upstream::between_batches`] calls. A
/// read can hold a thousand small frames; a node on the same thread routes its outputs this
/// often, so its bounded queue (at least 256) cannot overflow, yet rarely enough to keep its
/// lookups off the per-frame path.
const EVENT_BATCH: usize = 128;

/// Where the news of a thread's connections goes: to the node itself (single reactor) or over
/// the channel to the node's thread (an I/O thread). Calls come in the order the sessions saw
/// things happen.
pub(crate) trait Upstream {
    /// A session finished its handshake.
    fn established(&mut self, now: Instant, conn: ConnId, peer: PeerId, listen_port: Option<u16>);
    /// A plaintext frame arrived.
    fn frame(&mut self, now: Instant, conn: ConnId, frame: Frame);
    /// A connection ended; `dial_failed` holds the address of a dialled connection that never
    /// got established (a failed dial, not a lost peer).
    fn closed(
        &mut self,
        now: Instant,
        conn: ConnId,
        cause: CloseCause,
        dial_failed: Option<SocketAddr>,
    );
    /// The connection's write queue passed the high-water mark (`paused`: reading from it has
    /// stopped) or fell below the low-water mark (reading resumed).
    fn backpressure(&mut self, now: Instant, conn: ConnId, paused: bool);
    /// Every [`EVENT_BATCH`] events while one connection's events are taken: a node on this
    /// thread routes its outputs here. Nothing by default.
    fn between_batches(&mut self, _conns: &mut ConnSet) {}
    /// A step's events have all been taken: forward what was gathered, and route what the node
    /// produced (which may send on, close or dial connections of `conns`).
    fn settle(&mut self, conns: &mut ConnSet);
}

/// What a thread's connections need, shared by every thread of a runtime.
#[derive(Clone)]
pub(crate) struct ConnSetup {
    pub(crate) session: Arc<SessionConfig>,
    pub(crate) keys: Arc<NodeKeys>,
    pub(crate) high_water: usize,
    pub(crate) low_water: usize,
    pub(crate) chunk_size: usize,
    pub(crate) pool_chunks: usize,
    pub(crate) clock: Clock,
}

/// Counters of one [`ConnSet`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ConnStats {
    /// Frames a full session queue refused.
    pub(crate) send_refused: u64,
    /// Times a peer was paused by backpressure.
    pub(crate) paused: u64,
    /// The receive buffer pool's counters.
    pub(crate) pool: PoolStats,
}

impl ConnStats {
    /// Adds another thread's counters to these.
    pub(crate) fn add(&mut self, other: ConnStats) {
        self.send_refused += other.send_refused;
        self.paused += other.paused;
        self.pool.allocations += other.pool.allocations;
        self.pool.hits += other.pool.hits;
        self.pool.misses += other.pool.misses;
        self.pool.dropped += other.pool.dropped;
    }
}

/// The connections one thread owns (socket, session, write queue each), its receive buffer
/// pool, and the connections with bytes to flush. Connection ids are the sockets' mio tokens;
/// the owner keeps its own tokens (listener, waker) out of their range.
pub(crate) struct ConnSet {
    registry: Registry,
    setup: ConnSetup,
    conns: HashMap<ConnId, Conn>,
    pool: BufferPool,
    /// Connections with new ciphertext to flush.
    dirty: Vec<ConnId>,
    /// The vector `flush` works through while new marks gather in `dirty`; kept for reuse.
    flushing: Vec<ConnId>,
    send_refused: u64,
    paused: u64,
}

impl ConnSet {
    /// No connections yet; sockets get registered with `registry`.
    pub(crate) fn new(registry: Registry, setup: ConnSetup) -> ConnSet {
        let pool = BufferPool::new(setup.chunk_size, setup.pool_chunks);
        ConnSet {
            registry,
            setup,
            conns: HashMap::new(),
            pool,
            dirty: Vec::new(),
            flushing: Vec::new(),
            send_refused: 0,
            paused: 0,
        }
    }

    /// Whether every connection is gone.
    pub(crate) fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Counters so far.
    pub(crate) fn stats(&self) -> ConnStats {
        ConnStats {
            send_refused: self.send_refused,
            paused: self.paused,
            pool: self.pool.stats(),
        }
    }

    /// The earliest session timer or close linger.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .values()
            .filter_map(|c| c.closing.or(c.session.poll_timeout()))
            .min()
    }

    fn register(&self, stream: &mut TcpStream, id: ConnId) -> io::Result<()> {
        stream.set_nodelay(true)?;
        self.registry.register(
            stream,
            Token(id as usize),
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    /// Takes over an accepted connection as `id`; its session answers the peer's handshake.
    pub(crate) fn adopt(
        &mut self,
        now: Instant,
        id: ConnId,
        mut stream: TcpStream,
        addr: SocketAddr,
    ) -> io::Result<()> {
        self.register(&mut stream, id)?;
        let session = Session::responder(
            self.setup.session.clone(),
            self.setup.keys.clone(),
            os_seed(),
            now,
        );
        self.conns
            .insert(id, Conn::new(stream, addr, Side::Accepted, session));
        Ok(())
    }

    /// Starts a non-blocking connect to `addr` as `id`, expecting `expected` there if known.
    pub(crate) fn dial(
        &mut self,
        now: Instant,
        id: ConnId,
        addr: SocketAddr,
        expected: Option<PeerId>,
    ) -> io::Result<()> {
        let mut stream = TcpStream::connect(addr)?;
        self.register(&mut stream, id)?;
        let session = Session::initiator(
            self.setup.session.clone(),
            self.setup.keys.clone(),
            expected,
            os_seed(),
            now,
        );
        let side = Side::Dialled { connected: false };
        self.conns
            .insert(id, Conn::new(stream, addr, side, session));
        self.dirty.push(id);
        Ok(())
    }

    /// Queues frames for `id`, in order. A full session queue refuses a frame (counted): the
    /// peer is not reading, and backpressure has told the node.
    pub(crate) fn send<'a>(&mut self, id: ConnId, frames: impl IntoIterator<Item = &'a Frame>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        for frame in frames {
            if conn.session.send(frame).is_err() {
                self.send_refused += 1;
            }
        }
        self.dirty.push(id);
    }

    /// Closes `id`'s session at the node's request: its close record is flushed within the
    /// linger, and what the session still had to say is dropped (the node knows).
    pub(crate) fn close(&mut self, now: Instant, id: ConnId, code: CloseCode) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.session.close(code);
            conn.closing.get_or_insert(now + CLOSE_LINGER);
            while conn.session.poll_event().is_some() {}
            self.dirty.push(id);
        }
    }

    /// Closes every session; the connections go once flushed or lingered.
    pub(crate) fn shutdown(&mut self, now: Instant) {
        for (id, conn) in self.conns.iter_mut() {
            conn.session.close(CloseCode::Shutdown);
            conn.closing.get_or_insert(now + CLOSE_LINGER);
            self.dirty.push(*id);
        }
    }

    /// A readiness event for one of these connections.
    pub(crate) fn ready(&mut self, now: Instant, event: &Event, up: &mut impl Upstream) {
        let id = event.token().0 as ConnId;
        if event.is_writable() {
            self.writable(now, id, up);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read(now, id, up);
        }
    }

    fn writable(&mut self, now: Instant, id: ConnId, up: &mut impl Upstream) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        match conn.finish_connect() {
            Ok(true) => self.dirty.push(id),
            Ok(false) => {}
            Err(_) => self.lost(now, id, up),
        }
    }

    /// Reads `id` until its socket would block (edge-triggered: no new event comes before),
    /// handing each chunk's session events upstream before the next read, so the peer's frames
    /// flow while it keeps sending.
    ///
    /// This is where a per-connection read budget goes: stop after it, keep the connection on
    /// a ready list, and serve that list round-robin on the next turns.
    fn read(&mut self, now: Instant, id: ConnId, up: &mut impl Upstream) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            let outcome = conn.read(&mut self.pool, now);
            self.session_events(now, id, up);
            match outcome {
                ReadOutcome::More => {}
                ReadOutcome::Drained => return,
                ReadOutcome::Eof => return self.lost(now, id, up),
                ReadOutcome::Failed(kind) => {
                    tracing::debug!(id, ?kind, "read failed");
                    return self.lost(now, id, up);
                }
            }
        }
    }

    /// Hands `id`'s session events upstream, then marks it for flushing (the session may have
    /// answered).
    fn session_events(&mut self, now: Instant, id: ConnId, up: &mut impl Upstream) {
        while let Some(conn) = self.conns.get_mut(&id) {
            let mut taken = 0;
            while taken < EVENT_BATCH {
                let Some(event) = conn.session.poll_event() else {
                    break;
                };
                taken += 1;
                match event {
                    SessionEvent::Established {
                        peer, capabilities, ..
                    } => {
                        conn.established_reported = true;
                        up.established(now, id, peer, capabilities.listen_port);
                    }
                    SessionEvent::Frame(frame) => up.frame(now, id, frame),
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
                        let dial_failed = conn.is_failed_dial().then_some(conn.addr);
                        up.closed(now, id, cause, dial_failed);
                    }
                    _ => {}
                }
            }
            if taken < EVENT_BATCH {
                break;
            }
            up.between_batches(self);
        }
        self.dirty.push(id);
        up.settle(self);
    }

    /// The work of a turn after its readiness events: fires due session timers and drops
    /// connections whose close linger ran out. Every runtime calls it once a turn, after
    /// [`ConnSet::ready`]: connections a read budget left unfinished would be served here.
    pub(crate) fn end_turn(&mut self, now: Instant, up: &mut impl Upstream) {
        let lingering: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.closing.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in lingering {
            self.retire(id);
        }
        let due: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.session.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.session.handle_timeout(now);
            }
            self.session_events(now, id, up);
        }
    }

    /// Writes what the sessions produced, applies the water marks, and retires connections
    /// that are closed and flushed. Runs until no connection is left marked: resuming a paused
    /// connection reads it, and what that produces is flushed in the same call.
    pub(crate) fn flush(&mut self, up: &mut impl Upstream) {
        let now = self.setup.clock.now();
        while !self.dirty.is_empty() {
            let mut batch = std::mem::take(&mut self.flushing);
            std::mem::swap(&mut batch, &mut self.dirty);
            batch.sort_unstable();
            batch.dedup();
            for id in batch.drain(..) {
                let Some(conn) = self.conns.get_mut(&id) else {
                    continue;
                };
                match conn.flush(self.setup.high_water, self.setup.low_water) {
                    Err(e) => {
                        tracing::debug!(id, error = %e, "write failed");
                        self.lost(now, id, up);
                        continue;
                    }
                    Ok(Water::Steady) => {}
                    Ok(Water::Paused) => {
                        self.paused += 1;
                        up.backpressure(now, id, true);
                    }
                    Ok(Water::Resumed) => {
                        up.backpressure(now, id, false);
                        // Edge-triggered readiness raised no event while paused.
                        self.read(now, id, up);
                    }
                }
                if self.conns.get(&id).is_some_and(Conn::is_done) {
                    self.retire(id);
                }
            }
            self.flushing = batch;
            // Route what backpressure and lost connections made the node say.
            up.settle(self);
        }
    }

    /// The socket is gone without a close record: tell upstream (unless the session already
    /// closed, which told it), forget the connection.
    fn lost(&mut self, now: Instant, id: ConnId, up: &mut impl Upstream) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        if conn.closing.is_none() {
            let dial_failed = conn.is_failed_dial().then_some(conn.addr);
            up.closed(now, id, CloseCause::ConnectionLost, dial_failed);
        }
        self.retire(id);
    }

    fn retire(&mut self, id: ConnId) {
        if let Some(mut conn) = self.conns.remove(&id) {
            let _ = self.registry.deregister(&mut conn.stream);
        }
    }
}

/// 32 bytes from the operating system's CSPRNG, for a session's ephemeral keys.
fn os_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    // Without OS randomness no key can be made safely: stopping is the only sound choice.
    getrandom::fill(&mut seed).expect("the operating system's random number generator failed");
    seed
}

#[cfg(test)]
#[path = "conn_set_tests.rs"]
mod tests;
