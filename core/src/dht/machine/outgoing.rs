//! The requests a [`Dht`] sends: what each waits for and why it was sent, their bookkeeping by
//! id and per peer, and what a failed one does to the routing table and to whoever sent it.

use super::Dht;
use crate::dht::event::LookupId;
use crate::dht::message::{DhtMessage, RequestId};
use crate::dht::routing::Failure;
use crate::dht::Contact;
use crate::machine::Output;
use crate::time::Instant;

/// The answer a request waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expect {
    Pong,
    Nodes,
    NodesOrValue,
    Stored,
}

/// Why a request was sent, so its answer (or silence) reaches the right place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    Lookup(LookupId),
    Store(LookupId),
    /// Ping-before-evict: the least recently seen contact of a full bucket.
    EvictionCheck,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Request<C> {
    pub(super) to: C,
    pub(super) expect: Expect,
    pub(super) purpose: Purpose,
}

impl<C: Contact> Dht<C> {
    /// Requests in flight to `contact`.
    pub(super) fn in_flight_to(&self, contact: &C) -> u16 {
        in_flight_to(&self.per_peer, contact)
    }

    pub(super) fn send_request(
        &mut self,
        now: Instant,
        to: C,
        expect: Expect,
        purpose: Purpose,
        msg: impl FnOnce(RequestId) -> DhtMessage<C>,
    ) {
        let deadline = now + self.config.request_timeout;
        let id = self.requests.push(
            deadline,
            Request {
                to,
                expect,
                purpose,
            },
        );
        match self.per_peer.iter_mut().find(|(c, _)| *c == to) {
            Some((_, n)) => *n += 1,
            None => self.per_peer.push((to, 1)),
        }
        self.stats.requests_sent += 1;
        self.outputs.push_back(Output::Send { to, msg: msg(id) });
    }

    /// Removes a finished request from every index.
    pub(super) fn complete(&mut self, id: RequestId) -> Option<Request<C>> {
        let request = self.requests.remove(id)?;
        if let Some(i) = self.per_peer.iter().position(|(c, _)| *c == request.to) {
            self.per_peer[i].1 -= 1;
            if self.per_peer[i].1 == 0 {
                self.per_peer.swap_remove(i);
                if self.per_peer.is_empty() {
                    // Most nodes are idle most of the time: give the memory back.
                    self.per_peer = Vec::new();
                }
            }
        }
        Some(request)
    }

    /// A request timed out, could not be delivered, or was answered badly.
    pub(super) fn request_failed(&mut self, now: Instant, request: Request<C>) {
        self.stats.timeouts += 1;
        if let Failure::Removed { .. } = self.table.failed(&request.to) {
            // Nothing else to do: the table promoted a replacement if it had one.
        }
        match request.purpose {
            Purpose::Lookup(id) => {
                if let Some(lookup) = self.lookups.get_mut(&id) {
                    lookup.state.on_failure(&request.to);
                    self.step_lookup(now, id);
                }
            }
            Purpose::Store(id) => {
                if let Some(round) = self.stores.get_mut(&id) {
                    round.waiting -= 1;
                    round.refused += 1;
                }
                self.maybe_finish_store(id);
            }
            Purpose::EvictionCheck => {}
        }
    }
}

/// Requests in flight to `contact`, from the per-peer counts.
pub(super) fn in_flight_to<C: Contact>(per_peer: &[(C, u16)], contact: &C) -> u16 {
    per_peer
        .iter()
        .find(|(c, _)| c == contact)
        .map_or(0, |&(_, n)| n)
}
