//! The one shape every Starling protocol has (DESIGN.md §2).
//!
//! A machine is fed with [`Machine::handle_message`] and [`Machine::handle_timeout`], then drained
//! with [`Machine::poll_output`] until it returns `None`, after which [`Machine::poll_timeout`]
//! names the next deadline. Adapters (mio, QUIC) and the simulator drive every protocol through
//! this trait, so one driver loop serves them all:
//!
//! ```
//! use starling_core::machine::{Machine, Output};
//! use starling_core::detector::{FailureDetector, DetectorConfig};
//! use starling_core::time::Instant;
//!
//! let now = Instant::ZERO;
//! let mut a = FailureDetector::<u32>::new(DetectorConfig::default(), 1, now);
//! let mut b = FailureDetector::<u32>::new(DetectorConfig::default(), 2, now);
//! a.monitor(now, 2);
//! let deadline = a.poll_timeout().unwrap();
//! a.handle_timeout(deadline);
//! while let Some(out) = a.poll_output() {
//!     if let Output::Send { to: 2, msg } = out {
//!         b.handle_message(deadline, 1, msg); // a real driver encodes, sends, decodes
//!     }
//! }
//! assert!(matches!(b.poll_output(), Some(Output::Send { to: 1, .. }))); // b answers the ping
//! ```

use crate::time::Instant;

/// What a machine asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub enum Output<P, M, E> {
    /// Deliver `msg` to peer `to` (the driver encodes it and picks the connection).
    Send {
        /// The addressee.
        to: P,
        /// The typed message.
        msg: M,
    },
    /// Tell the application something happened.
    Event(E),
}

/// A sans-IO protocol state machine.
///
/// `Peer` is how the machine names other nodes: a [`crate::id::PeerId`] in a real node, a compact
/// handle such as `u32` in the simulator (DESIGN.md §3).
pub trait Machine {
    /// How peers are named.
    type Peer: Copy + Eq;
    /// The protocol's typed message.
    type Message;
    /// What the protocol reports to the application.
    type Event;

    /// A message arrived from `from`.
    fn handle_message(&mut self, now: Instant, from: Self::Peer, msg: Self::Message);
    /// Time has reached (at least) the deadline last returned by [`Machine::poll_timeout`].
    /// Calling it early or late is harmless: machines act on whatever is due at `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// The next queued output, or `None` once drained. Drain after every input.
    fn poll_output(&mut self) -> Option<Output<Self::Peer, Self::Message, Self::Event>>;
    /// The next deadline at which [`Machine::handle_timeout`] must be called, if any.
    fn poll_timeout(&self) -> Option<Instant>;
}
