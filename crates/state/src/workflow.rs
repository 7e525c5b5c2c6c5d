//! Workflows as data: the files in `workflows/`, their parsing and the structural
//! rules every definition must satisfy.
//!
//! A *template* is one file (`workflows/jupyterhub.yaml`); it declares the
//! parameters a request may give and one or more named *workflows* (`provision`,
//! `teardown`), each an ordered list of steps. Whether a step's kind exists and its
//! `with:` parameters fit that kind is checked by the worker's registry, which
//! owns the kinds; this module checks everything else.

mod catalog;
mod duration;
mod holder;
mod load;
mod parameters;
mod pool;
mod quantity;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use catalog::Catalog;
pub use duration::Dur;
pub use holder::{CatalogHolder, Read, TemplateCheck, TemplatesStatus};
pub use load::{load_dir, load_file, parse, step_place};
pub use parameters::{Bound, ParameterSpec, ParameterType, QuantityKind};
pub use pool::{ASSIGN_WORKFLOW, MAX_POOL_SIZE, PoolSpec, is_pool_owner, pool_owner};
pub use quantity::{QUANTITY_PATTERN, Quantity, QuantityError};

/// A workflow file that could not be loaded: names the file, the place in it and
/// the rule that was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {place}: {rule}")]
pub struct WorkflowError {
    /// The file, as given.
    pub file: String,
    /// Where in the file, e.g. `workflows.provision.steps[1] (wait)`.
    pub place: String,
    /// What is wrong and what is expected.
    pub rule: String,
}

impl WorkflowError {
    /// An error about `place` in `file`.
    pub fn new(file: &Path, place: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            file: file.display().to_string(),
            place: place.into(),
            rule: rule.into(),
        }
    }
}

/// One workflow file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The template's name; must equal the file's stem.
    pub name: String,
    /// One line for humans.
    #[serde(default)]
    pub description: String,
    /// Parameters a request may give, with types, defaults and limits.
    #[serde(default)]
    pub parameters: BTreeMap<String, ParameterSpec>,
    /// How long environments of this template live.
    #[serde(default)]
    pub ttl: TtlPolicy,
    /// The Kubernetes namespace of each environment: `{name}` is the
    /// environment's name, `{suffix}` eight hex digits from its id. Unique per
    /// cluster among live environments; without `{suffix}`, two owners' equal
    /// names collide and the second request is refused.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// A warm pool of ready environments that requests take over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolSpec>,
    /// The named workflows, e.g. `provision` and `teardown`.
    pub workflows: BTreeMap<String, WorkflowDef>,
}

/// An ordered list of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDef {
    /// Executed in order; each step's outcome is committed before the next starts.
    pub steps: Vec<StepDef>,
}

/// One step: a kind implemented in Rust plus its parameters and policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    /// Unique within the workflow; shown in events and the CLI.
    pub name: String,
    /// The step kind, e.g. `namespace` or `sleep`.
    pub kind: String,
    /// The kind's parameters.
    #[serde(default = "empty_object", rename = "with")]
    pub params: Value,
    /// How transient errors are retried.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// How long one execution may take before it counts as a transient failure.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

fn default_namespace() -> String {
    // The suffix keeps one developer's name from colliding with another's, so
    // nobody learns from a refusal that someone else has an environment called so.
    "jh-{name}-{suffix}".to_owned()
}

/// Longest Kubernetes namespace name (a DNS-1123 label).
const MAX_NAMESPACE: usize = 63;

impl Template {
    /// The namespace of environment `id` called `name`. The API checks the
    /// result is a DNS-1123 label before accepting the request.
    pub fn namespace_for(&self, name: &str, id: uuid::Uuid) -> String {
        let hex = id.simple().to_string();
        // The tail of a UUIDv7 is random; its head is the timestamp.
        let suffix = &hex[hex.len() - 8..];
        self.namespace
            .replace("{name}", name)
            .replace("{suffix}", suffix)
    }
}

/// Whether `text` is a DNS-1123 label (what Kubernetes namespaces and service
/// names must be): 1 to 63 lowercase letters, digits and `-`, starting and
/// ending with a letter or digit.
pub fn is_dns_label(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max.min(MAX_NAMESPACE)
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

fn default_timeout() -> Dur {
    Dur::from_secs(600)
}

/// Exponential backoff with jitter for retryable errors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Executions allowed before a retryable error fails the run (polls excluded).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_delay: Dur,
    /// Upper bound of any delay.
    pub max_delay: Dur,
    /// Growth per attempt.
    pub factor: f32,
    /// Randomize delays so many failing runs do not retry in lockstep.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_delay: Dur::from_secs(1),
            max_delay: Dur::from_secs(300),
            factor: 2.0,
            jitter: true,
        }
    }
}

/// Time-to-live of an environment: what it gets when the request names none,
/// and the most a request or an extension may reach, counted from creation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtlPolicy {
    /// When the request names no TTL.
    pub default: Dur,
    /// The longest an environment may live, from its creation.
    pub maximum: Dur,
    /// How many times an environment may be extended (unlimited when absent;
    /// the maximum applies either way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_extensions: Option<u32>,
}

impl Default for TtlPolicy {
    fn default() -> Self {
        Self {
            default: Dur::from_secs(8 * 3600),
            maximum: Dur::from_secs(72 * 3600),
            max_extensions: None,
        }
    }
}

/// A template as loaded from disk, remembering its file for error messages.
#[derive(Debug, Clone)]
pub struct LoadedTemplate {
    /// Where it came from.
    pub path: PathBuf,
    /// The parsed template.
    pub template: Template,
}

/// The immutable snapshot of one workflow that a run executes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Template name.
    pub template: String,
    /// Workflow name.
    pub workflow: String,
    /// The steps.
    pub steps: Vec<StepDef>,
}

impl Snapshot {
    /// The snapshot of `workflow` in `template`, if it exists.
    pub fn of(template: &Template, workflow: &str) -> Option<Self> {
        template.workflows.get(workflow).map(|def| Self {
            template: template.name.clone(),
            workflow: workflow.to_owned(),
            steps: def.steps.clone(),
        })
    }

    /// The snapshot as stored.
    pub fn to_json(&self) -> Value {
        // Serializing plain structs of strings, numbers and maps cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// SHA-256 of the canonical JSON (serde_json's maps sort their keys), so the
    /// same definition is stored once however often it is registered.
    pub fn digest(&self) -> String {
        crate::digest::sha256_hex(self.to_json().to_string().as_bytes())
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.template, self.workflow)
    }
}

#[cfg(test)]
mod tests;
