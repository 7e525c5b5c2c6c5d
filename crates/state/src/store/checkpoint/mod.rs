//! Committing a step's outcome. Every statement here is guarded by the run's
//! state, its current step and the fencing token: when it matches no row, the
//! caller lost the run and nothing was written.
//!
//! When cancellation was requested while the step ran, the same statement stops
//! the run: the step's own outcome is still recorded, no further step starts.

mod success;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{RunState, StepFailure};
use crate::{Error, Result, Store};

pub use success::{Advanced, StepSuccess};

/// What every checkpoint write is guarded by: the run, the fencing token it was
/// claimed with, and the step the writer believes is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    /// The run.
    pub run_id: Uuid,
    /// The fencing token from the claim.
    pub token: i64,
    /// The step being committed.
    pub step_idx: i32,
}

impl Fence {
    fn lost(self) -> Error {
        Error::LeaseLost {
            run_id: self.run_id,
            token: self.token,
        }
    }
}

impl Store {
    /// The step is not ready yet: park the run until `until`. Does not use up an
    /// attempt. A `step_waiting` event is recorded when `log` says so (the first
    /// wait of an attempt) and whenever `reason` differs from the last one.
    pub async fn commit_wait(
        &self,
        fence: Fence,
        until: DateTime<Utc>,
        reason: &str,
        log: bool,
        now: DateTime<Utc>,
    ) -> Result<RunState> {
        let state = sqlx::query_scalar!(
            r#"
            WITH owned AS (
                SELECT id, lease_owner, cancel_requested_at IS NOT NULL AS cancelling
                FROM runs
                WHERE id = $1 AND lease_token = $2 AND state = 'running' AND current_step = $3
                FOR UPDATE
            ), moved AS (
                UPDATE runs r
                SET state = CASE WHEN o.cancelling THEN 'cancelled' ELSE 'waiting' END::run_state,
                    finished_at = CASE WHEN o.cancelling THEN $6::timestamptz END,
                    next_run_at = $4, lease_owner = NULL, lease_expires_at = NULL, updated_at = $6
                FROM owned o WHERE r.id = o.id
                RETURNING r.state
            ), logged AS (
                INSERT INTO events (run_id, step_idx, kind, actor, message, data, at)
                SELECT o.id, $3, 'step_waiting', o.lease_owner, $5,
                       jsonb_build_object('until', $4::timestamptz), $6
                FROM owned o
                WHERE NOT o.cancelling
                  -- The first wait, and then whenever what it waits for changes:
                  -- the timeline tells the story without an event per poll.
                  AND ($7 OR (SELECT e.message FROM events e
                              WHERE e.run_id = o.id AND e.step_idx = $3 AND e.kind = 'step_waiting'
                              ORDER BY e.id DESC LIMIT 1) IS DISTINCT FROM $5)
                UNION ALL
                SELECT o.id, NULL, 'run_cancelled', o.lease_owner, 'run cancelled while waiting', NULL, $6
                FROM owned o WHERE o.cancelling
            )
            SELECT state AS "state!: RunState" FROM moved
            "#,
            fence.run_id,
            fence.token,
            fence.step_idx,
            until,
            reason,
            now,
            log,
        )
        .fetch_optional(&self.pool)
        .await?;
        state.ok_or(fence.lost())
    }

    /// A retryable error with attempts left: record it and schedule the next
    /// attempt at `retry_at`.
    pub async fn commit_retry(
        &self,
        fence: Fence,
        error: &StepFailure,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RunState> {
        let state = sqlx::query_scalar!(
            r#"
            WITH owned AS (
                SELECT id, lease_owner, cancel_requested_at IS NOT NULL AS cancelling
                FROM runs
                WHERE id = $1 AND lease_token = $2 AND state = 'running' AND current_step = $3
                FOR UPDATE
            ), moved AS (
                -- The run's current step is its row (migration 20261212000100).
                UPDATE runs r
                SET state = CASE WHEN o.cancelling THEN 'cancelled' ELSE 'pending' END::run_state,
                    finished_at = CASE WHEN o.cancelling THEN $8::timestamptz END,
                    next_run_at = $7, lease_owner = NULL, lease_expires_at = NULL, updated_at = $8,
                    step_error_class = $4, step_error_message = $5, step_error_detail = $6
                FROM owned o WHERE r.id = o.id
                RETURNING r.state, step_name(r.definition_id, r.current_step) AS name,
                          r.step_attempts AS attempts
            ), logged AS (
                INSERT INTO events (run_id, step_idx, kind, actor, message, data, at)
                SELECT o.id, $3, 'step_retry_scheduled', o.lease_owner,
                       format('step %s failed (attempt %s), retrying at %s: %s',
                              n.name, n.attempts, $7::timestamptz, $5),
                       jsonb_build_object('attempt', n.attempts, 'retry_at', $7::timestamptz,
                                          'error_class', $4), $8
                FROM owned o, moved n
                WHERE NOT o.cancelling
                UNION ALL
                SELECT o.id, NULL, 'run_cancelled', o.lease_owner, 'run cancelled before retry', NULL, $8
                FROM owned o WHERE o.cancelling
            )
            SELECT state AS "state!: RunState" FROM moved
            "#,
            fence.run_id,
            fence.token,
            fence.step_idx,
            error.class as _,
            error.message,
            error.detail,
            retry_at,
            now,
        )
        .fetch_optional(&self.pool)
        .await?;
        state.ok_or(fence.lost())
    }

    /// A permanent error, or a retryable one out of attempts: the run stops in
    /// `failed` with the error verbatim, waiting for an operator.
    pub async fn commit_failure(
        &self,
        fence: Fence,
        error: &StepFailure,
        now: DateTime<Utc>,
    ) -> Result<RunState> {
        let state = sqlx::query_scalar!(
            r#"
            WITH owned AS (
                SELECT id, lease_owner FROM runs
                WHERE id = $1 AND lease_token = $2 AND state = 'running' AND current_step = $3
                FOR UPDATE
            ), moved AS (
                UPDATE runs r
                SET state = 'failed', error_class = $4, error_message = $5, finished_at = $7,
                    lease_owner = NULL, lease_expires_at = NULL, updated_at = $7,
                    step_error_class = $4, step_error_message = $5, step_error_detail = $6
                FROM owned o WHERE r.id = o.id
                RETURNING r.state, step_name(r.definition_id, r.current_step) AS name,
                          r.step_attempts AS attempts
            ), logged AS (
                INSERT INTO events (run_id, step_idx, kind, actor, message, data, at)
                SELECT o.id, $3, 'step_failed', o.lease_owner,
                       format('step %s failed (%s, attempt %s): %s', n.name, $4, n.attempts, $5),
                       jsonb_build_object('attempt', n.attempts, 'error_class', $4, 'detail', $6), $7
                FROM owned o, moved n
                UNION ALL
                SELECT o.id, NULL, 'run_failed', o.lease_owner, 'run failed; an operator can retry it', NULL, $7
                FROM owned o
            )
            SELECT state AS "state!: RunState" FROM moved
            "#,
            fence.run_id,
            fence.token,
            fence.step_idx,
            error.class as _,
            error.message,
            error.detail,
            now,
        )
        .fetch_optional(&self.pool)
        .await?;
        state.ok_or(fence.lost())
    }

    /// The worker abandoned the in-flight step because cancellation was
    /// requested: the run and every remaining step become `cancelled`.
    pub async fn commit_cancelled(
        &self,
        run_id: Uuid,
        token: i64,
        now: DateTime<Utc>,
    ) -> Result<RunState> {
        let state = sqlx::query_scalar!(
            r#"
            WITH owned AS (
                SELECT id, lease_owner, current_step FROM runs
                WHERE id = $1 AND lease_token = $2 AND state = 'running'
                  AND cancel_requested_at IS NOT NULL
                FOR UPDATE
            ), moved AS (
                UPDATE runs r
                SET state = 'cancelled', finished_at = $3, lease_owner = NULL,
                    lease_expires_at = NULL, updated_at = $3
                FROM owned o WHERE r.id = o.id
                RETURNING r.state
            ), logged AS (
                INSERT INTO events (run_id, step_idx, kind, actor, message, at)
                SELECT o.id, o.current_step, 'run_cancelled', o.lease_owner,
                       'run cancelled; the step in flight was interrupted', $3
                FROM owned o
            )
            SELECT state AS "state!: RunState" FROM moved
            "#,
            run_id,
            token,
            now,
        )
        .fetch_optional(&self.pool)
        .await?;
        state.ok_or(Error::LeaseLost { run_id, token })
    }
}
