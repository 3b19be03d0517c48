//! Frames: the length-prefixed envelope around every message.
//!
//! ```text
//! frame    = length:varint(u32) protocol:varint(u16) msg_type:u8 body
//! length   = number of bytes in protocol + msg_type + body; 2 <= length <= max_frame_len
//! ```
//!
//! A datagram carries one or more whole frames, decoded with [`Frame::decode`]. A byte stream
//! carries frames back to back and is cut into frames by a [`FrameDecoder`], which waits for
//! partial frames and rejects an oversize length as soon as the length prefix is complete, before
//! buffering the body.

use core::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::codec::{ensure_remaining, get_u8};
use super::error::DecodeError;
use super::limits::Limits;
use super::varint::{get_varint_u16, get_varint_u32, peek_varint_u32, put_varint, varint_len};

/// The smallest valid frame length: a one-byte protocol id and the message type, no body.
pub const MIN_FRAME_LEN: u32 = 2;

/// Which protocol a frame belongs to; the first field after the length.
///
/// Ids below 256 are reserved for Starling's own protocols (and encode in one or two bytes);
/// applications may use the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ProtocolId(pub u16);

impl ProtocolId {
    /// Session handshake and control.
    pub const SESSION: ProtocolId = ProtocolId(0);
    /// The heartbeat failure detector.
    pub const HEARTBEAT: ProtocolId = ProtocolId(1);
    /// The Kademlia DHT.
    pub const DHT: ProtocolId = ProtocolId(2);
    /// Gossip dissemination.
    pub const GOSSIP: ProtocolId = ProtocolId(3);
    /// Raft consensus.
    pub const RAFT: ProtocolId = ProtocolId(4);
    /// PBFT consensus.
    pub const PBFT: ProtocolId = ProtocolId(5);

    /// The short name of a Starling protocol, or `None` for an id Starling does not define.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("session"),
            1 => Some("heartbeat"),
            2 => Some("dht"),
            3 => Some("gossip"),
            4 => Some("raft"),
            5 => Some("pbft"),
            _ => None,
        }
    }
}

impl fmt::Display for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "protocol {}", self.0),
        }
    }
}

/// One decoded frame: the routing header and the still-encoded message body.
///
/// The body is a slice of the received buffer, not a copy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The protocol that should decode the body.
    pub protocol: ProtocolId,
    /// The message type within that protocol.
    pub msg_type: u8,
    /// The message body, encoded as the protocol defines.
    pub body: Bytes,
}

impl Frame {
    /// A frame with the given header and body.
    pub fn new(protocol: ProtocolId, msg_type: u8, body: impl Into<Bytes>) -> Frame {
        Frame {
            protocol,
            msg_type,
            body: body.into(),
        }
    }

    /// Exact number of bytes [`Frame::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        encoded_frame_len(self.protocol, self.body.len())
    }

    /// Appends the encoded frame to `out`.
    ///
    /// Limits are the receiver's business: a frame longer than the peer's `max_frame_len` is
    /// encoded anyway and rejected on arrival.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_len());
        put_header(out, self.protocol, self.msg_type, self.body.len());
        out.put_slice(&self.body);
    }

    /// Appends only the header (length, protocol, type): for writers that send the body from
    /// where it already lies, as the session layer does, instead of copying it here first.
    pub fn encode_header<B: BufMut>(&self, out: &mut B) {
        put_header(out, self.protocol, self.msg_type, self.body.len());
    }

    /// Decodes one whole frame from the front of `buf`, for a datagram or any buffer that holds
    /// complete frames. Call it until `buf` is empty to read several frames.
    ///
    /// The body is sliced out of `buf` without copying. A frame cut short is
    /// [`DecodeError::UnexpectedEnd`]; on any error the position of `buf` is unspecified.
    pub fn decode(buf: &mut Bytes, limits: &Limits) -> Result<Frame, DecodeError> {
        let len = get_varint_u32(buf)?;
        let len = check_len(len, limits)?;
        ensure_remaining(buf, len)?;
        Frame::from_inner(buf.split_to(len))
    }

    /// Parses the bytes covered by the length prefix.
    fn from_inner(mut inner: Bytes) -> Result<Frame, DecodeError> {
        let protocol = ProtocolId(get_varint_u16(&mut inner)?);
        let msg_type = get_u8(&mut inner)?;
        Ok(Frame {
            protocol,
            msg_type,
            body: inner,
        })
    }
}

/// Size of a whole frame with a body of `body_len` bytes.
pub(crate) fn encoded_frame_len(protocol: ProtocolId, body_len: usize) -> usize {
    let inner = inner_len(protocol, body_len);
    varint_len(inner as u64) + inner
}

/// Writes everything before the body: length, protocol id and message type.
pub(crate) fn put_header<B: BufMut>(
    out: &mut B,
    protocol: ProtocolId,
    msg_type: u8,
    body_len: usize,
) {
    put_varint(out, inner_len(protocol, body_len) as u64);
    put_varint(out, u64::from(protocol.0));
    out.put_u8(msg_type);
}

/// The value of the length prefix: protocol id, message type and body.
fn inner_len(protocol: ProtocolId, body_len: usize) -> usize {
    varint_len(u64::from(protocol.0)) + 1 + body_len
}

/// Checks an announced frame length against the limits and the minimum header size.
fn check_len(len: u32, limits: &Limits) -> Result<usize, DecodeError> {
    let too_large = DecodeError::FrameTooLarge {
        len: u64::from(len),
        max: limits.max_frame_len,
    };
    if len > limits.max_frame_len {
        return Err(too_large);
    }
    if len < MIN_FRAME_LEN {
        return Err(DecodeError::FrameTooShort { len });
    }
    // Only fails where usize is narrower than 32 bits.
    usize::try_from(len).map_err(|_| too_large)
}

/// Cuts a byte stream (TCP, a QUIC stream) into frames.
///
/// Append received bytes to a `BytesMut` and call [`FrameDecoder::decode`] until it returns
/// `Ok(None)`:
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use starling_core::wire::{DecodeError, Frame, FrameDecoder, Limits, ProtocolId};
///
/// # fn main() -> Result<(), DecodeError> {
/// let mut received = BytesMut::new();
/// Frame::new(ProtocolId::GOSSIP, 1, Bytes::from_static(b"hi")).encode(&mut received);
/// let rest = received.split_off(3); // only a partial frame has arrived
///
/// let mut decoder = FrameDecoder::new(Limits::default());
/// assert_eq!(decoder.decode(&mut received)?, None);
/// received.extend_from_slice(&rest); // the rest arrives
/// let frame = decoder.decode(&mut received)?;
/// assert_eq!(frame.map(|f| f.body), Some(Bytes::from_static(b"hi")));
/// # Ok(())
/// # }
/// ```
///
/// Memory: the decoder itself holds nothing but its limits; the caller's buffer grows to at most
/// one frame (`max_frame_len` plus a 5-byte prefix) before a frame is returned or the length is
/// rejected. Errors are final: a stream cannot be resynchronised after a bad frame, so once
/// `decode` fails it returns the same error on every later call, and the caller should close the
/// stream.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    limits: Limits,
    failed: Option<DecodeError>,
}

impl FrameDecoder {
    /// A decoder enforcing `limits` (which should pass [`Limits::validate`]).
    pub fn new(limits: Limits) -> FrameDecoder {
        FrameDecoder {
            limits,
            failed: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes the next whole frame off the front of `buf`.
    ///
    /// Returns `Ok(None)`, leaving `buf` untouched, while the frame is incomplete. A length above
    /// `max_frame_len` is an error as soon as the length prefix is complete, and a prefix of more
    /// than 5 bytes is an error as soon as the fifth byte arrives, so a peer cannot make the
    /// caller buffer without bound. The body is split off `buf` without copying.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.next_frame(buf);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    fn next_frame(&self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let Some((len, prefix_len)) = peek_varint_u32(buf)? else {
            return Ok(None);
        };
        let len = check_len(len, &self.limits)?;
        // Saturating: on a 32-bit target a sum past usize::MAX is larger than any buffer anyway.
        if buf.len() < prefix_len.saturating_add(len) {
            return Ok(None);
        }
        buf.advance(prefix_len);
        Frame::from_inner(buf.split_to(len).freeze()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_frame_len: u32) -> Limits {
        Limits {
            max_frame_len,
            ..Limits::DEFAULT
        }
    }

    fn encode(frame: &Frame) -> BytesMut {
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        out
    }

    #[test]
    fn frame_has_the_documented_layout() {
        let frame = Frame::new(ProtocolId::DHT, 7, [1u8, 2, 3].as_slice());
        let bytes = encode(&frame);
        assert_eq!(bytes.as_ref(), [5u8, 2, 7, 1, 2, 3].as_slice());
        assert_eq!(frame.encoded_len(), bytes.len());

        // A protocol id of 300 takes a two-byte varint, and the length counts it.
        let frame = Frame::new(ProtocolId(300), 0, Bytes::new());
        let bytes = encode(&frame);
        assert_eq!(bytes.as_ref(), [3u8, 0xac, 0x02, 0].as_slice());
        assert_eq!(frame.encoded_len(), 4);
    }

    #[test]
    fn datagram_with_two_frames_decodes_both_zero_copy() {
        let a = Frame::new(ProtocolId::RAFT, 1, b"first".as_slice());
        let b = Frame::new(ProtocolId::PBFT, 2, Bytes::new());
        let mut out = encode(&a);
        b.encode(&mut out);
        let mut buf = out.freeze();
        let base = buf.as_ptr() as usize;
        let got_a = Frame::decode(&mut buf, &Limits::default());
        assert_eq!(got_a.as_ref(), Ok(&a));
        // Body starts after length, protocol and type: three bytes into the datagram.
        assert_eq!(got_a.map(|f| f.body.as_ptr() as usize), Ok(base + 3));
        assert_eq!(Frame::decode(&mut buf, &Limits::default()), Ok(b));
        assert!(buf.is_empty());
    }

    #[test]
    fn decode_rejects_lengths_outside_the_bounds() {
        let frame = Frame::new(ProtocolId::GOSSIP, 1, vec![0u8; 10]);
        let mut buf = encode(&frame).freeze();
        assert_eq!(
            Frame::decode(&mut buf, &limits(11)),
            Err(DecodeError::FrameTooLarge { len: 12, max: 11 })
        );
        for len in [0u8, 1] {
            let mut buf = Bytes::copy_from_slice(&[len, 0, 0]);
            assert_eq!(
                Frame::decode(&mut buf, &Limits::default()),
                Err(DecodeError::FrameTooShort {
                    len: u32::from(len)
                })
            );
        }
        // Length 2 but the protocol id takes two bytes, leaving none for the type.
        let mut buf = Bytes::from_static(&[2, 0x80, 0x01]);
        assert_eq!(
            Frame::decode(&mut buf, &Limits::default()),
            Err(DecodeError::UnexpectedEnd {
                needed: 1,
                remaining: 0
            })
        );
    }

    #[test]
    fn decode_reports_a_truncated_frame() {
        let mut buf = Bytes::from_static(&[5, 2, 7, 1]);
        assert_eq!(
            Frame::decode(&mut buf, &Limits::default()),
            Err(DecodeError::UnexpectedEnd {
                needed: 5,
                remaining: 3
            })
        );
        assert_eq!(
            Frame::decode(&mut Bytes::new(), &Limits::default()),
            Err(DecodeError::UnexpectedEnd {
                needed: 1,
                remaining: 0
            })
        );
    }

    #[test]
    fn header_fields_must_fit_their_widths() {
        // Protocol id 65536 does not fit in a u16.
        let mut buf = Bytes::from_static(&[4, 0x80, 0x80, 0x04, 0]);
        assert_eq!(
            Frame::decode(&mut buf, &Limits::default()),
            Err(DecodeError::VarintOverflow)
        );
        // A non-canonical length prefix.
        let mut buf = Bytes::from_static(&[0x82, 0x00, 0, 0]);
        assert_eq!(
            Frame::decode(&mut buf, &Limits::default()),
            Err(DecodeError::VarintNonCanonical)
        );
    }

    #[test]
    fn streaming_waits_without_consuming() {
        let frame = Frame::new(ProtocolId::HEARTBEAT, 3, vec![9u8; 200]);
        let bytes = encode(&frame);
        let mut decoder = FrameDecoder::new(Limits::default());
        let mut buf = BytesMut::new();
        for (i, byte) in bytes.iter().enumerate() {
            assert_eq!(decoder.decode(&mut buf), Ok(None), "after {i} bytes");
            assert_eq!(buf.len(), i);
            buf.put_u8(*byte);
        }
        assert_eq!(decoder.decode(&mut buf), Ok(Some(frame)));
        assert!(buf.is_empty());
        assert_eq!(decoder.decode(&mut buf), Ok(None));
    }

    #[test]
    fn streaming_rejects_oversize_length_before_the_body() {
        let mut decoder = FrameDecoder::new(limits(100));
        let mut buf = BytesMut::new();
        put_varint(&mut buf, 101);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(DecodeError::FrameTooLarge { len: 101, max: 100 })
        );
        // The error is final, even if valid bytes follow.
        buf.clear();
        Frame::new(ProtocolId::DHT, 0, Bytes::new()).encode(&mut buf);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(DecodeError::FrameTooLarge { len: 101, max: 100 })
        );
    }

    #[test]
    fn streaming_rejects_an_endless_length_prefix() {
        let mut decoder = FrameDecoder::new(Limits::default());
        let mut buf = BytesMut::new();
        for _ in 0..4 {
            buf.put_u8(0x80);
            assert_eq!(decoder.decode(&mut buf), Ok(None));
        }
        buf.put_u8(0x80);
        assert_eq!(decoder.decode(&mut buf), Err(DecodeError::VarintOverflow));
    }

    #[test]
    fn streaming_returns_frames_back_to_back() {
        let frames = [
            Frame::new(ProtocolId::SESSION, 0, Bytes::new()),
            Frame::new(ProtocolId(4000), 255, vec![1u8; 130]),
            Frame::new(ProtocolId::RAFT, 9, b"x".as_slice()),
        ];
        let mut buf = BytesMut::new();
        for f in &frames {
            f.encode(&mut buf);
        }
        let mut decoder = FrameDecoder::new(Limits::default());
        for f in frames {
            assert_eq!(decoder.decode(&mut buf), Ok(Some(f)));
        }
        assert_eq!(decoder.decode(&mut buf), Ok(None));
    }

    #[test]
    fn protocol_ids_display_their_names() {
        assert_eq!(ProtocolId::SESSION.to_string(), "session");
        assert_eq!(ProtocolId::HEARTBEAT.to_string(), "heartbeat");
        assert_eq!(ProtocolId::GOSSIP.to_string(), "gossip");
        assert_eq!(ProtocolId::RAFT.to_string(), "raft");
        assert_eq!(ProtocolId::PBFT.to_string(), "pbft");
        assert_eq!(ProtocolId(6).to_string(), "protocol 6");
        assert_eq!(ProtocolId(6).name(), None);
    }
}
