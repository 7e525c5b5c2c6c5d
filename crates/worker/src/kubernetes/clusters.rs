//! Clients for the configured clusters: built on first use, then shared by
//! every step on this worker (a kube `Client` is a connection pool).

use std::collections::HashMap;
use std::sync::Arc;

use hubwright_state::clusters::{ClusterConfig, Clusters};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::Mutex;

use crate::step::StepError;

/// The configured clusters and their clients.
pub struct ClusterClients {
    config: Clusters,
    clients: Mutex<HashMap<String, kube::Client>>,
}

impl std::fmt::Debug for ClusterClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClients")
            .field("clusters", &self.config.names())
            .finish()
    }
}

impl ClusterClients {
    /// Clients for `config`; none is built until a step needs it.
    pub fn new(config: Clusters) -> Arc<Self> {
        Arc::new(Self {
            config,
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// The configured clusters' names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.config.names().into_iter().map(str::to_owned).collect()
    }

    /// The configuration of the cluster called `name`.
    pub fn config(&self, name: &str) -> Result<&ClusterConfig, StepError> {
        self.config.get(name).ok_or_else(|| {
            StepError::permanent(format!(
                "cluster `{name}` is not configured on this worker (known: {})",
                self.config.names().join(", ")
            ))
        })
    }

    /// The client for the cluster called `name`. A configuration that cannot
    /// be loaded is permanent: retrying does not fix a missing kubeconfig.
    pub async fn client(&self, name: &str) -> Result<kube::Client, StepError> {
        let config = self.config(name)?;
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(name) {
            return Ok(client.clone());
        }
        let client = build(name, config).await?;
        clients.insert(name.to_owned(), client.clone());
        Ok(client)
    }
}

async fn build(name: &str, cluster: &ClusterConfig) -> Result<kube::Client, StepError> {
    let failed = |what: &str, err: &dyn std::fmt::Display| {
        StepError::permanent(format!("cluster `{name}`: {what}: {err}"))
    };
    let options = KubeConfigOptions {
        context: cluster.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = if cluster.in_cluster {
        kube::Config::incluster().map_err(|err| failed("in-cluster configuration", &err))?
    } else if let Some(path) = &cluster.kubeconfig {
        let kubeconfig = Kubeconfig::read_from(path)
            .map_err(|err| failed(&format!("reading {}", path.display()), &err))?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|err| failed(&format!("kubeconfig {}", path.display()), &err))?
    } else if cluster.context.is_some() {
        kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|err| failed("kubeconfig", &err))?
    } else {
        kube::Config::infer()
            .await
            .map_err(|err| failed("no kubeconfig or in-cluster configuration", &err))?
    };
    // Retries belong to the step's policy, where they are bounded, backed off
    // and on the run's timeline; kube's own would hide up to 15 more per call.
    let mut config = config;
    config.default_retry = false;
    // Each call in a client span that sends the step's trace context on.
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|err| failed("building the client", &err))?;
    Ok(builder
        .with_layer(&hubwright_telemetry::client::ClientSpanLayer::new(
            "kubernetes",
        ))
        .build())
}
