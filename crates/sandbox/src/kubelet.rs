//! Playing the kubelet for a hub-shaped release in the Kubernetes stand-in,
//! which runs no pods: read what Helm wrote (the `hub` Secret's `values.yaml`
//! with `hub.config` and `hub.extraConfig`, and the hub container's
//! environment with the OAuth Secret its `hub.extraEnv` refers to), start the
//! real [`JupyterHub`] from it on this machine, mark the hub and proxy
//! Deployments available so the health-check step can pass, and play the
//! proxy pod that a port-forward to `proxy-public` reaches.
//!
//! The demos (`hubwright demo --sandbox`, and `--cluster` in its test) use it.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::apiserver::TestCluster;
use crate::jupyterhub::{JupyterHub, Options};
use crate::other;

/// What the hub pod would be started with: the rendered `hub.config` and
/// `hub.extraConfig` from the `hub` Secret's `values.yaml` (as z2jh mounts
/// it), and the hub container's environment from its Deployment, each
/// `secretKeyRef` read from its Secret as the kubelet would.
#[derive(Debug, Clone)]
pub struct HubPod {
    /// The `hub.config` mapping, as JSON.
    pub config: Value,
    /// The `hub.extraConfig` snippets by name.
    pub extra_config: BTreeMap<String, String>,
    /// The hub container's environment.
    pub env: Vec<(String, String)>,
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

/// Reads what the `hub` pod in `namespace` would run with.
pub async fn hub_pod(cluster: &TestCluster, namespace: &str) -> std::io::Result<HubPod> {
    hub_pod_with(client(cluster).await?, namespace).await
}

/// [`hub_pod`] through `client`.
pub async fn hub_pod_with(client: kube::Client, namespace: &str) -> std::io::Result<HubPod> {
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    let values = secret_key(&secrets, "hub", "values.yaml").await?;
    let values: Value =
        serde_yaml_ng::from_str(&values).map_err(|err| other("the hub's values.yaml", err))?;
    let config = values["hub"]["config"].clone();
    let extra_config = values["hub"]["extraConfig"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, code)| Some((name.clone(), code.as_str()?.to_owned())))
        .collect();

    let deployment = Api::<Deployment>::namespaced(client, namespace)
        .get("hub")
        .await
        .map_err(|err| other(&format!("reading Deployment {namespace}/hub"), err))?;
    let container = deployment
        .spec
        .and_then(|spec| spec.template.spec)
        .and_then(|spec| spec.containers.into_iter().next())
        .ok_or_else(|| other("Deployment hub", "has no container"))?;
    let mut env = Vec::new();
    for var in container.env.unwrap_or_default() {
        let value = match (
            var.value,
            var.value_from.and_then(|from| from.secret_key_ref),
        ) {
            (Some(value), _) => value,
            (None, Some(reference)) => {
                secret_key(&secrets, &reference.name, &reference.key).await?
            }
            (None, None) => String::new(),
        };
        env.push((var.name, value));
    }
    Ok(HubPod {
        config,
        extra_config,
        env,
    })
}

/// The text under `key` of the Secret `name`, as a mounted file would hold it.
async fn secret_key(secrets: &Api<Secret>, name: &str, key: &str) -> std::io::Result<String> {
    let secret = secrets
        .get(name)
        .await
        .map_err(|err| other(&format!("reading Secret {name}"), err))?;
    let bytes = secret
        .data
        .unwrap_or_default()
        .remove(key)
        .ok_or_else(|| other(&format!("Secret {name}"), format!("has no key {key}")))?;
    String::from_utf8(bytes.0).map_err(|err| other(&format!("Secret {name} key {key}"), err))
}

/// Starts the real JupyterHub for `pod` with `options` (its port, and any
/// `extraConfig` snippets of the caller's own).
pub async fn start_hub(pod: &HubPod, mut options: Options) -> std::io::Result<JupyterHub> {
    for (name, code) in &pod.extra_config {
        options
            .extra_config
            .entry(name.clone())
            .or_insert_with(|| code.clone());
    }
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
    mark_available_with(client(cluster).await?, namespace, names).await
}

/// [`mark_available`] through `client`.
pub async fn mark_available_with(
    client: kube::Client,
    namespace: &str,
    names: &[&str],
) -> std::io::Result<()> {
    let api: Api<Deployment> = Api::namespaced(client, namespace);
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

/// Plays the proxy's pod: a Pod named `proxy-0` with the proxy Deployment's
/// pod labels (so `proxy-public` selects it), marked Ready, whose container
/// port `http` leads to `to` on this machine through the stand-in's
/// port-forward. Stand-in only: on a real cluster the real pod runs.
pub async fn run_proxy_pod(
    cluster: &TestCluster,
    namespace: &str,
    to: std::net::SocketAddr,
) -> std::io::Result<()> {
    let server = cluster
        .standin()
        .ok_or_else(|| other("the proxy pod", "a real cluster runs its own"))?;
    let client = client(cluster).await?;
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get("proxy")
        .await
        .map_err(|err| other(&format!("reading Deployment {namespace}/proxy"), err))?;
    let template = deployment
        .spec
        .map(|spec| spec.template)
        .ok_or_else(|| other("Deployment proxy", "has no pod template"))?;
    let port = template
        .spec
        .iter()
        .flat_map(|spec| &spec.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some("http"))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .ok_or_else(|| other("Deployment proxy", "has no container port named http"))?;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "proxy-0", "labels": template.metadata.and_then(|m| m.labels) },
        "spec": template.spec,
    }))
    .map_err(|err| other("the proxy pod", err))?;
    let pods = Api::<Pod>::namespaced(client, namespace);
    pods.create(&PostParams::default(), &pod)
        .await
        .map_err(|err| other(&format!("creating Pod {namespace}/proxy-0"), err))?;
    let ready = json!({ "status": {
        "phase": "Running",
        "conditions": [{ "type": "Ready", "status": "True" }],
    }});
    pods.patch_status("proxy-0", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .map_err(|err| other(&format!("marking Pod {namespace}/proxy-0 ready"), err))?;
    server.forward_pod_port(namespace, "proxy-0", port, to);
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
