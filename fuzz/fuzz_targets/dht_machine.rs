//! Drives a DHT node with an arbitrary mix of requests, answers (to its real request ids or to
//! made-up ones), timeouts and commands from up to 32 peers, and checks what it promises: no
//! panic, no message to itself, answers only to requests, results of at most k distinct
//! contacts, a bounded routing table, and a bounded amount of output per input.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use starling_core::dht::{
    Contact, Dht, DhtConfig, DhtEvent, DhtMessage, Record, StoreResult, Subnet,
};
use starling_core::id::{Key, PeerId};
use starling_core::machine::{Machine, Output};
use starling_core::time::{Duration, Instant};

/// A peer named by one byte; its key is the byte's hash. 0 is the node under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct P(u8);

impl Contact for P {
    fn key(&self) -> Key {
        Key::hash_of(&[self.0])
    }
    fn subnet(&self) -> Option<Subnet> {
        (self.0 % 4 != 0).then_some(Subnet(u64::from(self.0 % 8)))
    }
}

#[derive(Arbitrary, Debug)]
enum Msg {
    Ping,
    Pong,
    FindNode(u8),
    Nodes(Vec<u8>),
    FindValue(u8),
    Value { key: u8, value: Vec<u8>, contacts: Vec<u8> },
    Store { key: u8, value: Vec<u8>, ttl: u32 },
    Stored(u8),
}

#[derive(Arbitrary, Debug)]
enum Input {
    /// A message from peer `from`; `id` picks one of the node's recent request ids (or, if
    /// `raw`, is used as is).
    Message { from: u8, id: u8, raw: bool, msg: Msg },
    Timeout,
    Advance(u16),
    Bootstrap(Vec<u8>),
    FindNode(u8),
    Get(u8),
    Put { key: u8, value: Vec<u8> },
    Unreachable(u8),
}

#[derive(Arbitrary, Debug)]
struct Run {
    seed: u64,
    k: u8,
    alpha: u8,
    paths: u8,
    inputs: Vec<Input>,
}

fn key(b: u8) -> Key {
    Key::hash_of(&[b, 0xee])
}

fn record(k: u8, value: Vec<u8>, ttl: u32) -> Box<Record> {
    Box::new(Record {
        key: key(k),
        value: Bytes::from(value),
        publisher: PeerId::from_bytes([k; 32]),
        ttl_secs: ttl,
    })
}

fn contacts(ids: Vec<u8>) -> Vec<P> {
    ids.into_iter().take(40).map(|b| P(b % 32)).collect()
}

fuzz_target!(|run: Run| {
    let mut config = DhtConfig::default();
    config.routing.k = usize::from(run.k % 8) + 1;
    config.alpha = usize::from(run.alpha % 4) + 1;
    config.disjoint_paths = (usize::from(run.paths % 3) + 1).min(config.routing.k);
    config.max_lookups = 4;
    config.store.max_records = 8;
    let k = config.routing.k;
    let me = P(0);
    let Ok(mut dht) = Dht::<P>::new(config, me.key(), run.seed, Instant::ZERO) else {
        return;
    };
    let mut now = Instant::ZERO;
    let mut sent_ids: Vec<u64> = Vec::new();
    for input in run.inputs.into_iter().take(500) {
        match input {
            Input::Message { from, id, raw, msg } => {
                let id = if raw || sent_ids.is_empty() {
                    u64::from(id)
                } else {
                    sent_ids[usize::from(id) % sent_ids.len()]
                };
                let msg = match msg {
                    Msg::Ping => DhtMessage::Ping { id },
                    Msg::Pong => DhtMessage::Pong { id },
                    Msg::FindNode(t) => DhtMessage::FindNode { id, target: key(t) },
                    Msg::Nodes(c) => DhtMessage::Nodes { id, contacts: contacts(c) },
                    Msg::FindValue(t) => DhtMessage::FindValue { id, key: key(t) },
                    Msg::Value { key, value, contacts: c } => DhtMessage::Value {
                        id,
                        record: record(key, value, 60),
                        contacts: contacts(c),
                    },
                    Msg::Store { key, value, ttl } => DhtMessage::Store {
                        id,
                        record: record(key, value, ttl),
                    },
                    Msg::Stored(r) => DhtMessage::Stored {
                        id,
                        result: match r % 3 {
                            0 => StoreResult::Accepted,
                            1 => StoreResult::Rejected,
                            _ => StoreResult::Full,
                        },
                    },
                };
                dht.handle_message(now, P(from % 32), msg);
            }
            Input::Timeout => {
                if let Some(t) = dht.poll_timeout() {
                    now = now.max(t);
                }
                dht.handle_timeout(now);
            }
            Input::Advance(ms) => now += Duration::from_millis(u64::from(ms)),
            Input::Bootstrap(seeds) => {
                let _ = dht.bootstrap(now, &contacts(seeds));
            }
            Input::FindNode(t) => {
                let _ = dht.find_node(now, key(t));
            }
            Input::Get(t) => {
                let _ = dht.get(now, key(t));
            }
            Input::Put { key, value } => {
                let _ = dht.put(now, *record(key, value, 0));
            }
            Input::Unreachable(p) => dht.handle_unreachable(now, P(p % 32)),
        }
        let mut outputs = 0;
        while let Some(out) = dht.poll_output() {
            outputs += 1;
            match out {
                Output::Send { to, msg } => {
                    assert_ne!(to, me, "sent {msg:?} to itself");
                    if msg.is_request() {
                        sent_ids.push(msg.request_id());
                        if sent_ids.len() > 64 {
                            sent_ids.remove(0);
                        }
                    }
                }
                Output::Event(DhtEvent::LookupDone { closest, .. }) => {
                    assert!(closest.len() <= k);
                    let mut ids: Vec<u8> = closest.iter().map(|c| c.0).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    assert_eq!(ids.len(), closest.len(), "duplicate contacts");
                    assert!(!closest.contains(&me));
                }
                Output::Event(_) => {}
            }
        }
        // 32 peers, 4 lookups of α·paths queries, a store round of k, pings: far below this.
        assert!(outputs <= 256, "{outputs} outputs from one input");
        assert!(dht.table().len() <= 32);
        assert!(dht.store().len() <= 8);
    }
});
