//! Committing successful steps: each run's next step starts under the same
//! lease, or the run ends, in one statement for a batch of runs.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::model::RunState;
use crate::store::lease::StepClaim;
use crate::{Result, Store};

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
                -- In id order, as the heartbeat locks them (`lease.rs`).
                ORDER BY r.id
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
                       -- As the statement that started it would have stored it.
                       stored_start_message(f.replaced_at_boundary, f.name, f.replaced_attempt),
                       stored_start_data(f.replaced_at_boundary, f.replaced_attempt),
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
}
