//! The JupyterHub workflow end to end through real processes: `hubwright serve
//! --api` and `--worker`, the real `oidc-provider`, the real `helm`, and the
//! Kubernetes stand-in (or a real cluster with `KUBECONFIG`). The template is
//! `workflows/jupyterhub.yaml` itself, with three lines pointed at this
//! machine: the provider, the testkit's chart shaped like zero-to-jupyterhub,
//! and a hub health endpoint the test serves (the stand-in runs no pods).

use std::path::Path;
use std::time::Duration;

use hubwright_sandbox::helm::{HelmVersion, chart_dir, helm_binary, isolated_env};
use hubwright_sandbox::oidc::{OidcProvider, Options};
use hubwright_state::model::Role;
use hubwright_testkit::lab::{Lab, WITHIN};
use hubwright_testkit::server::{ApiServer, StatusCode, token};
use hubwright_testkit::{hub_health, scratch_dir};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::BIN;

/// `workflows/jupyterhub.yaml` as the template `hub`, pointed at this machine.
fn template(issuer: &str, chart: &Path, health_url: &str) -> String {
    let real = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows/jupyterhub.yaml"),
    )
    .unwrap();
    let replace = |text: String, from: &str, to: &str| {
        assert!(
            text.contains(from),
            "workflows/jupyterhub.yaml no longer has {from:?}"
        );
        text.replace(from, to)
    };
    let text = replace(real, "name: jupyterhub\n", "name: hub\n");
    let text = replace(text, "https://sso.example.org/realms/hubs", issuer);
    let text = replace(
        text,
        "          initial_access_token_env: HUBWRIGHT_IDP_INITIAL_ACCESS_TOKEN\n",
        "",
    );
    let text = replace(
        text,
        "          chart: jupyterhub\n          repository: https://hub.jupyter.org/helm-chart/\n          version: 4.2.0\n",
        &format!("          chart: {}\n", chart.display()),
    );
    replace(
        text,
        "        with:\n          deadline: 15m\n",
        &format!(
            "        with:\n          url: {health_url}\n          deadline: 2m\n          interval: 200ms\n"
        ),
    )
}

/// Plays the Deployment controller for the hub and proxy, once helm made them.
async fn make_available(lab: &Lab, namespace: &str) {
    let api: Api<Deployment> = Api::namespaced(lab.client().await, namespace);
    let status = json!({ "status": {
        "replicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [{ "type": "Available", "status": "True" }],
    }});
    for name in ["hub", "proxy"] {
        let deadline = tokio::time::Instant::now() + WITHIN;
        while api.get_opt(name).await.unwrap().is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "helm never made {name}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }
}

/// The namespace whose name starts with `prefix`, once it exists.
async fn namespace_named(lab: &Lab, prefix: &str) -> String {
    let namespaces: Api<Namespace> = Api::all(lab.client().await);
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let found = namespaces
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|ns| ns.metadata.name)
            .find(|name| name.starts_with(prefix));
        if let Some(name) = found {
            return name;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no namespace {prefix}*"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn phase(api: &ApiServer, token: &str, id: &str) -> Value {
    api.get(&format!("/v1/environments/{id}"))
        .token(token)
        .send()
        .await
        .body
}

#[tokio::test]
async fn a_request_becomes_a_ready_hub_with_sign_on_and_a_delete_removes_every_trace() {
    let provider = OidcProvider::start(Options::default()).await.unwrap();
    let (health, _) = hub_health::endpoint(200).await;
    let lab = Lab::new(&template(provider.issuer(), &chart_dir(), &health)).await;
    if lab.cluster.is_real() {
        eprintln!(
            "skipped on a real cluster: its hub would need the real chart and a reachable URL"
        );
        return;
    }
    std::fs::create_dir_all(lab.workflows.join("jupyterhub")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows/jupyterhub/values.yaml.j2"),
        lab.workflows.join("jupyterhub/values.yaml.j2"),
    )
    .unwrap();
    let helm = helm_binary(HelmVersion::V3)
        .await
        .unwrap()
        .display()
        .to_string();
    let home = scratch_dir("e2e-helm");
    let mut env: Vec<(String, String)> = isolated_env(&home)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.display().to_string()))
        .collect();
    env.push(("HELM_BIN".to_owned(), helm));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let _worker = lab.worker_process(BIN, "worker", &env);
    let clusters = lab.clusters_file.display().to_string();
    let api =
        ApiServer::start_process(BIN, &lab.db, &lab.workflows, &["--clusters", &clusters]).await;
    let alice = token(lab.store(), "alice", Role::Developer).await;

    let accepted = api
        .post("/v1/environments")
        .token(&alice)
        .json(&json!({ "name": "lab", "template": "hub", "ttl": "2h" }))
        .send()
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    let id = accepted.body["environment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let namespace = accepted.body["environment"]["namespace"]
        .as_str()
        .unwrap()
        .to_owned();
    make_available(&lab, &namespace).await;

    let deadline = tokio::time::Instant::now() + WITHIN;
    let ready = loop {
        let shown = phase(&api, &alice, &id).await;
        match shown["phase"].as_str() {
            Some("ready") => break shown,
            Some("failed") => panic!("provisioning failed: {shown:#}"),
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready: {shown:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready["url"], health.as_str());
    let steps: Vec<&str> = ready["current_run"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "namespace",
            "idp",
            "approval",
            "helm",
            "health",
            "idp-callback"
        ]
    );
    let clients = provider.registered_clients().await.unwrap();
    assert_eq!(clients.len(), 1, "one OAuth client");
    let step = |name: &str| {
        ready["current_run"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["output"]
            .clone()
    };
    assert_eq!(step("idp")["client_id"], clients[0].as_str());
    assert_eq!(step("helm")["status"], "deployed");
    assert_eq!(
        step("idp-callback")["redirect_uri"],
        format!("{health}/hub/oauth_callback")
    );

    let deleted = api
        .delete(&format!("/v1/environments/{id}"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let shown = phase(&api, &alice, &id).await;
        if shown["phase"] == "deleted" {
            break;
        }
        assert_ne!(shown["phase"], "failed", "{shown:#}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "never deleted: {shown:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        provider.registered_clients().await.unwrap().is_empty(),
        "the IdP client is gone"
    );
    let namespaces: Api<Namespace> = Api::all(lab.client().await);
    assert!(
        namespaces.get_opt(&namespace).await.unwrap().is_none(),
        "the namespace is gone"
    );

    // The CLI asks for a second one and follows every step to the end.
    let cli = tokio::spawn({
        let url = api.url.clone();
        let alice = alice.clone();
        async move {
            tokio::process::Command::new(BIN)
                .args(["env", "create", "lab-2", "--template", "hub", "--ttl", "2h"])
                .arg("--wait")
                .env("HUBWRIGHT_URL", url)
                .env("HUBWRIGHT_TOKEN", alice)
                .output()
                .await
                .unwrap()
        }
    });
    make_available(&lab, &namespace_named(&lab, "jh-lab-2-").await).await;
    let created = tokio::time::timeout(WITHIN, cli).await.unwrap().unwrap();
    let progress = String::from_utf8_lossy(&created.stderr);
    assert!(created.status.success(), "{progress}");
    assert_eq!(
        String::from_utf8_lossy(&created.stdout).trim(),
        format!("lab-2 is ready at {health}")
    );
    for (n, step) in [
        "namespace",
        "idp",
        "approval",
        "helm",
        "health",
        "idp-callback",
    ]
    .iter()
    .enumerate()
    {
        let line = format!("step {}/6 {step}", n + 1);
        assert!(progress.contains(&line), "shows `{line}`:\n{progress}");
        let done = format!("step {step} succeeded");
        assert!(progress.contains(&done), "shows `{done}`:\n{progress}");
    }
}
