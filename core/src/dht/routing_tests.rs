use super::*;
use crate::rng::seeded;

/// A test contact: key from the id's hash, subnet from `id / 1000` (ids ≥ 1,000,000 have none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct T(u32);

impl Contact for T {
    fn key(&self) -> Key {
        Key::hash_of(&self.0.to_le_bytes())
    }
    fn subnet(&self) -> Option<Subnet> {
        (self.0 < 1_000_000).then_some(Subnet(u64::from(self.0 / 1000)))
    }
}

fn local() -> Key {
    Key::hash_of(b"local")
}

/// Distinct-subnet contacts (id = 1000·n) that land in bucket `index` of `local()`.
fn in_bucket(index: u8, n: usize) -> Vec<T> {
    (1..)
        .map(|i| T(i * 1000))
        .filter(|c| local().bucket_index(&c.key()) == Some(index))
        .take(n)
        .collect()
}

fn unlimited() -> RoutingConfig {
    RoutingConfig {
        max_per_subnet_bucket: usize::MAX,
        max_per_subnet_table: usize::MAX,
        fresh_for: Duration::ZERO,
        ..RoutingConfig::default()
    }
}

#[test]
fn rejects_itself_and_fills_to_k() {
    let mut table = RoutingTable::<T>::new(local(), unlimited());
    let t = Instant::ZERO;
    let me = T(0);
    let mut selfish = RoutingTable::<T>::new(me.key(), unlimited());
    assert_eq!(selfish.observe(t, me), Observed::IsSelf);
    let contacts = in_bucket(255, 21);
    for c in &contacts[..20] {
        assert_eq!(table.observe(t, *c), Observed::Inserted);
    }
    assert_eq!(table.len(), 20);
    assert_eq!(table.bucket_len(255), 20);
    assert_eq!(
        table.observe(t, contacts[20]),
        Observed::BucketFull {
            ping: Some(contacts[0])
        }
    );
    // A second newcomer while the ping is outstanding: no second ping.
    let more = in_bucket(255, 22);
    assert_eq!(
        table.observe(t, more[21]),
        Observed::BucketFull { ping: None }
    );
    assert!(!table.contains(&contacts[20]));
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
}

#[test]
fn answered_ping_keeps_the_old_contact_and_failed_ping_evicts_it() {
    let mut table = RoutingTable::<T>::new(local(), unlimited());
    let t = Instant::ZERO;
    let c = in_bucket(255, 23);
    for x in &c[..20] {
        table.observe(t, *x);
    }
    table.observe(t, c[20]);
    // The head answers: it moves to the tail, newcomer stays out.
    assert_eq!(table.observe(t, c[0]), Observed::Refreshed);
    assert!(!table.contains(&c[20]));
    // Next newcomer pings the new head, c[1]; it fails and is evicted at once.
    table.observe(t, c[21]);
    assert_eq!(
        table.failed(&c[1]),
        Failure::Removed {
            replaced_by: Some(c[21])
        }
    );
    assert!(table.contains(&c[21]));
    assert!(!table.contains(&c[1]));
    assert_eq!(table.len(), 20);
}

#[test]
fn repeated_failures_drop_a_contact_and_success_resets() {
    let mut table = RoutingTable::<T>::new(local(), unlimited());
    let t = Instant::ZERO;
    let c = in_bucket(254, 1)[0];
    table.observe(t, c);
    assert_eq!(table.failed(&c), Failure::Counted);
    assert_eq!(table.failed(&c), Failure::Counted);
    table.observe(t, c);
    assert_eq!(table.failed(&c), Failure::Counted);
    assert_eq!(table.failed(&c), Failure::Counted);
    assert_eq!(table.failed(&c), Failure::Removed { replaced_by: None });
    assert_eq!(table.failed(&c), Failure::Unknown);
    assert!(table.is_empty());
}

#[test]
fn subnet_limits_hold_and_exempt_addressless_contacts() {
    let config = RoutingConfig::default(); // 2 per bucket, 10 per table
    let mut table = RoutingTable::<T>::new(local(), config);
    let t = Instant::ZERO;
    // Same subnet (ids 5000..5999), all in the far bucket.
    let same: Vec<T> = (5000..6000)
        .map(T)
        .filter(|c| local().bucket_index(&c.key()) == Some(255))
        .take(3)
        .collect();
    assert_eq!(table.observe(t, same[0]), Observed::Inserted);
    assert_eq!(table.observe(t, same[1]), Observed::Inserted);
    assert_eq!(table.observe(t, same[2]), Observed::SubnetLimit);
    // Table-wide: one subnet spread over buckets stops at 10.
    let spread: Vec<T> = (7000..8000).map(T).collect();
    let mut inserted = 0;
    for c in spread {
        if table.observe(t, c) == Observed::Inserted {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 10);
    // No subnet: no limit.
    let free: Vec<T> = (1_000_000..1_000_100)
        .map(T)
        .filter(|c| local().bucket_index(&c.key()) == Some(255))
        .take(5)
        .collect();
    for c in free {
        assert_eq!(table.observe(t, c), Observed::Inserted);
    }
}

#[test]
fn closest_matches_brute_force() {
    for seed in 0..20 {
        let mut rng = seeded(seed);
        let mut table = RoutingTable::<T>::new(local(), unlimited());
        for _ in 0..2000 {
            table.observe(Instant::ZERO, T(rng.random_range(0..100_000)));
        }
        let all: Vec<T> = table.iter().copied().collect();
        assert_eq!(all.len(), table.len());
        let mut out = Vec::new();
        for _ in 0..20 {
            let target = Key::from_bytes(rng.random());
            for count in [1, 7, 20, 1000] {
                table.closest(&target, count, &mut out);
                let mut brute = all.clone();
                brute.sort_by_key(|c| c.key().distance(&target));
                brute.truncate(count);
                assert_eq!(out, brute, "seed {seed} count {count}");
            }
        }
        // Our own key: the nearest bucket first.
        table.closest(&local(), 5, &mut out);
        let mut brute = all.clone();
        brute.sort_by_key(|c| c.key().distance(&local()));
        brute.truncate(5);
        assert_eq!(out, brute);
    }
}

#[test]
fn random_keys_land_in_their_bucket() {
    let table = RoutingTable::<T>::new(local(), unlimited());
    let mut rng = seeded(1);
    for index in [255u8, 254, 200, 100, 1, 0] {
        for _ in 0..20 {
            let key = table.random_key_in_bucket(index, &mut rng);
            assert_eq!(local().bucket_index(&key), Some(index));
        }
    }
}

#[test]
fn stale_buckets_stop_at_the_nearest_contact() {
    let mut table = RoutingTable::<T>::new(local(), unlimited());
    let t0 = Instant::ZERO;
    let idle = Duration::from_secs(60);
    table.observe(t0, in_bucket(255, 1)[0]);
    table.observe(t0, in_bucket(252, 1)[0]);
    assert_eq!(table.stale_buckets(t0, idle).count(), 0);
    let later = t0 + idle;
    let stale: Vec<u8> = table.stale_buckets(later, idle).collect();
    assert_eq!(stale, vec![255, 254, 253, 252]);
    table.touch_bucket(later, 254);
    let stale: Vec<u8> = table.stale_buckets(later, idle).collect();
    assert_eq!(stale, vec![255, 253, 252]);
}

#[test]
fn random_operations_keep_the_invariants() {
    for seed in 0..30 {
        let mut rng = seeded(seed);
        let config = RoutingConfig {
            k: 4,
            replacements: 3,
            max_per_subnet_bucket: 2,
            max_per_subnet_table: 5,
            max_failures: 2,
            fresh_for: Duration::from_millis(500),
        };
        let mut table = RoutingTable::<T>::new(local(), config);
        let mut now = Instant::ZERO;
        for _ in 0..3000 {
            // Ids below 20,000 share 20 subnets; higher ones have none.
            let c = if rng.random_bool(0.5) {
                T(rng.random_range(0..20_000))
            } else {
                T(1_000_000 + rng.random_range(0..500))
            };
            match rng.random_range(0..4) {
                0 | 1 => {
                    table.observe(now, c);
                }
                2 => {
                    table.failed(&c);
                }
                _ => {
                    table.remove(&c);
                }
            }
            now += Duration::from_millis(1);
            let all: Vec<T> = table.iter().copied().collect();
            assert_eq!(all.len(), table.len());
            let mut dedup = all.clone();
            dedup.sort_by_key(|c| c.0);
            dedup.dedup();
            assert_eq!(dedup.len(), all.len(), "duplicates");
            for index in 0..=255u8 {
                assert!(table.bucket_len(index) <= config.k);
            }
            for (d, b) in table.buckets.iter().enumerate() {
                let mut per_subnet = std::collections::HashMap::new();
                for e in &b.entries {
                    assert_eq!(depth(&local(), &e.contact.key()), Some(d));
                    if let Some(s) = e.contact.subnet() {
                        *per_subnet.entry(s).or_insert(0) += 1;
                    }
                }
                assert!(per_subnet
                    .values()
                    .all(|&n| n <= config.max_per_subnet_bucket));
            }
            let mut table_wide = std::collections::HashMap::new();
            for c in &all {
                if let Some(s) = c.subnet() {
                    *table_wide.entry(s).or_insert(0) += 1;
                }
            }
            assert!(table_wide
                .values()
                .all(|&n| n <= config.max_per_subnet_table));
        }
    }
}
