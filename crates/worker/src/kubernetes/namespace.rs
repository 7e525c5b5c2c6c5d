//! `namespace` and `namespace-delete`: the environment's namespace with its
//! guard rails (quota, container limits, default-deny ingress), and its removal.
//!
//! Every write is a server-side apply by field manager `hubwright`, so applying
//! again changes nothing. A namespace hubwright did not create for this very
//! environment is never adopted, changed or deleted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hubwright_state::model::Environment;
use hubwright_state::workflow::Dur;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::errors::{Call, is_namespace_terminating, is_status};
use super::{ClusterClients, FIELD_MANAGER};
use crate::step::{Outcome, Step, StepContext, StepError};
use crate::values::{environment_values, fill};

/// The label every object hubwright manages carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "hubwright");
/// The label naming the environment an object belongs to.
pub const ENVIRONMENT_LABEL: &str = "hubwright.io/environment";

/// How often a namespace that is going away is looked at again.
const TERMINATING_POLL: Duration = Duration::from_secs(2);

/// `namespace`: creates the environment's namespace and its guard rails.
#[derive(Debug, Clone)]
pub struct NamespaceStep {
    clusters: Arc<ClusterClients>,
}

impl NamespaceStep {
    /// The step over `clusters`.
    pub fn new(clusters: Arc<ClusterClients>) -> Self {
        Self { clusters }
    }
}

/// Parameters of `namespace`. Every value may name a request parameter as
/// `{parameter}` (e.g. `limits.memory: "{memory_limit}"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceParams {
    /// The namespace's ResourceQuota `hard` limits, e.g. `requests.cpu: "4"`,
    /// `requests.storage: 20Gi`, `pods: "10"`. Empty: no quota.
    #[serde(default)]
    pub quota: BTreeMap<String, String>,
    /// Container defaults and maxima (a LimitRange). Empty: none.
    #[serde(default)]
    pub container_limits: ContainerLimits,
    /// Pods that accept ingress from outside (the hub's proxy); everything
    /// else in the namespace denies ingress from outside it by default.
    #[serde(default = "default_ingress_pods")]
    pub ingress_pods: BTreeMap<String, String>,
    /// The ports those pods accept it on.
    #[serde(default = "default_ingress_ports")]
    pub ingress_ports: Vec<u16>,
}

/// A LimitRange for containers; quantities as Kubernetes writes them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerLimits {
    /// Limits given to containers that set none.
    #[serde(default)]
    pub default: BTreeMap<String, String>,
    /// Requests given to containers that set none.
    #[serde(default)]
    pub default_request: BTreeMap<String, String>,
    /// The most one container may ask for.
    #[serde(default)]
    pub max: BTreeMap<String, String>,
}

fn default_ingress_pods() -> BTreeMap<String, String> {
    // The zero-to-jupyterhub chart's proxy pods.
    BTreeMap::from([
        ("app".to_owned(), "jupyterhub".to_owned()),
        ("component".to_owned(), "proxy".to_owned()),
    ])
}

fn default_ingress_ports() -> Vec<u16> {
    vec![8000]
}

impl Step for NamespaceStep {
    const KIND: &'static str = "namespace";
    type Params = NamespaceParams;

    async fn run(&self, ctx: &StepContext, params: NamespaceParams) -> Outcome {
        match self.apply(ctx, &params).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::from_error(error),
        }
    }
}

impl NamespaceStep {
    async fn apply(
        &self,
        ctx: &StepContext,
        params: &NamespaceParams,
    ) -> Result<Outcome, StepError> {
        let env = ctx.environment().await?;
        let target = Target::of(&self.clusters, &env).await?;
        let namespaces: Api<Namespace> = Api::all(target.client.clone());

        // Create first: only a namespace this call created, or one already
        // labelled for this environment, is ours. Applying straight away would
        // silently adopt a namespace someone else made.
        match namespaces
            .create(
                &post_params(),
                &target.namespace_object(&env, Some(ctx.run_id)),
            )
            .await
        {
            Ok(_) => {}
            Err(err) if is_status(&err, 409) => {
                let existing = target.get_namespace(&namespaces).await?;
                let Some(existing) = existing else {
                    return Err(StepError::retryable(format!(
                        "namespace `{}` was deleted while being created; trying again",
                        target.namespace
                    )));
                };
                target.check_ours(&existing, &env)?;
                if existing.metadata.deletion_timestamp.is_some() {
                    return Ok(Outcome::wait(
                        ctx,
                        TERMINATING_POLL,
                        format!(
                            "namespace `{}` is still terminating from an earlier teardown; waiting for it to go before creating it again",
                            target.namespace
                        ),
                    ));
                }
            }
            Err(err) => {
                return Err(target
                    .call("create", "namespaces", &target.namespace)
                    .error(&err));
            }
        }
        let ns = target
            .apply(
                &namespaces,
                &target.namespace,
                target.namespace_object(&env, None),
            )
            .await?;

        let mut objects = Vec::new();
        let values = environment_values(&ctx.input, &env, self.clusters.config(&env.cluster).ok());
        let quota = fill_map(&params.quota, &values, "quota")?;
        if !quota.is_empty() {
            let body = target.object(
                "v1",
                "ResourceQuota",
                "hubwright",
                &env,
                json!({ "hard": quota }),
            );
            objects.push(
                self.apply_in::<ResourceQuota>(ctx, &target, "hubwright", body)
                    .await?,
            );
        }
        let limits = &params.container_limits;
        let mut limit = serde_json::Map::new();
        for (field, values_of) in [
            ("default", &limits.default),
            ("defaultRequest", &limits.default_request),
            ("max", &limits.max),
        ] {
            let filled = fill_map(values_of, &values, &format!("container_limits.{field}"))?;
            if !filled.is_empty() {
                limit.insert(field.to_owned(), json!(filled));
            }
        }
        if !limit.is_empty() {
            limit.insert("type".to_owned(), json!("Container"));
            let body = target.object(
                "v1",
                "LimitRange",
                "hubwright",
                &env,
                json!({ "limits": [limit] }),
            );
            objects.push(
                self.apply_in::<LimitRange>(ctx, &target, "hubwright", body)
                    .await?,
            );
        }
        let deny = target.object(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            "hubwright-default-deny-ingress",
            &env,
            json!({ "podSelector": {}, "policyTypes": ["Ingress"] }),
        );
        objects.push(
            self.apply_in::<NetworkPolicy>(ctx, &target, "hubwright-default-deny-ingress", deny)
                .await?,
        );
        let ports: Vec<Value> = params
            .ingress_ports
            .iter()
            .map(|port| json!({ "protocol": "TCP", "port": port }))
            .collect();
        let admit = target.object(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            "hubwright-allow-proxy",
            &env,
            json!({
                "podSelector": { "matchLabels": params.ingress_pods },
                "policyTypes": ["Ingress"],
                "ingress": [{ "ports": ports }],
            }),
        );
        objects.push(
            self.apply_in::<NetworkPolicy>(ctx, &target, "hubwright-allow-proxy", admit)
                .await?,
        );

        Ok(Outcome::Done(json!({
            "cluster": env.cluster,
            "namespace": target.namespace,
            "uid": ns.metadata.uid,
            "objects": objects,
        })))
    }

    /// Applies a namespaced object; a namespace that started terminating under
    /// us is an error worth retrying (the next attempt waits for it to go).
    async fn apply_in<K>(
        &self,
        _ctx: &StepContext,
        target: &Target,
        name: &str,
        body: Value,
    ) -> Result<String, StepError>
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
}

/// `namespace-delete`: deletes the environment's namespace and waits until it
/// is gone. Already gone is done; stuck past the deadline is an error that
/// names what holds it.
#[derive(Debug, Clone)]
pub struct NamespaceDeleteStep {
    clusters: Arc<ClusterClients>,
}

impl NamespaceDeleteStep {
    /// The step over `clusters`.
    pub fn new(clusters: Arc<ClusterClients>) -> Self {
        Self { clusters }
    }
}

/// Parameters of `namespace-delete`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceDeleteParams {
    /// How long the namespace may stay `Terminating`, from the step's first
    /// start, before the step fails for an operator.
    #[serde(default = "default_deadline")]
    pub deadline: Dur,
}

fn default_deadline() -> Dur {
    Dur::from_secs(600)
}

impl Step for NamespaceDeleteStep {
    const KIND: &'static str = "namespace-delete";
    type Params = NamespaceDeleteParams;

    async fn run(&self, ctx: &StepContext, params: NamespaceDeleteParams) -> Outcome {
        match self.delete(ctx, &params).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::from_error(error),
        }
    }
}

impl NamespaceDeleteStep {
    async fn delete(
        &self,
        ctx: &StepContext,
        params: &NamespaceDeleteParams,
    ) -> Result<Outcome, StepError> {
        let env = ctx.environment().await?;
        let target = Target::of(&self.clusters, &env).await?;
        let namespaces: Api<Namespace> = Api::all(target.client.clone());
        let gone = || {
            Outcome::Done(
                json!({ "cluster": env.cluster, "namespace": target.namespace, "deleted": true }),
            )
        };
        let Some(existing) = target.get_namespace(&namespaces).await? else {
            return Ok(gone());
        };
        target.check_ours(&existing, &env)?;
        if existing.metadata.deletion_timestamp.is_none() {
            match namespaces
                .delete(&target.namespace, &DeleteParams::background())
                .await
            {
                Ok(_) => {}
                Err(err) if is_status(&err, 404) => return Ok(gone()),
                Err(err) => {
                    return Err(target
                        .call("delete", "namespaces", &target.namespace)
                        .error(&err));
                }
            }
        }
        let holding = holders(&existing);
        if ctx.now() - ctx.first_started_at > params.deadline.to_chrono() {
            return Err(StepError::permanent(format!(
                "namespace `{}` on cluster `{}` is still terminating after {}; held by {}",
                target.namespace,
                env.cluster,
                params.deadline,
                if holding.is_empty() {
                    "nothing it reports".to_owned()
                } else {
                    holding.join(", ")
                },
            ))
            .with_detail(json!({ "namespace": target.namespace, "finalizers": holding })));
        }
        Ok(Outcome::wait(
            ctx,
            TERMINATING_POLL,
            format!(
                "namespace `{}` terminating{}",
                target.namespace,
                if holding.is_empty() {
                    String::new()
                } else {
                    format!(" (finalizers: {})", holding.join(", "))
                }
            ),
        ))
    }
}

/// The finalizers still on a namespace, and what its conditions say remains.
fn holders(ns: &Namespace) -> Vec<String> {
    let mut found: Vec<String> = ns.metadata.finalizers.clone().unwrap_or_default();
    if let Some(spec) = &ns.spec {
        found.extend(spec.finalizers.clone().unwrap_or_default());
    }
    if let Some(conditions) = ns
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
    {
        for condition in conditions {
            if condition.status == "True"
                && matches!(
                    condition.type_.as_str(),
                    "NamespaceFinalizersRemaining" | "NamespaceContentRemaining"
                )
            {
                found.push(
                    condition
                        .message
                        .clone()
                        .unwrap_or_else(|| condition.type_.clone()),
                );
            }
        }
    }
    found
}

/// One environment's namespace on its cluster.
struct Target {
    cluster: String,
    namespace: String,
    client: kube::Client,
}

impl Target {
    async fn of(clusters: &ClusterClients, env: &Environment) -> Result<Self, StepError> {
        let namespace = super::namespace_of(env)?.to_owned();
        Ok(Self {
            cluster: env.cluster.clone(),
            client: clusters.client(&env.cluster).await?,
            namespace,
        })
    }

    fn call<'a>(&'a self, verb: &'a str, resource: &'a str, name: &'a str) -> Call<'a> {
        Call {
            cluster: &self.cluster,
            verb,
            resource,
            name,
        }
    }

    async fn get_namespace(&self, api: &Api<Namespace>) -> Result<Option<Namespace>, StepError> {
        api.get_opt(&self.namespace)
            .await
            .map_err(|err| self.call("get", "namespaces", &self.namespace).error(&err))
    }

    /// Refuses a namespace that is not this environment's.
    fn check_ours(&self, ns: &Namespace, env: &Environment) -> Result<(), StepError> {
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
        BTreeMap::from([
            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
            (ENVIRONMENT_LABEL.to_owned(), env.id.to_string()),
            ("hubwright.io/owner".to_owned(), label_value(&env.owner)),
            (
                "hubwright.io/template".to_owned(),
                label_value(&env.template),
            ),
        ])
    }

    /// The namespace as hubwright declares it. `created_by` (the run that
    /// creates it) is written once, at creation, and left out of later applies,
    /// so applying again from another run changes nothing.
    fn namespace_object(&self, env: &Environment, created_by: Option<uuid::Uuid>) -> Namespace {
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
    fn object(
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
    async fn apply<K, B>(&self, api: &Api<K>, name: &str, body: B) -> Result<K, StepError>
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

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
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
}
