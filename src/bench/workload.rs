//! The workload shared by both paths: frames, arrival checks, progress, CPU clocks, results.

use super::*;

pub(super) fn phases(messages: u64) -> [Phase; 2] {
    let phase = |size, count| Phase { size, count };
    [phase(64, messages), phase(1024, messages / 4)]
}

/// The body of frame `seq`: its sequence number (little-endian u64), then a pattern.
pub(super) fn fill(body: &mut [u8], seq: u64) {
    body[..8].copy_from_slice(&seq.to_le_bytes());
    for (j, b) in body[8..].iter_mut().enumerate() {
        *b = (seq as u8) ^ (j as u8).wrapping_mul(31);
    }
}

/// A phase's frames in batches; each batch's bodies are slices of one buffer.
pub(super) fn make_phase(p: Phase) -> Vec<Vec<Frame>> {
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

/// Frames received so far (all phases), published by the receiving thread. A waiter (a thread
/// or a task) names the count it waits for in `wake_at`, and the receiver wakes it only once
/// that count is reached: one wake-up per wait, not per report. A failed check publishes
/// `u64::MAX` so that no one waits for it.
pub(super) struct Progress {
    pub(super) received: AtomicU64,
    pub(super) wake_at: AtomicU64,
    pub(super) waiter: Thread,
    pub(super) task: tokio::sync::Notify,
}

impl Progress {
    pub(super) fn new(waiter: Thread) -> Arc<Progress> {
        Arc::new(Progress {
            received: AtomicU64::new(0),
            wake_at: AtomicU64::new(0),
            waiter,
            task: tokio::sync::Notify::new(),
        })
    }
    pub(super) fn publish(&self, total: u64) {
        // SeqCst here and in `expect`: either the waiter sees this count, or this sees its target.
        self.received.store(total, Ordering::SeqCst);
        if total >= self.wake_at.load(Ordering::SeqCst) {
            self.waiter.unpark();
            self.task.notify_one();
        }
    }
    pub(super) fn get(&self) -> u64 {
        self.received.load(Ordering::Acquire)
    }
    /// Announces that the waiter waits for `target` frames; returns the count now.
    pub(super) fn expect(&self, target: u64) -> u64 {
        self.wake_at.store(target, Ordering::SeqCst);
        self.received.load(Ordering::SeqCst)
    }
}

/// Notices when the receiver stops making progress.
pub(super) struct StallWatch {
    pub(super) last: u64,
    pub(super) since: Instant,
}

impl StallWatch {
    pub(super) fn new() -> StallWatch {
        StallWatch {
            last: u64::MAX,
            since: Instant::now(),
        }
    }
    pub(super) fn check(&mut self, received: u64, what: &str) -> Result<(), String> {
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

/// Parks the calling thread (the progress's waiter) until `target` frames are received.
pub(super) fn wait_for(progress: &Progress, what: &str, target: u64) -> Result<(), String> {
    let mut watch = StallWatch::new();
    loop {
        let received = progress.expect(target);
        if received >= target {
            return Ok(());
        }
        watch.check(received, what)?;
        thread::park_timeout(Duration::from_millis(5));
    }
}

/// The frames that must have arrived before `sent` frames (the next batch included) may be in
/// flight with at most `window` unreceived.
pub(super) fn window_target(sent: u64, window: u64) -> u64 {
    sent.saturating_sub(window)
}

/// What a receiver tells the bench thread.
pub(super) enum RxReport {
    Connected,
    PhaseDone(PhaseDone),
    Failed(String),
}

pub(super) struct PhaseDone {
    /// When the phase's last frame arrived.
    pub(super) at: Instant,
    /// Allocations and CPU time (ns, 0 if unknown) of the receiving thread over the window, and
    /// the frames processed in it.
    pub(super) allocs: u64,
    pub(super) cpu_ns: u64,
    pub(super) window: u64,
}

/// One thread's CPU clock: Linux's `/proc/thread-self/schedstat`, opened on that thread and
/// readable from any. Reading does not allocate. Without procfs every reading is `None`.
pub(super) struct ThreadClock(pub(super) Option<std::fs::File>);

impl ThreadClock {
    /// The calling thread's clock.
    pub(super) fn current() -> ThreadClock {
        ThreadClock(std::fs::File::open("/proc/thread-self/schedstat").ok())
    }
    /// Nanoseconds the thread has run on a CPU.
    pub(super) fn ns(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 96];
        let n = self.0.as_ref()?.read_at(&mut buf, 0).ok()?;
        let text = std::str::from_utf8(&buf[..n]).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }
    /// CPU time since `start` (a reading of this clock); 0 when unknown.
    pub(super) fn since(&self, start: Option<u64>) -> u64 {
        self.ns()
            .zip(start)
            .map_or(0, |(end, start)| end.saturating_sub(start))
    }
}

/// Checks arriving frames against the workload, on the receiving thread.
pub(super) struct Checker {
    pub(super) phases: [Phase; 2],
    pub(super) phase: usize,
    pub(super) seq: u64,
    pub(super) total: u64,
    pub(super) allocs_at_window: u64,
    /// The receiving thread's clock, opened there at the first frame.
    pub(super) clock: Option<ThreadClock>,
    pub(super) cpu_at_window: Option<u64>,
    pub(super) progress: Arc<Progress>,
    pub(super) failed: bool,
}

impl Checker {
    pub(super) fn new(phases: [Phase; 2], progress: Arc<Progress>) -> Checker {
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

    pub(super) fn finished(&self) -> bool {
        self.phase >= self.phases.len() || self.failed
    }

    /// Checks one frame; reports the end of a phase, or the first error.
    pub(super) fn on_frame(&mut self, frame: &Frame) -> Option<RxReport> {
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
            let mut small = [0u8; 1024];
            let mut large = Vec::new();
            let want = match small.get_mut(..p.size) {
                Some(want) => want,
                None => {
                    large.resize(p.size, 0);
                    &mut large[..]
                }
            };
            fill(want, self.seq);
            if body != want {
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

    pub(super) fn fail(&mut self, why: String) -> Option<RxReport> {
        self.failed = true;
        self.progress.publish(u64::MAX);
        Some(RxReport::Failed(why))
    }
}

/// One repetition of one path.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RunResult {
    pub(super) secs: [f64; 2],
    pub(super) allocs: [u64; 2],
    pub(super) window: [u64; 2],
    /// CPU time per phase: receiving thread (over the window), sending thread, and (starling
    /// only) the application thread calling the handle.
    pub(super) rx_cpu_ns: [u64; 2],
    pub(super) tx_cpu_ns: [u64; 2],
    pub(super) app_cpu_ns: [u64; 2],
    pub(super) pool_misses: u64,
}

impl RunResult {
    /// Times each phase from its first send to its last receive.
    pub(super) fn new(starts: [Instant; 2], done: &[PhaseDone; 2]) -> RunResult {
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
    pub(super) fn msgs_per_sec(&self, phases: &[Phase; 2], i: usize) -> f64 {
        phases[i].count as f64 / self.secs[i]
    }
    /// CPU time per frame of phase `i`: receiving, sending and application threads.
    pub(super) fn cpu_per_msg(&self, phases: &[Phase; 2], i: usize) -> [f64; 3] {
        [
            self.rx_cpu_ns[i] as f64 / self.window[i].max(1) as f64,
            self.tx_cpu_ns[i] as f64 / phases[i].count as f64,
            self.app_cpu_ns[i] as f64 / phases[i].count as f64,
        ]
    }
    /// Over one phase's window, or over both.
    pub(super) fn allocs_per_msg(&self, i: Option<usize>) -> f64 {
        let (a, w) = match i {
            Some(i) => (self.allocs[i], self.window[i]),
            None => (self.allocs.iter().sum(), self.window.iter().sum()),
        };
        a as f64 / w.max(1) as f64
    }
}

/// Waits for the receiver's report of each phase.
pub(super) fn collect_phases(reports: &Receiver<RxReport>) -> Result<[PhaseDone; 2], String> {
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

pub(super) fn seed() -> Result<[u8; 32], String> {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(|e| format!("no OS randomness: {e}"))?;
    Ok(s)
}

pub(super) fn session_config() -> SessionConfig {
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
