//! The `health-check` step: a durable wait for the hub's Deployments (read
//! through the Kubernetes API: the stand-in, or a real cluster with
//! `KUBECONFIG`) and then for `GET {url}/hub/health`, failing at its deadline
//! with what it last saw.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hubwright_state::model::{ErrorClass, RunState};
use hubwright_testkit::lab::{Lab, WITHIN};
use hubwright_testkit::{hub_health, wait};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

fn template(url: &str, deadline: &str) -> String {
    template_with(&format!(
        r#"url: "{url}", deadline: {deadline}, interval: 100ms"#
    ))
}

/// The health step `with:` these parameters.
fn template_with(with: &str) -> String {
    format!(
        r#"
name: hub
namespace: "hwh-{{name}}"
workflows:
  provision:
    steps:
      - {{ name: namespace, kind: namespace }}
      - name: health
        kind: health-check
        with: {{ {with} }}
  teardown:
    steps:
      - {{ name: namespace, kind: namespace-delete }}
"#
    )
}

async fn deployment(lab: &Lab, namespace: &str, name: &str) {
    let api: Api<Deployment> = Api::namespaced(lab.client().await, namespace);
    let body = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "labels": { "app": "jupyterhub", "component": name } },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "component": name } },
            "template": { "metadata": { "labels": { "component": name } },
                          "spec": { "containers": [{ "name": name, "image": "registry.invalid/hub:1" }] } },
        },
    });
    api.create(
        &PostParams::default(),
        &serde_json::from_value(body).unwrap(),
    )
    .await
    .unwrap();
}

/// Marks a Deployment available, as its controller would.
async fn available(lab: &Lab, namespace: &str, name: &str) {
    let api: Api<Deployment> = Api::namespaced(lab.client().await, namespace);
    let status = json!({ "status": {
        "replicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [{ "type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                         "message": "Deployment has minimum availability." }],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_hub_is_ready_once_its_deployments_are_available_and_health_answers() {
    let (url, health) = hub_health::endpoint(503).await;
    let lab = Lab::new(&template(&url, "5m")).await;
    if lab.cluster.is_real() {
        eprintln!("skipped on a real cluster: nothing would make the test Deployments available");
        return;
    }
    let _worker = lab.worker("w1");
    let requested = lab.request(json!({})).await;

    lab.waiting_for(requested.run_id, "deployment hub does not exist")
        .await;
    deployment(&lab, &requested.namespace, "hub").await;
    deployment(&lab, &requested.namespace, "proxy").await;
    lab.waiting_for(requested.run_id, "deployment hub has 0/1 available")
        .await;
    available(&lab, &requested.namespace, "hub").await;
    available(&lab, &requested.namespace, "proxy").await;
    lab.waiting_for(requested.run_id, "/hub/health answered 503: status 503")
        .await;
    health.store(200, Ordering::SeqCst);

    wait::run_state(lab.store(), requested.run_id, RunState::Succeeded, WITHIN).await;
    let steps = lab.store().steps(requested.run_id).await.unwrap();
    assert_eq!(steps[1].attempts, 1, "waiting used no attempts");
    assert!(steps[1].polls >= 3, "it polled: {}", steps[1].polls);
    let environment = lab.store().environment(requested.id).await.unwrap();
    assert_eq!(
        environment.url.as_deref(),
        Some(url.as_str()),
        "the URL is on the environment"
    );
    assert_eq!(environment.phase.to_string(), "ready");
}

#[tokio::test]
async fn a_hub_never_healthy_fails_at_the_deadline_saying_what_it_saw() {
    let (url, health) = hub_health::endpoint(503).await;
    let lab = Lab::new(&template(&url, "1s")).await;
    if lab.cluster.is_real() {
        eprintln!("skipped on a real cluster: nothing would make the test Deployments available");
        return;
    }
    health.store(502, Ordering::SeqCst);
    let requested = lab.request(json!({})).await;
    let _worker = lab.worker("w1");
    // Available Deployments, as soon as the namespace exists.
    let deadline = tokio::time::Instant::now() + WITHIN;
    while Api::<k8s_openapi::api::core::v1::Namespace>::all(lab.client().await)
        .get_opt(&requested.namespace)
        .await
        .unwrap()
        .is_none()
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for name in ["hub", "proxy"] {
        deployment(&lab, &requested.namespace, name).await;
        available(&lab, &requested.namespace, name).await;
    }
    let run = wait::run_state(lab.store(), requested.run_id, RunState::Failed, WITHIN).await;
    let message = run.error.clone().unwrap().message;
    assert!(
        message.starts_with("the hub was not healthy within 1s: GET "),
        "{message}"
    );
    assert!(
        message.ends_with("/hub/health answered 502: status 502"),
        "{message}"
    );
    assert_eq!(
        run.error.as_ref().map(|e| e.class),
        Some(ErrorClass::Permanent)
    );
    assert_eq!(
        lab.store()
            .environment(requested.id)
            .await
            .unwrap()
            .phase
            .to_string(),
        "failed"
    );
}

#[tokio::test]
async fn without_a_url_the_hub_is_looked_for_at_its_ingress_host() {
    let lab = Lab::new(&template_with("deadline: 5m, interval: 100ms")).await;
    if lab.cluster.is_real() {
        eprintln!("skipped on a real cluster: nothing would make the test Deployments available");
        return;
    }
    let _worker = lab.worker("w1");
    let requested = lab.request(json!({})).await;
    let namespace = &requested.namespace;
    lab.waiting_for(requested.run_id, "deployment hub does not exist")
        .await;
    for name in ["hub", "proxy"] {
        deployment(&lab, namespace, name).await;
        available(&lab, namespace, name).await;
    }
    lab.waiting_for(
        requested.run_id,
        "no Ingress host, and service proxy-public has no load balancer address yet",
    )
    .await;

    // `.invalid` never resolves: what the step tried shows in its reason.
    let host = format!("{namespace}.example.invalid");
    let ingresses: Api<Ingress> = Api::namespaced(lab.client().await, namespace);
    let ingress = json!({
        "metadata": { "name": "jupyterhub" },
        "spec": { "rules": [{ "host": host, "http": { "paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": { "service": { "name": "proxy-public", "port": { "name": "http" } } },
        }]}}]},
    });
    ingresses
        .create(
            &PostParams::default(),
            &serde_json::from_value(ingress).unwrap(),
        )
        .await
        .unwrap();
    lab.waiting_for(
        requested.run_id,
        &format!("GET http://{host}/hub/health failed"),
    )
    .await;

    let tls = json!({ "spec": { "tls": [{ "hosts": [host], "secretName": "hub-tls" }] } });
    ingresses
        .patch("jupyterhub", &PatchParams::default(), &Patch::Merge(tls))
        .await
        .unwrap();
    lab.waiting_for(
        requested.run_id,
        &format!("GET https://{host}/hub/health failed"),
    )
    .await;
}
