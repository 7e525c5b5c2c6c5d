//! `{placeholder}` filling for step parameters, so workflow files can size
//! and name things from the request: a run's parameters by name (`{cpu_limit}`)
//! and the environment's facts (`{env.name}`, `{env.namespace}`, `{env.owner}`,
//! `{env.id}`, `{cluster.base_domain}`).

use hubwright_state::clusters::ClusterConfig;
use hubwright_state::model::Environment;
use serde_json::{Value, json};

use crate::step::StepError;

/// The values placeholders may name for a step of `env`'s run with `input`.
pub fn environment_values(
    input: &Value,
    env: &Environment,
    cluster: Option<&ClusterConfig>,
) -> Value {
    let mut values = input.as_object().cloned().unwrap_or_default();
    let facts = json!({
        "env.id": env.id.to_string(),
        "env.name": env.name,
        "env.owner": env.owner,
        "env.namespace": env.namespace,
        "env.template": env.template,
        "cluster.name": env.cluster,
        "cluster.base_domain": cluster.and_then(|c| c.base_domain.clone()),
    });
    if let Value::Object(facts) = facts {
        values.extend(facts.into_iter().filter(|(_, value)| !value.is_null()));
    }
    Value::Object(values)
}

/// `text` with each `{name}` replaced by that entry of `values`. `place` names
/// the field in messages.
pub fn fill(text: &str, values: &Value, place: &str) -> Result<String, StepError> {
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
        let value = match values.get(name) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            Some(Value::Bool(flag)) => flag.to_string(),
            _ => {
                return Err(StepError::permanent(format!(
                    "{place}: `{{{name}}}` names no parameter of this run and no fact of its environment"
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
