//! The runtimes a command-line node runs on: the mio reactor on TCP (one thread, or an acceptor,
//! I/O threads and a node thread) or the QUIC adapter on quinn. All take the same
//! configuration and hand out the same `Handle`.

use std::net::SocketAddr;

use starling_core::node::NodeEvent;
use starling_mio::{Handle, MultiReactor, Reactor, ReactorConfig, ReactorStats};
use starling_quic::{QuicConfig, QuicNode};

/// Which transport a node speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// TCP with Noise sessions, on the mio reactor.
    #[default]
    Tcp,
    /// QUIC (TLS 1.3 bound to the node identity), on quinn.
    Quic,
}

impl Transport {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Quic => "quic",
        }
    }
}

/// A node on any runtime, started on its own thread, reporting events to `on_event`.
pub(crate) enum AnyReactor {
    Single(Box<Reactor>),
    Multi(Box<MultiReactor>),
    Quic(Box<QuicNode>),
}

impl AnyReactor {
    /// Binds a node: over TCP on one reactor thread (`io_threads` 0) or with that many I/O
    /// threads; over QUIC `io_threads` is ignored (one tokio thread runs the endpoint).
    pub(crate) fn bind(
        config: ReactorConfig,
        io_threads: usize,
        transport: Transport,
    ) -> std::io::Result<(AnyReactor, Handle)> {
        Ok(match (transport, io_threads) {
            (Transport::Quic, _) => {
                let (r, h) = QuicNode::bind(QuicConfig::from(config.runtime))?;
                (AnyReactor::Quic(Box::new(r)), h)
            }
            (Transport::Tcp, 0) => {
                let (r, h) = Reactor::bind(config)?;
                (AnyReactor::Single(Box::new(r)), h)
            }
            (Transport::Tcp, n) => {
                let (r, h) = MultiReactor::bind(config, n)?;
                (AnyReactor::Multi(Box::new(r)), h)
            }
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        match self {
            AnyReactor::Single(r) => r.local_addr(),
            AnyReactor::Multi(r) => r.local_addr(),
            AnyReactor::Quic(r) => r.local_addr(),
        }
    }

    /// Runs until shut down. A QUIC node's counters are mapped onto the reactor's (it has no
    /// receive pool).
    pub(crate) fn run(self, on_event: impl FnMut(&NodeEvent)) -> std::io::Result<ReactorStats> {
        match self {
            AnyReactor::Single(r) => r.run(on_event),
            AnyReactor::Multi(r) => r.run(on_event),
            AnyReactor::Quic(r) => r.run(on_event).map(|s| ReactorStats {
                accepted: s.accepted,
                refused: s.refused,
                send_refused: s.send_refused,
                paused: s.paused,
                ..ReactorStats::default()
            }),
        }
    }
}
