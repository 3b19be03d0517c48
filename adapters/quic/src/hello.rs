//! The hello: after TLS, each side sends its [`HandshakePayload`] on the connection's first
//! stream, and the other judges it with the same rules as a Noise session
//! ([`check_payload`]): version, network, frame limit, and the identity key's signature, here
//! over a secret exported from this TLS session ([`tls_exporter_binding`]).
//!
//! ```text
//! dialer                                         acceptor
//!   opens stream 0: len:u16be hello      ->      judges; on refusal closes the connection
//!                                                with the CloseCode and its reason
//!                  <-  len:u16be hello           judges; likewise
//! ```
//!
//! The identity in the hello must be the one the certificate proved. A refusal travels as the
//! QUIC application close (code = [`CloseCode`] byte, reason = text), which the refused side
//! reads as [`CloseCause::Peer`].
//!
//! [`HandshakePayload`]: starling_core::session::payload::HandshakePayload
//! [`CloseCode`]: starling_core::session::CloseCode

use quinn::{Connection, ConnectionError, ReadExactError, RecvStream, SendStream, VarInt};
use starling_core::id::PeerId;
use starling_core::identity::Identity;
use starling_core::session::hello::{
    check_payload, encode_payload, refusal_detail, tls_exporter_binding, Verified,
    TLS_EXPORTER_LABEL,
};
use starling_core::session::{CloseCause, CloseCode, SessionConfig};
use starling_core::wire::DecodeError;

use crate::tls::peer_of_certificate;

/// The largest hello read: a payload with the maximum of 64 protocols is under 330 bytes, and
/// later versions may append extensions.
const MAX_HELLO: usize = 2048;

/// Which side of the connection runs the hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Opened the connection; speaks first.
    Dialer,
    /// Accepted it.
    Acceptor,
}

/// Runs the hello on an established QUIC connection. On a refusal by this side the connection
/// is closed with the reason; either way the cause is returned. Public for tools and tests
/// that speak to nodes without hosting one.
pub async fn exchange(
    connection: &Connection,
    side: Side,
    config: &SessionConfig,
    identity: &Identity,
) -> Result<Verified, CloseCause> {
    let result = run(connection, side, config, identity).await;
    if let Err(cause) = &result {
        if !matches!(cause, CloseCause::Peer { .. } | CloseCause::ConnectionLost) {
            close(connection, cause.code(), &refusal_detail(cause));
        }
    }
    result
}

/// Closes `connection` with a Starling close code and a readable reason.
pub fn close(connection: &Connection, code: CloseCode, reason: &str) {
    connection.close(VarInt::from(code.to_byte()), reason.as_bytes());
}

async fn run(
    connection: &Connection,
    side: Side,
    config: &SessionConfig,
    identity: &Identity,
) -> Result<Verified, CloseCause> {
    let cert_peer = certified_peer(connection)?;
    let mut exported = [0u8; 32];
    connection
        .export_keying_material(&mut exported, TLS_EXPORTER_LABEL, b"")
        .map_err(|_| CloseCause::Handshake("cannot export keying material"))?;
    let binding = tls_exporter_binding(&exported);
    let ours = encode_payload(config, identity.public_key(), identity.sign(&binding));
    match side {
        Side::Dialer => {
            let (mut send, mut recv) = connection.open_bi().await.map_err(lost)?;
            write_hello(&mut send, &ours).await?;
            let theirs = read_hello(&mut recv).await?;
            same_identity(check_payload(config, &theirs, &binding, None)?, cert_peer)
        }
        Side::Acceptor => {
            let (mut send, mut recv) = connection.accept_bi().await.map_err(lost)?;
            let theirs = read_hello(&mut recv).await?;
            let verified =
                same_identity(check_payload(config, &theirs, &binding, None)?, cert_peer)?;
            write_hello(&mut send, &ours).await?;
            Ok(verified)
        }
    }
}

/// The hello must speak for the identity the certificate proved (the dialer's expected peer
/// was checked against the certificate during TLS).
fn same_identity(verified: Verified, cert_peer: PeerId) -> Result<Verified, CloseCause> {
    if verified.peer == cert_peer {
        Ok(verified)
    } else {
        Err(CloseCause::BadIdentity)
    }
}

/// The identity TLS proved: the verifiers accepted only Starling certificates, so this fails
/// only if quinn reports no certificate at all.
pub fn certified_peer(connection: &Connection) -> Result<PeerId, CloseCause> {
    let certs = connection
        .peer_identity()
        .and_then(|any| {
            any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .ok_or(CloseCause::BadIdentity)?;
    let first = certs.first().ok_or(CloseCause::BadIdentity)?;
    peer_of_certificate(first).map_err(|_| CloseCause::BadIdentity)
}

async fn write_hello(send: &mut SendStream, hello: &[u8]) -> Result<(), CloseCause> {
    let len = u16::try_from(hello.len()).map_err(|_| CloseCause::Handshake("hello too long"))?;
    send.write_all(&len.to_be_bytes())
        .await
        .map_err(|e| match e {
            quinn::WriteError::ConnectionLost(e) => lost(e),
            _ => CloseCause::ConnectionLost,
        })?;
    send.write_all(hello)
        .await
        .map_err(|_| CloseCause::ConnectionLost)?;
    // The hello stream carries nothing else.
    let _ = send.finish();
    Ok(())
}

async fn read_hello(recv: &mut RecvStream) -> Result<Vec<u8>, CloseCause> {
    let mut len = [0u8; 2];
    recv.read_exact(&mut len).await.map_err(read_error)?;
    let len = usize::from(u16::from_be_bytes(len));
    if len > MAX_HELLO {
        return Err(CloseCause::OversizeFrame {
            len,
            max: MAX_HELLO as u32,
        });
    }
    let mut hello = vec![0u8; len];
    recv.read_exact(&mut hello).await.map_err(read_error)?;
    Ok(hello)
}

fn read_error(e: ReadExactError) -> CloseCause {
    match e {
        ReadExactError::FinishedEarly(got) => CloseCause::Malformed(DecodeError::UnexpectedEnd {
            needed: got + 1,
            remaining: got,
        }),
        ReadExactError::ReadError(quinn::ReadError::ConnectionLost(e)) => lost(e),
        ReadExactError::ReadError(_) => CloseCause::ConnectionLost,
    }
}

/// What a failed connection means for the node: the peer's readable refusal, a timeout, or a
/// plain loss.
pub fn lost(e: ConnectionError) -> CloseCause {
    match e {
        ConnectionError::ApplicationClosed(close) => CloseCause::Peer {
            code: CloseCode::from_byte(
                u8::try_from(close.error_code.into_inner()).unwrap_or(u8::MAX),
            ),
            detail: String::from_utf8_lossy(&close.reason[..close.reason.len().min(256)])
                .into_owned(),
        },
        ConnectionError::TimedOut => CloseCause::KeepaliveTimeout,
        ConnectionError::LocallyClosed => CloseCause::Local(CloseCode::Normal),
        _ => CloseCause::ConnectionLost,
    }
}
