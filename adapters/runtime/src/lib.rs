//! # starling-runtime
//!
//! What the Starling runtimes share, below them and beside the transport: the TCP reactor
//! (`starling-mio`) and the QUIC node (`starling-quic`) each depend on this crate and never on
//! each other.
//!
//! - [`Handle`] and [`Command`]: how other threads talk to the thread that owns a node. The
//!   commands are the node's own (send, broadcast, connect) plus [`Command::Run`], a closure run
//!   on the node, through which [`Handle::with_protocol`] reaches any hosted protocol: there is
//!   no command per protocol.
//! - [`RuntimeConfig`] and [`Hosting`]: the settings every runtime takes (listen address,
//!   bootstrap peers, keys, session and node policy, queue bounds) and the protocols the node
//!   hosts, built by [`build_node`] the same way for every transport.
//! - [`announced_protocols`]: what a handshake says the node speaks, from what it hosts.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod handle;
mod hosting;

pub use config::{announced_protocols, build_node, RuntimeConfig};
pub use handle::{Command, Handle, HandleError, RuntimeCommand};
pub use hosting::{Hosting, HostingError};
