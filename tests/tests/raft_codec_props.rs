//! Property tests for Raft's encodings: every message round-trips through a frame (as a
//! [`WireMessage`], with the body length it announces), every entry and hard state through the
//! durable encoding, and decoding arbitrary or corrupted bytes never panics, respects the wire
//! limits, and yields only values that re-encode to exactly the bytes they came from.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use starling_core::id::PeerId;
use starling_core::raft::durable::{
    decode_entry, decode_hard_state, encode_entry, encode_hard_state, entry_encoded_len,
    hard_state_encoded_len,
};
use starling_core::raft::membership::MAX_MEMBERS;
use starling_core::raft::{
    ConfChange, ConflictHint, Entry, EntryKind, HardState, Membership, RaftMessage,
};
use starling_core::wire::{
    decode_message, encode_message, message_to_frame, Frame, FrameDecoder, Limits, ProtocolId,
    WireMessage, WirePeer,
};

type Msg = RaftMessage<u64>;

/// Peers from a small range half the time, so sets overlap and sort in interesting ways, and
/// from the whole range (multi-byte varints) otherwise.
fn peer() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..16, any::<u64>()]
}

fn membership() -> impl Strategy<Value = Membership<u64>> {
    (
        prop::collection::btree_set(peer(), 0..=MAX_MEMBERS),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(all, split)| {
            let all: Vec<u64> = all.into_iter().collect();
            let at = if all.is_empty() {
                0
            } else {
                split.index(all.len() + 1)
            };
            Membership {
                voters: all[..at].iter().copied().collect(),
                learners: all[at..].iter().copied().collect(),
            }
        })
}

fn change() -> impl Strategy<Value = ConfChange<u64>> {
    prop_oneof![
        peer().prop_map(ConfChange::AddLearner),
        peer().prop_map(ConfChange::Promote),
        peer().prop_map(ConfChange::Remove),
    ]
}

fn entry_kind() -> impl Strategy<Value = EntryKind<u64>> {
    prop_oneof![
        Just(EntryKind::Noop),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(|c| EntryKind::Command(Bytes::from(c))),
        (change(), membership())
            .prop_map(|(change, membership)| EntryKind::Config { change, membership }),
    ]
}

fn entry() -> impl Strategy<Value = Entry<u64>> {
    (any::<u64>(), any::<u64>(), entry_kind()).prop_map(|(index, term, kind)| Entry {
        index,
        term,
        kind,
    })
}

fn hard_state() -> impl Strategy<Value = HardState<u64>> {
    (any::<u64>(), prop::option::of(peer()), any::<u64>())
        .prop_map(|(term, vote, commit)| HardState { term, vote, commit })
}

fn append() -> impl Strategy<Value = Msg> {
    (
        any::<u64>(),
        prop_oneof![0u64..1000, any::<u64>().prop_map(|i| i / 2)],
        any::<u64>(),
        prop::collection::vec((any::<u64>(), entry_kind()), 0..24),
        any::<u64>(),
    )
        .prop_map(|(term, prev_index, prev_term, entries, commit)| {
            // Entries are numbered on from prev_index, as the decoder requires.
            let entries = entries
                .into_iter()
                .zip(prev_index + 1..)
                .map(|((term, kind), index)| Entry { index, term, kind })
                .collect();
            RaftMessage::Append {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            }
        })
}

fn message() -> impl Strategy<Value = Msg> {
    let n = any::<u64>;
    prop_oneof![
        (n(), n(), n(), any::<bool>(), any::<bool>()).prop_map(
            |(term, last_index, last_term, pre, transfer)| RaftMessage::Vote {
                term,
                last_index,
                last_term,
                pre,
                transfer
            }
        ),
        (n(), any::<bool>(), any::<bool>())
            .prop_map(|(term, pre, granted)| RaftMessage::VoteResponse { term, pre, granted }),
        append(),
        (n(), any::<bool>(), n(), prop::option::of((n(), n()))).prop_map(
            |(term, success, match_index, hint)| RaftMessage::AppendResponse {
                term,
                success,
                match_index,
                hint: hint.map(|(index, term)| ConflictHint { index, term }),
            }
        ),
        (n(), n(), n()).prop_map(|(term, commit, read_seq)| RaftMessage::Heartbeat {
            term,
            commit,
            read_seq
        }),
        (n(), n()).prop_map(|(term, read_seq)| RaftMessage::HeartbeatResponse { term, read_seq }),
        (
            (n(), n(), n()),
            membership(),
            (n(), n()),
            prop::collection::vec(any::<u8>(), 0..2048)
        )
            .prop_map(
                |((term, index, snapshot_term), membership, (total_len, offset), data)| {
                    RaftMessage::Snapshot {
                        term,
                        index,
                        snapshot_term,
                        membership,
                        total_len,
                        offset,
                        data: Bytes::from(data),
                    }
                }
            ),
        (n(), n(), n()).prop_map(|(term, index, received)| RaftMessage::SnapshotResponse {
            term,
            index,
            received
        }),
        n().prop_map(|term| RaftMessage::TimeoutNow { term }),
    ]
}

fn encode_msg<P: WirePeer + Ord>(msg: &RaftMessage<P>) -> Frame {
    message_to_frame(msg)
}

/// Small limits, so arbitrary bytes run into them.
fn small_limits() -> Limits {
    Limits {
        max_frame_len: 1 << 10,
        max_list_len: 4,
        max_bytes_len: 16,
    }
}

fn check_membership(m: &Membership<u64>, limits: &Limits) -> Result<(), TestCaseError> {
    prop_assert!(m.voters.len() + m.learners.len() <= MAX_MEMBERS);
    prop_assert!(m.voters.len() <= limits.max_list_len as usize);
    prop_assert!(m.learners.len() <= limits.max_list_len as usize);
    prop_assert!(m.voters.is_disjoint(&m.learners));
    Ok(())
}

fn check_entry(e: &Entry<u64>, limits: &Limits) -> Result<(), TestCaseError> {
    match &e.kind {
        EntryKind::Command(c) => prop_assert!(c.len() <= limits.max_bytes_len as usize),
        EntryKind::Config { membership, .. } => check_membership(membership, limits)?,
        EntryKind::Noop => {}
    }
    Ok(())
}

/// Decodes `body` as a message of type `msg_type` under `limits`; whatever decodes must respect
/// them and re-encode to exactly that type and body. The same bytes decoded as a stored entry
/// or hard state are held to the same rules.
fn check_decode(msg_type: u8, body: &[u8], limits: &Limits) -> Result<(), TestCaseError> {
    let bytes = Bytes::copy_from_slice(body);
    let frame = Frame::new(ProtocolId::RAFT, msg_type, bytes.clone());
    if let Ok(msg) = decode_message::<RaftMessage<u64>>(frame.clone(), limits) {
        match &msg {
            RaftMessage::Append {
                prev_index,
                entries,
                ..
            } => {
                prop_assert!(entries.len() <= limits.max_list_len as usize);
                for (i, e) in entries.iter().enumerate() {
                    prop_assert_eq!(e.index, prev_index + 1 + i as u64);
                    check_entry(e, limits)?;
                }
            }
            RaftMessage::Snapshot {
                membership, data, ..
            } => {
                prop_assert!(data.len() <= limits.max_bytes_len as usize);
                check_membership(membership, limits)?;
            }
            _ => {}
        }
        prop_assert_eq!(msg.body_len(), body.len());
        prop_assert_eq!(encode_msg(&msg), frame);
    }
    if let Ok(e) = decode_entry::<u64>(bytes.clone(), limits) {
        check_entry(&e, limits)?;
        let mut out = BytesMut::new();
        encode_entry(&e, &mut out);
        prop_assert_eq!(out.freeze(), bytes.clone());
    }
    if let Ok(hs) = decode_hard_state::<u64>(bytes.clone()) {
        let mut out = BytesMut::new();
        encode_hard_state(&hs, &mut out);
        prop_assert_eq!(out.freeze(), bytes);
    }
    Ok(())
}

proptest! {
    #[test]
    fn messages_round_trip(msg in message()) {
        let frame = encode_msg(&msg);
        prop_assert_eq!(frame.protocol, ProtocolId::RAFT);
        prop_assert_eq!(frame.body.len(), msg.body_len());
        prop_assert_eq!(decode_message(frame, &Limits::DEFAULT), Ok(msg));
    }

    /// Messages written back to back with `encode_message` and cut into frames by the streaming
    /// decoder come back in order.
    #[test]
    fn message_streams_round_trip(msgs in prop::collection::vec(message(), 1..6)) {
        let mut wire = BytesMut::new();
        for msg in &msgs {
            encode_message(msg, &mut wire);
        }
        let mut decoder = FrameDecoder::new(Limits::DEFAULT);
        let mut back = Vec::new();
        while let Some(frame) = decoder.decode(&mut wire).unwrap() {
            back.push(decode_message::<RaftMessage<u64>>(frame, &Limits::DEFAULT).unwrap());
        }
        prop_assert!(wire.is_empty());
        prop_assert_eq!(back, msgs);
    }

    #[test]
    fn entries_round_trip(e in entry()) {
        let mut out = BytesMut::new();
        encode_entry(&e, &mut out);
        prop_assert_eq!(out.len(), entry_encoded_len(&e));
        prop_assert_eq!(decode_entry(out.freeze(), &Limits::DEFAULT), Ok(e));
    }

    #[test]
    fn hard_states_round_trip(hs in hard_state()) {
        let mut out = BytesMut::new();
        encode_hard_state(&hs, &mut out);
        prop_assert_eq!(out.len(), hard_state_encoded_len(&hs));
        prop_assert_eq!(decode_hard_state(out.freeze()), Ok(hs));
    }

    /// The node's peer type: ids are 32 raw bytes.
    #[test]
    fn peer_id_values_round_trip(
        ids in prop::collection::btree_set(any::<[u8; 32]>(), 1..=MAX_MEMBERS),
        vote in any::<bool>(),
        term in any::<u64>(),
    ) {
        let ids: Vec<PeerId> = ids.into_iter().map(PeerId::from_bytes).collect();
        let (voters, learners) = ids.split_at(ids.len().div_ceil(2));
        let membership = Membership {
            voters: voters.iter().copied().collect::<BTreeSet<_>>(),
            learners: learners.iter().copied().collect(),
        };
        let e = Entry {
            index: 7,
            term,
            kind: EntryKind::Config { change: ConfChange::Remove(ids[0]), membership: membership.clone() },
        };
        let msg = RaftMessage::Append {
            term,
            prev_index: 6,
            prev_term: term,
            entries: vec![e.clone()],
            commit: 6,
        };
        let frame = encode_msg(&msg);
        prop_assert_eq!(frame.body.len(), msg.body_len());
        prop_assert_eq!(decode_message(frame, &Limits::DEFAULT), Ok(msg));
        let mut out = BytesMut::new();
        encode_entry(&e, &mut out);
        prop_assert_eq!(decode_entry(out.freeze(), &Limits::DEFAULT), Ok(e));
        let hs = HardState { term, vote: vote.then_some(ids[0]), commit: 3 };
        let mut out = BytesMut::new();
        encode_hard_state(&hs, &mut out);
        prop_assert_eq!(out.len(), hard_state_encoded_len(&hs));
        prop_assert_eq!(decode_hard_state(out.freeze()), Ok(hs));
    }

    /// Arbitrary bodies, under a message type weighted towards the defined ones, never panic
    /// the decoders; whatever decodes respects the limits and is canonical.
    #[test]
    fn arbitrary_bytes_decode_or_fail_cleanly(
        msg_type in prop_oneof![3 => 0u8..9, 1 => any::<u8>()],
        body in prop::collection::vec(any::<u8>(), 0..400),
        small in any::<bool>(),
    ) {
        let limits = if small { small_limits() } else { Limits::DEFAULT };
        check_decode(msg_type, &body, &limits)?;
    }

    /// Valid encodings with a byte overwritten, a cut or an insertion reach further into the
    /// decoder than random bytes; the same rules hold.
    #[test]
    fn corrupted_messages_decode_or_fail_cleanly(
        msg in message(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        how in 0u8..3,
        small in any::<bool>(),
    ) {
        // The message type and body as one string, so the type can be corrupted too.
        let frame = encode_msg(&msg);
        let mut bytes = vec![frame.msg_type];
        bytes.extend_from_slice(&frame.body);
        let i = at.index(bytes.len());
        match how {
            0 => bytes[i] = byte,
            1 => bytes.truncate(i.max(1)),
            _ => bytes.insert(i, byte),
        }
        let limits = if small { small_limits() } else { Limits::DEFAULT };
        check_decode(bytes[0], &bytes[1..], &limits)?;
    }
}
