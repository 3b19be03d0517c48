//! # starling-counting-alloc
//!
//! [`CountingAlloc`] wraps [`std::alloc::System`] and counts every allocation it serves
//! (`alloc`, `alloc_zeroed` and `realloc`; deallocations are not counted), so a benchmark can
//! show that a hot path allocates nothing in steady state:
//!
//! ```
//! use starling_counting_alloc::{thread_allocations, CountingAlloc};
//!
//! #[global_allocator]
//! static ALLOC: CountingAlloc = CountingAlloc::new();
//!
//! fn main() {
//!     let before = thread_allocations();
//!     let v = std::hint::black_box(vec![1u8; 100]);
//!     assert_eq!(thread_allocations() - before, 1);
//!     drop(v);
//! }
//! ```
//!
//! Two counters are kept:
//! - per thread ([`thread_allocations`]): a `const`-initialised `thread_local!` `Cell<u64>`.
//!   Such a slot has no lazy initialisation and no destructor, so touching it from inside the
//!   allocator can neither allocate nor recurse, and it stays usable while a thread is being
//!   torn down;
//! - in total ([`total_allocations`]): one relaxed `AtomicU64`, for all threads.
//!
//! Counting costs two increments per allocation; the memory itself comes from `System`.
//! The counters only count when [`CountingAlloc`] is installed as the `#[global_allocator]`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    /// Allocations served to this thread. `const`-initialised and of a type without `Drop`, so
    /// the slot needs neither lazy registration nor a destructor.
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Allocations served to every thread together.
static TOTAL_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Allocations served to the calling thread since it started (0 unless [`CountingAlloc`] is the
/// global allocator).
pub fn thread_allocations() -> u64 {
    // `try_with` cannot fail for a const-initialised slot without a destructor, but a 0 is a
    // better answer than a panic if it ever did.
    THREAD_ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

/// Allocations served to all threads since the process started (0 unless [`CountingAlloc`] is
/// the global allocator). Relaxed: exact once the threads that allocated have been joined.
pub fn total_allocations() -> u64 {
    TOTAL_ALLOCATIONS.load(Ordering::Relaxed)
}

/// Counts one allocation on this thread and in the total. Never allocates.
#[inline]
fn count() {
    // Cannot fail (see `thread_allocations`); if it somehow did, the total still counts.
    let _ = THREAD_ALLOCATIONS.try_with(|c| c.set(c.get().wrapping_add(1)));
    TOTAL_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
}

/// The system allocator, counting allocations (see the [crate docs](crate)).
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAlloc {
    inner: System,
}

impl CountingAlloc {
    /// A counting wrapper around [`System`]; usable in a `static`.
    pub const fn new() -> Self {
        CountingAlloc { inner: System }
    }
}

// SAFETY: every method forwards to `System`, which upholds the `GlobalAlloc` contract, with the
// caller's arguments unchanged, and returns its result unchanged. The only extra work is
// `count()`, which neither allocates nor unwinds (a const-initialised, destructor-free
// thread-local `Cell` and a relaxed atomic add), so the allocator is not re-entered.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller guarantees `layout` has a non-zero size, as `System.alloc` requires.
        unsafe { self.inner.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`: the caller guarantees `layout` has a non-zero size.
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` was allocated by this allocator (so by `System`,
        // to which every allocation is forwarded) with `layout`.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller guarantees `ptr` came from this allocator (hence from `System`)
        // with `layout`, and that `new_size` is non-zero and does not overflow when rounded up
        // to `layout.align()`.
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary runs on the counting allocator, so the counters see real traffic.
    #[global_allocator]
    static ALLOC: CountingAlloc = CountingAlloc::new();

    #[test]
    fn a_box_counts_one_allocation_on_this_thread() {
        let before = thread_allocations();
        let b = Box::new(7u64);
        assert_eq!(**std::hint::black_box(&b), 7);
        assert_eq!(thread_allocations() - before, 1);
        drop(b);
        assert_eq!(
            thread_allocations() - before,
            1,
            "deallocation is not counted"
        );
    }

    #[test]
    fn zeroed_allocations_are_counted_and_zeroed() {
        let before = thread_allocations();
        let v = vec![0u8; 4096];
        assert!(std::hint::black_box(&v).iter().all(|b| *b == 0));
        assert_eq!(thread_allocations() - before, 1);
    }

    #[test]
    fn realloc_is_counted_and_keeps_contents() {
        let mut v: Vec<u32> = Vec::with_capacity(4);
        v.extend([1, 2, 3, 4]);
        let before = thread_allocations();
        v.reserve_exact(1024);
        assert_eq!(thread_allocations() - before, 1, "one realloc");
        v.extend(5..=100);
        assert_eq!(v.len(), 100);
        assert!(v.iter().copied().eq(1..=100));
        v.shrink_to_fit();
        assert_eq!(
            thread_allocations() - before,
            2,
            "shrinking reallocates too"
        );
    }

    #[test]
    fn direct_calls_through_global_alloc() {
        let a = CountingAlloc::new();
        let layout = Layout::from_size_align(64, 16).unwrap();
        let before = thread_allocations();
        // SAFETY: `layout` has a non-zero size; each pointer is checked for null, written only
        // within its layout, reallocated and freed with the layout it was made with.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % 16, 0);
            p.write_bytes(0xAB, 64);
            let p = a.realloc(p, layout, 256);
            assert!(!p.is_null());
            assert_eq!(*p.add(63), 0xAB, "realloc keeps the old bytes");
            a.dealloc(p, Layout::from_size_align(256, 16).unwrap());
            let z = a.alloc_zeroed(layout);
            assert!(!z.is_null());
            assert_eq!(*z.add(10), 0);
            a.dealloc(z, layout);
        }
        // Counted whether or not `a` is the global allocator: the counters are shared.
        assert_eq!(thread_allocations() - before, 3);
    }

    #[test]
    fn counts_are_per_thread_and_the_total_sums_them() {
        let total_before = total_allocations();
        let here_before = thread_allocations();
        let other = std::thread::spawn(|| {
            let start = thread_allocations();
            let v: Vec<Box<u8>> = (0..10).map(Box::new).collect();
            drop(std::hint::black_box(v));
            thread_allocations() - start
        })
        .join()
        .unwrap();
        assert_eq!(other, 11, "ten boxes and the vector");
        // Spawning allocates on this thread too; the other thread's boxes are not counted here.
        assert!(thread_allocations() - here_before < 100);
        assert!(total_allocations() - total_before >= 11);
    }

    #[test]
    fn a_fresh_thread_starts_at_zero() {
        let n = std::thread::spawn(thread_allocations).join().unwrap();
        // Only what the runtime allocated while starting the thread, if anything.
        assert!(n < 50, "{n}");
    }
}
