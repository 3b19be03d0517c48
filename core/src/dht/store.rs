//! The local record store: records this node holds for others, bounded in count and bytes,
//! each dropped when its TTL runs out.

use core::fmt;
use std::collections::{BTreeSet, HashMap};

use super::message::Record;
use crate::id::Key;
use crate::time::{Duration, Instant};

/// Bounds of a [`RecordStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Most records held. Default 65,536.
    pub max_records: usize,
    /// Most bytes held, counted by [`Record::size`]. Default 64 MiB.
    pub max_bytes: usize,
    /// Largest value accepted. Default 64 KiB.
    pub max_value_len: usize,
    /// Longest TTL honoured; longer ones are cut to it. Default 48 h.
    pub max_ttl: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_records: 65_536,
            max_bytes: 64 << 20,
            max_value_len: 64 << 10,
            max_ttl: Duration::from_secs(48 * 3600),
        }
    }
}

/// The application's verdict on a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Validation {
    /// Store it, return it.
    Accept,
    /// Refuse it; the peer that offered it is penalised.
    Reject,
}

/// The application's hook for deciding which records are valid (signed by their publisher,
/// well-formed for the application, …). The DHT asks it before storing a record for a peer,
/// before putting one, and before accepting one a get returned.
pub trait RecordValidator {
    /// Judges `record`.
    fn validate(&mut self, record: &Record) -> Validation;
}

/// The default validator: every record is valid.
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptAll;

impl RecordValidator for AcceptAll {
    fn validate(&mut self, _record: &Record) -> Validation {
        Validation::Accept
    }
}

/// Why a record was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The value is longer than `max_value_len`.
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Storing it would exceed `max_records` or `max_bytes`.
    Full,
    /// A TTL of zero: the record would expire at once.
    ZeroTtl,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the limit of {max}")
            }
            StoreError::Full => f.write_str("record store is full"),
            StoreError::ZeroTtl => f.write_str("record has a TTL of zero"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What [`RecordStore::put`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// A new key.
    Inserted,
    /// The key was held; its record was replaced.
    Replaced,
}

#[derive(Clone, Debug)]
struct Stored {
    record: Record,
    expires: Instant,
    stored_at: Instant,
}

/// Records held for the network, bounded by [`StoreConfig`]. Expiry is indexed by time, so
/// dropping expired records costs only what expired.
#[derive(Clone, Debug)]
pub struct RecordStore {
    config: StoreConfig,
    records: HashMap<Key, Stored>,
    by_expiry: BTreeSet<(Instant, Key)>,
    bytes: usize,
}

impl RecordStore {
    /// An empty store.
    pub fn new(config: StoreConfig) -> Self {
        RecordStore {
            config,
            records: HashMap::new(),
            by_expiry: BTreeSet::new(),
            bytes: 0,
        }
    }

    /// Stores `record` until `now` plus its TTL (cut to `max_ttl`), replacing any record under
    /// the same key.
    pub fn put(&mut self, now: Instant, record: Record) -> Result<PutOutcome, StoreError> {
        let max = self.config.max_value_len;
        if record.value.len() > max {
            return Err(StoreError::ValueTooLarge {
                len: record.value.len(),
                max,
            });
        }
        if record.ttl_secs == 0 {
            return Err(StoreError::ZeroTtl);
        }
        let old_size = self.records.get(&record.key).map_or(0, |s| s.record.size());
        let count_after = self.records.len() + usize::from(old_size == 0);
        let bytes_after = self.bytes - old_size + record.size();
        if count_after > self.config.max_records || bytes_after > self.config.max_bytes {
            return Err(StoreError::Full);
        }
        let ttl = Duration::from_secs(u64::from(record.ttl_secs)).min(self.config.max_ttl);
        let expires = now + ttl;
        let key = record.key;
        self.bytes = bytes_after;
        self.by_expiry.insert((expires, key));
        let stored = Stored {
            record,
            expires,
            stored_at: now,
        };
        match self.records.insert(key, stored) {
            Some(old) => {
                if old.expires != expires {
                    self.by_expiry.remove(&(old.expires, key));
                }
                Ok(PutOutcome::Replaced)
            }
            None => Ok(PutOutcome::Inserted),
        }
    }

    /// The record under `key`, unless it has expired.
    pub fn get(&self, now: Instant, key: &Key) -> Option<&Record> {
        self.records
            .get(key)
            .filter(|s| s.expires > now)
            .map(|s| &s.record)
    }

    /// Drops the record under `key`.
    pub fn remove(&mut self, key: &Key) -> Option<Record> {
        let stored = self.records.remove(key)?;
        self.by_expiry.remove(&(stored.expires, *key));
        self.bytes -= stored.record.size();
        Some(stored.record)
    }

    /// Drops every record whose TTL has run out by `now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        while let Some(&(at, key)) = self.by_expiry.first() {
            if at > now {
                break;
            }
            self.remove(&key);
            dropped += 1;
        }
        dropped
    }

    /// When the next record expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_expiry.first().map(|(at, _)| *at)
    }

    /// Records held (expired ones included until [`RecordStore::expire`] runs).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes held, by [`Record::size`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every record with its expiry and the time it was last stored, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Record, Instant, Instant)> {
        self.records
            .values()
            .map(|s| (&s.record, s.expires, s.stored_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::PeerId;
    use bytes::Bytes;

    fn record(key: u8, len: usize, ttl_secs: u32) -> Record {
        Record {
            key: Key::from_bytes([key; 32]),
            value: Bytes::from(vec![key; len]),
            publisher: PeerId::from_bytes([9; 32]),
            ttl_secs,
        }
    }

    fn small() -> StoreConfig {
        StoreConfig {
            max_records: 3,
            max_bytes: 3 * record(0, 100, 1).size(),
            max_value_len: 200,
            max_ttl: Duration::from_secs(100),
        }
    }

    #[test]
    fn holds_its_bounds() {
        let mut s = RecordStore::new(small());
        let t = Instant::ZERO;
        assert_eq!(
            s.put(t, record(1, 201, 10)),
            Err(StoreError::ValueTooLarge { len: 201, max: 200 })
        );
        assert_eq!(s.put(t, record(1, 10, 0)), Err(StoreError::ZeroTtl));
        for k in 1..=3 {
            assert_eq!(s.put(t, record(k, 10, 10)), Ok(PutOutcome::Inserted));
        }
        assert_eq!(s.put(t, record(4, 10, 10)), Err(StoreError::Full));
        // Replacing a held key does not need a free slot.
        assert_eq!(s.put(t, record(2, 100, 10)), Ok(PutOutcome::Replaced));
        assert_eq!(s.len(), 3);
        assert_eq!(
            s.bytes(),
            2 * record(0, 10, 1).size() + record(0, 100, 1).size()
        );
        // Bytes: growing all three to 150 would pass the byte bound.
        assert_eq!(s.put(t, record(1, 150, 10)), Ok(PutOutcome::Replaced));
        assert_eq!(s.put(t, record(3, 150, 10)), Err(StoreError::Full));
        let sum: usize = s.iter().map(|(r, _, _)| r.size()).sum();
        assert_eq!(s.bytes(), sum);
    }

    #[test]
    fn expires_in_order_and_clamps_ttl() {
        let mut s = RecordStore::new(small());
        let t0 = Instant::ZERO;
        s.put(t0, record(1, 1, 30)).unwrap();
        s.put(t0, record(2, 1, 10)).unwrap();
        s.put(t0, record(3, 1, 1000)).unwrap(); // clamped to 100 s
        assert_eq!(s.next_expiry(), Some(t0 + Duration::from_secs(10)));
        let t = t0 + Duration::from_secs(10);
        assert!(s.get(t, &Key::from_bytes([2; 32])).is_none(), "expired");
        assert_eq!(s.expire(t), 1);
        assert_eq!(s.next_expiry(), Some(t0 + Duration::from_secs(30)));
        assert_eq!(s.expire(t0 + Duration::from_secs(99)), 1);
        assert!(s
            .get(t0 + Duration::from_secs(99), &Key::from_bytes([3; 32]))
            .is_some());
        assert_eq!(s.expire(t0 + Duration::from_secs(100)), 1);
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);
        assert_eq!(s.next_expiry(), None);
    }

    #[test]
    fn replacing_moves_the_expiry() {
        let mut s = RecordStore::new(small());
        let t0 = Instant::ZERO;
        s.put(t0, record(1, 1, 10)).unwrap();
        s.put(t0 + Duration::from_secs(5), record(1, 1, 10))
            .unwrap();
        assert_eq!(s.expire(t0 + Duration::from_secs(10)), 0);
        assert_eq!(s.expire(t0 + Duration::from_secs(15)), 1);
        assert!(s.is_empty());
    }
}
