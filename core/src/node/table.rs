//! The protocol table: hosted machines behind one object-safe interface, keyed by protocol id.
//!
//! [`Protocol`] has associated types, so the node cannot hold a list of them directly. Each is
//! wrapped in a [`Hosted`] that speaks in what the node knows (identities, listen addresses,
//! frames, its own clock) and converts to the protocol's types: it decodes frames, names peers,
//! shifts the clock for wall-clock protocols, and wraps events.

use core::any::Any;
use std::net::SocketAddr;

use super::output::Direction;
use super::protocol::{HostedMessage, HostedPeer, Protocol};
use super::protocol_event::ProtocolEvent;
use crate::id::PeerId;
use crate::machine::Output;
use crate::time::{Duration, Instant};
use crate::wire::{Frame, Limits, ProtocolId};

/// A hosted machine's output, in the node's terms.
pub(super) enum SlotOutput {
    /// Send `frame` to `peer`; `dial` is where to reach it if it is not connected.
    Send {
        peer: PeerId,
        dial: Option<SocketAddr>,
        frame: Frame,
    },
    /// An event for the application.
    Event(ProtocolEvent),
}

/// A hosted machine, type erased.
pub(super) trait Slot: Send {
    fn protocols(&self) -> &'static [ProtocolId];
    fn max_waiting(&self) -> usize;
    /// A frame from `peer` (listening at `listen`, if known). False if it was dropped: the
    /// protocol cannot name the peer, the frame does not decode, or the protocol refused it.
    fn handle_frame(
        &mut self,
        now: Instant,
        local: PeerId,
        peer: PeerId,
        listen: Option<SocketAddr>,
        frame: Frame,
    ) -> bool;
    fn handle_timeout(&mut self, now: Instant);
    /// The machine's next deadline on the node's clock.
    fn poll_timeout(&self) -> Option<Instant>;
    fn poll_output(&mut self) -> Option<SlotOutput>;
    fn connected(
        &mut self,
        now: Instant,
        peer: PeerId,
        listen: Option<SocketAddr>,
        direction: Direction,
    );
    fn disconnected(&mut self, now: Instant, peer: PeerId);
    /// A message to `peer` (dialled at `dial`) could not be delivered.
    fn unreachable(&mut self, now: Instant, peer: PeerId, dial: Option<SocketAddr>);
    fn set_wall_offset(&mut self, offset: Duration);
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A hosted protocol and its clock offset.
pub(super) struct Hosted<P: Protocol> {
    pub(super) machine: P,
    /// Added to the node's clock for a wall-clock protocol; zero otherwise.
    offset: Duration,
}

impl<P: Protocol> Hosted<P> {
    pub(super) fn new(machine: P) -> Self {
        Hosted {
            machine,
            offset: Duration::ZERO,
        }
    }

    /// The node's time on the machine's clock.
    pub(super) fn clock(&self, now: Instant) -> Instant {
        now + self.offset
    }

    /// The typed peer for an identity (and the address it was dialled at), if the protocol can
    /// name it.
    fn peer(peer: PeerId, addr: Option<SocketAddr>) -> Option<P::Peer> {
        <P::Peer as HostedPeer>::on_connection(peer, addr)
    }
}

impl<P: Protocol> Slot for Hosted<P> {
    fn protocols(&self) -> &'static [ProtocolId] {
        <P::Message as HostedMessage>::PROTOCOLS
    }

    fn max_waiting(&self) -> usize {
        P::MAX_WAITING
    }

    fn handle_frame(
        &mut self,
        now: Instant,
        local: PeerId,
        peer: PeerId,
        listen: Option<SocketAddr>,
        frame: Frame,
    ) -> bool {
        let Some(from) = Self::peer(peer, listen) else {
            return false;
        };
        let decoded = <P::Message as HostedMessage>::from_frame(frame, &Limits::DEFAULT);
        match decoded
            .ok()
            .and_then(|msg| self.machine.admit(local, from, msg))
        {
            Some(msg) => {
                let clock = self.clock(now);
                self.machine.handle_message(clock, from, msg);
                true
            }
            None => false,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        let clock = self.clock(now);
        self.machine.handle_timeout(clock);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let t = self.machine.poll_timeout()?;
        Some(Instant::from_nanos(
            t.as_nanos().saturating_sub(self.offset.as_nanos()),
        ))
    }

    fn poll_output(&mut self) -> Option<SlotOutput> {
        Some(match self.machine.poll_output()? {
            Output::Send { to, msg } => SlotOutput::Send {
                peer: to.peer_id(),
                dial: to.dial_addr(),
                frame: msg.to_frame(),
            },
            Output::Event(event) => {
                let id = self.protocols().first().copied().unwrap_or(ProtocolId(0));
                SlotOutput::Event(ProtocolEvent::new(id, P::NAME, event))
            }
        })
    }

    fn connected(
        &mut self,
        now: Instant,
        peer: PeerId,
        listen: Option<SocketAddr>,
        direction: Direction,
    ) {
        if let Some(peer) = Self::peer(peer, listen) {
            let clock = self.clock(now);
            self.machine.peer_connected(clock, peer, direction);
        }
    }

    fn disconnected(&mut self, now: Instant, peer: PeerId) {
        let clock = self.clock(now);
        self.machine.peer_disconnected(clock, peer);
    }

    fn unreachable(&mut self, now: Instant, peer: PeerId, dial: Option<SocketAddr>) {
        if let Some(peer) = Self::peer(peer, dial) {
            let clock = self.clock(now);
            self.machine.peer_unreachable(clock, peer);
        }
    }

    fn set_wall_offset(&mut self, offset: Duration) {
        if P::WALL_CLOCK {
            self.offset = offset;
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
