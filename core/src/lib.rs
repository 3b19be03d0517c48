//! # starling-core
//!
//! Starling's protocols as pure, deterministic state machines. Nothing here opens a socket, reads
//! a clock, spawns a thread or touches global randomness: time arrives as an input
//! ([`time::Instant`]), each machine owns a PRNG seeded by its caller, and every effect leaves as
//! a value ([`machine::Output`]). The same code therefore runs under a real event loop, a fuzzer,
//! or the deterministic simulator, and any run can be replayed from its seed.
//!
//! ## What it holds
//! - [`time`], [`id`], [`identity`], [`contact`]: nanosecond time, 256-bit keys and XOR
//!   distance, ed25519 node identities, and the identity-plus-address a node is reached at.
//! - [`wire`]: the frame format, bounded decoding helpers and limits, and the one way every
//!   protocol writes the peers it names.
//! - [`machine`]: the input/output shape every protocol shares.
//! - [`detector`]: the heartbeat failure detector.
//!
//! ## What it promises
//! - No panics on any input from the network: decoders return [`wire::DecodeError`], machines
//!   ignore or report what they cannot use.
//! - Bounded memory: every list read from the wire, every queue and every table has a limit, and
//!   limits are checked before allocating.
//! - `#![forbid(unsafe_code)]`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod contact;
pub mod detector;
pub mod dht;
pub mod gossip;
pub mod id;
pub mod identity;
pub mod machine;
pub mod node;
pub mod raft;
pub mod rate;
pub mod rng;
pub mod session;
pub mod time;
pub mod wire;

pub use contact::NodeContact;
pub use id::{Distance, Key, PeerId};
pub use identity::Identity;
pub use machine::{Machine, Output};
pub use time::{Duration, Instant};
