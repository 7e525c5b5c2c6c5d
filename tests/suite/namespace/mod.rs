//! The `namespace` and `namespace-delete` steps against a Kubernetes API: the
//! testkit's stand-in, or a real cluster when `KUBECONFIG` is set (`just e2e`).
//! Tests that need the stand-in's fault injection say so and skip on a real
//! cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use hubwright_state::model::{ErrorClass, RunState};
use hubwright_testkit::lab::{self, WITHIN};
use hubwright_testkit::wait;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use uuid::Uuid;

mod expiry_labels;
mod faults;
mod teardown;

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
