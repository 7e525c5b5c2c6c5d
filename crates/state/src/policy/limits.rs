//! Limits as the policy file writes them, and the limits that apply to one
//! caller once the owner's, the groups' and the defaults' are combined.
//!
//! Precedence, field by field (and key by key for `per_template` and
//! `per_profile`): the owner's own entry when it sets the field; otherwise
//! the most generous value among the caller's groups that set it; otherwise
//! the defaults; otherwise no limit. `unlimited` is a value like any other
//! (the most generous), so an owner or group entry can lift a default.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::quantity::Quantity;
use crate::workflow::Dur;

/// One limit's value: a bound, or `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Limit<T> {
    /// At most this much. (Declared first: any bound is less generous than
    /// `Unlimited`.)
    At(T),
    /// No bound: lifts one set at a lower level of precedence.
    Unlimited,
}

/// The word that lifts a limit.
const UNLIMITED: &str = "unlimited";

impl<T: Serialize> Serialize for Limit<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::At(value) => value.serialize(serializer),
            Self::Unlimited => serializer.serialize_str(UNLIMITED),
        }
    }
}

impl<'de, T: FromStr> Deserialize<'de> for Limit<T>
where
    T::Err: Display,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = match Value::deserialize(deserializer)? {
            Value::String(text) if text == UNLIMITED => return Ok(Self::Unlimited),
            Value::String(text) => text,
            Value::Number(number) => number.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "{other} is not a limit: write a value or `unlimited`"
                )));
            }
        };
        text.parse().map(Self::At).map_err(|err| {
            let err = err.to_string();
            serde::de::Error::custom(if err.contains(&format!("`{text}`")) {
                format!("{err}, or `unlimited`")
            } else {
                format!("`{text}`: {err}; write a value or `unlimited`")
            })
        })
    }
}

/// Limits as one level of the policy file sets them (`defaults`, an owner,
/// a group's `limits`). Each is optional: left out, the next level decides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Live environments at once (every phase but `tearing_down` and
    /// `deleted`): a count, or `unlimited` (so for every limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub environments: Option<Limit<u64>>,
    /// Live environments at once per template, by template name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub per_template: BTreeMap<String, Limit<u64>>,
    /// Live environments at once per profile (the value of the parameter
    /// `usage.profile` names, e.g. `gpu`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub per_profile: BTreeMap<String, Limit<u64>>,
    /// Total CPU requested by live environments (the parameters
    /// `usage.cpu` names, summed), a Kubernetes quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub cpu: Option<Limit<Quantity>>,
    /// Total memory requested by live environments (`usage.memory`), a
    /// Kubernetes quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub memory: Option<Limit<Quantity>>,
    /// The longest an environment may live, counted from its creation
    /// (requests and extensions alike), below the template's own maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub max_ttl: Option<Limit<Dur>>,
    /// How many times an environment may be extended, below the template's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub max_extensions: Option<Limit<u32>>,
}

/// A limit that applies, and the place in the policy file that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound<T> {
    /// The limit.
    pub value: T,
    /// Where it was set, e.g. `groups.gpu-users.limits.per_profile.gpu`.
    pub rule: String,
}

/// The limits that apply to one owner; `None` (or a missing key): no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EffectiveLimits {
    /// Live environments.
    pub environments: Option<Bound<u64>>,
    /// Live environments per template.
    pub per_template: BTreeMap<String, Bound<u64>>,
    /// Live environments per profile.
    pub per_profile: BTreeMap<String, Bound<u64>>,
    /// Total requested CPU.
    pub cpu: Option<Bound<Quantity>>,
    /// Total requested memory.
    pub memory: Option<Bound<Quantity>>,
    /// Longest life from creation.
    pub max_ttl: Option<Bound<Dur>>,
    /// Most extensions.
    pub max_extensions: Option<Bound<u32>>,
}

/// One level of precedence: its place in the file and its limits.
pub(super) struct Level<'a> {
    pub place: String,
    pub limits: &'a Limits,
}

/// The levels that apply to a caller: the owner's entry, the entries of the
/// groups they are in, the defaults.
pub(super) struct Levels<'a> {
    pub owner: Option<Level<'a>>,
    pub groups: Vec<Level<'a>>,
    pub defaults: Level<'a>,
}

impl Levels<'_> {
    /// The value of one field by precedence; `field` names it in rules.
    fn pick<T: Ord + Clone>(
        &self,
        field: &str,
        get: impl Fn(&Limits) -> Option<&Limit<T>>,
    ) -> Option<Bound<T>> {
        let at = |level: &Level<'_>| {
            get(level.limits).map(|limit| (limit.clone(), format!("{}.{field}", level.place)))
        };
        let chosen = self
            .owner
            .as_ref()
            .and_then(at)
            // Among groups the most generous wins: being in one more group
            // never takes anything away.
            .or_else(|| {
                self.groups
                    .iter()
                    .filter_map(at)
                    .max_by(|a, b| a.0.cmp(&b.0))
            })
            .or_else(|| at(&self.defaults))?;
        match chosen {
            (Limit::At(value), rule) => Some(Bound { value, rule }),
            (Limit::Unlimited, _) => None,
        }
    }

    fn keys(&self, map: impl Fn(&Limits) -> &BTreeMap<String, Limit<u64>>) -> Vec<String> {
        let mut keys: Vec<String> = self
            .owner
            .iter()
            .chain(&self.groups)
            .chain(std::iter::once(&self.defaults))
            .flat_map(|level| map(level.limits).keys().cloned())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Every field resolved.
    pub fn resolve(&self) -> EffectiveLimits {
        let per = |name: &str, map: fn(&Limits) -> &BTreeMap<String, Limit<u64>>| {
            self.keys(map)
                .into_iter()
                .filter_map(|key| {
                    let bound = self.pick(&format!("{name}.{key}"), |l| map(l).get(&key))?;
                    Some((key, bound))
                })
                .collect()
        };
        EffectiveLimits {
            environments: self.pick("environments", |l| l.environments.as_ref()),
            per_template: per("per_template", |l| &l.per_template),
            per_profile: per("per_profile", |l| &l.per_profile),
            cpu: self.pick("cpu", |l| l.cpu.as_ref()),
            memory: self.pick("memory", |l| l.memory.as_ref()),
            max_ttl: self.pick("max_ttl", |l| l.max_ttl.as_ref()),
            max_extensions: self.pick("max_extensions", |l| l.max_extensions.as_ref()),
        }
    }
}
