//! The parameters a submitted request form asks for: each answer as the
//! JSON type the template's schema declares.
//!
//! Every rule is left to the API, which names the one a value breaks: a
//! value that does not parse as its type is sent as the text it is, for the
//! API to refuse. An empty field is left out of the request (the template's
//! default applies, or the API says the parameter is required), except a
//! list, which is sent as typed: clearing a pre-filled list asks for an
//! empty one.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::parameter_form::{PREFIX, properties, read_only, text};

/// The last value sent for each form field (a checkbox sends a hidden
/// `false` before its `true`).
pub(crate) fn last_values(pairs: &[(String, String)]) -> HashMap<String, String> {
    pairs.iter().cloned().collect()
}

/// `raw` as the JSON type `property` declares, or `None` to leave it out.
fn convert(property: &Value, raw: &str) -> Option<Value> {
    let kind = property["type"].as_str().unwrap_or("string");
    if kind == "boolean" {
        return Some(json!(raw == "true"));
    }
    if kind == "array" {
        let items: Vec<&str> = raw
            .split([',', '\n'])
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .collect();
        return Some(json!(items));
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return None;
    }
    if let Some(allowed) = property["enum"].as_array() {
        let chosen = allowed.iter().find(|value| text(value) == trimmed);
        return Some(chosen.cloned().unwrap_or_else(|| json!(trimmed)));
    }
    Some(match kind {
        "integer" => trimmed
            .parse::<i64>()
            .map_or_else(|_| json!(trimmed), |n| json!(n)),
        "number" => match trimmed.parse::<f64>() {
            Ok(n) if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.0e15 => json!(n as i64),
            Ok(n) if n.is_finite() => json!(n),
            _ => json!(trimmed),
        },
        _ => json!(raw),
    })
}

/// The `parameters` of a request from the submitted form.
pub(crate) fn parameters(
    template: &Value,
    submitted: &HashMap<String, String>,
) -> Map<String, Value> {
    properties(&template["parameters"])
        .filter(|(_, property)| !read_only(property))
        .filter_map(|(name, property)| {
            let raw = submitted.get(&format!("{PREFIX}{name}"))?;
            Some((name.clone(), convert(property, raw)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    "users": {"type": "array", "items": {"type": "string"}, "default": ["a", "b"]},
                    "image": {"type": "string", "maxLength": 64},
                    "quota": {"type": "string", "default": "20", "readOnly": true}
                }
            }
        })
    }

    fn submitted(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn answers_become_json_of_the_declared_types_and_bad_numbers_stay_text() {
        let sent = parameters(
            &template(),
            &submitted(&[
                ("cpu", "2.5"),
                ("seats", "three"),
                ("gpu", "true"),
                ("profile", "gpu"),
                ("users", "ann, bo\ncy\n"),
                ("image", ""),
                ("quota", "99"),
                ("unknown", "x"),
            ]),
        );
        assert_eq!(
            Value::Object(sent),
            json!({"cpu": 2.5, "seats": "three", "gpu": true, "profile": "gpu", "users": ["ann", "bo", "cy"]})
        );
        let whole = parameters(&template(), &submitted(&[("cpu", "2"), ("users", "")]));
        assert_eq!(Value::Object(whole), json!({"cpu": 2, "users": []}));
    }

    #[test]
    fn a_checkbox_counts_as_its_last_value() {
        let pairs = [("param.gpu", "false"), ("param.gpu", "true")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let values = last_values(&pairs);
        assert_eq!(
            Value::Object(parameters(&template(), &values)),
            json!({"gpu": true})
        );
    }
}
