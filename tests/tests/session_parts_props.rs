//! Property tests for the parts a session is built from: the handshake payload codec, per-frame
//! LZ4 compression and the token bucket that rate-limits a peer.

use bytes::BytesMut;
use proptest::prelude::*;
use starling_core::rate::TokenBucket;
use starling_core::session::payload::{Capabilities, HandshakePayload, NetworkId, MAX_PROTOCOLS};
use starling_core::session::{compress_into, decompress};
use starling_core::time::Instant;
use starling_core::wire::ProtocolId;

fn bytes_n<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    prop::collection::vec(any::<u8>(), N).prop_map(|v| {
        let mut out = [0u8; N];
        out.copy_from_slice(&v);
        out
    })
}

fn payload() -> impl Strategy<Value = HandshakePayload> {
    (
        any::<u16>(),
        bytes_n::<32>(),
        bytes_n::<32>(),
        bytes_n::<64>(),
        prop::collection::vec(any::<u16>(), 0..=MAX_PROTOCOLS),
        any::<u32>(),
        any::<bool>(),
        any::<Option<u16>>(),
    )
        .prop_map(
            |(
                version,
                network,
                identity_key,
                signature,
                protocols,
                max_frame_len,
                compression,
                listen_port,
            )| {
                HandshakePayload {
                    version,
                    network_id: NetworkId(network),
                    identity_key,
                    signature,
                    capabilities: Capabilities {
                        protocols: protocols.into_iter().map(ProtocolId).collect(),
                        max_frame_len,
                        compression,
                        listen_port,
                    },
                }
            },
        )
}

fn encode(payload: &HandshakePayload) -> Vec<u8> {
    let mut out = Vec::new();
    payload.encode(&mut out);
    out
}

/// Data LZ4 finds little in (random bytes) and a lot in (a short pattern repeated).
fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..4096),
        (prop::collection::vec(any::<u8>(), 1..16), 0usize..2000)
            .prop_map(|(pattern, times)| pattern.repeat(times)),
    ]
}

fn compressed(input: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    compress_into(input, &mut out);
    out.to_vec()
}

/// One step of a token-bucket schedule.
#[derive(Clone, Debug)]
enum Step {
    /// Move the clock forward by this many nanoseconds.
    Advance(u64),
    /// Move the clock back by this many nanoseconds (a caller's clock jittering).
    Rewind(u64),
    /// Try to take this many tokens.
    Take(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u64..2_000_000).prop_map(Step::Advance),
        2 => (0u64..20_000_000_000).prop_map(Step::Advance),
        1 => any::<u64>().prop_map(Step::Advance),
        1 => (0u64..5_000_000_000).prop_map(Step::Rewind),
        6 => (0u64..8).prop_map(Step::Take),
        1 => any::<u64>().prop_map(Step::Take),
    ]
}

fn rate() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..10, 0u64..1_000_000, any::<u64>()]
}

proptest! {
    #[test]
    fn payload_round_trips(payload in payload()) {
        let bytes = encode(&payload);
        prop_assert_eq!(bytes.len(), payload.encoded_len());
        prop_assert_eq!(HandshakePayload::peek_version(&bytes), Some(payload.version));
        prop_assert_eq!(HandshakePayload::decode(&bytes), Ok(payload));
    }

    #[test]
    fn payload_round_trips_with_any_extension(
        payload in payload(),
        extension in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = encode(&payload);
        bytes.extend_from_slice(&extension);
        prop_assert_eq!(HandshakePayload::decode(&bytes), Ok(payload));
    }

    #[test]
    fn payload_decode_of_arbitrary_bytes_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        if let Ok(payload) = HandshakePayload::decode(&bytes) {
            prop_assert!(payload.capabilities.protocols.len() <= MAX_PROTOCOLS);
            prop_assert_eq!(HandshakePayload::decode(&encode(&payload)), Ok(payload));
        }
    }

    #[test]
    fn payload_decode_of_a_corrupted_encoding_never_panics(
        payload in payload(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&payload);
        for (at, mask) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(decoded) = HandshakePayload::decode(&bytes) {
            prop_assert_eq!(HandshakePayload::decode(&encode(&decoded)), Ok(decoded));
        }
    }

    #[test]
    fn compression_round_trips(input in data()) {
        let out = compressed(&input);
        let back = decompress(&out, input.len());
        prop_assert_eq!(back.as_deref(), Ok(input.as_slice()));
    }

    #[test]
    fn decompress_of_arbitrary_bytes_never_panics_nor_exceeds_max(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        max_len in prop_oneof![0usize..64, 0usize..100_000],
    ) {
        if let Ok(out) = decompress(&bytes, max_len) {
            prop_assert!(out.len() <= max_len);
        }
    }

    #[test]
    fn decompress_of_corrupted_compressed_data_never_panics_nor_exceeds_max(
        input in data(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        max_len in 0usize..10_000,
    ) {
        let mut bytes = compressed(&input);
        for (at, mask) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        if let Ok(out) = decompress(&bytes, max_len) {
            prop_assert!(out.len() <= max_len);
        }
    }

    #[test]
    fn token_bucket_never_gives_more_than_burst_plus_refill(
        rate in rate(),
        burst in prop_oneof![0u64..20, any::<u64>()],
        start in prop_oneof![Just(0u64), any::<u64>()],
        steps in prop::collection::vec(step(), 0..200),
    ) {
        let start = Instant::from_nanos(start);
        let mut bucket = TokenBucket::new(rate, burst, start);
        let mut now = start;
        // The latest instant seen: rewinding the clock must not earn tokens twice.
        let mut latest = start;
        let mut taken: u128 = 0;
        for step in steps {
            match step {
                Step::Advance(ns) => {
                    now = Instant::from_nanos(now.as_nanos().saturating_add(ns));
                }
                Step::Rewind(ns) => {
                    now = Instant::from_nanos(now.as_nanos().saturating_sub(ns));
                }
                Step::Take(n) => {
                    let available = bucket.available(now);
                    prop_assert!(available <= burst);
                    let took = bucket.try_take(now, n);
                    // try_take agrees with available, and a refusal takes nothing.
                    prop_assert_eq!(took, n <= available);
                    let left = bucket.available(now);
                    if took {
                        taken += u128::from(n);
                        prop_assert_eq!(left, available - n);
                    } else {
                        prop_assert_eq!(left, available);
                    }
                }
            }
            latest = latest.max(now);
            // Exact, in nano-tokens: taken ≤ burst + rate × elapsed seconds.
            let elapsed_ns = u128::from(latest.as_nanos() - start.as_nanos());
            let bound = (u128::from(burst) * 1_000_000_000)
                .saturating_add(u128::from(rate) * elapsed_ns);
            prop_assert!(
                taken * 1_000_000_000 <= bound,
                "took {} tokens; burst {} rate {} over {} ns",
                taken, burst, rate, elapsed_ns
            );
        }
    }
}
