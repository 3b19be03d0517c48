//! A bounded pool of fixed-size receive buffers.
//!
//! The reactor reads sockets into chunks taken from here. A chunk handed out as `BytesMut` comes
//! back with [`BufferPool::give`]; the pool keeps it only if no `Bytes` still slices it
//! (`BytesMut::try_reclaim` tells), so a buffer is recycled exactly when every view of it has
//! dropped, and never shared while still in use. Chunks are zero-filled once, when allocated, so
//! reads need no unsafe code and no per-read clearing.

use bytes::BytesMut;

/// Allocation counters, to show the hot path allocates nothing in steady state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Chunks allocated, over the pool's life.
    pub allocations: u64,
    /// Takes served from the free list.
    pub hits: u64,
    /// Takes that found the free list empty and allocated.
    pub misses: u64,
    /// Chunks returned but dropped: still sliced elsewhere, or the pool was full.
    pub dropped: u64,
}

/// Fixed-size chunks, at most `capacity` kept free.
#[derive(Debug)]
pub struct BufferPool {
    chunk_size: usize,
    capacity: usize,
    free: Vec<BytesMut>,
    stats: PoolStats,
}

impl BufferPool {
    /// A pool of `capacity` chunks of `chunk_size` bytes, allocated up front.
    pub fn new(chunk_size: usize, capacity: usize) -> Self {
        let mut pool = BufferPool {
            chunk_size,
            capacity,
            free: Vec::with_capacity(capacity),
            stats: PoolStats::default(),
        };
        for _ in 0..capacity {
            let chunk = pool.allocate();
            pool.free.push(chunk);
        }
        pool
    }

    fn allocate(&mut self) -> BytesMut {
        self.stats.allocations += 1;
        BytesMut::zeroed(self.chunk_size)
    }

    /// A chunk of `chunk_size` initialised bytes.
    pub fn take(&mut self) -> BytesMut {
        match self.free.pop() {
            Some(chunk) => {
                self.stats.hits += 1;
                chunk
            }
            None => {
                self.stats.misses += 1;
                self.allocate()
            }
        }
    }

    /// Returns a chunk. Kept for reuse if nothing else still refers to its memory and the pool
    /// has room; dropped otherwise.
    pub fn give(&mut self, mut chunk: BytesMut) {
        if self.free.len() >= self.capacity {
            self.stats.dropped += 1;
            return;
        }
        if chunk.len() == self.chunk_size {
            // Untouched (read into, never split): reuse as is, without clearing 64 KiB.
            self.free.push(chunk);
            return;
        }
        chunk.clear();
        if chunk.try_reclaim(self.chunk_size) {
            // Reclaimed memory keeps its old (initialised) contents; restore the full length.
            chunk.resize(self.chunk_size, 0);
            self.free.push(chunk);
        } else {
            self.stats.dropped += 1;
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    /// Size of each chunk.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_reused_once_returned() {
        let mut pool = BufferPool::new(1024, 2);
        for _ in 0..100 {
            let a = pool.take();
            assert_eq!(a.len(), 1024);
            pool.give(a);
        }
        let s = pool.stats();
        assert_eq!((s.allocations, s.hits, s.misses), (2, 100, 0));
    }

    #[test]
    fn a_chunk_still_sliced_elsewhere_is_not_reused() {
        let mut pool = BufferPool::new(1024, 1);
        let mut chunk = pool.take();
        let slice = chunk.split_to(10).freeze();
        pool.give(chunk);
        assert_eq!(
            pool.stats().dropped,
            1,
            "the frozen slice still uses the memory"
        );
        let fresh = pool.take();
        assert_eq!(pool.stats().misses, 1);
        assert_eq!(fresh.len(), 1024);
        drop(slice);
    }

    #[test]
    fn exhausted_pool_allocates_and_counts_misses() {
        let mut pool = BufferPool::new(64, 1);
        let a = pool.take();
        let b = pool.take();
        assert_eq!(pool.stats().misses, 1);
        pool.give(a);
        pool.give(b);
        assert_eq!(pool.stats().dropped, 1, "only one slot");
    }
}
