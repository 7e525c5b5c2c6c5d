//! Step kinds that talk to Kubernetes, and the cluster clients they share.
//!
//! - [`ClusterClients`]: one client per configured cluster, built once.
//! - `namespace` / `namespace-delete`: the environment's namespace.
//! - [`ExpiryLabels`]: extensions carried to the namespace's expiry label.
//!
//! Errors are classified where they are born ([`errors`]): unreachable,
//! throttled or 5xx is retried; 401/403 and invalid objects are permanent and
//! say which cluster, verb and object.

mod clusters;
pub mod errors;
pub mod namespace;
mod secret;

use std::sync::Arc;

pub use clusters::ClusterClients;
pub use namespace::{ExpiryLabels, NamespaceDeleteStep, NamespaceStep, Relabelled};
pub use secret::apply_secret;

use crate::registry::Registry;
use crate::step::StepError;

/// The namespace of `env` (fixed when it was requested).
pub fn namespace_of(env: &hubwright_state::model::Environment) -> Result<&str, StepError> {
    env.namespace
        .as_deref()
        .ok_or_else(|| StepError::permanent(format!("environment {} has no namespace", env.id)))
}

/// The field manager of every server-side apply hubwright makes.
pub const FIELD_MANAGER: &str = "hubwright";

/// Registers the Kubernetes step kinds over `clusters`.
pub fn register(registry: &mut Registry, clusters: &Arc<ClusterClients>) {
    registry
        .register(NamespaceStep::new(Arc::clone(clusters)))
        .register(NamespaceDeleteStep::new(Arc::clone(clusters)));
}
