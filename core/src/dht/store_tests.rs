//! Tests of `store.rs`: the record store's defaults, count and byte bounds, TTLs and expiry.

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
