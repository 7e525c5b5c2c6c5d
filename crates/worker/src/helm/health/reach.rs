//! Whether the hub's Deployments are available, and where the chart exposed
//! it: the host of the namespace's Ingress, else the address of the
//! `proxy-public` load balancer.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::ListParams;

use crate::kubernetes::errors::Call;
use crate::step::StepError;

/// Why `deployment` is not available yet, if it is not.
pub(super) fn unavailable(name: &str, deployment: Option<&Deployment>) -> Option<String> {
    let Some(deployment) = deployment else {
        return Some(format!("deployment {name} does not exist"));
    };
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.replicas)
        .unwrap_or(1);
    let status = deployment.status.as_ref();
    let available = status.and_then(|s| s.available_replicas).unwrap_or(0);
    let condition = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Available"));
    if available >= wanted && condition.is_none_or(|c| c.status == "True") {
        return None;
    }
    let why = condition
        .and_then(|c| c.message.clone())
        .unwrap_or_else(|| "no Available condition yet".to_owned());
    Some(format!(
        "deployment {name} has {available}/{wanted} available ({why})"
    ))
}

/// `https://<host>` (or `http://` without TLS for it) of the first Ingress
/// rule with a host in `namespace`, by Ingress name.
pub(super) async fn ingress_url(
    client: &kube::Client,
    cluster: &str,
    namespace: &str,
) -> Result<Option<String>, StepError> {
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    let call = Call {
        cluster,
        verb: "list",
        resource: "ingresses",
        name: "",
    };
    let mut list = ingresses
        .list(&ListParams::default())
        .await
        .map_err(|err| call.error(&err))?
        .items;
    list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(list.into_iter().find_map(|ingress| {
        let spec = ingress.spec?;
        let host = spec.rules?.into_iter().find_map(|rule| rule.host)?;
        let tls = spec
            .tls
            .unwrap_or_default()
            .iter()
            .any(|tls| tls.hosts.iter().flatten().any(|h| h == &host));
        Some(format!("{}://{host}", if tls { "https" } else { "http" }))
    }))
}

/// `http://<address>` of the `proxy-public` load balancer, once it has one
/// (`:<port>` after it when its `http` port is not 80).
pub(super) async fn load_balancer_url(
    client: &kube::Client,
    cluster: &str,
    namespace: &str,
) -> Result<Option<String>, StepError> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let call = Call {
        cluster,
        verb: "get",
        resource: "services",
        name: "proxy-public",
    };
    let service = services
        .get_opt("proxy-public")
        .await
        .map_err(|err| call.error(&err))?;
    let Some(service) = service else {
        return Ok(None);
    };
    // The load balancer listens on the Service's port: z2jh's is 80, but a
    // Service on another port is reached only there.
    let port = service
        .spec
        .iter()
        .flat_map(|spec| spec.ports.iter().flatten())
        .find(|port| port.name.as_deref() == Some("http"))
        .map(|port| port.port)
        .filter(|port| *port != 80);
    Ok(service
        .status
        .and_then(|status| status.load_balancer)
        .and_then(|lb| lb.ingress)
        .and_then(|ingress| ingress.into_iter().next())
        .and_then(|ingress| ingress.hostname.or(ingress.ip))
        .map(|address| match port {
            Some(port) => format!("http://{address}:{port}"),
            None => format!("http://{address}"),
        }))
}
