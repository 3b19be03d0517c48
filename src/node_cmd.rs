//! `starling node` and `starling cluster`: real nodes on TCP through the mio reactor.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;
use starling_core::dht::{DhtConfig, DhtEvent, NodeContact};
use starling_core::gossip::{Gossip, GossipConfig, GossipEvent, TopicId};
use starling_core::identity::Identity;
use starling_core::node::{NodeEvent, ProtocolEvent};
use starling_core::session::NodeKeys;
use starling_mio::{Handle, ReactorConfig};

use crate::runtime::{AnyReactor, Transport};

#[derive(Args)]
pub struct NodeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
    /// Peers to dial and keep connected, comma-separated.
    #[arg(long, value_delimiter = ',')]
    bootstrap: Vec<SocketAddr>,
    /// File holding the node's 32-byte secret key in hex; created with a fresh key if missing.
    #[arg(long, conflicts_with = "key_seed")]
    key: Option<PathBuf>,
    /// Derive the key from this number (tests and demos only: anyone can derive it too).
    #[arg(long)]
    key_seed: Option<u64>,
    /// Network name; nodes of other networks are refused.
    #[arg(long, default_value = "starling")]
    network: String,
    /// I/O threads owning sockets and sessions besides the node thread; 0 runs everything on
    /// one reactor thread.
    #[arg(long, default_value_t = 0)]
    io_threads: usize,
    /// Do not host the Kademlia DHT (by default the node joins it through its first bootstrap
    /// peer and answers DHT requests).
    #[arg(long)]
    no_dht: bool,
    /// Do not host gossip (by default the node joins the overlay through its first bootstrap
    /// peer and relays the topics it subscribes to).
    #[arg(long)]
    no_gossip: bool,
    /// Gossip topics to subscribe to (comma-separated names).
    #[arg(long, value_delimiter = ',', default_value = "blocks")]
    topics: Vec<String>,
    /// Transport: TCP with Noise sessions, or QUIC (UDP; TLS 1.3 bound to the node identity).
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    transport: Transport,
}

#[derive(Args)]
pub struct ClusterArgs {
    /// Number of nodes to start on 127.0.0.1.
    #[arg(long, default_value_t = 16)]
    nodes: u32,
    /// Print one JSON line and exit once every node holds an established session.
    #[arg(long)]
    json: bool,
    /// Give up (and fail) after this many seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Without --json: keep the cluster running this many seconds after it connects.
    #[arg(long, default_value_t = 2.0)]
    linger: f64,
    /// I/O threads per node besides its node thread; 0 runs each node on one reactor thread.
    #[arg(long, default_value_t = 0)]
    io_threads: usize,
    /// Host the Kademlia DHT on every node; the cluster then also waits until every node but
    /// the first has joined it (the JSON line gains `dht_joined`).
    #[arg(long)]
    dht: bool,
    /// Transport: TCP with Noise sessions, or QUIC (UDP; TLS 1.3 bound to the node identity).
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    transport: Transport,
}

fn load_or_create_key(path: &PathBuf) -> Result<Identity, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = text.trim();
            let mut secret = [0u8; 32];
            if text.len() != 64 {
                return Err(format!("{}: expected 64 hex digits", path.display()));
            }
            for (i, byte) in secret.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                    .map_err(|_| format!("{}: not hex", path.display()))?;
            }
            Ok(Identity::from_secret(secret))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| format!("no OS randomness: {e}"))?;
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            std::fs::write(path, hex + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(Identity::from_secret(secret))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn noise_seed() -> Result<[u8; 32], String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no OS randomness: {e}"))?;
    Ok(seed)
}

pub fn run_node(args: NodeArgs) -> Result<(), String> {
    let identity = match (&args.key, args.key_seed) {
        (Some(path), _) => load_or_create_key(path)?,
        (None, Some(seed)) => Identity::from_test_seed(seed),
        (None, None) => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| format!("no OS randomness: {e}"))?;
            Identity::from_secret(secret)
        }
    };
    let keys = NodeKeys::new(identity, noise_seed()?);
    let peer_id = keys.identity().peer_id();
    let mut config = ReactorConfig::new(args.listen, keys, &args.network);
    config.bootstrap = args.bootstrap;
    if !args.no_dht {
        config.protocols.dht(DhtConfig::default());
    }
    if !args.no_gossip {
        config.protocols.gossip(GossipConfig::default());
    }
    let (reactor, handle) = AnyReactor::bind(config, args.io_threads, args.transport)
        .map_err(|e| format!("{}: {e}", args.listen))?;
    if !args.no_gossip {
        for name in &args.topics {
            let topic = TopicId::named(name);
            handle
                .with_protocol::<Gossip<NodeContact>>(move |gossip, _| {
                    if let Err(e) = gossip.subscribe(topic) {
                        tracing::warn!(topic = topic.0, error = %e, "cannot subscribe");
                    }
                })
                .map_err(|e| e.to_string())?;
        }
    }
    tracing::info!(%peer_id, addr = %reactor.local_addr(), network = %args.network, "node listening");
    println!("node {peer_id} listening on {}", reactor.local_addr());
    let mut connected = 0usize;
    reactor
        .run(|event| match event {
            NodeEvent::PeerConnected {
                peer,
                addr,
                direction,
            } => {
                connected += 1;
                tracing::info!(?peer, %addr, ?direction, peers = connected, "peer connected");
            }
            NodeEvent::PeerDisconnected { peer, cause } => {
                connected = connected.saturating_sub(1);
                tracing::info!(?peer, %cause, peers = connected, "peer disconnected");
            }
            NodeEvent::DialFailed { addr, attempts, .. } => {
                tracing::warn!(%addr, attempts, "dial failed")
            }
            NodeEvent::Protocol(event) => log_protocol_event(event),
            other => tracing::debug!(?other, "event"),
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The hosted protocols' events worth a line at info level; the rest at debug.
fn log_protocol_event(event: &ProtocolEvent) {
    if let Some(DhtEvent::<NodeContact>::Bootstrapped { contacts }) = event.downcast_ref() {
        tracing::info!(contacts, "joined the DHT");
        return;
    }
    match event.downcast_ref::<GossipEvent<NodeContact>>() {
        Some(GossipEvent::NeighborUp(c)) => {
            tracing::info!(peer = ?c.peer, addr = %c.addr, "gossip neighbour up")
        }
        Some(GossipEvent::NeighborDown(c)) => {
            tracing::info!(peer = ?c.peer, "gossip neighbour down")
        }
        Some(GossipEvent::Message {
            topic, data, hops, ..
        }) => tracing::info!(topic = topic.0, bytes = data.len(), hops, "gossip message"),
        _ => tracing::debug!(?event, "event"),
    }
}

/// What the cluster's nodes report to the main thread.
enum Report {
    Up(usize),
    Down(usize),
    Joined(usize),
}

pub fn run_cluster(args: ClusterArgs) -> Result<(), String> {
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    let started = Instant::now();
    let (tx, rx) = mpsc::channel::<Report>();
    let mut handles: Vec<Handle> = Vec::new();
    let mut threads = Vec::new();
    let mut first_addr = None;
    let mut prev_addr = None;
    for i in 0..args.nodes as usize {
        let keys = NodeKeys::new(Identity::from_test_seed(i as u64 + 1), noise_seed()?);
        let mut config = ReactorConfig::new(
            "127.0.0.1:0".parse().map_err(|_| "bad address")?,
            keys,
            "starling-cluster",
        );
        // Node 0 is the bootstrap node; every other node dials it and its predecessor.
        config.bootstrap = first_addr.into_iter().chain(prev_addr).collect();
        config.bootstrap.dedup();
        // Every node shares 127.0.0.1, so the per-address limit must admit them all.
        config.node.max_per_ip = config.node.max_inbound;
        if args.dht {
            config.protocols.dht(DhtConfig::default());
        }
        let (reactor, handle) =
            AnyReactor::bind(config, args.io_threads, args.transport).map_err(|e| e.to_string())?;
        let addr = reactor.local_addr();
        first_addr.get_or_insert(addr);
        prev_addr = Some(addr);
        if !args.json {
            println!(
                "node {i:>3} {} on {addr}",
                Identity::from_test_seed(i as u64 + 1).peer_id()
            );
        }
        let tx = tx.clone();
        threads.push(std::thread::spawn(move || {
            reactor.run(|event| match event {
                NodeEvent::PeerConnected { .. } => {
                    let _ = tx.send(Report::Up(i));
                }
                NodeEvent::PeerDisconnected { .. } => {
                    let _ = tx.send(Report::Down(i));
                }
                NodeEvent::Protocol(e)
                    if matches!(
                        e.downcast_ref(),
                        Some(DhtEvent::<NodeContact>::Bootstrapped { .. })
                    ) =>
                {
                    let _ = tx.send(Report::Joined(i));
                }
                _ => {}
            })
        }));
        handles.push(handle);
    }
    drop(tx);
    let mut sessions = vec![0u32; args.nodes as usize];
    let mut joined = vec![false; args.nodes as usize];
    // The first node has no one to join through: it fills its table from the others' requests.
    let all_joined = |joined: &[bool]| !args.dht || joined.iter().skip(1).all(|j| *j);
    let deadline = started + Duration::from_secs_f64(args.timeout.max(0.0));
    let mut connected_at = None;
    while connected_at.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Report::Up(i)) => {
                sessions[i] += 1;
                if !args.json {
                    println!("  node {i:>3} connected ({} sessions)", sessions[i]);
                }
            }
            Ok(Report::Down(i)) => sessions[i] = sessions[i].saturating_sub(1),
            Ok(Report::Joined(i)) => joined[i] = true,
            Err(_) => break,
        }
        if sessions.iter().all(|s| *s > 0) && all_joined(&joined) {
            connected_at = Some(started.elapsed());
        }
    }
    if !args.json && connected_at.is_some() {
        std::thread::sleep(Duration::from_secs_f64(args.linger.max(0.0)));
        while let Ok(r) = rx.try_recv() {
            match r {
                Report::Up(i) => sessions[i] += 1,
                Report::Down(i) => sessions[i] = sessions[i].saturating_sub(1),
                Report::Joined(i) => joined[i] = true,
            }
        }
    }
    for h in &handles {
        let _ = h.shutdown();
    }
    for t in threads {
        let _ = t.join();
    }
    let connected = sessions.iter().filter(|s| **s > 0).count();
    let total: u32 = sessions.iter().sum();
    if args.json {
        let mut report = serde_json::json!({
            "nodes": args.nodes,
            "transport": args.transport.name(),
            "connected": connected,
            "sessions": total / 2,
            "ms_to_connect": connected_at.map(|d| d.as_millis() as u64),
        });
        if args.dht {
            report["dht_joined"] = joined.iter().filter(|j| **j).count().into();
        }
        println!("{report}");
    } else {
        println!(
            "cluster: {connected}/{} nodes connected, {} sessions",
            args.nodes,
            total / 2
        );
    }
    match connected_at {
        Some(_) => Ok(()),
        None => Err(format!(
            "only {connected} of {} nodes connected ({} joined the DHT) within {} s",
            args.nodes,
            joined.iter().filter(|j| **j).count(),
            args.timeout
        )),
    }
}
