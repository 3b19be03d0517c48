//! The durable encoding of what a Raft server persists: log entries and the hard state.
//!
//! A driver's stable storage treats these as opaque bytes (the KV service writes them to a
//! write-ahead log). They are not network messages, so they have no frame, protocol id or
//! message type, and they must never change: a server restarted on an older data directory
//! reads them back.
//!
//! | value | encoding |
//! |-------|----------|
//! | entry | as inside an `Append` ([`super::codec`]): `index`, `term`, `kind: u8`, then by kind: 0 `Noop`, 1 `Command` (`bytes`), 2 `Config` (`change`, `membership`) |
//! | hard state | `term: varint`, `commit: varint`, `vote: u8` (0 none, 1 some), then if some the voted-for `peer` |
//!
//! Fields are as in the network codec (varints, the [`WirePeer`] encoding of peers). Decoding
//! checks stored bytes as strictly as received ones: a record that does not decode exactly,
//! with nothing left over, is corrupt ([`DecodeError`]). A command longer than the
//! `max_bytes_len` of the [`Limits`] given is refused; a store should pass a limit at least as
//! large as the largest command it accepted (`RaftConfig::max_command_len`).

use bytes::{BufMut, Bytes, BytesMut};

use super::fields::{entry_len, get_entry, put_entry};
use super::message::{Entry, HardState};
use crate::wire::codec::get_u8;
use crate::wire::varint::{get_varint, put_varint, varint_len};
use crate::wire::{DecodeError, Limits, WirePeer};

const VOTE_NONE: u8 = 0;
const VOTE_SOME: u8 = 1;

/// Exact length of [`encode_entry`]'s output for `entry`.
pub fn entry_encoded_len<P: WirePeer + Ord>(entry: &Entry<P>) -> usize {
    entry_len(entry)
}

/// Appends `entry` (the same encoding as inside an `Append`).
pub fn encode_entry<P: WirePeer + Ord>(entry: &Entry<P>, out: &mut BytesMut) {
    out.reserve(entry_len(entry));
    put_entry(out, entry);
}

/// Decodes one entry that fills `input` exactly (a command is a slice of `input`, not a copy).
pub fn decode_entry<P: WirePeer + Ord>(
    input: Bytes,
    limits: &Limits,
) -> Result<Entry<P>, DecodeError> {
    whole(input, |buf| get_entry(buf, limits))
}

/// Exact length of [`encode_hard_state`]'s output for `hs`.
pub fn hard_state_encoded_len<P: WirePeer>(hs: &HardState<P>) -> usize {
    varint_len(hs.term) + varint_len(hs.commit) + 1 + hs.vote.as_ref().map_or(0, P::encoded_len)
}

/// Appends `hs`.
pub fn encode_hard_state<P: WirePeer>(hs: &HardState<P>, out: &mut BytesMut) {
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

/// Decodes one hard state that fills `input` exactly.
pub fn decode_hard_state<P: WirePeer>(input: Bytes) -> Result<HardState<P>, DecodeError> {
    whole(input, |buf| {
        let term = get_varint(buf)?;
        let commit = get_varint(buf)?;
        let vote = match get_u8(buf)? {
            VOTE_NONE => None,
            VOTE_SOME => Some(P::decode(buf)?),
            _ => return Err(DecodeError::InvalidValue { field: "vote" }),
        };
        Ok(HardState { term, vote, commit })
    })
}

/// Runs `read` over all of `input`, refusing leftovers.
fn whole<T>(
    mut input: Bytes,
    read: impl FnOnce(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let value = read(&mut input)?;
    if !input.is_empty() {
        return Err(DecodeError::TrailingBytes { count: input.len() });
    }
    Ok(value)
}

#[cfg(test)]
#[path = "durable_tests.rs"]
mod tests;
