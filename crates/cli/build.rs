//! Stamps the binary with the commit it was built from, for the
//! `hubwright_build_info{commit}` metric: `HUBWRIGHT_COMMIT` when the build
//! sets it (the image's build, whose context has no `.git`), else
//! `git rev-parse`, else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HUBWRIGHT_COMMIT");
    let commit = std::env::var("HUBWRIGHT_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=HUBWRIGHT_COMMIT={}", commit.trim());
}

/// `git rev-parse --short=12 HEAD`, and a rerun whenever HEAD moves: on a
/// checkout (HEAD itself) and on a commit (the branch it names).
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    // A path that does not exist (a packed ref) would rerun every build.
    for path in watched.into_iter().flatten() {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(commit)
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}
