//! Run retention: finished runs past their retention go, with their steps and
//! events, a batch per statement (docs/operations.md, "Run retention";
//! docs/decisions/0020-lean-rows-and-run-retention.md).
//!
//! What stays, whatever its age:
//! - runs that have not finished (`pending`, `running`, `waiting`): the state
//!   filter is re-checked on the locked row, so a run an operator retries at
//!   the same moment is skipped, never deleted;
//! - every run of an environment that is not `deleted`: its teardown asks
//!   whether any of its runs ever called out (`effects::ever_called_out`);
//! - a deleted environment's latest run and latest provisioning run: what the
//!   environment's view shows (`current_run`, `conditions`);
//! - environments themselves, events that name an environment, tokens' events
//!   and the audit trail (`audit_log`, pruned by its own retention).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, Store};

/// What one pruning statement deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Runs deleted.
    pub runs: u64,
    /// Their stored steps: those the runs moved past (`step_history`); a
    /// run's last step is its row.
    pub steps: u64,
    /// Their events.
    pub events: u64,
}

impl Store {
    /// Deletes up to `batch` runs that finished before `cutoff`, with their
    /// steps and events, in one statement; [`Pruned::runs`] below `batch`
    /// means nothing more is due. Runs locked by anyone else are skipped (the
    /// next pass takes them), so this never waits on a worker or an operator.
    pub async fn prune_finished_runs(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<Pruned> {
        let row = sqlx::query!(
            r#"
            WITH doomed AS (
                SELECT r.id FROM runs r
                -- Ids are UUIDv7, so the primary key is in creation order and
                -- a run created after the cutoff cannot have finished before
                -- it: the bound stops the scan where nothing can be due.
                WHERE r.id < $2
                  AND r.state IN ('succeeded', 'failed', 'cancelled')
                  AND r.finished_at < $1
                  AND (r.environment_id IS NULL OR (
                      EXISTS (SELECT 1 FROM environments e
                              WHERE e.id = r.environment_id AND e.phase = 'deleted')
                      AND EXISTS (SELECT 1 FROM runs later
                                  WHERE later.environment_id = r.environment_id
                                    AND later.id > r.id)
                      AND (workflow_of(r.definition_id) <> 'provision' OR EXISTS (
                          SELECT 1 FROM runs later
                          WHERE later.environment_id = r.environment_id
                            AND workflow_of(later.definition_id) = 'provision'
                            AND (later.created_at, later.id) > (r.created_at, r.id)))))
                ORDER BY r.id
                LIMIT $3
                FOR UPDATE OF r SKIP LOCKED
            ), events_gone AS (
                -- Events that name an environment are its timeline too.
                DELETE FROM events ev USING doomed d
                WHERE ev.run_id = d.id AND ev.environment_id IS NULL
                RETURNING 1
            ), steps_gone AS (
                DELETE FROM step_history s USING doomed d WHERE s.run_id = d.id
                RETURNING 1
            ), runs_gone AS (
                DELETE FROM runs r USING doomed d WHERE r.id = d.id
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM runs_gone) AS "runs!",
                   (SELECT count(*) FROM steps_gone) AS "steps!",
                   (SELECT count(*) FROM events_gone) AS "events!"
            "#,
            cutoff,
            id_bound(cutoff),
            batch,
        )
        .fetch_one(&self.pool)
        .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(Pruned {
            runs: count(row.runs),
            steps: count(row.steps),
            events: count(row.events),
        })
    }
}

/// The smallest UUIDv7 of the millisecond after `cutoff`: every id made
/// before the cutoff sorts below it.
fn id_bound(cutoff: DateTime<Utc>) -> Uuid {
    let millis = u64::try_from(cutoff.timestamp_millis()).unwrap_or(0) + 1;
    uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_bound_sorts_above_ids_made_before_the_cutoff_and_below_later_ones() {
        let cutoff = DateTime::from_timestamp_millis(1_800_000_000_123).unwrap_or_default();
        let at = |ms: u64| uuid::Builder::from_unix_timestamp_millis(ms, &[0xff; 10]).into_uuid();
        assert!(at(1_800_000_000_123) < id_bound(cutoff));
        assert!(at(1_800_000_000_124) > id_bound(cutoff));
    }
}
