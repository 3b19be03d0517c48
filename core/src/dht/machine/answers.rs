//! The answers to a [`Dht`]'s requests: matched to the request they name, checked (the right
//! kind, valid contacts, a record for the key asked that the validator accepts), and handed to
//! the lookup or store round waiting for them. A bad answer counts against its sender.

use super::outgoing::{Expect, Purpose, Request};
use super::Dht;
use crate::dht::event::{DhtEvent, Misbehaviour};
use crate::dht::message::{DhtMessage, StoreResult};
use crate::dht::store::Validation;
use crate::dht::Contact;
use crate::id::Distance;
use crate::time::Instant;

impl<C: Contact> Dht<C> {
    fn misbehaved(&mut self, now: Instant, request: Request<C>, reason: Misbehaviour) {
        self.stats.misbehaviours += 1;
        self.emit(DhtEvent::Misbehaved {
            peer: request.to,
            reason,
        });
        self.request_failed(now, request);
    }

    fn contacts_valid(&self, contacts: &[C]) -> bool {
        if contacts.len() > self.config.answer_size {
            return false;
        }
        // Duplicates have equal keys, so a 256-bit filter on a byte of the key (here of its
        // distance from ours, which is as good) sends only the (few) contacts whose byte was
        // seen before to the exact check against earlier ones. The byte folds in the low end of
        // the key: contacts answered for one target share a long prefix.
        let mut seen = [0u64; 4];
        for (i, c) in contacts.iter().enumerate() {
            // Distances from our key stand in for keys: equal exactly when the keys are.
            let d = c.distance_to(&self.local);
            if d == Distance::ZERO {
                return false;
            }
            let w = d.words();
            let byte = usize::from((w[0] ^ w[1] ^ w[2] ^ w[3]) as u8);
            let (word, bit) = (byte / 64, 1u64 << (byte % 64));
            if seen[word] & bit != 0 && contacts[..i].contains(c) {
                return false;
            }
            seen[word] |= bit;
        }
        true
    }

    pub(super) fn handle_answer(&mut self, now: Instant, from: C, msg: DhtMessage<C>) {
        let id = msg.request_id();
        match self.requests.get(id) {
            Some(request) if request.to == from => {}
            _ => {
                // Late (after its timeout) or naming someone else's request: not evidence of
                // malice, so ignored without penalty.
                self.stats.stray_answers += 1;
                return;
            }
        }
        let request = self.complete(id).expect("just looked up");
        let fits = matches!(
            (&msg, request.expect),
            (DhtMessage::Pong { .. }, Expect::Pong)
                | (
                    DhtMessage::Nodes { .. },
                    Expect::Nodes | Expect::NodesOrValue
                )
                | (DhtMessage::Value { .. }, Expect::NodesOrValue)
                | (DhtMessage::Stored { .. }, Expect::Stored)
        );
        if !fits {
            self.misbehaved(now, request, Misbehaviour::WrongAnswer);
            self.step_stalled(now);
            return;
        }
        match msg {
            DhtMessage::Nodes { contacts, .. } => {
                if !self.contacts_valid(&contacts) {
                    self.misbehaved(now, request, Misbehaviour::BadContacts);
                } else {
                    self.observe(now, from);
                    if let Purpose::Lookup(lookup_id) = request.purpose {
                        let local = self.local;
                        if let Some(lookup) = self.lookups.get_mut(&lookup_id) {
                            lookup.state.on_response(&from, &contacts, &local);
                            self.step_lookup(now, lookup_id);
                        }
                    }
                }
            }
            DhtMessage::Value { record, .. } => {
                let Purpose::Lookup(lookup_id) = request.purpose else {
                    unreachable!("Value is only expected by lookups");
                };
                let wanted = self.lookups.get(&lookup_id).map(|l| *l.state.target());
                if wanted.is_some_and(|key| key != record.key)
                    || self.validator.validate(&record) == Validation::Reject
                {
                    self.misbehaved(now, request, Misbehaviour::BadRecord);
                } else {
                    self.observe(now, from);
                    if let Some(mut lookup) = self.remove_lookup(lookup_id) {
                        self.unstall(lookup_id);
                        lookup.state.on_response(&from, &[], &self.local);
                        let (_, stats) = lookup.state.finish();
                        self.emit(DhtEvent::GetDone {
                            id: lookup_id,
                            key: record.key,
                            record: Some(record),
                            stats,
                        });
                    }
                }
            }
            DhtMessage::Stored { result, .. } => {
                self.observe(now, from);
                if let Purpose::Store(store_id) = request.purpose {
                    if let Some(round) = self.stores.get_mut(&store_id) {
                        round.waiting -= 1;
                        if result == StoreResult::Accepted {
                            round.stored += 1;
                        } else {
                            round.refused += 1;
                        }
                    }
                    self.maybe_finish_store(store_id);
                }
            }
            DhtMessage::Pong { .. } => self.observe(now, from),
            _ => {}
        }
        self.step_stalled(now);
    }
}
