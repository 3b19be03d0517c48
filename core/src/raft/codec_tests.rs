//! Tests of the Raft message codec: round trips through whole frames, the documented layout,
//! and every way a body can be refused.

use bytes::BytesMut;

use super::*;
use crate::id::PeerId;
use crate::raft::fields::{CHANGE_REMOVE, KIND_COMMAND, KIND_CONFIG};
use crate::raft::membership::{ConfChange, Membership, MAX_MEMBERS};
use crate::raft::message::EntryKind;
use crate::wire::{decode_message, encode_message, message_to_frame, Frame};

type Msg = RaftMessage<u64>;

fn limits() -> Limits {
    Limits::DEFAULT
}

/// The message type and body of `msg`.
fn enc(msg: &Msg) -> (u8, Vec<u8>) {
    let frame = message_to_frame(msg);
    (frame.msg_type, frame.body.to_vec())
}

fn dec_with(msg_type: u8, body: impl Into<Vec<u8>>, limits: &Limits) -> Result<Msg, DecodeError> {
    decode_message(Frame::new(ProtocolId::RAFT, msg_type, body.into()), limits)
}

fn dec(msg_type: u8, body: impl Into<Vec<u8>>) -> Result<Msg, DecodeError> {
    dec_with(msg_type, body, &limits())
}

fn membership(voters: &[u64], learners: &[u64]) -> Membership<u64> {
    Membership {
        voters: voters.iter().copied().collect(),
        learners: learners.iter().copied().collect(),
    }
}

fn config_entry(index: u64) -> Entry<u64> {
    Entry {
        index,
        term: 2,
        kind: EntryKind::Config {
            change: ConfChange::AddLearner(4),
            membership: membership(&[1, 2, 3], &[4]),
        },
    }
}

fn samples() -> Vec<Msg> {
    vec![
        RaftMessage::Vote {
            term: 300,
            last_index: 7,
            last_term: 2,
            pre: true,
            transfer: false,
        },
        RaftMessage::Vote {
            term: u64::MAX,
            last_index: u64::MAX,
            last_term: 0,
            pre: false,
            transfer: true,
        },
        RaftMessage::VoteResponse {
            term: 3,
            pre: false,
            granted: true,
        },
        RaftMessage::Append {
            term: 2,
            prev_index: 0,
            prev_term: 0,
            entries: vec![],
            commit: 0,
        },
        RaftMessage::Append {
            term: 2,
            prev_index: 9,
            prev_term: 1,
            entries: vec![
                Entry {
                    index: 10,
                    term: 2,
                    kind: EntryKind::Noop,
                },
                Entry {
                    index: 11,
                    term: 2,
                    kind: EntryKind::Command(Bytes::from_static(b"set x 1")),
                },
                config_entry(12),
                Entry {
                    index: 13,
                    term: 2,
                    kind: EntryKind::Config {
                        change: ConfChange::Remove(1),
                        membership: membership(&[2, 3], &[]),
                    },
                },
                Entry {
                    index: 14,
                    term: 2,
                    kind: EntryKind::Config {
                        change: ConfChange::Promote(4),
                        membership: membership(&[2, 3, 4], &[]),
                    },
                },
            ],
            commit: 9,
        },
        RaftMessage::AppendResponse {
            term: 2,
            success: true,
            match_index: 14,
            hint: None,
        },
        RaftMessage::AppendResponse {
            term: 2,
            success: false,
            match_index: 9,
            hint: Some(ConflictHint { index: 5, term: 1 }),
        },
        RaftMessage::Heartbeat {
            term: 2,
            commit: 8,
            read_seq: 1 << 40,
        },
        RaftMessage::HeartbeatResponse {
            term: 2,
            read_seq: 17,
        },
        RaftMessage::Snapshot {
            term: 5,
            index: 100,
            snapshot_term: 4,
            membership: membership(&[1, 2, 3], &[9]),
            total_len: 1000,
            offset: 500,
            data: Bytes::from(vec![7u8; 300]),
        },
        RaftMessage::SnapshotResponse {
            term: 5,
            index: 100,
            received: 800,
        },
        RaftMessage::TimeoutNow { term: 6 },
    ]
}

#[test]
fn every_message_round_trips_through_a_frame_with_exact_len() {
    for msg in samples() {
        // Through a whole encoded frame, as a stream carries it...
        let mut out = BytesMut::new();
        encode_message(&msg, &mut out);
        let mut wire = out.freeze();
        let frame = Frame::decode(&mut wire, &limits()).unwrap();
        assert!(wire.is_empty());
        assert_eq!(frame.protocol, ProtocolId::RAFT);
        assert_eq!(frame.body.len(), msg.body_len(), "{msg:?}");
        assert_eq!(decode_message(frame, &limits()), Ok(msg.clone()));
        // ...and through a frame value.
        assert_eq!(decode_message(message_to_frame(&msg), &limits()), Ok(msg));
    }
}

#[test]
fn the_format_is_as_documented() {
    let vote: Msg = RaftMessage::Vote {
        term: 300,
        last_index: 7,
        last_term: 2,
        pre: true,
        transfer: true,
    };
    assert_eq!(enc(&vote), (0, vec![0xac, 0x02, 7, 2, 3]));
    let resp: Msg = RaftMessage::AppendResponse {
        term: 2,
        success: false,
        match_index: 9,
        hint: Some(ConflictHint { index: 5, term: 1 }),
    };
    assert_eq!(enc(&resp), (3, vec![2, 9, 2, 5, 1]));
    let append: Msg = RaftMessage::Append {
        term: 2,
        prev_index: 3,
        prev_term: 1,
        entries: vec![
            Entry {
                index: 4,
                term: 2,
                kind: EntryKind::Command(Bytes::from_static(b"ab")),
            },
            config_entry(5),
        ],
        commit: 3,
    };
    assert_eq!(
        enc(&append),
        (
            2,
            vec![
                2, 3, 1, 3, 2, // term, prev_index, prev_term, commit, count
                4, 2, 1, 2, b'a', b'b', // command entry
                5, 2, 2, 0, 4, // config entry: AddLearner(4)
                3, 1, 2, 3, 1, 4, // voters {1, 2, 3}, learners {4}
            ]
        )
    );
    // A whole frame: length 3 (protocol, type, one-byte term), protocol 4, type 8, term 6.
    let mut out = BytesMut::new();
    encode_message(&RaftMessage::<u64>::TimeoutNow { term: 6 }, &mut out);
    assert_eq!(out.as_ref(), [3, 4, 8, 6]);
}

#[test]
fn peer_ids_round_trip() {
    let a = PeerId::from_bytes([1; 32]);
    let b = PeerId::from_bytes([2; 32]);
    let msg = RaftMessage::Snapshot {
        term: 1,
        index: 2,
        snapshot_term: 1,
        membership: Membership {
            voters: [a].into_iter().collect(),
            learners: [b].into_iter().collect(),
        },
        total_len: 0,
        offset: 0,
        data: Bytes::new(),
    };
    let frame = message_to_frame(&msg);
    assert_eq!(frame.body.len(), msg.body_len());
    assert_eq!(frame.body.len(), 5 + 1 + 32 + 1 + 32 + 1);
    assert_eq!(decode_message(frame, &limits()), Ok(msg));
}

#[test]
fn every_truncation_is_an_error() {
    for msg in samples() {
        let (msg_type, body) = enc(&msg);
        for cut in 0..body.len() {
            let result = dec(msg_type, &body[..cut]);
            assert!(
                matches!(result, Err(DecodeError::UnexpectedEnd { .. })),
                "{msg:?} cut at {cut}: {result:?}"
            );
        }
    }
    assert_eq!(
        dec(TIMEOUT_NOW, []),
        Err(DecodeError::UnexpectedEnd {
            needed: 1,
            remaining: 0
        })
    );
}

#[test]
fn trailing_bytes_are_refused() {
    for msg in samples() {
        let (msg_type, mut body) = enc(&msg);
        body.push(0);
        assert_eq!(
            dec(msg_type, body),
            Err(DecodeError::TrailingBytes { count: 1 }),
            "{msg:?}"
        );
    }
}

#[test]
fn bad_varints_are_refused() {
    assert_eq!(
        dec(TIMEOUT_NOW, [0x80, 0x00]),
        Err(DecodeError::VarintNonCanonical)
    );
    let mut over = vec![0xff; 9];
    over.push(0x02);
    assert_eq!(dec(TIMEOUT_NOW, over), Err(DecodeError::VarintOverflow));
    // A count written long.
    assert_eq!(
        dec(APPEND, [1, 0, 0, 0, 0x80, 0x00]),
        Err(DecodeError::VarintNonCanonical)
    );
}

#[test]
fn unknown_types_and_kinds_are_refused() {
    for msg_type in [9u8, 0x80, u8::MAX] {
        for body in [&[][..], &[1][..]] {
            assert_eq!(
                dec(msg_type, body),
                Err(DecodeError::UnknownMessageType {
                    protocol: ProtocolId::RAFT,
                    msg_type
                })
            );
        }
    }
    assert_eq!(
        dec(APPEND, [1, 0, 0, 0, 1, 1, 1, 3]),
        Err(DecodeError::InvalidValue {
            field: "entry kind"
        })
    );
}

#[test]
fn unknown_flag_bits_are_refused() {
    for bad in [4u8, 0x80, 0xff] {
        let invalid = Err(DecodeError::InvalidValue { field: "flags" });
        assert_eq!(dec(VOTE, [1, 1, 1, bad]), invalid);
        assert_eq!(dec(VOTE_RESPONSE, [1, bad]), invalid);
        assert_eq!(dec(APPEND_RESPONSE, [1, 1, bad]), invalid);
    }
}

/// A snapshot body up to its membership, then `members`, then an empty chunk.
fn snapshot_with(members: &[u8]) -> Vec<u8> {
    let mut b = vec![1, 1, 1, 0, 0];
    b.extend_from_slice(members);
    b.push(0);
    b
}

#[test]
fn member_sets_must_be_canonical() {
    assert!(dec(SNAPSHOT, snapshot_with(&[2, 1, 2, 1, 3])).is_ok());
    let invalid = |field| Err(DecodeError::InvalidValue { field });
    // Out of order, duplicated.
    assert_eq!(
        dec(SNAPSHOT, snapshot_with(&[2, 2, 1, 0])),
        invalid("voters")
    );
    assert_eq!(
        dec(SNAPSHOT, snapshot_with(&[2, 1, 1, 0])),
        invalid("voters")
    );
    assert_eq!(
        dec(SNAPSHOT, snapshot_with(&[1, 1, 2, 5, 3])),
        invalid("learners")
    );
    // Both voter and learner.
    assert_eq!(
        dec(SNAPSHOT, snapshot_with(&[2, 1, 2, 1, 2])),
        invalid("learners")
    );
}

#[test]
fn member_counts_are_bounded_before_allocating() {
    let max = MAX_MEMBERS as u64;
    // MAX_MEMBERS voters decode; one more does not.
    let full: Msg = RaftMessage::Snapshot {
        term: 1,
        index: 1,
        snapshot_term: 1,
        membership: Membership::new(0..max),
        total_len: 0,
        offset: 0,
        data: Bytes::new(),
    };
    assert_eq!(decode_message(message_to_frame(&full), &limits()), Ok(full));
    let mut over = vec![1, 1, 1, 0, 0];
    put_varint(&mut over, max + 1);
    over.extend(0..=max as u8);
    over.extend_from_slice(&[0, 0]);
    assert_eq!(
        dec(SNAPSHOT, over),
        Err(DecodeError::ListTooLong {
            len: max + 1,
            max: MAX_MEMBERS as u32
        })
    );
    // Voters and learners share the bound: after 63 voters, room for one learner.
    let mut both = vec![1, 1, 1, 0, 0];
    put_varint(&mut both, max - 1);
    both.extend(0..max as u8 - 1);
    both.extend_from_slice(&[2, 200, 201, 0]);
    assert_eq!(
        dec(SNAPSHOT, both),
        Err(DecodeError::ListTooLong { len: 2, max: 1 })
    );
    // A tighter list limit wins over MAX_MEMBERS.
    let tight = Limits {
        max_list_len: 2,
        ..limits()
    };
    assert_eq!(
        dec_with(SNAPSHOT, snapshot_with(&[3, 1, 2, 3, 0]), &tight),
        Err(DecodeError::ListTooLong { len: 3, max: 2 })
    );
    // A huge count fails on the count, whatever follows.
    let mut huge = vec![1, 1, 1, 0, 0];
    put_varint(&mut huge, u64::MAX);
    assert_eq!(
        dec(SNAPSHOT, huge),
        Err(DecodeError::ListTooLong {
            len: u64::MAX,
            max: MAX_MEMBERS as u32
        })
    );
    // A count within the limit but beyond the bytes left fails before the first member.
    assert_eq!(
        dec(SNAPSHOT, [1, 1, 1, 0, 0, 10, 1, 2]),
        Err(DecodeError::UnexpectedEnd {
            needed: 10,
            remaining: 2
        })
    );
}

fn append_of(n: u64) -> Msg {
    RaftMessage::Append {
        term: 1,
        prev_index: 0,
        prev_term: 0,
        entries: (1..=n)
            .map(|index| Entry {
                index,
                term: 1,
                kind: EntryKind::Noop,
            })
            .collect(),
        commit: 0,
    }
}

#[test]
fn entry_counts_are_bounded_before_allocating() {
    let small = Limits {
        max_list_len: 2,
        ..limits()
    };
    let (t, two) = enc(&append_of(2));
    assert!(dec_with(t, two, &small).is_ok());
    let (t, three) = enc(&append_of(3));
    assert_eq!(
        dec_with(t, three, &small),
        Err(DecodeError::ListTooLong { len: 3, max: 2 })
    );
    let mut huge = vec![1, 0, 0, 0];
    put_varint(&mut huge, u64::MAX);
    assert_eq!(
        dec(APPEND, huge),
        Err(DecodeError::ListTooLong {
            len: u64::MAX,
            max: Limits::DEFAULT.max_list_len
        })
    );
    // 200 entries announced, 10 bytes behind them.
    let mut short = vec![1, 0, 0, 0];
    put_varint(&mut short, 200);
    short.extend_from_slice(&[0; 10]);
    assert_eq!(
        dec(APPEND, short),
        Err(DecodeError::UnexpectedEnd {
            needed: 200 * MIN_ENTRY_LEN,
            remaining: 10
        })
    );
}

#[test]
fn entries_must_follow_prev_index() {
    let invalid = Err(DecodeError::InvalidValue {
        field: "entry index",
    });
    // prev_index 3, entries 4 then 6.
    assert_eq!(dec(APPEND, [1, 3, 1, 0, 2, 4, 1, 0, 6, 1, 0]), invalid);
    // First entry not at prev_index + 1.
    assert_eq!(dec(APPEND, [1, 3, 1, 0, 1, 3, 1, 0]), invalid);
    // prev_index u64::MAX leaves no room for an entry.
    let mut b = vec![1];
    put_varint(&mut b, u64::MAX);
    b.extend_from_slice(&[1, 0, 1, 0, 1, 0]);
    assert_eq!(dec(APPEND, b), invalid);
}

#[test]
fn commands_are_bounded_and_sliced() {
    let small = Limits {
        max_bytes_len: 4,
        ..limits()
    };
    let append = |len: usize| -> Msg {
        RaftMessage::Append {
            term: 1,
            prev_index: 0,
            prev_term: 0,
            entries: vec![Entry {
                index: 1,
                term: 1,
                kind: EntryKind::Command(Bytes::from(vec![9u8; len])),
            }],
            commit: 0,
        }
    };
    let (t, four) = enc(&append(4));
    assert_eq!(dec_with(t, four, &small), Ok(append(4)));
    let (t, five) = enc(&append(5));
    assert_eq!(
        dec_with(t, five, &small),
        Err(DecodeError::BytesTooLong { len: 5, max: 4 })
    );
    let mut huge = vec![1, 0, 0, 0, 1, 1, 1, KIND_COMMAND];
    put_varint(&mut huge, u64::MAX);
    assert_eq!(
        dec_with(APPEND, huge, &small),
        Err(DecodeError::BytesTooLong {
            len: u64::MAX,
            max: 4
        })
    );
    // Zero copy: the command points into the frame.
    let frame = message_to_frame(&append(100));
    let range = frame.body.as_ptr_range();
    let Ok(RaftMessage::Append { entries, .. }) = decode_message::<Msg>(frame, &limits()) else {
        panic!("append did not decode");
    };
    let EntryKind::Command(data) = &entries[0].kind else {
        panic!("not a command");
    };
    assert!(range.contains(&data.as_ptr()));
}

#[test]
fn snapshot_chunks_are_bounded_and_sliced() {
    let small = Limits {
        max_bytes_len: 10,
        ..limits()
    };
    let chunk = |len: usize| -> Msg {
        RaftMessage::Snapshot {
            term: 1,
            index: 5,
            snapshot_term: 1,
            membership: membership(&[1], &[]),
            total_len: 100,
            offset: 0,
            data: Bytes::from(vec![1u8; len]),
        }
    };
    let ok = message_to_frame(&chunk(10));
    let range = ok.body.as_ptr_range();
    let Ok(RaftMessage::Snapshot { data, .. }) = decode_message::<Msg>(ok, &small) else {
        panic!("chunk did not decode");
    };
    assert_eq!(data.len(), 10);
    assert!(range.contains(&data.as_ptr()));
    assert_eq!(
        decode_message::<Msg>(message_to_frame(&chunk(11)), &small),
        Err(DecodeError::BytesTooLong { len: 11, max: 10 })
    );
}

#[test]
fn config_entries_with_peer_ids_count_32_bytes_a_member() {
    let mut body = vec![1, 0, 0, 0, 1, 1, 1, KIND_CONFIG, CHANGE_REMOVE];
    body.extend_from_slice(&[0; 32]);
    body.extend_from_slice(&[2; 40]);
    assert_eq!(
        decode_message::<RaftMessage<PeerId>>(
            Frame::new(ProtocolId::RAFT, APPEND, body),
            &limits()
        ),
        Err(DecodeError::UnexpectedEnd {
            needed: 64,
            remaining: 39
        })
    );
}
