//! Tests of `payload.rs`: the handshake payload's layout, round trips, limits on hostile input, and
//! the static-key binding.

use super::*;
use crate::identity::{Identity, PublicIdentity};

fn sample() -> HandshakePayload {
    HandshakePayload {
        version: 1,
        network_id: NetworkId::from_name("testnet"),
        identity_key: [7; 32],
        signature: [9; 64],
        capabilities: Capabilities {
            protocols: vec![ProtocolId::HEARTBEAT, ProtocolId::DHT, ProtocolId(300)],
            max_frame_len: 1 << 20,
            compression: true,
            listen_port: Some(4001),
        },
    }
}

fn encode(payload: &HandshakePayload) -> Vec<u8> {
    let mut out = Vec::new();
    payload.encode(&mut out);
    out
}

#[test]
fn a_flagged_listen_port_must_be_present() {
    let bytes = encode(&sample());
    // Cut the port off: the flag promises two more bytes.
    let cut = &bytes[..bytes.len() - 2];
    assert_eq!(
        HandshakePayload::decode(cut),
        Err(DecodeError::UnexpectedEnd {
            needed: 2,
            remaining: 0
        })
    );
}

#[test]
fn round_trips() {
    let payload = sample();
    let bytes = encode(&payload);
    assert_eq!(bytes.len(), payload.encoded_len());
    assert_eq!(HandshakePayload::decode(&bytes), Ok(payload));

    let mut bare = sample();
    bare.capabilities = Capabilities {
        protocols: Vec::new(),
        max_frame_len: 0,
        compression: false,
        listen_port: None,
    };
    let bytes = encode(&bare);
    assert_eq!(bytes.len(), 133);
    assert_eq!(HandshakePayload::decode(&bytes), Ok(bare));
}

#[test]
fn layout_matches_the_documented_table() {
    let payload = sample();
    let bytes = encode(&payload);
    assert_eq!(&bytes[..2], &[1, 0]);
    assert_eq!(&bytes[2..34], payload.network_id.as_bytes());
    assert_eq!(&bytes[34..66], &[7; 32]);
    assert_eq!(&bytes[66..130], &[9; 64]);
    // 3 protocols: 1, 2, 300 (= ac 02); max_frame_len 2^20 (= 80 80 40); flags 3
    // (compression, listen port); listen port 4001 little-endian (= a1 0f).
    assert_eq!(
        &bytes[130..],
        &[3, 1, 2, 0xac, 0x02, 0x80, 0x80, 0x40, 0x03, 0xa1, 0x0f]
    );
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = encode(&sample());
    for cut in 0..bytes.len() {
        assert!(
            matches!(
                HandshakePayload::decode(&bytes[..cut]),
                Err(DecodeError::UnexpectedEnd { .. })
            ),
            "cut at {cut}"
        );
    }
}

#[test]
fn too_many_protocols_are_refused_before_allocating() {
    let mut payload = sample();
    payload.capabilities.protocols = (0..=MAX_PROTOCOLS as u16).map(ProtocolId).collect();
    assert_eq!(
        HandshakePayload::decode(&encode(&payload)),
        Err(DecodeError::ListTooLong {
            len: MAX_PROTOCOLS as u64 + 1,
            max: MAX_PROTOCOLS as u32
        })
    );
    // Exactly the maximum is fine.
    payload.capabilities.protocols.pop();
    let bytes = encode(&payload);
    assert_eq!(HandshakePayload::decode(&bytes), Ok(payload));

    // A count of u32::MAX with nothing behind it fails on the limit, not on allocation.
    let mut huge = bytes[..FIXED_LEN].to_vec();
    put_varint(&mut huge, u64::from(u32::MAX));
    assert!(matches!(
        HandshakePayload::decode(&huge),
        Err(DecodeError::ListTooLong { .. })
    ));
}

#[test]
fn malformed_varints_are_refused() {
    let bytes = encode(&sample());
    // A protocol id above u16::MAX.
    let mut wide = bytes[..FIXED_LEN].to_vec();
    wide.extend_from_slice(&[1, 0x80, 0x80, 0x04, 0, 0]);
    assert_eq!(
        HandshakePayload::decode(&wide),
        Err(DecodeError::VarintOverflow)
    );
    // A non-canonical max_frame_len.
    let mut long = bytes[..FIXED_LEN].to_vec();
    long.extend_from_slice(&[0, 0x80, 0x00, 0]);
    assert_eq!(
        HandshakePayload::decode(&long),
        Err(DecodeError::VarintNonCanonical)
    );
}

#[test]
fn trailing_bytes_and_unknown_flags_are_tolerated() {
    let payload = sample();
    let mut bytes = encode(&payload);
    bytes.extend_from_slice(b"a later version's extension");
    assert_eq!(HandshakePayload::decode(&bytes), Ok(payload.clone()));

    // Bits 2..7 of flags are reserved: ignored, whatever bits 0 and 1 say.
    let mut bytes = encode(&payload);
    let flags = bytes.len() - 3; // the listen port follows the flags
    bytes[flags] = 0xff;
    assert_eq!(HandshakePayload::decode(&bytes), Ok(payload.clone()));
    bytes[flags] = 0xfe;
    let decoded = HandshakePayload::decode(&bytes);
    assert_eq!(decoded.map(|p| p.capabilities.compression), Ok(false));
}

#[test]
fn peek_version_reads_only_the_first_two_bytes() {
    assert_eq!(HandshakePayload::peek_version(&[]), None);
    assert_eq!(HandshakePayload::peek_version(&[2]), None);
    assert_eq!(HandshakePayload::peek_version(&[2, 1]), Some(0x0102));
    // A future version whose layout this one cannot parse still reports its version.
    let future = [9, 0, 0xff];
    assert_eq!(HandshakePayload::peek_version(&future), Some(9));
    assert!(HandshakePayload::decode(&future).is_err());
    assert_eq!(HandshakePayload::peek_version(&encode(&sample())), Some(1));
}

#[test]
fn network_ids_differ_by_name_and_display_short_hex() {
    let main = NetworkId::from_name("main");
    assert_eq!(main, NetworkId::from_name("main"));
    assert_ne!(main, NetworkId::from_name("test"));
    // Domain-separated: not the plain hash of the name.
    assert_ne!(main.as_bytes(), blake3::hash(b"main").as_bytes());
    let shown = main.to_string();
    assert_eq!(shown.len(), 16);
    let expected: String = main.0[..8].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(shown, expected);
}

#[test]
fn static_key_binding_is_domain_then_key() {
    let key = [0x42; 32];
    let message = static_key_binding(&key);
    assert_eq!(message.len(), STATIC_KEY_BINDING_LEN);
    assert_eq!(&message[..28], b"starling/noise-static-key/v1");
    assert_eq!(&message[28..], &key);
}

#[test]
fn a_signed_binding_verifies_only_for_its_static_key() {
    let identity = Identity::from_test_seed(1);
    let noise_static = [0x11; 32];
    let mut payload = sample();
    payload.identity_key = identity.public_key();
    payload.signature = identity.sign(&static_key_binding(&noise_static));

    let received = HandshakePayload::decode(&encode(&payload)).unwrap();
    let public = PublicIdentity::from_bytes(&received.identity_key).unwrap();
    assert_eq!(public.peer_id(), identity.peer_id());
    assert!(public
        .verify(&static_key_binding(&noise_static), &received.signature)
        .is_ok());
    // The same signature does not vouch for another static key.
    assert!(public
        .verify(&static_key_binding(&[0x12; 32]), &received.signature)
        .is_err());
}
