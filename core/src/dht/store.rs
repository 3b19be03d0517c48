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
#[path = "store_tests.rs"]
mod tests;
