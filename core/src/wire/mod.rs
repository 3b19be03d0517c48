//! The wire format: frames, field encodings and the limits that keep decoding bounded.
//!
//! Every Starling message travels in a frame. This module defines the frame envelope, the
//! encodings of the fields inside message bodies, and [`WireMessage`], the trait each protocol's
//! message type implements (the DHT's, gossip's and Raft's alike). It does no I/O: it turns
//! values into bytes and received bytes back into values, and refuses anything malformed or
//! oversized with a [`DecodeError`] rather than a panic.
//!
//! # Format
//!
//! ```text
//! frame    = length:varint(u32) protocol:varint(u16) msg_type:u8 body
//! length   = byte count of protocol + msg_type + body, 2 <= length <= max_frame_len
//! body     = fields, defined per protocol and message type, with no padding
//! ```
//!
//! - **Varints** are unsigned LEB128: seven bits per byte, least significant group first, high
//!   bit set on every byte but the last. Only the shortest encoding is accepted (`80 00` for zero
//!   is rejected), so every value, and hence every message, has exactly one encoding. A varint may
//!   not be longer than its field needs: 10 bytes for `u64`, 5 for `u32`, 3 for `u16`. See
//!   [`varint`].
//! - **Integers** in bodies are fixed width, little-endian (`u16` = 2 bytes, `u32` = 4,
//!   `u64` = 8), unless a protocol documents a varint field.
//! - **Fixed-size byte arrays** (keys, hashes, signatures) are the raw bytes, no prefix.
//! - **Byte strings** are a varint length then the bytes; **UTF-8 strings** are byte strings that
//!   must be valid UTF-8.
//! - **Lists** are a varint item count then the items back to back.
//! - A body must be consumed exactly: leftover bytes are an error.
//!
//! Field helpers are in [`codec`]. Peers named in a message (a Raft member, a DHT contact) are
//! written by [`WirePeer`], the same way in every protocol: see [`peer`] and [`contact`].
//!
//! # Guarantees
//!
//! - **Limits before allocation.** [`Limits`] caps the frame length, list counts and string
//!   lengths. Each is checked as soon as its prefix is read, before anything is buffered, sliced
//!   or allocated; a list count is also checked against the bytes actually left, so
//!   `Vec::with_capacity(count)` is always safe.
//! - **Zero copy.** Decoding slices the received [`bytes::Bytes`]: frame bodies and byte strings
//!   share the receive buffer instead of being copied. Only `String`s are copied, after their
//!   UTF-8 check.
//! - **No panics.** Every decoder returns `Result`; short input is
//!   [`DecodeError::UnexpectedEnd`], never an out-of-bounds read.
//! - **Streaming.** [`FrameDecoder`] cuts a byte stream into frames, waits for partial frames
//!   without consuming them, and rejects an oversize length before its body arrives.
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use starling_core::wire::{Frame, FrameDecoder, Limits, ProtocolId};
//!
//! let frame = Frame::new(ProtocolId::DHT, 7, vec![1u8, 2, 3]);
//! let mut out = BytesMut::new();
//! frame.encode(&mut out);
//! // length 5 (protocol 1 byte + type 1 byte + body 3 bytes), protocol 2, type 7, body
//! assert_eq!(out.as_ref(), [5u8, 2, 7, 1, 2, 3].as_slice());
//!
//! let mut decoder = FrameDecoder::new(Limits::default());
//! assert_eq!(decoder.decode(&mut out), Ok(Some(frame)));
//! ```

pub mod codec;
pub mod contact;
mod error;
mod frame;
mod limits;
mod message;
pub mod peer;
pub mod varint;

pub use contact::MAX_WIRE_CONTACTS;
pub use error::DecodeError;
pub use frame::{Frame, FrameDecoder, ProtocolId, MIN_FRAME_LEN};
pub use limits::{Limits, LimitsError};
pub use message::{decode_message, encode_message, message_to_frame, WireMessage};
pub use peer::WirePeer;
