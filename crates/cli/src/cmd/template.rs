//! `hubwright template ...`: the templates environments are made from, with
//! their parameters, as the API describes them (`GET /v1/templates`).

use std::process::ExitCode;

use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{Client, ClientError, segment};
use crate::output::{self, Format, Listing};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the templates you may request environments from.
    #[command(
        after_help = "Examples:\n  hubwright template list\n  hubwright template list -o json | jq '.[].name'"
    )]
    List,
    /// Show a template: its parameters with their types, defaults and bounds, and its TTLs.
    #[command(after_help = "Example:\n  hubwright template show jupyterhub")]
    Show {
        /// The template's name.
        name: String,
    },
}

/// A template as the API describes it; the rest of its fields are kept for -o json.
#[derive(Debug, Serialize, Deserialize)]
struct Template {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    parameters: Value,
    #[serde(default)]
    ttl: Value,
    #[serde(default)]
    clusters: Vec<String>,
    #[serde(default)]
    usable: bool,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct TemplateList {
    items: Vec<Template>,
    /// For operators: where the templates come from and how their last
    /// reload went.
    #[serde(default)]
    files: Option<Value>,
}

impl Listing for Template {
    const HEADERS: &'static [&'static str] = &[
        "NAME",
        "TTL",
        "MAX TTL",
        "CLUSTERS",
        "USABLE",
        "DESCRIPTION",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            text(&self.ttl["default"]),
            text(&self.ttl["maximum"]),
            self.clusters.join(","),
            if self.usable { "yes" } else { "no" }.to_owned(),
            self.description.clone(),
        ]
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

/// One parameter of `template show`.
#[derive(Debug, Serialize)]
struct Parameter {
    name: String,
    kind: String,
    default: String,
    allowed: String,
    description: String,
}

impl Listing for Parameter {
    const HEADERS: &'static [&'static str] =
        &["PARAMETER", "TYPE", "DEFAULT", "ALLOWED", "DESCRIPTION"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.kind.clone(),
            self.default.clone(),
            self.allowed.clone(),
            self.description.clone(),
        ]
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

pub async fn run(
    client: &Client,
    format: Format,
    command: Command,
) -> Result<ExitCode, ClientError> {
    match command {
        Command::List => {
            let list: TemplateList = client.get("/v1/templates").await?;
            output::print_list(format, &list.items);
            // On stderr, so `-o json` stays a list a script can read.
            if let Some(why) = list
                .files
                .as_ref()
                .and_then(|files| files["last_reload_error"].as_str())
            {
                eprintln!(
                    "warning: the template files on disk do not load; the templates above stay in force: {why}"
                );
            }
        }
        Command::Show { name } => {
            let template: Template = client
                .get(&format!("/v1/templates/{}", segment(&name)))
                .await?;
            output::print_one(format, &template, &template.name, || describe(&template));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A template for people: what it is, its TTLs, and a table of its parameters.
fn describe(template: &Template) -> String {
    let mut out = format!(
        "template {}  {}\n  ttl        {} (at most {})\n  clusters   {}\n",
        template.name,
        template.description,
        text(&template.ttl["default"]),
        text(&template.ttl["maximum"]),
        template.clusters.join(", "),
    );
    if !template.usable {
        out.push_str("  usable     no\n");
    }
    let required: Vec<&str> = template.parameters["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let parameters: Vec<Parameter> = template.parameters["properties"]
        .as_object()
        .map(|properties| {
            properties
                .iter()
                .map(|(name, schema)| parameter(name, schema, required.contains(&name.as_str())))
                .collect()
        })
        .unwrap_or_default();
    if !parameters.is_empty() {
        out.push('\n');
        out.push_str(&output::table(&parameters, false, true));
    }
    out
}

fn parameter(name: &str, schema: &Value, required: bool) -> Parameter {
    // A Kubernetes quantity carries its kind and bounds in an extension.
    let quantity = &schema["x-kubernetes-quantity"];
    let kind = match (&schema["type"], &schema["items"]["type"]) {
        _ if quantity.is_object() => match quantity["kind"].as_str() {
            Some(kind) => format!("{kind} quantity"),
            None => "quantity".to_owned(),
        },
        (Value::String(array), Value::String(item)) if array == "array" => {
            format!("list of {item}")
        }
        (Value::String(kind), _) => kind.clone(),
        _ => "any".to_owned(),
    };
    let bounds = if quantity.is_object() {
        quantity
    } else {
        schema
    };
    let allowed = if schema["readOnly"] == Value::Bool(true) {
        "set by the platform team".to_owned()
    } else if let Some(values) = schema["enum"].as_array() {
        values.iter().map(text).collect::<Vec<_>>().join("|")
    } else {
        match (&bounds["minimum"], &bounds["maximum"]) {
            (Value::Null, Value::Null) => "-".to_owned(),
            (Value::Null, high) => format!("at most {}", text(high)),
            (low, high) => format!("{} to {}", text(low), text(high)),
        }
    };
    Parameter {
        name: name.to_owned(),
        kind,
        default: if required {
            "(required)".to_owned()
        } else {
            text(&schema["default"])
        },
        allowed,
        description: schema["description"].as_str().unwrap_or("").to_owned(),
    }
}

/// A JSON value as a table cell: strings bare, nothing as `-`.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quantities_show_their_kind_and_bounds_and_operator_only_parameters_say_so() {
        let cpu = parameter(
            "cpu_limit",
            &json!({"type": "string", "pattern": "^…$", "default": "2",
                    "x-kubernetes-quantity": {"kind": "cpu", "minimum": "500m", "maximum": "16"}}),
            false,
        );
        assert_eq!(cpu.kind, "cpu quantity");
        assert_eq!(cpu.allowed, "500m to 16");
        let storage = parameter(
            "storage",
            &json!({"type": "string", "x-kubernetes-quantity": {"maximum": "100Gi"}}),
            false,
        );
        assert_eq!(
            (storage.kind.as_str(), storage.allowed.as_str()),
            ("quantity", "at most 100Gi")
        );
        let quota = parameter(
            "quota_cpu",
            &json!({"type": "string", "default": "20", "readOnly": true,
                    "x-kubernetes-quantity": {"kind": "cpu"}}),
            false,
        );
        assert_eq!(quota.allowed, "set by the platform team");
        assert_eq!(quota.default, "20");
    }
}
