//! A token bucket: at most `burst` units at once, refilled at `rate_per_sec` units per second.
//!
//! Sessions use one per peer to cap inbound frames or bytes, and gossip uses one per topic to cap
//! publishing. The bucket is the textbook algorithm and departs from it in nothing in particular;
//! what it adds is exactness:
//!
//! - **No drift.** Tokens are counted in nano-tokens (tokens × 10⁹) in a `u128`, and each
//!   nanosecond of [`Instant`] adds exactly `rate_per_sec` nano-tokens. A refill therefore never
//!   rounds, however often or seldom it is asked for: a bucket polled every millisecond for an
//!   hour hands out exactly as many tokens as one polled once at the end (minus what it could not
//!   hold above `burst`). No floats.
//! - **No panics.** Every input is accepted: time going backwards refills nothing (and does not
//!   move the bucket's clock back, so the same interval is never credited twice), and huge
//!   requests or time jumps saturate instead of overflowing.
//! - **Sans-IO.** `now` is an input; the bucket never reads a clock.
//!
//! ```
//! use starling_core::rate::TokenBucket;
//! use starling_core::time::{Duration, Instant};
//!
//! let start = Instant::ZERO;
//! let mut bucket = TokenBucket::new(10, 5, start); // 10 per second, bursts of 5
//! assert!(bucket.try_take(start, 5));
//! assert!(!bucket.try_take(start, 1));
//! // A tenth of a second later exactly one token has come back.
//! let later = start + Duration::from_millis(100);
//! assert_eq!(bucket.available(later), 1);
//! assert!(bucket.try_take(later, 1));
//! ```

use crate::time::Instant;

/// Nano-tokens per token: one nanosecond at `rate_per_sec` adds `rate_per_sec` nano-tokens, so a
/// second adds `rate_per_sec` whole tokens without any division.
const SCALE: u128 = 1_000_000_000;

/// A token bucket driven by the caller's clock. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens added per second.
    rate_per_sec: u64,
    /// Most tokens the bucket holds.
    burst: u64,
    /// Tokens held, in nano-tokens; always `<= burst * SCALE` (which fits: `< 2^94`).
    nano_tokens: u128,
    /// The latest instant the bucket has been refilled up to. Never moves backwards.
    last: Instant,
}

impl TokenBucket {
    /// A bucket that starts full (`burst` tokens) at `now`. `rate_per_sec` tokens are added per
    /// second of `now` (an [`Instant`] in nanoseconds), up to `burst`.
    ///
    /// A zero rate makes a bucket that hands out its burst once and never refills; a zero burst
    /// makes one that refuses everything but `n == 0`.
    pub fn new(rate_per_sec: u64, burst: u64, now: Instant) -> Self {
        TokenBucket {
            rate_per_sec,
            burst,
            nano_tokens: Self::capacity(burst),
            last: now,
        }
    }

    /// Takes `n` tokens if that many are available at `now` and returns `true`; otherwise takes
    /// none and returns `false`.
    ///
    /// Never panics, whatever `now` or `n`: a `now` earlier than one seen before refills nothing,
    /// and an `n` above `burst` is simply refused.
    pub fn try_take(&mut self, now: Instant, n: u64) -> bool {
        self.refill(now);
        // `n * SCALE < 2^64 * 2^30` fits in a u128.
        let wanted = u128::from(n) * SCALE;
        if wanted <= self.nano_tokens {
            self.nano_tokens -= wanted;
            true
        } else {
            false
        }
    }

    /// Whole tokens available at `now`, without taking any. A `now` earlier than one seen before
    /// counts as that earlier instant.
    pub fn available(&self, now: Instant) -> u64 {
        let whole = self.refilled(now) / SCALE;
        // `refilled` never exceeds `burst * SCALE`, so `whole <= burst` fits; saturate anyway
        // rather than carry an unwrap.
        u64::try_from(whole).unwrap_or(u64::MAX)
    }

    /// Tokens added per second.
    pub fn rate_per_sec(&self) -> u64 {
        self.rate_per_sec
    }

    /// Most tokens the bucket holds at once.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// The bucket's size in nano-tokens.
    fn capacity(burst: u64) -> u128 {
        u128::from(burst) * SCALE
    }

    /// Nano-tokens held at `now`, counting the refill since `last` (none if `now` is earlier).
    fn refilled(&self, now: Instant) -> u128 {
        let elapsed_ns = now.saturating_since(self.last).as_nanos();
        // `u64 * u64` always fits in a u128; only the sum can overflow, so saturate it (the cap
        // below makes the exact value irrelevant once it is that large).
        let added = u128::from(elapsed_ns) * u128::from(self.rate_per_sec);
        self.nano_tokens
            .saturating_add(added)
            .min(Self::capacity(self.burst))
    }

    /// Credits the time since `last` and moves `last` forward to `now` (never backwards, so an
    /// interval is credited at most once even if the caller's clock jitters).
    fn refill(&mut self, now: Instant) {
        self.nano_tokens = self.refilled(now);
        if now > self.last {
            self.last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn at_ms(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn starts_full_then_refuses_past_the_burst() {
        let t = at_ms(0);
        let mut bucket = TokenBucket::new(100, 10, t);
        assert_eq!(bucket.available(t), 10);
        for _ in 0..10 {
            assert!(bucket.try_take(t, 1));
        }
        assert!(!bucket.try_take(t, 1));
        assert_eq!(bucket.available(t), 0);
        // A refused take leaves the bucket as it was.
        let mut b = TokenBucket::new(100, 10, t);
        assert!(!b.try_take(t, 11));
        assert_eq!(b.available(t), 10);
        assert!(b.try_take(t, 10));
    }

    #[test]
    fn refill_is_exact_over_an_hour_in_one_millisecond_steps() {
        // 7 tokens a second is one token every 142.857… ms: a rate that rounds badly if the bucket
        // rounded at each step.
        let rate = 7;
        // A burst of 2 so the bucket is never full between polls: a full bucket rightly discards
        // refill, which would hide rounding losses instead of revealing them.
        let mut bucket = TokenBucket::new(rate, 2, at_ms(0));
        assert!(bucket.try_take(at_ms(0), 2));
        let mut taken = 0u64;
        for ms in 1..=3_600_000 {
            if bucket.try_take(at_ms(ms), 1) {
                taken += 1;
            }
        }
        // Every token refilled was taken as soon as it was whole: exactly rate * 3600.
        assert_eq!(taken, rate * 3600);
        assert_eq!(bucket.available(at_ms(3_600_000)), 0);
    }

    #[test]
    fn refill_does_not_depend_on_how_often_it_is_polled() {
        let mut stepped = TokenBucket::new(3, 1_000_000, at_ms(0));
        let mut once = stepped.clone();
        assert!(stepped.try_take(at_ms(0), 1_000_000));
        assert!(once.try_take(at_ms(0), 1_000_000));
        for ns in (0..10_000_000_000u64).step_by(333_333_333) {
            let _ = stepped.try_take(Instant::from_nanos(ns), 0);
        }
        let end = Instant::from_nanos(10_000_000_000);
        assert_eq!(stepped.available(end), 30);
        assert_eq!(once.available(end), 30);
        // Down to the nano-token, the two buckets agree.
        let _ = once.try_take(end, 0);
        let _ = stepped.try_take(end, 0);
        assert_eq!(stepped, once);
    }

    #[test]
    fn zero_rate_gives_only_the_burst() {
        let mut bucket = TokenBucket::new(0, 3, at_ms(0));
        assert!(bucket.try_take(at_ms(0), 3));
        assert!(!bucket.try_take(at_ms(1_000_000_000), 1));
        assert!(!bucket.try_take(Instant::MAX, 1));
        assert_eq!(bucket.available(Instant::MAX), 0);
    }

    #[test]
    fn zero_burst_refuses_everything_but_nothing() {
        let mut bucket = TokenBucket::new(1_000, 0, at_ms(0));
        assert!(!bucket.try_take(at_ms(5_000), 1));
        assert!(bucket.try_take(at_ms(5_000), 0));
        assert_eq!(bucket.available(at_ms(5_000)), 0);
    }

    #[test]
    fn huge_requests_and_time_jumps_saturate() {
        let mut bucket = TokenBucket::new(u64::MAX, u64::MAX, Instant::ZERO);
        assert_eq!(bucket.available(Instant::ZERO), u64::MAX);
        assert!(bucket.try_take(Instant::ZERO, u64::MAX));
        assert!(!bucket.try_take(Instant::ZERO, u64::MAX));
        // u64::MAX ns at u64::MAX tokens/s would overflow anything narrower than the cap.
        assert_eq!(bucket.available(Instant::MAX), u64::MAX);
        assert!(bucket.try_take(Instant::MAX, u64::MAX));
        assert!(!bucket.try_take(Instant::MAX, 1));

        let mut small = TokenBucket::new(5, 10, Instant::ZERO);
        assert!(!small.try_take(Instant::MAX, u64::MAX));
        assert_eq!(small.available(Instant::MAX), 10);
        assert!(small.try_take(Instant::MAX, 10));
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let mut bucket = TokenBucket::new(1, 10, at_ms(10_000));
        assert!(bucket.try_take(at_ms(10_000), 10));
        // Earlier than the start: nothing, and no panic.
        assert!(!bucket.try_take(at_ms(0), 1));
        assert_eq!(bucket.available(at_ms(0)), 0);
        // Forward again: one token per second since 10 s, not since 0 s.
        assert_eq!(bucket.available(at_ms(12_000)), 2);
        assert!(bucket.try_take(at_ms(12_000), 2));
        // Back to 11 s: the second between 11 s and 12 s must not be credited again.
        assert!(!bucket.try_take(at_ms(11_000), 1));
        assert_eq!(bucket.available(at_ms(12_999)), 0);
        assert_eq!(bucket.available(at_ms(13_000)), 1);
    }

    #[test]
    fn accessors_report_the_configuration() {
        let bucket = TokenBucket::new(12, 34, at_ms(0));
        assert_eq!(bucket.rate_per_sec(), 12);
        assert_eq!(bucket.burst(), 34);
    }
}
