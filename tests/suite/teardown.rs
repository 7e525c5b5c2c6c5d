//! Teardown after any partial provisioning, by the real worker: a teardown
//! step whose provisioning counterpart never called out is done without
//! calling out itself (no helm, cluster or provider needed), and every
//! teardown step takes what is already gone as done
//! (docs/decisions/0010-teardown-of-partial-provisioning.md).

use std::path::Path;

use hubwright_state::Store;
use hubwright_state::model::{EnvironmentPhase, Role, RunState, Step};
use hubwright_testkit::lab::{Lab, WITHIN};
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{TestDatabase, scratch_dir, wait};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::DeleteParams;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::BIN;

/// What a teardown step says when there was nothing to remove.
fn skipped() -> Value {
    json!({ "skipped": "never created" })
}

/// The environment a worker process sees with no helm anywhere: an empty
/// directory as its `PATH` and an empty `HELM_BIN`.
fn without_helm() -> Vec<(&'static str, String)> {
    let empty = scratch_dir("no-helm").display().to_string();
    vec![("PATH", empty), ("HELM_BIN", String::new())]
}

async fn until_phase(store: &Store, env: Uuid, phase: EnvironmentPhase) {
    wait::until(&format!("environment {env} {phase}"), WITHIN, || async {
        store.environment(env).await.unwrap().phase == phase
    })
    .await;
}

/// The environment's runs of `workflow`, oldest first.
async fn runs(store: &Store, env: Uuid, workflow: &str) -> Vec<Uuid> {
    sqlx::query_scalar::<_, Uuid>(
        "SELECT id FROM runs WHERE environment_id = $1 AND workflow_of(definition_id) = $2 ORDER BY created_at, id",
    )
    .bind(env)
    .bind(workflow)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

fn outputs(steps: &[Step]) -> Vec<(String, Value)> {
    steps
        .iter()
        .map(|step| (step.name.clone(), step.output.clone().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn a_jupyterhub_whose_cluster_cannot_be_used_fails_at_its_first_step_and_is_deleted_without_helm()
 {
    let db = TestDatabase::create().await;
    let home = scratch_dir("no-cluster-home");
    let kubeconfig = home.join("no-such-kubeconfig").display().to_string();
    let home = home.display().to_string();
    let mut env = without_helm();
    env.extend([("HOME", home), ("KUBECONFIG", kubeconfig)]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let workflows = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
    let server = ApiServer::start_process_with_env(BIN, &db, &workflows, &["--worker"], &env).await;
    let alice = token(&db.store, "alice", Role::Developer).await;

    let created = server
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({ "name": "lab", "template": "jupyterhub" }))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:#}", created.body);
    let id: Uuid = created.body["environment"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    until_phase(&db.store, id, EnvironmentPhase::Failed).await;
    let provision = runs(&db.store, id, "provision").await[0];
    let failed = db.store.run(provision).await.unwrap();
    assert_eq!(failed.current_step, 0, "it failed at its first step");
    let error = failed.error.map(|error| error.message).unwrap_or_default();
    assert!(error.contains("cluster `default`"), "{error}");

    let deleted = server
        .delete(&format!("/v1/environments/{id}"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{:#}", deleted.body);
    until_phase(&db.store, id, EnvironmentPhase::Deleted).await;
    let teardown = runs(&db.store, id, "teardown").await[0];
    assert_eq!(
        db.store.run(teardown).await.unwrap().state,
        RunState::Succeeded
    );
    assert_eq!(
        outputs(&db.store.steps(teardown).await.unwrap()),
        [
            ("helm".to_owned(), skipped()),
            ("idp".to_owned(), skipped()),
            ("namespace".to_owned(), skipped()),
        ]
    );
}

/// Namespace and a local admin password, then a hold that the teardown
/// request interrupts before the release would be installed.
const HELD_BEFORE_HELM: &str = r#"
name: hub
namespace: "hwd-{name}"
workflows:
  provision:
    steps:
      - { name: namespace, kind: namespace }
      - { name: idp, kind: idp-client, with: { mode: local } }
      - { name: hold, kind: test-block, with: { duration: 5m } }
      - { name: helm, kind: helm-release, with: { chart: chart, values: values.yaml.j2 } }
  teardown:
    steps:
      - { name: helm, kind: helm-uninstall }
      - { name: idp, kind: idp-client-delete }
      - { name: namespace, kind: namespace-delete }
"#;

#[tokio::test]
async fn provisioning_cancelled_before_its_helm_step_is_torn_down_without_helm() {
    let lab = Lab::new(HELD_BEFORE_HELM).await;
    let env = without_helm();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _worker = lab.worker_process(BIN, "worker", &env);
    let requested = lab.request(json!({})).await;
    wait::until("the hold step running", WITHIN, || async {
        lab.store()
            .run(requested.run_id)
            .await
            .unwrap()
            .current_step
            == 2
    })
    .await;
    let namespaces: Api<Namespace> = Api::all(lab.client().await);
    assert!(
        namespaces
            .get_opt(&requested.namespace)
            .await
            .unwrap()
            .is_some()
    );

    let teardown = lab.teardown(requested.id).await;
    assert_eq!(
        lab.store().run(requested.run_id).await.unwrap().state,
        RunState::Cancelled
    );
    wait::run_state(lab.store(), teardown, RunState::Succeeded, WITHIN).await;
    let steps = outputs(&lab.store().steps(teardown).await.unwrap());
    assert_eq!(steps[0], ("helm".to_owned(), skipped()));
    assert_eq!(
        steps[1].1["deleted_at_provider"], false,
        "mode local registered nothing at a provider: {steps:?}"
    );
    assert_eq!(steps[2].1["deleted"], true, "{steps:?}");
    assert!(
        namespaces
            .get_opt(&requested.namespace)
            .await
            .unwrap()
            .is_none(),
        "the namespace provisioning made is gone"
    );
    until_phase(lab.store(), requested.id, EnvironmentPhase::Deleted).await;
}

const PROVISIONED: &str = r#"
name: hub
namespace: "hwg-{name}"
workflows:
  provision:
    steps:
      - { name: namespace, kind: namespace }
      - { name: idp, kind: idp-client, with: { mode: local } }
  teardown:
    steps:
      - { name: idp, kind: idp-client-delete }
      - { name: namespace, kind: namespace-delete }
"#;

#[tokio::test]
async fn a_teardown_whose_namespace_is_already_gone_succeeds_and_so_does_a_second_one() {
    let lab = Lab::new(PROVISIONED).await;
    let _worker = lab.worker("w");
    let requested = lab.request(json!({})).await;
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;
    let namespaces: Api<Namespace> = Api::all(lab.client().await);
    namespaces
        .delete(&requested.namespace, &DeleteParams::background())
        .await
        .unwrap();
    wait::until("the namespace gone", WITHIN, || async {
        namespaces
            .get_opt(&requested.namespace)
            .await
            .unwrap()
            .is_none()
    })
    .await;

    let teardown = lab.teardown(requested.id).await;
    wait::run_state(lab.store(), teardown, RunState::Succeeded, WITHIN).await;
    let steps = outputs(&lab.store().steps(teardown).await.unwrap());
    assert_eq!(
        steps[1],
        (
            "namespace".to_owned(),
            json!({ "cluster": "default", "namespace": requested.namespace, "deleted": true })
        ),
        "the step called out (provisioning had) and found nothing: {steps:?}"
    );
    until_phase(lab.store(), requested.id, EnvironmentPhase::Deleted).await;

    let again = lab.run_again(requested.id, "teardown").await;
    wait::run_state(lab.store(), again, RunState::Succeeded, WITHIN).await;
    assert_eq!(
        outputs(&lab.store().steps(again).await.unwrap()),
        steps,
        "everything is already gone the second time"
    );
}
