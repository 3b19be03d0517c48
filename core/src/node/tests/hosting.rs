//! The protocol table: a toy protocol hosted by the node gets its frames, sends through the
//! node's connections (dialling first when needed), hears about peers, and reports events.

use std::collections::VecDeque;

use bytes::{Buf, BufMut};

use super::*;
use crate::contact::NodeContact;
use crate::machine::{Machine, Output};
use crate::wire::{DecodeError, Limits, WireMessage};

const TOY: ProtocolId = ProtocolId(700);

/// One byte each way; the machine answers every `Ping(n)` with `Pong(n)`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ToyMsg {
    Ping(u8),
    Pong(u8),
}

impl WireMessage for ToyMsg {
    const PROTOCOL: ProtocolId = TOY;
    fn msg_type(&self) -> u8 {
        match self {
            ToyMsg::Ping(_) => 1,
            ToyMsg::Pong(_) => 2,
        }
    }
    fn body_len(&self) -> usize {
        1
    }
    fn encode_body<B: BufMut>(&self, buf: &mut B) {
        let (ToyMsg::Ping(n) | ToyMsg::Pong(n)) = self;
        buf.put_u8(*n);
    }
    fn decode_body(msg_type: u8, body: &mut Bytes, _: &Limits) -> Result<Self, DecodeError> {
        if !body.has_remaining() {
            return Err(DecodeError::UnexpectedEnd {
                needed: 1,
                remaining: 0,
            });
        }
        match msg_type {
            1 => Ok(ToyMsg::Ping(body.get_u8())),
            2 => Ok(ToyMsg::Pong(body.get_u8())),
            found => Err(DecodeError::UnknownMessageType {
                protocol: TOY,
                msg_type: found,
            }),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ToyEvent {
    Pong(NodeContact, u8),
    Connected(NodeContact, Direction),
    Disconnected(PeerId),
    Unreachable(NodeContact),
}

#[derive(Default)]
struct Toy {
    out: VecDeque<Output<NodeContact, ToyMsg, ToyEvent>>,
}

impl Toy {
    fn ping(&mut self, to: NodeContact, n: u8) {
        self.out.push_back(Output::Send {
            to,
            msg: ToyMsg::Ping(n),
        });
    }
}

impl Machine for Toy {
    type Peer = NodeContact;
    type Message = ToyMsg;
    type Event = ToyEvent;
    fn handle_message(&mut self, _: Instant, from: NodeContact, msg: ToyMsg) {
        match msg {
            ToyMsg::Ping(n) => self.out.push_back(Output::Send {
                to: from,
                msg: ToyMsg::Pong(n),
            }),
            ToyMsg::Pong(n) => self.out.push_back(Output::Event(ToyEvent::Pong(from, n))),
        }
    }
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_output(&mut self) -> Option<Output<NodeContact, ToyMsg, ToyEvent>> {
        self.out.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

impl Protocol for Toy {
    const NAME: &'static str = "toy";
    const MAX_WAITING: usize = 2;
    fn peer_connected(&mut self, _: Instant, peer: NodeContact, direction: Direction) {
        self.out
            .push_back(Output::Event(ToyEvent::Connected(peer, direction)));
    }
    fn peer_disconnected(&mut self, _: Instant, peer: PeerId) {
        self.out
            .push_back(Output::Event(ToyEvent::Disconnected(peer)));
    }
    fn peer_unreachable(&mut self, _: Instant, peer: NodeContact) {
        self.out
            .push_back(Output::Event(ToyEvent::Unreachable(peer)));
    }
}

fn toy_events(events: Vec<NodeEvent>) -> Vec<ToyEvent> {
    events
        .into_iter()
        .filter_map(|e| match e {
            NodeEvent::Protocol(e) => {
                assert_eq!((e.protocol(), e.name()), (TOY, "toy"));
                e.downcast::<ToyEvent>().ok()
            }
            _ => None,
        })
        .collect()
}

fn contact(n: u8) -> NodeContact {
    NodeContact {
        peer: peer(n),
        addr: addr(n, 4000),
    }
}

#[test]
fn a_hosted_protocol_gets_its_frames_and_answers_through_the_node() {
    let mut h = Harness::new(NodeConfig::default());
    h.node.host(h.now, Toy::default()).unwrap();
    assert_eq!(h.node.hosted_protocols(), vec![TOY]);
    assert_eq!(
        h.node.host(h.now, Toy::default()),
        Err(HostError::ProtocolTaken(TOY))
    );
    assert!(h.node.handle_incoming(h.now, 1, addr(3, 50_000)));
    h.node.handle_established(h.now, 1, peer(3), Some(4000));
    assert_eq!(
        toy_events(h.events()),
        vec![ToyEvent::Connected(contact(3), Direction::Inbound)]
    );
    h.node
        .handle_frame(h.now, 1, crate::wire::message_to_frame(&ToyMsg::Ping(9)));
    let out = h.drain();
    assert_eq!(
        out,
        vec![NodeOutput::Send {
            conn: 1,
            frame: crate::wire::message_to_frame(&ToyMsg::Pong(9)),
        }]
    );
    // Garbage is dropped and counted against the protocol, not delivered.
    h.node
        .handle_frame(h.now, 1, Frame::new(TOY, 9, Bytes::new()));
    assert!(h.drain().is_empty());
    assert_eq!(h.node.stats().protocol_frames_dropped, 1);
    let stats = h.node.hosted()[0];
    assert_eq!((stats.frames_in, stats.frames_dropped), (1, 1));
    h.node
        .handle_closed(h.now, 1, CloseCause::Local(CloseCode::Normal));
    assert_eq!(
        toy_events(h.events()),
        vec![ToyEvent::Disconnected(peer(3))]
    );
}

#[test]
fn a_message_to_an_unconnected_peer_waits_for_its_dial() {
    let mut h = Harness::new(NodeConfig::default());
    h.node.host(h.now, Toy::default()).unwrap();
    h.node
        .with_protocol::<Toy, _>(h.now, |toy, _| toy.ping(contact(4), 1))
        .unwrap();
    assert_eq!(h.dials(), vec![addr(4, 4000)]);
    h.node.handle_dialed(h.now, addr(4, 4000), 2);
    h.node.handle_established(h.now, 2, peer(4), None);
    let out = h.drain();
    assert!(
        out.contains(&NodeOutput::Send {
            conn: 2,
            frame: crate::wire::message_to_frame(&ToyMsg::Ping(1)),
        }),
        "{out:?}"
    );
    // The dialled address is the peer's listen address: the protocol can name it.
    let events = out
        .into_iter()
        .filter_map(|o| match o {
            NodeOutput::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(
        toy_events(events),
        vec![ToyEvent::Connected(contact(4), Direction::Outbound)]
    );
}

#[test]
fn a_failed_dial_or_a_full_queue_reports_the_peer_unreachable() {
    let mut h = Harness::new(NodeConfig::default());
    h.node.host(h.now, Toy::default()).unwrap();
    h.node
        .with_protocol::<Toy, _>(h.now, |toy, _| {
            toy.ping(contact(5), 1);
            toy.ping(contact(6), 1);
            // The third waits past MAX_WAITING = 2: the oldest goes.
            toy.ping(contact(7), 1);
        })
        .unwrap();
    assert_eq!(
        toy_events(h.events()),
        vec![ToyEvent::Unreachable(contact(5))]
    );
    h.node.handle_dial_failed(h.now, addr(6, 4000), "refused");
    assert_eq!(
        toy_events(h.events()),
        vec![ToyEvent::Unreachable(contact(6))]
    );
    assert_eq!(h.node.hosted()[0].waiting, 1);
    assert_eq!(h.node.hosted()[0].unreachable, 2);
}

/// A codec written by hand (as a protocol spanning several ids would) that claims the
/// session's id.
#[derive(Debug)]
struct SessionClaim;

impl crate::node::HostedMessage for SessionClaim {
    const PROTOCOLS: &'static [ProtocolId] = &[TOY, ProtocolId::SESSION];
    fn to_frame(&self) -> Frame {
        Frame::new(TOY, 0, Bytes::new())
    }
    fn from_frame(_: Frame, _: &Limits) -> Result<Self, DecodeError> {
        Ok(SessionClaim)
    }
}

struct Rogue;

impl Machine for Rogue {
    type Peer = PeerId;
    type Message = SessionClaim;
    type Event = ();
    fn handle_message(&mut self, _: Instant, _: PeerId, _: SessionClaim) {}
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_output(&mut self) -> Option<Output<PeerId, SessionClaim, ()>> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

impl Protocol for Rogue {
    const NAME: &'static str = "rogue";
}

#[test]
fn the_session_id_cannot_be_hosted_and_a_refusal_changes_nothing() {
    let mut h = Harness::new(NodeConfig::default());
    assert_eq!(
        h.node.host(h.now, Rogue),
        Err(HostError::Reserved(ProtocolId::SESSION))
    );
    assert!(h.node.hosted_protocols().is_empty());
    h.node.host(h.now, Toy::default()).unwrap();
    assert_eq!(h.node.hosted_protocols(), vec![TOY]);
}
