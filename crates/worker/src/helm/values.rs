//! Helm values from a minijinja template: the request's parameters, the
//! environment, the cluster and earlier steps' outputs in, YAML out.
//!
//! Secrets are not in the context, so no template can put one in values: the
//! hub reads its credentials from the Kubernetes Secret by name.

use std::path::Path;

use minijinja::{Environment, UndefinedBehavior, value::Serde};
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
}
