//! The identity provider slower than the step's timeout, and answering 500
//! for good. (Down for a while, down for good and a 503 that passes:
//! `idp::faults`.)

use std::time::Duration;

use hubwright_sandbox::oidc::{OidcProvider, Options};
use hubwright_state::model::{EnvironmentPhase, ErrorClass, RunState};
use hubwright_testkit::lab::Lab;
use serde_json::json;

use super::{retries, settles};

/// The `idp` suite's template, its registration step given two seconds.
fn template(issuer: &str) -> String {
    let template = crate::idp::template(issuer, None);
    let timed = template.replace(
        "        kind: idp-client\n",
        "        kind: idp-client\n        timeout: 2s\n",
    );
    assert_ne!(timed, template, "the template has an idp-client step");
    timed
}

#[tokio::test]
async fn a_provider_slower_than_the_step_timeout_is_tried_again_and_the_environment_becomes_ready()
{
    let provider = OidcProvider::start(Options::default()).await.unwrap();
    let lab = Lab::new(&template(provider.issuer())).await;
    // Discovery comes before the registration's intent is recorded, so an
    // attempt abandoned there leaves nothing behind at the provider.
    provider
        .hang_next("/.well-known", Duration::from_secs(5), 1)
        .await
        .unwrap();
    let requested = lab.request(json!({})).await;
    let _worker = lab.worker("w1");

    settles(
        lab.store(),
        requested.id,
        requested.run_id,
        RunState::Succeeded,
        EnvironmentPhase::Ready,
    )
    .await;
    let retried = retries(lab.store(), requested.run_id).await;
    assert_eq!(retried.len(), 1, "{retried:#?}");
    assert!(
        retried[0].message.contains("step idp timed out after 2s"),
        "{}",
        retried[0].message
    );
    assert_eq!(
        provider.registered_clients().await.unwrap().len(),
        1,
        "one client"
    );
}

#[tokio::test]
async fn a_provider_answering_500_for_good_fails_the_environment_with_its_answer() {
    let provider = OidcProvider::start(Options::default()).await.unwrap();
    let lab = Lab::new(&template(provider.issuer())).await;
    provider
        .fail_next(
            "/reg",
            500,
            json!({"error": "server_error", "error_description": "database unavailable"}),
            100,
        )
        .await
        .unwrap();
    let requested = lab.request(json!({})).await;
    let _worker = lab.worker("w1");

    settles(
        lab.store(),
        requested.id,
        requested.run_id,
        RunState::Failed,
        EnvironmentPhase::Failed,
    )
    .await;
    let run = lab.store().run(requested.run_id).await.unwrap();
    let error = run.error.unwrap();
    assert!(
        error
            .message
            .contains("answered 500 to register a client: server_error: database unavailable"),
        "{}",
        error.message
    );
    assert_eq!(error.class, ErrorClass::Retryable, "retries ran out");
    let steps = lab.store().steps(requested.run_id).await.unwrap();
    assert_eq!(steps[1].attempts, 3);
}
