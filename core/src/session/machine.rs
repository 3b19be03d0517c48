//! The session state machine: its states and buffers, the public surface, the keep-alive and
//! closing. The handshake, the receive path and the transmit path are in the child modules.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::config::SessionConfig;
use super::error::{CloseCause, CloseCode, SendError};
use super::event::{SessionEvent, SessionStats};
use super::hello::refusal_detail;
use super::noise::{params, sub_seed, u64_seed, NodeKeys, SeededResolver, PROLOGUE};
use super::record::{self, Reassembly};
use crate::detector::{DetectorEvent, FailureDetector};
use crate::id::PeerId;
use crate::machine::{Machine, Output};
use crate::rate::TokenBucket;
use crate::time::{Duration, Instant};
use crate::wire::{message_to_frame, Frame};

mod handshake;
mod receive;
mod transmit;

/// Which side of the connection this session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Dialled the connection; sends the first handshake message.
    Initiator,
    /// Accepted the connection.
    Responder,
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
                .extend_from_slice(&plaintext[..plaintext.len().min(record::MAX_RECORD)]);
            self.encrypt_scratch();
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
