//! The encodings of a log entry and a membership, written once for the two places they appear:
//! inside an `Append` or `Snapshot` on the wire ([`super::codec`]) and in stable storage
//! ([`super::durable`]).
//!
//! | value | encoding |
//! |-------|----------|
//! | `entry` | `index: varint`, `term: varint`, `kind: u8`, then by kind: 0 `Noop` (nothing), 1 `Command` (`bytes`), 2 `Config` (`change`, `membership`) |
//! | `change` | `op: u8` (0 `AddLearner`, 1 `Promote`, 2 `Remove`), `peer` |
//! | `membership` | `voters: count, peer*`, `learners: count, peer*` |
//! | `bytes` | varint length, then the bytes |
//! | `peer` | the [`WirePeer`] encoding: a varint (`u64`, `u32`), 32 raw bytes (`PeerId`) |
//!
//! Readers check every count and length before allocating: a command against
//! `max_bytes_len`, each member set against [`MAX_MEMBERS`] (voters and learners together) and
//! `max_list_len`, and every count against the bytes left. A member set must be strictly
//! increasing, and no server may be both voter and learner, so a membership has exactly one
//! encoding. Unknown kind or change bytes are [`DecodeError::InvalidValue`].

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes};

use super::membership::{ConfChange, Membership, MAX_MEMBERS};
use super::message::{Entry, EntryKind};
use crate::wire::codec::{bytes_encoded_len, get_bytes, get_capped_list_len, get_u8, put_bytes};
use crate::wire::peer::{peer_list_len, put_peer_list};
use crate::wire::varint::{get_varint, put_varint, varint_len};
use crate::wire::{DecodeError, Limits, WirePeer};

pub(super) const KIND_NOOP: u8 = 0;
pub(super) const KIND_COMMAND: u8 = 1;
pub(super) const KIND_CONFIG: u8 = 2;

pub(super) const CHANGE_ADD_LEARNER: u8 = 0;
pub(super) const CHANGE_PROMOTE: u8 = 1;
pub(super) const CHANGE_REMOVE: u8 = 2;

/// The fewest bytes an entry takes (one-byte index, term and kind), so an entry count can be
/// checked against the bytes left before allocating.
pub(super) const MIN_ENTRY_LEN: usize = 3;

pub(super) fn membership_len<P: WirePeer + Ord>(m: &Membership<P>) -> usize {
    peer_list_len(m.voters.iter()) + peer_list_len(m.learners.iter())
}

pub(super) fn put_membership<P: WirePeer + Ord, B: BufMut>(buf: &mut B, m: &Membership<P>) {
    put_peer_list(buf, m.voters.iter());
    put_peer_list(buf, m.learners.iter());
}

/// Reads a strictly increasing set of at most `cap` peers.
fn get_members<P: WirePeer + Ord>(
    buf: &mut Bytes,
    limits: &Limits,
    cap: usize,
    field: &'static str,
) -> Result<BTreeSet<P>, DecodeError> {
    let count = get_capped_list_len(buf, limits, cap, P::MIN_ENCODED_LEN)?;
    let mut set = BTreeSet::new();
    for _ in 0..count {
        let p = P::decode(buf)?;
        // Strictly increasing: sorted and free of duplicates, so the set has one encoding.
        if set.last().is_some_and(|last| *last >= p) {
            return Err(DecodeError::InvalidValue { field });
        }
        set.insert(p);
    }
    Ok(set)
}

pub(super) fn get_membership<P: WirePeer + Ord>(
    buf: &mut Bytes,
    limits: &Limits,
) -> Result<Membership<P>, DecodeError> {
    let voters = get_members::<P>(buf, limits, MAX_MEMBERS, "voters")?;
    // Voters and learners share the bound, so the learners may use what the voters left.
    let learners = get_members::<P>(buf, limits, MAX_MEMBERS - voters.len(), "learners")?;
    if learners.iter().any(|p| voters.contains(p)) {
        return Err(DecodeError::InvalidValue { field: "learners" });
    }
    Ok(Membership { voters, learners })
}

fn change_parts<P>(change: &ConfChange<P>) -> (u8, &P) {
    match change {
        ConfChange::AddLearner(p) => (CHANGE_ADD_LEARNER, p),
        ConfChange::Promote(p) => (CHANGE_PROMOTE, p),
        ConfChange::Remove(p) => (CHANGE_REMOVE, p),
    }
}

pub(super) fn entry_len<P: WirePeer + Ord>(e: &Entry<P>) -> usize {
    let kind = match &e.kind {
        EntryKind::Noop => 0,
        EntryKind::Command(data) => bytes_encoded_len(data.len()),
        EntryKind::Config { change, membership } => {
            1 + change_parts(change).1.encoded_len() + membership_len(membership)
        }
    };
    varint_len(e.index) + varint_len(e.term) + 1 + kind
}

pub(super) fn put_entry<P: WirePeer + Ord, B: BufMut>(buf: &mut B, e: &Entry<P>) {
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

/// Reads one entry; a command is a slice of `buf`, not a copy.
pub(super) fn get_entry<P: WirePeer + Ord>(
    buf: &mut Bytes,
    limits: &Limits,
) -> Result<Entry<P>, DecodeError> {
    let index = get_varint(buf)?;
    let term = get_varint(buf)?;
    let kind = match get_u8(buf)? {
        KIND_NOOP => EntryKind::Noop,
        KIND_COMMAND => EntryKind::Command(get_bytes(buf, limits)?),
        KIND_CONFIG => {
            let change = match get_u8(buf)? {
                CHANGE_ADD_LEARNER => ConfChange::AddLearner(P::decode(buf)?),
                CHANGE_PROMOTE => ConfChange::Promote(P::decode(buf)?),
                CHANGE_REMOVE => ConfChange::Remove(P::decode(buf)?),
                _ => return Err(DecodeError::InvalidValue { field: "change" }),
            };
            EntryKind::Config {
                change,
                membership: get_membership(buf, limits)?,
            }
        }
        _ => {
            return Err(DecodeError::InvalidValue {
                field: "entry kind",
            })
        }
    };
    Ok(Entry { index, term, kind })
}
