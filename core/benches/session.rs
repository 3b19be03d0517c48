//! Session cost against bare `snow`: handshakes, and the transport's encrypt and decrypt paths.
//!
//! Every group pairs our [`Session`] with the same work done by bare `snow` states for the same
//! Noise pattern (`Noise_XX_25519_ChaChaPoly_BLAKE2s`), measured side by side in one run:
//!
//! - `handshake/full`: build an initiator and a responder `Session` and shuttle their
//!   `poll_transmit` bytes until both are established (three XX messages, payload encoding, two
//!   ed25519 signature checks, event draining). `handshake/raw_snow`: the same three messages
//!   between bare `HandshakeState`s with empty payloads, then `into_transport_mode`. Throughput
//!   is one element per iteration, so criterion prints handshakes per second.
//! - `encrypt/{64,1024,65536}`: `Session::send` of a frame with a body of that many bytes, then
//!   draining `poll_transmit`, on an established initiator. `encrypt/raw_snow/{size}`: bare
//!   `TransportState::write_message` of the same payload into a reused buffer, split like ours
//!   into Noise messages of at most 65,519 bytes of plaintext (so 65,536 bytes are two messages
//!   on both sides). Throughput is the payload size.
//! - `decrypt/{size}`: `Session::handle_bytes` of one frame's pre-encrypted bytes, then
//!   `poll_event` for the frame, on an established responder. `decrypt/raw_snow/{size}`: bare
//!   `TransportState::read_message` of the same split into a reused buffer. A receive nonce only
//!   moves forward, so each iteration gets fresh ciphertext, made in untimed setup
//!   (`iter_batched`); the received frame and the ciphertext are dropped outside the timing.
//!
//! Compression is switched off (`SessionConfig::compression = false`) so the transport groups
//! measure framing and encryption, not LZ4; the inbound rate limits are lifted so the decrypt
//! loop never drops a frame.
//!
//! **Reading the ratio.** For each size, `ours / raw = raw_time / our_time` is our throughput
//! as a fraction of bare snow's: 1.0 means the session layer is free, 0.85 means 15 % less
//! throughput than bare snow (about 18 % more time per message). For handshakes the same ratio shows what the identity proof (signature
//! checks), the payload and session set-up cost. `scripts/bench-ratio.py <criterion dir>` prints
//! the medians and these ratios.
//!
//! ```text
//! CARGO_TARGET_DIR=/tmp/bench-target cargo bench -p starling-core --bench session
//! python3 scripts/bench-ratio.py /tmp/bench-target/criterion
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use snow::{HandshakeState, TransportState};
use starling_core::session::{NodeKeys, RateLimits, Session, SessionConfig, SessionEvent};
use starling_core::time::Instant;
use starling_core::wire::{Frame, ProtocolId};

/// The session's Noise pattern (not exported by the crate).
const NOISE_PATTERN: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// Largest Noise message, and the plaintext that fits in it next to the 16-byte tag.
const MAX_NOISE_MESSAGE: usize = 65_535;
const MAX_PLAINTEXT: usize = MAX_NOISE_MESSAGE - 16;
/// Payload sizes of the transport groups.
const SIZES: [usize; 3] = [64, 1024, 65_536];
/// Iterations per timed batch in the decrypt group: few enough that the batch's ciphertexts
/// (up to 1 MiB) stay in cache, enough that the two clock reads per batch are noise.
const DECRYPT_BATCH: u64 = 16;

const NOW: Instant = Instant::ZERO;

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
}

/// Default configuration without compression and with rate limits that never bite (the clock
/// stands still at `NOW`, so the buckets never refill).
fn config() -> Arc<SessionConfig> {
    let mut config = SessionConfig::new("bench");
    config.compression = false;
    config.rate = RateLimits {
        frames_per_sec: u64::MAX,
        frame_burst: u64::MAX,
        bytes_per_sec: u64::MAX,
        byte_burst: u64::MAX,
    };
    Arc::new(config)
}

struct Fixture {
    config: Arc<SessionConfig>,
    initiator: Arc<NodeKeys>,
    responder: Arc<NodeKeys>,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            config: config(),
            initiator: Arc::new(NodeKeys::from_test_seed(1)),
            responder: Arc::new(NodeKeys::from_test_seed(2)),
        }
    }

    /// A full handshake between fresh sessions; returns them established, events drained.
    fn handshake(&self) -> (Session, Session) {
        let expected = Some(self.responder.identity().peer_id());
        let mut i = Session::initiator(
            self.config.clone(),
            self.initiator.clone(),
            expected,
            [1; 32],
            NOW,
        );
        let mut r = Session::responder(self.config.clone(), self.responder.clone(), [2; 32], NOW);
        // XX takes three messages: i -> r, r -> i, i -> r.
        for _ in 0..2 {
            if let Some(bytes) = i.poll_transmit() {
                r.handle_bytes(NOW, &bytes);
            }
            if let Some(bytes) = r.poll_transmit() {
                i.handle_bytes(NOW, &bytes);
            }
        }
        let mut established = 0;
        for s in [&mut i, &mut r] {
            while let Some(event) = s.poll_event() {
                established += usize::from(matches!(event, SessionEvent::Established { .. }));
            }
        }
        assert_eq!(established, 2, "handshake did not complete");
        (i, r)
    }
}

/// Bare snow handshake states with fixed static keys.
struct RawKeys {
    params: snow::params::NoiseParams,
    initiator: snow::Keypair,
    responder: snow::Keypair,
}

impl RawKeys {
    fn new() -> Self {
        let params: snow::params::NoiseParams = NOISE_PATTERN.parse().expect("pattern");
        let builder = snow::Builder::new(params.clone());
        RawKeys {
            initiator: builder.generate_keypair().expect("keypair"),
            responder: builder.generate_keypair().expect("keypair"),
            params,
        }
    }

    fn states(&self) -> (HandshakeState, HandshakeState) {
        let i = snow::Builder::new(self.params.clone())
            .local_private_key(&self.initiator.private)
            .and_then(|b| b.build_initiator())
            .expect("initiator");
        let r = snow::Builder::new(self.params.clone())
            .local_private_key(&self.responder.private)
            .and_then(|b| b.build_responder())
            .expect("responder");
        (i, r)
    }

    /// The three XX messages with empty payloads, then transport mode on both sides.
    fn handshake(&self) -> (TransportState, TransportState) {
        let (mut i, mut r) = self.states();
        let mut msg = [0u8; 256];
        let mut payload = [0u8; 256];
        let n = i.write_message(&[], &mut msg).expect("message 1");
        r.read_message(&msg[..n], &mut payload).expect("read 1");
        let n = r.write_message(&[], &mut msg).expect("message 2");
        i.read_message(&msg[..n], &mut payload).expect("read 2");
        let n = i.write_message(&[], &mut msg).expect("message 3");
        r.read_message(&msg[..n], &mut payload).expect("read 3");
        (
            i.into_transport_mode().expect("initiator transport"),
            r.into_transport_mode().expect("responder transport"),
        )
    }
}

fn frame(size: usize) -> Frame {
    Frame::new(ProtocolId::GOSSIP, 1, Bytes::from(vec![0xa5; size]))
}

/// Encrypts `payload` as Noise messages of at most `MAX_PLAINTEXT` bytes each.
fn raw_encrypt(tx: &mut TransportState, payload: &[u8], out: &mut [u8]) -> usize {
    let mut total = 0;
    for chunk in payload.chunks(MAX_PLAINTEXT) {
        let n = tx.write_message(chunk, out).expect("encrypt");
        total += black_box(&out[..n]).len();
    }
    total
}

fn handshake(c: &mut Criterion) {
    let fixture = Fixture::new();
    let raw = RawKeys::new();
    let mut group = c.benchmark_group("handshake");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    group.bench_function("full", |b| b.iter(|| fixture.handshake()));
    group.bench_function("raw_snow", |b| b.iter(|| raw.handshake()));
    group.finish();
}

fn encrypt(c: &mut Criterion) {
    let fixture = Fixture::new();
    let raw = RawKeys::new();
    let mut group = c.benchmark_group("encrypt");
    configure(&mut group);
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));

        let (mut tx, _rx) = fixture.handshake();
        let frame = frame(size);
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| {
                tx.send(&frame).expect("send");
                let mut written = 0;
                while let Some(bytes) = tx.poll_transmit() {
                    written += black_box(bytes).len();
                }
                written
            })
        });
        assert!(!tx.is_closed(), "{:?}", tx.close_cause());

        let (mut raw_tx, _raw_rx) = raw.handshake();
        let payload = vec![0xa5; size];
        let mut out = vec![0u8; MAX_NOISE_MESSAGE];
        group.bench_function(BenchmarkId::new("raw_snow", size), |b| {
            b.iter(|| raw_encrypt(&mut raw_tx, black_box(&payload), &mut out))
        });
    }
    group.finish();
}

fn decrypt(c: &mut Criterion) {
    let fixture = Fixture::new();
    let raw = RawKeys::new();
    let mut group = c.benchmark_group("decrypt");
    configure(&mut group);
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));

        let (mut tx, mut rx) = fixture.handshake();
        let frame = frame(size);
        let mut encrypt = || {
            tx.send(&frame).expect("send");
            tx.poll_transmit().expect("ciphertext")
        };
        // One round outside the timing, to check that the frame comes through whole.
        rx.handle_bytes(NOW, &encrypt());
        match rx.poll_event() {
            Some(SessionEvent::Frame(f)) => assert_eq!(f.body.len(), size),
            other => panic!("expected a frame, got {other:?}"),
        }
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter_batched(
                &mut encrypt,
                |wire| {
                    rx.handle_bytes(NOW, &wire);
                    let event = rx.poll_event();
                    // Both dropped after the clock stops.
                    (wire, event)
                },
                BatchSize::NumIterations(DECRYPT_BATCH),
            )
        });
        assert!(!rx.is_closed(), "{:?}", rx.close_cause());
        assert_eq!(rx.stats().frames_dropped, 0);

        let (mut raw_tx, mut raw_rx) = raw.handshake();
        let payload = vec![0xa5; size];
        let mut plain = vec![0u8; MAX_NOISE_MESSAGE];
        let mut seal = || {
            payload
                .chunks(MAX_PLAINTEXT)
                .map(|chunk| {
                    let mut msg = vec![0u8; chunk.len() + 16];
                    raw_tx.write_message(chunk, &mut msg).expect("encrypt");
                    msg
                })
                .collect::<Vec<_>>()
        };
        group.bench_function(BenchmarkId::new("raw_snow", size), |b| {
            b.iter_batched(
                &mut seal,
                |messages| {
                    for msg in &messages {
                        let n = raw_rx.read_message(msg, &mut plain).expect("decrypt");
                        black_box(&plain[..n]);
                    }
                    messages
                },
                BatchSize::NumIterations(DECRYPT_BATCH),
            )
        });
    }
    group.finish();
}

criterion_group!(benches, handshake, encrypt, decrypt);
criterion_main!(benches);
