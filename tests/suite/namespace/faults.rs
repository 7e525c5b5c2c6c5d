//! Faults: transient API errors, forbidden verbs, a killed worker, an
//! unreachable cluster and refused credentials.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hubwright_sandbox::apiserver::{Fault, Verb};
use hubwright_state::model::{ErrorClass, RunState, StepState};
use hubwright_testkit::lab::WITHIN;
use hubwright_testkit::{scratch_dir, wait};
use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;

use crate::BIN;

use super::*;

#[tokio::test]
async fn transient_faults_are_retried_and_a_forbidden_verb_is_permanent() {
    let lab = Lab::new().await;
    let Some(standin) = lab.cluster.standin() else {
        eprintln!("skipped on a real cluster: needs the stand-in's fault injection");
        return;
    };
    let _worker = lab.worker("w1");

    // Two 503s and a dropped connection: retried with backoff, then done.
    standin.inject(
        Fault::status(503)
            .on_verb(Verb::Create)
            .on_resource("namespaces")
            .times(2),
    );
    standin.inject(
        Fault::drop_connection()
            .on_resource("networkpolicies")
            .times(1),
    );
    let (_, namespace, run_id) = lab.request().await;
    wait::run_state(lab.store(), run_id, RunState::Succeeded, WITHIN).await;
    let steps = lab.store().steps(run_id).await.unwrap();
    assert!(
        steps[0].attempts >= 3,
        "retried: {} attempts",
        steps[0].attempts
    );
    assert_eq!(steps[0].state, StepState::Succeeded);
    lab.versions(&namespace).await;

    // RBAC refuses: permanent at once, naming cluster, verb and resource.
    standin.inject(
        Fault::forbidden("system:serviceaccount:hubwright:worker")
            .on_verb(Verb::Create)
            .on_resource("namespaces"),
    );
    let (_, _, run_id) = lab.request().await;
    let run = wait::run_state(lab.store(), run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message.contains("cluster `default` forbids hubwright to create namespaces"),
        "{message}"
    );
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Permanent)
    );
    assert_eq!(lab.store().steps(run_id).await.unwrap()[0].attempts, 1);
}

#[tokio::test]
async fn a_worker_killed_mid_step_is_resumed_by_another_without_duplicates() {
    let lab = Lab::new().await;
    let Some(standin) = lab.cluster.standin() else {
        eprintln!("skipped on a real cluster: needs the stand-in's fault injection");
        return;
    };
    // The last write of the step hangs, so the worker is killed after the
    // namespace and its quota were created and before the outcome is committed.
    standin.inject(
        Fault::latency(Duration::from_secs(30))
            .on_resource("networkpolicies")
            .on_name("hubwright-allow-proxy")
            .times(1),
    );
    let (env, namespace, run_id) = lab.request().await;
    let first = lab.worker_process(BIN, "first", &[]);
    let deadline = tokio::time::Instant::now() + WITHIN;
    while !standin
        .requests()
        .iter()
        .any(|r| r.name.as_deref() == Some("hubwright-allow-proxy"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the step never got that far"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill9().await;
    let steps = lab.store().steps(run_id).await.unwrap();
    assert_eq!(steps[0].state, StepState::Running, "outcome not committed");

    let _second = lab.worker_process(BIN, "second", &[]);
    wait::run_state(lab.store(), run_id, RunState::Succeeded, WITHIN).await;

    let client = lab.client().await;
    let selector = format!("hubwright.io/environment={env}");
    let owned = Api::<Namespace>::all(client.clone())
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .unwrap();
    assert_eq!(owned.items.len(), 1, "one namespace for the environment");
    let quotas = Api::<ResourceQuota>::namespaced(client.clone(), &namespace)
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(quotas.items.len(), 1);
    let policies = Api::<NetworkPolicy>::namespaced(client, &namespace)
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(policies.items.len(), 2);
    let creates = standin
        .requests()
        .iter()
        .filter(|r| r.verb == Some(Verb::Create) && r.resource.as_deref() == Some("namespaces"))
        .count();
    assert_eq!(
        creates, 2,
        "the second worker tried to create, found it ours, went on"
    );
    assert_eq!(lab.store().steps(run_id).await.unwrap()[0].attempts, 2);
}

/// A kubeconfig for `server` with `token`.
fn kubeconfig(dir: &Path, server: &str, token: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{server}\"}}}}]\n\
             users: [{{name: u, user: {{token: {token}}}}}]\n\
             contexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn an_unreachable_cluster_is_retried_and_refused_credentials_are_permanent() {
    let lab = Lab::new().await;
    let Some(standin) = lab.cluster.standin() else {
        eprintln!("skipped on a real cluster: needs a second, broken, kubeconfig");
        return;
    };
    let point_at = |server: &str, token: &str| {
        let dir = scratch_dir("broken-cluster");
        let path = kubeconfig(&dir, server, token);
        std::fs::write(
            &lab.clusters_file,
            format!(
                "clusters:\n  default:\n    kubeconfig: {}\n",
                path.display()
            ),
        )
        .unwrap();
    };

    // Nothing listens there: transient, retried until the policy gives up.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    point_at(&dead, standin.token());
    let worker = lab.worker("w1");
    let (_, _, run_id) = lab.request().await;
    let run = wait::run_state(lab.store(), run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message.contains("cannot reach cluster `default`"),
        "{message}"
    );
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Retryable)
    );
    assert_eq!(
        lab.store().steps(run_id).await.unwrap()[0].attempts,
        4,
        "max_attempts"
    );
    worker.shutdown().await.unwrap();

    // The right server, the wrong token: 401 is permanent at once.
    point_at(standin.url(), "not-the-token");
    let _worker = lab.worker("w2");
    let (_, _, run_id) = lab.request().await;
    let run = wait::run_state(lab.store(), run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message.contains(
            "cluster `default` did not accept hubwright's credentials to create namespaces"
        ),
        "{message}"
    );
    assert_eq!(lab.store().steps(run_id).await.unwrap()[0].attempts, 1);
}
