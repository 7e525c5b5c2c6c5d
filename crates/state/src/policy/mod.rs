//! The policy file (`--policy`, beside `clusters.yaml`): limits per owner,
//! per group and for everyone, group membership for hubwright-token
//! subjects, and which groups may use which templates and profiles.
//! docs/decisions/0015-policy-file.md says why it looks like this.
//!
//! ```yaml
//! usage: { profile: profile, cpu: [cpu_limit], memory: [memory_limit] }
//! defaults: { environments: 25, cpu: "32", memory: 128Gi, max_ttl: 24h }
//! groups:
//!   gpu-users:
//!     members: [alice, bob]
//!     limits: { per_profile: { gpu: 2 } }
//! owners:
//!   carol: { environments: unlimited }
//! templates:
//!   jupyterhub:
//!     profiles: { gpu: [gpu-users] }
//! ```
//!
//! Without a file the policy is empty: no limits, every template open.

mod access;
mod holder;
mod limits;
mod quantity;
mod usage;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use access::{Access, TemplateAccess};
pub use holder::{PolicyHolder, Reload, ReloadStatus};
pub use limits::{Bound, EffectiveLimits, Limit, Limits};
pub use quantity::Quantity;
pub use usage::{Breach, Counting, Demand, Usage};

use crate::workflow::Catalog;

/// A group: who is in it (besides those an OpenID token says are) and the
/// limits its members get.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Subjects in the group (hubwright-token subjects, or OpenID usernames
    /// with their prefix); OpenID callers are also in the groups of their
    /// token's groups claim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// The limits its members get (see the precedence in [`limits`]).
    #[serde(default)]
    pub limits: Limits,
}

/// A validated policy file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Which request parameters count as profile, CPU and memory.
    #[serde(default)]
    pub usage: Counting,
    /// Limits for everyone.
    #[serde(default)]
    pub defaults: Limits,
    /// Groups by name.
    #[serde(default)]
    pub groups: BTreeMap<String, Group>,
    /// Limits of one owner by subject, before any group's.
    #[serde(default)]
    pub owners: BTreeMap<String, Limits>,
    /// Who may use a template and its profiles; a template not named here
    /// is open to every caller.
    #[serde(default)]
    pub templates: BTreeMap<String, TemplateAccess>,
}

/// A policy file that cannot be used; names the file, the place and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {place}: {rule}")]
pub struct PolicyError {
    /// The file.
    pub file: String,
    /// Where in it, e.g. `groups.gpu-users.limits.cpu`.
    pub place: String,
    /// What is wrong.
    pub rule: String,
}

impl Policy {
    /// Reads and checks a policy file against the templates of `catalog`.
    pub fn load(path: &Path, catalog: &Catalog) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|err| PolicyError {
            file: path.display().to_string(),
            place: "(file)".to_owned(),
            rule: format!("cannot read it: {err}"),
        })?;
        Self::parse(&text, catalog).map_err(|(place, rule)| PolicyError {
            file: path.display().to_string(),
            place,
            rule,
        })
    }

    /// Parses and checks policy text: `(place, rule)` when it is wrong.
    pub fn parse(text: &str, catalog: &Catalog) -> Result<Self, (String, String)> {
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        let policy: Self = match serde_path_to_error::deserialize(deserializer) {
            Ok(policy) => policy,
            Err(err) => {
                let place = err.path().to_string();
                let place = if place == "." {
                    "(file)".to_owned()
                } else {
                    place
                };
                let rule = err.into_inner().to_string();
                // serde_yaml_ng starts with a path of its own; the place says it.
                let rule = match rule.split_once(": ") {
                    Some((path, rest)) if !path.contains(' ') && place.starts_with(path) => {
                        rest.to_owned()
                    }
                    _ => rule,
                };
                return Err((place, rule));
            }
        };
        policy.check(catalog)?;
        Ok(policy)
    }

    /// Checks the policy's rules, and that every template it names is in
    /// `catalog`: `(place, rule)` when not. Also asked of the policy in
    /// force when the templates are reloaded, so a template it still names
    /// is never removed under it.
    pub fn check(&self, catalog: &Catalog) -> Result<(), (String, String)> {
        let known = || catalog.names().join(", ");
        let levels = std::iter::once(("defaults".to_owned(), &self.defaults))
            .chain(
                self.groups
                    .iter()
                    .map(|(name, group)| (format!("groups.{name}.limits"), &group.limits)),
            )
            .chain(
                self.owners
                    .iter()
                    .map(|(name, limits)| (format!("owners.{name}"), limits)),
            );
        for (place, limits) in levels {
            for template in limits.per_template.keys() {
                if catalog.template(template).is_none() {
                    return Err((
                        format!("{place}.per_template.{template}"),
                        format!("no template named `{template}` (known: {})", known()),
                    ));
                }
            }
            if let Some(Limit::At(ttl)) = limits.max_ttl
                && ttl.is_zero()
            {
                return Err((format!("{place}.max_ttl"), "must be above zero".to_owned()));
            }
        }
        for (name, group) in &self.groups {
            if name.trim().is_empty() {
                return Err(("groups".to_owned(), "a group needs a name".to_owned()));
            }
            if let Some(member) = group.members.iter().find(|m| m.trim().is_empty()) {
                return Err((
                    format!("groups.{name}.members"),
                    format!("`{member}` is not a subject"),
                ));
            }
        }
        if self.usage.profile.is_empty() {
            return Err((
                "usage.profile".to_owned(),
                "must name a parameter".to_owned(),
            ));
        }
        for (template, access) in &self.templates {
            let place = format!("templates.{template}");
            let loaded = catalog.template(template).ok_or_else(|| {
                (
                    place.clone(),
                    format!("no template named `{template}` (known: {})", known()),
                )
            })?;
            access.check(&place, &loaded.template, &self.usage.profile)?;
        }
        Ok(())
    }

    /// The groups the policy file declares `subject` a member of, sorted.
    pub fn groups_of(&self, subject: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, group)| group.members.iter().any(|m| m == subject))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The limits of `owner`, a member of `groups` (every group they are in:
    /// their token's and the file's).
    pub fn limits_for(&self, owner: &str, groups: &[String]) -> EffectiveLimits {
        use limits::{Level, Levels};
        Levels {
            owner: self.owners.get(owner).map(|limits| Level {
                place: format!("owners.{owner}"),
                limits,
            }),
            groups: groups
                .iter()
                .filter_map(|name| {
                    let group = self.groups.get(name)?;
                    Some(Level {
                        place: format!("groups.{name}.limits"),
                        limits: &group.limits,
                    })
                })
                .collect(),
            defaults: Level {
                place: "defaults".to_owned(),
                limits: &self.defaults,
            },
        }
        .resolve()
    }
}

#[cfg(test)]
mod tests;
