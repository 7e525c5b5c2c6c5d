//! Expiry labels follow extensions. `namespace` labels the namespace and the
//! objects it puts in it with `hubwright.io/expires-at`, which cost tools
//! group spending by, and records the expiry it wrote; an extension moves
//! only the database's expiry. Every worker runs [`ExpiryLabels`]: it finds
//! the live environments whose labels say another expiry than their own
//! (`Store::expiry_labels_lagging`), patches that one label on the namespace
//! and on those objects, and records what the labels now say.
//!
//! A JSON merge patch of the label, not a server-side apply: an apply of a
//! partial object would take from hubwright's field manager every field it
//! left out (the quota's limits, the policies' rules). The label stays
//! hubwright's, and the step's next apply sets it as before.
//!
//! Any number of workers may run it: a patch is idempotent, and two workers
//! relabelling one namespace only repeat each other. A namespace that is not
//! the environment's is never touched, one that is gone or going has nothing
//! to relabel; both are recorded as done. A cluster that fails is tried
//! again at the next pass.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hubwright_state::Store;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use super::guard_rails::{ALLOW_PROXY, DENY_INGRESS, LIMIT_RANGE, QUOTA};
use super::target::{EXPIRES_AT_LABEL, Target, expires_at_label};
use crate::kubernetes::errors::is_status;
use crate::kubernetes::{ClusterClients, FIELD_MANAGER};
use crate::step::StepError;

/// Environments read from the database at a time.
const PAGE: i64 = 100;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relabelled {
    /// Environments whose labels now say their expiry (or that have no
    /// namespace of theirs to label).
    pub done: u64,
    /// Environments whose cluster failed; tried again at the next pass.
    pub failed: u64,
}

/// Carries extensions to the namespaces' expiry labels.
#[derive(Debug)]
pub struct ExpiryLabels {
    store: Store,
    clusters: Arc<ClusterClients>,
    interval: Duration,
}

impl ExpiryLabels {
    /// Looks for lagging labels every `interval`.
    pub fn new(store: Store, clusters: Arc<ClusterClients>, interval: Duration) -> Self {
        Self {
            store,
            clusters,
            interval,
        }
    }

    /// One pass over every environment whose labels lag its expiry.
    pub async fn pass(&self) -> crate::Result<Relabelled> {
        let mut outcome = Relabelled::default();
        let mut after = None;
        loop {
            let page = self.store.expiry_labels_lagging(after, PAGE).await?;
            for &id in &page {
                match self.relabel(id).await {
                    Ok(()) => outcome.done += 1,
                    Err(err) => {
                        outcome.failed += 1;
                        tracing::warn!(environment = %id, error = %err.message,
                            "could not carry the environment's new expiry to its namespace's labels; trying again at the next pass");
                    }
                }
            }
            if page.len() < PAGE as usize {
                break;
            }
            after = page.last().copied();
        }
        for (outcome, count) in [("relabelled", outcome.done), ("failed", outcome.failed)] {
            if count > 0 {
                metrics::counter!(crate::metrics::EXPIRY_RELABELS, "outcome" => outcome)
                    .increment(count);
            }
        }
        Ok(outcome)
    }

    async fn relabel(&self, id: Uuid) -> Result<(), StepError> {
        let env = self
            .store
            .environment(id)
            .await
            .map_err(|err| StepError::retryable(format!("reading the environment: {err}")))?;
        let target = Target::of(&self.clusters, &env).await?;
        let namespaces: Api<Namespace> = Api::all(target.client.clone());
        let label = json!({ "metadata": { "labels": {
            EXPIRES_AT_LABEL: expires_at_label(env.expires_at)
        } } });
        match target.get_namespace(&namespaces).await? {
            Some(ns) if ns.metadata.deletion_timestamp.is_none() => {
                if target.check_ours(&ns, &env).is_ok() {
                    target.patch(&namespaces, &target.namespace, &label).await?;
                    target.patch_inside::<ResourceQuota>(QUOTA, &label).await?;
                    target
                        .patch_inside::<LimitRange>(LIMIT_RANGE, &label)
                        .await?;
                    for name in [DENY_INGRESS, ALLOW_PROXY] {
                        target.patch_inside::<NetworkPolicy>(name, &label).await?;
                    }
                } else {
                    tracing::warn!(environment = %id, namespace = %target.namespace,
                        "the environment's namespace is not its own; its labels are left alone");
                }
            }
            // Gone or going: nothing carries the label any more.
            _ => {}
        }
        self.store
            .expiry_labelled(id, env.expires_at)
            .await
            .map_err(|err| StepError::retryable(format!("recording the expiry label: {err}")))
    }

    /// Relabels at start and then every `interval` until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> crate::Result<()> {
        crate::periodic::every("expiry label", self.interval, shutdown, || self.pass()).await;
        Ok(())
    }
}

impl Target {
    /// [`Target::patch`] of an object in the namespace.
    async fn patch_inside<K>(&self, name: &str, patch: &Value) -> Result<(), StepError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        self.patch(&api, name, patch).await
    }

    /// Merge-patches `patch` into object `name`; one that does not exist
    /// (a quota the template does not set) has nothing to patch.
    async fn patch<K>(&self, api: &Api<K>, name: &str, patch: &Value) -> Result<(), StepError>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        match api.patch(name, &params, &Patch::Merge(patch)).await {
            Ok(_) => Ok(()),
            Err(err) if is_status(&err, 404) => Ok(()),
            Err(err) => Err(self.call("patch", &K::plural(&()), name).error(&err)),
        }
    }
}
