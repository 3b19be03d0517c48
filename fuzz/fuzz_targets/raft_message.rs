//! Decodes arbitrary bytes as a Raft message (and, the same bytes, as a log entry and a hard
//! state). Decoding must not panic; whatever decodes must respect the limits, announce its
//! length correctly and re-encode to exactly the input (the encoding is canonical), and the
//! re-encoding must decode to the same value.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use starling_core::raft::codec::{
    decode, decode_entry, decode_hard_state, encode, encode_entry, encode_hard_state, encoded_len,
    DecodeLimits,
};
use starling_core::raft::membership::MAX_MEMBERS;
use starling_core::raft::{EntryKind, RaftMessage};

fn check_kind(kind: &EntryKind<u64>, limits: &DecodeLimits) {
    match kind {
        EntryKind::Command(c) => assert!(c.len() <= limits.max_command_len),
        EntryKind::Config { membership, .. } => {
            assert!(membership.voters.len() + membership.learners.len() <= MAX_MEMBERS);
            assert!(membership.voters.is_disjoint(&membership.learners));
        }
        EntryKind::Noop => {}
    }
}

fuzz_target!(|data: &[u8]| {
    // Small limits, so that inputs of a few hundred bytes reach them.
    let limits = DecodeLimits {
        max_entries: 8,
        max_command_len: 64,
        max_chunk_len: 128,
    };
    let input = Bytes::copy_from_slice(data);

    if let Ok(msg) = decode::<u64>(input.clone(), &limits) {
        match &msg {
            RaftMessage::Append {
                prev_index,
                entries,
                ..
            } => {
                assert!(entries.len() <= limits.max_entries);
                for (i, e) in entries.iter().enumerate() {
                    assert_eq!(e.index, prev_index + 1 + i as u64);
                    check_kind(&e.kind, &limits);
                }
            }
            RaftMessage::Snapshot {
                membership, data, ..
            } => {
                assert!(data.len() <= limits.max_chunk_len);
                assert!(membership.voters.len() + membership.learners.len() <= MAX_MEMBERS);
                assert!(membership.voters.is_disjoint(&membership.learners));
            }
            _ => {}
        }
        assert_eq!(encoded_len(&msg), data.len());
        let mut out = BytesMut::new();
        encode(&msg, &mut out);
        assert_eq!(out.as_ref(), data);
        assert_eq!(decode::<u64>(out.freeze(), &limits).as_ref(), Ok(&msg));
    }

    if let Ok(entry) = decode_entry::<u64>(input.clone(), &limits) {
        check_kind(&entry.kind, &limits);
        let mut out = BytesMut::new();
        encode_entry(&entry, &mut out);
        assert_eq!(out.as_ref(), data);
        assert_eq!(
            decode_entry::<u64>(out.freeze(), &limits).as_ref(),
            Ok(&entry)
        );
    }

    if let Ok(hs) = decode_hard_state::<u64>(input) {
        let mut out = BytesMut::new();
        encode_hard_state(&hs, &mut out);
        assert_eq!(out.as_ref(), data);
        assert_eq!(decode_hard_state::<u64>(out.freeze()), Ok(hs));
    }
});
