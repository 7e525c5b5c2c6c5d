//! A hub for every hub-shaped release in the Kubernetes stand-in, however
//! many there are and whoever made them: what a node's kubelet and a cloud's
//! load-balancer controller would do for each. Environments nobody waits for
//! by name (a warm pool's members, which the scheduler provisions) become
//! running hubs this way.
//!
//! For each namespace where helm made the `hub` Deployment, the real
//! JupyterHub starts from what the chart wrote ([`crate::kubelet`]) on a
//! port of its own on 127.0.0.1; the `proxy-public` LoadBalancer Service
//! gets 127.0.0.1 as its address and that port as its `http` port (every
//! hub shares the one address, so each needs a port of its own, and the
//! health check reads both); then the hub and proxy Deployments are marked
//! available. A hub stops when its Deployment goes (helm uninstall) or its
//! namespace starts terminating.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::apiserver::TestCluster;
use crate::jupyterhub::{JupyterHub, Options};
use crate::kubelet::{hub_pod_with, mark_available_with, start_hub};
use crate::other;

/// How often the farm looks for releases that came or went.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// One namespace's hub.
enum Slot {
    Starting,
    Running(Box<JupyterHub>),
    Failed(String),
}

type Slots = Arc<Mutex<BTreeMap<String, Slot>>>;

/// The hubs of every hub-shaped release in a cluster, started and stopped
/// as releases come and go. Dropping it stops them all.
pub struct HubFarm {
    slots: Slots,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for HubFarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubFarm")
            .field("running", &self.running())
            .finish()
    }
}

impl HubFarm {
    /// Starts watching `cluster` (the stand-in: a real cluster runs its own
    /// pods). `extra_config` is added to every hub's `hub.extraConfig`.
    pub async fn start(
        cluster: &TestCluster,
        extra_config: BTreeMap<String, String>,
    ) -> std::io::Result<Self> {
        if cluster.is_real() {
            return Err(other("the hub farm", "a real cluster runs its own pods"));
        }
        let client = cluster
            .client()
            .await
            .map_err(|err| other("a Kubernetes client", err))?;
        let slots: Slots = Arc::default();
        let task = tokio::spawn(watch(client, Arc::clone(&slots), extra_config));
        Ok(Self { slots, task })
    }

    /// The URL of the hub running for the release in `namespace`.
    pub fn url(&self, namespace: &str) -> Option<String> {
        match self.lock().get(namespace) {
            Some(Slot::Running(hub)) => Some(hub.url().to_owned()),
            _ => None,
        }
    }

    /// Namespaces whose hub is running.
    pub fn running(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, slot)| matches!(slot, Slot::Running(_)))
            .map(|(namespace, _)| namespace.clone())
            .collect()
    }

    /// Hubs that could not start, as `namespace: why`.
    pub fn failures(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter_map(|(namespace, slot)| match slot {
                Slot::Failed(why) => Some(format!("{namespace}: {why}")),
                _ => None,
            })
            .collect()
    }

    /// What the hub in `namespace` printed so far.
    pub fn log_text(&self, namespace: &str) -> Option<String> {
        match self.lock().get(namespace) {
            Some(Slot::Running(hub)) => Some(hub.log_text()),
            _ => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for HubFarm {
    fn drop(&mut self) {
        self.task.abort();
        // Each hub's own Drop stops its processes.
        self.lock().clear();
    }
}

async fn watch(client: kube::Client, slots: Slots, extra_config: BTreeMap<String, String>) {
    // One hub starts at a time: a hub's ports are picked free but bound
    // only when its processes start, so two starting together could pick
    // the same one.
    let starting = Arc::new(tokio::sync::Mutex::new(()));
    loop {
        if let Ok(present) = releases(&client).await {
            let mut new = Vec::new();
            {
                let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
                slots.retain(|namespace, _| present.contains(namespace));
                for namespace in &present {
                    if !slots.contains_key(namespace) {
                        slots.insert(namespace.clone(), Slot::Starting);
                        new.push(namespace.clone());
                    }
                }
            }
            for namespace in new {
                let client = client.clone();
                let slots = Arc::clone(&slots);
                let extra_config = extra_config.clone();
                let starting = Arc::clone(&starting);
                tokio::spawn(async move {
                    let turn = starting.lock().await;
                    let started = start_one(client, &namespace, extra_config).await;
                    drop(turn);
                    let slot = match started {
                        Ok(hub) => Slot::Running(Box::new(hub)),
                        Err(err) => Slot::Failed(err.to_string()),
                    };
                    let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
                    // Gone while it started: the hub stops here, unlisted.
                    if let Some(current @ Slot::Starting) = slots.get_mut(&namespace) {
                        *current = slot;
                    }
                });
            }
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// Namespaces, not terminating, that hold a `hub` Deployment.
async fn releases(client: &kube::Client) -> Result<BTreeSet<String>, kube::Error> {
    let terminating: BTreeSet<String> = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|ns| ns.metadata.deletion_timestamp.is_some())
        .filter_map(|ns| ns.metadata.name)
        .collect();
    Ok(Api::<Deployment>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|d| d.metadata.name.as_deref() == Some("hub"))
        .filter(|d| d.metadata.deletion_timestamp.is_none())
        .filter_map(|d| d.metadata.namespace)
        .filter(|namespace| !terminating.contains(namespace))
        .collect())
}

async fn start_one(
    client: kube::Client,
    namespace: &str,
    extra_config: BTreeMap<String, String>,
) -> std::io::Result<JupyterHub> {
    let pod = hub_pod_with(client.clone(), namespace).await?;
    let options = Options {
        extra_config,
        ..Options::default()
    };
    let hub = start_hub(&pod, options).await?;
    let port = hub
        .url()
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .ok_or_else(|| other("the hub's URL", hub.url()))?;
    expose(client.clone(), namespace, port).await?;
    mark_available_with(client, namespace, &["hub", "proxy"]).await?;
    Ok(hub)
}

/// Plays the cloud's load-balancer controller for `proxy-public`: address
/// 127.0.0.1, and `port` as the Service's `http` port.
async fn expose(client: kube::Client, namespace: &str, port: u16) -> std::io::Result<()> {
    let services: Api<Service> = Api::namespaced(client, namespace);
    let context = format!("Service {namespace}/proxy-public");
    let service = services
        .get("proxy-public")
        .await
        .map_err(|err| other(&context, err))?;
    let mut ports = service
        .spec
        .and_then(|spec| spec.ports)
        .ok_or_else(|| other(&context, "has no ports"))?;
    let http = ports
        .iter_mut()
        .find(|p| p.name.as_deref() == Some("http"))
        .ok_or_else(|| other(&context, "has no port named http"))?;
    http.port = i32::from(port);
    services
        .patch(
            "proxy-public",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "ports": ports } })),
        )
        .await
        .map_err(|err| other(&context, err))?;
    services
        .patch_status(
            "proxy-public",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "status": { "loadBalancer": { "ingress": [{ "ip": "127.0.0.1" }] } } }),
            ),
        )
        .await
        .map_err(|err| other(&context, err))?;
    Ok(())
}
