//! Property tests for secure sessions: stream splitting and tamper detection.

use std::sync::Arc;

use proptest::prelude::*;
use starling_core::session::{CloseCause, NodeKeys, Session, SessionConfig, SessionEvent};
use starling_core::time::Instant;
use starling_core::wire::{Frame, ProtocolId};

/// An established initiator/responder pair.
fn pair() -> (Session, Session) {
    let config = Arc::new(SessionConfig::new("props"));
    let now = Instant::ZERO;
    let mut a = Session::initiator(
        config.clone(),
        Arc::new(NodeKeys::from_test_seed(1)),
        None,
        [3; 32],
        now,
    );
    let mut b = Session::responder(config, Arc::new(NodeKeys::from_test_seed(2)), [4; 32], now);
    for _ in 0..3 {
        if let Some(bytes) = a.poll_transmit() {
            b.handle_bytes(now, &bytes);
        }
        if let Some(bytes) = b.poll_transmit() {
            a.handle_bytes(now, &bytes);
        }
    }
    assert!(a.is_established() && b.is_established());
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    (a, b)
}

fn frames() -> impl Strategy<Value = Vec<Frame>> {
    let frame = (
        0u16..8,
        any::<u8>(),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            // Long and repetitive: compressed, and sometimes split across records.
            (any::<u8>(), 600usize..140_000).prop_map(|(b, n)| vec![b; n]),
        ],
    )
        .prop_map(|(p, t, body)| Frame::new(ProtocolId(p + 2), t, body));
    proptest::collection::vec(frame, 1..6)
}

fn received(b: &mut Session) -> (Vec<Frame>, Option<CloseCause>) {
    let (mut frames, mut closed) = (Vec::new(), None);
    while let Some(e) = b.poll_event() {
        match e {
            SessionEvent::Frame(f) => frames.push(f),
            SessionEvent::Closed(c) => closed = Some(c),
            _ => {}
        }
    }
    (frames, closed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// However the stream is cut into reads, the same frames come out, in order.
    #[test]
    fn any_split_of_the_stream_yields_the_same_frames(sent in frames(), cuts in proptest::collection::vec(1usize..5_000, 0..40)) {
        let (mut a, mut b) = pair();
        for f in &sent {
            a.send(f).unwrap();
        }
        let stream = a.poll_transmit().unwrap();
        let mut rest = &stream[..];
        for cut in cuts {
            let (chunk, tail) = rest.split_at(cut.min(rest.len()));
            b.handle_bytes(Instant::ZERO, chunk);
            rest = tail;
        }
        b.handle_bytes(Instant::ZERO, rest);
        let (got, closed) = received(&mut b);
        prop_assert_eq!(closed, None);
        prop_assert_eq!(got, sent);
    }

    /// Flipping any bit of any transmitted byte is caught: the session closes with a failed MAC
    /// and no frame from the tampered message onwards is delivered.
    #[test]
    fn a_flipped_byte_is_detected_and_closes_the_session(sent in frames(), at in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let (mut a, mut b) = pair();
        let first = Frame::new(ProtocolId::DHT, 0, vec![1, 2, 3]);
        a.send(&first).unwrap();
        b.handle_bytes(Instant::ZERO, &a.poll_transmit().unwrap());
        for f in &sent {
            a.send(f).unwrap();
        }
        let mut stream = a.poll_transmit().unwrap().to_vec();
        let i = at.index(stream.len());
        stream[i] ^= mask;
        b.handle_bytes(Instant::ZERO, &stream);
        // A flipped length prefix may leave the receiver waiting for bytes that were never sent:
        // keep the sender talking until the receiver has enough to judge. The filler must not
        // compress (zeros would shrink to a few dozen bytes and leave the receiver waiting).
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let filler: Vec<u8> = (0..16_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for _ in 0..8 {
            if b.is_closed() {
                break;
            }
            a.send(&Frame::new(ProtocolId::DHT, 1, filler.clone())).unwrap();
            b.handle_bytes(Instant::ZERO, &a.poll_transmit().unwrap());
        }
        let (got, closed) = received(&mut b);
        prop_assert_eq!(closed, Some(CloseCause::BadMac));
        prop_assert_eq!(got.first(), Some(&first));
        // Every frame delivered after the first is one that was really sent, unaltered.
        for f in &got[1..] {
            prop_assert!(sent.contains(f), "an altered frame was delivered");
        }
    }
}
