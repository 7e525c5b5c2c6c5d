//! A template's declared parameters, and the validation of a request against them.
//!
//! Every parameter a requester may set is meant to be bounded (an enum, a
//! range, a length or a pattern; [`ParameterSpec::unbounded`] says when it is
//! not), and a template may keep a parameter for itself (`settable: false`):
//! then only its default applies, and a request that names it is refused.

mod accept;
mod declaration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Template;
use super::quantity::{Quantity, QuantityError};
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
    /// A Kubernetes quantity (`500m`, `2`, `16Gi`), as a string or a number.
    Quantity,
}

/// What a quantity measures, which decides its unit rule and how messages
/// name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuantityKind {
    /// CPU: whole millicores (`500m`, `2`).
    Cpu,
    /// Memory: whole bytes (`512Mi`, `4G`).
    #[serde(alias = "bytes")]
    Memory,
    /// Storage: whole bytes (`10Gi`).
    Storage,
}

impl QuantityKind {
    /// Its name in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Storage => "storage",
        }
    }
}

/// A minimum or maximum: a number, or a quantity written as text (`"16Gi"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Bound {
    /// `16`, `0.5`.
    Number(f64),
    /// `"500m"`, `"64Gi"`.
    Text(String),
}

impl Bound {
    /// The bound as a number, when it is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Self::Number(number) => Some(*number),
            Self::Text(_) => None,
        }
    }

    /// The bound as a quantity.
    pub fn quantity(&self) -> Result<Quantity, QuantityError> {
        match self {
            Self::Number(number) => number.to_string().parse(),
            Self::Text(text) => text.parse(),
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(number) => write!(f, "{number}"),
            Self::Text(text) => f.write_str(text),
        }
    }
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
    /// Lower bound for numbers and quantities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Bound>,
    /// Upper bound for numbers and quantities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<Bound>,
    /// What a quantity measures (`cpu`, `memory`, `storage`); without it any
    /// quantity fits.
    #[serde(default, rename = "kind", skip_serializing_if = "Option::is_none")]
    pub measures: Option<QuantityKind>,
    /// The longest a string (or each string of a list) may be, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// A regular expression, anchored with `^…$`, that a string (or each
    /// string of a list) must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The most strings a list may hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<usize>,
    /// Whether a request may set it. `false`: the platform team's value (the
    /// default) always applies — for namespace quotas, limits and the like.
    #[serde(default = "settable_by_default", skip_serializing_if = "is_true")]
    pub settable: bool,
}

fn settable_by_default() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

impl Template {
    /// Validates a request's parameters: unknown names and operator-only
    /// parameters are refused, every value must fit its declaration, and
    /// defaults fill what is left out. The error names the parameter and the rule.
    pub fn resolve_parameters(
        &self,
        given: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Error> {
        if let Some(unknown) = given
            .keys()
            .find(|name| !self.parameters.contains_key(*name))
        {
            let known: Vec<&str> = self
                .parameters
                .iter()
                .filter(|(_, spec)| spec.settable)
                .map(|(name, _)| name.as_str())
                .collect();
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
        if let Some(fixed) = given.keys().find(|name| {
            self.parameters
                .get(*name)
                .is_some_and(|spec| !spec.settable)
        }) {
            return Err(Error::Invalid {
                field: format!("parameters.{fixed}"),
                rule: format!(
                    "is set by the platform team: template `{}` does not let a request choose it",
                    self.name
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

    /// The parameters a request may set without a bound (enum, range, length
    /// or pattern), each with what is missing. Shipped templates have none;
    /// the loader warns about others.
    pub fn unbounded_parameters(&self) -> Vec<(&str, &'static str)> {
        self.parameters
            .iter()
            .filter_map(|(name, spec)| spec.unbounded().map(|why| (name.as_str(), why)))
            .collect()
    }
}

#[cfg(test)]
mod tests;
