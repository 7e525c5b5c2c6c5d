//! Audit retention: the scheduler role deletes audit entries older than the
//! retention (`serve --audit-retention`), in batches, at least every
//! `interval`. Any number of replicas may run it: a delete is idempotent,
//! and two replicas deleting at once only share the work.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hubwright_state::{Clock, Store};

use crate::Result;
use crate::config::ConfigError;

/// Most entries deleted by one statement, so no delete holds many row locks
/// or a long transaction while the API writes new entries.
const BATCH: i64 = 5_000;

/// Deletes audit entries past their retention.
#[derive(Debug)]
pub struct AuditRetention {
    store: Store,
    clock: Arc<dyn Clock>,
    retention: Duration,
    interval: Duration,
}

impl AuditRetention {
    /// Keeps `retention` of audit entries, pruning every `interval`.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        retention: Duration,
        interval: Duration,
    ) -> Result<Self> {
        Self::validate(retention)?;
        Ok(Self {
            store,
            clock,
            retention,
            interval,
        })
    }

    /// Checks the retention: at least an hour, so a typo (`90s` for `90d`)
    /// cannot empty the trail.
    pub fn validate(retention: Duration) -> Result<(), ConfigError> {
        if retention < Duration::from_secs(3600) {
            return Err(ConfigError {
                setting: "--audit-retention",
                rule: format!(
                    "must be at least 1h, e.g. 90d or 365d (got {})",
                    hubwright_state::workflow::Dur(retention)
                ),
            });
        }
        Ok(())
    }

    /// One pass: deletes every entry older than the retention, a batch at a
    /// time; returns how many went.
    pub async fn pass(&self) -> Result<u64> {
        let cutoff = self.clock.now()
            - chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::MAX);
        let mut deleted = 0;
        loop {
            let batch = self.store.prune_audit(cutoff, BATCH).await?;
            deleted += batch;
            if batch < BATCH as u64 {
                break;
            }
        }
        if deleted > 0 {
            metrics::counter!(crate::metrics::AUDIT_PRUNED).increment(deleted);
            tracing::info!(deleted, %cutoff, "deleted audit entries past their retention");
        }
        Ok(deleted)
    }

    /// Prunes at start and then every `interval` until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        crate::periodic::every("audit retention", self.interval, shutdown, || self.pass()).await;
        Ok(())
    }
}
