//! hubwright-testkit: what hubwright's tests start.
//!
//! - [`TestDatabase`]: a fresh, migrated Postgres database per test.
//! - [`steps`]: step kinds whose behaviour a test controls (block, flaky, fail,
//!   record a side effect, wait N polls), registered by `hubwright serve` only
//!   when built with the `testkit` feature.
//! - [`process`]: start real `hubwright` processes and SIGKILL, SIGSTOP, SIGCONT
//!   or SIGTERM them mid-step.
//! - [`factory`]: runs in any state, without a worker.
//! - [`wait`]: poll the database until a run reaches a state.
//! - [`apiserver`]: a Kubernetes API server stand-in (or a real cluster with `KUBECONFIG`).
//! - [`oidc`]: the real OpenID provider `oidc-provider`, on 127.0.0.1.
//! - [`server`]: a real `hubwright serve --api` process and an HTTP client for it.
//! - [`kubelet`]: start the real JupyterHub a hub-shaped release in the stand-in
//!   describes, and mark its Deployments available (the stand-in runs no pods).
//!
//! Never linked into a release binary.

pub mod apiserver;
mod db;
pub mod factory;
pub mod harness;
pub mod helm;
pub mod hub_health;
pub mod jupyterhub;
pub mod keycloak;
pub mod kubelet;
pub mod lab;
pub mod oidc;
pub mod process;
pub mod server;
pub mod steps;
pub mod wait;

pub use db::{TestDatabase, with_database};

/// The `HUBWRIGHT_SECRET_KEY` of test workers: a fixed key, so a test can open
/// what a worker process sealed.
pub const TEST_SECRET_KEY: &str =
    "test:5f1e0c3a9b7d2468ace13579bdf02468ace13579bdf02468ace13579bdf02468";

/// The keys of [`TEST_SECRET_KEY`].
pub fn test_secret_keys() -> hubwright_state::secrets::SecretKeys {
    hubwright_state::secrets::SecretKeys::parse(TEST_SECRET_KEY).expect("a valid test key")
}

/// An I/O error saying what failed (`context`) and why.
pub(crate) fn other(context: &str, err: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{context}: {err}"))
}

/// Writes `yaml` as `dir/<name>.yaml` and returns the directory, for tests that
/// need a workflow of their own.
pub fn write_workflow(dir: &std::path::Path, name: &str, yaml: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("create workflow dir");
    std::fs::write(dir.join(format!("{name}.yaml")), yaml).expect("write workflow");
    dir.to_owned()
}

/// A fresh empty directory under the system temp dir for one test.
pub fn scratch_dir(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hubwright-{label}-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Where tools the tests install once (helm, JupyterHub) are kept:
/// `$HUBWRIGHT_CACHE_DIR`, else `$XDG_CACHE_HOME/hubwright`, else
/// `~/.cache/hubwright`.
pub(crate) fn cache_dir() -> std::io::Result<std::path::PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("HUBWRIGHT_CACHE_DIR") {
        return Ok(std::path::PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Ok(std::path::PathBuf::from(dir).join("hubwright"));
    }
    var("HOME")
        .map(|home| std::path::PathBuf::from(home).join(".cache/hubwright"))
        .ok_or_else(|| std::io::Error::other("no HOME, XDG_CACHE_HOME or HUBWRIGHT_CACHE_DIR"))
}

/// `$HUBWRIGHT_NODE`, or `node` on `PATH`: the Node.js the OpenID provider and
/// JupyterHub's proxy run on.
pub(crate) fn find_node() -> std::io::Result<std::path::PathBuf> {
    if let Some(node) = std::env::var_os("HUBWRIGHT_NODE").filter(|n| !n.is_empty()) {
        return Ok(std::path::PathBuf::from(node));
    }
    find_on_path("node").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "node not found on PATH (install Node.js 20 or later, or set HUBWRIGHT_NODE)",
        )
    })
}

/// `name` in a directory of `PATH`, if there is one.
pub(crate) fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs one command of installing `what` (helm, JupyterHub); a failure says
/// the command and everything it printed.
pub(crate) fn run_install_step(
    what: &str,
    command: &mut std::process::Command,
) -> std::io::Result<()> {
    let out = command.output().map_err(|e| {
        std::io::Error::new(e.kind(), format!("installing {what}: {command:?}: {e}"))
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "installing {what}: {command:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )))
}
