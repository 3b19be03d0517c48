//! Tests of the simulated network: latency models, loss, partitions, link ordering and config
//! checks.

use super::*;

#[test]
fn latency_samples_stay_in_range() {
    let u = Latency::Uniform {
        min: Duration::from_millis(10),
        max: Duration::from_millis(20),
    };
    let e = Latency::Exponential {
        mean: Duration::from_millis(10),
        max: Duration::from_millis(200),
    };
    let mut rng = seeded(1);
    let mut sum = 0u64;
    for _ in 0..10_000 {
        let w = rng.next_u64();
        let d = u.sample(w);
        assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(20));
        let x = e.sample(w);
        assert!(x <= Duration::from_millis(200));
        sum += x.as_nanos();
    }
    let mean_ms = sum as f64 / 10_000.0 / 1e6;
    assert!(
        (8.0..12.0).contains(&mean_ms),
        "exponential mean {mean_ms} ms"
    );
    assert_eq!(
        Latency::Constant(Duration::from_millis(3)).sample(77),
        Duration::from_millis(3)
    );
}

#[test]
fn link_latency_is_symmetric_and_stable() {
    let net = Network::new(NetworkConfig::default(), 5);
    assert_eq!(net.link_latency(3, 9), net.link_latency(9, 3));
    let distinct: std::collections::BTreeSet<_> = (1..50).map(|b| net.link_latency(0, b)).collect();
    assert!(distinct.len() > 40, "links should differ");
}

#[test]
fn loss_rate_matches_configuration() {
    let config = NetworkConfig {
        loss: 0.25,
        ..Default::default()
    };
    let mut net = Network::new(config, 1);
    let lost = (0..20_000)
        .filter(|_| net.route(Instant::ZERO, 0, 1) == Route::Dropped(Drop::Loss))
        .count();
    assert!((4_500..5_500).contains(&lost), "lost {lost} of 20000");
}

#[test]
fn partitions_cut_only_across_groups() {
    let mut net = Network::new(NetworkConfig::default(), 1);
    net.partition(4, |n| (n % 2) as u16);
    assert!(net.can_talk(0, 2));
    assert!(!net.can_talk(0, 1));
    assert_eq!(
        net.route(Instant::ZERO, 1, 2),
        Route::Dropped(Drop::Partition)
    );
    net.heal();
    assert!(net.can_talk(0, 1));
}

#[test]
fn ordered_links_never_let_a_message_overtake() {
    let config = NetworkConfig {
        ordered: true,
        jitter: Latency::Uniform {
            min: Duration::ZERO,
            max: Duration::from_millis(50),
        },
        ..Default::default()
    };
    let mut net = Network::new(config, 3);
    let mut last = Instant::ZERO;
    for i in 0..1000u64 {
        match net.route(Instant::from_nanos(i * 100_000), 0, 1) {
            Route::Deliver(at, None, false) => {
                assert!(at >= last);
                last = at;
            }
            other => panic!("{other:?}"),
        }
    }
    let faulty = NetworkConfig {
        ordered: true,
        loss: 0.1,
        ..Default::default()
    };
    assert_eq!(
        faulty.validate(),
        Err(NetworkConfigError::OrderedWithFaults)
    );
}

#[test]
fn bad_configs_are_refused() {
    let bad = NetworkConfig {
        loss: 1.5,
        ..Default::default()
    };
    assert_eq!(
        bad.validate(),
        Err(NetworkConfigError::BadProbability("loss", 1.5))
    );
    let inverted = NetworkConfig {
        jitter: Latency::Uniform {
            min: Duration::from_millis(2),
            max: Duration::from_millis(1),
        },
        ..Default::default()
    };
    assert_eq!(
        inverted.validate(),
        Err(NetworkConfigError::InvertedRange("jitter"))
    );
}
