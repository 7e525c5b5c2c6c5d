//! Kubernetes Secrets the hub reads its credentials from: the only place a
//! secret leaves hubwright's sealed store.

use std::collections::BTreeMap;

use hubwright_state::model::Environment;
use hubwright_state::secrets::SecretString;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::errors::{Call, is_namespace_terminating};
use super::namespace::{ENVIRONMENT_LABEL, MANAGED_BY};
use super::{ClusterClients, FIELD_MANAGER};
use crate::step::StepError;

/// Writes `data` as the Secret `name` in `env`'s namespace, replacing what
/// hubwright wrote there before (server-side apply, forced).
pub async fn apply_secret(
    clusters: &ClusterClients,
    env: &Environment,
    name: &str,
    data: &BTreeMap<String, SecretString>,
) -> Result<(), StepError> {
    let namespace = super::namespace_of(env)?;
    let client = clusters.client(&env.cluster).await?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
                (ENVIRONMENT_LABEL.to_owned(), env.id.to_string()),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(
            data.iter()
                .map(|(key, value)| (key.clone(), ByteString(value.expose().as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client, namespace)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
        .map(drop)
        .map_err(|err| {
            if is_namespace_terminating(&err) {
                StepError::retryable(format!(
                    "namespace `{namespace}` is terminating; secret `{name}` cannot be written"
                ))
            } else {
                Call {
                    cluster: &env.cluster,
                    verb: "apply",
                    resource: "secrets",
                    name,
                }
                .error(&err)
            }
        })
}
