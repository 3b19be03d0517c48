//! Tests of the routing table (`routing.rs` and its child modules).

use std::collections::HashMap;

use rand::Rng;

use super::*;
use crate::rng::seeded;
use crate::time::Duration;

/// A test contact: key from the id's hash, subnet `id / 1000` (ids from 1,000,000 have none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct T(u32);

const NO_SUBNET: u32 = 1_000_000;

impl Contact for T {
    fn key(&self) -> Key {
        Key::hash_of(&self.0.to_le_bytes())
    }
    fn subnet(&self) -> Option<Subnet> {
        (self.0 < NO_SUBNET).then_some(Subnet(u64::from(self.0 / 1000)))
    }
}

fn local() -> Key {
    Key::hash_of(b"local")
}

fn index_of(c: &T) -> u8 {
    local().bucket_index(&c.key()).unwrap()
}

/// `n` contacts of distinct subnets (ids 1000·i) that land in bucket `index`.
fn in_bucket(index: u8, n: usize) -> Vec<T> {
    (1..)
        .map(|i| T(i * 1000))
        .filter(|c| index_of(c) == index)
        .take(n)
        .collect()
}

/// `n` contacts of subnet `subnet` in bucket `index`.
fn of_subnet(subnet: u32, index: u8, n: usize) -> Vec<T> {
    let v: Vec<T> = (subnet * 1000..subnet * 1000 + 1000)
        .map(T)
        .filter(|c| index_of(c) == index)
        .take(n)
        .collect();
    assert_eq!(
        v.len(),
        n,
        "not enough ids of subnet {subnet} in bucket {index}"
    );
    v
}

fn unlimited() -> RoutingConfig {
    RoutingConfig {
        fresh_for: Duration::ZERO,
        max_per_subnet_bucket: usize::MAX,
        max_per_subnet_table: usize::MAX,
        ..RoutingConfig::default()
    }
}

fn bucket_contents(table: &RoutingTable<T>, index: u8) -> Vec<T> {
    table
        .buckets
        .get(index_depth(index))
        .map_or(Vec::new(), |_| table.held(index_depth(index)).to_vec())
}

/// A table with bucket 255 filled (k = 20) by `c[..20]`, LRS first.
fn full_far_bucket(config: RoutingConfig, extra: usize) -> (RoutingTable<T>, Vec<T>) {
    let mut table = RoutingTable::new(local(), config);
    let c = in_bucket(255, 20 + extra);
    for x in &c[..20] {
        assert_eq!(table.observe(Instant::ZERO, *x), Observed::Inserted);
    }
    (table, c)
}

#[test]
fn fresh_heads_are_not_pinged() {
    let config = RoutingConfig {
        fresh_for: Duration::from_secs(60),
        ..unlimited()
    };
    let mut table = RoutingTable::<T>::new(local(), config);
    let t0 = Instant::ZERO;
    let c = in_bucket(255, 22);
    for x in &c[..20] {
        table.observe(t0, *x);
    }
    let soon = t0 + Duration::from_secs(59);
    assert_eq!(
        table.observe(soon, c[20]),
        Observed::BucketFull { ping: None }
    );
    let later = t0 + Duration::from_secs(60);
    assert_eq!(
        table.observe(later, c[21]),
        Observed::BucketFull { ping: Some(c[0]) }
    );
    // A failed head is pinged however recently it was heard from.
    let mut table = RoutingTable::<T>::new(local(), config);
    for x in &c[..20] {
        table.observe(t0, *x);
    }
    assert_eq!(table.failed(&c[0]), Failure::Counted);
    assert_eq!(
        table.observe(soon, c[20]),
        Observed::BucketFull { ping: Some(c[0]) }
    );
}

#[test]
fn config_defaults_and_validation() {
    let d = RoutingConfig::default();
    assert_eq!(
        (
            d.k,
            d.replacements,
            d.max_per_subnet_bucket,
            d.max_per_subnet_table,
            d.max_failures
        ),
        (20, 8, 2, 10, 3)
    );
    assert_eq!(d.validate(), Ok(()));
    let bad = |f: fn(&mut RoutingConfig)| {
        let mut c = d;
        f(&mut c);
        c.validate()
    };
    assert_eq!(bad(|c| c.k = 0), Err(RoutingConfigError::ZeroK));
    assert_eq!(
        bad(|c| c.max_per_subnet_bucket = 0),
        Err(RoutingConfigError::ZeroSubnetLimit)
    );
    assert_eq!(
        bad(|c| c.max_per_subnet_table = 0),
        Err(RoutingConfigError::ZeroSubnetLimit)
    );
    assert_eq!(
        bad(|c| c.max_failures = 0),
        Err(RoutingConfigError::ZeroFailures)
    );
    assert_eq!(bad(|c| c.replacements = 0), Ok(()));
    assert!(!RoutingConfigError::ZeroK.to_string().is_empty());
}

#[test]
fn rejects_itself_and_fills_to_k() {
    let me = T(7);
    let mut selfish = RoutingTable::<T>::new(me.key(), unlimited());
    assert_eq!(selfish.observe(Instant::ZERO, me), Observed::IsSelf);
    assert!(selfish.is_empty());
    assert_eq!(selfish.failed(&me), Failure::Unknown);
    assert!(!selfish.remove(&me));

    let (mut table, c) = full_far_bucket(unlimited(), 2);
    assert_eq!(table.len(), 20);
    assert_eq!(table.bucket_len(255), 20);
    assert!(c[..20].iter().all(|x| table.contains(x)));
    assert_eq!(
        table.observe(Instant::ZERO, c[20]),
        Observed::BucketFull { ping: Some(c[0]) }
    );
    // While that ping is outstanding, another newcomer triggers no second ping.
    assert_eq!(
        table.observe(Instant::ZERO, c[21]),
        Observed::BucketFull { ping: None }
    );
    assert!(!table.contains(&c[20]) && !table.contains(&c[21]));
    assert_eq!(table.len(), 20);
}

#[test]
fn refresh_moves_to_the_mrs_end_and_resets_failures() {
    let (mut table, c) = full_far_bucket(unlimited(), 1);
    assert_eq!(table.failed(&c[0]), Failure::Counted);
    assert_eq!(table.observe(Instant::ZERO, c[0]), Observed::Refreshed);
    let mut expected = c[1..20].to_vec();
    expected.push(c[0]);
    assert_eq!(bucket_contents(&table, 255), expected);
    assert!(table.entries(0).iter().all(|&(_, failures)| failures == 0));
    // The LRS is now c[1], so that is whom a newcomer gets pinged.
    assert_eq!(
        table.observe(Instant::ZERO, c[20]),
        Observed::BucketFull { ping: Some(c[1]) }
    );
}

#[test]
fn an_answered_ping_keeps_the_old_contact() {
    let (mut table, c) = full_far_bucket(unlimited(), 2);
    table.observe(Instant::ZERO, c[20]);
    // The head answers: it stays, at the MRS end, and the newcomer stays out.
    assert_eq!(table.observe(Instant::ZERO, c[0]), Observed::Refreshed);
    assert!(table.contains(&c[0]) && !table.contains(&c[20]));
    assert_eq!(bucket_contents(&table, 255).last(), Some(&c[0]));
    // The ping is settled, so the next newcomer gets the new head pinged.
    assert_eq!(
        table.observe(Instant::ZERO, c[21]),
        Observed::BucketFull { ping: Some(c[1]) }
    );
}

#[test]
fn a_failed_ping_evicts_and_promotes_the_newest_replacement() {
    let (mut table, c) = full_far_bucket(unlimited(), 4);
    assert_eq!(
        table.observe(Instant::ZERO, c[20]),
        Observed::BucketFull { ping: Some(c[0]) }
    );
    table.observe(Instant::ZERO, c[21]);
    table.observe(Instant::ZERO, c[22]);
    // c[20] is heard again: it becomes the newest replacement.
    table.observe(Instant::ZERO, c[20]);
    // One failure of the pinged head is enough (max_failures is 3).
    assert_eq!(
        table.failed(&c[0]),
        Failure::Removed {
            replaced_by: Some(c[20])
        }
    );
    assert!(!table.contains(&c[0]));
    assert_eq!(bucket_contents(&table, 255).last(), Some(&c[20]));
    assert_eq!(table.len(), 20);
    assert_eq!(table.buckets[0].replacements, vec![c[21], c[22]]);
    // The pending mark went with the evicted head.
    assert_eq!(
        table.observe(Instant::ZERO, c[23]),
        Observed::BucketFull { ping: Some(c[1]) }
    );
}

#[test]
fn the_replacement_cache_keeps_the_newest() {
    let config = RoutingConfig {
        replacements: 2,
        ..unlimited()
    };
    let (mut table, c) = full_far_bucket(config, 3);
    for x in &c[20..23] {
        table.observe(Instant::ZERO, *x);
    }
    assert_eq!(table.buckets[0].replacements, vec![c[21], c[22]]);
    assert!(table.remove(&c[5]));
    assert!(table.remove(&c[6]));
    assert!(table.remove(&c[7]));
    assert!(table.contains(&c[22]) && table.contains(&c[21]));
    assert!(!table.contains(&c[20]));
    assert_eq!(table.len(), 19);
    assert!(!table.remove(&c[7]));

    let none = RoutingConfig {
        replacements: 0,
        ..unlimited()
    };
    let (mut table, c) = full_far_bucket(none, 1);
    table.observe(Instant::ZERO, c[20]);
    assert!(table.remove(&c[0]));
    assert!(!table.contains(&c[20]));
    assert_eq!(table.buckets[0].replacements.capacity(), 0);
}

#[test]
fn consecutive_failures_drop_a_contact_and_a_success_resets_them() {
    let mut table = RoutingTable::<T>::new(local(), unlimited());
    let c = in_bucket(254, 1)[0];
    table.observe(Instant::ZERO, c);
    assert_eq!(table.failed(&c), Failure::Counted);
    assert_eq!(table.failed(&c), Failure::Counted);
    table.observe(Instant::ZERO, c);
    assert_eq!(table.failed(&c), Failure::Counted);
    assert_eq!(table.failed(&c), Failure::Counted);
    assert_eq!(table.failed(&c), Failure::Removed { replaced_by: None });
    assert_eq!(table.failed(&c), Failure::Unknown);
    assert!(table.is_empty());
    // Only the pinged head is evicted at once; others count while a ping is pending.
    let (mut table, c) = full_far_bucket(unlimited(), 1);
    table.observe(Instant::ZERO, c[20]);
    assert_eq!(table.failed(&c[3]), Failure::Counted);
    assert_eq!(table.failed(&c[3]), Failure::Counted);
    assert_eq!(
        table.failed(&c[3]),
        Failure::Removed {
            replaced_by: Some(c[20])
        }
    );
    assert!(table.contains(&c[0]));
}

#[test]
fn failures_of_strangers_and_replacements_are_unknown() {
    let (mut table, c) = full_far_bucket(unlimited(), 2);
    assert_eq!(table.failed(&c[21]), Failure::Unknown);
    table.observe(Instant::ZERO, c[20]);
    // A replacement that fails is dropped from the cache: it would make a poor replacement.
    assert_eq!(table.failed(&c[20]), Failure::Unknown);
    assert!(table.buckets[0].replacements.is_empty());
    assert_eq!(table.failed(&c[0]), Failure::Removed { replaced_by: None });
    assert_eq!(table.len(), 19);
}

#[test]
fn subnet_limits_hold_per_bucket_and_per_table() {
    let mut table = RoutingTable::<T>::new(local(), RoutingConfig::default());
    let t = Instant::ZERO;
    let same = of_subnet(5, 255, 3);
    assert_eq!(table.observe(t, same[0]), Observed::Inserted);
    assert_eq!(table.observe(t, same[1]), Observed::Inserted);
    assert_eq!(table.observe(t, same[2]), Observed::SubnetLimit);
    assert!(table.buckets[0].replacements.is_empty());
    // Spread over buckets, one subnet stops at 10 in the table, and at 2 in any bucket.
    let mut inserted = 0;
    for c in (7000..8000).map(T) {
        if table.observe(t, c) == Observed::Inserted {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 10);
    let mut per_bucket = HashMap::new();
    for c in table.iter().filter(|c| c.0 / 1000 == 7) {
        *per_bucket.entry(index_of(c)).or_insert(0) += 1;
    }
    assert!(per_bucket.values().all(|&n| n <= 2));
    // Freed room is usable again.
    let member = *table.iter().find(|c| c.0 / 1000 == 7).unwrap();
    assert!(table.remove(&member));
    assert_eq!(table.observe(t, member), Observed::Inserted);
    // Contacts without a subnet are exempt.
    let free: Vec<T> = (NO_SUBNET..NO_SUBNET + 200)
        .map(T)
        .filter(|c| index_of(c) == 255)
        .take(5)
        .collect();
    for c in free {
        assert_eq!(table.observe(t, c), Observed::Inserted);
    }
}

#[test]
fn a_full_bucket_checks_the_subnet_limit_first() {
    let config = RoutingConfig {
        max_per_subnet_bucket: 1,
        ..unlimited()
    };
    let (mut table, c) = full_far_bucket(config, 0);
    let twin = of_subnet(c[0].0 / 1000, 255, 2)
        .into_iter()
        .find(|x| *x != c[0])
        .unwrap();
    assert_eq!(table.observe(Instant::ZERO, twin), Observed::SubnetLimit);
    assert!(table.buckets[0].replacements.is_empty());
    assert!(!table.buckets[0].pinging);
}

#[test]
fn promotion_skips_replacements_over_the_subnet_limit() {
    let config = RoutingConfig {
        k: 2,
        max_per_subnet_bucket: 1,
        max_per_subnet_table: 1,
        fresh_for: Duration::ZERO,
        ..RoutingConfig::default()
    };
    let mut table = RoutingTable::<T>::new(local(), config);
    let t = Instant::ZERO;
    let far = in_bucket(255, 4);
    table.observe(t, far[0]);
    table.observe(t, far[1]);
    // Both newcomers fit the limits now and wait in the cache, far[3] the newest.
    table.observe(t, far[2]);
    table.observe(t, far[3]);
    // far[3]'s subnet then gets its one table-wide slot elsewhere.
    let rival = of_subnet(far[3].0 / 1000, 254, 1)[0];
    assert_eq!(table.observe(t, rival), Observed::Inserted);
    assert_eq!(
        table.failed(&far[0]),
        Failure::Removed {
            replaced_by: Some(far[2])
        }
    );
    assert_eq!(table.buckets[0].replacements, vec![far[3]]);
    assert!(table.remove(&far[1]));
    assert!(!table.contains(&far[3]));
    assert_eq!(table.bucket_len(255), 1);
}

#[test]
fn the_bucket_vector_shrinks_when_the_deepest_bucket_empties() {
    let config = RoutingConfig {
        k: 1,
        max_per_subnet_table: 1,
        fresh_for: Duration::ZERO,
        ..RoutingConfig::default()
    };
    let mut table = RoutingTable::<T>::new(local(), config);
    let t = Instant::ZERO;
    let deep = in_bucket(250, 2);
    table.observe(t, deep[0]);
    assert_eq!(
        table.observe(t, deep[1]),
        Observed::BucketFull {
            ping: Some(deep[0])
        }
    );
    let rival = of_subnet(deep[1].0 / 1000, 255, 1)[0];
    assert_eq!(table.observe(t, rival), Observed::Inserted);
    assert_eq!(table.buckets.len(), 6);
    // The replacement no longer fits, so bucket 250 empties but remembers it.
    assert_eq!(
        table.failed(&deep[0]),
        Failure::Removed { replaced_by: None }
    );
    assert_eq!(table.buckets.len(), 6);
    assert_eq!(table.bucket_len(250), 0);
    // Once the replacement goes too, only bucket 255 is kept.
    assert_eq!(table.failed(&deep[1]), Failure::Unknown);
    assert_eq!(table.buckets.len(), 1);
    let stale: Vec<u8> = table.stale_buckets(t, Duration::ZERO).collect();
    assert_eq!(stale, vec![255]);
}

/// Random tables: mixed bucket fill, some subnets, some failures.
fn random_table(seed: u64, contacts: usize) -> RoutingTable<T> {
    let mut rng = seeded(seed);
    let config = RoutingConfig {
        k: rng.random_range(1..=20),
        fresh_for: Duration::ZERO,
        ..RoutingConfig::default()
    };
    let local = Key::from_bytes(rng.random());
    let mut table = RoutingTable::new(local, config);
    for _ in 0..contacts {
        let c = if rng.random_bool(0.5) {
            T(rng.random_range(0..NO_SUBNET))
        } else {
            T(rng.random_range(NO_SUBNET..u32::MAX))
        };
        table.observe(Instant::ZERO, c);
        if rng.random_bool(0.1) {
            table.failed(&c);
        }
    }
    table
}

#[test]
fn closest_matches_brute_force() {
    let mut rng = seeded(99);
    let mut out = Vec::new();
    for seed in 0..40 {
        let table = random_table(seed, [0, 1, 5, 50, 500, 3000][seed as usize % 6]);
        let all: Vec<T> = table.iter().copied().collect();
        let mut targets: Vec<Key> = (0..15).map(|_| Key::from_bytes(rng.random())).collect();
        targets.push(*table.local());
        targets.extend(all.iter().take(3).map(|c| c.key()));
        // Targets that share long prefixes with us exercise the deep-bucket ordering.
        for _ in 0..5 {
            let index = rng.random_range(0..=255u8);
            targets.push(table.random_key_in_bucket(index, &mut rng));
        }
        for target in &targets {
            let mut brute = all.clone();
            brute.sort_by_key(|c| c.key().distance(target));
            for count in [0, 1, 3, 20, 57, usize::MAX] {
                table.closest(target, count, &mut out);
                let expect = &brute[..count.min(brute.len())];
                assert_eq!(out, expect, "seed {seed} count {count}");
            }
        }
    }
}

#[test]
fn closest_clears_its_output() {
    let table = RoutingTable::<T>::new(local(), unlimited());
    let mut out = vec![T(1), T(2)];
    table.closest(&local(), 5, &mut out);
    assert!(out.is_empty());
}

#[test]
fn random_keys_land_in_their_bucket() {
    let mut rng = seeded(1);
    for local in [local(), Key::default(), Key::from_bytes([0xff; 32])] {
        let table = RoutingTable::<T>::new(local, unlimited());
        for index in 0..=255u8 {
            let mut seen = Vec::new();
            for _ in 0..8 {
                let key = table.random_key_in_bucket(index, &mut rng);
                assert_eq!(local.bucket_index(&key), Some(index));
                seen.push(key);
            }
            // The bits below the top one are random: buckets above 8 have room to differ.
            if index >= 8 {
                seen.sort();
                seen.dedup();
                assert!(seen.len() > 1, "bucket {index} gave one key");
            }
        }
    }
}

#[test]
fn stale_buckets_run_from_the_farthest_to_the_nearest_contact() {
    let mut table = RoutingTable::<T>::new(local(), unlimited());
    let t0 = Instant::from_nanos(1_000);
    let idle = Duration::from_secs(60);
    assert_eq!(table.stale_buckets(t0, Duration::ZERO).count(), 0);
    table.observe(t0, in_bucket(255, 1)[0]);
    table.observe(t0, in_bucket(252, 1)[0]);
    // Every bucket in range counts as stale for an idle time of zero (a join refreshes all).
    let all: Vec<u8> = table.stale_buckets(t0, Duration::ZERO).collect();
    assert_eq!(all, vec![255, 254, 253, 252]);
    assert_eq!(
        table
            .stale_buckets(t0 + Duration::from_secs(30), idle)
            .count(),
        0
    );
    let later = t0 + idle;
    table.touch_bucket(later, 254);
    let stale: Vec<u8> = table.stale_buckets(later, idle).collect();
    assert_eq!(stale, vec![255, 253, 252]);
    // A refreshed contact touches its bucket too.
    let near = in_bucket(252, 1)[0];
    assert_eq!(table.observe(later, near), Observed::Refreshed);
    let stale: Vec<u8> = table.stale_buckets(later, idle).collect();
    assert_eq!(stale, vec![255, 253]);
    // Without the nearest contact, the range ends at bucket 255's.
    assert!(table.remove(&near));
    let stale: Vec<u8> = table.stale_buckets(later, idle).collect();
    assert_eq!(stale, vec![255]);
    // Touching a bucket out of range is harmless.
    table.touch_bucket(later, 3);
}

#[test]
fn memory_stays_small() {
    assert_eq!(core::mem::size_of::<Meta>(), 8);
    let mut table = RoutingTable::<T>::new(local(), unlimited());
    let empty = table.memory_bytes();
    assert_eq!(empty, core::mem::size_of::<RoutingTable<T>>());
    // Contacts without a subnet cost no subnet counters.
    let free: Vec<T> = (NO_SUBNET..NO_SUBNET + 300).map(T).collect();
    for c in &free {
        table.observe(Instant::ZERO, *c);
    }
    assert!(table.subnets.is_none());
    let depth = table.buckets.len();
    assert!(depth < 20, "300 contacts should not reach depth {depth}");
    let bucket = core::mem::size_of::<Bucket<T>>();
    // Per bucket in use: its header, k slots of contact and metadata, a replacement cache.
    let slot = core::mem::size_of::<T>() + core::mem::size_of::<Meta>();
    let k = table.config.k;
    let bound = empty + depth * (bucket + k * slot + 8 * core::mem::size_of::<T>());
    assert!(table.memory_bytes() <= bound);
    assert!(table.memory_bytes() >= empty + depth * bucket + table.len() * slot);
    // The deep end shrinks back as contacts leave.
    for c in &free {
        table.remove(c);
    }
    assert!(table.is_empty());
    assert!(table.buckets.is_empty());
    // The first contact with a subnet allocates the counters.
    table.observe(Instant::ZERO, T(5));
    assert!(table.subnets.is_some());
}

/// Checks every structural invariant of `table`.
fn check_invariants(table: &RoutingTable<T>) {
    let config = table.config;
    let all: Vec<T> = table.iter().copied().collect();
    assert_eq!(all.len(), table.len());
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len(), "duplicate contacts");
    let mut per_table: HashMap<Subnet, usize> = HashMap::new();
    for (d, b) in table.buckets.iter().enumerate() {
        assert!(b.len as usize <= config.k);
        assert!(b.replacements.len() <= config.replacements);
        let mut per_bucket: HashMap<Subnet, usize> = HashMap::new();
        for (contact, failures) in table.entries(d) {
            assert_eq!(depth(table.local(), &contact), Some(d));
            assert!(failures < config.max_failures);
            if let Some(s) = contact.subnet() {
                *per_bucket.entry(s).or_default() += 1;
                *per_table.entry(s).or_default() += 1;
            }
        }
        assert!(per_bucket
            .values()
            .all(|&n| n <= config.max_per_subnet_bucket));
        for r in &b.replacements {
            assert_eq!(depth(table.local(), r), Some(d));
            assert!(
                table.position(d, r).is_none(),
                "replacement also in the bucket"
            );
        }
        let mut reps = b.replacements.clone();
        reps.sort();
        reps.dedup();
        assert_eq!(reps.len(), b.replacements.len(), "duplicate replacements");
        assert!(!b.pinging || b.len != 0);
    }
    assert_eq!(table.contacts.len(), table.buckets.len() * config.k);
    assert_eq!(table.meta.len(), table.contacts.len());
    assert!(per_table
        .values()
        .all(|&n| n <= config.max_per_subnet_table));
    // The counters bound every subnet's count from above.
    for (s, n) in &per_table {
        let bound = table.subnets.as_ref().map_or(0, |c| c.upper_bound(*s));
        assert!(bound >= *n);
    }
    assert!(table
        .buckets
        .last()
        .is_none_or(|b| b.len != 0 || !b.replacements.is_empty()));
}

#[test]
fn random_operations_keep_the_invariants() {
    for seed in 0..40 {
        let mut rng = seeded(seed);
        let config = RoutingConfig {
            k: rng.random_range(1..=5),
            replacements: rng.random_range(0..=3),
            max_per_subnet_bucket: rng.random_range(1..=3),
            max_per_subnet_table: rng.random_range(1..=6),
            max_failures: rng.random_range(1..=3),
            fresh_for: Duration::ZERO,
        };
        let mut table = RoutingTable::<T>::new(local(), config);
        // Contacts pinged and not yet reported, per bucket.
        let mut pinged: HashMap<u8, T> = HashMap::new();
        let mut now = Instant::ZERO;
        for _ in 0..2000 {
            // Ids below 20,000 share 20 subnets; higher ones have none.
            let c = if rng.random_bool(0.6) {
                T(rng.random_range(0..20_000))
            } else {
                T(NO_SUBNET + rng.random_range(0..300))
            };
            let before = table.len();
            match rng.random_range(0..10) {
                0..=4 => match table.observe(now, c) {
                    Observed::Inserted => assert_eq!(table.len(), before + 1),
                    Observed::BucketFull { ping } => {
                        assert_eq!(table.bucket_len(index_of(&c)), config.k);
                        match ping {
                            Some(p) => {
                                assert_eq!(bucket_contents(&table, index_of(&c))[0], p);
                                assert!(pinged.insert(index_of(&c), p).is_none());
                            }
                            None => assert!(pinged.contains_key(&index_of(&c))),
                        }
                    }
                    Observed::Refreshed => {
                        if pinged.get(&index_of(&c)) == Some(&c) {
                            pinged.remove(&index_of(&c));
                        }
                    }
                    Observed::SubnetLimit => assert!(!table.contains(&c)),
                    Observed::IsSelf => unreachable!(),
                },
                5..=6 => {
                    // Answer or fail an outstanding ping.
                    let Some((&index, &p)) = pinged.iter().next() else {
                        continue;
                    };
                    pinged.remove(&index);
                    if rng.random_bool(0.5) {
                        assert_eq!(table.observe(now, p), Observed::Refreshed);
                    } else {
                        assert!(matches!(table.failed(&p), Failure::Removed { .. }));
                        assert!(!table.contains(&p));
                    }
                }
                7..=8 => {
                    let held = table.contains(&c);
                    match table.failed(&c) {
                        Failure::Unknown => assert!(!held),
                        Failure::Counted => assert!(table.contains(&c)),
                        Failure::Removed { replaced_by } => {
                            assert!(held && !table.contains(&c));
                            if pinged.get(&index_of(&c)) == Some(&c) {
                                pinged.remove(&index_of(&c));
                            }
                            assert_eq!(
                                table.len(),
                                before - 1 + usize::from(replaced_by.is_some())
                            );
                        }
                    }
                }
                _ => {
                    let held = table.contains(&c);
                    assert_eq!(table.remove(&c), held);
                    if pinged.get(&index_of(&c)) == Some(&c) {
                        pinged.remove(&index_of(&c));
                    }
                }
            }
            now += Duration::from_millis(1);
            check_invariants(&table);
            // The table's pending marks are exactly the pings handed out and not settled.
            for (d, b) in table.buckets.iter().enumerate() {
                let index = (255 - d) as u8;
                assert_eq!(b.pinging, pinged.contains_key(&index), "seed {seed}");
                if b.pinging {
                    assert_eq!(table.held(d)[0], pinged[&index]);
                }
            }
            assert!(pinged
                .keys()
                .all(|&i| table.buckets.get(index_depth(i)).is_some_and(|b| b.pinging)));
        }
    }
}
