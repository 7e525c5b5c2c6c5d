//! hubwright's HTTP clients (crates/http): every client shares one TLS
//! configuration over the system's roots, read once per process, and that
//! configuration still verifies the server's certificate.

use std::error::Error as _;
use std::time::Duration;

use hubwright_sandbox::apiserver::KubeApiServer;

/// The error and every cause under it, as one line.
fn chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn every_client_refuses_a_certificate_the_system_does_not_trust_and_speaks_plain_http() {
    // The stand-in's certificate is signed by a CA of its own, which no
    // system store holds.
    let server = KubeApiServer::start().await.unwrap();
    let version = format!("{}/version", server.https_url());
    let clients = [
        hubwright_http::client(),
        hubwright_http::client_builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        hubwright_http::client(),
    ];
    for client in clients {
        let err = client
            .get(&version)
            .send()
            .await
            .expect_err("a certificate from an unknown CA is refused");
        let text = chain(&err);
        assert!(err.is_connect(), "{text}");
        assert!(text.contains("UnknownIssuer"), "{text}");
    }

    // The same server over plain HTTP answers: the refusal was the certificate's.
    let plain = hubwright_http::client()
        .get(format!("{}/version", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status().as_u16(), 200);
}
