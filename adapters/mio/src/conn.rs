//! One TCP connection: its socket, its session, and its bounded write queue.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;

use bytes::{Buf, Bytes};
use mio::net::TcpStream;
use smallvec::SmallVec;
use starling_core::session::Session;
use starling_core::time::Instant;

use crate::pool::BufferPool;

/// Most buffers handed to one `write_vectored` call.
const MAX_IOVECS: usize = 64;

/// Which side opened the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// We dialled; `connected` turns true once the non-blocking connect completes.
    Dialled { connected: bool },
    /// The peer dialled us.
    Accepted,
}

/// How a flush moved the write queue against its water marks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Water {
    /// No change.
    Steady,
    /// The queue passed the high-water mark: reading from this peer stops.
    Paused,
    /// The queue fell below the low-water mark: reading resumes (and must be retried at once,
    /// since edge-triggered readiness raised no event while paused).
    Resumed,
}

/// What a read pass saw.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// Everything available was read (WouldBlock), or reading is paused.
    Drained,
    /// One chunk was read and handed to the session; there may be more. The caller delivers
    /// the session's events before reading on, so the peer's frames flow while it keeps sending.
    More,
    /// The peer closed its side.
    Eof,
    /// The socket failed.
    Failed(io::ErrorKind),
}

pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) addr: SocketAddr,
    pub(crate) side: Side,
    pub(crate) session: Session,
    /// Encrypted bytes not yet accepted by the kernel.
    queue: VecDeque<Bytes>,
    queued: usize,
    /// Reading stopped because the write queue passed the high-water mark.
    pub(crate) paused: bool,
    /// The session is closed: flush what is queued, then drop the connection; give up flushing
    /// at this deadline (a peer that does not read must not hold the socket forever).
    pub(crate) closing: Option<Instant>,
    /// The node has been told about this connection (incoming accepted or dial reported).
    pub(crate) established_reported: bool,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream, addr: SocketAddr, side: Side, session: Session) -> Self {
        Conn {
            stream,
            addr,
            side,
            session,
            queue: VecDeque::new(),
            queued: 0,
            paused: false,
            closing: None,
            established_reported: false,
        }
    }

    /// Bytes waiting for the socket, ours and the session's.
    pub(crate) fn queued(&self) -> usize {
        self.queued + self.session.queued_bytes()
    }

    /// Reads one chunk into the session. Edge-triggered readiness requires the caller to go on
    /// until `Drained` (the socket would block), or no new event comes.
    pub(crate) fn read(&mut self, pool: &mut BufferPool, now: Instant) -> ReadOutcome {
        loop {
            if self.paused || self.session.is_closed() {
                return ReadOutcome::Drained;
            }
            let mut chunk = pool.take();
            let result = self.stream.read(&mut chunk[..]);
            let outcome = match result {
                Ok(0) => Some(ReadOutcome::Eof),
                Ok(n) => {
                    self.session.handle_bytes(now, &chunk[..n]);
                    Some(ReadOutcome::More)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(ReadOutcome::Drained),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
                Err(e) => Some(ReadOutcome::Failed(e.kind())),
            };
            pool.give(chunk);
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
    }

    /// Moves the session's ciphertext into the write queue while it is under `high_water`, so
    /// a peer that does not read cannot grow it further: the excess waits in the session, whose
    /// own buffer is bounded.
    pub(crate) fn pull_transmit(&mut self, high_water: usize) {
        while self.queued < high_water {
            match self.session.poll_transmit() {
                Some(bytes) => {
                    self.queued += bytes.len();
                    self.queue.push_back(bytes);
                }
                None => break,
            }
        }
    }

    /// Writes queued bytes with vectored writes until the queue is empty or the socket would
    /// block.
    pub(crate) fn write(&mut self) -> io::Result<()> {
        if let Side::Dialled { connected: false } = self.side {
            return Ok(());
        }
        while !self.queue.is_empty() {
            let written = {
                let slices: SmallVec<[IoSlice<'_>; MAX_IOVECS]> = self
                    .queue
                    .iter()
                    .take(MAX_IOVECS)
                    .map(|b| IoSlice::new(b))
                    .collect();
                self.stream.write_vectored(&slices)
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(mut n) => {
                    self.queued -= n;
                    while n > 0 {
                        // write_vectored never reports more than it was given.
                        let Some(front) = self.queue.front_mut() else {
                            break;
                        };
                        if n >= front.len() {
                            n -= front.len();
                            self.queue.pop_front();
                        } else {
                            front.advance(n);
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether everything queued has been written.
    pub(crate) fn is_flushed(&self) -> bool {
        self.queue.is_empty() && self.session.queued_bytes() == 0
    }

    /// Whether the session is closed and its last bytes are out: the socket can go.
    pub(crate) fn is_done(&self) -> bool {
        self.closing.is_some() && self.is_flushed()
    }

    /// Moves the session's bytes to the socket as far as it takes them, and applies the water
    /// marks.
    pub(crate) fn flush(&mut self, high_water: usize, low_water: usize) -> io::Result<Water> {
        self.pull_transmit(high_water);
        self.write()?;
        self.pull_transmit(high_water);
        let queued = self.queued();
        Ok(if !self.paused && queued > high_water {
            self.paused = true;
            Water::Paused
        } else if self.paused && queued < low_water {
            self.paused = false;
            Water::Resumed
        } else {
            Water::Steady
        })
    }

    /// On write readiness of a dialled socket: whether the non-blocking connect has finished
    /// (`Ok(true)`), is still under way (`Ok(false)`), or failed.
    pub(crate) fn finish_connect(&mut self) -> io::Result<bool> {
        if let Side::Dialled { connected: false } = self.side {
            // Connected only if no error is pending and the peer address is known.
            if let Some(e) = self.stream.take_error()? {
                return Err(e);
            }
            match self.stream.peer_addr() {
                Ok(_) => self.side = Side::Dialled { connected: true },
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Whether this is an outbound connection whose session never got established: its end is
    /// a failed dial, not a lost peer.
    pub(crate) fn is_failed_dial(&self) -> bool {
        matches!(self.side, Side::Dialled { .. }) && !self.established_reported
    }
}
