//! TLS for the stand-in: client-go (helm, kubectl) sends a kubeconfig's
//! bearer token only over `https`, so the kubeconfig points at TLS. The
//! certificates are committed test files (see `tls/README.md`).

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The test CA (PEM), for a kubeconfig's `certificate-authority-data`.
pub const CA_PEM: &str = include_str!("tls/ca.crt");
const SERVER_CERT_PEM: &str = include_str!("tls/server.crt");
const SERVER_KEY_PEM: &str = include_str!("tls/server.key");

/// The first byte of a TLS connection (a handshake record); plain HTTP
/// starts with a method name.
pub const HANDSHAKE: u8 = 0x16;

/// An acceptor serving the test certificate, HTTP/1.1 only (no ALPN `h2`).
pub fn acceptor() -> std::io::Result<TlsAcceptor> {
    let invalid = |e: &dyn std::fmt::Display| std::io::Error::other(format!("test TLS: {e}"));
    let chain = vec![
        CertificateDer::from_pem_slice(SERVER_CERT_PEM.as_bytes()).map_err(|e| invalid(&e))?,
        CertificateDer::from_pem_slice(CA_PEM.as_bytes()).map_err(|e| invalid(&e))?,
    ];
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY_PEM.as_bytes()).map_err(|e| invalid(&e))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
