//! The local record store: records this node holds for the network, bounded in count and bytes,
//! each dropped when its TTL runs out.
//!
//! The store only holds and expires. Deciding whether a record is valid is the application's
//! [`RecordValidator`], which the DHT machine consults before it calls [`RecordStore::put`];
//! republishing is the machine's too, using [`RecordStore::iter`] and
//! [`RecordStore::stored_at`].

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
    /// Largest value accepted, in bytes. Default 64 KiB.
    pub max_value_len: usize,
    /// Longest TTL honoured; longer ones are cut to it. Default 48 h (twice the usual 24 h
    /// record lifetime, so a publisher may overlap republications without records piling up).
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
/// well-formed for the application, …). The DHT machine asks it before storing a record for a
/// peer, before publishing one, and before accepting one a lookup returned; the store itself
/// never calls it.
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

/// Which bound a full store hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreLimit {
    /// `max_records`.
    Records,
    /// `max_bytes`.
    Bytes,
}

/// Why a record was not stored. Nothing changed in the store.
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
    /// Storing it would exceed `max_records` or `max_bytes`, even after dropping what has
    /// expired.
    Full {
        /// The bound it would exceed.
        limit: StoreLimit,
    },
    /// A TTL of zero: the record would expire as it is stored. Refused rather than read as
    /// "delete", because a record's publisher is not authenticated by the store, so letting any
    /// peer delete by key would let it erase others' records.
    ZeroTtl,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the limit of {max}")
            }
            StoreError::Full {
                limit: StoreLimit::Records,
            } => f.write_str("record store holds its maximum number of records"),
            StoreError::Full {
                limit: StoreLimit::Bytes,
            } => f.write_str("record store holds its maximum number of bytes"),
            StoreError::ZeroTtl => f.write_str("record has a TTL of zero"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What [`RecordStore::put`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The key was not held; the record was added.
    Inserted,
    /// The key was held; its record was replaced (and its expiry restarted).
    Replaced,
}

#[derive(Clone, Debug)]
struct Entry {
    record: Record,
    expires: Instant,
    stored_at: Instant,
}

/// Records held for the network, bounded by [`StoreConfig`].
///
/// Records live in a map by key; a second index orders them by expiry, so [`expire`] costs
/// O(expired · log n) instead of a scan, and [`next_expiry`] is O(log n) for the machine's
/// timer. Expired records stay (invisible to [`get`]) until `expire` runs or a `put` needs
/// their room.
///
/// [`expire`]: RecordStore::expire
/// [`next_expiry`]: RecordStore::next_expiry
/// [`get`]: RecordStore::get
#[derive(Clone, Debug)]
pub struct RecordStore {
    config: StoreConfig,
    records: HashMap<Key, Entry>,
    /// Exactly one `(expires, key)` per entry of `records`.
    by_expiry: BTreeSet<(Instant, Key)>,
    /// Sum of [`Record::size`] over `records`.
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

    /// The bounds it enforces.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Stores `record` until `now` plus its TTL (cut to `max_ttl`), replacing any record under
    /// the same key; `now` becomes its [`stored_at`](RecordStore::stored_at).
    ///
    /// Fails, leaving the store as it was, on a value above `max_value_len`, a zero TTL, or when
    /// the record would not fit in `max_records` or `max_bytes` (a replacement only needs room
    /// for the difference in size). Expired records are dropped first if that makes room.
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
        if let Err(limit) = self.fits(&record) {
            // Only pay for expiry when it could help: usually the store has room.
            if self.expire(now) == 0 {
                return Err(StoreError::Full { limit });
            }
            self.fits(&record)
                .map_err(|limit| StoreError::Full { limit })?;
        }

        let ttl = Duration::from_secs(u64::from(record.ttl_secs)).min(self.config.max_ttl);
        let expires = now + ttl;
        let key = record.key;
        let entry = Entry {
            expires,
            stored_at: now,
            record,
        };
        self.bytes += entry.record.size();
        self.by_expiry.insert((expires, key));
        match self.records.insert(key, entry) {
            Some(old) => {
                self.bytes -= old.record.size();
                // Same expiry: the insert above found the old index entry and kept it.
                if old.expires != expires {
                    self.by_expiry.remove(&(old.expires, key));
                }
                Ok(PutOutcome::Replaced)
            }
            None => Ok(PutOutcome::Inserted),
        }
    }

    /// Whether `record` fits, counting the record it would replace as gone.
    fn fits(&self, record: &Record) -> Result<(), StoreLimit> {
        let old = self.records.get(&record.key);
        let count = self.records.len() + usize::from(old.is_none());
        if count > self.config.max_records {
            return Err(StoreLimit::Records);
        }
        let old_size = old.map_or(0, |e| e.record.size());
        // `bytes` includes `old_size`, so this cannot underflow.
        if self.bytes - old_size + record.size() > self.config.max_bytes {
            return Err(StoreLimit::Bytes);
        }
        Ok(())
    }

    /// The record under `key`, unless there is none or it has expired by `now`.
    pub fn get(&self, now: Instant, key: &Key) -> Option<&Record> {
        self.records
            .get(key)
            .filter(|e| e.expires > now)
            .map(|e| &e.record)
    }

    /// Removes and returns the record under `key`, expired or not.
    pub fn remove(&mut self, key: &Key) -> Option<Record> {
        let entry = self.records.remove(key)?;
        self.by_expiry.remove(&(entry.expires, *key));
        self.bytes -= entry.record.size();
        Some(entry.record)
    }

    /// Drops every record that has expired by `now` (expiry at or before it); returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        while let Some(&(expires, key)) = self.by_expiry.first() {
            if expires > now {
                break;
            }
            self.remove(&key);
            dropped += 1;
        }
        dropped
    }

    /// When the earliest record expires, if any is held: the time to call
    /// [`expire`](RecordStore::expire) next.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_expiry.first().map(|&(expires, _)| expires)
    }

    /// When the record under `key` was last stored (put or replaced), if it is held. A record
    /// republished by its publisher is replaced, so this is also its last republication here.
    pub fn stored_at(&self, key: &Key) -> Option<Instant> {
        self.records.get(key).map(|e| e.stored_at)
    }

    /// When the record under `key` expires, if it is held.
    pub fn expires_at(&self, key: &Key) -> Option<Instant> {
        self.records.get(key).map(|e| e.expires)
    }

    /// Records held, counting expired ones until [`expire`](RecordStore::expire) drops them.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes held: the sum of [`Record::size`] over the records held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every record held with its expiry, in no particular order (expired ones included until
    /// [`expire`](RecordStore::expire) drops them).
    pub fn iter(&self) -> impl Iterator<Item = (&Record, Instant)> + '_ {
        self.records.values().map(|e| (&e.record, e.expires))
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

    fn key(k: u8) -> Key {
        Key::from_bytes([k; 32])
    }

    fn secs(s: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(s)
    }

    /// Room for three records, or for three values of 100 bytes.
    fn small() -> StoreConfig {
        StoreConfig {
            max_records: 3,
            max_bytes: 3 * record(0, 100, 1).size(),
            max_value_len: 200,
            max_ttl: Duration::from_secs(100),
        }
    }

    fn assert_consistent(s: &RecordStore) {
        let sum: usize = s.iter().map(|(r, _)| r.size()).sum();
        assert_eq!(s.bytes(), sum);
        assert_eq!(s.by_expiry.len(), s.len());
        for (r, expires) in s.iter() {
            assert!(s.by_expiry.contains(&(expires, r.key)));
        }
    }

    #[test]
    fn defaults_are_as_documented() {
        let c = StoreConfig::default();
        assert_eq!(c.max_records, 65_536);
        assert_eq!(c.max_bytes, 64 * 1024 * 1024);
        assert_eq!(c.max_value_len, 64 * 1024);
        assert_eq!(c.max_ttl, Duration::from_secs(172_800));
    }

    #[test]
    fn refuses_large_values_and_zero_ttl() {
        let mut s = RecordStore::new(small());
        assert_eq!(
            s.put(Instant::ZERO, record(1, 201, 10)),
            Err(StoreError::ValueTooLarge { len: 201, max: 200 })
        );
        assert_eq!(
            s.put(Instant::ZERO, record(1, 200, 10)),
            Ok(PutOutcome::Inserted)
        );
        assert_eq!(
            s.put(Instant::ZERO, record(2, 10, 0)),
            Err(StoreError::ZeroTtl)
        );
        assert_eq!(s.len(), 1);
        assert_consistent(&s);
    }

    #[test]
    fn holds_its_count_bound() {
        let mut s = RecordStore::new(small());
        for k in 1..=3 {
            assert_eq!(
                s.put(Instant::ZERO, record(k, 10, 10)),
                Ok(PutOutcome::Inserted)
            );
        }
        assert_eq!(
            s.put(Instant::ZERO, record(4, 10, 10)),
            Err(StoreError::Full {
                limit: StoreLimit::Records
            })
        );
        // Replacing a held key needs no free slot.
        assert_eq!(
            s.put(Instant::ZERO, record(2, 10, 10)),
            Ok(PutOutcome::Replaced)
        );
        assert_eq!(s.len(), 3);
        assert!(s.get(Instant::ZERO, &key(4)).is_none());
        assert_consistent(&s);
    }

    #[test]
    fn holds_its_byte_bound_and_accounts_replacements() {
        let mut s = RecordStore::new(small());
        let t = Instant::ZERO;
        for k in 1..=3 {
            s.put(t, record(k, 10, 10)).unwrap();
        }
        assert_eq!(s.bytes(), 3 * record(0, 10, 1).size());
        // Replacing counts only the difference: two records of 140 and one of 10 fit...
        assert_eq!(s.put(t, record(1, 140, 10)), Ok(PutOutcome::Replaced));
        assert_eq!(s.put(t, record(2, 140, 10)), Ok(PutOutcome::Replaced));
        assert_eq!(
            s.bytes(),
            2 * record(0, 140, 1).size() + record(0, 10, 1).size()
        );
        // ...but a third of 140 does not.
        assert_eq!(
            s.put(t, record(3, 140, 10)),
            Err(StoreError::Full {
                limit: StoreLimit::Bytes
            })
        );
        assert_eq!(s.get(t, &key(3)).map(|r| r.value.len()), Some(10));
        // Shrinking always fits, and gives the bytes back.
        assert_eq!(s.put(t, record(1, 0, 10)), Ok(PutOutcome::Replaced));
        assert_eq!(s.put(t, record(3, 140, 10)), Ok(PutOutcome::Replaced));
        assert_consistent(&s);
        assert_eq!(s.remove(&key(3)).map(|r| r.value.len()), Some(140));
        assert_eq!(s.remove(&key(3)), None);
        assert_eq!(s.bytes(), record(0, 0, 1).size() + record(0, 140, 1).size());
        assert_consistent(&s);
    }

    #[test]
    fn expires_in_order() {
        let mut s = RecordStore::new(small());
        s.put(secs(0), record(1, 1, 30)).unwrap();
        s.put(secs(0), record(2, 1, 10)).unwrap();
        s.put(secs(5), record(3, 1, 20)).unwrap();
        assert_eq!(s.next_expiry(), Some(secs(10)));
        assert_eq!(s.expire(secs(9)), 0);
        // Expired at exactly its expiry, for `get` and `expire` alike.
        assert!(s.get(secs(9), &key(2)).is_some());
        assert!(s.get(secs(10), &key(2)).is_none());
        assert_eq!(s.len(), 3, "get does not drop");
        assert_eq!(s.expire(secs(10)), 1);
        assert_eq!(s.next_expiry(), Some(secs(25)));
        assert_eq!(s.expire(secs(30)), 2);
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);
        assert_eq!(s.next_expiry(), None);
        assert_consistent(&s);
    }

    #[test]
    fn clamps_ttl() {
        let mut s = RecordStore::new(small());
        s.put(secs(0), record(1, 1, u32::MAX)).unwrap();
        assert_eq!(s.expires_at(&key(1)), Some(secs(100)));
        assert_eq!(s.next_expiry(), Some(secs(100)));
        // The record keeps the TTL it was given; only its life here is cut.
        assert_eq!(s.get(secs(99), &key(1)).unwrap().ttl_secs, u32::MAX);
        assert!(s.get(secs(100), &key(1)).is_none());
    }

    #[test]
    fn replacing_restarts_the_clock() {
        let mut s = RecordStore::new(small());
        s.put(secs(0), record(1, 1, 10)).unwrap();
        assert_eq!(s.stored_at(&key(1)), Some(secs(0)));
        s.put(secs(5), record(1, 1, 10)).unwrap();
        assert_eq!(s.stored_at(&key(1)), Some(secs(5)));
        assert_eq!(s.next_expiry(), Some(secs(15)));
        assert_consistent(&s);
        assert_eq!(s.expire(secs(10)), 0);
        assert_eq!(s.expire(secs(15)), 1);
        assert!(s.is_empty());
        assert_eq!(s.stored_at(&key(1)), None);
        // A replacement with the same expiry keeps exactly one index entry.
        s.put(secs(0), record(2, 1, 10)).unwrap();
        s.put(secs(0), record(2, 5, 10)).unwrap();
        assert_consistent(&s);
    }

    #[test]
    fn expired_records_make_room() {
        let mut s = RecordStore::new(small());
        for k in 1..=3 {
            s.put(secs(0), record(k, 100, 10)).unwrap();
        }
        assert!(matches!(
            s.put(secs(9), record(4, 1, 10)),
            Err(StoreError::Full { .. })
        ));
        assert_eq!(
            s.len(),
            3,
            "a refused put drops nothing that has not expired"
        );
        assert_eq!(s.put(secs(10), record(4, 1, 10)), Ok(PutOutcome::Inserted));
        assert_eq!(s.len(), 1);
        assert_consistent(&s);
    }
}
