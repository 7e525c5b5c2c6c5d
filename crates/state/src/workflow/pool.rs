//! Warm pools: a template may keep a few environments provisioned ahead of
//! any request, so that a request it can serve takes one over instead of
//! waiting for a cold provisioning (see `docs/decisions/0024-warm-pools.md`).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Dur, Snapshot, Template, WorkflowError};

/// The most members one pool may keep per cluster: a pool is a cache of a
/// few hubs, not a fleet.
pub const MAX_POOL_SIZE: u32 = 50;

/// The workflow that hands a claimed member over to its requester.
pub const ASSIGN_WORKFLOW: &str = "assign";

/// The owner of a template's unclaimed members: `pool:<template>`. A colon
/// never appears in a principal's subject that may own environments, so no
/// developer can be this owner (see [`is_pool_owner`]).
pub fn pool_owner(template: &str) -> String {
    format!("pool:{template}")
}

/// Whether `owner` is reserved for pools.
pub fn is_pool_owner(owner: &str) -> bool {
    owner.starts_with("pool:")
}

/// A template's `pool:` block: how many ready members to keep on which
/// clusters, built with which parameters, for how long, and what a claim may
/// still choose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Members to keep per cluster (ready or on their way), 0 to
    /// [`MAX_POOL_SIZE`]; 0 keeps the declaration but builds nothing.
    pub size: u32,
    /// The parameters members are built with, checked like a request's;
    /// defaults fill the rest.
    #[serde(default)]
    pub parameters: Map<String, Value>,
    /// How long a member may wait unclaimed, from its request, before it is
    /// torn down and replaced (fresh images, fresh certificates).
    #[serde(default = "default_max_idle")]
    pub max_idle: Dur,
    /// Parameters a claim may set to other values than the pool's; every
    /// other parameter of the request must equal the pool's for a claim.
    /// The owner always changes.
    #[serde(default)]
    pub claimable: Vec<String>,
    /// Clusters that keep a pool (default: `default`).
    #[serde(default = "default_clusters")]
    pub clusters: Vec<String>,
}

fn default_max_idle() -> Dur {
    Dur::from_secs(24 * 3600)
}

fn default_clusters() -> Vec<String> {
    vec!["default".to_owned()]
}

impl Template {
    /// The pool's members' parameters: the pool's, defaults filling the
    /// rest. The platform team writes them, so operator-only parameters may
    /// be set too; the loader has checked every value. `None` without a pool.
    pub fn pool_parameters(&self) -> Option<Map<String, Value>> {
        let pool = self.pool.as_ref()?;
        Some(
            self.parameters
                .iter()
                .filter_map(|(name, spec)| {
                    let value = pool.parameters.get(name).or(spec.default.as_ref())?;
                    Some((name.clone(), value.clone()))
                })
                .collect(),
        )
    }

    /// What a member was built from: the provisioning workflow, the
    /// namespace pattern, the parameter declarations and the pool's
    /// parameters and claimable names. Members of another digest are
    /// recycled; the size and idle time change no member.
    pub fn pool_digest(&self) -> Option<String> {
        let pool = self.pool.as_ref()?;
        let provision = Snapshot::of(self, "provision").map(|s| s.to_json());
        let assign = Snapshot::of(self, ASSIGN_WORKFLOW).map(|s| s.to_json());
        let basis = json!({
            "provision": provision,
            "assign": assign,
            "namespace": self.namespace,
            "parameters": serde_json::to_value(&self.parameters).unwrap_or(Value::Null),
            "pool": { "parameters": pool.parameters, "claimable": pool.claimable },
        });
        Some(crate::digest::sha256_hex(basis.to_string().as_bytes()))
    }

    /// Whether a request with these resolved parameters can take a member:
    /// every parameter a request may set, and the pool does not let a claim
    /// choose, equals the pool's. Operator-only parameters are the platform
    /// team's either way, so the pool's stand. `Err` names the first that
    /// differs, for the miss event.
    pub fn pool_serves(
        &self,
        pool_parameters: &Map<String, Value>,
        requested: &Map<String, Value>,
    ) -> Result<(), String> {
        let Some(pool) = &self.pool else {
            return Err(format!("template `{}` has no pool", self.name));
        };
        for (name, value) in requested {
            let fixed = self.parameters.get(name).is_some_and(|spec| !spec.settable);
            if fixed || pool.claimable.iter().any(|c| c == name) {
                continue;
            }
            if pool_parameters.get(name) != Some(value) {
                return Err(format!("parameter `{name}` differs from the pool's"));
            }
        }
        Ok(())
    }
}

impl PoolSpec {
    /// The parameters of a member claimed by a request: the member's, with
    /// the request's values for the claimable ones.
    pub fn claimed_parameters(
        &self,
        member: &Map<String, Value>,
        requested: &Map<String, Value>,
    ) -> Map<String, Value> {
        let mut parameters = member.clone();
        for name in &self.claimable {
            if let Some(value) = requested.get(name) {
                parameters.insert(name.clone(), value.clone());
            }
        }
        parameters
    }
}

/// Checks a template's `pool:` block; called by the loader.
pub(super) fn check_pool(path: &Path, template: &Template) -> Result<(), WorkflowError> {
    let Some(pool) = &template.pool else {
        return Ok(());
    };
    if pool.size > MAX_POOL_SIZE {
        return Err(WorkflowError::new(
            path,
            "pool.size",
            format!("must be at most {MAX_POOL_SIZE} (got {})", pool.size),
        ));
    }
    if pool.max_idle < Dur::from_secs(60) || pool.max_idle > template.ttl.maximum {
        return Err(WorkflowError::new(
            path,
            "pool.max_idle",
            format!(
                "must be at least 1m and at most the template's ttl.maximum ({})",
                template.ttl.maximum
            ),
        ));
    }
    for name in &pool.claimable {
        match template.parameters.get(name) {
            None => {
                return Err(WorkflowError::new(
                    path,
                    "pool.claimable",
                    format!("`{name}` is not a parameter of the template"),
                ));
            }
            Some(spec) if !spec.settable => {
                return Err(WorkflowError::new(
                    path,
                    "pool.claimable",
                    format!("`{name}` is set by the platform team; a claim cannot choose it"),
                ));
            }
            Some(_) => {}
        }
    }
    if pool.clusters.is_empty() {
        return Err(WorkflowError::new(
            path,
            "pool.clusters",
            "must name at least one cluster",
        ));
    }
    if let Some(bad) = pool
        .clusters
        .iter()
        .find(|c| !super::is_dns_label(c, super::MAX_NAMESPACE))
    {
        return Err(WorkflowError::new(
            path,
            "pool.clusters",
            format!("`{bad}` is not a cluster name (a DNS-1123 label)"),
        ));
    }
    // The pool's parameters are set by the platform team, so operator-only
    // parameters may be given here too; only unknown names and bad values fail.
    if let Some(unknown) = pool
        .parameters
        .keys()
        .find(|name| !template.parameters.contains_key(*name))
    {
        return Err(WorkflowError::new(
            path,
            format!("pool.parameters.{unknown}"),
            "is not a parameter of the template",
        ));
    }
    for (name, value) in &pool.parameters {
        if let Some(spec) = template.parameters.get(name) {
            spec.accept(value).map_err(|rule| {
                WorkflowError::new(path, format!("pool.parameters.{name}"), rule)
            })?;
        }
    }
    for (name, spec) in &template.parameters {
        if spec.default.is_none() && !pool.parameters.contains_key(name) {
            return Err(WorkflowError::new(
                path,
                format!("pool.parameters.{name}"),
                "is required: the template gives it no default",
            ));
        }
    }
    for workflow in ["provision", "teardown", ASSIGN_WORKFLOW] {
        if !template.workflows.contains_key(workflow) {
            return Err(WorkflowError::new(
                path,
                "pool",
                format!(
                    "a template with a pool needs a `{workflow}` workflow (members are provisioned, handed over by `{ASSIGN_WORKFLOW}`, and torn down when recycled)"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
