//! The receive path of a [`Session`]: Noise transport messages are decrypted into records,
//! records reassembled (and decompressed) into frames, and frames rate-limited, then kept
//! (heartbeats) or delivered.

use bytes::Bytes;

use super::{Session, State};
use crate::detector::HeartbeatMessage;
use crate::machine::Machine;
use crate::session::compress::{decompress, CompressError};
use crate::session::error::CloseCause;
use crate::session::event::SessionEvent;
use crate::session::record::{self, Record, MAX_RECORD};
use crate::time::{Duration, Instant};
use crate::wire::varint::MAX_VARINT_LEN_U32;
use crate::wire::{decode_message, DecodeError, Frame, ProtocolId};

impl Session {
    pub(super) fn on_message(&mut self, now: Instant, message: &[u8]) {
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
}
