//! Provider trouble: retries, refusals, a missing initial access token,
//! local mode, a missing secret key, the Keycloak driver, a provider down.

use std::time::Duration;

use hubwright_sandbox::oidc::{OidcProvider, Options};
use hubwright_state::model::{ErrorClass, RunState};
use hubwright_testkit::lab::{Lab, WITHIN};
use hubwright_testkit::wait;
use serde_json::json;

use crate::BIN;

use super::*;

#[tokio::test]
async fn provider_trouble_is_retried_and_refusals_are_permanent_and_verbatim() {
    let mut provider = OidcProvider::start(Options::default()).await.unwrap();
    let lab = Lab::new(&template(provider.issuer(), None)).await;
    let _worker = lab.worker("w1");

    // Two 503s, then the registration goes through.
    provider
        .fail_next("/reg", 503, json!({"error": "temporarily_unavailable"}), 2)
        .await
        .unwrap();
    let ok = lab.request(json!({})).await;
    wait::run_state(lab.store(), ok.run_id, RunState::Succeeded, WITHIN).await;
    let idp = steps(&lab, ok.run_id)
        .await
        .into_iter()
        .find(|s| s.name == "idp")
        .unwrap();
    assert_eq!(idp.attempts, 3);

    // Metadata the provider rejects: its words, once, no retry.
    let bad = lab.request(json!({"callback": "not a url"})).await;
    let run = wait::run_state(lab.store(), bad.run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message.contains("answered 400 to register a client: invalid_redirect_uri: redirect_uris must only contain valid uris"),
        "{message}"
    );
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Permanent)
    );
    assert_eq!(steps(&lab, bad.run_id).await[1].attempts, 1);

    // The provider is down: transient, retried until the policy gives up.
    provider.stop().await.unwrap();
    let down = lab.request(json!({})).await;
    let run = wait::run_state(lab.store(), down.run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message.contains("cannot reach the identity provider"),
        "{message}"
    );
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Retryable)
    );
    assert_eq!(steps(&lab, down.run_id).await[1].attempts, 3);
}

#[tokio::test]
async fn a_required_initial_access_token_that_is_missing_is_a_clear_permanent_error() {
    let provider = OidcProvider::start(Options::with_initial_access_token(IAT))
        .await
        .unwrap();

    // The template sends none: the provider's refusal, verbatim.
    let lab = Lab::new(&template(provider.issuer(), None)).await;
    let _worker = lab.worker("w1");
    let run_id = lab.request(json!({})).await.run_id;
    let run = wait::run_state(lab.store(), run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message
            .contains("answered 401 to register a client: invalid_token: no access token provided"),
        "{message}"
    );
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Permanent)
    );

    // The template names a variable this worker does not have.
    let lab = Lab::new(&template(
        provider.issuer(),
        Some("HUBWRIGHT_TEST_UNSET_TOKEN"),
    ))
    .await;
    let _worker = lab.worker("w2");
    let run_id = lab.request(json!({})).await.run_id;
    let run = wait::run_state(lab.store(), run_id, RunState::Failed, WITHIN).await;
    assert_eq!(
        run.error.clone().unwrap().message,
        "with.initial_access_token_env names HUBWRIGHT_TEST_UNSET_TOKEN, which is not set on this worker"
    );
    assert!(provider.registered_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn local_mode_gives_the_hub_a_generated_admin_password_that_stays_the_same() {
    let provider = OidcProvider::start(Options::default()).await.unwrap();
    let lab = Lab::new(&template(provider.issuer(), None)).await;
    let _worker = lab.worker("w1");
    let requested = lab.request(json!({"auth_mode": "local"})).await;
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;
    let password = hub_secret(&lab, &requested.namespace).await["ADMIN_PASSWORD"].clone();
    assert_eq!(password.len(), 32);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(
        provider.registered_clients().await.unwrap().is_empty(),
        "no IdP involved"
    );
    assert!(!database_text(&lab).await.contains(&password));

    let again = lab.run_again(requested.id, "provision").await;
    wait::run_state(lab.store(), again, RunState::Succeeded, WITHIN).await;
    assert_eq!(
        hub_secret(&lab, &requested.namespace).await["ADMIN_PASSWORD"],
        password
    );
}

#[tokio::test]
async fn a_worker_without_a_usable_secret_key_does_not_start() {
    let provider = OidcProvider::start(Options::default()).await.unwrap();
    let lab = Lab::new(&template(provider.issuer(), None)).await;
    for (value, expected) in [
        ("", "HUBWRIGHT_SECRET_KEY is not set"),
        (
            "k1:abc",
            "HUBWRIGHT_SECRET_KEY: key #1 must be 64 hex digits (32 bytes)",
        ),
    ] {
        let mut worker = lab.worker_process(BIN, "keyless", &[("HUBWRIGHT_SECRET_KEY", value)]);
        let code = worker.wait_exit(Duration::from_secs(30)).await;
        assert_ne!(code, Some(0));
        let log = worker.log_text();
        assert!(log.contains(expected), "{value:?}: {log}");
        assert!(!log.contains("abc\""), "the key is not echoed");
    }
}

#[tokio::test]
async fn the_keycloak_driver_creates_the_client_by_our_id_once_and_removes_it_on_teardown() {
    let keycloak = hubwright_testkit::keycloak::KeycloakTarget::from_env_or_fake()
        .await
        .unwrap();
    let block = format!(
        "{{ url: \"{}\", realm: {}, admin_client_id: {}, admin_client_secret_env: HUBWRIGHT_TEST_KEYCLOAK_SECRET }}",
        keycloak.base_url, keycloak.realm, keycloak.admin_client_id
    );
    let template = template("unused", None)
        .replace("          issuer: unused\n", &format!("          keycloak: {block}\n"))
        .replace(
            "with: { redirect_uri: \"https://{env.name}.hubs.example.org/hub/oauth_callback\" }",
            &format!("with: {{ redirect_uri: \"https://{{env.name}}.hubs.example.org/hub/oauth_callback\", keycloak: {block} }}"),
        )
        .replace("{ name: idp, kind: idp-client-delete }", &format!("{{ name: idp, kind: idp-client-delete, with: {{ keycloak: {block} }} }}"));
    let lab = Lab::new(&template).await;
    let hubs = |fake: &hubwright_testkit::keycloak::FakeKeycloak| -> Vec<String> {
        fake.client_ids()
            .into_iter()
            .filter(|id| *id != keycloak.admin_client_id)
            .collect()
    };
    let env_var = [(
        "HUBWRIGHT_TEST_KEYCLOAK_SECRET",
        keycloak.admin_client_secret.as_str(),
    )];
    let first = lab.worker_process(BIN, "first", &env_var);
    let requested = lab.request(json!({})).await;
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;

    let client_id = format!("hubwright-{}", requested.id);
    let secret = hub_secret(&lab, &requested.namespace).await;
    assert_eq!(secret["OAUTH_CLIENT_ID"], client_id);
    let idp = output(&steps(&lab, requested.run_id).await, "idp");
    assert_eq!(idp["driver"], "keycloak");
    assert!(
        idp["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/protocol/openid-connect/token")
    );
    assert!(
        !database_text(&lab)
            .await
            .contains(&secret["OAUTH_CLIENT_SECRET"])
    );
    if let Some(fake) = keycloak.fake() {
        assert_eq!(hubs(fake), vec![client_id.clone()]);
        let name = lab.store().environment(requested.id).await.unwrap().name;
        assert_eq!(
            fake.client(&client_id).unwrap()["redirectUris"],
            json!([format!(
                "https://{name}.hubs.example.org/hub/oauth_callback"
            )]),
            "idp-client-update moved it"
        );
    }

    // Provisioning again finds the same client instead of making a second.
    let again = lab.run_again(requested.id, "provision").await;
    wait::run_state(lab.store(), again, RunState::Succeeded, WITHIN).await;
    assert_eq!(
        hub_secret(&lab, &requested.namespace).await["OAUTH_CLIENT_ID"],
        client_id
    );
    if let Some(fake) = keycloak.fake() {
        assert_eq!(hubs(fake).len(), 1);
    }

    let teardown = lab.teardown(requested.id).await;
    wait::run_state(lab.store(), teardown, RunState::Succeeded, WITHIN).await;
    assert_eq!(
        output(&steps(&lab, teardown).await, "idp")["deleted_at_provider"],
        true
    );
    if let Some(fake) = keycloak.fake() {
        assert!(hubs(fake).is_empty());
    }
    first.kill9().await;
}

#[tokio::test]
async fn a_provider_that_is_down_is_retried_until_it_is_back() {
    let mut provider = OidcProvider::start(Options::default()).await.unwrap();
    let patient = template(provider.issuer(), None).replace(
        "retry: { max_attempts: 3, initial_delay: 50ms, max_delay: 200ms }",
        "retry: { max_attempts: 30, initial_delay: 100ms, max_delay: 300ms, jitter: false }",
    );
    let lab = Lab::new(&patient).await;
    provider.stop().await.unwrap();
    let _worker = lab.worker("w1");
    let requested = lab.request(json!({})).await;

    // Failing while the provider is down, and not given up on.
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let steps = steps(&lab, requested.run_id).await;
        if steps[1].attempts >= 3 {
            assert!(
                steps[1]
                    .error
                    .as_ref()
                    .map(|e| e.message.as_str())
                    .unwrap_or_default()
                    .contains("cannot reach the identity provider"),
                "{:?}",
                steps[1].error
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never retried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(
        lab.store().run(requested.run_id).await.unwrap().state,
        RunState::Failed
    );

    provider.restart().await.unwrap();
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;
    let idp = output(&steps(&lab, requested.run_id).await, "idp");
    assert_eq!(
        provider.registered_clients().await.unwrap(),
        vec![idp["client_id"].as_str().unwrap().to_owned()]
    );
}
