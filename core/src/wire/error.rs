//! Why a frame or message was rejected.
//!
//! Every decoder in [`crate::wire`] returns [`DecodeError`] instead of panicking. Nearly all
//! causes mean the peer sent bytes that a correct Starling node never sends, so the usual answer
//! is the same: drop the frame, close the session (a byte stream cannot be resynchronised after a
//! bad frame) and lower the peer's score. The variant says which limit or field failed so logs and
//! metrics can tell a buggy peer from a hostile one.

use core::fmt;

use super::frame::ProtocolId;

/// A frame or message could not be decoded.
///
/// Decoding never changes any protocol state, so after an error the caller only has to decide what
/// to do with the peer. The buffer being decoded is left at an unspecified position.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a field.
    ///
    /// In a datagram or a complete frame this is a malformed message: drop it and penalise the
    /// peer. (The streaming [`crate::wire::FrameDecoder`] never reports it for a frame that is
    /// merely incomplete; it waits for more bytes instead.)
    UnexpectedEnd {
        /// How many bytes the field needed (at least).
        needed: usize,
        /// How many bytes were left.
        remaining: usize,
    },
    /// A varint encodes a value wider than its field (more than 64 bits, or more than the 32 or
    /// 16 bits the field allows). Malformed input: close the session and penalise the peer.
    VarintOverflow,
    /// A varint uses more bytes than its value needs (for example `0x80 0x00` for zero). Starling
    /// accepts only the shortest encoding so that every value has exactly one; close the session
    /// and penalise the peer.
    VarintNonCanonical,
    /// A frame announces a length above [`crate::wire::Limits::max_frame_len`]. Detected before
    /// the body is buffered; close the session and penalise the peer.
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The limit in force.
        max: u32,
    },
    /// A frame announces a length too small to hold a protocol id and a message type (fewer than
    /// two bytes). Malformed input: close the session and penalise the peer.
    FrameTooShort {
        /// The announced length.
        len: u32,
    },
    /// A byte string or text string is longer than [`crate::wire::Limits::max_bytes_len`].
    /// Checked before slicing or allocating; close the session and penalise the peer.
    BytesTooLong {
        /// The announced length.
        len: u64,
        /// The limit in force.
        max: u32,
    },
    /// A list has more items than [`crate::wire::Limits::max_list_len`]. Checked before
    /// allocating; close the session and penalise the peer.
    ListTooLong {
        /// The announced item count.
        len: u64,
        /// The limit in force.
        max: u32,
    },
    /// A frame for one protocol was handed to another protocol's decoder. This is a routing bug
    /// in the caller, not the peer's fault: dispatch on [`crate::wire::Frame::protocol`] first.
    WrongProtocol {
        /// The protocol the decoder handles.
        expected: ProtocolId,
        /// The protocol the frame names.
        found: ProtocolId,
    },
    /// The message type byte is not one the protocol defines. It may come from a newer peer:
    /// ignore the frame, and close the session only if the protocol requires every type to be
    /// understood.
    UnknownMessageType {
        /// The protocol whose decoder saw it.
        protocol: ProtocolId,
        /// The unknown type byte.
        msg_type: u8,
    },
    /// A message body was decoded but bytes were left over. Malformed input: drop the frame and
    /// penalise the peer.
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// A string field is not valid UTF-8. Malformed input: drop the frame and penalise the peer.
    InvalidUtf8,
    /// A field holds a value its type does not allow: an unknown enum or flag byte, a zero
    /// where zero is meaningless, a set not written in strictly increasing order (so it would
    /// have more than one encoding), a sequence number that does not follow its predecessor
    /// (a Raft append's entry indexes). Malformed input: drop the frame and penalise the peer;
    /// read from storage, the record is corrupt.
    InvalidValue {
        /// The name of the offending field.
        field: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedEnd { needed, remaining } => write!(
                f,
                "input ended early: needed {needed} bytes, {remaining} remaining"
            ),
            DecodeError::VarintOverflow => f.write_str("varint too large for its field"),
            DecodeError::VarintNonCanonical => f.write_str("varint is not in its shortest form"),
            DecodeError::FrameTooLarge { len, max } => {
                write!(f, "frame length {len} exceeds the limit of {max}")
            }
            DecodeError::FrameTooShort { len } => {
                write!(f, "frame length {len} is too short for a frame header")
            }
            DecodeError::BytesTooLong { len, max } => {
                write!(f, "byte string length {len} exceeds the limit of {max}")
            }
            DecodeError::ListTooLong { len, max } => {
                write!(f, "list length {len} exceeds the limit of {max}")
            }
            DecodeError::WrongProtocol { expected, found } => {
                write!(f, "expected a {expected} frame, found a {found} frame")
            }
            DecodeError::UnknownMessageType { protocol, msg_type } => {
                write!(f, "unknown {protocol} message type {msg_type}")
            }
            DecodeError::TrailingBytes { count } => {
                write!(f, "{count} bytes left over after the message")
            }
            DecodeError::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            DecodeError::InvalidValue { field } => write!(f, "invalid value in field `{field}`"),
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_limit_and_the_protocol() {
        let e = DecodeError::FrameTooLarge { len: 9, max: 4 };
        assert_eq!(e.to_string(), "frame length 9 exceeds the limit of 4");
        let e = DecodeError::WrongProtocol {
            expected: ProtocolId::DHT,
            found: ProtocolId(77),
        };
        assert_eq!(
            e.to_string(),
            "expected a dht frame, found a protocol 77 frame"
        );
    }
}
