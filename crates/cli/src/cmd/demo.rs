//! `hubwright demo`: one command that shows the engine working end to end.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hubwright_state::model::RunState;
use hubwright_state::store::enqueue::NewRun;
use hubwright_state::{Clock, SystemClock};
use hubwright_worker::{Worker, WorkerConfig};
use serde_json::{Map, Value};

use crate::{Extensions, output};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of workflow files.
    #[arg(long, env = "HUBWRIGHT_WORKFLOWS", default_value = "workflows")]
    workflows: PathBuf,
    /// Template to run.
    #[arg(long, default_value = "demo")]
    template: String,
    /// Workflow within the template.
    #[arg(long, default_value = "provision")]
    workflow: String,
    /// Provision a real JupyterHub from workflows/jupyterhub.yaml in a local
    /// sandbox: the Kubernetes API stand-in (no pods run), the real
    /// oidc-provider and helm, and JupyterHub on this machine (`just demo-hub`).
    #[arg(long, conflicts_with = "cluster")]
    sandbox: bool,
    /// Provision a real JupyterHub from workflows/jupyterhub.yaml on the
    /// cluster of your kubeconfig (its current context) with the `helm` on
    /// PATH (or HELM_BIN), reached through a port-forward; Ctrl-C tears it
    /// down.
    #[arg(long)]
    cluster: bool,
    /// With --cluster: this chart directory or archive instead of the
    /// template's repository and version (air-gapped clusters, tests).
    #[arg(long, requires = "cluster")]
    chart: Option<PathBuf>,
    /// With --cluster: this kubeconfig context instead of the current one
    /// (`--kube-context`, as helm spells it: `--context` names hubwright's own).
    #[arg(long, requires = "cluster")]
    kube_context: Option<String>,
    /// With --cluster: the local port of the hub's URL (another one is
    /// chosen when it is taken).
    #[arg(long, default_value_t = 8000, requires = "cluster")]
    port: u16,
    /// With --sandbox or --cluster: once the hub is ready, check it answers
    /// and lets the owner in, tear it down and exit instead of waiting for
    /// Ctrl-C (for tests).
    #[arg(long)]
    exit_when_ready: bool,
}

pub async fn run(url: &str, args: Args) -> anyhow::Result<ExitCode> {
    if args.sandbox {
        return sandbox(url, &args).await;
    }
    if args.cluster {
        let options = super::demo_cluster::Options {
            workflows: &args.workflows,
            chart: args.chart.as_deref(),
            context: args.kube_context.clone(),
            port: args.port,
            exit_when_ready: args.exit_when_ready,
        };
        return super::demo_cluster::run(url, options).await;
    }
    anyhow::ensure!(
        !args.exit_when_ready,
        "--exit-when-ready goes with --sandbox or --cluster"
    );
    println!("hubwright demo");
    println!("  database   {}", super::redact(url));
    let store = super::connect(url, 8).await?;
    store.migrate().await.context("applying migrations")?;
    println!("  migrations applied");

    let mut catalog = super::registry(
        Extensions::default(),
        &Default::default(),
        None,
        &args.workflows,
    )
    .load_catalog(&args.workflows)?;
    catalog.register(&store).await?;
    let (snapshot, definition_id) = catalog
        .definition(&args.template, &args.workflow)
        .with_context(|| {
            format!(
                "no workflow {}/{} in {}",
                args.template,
                args.workflow,
                args.workflows.display()
            )
        })?;
    let input = catalog
        .template(&args.template)
        .map(|t| t.template.resolve_parameters(&Map::new()))
        .transpose()?
        .unwrap_or_default();
    println!(
        "  workflow   {snapshot} ({} steps, from {})",
        snapshot.steps.len(),
        args.workflows.display()
    );

    let config = WorkerConfig {
        concurrency: 4,
        lease: Duration::from_secs(10),
        ..WorkerConfig::default()
    };
    let worker = Worker::new(
        store.clone(),
        super::registry(
            Extensions::default(),
            &Default::default(),
            None,
            &args.workflows,
        ),
        config,
        Arc::new(SystemClock),
    )?;
    println!("  worker     {}", worker.id());
    let worker = worker.spawn();
    println!();

    let started = Instant::now();
    let now = SystemClock.now();
    let run_id = store
        .enqueue(
            &NewRun::new(definition_id, snapshot, Value::Object(input), "demo", now),
            now,
        )
        .await?;
    let run = output::follow(&store, run_id).await?;
    worker.shutdown().await?;

    println!();
    let steps = store.steps(run_id).await?;
    print!("{}", output::run_summary(&run, &steps));
    println!();
    if run.state == RunState::Succeeded {
        println!(
            "✓ run succeeded in {:.1}s; every step was committed before the next began.",
            started.elapsed().as_secs_f64()
        );
        print!("{}", api_hint(url, run_id));
        Ok(ExitCode::SUCCESS)
    } else {
        println!("✗ run ended {}", run.state);
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(feature = "sandbox")]
async fn sandbox(url: &str, args: &Args) -> anyhow::Result<ExitCode> {
    super::demo_sandbox::run(url, &args.workflows, args.exit_when_ready).await
}

#[cfg(not(feature = "sandbox"))]
async fn sandbox(_url: &str, _args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "--sandbox: this build of hubwright leaves the sandbox out (the container \
         image does); build with the default features: `cargo run -p hubwright-cli -- demo --sandbox`"
    )
}

/// How to see the run through the API, as commands that work when pasted as
/// printed: this very program, this database, the address `serve` listens
/// on by default and the CLI calls by default.
fn api_hint(url: &str, run_id: uuid::Uuid) -> String {
    let program = std::env::args_os()
        .next()
        .map(|arg| arg.to_string_lossy().into_owned())
        .unwrap_or_else(|| "hubwright".to_owned());
    let program = shell_word(&program);
    // A password stays out of the terminal's scrollback: the hint then
    // names the variable the caller set instead.
    let database = if super::redact(url) == url {
        format!("DATABASE_URL={}", shell_word(url))
    } else {
        "DATABASE_URL=\"$DATABASE_URL\"".to_owned()
    };
    format!(
        "  The run stays in the database. To see it through the API, serve the API in
  one terminal:
    {database} {program} serve --api
  and in another, make a token and ask for the run:
    export HUBWRIGHT_TOKEN=$({database} {program} admin token create --role operator --subject you)
    {program} run show {run_id}
"
    )
}

/// `word` as one shell word.
fn shell_word(word: &str) -> String {
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./:@=,+%".contains(c));
    if plain && !word.is_empty() {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
