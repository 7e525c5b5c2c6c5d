//! [`TestCluster`]: a real cluster when `KUBECONFIG` is set, else the stand-in.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::cleanup::Created;
use super::options::{Options, QUICK_TERMINATION_DELAY};
use super::server::{ClientError, KubeApiServer, config_from_kubeconfig};

/// The Kubernetes API a test talks to: a real cluster when the `KUBECONFIG`
/// environment variable is set (its current context, or `HUBWRIGHT_KUBE_CONTEXT`),
/// otherwise a fresh [`KubeApiServer`] stand-in.
///
/// Namespaces given to [`TestCluster::delete_on_drop`] are deleted on a real
/// cluster when this is dropped, also when the test failed.
#[derive(Debug)]
pub struct TestCluster {
    kubeconfig: PathBuf,
    context: Option<String>,
    standin: Option<KubeApiServer>,
    /// What to delete from a real cluster on drop.
    created: Mutex<Created>,
}

impl TestCluster {
    /// A real cluster from `KUBECONFIG`, or a stand-in started with
    /// [`Options::from_env`] (a namespace takes seconds to terminate).
    pub async fn from_env() -> std::io::Result<Self> {
        Self::from_env_with(Options::from_env()?).await
    }

    /// A real cluster from `KUBECONFIG`, or a stand-in started with `options`
    /// (e.g. a short termination delay for tests that only need a namespace
    /// gone; a real cluster takes what it takes).
    pub async fn from_env_with(options: Options) -> std::io::Result<Self> {
        match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            Some(paths) => {
                let first = std::env::split_paths(&paths).next().unwrap_or_default();
                Ok(TestCluster {
                    kubeconfig: first,
                    context: std::env::var("HUBWRIGHT_KUBE_CONTEXT")
                        .ok()
                        .filter(|c| !c.is_empty()),
                    standin: None,
                    created: Mutex::default(),
                })
            }
            None => Self::standin_with(options).await,
        }
    }

    /// [`TestCluster::from_env_with`] a stand-in whose namespaces terminate
    /// within [`QUICK_TERMINATION_DELAY`] (unless [`super::TERMINATION_DELAY_VAR`]
    /// says otherwise), for tests that only need a namespace gone.
    pub async fn from_env_terminating_quickly() -> std::io::Result<Self> {
        Self::from_env_with(Options::from_env_or_delay(QUICK_TERMINATION_DELAY)?).await
    }

    /// Always a stand-in (with [`Options::from_env`]), whatever `KUBECONFIG` says.
    pub async fn standin_only() -> std::io::Result<Self> {
        Self::standin_with(Options::from_env()?).await
    }

    /// Always a stand-in, started with `options`.
    pub async fn standin_with(options: Options) -> std::io::Result<Self> {
        let server = KubeApiServer::start_with(options).await?;
        Ok(TestCluster {
            kubeconfig: server.kubeconfig().to_owned(),
            context: Some(server.context().to_owned()),
            standin: Some(server),
            created: Mutex::default(),
        })
    }

    /// Deletes namespace `name` (finalizers that hold it or its ConfigMaps
    /// and Secrets removed first) when this is dropped, on a real cluster; a
    /// stand-in goes as a whole. Call it before creating the namespace, so
    /// that a failure right after still cleans up.
    pub fn delete_on_drop(&self, name: &str) {
        self.created
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .namespaces
            .push(name.to_owned());
    }

    /// Deletes now what [`TestCluster::delete_on_drop`] and
    /// [`TestCluster::delete_cluster_scoped_on_drop`] recorded (on a stand-in
    /// too), as dropping does on a real cluster; best effort, failures are
    /// printed.
    pub async fn delete_created(&self) -> Result<(), ClientError> {
        let created =
            std::mem::take(&mut *self.created.lock().unwrap_or_else(PoisonError::into_inner));
        super::cleanup::delete_with(&self.client().await?, &created).await;
        Ok(())
    }

    /// Deletes the cluster-scoped object `name` of `resource` (a
    /// PriorityClass, a ClusterRole) when this is dropped, on a real cluster.
    pub fn delete_cluster_scoped_on_drop(&self, resource: kube::api::ApiResource, name: &str) {
        self.created
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cluster_scoped
            .push((resource, name.to_owned()));
    }

    /// The kubeconfig file (for a real cluster: the first path in `KUBECONFIG`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubeconfig context; None means the file's current context.
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// The stand-in, for fault injection and the request log; None on a real cluster.
    pub fn standin(&self) -> Option<&KubeApiServer> {
        self.standin.as_ref()
    }

    /// Whether this is a real cluster.
    pub fn is_real(&self) -> bool {
        self.standin.is_none()
    }

    /// A `kube::Client` for the cluster, built through kube's kubeconfig loader
    /// (`KUBECONFIG` may list several files; kube merges them like kubectl).
    pub async fn client(&self) -> Result<kube::Client, ClientError> {
        Ok(kube::Client::try_from(self.config().await?)?)
    }

    /// The `kube::Config` [`TestCluster::client`] is built from, for tests
    /// that change it (e.g. turn off `default_retry`).
    pub async fn config(&self) -> Result<kube::Config, ClientError> {
        let kubeconfig = match &self.standin {
            Some(_) => kube::config::Kubeconfig::read_from(&self.kubeconfig)?,
            None => kube::config::Kubeconfig::from_env()?.ok_or("KUBECONFIG is set but empty")?,
        };
        config_from_kubeconfig(kubeconfig, self.context()).await
    }

    /// `prefix-xxxxxxxx`: a DNS-label-safe name no other test (or earlier run
    /// against the same real cluster) uses.
    pub fn unique_name(&self, prefix: &str) -> String {
        let id = uuid::Uuid::now_v7().simple().to_string();
        // The random tail of a v7 UUID; the head is the timestamp.
        format!("{prefix}-{}", &id[id.len() - 10..])
    }
}

impl TestCluster {
    /// Whether a test that needs running pods must skip: never on the
    /// stand-in (tests play the kubelet there), and on a real cluster when no
    /// node is Ready (or the nodes cannot be read), which it prints.
    pub async fn skips_without_ready_node(&self) -> bool {
        if !self.is_real() {
            return false;
        }
        let why = match self.ready_nodes().await {
            Ok(0) => "it needs running pods and no node is Ready".to_owned(),
            Ok(_) => return false,
            Err(err) => format!("it needs running pods and the nodes cannot be read: {err}"),
        };
        eprintln!("skipped on a real cluster: {why}");
        true
    }

    async fn ready_nodes(&self) -> Result<usize, ClientError> {
        let nodes: kube::Api<k8s_openapi::api::core::v1::Node> =
            kube::Api::all(self.client().await?);
        let list = nodes.list(&Default::default()).await?;
        Ok(list
            .items
            .iter()
            .filter(|node| {
                node.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count())
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let created = std::mem::take(
            self.created
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if self.is_real() && !created.is_empty() {
            super::cleanup::delete(self.context.clone(), created);
        }
    }
}
