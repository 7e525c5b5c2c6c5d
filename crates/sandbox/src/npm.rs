//! Node.js and npm packages for the Node programs hubwright runs locally (the
//! sandbox's OpenID provider, the web console's browser tests): which `node`,
//! and a pinned `npm ci` done once per lock file, however many test processes
//! ask at the same time.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// `$HUBWRIGHT_NODE`, or `node` on `PATH`: the Node.js the OpenID provider,
/// JupyterHub's proxy and the browser tests run on.
pub fn find_node() -> std::io::Result<PathBuf> {
    if let Some(node) = std::env::var_os("HUBWRIGHT_NODE").filter(|n| !n.is_empty()) {
        return Ok(PathBuf::from(node));
    }
    crate::find_on_path("node").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "node not found on PATH (install Node.js 20 or later, or set HUBWRIGHT_NODE)",
        )
    })
}

/// Runs `npm ci` in `project` (a directory with `package.json` and
/// `package-lock.json`) unless its `node_modules` matches the lock file, with
/// the npm beside [`find_node`]'s node. An exclusive lock on
/// `project/.install.lock` (ignore it in git) makes parallel test processes
/// wait for the one installing; a marker written after success makes a
/// half-done install (a killed process) count as missing.
pub async fn ensure_installed(project: &Path) -> std::io::Result<()> {
    let node = find_node()?;
    let project = project.to_owned();
    tokio::task::spawn_blocking(move || install_blocking(&project, &node))
        .await
        .map_err(std::io::Error::other)?
}

/// Runs `make` unless `marker` holds `inputs` (what it was last made from).
/// An exclusive lock on `project/.install.lock` makes parallel processes wait
/// for the one making it; the marker is written after `make` succeeds, so a
/// half-done make (a killed process) counts as not made.
pub(crate) fn once_per(
    project: &Path,
    marker: &Path,
    inputs: &[u8],
    make: impl FnOnce() -> std::io::Result<()>,
) -> std::io::Result<()> {
    let made = || std::fs::read(marker).is_ok_and(|seen| seen == inputs);
    if made() {
        return Ok(());
    }
    let lock = std::fs::File::create(project.join(".install.lock"))?;
    // Held until dropped.
    lock.lock()?;
    if made() {
        return Ok(());
    }
    make()?;
    std::fs::write(marker, inputs)
}

fn install_blocking(project: &Path, node: &Path) -> std::io::Result<()> {
    let lockfile = std::fs::read(project.join("package-lock.json"))?;
    let marker = project.join("node_modules").join(".hubwright-installed");
    once_per(project, &marker, &lockfile, || npm_ci(project, node))
}

fn npm_ci(project: &Path, node: &Path) -> std::io::Result<()> {
    // npm next to node first, so HUBWRIGHT_NODE picks its own npm.
    let npm = node
        .parent()
        .map(|dir| dir.join("npm"))
        .filter(|npm| npm.is_file())
        .or_else(|| crate::find_on_path("npm"))
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "npm not found"))?;
    // npm's shebang runs the first `node` on PATH: make that ours.
    let mut path = node
        .parent()
        .map(Path::to_owned)
        .into_iter()
        .collect::<Vec<_>>();
    path.extend(
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths),
    );
    let output = std::process::Command::new(&npm)
        .args(["ci", "--no-audit", "--no-fund"])
        .env(
            "PATH",
            std::env::join_paths(path).map_err(std::io::Error::other)?,
        )
        .current_dir(project)
        .stdin(Stdio::null())
        .output()?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "{} ci in {} failed ({}):\n{}{}",
            npm.display(),
            project.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}
