//! `hubwright pool ...`: the warm pools for operators, as `GET /v1/pools`
//! reports them.

use std::process::ExitCode;

use clap::Subcommand;
use serde::{Deserialize, Serialize};

use crate::client::{Client, ClientError};
use crate::output::{self, Format, Listing};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the warm pools (operators): size, ready, provisioning, claims, misses.
    #[command(after_help = "Examples:\n  hubwright pool list\n  hubwright pool list -o json")]
    List,
    /// Show a template's pools, one per cluster.
    #[command(after_help = "Example:\n  hubwright pool show jupyterhub")]
    Show {
        /// The template's name.
        template: String,
    },
}

/// One pool on one cluster.
#[derive(Debug, Serialize, Deserialize)]
struct Pool {
    template: String,
    cluster: String,
    size: u32,
    ready: i64,
    provisioning: i64,
    failed: i64,
    tearing_down: i64,
    claims: i64,
    misses: i64,
    average_age_seconds: f64,
}

#[derive(Debug, Deserialize)]
struct PoolList {
    items: Vec<Pool>,
}

impl Listing for Pool {
    const HEADERS: &'static [&'static str] = &[
        "TEMPLATE",
        "CLUSTER",
        "SIZE",
        "READY",
        "PROVISIONING",
        "FAILED",
        "CLAIMS",
        "MISSES",
        "AVG AGE",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.template.clone(),
            self.cluster.clone(),
            self.size.to_string(),
            self.ready.to_string(),
            self.provisioning.to_string(),
            self.failed.to_string(),
            self.claims.to_string(),
            self.misses.to_string(),
            age(self.average_age_seconds),
        ]
    }

    fn name(&self) -> String {
        format!("{}/{}", self.template, self.cluster)
    }
}

/// `75` → `1m15s`, `3700` → `1h1m40s`; whole seconds are enough for a pool's age.
fn age(seconds: f64) -> String {
    let whole = seconds.max(0.0).round() as u64;
    let (hours, minutes, seconds) = (whole / 3600, whole % 3600 / 60, whole % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

pub async fn run(
    client: &Client,
    format: Format,
    command: Command,
) -> Result<ExitCode, ClientError> {
    let list: PoolList = client.get("/v1/pools").await?;
    match command {
        Command::List => output::print_list(format, &list.items),
        Command::Show { template } => {
            let pools: Vec<Pool> = list
                .items
                .into_iter()
                .filter(|pool| pool.template == template)
                .collect();
            if pools.is_empty() {
                eprintln!("template `{template}` keeps no warm pool");
                return Ok(ExitCode::FAILURE);
            }
            output::print_list(format, &pools);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_like_durations() {
        assert_eq!(super::age(0.0), "0s");
        assert_eq!(super::age(75.4), "1m15s");
        assert_eq!(super::age(3700.0), "1h1m40s");
    }
}
