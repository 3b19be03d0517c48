//! # starling-kv
//!
//! A replicated key-value service: a fixed group of servers runs Starling's sans-IO
//! [Raft](starling_core::raft) over real TCP sessions ([`starling_mio`]), logs to the durable
//! WAL of [`starling_store`], and applies writes to an ordered map of byte strings. Clients are
//! Starling nodes too.
//!
//! - [`KvServer`]: one replica. A reactor thread owns sockets and sessions; a driver thread owns
//!   the Raft machine, the store and the map, fed the node's frames through a channel and woken
//!   at Raft's next deadline.
//! - [`KvClient`]: sends each request to the leader, follows `NotLeader` hints, resends to
//!   another server when a request goes unanswered, and gives up at a deadline. Many requests
//!   may be in flight ([`KvClient::submit`]); [`KvClient::put`] and [`KvClient::get`] block.
//!
//! ## Operations and consistency
//! `Put` goes through the log and is answered once applied. `Get` is linearizable without
//! touching the log: the leader confirms its leadership by a ReadIndex round and answers once
//! its map has applied the index read. Followers answer `NotLeader` with a hint.
//!
//! ## Exactly once
//! A client numbers its requests (increasing, starting from the wall clock in microseconds so a
//! restarted client with the same keys never reuses numbers) and reuses the number on every
//! retry. A logged write carries `(client PeerId, id, ack)`, where `ack` is the lowest number the
//! client still waits for. The map keeps, per client, the ids at or above its `ack` already
//! applied ([`state`]): a write whose id is there, or below `ack`, is not applied again. So a
//! write retried after a lost answer or a leader change — and logged twice — takes effect once,
//! with any number of requests in flight. A session remembers at most
//! [`state::MAX_SESSION_IDS`] ids; sessions are never expired (see limits).
//!
//! ## Durability
//! Each Raft persist batch is written to the store in the order the contract gives — snapshot,
//! truncation, entries, hard state — and fsynced *before* [`Raft::persisted`] is called; a
//! follower's acknowledgements and votes are held by the machine until then, and the leader's
//! own entries count toward a majority only then. All batches of one driver turn share one
//! fsync (group commit); the leader's appends leave before its own write. A batch that only
//! advances the commit index is written without an fsync of its own: losing it is harmless.
//! A put is answered only once applied, i.e. committed on a majority of disks.
//!
//! ## Wire
//! Servers talk Raft in frames of [`ProtocolId::RAFT`](starling_core::wire::ProtocolId::RAFT)
//! (the message type and body are the [Raft codec](starling_core::raft::codec)'s); clients talk
//! to servers in
//! frames of [`proto::KV_PROTOCOL`] (16), described in [`proto`]. Both ride Starling's encrypted,
//! authenticated sessions, so the `PeerId` a request comes from is the client's identity.
//!
//! ## Limits
//! - Keys up to [`proto::MAX_KEY_LEN`] bytes, values up to [`proto::MAX_VALUE_LEN`].
//! - Membership is fixed at start (the founding voters); no joint changes are driven here.
//! - The map lives in memory and is snapshotted whole every
//!   [`ServerConfig::compact_every`] entries; a restart rebuilds it from the snapshot and log.
//! - Client sessions are kept for ever (one per client identity ever seen).
//! - Reads are served by the leader only.
//!
//! [`Raft::persisted`]: starling_core::raft::Raft::persisted
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod client;
pub mod proto;
pub mod server;
pub mod state;
pub mod storage;

use std::net::SocketAddr;

/// Re-exported: keys, values and results are `Bytes`.
pub use bytes::Bytes;
pub use client::{ClientConfig, ClientError, Completion, KvClient, Reply};
pub use proto::{KvResult, Op};
pub use server::{KvServer, ServerConfig, ServerError, ServerStatus};
/// Re-exported for [`ServerConfig::sync`].
pub use starling_store::SyncMode;

use starling_core::session::{NodeKeys, RateLimits};
use starling_core::time::{Duration, Instant};
use starling_mio::ReactorConfig;

/// The network name servers and clients use unless told otherwise.
pub const DEFAULT_NETWORK: &str = "starling-kv";

/// The reactor settings servers and clients share.
fn reactor_config(keys: NodeKeys, listen: SocketAddr, network: &str) -> ReactorConfig {
    let mut c = ReactorConfig::new(listen, keys, network);
    c.node.protocols.push(proto::KV_PROTOCOL);
    // Clusters are often on one host (tests, benchmarks): do not cap connections per IP.
    c.node.max_per_ip = 1024;
    c.node.max_inbound = 1024;
    // A restarted server should be redialled within a second, not a minute.
    c.node.dial_backoff_initial = Duration::from_millis(100);
    c.node.dial_backoff_max = Duration::from_secs(1);
    // One frame per request: the default 10,000 frames/s per peer is below what one client
    // (or a leader's replication) can reach.
    c.session.rate = RateLimits {
        frames_per_sec: 1_000_000,
        frame_burst: 2_000_000,
        bytes_per_sec: 1 << 30,
        byte_burst: 1 << 30,
    };
    c.command_queue = 16 * 1024;
    c
}

/// Raft's clock: nanoseconds since the server started.
#[derive(Clone, Copy, Debug)]
struct MonoClock(std::time::Instant);

impl MonoClock {
    fn new() -> Self {
        MonoClock(std::time::Instant::now())
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

/// A seed for Raft's election jitter: distinct per server and per start.
fn seed_from(id: &[u8; 32]) -> u64 {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    for chunk in id.chunks(8) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        seed = seed.rotate_left(13) ^ u64::from_le_bytes(b);
    }
    seed
}
