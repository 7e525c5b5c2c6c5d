//! What both JupyterHub demos share — on the cluster in `KUBECONFIG`
//! ([`super::demo_cluster`]) and in the local sandbox (`demo_sandbox`):
//! pointing a copy of `workflows/jupyterhub.yaml` at where the hub will
//! answer, requesting the environment as the API would, and tearing it down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hubwright_state::model::RunState;
use hubwright_state::store::enqueue::new_id;
use hubwright_state::store::environments::{NewEnvironment, TeardownRequest};
use hubwright_state::workflow::Catalog;
use hubwright_state::{Clock, Store, SystemClock};
use hubwright_worker::{Registry, Worker, WorkerConfig, WorkerHandle};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::output;

pub const TEMPLATE: &str = "jupyterhub";
/// The Secret the idp-client step writes the hub's credentials to.
pub const OAUTH_SECRET: &str = hubwright_worker::idp::DEFAULT_SECRET;
/// The name of the demo's environment.
pub const NAME: &str = "demo";

/// One line of the demo's set-up, label first.
pub fn phase(label: &str, text: impl std::fmt::Display) {
    println!("  {label:<11}{text}");
}

/// Who asks for the hub: the login user, unless that is root.
pub fn owner() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && u != "root")
        .unwrap_or_else(|| "you".to_owned())
}

/// The worker settings of an in-process demo worker: quick to notice work.
fn worker_config() -> WorkerConfig {
    WorkerConfig {
        concurrency: 4,
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(100),
        ..WorkerConfig::default()
    }
}

/// Registers the template copy in `local` with the step kinds `registry`
/// makes, starts an in-process worker with them, and requests the hub for
/// the login user with `parameters`: the catalog, the worker, the owner, and
/// the environment's id, namespace and provisioning run.
pub async fn start_and_request(
    store: &Store,
    local: &Path,
    registry: impl Fn() -> Registry,
    parameters: Map<String, Value>,
) -> anyhow::Result<Started> {
    let mut catalog = registry().load_catalog(local)?;
    catalog.register(store).await?;
    let worker = Worker::new(
        store.clone(),
        registry(),
        worker_config(),
        Arc::new(SystemClock),
    )?;
    phase("worker", format!("{} (in this process)", worker.id()));
    let worker = worker.spawn();
    let owner = owner();
    let (env_id, namespace, run_id) = request(store, &catalog, &owner, parameters).await?;
    Ok(Started {
        catalog,
        worker,
        owner,
        env_id,
        namespace,
        run_id,
    })
}

/// What [`start_and_request`] started.
#[derive(Debug)]
pub struct Started {
    pub catalog: Catalog,
    pub worker: WorkerHandle,
    pub owner: String,
    pub env_id: Uuid,
    pub namespace: String,
    pub run_id: Uuid,
}

/// The template's health step, told to probe `url` instead of the load
/// balancer's address, every `interval` until `deadline`.
pub fn health_at(url: &str, deadline: &str, interval: &str) -> (&'static str, String) {
    (
        "        with:\n          deadline: 15m\n",
        format!(
            "        with:\n          url: {url}\n          interval: {interval}\n          deadline: {deadline}\n"
        ),
    )
}

/// The template's chart replaced by the chart directory `chart`.
pub fn chart_at(chart: &Path) -> (&'static str, String) {
    (
        "          chart: jupyterhub\n          repository: https://hub.jupyter.org/helm-chart/\n          version: 4.2.0\n",
        format!("          chart: {}\n", chart.display()),
    )
}

/// Copies `workflows/jupyterhub.yaml` and its values template into
/// `dir/workflows`, with each `(from, to)` of `replacements` applied; fails,
/// naming the text, when the template no longer has it.
pub fn write_template(
    dir: &Path,
    workflows: &Path,
    replacements: &[(&str, String)],
) -> anyhow::Result<PathBuf> {
    let source = workflows.join(format!("{TEMPLATE}.yaml"));
    let mut text = std::fs::read_to_string(&source)
        .with_context(|| format!("reading {}", source.display()))?;
    for (from, to) in replacements {
        anyhow::ensure!(
            text.contains(from),
            "{} no longer has {from:?}; the demo cannot point it at this hub",
            source.display()
        );
        text = text.replace(from, to);
    }
    let local = dir.join("workflows");
    std::fs::create_dir_all(local.join(TEMPLATE))?;
    std::fs::write(local.join(format!("{TEMPLATE}.yaml")), text)?;
    let values = workflows.join(TEMPLATE).join("values.yaml.j2");
    std::fs::copy(&values, local.join(TEMPLATE).join("values.yaml.j2"))
        .with_context(|| format!("copying {}", values.display()))?;
    Ok(local)
}

/// Requests the environment [`NAME`] for `owner` on the cluster `default`
/// through the store, as the API does: its id, namespace and provisioning run.
async fn request(
    store: &Store,
    catalog: &Catalog,
    owner: &str,
    parameters: Map<String, Value>,
) -> anyhow::Result<(Uuid, String, Uuid)> {
    let loaded = catalog
        .template(TEMPLATE)
        .context("the jupyterhub template")?;
    let id = new_id();
    let namespace = loaded.template.namespace_for(NAME, id);
    let parameters = loaded.template.resolve_parameters(&parameters)?;
    let now = SystemClock.now();
    let accepted = store
        .request_environment(
            &NewEnvironment {
                id,
                name: NAME,
                owner,
                template: TEMPLATE,
                cluster: "default",
                namespace: &namespace,
                parameters: Value::Object(parameters),
                expires_at: now + chrono::Duration::hours(8),
                traceparent: None,
            },
            catalog
                .definition(TEMPLATE, "provision")
                .context("the provision workflow")?,
            None,
            now,
        )
        .await?;
    Ok((id, namespace, accepted.run_id))
}

/// Requests the teardown and follows it; whether it succeeded.
pub async fn teardown(store: &Store, catalog: &Catalog, env_id: Uuid) -> anyhow::Result<bool> {
    let (_, definition_id) = catalog
        .definition(TEMPLATE, "teardown")
        .context("the teardown workflow")?;
    let run_id = match store
        .request_teardown(env_id, definition_id, "demo", SystemClock.now(), None)
        .await?
    {
        TeardownRequest::Started(run_id) => run_id,
        TeardownRequest::AlreadyRequested => return Ok(true),
        TeardownRequest::Waiting => {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(run_id) = store.latest_run_id(env_id).await?
                    && store.run(run_id).await?.workflow == "teardown"
                {
                    break run_id;
                }
                anyhow::ensure!(Instant::now() < deadline, "no teardown run started");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let run = output::follow(store, run_id).await?;
    Ok(run.state == RunState::Succeeded)
}

/// Whether `url` answers 200 within a second.
pub async fn answers(url: &str) -> bool {
    let http = hubwright_http::client_builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap_or_default();
    matches!(http.get(url).send().await, Ok(r) if r.status().is_success())
}
