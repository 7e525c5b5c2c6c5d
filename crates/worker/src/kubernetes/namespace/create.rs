//! `namespace`: creates the environment's namespace, then applies its guard
//! rails.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use serde::Deserialize;
use serde_json::json;

use super::TERMINATING_POLL;
use super::guard_rails;
use super::target::{Target, post_params};
use crate::kubernetes::ClusterClients;
use crate::kubernetes::errors::is_status;
use crate::step::{Outcome, Step, StepContext, StepError};
use crate::values::environment_values;

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

    async fn run(&self, ctx: &StepContext, params: NamespaceParams) -> Result<Outcome, StepError> {
        let env = ctx.environment().await?;
        let target = Target::of(&self.clusters, &env).await?;
        let namespaces: Api<Namespace> = Api::all(target.client.clone());
        ctx.calling_out(
            Self::KIND,
            &format!(
                "namespace `{}` on cluster `{}`",
                target.namespace, target.cluster
            ),
        )
        .await?;

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

        let values = environment_values(&ctx.input, &env, self.clusters.config(&env.cluster).ok());
        let objects = guard_rails::apply(&target, &env, &params, &values).await?;
        // What the labels now say; an extension after this is relabelled by
        // the workers (expiry_labels).
        ctx.store
            .expiry_labelled(env.id, env.expires_at)
            .await
            .map_err(|err| StepError::retryable(format!("recording the expiry label: {err}")))?;

        Ok(Outcome::Done(json!({
            "cluster": env.cluster,
            "namespace": target.namespace,
            "uid": ns.metadata.uid,
            "objects": objects,
        })))
    }
}
