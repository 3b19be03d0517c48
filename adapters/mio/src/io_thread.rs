//! An I/O thread of the multi-reactor: it owns sockets and their sessions (handshake, crypto,
//! framing) and exchanges only plaintext frames and connection events with the node thread.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use starling_core::id::PeerId;
use starling_core::node::ConnId;
use starling_core::session::{
    CloseCause, CloseCode, NodeKeys, Session, SessionConfig, SessionEvent,
};
use starling_core::time::Instant;
use starling_core::wire::Frame;

use crate::conn::{self, Conn, ReadOutcome, Side, Water};
use crate::multi::{IoEvent, NodeInput};
use crate::pool::{BufferPool, PoolStats};
use crate::reactor::{os_seed, CLOSE_LINGER};

const WAKER: Token = Token(0);

/// What the node thread asks of an I/O thread.
pub(crate) enum IoCommand {
    /// Take over an accepted connection.
    Adopt {
        conn: ConnId,
        stream: std::net::TcpStream,
        addr: SocketAddr,
    },
    /// Dial `addr` as connection `conn`.
    Dial {
        conn: ConnId,
        addr: SocketAddr,
        expected: Option<PeerId>,
    },
    /// Frames for connections this thread owns, in order.
    Send(Vec<(ConnId, Frame)>),
    /// Close a session.
    Close { conn: ConnId, code: CloseCode },
    /// Close everything and stop.
    Shutdown,
}

/// Everything an I/O thread needs, sent to it at spawn.
pub(crate) struct IoSetup {
    pub(crate) session: Arc<SessionConfig>,
    pub(crate) keys: Arc<NodeKeys>,
    pub(crate) high_water: usize,
    pub(crate) low_water: usize,
    pub(crate) chunk_size: usize,
    pub(crate) pool_chunks: usize,
    pub(crate) origin: std::time::Instant,
}

pub(crate) struct IoThread {
    poll: Poll,
    commands: Receiver<IoCommand>,
    to_node: SyncSender<NodeInput>,
    setup: IoSetup,
    conns: HashMap<ConnId, Conn>,
    pool: BufferPool,
    dirty: Vec<ConnId>,
    shutting_down: bool,
}

impl IoThread {
    /// Builds the thread's poller; returns the waker the node thread uses to interrupt it.
    pub(crate) fn new(
        setup: IoSetup,
        commands: Receiver<IoCommand>,
        to_node: SyncSender<NodeInput>,
    ) -> io::Result<(IoThread, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let pool = BufferPool::new(setup.chunk_size, setup.pool_chunks);
        let thread = IoThread {
            poll,
            commands,
            to_node,
            setup,
            conns: HashMap::new(),
            pool,
            dirty: Vec::new(),
            shutting_down: false,
        };
        Ok((thread, waker))
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(
            u64::try_from(self.setup.origin.elapsed().as_nanos()).unwrap_or(u64::MAX),
        )
    }

    fn tell(&self, event: IoEvent) {
        // The node thread outlives its I/O threads; if it is gone we are shutting down anyway.
        let _ = self.to_node.send(NodeInput::Io(event));
    }

    /// Runs until shut down; returns the pool's counters.
    pub(crate) fn run(mut self) -> io::Result<PoolStats> {
        let mut events = Events::with_capacity(1024);
        loop {
            self.flush_dirty();
            if self.shutting_down && self.conns.is_empty() {
                return Ok(self.pool.stats());
            }
            let now = self.now();
            let deadline = conn::next_deadline(&self.conns);
            let timeout = deadline
                .map(|d| StdDuration::from_nanos(d.as_nanos().saturating_sub(now.as_nanos())));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = self.now();
            for event in events.iter() {
                match event.token() {
                    WAKER => self.commands(now),
                    Token(t) => {
                        let id = t as ConnId;
                        if event.is_writable() {
                            self.on_writable(id);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.on_readable(now, id);
                        }
                    }
                }
            }
            self.timers(now);
        }
    }

    fn register(&self, stream: &mut TcpStream, id: ConnId) -> io::Result<()> {
        stream.set_nodelay(true)?;
        self.poll.registry().register(
            stream,
            Token(id as usize),
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    fn commands(&mut self, now: Instant) {
        loop {
            match self.commands.try_recv() {
                Ok(IoCommand::Adopt { conn, stream, addr }) => {
                    let adopted = stream
                        .set_nonblocking(true)
                        .map(|()| TcpStream::from_std(stream));
                    match adopted.and_then(|mut s| self.register(&mut s, conn).map(|()| s)) {
                        Ok(stream) => {
                            let session = Session::responder(
                                self.setup.session.clone(),
                                self.setup.keys.clone(),
                                os_seed(),
                                now,
                            );
                            self.conns
                                .insert(conn, Conn::new(stream, addr, Side::Accepted, session));
                        }
                        Err(_) => self.tell(IoEvent::Closed {
                            conn,
                            cause: CloseCause::ConnectionLost,
                            dial_failed: None,
                        }),
                    }
                }
                Ok(IoCommand::Dial {
                    conn,
                    addr,
                    expected,
                }) => {
                    match TcpStream::connect(addr)
                        .and_then(|mut s| self.register(&mut s, conn).map(|()| s))
                    {
                        Ok(stream) => {
                            let session = Session::initiator(
                                self.setup.session.clone(),
                                self.setup.keys.clone(),
                                expected,
                                os_seed(),
                                now,
                            );
                            self.conns.insert(
                                conn,
                                Conn::new(
                                    stream,
                                    addr,
                                    Side::Dialled { connected: false },
                                    session,
                                ),
                            );
                            self.dirty.push(conn);
                        }
                        Err(_) => self.tell(IoEvent::Closed {
                            conn,
                            cause: CloseCause::ConnectionLost,
                            dial_failed: Some(addr),
                        }),
                    }
                }
                Ok(IoCommand::Send(frames)) => {
                    for (conn, frame) in frames {
                        if let Some(c) = self.conns.get_mut(&conn) {
                            // A full session queue drops the frame; backpressure has told the node.
                            let _ = c.session.send(&frame);
                            self.dirty.push(conn);
                        }
                    }
                }
                Ok(IoCommand::Close { conn, code }) => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.session.close(code);
                        c.closing.get_or_insert(now + CLOSE_LINGER);
                        while c.session.poll_event().is_some() {}
                        self.dirty.push(conn);
                    }
                }
                Ok(IoCommand::Shutdown) | Err(TryRecvError::Disconnected) => {
                    self.shutting_down = true;
                    for (id, c) in self.conns.iter_mut() {
                        c.session.close(CloseCode::Shutdown);
                        c.closing.get_or_insert(now + CLOSE_LINGER);
                        self.dirty.push(*id);
                    }
                    return;
                }
                Err(TryRecvError::Empty) => return,
            }
        }
    }

    fn on_writable(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        match conn.finish_connect() {
            Ok(true) => self.dirty.push(id),
            Ok(false) => {}
            Err(_) => self.lost(id),
        }
    }

    fn on_readable(&mut self, now: Instant, id: ConnId) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            let outcome = conn.read(&mut self.pool, now);
            self.session_events(now, id);
            match outcome {
                ReadOutcome::More => {}
                ReadOutcome::Drained => return,
                ReadOutcome::Eof | ReadOutcome::Failed(_) => return self.lost(id),
            }
        }
    }

    /// Forwards the session's events; frames of one read travel as one message.
    fn session_events(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let mut frames = Vec::new();
        let mut out = Vec::new();
        while let Some(event) = conn.session.poll_event() {
            match event {
                SessionEvent::Frame(frame) => frames.push(frame),
                SessionEvent::Established {
                    peer, capabilities, ..
                } => {
                    conn.established_reported = true;
                    out.push(IoEvent::Established {
                        conn: id,
                        peer,
                        listen_port: capabilities.listen_port,
                    });
                }
                SessionEvent::Closed(cause) => {
                    conn.closing = Some(now + CLOSE_LINGER);
                    let dial_failed = (matches!(conn.side, Side::Dialled { .. })
                        && !conn.established_reported)
                        .then_some(conn.addr);
                    if !frames.is_empty() {
                        out.push(IoEvent::Frames {
                            conn: id,
                            frames: std::mem::take(&mut frames),
                        });
                    }
                    out.push(IoEvent::Closed {
                        conn: id,
                        cause,
                        dial_failed,
                    });
                }
                SessionEvent::RateExceeded { peer, dropped } => {
                    tracing::warn!(?peer, dropped, "peer exceeded its rate limit")
                }
                _ => {}
            }
        }
        if !frames.is_empty() {
            // Frames come after Established in the session's order, so push them last.
            out.push(IoEvent::Frames { conn: id, frames });
        }
        self.dirty.push(id);
        for event in out {
            self.tell(event);
        }
    }

    /// The socket is gone without a close record.
    fn lost(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get(&id) {
            if conn.closing.is_none() {
                let dial_failed = (matches!(conn.side, Side::Dialled { .. })
                    && !conn.established_reported)
                    .then_some(conn.addr);
                self.tell(IoEvent::Closed {
                    conn: id,
                    cause: CloseCause::ConnectionLost,
                    dial_failed,
                });
            }
        }
        self.retire(id);
    }

    fn retire(&mut self, id: ConnId) {
        if let Some(mut conn) = self.conns.remove(&id) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }

    fn timers(&mut self, now: Instant) {
        let (due, lingering) = conn::due(&self.conns, now);
        for id in lingering {
            self.retire(id);
        }
        for id in due {
            if let Some(c) = self.conns.get_mut(&id) {
                c.session.handle_timeout(now);
            }
            self.session_events(now, id);
        }
    }

    fn flush_dirty(&mut self) {
        let now = self.now();
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for id in dirty.drain(..) {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            match conn.flush(self.setup.high_water, self.setup.low_water) {
                Err(_) => {
                    self.lost(id);
                    continue;
                }
                Ok(Water::Steady) => {}
                Ok(Water::Paused) => self.tell(IoEvent::Backpressure {
                    conn: id,
                    paused: true,
                }),
                Ok(Water::Resumed) => {
                    self.tell(IoEvent::Backpressure {
                        conn: id,
                        paused: false,
                    });
                    self.on_readable(now, id);
                }
            }
            if self.conns.get(&id).is_some_and(Conn::is_done) {
                self.retire(id);
            }
        }
        self.dirty = dirty;
    }
}
