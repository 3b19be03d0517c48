//! The wire encoding of Raft messages, and the durable encoding of log entries and hard state.
//!
//! [`encode`] writes a [`RaftMessage`] as one tag byte followed by its fields; [`decode`] reads
//! it back, checking every count and length against [`DecodeLimits`] (taken from the
//! [`RaftConfig`]) before anything is sliced or allocated. [`encode_entry`] / [`decode_entry`]
//! and [`encode_hard_state`] / [`decode_hard_state`] give a durable store opaque bytes for the
//! two things it persists. Peers are written by a [`PeerCodec`]: a varint for `u64` and `u32`
//! (simulations, tests), the 32 raw bytes for a [`PeerId`].
//!
//! # Layout
//!
//! Every integer is a canonical unsigned LEB128 varint ([`crate::wire::varint`]) unless said
//! otherwise: terms and indexes are small for most of a group's life, so a varint usually takes
//! one to four bytes where a fixed `u64` takes eight, and an append of many small commands is
//! mostly payload.
//!
//! | tag | message | fields after the tag |
//! |-----|---------|----------------------|
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
//! | value | encoding |
//! |-------|----------|
//! | `entry` | `index`, `term`, `kind: u8`, then by kind: 0 `Noop` (nothing), 1 `Command` (`bytes`), 2 `Config` (`change`, `membership`) |
//! | `change` | `op: u8` (0 `AddLearner`, 1 `Promote`, 2 `Remove`), `peer` |
//! | `membership` | `voters: count, peer*`, `learners: count, peer*` |
//! | `bytes` | varint length, then the bytes |
//! | hard state | `term`, `commit`, `vote: u8` (0 none, 1 some), then if some `peer` |
//! | `peer` | per [`PeerCodec`]: varint (`u64`, `u32`), 32 raw bytes ([`PeerId`]) |
//!
//! # Checks
//!
//! - **Limits before allocation.** An `Append` holds at most `max_entries_per_append` entries,
//!   a command at most `max_command_len` bytes, a snapshot chunk at most `snapshot_chunk_len`
//!   bytes, a membership at most [`MAX_MEMBERS`] voters and learners together. Each count or
//!   length is refused as soon as it is read, and a count is also checked against the bytes
//!   left (at the smallest encoding of its items), so `Vec::with_capacity` never reserves more
//!   than the input could fill.
//! - **Zero copy.** Decoding from [`Bytes`] slices commands and snapshot chunks out of the
//!   received buffer; nothing is copied. [`decode_slice`] copies its input once, into one
//!   buffer, then does the same.
//! - **Canonical.** Varints must be shortest, tags and flag bits must be known, member sets
//!   must be written in increasing order with no duplicates and no server both voter and
//!   learner, and the input must be consumed exactly. So a value has exactly one encoding, and
//!   whatever decodes re-encodes to the bytes it came from.
//! - **Well-formed appends.** The entries of an `Append` must be numbered `prev_index + 1`,
//!   `prev_index + 2`, …, as the machine assumes; anything else is refused here.
//! - **No panics.** Every reader checks what remains before reading; errors are
//!   [`RaftDecodeError`].
//!
//! The encoder does not check limits or canonical rules: a sender that breaks them produces
//! bytes its peers refuse.

use core::fmt;
use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::config::RaftConfig;
use super::membership::{ConfChange, Membership, MAX_MEMBERS};
use super::message::{ConflictHint, Entry, EntryKind, HardState, RaftMessage};
use crate::id::PeerId;
use crate::wire::codec::{ensure_remaining, get_array, get_u8};
use crate::wire::varint::{get_varint, get_varint_u32, put_varint, varint_len};
use crate::wire::DecodeError;

const VOTE: u8 = 0;
const VOTE_RESPONSE: u8 = 1;
const APPEND: u8 = 2;
const APPEND_RESPONSE: u8 = 3;
const HEARTBEAT: u8 = 4;
const HEARTBEAT_RESPONSE: u8 = 5;
const SNAPSHOT: u8 = 6;
const SNAPSHOT_RESPONSE: u8 = 7;
const TIMEOUT_NOW: u8 = 8;

const KIND_NOOP: u8 = 0;
const KIND_COMMAND: u8 = 1;
const KIND_CONFIG: u8 = 2;

const CHANGE_ADD_LEARNER: u8 = 0;
const CHANGE_PROMOTE: u8 = 1;
const CHANGE_REMOVE: u8 = 2;

const VOTE_NONE: u8 = 0;
const VOTE_SOME: u8 = 1;

/// Flag bits. `Vote`: pre, transfer. `VoteResponse`: pre, granted. `AppendResponse`: success,
/// hint present.
const FLAG_0: u8 = 1;
const FLAG_1: u8 = 2;
const FLAGS_KNOWN: u8 = FLAG_0 | FLAG_1;

/// The fewest bytes an entry takes (one-byte index, term and kind), so an entry count can be
/// checked against the bytes left before allocating.
const MIN_ENTRY_LEN: usize = 3;

/// How a peer id is written. Implemented for `u64` and `u32` (varints) and [`PeerId`] (32 raw
/// bytes); an application naming members otherwise implements it for its own type.
pub trait PeerCodec: Sized {
    /// The fewest bytes one encoded peer takes (at least 1), so member counts can be checked
    /// against the bytes left before allocating.
    const MIN_ENCODED_LEN: usize;
    /// Exact encoded length of `self`.
    fn encoded_len(&self) -> usize;
    /// Appends `self`.
    fn encode<B: BufMut>(&self, buf: &mut B);
    /// Reads a peer; must never panic, and must accept only what [`PeerCodec::encode`] writes
    /// (so encodings stay canonical).
    fn decode(buf: &mut Bytes) -> Result<Self, RaftDecodeError>;
}

impl PeerCodec for u64 {
    const MIN_ENCODED_LEN: usize = 1;
    fn encoded_len(&self) -> usize {
        varint_len(*self)
    }
    fn encode<B: BufMut>(&self, buf: &mut B) {
        put_varint(buf, *self);
    }
    fn decode(buf: &mut Bytes) -> Result<Self, RaftDecodeError> {
        Ok(get_varint(buf)?)
    }
}

impl PeerCodec for u32 {
    const MIN_ENCODED_LEN: usize = 1;
    fn encoded_len(&self) -> usize {
        varint_len(u64::from(*self))
    }
    fn encode<B: BufMut>(&self, buf: &mut B) {
        put_varint(buf, u64::from(*self));
    }
    fn decode(buf: &mut Bytes) -> Result<Self, RaftDecodeError> {
        Ok(get_varint_u32(buf)?)
    }
}

impl PeerCodec for PeerId {
    const MIN_ENCODED_LEN: usize = 32;
    fn encoded_len(&self) -> usize {
        32
    }
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_slice(self.as_bytes());
    }
    fn decode(buf: &mut Bytes) -> Result<Self, RaftDecodeError> {
        Ok(PeerId::from_bytes(get_array(buf)?))
    }
}

/// Bounds enforced while decoding. Build it from the receiver's [`RaftConfig`] (both ends of a
/// group should share one configuration: a sender exceeding the receiver's limits has its
/// messages refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecodeLimits {
    /// Most entries in one `Append` (`max_entries_per_append`).
    pub max_entries: usize,
    /// Longest command (`max_command_len`).
    pub max_command_len: usize,
    /// Longest snapshot chunk (`snapshot_chunk_len`).
    pub max_chunk_len: usize,
}

impl DecodeLimits {
    /// The limits a server configured with `config` accepts.
    pub fn from_config(config: &RaftConfig) -> Self {
        DecodeLimits {
            max_entries: config.max_entries_per_append,
            max_command_len: config.max_command_len,
            max_chunk_len: config.snapshot_chunk_len,
        }
    }
}

impl Default for DecodeLimits {
    /// The limits of [`RaftConfig::default`].
    fn default() -> Self {
        DecodeLimits::from_config(&RaftConfig::default())
    }
}

impl From<&RaftConfig> for DecodeLimits {
    fn from(config: &RaftConfig) -> Self {
        DecodeLimits::from_config(config)
    }
}

/// Why bytes could not be decoded as a Raft message, entry or hard state.
///
/// Apart from a routing bug, every cause means the sender wrote bytes a correct server never
/// writes with the receiver's configuration: drop the message (and, on a stream, the session).
/// Read from storage, it means the stored bytes are corrupt.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RaftDecodeError {
    /// The input ended in the middle of a field.
    Truncated {
        /// How many bytes the field needed (at least).
        needed: usize,
        /// How many bytes were left.
        remaining: usize,
    },
    /// A varint is wider than its field.
    VarintOverflow,
    /// A varint is longer than its value needs.
    VarintNonCanonical,
    /// A tag byte names no known message, entry kind, change or vote state.
    UnknownTag {
        /// Which tag: `"message"`, `"entry kind"`, `"change"` or `"vote"`.
        field: &'static str,
        /// The byte found.
        tag: u8,
    },
    /// A field holds a value its type does not allow: unknown flag bits, member sets out of
    /// order or overlapping, entries not numbered on from `prev_index`.
    InvalidValue {
        /// The offending field.
        field: &'static str,
    },
    /// An `Append` holds more entries than `max_entries`.
    TooManyEntries {
        /// The announced count.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// A command is longer than `max_command_len`.
    CommandTooLong {
        /// The announced length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// A membership holds more than [`MAX_MEMBERS`] voters and learners together.
    TooManyMembers {
        /// The announced count (voters, or voters plus learners).
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// A snapshot chunk is longer than `max_chunk_len`.
    ChunkTooLong {
        /// The announced length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// Bytes were left after the value.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// Any other error from the shared field readers of [`crate::wire`].
    Wire(DecodeError),
}

impl From<DecodeError> for RaftDecodeError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::UnexpectedEnd { needed, remaining } => {
                RaftDecodeError::Truncated { needed, remaining }
            }
            DecodeError::VarintOverflow => RaftDecodeError::VarintOverflow,
            DecodeError::VarintNonCanonical => RaftDecodeError::VarintNonCanonical,
            other => RaftDecodeError::Wire(other),
        }
    }
}

impl fmt::Display for RaftDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaftDecodeError::Truncated { needed, remaining } => write!(
                f,
                "input ended early: needed {needed} bytes, {remaining} remaining"
            ),
            RaftDecodeError::VarintOverflow => f.write_str("varint too large for its field"),
            RaftDecodeError::VarintNonCanonical => {
                f.write_str("varint is not in its shortest form")
            }
            RaftDecodeError::UnknownTag { field, tag } => write!(f, "unknown {field} tag {tag}"),
            RaftDecodeError::InvalidValue { field } => {
                write!(f, "invalid value in field `{field}`")
            }
            RaftDecodeError::TooManyEntries { len, max } => {
                write!(f, "append of {len} entries exceeds the limit of {max}")
            }
            RaftDecodeError::CommandTooLong { len, max } => {
                write!(f, "command of {len} bytes exceeds the limit of {max}")
            }
            RaftDecodeError::TooManyMembers { len, max } => {
                write!(f, "membership of {len} servers exceeds the limit of {max}")
            }
            RaftDecodeError::ChunkTooLong { len, max } => {
                write!(
                    f,
                    "snapshot chunk of {len} bytes exceeds the limit of {max}"
                )
            }
            RaftDecodeError::TrailingBytes { count } => {
                write!(f, "{count} bytes left over after the value")
            }
            RaftDecodeError::Wire(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RaftDecodeError {}

// ---------------------------------------------------------------------------------------------
// Encoding

fn flags(bit0: bool, bit1: bool) -> u8 {
    (if bit0 { FLAG_0 } else { 0 }) | (if bit1 { FLAG_1 } else { 0 })
}

fn bytes_len(len: usize) -> usize {
    varint_len(len as u64) + len
}

fn put_bytes<B: BufMut>(buf: &mut B, data: &[u8]) {
    put_varint(buf, data.len() as u64);
    buf.put_slice(data);
}

fn members_len<P: PeerCodec>(set: &BTreeSet<P>) -> usize {
    varint_len(set.len() as u64) + set.iter().map(PeerCodec::encoded_len).sum::<usize>()
}

fn membership_len<P: PeerCodec + Ord>(m: &Membership<P>) -> usize {
    members_len(&m.voters) + members_len(&m.learners)
}

fn put_members<P: PeerCodec, B: BufMut>(buf: &mut B, set: &BTreeSet<P>) {
    put_varint(buf, set.len() as u64);
    for p in set {
        p.encode(buf);
    }
}

fn put_membership<P: PeerCodec + Ord, B: BufMut>(buf: &mut B, m: &Membership<P>) {
    put_members(buf, &m.voters);
    put_members(buf, &m.learners);
}

fn change_parts<P>(change: &ConfChange<P>) -> (u8, &P) {
    match change {
        ConfChange::AddLearner(p) => (CHANGE_ADD_LEARNER, p),
        ConfChange::Promote(p) => (CHANGE_PROMOTE, p),
        ConfChange::Remove(p) => (CHANGE_REMOVE, p),
    }
}

fn entry_len<P: PeerCodec + Ord>(e: &Entry<P>) -> usize {
    let kind = match &e.kind {
        EntryKind::Noop => 0,
        EntryKind::Command(data) => bytes_len(data.len()),
        EntryKind::Config { change, membership } => {
            1 + change_parts(change).1.encoded_len() + membership_len(membership)
        }
    };
    varint_len(e.index) + varint_len(e.term) + 1 + kind
}

fn put_entry<P: PeerCodec + Ord, B: BufMut>(buf: &mut B, e: &Entry<P>) {
    put_varint(buf, e.index);
    put_varint(buf, e.term);
    match &e.kind {
        EntryKind::Noop => buf.put_u8(KIND_NOOP),
        EntryKind::Command(data) => {
            buf.put_u8(KIND_COMMAND);
            put_bytes(buf, data);
        }
        EntryKind::Config { change, membership } => {
            buf.put_u8(KIND_CONFIG);
            let (op, peer) = change_parts(change);
            buf.put_u8(op);
            peer.encode(buf);
            put_membership(buf, membership);
        }
    }
}

/// Exact length of [`encode`]'s output for `msg`.
pub fn encoded_len<P: PeerCodec + Ord>(msg: &RaftMessage<P>) -> usize {
    let v = varint_len;
    1 + match msg {
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
                + bytes_len(data.len())
        }
        RaftMessage::SnapshotResponse {
            term,
            index,
            received,
        } => v(*term) + v(*index) + v(*received),
        RaftMessage::TimeoutNow { term } => v(*term),
    }
}

/// Appends `msg` to `out` (reserving exactly what it needs first).
pub fn encode<P: PeerCodec + Ord>(msg: &RaftMessage<P>, out: &mut BytesMut) {
    let len = encoded_len(msg);
    out.reserve(len);
    let start = out.len();
    put_message(out, msg);
    debug_assert_eq!(out.len() - start, len, "encoded_len disagrees with encode");
}

fn put_message<P: PeerCodec + Ord, B: BufMut>(buf: &mut B, msg: &RaftMessage<P>) {
    match msg {
        RaftMessage::Vote {
            term,
            last_index,
            last_term,
            pre,
            transfer,
        } => {
            buf.put_u8(VOTE);
            put_varint(buf, *term);
            put_varint(buf, *last_index);
            put_varint(buf, *last_term);
            buf.put_u8(flags(*pre, *transfer));
        }
        RaftMessage::VoteResponse { term, pre, granted } => {
            buf.put_u8(VOTE_RESPONSE);
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
            buf.put_u8(APPEND);
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
            buf.put_u8(APPEND_RESPONSE);
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
            buf.put_u8(HEARTBEAT);
            put_varint(buf, *term);
            put_varint(buf, *commit);
            put_varint(buf, *read_seq);
        }
        RaftMessage::HeartbeatResponse { term, read_seq } => {
            buf.put_u8(HEARTBEAT_RESPONSE);
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
            buf.put_u8(SNAPSHOT);
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
            buf.put_u8(SNAPSHOT_RESPONSE);
            put_varint(buf, *term);
            put_varint(buf, *index);
            put_varint(buf, *received);
        }
        RaftMessage::TimeoutNow { term } => {
            buf.put_u8(TIMEOUT_NOW);
            put_varint(buf, *term);
        }
    }
}

/// Exact length of [`encode_entry`]'s output for `entry`.
pub fn entry_encoded_len<P: PeerCodec + Ord>(entry: &Entry<P>) -> usize {
    entry_len(entry)
}

/// Appends `entry` (the same encoding as inside an `Append`).
pub fn encode_entry<P: PeerCodec + Ord>(entry: &Entry<P>, out: &mut BytesMut) {
    out.reserve(entry_len(entry));
    put_entry(out, entry);
}

/// Exact length of [`encode_hard_state`]'s output for `hs`.
pub fn hard_state_encoded_len<P: PeerCodec>(hs: &HardState<P>) -> usize {
    varint_len(hs.term) + varint_len(hs.commit) + 1 + hs.vote.as_ref().map_or(0, P::encoded_len)
}

/// Appends `hs`.
pub fn encode_hard_state<P: PeerCodec>(hs: &HardState<P>, out: &mut BytesMut) {
    out.reserve(hard_state_encoded_len(hs));
    put_varint(out, hs.term);
    put_varint(out, hs.commit);
    match &hs.vote {
        None => out.put_u8(VOTE_NONE),
        Some(p) => {
            out.put_u8(VOTE_SOME);
            p.encode(out);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

fn get_flags(buf: &mut Bytes) -> Result<(bool, bool), RaftDecodeError> {
    let f = get_u8(buf)?;
    if f & !FLAGS_KNOWN != 0 {
        return Err(RaftDecodeError::InvalidValue { field: "flags" });
    }
    Ok((f & FLAG_0 != 0, f & FLAG_1 != 0))
}

/// Reads a length-prefixed byte string of at most `max` bytes as a slice of `buf`; `too_long`
/// builds the error for an announced length above `max`.
fn get_bounded_bytes(
    buf: &mut Bytes,
    max: usize,
    too_long: fn(u64, usize) -> RaftDecodeError,
) -> Result<Bytes, RaftDecodeError> {
    let len = get_varint(buf)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= max)
        .ok_or(too_long(len, max))?;
    ensure_remaining(buf, len)?;
    Ok(buf.split_to(len))
}

/// Reads a strictly increasing set of at most `max` peers.
fn get_members<P: PeerCodec + Ord>(
    buf: &mut Bytes,
    max: usize,
    already: usize,
    field: &'static str,
) -> Result<BTreeSet<P>, RaftDecodeError> {
    let count = get_varint(buf)?;
    let count = usize::try_from(count).ok().filter(|c| *c <= max).ok_or(
        RaftDecodeError::TooManyMembers {
            len: count.saturating_add(already as u64),
            max: MAX_MEMBERS,
        },
    )?;
    ensure_remaining(buf, count.saturating_mul(P::MIN_ENCODED_LEN))?;
    let mut set = BTreeSet::new();
    for _ in 0..count {
        let p = P::decode(buf)?;
        // Strictly increasing: sorted and free of duplicates, so the set has one encoding.
        if set.last().is_some_and(|last| *last >= p) {
            return Err(RaftDecodeError::InvalidValue { field });
        }
        set.insert(p);
    }
    Ok(set)
}

fn get_membership<P: PeerCodec + Ord>(buf: &mut Bytes) -> Result<Membership<P>, RaftDecodeError> {
    let voters = get_members::<P>(buf, MAX_MEMBERS, 0, "voters")?;
    let learners = get_members::<P>(buf, MAX_MEMBERS - voters.len(), voters.len(), "learners")?;
    if learners.iter().any(|p| voters.contains(p)) {
        return Err(RaftDecodeError::InvalidValue { field: "learners" });
    }
    Ok(Membership { voters, learners })
}

fn get_entry<P: PeerCodec + Ord>(
    buf: &mut Bytes,
    limits: &DecodeLimits,
) -> Result<Entry<P>, RaftDecodeError> {
    let index = get_varint(buf)?;
    let term = get_varint(buf)?;
    let kind = match get_u8(buf)? {
        KIND_NOOP => EntryKind::Noop,
        KIND_COMMAND => EntryKind::Command(get_bounded_bytes(
            buf,
            limits.max_command_len,
            |len, max| RaftDecodeError::CommandTooLong { len, max },
        )?),
        KIND_CONFIG => {
            let change = match get_u8(buf)? {
                CHANGE_ADD_LEARNER => ConfChange::AddLearner(P::decode(buf)?),
                CHANGE_PROMOTE => ConfChange::Promote(P::decode(buf)?),
                CHANGE_REMOVE => ConfChange::Remove(P::decode(buf)?),
                tag => {
                    return Err(RaftDecodeError::UnknownTag {
                        field: "change",
                        tag,
                    })
                }
            };
            EntryKind::Config {
                change,
                membership: get_membership(buf)?,
            }
        }
        tag => {
            return Err(RaftDecodeError::UnknownTag {
                field: "entry kind",
                tag,
            })
        }
    };
    Ok(Entry { index, term, kind })
}

fn get_entries<P: PeerCodec + Ord>(
    buf: &mut Bytes,
    prev_index: u64,
    limits: &DecodeLimits,
) -> Result<Vec<Entry<P>>, RaftDecodeError> {
    let count = get_varint(buf)?;
    let count = usize::try_from(count)
        .ok()
        .filter(|c| *c <= limits.max_entries)
        .ok_or(RaftDecodeError::TooManyEntries {
            len: count,
            max: limits.max_entries,
        })?;
    ensure_remaining(buf, count.saturating_mul(MIN_ENTRY_LEN))?;
    let mut entries = Vec::with_capacity(count);
    let mut expected = prev_index;
    for _ in 0..count {
        let entry = get_entry(buf, limits)?;
        expected = expected
            .checked_add(1)
            .filter(|i| *i == entry.index)
            .ok_or(RaftDecodeError::InvalidValue {
                field: "entry index",
            })?;
        entries.push(entry);
    }
    Ok(entries)
}

fn get_message<P: PeerCodec + Ord>(
    buf: &mut Bytes,
    limits: &DecodeLimits,
) -> Result<RaftMessage<P>, RaftDecodeError> {
    // Struct fields are evaluated in the order written, which is the wire order.
    let msg = match get_u8(buf)? {
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
            membership: get_membership(buf)?,
            data: get_bounded_bytes(buf, limits.max_chunk_len, |len, max| {
                RaftDecodeError::ChunkTooLong { len, max }
            })?,
        },
        SNAPSHOT_RESPONSE => RaftMessage::SnapshotResponse {
            term: get_varint(buf)?,
            index: get_varint(buf)?,
            received: get_varint(buf)?,
        },
        TIMEOUT_NOW => RaftMessage::TimeoutNow {
            term: get_varint(buf)?,
        },
        tag => {
            return Err(RaftDecodeError::UnknownTag {
                field: "message",
                tag,
            })
        }
    };
    Ok(msg)
}

fn get_hard_state<P: PeerCodec>(buf: &mut Bytes) -> Result<HardState<P>, RaftDecodeError> {
    let term = get_varint(buf)?;
    let commit = get_varint(buf)?;
    let vote = match get_u8(buf)? {
        VOTE_NONE => None,
        VOTE_SOME => Some(P::decode(buf)?),
        tag => return Err(RaftDecodeError::UnknownTag { field: "vote", tag }),
    };
    Ok(HardState { term, vote, commit })
}

/// Runs `read` over all of `input`, refusing leftovers.
fn whole<T>(
    mut input: Bytes,
    read: impl FnOnce(&mut Bytes) -> Result<T, RaftDecodeError>,
) -> Result<T, RaftDecodeError> {
    let value = read(&mut input)?;
    if !input.is_empty() {
        return Err(RaftDecodeError::TrailingBytes { count: input.len() });
    }
    Ok(value)
}

/// Decodes one message that fills `input` exactly. Commands and snapshot chunks are slices of
/// `input`, not copies.
pub fn decode<P: PeerCodec + Ord>(
    input: Bytes,
    limits: &DecodeLimits,
) -> Result<RaftMessage<P>, RaftDecodeError> {
    whole(input, |buf| get_message(buf, limits))
}

/// As [`decode`], from a borrowed slice: copies `input` once into a shared buffer, from which
/// commands and chunks are then sliced.
pub fn decode_slice<P: PeerCodec + Ord>(
    input: &[u8],
    limits: &DecodeLimits,
) -> Result<RaftMessage<P>, RaftDecodeError> {
    decode(Bytes::copy_from_slice(input), limits)
}

/// Decodes one entry that fills `input` exactly (a command is a slice of `input`).
pub fn decode_entry<P: PeerCodec + Ord>(
    input: Bytes,
    limits: &DecodeLimits,
) -> Result<Entry<P>, RaftDecodeError> {
    whole(input, |buf| get_entry(buf, limits))
}

/// Decodes one hard state that fills `input` exactly.
pub fn decode_hard_state<P: PeerCodec>(input: Bytes) -> Result<HardState<P>, RaftDecodeError> {
    whole(input, get_hard_state)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Msg = RaftMessage<u64>;

    fn limits() -> DecodeLimits {
        DecodeLimits::default()
    }

    fn enc(msg: &Msg) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(msg, &mut out);
        out.to_vec()
    }

    fn dec(bytes: impl Into<Vec<u8>>) -> Result<Msg, RaftDecodeError> {
        decode(Bytes::from(bytes.into()), &limits())
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
    fn every_message_round_trips_with_exact_len() {
        for msg in samples() {
            let bytes = enc(&msg);
            assert_eq!(bytes.len(), encoded_len(&msg), "{msg:?}");
            assert_eq!(dec(bytes.clone()), Ok(msg.clone()));
            assert_eq!(decode_slice(&bytes, &limits()), Ok(msg));
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
        assert_eq!(enc(&vote), [0, 0xac, 0x02, 7, 2, 3]);
        let resp: Msg = RaftMessage::AppendResponse {
            term: 2,
            success: false,
            match_index: 9,
            hint: Some(ConflictHint { index: 5, term: 1 }),
        };
        assert_eq!(enc(&resp), [3, 2, 9, 2, 5, 1]);
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
            [
                2, 2, 3, 1, 3, 2, // tag, term, prev_index, prev_term, commit, count
                4, 2, 1, 2, b'a', b'b', // command entry
                5, 2, 2, 0, 4, // config entry: AddLearner(4)
                3, 1, 2, 3, 1, 4, // voters {1, 2, 3}, learners {4}
            ]
        );
        let mut out = BytesMut::new();
        encode_hard_state(
            &HardState {
                term: 7,
                vote: Some(3u64),
                commit: 5,
            },
            &mut out,
        );
        assert_eq!(out.as_ref(), [7, 5, 1, 3]);
        let mut out = BytesMut::new();
        encode_hard_state(&HardState::<PeerId>::default(), &mut out);
        assert_eq!(out.as_ref(), [0, 0, 0]);
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
            let mut out = BytesMut::new();
            encode_entry(&e, &mut out);
            assert_eq!(out.len(), entry_encoded_len(&e));
            assert_eq!(decode_entry(out.freeze(), &limits()), Ok(e));
        }
        for hs in [
            HardState::default(),
            HardState {
                term: u64::MAX,
                vote: Some(u64::MAX),
                commit: 12,
            },
        ] {
            let mut out = BytesMut::new();
            encode_hard_state(&hs, &mut out);
            assert_eq!(out.len(), hard_state_encoded_len(&hs));
            assert_eq!(decode_hard_state(out.freeze()), Ok(hs));
        }
    }

    #[test]
    fn peer_ids_and_u32_peers_round_trip() {
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
        let mut out = BytesMut::new();
        encode(&msg, &mut out);
        assert_eq!(out.len(), encoded_len(&msg));
        assert_eq!(out.len(), 1 + 5 + 1 + 32 + 1 + 32 + 1);
        assert_eq!(decode(out.freeze(), &limits()), Ok(msg));
        let hs = HardState {
            term: 1,
            vote: Some(a),
            commit: 0,
        };
        let mut out = BytesMut::new();
        encode_hard_state(&hs, &mut out);
        assert_eq!(decode_hard_state(out.freeze()), Ok(hs));
        // A peer id cut short.
        assert_eq!(
            decode_hard_state::<PeerId>(Bytes::from_static(&[1, 0, 1, 9, 9])),
            Err(RaftDecodeError::Truncated {
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
        let mut out = BytesMut::new();
        encode_entry(&e, &mut out);
        assert_eq!(decode_entry(out.freeze(), &limits()), Ok(e));
        // A u32 peer wider than 32 bits.
        let mut wide = vec![1, 1, KIND_CONFIG, CHANGE_REMOVE];
        put_varint(&mut wide, 1 << 32);
        assert_eq!(
            decode_entry::<u32>(Bytes::from(wide), &limits()),
            Err(RaftDecodeError::VarintOverflow)
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        for msg in samples() {
            let bytes = enc(&msg);
            for cut in 0..bytes.len() {
                let result = dec(&bytes[..cut]);
                assert!(
                    matches!(result, Err(RaftDecodeError::Truncated { .. })),
                    "{msg:?} cut at {cut}: {result:?}"
                );
            }
        }
        assert_eq!(
            dec([]),
            Err(RaftDecodeError::Truncated {
                needed: 1,
                remaining: 0
            })
        );
        assert!(matches!(
            decode_entry::<u64>(Bytes::from_static(&[1, 1]), &limits()),
            Err(RaftDecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode_hard_state::<u64>(Bytes::from_static(&[1, 1])),
            Err(RaftDecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        for msg in samples() {
            let mut bytes = enc(&msg);
            bytes.push(0);
            assert_eq!(
                dec(bytes),
                Err(RaftDecodeError::TrailingBytes { count: 1 }),
                "{msg:?}"
            );
        }
        assert_eq!(
            decode_entry::<u64>(Bytes::from_static(&[1, 1, 0, 0, 0]), &limits()),
            Err(RaftDecodeError::TrailingBytes { count: 2 })
        );
        assert_eq!(
            decode_hard_state::<u64>(Bytes::from_static(&[1, 1, 0, 9])),
            Err(RaftDecodeError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn bad_varints_are_refused() {
        assert_eq!(
            dec([TIMEOUT_NOW, 0x80, 0x00]),
            Err(RaftDecodeError::VarintNonCanonical)
        );
        let mut over = vec![TIMEOUT_NOW];
        over.extend_from_slice(&[0xff; 9]);
        over.push(0x02);
        assert_eq!(dec(over), Err(RaftDecodeError::VarintOverflow));
        // A count written long.
        assert_eq!(
            dec([APPEND, 1, 0, 0, 0, 0x80, 0x00]),
            Err(RaftDecodeError::VarintNonCanonical)
        );
    }

    #[test]
    fn unknown_tags_are_refused() {
        for tag in [9u8, 0x80, u8::MAX] {
            assert_eq!(
                dec([tag]),
                Err(RaftDecodeError::UnknownTag {
                    field: "message",
                    tag
                })
            );
        }
        assert_eq!(
            dec([APPEND, 1, 0, 0, 0, 1, 1, 1, 3]),
            Err(RaftDecodeError::UnknownTag {
                field: "entry kind",
                tag: 3
            })
        );
        assert_eq!(
            decode_entry::<u64>(Bytes::from_static(&[1, 1, KIND_CONFIG, 3, 1]), &limits()),
            Err(RaftDecodeError::UnknownTag {
                field: "change",
                tag: 3
            })
        );
        assert_eq!(
            decode_hard_state::<u64>(Bytes::from_static(&[1, 1, 2, 1])),
            Err(RaftDecodeError::UnknownTag {
                field: "vote",
                tag: 2
            })
        );
    }

    #[test]
    fn unknown_flag_bits_are_refused() {
        for bad in [4u8, 0x80, 0xff] {
            let invalid = Err(RaftDecodeError::InvalidValue { field: "flags" });
            assert_eq!(dec([VOTE, 1, 1, 1, bad]), invalid);
            assert_eq!(dec([VOTE_RESPONSE, 1, bad]), invalid);
            assert_eq!(dec([APPEND_RESPONSE, 1, 1, bad]), invalid);
        }
    }

    #[test]
    fn member_sets_must_be_canonical() {
        let snapshot_with = |members: &[u8]| {
            let mut b = vec![SNAPSHOT, 1, 1, 1, 0, 0];
            b.extend_from_slice(members);
            b.push(0); // empty chunk
            b
        };
        assert!(dec(snapshot_with(&[2, 1, 2, 1, 3])).is_ok());
        let invalid = |field| Err(RaftDecodeError::InvalidValue { field });
        // Out of order, duplicated.
        assert_eq!(dec(snapshot_with(&[2, 2, 1, 0])), invalid("voters"));
        assert_eq!(dec(snapshot_with(&[2, 1, 1, 0])), invalid("voters"));
        assert_eq!(dec(snapshot_with(&[1, 1, 2, 5, 3])), invalid("learners"));
        // Both voter and learner.
        assert_eq!(dec(snapshot_with(&[2, 1, 2, 1, 2])), invalid("learners"));
    }

    #[test]
    fn member_counts_are_bounded_before_allocating() {
        let too_many = |len| {
            Err(RaftDecodeError::TooManyMembers {
                len,
                max: MAX_MEMBERS,
            })
        };
        let max = MAX_MEMBERS as u64;
        // MAX_MEMBERS voters decode; one more does not.
        let full = Membership::new(0..max);
        let msg: Msg = RaftMessage::Snapshot {
            term: 1,
            index: 1,
            snapshot_term: 1,
            membership: full.clone(),
            total_len: 0,
            offset: 0,
            data: Bytes::new(),
        };
        assert_eq!(dec(enc(&msg)), Ok(msg));
        let mut over = vec![SNAPSHOT, 1, 1, 1, 0, 0];
        put_varint(&mut over, max + 1);
        over.extend(0..=max as u8);
        over.extend_from_slice(&[0, 0]);
        assert_eq!(dec(over), too_many(max + 1));
        // Voters and learners together.
        let mut both = vec![SNAPSHOT, 1, 1, 1, 0, 0];
        put_varint(&mut both, max - 1);
        both.extend(0..max as u8 - 1);
        both.extend_from_slice(&[2, 200, 201, 0]);
        assert_eq!(dec(both), too_many(max + 1));
        // A huge count fails on the count, whatever follows.
        let mut huge = vec![SNAPSHOT, 1, 1, 1, 0, 0];
        put_varint(&mut huge, u64::MAX);
        assert_eq!(dec(huge), too_many(u64::MAX));
        // A count within the limit but beyond the bytes left fails before the first member.
        assert_eq!(
            dec([SNAPSHOT, 1, 1, 1, 0, 0, 10, 1, 2]),
            Err(RaftDecodeError::Truncated {
                needed: 10,
                remaining: 2
            })
        );
        // PeerId members count 32 bytes each.
        let mut ids = vec![1, 1, KIND_CONFIG, CHANGE_REMOVE];
        ids.extend_from_slice(&[0; 32]);
        ids.extend_from_slice(&[2; 40]);
        assert_eq!(
            decode_entry::<PeerId>(Bytes::from(ids), &limits()),
            Err(RaftDecodeError::Truncated {
                needed: 64,
                remaining: 39
            })
        );
    }

    #[test]
    fn entry_counts_are_bounded_before_allocating() {
        let small = DecodeLimits {
            max_entries: 2,
            ..limits()
        };
        let append = |n: u64| -> Msg {
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
        };
        let two = enc(&append(2));
        assert!(decode::<u64>(Bytes::from(two), &small).is_ok());
        let three = enc(&append(3));
        assert_eq!(
            decode::<u64>(Bytes::from(three), &small),
            Err(RaftDecodeError::TooManyEntries { len: 3, max: 2 })
        );
        let mut huge = vec![APPEND, 1, 0, 0, 0];
        put_varint(&mut huge, u64::MAX);
        assert_eq!(
            dec(huge),
            Err(RaftDecodeError::TooManyEntries {
                len: u64::MAX,
                max: 256
            })
        );
        // 200 entries announced, 10 bytes behind them.
        let mut short = vec![APPEND, 1, 0, 0, 0];
        put_varint(&mut short, 200);
        short.extend_from_slice(&[0; 10]);
        assert_eq!(
            dec(short),
            Err(RaftDecodeError::Truncated {
                needed: 200 * MIN_ENTRY_LEN,
                remaining: 10
            })
        );
    }

    #[test]
    fn entries_must_follow_prev_index() {
        let invalid = Err(RaftDecodeError::InvalidValue {
            field: "entry index",
        });
        // prev_index 3, entries 4 then 6.
        assert_eq!(dec([APPEND, 1, 3, 1, 0, 2, 4, 1, 0, 6, 1, 0]), invalid);
        // First entry not at prev_index + 1.
        assert_eq!(dec([APPEND, 1, 3, 1, 0, 1, 3, 1, 0]), invalid);
        // prev_index u64::MAX leaves no room for an entry.
        let mut b = vec![APPEND, 1];
        put_varint(&mut b, u64::MAX);
        b.extend_from_slice(&[1, 0, 1, 0, 1, 0]);
        assert_eq!(dec(b), invalid);
    }

    #[test]
    fn commands_are_bounded_and_sliced() {
        let small = DecodeLimits {
            max_command_len: 4,
            ..limits()
        };
        let entry = |len: usize| Entry::<u64> {
            index: 1,
            term: 1,
            kind: EntryKind::Command(Bytes::from(vec![9u8; len])),
        };
        let bytes = |e: &Entry<u64>| {
            let mut out = BytesMut::new();
            encode_entry(e, &mut out);
            out.freeze()
        };
        assert_eq!(decode_entry(bytes(&entry(4)), &small), Ok(entry(4)));
        assert_eq!(
            decode_entry::<u64>(bytes(&entry(5)), &small),
            Err(RaftDecodeError::CommandTooLong { len: 5, max: 4 })
        );
        let mut huge = vec![1, 1, KIND_COMMAND];
        put_varint(&mut huge, u64::MAX);
        assert_eq!(
            decode_entry::<u64>(Bytes::from(huge), &small),
            Err(RaftDecodeError::CommandTooLong {
                len: u64::MAX,
                max: 4
            })
        );
        assert_eq!(
            decode_entry::<u64>(Bytes::from_static(&[1, 1, KIND_COMMAND, 4, 1, 2]), &small),
            Err(RaftDecodeError::Truncated {
                needed: 4,
                remaining: 2
            })
        );
        // Zero copy: the command points into the input.
        let input = bytes(&entry(100));
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

    #[test]
    fn snapshot_chunks_are_bounded_and_sliced() {
        let small = DecodeLimits {
            max_chunk_len: 10,
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
        let ok = Bytes::from(enc(&chunk(10)));
        let range = ok.as_ptr_range();
        let Ok(RaftMessage::Snapshot { data, .. }) = decode::<u64>(ok, &small) else {
            panic!("chunk did not decode");
        };
        assert_eq!(data.len(), 10);
        assert!(range.contains(&data.as_ptr()));
        assert_eq!(
            decode::<u64>(Bytes::from(enc(&chunk(11))), &small),
            Err(RaftDecodeError::ChunkTooLong { len: 11, max: 10 })
        );
    }

    #[test]
    fn limits_follow_the_config() {
        let config = RaftConfig {
            max_entries_per_append: 3,
            max_command_len: 7,
            snapshot_chunk_len: 11,
            ..RaftConfig::default()
        };
        assert_eq!(
            DecodeLimits::from(&config),
            DecodeLimits {
                max_entries: 3,
                max_command_len: 7,
                max_chunk_len: 11
            }
        );
    }

    #[test]
    fn errors_display_what_failed() {
        let cases = [
            (
                RaftDecodeError::Truncated {
                    needed: 4,
                    remaining: 1,
                },
                "input ended early: needed 4 bytes, 1 remaining",
            ),
            (
                RaftDecodeError::VarintOverflow,
                "varint too large for its field",
            ),
            (
                RaftDecodeError::VarintNonCanonical,
                "varint is not in its shortest form",
            ),
            (
                RaftDecodeError::UnknownTag {
                    field: "message",
                    tag: 9,
                },
                "unknown message tag 9",
            ),
            (
                RaftDecodeError::InvalidValue { field: "flags" },
                "invalid value in field `flags`",
            ),
            (
                RaftDecodeError::TooManyEntries { len: 9, max: 2 },
                "append of 9 entries exceeds the limit of 2",
            ),
            (
                RaftDecodeError::CommandTooLong { len: 9, max: 2 },
                "command of 9 bytes exceeds the limit of 2",
            ),
            (
                RaftDecodeError::TooManyMembers { len: 65, max: 64 },
                "membership of 65 servers exceeds the limit of 64",
            ),
            (
                RaftDecodeError::ChunkTooLong { len: 9, max: 2 },
                "snapshot chunk of 9 bytes exceeds the limit of 2",
            ),
            (
                RaftDecodeError::TrailingBytes { count: 3 },
                "3 bytes left over after the value",
            ),
            (
                RaftDecodeError::Wire(DecodeError::InvalidUtf8),
                "string is not valid UTF-8",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
        assert_eq!(
            RaftDecodeError::from(DecodeError::UnexpectedEnd {
                needed: 2,
                remaining: 1
            }),
            RaftDecodeError::Truncated {
                needed: 2,
                remaining: 1
            }
        );
        assert_eq!(
            RaftDecodeError::from(DecodeError::InvalidUtf8),
            RaftDecodeError::Wire(DecodeError::InvalidUtf8)
        );
    }
}
