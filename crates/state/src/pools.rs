//! The warm pools a catalog declares, one plan per template and cluster:
//! what the scheduler fills, what `GET /v1/pools` reports, and what a
//! request consults to take a member.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::store::pool_fill::{PoolFill, PoolStats, PoolTarget};
use crate::store::pools::PoolRequest;
use crate::workflow::{ASSIGN_WORKFLOW, Catalog, Snapshot, Template};
use crate::{Result, Store};

/// One pool on one cluster, with everything its fills and claims need.
#[derive(Debug, Clone)]
pub struct PoolPlan {
    template: Template,
    cluster: String,
    digest: String,
    parameters: Map<String, Value>,
    provision: (Snapshot, i64),
    assign: (Snapshot, i64),
    teardown_definition_id: i64,
}

impl PoolPlan {
    /// The plans of every pool in `catalog` (registered), in template and
    /// cluster order. A template whose workflows are not registered has
    /// none (the loader requires them, so only an unregistered catalog).
    pub fn all(catalog: &Catalog) -> Vec<Self> {
        let mut plans = Vec::new();
        for name in catalog.names() {
            let clusters = catalog
                .template(name)
                .and_then(|loaded| loaded.template.pool.as_ref())
                .map(|pool| pool.clusters.clone())
                .unwrap_or_default();
            plans.extend(
                clusters
                    .iter()
                    .filter_map(|cluster| Self::of(catalog, name, cluster)),
            );
        }
        plans
    }

    /// The plan for `template` on `cluster`, if it keeps a pool there.
    pub fn of(catalog: &Catalog, name: &str, cluster: &str) -> Option<Self> {
        let template = &catalog.template(name)?.template;
        let pool = template.pool.as_ref()?;
        if !pool.clusters.iter().any(|c| c == cluster) {
            return None;
        }
        let provision = catalog.definition(name, "provision")?;
        let assign = catalog.definition(name, ASSIGN_WORKFLOW)?;
        let (_, teardown) = catalog.definition(name, "teardown")?;
        Some(Self {
            template: template.clone(),
            cluster: cluster.to_owned(),
            digest: template.pool_digest()?,
            parameters: template.pool_parameters()?,
            provision: (provision.0.clone(), provision.1),
            assign: (assign.0.clone(), assign.1),
            teardown_definition_id: teardown,
        })
    }

    /// The template's name.
    pub fn template(&self) -> &str {
        &self.template.name
    }

    /// The cluster.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Members to keep.
    pub fn size(&self) -> u32 {
        self.template.pool.as_ref().map_or(0, |pool| pool.size)
    }

    /// Brings the pool to its size (see [`Store::fill_pool`]).
    pub async fn fill(&self, store: &Store, now: DateTime<Utc>) -> Result<PoolFill> {
        let max_idle = self
            .template
            .pool
            .as_ref()
            .map(|pool| pool.max_idle.to_chrono())
            .unwrap_or_default();
        let target = PoolTarget {
            template: &self.template,
            cluster: &self.cluster,
            size: self.size(),
            digest: &self.digest,
            parameters: Value::Object(self.parameters.clone()),
            max_idle,
            provision: (&self.provision.0, self.provision.1),
            teardown_definition_id: self.teardown_definition_id,
        };
        store.fill_pool(&target, now).await
    }

    /// The pool's figures now.
    pub async fn stats(&self, store: &Store, now: DateTime<Utc>) -> Result<PoolStats> {
        store
            .pool_stats(
                &self.template.name,
                &self.cluster,
                self.size(),
                &self.digest,
                now,
            )
            .await
    }

    /// What a request with these resolved parameters needs to take a
    /// member, or why the pool cannot serve it (a parameter it may not
    /// choose differs from the pool's).
    pub fn request(&self, requested: &Map<String, Value>) -> Result<PoolRequest<'_>, String> {
        self.template.pool_serves(&self.parameters, requested)?;
        let claimed = self
            .template
            .pool
            .as_ref()
            .map(|pool| pool.claimed_parameters(&self.parameters, requested))
            .unwrap_or_default();
        Ok(PoolRequest {
            digest: &self.digest,
            claimed_parameters: Value::Object(claimed),
            assign: (&self.assign.0, self.assign.1),
        })
    }
}
