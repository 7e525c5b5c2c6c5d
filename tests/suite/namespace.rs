//! The `namespace` and `namespace-delete` steps against a Kubernetes API: the
//! testkit's stand-in, or a real cluster when `KUBECONFIG` is set (`just e2e`).
//! Tests that need the stand-in's fault injection say so and skip on a real
//! cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hubwright_sandbox::apiserver::{Fault, Verb};
use hubwright_state::model::{ErrorClass, RunState, StepState};
use hubwright_testkit::lab::{self, WITHIN};
use hubwright_testkit::{scratch_dir, wait};
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use uuid::Uuid;

use crate::BIN;

/// The finalizer tests hold namespaces in `Terminating` with.
const HOLD: &str = "hubwright.io/test-hold";

const TEMPLATE: &str = r#"
name: hub
namespace: "hwt-{name}"
parameters:
  cpu_limit: { type: string, default: "2" }
  memory_limit: { type: string, default: 4Gi }
  profile: { type: string, default: minimal, enum: [minimal, gpu] }
  cost_centre: { type: string, default: "", max_length: 63 }
workflows:
  provision:
    steps:
      - name: namespace
        kind: namespace
        retry: { max_attempts: 4, initial_delay: 50ms, max_delay: 200ms }
        with:
          quota: { limits.cpu: "{cpu_limit}", limits.memory: "{memory_limit}", requests.storage: 10Gi, pods: "8" }
          container_limits:
            default: { cpu: "1", memory: 1Gi }
            default_request: { cpu: 100m, memory: 256Mi }
            max: { cpu: "{cpu_limit}", memory: "{memory_limit}" }
  teardown:
    steps:
      - name: namespace
        kind: namespace-delete
        with: { deadline: DEADLINE }
"#;

/// The shared lab plus what only these tests need.
struct Lab(lab::Lab);

impl std::ops::Deref for Lab {
    type Target = lab::Lab;
    fn deref(&self) -> &lab::Lab {
        &self.0
    }
}

impl Lab {
    async fn new() -> Self {
        Self::with_deadline("60s").await
    }

    async fn with_deadline(deadline: &str) -> Self {
        Self(lab::Lab::new(&TEMPLATE.replace("DEADLINE", deadline)).await)
    }

    async fn request(&self) -> (Uuid, String, Uuid) {
        let requested = self.0.request(json!({})).await;
        (requested.id, requested.namespace, requested.run_id)
    }

    async fn namespaces(&self) -> Api<Namespace> {
        Api::all(self.client().await)
    }

    async fn hold(&self, namespace: &str) {
        self.namespaces()
            .await
            .patch(
                namespace,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "finalizers": [HOLD] } })),
            )
            .await
            .unwrap();
    }

    async fn release(&self, namespace: &str) {
        self.namespaces()
            .await
            .patch(
                namespace,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
            )
            .await
            .unwrap();
    }

    async fn gone(&self, namespace: &str) {
        let deadline = tokio::time::Instant::now() + WITHIN;
        while self
            .namespaces()
            .await
            .get_opt(namespace)
            .await
            .unwrap()
            .is_some()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{namespace} still there"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The resourceVersion of every object the namespace step writes.
    async fn versions(&self, namespace: &str) -> BTreeMap<String, String> {
        let client = self.client().await;
        let rv = |meta: &kube::api::ObjectMeta| meta.resource_version.clone().unwrap();
        let mut out = BTreeMap::new();
        let ns = Api::<Namespace>::all(client.clone())
            .get(namespace)
            .await
            .unwrap();
        out.insert("namespace".to_owned(), rv(&ns.metadata));
        let quota = Api::<ResourceQuota>::namespaced(client.clone(), namespace)
            .get("hubwright")
            .await
            .unwrap();
        out.insert("quota".to_owned(), rv(&quota.metadata));
        let limits = Api::<LimitRange>::namespaced(client.clone(), namespace)
            .get("hubwright")
            .await
            .unwrap();
        out.insert("limits".to_owned(), rv(&limits.metadata));
        for name in ["hubwright-default-deny-ingress", "hubwright-allow-proxy"] {
            let policy = Api::<NetworkPolicy>::namespaced(client.clone(), namespace)
                .get(name)
                .await
                .unwrap();
            out.insert(name.to_owned(), rv(&policy.metadata));
        }
        out
    }
}

fn quantity(
    map: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    key: &str,
) -> String {
    map.as_ref().unwrap()[key].0.clone()
}

#[tokio::test]
async fn provisioning_creates_the_namespace_with_its_guard_rails_and_applying_again_changes_nothing()
 {
    let lab = Lab::new().await;
    let _worker = lab.worker("w1");
    let (env, namespace, run_id) = lab.request().await;
    wait::run_state(lab.store(), run_id, RunState::Succeeded, WITHIN).await;

    let ns = lab.namespaces().await.get(&namespace).await.unwrap();
    let labels = ns.metadata.labels.clone().unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "hubwright");
    assert_eq!(labels["hubwright.io/environment"], env.to_string());
    assert_eq!(labels["hubwright.io/owner"], "alice_example.com");
    assert_eq!(labels["hubwright.io/template"], "hub");
    let annotations = ns.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["hubwright.io/owner"], "alice@example.com");
    assert_eq!(annotations["hubwright.io/request-id"], run_id.to_string());

    let client = lab.client().await;
    let quota = Api::<ResourceQuota>::namespaced(client.clone(), &namespace)
        .get("hubwright")
        .await
        .unwrap();
    let hard = quota.spec.unwrap().hard;
    assert_eq!(
        quantity(&hard, "limits.cpu"),
        "2",
        "filled from the parameter default"
    );
    assert_eq!(quantity(&hard, "limits.memory"), "4Gi");
    assert_eq!(quantity(&hard, "requests.storage"), "10Gi");
    assert_eq!(quantity(&hard, "pods"), "8");
    let limits = Api::<LimitRange>::namespaced(client.clone(), &namespace)
        .get("hubwright")
        .await
        .unwrap();
    let item = &limits.spec.unwrap().limits[0];
    assert_eq!(item.type_, "Container");
    assert_eq!(quantity(&item.default, "memory"), "1Gi");
    assert_eq!(quantity(&item.default_request, "cpu"), "100m");
    assert_eq!(quantity(&item.max, "memory"), "4Gi");

    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), &namespace);
    let deny = policies
        .get("hubwright-default-deny-ingress")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(
        deny.pod_selector.unwrap_or_default(),
        Default::default(),
        "every pod"
    );
    assert_eq!(deny.policy_types, Some(vec!["Ingress".to_owned()]));
    assert!(
        deny.ingress.unwrap_or_default().is_empty(),
        "admits nothing"
    );
    let admit = policies
        .get("hubwright-allow-proxy")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(
        admit.pod_selector.unwrap().match_labels.unwrap(),
        BTreeMap::from([
            ("app".to_owned(), "jupyterhub".to_owned()),
            ("component".to_owned(), "proxy".to_owned())
        ])
    );
    let ports = admit.ingress.unwrap()[0].ports.clone().unwrap();
    assert_eq!(
        ports[0].port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8000))
    );

    let steps = lab.store().steps(run_id).await.unwrap();
    assert_eq!(
        steps[0].output.as_ref().unwrap()["namespace"],
        namespace.as_str()
    );
    assert_eq!(
        steps[0].output.as_ref().unwrap()["uid"],
        ns.metadata.uid.clone().unwrap().as_str()
    );

    // The same step again: nothing changes.
    let before = lab.versions(&namespace).await;
    let again = lab.run_again(env, "provision").await;
    wait::run_state(lab.store(), again, RunState::Succeeded, WITHIN).await;
    assert_eq!(lab.versions(&namespace).await, before);

    let teardown = lab.teardown(env).await;
    wait::run_state(lab.store(), teardown, RunState::Succeeded, WITHIN).await;
    lab.gone(&namespace).await;
}

#[tokio::test]
async fn namespaces_carry_owner_template_profile_cost_centre_and_expiry_labels_for_cost_tools() {
    let lab = Lab::new().await;
    let _worker = lab.worker("w1");
    let requested = lab
        .0
        .request(json!({"profile": "gpu", "cost_centre": "Research & Dev/42"}))
        .await;
    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;
    let env = lab.store().environment(requested.id).await.unwrap();

    let ns = lab
        .namespaces()
        .await
        .get(&requested.namespace)
        .await
        .unwrap();
    let labels = ns.metadata.labels.clone().unwrap();
    assert_eq!(labels["hubwright.io/environment"], requested.id.to_string());
    assert_eq!(labels["hubwright.io/owner"], "alice_example.com");
    assert_eq!(labels["hubwright.io/template"], "hub");
    assert_eq!(labels["hubwright.io/profile"], "gpu");
    assert_eq!(
        labels["hubwright.io/cost-centre"], "Research___Dev_42",
        "sanitised to what a label value may hold"
    );
    assert_eq!(
        labels["hubwright.io/expires-at"],
        env.expires_at.format("%Y-%m-%dT%H-%M-%SZ").to_string()
    );
    // The objects in it carry them too, so a cost tool may group by either.
    let quota = Api::<ResourceQuota>::namespaced(lab.client().await, &requested.namespace)
        .get("hubwright")
        .await
        .unwrap();
    assert_eq!(
        quota.metadata.labels.unwrap()["hubwright.io/cost-centre"],
        "Research___Dev_42"
    );

    // Without a cost centre there is no such label (not an empty one).
    let plain = lab.0.request(json!({})).await;
    wait::run_state(lab.store(), plain.run_id, RunState::Succeeded, WITHIN).await;
    let ns = lab.namespaces().await.get(&plain.namespace).await.unwrap();
    let labels = ns.metadata.labels.unwrap();
    assert_eq!(labels["hubwright.io/profile"], "minimal");
    assert!(
        !labels.contains_key("hubwright.io/cost-centre"),
        "{labels:?}"
    );

    for id in [requested.id, plain.id] {
        let teardown = lab.teardown(id).await;
        wait::run_state(lab.store(), teardown, RunState::Succeeded, WITHIN).await;
    }
}

#[tokio::test]
async fn a_namespace_that_is_not_ours_is_refused_and_left_untouched() {
    let lab = Lab::new().await;
    let namespaces = lab.namespaces().await;
    // No worker yet: someone else's namespace, without hubwright's labels,
    // exists before provisioning starts.
    let (_, namespace, run_id) = lab.request().await;
    let made = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({ "metadata": { "name": namespace, "labels": { "team": "data" } } }),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let _worker = lab.worker("w1");
    let run = wait::run_state(lab.store(), run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(message.contains("not managed by hubwright"), "{message}");
    assert!(message.contains("never adopts"), "{message}");
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Permanent)
    );
    let after = namespaces.get(&namespace).await.unwrap();
    assert_eq!(
        after.metadata.resource_version, made.metadata.resource_version,
        "untouched"
    );
    assert_eq!(
        after
            .metadata
            .labels
            .unwrap()
            .get("app.kubernetes.io/managed-by"),
        None
    );
    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn another_environments_namespace_is_refused_by_name() {
    let lab = Lab::new().await;
    let namespaces = lab.namespaces().await;
    // No worker yet: the namespace exists before provisioning starts.
    let (_, namespace, run_id) = lab.request().await;
    let other = Uuid::now_v7();
    let made = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": namespace, "labels": {
                "app.kubernetes.io/managed-by": "hubwright",
                "hubwright.io/environment": other.to_string(),
            } } }))
            .unwrap(),
        )
        .await
        .unwrap();
    let _worker = lab.worker("w1");
    let run = wait::run_state(lab.store(), run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message.contains(&format!("belongs to hubwright environment {other}")),
        "{message}"
    );
    let steps = lab.store().steps(run_id).await.unwrap();
    assert_eq!(steps[0].attempts, 1, "permanent: not retried");
    let after = namespaces.get(&namespace).await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        made.metadata.resource_version
    );
    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .unwrap();
}

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
