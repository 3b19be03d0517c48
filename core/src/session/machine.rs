//! The session state machine.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::compress::{compress_into, decompress, CompressError};
use super::config::SessionConfig;
use super::error::{CloseCause, CloseCode, SendError};
use super::hello::{check_payload, encode_payload, refusal_detail, Verified};
use super::noise::{
    params, sub_seed, u64_seed, NodeKeys, SeededResolver, MAX_NOISE_MESSAGE, PROLOGUE, TAG_LEN,
};
use super::payload::{static_key_binding, Capabilities};
use super::record::{self, Reassembly, Record, MAX_CHUNK, MAX_RECORD};
use crate::detector::{DetectorEvent, FailureDetector, HeartbeatMessage};
use crate::id::PeerId;
use crate::machine::{Machine, Output};
use crate::rate::TokenBucket;
use crate::time::{Duration, Instant};
use crate::wire::varint::MAX_VARINT_LEN_U32;
use crate::wire::{decode_message, message_to_frame, DecodeError, Frame, ProtocolId};

/// Which side of the connection this session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Dialled the connection; sends the first handshake message.
    Initiator,
    /// Accepted the connection.
    Responder,
}

/// What a session reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The handshake succeeded: the peer proved `peer`, and speaks our network and version.
    Established {
        /// The authenticated peer.
        peer: PeerId,
        /// The peer's announced capabilities.
        capabilities: Capabilities,
        /// Whether frames may be compressed (both offered it).
        compression: bool,
    },
    /// A frame arrived from the peer (heartbeats are consumed by the session).
    Frame(Frame),
    /// The peer exceeded an inbound rate limit; `dropped` frames were discarded since the last
    /// report. Reported at most once a second; the node may lower the peer's score.
    RateExceeded {
        /// The offending peer.
        peer: PeerId,
        /// Frames dropped since the last report.
        dropped: u64,
    },
    /// The peer missed heartbeats; its session stays open until it is declared dead.
    PeerSuspect {
        /// The silent peer.
        peer: PeerId,
    },
    /// A suspect peer answered again.
    PeerAlive {
        /// The peer.
        peer: PeerId,
    },
    /// The session ended; it accepts no more input.
    Closed(CloseCause),
}

/// Byte and frame counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Bytes handed to the session by [`Session::handle_bytes`].
    pub bytes_received: u64,
    /// Bytes produced for the socket.
    pub bytes_sent: u64,
    /// Bytes of the three handshake messages, both directions.
    pub handshake_bytes: u64,
    /// Frames delivered to the application.
    pub frames_received: u64,
    /// Frames sent.
    pub frames_sent: u64,
    /// Inbound frames dropped by the rate limits.
    pub frames_dropped: u64,
}

enum State {
    Handshake(Box<snow::HandshakeState>),
    Established(Box<snow::TransportState>),
    Closed,
}

/// One connection's secure session (see the [module docs](super)).
pub struct Session {
    config: Arc<SessionConfig>,
    keys: Arc<NodeKeys>,
    role: Role,
    state: State,
    expected: Option<PeerId>,
    peer: Option<PeerId>,
    handshake_deadline: Instant,
    /// Received bytes that do not yet form a whole Noise message (at most one message).
    inbound: BytesMut,
    /// Bytes waiting to be written to the socket.
    outbound: BytesMut,
    /// Plaintext of the batch record being filled with small frames; encrypted when full, before
    /// any other record, and on `poll_transmit`.
    batch: Vec<u8>,
    /// Decryption output and record assembly, reused.
    scratch: Vec<u8>,
    reassembly: Reassembly,
    events: VecDeque<SessionEvent>,
    keepalive: FailureDetector<()>,
    frame_bucket: TokenBucket,
    byte_bucket: TokenBucket,
    /// Drops not yet reported, and when the last report went out.
    unreported_drops: u64,
    last_rate_report: Option<Instant>,
    compression: bool,
    peer_max_frame: u32,
    stats: SessionStats,
    /// Why the session ended, once it has.
    close_cause: Option<CloseCause>,
}

/// Length prefix of every Noise message on the stream (big-endian u16, as the Noise spec
/// suggests for stream transports).
const LEN_PREFIX: usize = 2;

/// Length of the whole Noise message (prefix included) starting at `buf`, once the prefix is in.
fn message_len(buf: &[u8]) -> Option<usize> {
    match buf {
        [hi, lo, ..] => Some(LEN_PREFIX + usize::from(u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    }
}

/// Most bytes an XX handshake message adds to its payload: an ephemeral key (32), an encrypted
/// static key (32 + 16) and the payload's tag (16).
const HANDSHAKE_OVERHEAD: usize = 32 + 48 + TAG_LEN;

impl Session {
    /// A dialling session. `expected` names the peer the dialer wants; any other identity
    /// aborts the handshake. `seed` feeds the session's CSPRNG (ephemeral keys): draw it from
    /// the OS in a real node.
    pub fn initiator(
        config: Arc<SessionConfig>,
        keys: Arc<NodeKeys>,
        expected: Option<PeerId>,
        seed: [u8; 32],
        now: Instant,
    ) -> Self {
        let mut s = Session::new(config, keys, Role::Initiator, seed, now);
        s.expected = expected;
        // Message 1 (-> e) carries no payload: nothing in it is encrypted.
        s.write_handshake(&[]);
        s
    }

    /// An accepting session.
    pub fn responder(
        config: Arc<SessionConfig>,
        keys: Arc<NodeKeys>,
        seed: [u8; 32],
        now: Instant,
    ) -> Self {
        Session::new(config, keys, Role::Responder, seed, now)
    }

    fn new(
        config: Arc<SessionConfig>,
        keys: Arc<NodeKeys>,
        role: Role,
        seed: [u8; 32],
        now: Instant,
    ) -> Self {
        let builder =
            snow::Builder::with_resolver(params(), SeededResolver::boxed(sub_seed(&seed, "noise")))
                .local_private_key(keys.noise_private())
                .and_then(|b| b.prologue(PROLOGUE));
        let handshake = builder.and_then(|b| match role {
            Role::Initiator => b.build_initiator(),
            Role::Responder => b.build_responder(),
        });
        let rate = config.rate;
        let mut session = Session {
            keepalive: FailureDetector::new(config.keepalive, u64_seed(&seed), now),
            frame_bucket: TokenBucket::new(rate.frames_per_sec, rate.frame_burst, now),
            byte_bucket: TokenBucket::new(rate.bytes_per_sec, rate.byte_burst, now),
            handshake_deadline: now + config.handshake_timeout,
            config,
            keys,
            role,
            state: State::Closed,
            expected: None,
            peer: None,
            inbound: BytesMut::new(),
            outbound: BytesMut::new(),
            batch: Vec::new(),
            scratch: Vec::new(),
            reassembly: Reassembly::default(),
            events: VecDeque::new(),
            unreported_drops: 0,
            last_rate_report: None,
            compression: false,
            peer_max_frame: 0,
            stats: SessionStats::default(),
            close_cause: None,
        };
        match handshake {
            Ok(hs) => session.state = State::Handshake(Box::new(hs)),
            // Only a malformed static key gets here, and NodeKeys always holds a valid one.
            Err(_) => session.fail(CloseCause::Handshake("cannot initialise Noise")),
        }
        session
    }

    /// Which side this session is.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The authenticated peer, once established.
    pub fn peer(&self) -> Option<PeerId> {
        self.peer
    }
    /// Whether the handshake has succeeded and the session is open.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established(_))
    }
    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }
    /// Why the session ended, once it has (also reported as [`SessionEvent::Closed`]).
    pub fn close_cause(&self) -> Option<&CloseCause> {
        self.close_cause.as_ref()
    }
    /// Byte and frame counters.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }
    /// Smoothed round-trip time measured by the keep-alive, once a heartbeat has been answered.
    pub fn rtt(&self) -> Option<Duration> {
        self.keepalive.health(()).and_then(|h| h.srtt)
    }
    /// Bytes waiting for [`Session::poll_transmit`].
    pub fn queued_bytes(&self) -> usize {
        self.outbound.len() + self.batch.len()
    }

    /// Feeds bytes read from the connection. Ignored once closed.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        if self.is_closed() {
            return;
        }
        self.stats.bytes_received += bytes.len() as u64;
        let mut input = bytes;
        if !self.inbound.is_empty() {
            // Complete the message begun by an earlier read, copying only what it still lacks:
            // first its length prefix, then its body.
            for _ in 0..2 {
                let want = message_len(&self.inbound).unwrap_or(LEN_PREFIX);
                let (head, rest) = input.split_at((want - self.inbound.len()).min(input.len()));
                self.inbound.extend_from_slice(head);
                input = rest;
            }
            match message_len(&self.inbound) {
                Some(len) if self.inbound.len() == len => {
                    let message = self.inbound.split();
                    self.on_message(now, &message[LEN_PREFIX..]);
                }
                // Still partial, and the whole input is used up.
                _ => return,
            }
        }
        // Whole messages are decrypted straight from the caller's buffer; only a trailing
        // partial message is kept.
        while !self.is_closed() {
            match message_len(input) {
                Some(len) if input.len() >= len => {
                    let (message, rest) = input.split_at(len);
                    self.on_message(now, &message[LEN_PREFIX..]);
                    input = rest;
                }
                _ => break,
            }
        }
        if !self.is_closed() {
            self.inbound.extend_from_slice(input);
        }
        self.pump_keepalive(now);
    }

    /// Time has reached the deadline from [`Session::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Handshake(_) if now >= self.handshake_deadline => {
                self.fail(CloseCause::HandshakeTimeout)
            }
            State::Established(_) => {
                self.keepalive.handle_timeout(now);
                self.pump_keepalive(now);
            }
            _ => {}
        }
    }

    /// The next deadline: the handshake timeout, then the keep-alive's next round.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Handshake(_) => Some(self.handshake_deadline),
            State::Established(_) => self.keepalive.poll_timeout(),
            State::Closed => None,
        }
    }

    /// Bytes to write to the connection, all that is queued, or `None`.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.flush_batch();
        (!self.outbound.is_empty()).then(|| self.outbound.split().freeze())
    }

    /// The next event, or `None`. Drain after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Encrypts and queues `frame` for the peer.
    pub fn send(&mut self, frame: &Frame) -> Result<(), SendError> {
        match self.state {
            State::Established(_) => {}
            State::Handshake(_) => return Err(SendError::NotEstablished),
            State::Closed => return Err(SendError::Closed),
        }
        let len = frame.encoded_len();
        if len > self.peer_max_frame as usize {
            return Err(SendError::FrameTooLarge {
                len,
                max: self.peer_max_frame,
            });
        }
        if self.queued_bytes() >= self.config.max_queued_bytes {
            return Err(SendError::QueueFull);
        }
        self.encrypt_frame(frame);
        Ok(())
    }

    /// Closes the session with `code`, telling the peer if the handshake has finished.
    pub fn close(&mut self, code: CloseCode) {
        if !self.is_closed() {
            self.close_with(CloseCause::Local(code), "");
        }
    }

    /// Pretends the peer announced a larger frame limit, to test that the receiver enforces its
    /// own limit against a lying sender.
    #[cfg(test)]
    pub(crate) fn override_peer_max_frame(&mut self, max: u32) {
        self.peer_max_frame = max;
    }

    /// Encrypts `plaintext` as one record exactly as given, bypassing every check: lets fuzz
    /// targets and tests play a peer that sends malformed records. Not for production use.
    #[cfg(any(test, feature = "arbitrary"))]
    #[doc(hidden)]
    pub fn send_raw_record(&mut self, plaintext: &[u8]) {
        if self.is_established() {
            self.scratch.clear();
            self.scratch
                .extend_from_slice(&plaintext[..plaintext.len().min(MAX_RECORD)]);
            self.encrypt_scratch();
        }
    }

    // --- handshake ---

    fn write_handshake(&mut self, payload: &[u8]) {
        let State::Handshake(hs) = &mut self.state else {
            return;
        };
        let start = self.outbound.len();
        // An XX message adds at most an ephemeral key, an encrypted static key and a tag.
        let max = (payload.len() + HANDSHAKE_OVERHEAD).min(MAX_NOISE_MESSAGE);
        self.outbound.resize(start + LEN_PREFIX + max, 0);
        match hs.write_message(payload, &mut self.outbound[start + LEN_PREFIX..]) {
            Ok(n) => {
                self.outbound.truncate(start + LEN_PREFIX + n);
                // n <= MAX_NOISE_MESSAGE = u16::MAX.
                self.outbound[start..start + LEN_PREFIX].copy_from_slice(&(n as u16).to_be_bytes());
                let written = (LEN_PREFIX + n) as u64;
                self.stats.bytes_sent += written;
                self.stats.handshake_bytes += written;
            }
            Err(_) => {
                self.outbound.truncate(start);
                self.fail(CloseCause::Handshake("cannot write handshake message"));
            }
        }
    }

    fn our_payload(&self) -> Vec<u8> {
        let identity_key = self.keys.identity().public_key();
        encode_payload(&self.config, identity_key, *self.keys.signature())
    }

    fn on_handshake_message(&mut self, now: Instant, message: &[u8]) {
        let State::Handshake(hs) = &mut self.state else {
            return;
        };
        self.stats.handshake_bytes += (LEN_PREFIX + message.len()) as u64;
        // The payload is never longer than the message carrying it.
        self.scratch.resize(message.len(), 0);
        let n = match hs.read_message(message, &mut self.scratch) {
            Ok(n) => n,
            Err(snow::Error::Decrypt) => return self.fail(CloseCause::BadMac),
            Err(_) => return self.fail(CloseCause::Handshake("malformed handshake message")),
        };
        let remote_static = hs
            .get_remote_static()
            .and_then(|k| <[u8; 32]>::try_from(k).ok());
        match (self.role, remote_static) {
            // Message 1 read: answer with message 2 (<- e, ee, s, es) and our payload.
            (Role::Responder, None) => {
                let payload = self.our_payload();
                self.write_handshake(&payload);
            }
            // Message 2 read: check the responder, then send message 3 (-> s, se) regardless,
            // so that it can read our refusal if we refuse.
            (Role::Initiator, Some(rs)) => {
                let verdict = self.verify(n, &rs);
                let payload = self.our_payload();
                self.write_handshake(&payload);
                self.finish_handshake(now, verdict);
            }
            // Message 3 read: check the initiator.
            (Role::Responder, Some(rs)) => {
                let verdict = self.verify(n, &rs);
                self.finish_handshake(now, verdict);
            }
            (Role::Initiator, None) => {
                self.fail(CloseCause::Handshake("responder sent no static key"))
            }
        }
    }

    /// Checks the peer's payload (the first `len` bytes of scratch) against its Noise static key.
    fn verify(&self, len: usize, remote_static: &[u8; 32]) -> Result<Verified, CloseCause> {
        let binding = static_key_binding(remote_static);
        check_payload(&self.config, &self.scratch[..len], &binding, self.expected)
    }

    fn finish_handshake(&mut self, now: Instant, verdict: Result<Verified, CloseCause>) {
        let State::Handshake(hs) = std::mem::replace(&mut self.state, State::Closed) else {
            return;
        };
        match hs.into_transport_mode() {
            Ok(transport) => self.state = State::Established(Box::new(transport)),
            Err(_) => return self.fail(CloseCause::Handshake("handshake incomplete")),
        }
        match verdict {
            Ok(v) => {
                self.peer = Some(v.peer);
                self.compression = self.config.compression && v.capabilities.compression;
                self.peer_max_frame = v.capabilities.max_frame_len;
                // One peer is always within max_peers (validated ≥ 1).
                let _ = self.keepalive.monitor(now, ());
                self.events.push_back(SessionEvent::Established {
                    peer: v.peer,
                    capabilities: v.capabilities,
                    compression: self.compression,
                });
            }
            Err(cause) => {
                let detail = refusal_detail(&cause);
                self.close_with(cause, &detail);
            }
        }
    }

    // --- transport ---

    fn on_message(&mut self, now: Instant, message: &[u8]) {
        match self.state {
            State::Handshake(_) => self.on_handshake_message(now, message),
            State::Established(_) => self.on_transport_message(now, message),
            State::Closed => {}
        }
    }

    fn on_transport_message(&mut self, now: Instant, message: &[u8]) {
        let State::Established(transport) = &mut self.state else {
            return;
        };
        // Sized to the message, not to the largest possible one: a session with small frames
        // keeps small buffers, which matters with thousands of sessions per process.
        self.scratch.resize(message.len().min(MAX_RECORD), 0);
        let n = match transport.read_message(message, &mut self.scratch) {
            Ok(n) => n,
            // Corrupted, forged or replayed: nothing more from this stream can be trusted.
            Err(_) => return self.fail(CloseCause::BadMac),
        };
        self.keepalive.heard_from(now, ());
        let scratch = std::mem::take(&mut self.scratch);
        match record::parse(&scratch[..n]) {
            Ok(Record::Frame {
                data,
                last,
                compressed,
            }) => {
                // The encoded frame adds at most a length varint to the frame limit; an LZ4 block
                // of it is smaller (compression is only used when it shrinks) plus its own header.
                let max = self.config.limits.max_frame_len as usize + 2 * MAX_VARINT_LEN_U32;
                match self.reassembly.push(data, last, max) {
                    Ok(Some(bytes)) => self.on_frame_bytes(now, bytes, compressed),
                    Ok(None) => {}
                    Err(record::TooLarge(len)) => self.fail(CloseCause::OversizeFrame {
                        len,
                        max: self.config.limits.max_frame_len,
                    }),
                }
            }
            Ok(Record::Batch { data }) if self.reassembly.is_empty() => {
                // One copy out of the decrypt buffer; the frames are then sliced from it.
                let mut frames = Bytes::copy_from_slice(data);
                while !frames.is_empty() && !self.is_closed() {
                    match Frame::decode(&mut frames, &self.config.limits) {
                        Ok(frame) => self.on_frame(now, frame),
                        Err(e) => self.fail_decode(e),
                    }
                }
            }
            Ok(Record::Batch { .. }) => {
                self.fail(CloseCause::Malformed(DecodeError::InvalidValue {
                    field: "batch inside a split frame",
                }))
            }
            Ok(Record::Close { code, detail }) => self.closed(CloseCause::Peer { code, detail }),
            Err(e) => self.fail(CloseCause::Malformed(e)),
        }
        self.scratch = scratch;
    }

    fn on_frame_bytes(&mut self, now: Instant, bytes: Bytes, compressed: bool) {
        let limits = self.config.limits;
        let mut bytes = if compressed {
            match decompress(&bytes, limits.max_frame_len as usize + MAX_VARINT_LEN_U32) {
                Ok(b) => b,
                Err(CompressError::TooLarge { declared, .. }) => {
                    let len = usize::try_from(declared).unwrap_or(usize::MAX);
                    return self.fail(CloseCause::OversizeFrame {
                        len,
                        max: limits.max_frame_len,
                    });
                }
                Err(_) => return self.fail(CloseCause::BadCompression),
            }
        } else {
            bytes
        };
        match Frame::decode(&mut bytes, &limits) {
            Ok(frame) if bytes.is_empty() => self.on_frame(now, frame),
            Ok(_) => self.fail(CloseCause::Malformed(DecodeError::TrailingBytes {
                count: bytes.len(),
            })),
            Err(e) => self.fail_decode(e),
        }
    }

    fn fail_decode(&mut self, e: DecodeError) {
        match e {
            DecodeError::FrameTooLarge { len, max } => {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                self.fail(CloseCause::OversizeFrame { len, max })
            }
            e => self.fail(CloseCause::Malformed(e)),
        }
    }

    /// A whole frame arrived: rate-limit it, then keep it (heartbeats) or deliver it.
    fn on_frame(&mut self, now: Instant, frame: Frame) {
        let limits = self.config.limits;
        if !self.admit(now, &frame) {
            return;
        }
        if frame.protocol == ProtocolId::HEARTBEAT {
            match decode_message::<HeartbeatMessage>(frame, &limits) {
                Ok(msg) => self.keepalive.handle_message(now, (), msg),
                Err(e) => self.fail(CloseCause::Malformed(e)),
            }
        } else {
            self.stats.frames_received += 1;
            self.events.push_back(SessionEvent::Frame(frame));
        }
    }

    /// Applies the inbound rate limits; a refused frame is dropped and, at most once a second,
    /// reported.
    fn admit(&mut self, now: Instant, frame: &Frame) -> bool {
        let len = frame.body.len() as u64;
        // Take from the byte bucket only if the frame bucket allows, so a refusal costs nothing.
        if self.frame_bucket.try_take(now, 1) && self.byte_bucket.try_take(now, len) {
            return true;
        }
        self.stats.frames_dropped += 1;
        self.unreported_drops += 1;
        let due = self
            .last_rate_report
            .is_none_or(|t| now >= t + Duration::from_secs(1));
        if let (true, Some(peer)) = (due, self.peer) {
            self.events.push_back(SessionEvent::RateExceeded {
                peer,
                dropped: self.unreported_drops,
            });
            self.unreported_drops = 0;
            self.last_rate_report = Some(now);
        }
        false
    }

    fn encrypt_frame(&mut self, frame: &Frame) {
        self.stats.frames_sent += 1;
        let mut header = [0u8; 2 * MAX_VARINT_LEN_U32 + 1];
        let header_len = {
            let mut h = &mut header[..];
            let before = h.remaining_mut();
            frame.encode_header(&mut h);
            before - h.remaining_mut()
        };
        let encoded_len = header_len + frame.body.len();
        let compress = self.compression && encoded_len >= self.config.compress_threshold;
        if !compress && encoded_len < MAX_RECORD {
            // Small frames share a batch record: one AEAD operation and tag for many frames.
            if self.batch.len() + encoded_len > MAX_RECORD {
                self.flush_batch();
            }
            if self.batch.is_empty() {
                self.batch.push(record::BATCH);
            }
            self.batch.extend_from_slice(&header[..header_len]);
            self.batch.extend_from_slice(&frame.body);
            return;
        }
        // Everything else goes in records of its own, after what is already batched.
        self.flush_batch();
        if compress {
            let mut plain = BytesMut::with_capacity(encoded_len);
            plain.extend_from_slice(&header[..header_len]);
            plain.extend_from_slice(&frame.body);
            let mut packed = BytesMut::new();
            compress_into(&plain, &mut packed);
            if packed.len() < plain.len() {
                return self.write_chunks(&[&packed], true);
            }
        }
        self.write_chunks(&[&header[..header_len], &frame.body], false);
    }

    /// Splits the concatenation of `parts` into records and encrypts each.
    fn write_chunks(&mut self, parts: &[&[u8]], compressed: bool) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut sent = 0;
        let (mut part, mut offset) = (0, 0);
        loop {
            let chunk = (total - sent).min(MAX_CHUNK);
            let last = sent + chunk == total;
            // Stage the record where snow's copy of it into `outbound` runs at full speed.
            let from = self.staging_offset(1 + chunk);
            self.scratch.clear();
            self.scratch.resize(from, 0);
            self.scratch.push(record::frame_header(last, compressed));
            let mut need = chunk;
            while need > 0 {
                let take = (parts[part].len() - offset).min(need);
                self.scratch
                    .extend_from_slice(&parts[part][offset..offset + take]);
                need -= take;
                offset += take;
                if offset == parts[part].len() {
                    part += 1;
                    offset = 0;
                }
            }
            self.encrypt_scratch_from(from);
            sent += chunk;
            if last {
                break;
            }
        }
    }

    /// Where in `scratch` to stage a record of `len` bytes: snow copies the plaintext into the
    /// message buffer before encrypting it in place, and on x86 that copy runs ~15x slower when
    /// its destination is 1 to 15 bytes ahead of its source modulo 4 KiB (4K aliasing). The
    /// destination (after the length prefix in `outbound`) is reserved first so its address is
    /// known, and the record is staged at the same address modulo 16.
    fn staging_offset(&mut self, len: usize) -> usize {
        self.outbound.reserve(LEN_PREFIX + len + TAG_LEN);
        self.scratch.reserve(len + 16);
        let dst = self.outbound.as_ptr() as usize + self.outbound.len() + LEN_PREFIX;
        dst.wrapping_sub(self.scratch.as_ptr() as usize) % 16
    }

    /// Encrypts the open batch record, if any.
    fn flush_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        std::mem::swap(&mut self.batch, &mut self.scratch);
        self.encrypt_scratch();
        std::mem::swap(&mut self.batch, &mut self.scratch);
        self.batch.clear();
    }

    /// Encrypts the record in `scratch` into the outbound buffer.
    fn encrypt_scratch(&mut self) {
        self.encrypt_scratch_from(0)
    }

    /// Encrypts the record in `scratch[from..]` into the outbound buffer.
    fn encrypt_scratch_from(&mut self, from: usize) {
        let State::Established(transport) = &mut self.state else {
            return;
        };
        let start = self.outbound.len();
        let max = self.scratch.len() - from + TAG_LEN;
        self.outbound.resize(start + LEN_PREFIX + max, 0);
        match transport.write_message(
            &self.scratch[from..],
            &mut self.outbound[start + LEN_PREFIX..],
        ) {
            Ok(n) => {
                self.outbound.truncate(start + LEN_PREFIX + n);
                // Records are at most MAX_RECORD, so n <= u16::MAX.
                self.outbound[start..start + LEN_PREFIX].copy_from_slice(&(n as u16).to_be_bytes());
                self.stats.bytes_sent += (LEN_PREFIX + n) as u64;
            }
            Err(_) => {
                // Only nonce exhaustion (2^64 messages) gets here.
                self.outbound.truncate(start);
                self.fail(CloseCause::Handshake("transport nonce exhausted"));
            }
        }
    }

    /// Turns keep-alive outputs into heartbeat frames and session events.
    fn pump_keepalive(&mut self, _now: Instant) {
        while let Some(out) = self.keepalive.poll_output() {
            if !self.is_established() {
                continue;
            }
            match out {
                Output::Send { msg, .. } => self.encrypt_frame(&message_to_frame(&msg)),
                Output::Event(DetectorEvent::Suspect(())) => {
                    if let Some(peer) = self.peer {
                        self.events.push_back(SessionEvent::PeerSuspect { peer });
                    }
                }
                Output::Event(DetectorEvent::Alive(())) => {
                    if let Some(peer) = self.peer {
                        self.events.push_back(SessionEvent::PeerAlive { peer });
                    }
                }
                Output::Event(DetectorEvent::Dead(())) => self.fail(CloseCause::KeepaliveTimeout),
            }
        }
    }

    // --- closing ---

    /// Fails the session, telling the peer why when a transport exists and the cause is the
    /// peer's protocol breach (not a failed MAC: those bytes may not be the peer's at all).
    fn fail(&mut self, cause: CloseCause) {
        if matches!(cause, CloseCause::BadMac) {
            self.closed(cause);
        } else {
            let detail = refusal_detail(&cause);
            self.close_with(cause, &detail);
        }
    }

    fn close_with(&mut self, cause: CloseCause, detail: &str) {
        if self.is_established() {
            // Frames sent before the close still go out, ahead of it.
            self.flush_batch();
            let mut plain = std::mem::take(&mut self.scratch);
            record::close_record(cause.code(), detail, &mut plain);
            self.scratch = plain;
            self.encrypt_scratch();
        }
        self.closed(cause);
    }

    /// Enters the closed state for good, releasing buffers that can no longer be used.
    fn closed(&mut self, cause: CloseCause) {
        self.state = State::Closed;
        self.reassembly = Reassembly::default();
        self.inbound = BytesMut::new();
        self.close_cause = Some(cause.clone());
        self.events.push_back(SessionEvent::Closed(cause));
    }
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("peer", &self.peer)
            .field("established", &self.is_established())
            .field("closed", &self.is_closed())
            .finish()
    }
}
