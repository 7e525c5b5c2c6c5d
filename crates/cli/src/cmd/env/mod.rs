//! `hubwright env ...`: environments through the API, named by NAME or ID.

mod watch;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use hubwright_state::model::{Environment, EnvironmentPhase};
use hubwright_state::workflow::Dur;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::client::{Client, ClientError, RunView, segment};
use crate::output::{self, Format};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask for an environment; with --wait, follow its provisioning until it is ready.
    #[command(after_help = "Examples:
  hubwright env create alice-lab --wait
  hubwright env create course --template jupyterhub --param profile=datascience --param cpu_limit=4 --ttl 24h")]
    Create {
        /// The environment's name: a DNS-1123 label of at most 40 characters,
        /// unique among your live environments.
        name: String,
        /// The template to make it from (`hubwright template list`).
        #[arg(long, default_value = "jupyterhub")]
        template: String,
        /// The cluster to make it on.
        #[arg(long, default_value = "default")]
        cluster: String,
        /// A template parameter, `name=value` (value parsed as JSON when it is JSON); repeatable.
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = super::admin::parse_param)]
        params: Vec<(String, Value)>,
        /// Time-to-live, e.g. 8h (the template's default when left out).
        #[arg(long)]
        ttl: Option<String>,
        /// Makes a retried command safe: the same key returns the first answer.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Follow provisioning live; exit 0 once ready (printing the URL).
        #[arg(long)]
        wait: bool,
    },
    /// List environments (yours; everyone's for operators), oldest first.
    #[command(after_help = "Examples:
  hubwright env list
  hubwright env list --phase failed -o wide
  hubwright env list --expiring-within 2h
  hubwright env list --watch
  hubwright env list -o name | xargs -n1 hubwright env delete --yes")]
    List {
        /// Only this owner's (operators; a developer sees only their own).
        #[arg(long)]
        owner: Option<String>,
        /// Only environments in this phase (`deleted` finds deleted ones).
        #[arg(long, value_parser = parse_phase)]
        phase: Option<EnvironmentPhase>,
        /// Only those made from this template.
        #[arg(long)]
        template: Option<String>,
        /// Only those that expire within this long (e.g. 2h), soonest first.
        #[arg(long)]
        expiring_within: Option<Dur>,
        /// Keep listing: print a line whenever an environment changes, until Ctrl-C.
        #[arg(long, short = 'w')]
        watch: bool,
        /// How often --watch asks the API.
        #[arg(long, default_value = "2s", requires = "watch")]
        interval: Dur,
    },
    /// Show an environment, its conditions and its current run.
    #[command(
        after_help = "Examples:\n  hubwright env show alice-lab\n  hubwright env show alice-lab -o yaml"
    )]
    Show {
        /// The environment's name or id.
        #[arg(value_name = "NAME|ID", value_parser = parse_target)]
        environment: String,
        /// Whose environment a name refers to (operators).
        #[arg(long)]
        owner: Option<String>,
    },
    /// Tear an environment down; asks first on a terminal.
    #[command(
        after_help = "Examples:\n  hubwright env delete alice-lab\n  hubwright env delete alice-lab --yes --wait"
    )]
    Delete {
        /// The environment's name or id.
        #[arg(value_name = "NAME|ID", value_parser = parse_target)]
        environment: String,
        /// Whose environment a name refers to (operators).
        #[arg(long)]
        owner: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Follow the teardown until the environment is gone.
        #[arg(long)]
        wait: bool,
    },
    /// Give an environment a new time-to-live, counted from now.
    #[command(after_help = "Example:\n  hubwright env extend alice-lab --ttl 4h")]
    Extend {
        /// The environment's name or id.
        #[arg(value_name = "NAME|ID", value_parser = parse_target)]
        environment: String,
        /// Whose environment a name refers to (operators).
        #[arg(long)]
        owner: Option<String>,
        /// The new time-to-live from now, e.g. 4h; within the template's maximum.
        #[arg(long)]
        ttl: String,
    },
}

/// An environment's name (a DNS-1123 label) or id.
pub fn parse_target(text: &str) -> Result<String, String> {
    if Uuid::parse_str(text).is_ok() || crate::is_label(text) {
        Ok(text.to_owned())
    } else {
        Err("must be an environment's name (lowercase letters, digits and `-`) or id".to_owned())
    }
}

fn parse_phase(text: &str) -> Result<EnvironmentPhase, String> {
    serde_json::from_value(Value::String(text.to_owned())).map_err(|_| {
        "must be one of requested, provisioning, ready, failed, tearing_down, deleted (or another phase the server knows)".to_owned()
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct Accepted {
    environment: Environment,
    run_id: Uuid,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EnvironmentView {
    #[serde(flatten)]
    environment: Environment,
    current_run: Option<RunView>,
    /// What this CLI does not know yet, kept for -o json/yaml.
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TeardownAccepted {
    environment_id: Uuid,
    teardown: String,
    run_id: Option<Uuid>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// `/v1/environments/{name-or-id}`, with `?owner=` when given.
pub fn environment_path(environment: &str, owner: Option<&str>, suffix: &str) -> String {
    let mut path = format!("/v1/environments/{}{suffix}", segment(environment));
    if let Some(owner) = owner {
        path.push_str(&format!("?owner={}", segment(owner)));
    }
    path
}

pub async fn run(
    client: &Client,
    format: Format,
    command: Command,
) -> Result<ExitCode, ClientError> {
    match command {
        Command::Create {
            name,
            template,
            cluster,
            params,
            ttl,
            idempotency_key,
            wait,
        } => {
            let parameters: Map<String, Value> = params.into_iter().collect();
            let mut body = json!({ "name": name, "template": template, "cluster": cluster, "parameters": parameters });
            if let Some(ttl) = ttl {
                body["ttl"] = Value::String(ttl);
            }
            let accepted: Accepted = client
                .post("/v1/environments", &body, idempotency_key.as_deref())
                .await?;
            let env = &accepted.environment;
            if !wait || format != Format::Table {
                output::print_one(format, &accepted, &env.name, String::new);
            }
            if format == Format::Table {
                eprintln!(
                    "environment {} ({}) accepted; provisioning run {}",
                    env.name, env.id, accepted.run_id
                );
            }
            if !wait {
                return Ok(ExitCode::SUCCESS);
            }
            client
                .follow(accepted.run_id, |event, steps| {
                    eprintln!("{}", output::event_line(event, steps))
                })
                .await?;
            finish(client, format, env.id, EnvironmentPhase::Ready).await
        }
        Command::List {
            owner,
            phase,
            template,
            expiring_within,
            watch,
            interval,
        } => {
            let mut query = Vec::new();
            let expiring_within = expiring_within.map(|d| format!("{}s", d.0.as_secs()));
            let sort_by_expiry = expiring_within.is_some();
            let phase = phase.map(|p| p.to_string());
            for (key, value) in [
                ("owner", owner),
                ("phase", phase),
                ("template", template),
                ("expiring_within", expiring_within),
            ] {
                if let Some(value) = value {
                    query.push(format!("{key}={}", segment(&value)));
                }
            }
            let mut items = list_all(client, &query).await?;
            if sort_by_expiry {
                items.sort_by_key(|e| (e.expires_at, e.id));
            }
            if !watch {
                output::print_list(format, &items);
                return Ok(ExitCode::SUCCESS);
            }
            watch::watch_list(client, format, &query, items, interval.0).await
        }
        Command::Show { environment, owner } => {
            let view: EnvironmentView = client
                .get(&environment_path(&environment, owner.as_deref(), ""))
                .await?;
            output::print_one(format, &view, &view.environment.name, || {
                let mut out = output::environment_summary(&view.environment);
                if let Some(current) = &view.current_run {
                    out.push_str(&output::run_summary(&current.run, &current.steps));
                }
                out
            });
            Ok(ExitCode::SUCCESS)
        }
        Command::Delete {
            environment,
            owner,
            yes,
            wait,
        } => {
            if !yes && std::io::stdin().is_terminal() && !watch::confirm(&environment)? {
                eprintln!("not deleted");
                return Ok(ExitCode::FAILURE);
            }
            let path = environment_path(&environment, owner.as_deref(), "");
            let accepted: TeardownAccepted = client.delete(&path).await?;
            match format {
                Format::Table | Format::Wide => eprintln!(
                    "teardown of {environment}: {}",
                    accepted.teardown.replace('_', " ")
                ),
                _ => output::print_one(format, &accepted, &environment, String::new),
            }
            if !wait {
                return Ok(ExitCode::SUCCESS);
            }
            // By id from here: once deleted, the name finds nothing (and may
            // be taken again).
            let id = accepted.environment_id;
            if let Some(run_id) = accepted.run_id {
                client
                    .follow(run_id, |event, steps| {
                        eprintln!("{}", output::event_line(event, steps))
                    })
                    .await?;
            }
            // A teardown that waited for provisioning to stop starts later.
            loop {
                let env: EnvironmentView = client.get(&format!("/v1/environments/{id}")).await?;
                if matches!(
                    env.environment.phase,
                    EnvironmentPhase::Deleted
                        | EnvironmentPhase::Failed
                        | EnvironmentPhase::Cancelled
                ) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            finish(client, format, id, EnvironmentPhase::Deleted).await
        }
        Command::Extend {
            environment,
            owner,
            ttl,
        } => {
            let env: Environment = client
                .post(
                    &environment_path(&environment, owner.as_deref(), "/extend"),
                    &json!({ "ttl": ttl }),
                    None,
                )
                .await?;
            output::print_one(format, &env, &env.name, || {
                format!("{} now expires at {}\n", env.name, env.expires_at)
            });
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Every page of `/v1/environments?{query}`.
pub(super) async fn list_all(
    client: &Client,
    query: &[String],
) -> Result<Vec<Environment>, ClientError> {
    client
        .list::<_, Uuid>("/v1/environments", query, usize::MAX)
        .await
}

/// Prints where the environment ended up; success when it reached `wanted`.
async fn finish(
    client: &Client,
    format: Format,
    id: Uuid,
    wanted: EnvironmentPhase,
) -> Result<ExitCode, ClientError> {
    let view: EnvironmentView = client.get(&format!("/v1/environments/{id}")).await?;
    let env = view.environment;
    output::print_one(format, &env, &env.name, || match (&env.url, env.phase) {
        (Some(url), EnvironmentPhase::Ready) => format!("{} is ready at {url}\n", env.name),
        _ => format!("{} is {}\n", env.name, env.phase),
    });
    if env.phase == wanted {
        Ok(ExitCode::SUCCESS)
    } else {
        if let Some(error) = &env.last_error {
            eprintln!("error: {error}");
        }
        Ok(ExitCode::FAILURE)
    }
}
