//! [`TestCluster`]: a real cluster when `KUBECONFIG` is set, else the stand-in.

use std::path::{Path, PathBuf};

use super::server::{ClientError, KubeApiServer, config_from_kubeconfig};

/// The Kubernetes API a test talks to: a real cluster when the `KUBECONFIG`
/// environment variable is set (its current context, or `HUBWRIGHT_KUBE_CONTEXT`),
/// otherwise a fresh [`KubeApiServer`] stand-in.
#[derive(Debug)]
pub struct TestCluster {
    kubeconfig: PathBuf,
    context: Option<String>,
    standin: Option<KubeApiServer>,
}

impl TestCluster {
    /// A real cluster from `KUBECONFIG`, or a started stand-in.
    pub async fn from_env() -> std::io::Result<Self> {
        match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            Some(paths) => {
                let first = std::env::split_paths(&paths).next().unwrap_or_default();
                Ok(TestCluster {
                    kubeconfig: first,
                    context: std::env::var("HUBWRIGHT_KUBE_CONTEXT")
                        .ok()
                        .filter(|c| !c.is_empty()),
                    standin: None,
                })
            }
            None => Self::standin_only().await,
        }
    }

    /// Always a stand-in, whatever the environment says.
    pub async fn standin_only() -> std::io::Result<Self> {
        let server = KubeApiServer::start().await?;
        Ok(TestCluster {
            kubeconfig: server.kubeconfig().to_owned(),
            context: Some(server.context().to_owned()),
            standin: Some(server),
        })
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
