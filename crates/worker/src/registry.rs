//! The step kinds a worker can execute, and the check of workflows against them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use hubwright_state::workflow::{Catalog, LoadedTemplate, WorkflowError, step_place};

use crate::step::{Step, StepKind};

/// Step kinds by name.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Arc<dyn StepKind>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds.keys())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry with the built-in kinds (`noop`, `sleep`, `approval`).
    pub fn with_builtins() -> Self {
        let mut registry = Self::new();
        crate::builtin::register(&mut registry);
        registry
    }

    /// Adds a kind; a later kind of the same name replaces the earlier one.
    pub fn register<S: Step>(&mut self, step: S) -> &mut Self {
        self.kinds.insert(S::KIND, Arc::new(step));
        self
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn StepKind>> {
        self.kinds.get(name)
    }

    /// Names of every kind, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }

    /// Loads every workflow file in `dir` and checks each against this registry;
    /// the first problem stops with an error naming the file, the place and the rule.
    pub fn load_catalog(&self, dir: &Path) -> Result<Catalog, WorkflowError> {
        Catalog::load(dir, |loaded| self.validate(loaded))
    }

    /// Checks that every step of `loaded` names a known kind and that its `with:`
    /// parameters fit that kind.
    pub fn validate(&self, loaded: &LoadedTemplate) -> Result<(), WorkflowError> {
        for (name, def) in &loaded.template.workflows {
            for (idx, step) in def.steps.iter().enumerate() {
                let place = step_place(&format!("workflows.{name}"), idx, &step.name);
                let Some(kind) = self.get(&step.kind) else {
                    return Err(WorkflowError::new(
                        &loaded.path,
                        format!("{place}.kind"),
                        format!(
                            "unknown step kind `{}` (known: {})",
                            step.kind,
                            self.kinds().join(", ")
                        ),
                    ));
                };
                kind.validate(&step.params).map_err(|rule| {
                    WorkflowError::new(
                        &loaded.path,
                        format!("{place}.with"),
                        format!("kind `{}`: {rule}", step.kind),
                    )
                })?;
            }
        }
        Ok(())
    }
}
