//! What operators (and teardown) do to runs: retry a failed run from its failed
//! step or an earlier one, and cancel.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::RunState;
use crate::{Error, Result, Store};

/// What a cancel request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    /// The run was not executing: it is `cancelled` now.
    Cancelled,
    /// A step is in flight: the worker stops the run at once or at the next step
    /// boundary.
    Requested,
}

impl Store {
    /// Cancels a pending, waiting or running run. Cancelling a run that already
    /// ended is an [`Error::IllegalTransition`].
    pub async fn cancel_run(
        &self,
        run_id: Uuid,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Cancellation> {
        let row = sqlx::query!(
            r#"
            WITH current AS (
                SELECT id, state, current_step FROM runs WHERE id = $1::uuid FOR UPDATE
            ), target AS (
                SELECT id, state, current_step, state IN ('pending', 'waiting') AS idle
                FROM current WHERE state IN ('pending', 'waiting', 'running')
            ), moved AS (
                UPDATE runs r
                SET state = CASE WHEN t.idle THEN 'cancelled' ELSE r.state END,
                    finished_at = CASE WHEN t.idle THEN $2::timestamptz END,
                    cancel_requested_at = $2, cancel_requested_by = $3::text, updated_at = $2
                FROM target t WHERE r.id = t.id
                RETURNING r.state
            ), stopped AS (
                UPDATE steps s SET state = 'cancelled', updated_at = $2
                FROM target t
                WHERE t.idle AND s.run_id = t.id AND s.idx >= t.current_step
                  AND s.state IN ('pending', 'waiting')
            ), logged AS (
                INSERT INTO events (run_id, kind, actor, message, at)
                SELECT t.id,
                       CASE WHEN t.idle THEN 'run_cancelled' ELSE 'cancel_requested' END,
                       $3,
                       CASE WHEN t.idle THEN format('run cancelled by %s', $3)
                            ELSE format('cancellation requested by %s; the worker stops the run', $3) END,
                       $2
                FROM target t
            )
            SELECT c.state AS "before!: RunState", m.state AS "after?: RunState"
            FROM current c LEFT JOIN moved m ON true
            "#,
            run_id,
            now,
            actor,
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::RunNotFound(run_id))?;
        match row.after {
            Some(RunState::Cancelled) => Ok(Cancellation::Cancelled),
            Some(_) => Ok(Cancellation::Requested),
            None => Err(Error::IllegalTransition {
                run_id,
                action: "cancel",
                state: row.before,
                rule: "only pending, waiting or running runs can be cancelled",
            }),
        }
    }

    /// Retries a failed run. It resumes at the failed step, or at `from_step` when
    /// an operator wants earlier steps redone (it must not lie beyond the failed
    /// step). Those steps start over with a fresh attempt budget.
    pub async fn retry_run(
        &self,
        run_id: Uuid,
        from_step: Option<i32>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<i32> {
        let row = sqlx::query!(
            r#"
            WITH current AS (
                SELECT id, state, current_step FROM runs WHERE id = $1 FOR UPDATE
            ), target AS (
                SELECT id, coalesce($2::int, current_step) AS from_idx, current_step
                FROM current
                WHERE state = 'failed' AND coalesce($2::int, current_step) BETWEEN 0 AND current_step
            ), reset AS (
                UPDATE steps s
                SET state = 'pending', attempts = 0, polls = 0, output = NULL,
                    error_class = NULL, error_message = NULL, error_detail = NULL,
                    started_at = NULL, finished_at = NULL, updated_at = $3::timestamptz
                FROM target t WHERE s.run_id = t.id AND s.idx >= t.from_idx
            ), moved AS (
                UPDATE runs r
                SET state = 'pending', current_step = t.from_idx, next_run_at = $3,
                    finished_at = NULL, error_class = NULL, error_message = NULL,
                    cancel_requested_at = NULL, cancel_requested_by = NULL, updated_at = $3
                FROM target t WHERE r.id = t.id
                RETURNING r.current_step
            ), logged AS (
                INSERT INTO events (run_id, step_idx, kind, actor, message, at)
                SELECT t.id, t.from_idx, 'run_retried', $4::text,
                       format('%s retried the run from step %s', $4, t.from_idx), $3
                FROM target t
            )
            SELECT c.state AS "state!: RunState", c.current_step AS "failed_step!",
                   m.current_step AS "resumed_at?"
            FROM current c LEFT JOIN moved m ON true
            "#,
            run_id,
            from_step,
            now,
            actor,
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::RunNotFound(run_id))?;
        if let Some(resumed_at) = row.resumed_at {
            sqlx::query!("SELECT pg_notify('hubwright_runs', '')")
                .execute(&self.pool)
                .await?;
            return Ok(resumed_at);
        }
        if row.state != RunState::Failed {
            return Err(Error::IllegalTransition {
                run_id,
                action: "retry",
                state: row.state,
                rule: "only failed runs can be retried",
            });
        }
        Err(Error::Invalid {
            field: "from_step".to_owned(),
            rule: format!(
                "must be between 0 and {} (the failed step); later steps never ran",
                row.failed_step
            ),
        })
    }
}
