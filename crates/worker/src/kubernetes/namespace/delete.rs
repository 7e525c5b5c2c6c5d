//! `namespace-delete`: deletes the environment's namespace and waits, durably,
//! until it is gone.

use std::sync::Arc;

use hubwright_state::workflow::Dur;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::DeleteParams;
use serde::Deserialize;
use serde_json::json;

use super::TERMINATING_POLL;
use super::target::Target;
use crate::kubernetes::ClusterClients;
use crate::kubernetes::errors::is_status;
use crate::step::{Outcome, Step, StepContext, StepError};

/// `namespace-delete`: deletes the environment's namespace and waits until it
/// is gone. Already gone is done; stuck past the deadline is an error that
/// names what holds it. Done without calling out when the `namespace` step
/// never called out for the environment.
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

    async fn run(
        &self,
        ctx: &StepContext,
        params: NamespaceDeleteParams,
    ) -> Result<Outcome, StepError> {
        // Never created: nothing to delete, and no cluster to ask (it may be
        // the very thing that was missing).
        if !ctx.ever_called_out(super::NamespaceStep::KIND).await? {
            return Ok(Outcome::never_created());
        }
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
