//! hubwright-sandbox: a Kubernetes environment on one machine, for
//! `hubwright demo --sandbox` and for hubwright's own tests.
//!
//! - [`apiserver`]: a Kubernetes API server stand-in that behaves like
//!   kube-apiserver for what hubwright, kube-rs and helm use (its README lists
//!   what it does and does not do), or a real cluster with `KUBECONFIG`.
//! - [`kubelet`]: starts the real JupyterHub a hub-shaped release in the
//!   stand-in describes and marks its Deployments available (the stand-in runs
//!   no pods); [`hub_farm`] does it for every such release at once.
//! - [`oidc`]: the real OpenID provider `oidc-provider`, on 127.0.0.1.
//! - [`jupyterhub`]: a real JupyterHub from the `hub.config` the chart wrote.
//! - [`npm`]: the Node.js and pinned npm packages of the Node programs.
//! - [`ports`]: ports for the children it starts, clear of the range the
//!   kernel gives outgoing connections.
//! - [`helm`]: the real `helm` 3 or 4 binary from a PyPI wheel, and the
//!   hub-shaped test chart.
//!
//! Everything here is real software run locally, except the API server: it
//! pretends to be a cluster only inside the sandbox and tests.

pub mod apiserver;
pub mod helm;
pub mod hub_farm;
pub mod jupyterhub;
pub mod kubelet;
pub mod npm;
pub mod oidc;
pub mod ports;
mod readiness;

pub use readiness::START_TIMEOUT_VARIABLE;

use std::path::PathBuf;

/// An I/O error saying what failed (`context`) and why.
pub(crate) fn other(context: &str, err: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{context}: {err}"))
}

/// A fresh empty directory under the system temp dir, named after `label`.
pub fn scratch_dir(label: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "hubwright-{label}-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|err| other(&format!("creating {}", dir.display()), err))?;
    Ok(dir)
}

/// Where tools the sandbox installs once (helm, JupyterHub) are kept:
/// `$HUBWRIGHT_CACHE_DIR`, else `$XDG_CACHE_HOME/hubwright`, else
/// `~/.cache/hubwright`.
pub(crate) fn cache_dir() -> std::io::Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("HUBWRIGHT_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("hubwright"));
    }
    var("HOME")
        .map(|home| PathBuf::from(home).join(".cache/hubwright"))
        .ok_or_else(|| std::io::Error::other("no HOME, XDG_CACHE_HOME or HUBWRIGHT_CACHE_DIR"))
}

/// `name` in a directory of `PATH`, if there is one.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
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
