//! One environment's namespace on its cluster: finding it, telling whether
//! it is ours, and declaring and applying objects in it the way hubwright
//! labels them.

use std::collections::BTreeMap;

use hubwright_state::model::Environment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ENVIRONMENT_LABEL, MANAGED_BY};
use crate::kubernetes::errors::{Call, is_namespace_terminating};
use crate::kubernetes::{ClusterClients, FIELD_MANAGER};
use crate::step::StepError;

/// One environment's namespace on its cluster.
pub(super) struct Target {
    pub(super) cluster: String,
    pub(super) namespace: String,
    pub(super) client: kube::Client,
}

impl Target {
    pub(super) async fn of(
        clusters: &ClusterClients,
        env: &Environment,
    ) -> Result<Self, StepError> {
        let namespace = crate::kubernetes::namespace_of(env)?.to_owned();
        Ok(Self {
            cluster: env.cluster.clone(),
            client: clusters.client(&env.cluster).await?,
            namespace,
        })
    }

    pub(super) fn call<'a>(&'a self, verb: &'a str, resource: &'a str, name: &'a str) -> Call<'a> {
        Call {
            cluster: &self.cluster,
            verb,
            resource,
            name,
        }
    }

    pub(super) async fn get_namespace(
        &self,
        api: &Api<Namespace>,
    ) -> Result<Option<Namespace>, StepError> {
        api.get_opt(&self.namespace)
            .await
            .map_err(|err| self.call("get", "namespaces", &self.namespace).error(&err))
    }

    /// Refuses a namespace that is not this environment's.
    pub(super) fn check_ours(&self, ns: &Namespace, env: &Environment) -> Result<(), StepError> {
        let labels = ns.metadata.labels.clone().unwrap_or_default();
        let managed = labels.get(MANAGED_BY.0).map(String::as_str);
        let owner = labels.get(ENVIRONMENT_LABEL).map(String::as_str);
        let id = env.id.to_string();
        if managed == Some(MANAGED_BY.1) && owner == Some(id.as_str()) {
            return Ok(());
        }
        let whose = match (managed, owner) {
            (Some("hubwright"), Some(other)) => {
                format!("it belongs to hubwright environment {other}")
            }
            _ => format!(
                "it is not managed by hubwright (label {}={})",
                MANAGED_BY.0,
                managed.unwrap_or("<none>")
            ),
        };
        Err(StepError::permanent(format!(
            "namespace `{}` on cluster `{}` already exists and {whose}; hubwright never adopts or changes it",
            self.namespace, self.cluster
        ))
        .with_detail(json!({ "namespace": self.namespace, "cluster": self.cluster })))
    }

    fn labels(&self, env: &Environment) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
            (ENVIRONMENT_LABEL.to_owned(), env.id.to_string()),
            ("hubwright.io/owner".to_owned(), label_value(&env.owner)),
            (
                "hubwright.io/template".to_owned(),
                label_value(&env.template),
            ),
        ]);
        labels.extend(cost_labels(env));
        labels
    }

    /// The namespace as hubwright declares it. `created_by` (the run that
    /// creates it) is written once, at creation, and left out of later applies,
    /// so applying again from another run changes nothing.
    pub(super) fn namespace_object(
        &self,
        env: &Environment,
        created_by: Option<uuid::Uuid>,
    ) -> Namespace {
        let mut annotations = BTreeMap::from([
            ("hubwright.io/owner".to_owned(), env.owner.clone()),
            ("hubwright.io/environment-name".to_owned(), env.name.clone()),
        ]);
        if let Some(run_id) = created_by {
            annotations.insert("hubwright.io/request-id".to_owned(), run_id.to_string());
        }
        Namespace {
            metadata: ObjectMeta {
                name: Some(self.namespace.clone()),
                labels: Some(self.labels(env)),
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    /// An object of `kind` in the namespace, labelled like it.
    pub(super) fn object(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        env: &Environment,
        spec: Value,
    ) -> Value {
        json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": { "name": name, "namespace": self.namespace, "labels": self.labels(env) },
            "spec": spec,
        })
    }

    /// Server-side apply, forced: hubwright is the authority on these fields.
    pub(super) async fn apply<K, B>(
        &self,
        api: &Api<K>,
        name: &str,
        body: B,
    ) -> Result<K, StepError>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
        B: serde::Serialize + std::fmt::Debug,
    {
        let resource = K::plural(&()).into_owned();
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|err| {
            if is_namespace_terminating(&err) {
                StepError::retryable(format!(
                    "namespace `{}` started terminating while {resource} `{name}` was applied",
                    self.namespace
                ))
            } else {
                self.call("apply", &resource, name).error(&err)
            }
        })
    }
}

pub(super) fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

/// The label saying when the environment expires; workers carry an
/// extension to it (`expiry_labels`).
pub(super) const EXPIRES_AT_LABEL: &str = "hubwright.io/expires-at";

/// `at` as a label value: RFC 3339 with `-` for `:`, which label values may
/// not hold.
pub(super) fn expires_at_label(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H-%M-%SZ").to_string()
}

/// What cluster cost tools (OpenCost, Kubecost, a cloud's cost allocation)
/// group spending by, besides owner and template: the server profile and the
/// cost centre when the template has such parameters, and when the
/// environment expires. Label values, so sanitised; empty ones are left out.
fn cost_labels(env: &Environment) -> Vec<(String, String)> {
    let parameter = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| env.parameters.get(*name).and_then(|value| value.as_str()))
            .map(label_value)
            .filter(|value| !value.is_empty())
    };
    let mut labels = vec![(
        EXPIRES_AT_LABEL.to_owned(),
        expires_at_label(env.expires_at),
    )];
    if let Some(profile) = parameter(&["profile"]) {
        labels.push(("hubwright.io/profile".to_owned(), profile));
    }
    if let Some(centre) = parameter(&["cost_centre", "cost_center"]) {
        labels.push(("hubwright.io/cost-centre".to_owned(), centre));
    }
    labels
}

/// A label value (at most 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends)
/// made from any text; the exact text goes in an annotation.
fn label_value(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_keep_what_kubernetes_allows_and_replace_the_rest() {
        assert_eq!(label_value("alice"), "alice");
        assert_eq!(label_value("alice@example.com"), "alice_example.com");
        assert_eq!(label_value("-x-"), "x");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
    }

    fn environment(parameters: serde_json::Value) -> Environment {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .to_utc();
        Environment {
            id: uuid::Uuid::nil(),
            name: "lab".into(),
            owner: "alice".into(),
            template: "jupyterhub".into(),
            parameters,
            cluster: "default".into(),
            namespace: None,
            phase: hubwright_state::model::EnvironmentPhase::Requested,
            url: None,
            expires_at: at,
            last_error: None,
            created_at: at,
            updated_at: at,
            conditions: Vec::new(),
        }
    }

    #[test]
    fn cost_labels_name_profile_cost_centre_and_expiry_as_label_values() {
        let labels = cost_labels(&environment(
            json!({"profile": "gpu", "cost_center": "Research & Development/42"}),
        ));
        assert_eq!(
            labels,
            [
                (
                    "hubwright.io/expires-at".to_owned(),
                    "2026-12-06T10-00-00Z".to_owned()
                ),
                ("hubwright.io/profile".to_owned(), "gpu".to_owned()),
                (
                    "hubwright.io/cost-centre".to_owned(),
                    "Research___Development_42".to_owned()
                ),
            ]
        );
        let bare = cost_labels(&environment(json!({"profile": "", "cost_centre": 7})));
        assert_eq!(bare.len(), 1, "no empty or non-text labels: {bare:?}");
    }
}
