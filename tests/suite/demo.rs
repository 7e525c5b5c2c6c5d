//! The JupyterHub demos as a newcomer runs them, as real processes:
//! `hubwright demo --sandbox` provisions workflows/jupyterhub.yaml with the
//! Kubernetes stand-in, the real oidc-provider, helm and JupyterHub;
//! `hubwright demo --cluster` provisions it on the cluster in `KUBECONFIG`
//! and reaches the hub through a port-forward. Both print the hub's URL, check
//! it, and tear it all down again.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use hubwright_sandbox::apiserver::{TERMINATION_DELAY_VAR, TestCluster};
use hubwright_sandbox::helm::{HelmVersion, chart_dir, helm_binary};
use hubwright_sandbox::jupyterhub::{self, JupyterHub};
use hubwright_sandbox::kubelet;
use hubwright_testkit::TestDatabase;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::BIN;

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
    let mut command = demo_command(&db);
    command.args(["--sandbox", "--exit-when-ready"]);
    // The demo's teardown waits for the namespace to go; the test need not
    // wait a real cluster's seconds (unless the developer asks for them).
    if std::env::var_os(TERMINATION_DELAY_VAR).is_none() {
        command.env(TERMINATION_DELAY_VAR, "0");
    }
    let (mut child, mut reader, _interrupt) = spawn(command);
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
    let http = hubwright_http::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The console it printed sends sign-ins to the sandbox's provider.
    let console = after(&lines, "console")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no console line:\n{}", lines.join("\n")))
        .to_owned();
    let sign_in = http
        .get(format!("{console}/sign-in/oidc"))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), StatusCode::SEE_OTHER);
    let location = sign_in.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap();
    assert!(
        location.starts_with(&format!("{issuer}/auth?")),
        "{location}"
    );
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

/// Against the stand-in, the test plays the kubelet for the release the
/// demo makes (a real JupyterHub here, the proxy pod behind `proxy-public`)
/// and gives the demo the testkit's hub-shaped chart; with `KUBECONFIG` set
/// the real cluster runs the real chart from the template.
#[tokio::test]
async fn the_cluster_demo_provisions_through_a_port_forward_and_lets_the_owner_in() {
    let db = TestDatabase::create().await;
    // The teardown waits for the namespace to go; the stand-in's need not
    // take a real cluster's seconds.
    let cluster = TestCluster::from_env_terminating_quickly().await.unwrap();
    // The real chart's hub must run and answer.
    if cluster.skips_without_ready_node().await {
        return;
    }
    let helm = helm_binary(HelmVersion::V3).await.unwrap();
    let mut command = demo_command(&db);
    command.args(["--cluster", "--exit-when-ready", "--port", "0"]);
    if !cluster.is_real() {
        command.arg("--chart").arg(chart_dir());
    }
    if let Some(context) = cluster.context() {
        command.args(["--kube-context", context]);
    }
    command
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("HELM_BIN", &helm)
        .env("USER", "alice");
    let (mut child, mut reader, _interrupt) = spawn(command);
    let mut lines = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1200);
    let mut next_line = async || {
        tokio::time::timeout_at(deadline, reader.next_line())
            .await
            .expect("the demo within 20 minutes")
            .unwrap()
    };
    let namespace = loop {
        let Some(line) = next_line().await else {
            panic!("the demo ended before its request:\n{}", lines.join("\n"));
        };
        let namespace = line
            .split_once("in namespace ")
            .and_then(|(_, rest)| rest.split(';').next())
            .map(str::to_owned);
        lines.push(line);
        if let Some(namespace) = namespace {
            cluster.delete_on_drop(&namespace);
            break namespace;
        }
    };
    assert!(
        lines.iter().any(|l| l.contains("ON THE CLUSTER")),
        "{}",
        lines.join("\n")
    );

    let hub: Option<JupyterHub> = if cluster.is_real() {
        None
    } else {
        kubelet::wait_for_deployment(&cluster, &namespace, "hub", Duration::from_secs(600))
            .await
            .unwrap();
        let pod = kubelet::hub_pod(&cluster, &namespace).await.unwrap();
        let options = jupyterhub::Options {
            port: jupyterhub::free_port().unwrap(),
            ..jupyterhub::Options::default()
        };
        let hub = kubelet::start_hub(&pod, options).await.unwrap();
        kubelet::mark_available(&cluster, &namespace, &["hub", "proxy"])
            .await
            .unwrap();
        let address = hub.url().trim_start_matches("http://").parse().unwrap();
        kubelet::run_proxy_pod(&cluster, &namespace, address)
            .await
            .unwrap();
        Some(hub)
    };

    while let Some(line) = next_line().await {
        lines.push(line);
    }
    let status = child.wait().await.unwrap();
    let text = lines.join("\n");
    assert!(status.success(), "{text}");
    let url = after(&lines, "hub URL").unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{text}");
    if let Some(hub) = &hub {
        // Reached through the forward, not at the hub's own port.
        assert_ne!(url, hub.url(), "{text}");
    }
    assert!(text.contains(&format!("✓ GET {url}/hub/health")), "{text}");
    assert!(text.contains("✓ logged in as alice"), "{text}");
    assert!(text.contains("step namespace succeeded"), "{text}");
    assert!(text.contains("✓ demo done"), "{text}");
    // The teardown waited for the namespace to be gone.
    let client = cluster.client().await.unwrap();
    let left = Api::<Namespace>::all(client)
        .get_opt(&namespace)
        .await
        .unwrap();
    assert!(left.is_none(), "namespace {namespace} is still there");
}

/// `hubwright demo` from the project's root against `db`.
fn demo_command(db: &TestDatabase) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BIN);
    command
        .arg("demo")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
}

/// Starts `command`, its stdout read by line, interrupted when the guard drops.
fn spawn(
    mut command: tokio::process::Command,
) -> (
    tokio::process::Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    InterruptOnDrop,
) {
    let mut child = command.spawn().unwrap();
    let interrupt = InterruptOnDrop(child.id().unwrap());
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines, interrupt)
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
