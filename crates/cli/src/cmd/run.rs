//! `hubwright run ...`: runs through the API: list, show, follow, retry, cancel.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use hubwright_state::model::{Event, Run, RunState};
use hubwright_state::workflow::Dur;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::client::{Client, ClientError, RunView, segment};
use crate::output::{self, Format};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List runs, newest first: yours and your environments' (everyone's for operators).
    #[command(after_help = "Examples:
  hubwright run list --state failed
  hubwright run list --env alice-lab --kind teardown -o wide
  hubwright run list --since 2h --owner alice
  hubwright run list --state failed -o name | xargs -n1 hubwright run retry")]
    List(ListArgs),
    /// Show a run and its steps.
    #[command(
        after_help = "Examples:\n  hubwright run show 0193a4c2-…\n  hubwright run show 0193a4c2-… -o json"
    )]
    Show {
        /// The run's id.
        run: Uuid,
    },
    /// Print a run's timeline; with --follow, live until it ends.
    #[command(after_help = "Example:\n  hubwright run events 0193a4c2-… --follow")]
    Events {
        /// The run's id.
        run: Uuid,
        /// Keep printing events as they happen until the run ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Follow a run live until it ends, then print its steps.
    #[command(
        after_help = "Example:\n  hubwright run watch 0193a4c2-… --exit-status && echo provisioned"
    )]
    Watch {
        /// The run's id.
        run: Uuid,
        /// Exit 1 unless the run succeeded (0 otherwise, however it ended).
        #[arg(long)]
        exit_status: bool,
    },
    /// Retry a failed run from its failed step, or from an earlier one (operator).
    #[command(
        after_help = "Examples:\n  hubwright run retry 0193a4c2-…\n  hubwright run retry 0193a4c2-… --from-step helm\n  hubwright run retry 0193a4c2-… --from-step 2"
    )]
    Retry {
        /// The run's id.
        run: Uuid,
        /// The step to resume from: its number (1-based, as `run show` prints it) or its name.
        #[arg(long, value_name = "NUMBER|NAME")]
        from_step: Option<String>,
    },
    /// Cancel a run; a step in flight is stopped (operator).
    #[command(after_help = "Example:\n  hubwright run cancel 0193a4c2-…")]
    Cancel {
        /// The run's id.
        run: Uuid,
    },
}

/// The filters of `run list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only runs in this state: pending, running, waiting, succeeded, failed or cancelled.
    #[arg(long, value_parser = parse_state)]
    state: Option<RunState>,
    /// Only the runs of this environment (its name or id).
    #[arg(long = "env", value_name = "NAME|ID", value_parser = super::env::parse_target)]
    environment: Option<String>,
    /// Only runs of this template.
    #[arg(long)]
    template: Option<String>,
    /// Only runs of this workflow: provision, teardown, ...
    #[arg(long)]
    kind: Option<String>,
    /// Only runs for this owner (operators; a developer sees only their own).
    #[arg(long)]
    owner: Option<String>,
    /// Only runs created since: a duration ago (e.g. 2h) or an RFC 3339 time.
    #[arg(long, value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
    /// At most this many runs.
    #[arg(long, short = 'L', default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
}

fn parse_state(text: &str) -> Result<RunState, String> {
    serde_json::from_value(Value::String(text.to_owned())).map_err(|_| {
        "must be one of pending, running, waiting, succeeded, failed, cancelled".to_owned()
    })
}

/// A duration ago (`2h`) or an RFC 3339 time.
pub(crate) fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let ago: Dur = text
        .parse()
        .map_err(|_| format!("`{text}` is neither a duration (2h, 30m) nor an RFC 3339 time"))?;
    Ok(Utc::now() - ago.to_chrono())
}

#[derive(Debug, Deserialize)]
struct EventsPage {
    events: Vec<Event>,
    next_after: i64,
}

/// The run commands.
pub async fn run(
    client: &Client,
    format: Format,
    command: Command,
) -> Result<ExitCode, ClientError> {
    match command {
        Command::List(args) => {
            let runs = list(client, args).await?;
            output::print_list(format, &runs);
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { run } => {
            let view: RunView = client.get(&format!("/v1/runs/{run}")).await?;
            output::print_one(format, &view, &run.to_string(), || {
                output::run_summary(&view.run, &view.steps)
            });
            Ok(ExitCode::SUCCESS)
        }
        Command::Events { run, follow } => {
            if follow {
                let ended = client
                    .follow(run, |event, steps| {
                        crate::output::emitln!("{}", output::event_line(event, steps))
                    })
                    .await?;
                return Ok(exit_for(ended.state));
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
                        Format::Table | Format::Wide => {
                            crate::output::emitln!("{}", output::event_line(event, &view.steps))
                        }
                        Format::Name => crate::output::emitln!("{}", event.id),
                        _ => crate::output::emitln!("{}", output::json(event)),
                    }
                }
                after = page.next_after;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Watch { run, exit_status } => {
            let ended = client
                .follow(run, |event, steps| {
                    eprintln!("{}", output::event_line(event, steps))
                })
                .await?;
            let view: RunView = client.get(&format!("/v1/runs/{run}")).await?;
            output::print_one(format, &view, &run.to_string(), || {
                output::run_summary(&view.run, &view.steps)
            });
            Ok(if exit_status {
                exit_for(ended.state)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Retry { run, from_step } => {
            // A number is the step's 1-based position, a name its name: the API
            // takes either, as given.
            let body = match from_step {
                None => json!({}),
                Some(text) => match text.parse::<u32>() {
                    Ok(number) => json!({ "from_step": number }),
                    Err(_) => json!({ "from_step": text }),
                },
            };
            let accepted: Value = client
                .post(&format!("/v1/runs/{run}/retry"), &body, None)
                .await?;
            output::print_one(format, &accepted, &run.to_string(), || {
                let number = accepted["resumes_at_step"].as_i64().unwrap_or_default();
                match accepted["resumes_at_step_name"].as_str() {
                    Some(name) => format!("run {run} will resume at step {number} ({name})\n"),
                    None => format!("run {run} will resume at step {number}\n"),
                }
            });
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { run } => {
            let accepted: Value = client
                .post(&format!("/v1/runs/{run}/cancel"), &json!({}), None)
                .await?;
            output::print_one(
                format,
                &accepted,
                &run.to_string(),
                || match accepted["status"].as_str() {
                    Some("cancelled") => format!("run {run} cancelled\n"),
                    _ => format!(
                        "run {run}: cancellation requested; the worker stops the step in flight\n"
                    ),
                },
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `GET /v1/runs` page by page, up to `--limit`.
async fn list(client: &Client, args: ListArgs) -> Result<Vec<Run>, ClientError> {
    let mut query = Vec::new();
    if let Some(state) = args.state {
        query.push(format!("state={state}"));
    }
    if let Some(target) = &args.environment {
        // The API filters by id; a name is looked up first.
        let id = match Uuid::parse_str(target) {
            Ok(id) => id,
            Err(_) => {
                let env: hubwright_state::model::Environment = client
                    .get(&super::env::environment_path(
                        target,
                        args.owner.as_deref(),
                        "",
                    ))
                    .await?;
                env.id
            }
        };
        query.push(format!("environment={id}"));
    }
    for (key, value) in [
        ("template", &args.template),
        ("kind", &args.kind),
        ("owner", &args.owner),
    ] {
        if let Some(value) = value {
            query.push(format!("{key}={}", segment(value)));
        }
    }
    if let Some(since) = args.since {
        query.push(format!(
            "since={}",
            segment(&since.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        ));
    }
    let wanted = usize::try_from(args.limit).unwrap_or(usize::MAX);
    client.list::<_, Uuid>("/v1/runs", &query, wanted).await
}

/// 0 for a run that succeeded, 1 for any other end.
fn exit_for(state: RunState) -> ExitCode {
    if state == RunState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
