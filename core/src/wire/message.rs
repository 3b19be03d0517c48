//! The trait tying a protocol's message type to frames.
//!
//! Each protocol defines one message enum and implements [`WireMessage`] for it: the protocol id,
//! a type byte per variant, and the body codec built from [`crate::wire::codec`]. The free
//! functions here add and check the frame envelope, so no protocol writes framing code.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::DecodeError;
use super::frame::{encoded_frame_len, put_header, Frame, ProtocolId};
use super::limits::Limits;

/// A protocol message that travels in a [`Frame`].
pub trait WireMessage: Sized {
    /// The protocol this message belongs to.
    const PROTOCOL: ProtocolId;
    /// The message type byte.
    fn msg_type(&self) -> u8;
    /// Exact length of the encoded body.
    fn body_len(&self) -> usize;
    /// Appends the body.
    fn encode_body<B: BufMut>(&self, buf: &mut B);
    /// Parses a body of type `msg_type`; must consume exactly what it needs and never panic.
    fn decode_body(msg_type: u8, body: &mut Bytes, limits: &Limits) -> Result<Self, DecodeError>;
}

/// Appends `msg` to `out` as a whole frame, writing the body straight into `out` (no
/// intermediate buffer).
pub fn encode_message<M: WireMessage>(msg: &M, out: &mut BytesMut) {
    let body_len = msg.body_len();
    out.reserve(encoded_frame_len(M::PROTOCOL, body_len));
    put_header(out, M::PROTOCOL, msg.msg_type(), body_len);
    let body_start = out.len();
    msg.encode_body(out);
    // The length prefix was written from `body_len`; if the implementation disagrees with
    // itself the frame is corrupt, so catch it in tests rather than on a peer.
    debug_assert_eq!(
        out.len() - body_start,
        body_len,
        "{}::body_len disagrees with encode_body",
        core::any::type_name::<M>()
    );
}

/// Encodes `msg` as a [`Frame`] (for callers that route or queue frames before encoding them).
pub fn message_to_frame<M: WireMessage>(msg: &M) -> Frame {
    let mut body = BytesMut::with_capacity(msg.body_len());
    msg.encode_body(&mut body);
    Frame {
        protocol: M::PROTOCOL,
        msg_type: msg.msg_type(),
        body: body.freeze(),
    }
}

/// Decodes the message carried by `frame`.
///
/// Fails with [`DecodeError::WrongProtocol`] if the frame belongs to another protocol, with
/// whatever [`WireMessage::decode_body`] reports, or with [`DecodeError::TrailingBytes`] if the
/// body is longer than the message it holds (so each message has exactly one encoding).
pub fn decode_message<M: WireMessage>(frame: Frame, limits: &Limits) -> Result<M, DecodeError> {
    if frame.protocol != M::PROTOCOL {
        return Err(DecodeError::WrongProtocol {
            expected: M::PROTOCOL,
            found: frame.protocol,
        });
    }
    let mut body = frame.body;
    let msg = M::decode_body(frame.msg_type, &mut body, limits)?;
    if body.has_remaining() {
        return Err(DecodeError::TrailingBytes {
            count: body.remaining(),
        });
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codec::{
        bytes_encoded_len, get_bytes, get_list_len, get_u32_le, get_u64_le, put_bytes, put_list_len,
    };
    use crate::wire::varint::varint_len;

    /// A toy protocol with a fixed-size message and one with a list and a byte string.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Toy {
        Ping { nonce: u64 },
        Store { keys: Vec<u32>, value: Bytes },
    }

    const PING: u8 = 1;
    const STORE: u8 = 2;

    impl WireMessage for Toy {
        const PROTOCOL: ProtocolId = ProtocolId(4242);

        fn msg_type(&self) -> u8 {
            match self {
                Toy::Ping { .. } => PING,
                Toy::Store { .. } => STORE,
            }
        }

        fn body_len(&self) -> usize {
            match self {
                Toy::Ping { .. } => 8,
                Toy::Store { keys, value } => {
                    varint_len(keys.len() as u64) + 4 * keys.len() + bytes_encoded_len(value.len())
                }
            }
        }

        fn encode_body<B: BufMut>(&self, buf: &mut B) {
            match self {
                Toy::Ping { nonce } => buf.put_u64_le(*nonce),
                Toy::Store { keys, value } => {
                    put_list_len(buf, keys.len());
                    for key in keys {
                        buf.put_u32_le(*key);
                    }
                    put_bytes(buf, value);
                }
            }
        }

        fn decode_body(
            msg_type: u8,
            body: &mut Bytes,
            limits: &Limits,
        ) -> Result<Self, DecodeError> {
            match msg_type {
                PING => Ok(Toy::Ping {
                    nonce: get_u64_le(body)?,
                }),
                STORE => {
                    let count = get_list_len(body, limits, 4)?;
                    let mut keys = Vec::with_capacity(count);
                    for _ in 0..count {
                        keys.push(get_u32_le(body)?);
                    }
                    let value = get_bytes(body, limits)?;
                    Ok(Toy::Store { keys, value })
                }
                other => Err(DecodeError::UnknownMessageType {
                    protocol: Self::PROTOCOL,
                    msg_type: other,
                }),
            }
        }
    }

    fn samples() -> Vec<Toy> {
        vec![
            Toy::Ping { nonce: u64::MAX },
            Toy::Store {
                keys: vec![],
                value: Bytes::new(),
            },
            Toy::Store {
                keys: vec![1, 2, u32::MAX],
                value: Bytes::from_static(b"value"),
            },
        ]
    }

    #[test]
    fn messages_round_trip_through_a_whole_frame() {
        let limits = Limits::default();
        for msg in samples() {
            let mut out = BytesMut::new();
            encode_message(&msg, &mut out);
            let frame = message_to_frame(&msg);
            assert_eq!(out.len(), frame.encoded_len());
            let mut wire = out.freeze();
            let decoded = Frame::decode(&mut wire, &limits);
            assert_eq!(decoded.as_ref(), Ok(&frame));
            let back = decoded.and_then(|f| decode_message::<Toy>(f, &limits));
            assert_eq!(back, Ok(msg));
        }
    }

    #[test]
    fn encode_message_matches_frame_encode() {
        for msg in samples() {
            let mut direct = BytesMut::new();
            encode_message(&msg, &mut direct);
            let mut via_frame = BytesMut::new();
            message_to_frame(&msg).encode(&mut via_frame);
            assert_eq!(direct, via_frame);
        }
    }

    #[test]
    fn frames_of_another_protocol_are_refused() {
        let frame = Frame::new(ProtocolId::DHT, PING, vec![0u8; 8]);
        assert_eq!(
            decode_message::<Toy>(frame, &Limits::default()),
            Err(DecodeError::WrongProtocol {
                expected: ProtocolId(4242),
                found: ProtocolId::DHT
            })
        );
    }

    #[test]
    fn leftover_body_bytes_are_trailing() {
        let frame = Frame::new(Toy::PROTOCOL, PING, vec![0u8; 11]);
        assert_eq!(
            decode_message::<Toy>(frame, &Limits::default()),
            Err(DecodeError::TrailingBytes { count: 3 })
        );
    }

    #[test]
    fn unknown_types_and_bad_bodies_are_errors() {
        let limits = Limits::default();
        let unknown = Frame::new(Toy::PROTOCOL, 9, Bytes::new());
        assert_eq!(
            decode_message::<Toy>(unknown, &limits),
            Err(DecodeError::UnknownMessageType {
                protocol: Toy::PROTOCOL,
                msg_type: 9
            })
        );
        let short = Frame::new(Toy::PROTOCOL, PING, vec![0u8; 7]);
        assert_eq!(
            decode_message::<Toy>(short, &limits),
            Err(DecodeError::UnexpectedEnd {
                needed: 8,
                remaining: 7
            })
        );
        // A store claiming 5 keys when the limit is 4.
        let small = Limits {
            max_list_len: 4,
            ..limits
        };
        let long_list = Frame::new(Toy::PROTOCOL, STORE, vec![5u8; 30]);
        assert_eq!(
            decode_message::<Toy>(long_list, &small),
            Err(DecodeError::ListTooLong { len: 5, max: 4 })
        );
    }
}
