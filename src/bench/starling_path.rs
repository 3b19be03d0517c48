//! The starling path: two nodes (mio reactors with sessions, or QUIC adapters) on their own
//! threads.

use super::*;

pub(super) struct RunningNode {
    pub(super) peer: PeerId,
    pub(super) addr: SocketAddr,
    pub(super) handle: Handle,
    /// The reactor thread's CPU clock.
    pub(super) clock: ThreadClock,
    pub(super) thread: JoinHandle<std::io::Result<ReactorStats>>,
}

impl RunningNode {
    pub(super) fn start(
        key_seed: u64,
        bootstrap: Vec<SocketAddr>,
        setup: Setup,
        on_event: impl FnMut(&NodeEvent) + Send + 'static,
    ) -> Result<RunningNode, String> {
        let identity = Identity::from_test_seed(key_seed);
        let peer = identity.peer_id();
        let addr = "127.0.0.1:0".parse().map_err(|_| "bad address")?;
        let mut config = ReactorConfig::new(addr, NodeKeys::new(identity, seed()?), NETWORK);
        config.bootstrap = bootstrap;
        config.session = session_config();
        config.node.protocols = vec![ProtocolId::GOSSIP];
        config.high_water = setup.high_water;
        let (reactor, handle) = AnyReactor::bind(config, setup.io_threads, setup.transport)
            .map_err(|e| e.to_string())?;
        let addr = reactor.local_addr();
        let (clock_tx, clock_rx) = mpsc::sync_channel(1);
        let thread = thread::Builder::new()
            .name(format!("reactor-{key_seed}"))
            .spawn(move || {
                let _ = clock_tx.send(ThreadClock::current());
                reactor.run(on_event)
            })
            .map_err(|e| e.to_string())?;
        let clock = clock_rx.recv().unwrap_or(ThreadClock(None));
        Ok(RunningNode {
            peer,
            addr,
            handle,
            clock,
            thread,
        })
    }

    pub(super) fn stop(self) -> Result<ReactorStats, String> {
        let _ = self.handle.shutdown();
        match self.thread.join() {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("reactor thread panicked".into()),
        }
    }
}

/// How the nodes of a starling run are set up.
#[derive(Clone, Copy, Debug)]
pub(super) struct Setup {
    pub(super) transport: Transport,
    /// I/O threads per TCP node (0: one reactor thread).
    pub(super) io_threads: usize,
    /// The nodes' high-water mark; above `window_bytes`, so the sender is never paused.
    pub(super) high_water: usize,
    /// Most payload bytes sent and not yet received.
    pub(super) window_bytes: usize,
}

pub(super) fn run_starling(phases: [Phase; 2], setup: Setup) -> Result<RunResult, String> {
    let progress = Progress::new(thread::current());
    let (report, reports) = mpsc::sync_channel::<RxReport>(8);
    let mut checker = Checker::new(phases, progress.clone());
    // The receiver's callback runs on its reactor thread: that is where allocations are counted.
    let receiver = RunningNode::start(1, vec![], setup, move |event| {
        let r = match event {
            NodeEvent::Frame { frame, .. } => checker.on_frame(frame),
            NodeEvent::PeerConnected { .. } => Some(RxReport::Connected),
            _ => None,
        };
        if let Some(r) = r {
            let _ = report.try_send(r);
        }
    })?;
    let (event_tx, sender_events) = mpsc::channel::<NodeEvent>();
    let sender = RunningNode::start(2, vec![receiver.addr], setup, move |event| {
        if !matches!(event, NodeEvent::Frame { .. }) {
            let _ = event_tx.send(event.clone());
        }
    })?;
    let outcome = stream_to(
        &receiver,
        &sender,
        &sender_events,
        &reports,
        &progress,
        phases,
        setup.window_bytes,
    );
    let sender_stats = sender.stop();
    let receiver_stats = receiver.stop()?;
    let mut result = outcome?;
    let refused = sender_stats?.send_refused;
    if refused > 0 {
        return Err(format!("the sender's session refused {refused} frames"));
    }
    result.pool_misses = receiver_stats.pool.misses;
    Ok(result)
}

/// The bench thread: waits for the session, then streams each phase through the sender's
/// handle, honouring backpressure and the in-flight window.
pub(super) fn stream_to(
    receiver: &RunningNode,
    sender: &RunningNode,
    sender_events: &Receiver<NodeEvent>,
    reports: &Receiver<RxReport>,
    progress: &Progress,
    phases: [Phase; 2],
    window_bytes: usize,
) -> Result<RunResult, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut sender_up, mut receiver_up) = (false, false);
    while !(sender_up && receiver_up) {
        if Instant::now() > deadline {
            return Err("the two nodes did not connect".into());
        }
        let tick = Duration::from_millis(10);
        sender_up |= matches!(
            sender_events.recv_timeout(tick),
            Ok(NodeEvent::PeerConnected { .. })
        );
        receiver_up |= matches!(reports.try_recv(), Ok(RxReport::Connected));
    }
    let mut paused = false;
    let mut starts = [Instant::now(); 2];
    let (mut tx_cpu_ns, mut app_cpu_ns) = ([0; 2], [0; 2]);
    let app = ThreadClock::current();
    let mut base = 0u64;
    for (i, p) in phases.iter().enumerate() {
        let window = (window_bytes / p.size).max(1) as u64;
        let batches = make_phase(*p);
        let mut sent = 0u64;
        let (tx_start, app_start) = (sender.clock.ns(), app.ns());
        starts[i] = Instant::now();
        for frames in batches {
            // The node drops sends to a paused peer: wait for the resume.
            loop {
                let event = match paused {
                    true => sender_events.recv_timeout(STALL).map_err(|e| e.to_string()),
                    false => match sender_events.try_recv() {
                        Ok(e) => Ok(e),
                        Err(_) => break,
                    },
                };
                match event {
                    Ok(NodeEvent::Backpressure { paused: p, .. }) => paused = p,
                    Ok(NodeEvent::PeerDisconnected { cause, .. }) => {
                        return Err(format!("the receiver disconnected: {cause}"))
                    }
                    Ok(_) => {}
                    Err(e) => return Err(format!("paused and never resumed: {e}")),
                }
            }
            let n = frames.len() as u64;
            // A full window waits until half of it has drained, then refills: one wake-up per
            // half window rather than per batch.
            if progress.get() < window_target(base + sent + n, window) {
                let target = window_target(base + sent + n, window / 2);
                wait_for(progress, "sender window", target)?;
            }
            let peer = receiver.peer;
            sender
                .handle
                .send_batch(peer, frames)
                .map_err(|e| e.to_string())?;
            sent += n;
        }
        wait_for(progress, "phase end", base + p.count)?;
        (tx_cpu_ns[i], app_cpu_ns[i]) = (sender.clock.since(tx_start), app.since(app_start));
        base += p.count;
    }
    let mut result = RunResult::new(starts, &collect_phases(reports)?);
    (result.tx_cpu_ns, result.app_cpu_ns) = (tx_cpu_ns, app_cpu_ns);
    Ok(result)
}
