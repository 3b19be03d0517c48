//! append + sync of batches of 128-byte entries under `SyncMode::Always`: the cost of making a
//! batch durable, one fdatasync per batch. Batches of 1 and 64 are compared side by side.

use std::path::PathBuf;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use starling_store::{EntryRecord, LogStore, StoreConfig, SyncMode};

const ENTRY_BYTES: usize = 128;

fn bench_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("starling-store-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn append_sync(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_sync");
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(3));
    let data = Bytes::from(vec![0xAB; ENTRY_BYTES]);
    for batch in [1usize, 64] {
        let dir = bench_dir(&format!("batch{batch}"));
        let config = StoreConfig {
            sync: SyncMode::Always,
            ..StoreConfig::default()
        };
        let (mut store, _) = LogStore::open(&dir, config).expect("open");
        let mut entries: Vec<EntryRecord> = Vec::with_capacity(batch);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter(|| {
                entries.clear();
                let first = store.last_index() + 1;
                entries.extend((0..batch as u64).map(|i| EntryRecord {
                    index: first + i,
                    term: 1,
                    data: data.clone(),
                }));
                store.append(&entries).expect("append");
                store.sync().expect("sync");
            })
        });
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
    group.finish();
}

criterion_group!(benches, append_sync);
criterion_main!(benches);
