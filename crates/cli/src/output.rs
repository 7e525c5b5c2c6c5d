//! How the CLI shows runs: a timeline that follows a run live, and summaries.

use std::time::Duration;

use hubwright_state::Store;
use hubwright_state::model::{Event, Run, Step};
use uuid::Uuid;

/// Prints a run's events as they happen until it reaches a terminal state or
/// stops for an operator, and returns the run as it ended.
pub async fn follow(store: &Store, run_id: Uuid) -> anyhow::Result<Run> {
    let steps = store.steps(run_id).await?;
    let mut last = 0;
    loop {
        // Read the state before the events, so the events of the final
        // transition are printed before we stop.
        let run = store.run(run_id).await?;
        for event in store.events(run_id, last, 500).await? {
            last = event.id;
            println!("{}", event_line(&event, &steps));
        }
        if run.state.is_terminal() {
            return Ok(run);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `12:00:01.130  step 2/5 reserve   step reserve succeeded`
pub fn event_line(event: &Event, steps: &[Step]) -> String {
    let label = match event.step_idx {
        Some(idx) => {
            let name = steps
                .iter()
                .find(|s| s.idx == idx)
                .map_or("?", |s| s.name.as_str());
            format!("step {}/{} {name}", idx + 1, steps.len())
        }
        None => "run".to_owned(),
    };
    format!(
        "{}  {label:<28}  {}",
        event.at.format("%H:%M:%S%.3f"),
        event.message
    )
}

/// A run and its steps as a small table.
pub fn run_summary(run: &Run, steps: &[Step]) -> String {
    let mut out = format!(
        "run {}  {}/{}  {}\n",
        run.id, run.template, run.workflow, run.state
    );
    if let Some(error) = &run.error {
        out.push_str(&format!("  error: {}\n", error.message));
    }
    for step in steps {
        let marker = if step.idx == run.current_step && !run.state.is_terminal() {
            "→"
        } else {
            " "
        };
        out.push_str(&format!(
            "{marker} {:>2}. {:<24} {:<10} attempts {}{}\n",
            step.idx + 1,
            step.name,
            step.state.to_string(),
            step.attempts,
            step.error
                .as_ref()
                .map(|e| format!("  last error: {}", e.message))
                .unwrap_or_default()
        ));
    }
    out
}

/// How API commands print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Table,
    /// One JSON document, for scripts.
    Json,
}

/// Environments as a table.
pub fn environments_table(items: &[hubwright_state::model::Environment]) -> String {
    let mut out = format!(
        "{:<36}  {:<20}  {:<12}  {:<12}  {:<12}  {:<20}  {}\n",
        "ID", "NAME", "OWNER", "TEMPLATE", "PHASE", "EXPIRES", "URL"
    );
    for env in items {
        out.push_str(&format!(
            "{:<36}  {:<20}  {:<12}  {:<12}  {:<12}  {:<20}  {}\n",
            env.id,
            env.name,
            env.owner,
            env.template,
            env.phase.to_string(),
            env.expires_at.format("%Y-%m-%d %H:%M:%S"),
            env.url.as_deref().unwrap_or("-")
        ));
    }
    out
}

/// One environment's fields.
pub fn environment_summary(env: &hubwright_state::model::Environment) -> String {
    let mut out = format!(
        "environment {}  {}  ({} / {})\n  phase      {}\n  owner      {}\n  cluster    {}\n  expires    {}\n",
        env.id,
        env.name,
        env.template,
        env.cluster,
        env.phase,
        env.owner,
        env.cluster,
        env.expires_at
    );
    if let Some(url) = &env.url {
        out.push_str(&format!("  url        {url}\n"));
    }
    if let Some(error) = &env.last_error {
        out.push_str(&format!("  error      {error}\n"));
    }
    out
}

/// API tokens as a table; never their secrets (the API does not have them).
pub fn tokens_table(items: &[hubwright_state::store::tokens::TokenInfo]) -> String {
    let mut out = format!(
        "{:<36}  {:<20}  {:<10}  {:<12}  {:<20}  {}\n",
        "ID", "SUBJECT", "ROLE", "CREATED BY", "LAST USED", "REVOKED"
    );
    let when = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map_or_else(
            || "-".to_owned(),
            |at| at.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
    };
    for token in items {
        out.push_str(&format!(
            "{:<36}  {:<20}  {:<10}  {:<12}  {:<20}  {}\n",
            token.id,
            token.subject,
            token.role.to_string(),
            token.created_by,
            when(token.last_used_at),
            when(token.revoked_at),
        ));
    }
    out
}
