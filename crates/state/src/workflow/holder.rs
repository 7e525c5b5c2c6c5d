//! The templates in force, swapped whole when their directory is reloaded
//! (decision 0029). A directory that does not load leaves the templates in
//! force alone and is remembered as the last reload's error, as the policy
//! file's holder does.
//!
//! A reload has three parts, and the holder does the two that need no
//! database: [`CatalogHolder::read`] loads and checks the files,
//! [`CatalogHolder::put`] puts a registered catalog in force. The caller
//! registers the definitions in between (`Catalog::register`) and checks the
//! policy in force against the new templates, so a template the policy still
//! names is never removed under it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::load::DirFiles;
use super::{Catalog, LoadedTemplate, WorkflowError};
use crate::rereads::Rereads;

/// How a process checks each template it loads: the worker's registry knows
/// the step kinds and their parameters.
pub type TemplateCheck = dyn Fn(&LoadedTemplate) -> Result<(), WorkflowError> + Send + Sync;

/// The templates in force and where they came from; shared by the API's
/// requests and the scheduler.
pub struct CatalogHolder {
    dir: Option<PathBuf>,
    check: Option<Arc<TemplateCheck>>,
    current: RwLock<Arc<Catalog>>,
    status: Mutex<Status>,
}

impl std::fmt::Debug for CatalogHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogHolder")
            .field("dir", &self.dir)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Status {
    public: TemplatesStatus,
    rereads: Rereads,
}

/// Where the templates came from and how their last reload went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TemplatesStatus {
    /// The directory of workflow files; `null` when the templates were
    /// given in code.
    pub source: Option<String>,
    /// SHA-256 over the names and contents of the files in force.
    pub digest: Option<String>,
    /// When the templates in force were loaded.
    pub loaded_at: Option<DateTime<Utc>>,
    /// When a changed directory was last read, whether or not it loaded.
    pub last_reload_at: Option<DateTime<Utc>>,
    /// Why the files on disk are not in force (`file: place: rule`); `null`
    /// when the last reload succeeded.
    pub last_reload_error: Option<String>,
}

/// What [`CatalogHolder::read`] found.
#[derive(Debug)]
pub enum Read {
    /// The templates were given in code: nothing to read.
    NoDirectory,
    /// The files have not changed since they were last read.
    Unchanged,
    /// The files load and pass the checks: register them, then
    /// [`CatalogHolder::put`] them.
    Loaded { catalog: Catalog, digest: String },
    /// The files do not load; the templates in force stay.
    Failed(WorkflowError),
    /// The files do not load, seen first by a poll: the next poll reports
    /// them if they are still the same.
    Settling,
}

impl CatalogHolder {
    /// Templates given in code, never reloaded (tests, `demo`).
    pub fn fixed(catalog: Catalog) -> Self {
        Self {
            dir: None,
            check: None,
            current: RwLock::new(Arc::new(catalog)),
            status: Mutex::new(Status::default()),
        }
    }

    /// `catalog`, loaded from `dir` with `check` and registered, in force;
    /// later reloads read `dir` again and check each template the same way.
    /// `digest` is what [`CatalogHolder::load`] gave with the catalog.
    pub fn watching(
        dir: &Path,
        digest: String,
        catalog: Catalog,
        check: Arc<TemplateCheck>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            dir: Some(dir.to_owned()),
            check: Some(check),
            current: RwLock::new(Arc::new(catalog)),
            status: Mutex::new(Status {
                public: TemplatesStatus {
                    source: Some(dir.display().to_string()),
                    digest: Some(digest.clone()),
                    loaded_at: Some(now),
                    ..TemplatesStatus::default()
                },
                rereads: Rereads::having_seen(digest),
            }),
        }
    }

    /// Loads `dir` at start-up, checking each template with `check`: the
    /// catalog (to register, then hand to [`CatalogHolder::watching`]) and
    /// the digest of the very files it was loaded from, as a poll compares.
    pub fn load(dir: &Path, check: &TemplateCheck) -> Result<(String, Catalog), WorkflowError> {
        let files = DirFiles::read(dir);
        let digest = fingerprint(&files);
        let catalog = Catalog::checked(files?.load()?, check)?;
        Ok((digest, catalog))
    }

    /// The templates in force. A request holds on to the one it started with.
    pub fn current(&self) -> Arc<Catalog> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The directory the templates are read from, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Where the templates came from and how their last reload went.
    pub fn status(&self) -> TemplatesStatus {
        self.lock_status().public.clone()
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the directory again and checks every template in it (blocking
    /// file I/O). Without `force`, files unchanged since they were last read
    /// are skipped (the poll), and files that do not load are reported only
    /// when the next poll finds them the same ([`Read::Settling`]); with it,
    /// they are read, checked and reported at once (SIGHUP).
    pub fn read(&self, now: DateTime<Utc>, force: bool) -> Read {
        let (Some(dir), Some(check)) = (&self.dir, &self.check) else {
            return Read::NoDirectory;
        };
        let files = DirFiles::read(dir);
        let digest = fingerprint(&files);
        if self.lock_status().rereads.unchanged(&digest, force) {
            return Read::Unchanged;
        }
        let loaded = files
            .and_then(|files| files.load())
            .and_then(|loaded| Catalog::checked(loaded, |loaded| check(loaded)));
        let mut status = self.lock_status();
        if !status.rereads.act(&digest, loaded.is_ok(), force) {
            return Read::Settling;
        }
        status.public.last_reload_at = Some(now);
        match loaded {
            Ok(catalog) => Read::Loaded { catalog, digest },
            Err(err) => {
                status.public.last_reload_error = Some(err.to_string());
                Read::Failed(err)
            }
        }
    }

    /// Puts `catalog` (read from files of `digest`, registered) in force.
    pub fn put(&self, catalog: Catalog, digest: String, now: DateTime<Utc>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(catalog);
        let mut status = self.lock_status();
        status.public.digest = Some(digest);
        status.public.loaded_at = Some(now);
        status.public.last_reload_error = None;
    }

    /// Records why the files read last are not in force.
    pub fn refuse(&self, why: &str) {
        self.lock_status().public.last_reload_error = Some(why.to_owned());
    }

    /// Records why the files read last are not in force yet, and forgets
    /// having read them, so the next poll tries again (the database was
    /// unreachable: nothing is wrong with the files).
    pub fn retry(&self, why: &str) {
        let mut status = self.lock_status();
        status.public.last_reload_error = Some(why.to_owned());
        status.rereads.forget();
    }
}

/// SHA-256 over the name and content of every workflow file in `dir`, in
/// name order. An unreadable directory has a fingerprint of its own, so a
/// poll reports it once.
fn fingerprint(files: &Result<DirFiles, WorkflowError>) -> String {
    match files {
        Ok(files) => files.digest(),
        Err(err) => crate::digest::sha256_hex(format!("unreadable: {err}").as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str =
        "name: one\nworkflows:\n  provision:\n    steps:\n      - { name: a, kind: noop }\n";

    /// A directory of its own, removed when the test ends.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            let dir =
                std::env::temp_dir().join(format!("hubwright-holder-{}", uuid::Uuid::now_v7()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn accept_all() -> Arc<TemplateCheck> {
        Arc::new(|_: &LoadedTemplate| Ok(()))
    }

    fn holder(dir: &Path) -> CatalogHolder {
        let check = accept_all();
        let (digest, catalog) = CatalogHolder::load(dir, check.as_ref()).unwrap();
        CatalogHolder::watching(dir, digest, catalog, check, Utc::now())
    }

    #[test]
    fn unchanged_files_are_not_read_again_unless_forced() {
        let dir = Scratch::new();
        std::fs::write(dir.path().join("one.yaml"), ONE).unwrap();
        let holder = holder(dir.path());
        assert!(matches!(holder.read(Utc::now(), false), Read::Unchanged));
        assert!(matches!(holder.read(Utc::now(), true), Read::Loaded { .. }));
    }

    #[test]
    fn a_new_file_loads_and_is_in_force_once_put() {
        let dir = Scratch::new();
        std::fs::write(dir.path().join("one.yaml"), ONE).unwrap();
        let holder = holder(dir.path());
        let before = holder.status().digest;
        std::fs::write(dir.path().join("two.yaml"), ONE.replace("one", "two")).unwrap();
        let Read::Loaded { catalog, digest } = holder.read(Utc::now(), false) else {
            panic!("the new file should load");
        };
        assert_eq!(holder.current().names(), ["one"], "not in force until put");
        holder.put(catalog, digest.clone(), Utc::now());
        assert_eq!(holder.current().names(), ["one", "two"]);
        assert_eq!(holder.status().digest, Some(digest));
        assert_ne!(holder.status().digest, before);
    }

    #[test]
    fn a_broken_file_is_reported_at_the_second_poll_once_and_the_templates_in_force_stay() {
        let dir = Scratch::new();
        std::fs::write(dir.path().join("one.yaml"), ONE).unwrap();
        let holder = holder(dir.path());
        std::fs::write(dir.path().join("two.yaml"), "name: two\nworkflows: 3\n").unwrap();
        assert!(
            matches!(holder.read(Utc::now(), false), Read::Settling),
            "the first poll gives a writer time to finish"
        );
        assert_eq!(holder.status().last_reload_error, None);
        let Read::Failed(err) = holder.read(Utc::now(), false) else {
            panic!("a file broken at two polls should fail");
        };
        assert!(err.to_string().contains("two.yaml"), "{err}");
        assert_eq!(
            holder.status().last_reload_error,
            Some(err.to_string()),
            "the status says why"
        );
        assert_eq!(holder.current().names(), ["one"]);
        assert!(
            matches!(holder.read(Utc::now(), false), Read::Unchanged),
            "the poll does not report the same error again"
        );
    }

    #[test]
    fn a_file_caught_half_written_by_a_poll_loads_whole_at_the_next_and_no_failure_is_reported() {
        let dir = Scratch::new();
        std::fs::write(dir.path().join("one.yaml"), ONE).unwrap();
        let holder = holder(dir.path());
        let two = ONE.replace("one", "two");
        let (half, _) = two.split_at(two.len() / 2);
        std::fs::write(dir.path().join("two.yaml"), half).unwrap();
        assert!(matches!(holder.read(Utc::now(), false), Read::Settling));
        std::fs::write(dir.path().join("two.yaml"), &two).unwrap();
        let Read::Loaded { catalog, .. } = holder.read(Utc::now(), false) else {
            panic!("the whole file should load");
        };
        assert_eq!(catalog.names(), ["one", "two"]);
        assert_eq!(holder.status().last_reload_error, None);
    }

    #[test]
    fn sighup_reports_a_broken_file_at_once() {
        let dir = Scratch::new();
        std::fs::write(dir.path().join("one.yaml"), ONE).unwrap();
        let holder = holder(dir.path());
        std::fs::write(dir.path().join("two.yaml"), "name: two\nworkflows: 3\n").unwrap();
        assert!(matches!(holder.read(Utc::now(), true), Read::Failed(_)));
        assert!(holder.status().last_reload_error.is_some());
    }

    #[test]
    fn templates_given_in_code_are_never_read() {
        let holder = CatalogHolder::fixed(Catalog::default());
        assert!(matches!(holder.read(Utc::now(), true), Read::NoDirectory));
        assert_eq!(holder.status(), TemplatesStatus::default());
    }
}
