//! Playing the kubelet for a hub-shaped release in the Kubernetes stand-in,
//! which runs no pods: read what Helm wrote (the `hub` ConfigMap's
//! `hub.config.yaml` and the OAuth Secret the `hub.extraEnv` refers to),
//! start the real [`JupyterHub`] from it on this machine, and mark the hub
//! and proxy Deployments available so the health-check step can pass.
//!
//! The sandbox demo (`hubwright demo --sandbox`) uses it; a test can too.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::apiserver::TestCluster;
use crate::jupyterhub::{JupyterHub, Options};

/// What the hub pod would be started with: the rendered `hub.config` and
/// the environment its `hub.extraEnv` takes from the OAuth Secret.
#[derive(Debug, Clone)]
pub struct HubPod {
    /// The `hub.config` mapping, as JSON.
    pub config: Value,
    /// Every key of the OAuth Secret as an environment variable (the
    /// template's `extraEnv` uses the keys' own names).
    pub env: Vec<(String, String)>,
}

fn other(context: &str, err: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{context}: {err}"))
}

async fn client(cluster: &TestCluster) -> std::io::Result<kube::Client> {
    cluster
        .client()
        .await
        .map_err(|err| other("a Kubernetes client", err))
}

/// Waits until the Deployment `name` exists in `namespace`.
pub async fn wait_for_deployment(
    cluster: &TestCluster,
    namespace: &str,
    name: &str,
    within: Duration,
) -> std::io::Result<()> {
    let api: Api<Deployment> = Api::namespaced(client(cluster).await?, namespace);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let found = api
            .get_opt(name)
            .await
            .map_err(|err| other(&format!("reading Deployment {namespace}/{name}"), err))?;
        if found.is_some() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(other(
                &format!("Deployment {namespace}/{name}"),
                format!("not created within {within:?}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads the hub's configuration from the `hub` ConfigMap and the
/// credentials from `secret`, as the hub pod would mount them.
pub async fn hub_pod(
    cluster: &TestCluster,
    namespace: &str,
    secret: &str,
) -> std::io::Result<HubPod> {
    let client = client(cluster).await?;
    let config_map = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get("hub")
        .await
        .map_err(|err| other(&format!("reading ConfigMap {namespace}/hub"), err))?;
    let yaml = config_map
        .data
        .as_ref()
        .and_then(|data| data.get("hub.config.yaml"))
        .ok_or_else(|| other("ConfigMap hub", "no hub.config.yaml"))?;
    let config: Value =
        serde_yaml_ng::from_str(yaml).map_err(|err| other("hub.config.yaml", err))?;
    let secret_object = Api::<Secret>::namespaced(client, namespace)
        .get(secret)
        .await
        .map_err(|err| other(&format!("reading Secret {namespace}/{secret}"), err))?;
    let mut env = Vec::new();
    for (key, value) in secret_object.data.unwrap_or_default() {
        let value = String::from_utf8(value.0)
            .map_err(|err| other(&format!("Secret {secret} key {key}"), err))?;
        env.push((key, value));
    }
    for (key, value) in secret_object.string_data.unwrap_or_default() {
        env.push((key, value));
    }
    Ok(HubPod { config, env })
}

/// Starts the real JupyterHub for `pod` with `options` (its port, and any
/// `extraConfig` snippets of the caller's own).
pub async fn start_hub(pod: &HubPod, options: Options) -> std::io::Result<JupyterHub> {
    let env: Vec<(&str, &str)> = pod
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    JupyterHub::start_with(&pod.config, &env, options).await
}

/// Marks the Deployments `names` in `namespace` available, as the
/// Deployment controller would once their pods are ready.
pub async fn mark_available(
    cluster: &TestCluster,
    namespace: &str,
    names: &[&str],
) -> std::io::Result<()> {
    let api: Api<Deployment> = Api::namespaced(client(cluster).await?, namespace);
    let status = json!({ "status": {
        "replicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [{ "type": "Available", "status": "True" }],
    }});
    for name in names {
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .map_err(|err| other(&format!("marking {namespace}/{name} available"), err))?;
    }
    Ok(())
}

/// Whether the Deployment `name` still exists (helm uninstall removes it).
pub async fn deployment_exists(
    cluster: &TestCluster,
    namespace: &str,
    name: &str,
) -> std::io::Result<bool> {
    let api: Api<Deployment> = Api::namespaced(client(cluster).await?, namespace);
    Ok(api
        .get_opt(name)
        .await
        .map_err(|err| other(&format!("reading Deployment {namespace}/{name}"), err))?
        .is_some())
}

/// Whether JupyterHub and its proxy are installed in the cache already (a
/// first start installs them, which takes a minute or two).
pub fn jupyterhub_installed() -> bool {
    crate::cache_dir().is_ok_and(|dir| {
        dir.join("jupyterhub")
            .join(crate::jupyterhub::JUPYTERHUB_VERSION)
            .join(".hubwright-installed")
            .is_file()
    })
}

/// Whether the pinned helm `version` is in the cache already (else the
/// first [`crate::helm::helm_binary`] downloads it).
pub fn helm_installed(version: crate::helm::HelmVersion) -> bool {
    crate::cache_dir().is_ok_and(|dir| {
        dir.join("helm")
            .join(version.version())
            .join("helm")
            .is_file()
    })
}
