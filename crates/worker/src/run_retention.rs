//! Run retention: the scheduler role deletes finished runs older than the
//! retention (`serve --run-retention`), with their steps and events, a batch
//! per statement, at least every `interval`. What stays (runs in flight, the
//! runs a live environment's teardown and view need, environments, the audit
//! trail) is the query's business: `hubwright_state::store::retention`.
//!
//! Any number of replicas may run it: each batch locks its runs `SKIP
//! LOCKED`, so two replicas deleting at once only share the work.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hubwright_state::store::retention::Pruned;
use hubwright_state::workflow::Dur;
use hubwright_state::{Clock, Store};

use crate::Result;
use crate::config::ConfigError;
use crate::signal::{Moment, MomentWatch};

/// Runs deleted by one statement: small enough that a batch (its runs, their
/// steps and events) commits in milliseconds and holds few row locks.
const DEFAULT_BATCH: i64 = 1_000;

/// What one pass deleted, and in how many statements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPass {
    /// Statements that deleted something.
    pub batches: u64,
    /// Rows deleted, by table.
    pub deleted: Pruned,
}

/// Deletes finished runs past their retention.
#[derive(Debug)]
pub struct RunRetention {
    store: Store,
    clock: Arc<dyn Clock>,
    retention: Duration,
    interval: Duration,
    batch: i64,
    /// Reached after each batch that deleted something.
    batched: Moment,
}

impl RunRetention {
    /// Keeps finished runs for `retention`, pruning every `interval`,
    /// [`DEFAULT_BATCH`] runs per statement.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        retention: Duration,
        interval: Duration,
    ) -> Result<Self> {
        Self::validate(retention, interval)?;
        Ok(Self {
            store,
            clock,
            retention,
            interval,
            batch: DEFAULT_BATCH,
            batched: Moment::default(),
        })
    }

    /// The same, deleting at most `batch` runs per statement (at least 1).
    pub fn with_batch(mut self, batch: i64) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Checks the settings: a retention of at least an hour, so a typo
    /// (`30s` for `30d`) cannot delete the history of runs that just ended;
    /// an interval of at least a second.
    pub fn validate(retention: Duration, interval: Duration) -> Result<(), ConfigError> {
        if retention < Duration::from_secs(3600) {
            return Err(ConfigError {
                setting: "--run-retention",
                rule: format!(
                    "must be at least 1h, e.g. 30d, or 0 (or off) to keep runs forever (got {})",
                    Dur(retention)
                ),
            });
        }
        if interval < Duration::from_secs(1) {
            return Err(ConfigError {
                setting: "--run-prune-interval",
                rule: format!("must be at least 1s (got {})", Dur(interval)),
            });
        }
        Ok(())
    }

    /// Comes after each batch that deleted runs: tests count batches with it.
    pub fn batched(&self) -> MomentWatch {
        self.batched.watch()
    }

    /// One pass: deletes every run due, a batch at a time, until a batch
    /// comes back short; returns what went.
    pub async fn pass(&self) -> Result<RetentionPass> {
        let cutoff = self.clock.now()
            - chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::MAX);
        let mut pass = RetentionPass::default();
        loop {
            let batch = self.store.prune_finished_runs(cutoff, self.batch).await?;
            if batch.runs > 0 {
                pass.batches += 1;
                pass.deleted.runs += batch.runs;
                pass.deleted.steps += batch.steps;
                pass.deleted.events += batch.events;
                for (table, rows) in [
                    ("runs", batch.runs),
                    ("steps", batch.steps),
                    ("events", batch.events),
                ] {
                    metrics::counter!(crate::metrics::RETENTION_ROWS_DELETED, "table" => table)
                        .increment(rows);
                }
                self.batched.reached();
            }
            if batch.runs < u64::try_from(self.batch).unwrap_or(u64::MAX) {
                break;
            }
        }
        if pass.batches > 0 {
            tracing::info!(
                runs = pass.deleted.runs,
                steps = pass.deleted.steps,
                events = pass.deleted.events,
                batches = pass.batches,
                %cutoff,
                "deleted finished runs past their retention"
            );
        }
        Ok(pass)
    }

    /// Prunes at start and then every `interval` until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        crate::periodic::every("run retention", self.interval, shutdown, || self.pass()).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retention_under_an_hour_is_refused_naming_the_flag() {
        let refused = RunRetention::validate(Duration::from_secs(30), Duration::from_secs(60));
        let refused = refused.err().map(|e| (e.setting, e.rule));
        assert!(
            matches!(&refused, Some(("--run-retention", rule)) if rule.contains("got 30s")),
            "{refused:?}"
        );
        let day = Duration::from_secs(24 * 3600);
        assert!(RunRetention::validate(day * 30, Duration::from_secs(3600)).is_ok());
    }

    #[test]
    fn an_interval_under_a_second_is_refused_naming_the_flag() {
        let refused = RunRetention::validate(Duration::from_secs(3600), Duration::ZERO);
        assert_eq!(
            refused.err().map(|e| e.setting),
            Some("--run-prune-interval")
        );
    }
}
