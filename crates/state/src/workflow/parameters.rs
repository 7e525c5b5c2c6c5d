//! A template's declared parameters, and the validation of a request against them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Template;
use crate::Error;

/// The JSON type a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParameterType {
    /// Any string.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// true or false.
    Boolean,
    /// A list of strings.
    Strings,
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterSpec {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ParameterType,
    /// One line for humans.
    #[serde(default)]
    pub description: String,
    /// Used when the request leaves it out; without one the parameter is required.
    #[serde(default)]
    pub default: Option<Value>,
    /// The only values allowed, when given.
    #[serde(default, rename = "enum")]
    pub one_of: Option<Vec<Value>>,
    /// Lower bound for numbers.
    #[serde(default)]
    pub minimum: Option<f64>,
    /// Upper bound for numbers.
    #[serde(default)]
    pub maximum: Option<f64>,
}

impl ParameterSpec {
    /// Checks the declaration itself: a default must satisfy its own rules.
    pub(crate) fn check(&self, place: &str) -> Result<(), String> {
        if let Some(default) = &self.default {
            self.accept(default).map_err(|rule| {
                format!("default {default} breaks the parameter's own rule: {rule} ({place})")
            })?;
        }
        Ok(())
    }

    /// `Ok` when `value` fits; otherwise the rule it breaks.
    fn accept(&self, value: &Value) -> Result<(), String> {
        let type_ok = match self.kind {
            ParameterType::String => value.is_string(),
            ParameterType::Integer => value.is_i64() || value.is_u64(),
            ParameterType::Number => value.is_number(),
            ParameterType::Boolean => value.is_boolean(),
            ParameterType::Strings => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
        };
        if !type_ok {
            let expected = match self.kind {
                ParameterType::String => "a string",
                ParameterType::Integer => "a whole number",
                ParameterType::Number => "a number",
                ParameterType::Boolean => "true or false",
                ParameterType::Strings => "a list of strings",
            };
            return Err(format!("must be {expected}"));
        }
        if let Some(allowed) = &self.one_of
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            return Err(format!("must be one of {}", list.join(", ")));
        }
        if let Some(number) = value.as_f64() {
            if let Some(min) = self.minimum
                && number < min
            {
                return Err(format!("must be at least {min}"));
            }
            if let Some(max) = self.maximum
                && number > max
            {
                return Err(format!("must be at most {max}"));
            }
        }
        Ok(())
    }
}

impl Template {
    /// Validates a request's parameters: unknown names are refused, every value must
    /// fit its declaration, and defaults fill what is left out. The error names the
    /// parameter and the rule.
    pub fn resolve_parameters(
        &self,
        given: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Error> {
        if let Some(unknown) = given
            .keys()
            .find(|name| !self.parameters.contains_key(*name))
        {
            let known: Vec<&str> = self.parameters.keys().map(String::as_str).collect();
            return Err(Error::Invalid {
                field: format!("parameters.{unknown}"),
                rule: format!(
                    "template `{}` declares no such parameter (known: {})",
                    self.name,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            });
        }
        let mut resolved = Map::new();
        for (name, spec) in &self.parameters {
            let value = match (given.get(name), &spec.default) {
                (Some(value), _) => value.clone(),
                (None, Some(default)) => default.clone(),
                (None, None) => {
                    return Err(Error::Invalid {
                        field: format!("parameters.{name}"),
                        rule: "is required".to_owned(),
                    });
                }
            };
            spec.accept(&value).map_err(|rule| Error::Invalid {
                field: format!("parameters.{name}"),
                rule,
            })?;
            resolved.insert(name.clone(), value);
        }
        Ok(resolved)
    }
}
