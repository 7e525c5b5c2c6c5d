//! Step kinds that talk to Kubernetes, and the cluster clients they share.
//!
//! - [`ClusterClients`]: one client per configured cluster, built once.
//! - `namespace` / `namespace-delete`: the environment's namespace.
//!
//! Errors are classified where they are born ([`errors`]): unreachable,
//! throttled or 5xx is retried; 401/403 and invalid objects are permanent and
//! say which cluster, verb and object.

mod clusters;
pub mod errors;
pub mod namespace;

use std::sync::Arc;

use serde_json::Value;

pub use clusters::ClusterClients;
pub use namespace::{NamespaceDeleteStep, NamespaceStep};

use crate::registry::Registry;
use crate::step::StepError;

/// The field manager of every server-side apply hubwright makes.
pub const FIELD_MANAGER: &str = "hubwright";

/// Registers the Kubernetes step kinds over `clusters`.
pub fn register(registry: &mut Registry, clusters: &Arc<ClusterClients>) {
    registry
        .register(NamespaceStep::new(Arc::clone(clusters)))
        .register(NamespaceDeleteStep::new(Arc::clone(clusters)));
}

/// `text` with each `{parameter}` replaced by that parameter of the run's
/// input, so workflow files can size objects from the request. `place` names
/// the field in messages.
pub fn fill(text: &str, input: &Value, place: &str) -> Result<String, StepError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            return Err(StepError::permanent(format!(
                "{place}: `{text}` has a `{{` without its `}}`"
            )));
        };
        let name = &after[..end];
        let value = match input.get(name) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            Some(Value::Bool(flag)) => flag.to_string(),
            _ => {
                return Err(StepError::permanent(format!(
                    "{place}: `{{{name}}}` names no parameter of this run"
                )));
            }
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parameters_fill_their_places_and_unknown_ones_are_named() {
        let input = json!({ "cpu": 2, "memory": "4Gi" });
        assert_eq!(fill("{cpu}", &input, "q").unwrap(), "2");
        assert_eq!(fill("x-{memory}-y", &input, "q").unwrap(), "x-4Gi-y");
        assert_eq!(fill("plain", &input, "q").unwrap(), "plain");
        let err = fill("{gpu}", &input, "quota.gpu").unwrap_err();
        assert!(
            err.message.contains("quota.gpu") && err.message.contains("{gpu}"),
            "{err}"
        );
        assert!(fill("{cpu", &input, "q").is_err());
    }
}
