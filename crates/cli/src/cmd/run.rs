//! `hubwright run ...`: `start` enqueues a workflow directly in the database (an
//! engine-level tool); `show`, `events`, `retry` and `cancel` go through the API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hubwright_state::model::{Event, RunState};
use hubwright_state::store::enqueue::NewRun;
use hubwright_state::{Clock, SystemClock};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::Extensions;
use crate::client::{Client, ClientError, RunView};
use crate::output::{self, Format};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a workflow run (directly in the database).
    Start(Start),
    #[command(flatten)]
    Api(ApiCommand),
}

/// The run commands that go through the API.
#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Show a run and its steps.
    Show { run: Uuid },
    /// Print a run's timeline; with --follow, live until it ends.
    Events {
        run: Uuid,
        #[arg(long)]
        follow: bool,
    },
    /// Retry a failed run from its failed step, or from an earlier one (operator).
    Retry {
        run: Uuid,
        /// Step number (1-based, as shown) or name to resume from.
        #[arg(long)]
        from_step: Option<String>,
    },
    /// Cancel a run; a step in flight is stopped (operator).
    Cancel { run: Uuid },
}

/// `hubwright run start`.
#[derive(Debug, clap::Args)]
pub struct Start {
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
}

/// `name=value`, the value parsed as JSON when it is JSON.
pub fn parse_param(text: &str) -> Result<(String, Value), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` must look like name=value"))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((name.to_owned(), value))
}

/// Enqueues a run of any workflow, validated against this binary's step kinds.
pub async fn start(url: &str, args: Start, ext: Extensions) -> anyhow::Result<ExitCode> {
    let store = super::connect(url, 2).await?;
    let now = SystemClock.now();
    let mut catalog = super::registry(ext, &Default::default(), None, &args.workflows)
        .load_catalog(&args.workflows)?;
    catalog.register(&store).await?;
    let loaded = catalog.template(&args.template).with_context(|| {
        format!(
            "template: no workflow file named `{}` in {} (found: {})",
            args.template,
            args.workflows.display(),
            catalog.names().join(", ")
        )
    })?;
    let given: Map<String, Value> = args.params.into_iter().collect();
    let input = loaded.template.resolve_parameters(&given)?;
    let (snapshot, definition_id) = catalog
        .definition(&args.template, &args.workflow)
        .with_context(|| {
            format!(
                "--workflow: template `{}` has no workflow `{}`",
                args.template, args.workflow
            )
        })?;
    let id = store
        .enqueue(
            &NewRun::new(
                definition_id,
                snapshot,
                Value::Object(input),
                &args.actor,
                now,
            ),
            now,
        )
        .await?;
    (ext.crash_point)("after-enqueue-commit");
    println!("{id}");
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let run = output::follow(&store, id).await?;
    Ok(if run.state == RunState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(Debug, Deserialize)]
struct EventsPage {
    events: Vec<Event>,
    next_after: i64,
}

#[derive(Debug, Deserialize)]
struct RetryAccepted {
    /// From 1.
    resumes_at_step: i32,
    #[serde(default)]
    resumes_at_step_name: String,
}

#[derive(Debug, Deserialize)]
struct CancelAccepted {
    status: String,
}

/// The API-backed run commands.
pub async fn run(
    client: &Client,
    format: Format,
    command: ApiCommand,
) -> Result<ExitCode, ClientError> {
    match command {
        ApiCommand::Show { run } => {
            let view: RunView = client.get(&format!("/v1/runs/{run}")).await?;
            match format {
                Format::Json => println!("{}", json!({"run": view.run, "steps": view.steps})),
                Format::Table => print!("{}", output::run_summary(&view.run, &view.steps)),
            }
            Ok(ExitCode::SUCCESS)
        }
        ApiCommand::Events { run, follow } => {
            if follow {
                let ended = client
                    .follow(run, |event, steps| {
                        println!("{}", output::event_line(event, steps))
                    })
                    .await?;
                return Ok(if ended.state == RunState::Succeeded {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            let view: RunView = client.get(&format!("/v1/runs/{run}")).await?;
            let mut after = 0;
            loop {
                let page: EventsPage = client
                    .get(&format!("/v1/runs/{run}/events?after={after}&limit=1000"))
                    .await?;
                if page.events.is_empty() {
                    break;
                }
                for event in &page.events {
                    match format {
                        Format::Json => {
                            println!("{}", serde_json::to_string(event).unwrap_or_default())
                        }
                        Format::Table => println!("{}", output::event_line(event, &view.steps)),
                    }
                }
                after = page.next_after;
            }
            Ok(ExitCode::SUCCESS)
        }
        ApiCommand::Retry { run, from_step } => {
            // The API takes the step as people give it: a number (from 1) as
            // a JSON number, anything else as a name, and answers in kind.
            let body = match from_step {
                Some(text) => match text.trim().parse::<i64>() {
                    Ok(number) => json!({ "from_step": number }),
                    Err(_) => json!({ "from_step": text }),
                },
                None => json!({}),
            };
            let accepted: RetryAccepted = client
                .post(&format!("/v1/runs/{run}/retry"), &body, None)
                .await?;
            println!(
                "run {run} will resume at step {} ({})",
                accepted.resumes_at_step, accepted.resumes_at_step_name
            );
            Ok(ExitCode::SUCCESS)
        }
        ApiCommand::Cancel { run } => {
            let accepted: CancelAccepted = client
                .post(&format!("/v1/runs/{run}/cancel"), &json!({}), None)
                .await?;
            match accepted.status.as_str() {
                "cancelled" => println!("run {run} cancelled"),
                _ => println!(
                    "run {run}: cancellation requested; the worker stops the step in flight"
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
