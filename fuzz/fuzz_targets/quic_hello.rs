//! Judges arbitrary bytes as a peer's hello on a QUIC connection (the session's handshake
//! payload, signed over a TLS exporter binding), as `starling-quic` does after TLS.
//!
//! Checks: no panics; refusals name a cause; a payload this node made itself for the same
//! binding is accepted, so the fuzzer's mutations start from a valid hello.
#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_core::identity::Identity;
use starling_core::session::hello::{check_payload, encode_payload, tls_exporter_binding};
use starling_core::session::SessionConfig;

fuzz_target!(|data: &[u8]| {
    let config = SessionConfig::new("fuzz");
    let binding = tls_exporter_binding(&[7; 32]);
    if let Ok(verified) = check_payload(&config, data, &binding, None) {
        assert!(verified.capabilities.protocols.len() <= 64);
    }
    let identity = Identity::from_test_seed(u64::from(data.first().copied().unwrap_or(0)));
    let ours = encode_payload(&config, identity.public_key(), identity.sign(&binding));
    let verified = check_payload(&config, &ours, &binding, Some(identity.peer_id()));
    assert_eq!(verified.map(|v| v.peer), Ok(identity.peer_id()));
});
