//! `hubwright demo --cluster`: provisions a real JupyterHub through
//! `workflows/jupyterhub.yaml` on the cluster in `KUBECONFIG` (its current
//! context) with the `helm` on this machine, then keeps it until Ctrl-C and
//! tears it down through the template's teardown workflow.
//!
//! It asks for `auth_mode: local`, because an identity provider the hub pod
//! can reach is the one thing a newcomer's cluster does not have: the owner
//! logs in with a generated admin password, printed here. The hub is reached
//! through a port-forward to `proxy-public` ([`crate::port_forward`]), so it
//! works on clusters that give the Service no load-balancer address (kind,
//! minikube); the health check probes the same address.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use hubwright_state::clusters::{ClusterConfig, Clusters, DEFAULT_CLUSTER};
use hubwright_state::model::RunState;
use hubwright_state::secrets::SecretKeys;
use hubwright_worker::kubernetes::ClusterClients;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{Map, Value};
use tokio::net::TcpListener;

use super::demo_hub::{
    NAME, OAUTH_SECRET, Started, TEMPLATE, answers, chart_at, health_at, phase, start_and_request,
    teardown, write_template,
};
use crate::port_forward::ServiceForward;
use crate::{Extensions, output};

/// Knobs of the cluster demo.
#[derive(Debug)]
pub struct Options<'a> {
    /// Directory of workflow files.
    pub workflows: &'a Path,
    /// A chart directory or archive instead of the template's repository.
    pub chart: Option<&'a Path>,
    /// The kubeconfig context; `None`: the current one.
    pub context: Option<String>,
    /// The local port of the hub's URL; taken, or 0, means any free one.
    pub port: u16,
    /// Check the hub and tear it down at once instead of waiting for Ctrl-C.
    pub exit_when_ready: bool,
}

/// Runs the cluster demo against the database at `url`.
pub async fn run(url: &str, options: Options<'_>) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    println!("hubwright demo --cluster");
    println!("  ON THE CLUSTER of your kubeconfig: what it makes there is real, and");
    println!("  Ctrl-C removes it again (helm uninstall, then the namespace).");
    println!();
    phase("kubernetes", describe_context(options.context.as_deref()));
    let helm = helm_version().await?;
    phase("helm", helm);

    let clusters = Clusters::single(
        DEFAULT_CLUSTER,
        ClusterConfig {
            context: options.context.clone(),
            ..ClusterConfig::default()
        },
    );
    let client = ClusterClients::new(clusters.clone())
        .client("default")
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let version = client
        .apiserver_version()
        .await
        .context("the cluster in KUBECONFIG does not answer")?;
    phase(
        "kubernetes",
        format!("answers: Kubernetes {}.{}", version.major, version.minor),
    );

    let store = super::connect(url, 8).await?;
    store.migrate().await.context("applying migrations")?;
    phase("database", format!("{} (migrated)", super::redact(url)));
    // The demo's database is thrown away with it; so is this key.
    let keys = match SecretKeys::from_env() {
        Ok(keys) => keys,
        Err(_) => SecretKeys::ephemeral("demo")?,
    };

    let listener = match TcpListener::bind(("127.0.0.1", options.port)).await {
        Ok(listener) => listener,
        Err(_) => TcpListener::bind(("127.0.0.1", 0)).await?,
    };
    let hub_port = listener.local_addr()?.port();
    let hub_url = format!("http://127.0.0.1:{hub_port}");
    let dir = std::env::temp_dir().join(format!("hubwright-demo-{}", std::process::id()));
    let mut replacements = vec![health_at(&hub_url, "15m", "3s")];
    if let Some(chart) = options.chart {
        replacements.push(chart_at(&std::path::absolute(chart)?));
    }
    let local = write_template(&dir, options.workflows, &replacements)?;
    let registry = || {
        super::registry(
            Extensions::default(),
            &clusters,
            Some(Arc::new(keys.clone())),
            &local,
        )
    };
    phase(
        "template",
        format!(
            "workflows/{TEMPLATE}.yaml, auth_mode local, the hub checked at {hub_url}{}",
            options
                .chart
                .map(|c| format!(", chart {}", c.display()))
                .unwrap_or_default()
        ),
    );
    let parameters = Map::from_iter([("auth_mode".to_owned(), Value::from("local"))]);
    let Started {
        catalog,
        worker,
        owner,
        env_id,
        namespace,
        run_id,
    } = start_and_request(&store, &local, registry, parameters).await?;
    let forward =
        ServiceForward::start(client.clone(), &namespace, "proxy-public", "http", listener)?;
    println!();
    println!(
        "requested environment `{NAME}` for `{owner}` in namespace {namespace}; {hub_url} \
         port-forwards to its proxy-public service. Provisioning (the first image pulls take minutes):"
    );

    let run = tokio::select! {
        run = output::follow(&store, run_id) => Some(run?),
        () = super::shutdown_signal() => {
            println!("interrupted: tearing down what was made");
            None
        }
    };
    let mut failed = false;
    if run.as_ref().is_some_and(|r| r.state == RunState::Succeeded) {
        let password = admin_password(&client, &namespace).await?;
        println!();
        println!(
            "✓ JupyterHub is ready after {:.1}s: {}",
            started.elapsed().as_secs_f64(),
            forward.url()
        );
        println!("  hub URL    {}", forward.url());
        println!("  log in     as `{owner}` with the password {password}");
        println!(
            "             (generated for this hub; it is in Secret {namespace}/{OAUTH_SECRET})"
        );
        if options.exit_when_ready {
            failed |= !self_check(&forward.url(), &owner, &password).await;
        } else {
            println!();
            println!("Press Ctrl-C to tear it down (helm uninstall, namespace delete).");
            super::shutdown_signal().await;
        }
    } else if let Some(run) = &run {
        println!("✗ provisioning ended {}", run.state);
        failed = true;
    }

    println!();
    println!("tearing down:");
    drop(forward);
    let torn_down = teardown(&store, &catalog, env_id).await;
    worker.shutdown().await?;
    let torn_down = torn_down?;
    let _ = std::fs::remove_dir_all(&dir);
    if !torn_down {
        println!(
            "✗ teardown did not finish; remove what is left with \
             `helm uninstall -n {namespace} {namespace}` and `kubectl delete namespace {namespace}`"
        );
    }
    println!(
        "{} demo done after {:.1}s",
        if torn_down && !failed { "✓" } else { "✗" },
        started.elapsed().as_secs_f64()
    );
    Ok(if torn_down && !failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `context NAME (server URL), from PATH`: `context`, or the kubeconfig's
/// current one.
fn describe_context(context: Option<&str>) -> String {
    let from = std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".to_owned());
    let Ok(kubeconfig) = kube::config::Kubeconfig::read() else {
        return format!("kubeconfig {from} (unreadable: kube will say why)");
    };
    let context = context
        .map(str::to_owned)
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_default();
    let server = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| kubeconfig.clusters.iter().find(|k| k.name == c.cluster))
        .and_then(|k| k.cluster.as_ref())
        .and_then(|k| k.server.clone())
        .unwrap_or_default();
    format!("context {context} ({server}), from {from}")
}

/// `helm version --short` of `$HELM_BIN` or `helm`, or why there is none.
async fn helm_version() -> anyhow::Result<String> {
    let bin = hubwright_worker::helm::helm_bin();
    let output = tokio::process::Command::new(&bin)
        .args(["version", "--short"])
        .output()
        .await
        .with_context(|| {
            format!(
                "cannot run {} (install helm 3 or 4, or set HELM_BIN; `just demo` without \
                 KUBECONFIG runs the local sandbox instead)",
                bin.display()
            )
        })?;
    anyhow::ensure!(
        output.status.success(),
        "{} version failed: {}",
        bin.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(format!(
        "{} {}",
        bin.display(),
        String::from_utf8_lossy(&output.stdout).trim()
    ))
}

/// The generated admin password from the Secret the hub reads it from.
async fn admin_password(client: &kube::Client, namespace: &str) -> anyhow::Result<String> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(OAUTH_SECRET)
        .await
        .with_context(|| format!("reading Secret {namespace}/{OAUTH_SECRET}"))?;
    let value = secret
        .data
        .unwrap_or_default()
        .remove("ADMIN_PASSWORD")
        .with_context(|| format!("Secret {namespace}/{OAUTH_SECRET} has no ADMIN_PASSWORD"))?;
    String::from_utf8(value.0).context("the admin password is not UTF-8")
}

/// `/hub/health` answers 200, and `owner` logs in with `password`.
async fn self_check(url: &str, owner: &str, password: &str) -> bool {
    let health = answers(&format!("{url}/hub/health")).await;
    phase(
        "check",
        format!("{} GET {url}/hub/health", if health { "✓" } else { "✗" }),
    );
    let login = log_in(url, owner, password).await;
    phase(
        "check",
        match &login {
            Ok(landing) => format!("✓ logged in as {owner}: redirected to {landing}"),
            Err(err) => format!("✗ logging in as {owner}: {err:#}"),
        },
    );
    health && login.is_ok()
}

/// Posts the hub's login form as a browser does; where the hub sends us.
async fn log_in(url: &str, user: &str, password: &str) -> anyhow::Result<String> {
    let http = hubwright_http::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let form = http.get(format!("{url}/hub/login")).send().await?;
    let xsrf = form
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find_map(|c| c.strip_prefix("_xsrf="))
        .and_then(|c| c.split(';').next())
        .context("the login page set no _xsrf cookie")?
        .to_owned();
    let response = http
        .post(format!("{url}/hub/login"))
        .header(reqwest::header::COOKIE, format!("_xsrf={xsrf}"))
        .form(&[("username", user), ("password", password), ("_xsrf", &xsrf)])
        .send()
        .await?;
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        status == reqwest::StatusCode::FOUND && !location.contains("/hub/login"),
        "the hub answered {status} {location}"
    );
    Ok(location)
}
