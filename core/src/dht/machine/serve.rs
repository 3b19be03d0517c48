//! The requests a [`Dht`] serves: `PING`, `FIND_NODE`, `FIND_VALUE` and `STORE` from other
//! nodes, each answered with one message.

use super::Dht;
use crate::dht::message::{DhtMessage, StoreResult};
use crate::dht::store::{StoreError, Validation};
use crate::dht::Contact;
use crate::id::Key;
use crate::machine::Output;
use crate::time::Instant;

impl<C: Contact> Dht<C> {
    fn answer(&mut self, to: C, msg: DhtMessage<C>) {
        self.stats.requests_answered += 1;
        self.outputs.push_back(Output::Send { to, msg });
    }

    pub(super) fn handle_request(&mut self, now: Instant, from: C, msg: DhtMessage<C>) {
        self.observe(now, from);
        let k = self.config.answer_size;
        match msg {
            DhtMessage::Ping { id } => self.answer(from, DhtMessage::Pong { id }),
            DhtMessage::FindNode { id, target } => {
                let contacts = self.closest_for(&target, k, &from);
                self.answer(from, DhtMessage::Nodes { id, contacts });
            }
            DhtMessage::FindValue { id, key } => match self.store.get(now, &key) {
                Some(record) => {
                    let record = Box::new(record.clone());
                    let msg = DhtMessage::Value {
                        id,
                        record,
                        contacts: Vec::new(),
                    };
                    self.answer(from, msg);
                }
                None => {
                    let contacts = self.closest_for(&key, k, &from);
                    self.answer(from, DhtMessage::Nodes { id, contacts });
                }
            },
            DhtMessage::Store { id, record } => {
                let result = if self.validator.validate(&record) == Validation::Reject {
                    StoreResult::Rejected
                } else {
                    match self.store.put(now, *record) {
                        Ok(_) => StoreResult::Accepted,
                        Err(StoreError::Full { .. }) => StoreResult::Full,
                        // Too large, or a TTL of zero: the record itself is unacceptable.
                        Err(_) => StoreResult::Rejected,
                    }
                };
                self.answer(from, DhtMessage::Stored { id, result });
            }
            _ => {}
        }
    }

    /// The `count` contacts closest to `target`, leaving out the asker (it knows itself).
    fn closest_for(&mut self, target: &Key, count: usize, asker: &C) -> Vec<C> {
        self.table.closest(target, count + 1, &mut self.scratch);
        let mut out = Vec::with_capacity(count.min(self.scratch.len()));
        out.extend(
            self.scratch
                .iter()
                .filter(|c| *c != asker)
                .take(count)
                .copied(),
        );
        out
    }
}
