//! The random choices of HyParView, all from the machine's seeded PRNG: jittered timer
//! intervals, one peer picked uniformly, and a uniform sample of k peers.

use rand::Rng;

use crate::rng::MachineRng;
use crate::time::Duration;

/// `interval` ±25%, at least 1 ns.
pub(super) fn jittered(rng: &mut MachineRng, interval: Duration) -> Duration {
    let nanos = interval.as_nanos();
    let quarter = nanos / 4;
    let nanos = rng.random_range(nanos - quarter..=nanos.saturating_add(quarter));
    Duration::from_nanos(nanos.max(1))
}

/// A uniformly random element of `from` satisfying `keep`.
pub(super) fn pick<C: Copy>(
    rng: &mut MachineRng,
    from: &[C],
    mut keep: impl FnMut(&C) -> bool,
) -> Option<C> {
    let eligible = from.iter().filter(|p| keep(p)).count();
    if eligible == 0 {
        return None;
    }
    let k = rng.random_range(0..eligible);
    from.iter().filter(|p| keep(p)).nth(k).copied()
}

/// Appends to `out` a uniformly random subset of `k` elements of `from` satisfying `keep` (all
/// of them if fewer), in their order in `from` (selection sampling, Knuth's algorithm S).
pub(super) fn sample_into<C: Copy>(
    rng: &mut MachineRng,
    from: &[C],
    k: usize,
    mut keep: impl FnMut(&C) -> bool,
    out: &mut Vec<C>,
) {
    let mut remaining = from.iter().filter(|p| keep(p)).count();
    let mut needed = k.min(remaining);
    for p in from {
        if needed == 0 {
            break;
        }
        if !keep(p) {
            continue;
        }
        if rng.random_range(0..remaining) < needed {
            out.push(*p);
            needed -= 1;
        }
        remaining -= 1;
    }
}
