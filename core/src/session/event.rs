//! What a [`Session`](super::Session) reports to its owner, and the counters it keeps.

use super::error::CloseCause;
use super::payload::Capabilities;
use crate::id::PeerId;
use crate::wire::Frame;

/// What a session reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The handshake succeeded: the peer proved `peer`, and speaks our network and version.
    Established {
        /// The authenticated peer.
        peer: PeerId,
        /// The peer's announced capabilities.
        capabilities: Capabilities,
        /// Whether frames may be compressed (both offered it).
        compression: bool,
    },
    /// A frame arrived from the peer (heartbeats are consumed by the session).
    Frame(Frame),
    /// The peer exceeded an inbound rate limit; `dropped` frames were discarded since the last
    /// report. Reported at most once a second; the node may lower the peer's score.
    RateExceeded {
        /// The offending peer.
        peer: PeerId,
        /// Frames dropped since the last report.
        dropped: u64,
    },
    /// The peer missed heartbeats; its session stays open until it is declared dead.
    PeerSuspect {
        /// The silent peer.
        peer: PeerId,
    },
    /// A suspect peer answered again.
    PeerAlive {
        /// The peer.
        peer: PeerId,
    },
    /// The session ended; it accepts no more input.
    Closed(CloseCause),
}

/// Byte and frame counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Bytes handed to the session by [`Session::handle_bytes`](super::Session::handle_bytes).
    pub bytes_received: u64,
    /// Bytes produced for the socket.
    pub bytes_sent: u64,
    /// Bytes of the three handshake messages, both directions.
    pub handshake_bytes: u64,
    /// Frames delivered to the application.
    pub frames_received: u64,
    /// Frames sent.
    pub frames_sent: u64,
    /// Inbound frames dropped by the rate limits.
    pub frames_dropped: u64,
}
