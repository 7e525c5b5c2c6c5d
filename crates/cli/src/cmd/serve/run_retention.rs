//! `serve`'s flags for how long finished runs are kept (docs/operations.md,
//! "Run retention"), and the task that enforces it under `--scheduler`.

use std::sync::Arc;

use hubwright_state::workflow::Dur;
use hubwright_state::{Clock, Store};
use hubwright_worker::RunRetention;

/// How long finished runs are kept.
#[derive(Debug, Clone, clap::Args)]
pub struct RunRetentionArgs {
    /// Keep finished runs (with their steps and events) this long after they
    /// ended (e.g. 30d); the scheduler deletes older ones. At least 1h; 0 or
    /// `off` keeps them forever.
    #[arg(long, env = "HUBWRIGHT_RUN_RETENTION", default_value = "30d", value_parser = parse_retention)]
    run_retention: Retention,
    /// How often the scheduler deletes finished runs past their retention.
    #[arg(long, env = "HUBWRIGHT_RUN_PRUNE_INTERVAL", default_value = "1h")]
    run_prune_interval: Dur,
}

/// `--run-retention`: a duration, or off.
#[derive(Debug, Clone, Copy)]
pub struct Retention(Option<Dur>);

fn parse_retention(text: &str) -> Result<Retention, String> {
    match text.trim() {
        "off" | "0" => Ok(Retention(None)),
        other => other
            .parse::<Dur>()
            .map(|d| Retention((!d.is_zero()).then_some(d)))
            .map_err(|err| format!("{err}; or 0 (or off) to keep runs forever")),
    }
}

impl RunRetentionArgs {
    /// Checks the flags; the error names the flag and the rule.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Retention(Some(retention)) = self.run_retention {
            RunRetention::validate(retention.0, self.run_prune_interval.0)?;
        }
        Ok(())
    }

    /// The retention task (under `--scheduler`), unless retention is off.
    pub fn retention(
        &self,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Option<RunRetention>> {
        let Retention(Some(retention)) = self.run_retention else {
            tracing::info!("run retention is off: finished runs are kept forever");
            return Ok(None);
        };
        Ok(Some(RunRetention::new(
            store,
            clock,
            retention.0,
            self.run_prune_interval.0,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_off_turn_retention_off_and_a_typo_names_the_way_out() {
        assert!(matches!(parse_retention("off"), Ok(Retention(None))));
        assert!(matches!(parse_retention("0"), Ok(Retention(None))));
        assert!(matches!(parse_retention("30d"), Ok(Retention(Some(_)))));
        let refused = parse_retention("thirty days").err().unwrap_or_default();
        assert!(refused.contains("0 (or off)"), "{refused}");
    }
}
