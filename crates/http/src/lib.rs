//! The one way hubwright builds HTTP clients.
//!
//! reqwest is built without a TLS crypto provider of its own (it would bring
//! aws-lc, a second crypto library and a C build); its clients use ring, the
//! provider kube and the sandbox's TLS server use, which this crate installs
//! as the process default. `clippy.toml` forbids `reqwest::Client::new`,
//! `reqwest::Client::builder` and `reqwest::get`, which would panic where
//! nothing installed a provider yet.
//!
//! Left to itself, reqwest reads the system's root certificates again for
//! every client it builds: it stats every file under `/etc/ssl/certs` and
//! decodes a 200 KiB PEM bundle. A worker builds a client per registered
//! step kind and the sandbox one per sign-in, so this crate hands every
//! builder the same TLS configuration, whose verifier reads the roots at the
//! first TLS handshake of the process: a process that only speaks plain HTTP
//! (a test, a worker whose endpoints are in-cluster `http://` URLs) never
//! reads them. A CA added to the system's store therefore takes a restart,
//! as it did for the clients built at start-up before.

use std::sync::{Arc, Once, OnceLock};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// A client builder whose TLS uses ring and the system's root certificates.
pub fn client_builder() -> reqwest::ClientBuilder {
    #[allow(clippy::disallowed_methods)] // The one allowed place.
    let builder = reqwest::Client::builder();
    match tls() {
        Some(config) => builder.tls_backend_preconfigured(config),
        // reqwest builds its own, and its build says what failed.
        None => builder,
    }
}

/// A client with reqwest's defaults (no timeout), as `reqwest::Client::new`.
pub fn client() -> reqwest::Client {
    client_builder()
        .build()
        // Building fails only when the TLS backend cannot initialise, which
        // with a rustls configuration already made it cannot.
        .unwrap_or_else(|err| panic!("building an HTTP client: {err}"))
}

/// A blocking client builder, configured as [`client_builder`]'s.
#[cfg(feature = "blocking")]
pub fn blocking_client_builder() -> reqwest::blocking::ClientBuilder {
    #[allow(clippy::disallowed_methods)] // The one allowed place.
    let builder = reqwest::blocking::Client::builder();
    match tls() {
        Some(config) => builder.tls_backend_preconfigured(config),
        None => builder,
    }
}

/// Installs ring as the process's default TLS provider, once. Err from
/// rustls means another part of the process installed one first; that one
/// is used.
fn install_provider() {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The TLS configuration every client shares, as reqwest would build it for
/// HTTP/1: TLS 1.2 and 1.3, SNI, the platform's verifier over the system's
/// roots. None only if the provider refuses those versions.
fn tls() -> Option<rustls::ClientConfig> {
    static CONFIG: OnceLock<Option<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            install_provider();
            let provider = CryptoProvider::get_default()?.clone();
            let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .ok()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SystemRoots::new(provider)))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(config)
        })
        .clone()
}

/// The platform's verifier, made (and the system's roots read) when the first
/// handshake needs it. Where the system has no root certificate, every
/// handshake fails with the verifier's error, which says so.
#[derive(Debug)]
struct SystemRoots {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<rustls_platform_verifier::Verifier, rustls::Error>>,
}

impl SystemRoots {
    fn new(provider: Arc<CryptoProvider>) -> Self {
        Self {
            provider,
            verifier: OnceLock::new(),
        }
    }

    fn verifier(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| rustls_platform_verifier::Verifier::new(self.provider.clone()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for SystemRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        match self.verifier() {
            Ok(verifier) => verifier.supported_verify_schemes(),
            // The handshake fails at the certificate with the reason.
            Err(_) => self
                .provider
                .signature_verification_algorithms
                .supported_schemes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn building_a_client_installs_ring_as_the_tls_provider() {
        let client = client_builder().https_only(true).build();
        assert!(client.is_ok(), "{client:?}");
        let provider = rustls::crypto::CryptoProvider::get_default().expect("installed");
        let ring = rustls::crypto::ring::default_provider();
        assert_eq!(
            format!("{:?}", provider.cipher_suites),
            format!("{:?}", ring.cipher_suites)
        );
    }

    #[test]
    fn the_roots_are_read_at_the_first_certificate_and_not_before() {
        install_provider();
        let provider = CryptoProvider::get_default().expect("installed").clone();
        let roots = SystemRoots::new(provider);
        assert!(roots.verifier.get().is_none());
        let not_a_certificate = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        let name = ServerName::try_from("example.org").expect("a DNS name");
        let err = roots
            .verify_server_cert(&not_a_certificate, &[], &name, &[], UnixTime::now())
            .expect_err("not a certificate");
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
        assert!(
            matches!(roots.verifier.get(), Some(Ok(_))),
            "this machine has root certificates, and they were read"
        );
    }

    #[test]
    fn the_shared_configuration_speaks_http_1_over_tls_1_2_and_1_3() {
        let config = tls().expect("this machine has root certificates to read");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(config.enable_sni);
        let ring = rustls::crypto::ring::default_provider();
        assert_eq!(
            format!("{:?}", config.crypto_provider().cipher_suites),
            format!("{:?}", ring.cipher_suites)
        );
    }
}
