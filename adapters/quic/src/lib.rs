//! # starling-quic
//!
//! Runs a Starling [`Node`] over QUIC ([RFC 9000](https://www.rfc-editor.org/rfc/rfc9000)) on
//! [quinn]: one UDP port, TLS 1.3, a stream per protocol so that protocols never block each
//! other, and connection migration for free. The node is the same sans-IO machine the mio
//! adapter drives, built the same way ([`starling_runtime::build_node`]), and applications talk
//! to it through the same [`Handle`] (both adapters take it from `starling-runtime`; neither
//! depends on the other).
//!
//! ## Identity
//! Each node presents a self-signed certificate whose key *is* its ed25519 identity key
//! ([`tls`]); custom rustls verifiers accept a peer only if its certificate carries such a key
//! (its [`PeerId`](starling_core::id::PeerId) is the key's BLAKE3 hash, as over Noise), and a
//! dialer that named a peer accepts only that one. TLS 1.3's handshake signature proves the
//! peer holds the key. Session resumption and 0-RTT are off (0-RTT data can be replayed).
//!
//! ## The session layer over QUIC
//! The Noise handshake is skipped: TLS already authenticates and encrypts. What Noise carried
//! besides keys still happens, on the connection's first stream ([`hello`]): each side sends
//! the same `HandshakePayload` a Noise session would, signed over a secret exported from this
//! TLS session, and judges the other's with the session layer's own rules
//! (`starling_core::session::hello::check_payload`): protocol version, network id, frame limit,
//! capabilities (listen port, protocols), identity. A refusal closes the connection with the
//! session's `CloseCode` as the QUIC application error code and a readable reason.
//!
//! The session layer's other duties map onto QUIC: its keep-alive onto QUIC's idle timeout and
//! PING keep-alives; its frame limit and inbound token-bucket rate limits are enforced here on
//! every stream and datagram, as in a session; encryption and framing of records are QUIC's.
//!
//! ## Mapping
//! - **Streams.** Each protocol gets one long-lived bidirectional stream per connection,
//!   opened by whichever side sends first and used by both (`streams.rs`). Frames keep their
//!   Starling framing (`length, protocol, type, body`) on the stream, so each protocol's
//!   messages stay in order (Raft needs that) while a large DHT answer never delays a gossip
//!   message or a vote.
//! - **Gossip announcements as datagrams.** Plumtree's `IHave` announcements go as QUIC
//!   datagrams (RFC 9221) when the peer accepts them and the frame fits one packet; everything
//!   else of gossip, and every other protocol, goes on streams. Announcements are small,
//!   frequent, idempotent and loss-tolerant by design: a lost one only delays a repair that
//!   another neighbour's announcement or anti-entropy also triggers. As datagrams they are
//!   neither retransmitted nor queued behind the eager-push payloads on the gossip stream, and
//!   they cost no stream state. Unidirectional streams would have bought nothing: one stream
//!   per announcement costs stream credit and framing, and a long-lived one reintroduces
//!   head-of-line blocking among announcements.
//! - **Connections.** One per peer (the node's duplicate rule applies as over TCP); the
//!   node's idle timeout closes quiet ones, QUIC's closes dead ones. Inbound connections are
//!   admitted by the node's limits before any cryptography runs.
//!
//! - **Writes.** Frames the node sends during one turn of its task are encoded per protocol
//!   (`outbox.rs`): small frames packed into shared buffers, bodies of 16 KiB and more passed to
//!   quinn without a copy. Each stream has a writer task; bytes queued for a connection above
//!   `high_water` pause sends to the peer (the node is told, as over TCP) until they drain below
//!   `low_water`, and a connection paused for `stall_timeout` is closed: QUIC's keep-alive is
//!   answered by the peer's stack even when its application has stopped reading.
//!
//! ## Hostile peers
//! A bad certificate, a wrong identity, a malformed or refused hello, garbage on a stream, an
//! oversize frame or datagram: each ends that one connection with a clear error in the log (and
//! a readable close for the peer), while the endpoint goes on serving every other peer.
//!
//! ## Departures
//! - Frames go uncompressed over QUIC (LZ4 stays a Noise-session feature); the hello
//!   announces no compression.
//! - A frame larger than the peer's limit is dropped at the sender (counted in
//!   [`QuicStats::send_refused`]) rather than sent to be refused.
//!
//! [`Node`]: starling_core::node::Node
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod driver;
pub mod hello;
mod outbox;
mod streams;
pub mod tls;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use starling_core::node::{Node, NodeEvent};
pub use starling_runtime::Handle;
use starling_runtime::{announced_protocols, build_node};
use tokio::sync::Notify;

pub use config::{transport_config, QuicConfig};
/// The rustls version the certificate types come from.
pub use rustls;
pub use tls::{client_crypto, peer_of_certificate, server_crypto, NodeCertificate};

use driver::{Driver, Settings};

/// Counters a QUIC node keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuicStats {
    /// Connections admitted by the node's limits (before TLS).
    pub accepted: u64,
    /// Connections refused by the node's limits before any cryptography.
    pub refused: u64,
    /// Connections whose TLS handshake or hello failed (either direction).
    pub handshakes_failed: u64,
    /// Connections closed because the peer broke the frame format.
    pub protocol_violations: u64,
    /// Frames dropped at the sender: larger than the peer accepts.
    pub send_refused: u64,
    /// Frames dropped on arrival by the inbound rate limits.
    pub frames_rate_dropped: u64,
    /// Times a peer was paused by backpressure.
    pub paused: u64,
    /// Protocol streams this node opened.
    pub streams_opened: u64,
    /// Gossip announcements sent as datagrams.
    pub datagrams_sent: u64,
}

/// A node on QUIC: a quinn endpoint on a current-thread tokio runtime, driven by one task that
/// owns the [`Node`].
pub struct QuicNode {
    runtime: tokio::runtime::Runtime,
    driver: Driver,
    local_addr: SocketAddr,
}

impl QuicNode {
    /// Binds the UDP socket and builds the node; nothing runs until [`QuicNode::run`].
    pub fn bind(config: QuicConfig) -> io::Result<(QuicNode, Handle)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let identity = config.keys.identity().clone();
        let cert = NodeCertificate::new(&identity).map_err(io::Error::other)?;
        let transport = transport_config(config.idle_timeout, config.keep_alive);
        let crypto = server_crypto(&cert).map_err(io::Error::other)?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(transport.clone());
        let endpoint = {
            let _context = runtime.enter();
            quinn::Endpoint::server(server, config.listen)?
        };
        let local_addr = endpoint.local_addr()?;
        let notify = Arc::new(Notify::new());
        let waker = notify.clone();
        let (handle, commands) = Handle::new(config.command_queue, move || {
            waker.notify_one();
            Ok(())
        });
        let node = build_node(&config)?;
        let mut session = config.session.clone();
        session.listen_port.get_or_insert(local_addr.port());
        session.compression = false;
        // No heartbeat protocol: QUIC keeps connections alive itself.
        session.protocols = announced_protocols(&node, false);
        let settings = Settings {
            cert,
            identity,
            session: Arc::new(session),
            transport,
            high_water: config.high_water,
            low_water: config.low_water,
            gossip_datagrams: config.gossip_datagrams,
            stall_timeout: starling_core::time::Duration::from_nanos(
                u64::try_from(config.stall_timeout.as_nanos()).unwrap_or(u64::MAX),
            ),
        };
        let driver = Driver::new(endpoint, commands, notify, node, settings);
        Ok((
            QuicNode {
                runtime,
                driver,
                local_addr,
            },
            handle,
        ))
    }

    /// The UDP address the endpoint is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The node, for inspection.
    pub fn node(&self) -> &Node {
        &self.driver.node
    }

    /// Runs until [`Handle::shutdown`], calling `on_event` for every node event.
    pub fn run(self, on_event: impl FnMut(&NodeEvent)) -> io::Result<QuicStats> {
        let QuicNode {
            runtime, driver, ..
        } = self;
        runtime.block_on(driver.run(on_event))
    }
}
