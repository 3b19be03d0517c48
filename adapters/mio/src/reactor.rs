//! The single reactor: one thread owns the listener, every connection and the `Node`.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, TryRecvError};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use starling_core::id::PeerId;
use starling_core::node::{ConnId, Node, NodeEvent, NodeOutput};
use starling_core::session::CloseCause;
use starling_core::time::Instant;
use starling_core::wire::Frame;

use crate::clock::Clock;
use crate::conn_set::{ConnSet, Upstream};
use crate::pool::PoolStats;
use crate::{setup, ReactorConfig};
use starling_runtime::{Command, Handle, RuntimeCommand};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Connection ids start here so they never collide with the reserved tokens.
const FIRST_CONN: u64 = 16;

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
    conns: ConnSet,
    side: NodeSide,
}

/// The node and what the reactor keeps beside it: it routes the node's outputs to the
/// connections.
struct NodeSide {
    node: Node,
    clock: Clock,
    next_conn: ConnId,
    accepted: u64,
    refused: u64,
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
        let clock = Clock::start();
        let local_addr = listener.local_addr()?;
        let (node, conn_setup) = setup::split(config, local_addr.port(), clock)?;
        let conns = ConnSet::new(poll.registry().try_clone()?, conn_setup);
        let reactor = Reactor {
            local_addr,
            poll,
            listener,
            commands,
            conns,
            side: NodeSide {
                node,
                clock,
                next_conn: FIRST_CONN,
                accepted: 0,
                refused: 0,
                shutting_down: false,
            },
        };
        Ok((reactor, handle))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Counters so far.
    pub fn stats(&self) -> ReactorStats {
        let conns = self.conns.stats();
        ReactorStats {
            accepted: self.side.accepted,
            refused: self.side.refused,
            send_refused: conns.send_refused,
            paused: conns.paused,
            pool: conns.pool,
        }
    }

    /// The node, for inspection.
    pub fn node(&self) -> &Node {
        &self.side.node
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
        self.settle(on_event);
        let timeout = self.next_deadline().map(|d| self.side.clock.until(d));
        match self.poll.poll(events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(e),
        }
        let now = self.side.clock.now();
        for event in events.iter() {
            match event.token() {
                LISTENER => self.accept(now),
                WAKER => self.commands(now, on_event),
                _ => self.conns.ready(now, event, &mut self.side.up(on_event)),
            }
        }
        if self.side.node.poll_timeout().is_some_and(|t| t <= now) {
            self.side.node.handle_timeout(now);
        }
        self.conns.end_turn(now, &mut self.side.up(on_event));
        self.settle(on_event);
        Ok(!(self.side.shutting_down && self.conns.is_empty()))
    }

    /// Routes the node's outputs and writes what the sessions produced.
    fn settle(&mut self, on_event: &mut impl FnMut(&NodeEvent)) {
        let mut up = self.side.up(on_event);
        up.settle(&mut self.conns);
        self.conns.flush(&mut up);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .next_deadline()
            .into_iter()
            .chain(self.side.node.poll_timeout())
            .min()
    }

    fn accept(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => {
                    let id = self.side.next_id();
                    if self.side.shutting_down || !self.side.node.handle_incoming(now, id, addr) {
                        self.side.refused += 1;
                        continue; // dropping the stream closes it
                    }
                    if let Err(e) = self.conns.adopt(now, id, stream, addr) {
                        tracing::warn!(%addr, error = %e, "cannot register accepted connection");
                        self.side
                            .node
                            .handle_closed(now, id, CloseCause::ConnectionLost);
                        continue;
                    }
                    self.side.accepted += 1;
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

    fn commands(&mut self, now: Instant, on_event: &mut impl FnMut(&NodeEvent)) {
        loop {
            // Route each command's outputs before taking the next, so the node's output queue
            // holds one command's work at a time however many are waiting.
            self.side.route(&mut self.conns, on_event);
            let command = match self.commands.try_recv() {
                Ok(command) => command,
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => return self.shutdown(now),
            };
            match command.apply(&mut self.side.node, now) {
                None => {}
                // Straight into the session: it packs the frames into shared records.
                Some(RuntimeCommand::SendBatch { conn, frames }) => self.conns.send(conn, &frames),
                Some(RuntimeCommand::Shutdown) => self.shutdown(now),
            }
        }
    }

    fn shutdown(&mut self, now: Instant) {
        self.side.shutting_down = true;
        self.conns.shutdown(now);
    }
}

impl NodeSide {
    fn next_id(&mut self) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        id
    }

    /// This node as the connections' upstream, events going on to `on_event`.
    fn up<'a, F: FnMut(&NodeEvent)>(&'a mut self, on_event: &'a mut F) -> ToNode<'a, F> {
        ToNode {
            side: self,
            on_event,
        }
    }

    /// Routes the node's outputs: dials, frames to sessions, closes, events to the application.
    fn route(&mut self, conns: &mut ConnSet, on_event: &mut impl FnMut(&NodeEvent)) {
        // The clock is read only by the outputs that need it: this runs once per frame.
        while let Some(out) = self.node.poll_output() {
            match out {
                // Shutting down waits for every connection to close; a protocol repairing its
                // view as peers leave (gossip) would otherwise keep dialling new ones.
                NodeOutput::Dial { .. } if self.shutting_down => {}
                NodeOutput::Dial { addr, expected } => self.dial(conns, addr, expected),
                NodeOutput::Send { conn, frame } => conns.send(conn, [&frame]),
                NodeOutput::Close { conn, code } => conns.close(self.clock.now(), conn, code),
                NodeOutput::Event(event) => on_event(&event),
            }
        }
    }

    fn dial(&mut self, conns: &mut ConnSet, addr: SocketAddr, expected: Option<PeerId>) {
        let now = self.clock.now();
        let id = self.next_id();
        match conns.dial(now, id, addr, expected) {
            Ok(()) => self.node.handle_dialed(now, addr, id),
            Err(e) => self.node.handle_dial_failed(now, addr, &e.to_string()),
        }
    }
}

/// The single reactor's [`Upstream`]: the node on this thread.
struct ToNode<'a, F> {
    side: &'a mut NodeSide,
    on_event: &'a mut F,
}

impl<F: FnMut(&NodeEvent)> Upstream for ToNode<'_, F> {
    fn established(&mut self, now: Instant, conn: ConnId, peer: PeerId, listen_port: Option<u16>) {
        self.side
            .node
            .handle_established(now, conn, peer, listen_port);
    }

    fn frame(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        if let Some(event) = self.side.node.deliver_frame(now, conn, frame) {
            (self.on_event)(&event);
        }
    }

    fn closed(
        &mut self,
        now: Instant,
        conn: ConnId,
        cause: CloseCause,
        dial_failed: Option<SocketAddr>,
    ) {
        match dial_failed {
            Some(addr) => self.side.node.handle_dial_failed(now, addr, cause.name()),
            None => self.side.node.handle_closed(now, conn, cause),
        }
    }

    fn backpressure(&mut self, now: Instant, conn: ConnId, paused: bool) {
        self.side.node.handle_backpressure(now, conn, paused);
    }

    fn between_batches(&mut self, conns: &mut ConnSet) {
        self.side.route(conns, self.on_event);
    }

    fn settle(&mut self, conns: &mut ConnSet) {
        self.side.route(conns, self.on_event);
    }
}
