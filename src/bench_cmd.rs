//! `starling bench transport`: one-way throughput of encrypted frames over loopback TCP,
//! through the mio reactor (session + node) and, side by side in the same run, through a plain
//! tokio loop driving the same `Session` code with no node: the baseline.
//!
//! Workload per path and repetition: N frames of 64 B, then N/4 frames of 1 KiB, streamed one
//! way in batches of 64 KiB of payload, made before the clock starts. Each phase is timed from
//! its first send to its last receive. Every frame carries its sequence number, checked on
//! arrival (loss, order, length), and a sample is checked byte for byte. Compression is off
//! (crypto is measured, not LZ4) and the inbound rate limits are lifted. Allocations are counted
//! on the receiving thread over the last 90% of each phase (the counting global allocator).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use starling_core::id::PeerId;
use starling_core::identity::Identity;
use starling_core::node::NodeEvent;
use starling_core::session::{
    CloseCode, NodeKeys, RateLimits, Session, SessionConfig, SessionEvent,
};
use starling_core::time::Instant as SInstant;
use starling_core::wire::{Frame, ProtocolId};
use starling_counting_alloc::thread_allocations;
use starling_mio::{Handle, ReactorConfig, ReactorStats};

use crate::node_cmd::AnyReactor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Benchmarks.
#[derive(Subcommand)]
pub enum Bench {
    /// One-way encrypted throughput over 127.0.0.1: the mio reactor (session + node) against a
    /// plain tokio loop driving the same sessions (no node).
    Transport(TransportArgs),
}

#[derive(Args)]
pub struct TransportArgs {
    /// Frames of 64 B per repetition (then a quarter as many of 1 KiB).
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Repetitions of each path, alternating; medians are reported.
    #[arg(long, default_value_t = 3)]
    reps: u32,
    /// Print one JSON line (the last line of stdout).
    #[arg(long)]
    json: bool,
    /// Run each starling node on the multi-reactor with this many I/O threads (0: one reactor
    /// thread per node).
    #[arg(long, default_value_t = 0)]
    io_threads: usize,
    /// Run one path only (for profiling); the other's figures are then meaningless.
    #[arg(long, value_enum, hide = true)]
    only: Option<Path>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Path {
    Starling,
    Tokio,
}

pub fn run(what: Bench) -> Result<(), String> {
    match what {
        Bench::Transport(args) => transport(args),
    }
}

const NETWORK: &str = "starling-bench";
const MSG_TYPE: u8 = 7;
/// Payload per batch: 1024 frames of 64 B, 64 of 1 KiB.
const BATCH_BYTES: usize = 64 << 10;
/// The reactor's high-water mark (its default). The node drops sends to a paused peer, and
/// batches already queued when the pause is announced would be lost; so besides honouring
/// `Backpressure`, the sender keeps at most `WINDOW_BYTES` of payload sent but not yet received,
/// which keeps the reactor's queue below the mark. (A window of 3 MiB under a 4 MiB mark was
/// measured no faster.)
const HIGH_WATER: usize = 1 << 20;
const WINDOW_BYTES: usize = 768 << 10;
/// Every frame's sequence number is checked; every this many, its whole body too.
const SAMPLE_EVERY: u64 = 997;
/// A run that makes no progress for this long has lost frames or hung.
const STALL: Duration = Duration::from_secs(30);

/// One phase of the workload.
#[derive(Clone, Copy, Debug)]
struct Phase {
    size: usize,
    count: u64,
}

impl Phase {
    fn batch(self) -> u64 {
        (BATCH_BYTES / self.size).max(1) as u64
    }
    /// Frames before the allocation window opens (the first 10%: warm-up).
    fn window_start(self) -> u64 {
        self.count / 10
    }
}

fn phases(messages: u64) -> [Phase; 2] {
    let phase = |size, count| Phase { size, count };
    [phase(64, messages), phase(1024, messages / 4)]
}

/// The body of frame `seq`: its sequence number (little-endian u64), then a pattern.
fn fill(body: &mut [u8], seq: u64) {
    body[..8].copy_from_slice(&seq.to_le_bytes());
    for (j, b) in body[8..].iter_mut().enumerate() {
        *b = (seq as u8) ^ (j as u8).wrapping_mul(31);
    }
}

/// A phase's frames in batches; each batch's bodies are slices of one buffer.
fn make_phase(p: Phase) -> Vec<Vec<Frame>> {
    let first_of = |b: u64| b * p.batch();
    (0..p.count.div_ceil(p.batch()))
        .map(|b| {
            let n = p.batch().min(p.count - first_of(b)) as usize;
            let mut buf = vec![0u8; p.size * n];
            for (i, body) in buf.chunks_exact_mut(p.size).enumerate() {
                fill(body, first_of(b) + i as u64);
            }
            let all = Frame::new(ProtocolId::GOSSIP, MSG_TYPE, buf).body;
            (0..n)
                .map(|i| {
                    let body = all.slice(i * p.size..(i + 1) * p.size);
                    Frame::new(ProtocolId::GOSSIP, MSG_TYPE, body)
                })
                .collect()
        })
        .collect()
}

/// Frames received so far (all phases), published by the receiving thread, which unparks the
/// waiting one. A failed check publishes `u64::MAX` so that no one waits for it.
struct Progress {
    received: AtomicU64,
    waiter: Thread,
}

impl Progress {
    fn new(waiter: Thread) -> Arc<Progress> {
        let received = AtomicU64::new(0);
        Arc::new(Progress { received, waiter })
    }
    fn publish(&self, total: u64) {
        self.received.store(total, Ordering::Release);
        self.waiter.unpark();
    }
    fn get(&self) -> u64 {
        self.received.load(Ordering::Acquire)
    }
}

/// Notices when the receiver stops making progress.
struct StallWatch {
    last: u64,
    since: Instant,
}

impl StallWatch {
    fn new() -> StallWatch {
        StallWatch {
            last: u64::MAX,
            since: Instant::now(),
        }
    }
    fn check(&mut self, received: u64, what: &str) -> Result<(), String> {
        if received != self.last {
            (self.last, self.since) = (received, Instant::now());
            Ok(())
        } else if self.since.elapsed() > STALL {
            Err(format!(
                "{what}: no progress for {STALL:?} at {received} frames (frames lost?)"
            ))
        } else {
            Ok(())
        }
    }
}

/// Parks the calling thread (the progress's waiter) until `ready(received)`.
fn wait_for(progress: &Progress, what: &str, ready: impl Fn(u64) -> bool) -> Result<(), String> {
    let mut watch = StallWatch::new();
    loop {
        let received = progress.get();
        if ready(received) {
            return Ok(());
        }
        watch.check(received, what)?;
        thread::park_timeout(Duration::from_millis(5));
    }
}

/// What a receiver tells the bench thread.
enum RxReport {
    Connected,
    PhaseDone(PhaseDone),
    Failed(String),
}

struct PhaseDone {
    /// When the phase's last frame arrived.
    at: Instant,
    /// Allocations and CPU time (ns, 0 if unknown) of the receiving thread over the window, and
    /// the frames processed in it.
    allocs: u64,
    cpu_ns: u64,
    window: u64,
}

/// One thread's CPU clock: Linux's `/proc/thread-self/schedstat`, opened on that thread and
/// readable from any. Reading does not allocate. Without procfs every reading is `None`.
struct ThreadClock(Option<std::fs::File>);

impl ThreadClock {
    /// The calling thread's clock.
    fn current() -> ThreadClock {
        ThreadClock(std::fs::File::open("/proc/thread-self/schedstat").ok())
    }
    /// Nanoseconds the thread has run on a CPU.
    fn ns(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 96];
        let n = self.0.as_ref()?.read_at(&mut buf, 0).ok()?;
        let text = std::str::from_utf8(&buf[..n]).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }
    /// CPU time since `start` (a reading of this clock); 0 when unknown.
    fn since(&self, start: Option<u64>) -> u64 {
        self.ns()
            .zip(start)
            .map_or(0, |(end, start)| end.saturating_sub(start))
    }
}

/// Checks arriving frames against the workload, on the receiving thread.
struct Checker {
    phases: [Phase; 2],
    phase: usize,
    seq: u64,
    total: u64,
    allocs_at_window: u64,
    /// The receiving thread's clock, opened there at the first frame.
    clock: Option<ThreadClock>,
    cpu_at_window: Option<u64>,
    progress: Arc<Progress>,
    failed: bool,
}

impl Checker {
    fn new(phases: [Phase; 2], progress: Arc<Progress>) -> Checker {
        Checker {
            phases,
            phase: 0,
            seq: 0,
            total: 0,
            allocs_at_window: 0,
            clock: None,
            cpu_at_window: None,
            progress,
            failed: false,
        }
    }

    fn finished(&self) -> bool {
        self.phase >= self.phases.len() || self.failed
    }

    /// Checks one frame; reports the end of a phase, or the first error.
    fn on_frame(&mut self, frame: &Frame) -> Option<RxReport> {
        if self.failed {
            return None;
        }
        let Some(p) = self.phases.get(self.phase).copied() else {
            return self.fail(format!(
                "a frame beyond the workload ({} bytes)",
                frame.body.len()
            ));
        };
        let body = &frame.body[..];
        let seq = body
            .get(..8)
            .and_then(|b| Some(u64::from_le_bytes(b.try_into().ok()?)));
        if frame.protocol != ProtocolId::GOSSIP
            || frame.msg_type != MSG_TYPE
            || body.len() != p.size
            || seq != Some(self.seq)
        {
            return self.fail(format!(
                "phase {}: expected frame {} of {} B, got {seq:?} of {} B (lost or reordered)",
                self.phase,
                self.seq,
                p.size,
                body.len()
            ));
        }
        if self.seq % SAMPLE_EVERY == 0 || self.seq + 1 == p.count {
            let mut want = [0u8; 1024];
            fill(&mut want[..p.size], self.seq);
            if body != &want[..p.size] {
                return self.fail(format!(
                    "phase {}: frame {} corrupted",
                    self.phase, self.seq
                ));
            }
        }
        let clock = self.clock.get_or_insert_with(ThreadClock::current);
        if self.seq == p.window_start() {
            self.cpu_at_window = clock.ns();
            self.allocs_at_window = thread_allocations();
        }
        self.seq += 1;
        self.total += 1;
        if self.seq == p.count {
            let allocs = thread_allocations() - self.allocs_at_window;
            let cpu_ns = clock.since(self.cpu_at_window);
            let at = Instant::now();
            (self.phase, self.seq) = (self.phase + 1, 0);
            self.progress.publish(self.total);
            let window = p.count - 1 - p.window_start();
            let done = PhaseDone {
                at,
                allocs,
                cpu_ns,
                window,
            };
            return Some(RxReport::PhaseDone(done));
        }
        // Once per batch's worth (64 KiB of payload): each wake-up lets the sender send one.
        if self.seq % p.batch() == 0 {
            self.progress.publish(self.total);
        }
        None
    }

    fn fail(&mut self, why: String) -> Option<RxReport> {
        self.failed = true;
        self.progress.publish(u64::MAX);
        Some(RxReport::Failed(why))
    }
}

/// One repetition of one path.
#[derive(Clone, Copy, Debug, Default)]
struct RunResult {
    secs: [f64; 2],
    allocs: [u64; 2],
    window: [u64; 2],
    /// CPU time per phase: receiving thread (over the window), sending thread, and (starling
    /// only) the application thread calling the handle.
    rx_cpu_ns: [u64; 2],
    tx_cpu_ns: [u64; 2],
    app_cpu_ns: [u64; 2],
    pool_misses: u64,
}

impl RunResult {
    /// Times each phase from its first send to its last receive.
    fn new(starts: [Instant; 2], done: &[PhaseDone; 2]) -> RunResult {
        let mut r = RunResult::default();
        for i in 0..2 {
            let elapsed = done[i].at.saturating_duration_since(starts[i]);
            r.secs[i] = elapsed.as_secs_f64().max(1e-9);
            r.allocs[i] = done[i].allocs;
            r.rx_cpu_ns[i] = done[i].cpu_ns;
            r.window[i] = done[i].window;
        }
        r
    }
    fn msgs_per_sec(&self, phases: &[Phase; 2], i: usize) -> f64 {
        phases[i].count as f64 / self.secs[i]
    }
    /// CPU time per frame of phase `i`: receiving, sending and application threads.
    fn cpu_per_msg(&self, phases: &[Phase; 2], i: usize) -> [f64; 3] {
        [
            self.rx_cpu_ns[i] as f64 / self.window[i].max(1) as f64,
            self.tx_cpu_ns[i] as f64 / phases[i].count as f64,
            self.app_cpu_ns[i] as f64 / phases[i].count as f64,
        ]
    }
    /// Over one phase's window, or over both.
    fn allocs_per_msg(&self, i: Option<usize>) -> f64 {
        let (a, w) = match i {
            Some(i) => (self.allocs[i], self.window[i]),
            None => (self.allocs.iter().sum(), self.window.iter().sum()),
        };
        a as f64 / w.max(1) as f64
    }
}

/// Waits for the receiver's report of each phase.
fn collect_phases(reports: &Receiver<RxReport>) -> Result<[PhaseDone; 2], String> {
    let next = || loop {
        match reports.recv_timeout(STALL * 4) {
            Ok(RxReport::PhaseDone(d)) => return Ok(d),
            Ok(RxReport::Connected) => {}
            Ok(RxReport::Failed(why)) => return Err(why),
            Err(_) => return Err("the receiver never finished".to_string()),
        }
    };
    Ok([next()?, next()?])
}

fn seed() -> Result<[u8; 32], String> {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(|e| format!("no OS randomness: {e}"))?;
    Ok(s)
}

fn session_config() -> SessionConfig {
    let mut session = SessionConfig::new(NETWORK);
    session.compression = false;
    session.protocols.push(ProtocolId::GOSSIP);
    // The defaults protect a node from one greedy peer; a benchmark is that peer.
    session.rate = RateLimits {
        frames_per_sec: 1 << 40,
        frame_burst: 1 << 40,
        bytes_per_sec: 1 << 50,
        byte_burst: 1 << 50,
    };
    session
}

// ---- starling: two mio reactors, each on its own thread ----------------------------------------

struct RunningNode {
    peer: PeerId,
    addr: SocketAddr,
    handle: Handle,
    /// The reactor thread's CPU clock.
    clock: ThreadClock,
    thread: JoinHandle<std::io::Result<ReactorStats>>,
}

impl RunningNode {
    fn start(
        key_seed: u64,
        bootstrap: Vec<SocketAddr>,
        io_threads: usize,
        on_event: impl FnMut(&NodeEvent) + Send + 'static,
    ) -> Result<RunningNode, String> {
        let identity = Identity::from_test_seed(key_seed);
        let peer = identity.peer_id();
        let addr = "127.0.0.1:0".parse().map_err(|_| "bad address")?;
        let mut config = ReactorConfig::new(addr, NodeKeys::new(identity, seed()?), NETWORK);
        config.bootstrap = bootstrap;
        config.session = session_config();
        config.node.protocols = vec![ProtocolId::GOSSIP];
        config.high_water = HIGH_WATER;
        let (reactor, handle) = AnyReactor::bind(config, io_threads).map_err(|e| e.to_string())?;
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

    fn stop(self) -> Result<ReactorStats, String> {
        let _ = self.handle.shutdown();
        match self.thread.join() {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("reactor thread panicked".into()),
        }
    }
}

fn run_starling(phases: [Phase; 2], io_threads: usize) -> Result<RunResult, String> {
    let progress = Progress::new(thread::current());
    let (report, reports) = mpsc::sync_channel::<RxReport>(8);
    let mut checker = Checker::new(phases, progress.clone());
    // The receiver's callback runs on its reactor thread: that is where allocations are counted.
    let receiver = RunningNode::start(1, vec![], io_threads, move |event| {
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
    let sender = RunningNode::start(2, vec![receiver.addr], io_threads, move |event| {
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
fn stream_to(
    receiver: &RunningNode,
    sender: &RunningNode,
    sender_events: &Receiver<NodeEvent>,
    reports: &Receiver<RxReport>,
    progress: &Progress,
    phases: [Phase; 2],
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
        let window = (WINDOW_BYTES / p.size) as u64;
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
            wait_for(progress, "sender window", |received| {
                base + sent + n <= received.saturating_add(window)
            })?;
            let peer = receiver.peer;
            sender
                .handle
                .send_batch(peer, frames)
                .map_err(|e| e.to_string())?;
            sent += n;
        }
        wait_for(progress, "phase end", |received| received >= base + p.count)?;
        (tx_cpu_ns[i], app_cpu_ns[i]) = (sender.clock.since(tx_start), app.since(app_start));
        base += p.count;
    }
    let mut result = RunResult::new(starts, &collect_phases(reports)?);
    (result.tx_cpu_ns, result.app_cpu_ns) = (tx_cpu_ns, app_cpu_ns);
    Ok(result)
}

// ---- tokio: the same sessions on plain current-thread runtimes, no node -----------------------

/// One side's session parameters, and the clock origin both sides share.
struct TokioSide {
    keys: Arc<NodeKeys>,
    config: Arc<SessionConfig>,
    origin: Instant,
}

impl TokioSide {
    fn new(key_seed: u64, origin: Instant) -> Result<TokioSide, String> {
        Ok(TokioSide {
            keys: Arc::new(NodeKeys::new(Identity::from_test_seed(key_seed), seed()?)),
            config: Arc::new(session_config()),
            origin,
        })
    }
    /// Session time: nanoseconds since the origin.
    fn now(&self) -> SInstant {
        SInstant::from_nanos(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
    /// A session deadline as a tokio instant (an hour away if there is none).
    fn deadline(&self, t: Option<SInstant>) -> tokio::time::Instant {
        let at = t.map_or(Duration::from_secs(3600), |t| {
            Duration::from_nanos(t.as_nanos())
        });
        tokio::time::Instant::from_std(self.origin + at)
    }
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// Writes everything the session has queued.
async fn flush(session: &mut Session, stream: &mut TcpStream) -> Result<(), String> {
    while let Some(bytes) = session.poll_transmit() {
        stream.write_all(&bytes).await.map_err(io_err("write"))?;
    }
    Ok(())
}

/// Runs the handshake to completion (its `Established` event is consumed).
async fn handshake(
    side: &TokioSide,
    session: &mut Session,
    stream: &mut TcpStream,
) -> Result<(), String> {
    stream.set_nodelay(true).map_err(io_err("nodelay"))?;
    let mut buf = [0u8; 4096];
    loop {
        flush(session, stream).await?;
        while let Some(event) = session.poll_event() {
            match event {
                SessionEvent::Established { .. } => return flush(session, stream).await,
                SessionEvent::Closed(cause) => return Err(format!("handshake: {cause}")),
                _ => {}
            }
        }
        let n = stream.read(&mut buf).await.map_err(io_err("read"))?;
        if n == 0 {
            return Err("handshake: connection closed".into());
        }
        session.handle_bytes(side.now(), &buf[..n]);
    }
}

/// Reads into a 64 KiB buffer, feeds the session, counts its frames; answers heartbeats.
async fn tokio_receive(
    side: TokioSide,
    listener: std::net::TcpListener,
    mut checker: Checker,
    report: SyncSender<RxReport>,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::from_std(listener).map_err(io_err("listen"))?;
    let (mut stream, _) = listener.accept().await.map_err(io_err("accept"))?;
    let mut session =
        Session::responder(side.config.clone(), side.keys.clone(), seed()?, side.now());
    handshake(&side, &mut session, &mut stream).await?;
    let _ = report.try_send(RxReport::Connected);
    let mut buf = vec![0u8; 64 << 10];
    let timer = tokio::time::sleep_until(side.deadline(session.poll_timeout()));
    tokio::pin!(timer);
    loop {
        while let Some(event) = session.poll_event() {
            match event {
                SessionEvent::Frame(frame) => {
                    if let Some(r) = checker.on_frame(&frame) {
                        let _ = report.try_send(r);
                    }
                }
                SessionEvent::Closed(cause) => return Err(format!("receiving session: {cause}")),
                _ => {}
            }
        }
        flush(&mut session, &mut stream).await?;
        if checker.finished() {
            return Ok(());
        }
        let next = side.deadline(session.poll_timeout());
        if timer.deadline() != next {
            timer.as_mut().reset(next);
        }
        tokio::select! {
            read = stream.read(&mut buf) => match read.map_err(io_err("read"))? {
                0 => return Err("the sender closed the connection early".into()),
                n => session.handle_bytes(side.now(), &buf[..n]),
            },
            () = &mut timer => session.handle_timeout(side.now()),
        }
    }
}

/// Waits (between phases only, so polling is fine) until the receiver has `target` frames.
async fn received(progress: &Progress, target: u64) -> Result<(), String> {
    let mut watch = StallWatch::new();
    while progress.get() < target {
        watch.check(progress.get(), "tokio sender")?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// For each batch: `send` every frame, then write what the session produced. Between batches,
/// takes in the receiver's heartbeats without waiting, and runs its own keep-alive.
async fn tokio_send(
    side: TokioSide,
    addr: SocketAddr,
    phases: [Phase; 2],
    progress: Arc<Progress>,
) -> Result<([Instant; 2], [u64; 2]), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(io_err("connect"))?;
    let mut session = Session::initiator(
        side.config.clone(),
        side.keys.clone(),
        None,
        seed()?,
        side.now(),
    );
    handshake(&side, &mut session, &mut stream).await?;
    let mut starts = [Instant::now(); 2];
    let mut cpu_ns = [0; 2];
    let clock = ThreadClock::current();
    let mut incoming = [0u8; 4096];
    let mut base = 0;
    for (i, p) in phases.iter().enumerate() {
        let batches = make_phase(*p);
        // One phase after the other, as on the starling path.
        received(&progress, base).await?;
        let cpu_start = clock.ns();
        starts[i] = Instant::now();
        for frames in batches {
            for frame in &frames {
                session.send(frame).map_err(|e| format!("send: {e}"))?;
            }
            flush(&mut session, &mut stream).await?;
            drop(frames);
            loop {
                match stream.try_read(&mut incoming) {
                    Ok(0) => return Err("the receiver closed the connection".into()),
                    Ok(n) => session.handle_bytes(side.now(), &incoming[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
            let now = side.now();
            if session.poll_timeout().is_some_and(|t| t <= now) {
                session.handle_timeout(now);
            }
            while let Some(event) = session.poll_event() {
                if let SessionEvent::Closed(cause) = event {
                    return Err(format!("sending session: {cause}"));
                }
            }
        }
        base += p.count;
        // Until the receiver has it all (polling every millisecond costs next to nothing).
        received(&progress, base).await?;
        cpu_ns[i] = clock.since(cpu_start);
    }
    session.close(CloseCode::Normal);
    let _ = flush(&mut session, &mut stream).await;
    Ok((starts, cpu_ns))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())
}

fn run_tokio(phases: [Phase; 2]) -> Result<RunResult, String> {
    let origin = Instant::now();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io_err("bind"))?;
    listener.set_nonblocking(true).map_err(io_err("bind"))?;
    let addr = listener.local_addr().map_err(io_err("bind"))?;
    let progress = Progress::new(thread::current());
    let (report, reports) = mpsc::sync_channel::<RxReport>(8);
    let checker = Checker::new(phases, progress.clone());
    let (rx_side, tx_side) = (TokioSide::new(11, origin)?, TokioSide::new(12, origin)?);
    let (rx_failed, tx_failed) = (report.clone(), report.clone());
    let receiver = thread::Builder::new()
        .name("tokio-rx".into())
        .spawn(move || {
            let receive = tokio_receive(rx_side, listener, checker, report);
            if let Err(e) = runtime().and_then(|rt| rt.block_on(receive)) {
                let _ = rx_failed.try_send(RxReport::Failed(format!("tokio receiver: {e}")));
            }
        })
        .map_err(|e| e.to_string())?;
    let tx_progress = progress.clone();
    let sender = thread::Builder::new()
        .name("tokio-tx".into())
        .spawn(move || {
            let send = tokio_send(tx_side, addr, phases, tx_progress);
            let outcome = runtime().and_then(|rt| rt.block_on(send));
            if let Err(e) = &outcome {
                let _ = tx_failed.try_send(RxReport::Failed(format!("tokio sender: {e}")));
            }
            outcome
        })
        .map_err(|e| e.to_string())?;
    let done = collect_phases(&reports);
    if done.is_err() {
        progress.publish(u64::MAX); // release a sender waiting for the receiver
    }
    let sent = sender
        .join()
        .map_err(|_| "tokio sender panicked".to_string())?;
    let _ = receiver.join();
    let (starts, tx_cpu_ns) = sent?;
    let mut result = RunResult::new(starts, &done?);
    result.tx_cpu_ns = tx_cpu_ns;
    Ok(result)
}

// ---- the run and its report --------------------------------------------------------------------

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn mib(msgs_per_sec: f64, size: usize) -> f64 {
    msgs_per_sec * size as f64 / f64::from(1u32 << 20)
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

fn transport(args: TransportArgs) -> Result<(), String> {
    if args.messages < 1000 {
        return Err("--messages must be at least 1000".into());
    }
    if args.reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    let phases = phases(args.messages);
    let (mut starling, mut tokio) = (Vec::new(), Vec::new());
    for rep in 1..=args.reps {
        let s = match args.only {
            Some(Path::Tokio) => RunResult::default(),
            _ => run_starling(phases, args.io_threads)
                .map_err(|e| format!("starling path, rep {rep}: {e}"))?,
        };
        let t = match args.only {
            Some(Path::Starling) => RunResult::default(),
            _ => run_tokio(phases).map_err(|e| format!("tokio path, rep {rep}: {e}"))?,
        };
        if !args.json {
            println!(
                "rep {rep}: starling {:>9.0} msg/s (64 B) {:>8.0} msg/s (1 KiB) | \
                 tokio {:>9.0} msg/s (64 B) {:>8.0} msg/s (1 KiB)",
                s.msgs_per_sec(&phases, 0),
                s.msgs_per_sec(&phases, 1),
                t.msgs_per_sec(&phases, 0),
                t.msgs_per_sec(&phases, 1),
            );
        }
        starling.push(s);
        tokio.push(t);
    }
    let rate =
        |runs: &[RunResult], i| median(runs.iter().map(|r| r.msgs_per_sec(&phases, i)).collect());
    let allocs = |runs: &[RunResult], i| median(runs.iter().map(|r| r.allocs_per_msg(i)).collect());
    let (s64, s1k) = (rate(&starling, 0), rate(&starling, 1));
    let (t64, t1k) = (rate(&tokio, 0), rate(&tokio, 1));
    let pool_misses = starling.iter().map(|r| r.pool_misses).max().unwrap_or(0);
    let (a_all, a64, a1k) = (
        allocs(&starling, None),
        allocs(&starling, Some(0)),
        allocs(&starling, Some(1)),
    );
    let a_tokio = allocs(&tokio, None);
    // CPU ns per message, [phase][receiving, sending, application thread].
    let cpu = |runs: &[RunResult]| {
        [0, 1].map(|i| {
            [0, 1, 2].map(|t| median(runs.iter().map(|r| r.cpu_per_msg(&phases, i)[t]).collect()))
        })
    };
    let (cpu_s, cpu_t) = (cpu(&starling), cpu(&tokio));
    if args.json {
        let report = serde_json::json!({
            "bench": "transport",
            "messages": args.messages,
            "messages_1k": phases[1].count,
            "reps": args.reps,
            "io_threads": args.io_threads,
            "msgs_per_sec_64": round(s64, 0),
            "mib_per_sec_64": round(mib(s64, 64), 1),
            "msgs_per_sec_1k": round(s1k, 0),
            "mib_per_sec_1k": round(mib(s1k, 1024), 1),
            "tokio_msgs_per_sec_64": round(t64, 0),
            "tokio_mib_per_sec_64": round(mib(t64, 64), 1),
            "tokio_msgs_per_sec_1k": round(t1k, 0),
            "tokio_mib_per_sec_1k": round(mib(t1k, 1024), 1),
            "ratio_vs_tokio_64": round(s64 / t64, 3),
            "ratio_vs_tokio_1k": round(s1k / t1k, 3),
            "allocs_per_msg": round(a_all, 5),
            "allocs_per_msg_64": round(a64, 5),
            "allocs_per_msg_1k": round(a1k, 5),
            "tokio_allocs_per_msg": round(a_tokio, 5),
            "pool_misses": pool_misses,
            "cpu_ns_per_msg_64": {
                "receiver": round(cpu_s[0][0], 1),
                "sender_reactor": round(cpu_s[0][1], 1),
                "sender_app": round(cpu_s[0][2], 1),
            },
            "cpu_ns_per_msg_1k": {
                "receiver": round(cpu_s[1][0], 1),
                "sender_reactor": round(cpu_s[1][1], 1),
                "sender_app": round(cpu_s[1][2], 1),
            },
            "tokio_cpu_ns_per_msg_64": {
                "receiver": round(cpu_t[0][0], 1),
                "sender": round(cpu_t[0][1], 1),
            },
            "tokio_cpu_ns_per_msg_1k": {
                "receiver": round(cpu_t[1][0], 1),
                "sender": round(cpu_t[1][1], 1),
            },
            "batch_frames_64": phases[0].batch(),
            "batch_frames_1k": phases[1].batch(),
            "window_bytes": WINDOW_BYTES,
            "compression": false,
            "baseline": "tokio current-thread runtimes driving the same Session; no Node",
        });
        println!("{report}");
        return Ok(());
    }
    println!(
        "\ntransport: {} x 64 B then {} x 1 KiB, one way over 127.0.0.1, encrypted \
         (Noise, ChaCha20-Poly1305), uncompressed; medians of {} reps",
        args.messages, phases[1].count, args.reps
    );
    for (name, r64, r1k) in [
        ("starling (mio reactor, session + node)", s64, s1k),
        ("tokio baseline (session only, no node)", t64, t1k),
    ] {
        println!(
            "  {name}: {r64:>9.0} msg/s {:>6.1} MiB/s (64 B) | {r1k:>8.0} msg/s {:>6.1} MiB/s (1 KiB)",
            mib(r64, 64),
            mib(r1k, 1024)
        );
    }
    println!(
        "  starling / tokio: {:.3} (64 B), {:.3} (1 KiB)",
        s64 / t64,
        s1k / t1k
    );
    println!(
        "  receiver allocations per message (last 90% of each phase): starling {a_all:.5} \
         (64 B {a64:.5}, 1 KiB {a1k:.5}), tokio {a_tokio:.5}; receive-pool misses: {pool_misses}"
    );
    println!(
        "  CPU per message (ns)       64 B: receiver sender [app] | 1 KiB: receiver sender [app]"
    );
    let [s64c, s1kc] = cpu_s;
    let [t64c, t1kc] = cpu_t;
    println!(
        "    starling (reactors, app)       {:>8.0} {:>6.0} {:>5.0} |        {:>8.0} {:>6.0} {:>5.0}",
        s64c[0], s64c[1], s64c[2], s1kc[0], s1kc[1], s1kc[2]
    );
    println!(
        "    tokio                          {:>8.0} {:>6.0}       |        {:>8.0} {:>6.0}",
        t64c[0], t64c[1], t1kc[0], t1kc[1]
    );
    Ok(())
}
