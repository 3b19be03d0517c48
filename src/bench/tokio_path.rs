//! The baseline: the same sessions on plain current-thread tokio runtimes, no node.

use super::*;

/// One side's session parameters, and the clock origin both sides share.
pub(super) struct TokioSide {
    pub(super) keys: Arc<NodeKeys>,
    pub(super) config: Arc<SessionConfig>,
    pub(super) origin: Instant,
}

impl TokioSide {
    pub(super) fn new(key_seed: u64, origin: Instant) -> Result<TokioSide, String> {
        Ok(TokioSide {
            keys: Arc::new(NodeKeys::new(Identity::from_test_seed(key_seed), seed()?)),
            config: Arc::new(session_config()),
            origin,
        })
    }
    /// Session time: nanoseconds since the origin.
    pub(super) fn now(&self) -> SInstant {
        SInstant::from_nanos(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
    /// A session deadline as a tokio instant (an hour away if there is none).
    pub(super) fn deadline(&self, t: Option<SInstant>) -> tokio::time::Instant {
        let at = t.map_or(Duration::from_secs(3600), |t| {
            Duration::from_nanos(t.as_nanos())
        });
        tokio::time::Instant::from_std(self.origin + at)
    }
}

pub(super) fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> String {
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

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())
}

pub(super) fn run_tokio(phases: [Phase; 2]) -> Result<RunResult, String> {
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
