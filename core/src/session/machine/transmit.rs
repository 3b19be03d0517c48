//! The transmit path of a [`Session`]: small frames share batch records, large ones are split
//! into records of their own (LZ4-compressed when that pays), and each record is encrypted into
//! the outbound buffer behind its length prefix.

use bytes::{BufMut, BytesMut};

use super::{Session, State, LEN_PREFIX};
use crate::session::compress::compress_into;
use crate::session::error::CloseCause;
use crate::session::noise::TAG_LEN;
use crate::session::record::{self, MAX_CHUNK, MAX_RECORD};
use crate::wire::varint::MAX_VARINT_LEN_U32;
use crate::wire::Frame;

impl Session {
    /// Queues `frame` for encryption: in the open batch record, or in records of its own.
    pub(super) fn encrypt_frame(&mut self, frame: &Frame) {
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
    pub(super) fn flush_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        std::mem::swap(&mut self.batch, &mut self.scratch);
        self.encrypt_scratch();
        std::mem::swap(&mut self.batch, &mut self.scratch);
        self.batch.clear();
    }

    /// Encrypts the record in `scratch` into the outbound buffer.
    pub(super) fn encrypt_scratch(&mut self) {
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
}
