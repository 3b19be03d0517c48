//! The multi-reactor: an acceptor thread, N I/O threads that own sockets and sessions, and the
//! node thread that owns the `Node`. Only plaintext frames and connection events cross threads,
//! over bounded channels; connection `c` lives on I/O thread `c % N`.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{
    sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError,
};
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::Waker;
use starling_core::node::{ConnId, Node, NodeEvent, NodeOutput};
use starling_core::wire::Frame;

use crate::clock::Clock;
use crate::conn_set::ConnStats;
use crate::io_thread::IoThread;
use crate::messages::{IoCommand, IoEvent, NodeInput};
use crate::reactor::ReactorStats;
use crate::{setup, ReactorConfig};
use starling_runtime::{Command, Handle, RuntimeCommand};

/// Bound on messages waiting for the node thread; I/O threads block beyond it, which stops them
/// reading sockets: backpressure all the way to the peers.
const NODE_INPUT_QUEUE: usize = 4096;
/// Bound on commands waiting for each I/O thread.
const IO_COMMAND_QUEUE: usize = 4096;

struct IoLink {
    tx: SyncSender<IoCommand>,
    waker: Arc<Waker>,
    thread: JoinHandle<io::Result<ConnStats>>,
    /// Frames gathered this turn, sent as one command.
    pending: Vec<(ConnId, Frame)>,
}

/// A node whose sockets and sessions are spread over I/O threads (see the module docs).
pub struct MultiReactor {
    node: Node,
    local_addr: SocketAddr,
    inputs: Receiver<NodeInput>,
    commands: Receiver<Command>,
    io: Vec<IoLink>,
    acceptor_listener: Option<TcpListener>,
    input_tx: SyncSender<NodeInput>,
    next_conn: ConnId,
    clock: Clock,
    stats: ReactorStats,
    shutting_down: bool,
}

impl MultiReactor {
    /// Binds the listener and starts `io_threads` I/O threads (at least one).
    pub fn bind(config: ReactorConfig, io_threads: usize) -> io::Result<(MultiReactor, Handle)> {
        let listener = TcpListener::bind(config.listen)?;
        let local_addr = listener.local_addr()?;
        let (input_tx, inputs) = sync_channel(NODE_INPUT_QUEUE);
        let wake_tx = input_tx.clone();
        let (handle, commands) = Handle::new(config.command_queue, move || {
            match wake_tx.try_send(NodeInput::Wake) {
                // A full channel means the node thread has work queued and will look at
                // commands.
                Ok(()) | Err(TrySendError::Full(_)) => Ok(()),
                Err(TrySendError::Disconnected(_)) => Err(io::ErrorKind::BrokenPipe.into()),
            }
        });
        let clock = Clock::start();
        let (node, conn_setup) = setup::split(config, local_addr.port(), clock)?;
        let mut io = Vec::new();
        for i in 0..io_threads.max(1) {
            let (tx, rx) = sync_channel(IO_COMMAND_QUEUE);
            let (thread, waker) = IoThread::new(conn_setup.clone(), rx, input_tx.clone())?;
            let thread = std::thread::Builder::new()
                .name(format!("starling-io-{i}"))
                .spawn(move || thread.run())?;
            io.push(IoLink {
                tx,
                waker,
                thread,
                pending: Vec::new(),
            });
        }
        let reactor = MultiReactor {
            node,
            local_addr,
            inputs,
            commands,
            io,
            acceptor_listener: Some(listener),
            input_tx,
            next_conn: 1,
            clock,
            stats: ReactorStats::default(),
            shutting_down: false,
        };
        Ok((reactor, handle))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Runs the node thread (this one) until [`Handle::shutdown`]; `on_event` sees every node
    /// event. The acceptor thread is left blocked in `accept` at shutdown; it ends with the
    /// process, or at its next connection.
    pub fn run(mut self, mut on_event: impl FnMut(&NodeEvent)) -> io::Result<ReactorStats> {
        if let Some(listener) = self.acceptor_listener.take() {
            let tx = self.input_tx.clone();
            std::thread::Builder::new()
                .name("starling-accept".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        let Ok(stream) = stream else { continue };
                        let Ok(addr) = stream.peer_addr() else {
                            continue;
                        };
                        if tx.send(NodeInput::Incoming { stream, addr }).is_err() {
                            return;
                        }
                    }
                })?;
        }
        loop {
            self.route(&mut on_event);
            self.flush_all();
            if self.shutting_down {
                break;
            }
            let timeout = self.node.poll_timeout().map(|d| self.clock.until(d));
            let first = match timeout {
                Some(t) => self.inputs.recv_timeout(t),
                None => self
                    .inputs
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
            };
            match first {
                Ok(input) => self.input(input, &mut on_event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Take what else is waiting, a bounded batch, before routing outputs once.
            for _ in 0..1024 {
                match self.inputs.try_recv() {
                    Ok(input) => self.input(input, &mut on_event),
                    Err(_) => break,
                }
            }
            self.commands(&mut on_event);
            let now = self.clock.now();
            if self.node.poll_timeout().is_some_and(|t| t <= now) {
                self.node.handle_timeout(now);
            }
        }
        let mut conns = ConnStats::default();
        for link in self.io {
            let _ = link.tx.send(IoCommand::Shutdown);
            let _ = link.waker.wake();
            if let Ok(Ok(stats)) = link.thread.join() {
                conns.add(stats);
            }
        }
        Ok(ReactorStats {
            send_refused: conns.send_refused,
            paused: conns.paused,
            pool: conns.pool,
            ..self.stats
        })
    }

    fn io_of(&self, conn: ConnId) -> usize {
        (conn % self.io.len() as u64) as usize
    }

    fn input(&mut self, input: NodeInput, on_event: &mut impl FnMut(&NodeEvent)) {
        let now = self.clock.now();
        match input {
            NodeInput::Wake => self.commands(on_event),
            NodeInput::Incoming { stream, addr } => {
                let conn = self.next_id();
                if self.shutting_down || !self.node.handle_incoming(now, conn, addr) {
                    self.stats.refused += 1;
                    return;
                }
                self.stats.accepted += 1;
                let io = self.io_of(conn);
                self.command(io, IoCommand::Adopt { conn, stream, addr });
            }
            NodeInput::Io(IoEvent::Established {
                conn,
                peer,
                listen_port,
            }) => self.node.handle_established(now, conn, peer, listen_port),
            NodeInput::Io(IoEvent::Frames { conn, frames }) => {
                for frame in frames {
                    if let Some(event) = self.node.deliver_frame(now, conn, frame) {
                        on_event(&event);
                    }
                }
            }
            NodeInput::Io(IoEvent::Closed {
                conn,
                cause,
                dial_failed,
            }) => match dial_failed {
                Some(addr) => self.node.handle_dial_failed(now, addr, cause.name()),
                None => self.node.handle_closed(now, conn, cause),
            },
            NodeInput::Io(IoEvent::Backpressure { conn, paused }) => {
                self.node.handle_backpressure(now, conn, paused)
            }
        }
        self.route(on_event);
    }

    fn next_id(&mut self) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        id
    }

    fn command(&self, io: usize, command: IoCommand) {
        // An I/O thread that has stopped drops the command with its channel; nothing to do.
        let _ = self.io[io].tx.send(command);
        let _ = self.io[io].waker.wake();
    }

    fn commands(&mut self, on_event: &mut impl FnMut(&NodeEvent)) {
        let now = self.clock.now();
        loop {
            let command = match self.commands.try_recv() {
                Ok(command) => command,
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.shutting_down = true;
                    return;
                }
            };
            match command.apply(&mut self.node, now) {
                None => {}
                Some(RuntimeCommand::SendBatch { conn, frames }) => {
                    let io = self.io_of(conn);
                    self.io[io]
                        .pending
                        .extend(frames.into_iter().map(|f| (conn, f)));
                }
                Some(RuntimeCommand::Shutdown) => {
                    self.shutting_down = true;
                    return;
                }
            }
            self.route(on_event);
        }
    }

    /// Routes every node output: dials, frames (batched per I/O thread), closes, events.
    fn route(&mut self, on_event: &mut impl FnMut(&NodeEvent)) {
        let now = self.clock.now();
        while let Some(out) = self.node.poll_output() {
            match out {
                NodeOutput::Dial { addr, expected } => {
                    let conn = self.next_id();
                    self.node.handle_dialed(now, addr, conn);
                    let io = self.io_of(conn);
                    self.command(
                        io,
                        IoCommand::Dial {
                            conn,
                            addr,
                            expected,
                        },
                    );
                }
                NodeOutput::Send { conn, frame } => {
                    let io = self.io_of(conn);
                    self.io[io].pending.push((conn, frame));
                }
                NodeOutput::Close { conn, code } => {
                    let io = self.io_of(conn);
                    self.flush_pending(io);
                    self.command(io, IoCommand::Close { conn, code });
                }
                NodeOutput::Event(event) => on_event(&event),
            }
        }
    }

    /// Hands each I/O thread the frames gathered for it this turn, one command each.
    fn flush_all(&mut self) {
        for io in 0..self.io.len() {
            self.flush_pending(io);
        }
    }

    fn flush_pending(&mut self, io: usize) {
        if !self.io[io].pending.is_empty() {
            let frames = std::mem::take(&mut self.io[io].pending);
            self.command(io, IoCommand::Send(frames));
        }
    }
}
