//! Deleting a namespace: finalizers that hold it, and the deadline.

use hubwright_state::model::RunState;
use hubwright_testkit::lab::WITHIN;
use hubwright_testkit::wait;
use kube::api::DeleteParams;

use super::*;

#[tokio::test]
async fn teardown_waits_while_a_finalizer_holds_the_namespace_and_finishes_when_it_is_released() {
    let lab = Lab::new().await;
    let _worker = lab.worker("w1");
    let (env, namespace, run_id) = lab.request().await;
    wait::run_state(lab.store(), run_id, RunState::Succeeded, WITHIN).await;
    lab.hold(&namespace).await;

    let teardown = lab.teardown(env).await;
    lab.waiting_for(teardown, "terminating").await;
    let ns = lab.namespaces().await.get(&namespace).await.unwrap();
    assert!(ns.metadata.deletion_timestamp.is_some());
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));

    lab.release(&namespace).await;
    wait::run_state(lab.store(), teardown, RunState::Succeeded, WITHIN).await;
    lab.gone(&namespace).await;
    let environment = lab.store().environment(env).await.unwrap();
    assert_eq!(environment.phase.to_string(), "deleted");

    // Tearing down what is already gone is done at once.
    let again = lab.run_again(env, "teardown").await;
    wait::run_state(lab.store(), again, RunState::Succeeded, WITHIN).await;
    let steps = lab.store().steps(again).await.unwrap();
    assert_eq!(steps[0].output.as_ref().unwrap()["deleted"], true);
    assert_eq!(steps[0].polls, 0, "no waiting for what is gone");
}

#[tokio::test]
async fn a_namespace_stuck_past_the_deadline_fails_naming_its_finalizer_and_a_retry_finishes_it() {
    let lab = Lab::with_deadline("2s").await;
    let _worker = lab.worker("w1");
    let (env, namespace, run_id) = lab.request().await;
    wait::run_state(lab.store(), run_id, RunState::Succeeded, WITHIN).await;
    lab.hold(&namespace).await;

    let teardown = lab.teardown(env).await;
    let run = wait::run_state(lab.store(), teardown, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(message.contains("still terminating after 2s"), "{message}");
    assert!(message.contains(HOLD), "names the finalizer: {message}");
    let environment = lab.store().environment(env).await.unwrap();
    assert_eq!(environment.phase.to_string(), "failed");

    lab.release(&namespace).await;
    lab.retry(teardown).await;
    wait::run_state(lab.store(), teardown, RunState::Succeeded, WITHIN).await;
    lab.gone(&namespace).await;
}

#[tokio::test]
async fn provisioning_waits_for_its_own_terminating_namespace_to_go_then_creates_it_afresh() {
    let lab = Lab::new().await;
    let _worker = lab.worker("w1");
    let (env, namespace, run_id) = lab.request().await;
    wait::run_state(lab.store(), run_id, RunState::Succeeded, WITHIN).await;
    let first_uid = lab
        .namespaces()
        .await
        .get(&namespace)
        .await
        .unwrap()
        .metadata
        .uid;

    // An earlier teardown left it terminating; provisioning runs again.
    lab.hold(&namespace).await;
    lab.namespaces()
        .await
        .delete(&namespace, &DeleteParams::background())
        .await
        .unwrap();
    let run_id = lab.run_again(env, "provision").await;
    lab.waiting_for(run_id, "still terminating").await;

    lab.release(&namespace).await;
    wait::run_state(lab.store(), run_id, RunState::Succeeded, WITHIN).await;
    let ns = lab.namespaces().await.get(&namespace).await.unwrap();
    assert_ne!(
        ns.metadata.uid, first_uid,
        "a new namespace, not the half-deleted one"
    );
    assert!(ns.metadata.deletion_timestamp.is_none());
    lab.versions(&namespace).await; // every guard rail is back
}
