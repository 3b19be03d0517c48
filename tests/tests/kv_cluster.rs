//! The replicated KV service on real sockets and disks: three servers on loopback, a client
//! writes and reads 100 keys; the leader is killed, the other two elect a new one and the
//! client still reads everything and writes more; the killed server restarts from its data
//! directory and catches up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use starling_core::id::PeerId;
use starling_core::identity::Identity;
use starling_core::raft::Role;
use starling_core::session::NodeKeys;
use starling_kv::{ClientConfig, KvClient, KvServer, ServerConfig, SyncMode};

const WAIT: Duration = Duration::from_secs(15);

fn keys(seed: u64) -> NodeKeys {
    NodeKeys::new(Identity::from_test_seed(seed), [seed as u8; 32])
}

/// A fresh directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "starling-kv-cluster-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(i: usize, ids: &[PeerId], dir: &TempDir, listen: SocketAddr) -> ServerConfig {
    let mut c = ServerConfig::new(
        keys(101 + i as u64),
        listen,
        dir.0.join(format!("server-{i}")),
        ids.to_vec(),
    );
    c.network = "kv-cluster-test".into();
    // Durable, as in production; and small compactions so the restarted server is brought up
    // to date with a snapshot, not only entries.
    c.sync = SyncMode::Always;
    c.compact_every = 64;
    c
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn leader(servers: &[Option<KvServer>]) -> Option<usize> {
    servers
        .iter()
        .position(|s| s.as_ref().is_some_and(|s| s.status().role == Role::Leader))
}

fn key(i: usize) -> String {
    format!("key-{i:04}")
}

fn value(i: usize, round: usize) -> String {
    format!("value-{i}-round-{round}")
}

#[test]
fn three_servers_survive_losing_the_leader_and_a_restart_catches_up() {
    // A thread that never finishes shutting down would hang the run: fail it instead.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(90));
        eprintln!("kv_cluster: still running after 90 s; aborting");
        std::process::abort();
    });
    let started = Instant::now();
    let dir = TempDir::new();
    let ids: Vec<PeerId> = (0..3).map(|i| keys(101 + i).identity().peer_id()).collect();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut servers: Vec<Option<KvServer>> = (0..3)
        .map(|i| Some(KvServer::start(config(i, &ids, &dir, any)).unwrap()))
        .collect();
    let addrs: Vec<SocketAddr> = servers
        .iter()
        .map(|s| s.as_ref().unwrap().local_addr())
        .collect();
    for (i, s) in servers.iter().enumerate() {
        for j in 0..3 {
            if i != j {
                s.as_ref().unwrap().connect(ids[j], addrs[j]);
            }
        }
    }
    let mut client_config = ClientConfig::new(
        keys(200),
        ids.iter().copied().zip(addrs.iter().copied()).collect(),
    );
    client_config.network = "kv-cluster-test".into();
    client_config.timeout = Duration::from_secs(10);
    client_config.resend_after = Duration::from_millis(300);
    let client = KvClient::start(client_config).unwrap();

    wait_until("a leader", || leader(&servers).is_some());
    for i in 0..100 {
        client.put(key(i), value(i, 0)).unwrap();
    }
    for i in 0..100 {
        assert_eq!(
            client.get(key(i)).unwrap().as_deref(),
            Some(value(i, 0).as_bytes())
        );
    }
    assert_eq!(client.get("missing").unwrap(), None);

    // Kill the leader.
    let old = leader(&servers).expect("a leader");
    let old_applied = servers[old].as_ref().unwrap().status().applied;
    servers[old].take().unwrap().shutdown();
    wait_until("a new leader", || {
        leader(&servers).is_some_and(|l| l != old)
    });

    // Everything written is still there, and the two survivors accept writes.
    for i in 0..100 {
        assert_eq!(
            client.get(key(i)).unwrap().as_deref(),
            Some(value(i, 0).as_bytes())
        );
    }
    for i in 50..150 {
        client.put(key(i), value(i, 1)).unwrap();
    }

    // Restart the old leader from its data directory, on its old address.
    let mut c = config(old, &ids, &dir, addrs[old]);
    c.peers = (0..3)
        .filter(|&j| j != old)
        .map(|j| (ids[j], addrs[j]))
        .collect();
    let restarted = KvServer::start(c).unwrap();
    // Its own disk holds at least what it had applied before the crash.
    wait_until("the restarted server to replay its log", || {
        restarted.status().applied >= old_applied
    });
    servers[old] = Some(restarted);

    // It catches up with the leader (by snapshot: the leader compacted meanwhile).
    let l = leader(&servers).expect("a leader");
    wait_until("the restarted server to catch up", || {
        let target = servers[l].as_ref().unwrap().status().applied;
        servers[old].as_ref().unwrap().status().applied >= target
    });
    let status = servers[old].as_ref().unwrap().status();
    assert_eq!(status.keys, 150, "{status:?}");
    assert_eq!(status.leader, Some(ids[l]));

    // The cluster still serves reads and writes with all three.
    for i in 0..150 {
        let round = usize::from(i >= 50);
        assert_eq!(
            client.get(key(i)).unwrap().as_deref(),
            Some(value(i, round).as_bytes())
        );
    }
    client.put("last", "write").unwrap();
    wait_until("every server to apply the last write", || {
        let applied: Vec<u64> = servers
            .iter()
            .map(|s| s.as_ref().unwrap().status().applied)
            .collect();
        applied.iter().all(|a| *a == applied[0])
    });

    client.shutdown();
    for s in servers.into_iter().flatten() {
        s.shutdown();
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
