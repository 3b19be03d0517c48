//! Heartbeat messages and their wire encoding.
//!
//! Protocol id [`ProtocolId::HEARTBEAT`]. Two message types, each a single varint:
//!
//! | type | message | body |
//! |------|---------|------|
//! | 0 | `Ping` | `seq: varint` |
//! | 1 | `Pong` | `seq: varint` (echoes the ping's) |

use bytes::{BufMut, Bytes};

use crate::wire::varint::{get_varint, put_varint, varint_len};
use crate::wire::{DecodeError, Limits, ProtocolId, WireMessage};

/// A heartbeat exchanged between two nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum HeartbeatMessage {
    /// "Are you there?" — answered by a `Pong` with the same `seq`.
    Ping {
        /// Sequence number of this ping, per sender.
        seq: u64,
    },
    /// The answer to a `Ping`.
    Pong {
        /// The `seq` of the ping being answered.
        seq: u64,
    },
}

const PING: u8 = 0;
const PONG: u8 = 1;

impl WireMessage for HeartbeatMessage {
    const PROTOCOL: ProtocolId = ProtocolId::HEARTBEAT;

    fn msg_type(&self) -> u8 {
        match self {
            HeartbeatMessage::Ping { .. } => PING,
            HeartbeatMessage::Pong { .. } => PONG,
        }
    }

    fn body_len(&self) -> usize {
        match *self {
            HeartbeatMessage::Ping { seq } | HeartbeatMessage::Pong { seq } => varint_len(seq),
        }
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B) {
        match *self {
            HeartbeatMessage::Ping { seq } | HeartbeatMessage::Pong { seq } => put_varint(buf, seq),
        }
    }

    fn decode_body(msg_type: u8, body: &mut Bytes, _limits: &Limits) -> Result<Self, DecodeError> {
        match msg_type {
            PING => Ok(HeartbeatMessage::Ping {
                seq: get_varint(body)?,
            }),
            PONG => Ok(HeartbeatMessage::Pong {
                seq: get_varint(body)?,
            }),
            other => Err(DecodeError::UnknownMessageType {
                protocol: Self::PROTOCOL,
                msg_type: other,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_message, message_to_frame};

    #[test]
    fn ping_and_pong_round_trip() {
        for msg in [
            HeartbeatMessage::Ping { seq: 0 },
            HeartbeatMessage::Pong { seq: u64::MAX },
        ] {
            let frame = message_to_frame(&msg);
            assert_eq!(frame.protocol, ProtocolId::HEARTBEAT);
            assert_eq!(frame.body.len(), msg.body_len());
            assert_eq!(
                decode_message::<HeartbeatMessage>(frame, &Limits::default()),
                Ok(msg)
            );
        }
    }

    #[test]
    fn unknown_type_and_trailing_bytes_are_errors() {
        let mut frame = message_to_frame(&HeartbeatMessage::Ping { seq: 5 });
        frame.msg_type = 9;
        assert!(matches!(
            decode_message::<HeartbeatMessage>(frame, &Limits::default()),
            Err(DecodeError::UnknownMessageType { msg_type: 9, .. })
        ));
        let mut frame = message_to_frame(&HeartbeatMessage::Ping { seq: 5 });
        frame.body = Bytes::from_static(&[5, 0]);
        assert!(matches!(
            decode_message::<HeartbeatMessage>(frame, &Limits::default()),
            Err(DecodeError::TrailingBytes { count: 1 })
        ));
    }
}
