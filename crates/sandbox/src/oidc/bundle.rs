//! The provider as one file. Node 20 keeps no compile cache, and loading
//! oidc-provider's few hundred modules was two thirds of a start: 0.34 CPU-s
//! a start, 0.16 from one esbuild bundle (docs/development.md). The bundle is
//! made once per lock file and script, under the install lock, and kept
//! beside the packages it was made from; where it cannot be made, the
//! provider runs from its sources as before.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The script the provider starts from, relative to the project.
pub const SOURCE: &str = "provider.mjs";
/// What the bundle is made from: a change to any of them makes it again.
pub const INPUTS: &[&str] = &["package-lock.json", SOURCE, "adapter.mjs"];
/// Where it is kept: with the packages, so a fresh `npm ci` drops it too.
const DIR: &str = "node_modules/.hubwright";
/// Bundles [`SOURCE`] into the file named by its first argument. Packages
/// written for CommonJS `require` Node's own modules, which an ES module has
/// no `require` for: the banner gives it one.
const BUILD: &str = r#"
import { buildSync } from 'esbuild';
buildSync({
  entryPoints: ['provider.mjs'],
  outfile: process.argv[1],
  bundle: true,
  platform: 'node',
  format: 'esm',
  logLevel: 'warning',
  banner: { js: "import { createRequire as hubwrightRequire } from 'node:module'; const require = hubwrightRequire(import.meta.url);" },
});
"#;

/// The bundle of `project`'s provider, made now if it is missing or older
/// than its inputs; `provider.mjs` itself when it cannot be made (the reason
/// is on stderr: a slower start, not a failure).
pub async fn script(project: &Path, node: &Path) -> PathBuf {
    let (project, node) = (project.to_owned(), node.to_owned());
    let made = tokio::task::spawn_blocking({
        let project = project.clone();
        move || ensure(&project, &node)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|made| made);
    match made {
        Ok(bundle) => bundle,
        Err(err) => {
            eprintln!("oidc-provider runs unbundled (slower to start): {err}");
            project.join(SOURCE)
        }
    }
}

/// Where the bundle of `project`'s provider is kept.
pub fn path(project: &Path) -> PathBuf {
    project.join(DIR).join("provider.bundle.mjs")
}

fn ensure(project: &Path, node: &Path) -> std::io::Result<PathBuf> {
    let dir = project.join(DIR);
    let bundle = path(project);
    let marker = dir.join("bundle.inputs");
    let mut inputs = Vec::new();
    for name in INPUTS {
        inputs.extend(std::fs::read(project.join(name))?);
        inputs.push(0);
    }
    if !bundle.is_file() {
        // Removed by hand: whatever the marker says, make it again.
        let _ = std::fs::remove_file(&marker);
    }
    std::fs::create_dir_all(&dir)?;
    crate::npm::once_per(project, &marker, &inputs, || make(project, node, &bundle))?;
    Ok(bundle)
}

/// Bundles the provider into `bundle` (written aside, then renamed).
fn make(project: &Path, node: &Path, bundle: &Path) -> std::io::Result<()> {
    let partial = bundle.with_file_name(format!("provider.bundle.{}.mjs", std::process::id()));
    // esbuild's own API finds its native binary, whichever form npm left
    // `bin/esbuild` in.
    let output = std::process::Command::new(node)
        .args(["--input-type=module", "--eval", BUILD])
        .arg(&partial)
        .current_dir(project)
        .stdin(Stdio::null())
        .output()?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(std::io::Error::other(format!(
            "esbuild in {} failed ({}): {}",
            project.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    std::fs::rename(&partial, bundle)
}
