//! `hubwright env ...`: environments through the API.

use std::process::ExitCode;

use clap::Subcommand;
use hubwright_state::model::{Environment, EnvironmentPhase};
use hubwright_state::workflow::Dur;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::client::{Client, ClientError, RunView};
use crate::output::{self, Format};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask for an environment.
    Create {
        /// DNS-1123 label, at most 40 characters.
        name: String,
        #[arg(long, default_value = "jupyterhub")]
        template: String,
        #[arg(long, default_value = "default")]
        cluster: String,
        /// A template parameter, `name=value` (value parsed as JSON when it is JSON).
        #[arg(long = "param", value_parser = super::run::parse_param)]
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
    /// List environments (yours; all of them for operators).
    List {
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        phase: Option<String>,
        #[arg(long)]
        template: Option<String>,
        /// Only those that expire within this long (e.g. 2h), soonest first.
        #[arg(long)]
        expiring_within: Option<Dur>,
    },
    /// Show an environment and its current run.
    Show { id: Uuid },
    /// Tear an environment down.
    Delete {
        id: Uuid,
        /// Follow the teardown until the environment is gone.
        #[arg(long)]
        wait: bool,
    },
    /// Give an environment a new time-to-live, counted from now.
    Extend {
        id: Uuid,
        #[arg(long)]
        ttl: String,
    },
}

#[derive(Debug, Deserialize)]
struct Accepted {
    environment: Environment,
    run_id: Uuid,
}

#[derive(Debug, Deserialize)]
struct Page {
    items: Vec<Environment>,
    next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize)]
struct EnvironmentView {
    #[serde(flatten)]
    environment: Environment,
    current_run: Option<RunView>,
}

#[derive(Debug, Deserialize)]
struct TeardownAccepted {
    teardown: String,
    run_id: Option<Uuid>,
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
            match format {
                Format::Json if !wait => {
                    println!("{}", json!({"environment": env, "run_id": accepted.run_id}))
                }
                _ => eprintln!(
                    "environment {} ({}) accepted; provisioning run {}",
                    env.name, env.id, accepted.run_id
                ),
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
        } => {
            let mut query = Vec::new();
            let expiring_within = expiring_within.map(|d| format!("{}s", d.0.as_secs()));
            let sort_by_expiry = expiring_within.is_some();
            for (key, value) in [
                ("owner", owner),
                ("phase", phase),
                ("template", template),
                ("expiring_within", expiring_within),
            ] {
                if let Some(value) = value {
                    query.push(format!("{key}={value}"));
                }
            }
            let mut items = Vec::new();
            let mut cursor: Option<Uuid> = None;
            loop {
                let mut params = query.clone();
                params.push("limit=200".to_owned());
                if let Some(cursor) = cursor {
                    params.push(format!("cursor={cursor}"));
                }
                let page: Page = client
                    .get(&format!("/v1/environments?{}", params.join("&")))
                    .await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            if sort_by_expiry {
                items.sort_by_key(|e| (e.expires_at, e.id));
            }
            match format {
                Format::Json => println!("{}", serde_json::to_string(&items).unwrap_or_default()),
                Format::Table => print!("{}", output::environments_table(&items)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { id } => {
            let view: EnvironmentView = client.get(&format!("/v1/environments/{id}")).await?;
            match format {
                Format::Json => {
                    let run = view
                        .current_run
                        .as_ref()
                        .map(|r| json!({"run": r.run, "steps": r.steps}));
                    println!(
                        "{}",
                        json!({"environment": view.environment, "current_run": run})
                    );
                }
                Format::Table => {
                    print!("{}", output::environment_summary(&view.environment));
                    if let Some(current) = &view.current_run {
                        print!("{}", output::run_summary(&current.run, &current.steps));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Delete { id, wait } => {
            let accepted: TeardownAccepted =
                client.delete(&format!("/v1/environments/{id}")).await?;
            eprintln!("teardown of {id}: {}", accepted.teardown.replace('_', " "));
            if !wait {
                return Ok(ExitCode::SUCCESS);
            }
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
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            finish(client, format, id, EnvironmentPhase::Deleted).await
        }
        Command::Extend { id, ttl } => {
            let env: Environment = client
                .post(
                    &format!("/v1/environments/{id}/extend"),
                    &json!({ "ttl": ttl }),
                    None,
                )
                .await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string(&env).unwrap_or_default()),
                Format::Table => println!("{} now expires at {}", env.name, env.expires_at),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
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
    match format {
        Format::Json => println!("{}", serde_json::to_string(&env).unwrap_or_default()),
        Format::Table => match (&env.url, env.phase) {
            (Some(url), EnvironmentPhase::Ready) => println!("{} is ready at {url}", env.name),
            _ => println!("{} is {}", env.name, env.phase),
        },
    }
    if env.phase == wanted {
        Ok(ExitCode::SUCCESS)
    } else {
        if let Some(error) = &env.last_error {
            eprintln!("error: {error}");
        }
        Ok(ExitCode::FAILURE)
    }
}
