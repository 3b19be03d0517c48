//! The handshake payload: who a node is, which network it belongs to, and what it can do.
//!
//! Each side sends one inside the Noise XX handshake: the responder in message 2, the initiator
//! in message 3. Noise encrypts both, and authenticates them under keys mixed from the handshake
//! transcript, which includes the sender's Noise static key. The payload's signature binds the
//! sender's long-term ed25519 identity to that static key (see [`static_key_binding`]), so the
//! identity vouches for the static key and the static key, through Noise, vouches for every other
//! field. Nothing else is signed because nothing else needs to be.
//!
//! # Layout
//!
//! | field | encoding | meaning |
//! |---|---|---|
//! | `version` | `u16`, little-endian | protocol version; always first, so any version can read it ([`HandshakePayload::peek_version`]) |
//! | `network_id` | 32 bytes | [`NetworkId`]: nodes of different networks refuse each other |
//! | `identity_key` | 32 bytes | the sender's ed25519 public key; its BLAKE3 hash is the sender's [`PeerId`](crate::PeerId) |
//! | `signature` | 64 bytes | ed25519 signature by `identity_key` over [`static_key_binding`] of the sender's Noise static public key |
//! | `protocols` | list: varint count ≤ [`MAX_PROTOCOLS`], then each id as a varint (`u16`) | the [`ProtocolId`]s the sender speaks |
//! | `max_frame_len` | varint (`u32`) | the largest frame the sender accepts |
//! | `flags` | `u8` | bit 0: the sender can decompress LZ4 frames ([`compress_into`](super::compress_into)); bit 1: a listen port follows; bits 2–7 are reserved and ignored |
//! | `listen_port` | `u16`, little-endian, only if flag bit 1 is set | the TCP port the sender accepts connections on, so a peer that accepted its connection can tell others where to reach it (the DHT hands out such addresses) |
//! | extensions | any bytes | ignored by this version |
//!
//! The smallest payload (no protocols, `max_frame_len` below 128) is 133 bytes.
//!
//! # Forward compatibility
//!
//! Two things let a later version extend the payload without breaking this one: bytes after
//! `flags` are ignored, and unknown flag bits are ignored. Unlike frame bodies elsewhere on the
//! wire (which must be consumed exactly), a payload is therefore *not* canonical: decoding then
//! re-encoding drops extensions and unknown flags. That is harmless here because the payload is
//! authenticated by Noise as received and is never hashed or signed in its encoded form.
//!
//! [`HandshakePayload::decode`] reads any version with this layout; whether the version is
//! acceptable is the handshake's decision. A later version that changes the layout keeps the
//! `version` field first, so [`HandshakePayload::peek_version`] can still read it and the
//! handshake can say "wrong version" instead of "malformed".

use core::fmt;

use bytes::BufMut;

use crate::wire::codec::{get_array, get_list_len, get_u16_le, get_u8, put_list_len};
use crate::wire::varint::{get_varint_u16, get_varint_u32, put_varint, varint_len};
use crate::wire::{DecodeError, Limits, ProtocolId};

/// The most protocol ids a [`Capabilities`] list may hold on the wire.
///
/// Starling defines six protocols; 64 leaves room for applications' own while keeping a hostile
/// handshake's allocation tiny.
pub const MAX_PROTOCOLS: usize = 64;

/// Limits for reading the protocol list: only the list limit is used.
const PROTOCOL_LIST_LIMITS: Limits = Limits {
    max_list_len: MAX_PROTOCOLS as u32,
    ..Limits::DEFAULT
};

/// `flags` bit 0: the sender can decompress LZ4 frames.
const FLAG_COMPRESSION: u8 = 0x01;
/// Flag bit: a `listen_port` follows the flags.
const FLAG_LISTEN_PORT: u8 = 0x02;

/// Bytes of the fixed-size head: version, network id, identity key, signature.
const FIXED_LEN: usize = 2 + 32 + 32 + 64;

/// The domain-separation prefix of [`static_key_binding`].
pub const STATIC_KEY_BINDING_DOMAIN: &[u8; 28] = b"starling/noise-static-key/v1";

/// Length of [`static_key_binding`]'s output: the domain string and the 32-byte key.
pub const STATIC_KEY_BINDING_LEN: usize = STATIC_KEY_BINDING_DOMAIN.len() + 32;

/// The message an identity key signs to vouch for a Noise static key:
/// [`STATIC_KEY_BINDING_DOMAIN`] followed by the 32-byte key.
///
/// The fixed prefix keeps this signature from being valid for any other purpose an identity key
/// signs for (and vice versa); because the prefix has a fixed length, the message is unambiguous
/// without a separator.
pub fn static_key_binding(noise_static_public: &[u8; 32]) -> [u8; STATIC_KEY_BINDING_LEN] {
    let mut message = [0u8; STATIC_KEY_BINDING_LEN];
    let (domain, key) = message.split_at_mut(STATIC_KEY_BINDING_DOMAIN.len());
    domain.copy_from_slice(STATIC_KEY_BINDING_DOMAIN);
    key.copy_from_slice(noise_static_public);
    message
}

/// Hash of a network's name: nodes of different networks refuse each other.
///
/// A hash rather than the name keeps the payload fixed-size and tells an observer of a (Noise-
/// encrypted) handshake nothing anyway; it lets test networks, staging and production share
/// ports and bootstrap lists without ever joining up by accident.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NetworkId(pub [u8; 32]);

impl NetworkId {
    /// The id of the network called `name`: BLAKE3 in key-derivation mode with the context
    /// `"starling network id v1"`, so it cannot collide with any other hash Starling computes.
    pub fn from_name(name: &str) -> Self {
        NetworkId(blake3::derive_key(
            "starling network id v1",
            name.as_bytes(),
        ))
    }

    /// The 32 bytes sent on the wire.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for NetworkId {
    /// The first 8 bytes in lowercase hex: enough to tell networks apart in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// What a node offers: protocols it speaks, the largest frame it accepts, and whether it can
/// decompress LZ4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// The protocols the node speaks, at most [`MAX_PROTOCOLS`] of them (more are refused by the
    /// receiver). Order carries no meaning.
    pub protocols: Vec<ProtocolId>,
    /// The largest frame the node accepts, as [`Limits::max_frame_len`] counts it.
    pub max_frame_len: u32,
    /// Whether the node can decompress LZ4 frames. A session compresses only if both sides can.
    pub compression: bool,
    /// The port the node accepts connections on, if it listens. The address a peer learns for
    /// it is the connection's IP with this port.
    pub listen_port: Option<u16>,
}

/// The payload each side sends inside the Noise XX handshake. See the [module docs](self) for
/// the layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakePayload {
    /// Protocol version. Encoded first so that any future version can still read it.
    pub version: u16,
    /// The network the sender belongs to.
    pub network_id: NetworkId,
    /// The sender's ed25519 public key.
    pub identity_key: [u8; 32],
    /// Ed25519 signature by `identity_key` over [`static_key_binding`] of the sender's Noise
    /// static public key.
    pub signature: [u8; 64],
    /// What the sender offers.
    pub capabilities: Capabilities,
}

impl HandshakePayload {
    /// Exact number of bytes [`HandshakePayload::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let caps = &self.capabilities;
        let protocols: usize = caps
            .protocols
            .iter()
            .map(|p| varint_len(u64::from(p.0)))
            .sum();
        FIXED_LEN
            + varint_len(caps.protocols.len() as u64)
            + protocols
            + varint_len(u64::from(caps.max_frame_len))
            + 1
            + if caps.listen_port.is_some() { 2 } else { 0 }
    }

    /// Appends the encoded payload to `out`.
    ///
    /// Limits are the receiver's business: a list of more than [`MAX_PROTOCOLS`] protocols is
    /// encoded anyway and refused on arrival.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        let caps = &self.capabilities;
        out.put_u16_le(self.version);
        out.put_slice(&self.network_id.0);
        out.put_slice(&self.identity_key);
        out.put_slice(&self.signature);
        put_list_len(out, caps.protocols.len());
        for protocol in &caps.protocols {
            put_varint(out, u64::from(protocol.0));
        }
        put_varint(out, u64::from(caps.max_frame_len));
        let mut flags = 0;
        if caps.compression {
            flags |= FLAG_COMPRESSION;
        }
        if caps.listen_port.is_some() {
            flags |= FLAG_LISTEN_PORT;
        }
        out.put_u8(flags);
        if let Some(port) = caps.listen_port {
            out.put_u16_le(port);
        }
    }

    /// Decodes a payload.
    ///
    /// Bounded: the protocol count is checked against [`MAX_PROTOCOLS`] (and against the bytes
    /// present) before the list is allocated, so a hostile payload costs at most 64 ids.
    ///
    /// Bytes after the known fields are ignored, as are flag bits other than bit 0: they are room
    /// for extensions in later versions. Any version is decoded as long as it has this layout;
    /// checking it is up to the caller.
    ///
    /// Errors: [`DecodeError::UnexpectedEnd`] if the input stops before `flags`,
    /// [`DecodeError::ListTooLong`] for more than [`MAX_PROTOCOLS`] protocols, and the varint
    /// errors for a malformed count, protocol id or `max_frame_len`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut buf = bytes;
        let version = get_u16_le(&mut buf)?;
        let network_id = NetworkId(get_array(&mut buf)?);
        let identity_key = get_array(&mut buf)?;
        let signature = get_array(&mut buf)?;
        // Each id takes at least one byte, so the count is also bounded by the input's length.
        let count = get_list_len(&mut buf, &PROTOCOL_LIST_LIMITS, 1)?;
        let mut protocols = Vec::with_capacity(count);
        for _ in 0..count {
            protocols.push(ProtocolId(get_varint_u16(&mut buf)?));
        }
        let max_frame_len = get_varint_u32(&mut buf)?;
        let flags = get_u8(&mut buf)?;
        let listen_port = if flags & FLAG_LISTEN_PORT != 0 {
            Some(get_u16_le(&mut buf)?)
        } else {
            None
        };
        // Whatever is left in `buf` is a later version's extension: ignored on purpose.
        Ok(HandshakePayload {
            version,
            network_id,
            identity_key,
            signature,
            capabilities: Capabilities {
                protocols,
                max_frame_len,
                compression: flags & FLAG_COMPRESSION != 0,
                listen_port,
            },
        })
    }

    /// Reads just the version (the first two bytes), so a peer speaking another version can be
    /// told so even if the rest does not parse. `None` if fewer than two bytes were received.
    pub fn peek_version(bytes: &[u8]) -> Option<u16> {
        match bytes {
            [lo, hi, ..] => Some(u16::from_le_bytes([*lo, *hi])),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;
