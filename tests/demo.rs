//! `hubwright demo --sandbox` as a newcomer runs it: a real process that
//! provisions workflows/jupyterhub.yaml with the Kubernetes stand-in, the real
//! oidc-provider, helm and JupyterHub, prints the hub's URL, and tears it all
//! down again.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use hubwright_testkit::TestDatabase;
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_hubwright");

/// The value after `label` on the first line of `lines` that has it.
fn after<'a>(lines: &'a [String], label: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|line| line.trim_start().strip_prefix(label))
        .map(str::trim)
}

#[tokio::test]
async fn the_sandbox_demo_prints_a_hub_that_answers_and_sends_logins_to_the_provider() {
    let db = TestDatabase::create().await;
    let mut child = tokio::process::Command::new(BIN)
        .args(["demo", "--sandbox", "--exit-when-ready"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let _interrupt = InterruptOnDrop(child.id().unwrap());
    let mut reader = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut lines = Vec::new();
    // Cold machines install helm and JupyterHub first.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let url = loop {
        let line = tokio::time::timeout_at(deadline, reader.next_line())
            .await
            .expect("the hub URL within 10 minutes")
            .unwrap();
        let Some(line) = line else {
            panic!("the demo ended without a hub URL:\n{}", lines.join("\n"));
        };
        lines.push(line);
        if let Some(url) = after(&lines, "hub URL") {
            break url.to_owned();
        }
    };
    let issuer = after(&lines, "identity   oidc-provider at")
        .unwrap()
        .to_owned();
    assert!(
        lines[..4].iter().any(|l| l.contains("LOCAL SANDBOX")),
        "{}",
        lines.join("\n")
    );

    // The demo checks its hub, then tears down (seconds): ask meanwhile.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let health = http.get(format!("{url}/hub/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let login = http
        .get(format!("{url}/hub/oauth_login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::FOUND);
    let location = login.headers()[reqwest::header::LOCATION].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{issuer}/auth?")),
        "{location}"
    );
    assert!(
        location.contains(&format!(
            "redirect_uri={}",
            urlencode(&format!("{url}/hub/oauth_callback"))
        )),
        "{location}"
    );

    while let Some(line) = reader.next_line().await.unwrap() {
        lines.push(line);
    }
    let status = child.wait().await.unwrap();
    let text = lines.join("\n");
    assert!(status.success(), "{text}");
    assert!(text.contains("tearing down:"), "{text}");
    assert!(text.contains("step namespace succeeded"), "{text}");
    assert!(text.contains("✓ sandbox done"), "{text}");
}

fn urlencode(text: &str) -> String {
    text.replace(':', "%3A").replace('/', "%2F")
}

/// Ctrl-C for the demo when the test ends early, so it stops its JupyterHub
/// and provider (a SIGKILL would leave them running); SIGKILL after 15s.
struct InterruptOnDrop(u32);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        let pid = self.0.to_string();
        let kill = |args: &[&str]| {
            std::process::Command::new("kill")
                .args(args)
                .arg(&pid)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !kill(&["-INT"]) {
            return; // Already gone.
        }
        for _ in 0..150 {
            std::thread::sleep(Duration::from_millis(100));
            if !kill(&["-0"]) {
                return;
            }
        }
        kill(&["-KILL"]);
    }
}
