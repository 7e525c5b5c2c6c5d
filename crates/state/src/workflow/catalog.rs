//! The set of templates one process serves.

use std::collections::BTreeMap;
use std::path::Path;

use super::{LoadedTemplate, Snapshot, WorkflowError};
use crate::Store;

/// The templates a process serves, loaded from a directory and checked, with
/// each workflow's definition id once registered. The API reads templates and
/// parameter schemas from here; the worker's registry checks the step kinds.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    templates: BTreeMap<String, LoadedTemplate>,
    /// Snapshot and registered id of every workflow, once registered.
    registered: BTreeMap<(String, String), (Snapshot, i64)>,
}

impl Catalog {
    /// Loads every workflow file in `dir` and passes each to `check` (the
    /// worker checks step kinds there); the first problem stops with an error
    /// naming the file, the place and the rule.
    pub fn load(
        dir: &Path,
        check: impl Fn(&LoadedTemplate) -> Result<(), WorkflowError>,
    ) -> Result<Self, WorkflowError> {
        Self::checked(super::load_dir(dir)?, check)
    }

    /// `loaded`, each template passed to `check` first (see [`Catalog::load`]).
    pub(super) fn checked(
        loaded: Vec<LoadedTemplate>,
        check: impl Fn(&LoadedTemplate) -> Result<(), WorkflowError>,
    ) -> Result<Self, WorkflowError> {
        let mut catalog = Self::default();
        for loaded in loaded {
            check(&loaded)?;
            // Not refused, so a test or a trusted in-house template may stay
            // open; the shipped ones have none (a test holds them to it).
            for (name, why) in loaded.template.unbounded_parameters() {
                tracing::warn!(
                    file = %loaded.path.display(),
                    parameter = name,
                    "parameters.{name}: unbounded: {why}"
                );
            }
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
    pub async fn register(&mut self, store: &Store) -> crate::Result<()> {
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

    /// Whether `template` is here and declares `workflow` (registered or not).
    pub fn has_workflow(&self, template: &str, workflow: &str) -> bool {
        self.template(template)
            .is_some_and(|loaded| loaded.template.workflows.contains_key(workflow))
    }

    /// The registered snapshot of `template`/`workflow` and its id.
    pub fn definition(&self, template: &str, workflow: &str) -> Option<(&Snapshot, i64)> {
        self.registered
            .get(&(template.to_owned(), workflow.to_owned()))
            .map(|(snapshot, id)| (snapshot, *id))
    }
}
