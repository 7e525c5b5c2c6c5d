//! Helm values from a minijinja template: the request's parameters, the
//! environment, the cluster and earlier steps' outputs in, YAML out.
//!
//! Secrets are not in the context, so no template can put one in values: the
//! hub reads its credentials from the Kubernetes Secret by name.
//!
//! Two filters turn Kubernetes quantities (`500m`, `4Gi`) into what charts
//! that want plain numbers take: `cores` (a number of CPUs, `0.5`) and
//! `bytes` (a whole number of bytes, `4294967296`).

use std::path::Path;

use hubwright_state::workflow::Quantity;
use minijinja::{Environment, ErrorKind, UndefinedBehavior, value::Serde};
use serde_json::Value;

use crate::step::StepError;

/// Renders the template in `path` with `context`, and checks the result is
/// YAML (a chart given broken values fails far less clearly).
pub fn render(path: &Path, context: &Value) -> Result<String, StepError> {
    let source = std::fs::read_to_string(path).map_err(|err| {
        StepError::permanent(format!(
            "values template {}: cannot read it: {err}",
            path.display()
        ))
    })?;
    let mut env = Environment::new();
    // A misspelt name fails the step instead of rendering an empty value.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("cores", cores);
    env.add_filter("bytes", bytes);
    let rendered = env
        .render_str(&source, minijinja::Value::from(Serde(context)))
        .map_err(|err| {
            StepError::permanent(format!("values template {}: {err:#}", path.display()))
        })?;
    serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&rendered).map_err(|err| {
        StepError::permanent(format!(
            "values template {} renders YAML that does not parse: {err}",
            path.display()
        ))
    })?;
    Ok(rendered)
}

/// A parameter's value read as a quantity, whether written `"2"` or `2`.
fn quantity(value: &minijinja::Value) -> Result<Quantity, minijinja::Error> {
    let text = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned);
    text.parse().map_err(|err| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("`{text}` is not a Kubernetes quantity: {err}"),
        )
    })
}

/// `{{ params.cpu_limit | cores }}`: `500m` as `0.5`.
fn cores(value: minijinja::Value) -> Result<minijinja::Value, minijinja::Error> {
    Ok(minijinja::Value::from(quantity(&value)?.as_f64()))
}

/// `{{ params.memory_limit | bytes }}`: `4Gi` as `4294967296`.
fn bytes(value: minijinja::Value) -> Result<minijinja::Value, minijinja::Error> {
    let quantity = quantity(&value)?;
    quantity
        .whole_units()
        .and_then(|bytes| i64::try_from(bytes).ok())
        .map(minijinja::Value::from)
        .ok_or_else(|| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("`{value}` is not a whole number of bytes"),
            )
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template(text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("values-{}.yaml.j2", uuid::Uuid::now_v7()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_context_fills_the_template_and_a_misspelt_name_is_an_error() {
        let context = json!({ "params": { "image": "quay.io/jupyter/minimal-notebook:2024" }, "env": { "name": "lab" } });
        let ok = render(
            &template("singleuser:\n  image: {{ params.image | tojson }}\nname: {{ env.name }}\n"),
            &context,
        )
        .unwrap();
        assert!(
            ok.contains("\"quay.io/jupyter/minimal-notebook:2024\""),
            "{ok}"
        );
        let err = render(&template("x: {{ params.imgae }}\n"), &context).unwrap_err();
        assert!(err.message.contains("undefined"), "{}", err.message);
        let err = render(&template("x: [unclosed\n"), &context).unwrap_err();
        assert!(err.message.contains("does not parse"), "{}", err.message);
    }

    #[test]
    fn quantities_render_as_cores_and_bytes_for_charts_that_want_numbers() {
        let context =
            json!({ "params": { "cpu": "500m", "two": 2, "memory": "4Gi", "disk": "1G" } });
        let rendered = render(
            &template("cpu: {{ params.cpu | cores }}\ntwo: {{ params.two | cores }}\nmemory: {{ params.memory | bytes }}\ndisk: {{ params.disk | bytes }}\n"),
            &context,
        )
        .unwrap();
        let values: serde_yaml_ng::Value = serde_yaml_ng::from_str(&rendered).unwrap();
        assert_eq!(values["cpu"].as_f64(), Some(0.5));
        assert_eq!(values["two"].as_f64(), Some(2.0));
        assert_eq!(values["memory"].as_i64(), Some(4 << 30));
        assert_eq!(values["disk"].as_i64(), Some(1_000_000_000));
        let err = render(&template("x: {{ params.cpu | bytes }}\n"), &context).unwrap_err();
        assert!(
            err.message.contains("not a whole number of bytes"),
            "{}",
            err.message
        );
        let bad = json!({ "params": { "cpu": "abc" } });
        let err = render(&template("x: {{ params.cpu | cores }}\n"), &bad).unwrap_err();
        assert!(
            err.message.contains("`abc` is not a Kubernetes quantity"),
            "{}",
            err.message
        );
    }
}
