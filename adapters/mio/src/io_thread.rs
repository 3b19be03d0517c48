//! An I/O thread of the multi-reactor: it owns sockets and their sessions (handshake, crypto,
//! framing) and exchanges only plaintext frames and connection events with the node thread.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;

use mio::net::TcpStream;
use mio::{Events, Poll, Token, Waker};
use starling_core::id::PeerId;
use starling_core::node::ConnId;
use starling_core::session::CloseCause;
use starling_core::time::Instant;
use starling_core::wire::Frame;

use crate::clock::Clock;
use crate::conn_set::{ConnSet, ConnSetup, ConnStats, Upstream};
use crate::messages::{IoCommand, IoEvent, NodeInput};

/// The waker's token; the node thread numbers connections from 1.
const WAKER: Token = Token(0);

pub(crate) struct IoThread {
    poll: Poll,
    clock: Clock,
    commands: Receiver<IoCommand>,
    conns: ConnSet,
    up: ToNodeThread,
    shutting_down: bool,
}

impl IoThread {
    /// Builds the thread's poller; returns the waker the node thread uses to interrupt it.
    pub(crate) fn new(
        setup: ConnSetup,
        commands: Receiver<IoCommand>,
        to_node: SyncSender<NodeInput>,
    ) -> io::Result<(IoThread, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let clock = setup.clock;
        let conns = ConnSet::new(poll.registry().try_clone()?, setup);
        let thread = IoThread {
            poll,
            clock,
            commands,
            conns,
            up: ToNodeThread {
                tx: to_node,
                frames: Vec::new(),
                frames_of: 0,
            },
            shutting_down: false,
        };
        Ok((thread, waker))
    }

    /// Runs until shut down; returns the connections' counters.
    pub(crate) fn run(mut self) -> io::Result<ConnStats> {
        let mut events = Events::with_capacity(1024);
        loop {
            self.conns.flush(&mut self.up);
            if self.shutting_down && self.conns.is_empty() {
                return Ok(self.conns.stats());
            }
            let timeout = self.conns.next_deadline().map(|d| self.clock.until(d));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = self.clock.now();
            for event in events.iter() {
                match event.token() {
                    WAKER => self.commands(now),
                    _ => self.conns.ready(now, event, &mut self.up),
                }
            }
            self.conns.end_turn(now, &mut self.up);
        }
    }

    fn commands(&mut self, now: Instant) {
        loop {
            match self.commands.try_recv() {
                Ok(IoCommand::Adopt { conn, stream, addr }) => {
                    let adopted = stream.set_nonblocking(true).and_then(|()| {
                        self.conns
                            .adopt(now, conn, TcpStream::from_std(stream), addr)
                    });
                    if adopted.is_err() {
                        self.up.closed(now, conn, CloseCause::ConnectionLost, None);
                    }
                }
                Ok(IoCommand::Dial {
                    conn,
                    addr,
                    expected,
                }) => {
                    if self.conns.dial(now, conn, addr, expected).is_err() {
                        self.up
                            .closed(now, conn, CloseCause::ConnectionLost, Some(addr));
                    }
                }
                Ok(IoCommand::Send(frames)) => {
                    for (conn, frame) in &frames {
                        self.conns.send(*conn, [frame]);
                    }
                }
                Ok(IoCommand::Close { conn, code }) => self.conns.close(now, conn, code),
                Ok(IoCommand::Shutdown) | Err(TryRecvError::Disconnected) => {
                    self.shutting_down = true;
                    self.conns.shutdown(now);
                    return;
                }
                Err(TryRecvError::Empty) => return,
            }
        }
    }
}

/// An I/O thread's [`Upstream`]: the channel to the node thread. The frames of one step travel
/// as one message; any other event first sends the frames gathered before it, keeping the
/// session's order.
struct ToNodeThread {
    tx: SyncSender<NodeInput>,
    frames: Vec<Frame>,
    /// The connection `frames` came from.
    frames_of: ConnId,
}

impl ToNodeThread {
    fn tell(&mut self, event: IoEvent) {
        self.send_frames();
        // The node thread outlives its I/O threads; if it is gone we are shutting down anyway.
        // A full channel blocks this thread, which stops it reading sockets: backpressure all
        // the way to the peers.
        let _ = self.tx.send(NodeInput::Io(event));
    }

    fn send_frames(&mut self) {
        if !self.frames.is_empty() {
            let frames = std::mem::take(&mut self.frames);
            let _ = self.tx.send(NodeInput::Io(IoEvent::Frames {
                conn: self.frames_of,
                frames,
            }));
        }
    }
}

impl Upstream for ToNodeThread {
    fn established(&mut self, _: Instant, conn: ConnId, peer: PeerId, listen_port: Option<u16>) {
        self.tell(IoEvent::Established {
            conn,
            peer,
            listen_port,
        });
    }

    fn frame(&mut self, _: Instant, conn: ConnId, frame: Frame) {
        if conn != self.frames_of {
            self.send_frames();
            self.frames_of = conn;
        }
        self.frames.push(frame);
    }

    fn closed(
        &mut self,
        _: Instant,
        conn: ConnId,
        cause: CloseCause,
        dial_failed: Option<SocketAddr>,
    ) {
        self.tell(IoEvent::Closed {
            conn,
            cause,
            dial_failed,
        });
    }

    fn backpressure(&mut self, _: Instant, conn: ConnId, paused: bool) {
        self.tell(IoEvent::Backpressure { conn, paused });
    }

    fn settle(&mut self, _: &mut ConnSet) {
        self.send_frames();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use starling_core::wire::ProtocolId;

    use super::*;

    /// What reached the node thread, in order: (connection, kind, frames).
    fn drain(rx: &Receiver<NodeInput>) -> Vec<(ConnId, &'static str, usize)> {
        rx.try_iter()
            .map(|input| match input {
                NodeInput::Io(IoEvent::Frames { conn, frames }) => (conn, "frames", frames.len()),
                NodeInput::Io(IoEvent::Closed { conn, .. }) => (conn, "closed", 0),
                NodeInput::Io(IoEvent::Backpressure { conn, .. }) => (conn, "backpressure", 0),
                NodeInput::Io(IoEvent::Established { conn, .. }) => (conn, "established", 0),
                NodeInput::Wake | NodeInput::Incoming { .. } => (0, "other", 0),
            })
            .collect()
    }

    #[test]
    fn frames_travel_together_and_before_what_followed_them() {
        let (tx, rx) = sync_channel(16);
        let mut up = ToNodeThread {
            tx,
            frames: Vec::new(),
            frames_of: 0,
        };
        let frame = || Frame::new(ProtocolId::GOSSIP, 1, vec![0u8; 8]);
        let now = Instant::ZERO;
        up.frame(now, 4, frame());
        up.frame(now, 4, frame());
        up.frame(now, 4, frame());
        up.closed(now, 4, CloseCause::ConnectionLost, None);
        up.frame(now, 6, frame());
        up.frame(now, 8, frame());
        up.backpressure(now, 8, true);
        up.frame(now, 8, frame());
        let poll = Poll::new().unwrap();
        let setup = ConnSetup {
            session: Arc::new(starling_core::session::SessionConfig::new("t")),
            keys: Arc::new(starling_core::session::NodeKeys::new(
                starling_core::identity::Identity::from_test_seed(1),
                [1; 32],
            )),
            high_water: 1 << 20,
            low_water: 1 << 18,
            chunk_size: 1 << 10,
            pool_chunks: 1,
            clock: Clock::start(),
        };
        let mut conns = ConnSet::new(poll.registry().try_clone().unwrap(), setup);
        up.settle(&mut conns);
        assert_eq!(
            drain(&rx),
            vec![
                (4, "frames", 3),
                (4, "closed", 0),
                (6, "frames", 1),
                (8, "frames", 1),
                (8, "backpressure", 0),
                (8, "frames", 1),
            ]
        );
    }
}
