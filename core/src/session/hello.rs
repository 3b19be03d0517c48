//! Judging a peer's [`HandshakePayload`]: the negotiation rules every transport shares.
//!
//! A Noise session carries the payload inside its handshake; a QUIC connection (the
//! `starling-quic` adapter) carries the same payload on its first stream, after TLS 1.3 has
//! authenticated both ends. Either way the payload is checked by [`check_payload`]: same
//! version, same network, a sane frame limit, a valid identity key whose signature vouches for
//! the channel, and the identity the dialer asked for. Only the *binding* (what the signature
//! covers) differs:
//!
//! - Noise: [`static_key_binding`] of the peer's Noise static key.
//! - TLS: [`tls_exporter_binding`] of a secret exported from the TLS session
//!   ([RFC 8446 §7.5](https://www.rfc-editor.org/rfc/rfc8446#section-7.5)), so the payload is
//!   valid on this one connection only.
//!
//! [`refusal_detail`] is the text sent with a refusal, so the other side can log something
//! useful.

use super::config::SessionConfig;
use super::error::CloseCause;
use super::payload::{Capabilities, HandshakePayload};
use crate::id::PeerId;
use crate::identity::PublicIdentity;
use crate::wire::DecodeError;

#[cfg(doc)]
use super::payload::static_key_binding;

/// Smallest frame limit a peer may announce: below it not even a heartbeat or a small DHT
/// answer fits, so the peer is broken or hostile.
pub const MIN_PEER_FRAME_LEN: u32 = 1024;

/// The domain-separation prefix of [`tls_exporter_binding`].
pub const TLS_EXPORTER_BINDING_DOMAIN: &[u8; 24] = b"starling/tls-exporter/v1";

/// The label under which a QUIC adapter exports the 32-byte secret it binds
/// ([`tls_exporter_binding`]).
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-starling-hello";

/// Length of [`tls_exporter_binding`]'s output.
pub const TLS_EXPORTER_BINDING_LEN: usize = TLS_EXPORTER_BINDING_DOMAIN.len() + 32;

/// The message an identity key signs to vouch for one TLS session:
/// [`TLS_EXPORTER_BINDING_DOMAIN`] followed by 32 bytes exported from the session under
/// [`TLS_EXPORTER_LABEL`]. Both ends compute the same bytes; no other session yields them.
pub fn tls_exporter_binding(exported: &[u8; 32]) -> [u8; TLS_EXPORTER_BINDING_LEN] {
    let mut message = [0u8; TLS_EXPORTER_BINDING_LEN];
    let (domain, secret) = message.split_at_mut(TLS_EXPORTER_BINDING_DOMAIN.len());
    domain.copy_from_slice(TLS_EXPORTER_BINDING_DOMAIN);
    secret.copy_from_slice(exported);
    message
}

/// What a peer proved with an acceptable payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The peer's identity: the BLAKE3 hash of its identity key.
    pub peer: PeerId,
    /// What it offers.
    pub capabilities: Capabilities,
}

/// This node's payload under `config`, with `signature` over the channel's binding.
pub fn encode_payload(
    config: &SessionConfig,
    identity_key: [u8; 32],
    signature: [u8; 64],
) -> Vec<u8> {
    let payload = HandshakePayload {
        version: config.version,
        network_id: config.network_id,
        identity_key,
        signature,
        capabilities: config.capabilities(),
    };
    let mut out = Vec::with_capacity(payload.encoded_len());
    payload.encode(&mut out);
    out
}

/// Checks a peer's encoded payload against `config`: the version first (so a peer on another
/// version hears so even if the rest does not parse), then the layout, the frame limit, the
/// network, the identity key and its signature over `binding`, and finally that the identity is
/// `expected` when the dialer named one.
pub fn check_payload(
    config: &SessionConfig,
    bytes: &[u8],
    binding: &[u8],
    expected: Option<PeerId>,
) -> Result<Verified, CloseCause> {
    let ours = config.version;
    match HandshakePayload::peek_version(bytes) {
        Some(theirs) if theirs != ours => return Err(CloseCause::VersionMismatch { ours, theirs }),
        None => {
            return Err(CloseCause::Malformed(DecodeError::UnexpectedEnd {
                needed: 2,
                remaining: bytes.len(),
            }))
        }
        Some(_) => {}
    }
    let payload = HandshakePayload::decode(bytes).map_err(CloseCause::Malformed)?;
    if payload.capabilities.max_frame_len < MIN_PEER_FRAME_LEN {
        return Err(CloseCause::Malformed(DecodeError::InvalidValue {
            field: "max_frame_len",
        }));
    }
    if payload.network_id != config.network_id {
        return Err(CloseCause::WrongNetwork {
            ours: config.network_id,
            theirs: payload.network_id,
        });
    }
    let identity =
        PublicIdentity::from_bytes(&payload.identity_key).map_err(|_| CloseCause::BadIdentity)?;
    identity
        .verify(binding, &payload.signature)
        .map_err(|_| CloseCause::BadIdentity)?;
    let peer = identity.peer_id();
    match expected {
        Some(expected) if expected != peer => Err(CloseCause::IdentityMismatch {
            expected,
            found: peer,
        }),
        _ => Ok(Verified {
            peer,
            capabilities: payload.capabilities,
        }),
    }
}

/// The explanation sent with a refusal for `cause`.
pub fn refusal_detail(cause: &CloseCause) -> String {
    match cause {
        CloseCause::VersionMismatch { ours, .. } => {
            format!("this node speaks protocol version {ours}")
        }
        CloseCause::WrongNetwork { ours, .. } => format!("this node is on network {ours}"),
        CloseCause::Local(_) => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn signed(config: &SessionConfig, identity: &Identity, binding: &[u8]) -> Vec<u8> {
        encode_payload(config, identity.public_key(), identity.sign(binding))
    }

    #[test]
    fn a_payload_verifies_only_for_its_binding_network_version_and_identity() {
        let config = SessionConfig::new("net");
        let identity = Identity::from_test_seed(3);
        let binding = tls_exporter_binding(&[5; 32]);
        let bytes = signed(&config, &identity, &binding);
        let ok = check_payload(&config, &bytes, &binding, Some(identity.peer_id())).unwrap();
        assert_eq!(ok.peer, identity.peer_id());
        assert_eq!(ok.capabilities, config.capabilities());

        let other_binding = tls_exporter_binding(&[6; 32]);
        assert_eq!(
            check_payload(&config, &bytes, &other_binding, None),
            Err(CloseCause::BadIdentity)
        );
        let someone = Identity::from_test_seed(4).peer_id();
        assert!(matches!(
            check_payload(&config, &bytes, &binding, Some(someone)),
            Err(CloseCause::IdentityMismatch { found, .. }) if found == identity.peer_id()
        ));
        let other_net = SessionConfig::new("other");
        assert!(matches!(
            check_payload(&other_net, &bytes, &binding, None),
            Err(CloseCause::WrongNetwork { .. })
        ));
        let mut newer = config.clone();
        newer.version += 1;
        assert!(matches!(
            check_payload(&newer, &bytes, &binding, None),
            Err(CloseCause::VersionMismatch { theirs: 1, .. })
        ));
        assert!(matches!(
            check_payload(&config, &bytes[..1], &binding, None),
            Err(CloseCause::Malformed(_))
        ));
    }

    #[test]
    fn the_tls_binding_is_domain_then_secret() {
        let message = tls_exporter_binding(&[0x42; 32]);
        assert_eq!(&message[..24], b"starling/tls-exporter/v1");
        assert_eq!(&message[24..], &[0x42; 32]);
    }
}
