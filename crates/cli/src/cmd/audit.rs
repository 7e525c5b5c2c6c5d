//! `hubwright audit ...`: the audit trail through the API (admin): list
//! entries with filters, or export them all as JSON lines.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use hubwright_state::store::audit::AuditEntry;

use crate::client::{Client, ClientError, segment};
use crate::output::{self, Format, Listing, when};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List audit entries, newest first (admin).
    #[command(after_help = "Examples:
  hubwright audit list --actor alice --since 24h
  hubwright audit list --action environment.create --outcome failure -o wide
  hubwright audit list --target 0193a4c2-… -o json")]
    List {
        #[command(flatten)]
        filters: Filters,
        /// At most this many entries.
        #[arg(long, short = 'L', default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
    },
    /// Write every matching entry to stdout as JSON lines, newest first (admin).
    #[command(after_help = "Examples:
  hubwright audit export > audit.jsonl
  hubwright audit export --since 2026-12-01T00:00:00Z --until 2027-01-01T00:00:00Z | gzip > december.jsonl.gz")]
    Export {
        #[command(flatten)]
        filters: Filters,
    },
}

/// The filters `list` and `export` share.
#[derive(Debug, clap::Args)]
pub struct Filters {
    /// Only entries by this subject.
    #[arg(long)]
    actor: Option<String>,
    /// Only this action, e.g. environment.create, run.retry, token.revoke.
    #[arg(long)]
    action: Option<String>,
    /// Only entries about this target (an environment, run or token id).
    #[arg(long)]
    target: Option<String>,
    /// Only successes or only failures.
    #[arg(long, value_parser = ["success", "failure"])]
    outcome: Option<String>,
    /// Only API calls made this way: api (the CLI, a portal, a script) or
    /// console (the web console).
    #[arg(long, value_parser = ["api", "console"])]
    channel: Option<String>,
    /// Only entries since: a duration ago (e.g. 24h) or an RFC 3339 time.
    #[arg(long, value_parser = super::run::parse_since)]
    since: Option<DateTime<Utc>>,
    /// Only entries before: a duration ago (e.g. 1h) or an RFC 3339 time.
    #[arg(long, value_parser = super::run::parse_since)]
    until: Option<DateTime<Utc>>,
}

impl Filters {
    /// The query string's filter parameters, each value encoded.
    fn query(&self) -> Vec<String> {
        let mut query = Vec::new();
        for (key, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("outcome", &self.outcome),
            ("channel", &self.channel),
        ] {
            if let Some(value) = value {
                query.push(format!("{key}={}", segment(value)));
            }
        }
        for (key, at) in [("since", self.since), ("until", self.until)] {
            if let Some(at) = at {
                query.push(format!("{key}={}", segment(&at.to_rfc3339())));
            }
        }
        query
    }
}

impl Listing for AuditEntry {
    const HEADERS: &'static [&'static str] =
        &["ID", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "STATUS"];
    const WIDE_HEADERS: &'static [&'static str] = &["ROLE", "AUTH", "VIA", "FROM", "PROBLEM"];

    fn cells(&self) -> Vec<String> {
        let or_dash = |text: &Option<String>| text.clone().unwrap_or_else(|| "-".to_owned());
        vec![
            self.id.to_string(),
            when(Some(self.at)),
            or_dash(&self.actor),
            self.action.clone(),
            or_dash(&self.target_id),
            self.outcome.as_str().to_owned(),
            self.status
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
        ]
    }

    fn wide_cells(&self) -> Vec<String> {
        let or_dash = |text: &Option<String>| text.clone().unwrap_or_else(|| "-".to_owned());
        vec![
            self.actor_role
                .map_or_else(|| "-".to_owned(), |r| r.to_string()),
            self.auth.as_str().to_owned(),
            self.channel
                .map_or_else(|| "-".to_owned(), |c| c.as_str().to_owned()),
            or_dash(&self.client_addr),
            or_dash(&self.problem_type),
        ]
    }

    fn name(&self) -> String {
        self.id.to_string()
    }
}

/// The audit commands.
pub async fn run(
    client: &Client,
    format: Format,
    command: Command,
) -> Result<ExitCode, ClientError> {
    match command {
        Command::List { filters, limit } => {
            let want = usize::try_from(limit).unwrap_or(usize::MAX);
            let entries: Vec<AuditEntry> = client
                .list::<_, i64>("/v1/audit", &filters.query(), want)
                .await?;
            output::print_list(format, &entries);
        }
        Command::Export { filters } => {
            let query = filters.query();
            let path = if query.is_empty() {
                "/v1/audit/export".to_owned()
            } else {
                format!("/v1/audit/export?{}", query.join("&"))
            };
            // Whole lines only, so a chunk boundary never splits a character.
            let mut pending = Vec::new();
            client
                .download(&path, |chunk| {
                    pending.extend_from_slice(chunk);
                    if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                        let lines: Vec<u8> = pending.drain(..=end).collect();
                        output::write_stdout(&String::from_utf8_lossy(&lines));
                    }
                })
                .await?;
            if !pending.is_empty() {
                output::write_stdout(&String::from_utf8_lossy(&pending));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
