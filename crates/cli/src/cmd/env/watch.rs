//! `env list --watch` and the confirmation `env delete` asks for.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use hubwright_state::model::Environment;
use uuid::Uuid;

use crate::client::{Client, ClientError};
use crate::output::{self, Format, Listing};

/// `env list --watch`: the list once, then a line (or a document) for each
/// environment that appears or changes, until Ctrl-C, as `kubectl get -w` does.
pub(super) async fn watch_list(
    client: &Client,
    format: Format,
    query: &[String],
    first: Vec<Environment>,
    interval: Duration,
) -> Result<ExitCode, ClientError> {
    let wide = format == Format::Wide;
    let print_changes = |items: &[Environment], header: bool| match format {
        Format::Table | Format::Wide => {
            crate::output::emit!("{}", output::table(items, wide, header));
        }
        // A stream of documents: one per line whatever was asked.
        Format::Json | Format::Jsonl | Format::Yaml => {
            for env in items {
                crate::output::emitln!("{}", output::json(env));
            }
        }
        Format::Name => {
            for env in items {
                crate::output::emitln!("{}", env.name());
            }
        }
    };
    print_changes(&first, true);
    let _ = std::io::stdout().flush();
    let mut seen: HashMap<Uuid, Environment> = first.into_iter().map(|e| (e.id, e)).collect();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(interval) => {}
        }
        let items = super::list_all(client, query).await?;
        let changed: Vec<Environment> = items
            .into_iter()
            .filter(|env| seen.get(&env.id).is_none_or(|before| changed(before, env)))
            .collect();
        print_changes(&changed, false);
        let _ = std::io::stdout().flush();
        for env in changed {
            seen.insert(env.id, env);
        }
    }
}

/// Whether anything a person watching would see has changed.
fn changed(before: &Environment, now: &Environment) -> bool {
    before.updated_at != now.updated_at
        || before.phase != now.phase
        || before.url != now.url
        || before.expires_at != now.expires_at
}

/// Asks on the terminal; true for `y` or `yes`.
pub(super) fn confirm(environment: &str) -> Result<bool, ClientError> {
    eprint!("Delete environment {environment} and everything in it? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|err| ClientError::Unavailable(format!("cannot read the answer: {err}")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
