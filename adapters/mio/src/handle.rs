//! Talking to a reactor from other threads.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use bytes::Bytes;
use mio::Waker;
use starling_core::dht::{NodeContact, Record};
use starling_core::gossip::TopicId;
use starling_core::id::{Key, PeerId};
use starling_core::node::{ConnId, Node};
use starling_core::time::Instant;
use starling_core::wire::Frame;

/// What another thread can ask of the reactor.
#[derive(Debug)]
pub enum Command {
    /// Send a frame to a connected peer.
    Send {
        /// The addressee.
        peer: PeerId,
        /// The frame.
        frame: Frame,
    },
    /// Send several frames to one peer: one command, one wake-up, and the session packs them
    /// into shared records. For high message rates.
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
    /// List the connected peers.
    Peers(SyncSender<Vec<(PeerId, SocketAddr)>>),
    /// Run a command on the node's DHT (if it hosts one); results arrive as
    /// `NodeEvent::Dht`.
    Dht(DhtCommand),
    /// Run a command on the node's gossip (if it hosts it); deliveries arrive as
    /// `NodeEvent::Gossip`.
    Gossip(GossipCommand),
    /// Close every session and stop the reactor.
    Shutdown,
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
    /// addresses, peer lists, DHT and gossip commands go to the node (a refusal is logged);
    /// a batch is routed once; what needs the runtime's own sockets is handed back.
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
            Command::Peers(reply) => {
                let _ = reply.try_send(node.peers().map(|p| (p.peer, p.addr)).collect());
            }
            Command::Dht(cmd) => cmd.run(node, now),
            Command::Gossip(cmd) => cmd.run(node, now),
            Command::Shutdown => return Some(RuntimeCommand::Shutdown),
        }
        None
    }
}

/// A command for the DHT the node hosts (see `NodeConfig::dht`).
#[derive(Debug)]
pub enum DhtCommand {
    /// Join through these contacts (a node that dials a bootstrap address joins by itself).
    Bootstrap(Vec<NodeContact>),
    /// Find the k nodes closest to a key.
    FindNode(Key),
    /// Fetch a record.
    Get(Key),
    /// Store a record at the k closest nodes.
    Put(Record),
}

impl DhtCommand {
    /// Runs the command on `node`'s DHT; a refusal is logged (the caller learns of it by the
    /// absence of a result event).
    pub(crate) fn run(self, node: &mut Node, now: Instant) {
        let outcome = node.with_dht(now, |dht, now| match self {
            DhtCommand::Bootstrap(seeds) => dht.bootstrap(now, &seeds),
            DhtCommand::FindNode(key) => dht.find_node(now, key),
            DhtCommand::Get(key) => dht.get(now, key),
            DhtCommand::Put(record) => dht.put(now, record),
        });
        match outcome {
            None => tracing::warn!("DHT command ignored: the node hosts no DHT"),
            Some(Err(e)) => tracing::warn!(error = %e, "DHT command refused"),
            Some(Ok(_)) => {}
        }
    }
}

/// A command for the gossip the node hosts (see `NodeConfig::gossip`).
#[derive(Debug)]
pub enum GossipCommand {
    /// Receive and relay a topic's messages.
    Subscribe(TopicId),
    /// Stop receiving a topic.
    Unsubscribe(TopicId),
    /// Broadcast bytes on a subscribed topic.
    Publish(TopicId, Bytes),
}

impl GossipCommand {
    /// Runs the command on `node`'s gossip; a refusal is logged.
    pub(crate) fn run(self, node: &mut Node, now: Instant) {
        let outcome = node.with_gossip(now, |gossip, now| match self {
            GossipCommand::Subscribe(topic) => gossip.subscribe(topic),
            GossipCommand::Unsubscribe(topic) => {
                gossip.unsubscribe(topic);
                Ok(())
            }
            GossipCommand::Publish(topic, data) => gossip.publish(now, topic, data).map(|_| ()),
        });
        match outcome {
            None => tracing::warn!("gossip command ignored: the node hosts no gossip"),
            Some(Err(e)) => tracing::warn!(error = %e, "gossip command refused"),
            Some(Ok(())) => {}
        }
    }
}

/// A cloneable handle to a running reactor: commands go through a bounded channel, and a
/// `mio::Waker` interrupts the reactor's poll so they are seen at once.
#[derive(Clone, Debug)]
pub struct Handle {
    tx: SyncSender<Command>,
    waker: Wake,
}

/// How a handle interrupts the thread that owns the node.
#[derive(Clone)]
pub(crate) enum Wake {
    /// The single reactor waits in `mio::Poll`.
    Mio(Arc<Waker>),
    /// The multi-reactor's node thread waits on its input channel.
    Channel(SyncSender<crate::messages::NodeInput>),
    /// Another runtime's wake-up (see [`Handle::with_waker`]).
    Custom(Arc<dyn Fn() -> io::Result<()> + Send + Sync>),
}

impl std::fmt::Debug for Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Wake::Mio(_) => "Wake::Mio",
            Wake::Channel(_) => "Wake::Channel",
            Wake::Custom(_) => "Wake::Custom",
        })
    }
}

impl Wake {
    fn wake(&self) -> io::Result<()> {
        match self {
            Wake::Mio(waker) => waker.wake(),
            Wake::Channel(tx) => match tx.try_send(crate::messages::NodeInput::Wake) {
                // A full channel means the node thread has work queued and will look at commands.
                Ok(()) | Err(TrySendError::Full(_)) => Ok(()),
                Err(TrySendError::Disconnected(_)) => Err(io::ErrorKind::BrokenPipe.into()),
            },
            Wake::Custom(wake) => wake(),
        }
    }
}

/// Why a command could not be delivered.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandleError {
    /// The reactor has stopped.
    Stopped,
    /// The command queue is full: the reactor is behind. Retry later.
    Full,
    /// Waking the reactor failed.
    Wake(io::Error),
}

impl std::fmt::Display for HandleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandleError::Stopped => f.write_str("reactor has stopped"),
            HandleError::Full => f.write_str("reactor command queue is full"),
            HandleError::Wake(e) => write!(f, "cannot wake reactor: {e}"),
        }
    }
}

impl std::error::Error for HandleError {}

impl Handle {
    pub(crate) fn new(waker: Wake, capacity: usize) -> (Handle, Receiver<Command>) {
        let (tx, rx) = sync_channel(capacity);
        (Handle { tx, waker }, rx)
    }

    /// A handle for a node hosted by another runtime (the QUIC adapter's tokio task): commands
    /// arrive on the returned receiver, and `wake` is called after each is queued so that the
    /// node's owner looks at the receiver soon. Holds `capacity` commands before
    /// [`Handle::command`] waits.
    pub fn with_waker(
        capacity: usize,
        wake: impl Fn() -> io::Result<()> + Send + Sync + 'static,
    ) -> (Handle, Receiver<Command>) {
        Handle::new(Wake::Custom(Arc::new(wake)), capacity)
    }

    /// Queues `command` without blocking.
    pub fn try_command(&self, command: Command) -> Result<(), HandleError> {
        self.tx.try_send(command).map_err(|e| match e {
            TrySendError::Full(_) => HandleError::Full,
            TrySendError::Disconnected(_) => HandleError::Stopped,
        })?;
        self.waker.wake().map_err(HandleError::Wake)
    }

    /// Queues `command`, waiting while the queue is full.
    pub fn command(&self, command: Command) -> Result<(), HandleError> {
        self.tx.send(command).map_err(|_| HandleError::Stopped)?;
        self.waker.wake().map_err(HandleError::Wake)
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

    /// The connected peers, as the reactor sees them now.
    pub fn peers(&self) -> Result<Vec<(PeerId, SocketAddr)>, HandleError> {
        let (tx, rx) = sync_channel(1);
        self.command(Command::Peers(tx))?;
        rx.recv().map_err(|_| HandleError::Stopped)
    }

    /// Runs `command` on the node's DHT; its result arrives as `NodeEvent::Dht`.
    pub fn dht(&self, command: DhtCommand) -> Result<(), HandleError> {
        self.command(Command::Dht(command))
    }

    /// Runs `command` on the node's gossip; deliveries arrive as `NodeEvent::Gossip`.
    pub fn gossip(&self, command: GossipCommand) -> Result<(), HandleError> {
        self.command(Command::Gossip(command))
    }

    /// Asks the reactor to close every session and return from `run`.
    pub fn shutdown(&self) -> Result<(), HandleError> {
        self.command(Command::Shutdown)
    }
}
