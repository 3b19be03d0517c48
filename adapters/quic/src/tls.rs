//! TLS 1.3 bound to Starling identities: the certificate a node presents, the verifiers that
//! accept only certificates proving a Starling identity, and the quinn configurations.
//!
//! A node's certificate is self-signed *by its ed25519 identity key*, and that key is the
//! certificate's subject public key. TLS 1.3 makes each side sign the handshake transcript with
//! its certificate's key (CertificateVerify, RFC 8446 §4.4.3), so a peer that completes the
//! handshake holds the identity's secret key, and its [`PeerId`] is the BLAKE3 hash of the
//! certificate's public key, exactly as over Noise. No certificate authority is involved:
//! validity dates, names and the self-signature are not checked, because nothing they could
//! prove is needed. What is checked:
//!
//! - one certificate, no chain; it parses as X.509 and its key is an ed25519 key
//!   ([`peer_of_certificate`]);
//! - the handshake signature is ed25519 by that key (the only scheme offered);
//! - on the dialer, the identity is the one it asked for, if it named one.
//!
//! The identity key signing TLS transcripts next to its Noise binding signatures is safe:
//! TLS 1.3 prefixes what it signs with 64 spaces and a context string, and Starling's own
//! signatures start with `starling/`, so neither can be passed off as the other.
//!
//! Session resumption and 0-RTT are off: every connection runs a full handshake, so each one
//! proves its identity afresh and no early data can be replayed.

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use starling_core::id::PeerId;
use starling_core::identity::{Identity, PublicIdentity};

/// The ALPN protocol both ends must offer: a QUIC connection of anything else fails the TLS
/// handshake instead of reaching the node.
pub const ALPN: &[u8] = b"starling/1";

/// The server name a dialer sends. Certificates carry no names worth checking (see the module
/// docs), so it is a constant.
pub const SERVER_NAME: &str = "starling";

/// The DER header of an ed25519 `SubjectPublicKeyInfo` (RFC 8410 §4); the 32-byte key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The DER header of an ed25519 private key in PKCS #8 v1 (RFC 8410 §7); the 32-byte seed
/// follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why a peer's certificate does not prove a Starling identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateRefusal {
    /// The peer sent a chain; a Starling certificate stands alone.
    NotAlone,
    /// The bytes are not an X.509 certificate.
    NotX509,
    /// The certificate's key is not an ed25519 key.
    NotEd25519,
    /// The ed25519 key is not a valid curve point.
    BadKey,
    /// The identity is not the one the dialer asked for.
    IdentityMismatch {
        /// Whom the dialer asked for.
        expected: PeerId,
        /// Whom the certificate names.
        found: PeerId,
    },
}

impl std::fmt::Display for CertificateRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertificateRefusal::NotAlone => f.write_str("a certificate chain instead of one"),
            CertificateRefusal::NotX509 => f.write_str("not an X.509 certificate"),
            CertificateRefusal::NotEd25519 => {
                f.write_str("the certificate's key is not an ed25519 Starling identity")
            }
            CertificateRefusal::BadKey => f.write_str("the ed25519 key is not a valid point"),
            CertificateRefusal::IdentityMismatch { expected, found } => {
                write!(
                    f,
                    "expected peer {expected}, the certificate proves {found}"
                )
            }
        }
    }
}

impl std::error::Error for CertificateRefusal {}

impl From<CertificateRefusal> for rustls::Error {
    fn from(refusal: CertificateRefusal) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
            refusal,
        ))))
    }
}

/// The identity a certificate proves, if it is a Starling certificate. Parsing is webpki's,
/// which bounds what it reads by the certificate's length.
pub fn peer_of_certificate(cert: &CertificateDer<'_>) -> Result<PeerId, CertificateRefusal> {
    let parsed = webpki::EndEntityCert::try_from(cert).map_err(|_| CertificateRefusal::NotX509)?;
    let spki = parsed.subject_public_key_info();
    let key = spki
        .as_ref()
        .strip_prefix(&ED25519_SPKI_PREFIX[..])
        .and_then(|key| <[u8; 32]>::try_from(key).ok())
        .ok_or(CertificateRefusal::NotEd25519)?;
    let public = PublicIdentity::from_bytes(&key).map_err(|_| CertificateRefusal::BadKey)?;
    Ok(public.peer_id())
}

/// The identity behind a verified chain, checked against `expected`.
fn check_chain(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    expected: Option<PeerId>,
) -> Result<PeerId, CertificateRefusal> {
    if !intermediates.is_empty() {
        return Err(CertificateRefusal::NotAlone);
    }
    let found = peer_of_certificate(end_entity)?;
    match expected {
        Some(expected) if expected != found => {
            Err(CertificateRefusal::IdentityMismatch { expected, found })
        }
        _ => Ok(found),
    }
}

/// A node's certificate and the key it signs handshakes with (its identity key).
#[derive(Debug)]
pub struct NodeCertificate {
    /// The self-signed certificate, DER.
    pub cert: CertificateDer<'static>,
    /// The identity key, PKCS #8.
    key: PrivatePkcs8KeyDer<'static>,
}

impl NodeCertificate {
    /// A certificate for `identity`: its public key as the subject key, its peer id as the
    /// common name (for people reading captures), self-signed by the identity key.
    pub fn new(identity: &Identity) -> Result<NodeCertificate, rcgen::Error> {
        let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
        pkcs8.extend_from_slice(&identity.secret_bytes());
        let key = PrivatePkcs8KeyDer::from(pkcs8);
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key, &rcgen::PKCS_ED25519)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("starling {}", identity.peer_id()),
        );
        let cert = params.self_signed(&key_pair)?.der().clone();
        Ok(NodeCertificate { cert, key })
    }

    /// Any certificate and its key, for tools and tests: peers refuse it unless it proves a
    /// Starling identity.
    pub fn from_parts(cert: CertificateDer<'static>, key: PrivatePkcs8KeyDer<'static>) -> Self {
        NodeCertificate { cert, key }
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// QUIC runs on TLS 1.3 only (RFC 9001 §4.2): a TLS 1.2 signature is never checked.
fn tls12_refused() -> Result<HandshakeSignatureValid, rustls::Error> {
    Err(rustls::Error::PeerIncompatible(
        rustls::PeerIncompatible::Tls13RequiredForQuic,
    ))
}

/// The handshake signature (CertificateVerify) by the certificate's key; only ed25519 is
/// offered, and the certificate was already required to carry an ed25519 key.
fn check_tls13(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    verify_tls13_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

/// Checks a server's certificate on the dialer's side.
#[derive(Debug)]
struct ServerVerifier {
    expected: Option<PeerId>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        check_chain(end_entity, intermediates, self.expected)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        check_tls13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Checks a client's certificate on the accepting side: any Starling identity may connect.
#[derive(Debug)]
struct ClientVerifier {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_chain(end_entity, intermediates, None)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        check_tls13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Why a TLS configuration could not be built (a bug or a broken crypto provider, never the
/// network's doing).
#[derive(Debug)]
pub struct TlsSetupError(String);

impl std::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS setup: {}", self.0)
    }
}

impl std::error::Error for TlsSetupError {}

fn setup_error(e: impl std::fmt::Display) -> TlsSetupError {
    TlsSetupError(e.to_string())
}

/// The accepting side's QUIC crypto: presents `cert`, demands a Starling client certificate.
pub fn server_crypto(cert: &NodeCertificate) -> Result<QuicServerConfig, TlsSetupError> {
    let provider = provider();
    let verifier = Arc::new(ClientVerifier {
        provider: provider.clone(),
    });
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(setup_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.cert.clone()], cert.key())
        .map_err(setup_error)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // No resumption tickets and no 0-RTT (see the module docs).
    tls.max_early_data_size = 0;
    tls.send_tls13_tickets = 0;
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    QuicServerConfig::try_from(tls).map_err(setup_error)
}

/// The dialing side's QUIC crypto: presents `cert`, and accepts only a Starling certificate,
/// of `expected` if given.
pub fn client_crypto(
    cert: &NodeCertificate,
    expected: Option<PeerId>,
) -> Result<QuicClientConfig, TlsSetupError> {
    let provider = provider();
    let verifier = Arc::new(ServerVerifier {
        expected,
        provider: provider.clone(),
    });
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(setup_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![cert.cert.clone()], cert.key())
        .map_err(setup_error)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.resumption = rustls::client::Resumption::disabled();
    tls.enable_early_data = false;
    QuicClientConfig::try_from(tls).map_err(setup_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_certificate_proves_its_identity() {
        let identity = Identity::from_test_seed(9);
        let cert = NodeCertificate::new(&identity).unwrap();
        assert_eq!(peer_of_certificate(&cert.cert), Ok(identity.peer_id()));
        assert_eq!(
            check_chain(&cert.cert, &[], Some(identity.peer_id())),
            Ok(identity.peer_id())
        );
        let other = Identity::from_test_seed(10).peer_id();
        assert_eq!(
            check_chain(&cert.cert, &[], Some(other)),
            Err(CertificateRefusal::IdentityMismatch {
                expected: other,
                found: identity.peer_id()
            })
        );
        assert_eq!(
            check_chain(&cert.cert, std::slice::from_ref(&cert.cert), None),
            Err(CertificateRefusal::NotAlone)
        );
    }

    #[test]
    fn other_certificates_and_garbage_are_refused() {
        // An ordinary web certificate: ECDSA P-256.
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["example.org".into()]).unwrap();
        let web = params.self_signed(&key).unwrap();
        assert_eq!(
            peer_of_certificate(web.der()),
            Err(CertificateRefusal::NotEd25519)
        );
        let garbage = CertificateDer::from(vec![0x30, 0x03, 1, 2, 3]);
        assert_eq!(
            peer_of_certificate(&garbage),
            Err(CertificateRefusal::NotX509)
        );
        // Every truncation of a real certificate is refused without a panic.
        let good = NodeCertificate::new(&Identity::from_test_seed(1)).unwrap();
        for cut in 0..good.cert.len() {
            let cut = CertificateDer::from(good.cert[..cut].to_vec());
            assert!(peer_of_certificate(&cut).is_err());
        }
    }

    #[test]
    fn configurations_build() {
        let cert = NodeCertificate::new(&Identity::from_test_seed(2)).unwrap();
        server_crypto(&cert).unwrap();
        client_crypto(&cert, None).unwrap();
    }
}
