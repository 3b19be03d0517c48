//! What the multi-reactor's threads say to each other: the acceptor and the I/O threads send
//! [`NodeInput`] to the node thread, the node thread sends [`IoCommand`] to an I/O thread. Only
//! plaintext frames and connection events cross; sockets and sessions stay on their I/O thread.

use std::net::SocketAddr;

use starling_core::id::PeerId;
use starling_core::node::ConnId;
use starling_core::session::{CloseCause, CloseCode};
use starling_core::wire::Frame;

/// Messages into the node thread.
pub(crate) enum NodeInput {
    /// A handle queued a command.
    Wake,
    /// The acceptor accepted a connection.
    Incoming {
        stream: std::net::TcpStream,
        addr: SocketAddr,
    },
    /// An I/O thread reports.
    Io(IoEvent),
}

/// What an I/O thread reports about a connection, in the order its session saw it.
pub(crate) enum IoEvent {
    Established {
        conn: ConnId,
        peer: PeerId,
        listen_port: Option<u16>,
    },
    /// The frames one read produced, in order.
    Frames {
        conn: ConnId,
        frames: Vec<Frame>,
    },
    Closed {
        conn: ConnId,
        cause: CloseCause,
        /// The address of a dialled connection that never got established: its end is a
        /// failed dial, not a lost peer.
        dial_failed: Option<SocketAddr>,
    },
    Backpressure {
        conn: ConnId,
        paused: bool,
    },
}

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
