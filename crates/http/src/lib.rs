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
//! step kind and the sandbox one per sign-in, so this crate reads them once
//! per process and hands every builder the same TLS configuration. A CA added
//! to the system's store therefore takes a restart, as it did for the clients
//! built at start-up before.

use std::sync::{Arc, Once, OnceLock};

/// A client builder whose TLS uses ring and the system's root certificates.
pub fn client_builder() -> reqwest::ClientBuilder {
    #[allow(clippy::disallowed_methods)] // The one allowed place.
    let builder = reqwest::Client::builder();
    match tls() {
        Some(config) => builder.tls_backend_preconfigured(config),
        // No roots could be read: reqwest tries again, and its build says why.
        None => builder,
    }
}

/// A client with reqwest's defaults (no timeout), as `reqwest::Client::new`.
pub fn client() -> reqwest::Client {
    client_builder()
        .build()
        // Building fails only when the TLS backend cannot initialise, which
        // with rustls, a provider and the roots already read it cannot.
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
pub fn install_provider() {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The TLS configuration every client shares, as reqwest would build it for
/// HTTP/1 (TLS 1.2 and 1.3, SNI, the platform's verifier over the system's
/// roots); None where the system has no root certificate to read.
fn tls() -> Option<rustls::ClientConfig> {
    static CONFIG: OnceLock<Option<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            install_provider();
            let provider = rustls::crypto::CryptoProvider::get_default()?.clone();
            let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).ok()?;
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .ok()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(config)
        })
        .clone()
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
