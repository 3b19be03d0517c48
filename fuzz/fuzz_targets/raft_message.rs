//! Decodes arbitrary bytes as the body of a Raft frame of an arbitrary message type (and, the
//! same bytes, as a stored log entry and a stored hard state). Decoding must not panic;
//! whatever decodes must respect the limits, announce its length correctly and re-encode to
//! exactly the input (the encoding is canonical), and the re-encoding must decode to the same
//! value.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use starling_core::raft::durable::{
    decode_entry, decode_hard_state, encode_entry, encode_hard_state,
};
use starling_core::raft::membership::MAX_MEMBERS;
use starling_core::raft::{EntryKind, RaftMessage};
use starling_core::wire::{decode_message, message_to_frame, Frame, Limits, ProtocolId, WireMessage};

fn check_kind(kind: &EntryKind<u64>, limits: &Limits) {
    match kind {
        EntryKind::Command(c) => assert!(c.len() <= limits.max_bytes_len as usize),
        EntryKind::Config { membership, .. } => {
            assert!(membership.voters.len() + membership.learners.len() <= MAX_MEMBERS);
            assert!(membership.voters.len() <= limits.max_list_len as usize);
            assert!(membership.learners.len() <= limits.max_list_len as usize);
            assert!(membership.voters.is_disjoint(&membership.learners));
        }
        EntryKind::Noop => {}
    }
}

fuzz_target!(|data: &[u8]| {
    // Small limits, so that inputs of a few hundred bytes reach them.
    let limits = Limits {
        max_frame_len: 1 << 12,
        max_list_len: 8,
        max_bytes_len: 64,
    };
    let Some((&msg_type, body)) = data.split_first() else {
        return;
    };
    let body = Bytes::copy_from_slice(body);
    let frame = Frame::new(ProtocolId::RAFT, msg_type, body.clone());

    if let Ok(msg) = decode_message::<RaftMessage<u64>>(frame.clone(), &limits) {
        match &msg {
            RaftMessage::Append {
                prev_index,
                entries,
                ..
            } => {
                assert!(entries.len() <= limits.max_list_len as usize);
                for (i, e) in entries.iter().enumerate() {
                    assert_eq!(e.index, prev_index + 1 + i as u64);
                    check_kind(&e.kind, &limits);
                }
            }
            RaftMessage::Snapshot {
                membership, data, ..
            } => {
                assert!(data.len() <= limits.max_bytes_len as usize);
                assert!(membership.voters.len() + membership.learners.len() <= MAX_MEMBERS);
                assert!(membership.voters.is_disjoint(&membership.learners));
            }
            _ => {}
        }
        assert_eq!(msg.body_len(), body.len());
        let again = message_to_frame(&msg);
        assert_eq!(again, frame);
        assert_eq!(
            decode_message::<RaftMessage<u64>>(again, &limits).as_ref(),
            Ok(&msg)
        );
    }

    let input = Bytes::copy_from_slice(data);
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
