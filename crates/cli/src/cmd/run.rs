//! `hubwright run ...`: start, inspect, retry and cancel runs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hubwright_state::model::RunState;
use hubwright_state::store::enqueue::NewRun;
use hubwright_state::store::operator::Cancellation;
use hubwright_state::{Clock, SystemClock};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::output;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a workflow run.
    Start {
        /// Template (workflow file) name.
        template: String,
        /// Workflow within the template.
        #[arg(long, default_value = "provision")]
        workflow: String,
        /// A parameter, `name=value` (value parsed as JSON when it is JSON).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, Value)>,
        /// Follow the run until it ends; exit non-zero unless it succeeded.
        #[arg(long)]
        wait: bool,
        /// Directory of workflow files.
        #[arg(long, env = "HUBWRIGHT_WORKFLOWS", default_value = "workflows")]
        workflows: PathBuf,
        /// Who is asking, for the timeline.
        #[arg(long = "as", env = "USER", default_value = "cli")]
        actor: String,
    },
    /// Show a run and its steps.
    Show { run: Uuid },
    /// Print a run's timeline; with --follow, until it ends.
    Events {
        run: Uuid,
        #[arg(long)]
        follow: bool,
    },
    /// Retry a failed run from its failed step, or from an earlier one.
    Retry {
        run: Uuid,
        /// Step number (1-based, as shown) or name to resume from.
        #[arg(long)]
        from_step: Option<String>,
        #[arg(long = "as", env = "USER", default_value = "operator")]
        actor: String,
    },
    /// Cancel a run; a step in flight is stopped.
    Cancel {
        run: Uuid,
        #[arg(long = "as", env = "USER", default_value = "operator")]
        actor: String,
    },
}

fn parse_param(text: &str) -> Result<(String, Value), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` must look like name=value"))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((name.to_owned(), value))
}

pub async fn run(url: &str, command: Command) -> anyhow::Result<ExitCode> {
    let store = super::connect(url, 2).await?;
    let now = SystemClock.now();
    match command {
        Command::Start {
            template,
            workflow,
            params,
            wait,
            workflows,
            actor,
        } => {
            let mut catalog = super::registry().load_catalog(&workflows)?;
            catalog.register(&store).await?;
            let loaded = catalog.template(&template).with_context(|| {
                format!(
                    "template: no workflow file named `{template}` in {} (found: {})",
                    workflows.display(),
                    catalog.names().join(", ")
                )
            })?;
            let given: Map<String, Value> = params.into_iter().collect();
            let input = loaded.template.resolve_parameters(&given)?;
            let (snapshot, definition_id) =
                catalog.definition(&template, &workflow).with_context(|| {
                    format!("--workflow: template `{template}` has no workflow `{workflow}`")
                })?;
            let id = store
                .enqueue(
                    &NewRun::new(definition_id, snapshot, Value::Object(input), &actor, now),
                    now,
                )
                .await?;
            crash_point("after-enqueue-commit");
            println!("{id}");
            if !wait {
                return Ok(ExitCode::SUCCESS);
            }
            let run = output::follow(&store, id).await?;
            Ok(if run.state == RunState::Succeeded {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Show { run } => {
            let found = store.run(run).await?;
            let steps = store.steps(run).await?;
            print!("{}", output::run_summary(&found, &steps));
            Ok(ExitCode::SUCCESS)
        }
        Command::Events { run, follow } => {
            if follow {
                output::follow(&store, run).await?;
            } else {
                let steps = store.steps(run).await?;
                for event in store.events(run, 0, 10_000).await? {
                    println!("{}", output::event_line(&event, &steps));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Retry {
            run,
            from_step,
            actor,
        } => {
            let from = match from_step {
                None => None,
                Some(text) => Some(step_index(&store, run, &text).await?),
            };
            let resumed = store.retry_run(run, from, &actor, now).await?;
            println!("run {run} will resume at step {}", resumed + 1);
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { run, actor } => {
            match store.cancel_run(run, &actor, now).await? {
                Cancellation::Cancelled => println!("run {run} cancelled"),
                Cancellation::Requested => println!(
                    "run {run}: cancellation requested; the worker stops the step in flight"
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--from-step` as a 1-based number or a step name.
async fn step_index(store: &hubwright_state::Store, run: Uuid, text: &str) -> anyhow::Result<i32> {
    if let Ok(number) = text.parse::<i32>() {
        anyhow::ensure!(number >= 1, "--from-step: step numbers start at 1");
        return Ok(number - 1);
    }
    let steps = store.steps(run).await?;
    steps
        .iter()
        .find(|s| s.name == text)
        .map(|s| s.idx)
        .with_context(|| format!("--from-step: run {run} has no step named `{text}`"))
}

/// With the testkit feature, dies here when `HUBWRIGHT_TESTKIT_CRASH` names this
/// point: the tests prove that what was committed before survives.
fn crash_point(name: &str) {
    #[cfg(feature = "testkit")]
    if std::env::var("HUBWRIGHT_TESTKIT_CRASH").as_deref() == Ok(name) {
        eprintln!("testkit: crashing at {name}");
        std::process::abort();
    }
    #[cfg(not(feature = "testkit"))]
    let _ = name;
}
