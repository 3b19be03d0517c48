//! The QUIC baseline: the same frames over one raw quinn stream, written and read directly by
//! two tasks on current-thread runtimes, with the adapter's TLS and transport parameters and
//! the same in-flight window. No node, no hello, no per-protocol routing.

use bytes::{Bytes, BytesMut};
use quinn::Endpoint;
use starling_core::session::NodeKeys;
use starling_core::wire::FrameDecoder;
use starling_quic::tls::SERVER_NAME;
use starling_quic::{client_crypto, server_crypto, transport_config, NodeCertificate, QuicConfig};

use super::*;

/// The server side: accepts one connection and one stream, checks every frame.
async fn raw_receive(
    endpoint: Endpoint,
    mut checker: Checker,
    report: SyncSender<RxReport>,
) -> Result<(), String> {
    let incoming = endpoint.accept().await.ok_or("endpoint closed")?;
    let connection = incoming.await.map_err(|e| format!("accept: {e}"))?;
    let (_send, mut recv) = connection
        .accept_bi()
        .await
        .map_err(|e| format!("accept stream: {e}"))?;
    let _ = report.try_send(RxReport::Connected);
    let mut decoder = FrameDecoder::new(session_config().limits);
    let mut buf = BytesMut::new();
    // As the adapter reads: all that quinn holds at once, about a packet per chunk.
    let mut chunks: [Bytes; 64] = std::array::from_fn(|_| Bytes::new());
    while !checker.finished() {
        let n = recv
            .read_chunks(&mut chunks)
            .await
            .map_err(|e| format!("read: {e}"))?
            .ok_or("the sender finished early")?;
        for chunk in &mut chunks[..n] {
            buf.extend_from_slice(chunk);
            *chunk = Bytes::new();
        }
        while let Some(frame) = decoder.decode(&mut buf).map_err(|e| e.to_string())? {
            if let Some(r) = checker.on_frame(&frame) {
                let _ = report.try_send(r);
            }
        }
    }
    // Let the sender close: its close is the last word.
    let _ = tokio::time::timeout(Duration::from_secs(2), connection.closed()).await;
    Ok(())
}

/// Waits until the receiver has `target` frames, woken by its report of that count.
async fn until(progress: &Progress, what: &str, target: u64) -> Result<(), String> {
    let mut watch = StallWatch::new();
    loop {
        let received = progress.expect(target);
        if received >= target {
            return Ok(());
        }
        watch.check(received, what)?;
        let _ = tokio::time::timeout(Duration::from_millis(5), progress.task.notified()).await;
    }
}

/// The client side: streams each phase in batches, one encoded buffer per batch, keeping at
/// most `window_bytes` of payload in flight.
async fn raw_send(
    endpoint: Endpoint,
    client: quinn::ClientConfig,
    addr: SocketAddr,
    phases: [Phase; 2],
    progress: Arc<Progress>,
    window_bytes: usize,
) -> Result<([Instant; 2], [u64; 2]), String> {
    let connection = endpoint
        .connect_with(client, addr, SERVER_NAME)
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut send, _recv) = connection
        .open_bi()
        .await
        .map_err(|e| format!("open stream: {e}"))?;
    let mut starts = [Instant::now(); 2];
    let mut cpu_ns = [0; 2];
    let clock = ThreadClock::current();
    let mut base = 0;
    for (i, p) in phases.iter().enumerate() {
        let window = (window_bytes / p.size).max(1) as u64;
        let batches = make_phase(*p);
        until(&progress, "raw quinn sender", base).await?;
        let cpu_start = clock.ns();
        starts[i] = Instant::now();
        let mut sent = 0u64;
        for frames in batches {
            let n = frames.len() as u64;
            // The same refill rule as the adapter's sender.
            if progress.get() < window_target(base + sent + n, window) {
                let target = window_target(base + sent + n, window / 2);
                until(&progress, "raw quinn window", target).await?;
            }
            let mut buf = BytesMut::with_capacity(frames.iter().map(Frame::encoded_len).sum());
            for frame in &frames {
                frame.encode(&mut buf);
            }
            send.write_chunk(buf.freeze())
                .await
                .map_err(|e| format!("write: {e}"))?;
            sent += n;
        }
        base += p.count;
        until(&progress, "raw quinn phase end", base).await?;
        cpu_ns[i] = clock.since(cpu_start);
    }
    let _ = send.finish();
    connection.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    Ok((starts, cpu_ns))
}

/// Two endpoints with the adapter's certificates, crypto and transport parameters.
fn endpoints(rt: &tokio::runtime::Runtime) -> Result<(Endpoint, quinn::ClientConfig), String> {
    let defaults = QuicConfig::new(
        "127.0.0.1:0".parse().map_err(|_| "bad address")?,
        NodeKeys::from_test_seed(21),
        NETWORK,
    );
    let transport = transport_config(defaults.idle_timeout, defaults.keep_alive);
    let server_cert = NodeCertificate::new(defaults.keys.identity()).map_err(|e| e.to_string())?;
    let client_cert =
        NodeCertificate::new(&Identity::from_test_seed(22)).map_err(|e| e.to_string())?;
    let crypto = server_crypto(&server_cert).map_err(|e| e.to_string())?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(transport.clone());
    let crypto = client_crypto(&client_cert, None).map_err(|e| e.to_string())?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(transport);
    let _context = rt.enter();
    let endpoint = Endpoint::server(server, defaults.listen).map_err(|e| e.to_string())?;
    Ok((endpoint, client))
}

pub(super) fn run_raw_quinn(phases: [Phase; 2], window_bytes: usize) -> Result<RunResult, String> {
    let progress = Progress::new(thread::current());
    let (report, reports) = mpsc::sync_channel::<RxReport>(8);
    let checker = Checker::new(phases, progress.clone());
    let rx_rt = runtime()?;
    let (server, client) = endpoints(&rx_rt)?;
    let addr = server.local_addr().map_err(|e| e.to_string())?;
    let (rx_failed, tx_failed) = (report.clone(), report.clone());
    let receiver = thread::Builder::new()
        .name("quinn-rx".into())
        .spawn(move || {
            if let Err(e) = rx_rt.block_on(raw_receive(server, checker, report)) {
                let _ = rx_failed.try_send(RxReport::Failed(format!("quinn receiver: {e}")));
            }
        })
        .map_err(|e| e.to_string())?;
    let tx_progress = progress.clone();
    let sender = thread::Builder::new()
        .name("quinn-tx".into())
        .spawn(move || {
            let rt = runtime()?;
            let endpoint = {
                let _context = rt.enter();
                Endpoint::client("127.0.0.1:0".parse().map_err(|_| "bad address")?)
                    .map_err(|e| e.to_string())?
            };
            let send = raw_send(endpoint, client, addr, phases, tx_progress, window_bytes);
            let outcome = rt.block_on(send);
            if let Err(e) = &outcome {
                let _ = tx_failed.try_send(RxReport::Failed(format!("quinn sender: {e}")));
            }
            outcome
        })
        .map_err(|e| e.to_string())?;
    let done = collect_phases(&reports);
    if done.is_err() {
        progress.publish(u64::MAX);
    }
    let sent = sender
        .join()
        .map_err(|_| "quinn sender panicked".to_string())?;
    let _ = receiver.join();
    let (starts, tx_cpu_ns) = sent?;
    let mut result = RunResult::new(starts, &done?);
    result.tx_cpu_ns = tx_cpu_ns;
    Ok(result)
}
