//! Runs a test node over either transport: TCP (the mio reactor) or QUIC.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use starling_core::node::NodeEvent;
use starling_mio::{Handle, Reactor, ReactorConfig};
use starling_quic::{QuicConfig, QuicNode};

/// Which adapter runs a test node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)] // each test file uses the transports it tests
pub enum Transport {
    Tcp,
    Quic,
}

/// A node bound on `transport` and running on its own thread until its handle shuts it down.
pub struct Running {
    pub handle: Handle,
    pub addr: SocketAddr,
    pub thread: JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub fn start(
        config: ReactorConfig,
        transport: Transport,
        mut on_event: impl FnMut(&NodeEvent) + Send + 'static,
    ) -> Running {
        let (handle, addr, thread) = match transport {
            Transport::Tcp => {
                let (reactor, handle) = Reactor::bind(config).unwrap();
                let addr = reactor.local_addr();
                let thread = std::thread::spawn(move || reactor.run(&mut on_event).map(|_| ()));
                (handle, addr, thread)
            }
            Transport::Quic => {
                let (node, handle) = QuicNode::bind(QuicConfig::from(config.runtime)).unwrap();
                let addr = node.local_addr();
                let thread = std::thread::spawn(move || node.run(&mut on_event).map(|_| ()));
                (handle, addr, thread)
            }
        };
        Running {
            handle,
            addr,
            thread,
        }
    }
}
