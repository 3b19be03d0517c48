//! Crash test with real process death: a writer child appends and syncs in a loop, printing each
//! index it has made durable; the parent SIGKILLs it at a seeded random point, reopens the store
//! and checks that every acknowledged entry (and hard state) is there, intact. Repeated on the
//! same directory so kills land at different points: mid-write, mid-sync, mid-roll-over,
//! mid-snapshot.
//!
//! The child is this test binary itself, re-run with [`CHILD_ENV`] set and filtered to
//! [`kill_child_writer`], which does nothing in a normal test run.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use common::*;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use starling_store::{EntryRecord, LogStore, SnapshotRecord, StoreConfig, SyncMode};

/// Set to the store directory to make [`kill_child_writer`] act as the writer.
const CHILD_ENV: &str = "STARLING_STORE_KILL_CHILD";
const ROUNDS: usize = 5;

/// Small segments, so kills also land around roll-over and compaction.
fn kill_config() -> StoreConfig {
    config(16 << 10, SyncMode::Always)
}

/// Entry terms follow from the index, so the parent can check any entry on its own.
fn term_of(index: u64) -> u64 {
    1 + index / 500
}

fn snapshot_at(index: u64) -> SnapshotRecord {
    SnapshotRecord {
        index,
        term: term_of(index),
        data: Bytes::from(format!("snapshot through {index}")),
    }
}

/// The writer: appends batches forever, syncing after each and acknowledging on stdout.
fn run_writer(dir: &Path) {
    let (mut store, _) = LogStore::open(dir, kill_config()).expect("child: open");
    let mut stdout = std::io::stdout().lock();
    let mut next = store.last_index() + 1;
    loop {
        let batch = 1 + (next.wrapping_mul(7919) % 40);
        let batch: Vec<EntryRecord> = (next..next + batch)
            .map(|i| EntryRecord {
                index: i,
                term: term_of(i),
                data: data_for(i, term_of(i)),
            })
            .collect();
        next += batch.len() as u64;
        store.append(&batch).expect("child: append");
        let last = store.last_index();
        store
            .set_hard_state(format!("hs {last}").as_bytes())
            .expect("child: hard state");
        // Now and then compact everything but the last few hundred entries.
        if last / 700 != (last - batch.len() as u64) / 700 && last > 300 {
            store
                .save_snapshot(&snapshot_at(last - 300))
                .expect("child: snapshot");
        }
        store.sync().expect("child: sync");
        // The acknowledgement: only after sync returned.
        writeln!(stdout, "ACK {last}")
            .and_then(|()| stdout.flush())
            .expect("child: stdout");
    }
}

/// In a normal run: nothing. As the child: the writer, until killed.
#[test]
fn kill_child_writer() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        run_writer(Path::new(&dir));
    }
}

/// Kills the child if the parent panics, so no writer outlives the test.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_writer(dir: &Path) -> Reaper {
    let exe = std::env::current_exe().expect("test binary path");
    let child = Command::new(exe)
        .args([
            "kill_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn writer");
    Reaper(child)
}

#[test]
fn sigkilled_writer_loses_no_acknowledged_entry() {
    let dir = TempDir::new("kill");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x5eed_c4a5);
    let mut acked = 0u64;
    let mut torn_total = 0u64;
    for round in 0..ROUNDS {
        let mut child = spawn_writer(dir.path());
        let kill_after = rng.random_range(5..80);
        let stdout = child.0.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while seen < kill_after {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("round {round}: writer exited early"))
                .expect("read writer stdout");
            // libtest prints its own lines too; acknowledgements are the ones we tagged.
            let Some(index) = line.strip_prefix("ACK ") else {
                continue;
            };
            let index: u64 = index.trim().parse().expect("ack index");
            assert!(index > acked, "round {round}: acks must increase");
            acked = index;
            seen += 1;
        }
        // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no sync.
        child.0.kill().expect("kill writer");
        child.0.wait().expect("reap writer");
        drop(lines);

        let (store, rec) = LogStore::open(dir.path(), kill_config())
            .unwrap_or_else(|e| panic!("round {round}: recovery failed: {e}"));
        torn_total += rec.truncated_tail_bytes;
        let snap_index = rec.snapshot.as_ref().map_or(0, |s| s.index);
        if let Some(s) = &rec.snapshot {
            assert_eq!(s, &snapshot_at(s.index), "round {round}: snapshot");
        }
        // Contiguous after the snapshot, each entry intact (index_terms checks the data).
        let got = index_terms(&rec.entries);
        for (k, &(index, term)) in got.iter().enumerate() {
            assert_eq!(index, snap_index + 1 + k as u64, "round {round}: gap");
            assert_eq!(term, term_of(index), "round {round}: term of {index}");
        }
        assert!(
            store.last_index() >= acked,
            "round {round}: acknowledged {acked}, recovered up to {}",
            store.last_index()
        );
        assert_eq!(
            store.last_index(),
            snap_index.max(got.last().map_or(0, |e| e.0))
        );
        // The hard state written with the last acknowledged batch (or a later one) survived.
        let hs = rec.hard_state.expect("hard state");
        let hs: u64 = std::str::from_utf8(&hs)
            .ok()
            .and_then(|s| s.strip_prefix("hs "))
            .and_then(|s| s.parse().ok())
            .expect("hard state format");
        assert!(
            hs >= acked,
            "round {round}: hard state {hs} < acked {acked}"
        );
        eprintln!(
            "round {round}: killed after {kill_after} acks at {acked}, recovered {} \
             (snapshot {snap_index}), torn bytes cut {}",
            store.last_index(),
            rec.truncated_tail_bytes
        );
    }
    eprintln!("torn bytes cut over {ROUNDS} rounds: {torn_total}");
}
