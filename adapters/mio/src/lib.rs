//! # starling-mio
//!
//! Runs a Starling [`Node`](starling_core::node::Node) over TCP on [mio]: one reactor thread
//! owns the listener, every socket, every [`Session`](starling_core::session::Session) and the
//! node, and turns readiness into inputs and outputs into writes.
//!
//! - **Edge-triggered**: sockets are registered for read and write readiness once; each event is
//!   followed by reading or writing until `WouldBlock`.
//! - **Pooled receive buffers** ([`BufferPool`]): fixed-size chunks, recycled once nothing slices
//!   them, with allocation, hit and miss counters.
//! - **Vectored writes** from a bounded per-connection queue. Above the high-water mark the
//!   reactor stops reading from that peer and tells the node ([`NodeEvent::Backpressure`]);
//!   below the low-water mark it resumes. A peer that never reads stops answering heartbeats and
//!   its session is closed by the keep-alive.
//! - **Timers** from `poll_timeout` of the node and of each session.
//! - **Other threads** talk to the reactor through a cloneable [`Handle`] (from
//!   `starling-runtime`, shared with the QUIC adapter): a bounded channel plus a `mio::Waker`.
//! - **Multi-reactor mode** ([`MultiReactor`]): an acceptor thread, N I/O threads owning sockets
//!   and sessions (handshake, crypto, framing), and the node thread; plaintext frames and
//!   connection events cross over bounded channels.
//! - **One connection loop** serves the sockets of the reactor and of each I/O thread alike
//!   (`conn_set`); only where its frames and connection events go differs.
//!
//! [`NodeEvent::Backpressure`]: starling_core::node::NodeEvent::Backpressure
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod clock;
mod config;
mod conn;
mod conn_set;
mod io_thread;
mod messages;
mod multi;
mod pool;
mod reactor;
mod setup;

pub use config::ReactorConfig;
pub use multi::MultiReactor;
pub use pool::{BufferPool, PoolStats};
pub use reactor::{Reactor, ReactorStats};
/// The handle and commands are the runtime crate's, shared with every transport.
pub use starling_runtime::{Command, Handle, HandleError, RuntimeCommand};
