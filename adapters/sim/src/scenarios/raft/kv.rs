//! The replicated object of the Raft scenario: a map of `u64` keys to `u64` values with get, put
//! and compare-and-set (the operations of [`KvModel`](crate::linearizability::KvModel)).
//!
//! Writes (put, compare-and-set) go through the log as commands; reads are served from the map
//! after a ReadIndex round, so they never touch the log. A snapshot is the map itself plus the
//! client sessions.
//!
//! ## Exactly once
//! A request can reach the leader twice (the network duplicates it, or the client resends it
//! after a redirect) and so be logged twice. As the thesis prescribes (§6.3), the state machine
//! keeps each client's last request number and its answer: a write numbered at or below it is
//! not applied again (an equal number gets the remembered answer). Clients number requests in
//! increasing order and keep at most one outstanding.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::linearizability::{KvInput, KvOutput};

/// Command tags in the log.
const PUT: u8 = 1;
const CAS_ABSENT: u8 = 2;
const CAS: u8 = 3;

/// A write as a log command: the client (`u32`) and request number (`u64`), a tag, then `u64`s
/// (key, value; or key, expected, new), all little-endian. `None` for a read, which is not
/// logged.
pub(crate) fn encode(client: u32, req: u64, op: KvInput) -> Option<Bytes> {
    let mut b = BytesMut::with_capacity(37);
    b.put_u32_le(client);
    b.put_u64_le(req);
    match op {
        KvInput::Get(_) => return None,
        KvInput::Put(key, value) => {
            b.put_u8(PUT);
            b.put_u64_le(key);
            b.put_u64_le(value);
        }
        KvInput::Cas { key, expect, new } => {
            b.put_u8(if expect.is_some() { CAS } else { CAS_ABSENT });
            b.put_u64_le(key);
            if let Some(expect) = expect {
                b.put_u64_le(expect);
            }
            b.put_u64_le(new);
        }
    }
    Some(b.freeze())
}

/// The client, request number and write a command holds; `None` if it is malformed.
pub(crate) fn decode(mut b: &[u8]) -> Option<(u32, u64, KvInput)> {
    if b.len() < 12 {
        return None;
    }
    let (client, req) = (b.get_u32_le(), b.get_u64_le());
    let (&tag, rest) = b.split_first()?;
    b = rest;
    let op = match (tag, b.len()) {
        (PUT, 16) => KvInput::Put(b.get_u64_le(), b.get_u64_le()),
        (CAS_ABSENT, 16) => KvInput::Cas {
            key: b.get_u64_le(),
            expect: None,
            new: b.get_u64_le(),
        },
        (CAS, 24) => KvInput::Cas {
            key: b.get_u64_le(),
            expect: Some(b.get_u64_le()),
            new: b.get_u64_le(),
        },
        _ => return None,
    };
    Some((client, req, op))
}

/// The state machine every server applies committed writes to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Kv {
    map: BTreeMap<u64, u64>,
    /// Per client: the last request applied and its answer.
    sessions: BTreeMap<u32, (u64, KvOutput)>,
}

impl Kv {
    /// Applies a logged write once per request number; `None` for a request older than the
    /// client's last (its answer is no longer known, and the client no longer waits for it).
    pub fn apply_command(&mut self, client: u32, req: u64, op: KvInput) -> Option<KvOutput> {
        match self.sessions.get(&client) {
            Some(&(last, out)) if last == req => return Some(out),
            Some(&(last, _)) if last > req => return None,
            _ => {}
        }
        let out = self.apply(op);
        self.sessions.insert(client, (req, out));
        Some(out)
    }

    /// Runs one operation, as the sequential specification says.
    pub fn apply(&mut self, op: KvInput) -> KvOutput {
        match op {
            KvInput::Get(key) => KvOutput::Value(self.map.get(&key).copied()),
            KvInput::Put(key, value) => {
                self.map.insert(key, value);
                KvOutput::Ok
            }
            KvInput::Cas { key, expect, new } => {
                let hit = self.map.get(&key).copied() == expect;
                if hit {
                    self.map.insert(key, new);
                }
                KvOutput::CasResult(hit)
            }
        }
    }

    /// The map (a count, then key/value pairs), then the sessions (a count, then client,
    /// request and answer), little-endian.
    pub fn snapshot(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(16 + self.map.len() * 16 + self.sessions.len() * 22);
        b.put_u64_le(self.map.len() as u64);
        for (k, v) in &self.map {
            b.put_u64_le(*k);
            b.put_u64_le(*v);
        }
        b.put_u64_le(self.sessions.len() as u64);
        for (client, (req, out)) in &self.sessions {
            b.put_u32_le(*client);
            b.put_u64_le(*req);
            let (tag, word) = match *out {
                KvOutput::Ok => (0, 0),
                KvOutput::CasResult(hit) => (1, u64::from(hit)),
                KvOutput::Value(None) => (2, 0),
                KvOutput::Value(Some(v)) => (3, v),
            };
            b.put_u8(tag);
            b.put_u64_le(word);
        }
        b.freeze()
    }

    /// The state a snapshot holds; `None` if it is malformed.
    pub fn restore(mut data: &[u8]) -> Option<Kv> {
        let mut kv = Kv::default();
        let n = read_u64(&mut data)?;
        for _ in 0..n {
            kv.map.insert(read_u64(&mut data)?, read_u64(&mut data)?);
        }
        let n = read_u64(&mut data)?;
        for _ in 0..n {
            if data.remaining() < 21 {
                return None;
            }
            let (client, req, tag, word) = (
                data.get_u32_le(),
                data.get_u64_le(),
                data.get_u8(),
                data.get_u64_le(),
            );
            let out = match tag {
                0 => KvOutput::Ok,
                1 => KvOutput::CasResult(word != 0),
                2 => KvOutput::Value(None),
                3 => KvOutput::Value(Some(word)),
                _ => return None,
            };
            kv.sessions.insert(client, (req, out));
        }
        data.is_empty().then_some(kv)
    }
}

fn read_u64(data: &mut &[u8]) -> Option<u64> {
    (data.remaining() >= 8).then(|| data.get_u64_le())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_snapshots_round_trip() {
        for op in [
            KvInput::Put(7, 9),
            KvInput::Cas {
                key: 7,
                expect: None,
                new: 1,
            },
            KvInput::Cas {
                key: 7,
                expect: Some(9),
                new: 1,
            },
        ] {
            assert_eq!(decode(&encode(3, 4, op).unwrap()), Some((3, 4, op)));
        }
        assert_eq!(encode(3, 4, KvInput::Get(1)), None);
        assert_eq!(decode(&[PUT, 1, 2]), None);
        assert_eq!(decode(&[]), None);
        let mut kv = Kv::default();
        assert_eq!(kv.apply(KvInput::Put(7, 9)), KvOutput::Ok);
        let cas = |expect, new| KvInput::Cas {
            key: 7,
            expect,
            new,
        };
        assert_eq!(kv.apply(cas(None, 3)), KvOutput::CasResult(false));
        assert_eq!(kv.apply(cas(Some(9), 3)), KvOutput::CasResult(true));
        assert_eq!(kv.apply(KvInput::Get(7)), KvOutput::Value(Some(3)));
        assert_eq!(Kv::restore(&kv.snapshot()), Some(kv.clone()));
        assert_eq!(Kv::restore(&[0; 15]), None);
    }

    #[test]
    fn a_repeated_request_is_applied_once() {
        let mut kv = Kv::default();
        let cas = KvInput::Cas {
            key: 1,
            expect: None,
            new: 5,
        };
        assert_eq!(kv.apply_command(9, 1, cas), Some(KvOutput::CasResult(true)));
        // Applied again it would fail; remembered, it answers as the first time.
        assert_eq!(kv.apply_command(9, 1, cas), Some(KvOutput::CasResult(true)));
        assert_eq!(
            kv.apply_command(9, 2, KvInput::Put(1, 6)),
            Some(KvOutput::Ok)
        );
        assert_eq!(kv.apply_command(9, 1, cas), None);
        assert_eq!(kv.apply(KvInput::Get(1)), KvOutput::Value(Some(6)));
        let restored = Kv::restore(&kv.snapshot()).unwrap();
        assert_eq!(restored, kv);
        let mut cut = kv.snapshot().to_vec();
        cut.pop();
        assert_eq!(Kv::restore(&cut), None);
    }
}
