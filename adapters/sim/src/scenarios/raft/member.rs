//! The one machine type the simulator runs: a server or a client, and what they exchange.

use starling_core::machine::{Machine, Output};
use starling_core::raft::{Entry, RaftMessage, Role};
use starling_core::time::Instant;

use super::client::Client;
use super::server::Server;
use crate::linearizability::{KvInput, KvOutput};
use crate::NodeId;

/// What travels between nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SimMsg {
    /// Between servers.
    Raft(RaftMessage<NodeId>),
    /// Client to server.
    Request {
        /// The client's request number.
        req: u64,
        /// What it asks.
        op: KvInput,
    },
    /// Server to client.
    Reply {
        /// The request answered.
        req: u64,
        /// The answer.
        reply: Reply,
    },
}

/// A server's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Reply {
    /// Done, with the object's answer.
    Done(KvOutput),
    /// Refused before anything was logged (not the leader, or no longer); try this one.
    NotLeader(Option<NodeId>),
    /// Logged, but the outcome is unknown here (the entry was overwritten or replaced by a
    /// snapshot): the client must treat the operation as possibly applied.
    Unknown,
}

/// What the checkers observe.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SimEvent {
    /// A server's role or term changed.
    Role {
        /// The new role.
        role: Role,
        /// Its term.
        term: u64,
    },
    /// A server applied a committed entry.
    Applied(Entry<NodeId>),
    /// A server replaced its state with a snapshot from the leader.
    Installed {
        /// Last index the snapshot covers.
        index: u64,
        /// Its term.
        term: u64,
    },
}

pub(crate) type SimOutput = Output<NodeId, SimMsg, SimEvent>;

/// A node of the scenario.
pub(crate) enum Member {
    /// A Raft server.
    Server(Box<Server>),
    /// A client of the key-value service.
    Client(Box<Client>),
}

impl Member {
    /// The server, if this is one.
    pub(crate) fn server(&self) -> Option<&Server> {
        match self {
            Member::Server(s) => Some(s),
            Member::Client(_) => None,
        }
    }
}

impl Machine for Member {
    type Peer = NodeId;
    type Message = SimMsg;
    type Event = SimEvent;

    fn handle_message(&mut self, now: Instant, from: NodeId, msg: SimMsg) {
        match self {
            Member::Server(s) => s.on_message(now, from, msg),
            Member::Client(c) => c.on_message(now, msg),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Member::Server(s) => s.on_timeout(now),
            Member::Client(c) => c.on_timeout(now),
        }
    }

    fn poll_output(&mut self) -> Option<SimOutput> {
        match self {
            Member::Server(s) => s.poll_output(),
            Member::Client(c) => c.poll_output(),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Member::Server(s) => s.next_timeout(),
            Member::Client(c) => c.next_timeout(),
        }
    }
}
