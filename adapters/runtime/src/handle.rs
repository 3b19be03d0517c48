//! Talking to the thread that owns a node from other threads.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use starling_core::id::PeerId;
use starling_core::node::{ConnId, Node, Protocol};
use starling_core::time::Instant;
use starling_core::wire::Frame;

/// A closure run on the node's thread, with the node and the time.
pub type NodeFn = Box<dyn FnOnce(&mut Node, Instant) + Send>;

/// What another thread can ask of a runtime.
pub enum Command {
    /// Send a frame to a connected peer.
    Send {
        /// The addressee.
        peer: PeerId,
        /// The frame.
        frame: Frame,
    },
    /// Send several frames to one peer: one command, one wake-up, and the transport packs them
    /// together. For high message rates.
    SendBatch {
        /// The addressee.
        peer: PeerId,
        /// The frames, in order.
        frames: Vec<Frame>,
    },
    /// Send a frame to every connected peer.
    Broadcast(Frame),
    /// Dial an address and keep it connected.
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Whom we expect there, if known.
        expected: Option<PeerId>,
    },
    /// Run a closure on the node: a hosted protocol's command, a query. See
    /// [`Handle::with_protocol`] and [`Handle::query`].
    Run(NodeFn),
    /// Close every session and stop.
    Shutdown,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Send { peer, frame } => f
                .debug_struct("Send")
                .field("peer", peer)
                .field("frame", frame)
                .finish(),
            Command::SendBatch { peer, frames } => f
                .debug_struct("SendBatch")
                .field("peer", peer)
                .field("frames", &frames.len())
                .finish(),
            Command::Broadcast(frame) => f.debug_tuple("Broadcast").field(frame).finish(),
            Command::Connect { addr, expected } => f
                .debug_struct("Connect")
                .field("addr", addr)
                .field("expected", expected)
                .finish(),
            Command::Run(_) => f.write_str("Run(..)"),
            Command::Shutdown => f.write_str("Shutdown"),
        }
    }
}

/// What is left for the runtime after [`Command::apply`]: the commands that need its sockets.
#[derive(Debug)]
pub enum RuntimeCommand {
    /// Frames already routed to connection `conn`, for the runtime to queue in order.
    SendBatch {
        /// The connection the node chose.
        conn: ConnId,
        /// The frames.
        frames: Vec<Frame>,
    },
    /// Close every session and stop.
    Shutdown,
}

impl Command {
    /// Carries out a command on `node`, the same way in every runtime: sends, broadcasts,
    /// addresses and closures go to the node (a refusal is logged with its cause); a batch is
    /// routed once; what needs the runtime's own sockets is handed back.
    pub fn apply(self, node: &mut Node, now: Instant) -> Option<RuntimeCommand> {
        match self {
            Command::Send { peer, frame } => {
                if let Err(e) = node.send(now, peer, frame) {
                    tracing::debug!(?peer, error = %e, "send refused");
                }
            }
            Command::SendBatch { peer, frames } => {
                match node.route_batch(now, peer, frames.len() as u64) {
                    Ok(conn) => return Some(RuntimeCommand::SendBatch { conn, frames }),
                    Err(e) => tracing::debug!(?peer, error = %e, "send refused"),
                }
            }
            Command::Broadcast(frame) => {
                node.broadcast(now, &frame);
            }
            Command::Connect { addr, expected } => {
                if let Err(e) = node.add_address(now, addr, expected, true) {
                    tracing::warn!(%addr, error = %e, "cannot add address");
                }
            }
            Command::Run(f) => f(node, now),
            Command::Shutdown => return Some(RuntimeCommand::Shutdown),
        }
        None
    }
}

/// A cloneable handle to a running node: commands go through a bounded channel, and a wake-up
/// (the runtime's: a `mio::Waker`, a channel message, a tokio `Notify`) makes the node's thread
/// look at them at once.
#[derive(Clone)]
pub struct Handle {
    tx: SyncSender<Command>,
    wake: Arc<dyn Fn() -> io::Result<()> + Send + Sync>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// Why a command could not be delivered.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandleError {
    /// The runtime has stopped.
    Stopped,
    /// The command queue is full: the runtime is behind. Retry later.
    Full,
    /// Waking the runtime failed.
    Wake(io::Error),
    /// The node hosts no protocol of the type asked for.
    NotHosted(&'static str),
}

impl std::fmt::Display for HandleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandleError::Stopped => f.write_str("the node has stopped"),
            HandleError::Full => f.write_str("the node's command queue is full"),
            HandleError::Wake(e) => write!(f, "cannot wake the node: {e}"),
            HandleError::NotHosted(name) => write!(f, "the node hosts no {name} protocol"),
        }
    }
}

impl std::error::Error for HandleError {}

impl Handle {
    /// A handle whose commands arrive on the returned receiver; `wake` is called after each is
    /// queued so that the node's owner looks at the receiver soon. Holds `capacity` commands
    /// before [`Handle::command`] waits.
    pub fn new(
        capacity: usize,
        wake: impl Fn() -> io::Result<()> + Send + Sync + 'static,
    ) -> (Handle, Receiver<Command>) {
        let (tx, rx) = sync_channel(capacity);
        let handle = Handle {
            tx,
            wake: Arc::new(wake),
        };
        (handle, rx)
    }

    /// Queues `command` without blocking.
    pub fn try_command(&self, command: Command) -> Result<(), HandleError> {
        self.tx.try_send(command).map_err(|e| match e {
            TrySendError::Full(_) => HandleError::Full,
            TrySendError::Disconnected(_) => HandleError::Stopped,
        })?;
        (self.wake)().map_err(HandleError::Wake)
    }

    /// Queues `command`, waiting while the queue is full.
    pub fn command(&self, command: Command) -> Result<(), HandleError> {
        self.tx.send(command).map_err(|_| HandleError::Stopped)?;
        (self.wake)().map_err(HandleError::Wake)
    }

    /// Sends `frame` to `peer`.
    pub fn send(&self, peer: PeerId, frame: Frame) -> Result<(), HandleError> {
        self.command(Command::Send { peer, frame })
    }

    /// Sends `frames` to `peer`, in order, as one command.
    pub fn send_batch(&self, peer: PeerId, frames: Vec<Frame>) -> Result<(), HandleError> {
        self.command(Command::SendBatch { peer, frames })
    }

    /// Sends `frame` to every connected peer.
    pub fn broadcast(&self, frame: Frame) -> Result<(), HandleError> {
        self.command(Command::Broadcast(frame))
    }

    /// Dials `addr` and keeps it connected.
    pub fn connect(&self, addr: SocketAddr, expected: Option<PeerId>) -> Result<(), HandleError> {
        self.command(Command::Connect { addr, expected })
    }

    /// Runs `f` on the node's thread and waits for its answer.
    pub fn query<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node, Instant) -> R + Send + 'static,
    ) -> Result<R, HandleError> {
        let (tx, rx) = sync_channel(1);
        self.command(Command::Run(Box::new(move |node, now| {
            let _ = tx.send(f(node, now));
        })))?;
        rx.recv().map_err(|_| HandleError::Stopped)
    }

    /// Runs `f` on the hosted protocol `P` (with the protocol's clock) without waiting: a
    /// command such as a publish or a lookup, whose results arrive as
    /// [`NodeEvent::Protocol`](starling_core::node::NodeEvent::Protocol) events. If the node
    /// hosts no `P` the command is dropped with a warning in the log; use
    /// [`Handle::query_protocol`] to learn of it.
    pub fn with_protocol<P: Protocol>(
        &self,
        f: impl FnOnce(&mut P, Instant) + Send + 'static,
    ) -> Result<(), HandleError> {
        self.command(Command::Run(Box::new(move |node, now| {
            if node.with_protocol::<P, _>(now, f).is_none() {
                tracing::warn!(protocol = P::NAME, "command dropped: protocol not hosted");
            }
        })))
    }

    /// Runs `f` on the hosted protocol `P` and waits for its answer.
    pub fn query_protocol<P: Protocol, R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut P, Instant) -> R + Send + 'static,
    ) -> Result<R, HandleError> {
        self.query(move |node, now| node.with_protocol::<P, _>(now, f))?
            .ok_or(HandleError::NotHosted(P::NAME))
    }

    /// The connected peers and their connection addresses, as the node sees them now.
    pub fn peers(&self) -> Result<Vec<(PeerId, SocketAddr)>, HandleError> {
        self.query(|node, _| node.peers().map(|p| (p.peer, p.addr)).collect())
    }

    /// Asks the runtime to close every session and stop.
    pub fn shutdown(&self) -> Result<(), HandleError> {
        self.command(Command::Shutdown)
    }
}
