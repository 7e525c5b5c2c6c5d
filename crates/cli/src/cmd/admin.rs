//! `hubwright admin ...`: what goes straight to the database (DATABASE_URL)
//! rather than through the API: migrations, the first admin token (and
//! revoking a lost one), and starting a run of any workflow, for the people who
//! operate hubwright itself.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hubwright_state::model::{Role, RunState};
use hubwright_state::store::audit::{AuditRecord, AuthKind, Outcome};
use hubwright_state::store::enqueue::NewRun;
use hubwright_state::{Clock, SystemClock};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::Extensions;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the database migrations (the Helm chart runs this as a hook).
    #[command(
        after_help = "Example:\n  DATABASE_URL=postgres://root@127.0.0.1:5432/hubwright hubwright admin migrate"
    )]
    Migrate,
    /// Tokens made and revoked in the database, without the API.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Start a run of any workflow in the database, validated against this
    /// binary's step kinds; an engine-level tool, not for environments.
    #[command(after_help = "Examples:
  hubwright admin run demo --wait
  hubwright admin run lab --workflow provision --param size=3")]
    Run(Start),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once: how the first admin token is made.
    #[command(
        after_help = "Example:\n  export HUBWRIGHT_TOKEN=$(hubwright admin token create --role admin --subject you)"
    )]
    Create {
        /// developer, operator or admin.
        #[arg(long)]
        role: Role,
        /// Who the token authenticates (a user or service account).
        #[arg(long)]
        subject: String,
    },
    /// Revoke a token by its id, e.g. a lost admin token; it stops working at once.
    #[command(after_help = "Example:\n  hubwright admin token revoke 0193a4c2-…")]
    Revoke {
        /// The id printed when the token was created.
        id: Uuid,
    },
}

/// `hubwright admin run`.
#[derive(Debug, clap::Args)]
pub struct Start {
    /// Template (workflow file) name.
    template: String,
    /// Workflow within the template.
    #[arg(long, default_value = "provision")]
    workflow: String,
    /// A parameter, `name=value` (value parsed as JSON when it is JSON); repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
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

pub async fn run(url: &str, command: Command, ext: Extensions) -> anyhow::Result<ExitCode> {
    match command {
        Command::Migrate => super::migrate(url).await,
        Command::Token(TokenCommand::Create { role, subject }) => {
            let store = super::connect(url, 1).await?;
            let created = store.create_token(&subject, role, SystemClock.now()).await;
            let target = created
                .as_ref()
                .map_or(subject.clone(), |t| t.id.to_string());
            audit(&store, "token.create", &target, created.as_ref().err()).await;
            let issued = created?;
            super::token::print_secret(issued.id, &issued.subject, issued.role, &issued.secret);
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            let store = super::connect(url, 1).await?;
            let revoked = store.revoke_token(id, SystemClock.now()).await;
            audit(
                &store,
                "token.revoke",
                &id.to_string(),
                revoked.as_ref().err(),
            )
            .await;
            let token = revoked?;
            crate::output::emitln!("token {} ({}) revoked", token.id, token.subject);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(start) => start_run(url, start, ext).await,
    }
}

/// Records a token command in the audit trail, as done by the operating
/// system's user (`$USER`, or `admin-cli` when unset) straight in the
/// database. The command has happened either way: a failed record is said on
/// stderr, not made the command's failure.
async fn audit(
    store: &hubwright_state::Store,
    action: &str,
    token: &str,
    error: Option<&hubwright_state::Error>,
) {
    let actor = std::env::var("USER")
        .ok()
        .filter(|user| !user.trim().is_empty())
        .unwrap_or_else(|| "admin-cli".to_owned());
    let outcome = if error.is_some() {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    let mut record = AuditRecord::new(
        SystemClock.now(),
        Some(&actor),
        AuthKind::Database,
        action,
        outcome,
    )
    .target("token", token);
    record.detail = error.map(ToString::to_string);
    if let Err(err) = store.record_audit(&record).await {
        eprintln!("warning: {action} is done but could not be recorded in the audit trail: {err}");
    }
}

/// Enqueues a run of any workflow, validated against this binary's step kinds.
async fn start_run(url: &str, args: Start, ext: Extensions) -> anyhow::Result<ExitCode> {
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
    crate::output::emitln!("{id}");
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
