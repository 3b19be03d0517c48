//! A heartbeat failure detector.
//!
//! Each node pings every peer it monitors once per [`DetectorConfig::interval`] (default 2 s);
//! a peer answers every ping with a pong. A round in which a monitored peer was not heard from at
//! all (neither pong nor any other traffic reported through
//! [`FailureDetector::heard_from`]) is a *miss*. After `suspect_after` consecutive misses
//! (default 3) the detector reports [`DetectorEvent::Suspect`], after `dead_after` (default 6)
//! [`DetectorEvent::Dead`], and as soon as the peer is heard from again
//! [`DetectorEvent::Alive`]. Dead peers keep being pinged, so a healed partition is noticed
//! within one interval.
//!
//! This is the fixed-timeout, all-to-all heartbeat of the failure-detector literature (Chandra &
//! Toueg 1996 describe the class; an "eventually perfect" detector needs timeouts that grow after
//! false suspicions, which Starling leaves to the layers above). It departs from the plain form in
//! two ways: any traffic counts as a heartbeat, so a busy session sends no extra pings' worth of
//! suspicion, and each pong yields a round-trip sample smoothed as in RFC 6298 (`srtt`, `rttvar`),
//! which the session layer uses as its RTT estimate.
//!
//! The first round is jittered by a seeded random fraction of the interval so that a million
//! nodes started at the same instant do not ping in lockstep.
//!
//! The machine is generic over how peers are named (`P`): a [`crate::id::PeerId`] in a real node,
//! a `u32` handle in the simulator.

mod config;
mod hosted;
mod machine;
mod message;
#[cfg(test)]
mod tests;

pub use config::{ConfigError, DetectorConfig};
pub use machine::{DetectorError, DetectorEvent, FailureDetector, PeerHealth, PeerStatus};
pub use message::HeartbeatMessage;
