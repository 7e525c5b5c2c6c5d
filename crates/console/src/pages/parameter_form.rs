//! The request form generated from a template's parameter schema (the JSON
//! Schema `GET /v1/templates/{name}` answers with): a control per settable
//! parameter, with its bounds as HTML attributes so a browser helps early,
//! and the API's message for it after a refused request. The answers go
//! back as JSON in [`super::parameter_values`]; every rule stays the API's.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::api::ApiProblem;

/// Parameters' form fields are named `param.<name>`, apart from the
/// request's own fields (`name`, `ttl`, `cluster`).
pub(crate) const PREFIX: &str = "param.";

/// One control of the form.
#[derive(Debug, Serialize)]
pub(crate) struct Field {
    /// The parameter's name, as the template declares it (and the API's
    /// messages call it).
    name: String,
    /// The form field's name.
    key: String,
    /// The control's id, unique on the page.
    id: String,
    /// `text`, `number`, `checkbox`, `select` or `textarea`.
    control: &'static str,
    /// The parameter's description and its bounds in words.
    help: Option<String>,
    /// What the control holds: the user's input, or the default.
    value: String,
    /// For a checkbox.
    checked: bool,
    required: bool,
    min: Option<String>,
    max: Option<String>,
    /// `1` for integers, `any` for other numbers.
    step: Option<&'static str>,
    maxlength: Option<u64>,
    pattern: Option<String>,
    /// A select's choices.
    options: Vec<Choice>,
    /// The API's message for this parameter.
    error: Option<String>,
}

/// One choice of a select.
#[derive(Debug, Serialize)]
pub(crate) struct Choice {
    value: String,
    label: String,
    selected: bool,
    /// A profile the policy does not let this user choose.
    disabled: bool,
}

/// A parameter the platform team sets (`readOnly`): shown, not asked.
#[derive(Debug, Serialize)]
pub(crate) struct Fixed {
    name: String,
    value: String,
    description: Option<String>,
}

/// `value` as a form shows it: text as is, lists one per line.
pub(super) fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join("\n"),
        other => other.to_string(),
    }
}

pub(super) fn properties(schema: &Value) -> impl Iterator<Item = (&String, &Value)> {
    schema["properties"].as_object().into_iter().flatten()
}

pub(super) fn read_only(property: &Value) -> bool {
    property["readOnly"].as_bool() == Some(true)
}

/// The JSON pointer the API's messages use for parameter `name`.
pub(crate) fn pointer(name: &str) -> String {
    format!("/parameters/{}", name.replace('~', "~0").replace('/', "~1"))
}

/// An id made of what HTML ids and CSS selectors take without escapes.
fn control_id(name: &str, taken: &mut HashSet<String>) -> String {
    let base: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut id = format!("param-{base}");
    let mut n = 2;
    while !taken.insert(id.clone()) {
        id = format!("param-{base}-{n}");
        n += 1;
    }
    id
}

/// The bounds of `property` in words, for its help text.
fn bounds(property: &Value) -> Option<String> {
    let (min, max) = match property.get("x-kubernetes-quantity") {
        Some(quantity) => (&quantity["minimum"], &quantity["maximum"]),
        None => (&property["minimum"], &property["maximum"]),
    };
    let range = match (text(min), text(max)) {
        (min, max) if !min.is_empty() && !max.is_empty() => Some(format!("From {min} to {max}.")),
        (min, _) if !min.is_empty() => Some(format!("At least {min}.")),
        (_, max) if !max.is_empty() => Some(format!("At most {max}.")),
        _ => None,
    };
    let mut words = Vec::new();
    if property.get("x-kubernetes-quantity").is_some() {
        words.push("A Kubernetes quantity, e.g. 500m, 2 or 16Gi.".to_owned());
    }
    if property["type"] == "array" {
        words.push("One per line, or separated by commas.".to_owned());
        if let Some(most) = property["maxItems"].as_u64() {
            words.push(format!("At most {most}."));
        }
    }
    words.extend(range);
    (!words.is_empty()).then(|| words.join(" "))
}

/// The choices of an enum, marking the profiles the user may not choose.
fn choices(allowed: &[Value], current: &str, profiles: &Value) -> Vec<Choice> {
    let denied: HashSet<&str> = profiles
        .as_array()
        .into_iter()
        .flatten()
        .filter(|profile| profile["usable"] == false)
        .filter_map(|profile| profile["name"].as_str())
        .collect();
    let is_profile = profiles.as_array().is_some_and(|profiles| {
        profiles.len() == allowed.len()
            && profiles
                .iter()
                .zip(allowed)
                .all(|(profile, value)| profile["name"].as_str() == value.as_str())
    });
    allowed
        .iter()
        .map(|value| {
            let value = text(value);
            let disabled = is_profile && denied.contains(value.as_str());
            Choice {
                label: if disabled {
                    format!("{value} (not available to you)")
                } else {
                    value.clone()
                },
                selected: value == current,
                disabled,
                value,
            }
        })
        .collect()
}

/// The controls for `template`'s settable parameters, holding `submitted`
/// (or the defaults), each with the API's message from `problem`; and the
/// parameters the platform team sets.
pub(crate) fn fields(
    template: &Value,
    submitted: Option<&HashMap<String, String>>,
    problem: Option<&ApiProblem>,
) -> (Vec<Field>, Vec<Fixed>) {
    let schema = &template["parameters"];
    let required: HashSet<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut taken = HashSet::new();
    let mut fields = Vec::new();
    let mut fixed = Vec::new();
    for (name, property) in properties(schema) {
        let description = property["description"].as_str().map(str::to_owned);
        if read_only(property) {
            fixed.push(Fixed {
                name: name.clone(),
                value: text(&property["default"]),
                description,
            });
            continue;
        }
        let key = format!("{PREFIX}{name}");
        let value = match submitted {
            Some(values) => values.get(&key).cloned().unwrap_or_default(),
            None => text(&property["default"]),
        };
        let kind = property["type"].as_str().unwrap_or("string");
        let allowed = property["enum"].as_array();
        let control = match (kind, allowed) {
            (_, Some(_)) => "select",
            ("boolean", _) => "checkbox",
            ("integer" | "number", _) => "number",
            ("array", _) => "textarea",
            _ => "text",
        };
        let rules = if kind == "array" {
            &property["items"]
        } else {
            property
        };
        let help = [description, bounds(property)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        fields.push(Field {
            id: control_id(name, &mut taken),
            control,
            help: (!help.is_empty()).then_some(help),
            checked: value == "true",
            required: required.contains(name.as_str()) && kind != "boolean",
            min: (control == "number")
                .then(|| text(&property["minimum"]))
                .filter(|t| !t.is_empty()),
            max: (control == "number")
                .then(|| text(&property["maximum"]))
                .filter(|t| !t.is_empty()),
            step: (control == "number").then_some(if kind == "integer" { "1" } else { "any" }),
            maxlength: rules["maxLength"].as_u64().filter(|_| kind != "array"),
            pattern: rules["pattern"]
                .as_str()
                .filter(|_| control == "text")
                .map(str::to_owned),
            options: allowed
                .map(|allowed| choices(allowed, &value, &template["profiles"]))
                .unwrap_or_default(),
            error: problem
                .and_then(|problem| problem.for_field(&pointer(name)))
                .map(str::to_owned),
            value,
            key,
            name: name.clone(),
        });
    }
    (fields, fixed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({
            "parameters": {
                "type": "object",
                "required": ["seats"],
                "properties": {
                    "cpu": {"type": "number", "default": 1, "minimum": 0.5, "maximum": 4},
                    "seats": {"type": "integer", "minimum": 1},
                    "gpu": {"type": "boolean", "default": false},
                    "profile": {"type": "string", "enum": ["small", "gpu"], "default": "small"},
                    "users": {"type": "array", "items": {"type": "string", "maxLength": 9}, "default": ["a", "b"]},
                    "image": {"type": "string", "maxLength": 64, "pattern": "^[a-z]+$", "description": "The image."},
                    "quota": {"type": "string", "default": "20", "readOnly": true}
                }
            },
            "profiles": [{"name": "small", "usable": true}, {"name": "gpu", "usable": false}]
        })
    }

    #[test]
    fn each_settable_parameter_gets_a_control_of_its_type_with_its_bounds_and_default() {
        let (fields, fixed) = fields(&template(), None, None);
        let by_name = |name: &str| fields.iter().find(|f| f.name == name).unwrap();
        assert_eq!(
            fixed.len(),
            1,
            "the platform's parameter is shown, not asked"
        );
        assert_eq!(by_name("cpu").control, "number");
        assert_eq!(by_name("cpu").min.as_deref(), Some("0.5"));
        assert_eq!(by_name("cpu").step, Some("any"));
        assert_eq!(by_name("seats").step, Some("1"));
        assert!(by_name("seats").required);
        assert_eq!(by_name("gpu").control, "checkbox");
        assert_eq!(by_name("users").control, "textarea");
        assert_eq!(by_name("users").value, "a\nb");
        let image = by_name("image");
        assert_eq!(
            (image.maxlength, image.pattern.as_deref()),
            (Some(64), Some("^[a-z]+$"))
        );
        let profile = by_name("profile");
        assert_eq!(profile.control, "select");
        assert!(profile.options[0].selected && !profile.options[0].disabled);
        assert!(profile.options[1].disabled, "a profile the policy denies");
    }

    #[test]
    fn a_parameters_message_is_found_by_its_escaped_pointer() {
        assert_eq!(pointer("a/b~c"), "/parameters/a~1b~0c");
    }
}
