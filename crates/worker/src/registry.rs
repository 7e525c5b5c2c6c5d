//! The step kinds a worker can execute, and the workflows validated against them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use hubwright_state::Store;
use hubwright_state::workflow::{self, LoadedTemplate, Snapshot, WorkflowError, step_place};

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

    /// The registry with the built-in kinds (`noop`, `sleep`).
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

/// The templates a process serves, loaded from a directory and validated
/// against a registry, with each workflow's definition id once registered.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    templates: BTreeMap<String, LoadedTemplate>,
    /// Snapshot and registered id of every workflow, once registered.
    registered: BTreeMap<(String, String), (Snapshot, i64)>,
}

impl Catalog {
    /// Loads every workflow file in `dir` and validates it; the first problem
    /// stops with an error naming the file, the place and the rule.
    pub fn load(dir: &Path, registry: &Registry) -> Result<Self, WorkflowError> {
        let mut catalog = Self::default();
        for loaded in workflow::load_dir(dir)? {
            registry.validate(&loaded)?;
            catalog
                .templates
                .insert(loaded.template.name.clone(), loaded);
        }
        Ok(catalog)
    }

    /// Adds one template (validated by the caller).
    pub fn insert(&mut self, loaded: LoadedTemplate) {
        self.templates.insert(loaded.template.name.clone(), loaded);
    }

    /// Stores every workflow's definition snapshot (once per digest) and
    /// remembers its id for enqueueing.
    pub async fn register(&mut self, store: &Store) -> hubwright_state::Result<()> {
        for loaded in self.templates.values() {
            for name in loaded.template.workflows.keys() {
                if let Some(snapshot) = Snapshot::of(&loaded.template, name) {
                    let id = store.register_definition(&snapshot).await?;
                    self.registered
                        .insert((loaded.template.name.clone(), name.clone()), (snapshot, id));
                }
            }
        }
        Ok(())
    }

    /// A template by name.
    pub fn template(&self, name: &str) -> Option<&LoadedTemplate> {
        self.templates.get(name)
    }

    /// Template names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.templates.keys().map(String::as_str).collect()
    }

    /// The registered snapshot of `template`/`workflow` and its id.
    pub fn definition(&self, template: &str, workflow: &str) -> Option<(&Snapshot, i64)> {
        self.registered
            .get(&(template.to_owned(), workflow.to_owned()))
            .map(|(snapshot, id)| (snapshot, *id))
    }
}
