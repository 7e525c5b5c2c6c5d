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

/// `values` plus earlier steps' outputs as `steps.<step>.<field>` (scalars only).
pub fn with_outputs(mut values: Value, outputs: &serde_json::Map<String, Value>) -> Value {
    if let Value::Object(map) = &mut values {
        for (step, output) in outputs {
            if let Value::Object(fields) = output {
                for (field, value) in fields {
                    if !value.is_object() && !value.is_array() && !value.is_null() {
                        map.insert(format!("steps.{step}.{field}"), value.clone());
                    }
                }
            }
        }
    }
    values
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
        // `{name|fallback}` uses `fallback` when `name` has no value.
        let (name, fallback) = match after[..end].split_once('|') {
            Some((name, fallback)) => (name, Some(fallback)),
            None => (&after[..end], None),
        };
        let value = match (values.get(name), fallback) {
            (Some(Value::String(text)), _) => text.clone(),
            (Some(Value::Number(number)), _) => number.to_string(),
            (Some(Value::Bool(flag)), _) => flag.to_string(),
            (_, Some(fallback)) => fallback.to_owned(),
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
        assert_eq!(
            fill("{gpu|0}-{cpu|9}", &input, "q").unwrap(),
            "0-2",
            "fallbacks"
        );
        let outputs = json!({ "health": { "url": "http://hub", "nested": {} } });
        let values = with_outputs(input.clone(), outputs.as_object().unwrap());
        assert_eq!(
            fill("{steps.health.url}/x", &values, "q").unwrap(),
            "http://hub/x"
        );
        assert!(fill("{steps.health.nested}", &values, "q").is_err());
    }
}
