//! What an owner's live environments take, counted from their stored
//! parameters, and the check of one more request against the limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::limits::{Bound, EffectiveLimits};
use super::quantity::Quantity;

/// Which request parameters count as what (the policy file's `usage`).
/// Templates name their parameters freely; this maps them to what limits
/// count. A template without such a parameter takes none of that resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Counting {
    /// The parameter whose value is the environment's profile (`gpu`).
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Parameters whose values (Kubernetes quantities) add up to the CPU an
    /// environment requests.
    #[serde(default = "default_cpu")]
    pub cpu: Vec<String>,
    /// Parameters whose values add up to the memory it requests.
    #[serde(default = "default_memory")]
    pub memory: Vec<String>,
}

fn default_profile() -> String {
    "profile".to_owned()
}

fn default_cpu() -> Vec<String> {
    vec!["cpu_limit".to_owned()]
}

fn default_memory() -> Vec<String> {
    vec!["memory_limit".to_owned()]
}

impl Default for Counting {
    fn default() -> Self {
        Self {
            profile: default_profile(),
            cpu: default_cpu(),
            memory: default_memory(),
        }
    }
}

/// What one environment takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demand {
    /// Its template.
    pub template: String,
    /// Its profile, when its template has the profile parameter.
    pub profile: Option<String>,
    /// CPU it requests.
    pub cpu: Quantity,
    /// Memory it requests.
    pub memory: Quantity,
}

impl Counting {
    /// What an environment of `template` with `parameters` (resolved, so
    /// defaults are in) takes. A counted parameter that is not a quantity is
    /// an error naming it: `(parameter, rule)`.
    pub fn demand(&self, template: &str, parameters: &Value) -> Result<Demand, (String, String)> {
        let sum = |names: &[String], what: &str| {
            names.iter().try_fold(Quantity::ZERO, |total, name| {
                match parameters.get(name) {
                    None | Some(Value::Null) => Ok(total),
                    Some(value) => Quantity::from_json(value)
                        .map(|q| total.saturating_add(q))
                        .map_err(|rule| {
                            (
                                name.clone(),
                                format!("counts toward the {what} limit, so it must be a Kubernetes quantity: {rule}"),
                            )
                        }),
                }
            })
        };
        Ok(Demand {
            template: template.to_owned(),
            profile: parameters
                .get(&self.profile)
                .and_then(Value::as_str)
                .map(str::to_owned),
            cpu: sum(&self.cpu, "cpu")?,
            memory: sum(&self.memory, "memory")?,
        })
    }

    /// What `(template, parameters)` of live environments take together.
    /// Stored values that do not read as quantities (accepted before a
    /// template bounded them) count as nothing rather than blocking anyone.
    pub fn usage<'a>(&self, environments: impl IntoIterator<Item = (&'a str, &'a Value)>) -> Usage {
        let mut usage = Usage::default();
        for (template, parameters) in environments {
            let demand = self
                .demand(template, parameters)
                .unwrap_or_else(|_| Demand {
                    template: template.to_owned(),
                    profile: parameters
                        .get(&self.profile)
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    ..Demand::default()
                });
            usage.add(&demand);
        }
        usage
    }
}

/// What an owner's live environments take together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Usage {
    /// Live environments.
    pub environments: u64,
    /// Live environments per template.
    pub per_template: BTreeMap<String, u64>,
    /// Live environments per profile.
    pub per_profile: BTreeMap<String, u64>,
    /// Requested CPU, summed.
    #[schema(value_type = String)]
    pub cpu: Quantity,
    /// Requested memory, summed.
    #[schema(value_type = String)]
    pub memory: Quantity,
}

impl Usage {
    fn add(&mut self, demand: &Demand) {
        self.environments += 1;
        *self
            .per_template
            .entry(demand.template.clone())
            .or_default() += 1;
        if let Some(profile) = &demand.profile {
            *self.per_profile.entry(profile.clone()).or_default() += 1;
        }
        self.cpu = self.cpu.saturating_add(demand.cpu);
        self.memory = self.memory.saturating_add(demand.memory);
    }
}

/// A limit a request would go past: which, its value, the current use, what
/// the request asked for, and the rule in the policy file that set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Breach {
    /// The limit, e.g. `environments`, `per_profile.gpu`, `cpu`, `max_ttl`.
    #[schema(example = "environments")]
    pub limit: String,
    /// Its value: a count, a quantity (`"16"`, `"64Gi"`) or a duration (`"24h"`).
    #[schema(value_type = serde_json::Value, example = 25)]
    pub value: Value,
    /// The current use (for `max_ttl`, the life asked for; for
    /// `max_extensions`, the extensions made).
    #[schema(value_type = serde_json::Value, example = 25)]
    pub current: Value,
    /// What this request would add.
    #[schema(value_type = serde_json::Value, example = 1)]
    pub requested: Value,
    /// Where the policy file sets it, e.g. `defaults.environments`.
    #[schema(example = "defaults.environments")]
    pub rule: String,
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        write!(
            f,
            "past the limit `{}` of {} set by {}: current use {}, requested {}",
            self.limit,
            text(&self.value),
            self.rule,
            text(&self.current),
            text(&self.requested)
        )
    }
}

fn count_breach(limit: String, bound: &Bound<u64>, current: u64) -> Option<Breach> {
    (current.saturating_add(1) > bound.value).then(|| Breach {
        limit,
        value: json!(bound.value),
        current: json!(current),
        requested: json!(1),
        rule: bound.rule.clone(),
    })
}

fn quantity_breach(
    limit: &str,
    bound: Option<&Bound<Quantity>>,
    current: Quantity,
    requested: Quantity,
) -> Option<Breach> {
    let bound = bound?;
    // An environment that takes none of it is not refused for it, even when
    // a lowered limit is already passed.
    (requested > Quantity::ZERO && current.saturating_add(requested) > bound.value).then(|| {
        Breach {
            limit: limit.to_owned(),
            value: json!(bound.value.to_string()),
            current: json!(current.to_string()),
            requested: json!(requested.to_string()),
            rule: bound.rule.clone(),
        }
    })
}

impl EffectiveLimits {
    /// Whether any limit bounds an environment taking `demand`: when none
    /// does, [`EffectiveLimits::breach`] is `None` whatever the owner's
    /// usage, so admission need not lock and count (an owner without limits,
    /// the default without a policy file, pays nothing for them).
    pub fn may_refuse(&self, demand: &Demand) -> bool {
        self.environments.is_some()
            || self.per_template.contains_key(&demand.template)
            || demand
                .profile
                .as_deref()
                .is_some_and(|profile| self.per_profile.contains_key(profile))
            || (self.cpu.is_some() && demand.cpu > Quantity::ZERO)
            || (self.memory.is_some() && demand.memory > Quantity::ZERO)
    }

    /// The first limit one more environment taking `demand` would pass,
    /// given `usage`: counts first, then CPU and memory.
    pub fn breach(&self, usage: &Usage, demand: &Demand) -> Option<Breach> {
        let per = |map: &BTreeMap<String, u64>, key: &str| map.get(key).copied().unwrap_or(0);
        self.environments
            .as_ref()
            .and_then(|bound| count_breach("environments".to_owned(), bound, usage.environments))
            .or_else(|| {
                let bound = self.per_template.get(&demand.template)?;
                let current = per(&usage.per_template, &demand.template);
                count_breach(format!("per_template.{}", demand.template), bound, current)
            })
            .or_else(|| {
                let profile = demand.profile.as_deref()?;
                let bound = self.per_profile.get(profile)?;
                count_breach(
                    format!("per_profile.{profile}"),
                    bound,
                    per(&usage.per_profile, profile),
                )
            })
            .or_else(|| quantity_breach("cpu", self.cpu.as_ref(), usage.cpu, demand.cpu))
            .or_else(|| {
                quantity_breach("memory", self.memory.as_ref(), usage.memory, demand.memory)
            })
    }
}
