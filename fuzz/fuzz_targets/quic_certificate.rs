//! Reads arbitrary bytes as a peer's TLS certificate, as the QUIC adapter's verifiers do.
//!
//! Checks: no panics; the answer is deterministic; an accepted certificate names the identity
//! of an ed25519 key, so a second reading agrees.
#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_quic::peer_of_certificate;
use starling_quic::rustls::pki_types::CertificateDer;

fuzz_target!(|data: &[u8]| {
    let cert = CertificateDer::from(data);
    let first = peer_of_certificate(&cert);
    assert_eq!(first, peer_of_certificate(&cert));
});
