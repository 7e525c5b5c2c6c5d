//! A local port that leads to a Service's pods through the Kubernetes API
//! server, as `kubectl port-forward svc/NAME` does: for a hub on a cluster
//! that gives `proxy-public` no external address (kind, minikube without a
//! tunnel) the demo still has a URL to open and to health-check.
//!
//! Each accepted connection looks up a ready pod behind the Service and opens
//! its own forward, so a proxy pod that restarts or is replaced is found
//! again on the next connection. A connection that finds no ready pod is
//! closed at once: to a health check that is "not yet", as it should be.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::ListParams;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running forward; dropping it stops accepting connections.
#[derive(Debug)]
pub struct ServiceForward {
    local: SocketAddr,
    accept: JoinHandle<()>,
}

impl ServiceForward {
    /// Forwards connections to `listener` to the port named or numbered
    /// `port` of the Service `namespace/service`.
    pub fn start(
        client: kube::Client,
        namespace: &str,
        service: &str,
        port: &str,
        listener: TcpListener,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let target = Target {
            client,
            namespace: namespace.to_owned(),
            service: service.to_owned(),
            port: port.to_owned(),
        };
        let accept = tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    if let Err(err) = target.carry(connection).await {
                        tracing::debug!(error = %err, "port-forward connection closed");
                    }
                });
            }
        });
        Ok(Self { local, accept })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local)
    }
}

impl Drop for ServiceForward {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[derive(Clone)]
struct Target {
    client: kube::Client,
    namespace: String,
    service: String,
    port: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "service/{}/{}:{}",
            self.namespace, self.service, self.port
        )
    }
}

impl Target {
    async fn carry(&self, mut connection: TcpStream) -> anyhow::Result<()> {
        let (pod, port) = self.resolve().await?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut forwarder = pods.portforward(&pod, &[port]).await?;
        let mut upstream = forwarder
            .take_stream(port)
            .ok_or_else(|| anyhow::anyhow!("no stream for port {port}"))?;
        tokio::io::copy_bidirectional(&mut connection, &mut upstream).await?;
        Ok(())
    }

    /// A ready pod behind the Service, and its container port for ours.
    async fn resolve(&self) -> anyhow::Result<(String, u16)> {
        let service = Api::<Service>::namespaced(self.client.clone(), &self.namespace)
            .get(&self.service)
            .await?;
        let spec = service.spec.unwrap_or_default();
        let selector = spec.selector.unwrap_or_default();
        anyhow::ensure!(
            !selector.is_empty(),
            "service {} selects no pods",
            self.service
        );
        let service_port = spec
            .ports
            .unwrap_or_default()
            .into_iter()
            .find(|p| p.name.as_deref() == Some(&self.port) || p.port.to_string() == self.port)
            .ok_or_else(|| anyhow::anyhow!("service {} has no port {}", self.service, self.port))?;
        let pods = Api::<Pod>::namespaced(self.client.clone(), &self.namespace)
            .list(&ListParams::default().labels(&label_selector(&selector)))
            .await?;
        let mut ready: Vec<Pod> = pods.items.into_iter().filter(is_ready).collect();
        ready.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let pod = ready
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no ready pod behind service {}", self.service))?;
        let target = service_port
            .target_port
            .unwrap_or(IntOrString::Int(service_port.port));
        let port = container_port(&pod, &target)?;
        Ok((pod.metadata.name.unwrap_or_default(), port))
    }
}

fn label_selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
}

/// A Service's `targetPort` on `pod`: a number as it is, a name looked up
/// among the pod's container ports.
fn container_port(pod: &Pod, target: &IntOrString) -> anyhow::Result<u16> {
    match target {
        IntOrString::Int(port) => Ok(u16::try_from(*port)?),
        IntOrString::String(name) => pod
            .spec
            .iter()
            .flat_map(|spec| &spec.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| u16::try_from(p.container_port))
            .transpose()?
            .ok_or_else(|| anyhow::anyhow!("no container port named {name}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn pod(ready: &str, deleting: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {
                "name": "proxy-1",
                "deletionTimestamp": if deleting { json!("2026-11-27T00:00:00Z") } else { json!(null) },
            },
            "spec": { "containers": [{ "name": "chp", "ports": [
                { "name": "api", "containerPort": 8001 },
                { "name": "http", "containerPort": 8000 },
            ]}]},
            "status": { "conditions": [{ "type": "Ready", "status": ready }] },
        }))
        .unwrap()
    }

    #[test]
    fn a_named_target_port_is_looked_up_in_the_pod() {
        let pod = pod("True", false);
        let http = IntOrString::String("http".to_owned());
        assert_eq!(container_port(&pod, &http).unwrap(), 8000);
        assert_eq!(container_port(&pod, &IntOrString::Int(9000)).unwrap(), 9000);
        let missing = IntOrString::String("metrics".to_owned());
        assert!(
            container_port(&pod, &missing)
                .unwrap_err()
                .to_string()
                .contains("metrics")
        );
    }

    #[test]
    fn only_ready_pods_that_are_not_going_away_are_chosen() {
        assert!(is_ready(&pod("True", false)));
        assert!(!is_ready(&pod("False", false)));
        assert!(!is_ready(&pod("True", true)));
    }

    #[test]
    fn selectors_become_label_queries() {
        let labels = BTreeMap::from([
            ("app".to_owned(), "jupyterhub".to_owned()),
            ("component".to_owned(), "proxy".to_owned()),
        ]);
        assert_eq!(label_selector(&labels), "app=jupyterhub,component=proxy");
    }
}
