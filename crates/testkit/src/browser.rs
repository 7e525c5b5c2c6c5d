//! Browser tests: the Node scripts in `tests/browser/` (playwright-core and
//! axe-core, pinned in its `package-lock.json`; the driver is `lib.mjs`) run
//! in Debian's chromium, one chromium per script.
//!
//! ```no_run
//! # async fn example(url: &str) {
//! use hubwright_testkit::browser::Browser;
//! let Some(browser) = Browser::ready().await else { return };
//! browser.script("harness").env("HUBWRIGHT_PAGE_URL", url).run().await;
//! # }
//! ```
//!
//! A missing chromium fails the test with the command that installs it
//! (`just test` installs it first, as root or with sudo), so a machine
//! without one never passes the suite by leaving its browser tests out. The
//! one way to leave them out is to say so: `HUBWRIGHT_SKIP_BROWSER=1`, and each
//! test prints that it was skipped. A failed script leaves a screenshot and
//! the HTML of each open page under `target/browser-artifacts/<test>/`, and
//! the test's panic names them.

mod reap;
mod script;

pub use script::{Outcome, Script};

use std::path::{Path, PathBuf};

/// Set to `1` to skip the browser tests (each prints that it was skipped).
pub const SKIP_VARIABLE: &str = "HUBWRIGHT_SKIP_BROWSER";

/// The chromium executable to use instead of `/usr/bin/chromium`.
pub const CHROMIUM_VARIABLE: &str = "HUBWRIGHT_CHROMIUM";

/// Where Debian's `chromium` package puts it.
const DEBIAN_CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium, Node.js and the scripts' npm packages, ready to run scripts.
#[derive(Debug, Clone)]
pub struct Browser {
    node: PathBuf,
    chromium: PathBuf,
}

impl Browser {
    /// Finds chromium and node and installs `tests/browser`'s npm packages
    /// the first time (`npm ci`, once per lock file across test processes).
    /// `None`, after printing that the test is skipped, only when
    /// `HUBWRIGHT_SKIP_BROWSER=1`; a missing chromium or node, or a failed
    /// install, panics saying how to fix it.
    pub async fn ready() -> Option<Self> {
        if skipped() {
            eprintln!("SKIPPED: browser test not run ({SKIP_VARIABLE}=1)");
            return None;
        }
        let chromium = chromium().unwrap_or_else(|why| panic!("{why}"));
        let node = hubwright_sandbox::npm::find_node()
            .unwrap_or_else(|err| panic!("the browser tests need Node.js: {err}"));
        let project = project_dir();
        if let Err(err) = hubwright_sandbox::npm::ensure_installed(&project).await {
            panic!(
                "installing the browser tests' npm packages in {}: {err}",
                project.display()
            );
        }
        Some(Browser { node, chromium })
    }

    /// The script `tests/browser/<name>.mjs`, to be given its inputs and run.
    pub fn script(&self, name: &str) -> Script {
        Script::new(self.clone(), name)
    }

    /// The chromium the scripts launch.
    pub fn chromium(&self) -> &Path {
        &self.chromium
    }
}

/// Whether `HUBWRIGHT_SKIP_BROWSER=1`.
pub fn skipped() -> bool {
    std::env::var(SKIP_VARIABLE).is_ok_and(|value| value.trim() == "1")
}

/// `$HUBWRIGHT_CHROMIUM`, else `/usr/bin/chromium`, when it is a file; else
/// why the browser tests cannot run and how to fix it.
pub fn chromium() -> Result<PathBuf, String> {
    let configured = std::env::var_os(CHROMIUM_VARIABLE).filter(|value| !value.is_empty());
    let path = configured
        .clone()
        .map_or_else(|| PathBuf::from(DEBIAN_CHROMIUM), PathBuf::from);
    if path.is_file() {
        return Ok(path);
    }
    let source = if configured.is_some() {
        format!(" ({CHROMIUM_VARIABLE})")
    } else {
        String::new()
    };
    Err(format!(
        "the browser tests need chromium, and there is none at {}{source}: install Debian's \
         with `just browser-up` (or `sudo apt-get install -y chromium`), point \
         {CHROMIUM_VARIABLE} at another, or set {SKIP_VARIABLE}=1 to skip the browser tests",
        path.display()
    ))
}

/// `tests/browser`: package.json, package-lock.json, lib.mjs and the scripts.
pub fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// `target/browser-artifacts`: the target directory is found from the test
/// binary's own path (`<target>/<profile>/deps/<binary>`), so a moved
/// `CARGO_TARGET_DIR` is honoured.
pub fn artifacts_root() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let deps = exe.parent()?;
        (deps.file_name()? == "deps").then(|| deps.parent()?.parent().map(Path::to_owned))?
    });
    from_exe
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("browser-artifacts")
}

/// The running test's name as nextest gives it (`console::harness::a_test`),
/// else the test thread's name, for the artifacts directory.
fn test_name() -> Option<String> {
    std::env::var("NEXTEST_TEST_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::thread::current()
                .name()
                .filter(|name| *name != "main")
                .map(str::to_owned)
        })
}
