//! The one way this crate builds HTTP clients.
//!
//! reqwest is built without a TLS crypto provider of its own (it would bring
//! aws-lc, a second crypto library and a C build); its clients use the
//! process's default rustls provider, which this module installs: ring, as
//! kube and the sandbox's TLS server use. `clippy.toml` forbids
//! `reqwest::Client::new`, `reqwest::Client::builder` and `reqwest::get`, which
//! would panic where nothing installed a provider yet.

use std::sync::Once;

/// A client builder whose TLS uses ring and the system's root certificates.
pub fn client_builder() -> reqwest::ClientBuilder {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        // Err: another part of the process installed one first; it is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    #[allow(clippy::disallowed_methods)] // The one allowed place.
    reqwest::Client::builder()
}

/// A client with reqwest's defaults (no timeout), as `reqwest::Client::new`.
pub fn client() -> reqwest::Client {
    client_builder()
        .build()
        // Building fails only when the TLS backend cannot initialise, which
        // with rustls and a provider installed it cannot.
        .unwrap_or_else(|err| panic!("building an HTTP client: {err}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn building_a_client_installs_ring_as_the_tls_provider() {
        let client = super::client_builder().https_only(true).build();
        assert!(client.is_ok(), "{client:?}");
        let provider = rustls::crypto::CryptoProvider::get_default().expect("installed");
        let ring = rustls::crypto::ring::default_provider();
        assert_eq!(
            format!("{:?}", provider.cipher_suites),
            format!("{:?}", ring.cipher_suites)
        );
    }
}
