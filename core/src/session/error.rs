//! Why a session ended, and why a send was refused.

use core::fmt;

use crate::id::PeerId;
use crate::wire::DecodeError;

use super::payload::NetworkId;

/// The reason code carried by a close record, readable by the other side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// An orderly close by the application.
    Normal,
    /// The peer belongs to another network.
    WrongNetwork,
    /// The peer speaks another protocol version.
    VersionMismatch,
    /// The peer is not the node the dialer asked for.
    IdentityMismatch,
    /// The peer's identity proof (key or signature) is invalid.
    BadIdentity,
    /// The peer broke the record or frame format.
    ProtocolViolation,
    /// The peer stopped answering heartbeats.
    Unresponsive,
    /// The node is shutting down.
    Shutdown,
    /// A code this build does not know (from a newer peer).
    Other(u8),
}

impl CloseCode {
    /// The code's byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            CloseCode::Normal => 0,
            CloseCode::WrongNetwork => 1,
            CloseCode::VersionMismatch => 2,
            CloseCode::IdentityMismatch => 3,
            CloseCode::BadIdentity => 4,
            CloseCode::ProtocolViolation => 5,
            CloseCode::Unresponsive => 6,
            CloseCode::Shutdown => 7,
            CloseCode::Other(b) => b,
        }
    }

    /// The code for a byte read from the wire; unknown bytes are kept as [`CloseCode::Other`].
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => CloseCode::Normal,
            1 => CloseCode::WrongNetwork,
            2 => CloseCode::VersionMismatch,
            3 => CloseCode::IdentityMismatch,
            4 => CloseCode::BadIdentity,
            5 => CloseCode::ProtocolViolation,
            6 => CloseCode::Unresponsive,
            7 => CloseCode::Shutdown,
            other => CloseCode::Other(other),
        }
    }

    /// A short snake_case name, for reports and logs.
    pub fn name(self) -> &'static str {
        match self {
            CloseCode::Normal => "normal",
            CloseCode::WrongNetwork => "wrong_network",
            CloseCode::VersionMismatch => "version_mismatch",
            CloseCode::IdentityMismatch => "identity_mismatch",
            CloseCode::BadIdentity => "bad_identity",
            CloseCode::ProtocolViolation => "protocol_violation",
            CloseCode::Unresponsive => "unresponsive",
            CloseCode::Shutdown => "shutdown",
            CloseCode::Other(_) => "other",
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseCode::Other(b) => write!(f, "code {b}"),
            c => f.write_str(c.name()),
        }
    }
}

/// Why a session ended. Every variant but [`CloseCause::Local`] and a peer's
/// [`CloseCode::Normal`] or [`CloseCode::Shutdown`] is a failure; the node should lower the
/// peer's score for those the peer caused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCause {
    /// The application closed the session.
    Local(CloseCode),
    /// The peer closed it, with its code and explanation.
    Peer {
        /// The peer's reason code.
        code: CloseCode,
        /// The peer's explanation (at most 256 bytes, lossily decoded).
        detail: String,
    },
    /// The handshake did not finish within the configured timeout.
    HandshakeTimeout,
    /// A message failed authentication: corrupted, forged, replayed or reordered bytes.
    BadMac,
    /// The Noise handshake failed for another reason (malformed message, bad key).
    Handshake(&'static str),
    /// The peer belongs to another network.
    WrongNetwork {
        /// Ours.
        ours: NetworkId,
        /// Theirs.
        theirs: NetworkId,
    },
    /// The peer speaks another protocol version.
    VersionMismatch {
        /// Ours.
        ours: u16,
        /// Theirs.
        theirs: u16,
    },
    /// The peer proved an identity other than the one dialled.
    IdentityMismatch {
        /// Whom the dialer asked for.
        expected: PeerId,
        /// Whom the peer proved to be.
        found: PeerId,
    },
    /// The peer's identity key is not a valid ed25519 key, or its signature over the Noise
    /// static key does not verify.
    BadIdentity,
    /// The peer sent a frame larger than the limit it was told.
    OversizeFrame {
        /// The size the frame reached.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// A record, frame or handshake payload did not decode.
    Malformed(DecodeError),
    /// A compressed frame did not decompress within the limit.
    BadCompression,
    /// The keep-alive declared the peer dead.
    KeepaliveTimeout,
    /// The transport under the session ended or failed (reset, end of stream, I/O error)
    /// without a close record. Reported by adapters; the session itself never produces it.
    ConnectionLost,
}

impl CloseCause {
    /// Whether the session ended because something went wrong (as opposed to an orderly close).
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            CloseCause::Local(_)
                | CloseCause::Peer {
                    code: CloseCode::Normal | CloseCode::Shutdown,
                    ..
                }
        )
    }

    /// The code sent to the peer when this side closes for this cause.
    pub fn code(&self) -> CloseCode {
        match self {
            CloseCause::Local(code) | CloseCause::Peer { code, .. } => *code,
            CloseCause::WrongNetwork { .. } => CloseCode::WrongNetwork,
            CloseCause::VersionMismatch { .. } => CloseCode::VersionMismatch,
            CloseCause::IdentityMismatch { .. } => CloseCode::IdentityMismatch,
            CloseCause::BadIdentity => CloseCode::BadIdentity,
            CloseCause::KeepaliveTimeout => CloseCode::Unresponsive,
            CloseCause::HandshakeTimeout
            | CloseCause::BadMac
            | CloseCause::Handshake(_)
            | CloseCause::OversizeFrame { .. }
            | CloseCause::Malformed(_)
            | CloseCause::BadCompression => CloseCode::ProtocolViolation,
            CloseCause::ConnectionLost => CloseCode::Normal,
        }
    }

    /// A snake_case name of the cause, for reports (`refused` in `starling sim handshake`).
    pub fn name(&self) -> &'static str {
        match self {
            CloseCause::Local(_) => "local_close",
            CloseCause::Peer { .. } => "closed_by_peer",
            CloseCause::HandshakeTimeout => "handshake_timeout",
            CloseCause::BadMac => "bad_mac",
            CloseCause::Handshake(_) => "handshake_failed",
            CloseCause::WrongNetwork { .. } => "wrong_network",
            CloseCause::VersionMismatch { .. } => "version_mismatch",
            CloseCause::IdentityMismatch { .. } => "identity_mismatch",
            CloseCause::BadIdentity => "bad_identity",
            CloseCause::OversizeFrame { .. } => "oversize_frame",
            CloseCause::Malformed(_) => "malformed",
            CloseCause::BadCompression => "bad_compression",
            CloseCause::KeepaliveTimeout => "keepalive_timeout",
            CloseCause::ConnectionLost => "connection_lost",
        }
    }
}

impl fmt::Display for CloseCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseCause::Local(code) => write!(f, "closed locally ({code})"),
            CloseCause::Peer { code, detail } if detail.is_empty() => {
                write!(f, "closed by peer ({code})")
            }
            CloseCause::Peer { code, detail } => write!(f, "closed by peer ({code}): {detail}"),
            CloseCause::HandshakeTimeout => f.write_str("handshake timed out"),
            CloseCause::BadMac => f.write_str("message authentication failed"),
            CloseCause::Handshake(why) => write!(f, "handshake failed: {why}"),
            CloseCause::WrongNetwork { ours, theirs } => {
                write!(f, "peer is on network {theirs}, we are on {ours}")
            }
            CloseCause::VersionMismatch { ours, theirs } => {
                write!(f, "peer speaks protocol version {theirs}, we speak {ours}")
            }
            CloseCause::IdentityMismatch { expected, found } => {
                write!(
                    f,
                    "dialled {expected:?} but the peer proved to be {found:?}"
                )
            }
            CloseCause::BadIdentity => f.write_str("peer's identity proof does not verify"),
            CloseCause::OversizeFrame { len, max } => {
                write!(f, "peer sent a frame of {len}+ bytes, limit {max}")
            }
            CloseCause::Malformed(e) => write!(f, "malformed input: {e}"),
            CloseCause::BadCompression => {
                f.write_str("compressed frame does not decompress within the limit")
            }
            CloseCause::KeepaliveTimeout => f.write_str("peer stopped answering heartbeats"),
            CloseCause::ConnectionLost => f.write_str("connection lost"),
        }
    }
}

/// Why [`super::Session::send`] refused a frame. The session is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The handshake has not finished; wait for `Established`.
    NotEstablished,
    /// The session is closed.
    Closed,
    /// The frame exceeds the largest the peer accepts.
    FrameTooLarge {
        /// Encoded length of the frame.
        len: usize,
        /// The peer's limit.
        max: u32,
    },
    /// The transmit buffer is full: drain `poll_transmit` (write to the socket) and retry.
    QueueFull,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotEstablished => f.write_str("session not established yet"),
            SendError::Closed => f.write_str("session is closed"),
            SendError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the peer's limit of {max}")
            }
            SendError::QueueFull => f.write_str("transmit buffer full"),
        }
    }
}

impl std::error::Error for SendError {}
