//! Who may use a template and its profiles: the policy file's `templates`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Policy;
use crate::workflow::Template;

/// Who may use one template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateAccess {
    /// Only members of these groups may see and use the template; left
    /// out, every caller may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// Profiles (values of the `usage.profile` parameter) only members of
    /// the listed groups may choose; profiles not named are open.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, Vec<String>>,
}

/// Whether a caller may use something, and why (naming the rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Allowed.
    pub allowed: bool,
    /// Why or why not, naming the place in the policy file.
    pub reason: String,
}

impl TemplateAccess {
    /// Checks that the profiles it names are values the template allows.
    pub(super) fn check(
        &self,
        place: &str,
        template: &Template,
        profile_parameter: &str,
    ) -> Result<(), (String, String)> {
        if self.profiles.is_empty() {
            return Ok(());
        }
        let spec = template.parameters.get(profile_parameter).ok_or_else(|| {
            (
                format!("{place}.profiles"),
                format!(
                    "template `{}` has no parameter `{profile_parameter}` (the profile parameter `usage.profile` names)",
                    template.name
                ),
            )
        })?;
        if let Some(allowed) = &spec.one_of {
            for profile in self.profiles.keys() {
                if !allowed.contains(&Value::String(profile.clone())) {
                    let values: Vec<String> = allowed.iter().map(Value::to_string).collect();
                    return Err((
                        format!("{place}.profiles.{profile}"),
                        format!(
                            "not a value of parameter `{profile_parameter}` of template `{}` ({})",
                            template.name,
                            values.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `allowed` groups against the caller's: the verdict, with the rule's place.
fn verdict(place: &str, allowed: &[String], subject: &str, groups: &[String]) -> Access {
    match allowed.iter().find(|group| groups.contains(group)) {
        Some(group) => Access {
            allowed: true,
            reason: format!("`{subject}` is in group `{group}`, which {place} allows"),
        },
        None => Access {
            allowed: false,
            reason: format!(
                "{place} allows only members of {}; `{subject}` is in none of them",
                if allowed.is_empty() {
                    "no group".to_owned()
                } else {
                    allowed.join(", ")
                }
            ),
        },
    }
}

impl Policy {
    /// Whether `subject`, in `groups`, may see and use `template`.
    pub fn template_access(&self, template: &str, subject: &str, groups: &[String]) -> Access {
        match self.templates.get(template).and_then(|a| a.groups.as_ref()) {
            Some(allowed) => verdict(
                &format!("templates.{template}.groups"),
                allowed,
                subject,
                groups,
            ),
            None => Access {
                allowed: true,
                reason: format!(
                    "no policy restricts template `{template}`: any authenticated caller may use it"
                ),
            },
        }
    }

    /// Whether `subject`, in `groups`, may choose `profile` of `template`
    /// (the template itself aside).
    pub fn profile_access(
        &self,
        template: &str,
        profile: &str,
        subject: &str,
        groups: &[String],
    ) -> Access {
        match self
            .templates
            .get(template)
            .and_then(|a| a.profiles.get(profile))
        {
            Some(allowed) => verdict(
                &format!("templates.{template}.profiles.{profile}"),
                allowed,
                subject,
                groups,
            ),
            None => Access {
                allowed: true,
                reason: format!("no policy restricts profile `{profile}` of template `{template}`"),
            },
        }
    }
}
