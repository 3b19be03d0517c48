//! The wire encoding of Raft messages: [`RaftMessage`] implements [`WireMessage`], so Raft
//! frames are written and read like every other protocol's, with
//! [`encode_message`](crate::wire::encode_message) /
//! [`message_to_frame`](crate::wire::message_to_frame) and
//! [`decode_message`](crate::wire::decode_message). (Log entries and the hard state as a store
//! keeps them are in [`super::durable`].)
//!
//! # Layout
//!
//! Protocol id [`ProtocolId::RAFT`]. Every integer is a canonical unsigned LEB128 varint
//! ([`crate::wire::varint`]) unless said otherwise: terms and indexes are small for most of a
//! group's life, so a varint usually takes one to four bytes where a fixed `u64` takes eight,
//! and an append of many small commands is mostly payload.
//!
//! | type | message | body |
//! |------|---------|------|
//! | 0 | `Vote` | `term`, `last_index`, `last_term`, `flags: u8` (bit 0 `pre`, bit 1 `transfer`) |
//! | 1 | `VoteResponse` | `term`, `flags: u8` (bit 0 `pre`, bit 1 `granted`) |
//! | 2 | `Append` | `term`, `prev_index`, `prev_term`, `commit`, `entries: count, entry*` |
//! | 3 | `AppendResponse` | `term`, `match_index`, `flags: u8` (bit 0 `success`, bit 1 hint present), then if present `hint.index`, `hint.term` |
//! | 4 | `Heartbeat` | `term`, `commit`, `read_seq` |
//! | 5 | `HeartbeatResponse` | `term`, `read_seq` |
//! | 6 | `Snapshot` | `term`, `index`, `snapshot_term`, `total_len`, `offset`, `membership`, `data: bytes` |
//! | 7 | `SnapshotResponse` | `term`, `index`, `received` |
//! | 8 | `TimeoutNow` | `term` |
//!
//! `entry`, `membership` and `bytes` are encoded as in stable storage:
//!
//! | value | encoding |
//! |-------|----------|
//! | `entry` | `index`, `term`, `kind: u8`, then by kind: 0 `Noop` (nothing), 1 `Command` (`bytes`), 2 `Config` (`change`, `membership`) |
//! | `change` | `op: u8` (0 `AddLearner`, 1 `Promote`, 2 `Remove`), `peer` |
//! | `membership` | `voters: count, peer*`, `learners: count, peer*` |
//! | `bytes` | varint length, then the bytes |
//! | `peer` | the [`WirePeer`] encoding: varint (`u64`, `u32`), 32 raw bytes ([`PeerId`](crate::id::PeerId)) |
//!
//! # Checks
//!
//! - **Limits before allocation.** The generic wire [`Limits`] apply: an `Append` holds at most
//!   `max_list_len` entries, a command or snapshot chunk at most `max_bytes_len` bytes, a
//!   membership at most [`MAX_MEMBERS`](super::membership::MAX_MEMBERS) voters and learners
//!   together (and each set at most `max_list_len`). Each count or length is refused as soon as
//!   it is read, and a count is also checked against the bytes left (at the smallest encoding
//!   of its items), so `Vec::with_capacity` never reserves more than the input could fill. The
//!   tighter bounds of a server's [`RaftConfig`](super::RaftConfig) (`max_entries_per_append`,
//!   `max_command_len`, `snapshot_chunk_len`) are the machine's to enforce: it drops a message
//!   that exceeds them on arrival and counts it in
//!   [`RaftStats::oversized_dropped`](super::RaftStats::oversized_dropped).
//! - **Zero copy.** Commands and snapshot chunks are slices of the received frame.
//! - **Canonical.** Varints must be shortest, kind, change and flag bytes must be known
//!   ([`DecodeError::InvalidValue`] otherwise), member sets must be written in increasing
//!   order with no duplicates and no server both voter and learner, and
//!   [`decode_message`](crate::wire::decode_message) refuses trailing bytes. So a message has
//!   exactly one encoding, and whatever decodes re-encodes to the bytes it came from.
//! - **Well-formed appends.** The entries of an `Append` must be numbered `prev_index + 1`,
//!   `prev_index + 2`, …, as the machine assumes; anything else is
//!   [`DecodeError::InvalidValue`] (`entry index`).
//!
//! The encoder does not check limits or canonical rules: a sender that breaks them produces
//! bytes its peers refuse.

use bytes::{BufMut, Bytes};

use super::fields::{
    entry_len, get_entry, get_membership, membership_len, put_entry, put_membership, MIN_ENTRY_LEN,
};
use super::message::{ConflictHint, Entry, RaftMessage};
use crate::wire::codec::{bytes_encoded_len, get_bytes, get_list_len, get_u8, put_bytes};
use crate::wire::varint::{get_varint, put_varint, varint_len};
use crate::wire::{DecodeError, Limits, ProtocolId, WireMessage, WirePeer};

const VOTE: u8 = 0;
const VOTE_RESPONSE: u8 = 1;
const APPEND: u8 = 2;
const APPEND_RESPONSE: u8 = 3;
const HEARTBEAT: u8 = 4;
const HEARTBEAT_RESPONSE: u8 = 5;
const SNAPSHOT: u8 = 6;
const SNAPSHOT_RESPONSE: u8 = 7;
const TIMEOUT_NOW: u8 = 8;

/// Flag bits. `Vote`: pre, transfer. `VoteResponse`: pre, granted. `AppendResponse`: success,
/// hint present.
const FLAG_0: u8 = 1;
const FLAG_1: u8 = 2;
const FLAGS_KNOWN: u8 = FLAG_0 | FLAG_1;

fn flags(bit0: bool, bit1: bool) -> u8 {
    (if bit0 { FLAG_0 } else { 0 }) | (if bit1 { FLAG_1 } else { 0 })
}

fn get_flags(buf: &mut Bytes) -> Result<(bool, bool), DecodeError> {
    let f = get_u8(buf)?;
    if f & !FLAGS_KNOWN != 0 {
        return Err(DecodeError::InvalidValue { field: "flags" });
    }
    Ok((f & FLAG_0 != 0, f & FLAG_1 != 0))
}

/// Reads an `Append`'s entries, which must be numbered on from `prev_index`.
fn get_entries<P: WirePeer + Ord>(
    buf: &mut Bytes,
    prev_index: u64,
    limits: &Limits,
) -> Result<Vec<Entry<P>>, DecodeError> {
    let count = get_list_len(buf, limits, MIN_ENTRY_LEN)?;
    let mut entries = Vec::with_capacity(count);
    let mut expected = prev_index;
    for _ in 0..count {
        let entry = get_entry(buf, limits)?;
        // Checked: a hostile `prev_index` near u64::MAX leaves no room for an entry.
        expected = expected
            .checked_add(1)
            .filter(|i| *i == entry.index)
            .ok_or(DecodeError::InvalidValue {
                field: "entry index",
            })?;
        entries.push(entry);
    }
    Ok(entries)
}

impl<P: WirePeer + Ord> WireMessage for RaftMessage<P> {
    const PROTOCOL: ProtocolId = ProtocolId::RAFT;

    fn msg_type(&self) -> u8 {
        match self {
            RaftMessage::Vote { .. } => VOTE,
            RaftMessage::VoteResponse { .. } => VOTE_RESPONSE,
            RaftMessage::Append { .. } => APPEND,
            RaftMessage::AppendResponse { .. } => APPEND_RESPONSE,
            RaftMessage::Heartbeat { .. } => HEARTBEAT,
            RaftMessage::HeartbeatResponse { .. } => HEARTBEAT_RESPONSE,
            RaftMessage::Snapshot { .. } => SNAPSHOT,
            RaftMessage::SnapshotResponse { .. } => SNAPSHOT_RESPONSE,
            RaftMessage::TimeoutNow { .. } => TIMEOUT_NOW,
        }
    }

    fn body_len(&self) -> usize {
        let v = varint_len;
        match self {
            RaftMessage::Vote {
                term,
                last_index,
                last_term,
                ..
            } => v(*term) + v(*last_index) + v(*last_term) + 1,
            RaftMessage::VoteResponse { term, .. } => v(*term) + 1,
            RaftMessage::Append {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                v(*term)
                    + v(*prev_index)
                    + v(*prev_term)
                    + v(*commit)
                    + v(entries.len() as u64)
                    + entries.iter().map(entry_len).sum::<usize>()
            }
            RaftMessage::AppendResponse {
                term,
                match_index,
                hint,
                ..
            } => v(*term) + v(*match_index) + 1 + hint.map_or(0, |h| v(h.index) + v(h.term)),
            RaftMessage::Heartbeat {
                term,
                commit,
                read_seq,
            } => v(*term) + v(*commit) + v(*read_seq),
            RaftMessage::HeartbeatResponse { term, read_seq } => v(*term) + v(*read_seq),
            RaftMessage::Snapshot {
                term,
                index,
                snapshot_term,
                membership,
                total_len,
                offset,
                data,
            } => {
                v(*term)
                    + v(*index)
                    + v(*snapshot_term)
                    + v(*total_len)
                    + v(*offset)
                    + membership_len(membership)
                    + bytes_encoded_len(data.len())
            }
            RaftMessage::SnapshotResponse {
                term,
                index,
                received,
            } => v(*term) + v(*index) + v(*received),
            RaftMessage::TimeoutNow { term } => v(*term),
        }
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B) {
        match self {
            RaftMessage::Vote {
                term,
                last_index,
                last_term,
                pre,
                transfer,
            } => {
                put_varint(buf, *term);
                put_varint(buf, *last_index);
                put_varint(buf, *last_term);
                buf.put_u8(flags(*pre, *transfer));
            }
            RaftMessage::VoteResponse { term, pre, granted } => {
                put_varint(buf, *term);
                buf.put_u8(flags(*pre, *granted));
            }
            RaftMessage::Append {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                put_varint(buf, *term);
                put_varint(buf, *prev_index);
                put_varint(buf, *prev_term);
                put_varint(buf, *commit);
                put_varint(buf, entries.len() as u64);
                for e in entries {
                    put_entry(buf, e);
                }
            }
            RaftMessage::AppendResponse {
                term,
                success,
                match_index,
                hint,
            } => {
                put_varint(buf, *term);
                put_varint(buf, *match_index);
                buf.put_u8(flags(*success, hint.is_some()));
                if let Some(h) = hint {
                    put_varint(buf, h.index);
                    put_varint(buf, h.term);
                }
            }
            RaftMessage::Heartbeat {
                term,
                commit,
                read_seq,
            } => {
                put_varint(buf, *term);
                put_varint(buf, *commit);
                put_varint(buf, *read_seq);
            }
            RaftMessage::HeartbeatResponse { term, read_seq } => {
                put_varint(buf, *term);
                put_varint(buf, *read_seq);
            }
            RaftMessage::Snapshot {
                term,
                index,
                snapshot_term,
                membership,
                total_len,
                offset,
                data,
            } => {
                put_varint(buf, *term);
                put_varint(buf, *index);
                put_varint(buf, *snapshot_term);
                put_varint(buf, *total_len);
                put_varint(buf, *offset);
                put_membership(buf, membership);
                put_bytes(buf, data);
            }
            RaftMessage::SnapshotResponse {
                term,
                index,
                received,
            } => {
                put_varint(buf, *term);
                put_varint(buf, *index);
                put_varint(buf, *received);
            }
            RaftMessage::TimeoutNow { term } => put_varint(buf, *term),
        }
    }

    fn decode_body(msg_type: u8, buf: &mut Bytes, limits: &Limits) -> Result<Self, DecodeError> {
        // Struct fields are evaluated in the order written, which is the wire order.
        let msg = match msg_type {
            VOTE => {
                let term = get_varint(buf)?;
                let last_index = get_varint(buf)?;
                let last_term = get_varint(buf)?;
                let (pre, transfer) = get_flags(buf)?;
                RaftMessage::Vote {
                    term,
                    last_index,
                    last_term,
                    pre,
                    transfer,
                }
            }
            VOTE_RESPONSE => {
                let term = get_varint(buf)?;
                let (pre, granted) = get_flags(buf)?;
                RaftMessage::VoteResponse { term, pre, granted }
            }
            APPEND => {
                let term = get_varint(buf)?;
                let prev_index = get_varint(buf)?;
                let prev_term = get_varint(buf)?;
                let commit = get_varint(buf)?;
                let entries = get_entries(buf, prev_index, limits)?;
                RaftMessage::Append {
                    term,
                    prev_index,
                    prev_term,
                    entries,
                    commit,
                }
            }
            APPEND_RESPONSE => {
                let term = get_varint(buf)?;
                let match_index = get_varint(buf)?;
                let (success, has_hint) = get_flags(buf)?;
                let hint = if has_hint {
                    Some(ConflictHint {
                        index: get_varint(buf)?,
                        term: get_varint(buf)?,
                    })
                } else {
                    None
                };
                RaftMessage::AppendResponse {
                    term,
                    success,
                    match_index,
                    hint,
                }
            }
            HEARTBEAT => RaftMessage::Heartbeat {
                term: get_varint(buf)?,
                commit: get_varint(buf)?,
                read_seq: get_varint(buf)?,
            },
            HEARTBEAT_RESPONSE => RaftMessage::HeartbeatResponse {
                term: get_varint(buf)?,
                read_seq: get_varint(buf)?,
            },
            SNAPSHOT => RaftMessage::Snapshot {
                term: get_varint(buf)?,
                index: get_varint(buf)?,
                snapshot_term: get_varint(buf)?,
                total_len: get_varint(buf)?,
                offset: get_varint(buf)?,
                membership: get_membership(buf, limits)?,
                data: get_bytes(buf, limits)?,
            },
            SNAPSHOT_RESPONSE => RaftMessage::SnapshotResponse {
                term: get_varint(buf)?,
                index: get_varint(buf)?,
                received: get_varint(buf)?,
            },
            TIMEOUT_NOW => RaftMessage::TimeoutNow {
                term: get_varint(buf)?,
            },
            other => {
                return Err(DecodeError::UnknownMessageType {
                    protocol: Self::PROTOCOL,
                    msg_type: other,
                })
            }
        };
        Ok(msg)
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
