//! What one protocol's stream is to carry after a turn of the node task: frames encoded back
//! to back, handed to the stream's writer as a list of chunks.
//!
//! Small frames are packed (copied) into shared buffers, so a thousand small messages become a
//! few chunks; a large frame's body is not copied at all: its header is packed and the body
//! follows as its own chunk, the same `Bytes` the application sent.

use bytes::{Bytes, BytesMut};
use starling_core::wire::Frame;

/// Bodies at least this long are passed on without copying.
const ZERO_COPY_MIN: usize = 16 << 10;
/// Bytes reserved at a time for packing small frames.
const PACK_BUFFER: usize = 64 << 10;

/// One protocol's encoded frames, waiting for the end of the turn.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Finished chunks, in order.
    chunks: Vec<Bytes>,
    /// Small frames, and headers of large ones, being packed.
    packing: BytesMut,
    /// Bytes pushed since the last `take`.
    len: usize,
}

impl Outbox {
    /// Appends `frame`.
    pub(crate) fn push(&mut self, frame: &Frame) {
        let len = frame.encoded_len();
        let copied = if frame.body.len() >= ZERO_COPY_MIN {
            len - frame.body.len()
        } else {
            len
        };
        if self.packing.capacity() - self.packing.len() < copied {
            // A full buffer becomes a chunk as it is (growing it would copy what it holds), and
            // a fresh one takes many small frames at once.
            self.seal();
            self.packing.reserve(copied.max(PACK_BUFFER));
        }
        if frame.body.len() >= ZERO_COPY_MIN {
            frame.encode_header(&mut self.packing);
            self.seal();
            self.chunks.push(frame.body.clone());
        } else {
            frame.encode(&mut self.packing);
        }
        self.len += len;
    }

    /// Whether nothing was pushed since the last `take`.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Everything pushed since the last `take`, as chunks, and its length in bytes.
    pub(crate) fn take(&mut self) -> (Vec<Bytes>, usize) {
        self.seal();
        (
            std::mem::take(&mut self.chunks),
            std::mem::replace(&mut self.len, 0),
        )
    }

    fn seal(&mut self) {
        if !self.packing.is_empty() {
            self.chunks.push(self.packing.split().freeze());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_core::wire::{FrameDecoder, Limits, ProtocolId};

    #[test]
    fn chunks_carry_the_frames_in_order_and_large_bodies_uncopied() {
        let small = |i: u8| Frame::new(ProtocolId::RAFT, i, vec![i; 100]);
        let large = Frame::new(ProtocolId::RAFT, 9, vec![7u8; 100_000]);
        let mut outbox = Outbox::default();
        outbox.push(&small(1));
        outbox.push(&large);
        outbox.push(&small(2));
        let expected_len = small(1).encoded_len() * 2 + large.encoded_len();
        let (chunks, len) = outbox.take();
        assert_eq!(len, expected_len);
        assert!(outbox.is_empty());
        // The large body is the application's buffer, not a copy.
        assert!(chunks.iter().any(|c| c.as_ptr() == large.body.as_ptr()));
        let mut joined = BytesMut::new();
        for chunk in &chunks {
            joined.extend_from_slice(chunk);
        }
        let limits = Limits {
            max_frame_len: 1 << 20,
            ..Limits::default()
        };
        let mut decoder = FrameDecoder::new(limits);
        let mut decoded = Vec::new();
        while let Some(frame) = decoder.decode(&mut joined).unwrap() {
            decoded.push(frame);
        }
        assert_eq!(decoded, vec![small(1), large, small(2)]);
        assert_eq!(outbox.take().1, 0);
    }

    proptest::proptest! {
        /// Any frames, pushed and taken in any rhythm, arrive whole and in order, and `take`
        /// reports their exact length.
        #[test]
        fn any_frames_round_trip(
            frames in proptest::collection::vec(
                (0u16..300, proptest::num::u8::ANY, 0usize..40_000),
                0..40,
            ),
            takes in proptest::collection::vec(proptest::bool::ANY, 40),
        ) {
            let frames: Vec<Frame> = frames
                .into_iter()
                .enumerate()
                .map(|(i, (p, t, len))| Frame::new(ProtocolId(p), t, vec![i as u8; len]))
                .collect();
            let mut outbox = Outbox::default();
            let mut stream = BytesMut::new();
            let mut push_all = |chunks: Vec<Bytes>| {
                for chunk in chunks {
                    stream.extend_from_slice(&chunk);
                }
            };
            let mut since_take = 0;
            for (frame, take) in frames.iter().zip(takes.iter().cycle()) {
                outbox.push(frame);
                since_take += frame.encoded_len();
                if *take {
                    let (chunks, len) = outbox.take();
                    proptest::prop_assert_eq!(len, std::mem::take(&mut since_take));
                    push_all(chunks);
                } else {
                    proptest::prop_assert!(!outbox.is_empty());
                }
            }
            push_all(outbox.take().0);
            let limits = Limits {
                max_frame_len: 1 << 20,
                ..Limits::default()
            };
            let mut decoder = FrameDecoder::new(limits);
            let mut decoded = Vec::new();
            while let Some(frame) = decoder.decode(&mut stream).unwrap() {
                decoded.push(frame);
            }
            proptest::prop_assert_eq!(decoded, frames);
        }
    }
}
