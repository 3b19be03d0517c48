//! Secure sessions: one per connection, authenticated, encrypted, kept alive and rate-limited.
//!
//! A [`Session`] turns a reliable byte stream (TCP, a simulated link) into authenticated frames
//! between two proven identities. It is a sans-IO machine of its own, so an adapter can keep it
//! on the thread that owns the socket: feed it with [`Session::handle_bytes`] and
//! [`Session::handle_timeout`], drain [`Session::poll_transmit`] (bytes to write) and
//! [`Session::poll_event`] (frames and session events), send with [`Session::send`].
//!
//! ## Handshake
//! [Noise](https://noiseprotocol.org/noise.html) XX, `Noise_XX_25519_ChaChaPoly_BLAKE2s`, via the
//! `snow` crate, each message prefixed by its length as a big-endian `u16` (Noise spec §13):
//!
//! ```text
//! initiator                                   responder
//!   -> e                                   (message 1, no payload)
//!                      <- e, ee, s, es     (message 2, payload: responder's HandshakePayload)
//!   -> s, se                               (message 3, payload: initiator's HandshakePayload)
//! ```
//!
//! Each payload ([`payload::HandshakePayload`]) carries the sender's protocol version (first, so
//! any version can read it), network id, ed25519 identity key, capabilities, and a signature by
//! the identity key over the sender's Noise static key. Noise proves the peer holds that static
//! key; the signature proves the identity vouches for it; so the peer is `BLAKE3(identity key)`.
//! A dialer may name the [`PeerId`](crate::id::PeerId) it expects.
//!
//! Refusals are readable: the side that refuses (wrong network, other version, wrong or
//! unproven identity) still completes the Noise exchange so both ends hold transport keys, then
//! sends an encrypted close record with a [`CloseCode`] and an explanation. The initiator judges
//! the responder on message 2 and the responder judges the initiator on message 3, so each side
//! refuses the other for its own reasons and reports its own [`CloseCause`].
//!
//! ## Transport
//! Each Noise transport message carries one record ([`record`](self) layout in `record.rs`): a
//! frame, a part of a frame too large for one Noise message (65,519 bytes of plaintext), or a
//! close. Frames at least [`SessionConfig::compress_threshold`] long are LZ4-compressed when both
//! sides offered compression and it shrinks them. The receiver enforces its frame limit while
//! reassembling, before decompressing, and again on the decompressed size.
//!
//! The [heartbeat failure detector](crate::detector) is the keep-alive: any record counts as a
//! heartbeat, pongs give the RTT estimate ([`Session::rtt`]), a suspect peer is reported, a dead
//! one closes the session. Token buckets limit inbound frames and bytes; frames over the limit
//! are dropped and reported ([`SessionEvent::RateExceeded`]) so the node can penalise the peer.
//!
//! ## Guarantees
//! Every failure is a [`CloseCause`] naming its cause; after one the session ignores input. No
//! input makes it panic; it buffers at most one Noise message of input, one frame being
//! reassembled, and [`SessionConfig::max_queued_bytes`] of output.
//!
//! ## Departures
//! - No rekeying: ChaCha20-Poly1305 with 64-bit nonces is safe far past any session's life.
//! - Versions must match exactly; range negotiation waits for a second version.
//! - The Noise static key is per node, not per session (signed once at start-up).

mod compress;
mod config;
mod error;
mod event;
pub mod hello;
mod machine;
mod noise;
pub mod payload;
mod record;
#[cfg(test)]
mod tests;

pub use compress::{compress_into, decompress, CompressError};
pub use config::{RateLimits, SessionConfig, SessionConfigError, PROTOCOL_VERSION};
pub use error::{CloseCause, CloseCode, SendError};
pub use event::{SessionEvent, SessionStats};
pub use machine::{Role, Session};
pub use noise::NodeKeys;
pub use payload::{Capabilities, NetworkId};
