//! Reading workflow files: YAML into a [`Template`], and the checks of its
//! structure that need no step kinds (names, identifiers, TTLs, steps).

use std::path::{Path, PathBuf};

use super::{LoadedTemplate, MAX_NAMESPACE, StepDef, Template, WorkflowError, is_dns_label, pool};

/// Reads one workflow file and checks its structure.
pub fn load_file(path: &Path) -> Result<LoadedTemplate, WorkflowError> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| WorkflowError::new(path, "file", format!("cannot be read: {err}")))?;
    parse(path, &text)
}

/// Parses workflow text as if read from `path`, and checks its structure.
pub fn parse(path: &Path, text: &str) -> Result<LoadedTemplate, WorkflowError> {
    let template: Template = serde_yaml_ng::from_str(text).map_err(|err| yaml_error(path, &err))?;
    check_structure(path, &template)?;
    Ok(LoadedTemplate {
        path: path.to_owned(),
        template,
    })
}

/// Loads every `*.yaml`/`*.yml` file in `dir`, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<LoadedTemplate>, WorkflowError> {
    DirFiles::read(dir)?.load()
}

/// The workflow files of a directory as read at one moment: each path with
/// its content, or why it could not be read. A reload hashes and loads the
/// same bytes, so what it puts in force is what its digest says.
pub(super) struct DirFiles(Vec<(PathBuf, std::io::Result<Vec<u8>>)>);

impl DirFiles {
    /// Reads every file [`workflow_files`] lists.
    pub(super) fn read(dir: &Path) -> Result<Self, WorkflowError> {
        Ok(Self(
            workflow_files(dir)?
                .into_iter()
                .map(|path| {
                    let content = std::fs::read(&path);
                    (path, content)
                })
                .collect(),
        ))
    }

    /// SHA-256 over each file's name and content (or why it is unreadable).
    pub(super) fn digest(&self) -> String {
        let mut bytes = Vec::new();
        for (path, content) in &self.0 {
            bytes.extend_from_slice(path.as_os_str().as_encoded_bytes());
            bytes.push(0);
            match content {
                Ok(content) => bytes.extend_from_slice(content),
                Err(err) => bytes.extend_from_slice(format!("unreadable: {err}").as_bytes()),
            }
            bytes.push(0);
        }
        crate::digest::sha256_hex(&bytes)
    }

    /// Each file parsed and its structure checked, in name order.
    pub(super) fn load(&self) -> Result<Vec<LoadedTemplate>, WorkflowError> {
        self.0
            .iter()
            .map(|(path, content)| {
                let unreadable = |err: &dyn std::fmt::Display| {
                    WorkflowError::new(path, "file", format!("cannot be read: {err}"))
                };
                let content = content.as_ref().map_err(|err| unreadable(err))?;
                let text = std::str::from_utf8(content).map_err(|err| unreadable(&err))?;
                parse(path, text)
            })
            .collect()
    }
}

/// The `*.yaml`/`*.yml` files in `dir`, in name order, following links (a
/// mounted ConfigMap links each file from its hidden `..data` directory).
/// Hidden files are left out: editors and sync tools keep their working
/// copies there, and none could be a template (names are identifiers).
fn workflow_files(dir: &Path) -> Result<Vec<PathBuf>, WorkflowError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|err| WorkflowError::new(dir, "directory", format!("cannot be read: {err}")))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|err| WorkflowError::new(dir, "directory", format!("cannot be read: {err}")))?
            .path();
        let is_yaml = matches!(
            path.extension().and_then(|ext| ext.to_str()),
            Some("yaml" | "yml")
        );
        let hidden = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with('.'));
        if is_yaml && !hidden && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// serde's message reads `workflows.provision.steps[1]: unknown field ... at line
/// 15 column 9`; split it into the place and the rule, keeping the line.
fn yaml_error(path: &Path, err: &serde_yaml_ng::Error) -> WorkflowError {
    let mut message = err.to_string();
    let location = err
        .location()
        .map(|at| format!("line {} column {}", at.line(), at.column()));
    if let Some(location) = &location
        && let Some(stripped) = message.strip_suffix(&format!(" at {location}"))
    {
        message = stripped.to_owned();
    }
    let (place, rule) = match message.split_once(": ") {
        Some((place, rule)) if !place.contains(' ') => (place.to_owned(), rule.to_owned()),
        _ => ("document".to_owned(), message.clone()),
    };
    let rule = match location {
        Some(location) => format!("{rule} ({location})"),
        None => rule,
    };
    WorkflowError::new(path, place, rule)
}

fn check_structure(path: &Path, template: &Template) -> Result<(), WorkflowError> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if template.name != stem {
        return Err(WorkflowError::new(
            path,
            "name",
            format!("`{}` must equal the file name `{stem}`", template.name),
        ));
    }
    check_identifier(path, "name", &template.name)?;
    for (name, spec) in &template.parameters {
        let place = format!("parameters.{name}");
        check_identifier(path, &place, name)?;
        spec.check(&place)
            .map_err(|rule| WorkflowError::new(path, place, rule))?;
    }
    if template.ttl.default.is_zero() || template.ttl.default > template.ttl.maximum {
        return Err(WorkflowError::new(
            path,
            "ttl",
            "default must be above zero and at most maximum",
        ));
    }
    // Checked with a one-letter name, so a pattern that can never be a label
    // fails at start-up; the length with the real name is checked per request.
    let sample = template.namespace_for("a", uuid::Uuid::nil());
    if !template.namespace.contains("{name}") || !is_dns_label(&sample, MAX_NAMESPACE) {
        return Err(WorkflowError::new(
            path,
            "namespace",
            "must contain `{name}` (and may contain `{suffix}`), otherwise only lowercase letters, digits and `-` (a DNS-1123 label)",
        ));
    }
    if template.workflows.is_empty() {
        return Err(WorkflowError::new(
            path,
            "workflows",
            "must declare at least one workflow",
        ));
    }
    for (name, workflow) in &template.workflows {
        let place = format!("workflows.{name}");
        check_identifier(path, &place, name)?;
        check_steps(path, &place, &workflow.steps)?;
    }
    pool::check_pool(path, template)
}

fn check_steps(path: &Path, place: &str, steps: &[StepDef]) -> Result<(), WorkflowError> {
    if steps.is_empty() {
        return Err(WorkflowError::new(
            path,
            format!("{place}.steps"),
            "must list at least one step",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (idx, step) in steps.iter().enumerate() {
        let at = step_place(place, idx, &step.name);
        check_identifier(path, &at, &step.name)?;
        if !seen.insert(step.name.as_str()) {
            return Err(WorkflowError::new(
                path,
                at,
                "step names must be unique within a workflow",
            ));
        }
        let retry = &step.retry;
        if retry.max_attempts == 0 {
            return Err(WorkflowError::new(
                path,
                format!("{at}.retry.max_attempts"),
                "must be at least 1",
            ));
        }
        if retry.initial_delay.is_zero() || retry.initial_delay > retry.max_delay {
            return Err(WorkflowError::new(
                path,
                format!("{at}.retry"),
                "initial_delay must be above zero and at most max_delay",
            ));
        }
        if !(1.0..=10.0).contains(&retry.factor) {
            return Err(WorkflowError::new(
                path,
                format!("{at}.retry.factor"),
                "must be between 1 and 10",
            ));
        }
        if step.timeout.is_zero() {
            return Err(WorkflowError::new(
                path,
                format!("{at}.timeout"),
                "must be above zero",
            ));
        }
        if !step.params.is_object() {
            return Err(WorkflowError::new(
                path,
                format!("{at}.with"),
                "must be a mapping",
            ));
        }
    }
    Ok(())
}

/// How error messages name a step: `workflows.provision.steps[1] (wait)`.
pub fn step_place(workflow_place: &str, idx: usize, name: &str) -> String {
    format!("{workflow_place}.steps[{idx}] ({name})")
}

/// Names are used in URLs, labels and CLI arguments: lowercase letters, digits
/// and dashes, starting with a letter, at most 63 characters.
fn check_identifier(path: &Path, place: &str, name: &str) -> Result<(), WorkflowError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(WorkflowError::new(
            path,
            place,
            format!(
                "`{name}` must be 1-63 lowercase letters, digits, `-` or `_`, starting with a letter"
            ),
        ))
    }
}
