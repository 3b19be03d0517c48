//! The runtime's clock: `starling_core` takes time as an input, and every thread of one runtime
//! reads it from the same origin so their `Instant`s compare.

use starling_core::time::Instant;

/// Monotonic time since the runtime started, as the core's `Instant`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: std::time::Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub(crate) fn start() -> Clock {
        Clock {
            origin: std::time::Instant::now(),
        }
    }

    /// Now, in nanoseconds since the origin (saturating after 584 years).
    pub(crate) fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// How long from now until `deadline` (zero if it has passed), for a poll timeout.
    pub(crate) fn until(&self, deadline: Instant) -> std::time::Duration {
        let now = self.now();
        std::time::Duration::from_nanos(deadline.as_nanos().saturating_sub(now.as_nanos()))
    }
}
