//! Committing a step's outcome. Every statement here is guarded by the run's
//! state, its current step and the fencing token: when it matches no row, the
//! caller lost the run and nothing was written.
//!
//! When cancellation was requested while the step ran, the same statement stops
//! the run: the step's own outcome is still recorded, no further step starts.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::lease::StepClaim;
use crate::model::{RunState, StepFailure};
use crate::{Error, Result, Store};

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

/// A step that succeeded, to commit.
#[derive(Debug, Clone)]
pub struct StepSuccess {
    /// The run.
    pub run_id: Uuid,
    /// The fencing token it was claimed with.
    pub token: i64,
    /// The step that succeeded.
    pub step_idx: i32,
    /// Its output, kept for later steps and the API.
    pub output: Value,
}

/// What became of a run after a successful step was committed.
#[derive(Debug, Clone, Copy)]
pub struct Advanced {
    /// The run.
    pub run_id: Uuid,
    /// `running` when the next step has started, else `succeeded` or `cancelled`.
    pub state: RunState,
    /// The next step, started under the same lease, when `state` is `running`.
    pub next: Option<StepClaim>,
}

impl Store {
    /// Commits successful steps of many runs in one statement and starts each
    /// run's next step under the same lease. Runs whose lease was lost are absent
    /// from the answer.
    pub async fn commit_successes(
        &self,
        batch: &[StepSuccess],
        now: DateTime<Utc>,
    ) -> Result<Vec<Advanced>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = batch.iter().map(|s| s.run_id).collect();
        let tokens: Vec<i64> = batch.iter().map(|s| s.token).collect();
        let idxs: Vec<i32> = batch.iter().map(|s| s.step_idx).collect();
        let outputs: Vec<Value> = batch.iter().map(|s| s.output.clone()).collect();
        let rows = sqlx::query!(
            r#"
            WITH owned AS (
                -- The step's `step_succeeded` event id, drawn here so that a
                -- run's `run_succeeded` id, drawn by `advanced` from this
                -- row, sorts after it.
                SELECT r.id, i.idx, i.output, r.lease_owner,
                       r.cancel_requested_at IS NOT NULL AS cancelling,
                       i.idx + 1 = r.step_count AS last,
                       nextval('events_id_seq') AS success_event_id
                FROM runs r
                JOIN unnest($1::uuid[], $2::bigint[], $3::int[], $4::jsonb[])
                     AS i(id, token, idx, output) ON r.id = i.id
                WHERE r.state = 'running' AND r.lease_token = i.token AND r.current_step = i.idx
                FOR UPDATE OF r
            ), done AS (
                -- `step_succeeded` lives on the step row (migration
                -- 20261209000200); `p` is the row as it was, so a success
                -- it already held is stored by `logged` rather than lost.
                UPDATE steps s
                SET state = 'succeeded', output = o.output, finished_at = $5, updated_at = $5,
                    error_class = NULL, error_message = NULL, error_detail = NULL,
                    finished_event_id = o.success_event_id,
                    finished_by = nullif(o.lease_owner, s.started_by)
                FROM owned o, steps p
                WHERE s.run_id = o.id AND s.idx = o.idx AND p.run_id = s.run_id AND p.idx = s.idx
                RETURNING s.run_id, s.idx, p.finished_event_id AS replaced_id,
                          coalesce(p.finished_by, p.started_by) AS replaced_by,
                          p.finished_at AS replaced_at
            ), following AS (
                -- Start the next step, or cancel every remaining one. A start
                -- lives on the row as the claim's does (`lease.rs`).
                UPDATE steps s
                SET state = CASE WHEN o.cancelling THEN 'cancelled' ELSE 'running' END::step_state,
                    attempts = s.attempts + CASE WHEN o.cancelling THEN 0 ELSE 1 END,
                    started_at = CASE WHEN o.cancelling THEN s.started_at
                                      ELSE coalesce(s.started_at, $5) END,
                    started_event_id = CASE WHEN o.cancelling THEN s.started_event_id
                                            ELSE nextval('events_id_seq') END,
                    started_by = CASE WHEN o.cancelling THEN s.started_by ELSE o.lease_owner END,
                    restarted_at = CASE WHEN o.cancelling THEN s.restarted_at
                                        WHEN s.started_at IS NOT NULL THEN $5 END,
                    started_at_boundary = CASE WHEN o.cancelling THEN s.started_at_boundary
                                               ELSE true END,
                    updated_at = $5
                FROM owned o, steps p
                WHERE s.run_id = o.id AND NOT o.last
                  AND (s.idx = o.idx + 1 OR (o.cancelling AND s.idx > o.idx))
                  AND p.run_id = s.run_id AND p.idx = s.idx
                RETURNING s.run_id, s.idx, s.name, s.attempts, s.polls, s.started_at, s.started_event_id,
                          o.cancelling, p.started_event_id AS replaced_id,
                          p.started_by AS replaced_by, p.attempts AS replaced_attempt,
                          p.started_at_boundary AS replaced_at_boundary,
                          coalesce(p.restarted_at, p.started_at) AS replaced_at
            ), advanced AS (
                UPDATE runs r
                SET current_step = o.idx + 1,
                    state = CASE WHEN o.last THEN 'succeeded'
                                 WHEN o.cancelling THEN 'cancelled'
                                 ELSE 'running' END::run_state,
                    finished_at = CASE WHEN o.last OR o.cancelling THEN $5 END,
                    lease_owner = CASE WHEN o.last OR o.cancelling THEN NULL ELSE r.lease_owner END,
                    lease_expires_at = CASE WHEN o.last OR o.cancelling THEN NULL
                                            ELSE r.lease_expires_at END,
                    -- The run's `run_succeeded` event is this id on its row
                    -- (migration 20261208000302).
                    finished_event_id = CASE WHEN o.last THEN nextval('events_id_seq') END,
                    updated_at = $5
                FROM owned o
                LEFT JOIN following f ON f.run_id = o.id AND NOT f.cancelling
                WHERE r.id = o.id
                -- No event of these is stored, so no trigger wakes the
                -- run's streams: this does, with its newest event's id.
                RETURNING r.id, r.state,
                          pg_notify('hubwright_events', r.id::text || ' ' ||
                              greatest(o.success_event_id, f.started_event_id,
                                       r.finished_event_id)::text) AS woke
            ), logged AS (
                -- A success or start a row held before is stored with its own
                -- id and no message (the timeline composes it, migration
                -- 20261208000301): only a row written twice has one.
                INSERT INTO events (id, run_id, step_idx, kind, actor, message, data, at)
                OVERRIDING SYSTEM VALUE
                SELECT d.replaced_id, d.run_id, d.idx, 'step_succeeded', d.replaced_by, NULL, NULL,
                       d.replaced_at
                FROM done d WHERE d.replaced_id IS NOT NULL
                UNION ALL
                SELECT f.replaced_id, f.run_id, f.idx, 'step_started', f.replaced_by,
                       -- Stored as the statement that started it stored it: the
                       -- checkpoint's with its message, the claim's with its data.
                       CASE WHEN f.replaced_at_boundary THEN format('step %s started (attempt %s)',
                                                          f.name, f.replaced_attempt) END,
                       CASE WHEN f.replaced_at_boundary IS NOT TRUE
                            THEN jsonb_build_object('attempt', f.replaced_attempt) END,
                       f.replaced_at
                FROM following f WHERE NOT f.cancelling AND f.replaced_id IS NOT NULL
                UNION ALL
                SELECT nextval('events_id_seq'), o.id, NULL, 'run_cancelled', o.lease_owner,
                       'run cancelled at a step boundary', NULL, $5
                FROM owned o WHERE o.cancelling AND NOT o.last
            )
            SELECT a.id, a.state AS "state!: RunState",
                   f.idx AS "next_idx?", f.attempts AS "next_attempts?", f.polls AS "next_polls?",
                   f.started_at AS "next_started_at?"
            FROM advanced a
            LEFT JOIN following f ON f.run_id = a.id AND NOT f.cancelling
            "#,
            &ids,
            &tokens,
            &idxs,
            &outputs,
            now,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Advanced {
                run_id: row.id,
                state: row.state,
                next: match (
                    row.next_idx,
                    row.next_attempts,
                    row.next_polls,
                    row.next_started_at,
                ) {
                    (Some(idx), Some(attempts), Some(polls), Some(first_started_at)) => {
                        Some(StepClaim {
                            idx,
                            attempts,
                            polls,
                            is_poll: false,
                            first_started_at,
                        })
                    }
                    _ => None,
                },
            })
            .collect())
    }

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
            ), parked AS (
                UPDATE steps s
                SET state = CASE WHEN o.cancelling THEN 'cancelled' ELSE
                                 CASE WHEN s.idx = $3 THEN 'waiting' ELSE s.state END END::step_state,
                    updated_at = $6
                FROM owned o
                WHERE s.run_id = o.id AND (s.idx = $3 OR (o.cancelling AND s.idx > $3))
            ), moved AS (
                UPDATE runs r
                SET state = CASE WHEN o.cancelling THEN 'cancelled' ELSE 'waiting' END::run_state,
                    finished_at = CASE WHEN o.cancelling THEN $6 END,
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
            ), noted AS (
                UPDATE steps s
                SET state = CASE WHEN o.cancelling THEN 'cancelled' ELSE 'pending' END::step_state,
                    error_class = CASE WHEN s.idx = $3 THEN $4 ELSE s.error_class END,
                    error_message = CASE WHEN s.idx = $3 THEN $5 ELSE s.error_message END,
                    error_detail = CASE WHEN s.idx = $3 THEN $6 ELSE s.error_detail END,
                    updated_at = $8
                FROM owned o
                WHERE s.run_id = o.id AND (s.idx = $3 OR (o.cancelling AND s.idx > $3))
                RETURNING s.idx, s.name, s.attempts
            ), moved AS (
                UPDATE runs r
                SET state = CASE WHEN o.cancelling THEN 'cancelled' ELSE 'pending' END::run_state,
                    finished_at = CASE WHEN o.cancelling THEN $8 END,
                    next_run_at = $7, lease_owner = NULL, lease_expires_at = NULL, updated_at = $8
                FROM owned o WHERE r.id = o.id
                RETURNING r.state
            ), logged AS (
                INSERT INTO events (run_id, step_idx, kind, actor, message, data, at)
                SELECT o.id, $3, 'step_retry_scheduled', o.lease_owner,
                       format('step %s failed (attempt %s), retrying at %s: %s',
                              n.name, n.attempts, $7::timestamptz, $5),
                       jsonb_build_object('attempt', n.attempts, 'retry_at', $7::timestamptz,
                                          'error_class', $4), $8
                FROM owned o JOIN noted n ON n.idx = $3
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
            ), noted AS (
                UPDATE steps s
                SET state = 'failed', error_class = $4, error_message = $5, error_detail = $6,
                    finished_at = $7, updated_at = $7
                FROM owned o
                WHERE s.run_id = o.id AND s.idx = $3
                RETURNING s.name, s.attempts
            ), moved AS (
                UPDATE runs r
                SET state = 'failed', error_class = $4, error_message = $5, finished_at = $7,
                    lease_owner = NULL, lease_expires_at = NULL, updated_at = $7
                FROM owned o WHERE r.id = o.id
                RETURNING r.state
            ), logged AS (
                INSERT INTO events (run_id, step_idx, kind, actor, message, data, at)
                SELECT o.id, $3, 'step_failed', o.lease_owner,
                       format('step %s failed (%s, attempt %s): %s', n.name, $4, n.attempts, $5),
                       jsonb_build_object('attempt', n.attempts, 'error_class', $4, 'detail', $6), $7
                FROM owned o, noted n
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
            ), stopped AS (
                UPDATE steps s SET state = 'cancelled', updated_at = $3
                FROM owned o
                WHERE s.run_id = o.id AND s.idx >= o.current_step
                  AND s.state IN ('pending', 'running', 'waiting')
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
