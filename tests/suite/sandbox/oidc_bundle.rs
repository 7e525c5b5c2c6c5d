//! oidc-provider as one esbuild bundle: made once per lock file and script,
//! made again when they change, and the sources run where it cannot be made.

use std::path::PathBuf;

use hubwright_sandbox::{npm, oidc};
use oidc::bundle;

/// A copy of the provider's project whose `node_modules` links to the
/// real one's packages, so its bundle is its own.
fn scratch_project() -> PathBuf {
    let real = oidc::project_dir();
    let dir = hubwright_sandbox::scratch_dir("oidc-bundle").expect("a scratch directory");
    for name in bundle::INPUTS {
        std::fs::copy(real.join(name), dir.join(name)).expect("copy an input");
    }
    let modules = dir.join("node_modules");
    std::fs::create_dir_all(&modules).expect("node_modules");
    for entry in std::fs::read_dir(real.join("node_modules")).expect("the packages") {
        let entry = entry.expect("a package");
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with('.') {
            std::os::unix::fs::symlink(entry.path(), modules.join(name)).expect("link");
        }
    }
    dir
}

#[tokio::test]
async fn the_bundle_is_made_once_and_again_when_its_script_changes() {
    npm::ensure_installed(&oidc::project_dir())
        .await
        .expect("the provider's packages");
    let node = npm::find_node().expect("node");
    let project = scratch_project();
    let made_at = bundle::path(&project);

    assert_eq!(bundle::script(&project, &node).await, made_at);
    let first = std::fs::read_to_string(&made_at).expect("the bundle");
    assert!(first.contains("hubwrightRequire"), "the banner is in");
    let made = std::fs::metadata(&made_at).and_then(|m| m.modified()).ok();
    assert_eq!(bundle::script(&project, &node).await, made_at);
    assert_eq!(
        std::fs::metadata(&made_at).and_then(|m| m.modified()).ok(),
        made,
        "an unchanged project is not bundled again"
    );

    let source = project.join(bundle::SOURCE);
    let mut text = std::fs::read_to_string(&source).expect("the script");
    text.push_str("\nconsole.error('hubwright-bundle-probe');\n");
    std::fs::write(&source, text).expect("change the script");
    assert_eq!(bundle::script(&project, &node).await, made_at);
    let second = std::fs::read_to_string(&made_at).expect("the bundle");
    assert!(second.contains("hubwright-bundle-probe"), "made again");

    // Without esbuild the provider runs from its sources.
    std::fs::remove_file(project.join("node_modules/esbuild")).expect("unlink esbuild");
    std::fs::write(&source, "// changed again\n").expect("change the script");
    assert_eq!(bundle::script(&project, &node).await, source);
    let _ = std::fs::remove_dir_all(&project);
}
