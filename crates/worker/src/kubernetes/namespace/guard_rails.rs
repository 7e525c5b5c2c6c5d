//! The guard rails `namespace` applies inside the namespace: a ResourceQuota
//! and a LimitRange when the template sets limits, and a default-deny ingress
//! NetworkPolicy with one exception for the hub's proxy.

use std::collections::BTreeMap;

use hubwright_state::model::Environment;
use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::create::NamespaceParams;
use super::target::Target;
use crate::step::StepError;
use crate::values::fill;

/// The names of the objects applied here (each kind has its own names).
pub(super) const QUOTA: &str = "hubwright";
pub(super) const LIMIT_RANGE: &str = "hubwright";
pub(super) const DENY_INGRESS: &str = "hubwright-default-deny-ingress";
pub(super) const ALLOW_PROXY: &str = "hubwright-allow-proxy";

/// Applies every guard rail `params` asks for; returns them as
/// `plural/name`, in the order applied.
pub(super) async fn apply(
    target: &Target,
    env: &Environment,
    params: &NamespaceParams,
    values: &Value,
) -> Result<Vec<String>, StepError> {
    let mut objects = Vec::new();
    let quota = fill_map(&params.quota, values, "quota")?;
    if !quota.is_empty() {
        let body = target.object("v1", "ResourceQuota", QUOTA, env, json!({ "hard": quota }));
        objects.push(apply_in::<ResourceQuota>(target, QUOTA, body).await?);
    }
    let limits = &params.container_limits;
    let mut limit = serde_json::Map::new();
    for (field, values_of) in [
        ("default", &limits.default),
        ("defaultRequest", &limits.default_request),
        ("max", &limits.max),
    ] {
        let filled = fill_map(values_of, values, &format!("container_limits.{field}"))?;
        if !filled.is_empty() {
            limit.insert(field.to_owned(), json!(filled));
        }
    }
    if !limit.is_empty() {
        limit.insert("type".to_owned(), json!("Container"));
        let body = target.object(
            "v1",
            "LimitRange",
            LIMIT_RANGE,
            env,
            json!({ "limits": [limit] }),
        );
        objects.push(apply_in::<LimitRange>(target, LIMIT_RANGE, body).await?);
    }
    let deny = target.object(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        DENY_INGRESS,
        env,
        json!({ "podSelector": {}, "policyTypes": ["Ingress"] }),
    );
    objects.push(apply_in::<NetworkPolicy>(target, DENY_INGRESS, deny).await?);
    let ports: Vec<Value> = params
        .ingress_ports
        .iter()
        .map(|port| json!({ "protocol": "TCP", "port": port }))
        .collect();
    let admit = target.object(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        ALLOW_PROXY,
        env,
        json!({
            "podSelector": { "matchLabels": params.ingress_pods },
            "policyTypes": ["Ingress"],
            "ingress": [{ "ports": ports }],
        }),
    );
    objects.push(apply_in::<NetworkPolicy>(target, ALLOW_PROXY, admit).await?);
    Ok(objects)
}

/// Applies a namespaced object; a namespace that started terminating under
/// us is an error worth retrying (the next attempt waits for it to go).
async fn apply_in<K>(target: &Target, name: &str, body: Value) -> Result<String, StepError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(target.client.clone(), &target.namespace);
    target.apply(&api, name, body).await?;
    Ok(format!("{}/{name}", K::plural(&())))
}

/// `map` with `{placeholder}` references filled from `values`.
fn fill_map(
    map: &BTreeMap<String, String>,
    values: &Value,
    place: &str,
) -> Result<BTreeMap<String, String>, StepError> {
    map.iter()
        .map(|(key, value)| Ok((key.clone(), fill(value, values, &format!("{place}.{key}"))?)))
        .collect()
}
