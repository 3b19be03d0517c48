//! Drives server 1 of a three-voter Raft group ({1, 2, 3}) with an arbitrary mix of inputs:
//! messages from peers 2, 3 and 4 (4 is not a member) decoded by the codec from arbitrary bytes
//! (a message type and a body), timeouts as time advances, acknowledgements of its persist
//! batches, proposals, membership changes, reads, transfers and compactions. Checks that it
//! never panics, never sends to itself, and that everything it sends passes through the codec
//! unchanged and stays within its own configured sizes (so no honest message is one its peers
//! would refuse).
#![no_main]

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use starling_core::machine::{Machine, Output};
use starling_core::raft::{
    ConfChange, EntryKind, Membership, Raft, RaftConfig, RaftEvent, RaftMessage,
};
use starling_core::time::{Duration, Instant};
use starling_core::wire::{decode_message, encode_message, Frame, FrameDecoder, Limits, ProtocolId};

const ME: u64 = 1;

#[derive(Arbitrary, Debug)]
enum Input {
    /// A frame of `msg_type` and `body` from peer 2, 3 or 4, decoded by the codec; dropped if
    /// it does not decode.
    Message { from: u8, msg_type: u8, body: Vec<u8> },
    /// Time jumps to the next deadline, which fires.
    Timeout,
    /// Time advances by this many milliseconds, then the timeout handler runs (early or late).
    Advance(u16),
    /// The driver acknowledges one of the batches issued so far (and so every earlier one).
    Persisted(u8),
    /// A command.
    Propose(Vec<u8>),
    /// A membership change about peer 1 to 5.
    Change { op: u8, peer: u8 },
    /// A linearizable read.
    Read,
    /// Leadership transfer to peer 1 to 4.
    Transfer(u8),
    /// Compaction at `back` entries before the applied index.
    Compact { back: u8, data: Vec<u8> },
}

#[derive(Arbitrary, Debug)]
struct Run {
    seed: u64,
    max_entries: u8,
    chunk_len: u8,
    max_command: u8,
    inputs: Vec<Input>,
}

/// Whether `msg` is within the sizes `config` allows, which a receiver with the same
/// configuration checks on arrival.
fn fits(config: &RaftConfig, msg: &RaftMessage<u64>) -> bool {
    match msg {
        RaftMessage::Append { entries, .. } => {
            entries.len() <= config.max_entries_per_append
                && entries.iter().all(|e| match &e.kind {
                    EntryKind::Command(c) => c.len() <= config.max_command_len,
                    _ => true,
                })
        }
        RaftMessage::Snapshot { data, .. } => data.len() <= config.snapshot_chunk_len,
        _ => true,
    }
}

fuzz_target!(|run: Run| {
    let config = RaftConfig {
        max_entries_per_append: usize::from(run.max_entries % 8) + 1,
        snapshot_chunk_len: usize::from(run.chunk_len % 64) + 1,
        max_command_len: usize::from(run.max_command % 64) + 1,
        max_inflight_appends: 4,
        max_uncommitted_entries: 64,
        max_pending_reads: 16,
        ..RaftConfig::default()
    };
    let limits = Limits::DEFAULT;
    let mut now = Instant::ZERO;
    let Ok(mut raft) = Raft::<u64>::new(config, ME, Membership::new([1, 2, 3]), run.seed, now)
    else {
        return;
    };
    let mut batches: Vec<u64> = Vec::new();
    for input in run.inputs.into_iter().take(400) {
        match input {
            Input::Message {
                from,
                msg_type,
                body,
            } => {
                let frame = Frame::new(ProtocolId::RAFT, msg_type, body);
                if let Ok(msg) = decode_message::<RaftMessage<u64>>(frame, &limits) {
                    raft.handle_message(now, 2 + u64::from(from % 3), msg);
                }
            }
            Input::Timeout => {
                if let Some(t) = raft.poll_timeout() {
                    now = now.max(t);
                }
                raft.handle_timeout(now);
            }
            Input::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms));
                raft.handle_timeout(now);
            }
            Input::Persisted(which) => {
                if !batches.is_empty() {
                    let id = batches[usize::from(which) % batches.len()];
                    raft.persisted(now, id);
                }
            }
            Input::Propose(command) => {
                let _ = raft.propose(now, Bytes::from(command));
            }
            Input::Change { op, peer } => {
                let peer = u64::from(peer % 5) + 1;
                let change = match op % 3 {
                    0 => ConfChange::AddLearner(peer),
                    1 => ConfChange::Promote(peer),
                    _ => ConfChange::Remove(peer),
                };
                let _ = raft.propose_change(now, change);
            }
            Input::Read => {
                let _ = raft.read_index(now);
            }
            Input::Transfer(to) => {
                let _ = raft.transfer_leadership(now, u64::from(to % 4) + 1);
            }
            Input::Compact { back, data } => {
                let index = raft.applied_index().saturating_sub(u64::from(back));
                let _ = raft.compact(now, index, Bytes::from(data));
            }
        }
        let mut outputs = 0usize;
        while let Some(out) = raft.poll_output() {
            outputs += 1;
            assert!(outputs < 100_000, "poll_output does not drain");
            match out {
                Output::Send { to, msg } => {
                    assert_ne!(to, ME, "sent {msg:?} to itself");
                    assert!(
                        fits(&config, &msg),
                        "an outgoing message exceeds the configuration"
                    );
                    let mut wire = BytesMut::new();
                    encode_message(&msg, &mut wire);
                    let frame = FrameDecoder::new(limits).decode(&mut wire);
                    let Ok(Some(frame)) = frame else {
                        panic!("an outgoing message is not one frame: {frame:?}");
                    };
                    assert_eq!(
                        decode_message::<RaftMessage<u64>>(frame, &limits).as_ref(),
                        Ok(&msg),
                        "an outgoing message does not survive the codec"
                    );
                }
                Output::Event(RaftEvent::Persist(batch)) => {
                    batches.push(batch.id);
                    if batches.len() > 32 {
                        batches.remove(0);
                    }
                }
                Output::Event(_) => {}
            }
        }
    }
});
