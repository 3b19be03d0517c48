//! The replicated state machine: an ordered map of byte strings, plus per-client sessions that
//! make writes exactly-once.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes, BytesMut};
use starling_core::id::PeerId;

use crate::proto::{self, get_key, get_peer, get_u64, get_value, put_key, put_value, ProtoError};

/// Request ids one client session remembers at most. A client keeps at most this many requests
/// unanswered (the benchmark keeps 256); past it the oldest id is forgotten, and a late
/// duplicate of it would be ignored rather than applied twice.
pub const MAX_SESSION_IDS: usize = 1 << 16;

/// One client's exactly-once record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Session {
    /// Every id below this was answered or abandoned by the client (its `ack`).
    floor: u64,
    /// Ids at or above `floor` already applied.
    applied: BTreeSet<u64>,
}

/// A write as logged: who asked, which request, and the put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The client.
    pub client: PeerId,
    /// Its request id.
    pub id: u64,
    /// Its `ack` when it sent the request.
    pub ack: u64,
    /// The key.
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
}

impl Command {
    /// The bytes proposed to Raft: `client (32)`, `id: u64`, `ack: u64`, `key`, `value`.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(54 + self.key.len() + self.value.len());
        out.put_slice(self.client.as_bytes());
        out.put_u64_le(self.id);
        out.put_u64_le(self.ack);
        put_key(&mut out, &self.key);
        put_value(&mut out, &self.value);
        out.freeze()
    }

    /// Decodes a logged command (slices of `buf`).
    pub fn decode(mut buf: Bytes) -> Result<Command, ProtoError> {
        let client = get_peer(&mut buf)?;
        let id = get_u64(&mut buf)?;
        let ack = get_u64(&mut buf)?;
        let key = get_key(&mut buf)?;
        let value = get_value(&mut buf)?;
        proto::finish(
            &buf,
            Command {
                client,
                id,
                ack,
                key,
                value,
            },
        )
    }
}

/// The map and the sessions. Every server applies the same commands in the same order, so
/// every server holds the same `KvState` at the same index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvState {
    map: BTreeMap<Bytes, Bytes>,
    sessions: BTreeMap<PeerId, Session>,
}

impl KvState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.map.get(key).cloned()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Applies a logged write unless this request was applied before (a retry logged twice) or
    /// was abandoned by its client. Returns whether the map changed.
    pub fn apply(&mut self, cmd: Command) -> bool {
        let session = self.sessions.entry(cmd.client).or_default();
        if cmd.ack > session.floor {
            session.floor = cmd.ack;
            session.applied = session.applied.split_off(&cmd.ack);
        }
        if cmd.id < session.floor || !session.applied.insert(cmd.id) {
            return false;
        }
        if session.applied.len() > MAX_SESSION_IDS {
            // A client far over its window: forget its oldest id rather than grow for ever.
            if let Some(oldest) = session.applied.pop_first() {
                session.floor = oldest + 1;
            }
        }
        self.map.insert(cmd.key, cmd.value);
        true
    }

    /// The state as bytes: `keys: u64`, then `key`, `value` pairs; `sessions: u64`, then per
    /// session `client (32)`, `floor: u64`, `ids: u64`, `id: u64`*. Little-endian.
    pub fn snapshot(&self) -> Bytes {
        let size: usize = self
            .map
            .iter()
            .map(|(k, v)| 6 + k.len() + v.len())
            .sum::<usize>()
            + self
                .sessions
                .values()
                .map(|s| 48 + 8 * s.applied.len())
                .sum::<usize>()
            + 16;
        let mut out = BytesMut::with_capacity(size);
        out.put_u64_le(self.map.len() as u64);
        for (k, v) in &self.map {
            put_key(&mut out, k);
            put_value(&mut out, v);
        }
        out.put_u64_le(self.sessions.len() as u64);
        for (client, s) in &self.sessions {
            out.put_slice(client.as_bytes());
            out.put_u64_le(s.floor);
            out.put_u64_le(s.applied.len() as u64);
            for id in &s.applied {
                out.put_u64_le(*id);
            }
        }
        out.freeze()
    }

    /// Rebuilds a state from [`KvState::snapshot`]'s bytes. Counts are checked against the
    /// bytes left before looping, so damaged input fails fast.
    pub fn restore(mut buf: Bytes) -> Result<KvState, ProtoError> {
        let mut state = KvState::default();
        let keys = get_u64(&mut buf)?;
        // Each pair takes at least 6 bytes.
        if keys > (buf.len() / 6) as u64 {
            return Err(ProtoError::Truncated);
        }
        for _ in 0..keys {
            let k = get_key(&mut buf)?;
            let v = get_value(&mut buf)?;
            state.map.insert(k, v);
        }
        let sessions = get_u64(&mut buf)?;
        if sessions > (buf.len() / 48) as u64 {
            return Err(ProtoError::Truncated);
        }
        for _ in 0..sessions {
            let client = get_peer(&mut buf)?;
            let floor = get_u64(&mut buf)?;
            let ids = get_u64(&mut buf)?;
            if ids > (buf.len() / 8) as u64 {
                return Err(ProtoError::Truncated);
            }
            let mut applied = BTreeSet::new();
            for _ in 0..ids {
                applied.insert(get_u64(&mut buf)?);
            }
            state.sessions.insert(client, Session { floor, applied });
        }
        proto::finish(&buf, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(client: u8, id: u64, ack: u64, key: &str, value: &str) -> Command {
        Command {
            client: PeerId::from_bytes([client; 32]),
            id,
            ack,
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
        }
    }

    #[test]
    fn a_retried_write_applies_once() {
        let mut s = KvState::new();
        assert!(s.apply(put(1, 5, 0, "k", "a")));
        assert!(s.apply(put(1, 6, 0, "k", "b")));
        // The retry of 5, logged again after 6: not applied, so "b" stays.
        assert!(!s.apply(put(1, 5, 0, "k", "a")));
        assert_eq!(s.get(b"k").as_deref(), Some(&b"b"[..]));
        // Another client's id 5 is its own.
        assert!(s.apply(put(2, 5, 0, "k", "c")));
        // Below the acknowledged floor: abandoned, never applied.
        assert!(s.apply(put(1, 10, 8, "x", "1")));
        assert!(!s.apply(put(1, 7, 0, "x", "2")));
        assert_eq!(s.get(b"x").as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn snapshot_round_trips_and_damage_is_refused() {
        let mut s = KvState::new();
        for i in 0..50u64 {
            s.apply(put((i % 3) as u8, i, i / 2, &format!("k{i}"), "v"));
        }
        let bytes = s.snapshot();
        assert_eq!(KvState::restore(bytes.clone()), Ok(s));
        for n in [0, 1, 8, bytes.len() / 2, bytes.len() - 1] {
            assert!(KvState::restore(bytes.slice(..n)).is_err());
        }
        let mut huge = vec![0xff; 8];
        huge.extend_from_slice(&[0; 8]);
        assert_eq!(KvState::restore(huge.into()), Err(ProtoError::Truncated));
    }

    #[test]
    fn commands_round_trip() {
        let c = put(3, 9, 4, "key", "value");
        assert_eq!(Command::decode(c.encode()), Ok(c));
    }
}
