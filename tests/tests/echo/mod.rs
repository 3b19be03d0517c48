//! Echo: the smallest protocol worth hosting, written outside core as an application would.
//!
//! A node asks a peer to echo some bytes; the peer answers with the same bytes; the asker
//! reports [`EchoEvent::Echoed`]. Its wire format, on protocol id [`ECHO`]: message type 1 is a
//! request and 2 a reply, each `id: u64 (LE)` then the bytes (varint length, then the bytes).

use std::collections::VecDeque;

use bytes::{BufMut, Bytes};
use starling_core::id::PeerId;
use starling_core::machine::{Machine, Output};
use starling_core::node::{Direction, Protocol};
use starling_core::time::Instant;
use starling_core::wire::codec::{bytes_encoded_len, get_bytes, get_u64_le, put_bytes};
use starling_core::wire::{DecodeError, Limits, ProtocolId, WireMessage};

/// The echo protocol's id: an application's, above Starling's own.
pub const ECHO: ProtocolId = ProtocolId(4000);

/// Echo's messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EchoMsg {
    /// Please send `data` back.
    Request { id: u64, data: Bytes },
    /// Here is `data` back.
    Reply { id: u64, data: Bytes },
}

impl WireMessage for EchoMsg {
    const PROTOCOL: ProtocolId = ECHO;

    fn msg_type(&self) -> u8 {
        match self {
            EchoMsg::Request { .. } => 1,
            EchoMsg::Reply { .. } => 2,
        }
    }

    fn body_len(&self) -> usize {
        let (EchoMsg::Request { data, .. } | EchoMsg::Reply { data, .. }) = self;
        8 + bytes_encoded_len(data.len())
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B) {
        let (EchoMsg::Request { id, data } | EchoMsg::Reply { id, data }) = self;
        buf.put_u64_le(*id);
        put_bytes(buf, data);
    }

    fn decode_body(msg_type: u8, body: &mut Bytes, limits: &Limits) -> Result<Self, DecodeError> {
        let id = get_u64_le(body)?;
        let data = get_bytes(body, limits)?;
        match msg_type {
            1 => Ok(EchoMsg::Request { id, data }),
            2 => Ok(EchoMsg::Reply { id, data }),
            msg_type => Err(DecodeError::UnknownMessageType {
                protocol: ECHO,
                msg_type,
            }),
        }
    }
}

/// What echo reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EchoEvent {
    /// A peer connected: it can be asked now.
    PeerUp(PeerId),
    /// `from` echoed request `id`.
    Echoed { from: PeerId, id: u64, data: Bytes },
    /// Request `id` to `to` could not be delivered.
    Undelivered { to: PeerId },
}

/// The echo machine.
#[derive(Default)]
pub struct Echo {
    next_id: u64,
    out: VecDeque<Output<PeerId, EchoMsg, EchoEvent>>,
    /// Requests answered, for the tests.
    pub answered: u64,
}

impl Echo {
    /// Asks `to` to echo `data`; the answer comes as [`EchoEvent::Echoed`] with the id returned.
    pub fn ask(&mut self, to: PeerId, data: Bytes) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.out.push_back(Output::Send {
            to,
            msg: EchoMsg::Request { id, data },
        });
        id
    }
}

impl Machine for Echo {
    type Peer = PeerId;
    type Message = EchoMsg;
    type Event = EchoEvent;

    fn handle_message(&mut self, _now: Instant, from: PeerId, msg: EchoMsg) {
        match msg {
            EchoMsg::Request { id, data } => {
                self.answered += 1;
                self.out.push_back(Output::Send {
                    to: from,
                    msg: EchoMsg::Reply { id, data },
                });
            }
            EchoMsg::Reply { id, data } => {
                self.out
                    .push_back(Output::Event(EchoEvent::Echoed { from, id, data }));
            }
        }
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_output(&mut self) -> Option<Output<PeerId, EchoMsg, EchoEvent>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

impl Protocol for Echo {
    const NAME: &'static str = "echo";

    fn peer_connected(&mut self, _now: Instant, peer: PeerId, _direction: Direction) {
        self.out.push_back(Output::Event(EchoEvent::PeerUp(peer)));
    }

    fn peer_unreachable(&mut self, _now: Instant, to: PeerId) {
        self.out
            .push_back(Output::Event(EchoEvent::Undelivered { to }));
    }
}
