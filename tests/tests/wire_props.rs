//! Property tests for the wire format (DESIGN.md §4): round trips, streaming at arbitrary split
//! points, and decoders that stay total and within their limits on arbitrary bytes.

use std::fmt::Debug;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use starling_core::wire::codec::{get_bytes, get_list_len, put_bytes, put_list_len};
use starling_core::wire::peer::{get_peer_list, peer_list_len, put_peer_list};
use starling_core::wire::varint::{get_varint, peek_varint, put_varint, varint_len};
use starling_core::wire::{
    DecodeError, Frame, FrameDecoder, Limits, ProtocolId, WirePeer, MAX_WIRE_CONTACTS,
};
use starling_core::{NodeContact, PeerId};

fn any_frame() -> impl Strategy<Value = Frame> {
    (
        any::<u16>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(protocol, msg_type, body)| Frame::new(ProtocolId(protocol), msg_type, body))
}

/// Small but valid limits, so that limit checks are hit often.
fn small_limits() -> impl Strategy<Value = Limits> {
    (2u32..64, 1u32..16, 1u32..64).prop_map(|(max_frame_len, max_list_len, bytes)| Limits {
        max_frame_len,
        max_list_len,
        max_bytes_len: bytes.min(max_frame_len),
    })
}

fn contact() -> impl Strategy<Value = NodeContact> {
    (
        any::<[u8; 32]>(),
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<u16>(),
    )
        .prop_map(|(id, v6, ip, port)| {
            let addr = if v6 {
                SocketAddr::from((ip, port))
            } else {
                SocketAddr::from(([ip[0], ip[1], ip[2], ip[3]], port))
            };
            NodeContact {
                peer: PeerId::from_bytes(id),
                addr,
            }
        })
}

/// A list of peers round-trips with the length it announces, and every peer type decodes
/// arbitrary bytes without panicking into a value that re-encodes to exactly what it consumed.
fn check_peers<P: WirePeer + PartialEq + Debug>(
    peers: &[P],
    junk: &[u8],
) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    put_peer_list(&mut out, peers.iter());
    prop_assert_eq!(out.len(), peer_list_len(peers.iter()));
    let mut buf = Bytes::from(out);
    let back = get_peer_list::<P>(&mut buf, &Limits::DEFAULT, MAX_WIRE_CONTACTS);
    prop_assert_eq!(back.as_deref(), Ok(peers));
    prop_assert!(buf.is_empty());

    let mut buf = Bytes::copy_from_slice(junk);
    if let Ok(p) = P::decode(&mut buf) {
        let consumed = junk.len() - buf.len();
        prop_assert!(consumed >= P::MIN_ENCODED_LEN);
        let mut again = Vec::new();
        p.encode(&mut again);
        prop_assert_eq!(&again[..], &junk[..consumed]);
    }
    Ok(())
}

fn encode(frames: &[Frame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for frame in frames {
        frame.encode(&mut out);
    }
    out.to_vec()
}

/// Feeds `input` to a fresh streaming decoder in chunks of the given sizes (cycled; each at least
/// one byte). Returns the frames decoded, the first error if any, and the bytes left buffered.
/// Also checks that `Ok(None)` never consumes input and that no body exceeds the frame limit.
fn stream(
    input: &[u8],
    chunks: &[usize],
    limits: Limits,
) -> (Vec<Frame>, Option<DecodeError>, usize) {
    let mut decoder = FrameDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = input;
    let mut sizes = chunks.iter().copied().cycle();
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(usize::MAX).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        buf.extend_from_slice(chunk);
        rest = tail;
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.body.len() + 2 <= limits.max_frame_len as usize);
                    frames.push(frame);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumed input");
                    break;
                }
                Err(err) => return (frames, Some(err), buf.len()),
            }
        }
    }
    (frames, None, buf.len())
}

/// Decodes whole frames from `input` until it is empty or an error occurs.
fn whole(input: &[u8], limits: &Limits) -> (Vec<Frame>, Option<DecodeError>) {
    let mut buf = Bytes::copy_from_slice(input);
    let mut frames = Vec::new();
    while !buf.is_empty() {
        match Frame::decode(&mut buf, limits) {
            Ok(frame) => {
                assert!(frame.body.len() + 2 <= limits.max_frame_len as usize);
                frames.push(frame);
            }
            Err(err) => return (frames, Some(err)),
        }
    }
    (frames, None)
}

proptest! {
    #[test]
    fn varint_round_trips_any_u64(v in any::<u64>()) {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        prop_assert_eq!(out.len(), varint_len(v));
        prop_assert_eq!(peek_varint(&out), Ok(Some((v, out.len()))));
        let mut slice = out.as_slice();
        prop_assert_eq!(get_varint(&mut slice), Ok(v));
        prop_assert!(slice.is_empty());
    }

    #[test]
    fn varint_prefixes_are_incomplete(v in any::<u64>()) {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        for cut in 0..out.len() {
            let prefix = out.get(..cut).unwrap_or_default();
            prop_assert_eq!(peek_varint(prefix), Ok(None));
            let is_end = matches!(
                get_varint(&mut &*prefix),
                Err(DecodeError::UnexpectedEnd { .. })
            );
            prop_assert!(is_end);
        }
    }

    #[test]
    fn frame_round_trips_whole(frame in any_frame()) {
        let bytes = encode(std::slice::from_ref(&frame));
        prop_assert_eq!(bytes.len(), frame.encoded_len());
        let mut buf = Bytes::from(bytes);
        prop_assert_eq!(Frame::decode(&mut buf, &Limits::default()), Ok(frame));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn frame_round_trips_streaming_at_any_split(
        frame in any_frame(),
        chunks in prop::collection::vec(1usize..64, 1..8),
    ) {
        let bytes = encode(std::slice::from_ref(&frame));
        let (frames, err, left) = stream(&bytes, &chunks, Limits::default());
        prop_assert_eq!(frames, vec![frame.clone()]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(left, 0);

        // One byte at a time: the frame appears exactly when its last byte arrives.
        let (frames, err, left) = stream(&bytes, &[1], Limits::default());
        prop_assert_eq!(frames, vec![frame]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(left, 0);
    }

    #[test]
    fn frames_back_to_back_stream_in_order(
        frames in prop::collection::vec(any_frame(), 1..8),
        chunks in prop::collection::vec(1usize..200, 1..8),
    ) {
        let bytes = encode(&frames);
        let (got, err, left) = stream(&bytes, &chunks, Limits::default());
        prop_assert_eq!(&got, &frames);
        prop_assert_eq!(err, None);
        prop_assert_eq!(left, 0);
        let (got, err) = whole(&bytes, &Limits::default());
        prop_assert_eq!(got, frames);
        prop_assert_eq!(err, None);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_frame_decoders(
        input in prop::collection::vec(any::<u8>(), 0..512),
        chunks in prop::collection::vec(1usize..32, 1..8),
        limits in small_limits(),
    ) {
        // Both helpers assert every returned body is within the limit.
        let (whole_frames, whole_err) = whole(&input, &limits);
        let (stream_frames, stream_err, _) = stream(&input, &chunks, limits);
        // The two decoders read the same format, so they return the same frames; where the
        // whole-buffer decoder reports a truncated frame the streaming one waits instead.
        prop_assert_eq!(&whole_frames, &stream_frames);
        if stream_err.is_some() {
            prop_assert_eq!(whole_err, stream_err);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_field_readers(
        input in prop::collection::vec(any::<u8>(), 0..128),
        limits in small_limits(),
        min_item_len in 0usize..8,
    ) {
        let _ = get_varint(&mut input.as_slice());
        let _ = peek_varint(&input);

        let mut buf = Bytes::from(input.clone());
        if let Ok(bytes) = get_bytes(&mut buf, &limits) {
            prop_assert!(bytes.len() <= limits.max_bytes_len as usize);
        }

        let mut buf = Bytes::from(input);
        if let Ok(count) = get_list_len(&mut buf, &limits, min_item_len) {
            prop_assert!(count <= limits.max_list_len as usize);
            prop_assert!(count * min_item_len <= buf.len());
        }
    }

    #[test]
    fn small_frame_limits_are_honoured(
        frame in any_frame(),
        limits in small_limits(),
        chunks in prop::collection::vec(1usize..16, 1..4),
    ) {
        let bytes = encode(std::slice::from_ref(&frame));
        // The length prefix covers the protocol id, the type byte and the body.
        let inner = varint_len(u64::from(frame.protocol.0)) + 1 + frame.body.len();
        let fits = inner <= limits.max_frame_len as usize;

        let (got, err) = whole(&bytes, &limits);
        let (streamed, stream_err, _) = stream(&bytes, &chunks, limits);
        if fits {
            prop_assert_eq!(got, vec![frame.clone()]);
            prop_assert_eq!(streamed, vec![frame]);
        } else {
            let too_large = DecodeError::FrameTooLarge {
                len: inner as u64,
                max: limits.max_frame_len,
            };
            prop_assert_eq!(err, Some(too_large.clone()));
            prop_assert_eq!(stream_err, Some(too_large));
            prop_assert!(got.is_empty() && streamed.is_empty());
        }
    }

    #[test]
    fn small_string_and_list_limits_are_honoured(
        data in prop::collection::vec(any::<u8>(), 0..80),
        count in 0usize..32,
        limits in small_limits(),
    ) {
        let mut out = Vec::new();
        put_bytes(&mut out, &data);
        let got = get_bytes(&mut Bytes::from(out), &limits);
        if data.len() <= limits.max_bytes_len as usize {
            prop_assert_eq!(got, Ok(Bytes::from(data)));
        } else {
            prop_assert_eq!(
                got,
                Err(DecodeError::BytesTooLong {
                    len: data.len() as u64,
                    max: limits.max_bytes_len,
                })
            );
        }

        let mut out = Vec::new();
        put_list_len(&mut out, count);
        out.resize(out.len() + count, 0);
        let got = get_list_len(&mut Bytes::from(out), &limits, 1);
        if count <= limits.max_list_len as usize {
            prop_assert_eq!(got, Ok(count));
        } else {
            prop_assert_eq!(
                got,
                Err(DecodeError::ListTooLong {
                    len: count as u64,
                    max: limits.max_list_len,
                })
            );
        }
    }

    /// Every `WirePeer` type: `u64` and `u32` varints, raw `PeerId`s, `NodeContact`s.
    #[test]
    fn peers_round_trip_and_decode_canonically(
        ints in prop::collection::vec(any::<u64>(), 0..=MAX_WIRE_CONTACTS),
        ids in prop::collection::vec(any::<[u8; 32]>(), 0..=MAX_WIRE_CONTACTS),
        contacts in prop::collection::vec(contact(), 0..=MAX_WIRE_CONTACTS),
        junk in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        check_peers(&ints, &junk)?;
        let narrow: Vec<u32> = ints.iter().map(|i| *i as u32).collect();
        check_peers(&narrow, &junk)?;
        let ids: Vec<PeerId> = ids.into_iter().map(PeerId::from_bytes).collect();
        check_peers(&ids, &junk)?;
        check_peers(&contacts, &junk)?;
    }
}
