//! The handshake half of a [`Session`]: writing our Noise XX messages, judging the peer's
//! payload, and entering transport mode (the exchange is drawn in the
//! [session docs](crate::session)).

use super::{Role, Session, State, LEN_PREFIX};
use crate::session::error::CloseCause;
use crate::session::event::SessionEvent;
use crate::session::hello::{check_payload, encode_payload, refusal_detail, Verified};
use crate::session::noise::{MAX_NOISE_MESSAGE, TAG_LEN};
use crate::session::payload::static_key_binding;
use crate::time::Instant;

/// Most bytes an XX handshake message adds to its payload: an ephemeral key (32), an encrypted
/// static key (32 + 16) and the payload's tag (16).
const HANDSHAKE_OVERHEAD: usize = 32 + 48 + TAG_LEN;

impl Session {
    pub(super) fn write_handshake(&mut self, payload: &[u8]) {
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

    pub(super) fn on_handshake_message(&mut self, now: Instant, message: &[u8]) {
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
}
