//! Tests of the durable encoding: the bytes are pinned (a data directory written before must
//! still open), values round-trip, and corrupt records are refused.

use super::*;
use crate::id::PeerId;
use crate::raft::fields::{CHANGE_REMOVE, KIND_COMMAND, KIND_CONFIG};
use crate::raft::membership::{ConfChange, Membership};
use crate::raft::message::EntryKind;

fn limits() -> Limits {
    Limits::DEFAULT
}

fn entry_bytes<P: WirePeer + Ord>(e: &Entry<P>) -> Bytes {
    let mut out = BytesMut::new();
    encode_entry(e, &mut out);
    assert_eq!(out.len(), entry_encoded_len(e));
    out.freeze()
}

fn hard_state_bytes<P: WirePeer>(hs: &HardState<P>) -> Bytes {
    let mut out = BytesMut::new();
    encode_hard_state(hs, &mut out);
    assert_eq!(out.len(), hard_state_encoded_len(hs));
    out.freeze()
}

fn config_entry(index: u64) -> Entry<u64> {
    Entry {
        index,
        term: 2,
        kind: EntryKind::Config {
            change: ConfChange::AddLearner(4),
            membership: Membership {
                voters: [1, 2, 3].into_iter().collect(),
                learners: [4].into_iter().collect(),
            },
        },
    }
}

#[test]
fn the_bytes_are_those_stores_already_hold() {
    let command = Entry::<u64> {
        index: 4,
        term: 2,
        kind: EntryKind::Command(Bytes::from_static(b"ab")),
    };
    assert_eq!(entry_bytes(&command).as_ref(), [4, 2, 1, 2, b'a', b'b']);
    assert_eq!(
        entry_bytes(&config_entry(5)).as_ref(),
        [5, 2, 2, 0, 4, 3, 1, 2, 3, 1, 4]
    );
    let noop = Entry::<PeerId> {
        index: 300,
        term: 1,
        kind: EntryKind::Noop,
    };
    assert_eq!(entry_bytes(&noop).as_ref(), [0xac, 0x02, 1, 0]);
    let hs = HardState {
        term: 7,
        vote: Some(3u64),
        commit: 5,
    };
    assert_eq!(hard_state_bytes(&hs).as_ref(), [7, 5, 1, 3]);
    assert_eq!(
        hard_state_bytes(&HardState::<PeerId>::default()).as_ref(),
        [0, 0, 0]
    );
    let voted = HardState {
        term: 1,
        vote: Some(PeerId::from_bytes([9; 32])),
        commit: 0,
    };
    let mut expected = vec![1, 0, 1];
    expected.extend_from_slice(&[9; 32]);
    assert_eq!(hard_state_bytes(&voted).as_ref(), expected);
}

#[test]
fn entries_and_hard_states_round_trip() {
    let entries = [
        Entry {
            index: 1,
            term: 1,
            kind: EntryKind::Noop,
        },
        Entry {
            index: u64::MAX,
            term: 3,
            kind: EntryKind::Command(Bytes::new()),
        },
        config_entry(9),
    ];
    for e in entries {
        assert_eq!(decode_entry(entry_bytes(&e), &limits()), Ok(e));
    }
    for hs in [
        HardState::default(),
        HardState {
            term: u64::MAX,
            vote: Some(u64::MAX),
            commit: 12,
        },
    ] {
        assert_eq!(decode_hard_state(hard_state_bytes(&hs)), Ok(hs));
    }
}

#[test]
fn peer_ids_and_u32_peers_round_trip() {
    let a = PeerId::from_bytes([1; 32]);
    let hs = HardState {
        term: 1,
        vote: Some(a),
        commit: 0,
    };
    assert_eq!(decode_hard_state(hard_state_bytes(&hs)), Ok(hs));
    // A peer id cut short.
    assert_eq!(
        decode_hard_state::<PeerId>(Bytes::from_static(&[1, 0, 1, 9, 9])),
        Err(DecodeError::UnexpectedEnd {
            needed: 32,
            remaining: 2
        })
    );
    let e = Entry {
        index: 1,
        term: 1,
        kind: EntryKind::Config {
            change: ConfChange::Promote(u32::MAX),
            membership: Membership::new([u32::MAX]),
        },
    };
    assert_eq!(decode_entry(entry_bytes(&e), &limits()), Ok(e));
    // A u32 peer wider than 32 bits.
    let mut wide = vec![1, 1, KIND_CONFIG, CHANGE_REMOVE];
    put_varint(&mut wide, 1 << 32);
    assert_eq!(
        decode_entry::<u32>(Bytes::from(wide), &limits()),
        Err(DecodeError::VarintOverflow)
    );
    // PeerId members count 32 bytes each.
    let mut ids = vec![1, 1, KIND_CONFIG, CHANGE_REMOVE];
    ids.extend_from_slice(&[0; 32]);
    ids.extend_from_slice(&[2; 40]);
    assert_eq!(
        decode_entry::<PeerId>(Bytes::from(ids), &limits()),
        Err(DecodeError::UnexpectedEnd {
            needed: 64,
            remaining: 39
        })
    );
}

#[test]
fn truncated_and_padded_records_are_corrupt() {
    for e in [config_entry(3)] {
        let bytes = entry_bytes(&e);
        for cut in 0..bytes.len() {
            assert!(matches!(
                decode_entry::<u64>(bytes.slice(..cut), &limits()),
                Err(DecodeError::UnexpectedEnd { .. })
            ));
        }
    }
    assert!(matches!(
        decode_hard_state::<u64>(Bytes::from_static(&[1, 1])),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
    assert_eq!(
        decode_entry::<u64>(Bytes::from_static(&[1, 1, 0, 0, 0]), &limits()),
        Err(DecodeError::TrailingBytes { count: 2 })
    );
    assert_eq!(
        decode_hard_state::<u64>(Bytes::from_static(&[1, 1, 0, 9])),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
}

#[test]
fn unknown_tags_are_refused() {
    assert_eq!(
        decode_entry::<u64>(Bytes::from_static(&[1, 1, 3]), &limits()),
        Err(DecodeError::InvalidValue {
            field: "entry kind"
        })
    );
    assert_eq!(
        decode_entry::<u64>(Bytes::from_static(&[1, 1, KIND_CONFIG, 3, 1]), &limits()),
        Err(DecodeError::InvalidValue { field: "change" })
    );
    assert_eq!(
        decode_hard_state::<u64>(Bytes::from_static(&[1, 1, 2, 1])),
        Err(DecodeError::InvalidValue { field: "vote" })
    );
}

#[test]
fn commands_are_bounded_and_sliced() {
    let small = Limits {
        max_bytes_len: 4,
        ..limits()
    };
    let entry = |len: usize| Entry::<u64> {
        index: 1,
        term: 1,
        kind: EntryKind::Command(Bytes::from(vec![9u8; len])),
    };
    assert_eq!(decode_entry(entry_bytes(&entry(4)), &small), Ok(entry(4)));
    assert_eq!(
        decode_entry::<u64>(entry_bytes(&entry(5)), &small),
        Err(DecodeError::BytesTooLong { len: 5, max: 4 })
    );
    assert_eq!(
        decode_entry::<u64>(Bytes::from_static(&[1, 1, KIND_COMMAND, 4, 1, 2]), &small),
        Err(DecodeError::UnexpectedEnd {
            needed: 4,
            remaining: 2
        })
    );
    // Zero copy: the command points into the input.
    let input = entry_bytes(&entry(100));
    let range = input.as_ptr_range();
    let Ok(Entry {
        kind: EntryKind::Command(data),
        ..
    }) = decode_entry::<u64>(input, &limits())
    else {
        panic!("command did not decode");
    };
    assert!(range.contains(&data.as_ptr()));
}
