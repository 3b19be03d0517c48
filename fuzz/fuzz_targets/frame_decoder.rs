//! Arbitrary bytes through both frame decoders.
//!
//! Input layout: byte 0 picks the frame limit (small, so oversize frames are easy to reach),
//! bytes 1..4 are chunk sizes for the streaming decoder (cycled), the rest is the byte stream.
//!
//! Checks: no panics; `Ok(None)` consumes nothing; every frame is within the limit and
//! re-encodes to exactly the bytes it was cut from (varints are canonical, so each frame has one
//! encoding); the streaming and whole-buffer decoders return the same frames.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use starling_core::wire::{DecodeError, Frame, FrameDecoder, Limits};

const HEADER: usize = 4;

fuzz_target!(|data: &[u8]| {
    let Some((header, input)) = data.split_first_chunk::<HEADER>() else {
        return;
    };
    let max_frame_len = 2 + u32::from(header[0]) * 16;
    let limits = Limits {
        max_frame_len,
        max_bytes_len: max_frame_len,
        ..Limits::default()
    };
    let chunks: Vec<usize> = header[1..].iter().map(|&b| usize::from(b) + 1).collect();

    let (streamed, stream_err) = stream(input, &chunks, limits);
    let (whole, whole_err) = whole(input, &limits);
    assert_eq!(streamed, whole, "decoders disagree");
    if stream_err.is_some() {
        assert_eq!(stream_err, whole_err, "decoders fail differently");
    }
});

/// Checks `frame` against the input bytes it was decoded from, starting at `offset`; returns the
/// offset just past it.
fn check_frame(frame: &Frame, input: &[u8], offset: usize, limits: &Limits) -> usize {
    assert!(
        frame.body.len() + 2 <= limits.max_frame_len as usize,
        "body over the limit"
    );
    let mut out = BytesMut::new();
    frame.encode(&mut out);
    assert_eq!(out.len(), frame.encoded_len());
    let end = offset + out.len();
    assert_eq!(
        &out[..],
        &input[offset..end],
        "frame does not re-encode to its bytes"
    );
    end
}

fn stream(input: &[u8], chunks: &[usize], limits: Limits) -> (Vec<Frame>, Option<DecodeError>) {
    let mut decoder = FrameDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut offset = 0;
    let mut rest = input;
    let mut sizes = chunks.iter().copied().cycle();
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(1).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        buf.extend_from_slice(chunk);
        rest = tail;
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    offset = check_frame(&frame, input, offset, &limits);
                    frames.push(frame);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumed input");
                    break;
                }
                Err(err) => {
                    // Errors are final.
                    assert_eq!(decoder.decode(&mut buf), Err(err.clone()));
                    return (frames, Some(err));
                }
            }
        }
    }
    (frames, None)
}

fn whole(input: &[u8], limits: &Limits) -> (Vec<Frame>, Option<DecodeError>) {
    let mut buf = Bytes::copy_from_slice(input);
    let mut frames = Vec::new();
    let mut offset = 0;
    while !buf.is_empty() {
        match Frame::decode(&mut buf, limits) {
            Ok(frame) => {
                offset = check_frame(&frame, input, offset, limits);
                frames.push(frame);
            }
            Err(err) => return (frames, Some(err)),
        }
    }
    (frames, None)
}
