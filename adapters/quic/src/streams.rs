//! Per-connection tasks: a writer per protocol stream, a reader per stream, the datagram
//! reader, the stream acceptor and the close watcher. They talk to the node task through
//! [`Inbound`] messages; the node task alone owns the `Node`.
//!
//! A protocol's stream is opened by whichever side sends on it first, and carries Starling
//! frames back to back (`core::wire::frame`), all of that protocol. The side that accepts it
//! sends its own frames of that protocol on the same stream, unless it had already opened one
//! of its own (both sides opened at once): each side then keeps sending on the stream it
//! started with, so each direction stays one ordered stream.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use quinn::{Connection, RecvStream, SendStream};
use starling_core::node::ConnId;
use starling_core::session::CloseCause;
use starling_core::wire::{DecodeError, Frame, FrameDecoder, Limits, ProtocolId};
use tokio::sync::mpsc;

use crate::hello::lost;

/// Most chunks (about a packet each) taken from a stream at once.
const READ_CHUNKS: usize = 64;
/// Most turns' chunks a writer hands quinn in one call.
const WRITE_BATCH: usize = 64;

/// What connection tasks tell the node task.
pub(crate) enum Inbound {
    /// The TLS handshake and the hello succeeded.
    Established {
        conn: ConnId,
        connection: Connection,
        peer: starling_core::id::PeerId,
        listen_port: Option<u16>,
        max_frame_len: u32,
    },
    /// The TLS handshake or the hello failed; `reason` is for the logs.
    HandshakeFailed {
        conn: ConnId,
        cause: CloseCause,
        reason: String,
    },
    /// Frames read from a stream or a datagram, in order.
    Frames { conn: ConnId, frames: Vec<Frame> },
    /// The peer opened a stream for `protocol`; its send half, for our frames of that protocol.
    PeerStream {
        conn: ConnId,
        protocol: ProtocolId,
        send: SendStream,
    },
    /// The peer broke the frame format: the connection must be closed.
    Violation { conn: ConnId, cause: CloseCause },
    /// The connection ended.
    Closed { conn: ConnId, cause: CloseCause },
    /// The connection's queued bytes fell below the low-water mark after a pause.
    Resumed { conn: ConnId },
}

/// Bytes queued for one connection's writers, and whether sends to it are paused.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) bytes: AtomicUsize,
    pub(crate) paused: AtomicBool,
}

/// What a writer needs besides its stream and its queue.
#[derive(Clone)]
pub(crate) struct WriterContext {
    pub(crate) connection: Connection,
    pub(crate) queue: Arc<Queue>,
    pub(crate) low_water: usize,
    pub(crate) reader: ReaderContext,
}

/// Writes what the node task queues for `protocol` on one connection. `send` is `None` when
/// this side opens the stream: it is opened here, and its receive half read by a new reader.
pub(crate) async fn write_stream(
    protocol: ProtocolId,
    send: Option<SendStream>,
    mut queued: mpsc::UnboundedReceiver<Vec<Bytes>>,
    cx: WriterContext,
) {
    let WriterContext {
        connection,
        queue,
        low_water,
        reader,
    } = cx;
    let conn = reader.conn;
    let mut send = match send {
        Some(send) => send,
        None => match connection.open_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(read_stream(recv, Some(protocol), None, reader.clone()));
                send
            }
            // The close watcher reports the connection's end.
            Err(_) => return,
        },
    };
    let mut turns = Vec::with_capacity(WRITE_BATCH);
    let mut chunks = Vec::new();
    while queued.recv_many(&mut turns, WRITE_BATCH).await > 0 {
        chunks.extend(turns.drain(..).flatten());
        let len: usize = chunks.iter().map(Bytes::len).sum();
        if send.write_all_chunks(&mut chunks).await.is_err() {
            return;
        }
        chunks.clear();
        let left = queue.bytes.fetch_sub(len, Ordering::AcqRel) - len;
        if left < low_water && queue.paused.swap(false, Ordering::AcqRel) {
            let _ = reader.inbound.send(Inbound::Resumed { conn }).await;
        }
    }
    // The node closed the connection: everything queued is written; wait (boundedly, see
    // `close_when_flushed`) until the peer has it all, so the close does not discard it.
    if send.finish().is_ok() {
        let _ = send.stopped().await;
    }
}

/// Closes `connection` once its writers are done, or after `linger`: QUIC discards unsent
/// and unacknowledged stream data on close, so closing at once would lose the frames the node
/// sent just before deciding to close (a duplicate connection's last messages, say).
pub(crate) async fn close_when_flushed(
    connection: Connection,
    writers: Vec<tokio::task::JoinHandle<()>>,
    linger: std::time::Duration,
    code: starling_core::session::CloseCode,
    reason: &'static str,
) {
    let flushed = async {
        for writer in writers {
            let _ = writer.await;
        }
    };
    let _ = tokio::time::timeout(linger, flushed).await;
    crate::hello::close(&connection, code, reason);
}

/// What a reader needs: where to report, and the limits it enforces.
#[derive(Clone)]
pub(crate) struct ReaderContext {
    pub(crate) conn: ConnId,
    pub(crate) inbound: mpsc::Sender<Inbound>,
    pub(crate) limits: Limits,
}

impl ReaderContext {
    /// Hands frames to the node task; false once it has stopped.
    async fn deliver(&self, frames: Vec<Frame>) -> bool {
        let conn = self.conn;
        frames.is_empty()
            || self
                .inbound
                .send(Inbound::Frames { conn, frames })
                .await
                .is_ok()
    }
}

/// Reads one stream's frames until it ends. `protocol` is known when this side opened the
/// stream; otherwise the first frame names it, and `send` (the stream's other half) is handed
/// to the node task for this side's frames of that protocol.
pub(crate) async fn read_stream(
    mut recv: RecvStream,
    mut protocol: Option<ProtocolId>,
    mut send: Option<SendStream>,
    cx: ReaderContext,
) {
    let mut decoder = FrameDecoder::new(cx.limits);
    let mut buf = BytesMut::new();
    let mut chunks: [Bytes; READ_CHUNKS] = std::array::from_fn(|_| Bytes::new());
    loop {
        // Everything quinn holds for the stream at once: its chunks are about one packet each,
        // and one report per packet would cost a channel hop per small frame.
        let n = match recv.read_chunks(&mut chunks).await {
            Ok(Some(n)) => n,
            // The peer finished or reset the stream, or the connection ended (the close
            // watcher reports that).
            Ok(None) | Err(_) => return,
        };
        for chunk in &mut chunks[..n] {
            buf.extend_from_slice(chunk);
            *chunk = Bytes::new();
        }
        let mut frames = Vec::with_capacity(64);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let stream_protocol = *protocol.get_or_insert(frame.protocol);
                    if frame.protocol != stream_protocol {
                        let cause = CloseCause::Malformed(DecodeError::InvalidValue {
                            field: "protocol (differs from the stream's)",
                        });
                        return violation(&cx, cause).await;
                    }
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(e) => return violation(&cx, frame_error(e)).await,
            }
        }
        if let Some(protocol) = protocol {
            if let Some(send) = send.take() {
                let conn = cx.conn;
                let stream = Inbound::PeerStream {
                    conn,
                    protocol,
                    send,
                };
                if cx.inbound.send(stream).await.is_err() {
                    return;
                }
            }
        }
        if !cx.deliver(frames).await {
            return;
        }
    }
}

/// Reads datagrams (each one or more whole frames) until the connection ends.
pub(crate) async fn read_datagrams(connection: Connection, cx: ReaderContext) {
    while let Ok(mut datagram) = connection.read_datagram().await {
        let mut frames = Vec::new();
        while !datagram.is_empty() {
            match Frame::decode(&mut datagram, &cx.limits) {
                Ok(frame) => frames.push(frame),
                Err(e) => return violation(&cx, frame_error(e)).await,
            }
        }
        if !cx.deliver(frames).await {
            return;
        }
    }
}

/// Accepts the streams the peer opens, each read by its own reader. The peer can hold at most
/// `MAX_STREAMS` open at once (a transport parameter).
pub(crate) async fn accept_streams(connection: Connection, cx: ReaderContext) {
    while let Ok((send, recv)) = connection.accept_bi().await {
        tokio::spawn(read_stream(recv, None, Some(send), cx.clone()));
    }
}

/// Reports the connection's end, whoever ended it.
pub(crate) async fn watch_close(connection: Connection, cx: ReaderContext) {
    let cause = lost(connection.closed().await);
    let conn = cx.conn;
    let _ = cx.inbound.send(Inbound::Closed { conn, cause }).await;
}

async fn violation(cx: &ReaderContext, cause: CloseCause) {
    let conn = cx.conn;
    let _ = cx.inbound.send(Inbound::Violation { conn, cause }).await;
}

/// A frame decoding error as a close cause: an oversize frame is named as such.
fn frame_error(e: DecodeError) -> CloseCause {
    match e {
        DecodeError::FrameTooLarge { len, max } => CloseCause::OversizeFrame {
            len: usize::try_from(len).unwrap_or(usize::MAX),
            max,
        },
        e => CloseCause::Malformed(e),
    }
}
